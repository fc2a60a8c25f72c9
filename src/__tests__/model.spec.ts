/**
 * DevicesModel: state transitions, events handling, reconnect with backoff,
 * handshake and jobs.
 */
import { ApiError, IDevice, IDevicesApi, IJob, ISocketLike } from '../api';
import { DevicesModel, Format, isJobFinished } from '../model';
import { FRONTEND_VERSION } from '../version';

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
  send(data: any): void {
    this.sent.push(data);
  }
  close(): void {
    this.closed = true;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  message(obj: any): void {
    this.onmessage?.({
      data: typeof obj === 'string' ? obj : JSON.stringify(obj)
    });
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }
}

function device(id: string, extra: Partial<IDevice> = {}): IDevice {
  return {
    id,
    name: `board-${id}`,
    host: '127.0.0.1',
    port: 18861,
    source: 'config',
    status: 'online',
    kind: null,
    info: null,
    error: null,
    ...extra
  };
}

const INFO = {
  hostname: 'pi',
  model: 'Raspberry Pi 4',
  platform: 'Linux',
  arch: 'aarch64',
  python: '3.11.2',
  agent_version: '0.1.0',
  cpu_count: 4,
  cpu_percent: 12.5,
  mem_total: 4 * 1024 ** 3,
  mem_available: 3 * 1024 ** 3,
  temperature_c: 48.3,
  uptime_s: 3600,
  cameras: []
};

function job(id: string, extra: Partial<IJob> = {}): IJob {
  return {
    id,
    kind: 'push',
    state: 'running',
    bytes_done: 0,
    bytes_total: 100,
    files_done: 0,
    files_total: 1,
    rate: null,
    error: null,
    verified: null,
    ...extra
  };
}

function fakeApi(
  overrides: Partial<IDevicesApi> = {}
): jest.Mocked<IDevicesApi> {
  return {
    version: jest.fn(async () => ({ version: FRONTEND_VERSION })),
    listDevices: jest.fn(async () => [device('a'), device('b')]),
    getDevice: jest.fn(async (id: string) => device(id)),
    addDevice: jest.fn(async o =>
      device('m', {
        host: o.host,
        port: o.port,
        source: 'manual',
        name: o.name ?? o.host
      })
    ),
    removeDevice: jest.fn(async () => undefined),
    connect: jest.fn(async (id: string) =>
      device(id, { status: 'connected', kind: 'agent', info: INFO })
    ),
    disconnect: jest.fn(async () => undefined),
    push: jest.fn(async () => job('j1')),
    getJob: jest.fn(async (id: string) => job(id)),
    cancelJob: jest.fn(async () => undefined),
    ...overrides
  } as any;
}

const flush = async () => {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
};

function makeModel(api = fakeApi(), opts: Partial<DevicesModel.IOptions> = {}) {
  return new DevicesModel({
    api,
    socketFactory: url => new FakeSocket(url),
    eventsUrl: () => 'ws://test/jupyter-remote-device/events',
    initialBackoff: 1000,
    maxBackoff: 8000,
    fallbackPollInterval: 5000,
    jobPollInterval: 1000,
    ...opts
  });
}

beforeEach(() => {
  FakeSocket.all = [];
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('DevicesModel', () => {
  it('handshakes, loads the list and opens the events socket', async () => {
    const api = fakeApi();
    const model = makeModel(api);
    const changed = jest.fn();
    model.changed.connect(changed);
    await model.start();
    expect(model.server).toEqual({ kind: 'ok', version: FRONTEND_VERSION });
    expect(model.devices.map(d => d.id)).toEqual(['a', 'b']);
    expect(model.loaded).toBe(true);
    expect(changed).toHaveBeenCalled();
    expect(FakeSocket.all).toHaveLength(1);
    expect(model.eventsState).toBe('connecting');
    FakeSocket.all[0].open();
    expect(model.eventsState).toBe('open');
    model.dispose();
    expect(FakeSocket.all[0].closed).toBe(true);
  });

  it('reports a missing server extension (404)', async () => {
    const api = fakeApi({
      version: jest.fn(async () => {
        throw new ApiError('Not found', 404, 'not-found');
      })
    });
    const model = makeModel(api);
    const serverChanged = jest.fn();
    model.serverChanged.connect(serverChanged);
    await model.start();
    expect(model.server.kind).toBe('missing');
    expect((model.server as any).message).toMatch(/not installed/);
    expect(serverChanged).toHaveBeenCalledTimes(1);
    expect(api.listDevices).not.toHaveBeenCalled();
    // No events socket against a missing extension; it is checked again later.
    expect(FakeSocket.all).toHaveLength(0);
    (api.version as jest.Mock).mockImplementation(async () => ({
      version: FRONTEND_VERSION
    }));
    jest.advanceTimersByTime(8000);
    await flush();
    expect(model.server.kind).toBe('ok');
    expect(api.listDevices).toHaveBeenCalledTimes(1);
    expect(FakeSocket.all).toHaveLength(1);
    model.dispose();
  });

  it('reports a version mismatch', async () => {
    const api = fakeApi({
      version: jest.fn(async () => ({ version: '9.9.9' }))
    });
    const model = makeModel(api);
    await model.start();
    expect(model.server).toEqual({
      kind: 'mismatch',
      version: '9.9.9',
      frontend: FRONTEND_VERSION
    });
    // The list still loads: the user can see the boards and the warning.
    expect(model.devices).toHaveLength(2);
    model.dispose();
  });

  it('applies devices / device / removed events', async () => {
    const model = makeModel(fakeApi({ listDevices: jest.fn(async () => []) }));
    await model.start();
    const socket = FakeSocket.all[0];
    socket.open();
    socket.message({ type: 'devices', devices: [device('a'), device('b')] });
    expect(model.devices.map(d => d.id)).toEqual(['a', 'b']);

    const deviceChanged = jest.fn();
    model.deviceChanged.connect((_, d) => deviceChanged(d));
    socket.message({
      type: 'device',
      device: device('a', { status: 'connecting' })
    });
    expect(model.get('a')!.status).toBe('connecting');
    socket.message({
      type: 'device',
      device: device('a', { status: 'connected', info: INFO })
    });
    expect(model.get('a')!.status).toBe('connected');
    expect(model.get('a')!.info!.cpu_percent).toBe(12.5);
    expect(model.connectedDevices.map(d => d.id)).toEqual(['a']);
    expect(deviceChanged).toHaveBeenCalledTimes(2);

    // The same device again: no change signal.
    socket.message({
      type: 'device',
      device: device('a', { status: 'connected', info: INFO })
    });
    expect(deviceChanged).toHaveBeenCalledTimes(2);

    // Info refreshed through heartbeat.
    socket.message({
      type: 'device',
      device: device('a', {
        status: 'connected',
        info: { ...INFO, cpu_percent: 80 }
      })
    });
    expect(model.get('a')!.info!.cpu_percent).toBe(80);

    // A new device appears at the end.
    socket.message({ type: 'device', device: device('c', { source: 'mdns' }) });
    expect(model.devices.map(d => d.id)).toEqual(['a', 'b', 'c']);

    const removed = jest.fn();
    model.deviceRemoved.connect((_, id) => removed(id));
    socket.message({ type: 'removed', id: 'b' });
    expect(model.devices.map(d => d.id)).toEqual(['a', 'c']);
    expect(removed).toHaveBeenCalledWith('b');

    // A full list drops what is gone and keeps the order of the rest.
    socket.message({
      type: 'devices',
      devices: [device('c'), device('a'), device('d')]
    });
    expect(model.devices.map(d => d.id)).toEqual(['a', 'c', 'd']);
    expect(removed).toHaveBeenCalledTimes(1);

    // Garbage is ignored.
    socket.message('not json');
    socket.message({ type: 'unknown' });
    expect(model.devices).toHaveLength(3);
    model.dispose();
  });

  it('goes connecting → connected on connect and keeps connecting against stale events', async () => {
    let resolve: (d: IDevice) => void = () => undefined;
    const api = fakeApi({
      connect: jest.fn(() => new Promise<IDevice>(r => (resolve = r)))
    });
    const model = makeModel(api);
    await model.start();
    const socket = FakeSocket.all[0];
    socket.open();
    const p = model.connect('a', 'tok');
    expect(api.connect).toHaveBeenCalledWith('a', 'tok');
    expect(model.get('a')!.status).toBe('connecting');
    expect(model.isPending('a')).toBe(true);
    // A stale "online" from the events socket does not hide the pending state.
    socket.message({
      type: 'device',
      device: device('a', { status: 'online' })
    });
    expect(model.get('a')!.status).toBe('connecting');
    resolve(device('a', { status: 'connected', info: INFO }));
    const result = await p;
    expect(result.status).toBe('connected');
    expect(model.get('a')!.status).toBe('connected');
    expect(model.isPending('a')).toBe(false);
    model.dispose();
  });

  it('takes the server view after a failed connect and rethrows the server message', async () => {
    const api = fakeApi({
      connect: jest.fn(async () => {
        throw new ApiError('The board refused the token', 502, 'auth-failed');
      }),
      getDevice: jest.fn(async (id: string) =>
        device(id, { status: 'error', error: 'The board refused the token' })
      )
    });
    const model = makeModel(api);
    await model.start();
    await expect(model.connect('b')).rejects.toMatchObject({
      message: 'The board refused the token',
      reason: 'auth-failed',
      status: 502
    });
    expect(model.get('b')!.status).toBe('error');
    expect(model.get('b')!.error).toBe('The board refused the token');
    expect(model.isPending('b')).toBe(false);
    model.dispose();
  });

  it('disconnects, adds and removes devices', async () => {
    const api = fakeApi({
      getDevice: jest.fn(async (id: string) => device(id, { status: 'online' }))
    });
    const model = makeModel(api);
    await model.start();
    await model.connect('a');
    expect(model.get('a')!.status).toBe('connected');
    await model.disconnect('a');
    expect(api.disconnect).toHaveBeenCalledWith('a');
    expect(model.get('a')!.status).toBe('online');

    const added = await model.addDevice({
      host: '10.0.0.5',
      port: 18861,
      name: 'cam'
    });
    expect(added.source).toBe('manual');
    expect(model.get('m')!.name).toBe('cam');
    await model.removeDevice('m');
    expect(model.get('m')).toBeUndefined();
    model.dispose();
  });

  it('reconnects the events socket with exponential backoff and handshakes again', async () => {
    const api = fakeApi();
    const model = makeModel(api);
    await model.start();
    FakeSocket.all[0].open();
    expect(api.version).toHaveBeenCalledTimes(1);

    FakeSocket.all[0].drop();
    expect(model.eventsState).toBe('closed');
    expect(model.nextBackoff).toBe(1000);
    jest.advanceTimersByTime(999);
    expect(FakeSocket.all).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(FakeSocket.all).toHaveLength(2);

    // Fails again before opening: 2 s, then 4 s, 8 s, capped at 8 s.
    FakeSocket.all[1].drop();
    expect(model.nextBackoff).toBe(2000);
    jest.advanceTimersByTime(2000);
    expect(FakeSocket.all).toHaveLength(3);
    FakeSocket.all[2].drop();
    expect(model.nextBackoff).toBe(4000);
    jest.advanceTimersByTime(4000);
    FakeSocket.all[3].drop();
    expect(model.nextBackoff).toBe(8000);
    jest.advanceTimersByTime(8000);
    FakeSocket.all[4].drop();
    expect(model.nextBackoff).toBe(8000);
    jest.advanceTimersByTime(8000);
    expect(FakeSocket.all).toHaveLength(6);

    // Opening resets the backoff and re-runs the handshake.
    FakeSocket.all[5].open();
    await flush();
    expect(model.eventsState).toBe('open');
    expect(model.nextBackoff).toBe(1000);
    expect(api.version).toHaveBeenCalledTimes(2);
    FakeSocket.all[5].message({ type: 'devices', devices: [device('z')] });
    expect(model.devices.map(d => d.id)).toEqual(['z']);
    model.dispose();
    jest.advanceTimersByTime(60000);
    expect(FakeSocket.all).toHaveLength(6);
  });

  it('falls back to refreshing the list while the events socket is down', async () => {
    const api = fakeApi();
    const model = makeModel(api);
    await model.start();
    expect(api.listDevices).toHaveBeenCalledTimes(1);
    FakeSocket.all[0].drop();
    // Keep the reconnects failing.
    const keepFailing = setInterval(() => {
      const last = FakeSocket.all[FakeSocket.all.length - 1];
      if (last.readyState === 0) {
        last.drop();
      }
    }, 100);
    jest.advanceTimersByTime(5000);
    await flush();
    expect(api.listDevices).toHaveBeenCalledTimes(2);
    clearInterval(keepFailing);
    model.dispose();
  });

  it('follows jobs from events and ignores late progress', async () => {
    const model = makeModel();
    await model.start();
    const socket = FakeSocket.all[0];
    socket.open();
    const seen: IJob[] = [];
    model.jobChanged.connect((_, j) => seen.push(j));
    const started = await model.push('a', 'data', 'data');
    expect(started.id).toBe('j1');
    expect(model.getJob('j1')!.device).toBe('a');
    socket.message({ type: 'job', job: job('j1', { bytes_done: 50 }) });
    expect(model.getJob('j1')!.bytes_done).toBe(50);
    expect(model.getJob('j1')!.device).toBe('a');
    socket.message({
      type: 'job',
      job: job('j1', { state: 'done', bytes_done: 100, verified: true })
    });
    expect(isJobFinished(model.getJob('j1')!)).toBe(true);
    socket.message({
      type: 'job',
      job: job('j1', { state: 'running', bytes_done: 70 })
    });
    expect(model.getJob('j1')!.state).toBe('done');
    expect(seen.map(j => j.state)).toEqual(['running', 'running', 'done']);
    model.dispose();
  });

  it('polls GET jobs/{id} when job events stop, and cancels', async () => {
    const api = fakeApi({
      getJob: jest.fn(async (id: string) => job(id, { state: 'cancelled' }))
    });
    const model = makeModel(api);
    await model.start();
    FakeSocket.all[0].open();
    await model.push('a', 'big.bin', 'big.bin');
    jest.advanceTimersByTime(1000);
    await flush();
    expect(api.getJob).toHaveBeenCalledWith('j1');
    expect(model.getJob('j1')!.state).toBe('cancelled');

    await model.cancelJob('j1');
    expect(api.cancelJob).toHaveBeenCalledWith('j1');
    model.dispose();
  });
});

describe('Format', () => {
  it('formats bytes, memory, temperature and durations', () => {
    expect(Format.bytes(512)).toBe('512 B');
    expect(Format.bytes(2048)).toBe('2.0 kB');
    expect(Format.memory(4 * 1024 ** 3, 3 * 1024 ** 3)).toBe(
      '1.0 GB / 4.0 GB (25%)'
    );
    expect(Format.memory(null, null)).toBeNull();
    expect(Format.temperature(48.34)).toBe('48.3 °C');
    expect(Format.temperature(null)).toBeNull();
    expect(Format.percent(12.5)).toBe('13%');
    expect(Format.duration(3700)).toBe('1h 1m');
    expect(Format.duration(90)).toBe('1m 30s');
  });
});
