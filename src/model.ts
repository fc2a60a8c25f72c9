/**
 * DevicesModel: the frontend's single view of the boards the server knows.
 *
 * It is fed by the `events` WebSocket (a full list on open, then one message
 * per change) and by the replies of the REST calls it makes; widgets observe
 * its Lumino signals and never talk to the server themselves.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  ApiError,
  EventMessage,
  IDevice,
  IDevicesApi,
  IJob,
  restApi,
  SocketFactory,
  wsUrl
} from './api';
import { checkServer, ServerState } from './handshake';
import { isJobFinished, JobTracker, jobProgress } from './jobstate';
import { exponentialBackoff, ReconnectingSocket, SocketState } from './socket';
import { FRONTEND_VERSION } from './version';

export type { ServerState };

/** State of the `events` WebSocket. */
export type EventsState = 'idle' | 'connecting' | 'open' | 'closed';

export namespace DevicesModel {
  export interface IOptions {
    /** REST calls (tests pass a fake). */
    api?: IDevicesApi;
    /** WebSocket factory (tests pass a fake). */
    socketFactory?: SocketFactory;
    /** URL of the events socket. */
    eventsUrl?: () => string;
    /** The frontend's package version, compared with the server's. */
    frontendVersion?: string;
    /** First reconnect delay in ms (doubles up to `maxBackoff`). */
    initialBackoff?: number;
    /** Largest reconnect delay in ms. */
    maxBackoff?: number;
    /** Period in ms of the fallback refresh while the events socket is down. */
    fallbackPollInterval?: number;
    /** Period in ms of job polling when job events do not arrive. */
    jobPollInterval?: number;
  }
}

/** The events socket's state as the model reports it. */
const EVENTS_STATE: { [K in SocketState]: EventsState } = {
  idle: 'idle',
  connecting: 'connecting',
  open: 'open',
  waiting: 'closed'
};

export { isJobFinished, jobProgress };

export class DevicesModel implements IDisposable {
  constructor(options: DevicesModel.IOptions = {}) {
    this._api = options.api ?? restApi;
    this._eventsUrl = options.eventsUrl ?? (() => wsUrl('events'));
    this._frontendVersion = options.frontendVersion ?? FRONTEND_VERSION;
    this._maxBackoff = options.maxBackoff ?? 30000;
    this._fallbackPollInterval = options.fallbackPollInterval ?? 5000;
    this._jobs = new JobTracker({
      api: this._api,
      pollInterval: options.jobPollInterval ?? 1500,
      eventsOpen: () => this._eventsState === 'open',
      onChange: job => this._jobChanged.emit(job)
    });
    this._events = new ReconnectingSocket({
      url: this._eventsUrl,
      socketFactory: options.socketFactory,
      retryDelay: exponentialBackoff(
        options.initialBackoff ?? 1000,
        this._maxBackoff
      )
    });
    this._events.stateChanged.connect(this._onEventsState, this);
    this._events.opened.connect(this._onEventsOpened, this);
    this._events.messageReceived.connect(this._onEventsMessage, this);
  }

  /** The REST API in use. */
  get api(): IDevicesApi {
    return this._api;
  }

  /** Emitted when the list (membership, order or any device) changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted with the new state of one device. */
  get deviceChanged(): ISignal<this, IDevice> {
    return this._deviceChanged;
  }

  /** Emitted with the id of a device that went away. */
  get deviceRemoved(): ISignal<this, string> {
    return this._deviceRemoved;
  }

  /** Emitted on every job update. */
  get jobChanged(): ISignal<this, IJob> {
    return this._jobChanged;
  }

  /** Emitted when the server handshake result changes. */
  get serverChanged(): ISignal<this, ServerState> {
    return this._serverChanged;
  }

  /** Emitted when the events socket opens or closes. */
  get eventsStateChanged(): ISignal<this, EventsState> {
    return this._eventsStateChanged;
  }

  get devices(): ReadonlyArray<IDevice> {
    return this._order
      .map(id => this._devices.get(id))
      .filter((d): d is IDevice => !!d);
  }

  get connectedDevices(): ReadonlyArray<IDevice> {
    return this.devices.filter(d => d.status === 'connected');
  }

  get server(): ServerState {
    return this._server;
  }

  get eventsState(): EventsState {
    return this._eventsState;
  }

  /** Whether the device list was loaded at least once. */
  get loaded(): boolean {
    return this._loaded;
  }

  /** The last error of a refresh, if any. */
  get lastError(): string | null {
    return this._lastError;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get(id: string): IDevice | undefined {
    return this._devices.get(id);
  }

  /** Ids with a connect request in flight from this browser. */
  isPending(id: string): boolean {
    return this._pending.has(id);
  }

  getJob(id: string): IJob | undefined {
    return this._jobs.get(id);
  }

  /**
   * Handshake, first load and live updates. Safe to call once; later
   * reconnects are automatic.
   */
  async start(): Promise<void> {
    if (this._started || this._isDisposed) {
      return;
    }
    this._started = true;
    await this.handshake();
    if (this._server.kind === 'missing') {
      // No server extension: nothing to listen to. Check again now and then
      // (it may get installed and Jupyter restarted).
      this._waitForExtension();
      return;
    }
    if (this._server.kind === 'ok' || this._server.kind === 'mismatch') {
      await this.refresh().catch(() => undefined);
    }
    this._openEvents();
  }

  private _waitForExtension(): void {
    if (this._isDisposed) {
      return;
    }
    this._clearReconnect();
    this._reconnectTimer = setTimeout(async () => {
      this._reconnectTimer = null;
      const state = await this.handshake();
      if (state.kind === 'missing') {
        this._waitForExtension();
      } else if (!this._isDisposed) {
        await this.refresh().catch(() => undefined);
        this._openEvents();
      }
    }, this._maxBackoff);
  }

  /** GET version and compare it with the frontend's. */
  async handshake(): Promise<ServerState> {
    const state = await checkServer(this._api, this._frontendVersion);
    this._setServer(state);
    return state;
  }

  /** GET devices and replace the list. */
  async refresh(): Promise<void> {
    try {
      const devices = await this._api.listDevices();
      this._lastError = null;
      this._replaceAll(devices);
    } catch (error) {
      this._lastError = (error as Error).message ?? String(error);
      if ((error as ApiError).status === 404 && this._server.kind === 'ok') {
        await this.handshake();
      }
      this._changed.emit();
      throw error;
    }
  }

  /** GET devices/{id} and merge it. */
  async refreshDevice(id: string): Promise<IDevice | undefined> {
    try {
      const device = await this._api.getDevice(id);
      this._upsert(device);
      return device;
    } catch (error) {
      if ((error as ApiError).status === 404) {
        this._remove(id);
        return undefined;
      }
      throw error;
    }
  }

  /** Open a session (POST devices/{id}/session). */
  async connect(
    id: string,
    token?: string,
    takeOver?: boolean
  ): Promise<IDevice> {
    this._pending.add(id);
    const before = this._devices.get(id);
    if (before && before.status !== 'connected') {
      this._upsert({ ...before, status: 'connecting', error: null });
    }
    try {
      const device = takeOver
        ? await this._api.connect(id, token, true)
        : await this._api.connect(id, token);
      this._upsert(device);
      return device;
    } catch (error) {
      // Take the server's view again (status error / offline / ...).
      await this.refreshDevice(id).catch(() => {
        const current = this._devices.get(id);
        if (current) {
          this._upsert({
            ...current,
            status: 'error',
            error: (error as Error).message
          });
        }
      });
      throw error;
    } finally {
      this._pending.delete(id);
      this._changed.emit();
    }
  }

  /** Close the session (DELETE devices/{id}/session). */
  async disconnect(id: string): Promise<void> {
    await this._api.disconnect(id);
    await this.refreshDevice(id).catch(() => undefined);
  }

  async addDevice(options: {
    host: string;
    port: number;
    name?: string;
    token?: string;
  }): Promise<IDevice> {
    const device = await this._api.addDevice(options);
    this._upsert(device);
    return device;
  }

  async removeDevice(id: string): Promise<void> {
    await this._api.removeDevice(id);
    this._remove(id);
  }

  /** Start a push job and follow it. */
  async push(id: string, source: string, dest: string): Promise<IJob> {
    const job = await this._api.push(id, source, dest);
    this.handleJob({ ...job, device: id });
    return this._jobs.get(job.id) ?? job;
  }

  /** Start a pull job (board → workspace) and follow it. */
  async pull(id: string, source: string, dest: string): Promise<IJob> {
    const job = await this._api.pull(id, source, dest);
    this.handleJob({ ...job, device: id });
    return this._jobs.get(job.id) ?? job;
  }

  async cancelJob(id: string): Promise<void> {
    await this._api.cancelJob(id);
    try {
      this.handleJob(await this._api.getJob(id));
    } catch {
      // The job may be gone already.
    }
  }

  /** Apply one message of the events socket. */
  handleMessage(msg: EventMessage): void {
    if (!msg || typeof msg !== 'object') {
      return;
    }
    switch (msg.type) {
      case 'devices':
        this._replaceAll(msg.devices ?? []);
        break;
      case 'device':
        if (msg.device?.id) {
          this._upsert(msg.device);
        }
        break;
      case 'removed':
        this._remove(msg.id);
        break;
      case 'job':
        if (msg.job?.id) {
          this.handleJob(msg.job);
        }
        break;
      default:
        break;
    }
  }

  /** Merge a job update (from events, REST or polling). */
  handleJob(job: IJob): void {
    this._jobs.handle(job);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearReconnect();
    this._stopFallbackPoll();
    this._jobs.dispose();
    this._events.dispose();
    Signal.clearData(this);
  }

  /** Reconnect the events socket now (e.g. from the Refresh button). */
  reconnectNow(): void {
    if (this._isDisposed) {
      return;
    }
    if (this._eventsState === 'open' || this._eventsState === 'connecting') {
      return;
    }
    this._clearReconnect();
    this._openEvents();
  }

  /** Current reconnect delay (for tests and the UI). */
  get nextBackoff(): number {
    return this._events.nextDelay;
  }

  private _openEvents(): void {
    if (this._isDisposed) {
      return;
    }
    if (this._events.isRunning) {
      this._events.retryNow();
    } else {
      this._events.start();
    }
  }

  private _onEventsState(
    _: ReconnectingSocket,
    change: ReconnectingSocket.IStateChange
  ): void {
    this._setEventsState(EVENTS_STATE[change.state]);
    if (change.state === 'waiting') {
      this._startFallbackPoll();
      this._jobs.schedulePoll();
    }
  }

  private _onEventsOpened(
    _: ReconnectingSocket,
    opened: ReconnectingSocket.IOpened
  ): void {
    this._stopFallbackPoll();
    if (opened.reconnected || this._server.kind !== 'ok') {
      // Jupyter may have restarted with another version.
      void this.handshake();
    }
  }

  private _onEventsMessage(_: ReconnectingSocket, data: any): void {
    if (typeof data !== 'string') {
      return;
    }
    let msg: EventMessage;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    this.handleMessage(msg);
  }

  private _clearReconnect(): void {
    if (this._reconnectTimer !== null) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
  }

  private _startFallbackPoll(): void {
    if (this._fallbackTimer !== null || this._fallbackPollInterval <= 0) {
      return;
    }
    this._fallbackTimer = setInterval(() => {
      if (this._eventsState === 'open') {
        this._stopFallbackPoll();
        return;
      }
      this.refresh().catch(() => undefined);
    }, this._fallbackPollInterval);
  }

  private _stopFallbackPoll(): void {
    if (this._fallbackTimer !== null) {
      clearInterval(this._fallbackTimer);
      this._fallbackTimer = null;
    }
  }

  private _setServer(state: ServerState): void {
    const old = JSON.stringify(this._server);
    this._server = state;
    if (old !== JSON.stringify(state)) {
      this._serverChanged.emit(state);
    }
  }

  private _setEventsState(state: EventsState): void {
    if (this._eventsState !== state) {
      this._eventsState = state;
      this._eventsStateChanged.emit(state);
    }
  }

  private _replaceAll(devices: IDevice[]): void {
    const ids = new Set(devices.map(d => d.id));
    for (const id of [...this._devices.keys()]) {
      if (!ids.has(id)) {
        this._devices.delete(id);
        this._deviceRemoved.emit(id);
      }
    }
    const order = this._order.filter(id => ids.has(id));
    for (const device of devices) {
      if (!order.includes(device.id)) {
        order.push(device.id);
      }
      const old = this._devices.get(device.id);
      this._devices.set(device.id, this._keepPending(device));
      if (!old || !sameDevice(old, device)) {
        this._deviceChanged.emit(this._devices.get(device.id)!);
      }
    }
    this._order = order;
    this._loaded = true;
    this._changed.emit();
  }

  private _upsert(device: IDevice): void {
    const old = this._devices.get(device.id);
    const next = this._keepPending(device);
    if (!this._order.includes(device.id)) {
      this._order.push(device.id);
    }
    this._devices.set(device.id, next);
    if (!old || !sameDevice(old, next)) {
      this._deviceChanged.emit(next);
      this._changed.emit();
    }
  }

  /**
   * While a connect request from this browser is in flight, a stale
   * "online" must not hide the "connecting" state.
   */
  private _keepPending(device: IDevice): IDevice {
    if (
      this._pending.has(device.id) &&
      (device.status === 'online' || device.status === 'offline')
    ) {
      return { ...device, status: 'connecting' };
    }
    return device;
  }

  private _remove(id: string): void {
    if (this._devices.delete(id)) {
      this._order = this._order.filter(x => x !== id);
      this._deviceRemoved.emit(id);
      this._changed.emit();
    }
  }

  private _api: IDevicesApi;
  private _eventsUrl: () => string;
  private _frontendVersion: string;
  private _maxBackoff: number;
  private _events: ReconnectingSocket;
  private _fallbackPollInterval: number;
  private _jobs: JobTracker;

  private _devices = new Map<string, IDevice>();
  private _order: string[] = [];
  private _pending = new Set<string>();
  private _server: ServerState = { kind: 'unknown' };
  private _eventsState: EventsState = 'idle';
  private _started = false;
  private _loaded = false;
  private _lastError: string | null = null;
  private _reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private _fallbackTimer: ReturnType<typeof setInterval> | null = null;
  private _isDisposed = false;

  private _changed = new Signal<this, void>(this);
  private _deviceChanged = new Signal<this, IDevice>(this);
  private _deviceRemoved = new Signal<this, string>(this);
  private _jobChanged = new Signal<this, IJob>(this);
  private _serverChanged = new Signal<this, ServerState>(this);
  private _eventsStateChanged = new Signal<this, EventsState>(this);
}

function sameDevice(a: IDevice, b: IDevice): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// The formatting helpers moved to format.ts; widgets may still import them from here.
export { Format } from './format';
