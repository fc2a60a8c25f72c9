/**
 * A terminal on the board, in a main-area tab that is JupyterLab's own terminal widget
 * (`@jupyterlab/terminal`: xterm.js, its theme, fonts and settings) driven by a
 * connection to `devices/{id}/terminal` (terminado's JSON messages) instead of a
 * Jupyter terminal. The shell is named: the tab keeps the name across page reloads and
 * the server keeps a shell whose socket dropped for a while, so a reload reattaches it.
 * Closing the tab ends the shell (`DELETE devices/{id}/terminals/{name}`).
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ServerConnection, Terminal as TerminalNS } from '@jupyterlab/services';
import { ITerminal, Terminal } from '@jupyterlab/terminal';
import { UUID } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  defaultSocketFactory,
  ISocketLike,
  requestAPI,
  serverSettings,
  SocketFactory,
  wsUrl
} from '../api';

const enc = encodeURIComponent;

export namespace BoardTerminalConnection {
  export interface IOptions {
    deviceId: string;
    deviceName: string;
    /** The shell's name (a new one when omitted). */
    name?: string;
    socketFactory?: SocketFactory;
  }
}

/** `Terminal.ITerminalConnection` over the board terminal socket. */
export class BoardTerminalConnection implements TerminalNS.ITerminalConnection {
  constructor(options: BoardTerminalConnection.IOptions) {
    this.deviceId = options.deviceId;
    this.deviceName = options.deviceName;
    this.name = options.name || UUID.uuid4().replace(/-/g, '').slice(0, 12);
    this.model = { name: this.name };
    this._factory = options.socketFactory ?? defaultSocketFactory;
    this._open(true);
  }

  readonly deviceId: string;
  readonly deviceName: string;
  readonly name: string;
  readonly model: TerminalNS.IModel;

  get serverSettings(): ServerConnection.ISettings {
    return serverSettings();
  }

  get messageReceived(): ISignal<this, TerminalNS.IMessage> {
    return this._messageReceived;
  }

  get connectionStatus(): TerminalNS.ConnectionStatus {
    return this._status;
  }

  get connectionStatusChanged(): ISignal<this, TerminalNS.ConnectionStatus> {
    return this._statusChanged;
  }

  get disposed(): ISignal<this, void> {
    return this._disposed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** True once the board said the shell ended (exit, or ended elsewhere). */
  get ended(): boolean {
    return this._ended;
  }

  /** Why the socket could not open or closed, when the server said (for the tab). */
  get lastError(): string {
    return this._lastError;
  }

  send(message: TerminalNS.IMessage): void {
    const data = JSON.stringify([message.type, ...(message.content ?? [])]);
    if (
      this._socket &&
      this._socket.readyState === 1 &&
      this._status === 'connected'
    ) {
      this._socket.send(data);
    } else if (message.type === 'set_size') {
      this._pendingSize = data; // only the latest size matters
    } else if (this._pending.length < 1000) {
      this._pending.push(data);
    }
  }

  async reconnect(): Promise<void> {
    if (this._isDisposed || this._ended) {
      return;
    }
    this._closeSocket();
    this._open(false);
  }

  /** End the shell on the board (the tab was closed), then dispose. */
  async shutdown(): Promise<void> {
    this._closeSocket();
    try {
      await requestAPI(
        `devices/${enc(this.deviceId)}/terminals/${enc(this.name)}`,
        { method: 'DELETE' }
      );
    } catch {
      // already gone (exited, or the session ended)
    }
    this.dispose();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._closeSocket();
    if (this._timer) {
      clearTimeout(this._timer);
    }
    this._disposed.emit();
    Signal.clearData(this);
  }

  private _open(first: boolean): void {
    this._setStatus('connecting');
    const query: { [k: string]: string } = { name: this.name };
    if (!first) {
      query['replay'] = '0'; // this tab has the output already
    }
    let socket: ISocketLike;
    try {
      socket = this._factory(
        wsUrl(`devices/${enc(this.deviceId)}/terminal`, query)
      );
    } catch (error) {
      this._lastError = String((error as Error)?.message ?? error);
      this._setStatus('disconnected');
      return;
    }
    this._socket = socket;
    socket.onmessage = (ev: any) => this._onMessage(socket, ev.data);
    socket.onclose = (ev: any) => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      if (ev?.reason && !this._lastError) {
        this._lastError = String(ev.reason);
      }
      this._setStatus('disconnected');
      // a dropped link (not an ended shell): try again while the server keeps the shell
      if (!this._ended && !this._isDisposed && this._retries < 10) {
        this._retries++;
        this._timer = setTimeout(() => this._open(false), 1000 * this._retries);
      }
    };
    socket.onerror = () => undefined;
  }

  private _onMessage(socket: ISocketLike, raw: any): void {
    if (this._socket !== socket || typeof raw !== 'string') {
      return;
    }
    let msg: any;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (!Array.isArray(msg) || typeof msg[0] !== 'string') {
      return;
    }
    const [type, ...content] = msg;
    if (type === 'setup') {
      this._retries = 0;
      this._lastError = '';
      this._setStatus('connected');
      if (this._pendingSize) {
        socket.send(this._pendingSize);
        this._pendingSize = '';
      }
      for (const data of this._pending.splice(0)) {
        socket.send(data);
      }
      return;
    }
    if (type === 'stdout' && typeof content[0] === 'string') {
      this._messageReceived.emit({ type: 'stdout', content: [content[0]] });
    } else if (type === 'disconnect') {
      this._ended = true;
      if (typeof content[0] === 'string') {
        this._lastError = content[0];
      }
      this._messageReceived.emit({
        type: 'disconnect',
        content: content as any
      });
    }
  }

  private _setStatus(status: TerminalNS.ConnectionStatus): void {
    if (status !== this._status) {
      this._status = status;
      this._statusChanged.emit(status);
    }
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      try {
        socket.close(1000, 'closed by the page');
      } catch {
        // closed already
      }
    }
  }

  private _factory: SocketFactory;
  private _socket: ISocketLike | null = null;
  private _status: TerminalNS.ConnectionStatus = 'connecting';
  private _pending: string[] = [];
  private _pendingSize = '';
  private _ended = false;
  private _lastError = '';
  private _retries = 0;
  private _timer: any = null;
  private _isDisposed = false;
  private _messageReceived = new Signal<this, TerminalNS.IMessage>(this);
  private _statusChanged = new Signal<this, TerminalNS.ConnectionStatus>(this);
  private _disposed = new Signal<this, void>(this);
}

/** The main-area tab: JupyterLab's terminal widget on a board shell. */
export class BoardTerminalPanel extends MainAreaWidget<Terminal> {
  constructor(
    connection: BoardTerminalConnection,
    options: Partial<ITerminal.IOptions> = {}
  ) {
    const content = new Terminal(connection, {
      ...options,
      closeOnExit: false,
      shutdownOnClose: false
    });
    super({ content });
    this.connection = connection;
    this.id = `jp-RemoteDevice-terminal-${connection.name}`;
    this.addClass('jp-RemoteDevice-terminalPanel');
    content.title.closable = true;
    content.title.caption = `A shell on ${connection.deviceName} (board terminal ${connection.name})`;
    const label = () => {
      const state = connection.ended
        ? ' (ended)'
        : connection.connectionStatus === 'connected'
          ? ''
          : ' (connecting…)';
      // the terminal widget names itself "Terminal NAME" once connected: after it, ours
      content.title.label = `${connection.deviceName}: terminal${state}`;
    };
    const later = () => setTimeout(label, 0);
    label();
    connection.connectionStatusChanged.connect(later);
    connection.messageReceived.connect((_, msg) => {
      if (msg.type === 'disconnect') {
        later();
      }
    });
    content.ready.then(later).catch(() => undefined);
  }

  readonly connection: BoardTerminalConnection;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    // the tab closes: the shell ends with it (a page reload keeps it: nothing is disposed then)
    void this.connection.shutdown();
    super.dispose();
  }
}
