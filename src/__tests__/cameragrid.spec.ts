/**
 * Camera grid: one small, flow-controlled stream per board (ack=1, window 1, 160x120, a few
 * fps), each frame acknowledged once handled, tiles that follow the boards' status and stop
 * while the tab is hidden, a click opening the board's full camera.
 */
import { Widget } from '@lumino/widgets';

import { IDevice, ISocketLike } from '../api';
import { encodeFrame } from '../frame';
import { DevicesModel } from '../model';
import { CameraGrid, TILE_SETTINGS } from '../widgets/cameragrid';

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
        { seq, captured_at: 1, width: 160, height: 120, format: 'jpeg' },
        jpeg
      )
    });
  }
  acks(): number[] {
    return this.sent.filter(m => m.type === 'ack').map(m => m.seq);
  }
}

const dev = (id: string, status: IDevice['status']): IDevice => ({
  id,
  name: `desk-${id}`,
  host: '127.0.0.1',
  port: 18861,
  source: 'config',
  status,
  kind: 'agent',
  info: null,
  error: null
});

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

describe('CameraGrid', () => {
  it('streams small frames per board with acks, follows status, opens a board', async () => {
    FakeSocket.all = [];
    const model = new DevicesModel({
      api: {
        version: async () => ({ version: '0.1.0' }),
        listDevices: async () => [
          dev('1', 'connected'),
          dev('2', 'connected'),
          dev('3', 'connected')
        ]
      } as any,
      socketFactory: () =>
        ({
          readyState: 0,
          onopen: null,
          onclose: null,
          onerror: null,
          onmessage: null,
          send: () => undefined,
          close: () => undefined
        }) as any,
      frontendVersion: '0.1.0'
    });
    await model.start();
    const opened: string[] = [];
    const grid = new CameraGrid({
      model,
      devices: model.devices,
      openCamera: d => opened.push(d.id),
      socketFactory: url => new FakeSocket(url)
    });
    Widget.attach(grid, document.body);
    expect(
      grid.node.querySelectorAll('.jp-RemoteDevice-gridTile')
    ).toHaveLength(3);
    expect(FakeSocket.all).toHaveLength(3);
    for (const s of FakeSocket.all) {
      const q = new URL(s.url).searchParams;
      expect(q.get('ack')).toBe('1');
      expect(q.get('window')).toBe('1');
      expect(q.get('width')).toBe(String(TILE_SETTINGS.width));
      expect(q.get('height')).toBe(String(TILE_SETTINGS.height));
      expect(Number(q.get('fps'))).toBeGreaterThan(0);
      expect(Number(q.get('fps'))).toBeLessThanOrEqual(5);
      expect(q.get('adaptive')).toBeNull();
      s.open();
    }
    expect(FakeSocket.all[1].url).toContain('devices/2/camera');
    // a frame is acknowledged once handled (jsdom cannot decode it: skipped, still acked)
    FakeSocket.all[0].frame(1);
    await flush();
    await flush();
    expect(FakeSocket.all[0].acks()).toEqual([1]);
    FakeSocket.all[0].frame(2);
    FakeSocket.all[0].frame(3); // arrives while 2 is handled: 2 is dropped, 3 shown, acks cumulative
    await flush();
    await flush();
    expect(FakeSocket.all[0].acks().slice(-1)).toEqual([3]);

    // a click opens the board's full camera
    (grid.node.querySelector('[data-device-id="2"]') as HTMLElement).click();
    expect(opened).toEqual(['2']);

    // a board that disconnects stops its stream and says so
    model.handleMessage({ type: 'device', device: dev('3', 'online') });
    expect(FakeSocket.all[2].closed).toBe(true);
    const tile3 = grid.node.querySelector(
      '[data-device-id="3"]'
    ) as HTMLElement;
    expect(tile3.dataset.status).toBe('online');
    expect(tile3.textContent).toContain('online');

    // hidden tab: every stream stops; shown again: they reopen
    grid.hide();
    expect(FakeSocket.all.slice(0, 2).every(s => s.closed)).toBe(true);
    const before = FakeSocket.all.length;
    grid.show();
    expect(FakeSocket.all.length).toBe(before + 2); // boards 1 and 2 (3 is not connected)
    grid.dispose();
    expect(FakeSocket.all.every(s => s.closed)).toBe(true);
    model.dispose();
  });
});
