/**
 * ReconnectingSocket: one WebSocket that re-opens itself with backoff until it is
 * stopped. The events socket of the model uses it, and so can the camera stream:
 * the URL is asked for again on every (re)open, so settings that live in the
 * query string take effect on the next open.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { defaultSocketFactory, ISocketLike, SocketFactory } from './api';

/**
 * `idle`: not started or stopped; `connecting`: a socket is opening;
 * `open`: it is open; `waiting`: it closed (or failed to open) and the next
 * attempt is scheduled.
 */
export type SocketState = 'idle' | 'connecting' | 'open' | 'waiting';

/** Delay before the n-th retry (n = 1, 2, ...): `initial`, doubling up to `max`. */
export function exponentialBackoff(
  initial: number,
  max: number
): (attempt: number) => number {
  return attempt =>
    Math.min(max, initial * Math.pow(2, Math.max(0, attempt - 1)));
}

export namespace ReconnectingSocket {
  export interface IOptions {
    /** The URL to open (asked for on every attempt). */
    url: () => string;
    /** WebSocket factory (tests pass a fake). */
    socketFactory?: SocketFactory;
    /** `arraybuffer` for binary streams. */
    binaryType?: 'arraybuffer' | 'blob';
    /** Milliseconds before the n-th retry; default 1 s doubling to 30 s. */
    retryDelay?: (attempt: number) => number;
  }

  export interface IStateChange {
    state: SocketState;
    /** Why it closed (the close reason, or the error that kept it from opening). */
    reason: string;
  }

  export interface IOpened {
    /** True when the socket had been open before (a reconnect). */
    reconnected: boolean;
  }
}

export class ReconnectingSocket implements IDisposable {
  constructor(options: ReconnectingSocket.IOptions) {
    this._url = options.url;
    this._factory = options.socketFactory ?? defaultSocketFactory;
    this._binaryType = options.binaryType;
    this._retryDelay = options.retryDelay ?? exponentialBackoff(1000, 30000);
  }

  get state(): SocketState {
    return this._state;
  }

  /** Failed attempts since the socket was last open. */
  get attempts(): number {
    return this._attempts;
  }

  /** The delay the next retry waits (ms). */
  get nextDelay(): number {
    return this._retryDelay(Math.max(1, this._attempts));
  }

  /** Whether `start()` was called and `stop()` was not since. */
  get isRunning(): boolean {
    return this._running;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get stateChanged(): ISignal<this, ReconnectingSocket.IStateChange> {
    return this._stateChanged;
  }

  get opened(): ISignal<this, ReconnectingSocket.IOpened> {
    return this._opened;
  }

  /** Every message as it arrives (`ev.data`: a string, ArrayBuffer or Blob). */
  get messageReceived(): ISignal<this, any> {
    return this._messageReceived;
  }

  /** Open the socket and keep it open (retrying with backoff) until `stop()`. */
  start(): void {
    if (this._isDisposed || this._running) {
      return;
    }
    this._running = true;
    this._open();
  }

  /** Close the socket; no more retries. */
  stop(code = 1000, reason = 'closed by the page'): void {
    this._running = false;
    this._clearTimer();
    this._closeSocket(code, reason);
    this._attempts = 0;
    this._setState('idle', reason);
  }

  /** Try again now, skipping the backoff (e.g. the user pressed Refresh). */
  retryNow(): void {
    if (!this._running || this._socket) {
      return;
    }
    this._clearTimer();
    this._attempts = 0;
    this._open();
  }

  /** Close the current socket and open a new one at once (e.g. a new URL). */
  reopen(): void {
    if (!this._running) {
      return;
    }
    this._clearTimer();
    this._closeSocket(1000, 'reopening');
    this._attempts = 0;
    this._open();
  }

  /** Send on the open socket; false when it is not open. */
  send(data: string | ArrayBuffer | Blob): boolean {
    const socket = this._socket;
    if (!socket || this._state !== 'open' || socket.readyState !== 1) {
      return false;
    }
    try {
      socket.send(data);
      return true;
    } catch {
      return false;
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this.stop();
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private _open(): void {
    if (!this._running || this._isDisposed) {
      return;
    }
    this._setState('connecting', '');
    let socket: ISocketLike;
    try {
      socket = this._factory(this._url());
    } catch (error) {
      this._scheduleRetry((error as Error)?.message ?? String(error));
      return;
    }
    if (this._binaryType) {
      socket.binaryType = this._binaryType;
    }
    this._socket = socket;
    socket.onopen = () => {
      if (this._socket !== socket) {
        return;
      }
      const reconnected = this._everOpened;
      this._everOpened = true;
      this._attempts = 0;
      this._setState('open', '');
      this._opened.emit({ reconnected });
    };
    socket.onmessage = (ev: { data: any }) => {
      if (this._socket === socket) {
        this._messageReceived.emit(ev.data);
      }
    };
    socket.onerror = () => {
      // onclose follows.
    };
    socket.onclose = (ev: { code?: number; reason?: string }) => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      this._scheduleRetry(ev?.reason ?? '');
    };
  }

  private _scheduleRetry(reason: string): void {
    if (!this._running || this._isDisposed) {
      return;
    }
    this._attempts += 1;
    this._setState('waiting', reason);
    this._clearTimer();
    this._timer = setTimeout(() => {
      this._timer = null;
      this._open();
    }, this._retryDelay(this._attempts));
  }

  private _closeSocket(code: number, reason: string): void {
    const socket = this._socket;
    this._socket = null;
    if (!socket) {
      return;
    }
    socket.onopen = null;
    socket.onmessage = null;
    socket.onerror = null;
    socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _setState(state: SocketState, reason: string): void {
    if (this._state !== state) {
      this._state = state;
      this._stateChanged.emit({ state, reason });
    }
  }

  private _url: () => string;
  private _factory: SocketFactory;
  private _binaryType: 'arraybuffer' | 'blob' | undefined;
  private _retryDelay: (attempt: number) => number;
  private _socket: ISocketLike | null = null;
  private _state: SocketState = 'idle';
  private _attempts = 0;
  private _everOpened = false;
  private _running = false;
  private _isDisposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _stateChanged = new Signal<this, ReconnectingSocket.IStateChange>(
    this
  );
  private _opened = new Signal<this, ReconnectingSocket.IOpened>(this);
  private _messageReceived = new Signal<this, any>(this);
}
