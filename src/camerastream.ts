/**
 * CameraStream: one camera WebSocket without any DOM (usable by the viewer tab, a
 * notebook cell output, a grid of boards or a vision tool).
 *
 * It opens `devices/{id}/camera` with `ack=1` (and `adaptive=1` unless told not
 * to), parses frames, and acknowledges each frame once its consumer calls
 * `done(frame)` (after drawing it, or giving up on it): the server keeps at most
 * `window` frames unacknowledged, so frames never pile up on a slow link.  Acks are
 * cumulative and carry how long the frame was held here (`hold_ms`), so the server
 * measures the link, not our decoder.  It keeps the socket open (the shared
 * ReconnectingSocket of ./socket.ts: re-opened with backoff) while
 * `running`, and reports the server's status (fps delivered, link rate, RTT,
 * capture-to-ack latency, the quality and size in use).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { SocketFactory, wsUrl } from './api';
import { IFrame, parseFrame } from './frame';
import { ReconnectingSocket, SocketState } from './socket';

export type { SocketState } from './socket';

export interface IStreamSettings {
  width: number;
  height: number;
  quality: number;
  fps: number;
}

/** The server's `{"type": "status", ...}` message (fields may be missing on old servers). */
export interface IStreamStatus {
  type: 'status';
  state?: string;
  message?: string;
  reason?: string;
  error?: string;
  fps?: number;
  source_fps?: number;
  width?: number;
  height?: number;
  quality?: number;
  link_kbps?: number | null;
  rtt_ms?: number | null;
  latency_ms?: number | null;
  adaptive?: boolean;
  requested?: { width: number; height: number; quality: number };
  window?: number;
  unacked?: number;
  [key: string]: any;
}

/** A frame as received, with when it arrived (performance.now()). */
export interface IStreamFrame extends IFrame {
  receivedAt: number;
  bytes: number;
}

export namespace CameraStream {
  export interface IOptions {
    deviceId: string;
    settings: IStreamSettings;
    socketFactory?: SocketFactory;
    /** Acknowledge frames (default true). */
    ack?: boolean;
    /** Let the server lower quality, then size, to fit the link (default true). */
    adaptive?: boolean;
    /** Frames unacknowledged at most (the server's default is 2). */
    window?: number;
    /** Backoff (ms) before the n-th retry; default 500 ms doubling to 10 s. */
    retryDelay?: (attempt: number) => number;
    /** Clock (ms), for tests. */
    now?: () => number;
  }
}

export class CameraStream {
  constructor(options: CameraStream.IOptions) {
    this.deviceId = options.deviceId;
    this._settings = { ...options.settings };
    this._ack = options.ack ?? true;
    this._adaptive = options.adaptive ?? true;
    this._window = options.window;
    this._now = options.now ?? (() => performance.now());
    this._socket = new ReconnectingSocket({
      url: () => this._url(),
      socketFactory: options.socketFactory,
      binaryType: 'arraybuffer',
      retryDelay:
        options.retryDelay ??
        (n => Math.min(10000, 500 * Math.pow(2, Math.min(n, 5))))
    });
    this._socket.stateChanged.connect((_, change) => {
      if (change.state === 'connecting') {
        // a new socket: acks and counts start over
        this._opens += 1;
        this._lastAcked = null;
        this._recent = [];
        this._bytes = 0;
        this._frames = 0;
      }
      const reason =
        change.state === 'waiting'
          ? change.reason || this._status?.message || ''
          : change.reason;
      this._stateChanged.emit({ state: change.state, reason });
    }, this);
    this._socket.messageReceived.connect((_, data) => this._onMessage(data));
  }

  readonly deviceId: string;

  get settings(): IStreamSettings {
    return { ...this._settings };
  }

  get adaptive(): boolean {
    return this._adaptive;
  }

  get ack(): boolean {
    return this._ack;
  }

  get socketState(): SocketState {
    return this._socket.state;
  }

  get running(): boolean {
    return this._socket.isRunning;
  }

  /** The last status message of the server. */
  get lastStatus(): IStreamStatus | null {
    return this._status;
  }

  /** The highest seq acknowledged on the current socket (null: none yet). */
  get lastAcked(): number | null {
    return this._lastAcked;
  }

  /** Bytes and frames received on the current socket. */
  get received(): { bytes: number; frames: number } {
    return { bytes: this._bytes, frames: this._frames };
  }

  get frameReceived(): ISignal<this, IStreamFrame> {
    return this._frameReceived;
  }

  get statusChanged(): ISignal<this, IStreamStatus> {
    return this._statusChanged;
  }

  /** The socket's state; with 'waiting', the reason it closed. */
  get stateChanged(): ISignal<this, { state: SocketState; reason: string }> {
    return this._stateChanged;
  }

  /** Open the socket (and keep it open, retrying with backoff) until `stop()`. */
  start(): void {
    this._socket.start();
  }

  /** Close the socket; no retries. */
  stop(): void {
    this._socket.stop(1000, 'viewer stopped');
  }

  /** Open again now (e.g. the board came back), skipping the backoff. */
  retryNow(): void {
    this._socket.retryNow();
  }

  /** Change settings; sent on the open socket (no reconnect). Returns false when nothing changed. */
  updateSettings(
    partial: Partial<IStreamSettings> & { adaptive?: boolean }
  ): boolean {
    const { adaptive, ...rest } = partial;
    const next = { ...this._settings, ...rest };
    const adaptiveChanged =
      adaptive !== undefined && adaptive !== this._adaptive;
    if (
      JSON.stringify(next) === JSON.stringify(this._settings) &&
      !adaptiveChanged
    ) {
      return false;
    }
    this._settings = next;
    if (adaptive !== undefined) {
      this._adaptive = adaptive;
    }
    const msg: { [k: string]: any } = { type: 'settings', ...next };
    if (adaptiveChanged) {
      msg.adaptive = this._adaptive;
    }
    this._send(msg);
    return true;
  }

  /** Set the window (frames unacknowledged at most). */
  setWindow(window: number): void {
    this._window = window;
    this._send({ type: 'settings', window });
  }

  /**
   * The consumer is done with `frame` (drawn, or dropped for a newer one, or
   * undecodable): acknowledge it.  Acks are cumulative, so acking a newer frame
   * also acknowledges every older one; an older or repeated one is not sent.
   */
  done(frame: IStreamFrame): void {
    const seq = frame.header?.seq;
    if (!this._ack || typeof seq !== 'number') {
      return;
    }
    if (this._lastAcked !== null && seq <= this._lastAcked) {
      return;
    }
    if (frame !== this._byseq(seq)) {
      return; // from an earlier socket
    }
    this._lastAcked = seq;
    const hold = Math.max(0, Math.round(this._now() - frame.receivedAt));
    this._send({ type: 'ack', seq, hold_ms: hold });
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._socket.dispose();
    Signal.clearData(this);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  // -- internals --------------------------------------------------------------
  private _url(): string {
    const s = this._settings;
    const query: { [k: string]: string | number } = {
      width: s.width,
      height: s.height,
      quality: s.quality,
      fps: s.fps
    };
    if (this._ack) {
      query.ack = 1;
    }
    if (this._adaptive) {
      query.adaptive = 1;
    }
    if (this._window) {
      query.window = this._window;
    }
    return wsUrl(`devices/${encodeURIComponent(this.deviceId)}/camera`, query);
  }

  private _send(msg: any): void {
    this._socket.send(JSON.stringify(msg));
  }

  private _onMessage(data: any): void {
    if (typeof data === 'string') {
      this._onText(data);
    } else if (data instanceof ArrayBuffer) {
      this._onBinary(data);
    } else if (data && typeof data.arrayBuffer === 'function') {
      const socket = this._socket;
      const opened = this._opens;
      void (data as Blob).arrayBuffer().then(buf => {
        if (socket.state === 'open' && opened === this._opens) {
          this._onBinary(buf);
        }
      });
    }
  }

  private _onText(text: string): void {
    let msg: any;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') {
      return;
    }
    if (msg.type === 'status' || msg.type === 'error') {
      this._status = { ...msg, type: 'status' };
      this._statusChanged.emit(this._status!);
    }
  }

  private _onBinary(buffer: ArrayBuffer): void {
    let parsed: IFrame;
    try {
      parsed = parseFrame(buffer);
    } catch (error) {
      console.warn('remote-device: bad camera frame', error);
      return;
    }
    const frame: IStreamFrame = {
      ...parsed,
      receivedAt: this._now(),
      bytes: buffer.byteLength
    };
    this._bytes += buffer.byteLength;
    this._frames += 1;
    this._recent.push(frame);
    if (this._recent.length > 64) {
      this._recent.splice(0, this._recent.length - 64);
    }
    this._frameReceived.emit(frame);
  }

  private _byseq(seq: number): IStreamFrame | undefined {
    for (let i = this._recent.length - 1; i >= 0; i--) {
      if (this._recent[i].header.seq === seq) {
        const f = this._recent[i];
        this._recent.splice(0, i + 1);
        return f;
      }
    }
    return undefined;
  }

  private _settings: IStreamSettings;
  private _socket: ReconnectingSocket;
  private _ack: boolean;
  private _adaptive: boolean;
  private _window: number | undefined;
  private _now: () => number;
  private _disposed = false;
  private _opens = 0;
  private _status: IStreamStatus | null = null;
  private _lastAcked: number | null = null;
  private _recent: IStreamFrame[] = [];
  private _bytes = 0;
  private _frames = 0;
  private _frameReceived = new Signal<this, IStreamFrame>(this);
  private _statusChanged = new Signal<this, IStreamStatus>(this);
  private _stateChanged = new Signal<
    this,
    { state: SocketState; reason: string }
  >(this);
}
