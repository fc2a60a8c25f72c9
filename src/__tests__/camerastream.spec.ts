/**
 * CameraStream (no DOM): ack=1 in the URL, one cumulative ack per frame the
 * consumer is done with, never an older or repeated one, none for a frame of
 * an earlier socket; settings and window messages; retries with backoff.
 */
import { ISocketLike } from '../api';
import { CameraStream, IStreamFrame } from '../camerastream';
import { encodeFrame } from '../frame';

class FakeSocket implements ISocketLike {
  static all: FakeSocket[] = [];
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  readyState = 0;
  binaryType = 'blob';
  onopen: ((ev: any) => any) | null = null;
  onclose: ((ev: any) => any) | null = null;
  onerror: ((ev: any) => any) | null = null;
  onmessage: ((ev: any) => any) | null = null;
  sent: any[] = [];
  closed = false;
  send(data: any) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(seq: number) {
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);
    this.onmessage?.({
      data: encodeFrame(
        { seq, captured_at: 1, width: 320, height: 240, format: 'jpeg' },
        jpeg
      )
    });
  }
  acks(): number[] {
    return this.sent.filter(m => m.type === 'ack').map(m => m.seq);
  }
}

let clock = 0;

function makeStream(options: Partial<CameraStream.IOptions> = {}) {
  const frames: IStreamFrame[] = [];
  const stream = new CameraStream({
    deviceId: 'dev1',
    settings: { width: 320, height: 240, quality: 80, fps: 0 },
    socketFactory: url => new FakeSocket(url),
    now: () => clock,
    retryDelay: () => 10,
    ...options
  });
  stream.frameReceived.connect((_, f) => frames.push(f));
  return { stream, frames };
}

beforeEach(() => {
  FakeSocket.all = [];
  clock = 1000;
});

describe('CameraStream', () => {
  it('asks for acks and adaptive quality in the URL', () => {
    const { stream } = makeStream({ window: 3 });
    stream.start();
    const url = FakeSocket.all[0].url;
    expect(url).toMatch(/devices\/dev1\/camera\?/);
    expect(url).toContain('ack=1');
    expect(url).toContain('adaptive=1');
    expect(url).toContain('window=3');
    expect(FakeSocket.all[0].binaryType).toBe('arraybuffer');
    stream.dispose();
    expect(FakeSocket.all[0].closed).toBe(true);
  });

  it('leaves ack and adaptive out when turned off, and sends no acks', () => {
    const { stream, frames } = makeStream({ ack: false, adaptive: false });
    stream.start();
    const s = FakeSocket.all[0];
    expect(s.url).not.toContain('ack=');
    expect(s.url).not.toContain('adaptive=');
    s.open();
    s.frame(1);
    stream.done(frames[0]);
    expect(s.acks()).toEqual([]);
    stream.dispose();
  });

  it('acks each frame once it is done, with how long it was held', () => {
    const { stream, frames } = makeStream();
    stream.start();
    const s = FakeSocket.all[0];
    s.open();
    s.frame(5);
    expect(s.acks()).toEqual([]); // received is not drawn
    clock += 7;
    stream.done(frames[0]);
    expect(s.sent).toEqual([{ type: 'ack', seq: 5, hold_ms: 7 }]);
    expect(stream.lastAcked).toBe(5);
    stream.dispose();
  });

  it('acks are cumulative: an older or repeated frame is not acked again', () => {
    const { stream, frames } = makeStream();
    stream.start();
    const s = FakeSocket.all[0];
    s.open();
    s.frame(1);
    s.frame(2);
    s.frame(3);
    // the consumer drew only the latest (latest wins): one ack covers all three
    stream.done(frames[2]);
    stream.done(frames[0]);
    stream.done(frames[1]);
    stream.done(frames[2]);
    expect(s.acks()).toEqual([3]);
    s.frame(4);
    stream.done(frames[3]);
    expect(s.acks()).toEqual([3, 4]);
    stream.dispose();
  });

  it('does not ack a frame of an earlier socket; a new socket starts over', async () => {
    const { stream, frames } = makeStream();
    stream.start();
    const s1 = FakeSocket.all[0];
    s1.open();
    s1.frame(10);
    s1.onclose?.({ code: 1006, reason: 'gone' });
    expect(stream.socketState).toBe('waiting');
    await new Promise(r => setTimeout(r, 20));
    expect(FakeSocket.all).toHaveLength(2);
    const s2 = FakeSocket.all[1];
    s2.open();
    stream.done(frames[0]); // drawn late, from the old socket
    expect(s1.acks()).toEqual([]);
    expect(s2.acks()).toEqual([]);
    expect(stream.lastAcked).toBeNull();
    s2.frame(1); // the board restarted: seq starts again, still acked
    stream.done(frames[1]);
    expect(s2.acks()).toEqual([1]);
    stream.dispose();
  });

  it('sends settings and window changes on the open socket', () => {
    const { stream } = makeStream();
    stream.start();
    const s = FakeSocket.all[0];
    s.open();
    expect(stream.updateSettings({ quality: 50 })).toBe(true);
    expect(stream.updateSettings({ quality: 50 })).toBe(false);
    stream.updateSettings({ adaptive: false });
    stream.setWindow(4);
    expect(s.sent).toEqual([
      { type: 'settings', width: 320, height: 240, quality: 50, fps: 0 },
      {
        type: 'settings',
        width: 320,
        height: 240,
        quality: 50,
        fps: 0,
        adaptive: false
      },
      { type: 'settings', window: 4 }
    ]);
    expect(FakeSocket.all).toHaveLength(1);
    stream.dispose();
  });

  it('reports the server status', () => {
    const { stream } = makeStream();
    const seen: any[] = [];
    stream.statusChanged.connect((_, st) => seen.push(st));
    stream.start();
    const s = FakeSocket.all[0];
    s.open();
    s.onmessage?.({
      data: JSON.stringify({
        type: 'status',
        state: 'streaming',
        fps: 12,
        link_kbps: 8000,
        rtt_ms: 40,
        latency_ms: 120,
        quality: 55
      })
    });
    expect(seen).toHaveLength(1);
    expect(stream.lastStatus?.link_kbps).toBe(8000);
    expect(stream.lastStatus?.quality).toBe(55);
    stream.dispose();
  });
});
