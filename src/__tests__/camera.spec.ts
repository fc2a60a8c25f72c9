/**
 * CameraViewer: one socket per visible, unpaused tab; settings sent as a text
 * message; latest frame wins.
 */
import { Widget } from '@lumino/widgets';

import { ISocketLike } from '../api';
import { encodeFrame } from '../frame';
import { DevicesModel } from '../model';
import { CameraViewer } from '../widgets/camera';

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
    this.sent.push(data);
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
}

const bitmaps: { width: number; height: number; close: jest.Mock }[] = [];

beforeAll(() => {
  (globalThis as any).createImageBitmap = jest.fn(async () => {
    const b = { width: 320, height: 240, close: jest.fn() };
    bitmaps.push(b);
    return b;
  });
  (globalThis as any).requestAnimationFrame = (cb: () => void) =>
    setTimeout(cb, 0) as any;
  (globalThis as any).cancelAnimationFrame = (id: any) => clearTimeout(id);
  HTMLCanvasElement.prototype.getContext = (() => ({
    drawImage: jest.fn()
  })) as any;
});

beforeEach(() => {
  FakeSocket.all = [];
  bitmaps.length = 0;
});

function makeViewer() {
  const model = new DevicesModel({
    api: {} as any,
    socketFactory: () => ({}) as any
  });
  const viewer = new CameraViewer({
    deviceId: 'dev1',
    deviceName: 'demo-board',
    model,
    settings: { width: 640, height: 480, quality: 80, fps: 0 },
    showOverlay: true,
    socketFactory: url => new FakeSocket(url)
  });
  return { viewer, model };
}

const tick = () => new Promise(r => setTimeout(r, 5));

describe('CameraViewer', () => {
  it('opens the camera socket with the settings in the query', () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    expect(FakeSocket.all).toHaveLength(1);
    const url = FakeSocket.all[0].url;
    expect(url).toMatch(/jupyter-remote-device\/devices\/dev1\/camera\?/);
    expect(url).toContain('width=640');
    expect(url).toContain('height=480');
    expect(url).toContain('quality=80');
    expect(url).toContain('fps=0');
    expect(FakeSocket.all[0].binaryType).toBe('arraybuffer');
    viewer.dispose();
    expect(FakeSocket.all[0].closed).toBe(true);
  });

  it('sends settings changes on the open socket without reconnecting', () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    const socket = FakeSocket.all[0];
    socket.open();
    viewer.updateSettings({ width: 320, height: 240 });
    expect(FakeSocket.all).toHaveLength(1);
    expect(JSON.parse(socket.sent[0])).toEqual({
      type: 'settings',
      width: 320,
      height: 240,
      quality: 80,
      fps: 0
    });
    viewer.updateSettings({ width: 320 }); // no change, nothing sent
    expect(socket.sent).toHaveLength(1);
    viewer.dispose();
  });

  it('pause closes the stream, resume opens a new one; hiding stops it', () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    FakeSocket.all[0].open();
    viewer.pause();
    expect(FakeSocket.all[0].closed).toBe(true);
    expect(viewer.state).toBe('paused');
    viewer.resume();
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.all[1].open();
    expect(viewer.state).toBe('streaming');
    viewer.hide();
    expect(FakeSocket.all[1].closed).toBe(true);
    expect(viewer.state).toBe('hidden');
    viewer.show();
    expect(FakeSocket.all).toHaveLength(3);
    viewer.dispose();
  });

  it('draws the latest frame and closes superseded bitmaps', async () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    const socket = FakeSocket.all[0];
    socket.open();
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);
    for (let seq = 1; seq <= 3; seq++) {
      socket.onmessage!({
        data: encodeFrame(
          {
            seq,
            captured_at: Date.now() / 1000,
            width: 320,
            height: 240,
            format: 'jpeg'
          },
          jpeg
        )
      });
    }
    await tick();
    await tick();
    // Frames that arrived while one was decoding were dropped (latest wins).
    expect(
      (globalThis as any).createImageBitmap.mock.calls.length
    ).toBeLessThan(3);
    expect(viewer.stats.frames).toBeGreaterThanOrEqual(1);
    expect(viewer.stats.seq).toBe(3);
    expect(viewer.canvas.width).toBe(320);
    for (const b of bitmaps) {
      expect(b.close).toHaveBeenCalled();
    }
    expect(Array.from(viewer.currentJpeg!)).toEqual(Array.from(jpeg));
    viewer.dispose();
  });

  it('shows the server status message', () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    const socket = FakeSocket.all[0];
    socket.onmessage!({
      data: JSON.stringify({
        type: 'status',
        state: 'error',
        reason: 'not-connected',
        message: 'demo-board is not connected'
      })
    });
    expect(viewer.node.textContent).toContain('demo-board is not connected');
    viewer.dispose();
  });

  it('acks a frame once drawn and runs the frame hooks on it', async () => {
    const { viewer } = makeViewer();
    Widget.attach(viewer, document.body);
    const socket = FakeSocket.all[0];
    expect(socket.url).toContain('ack=1');
    socket.open();
    const hooked: number[] = [];
    const hook = viewer.addFrameHook((ctx, frame) => {
      expect(ctx).toBeTruthy();
      hooked.push(frame.header.seq);
    });
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xd9]);
    socket.onmessage!({
      data: encodeFrame(
        {
          seq: 7,
          captured_at: Date.now() / 1000,
          width: 320,
          height: 240,
          format: 'jpeg'
        },
        jpeg
      )
    });
    expect(socket.sent).toHaveLength(0); // not drawn yet: no ack
    await tick();
    await tick();
    expect(hooked).toEqual([7]);
    const acks = socket.sent
      .map(m => JSON.parse(m))
      .filter(m => m.type === 'ack');
    expect(acks.map(a => a.seq)).toEqual([7]);
    hook.dispose();
    socket.onmessage!({
      data: encodeFrame(
        {
          seq: 8,
          captured_at: Date.now() / 1000,
          width: 320,
          height: 240,
          format: 'jpeg'
        },
        jpeg
      )
    });
    await tick();
    await tick();
    expect(hooked).toEqual([7]);
    viewer.dispose();
  });
});
