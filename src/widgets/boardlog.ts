/**
 * "Board log" tab: output no cell waits for (threads whose cell ended, subprocesses,
 * the agent's own messages), from the `devices/{id}/log` socket. The last 500 lines
 * come first; the view keeps at most MAX_LINES and follows the end unless scrolled up.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { SocketFactory, wsUrl } from '../api';
import { ReconnectingSocket } from '../socket';

const MAX_LINES = 5000;

export interface ILogLine {
  t: number | null;
  stream: string;
  text: string;
}

function time(t: number | null): string {
  if (typeof t !== 'number') {
    return '';
  }
  const d = new Date(t * 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export class BoardLogView extends Widget {
  constructor(options: {
    deviceId: string;
    deviceName: string;
    socketFactory?: SocketFactory;
  }) {
    super();
    this.deviceId = options.deviceId;
    this.deviceName = options.deviceName;
    this.addClass('jp-RemoteDevice-boardLog');
    this._status = document.createElement('div');
    this._status.className = 'jp-RemoteDevice-boardLog-status';
    this._lines = document.createElement('pre');
    this._lines.className = 'jp-RemoteDevice-boardLog-lines';
    this._lines.setAttribute('role', 'log');
    this._lines.setAttribute('aria-live', 'polite');
    this.node.appendChild(this._status);
    this.node.appendChild(this._lines);
    this._socket = new ReconnectingSocket({
      url: () => wsUrl(`devices/${encodeURIComponent(this.deviceId)}/log`),
      socketFactory: options.socketFactory
    });
    this._socket.stateChanged.connect((_, change) => {
      if (change.state === 'open') {
        this._status.textContent = `Output on ${this.deviceName} that no cell is waiting for, and the agent's messages.`;
      } else if (change.state === 'waiting') {
        this._status.textContent = `Not following the log: ${change.reason || 'the socket closed'}; retrying…`;
      }
    });
    this._socket.opened.connect(() => {
      this._clear(); // the board sends its last 500 lines again
    });
    this._socket.messageReceived.connect((_, data) => this._onMessage(data));
    this._socket.start();
  }

  readonly deviceId: string;
  readonly deviceName: string;

  /** The lines shown (for tests). */
  get lineCount(): number {
    return this._lines.childElementCount;
  }

  dispose(): void {
    this._socket.dispose();
    super.dispose();
  }

  private _clear(): void {
    this._lines.textContent = '';
  }

  private _onMessage(data: any): void {
    if (typeof data !== 'string') {
      return;
    }
    let msg: any;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg.text !== 'string') {
      return;
    }
    if (msg.error) {
      this._status.textContent = msg.text;
      return;
    }
    this.append({ t: msg.t, stream: String(msg.stream), text: msg.text });
  }

  append(line: ILogLine): void {
    const el = this._lines;
    const follow = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
    const row = document.createElement('div');
    row.className = `jp-RemoteDevice-boardLog-line jp-mod-${line.stream.replace(/[^a-z]/g, '')}`;
    const stamp = document.createElement('span');
    stamp.className = 'jp-RemoteDevice-boardLog-time';
    stamp.textContent = time(line.t);
    const text = document.createElement('span');
    text.className = 'jp-RemoteDevice-boardLog-text';
    text.textContent = line.text;
    row.title = line.stream;
    row.appendChild(stamp);
    row.appendChild(text);
    el.appendChild(row);
    while (el.childElementCount > MAX_LINES) {
      el.firstElementChild?.remove();
    }
    if (follow) {
      el.scrollTop = el.scrollHeight;
    }
  }

  private _socket: ReconnectingSocket;
  private _status: HTMLElement;
  private _lines: HTMLElement;
}

export class BoardLogPanel extends MainAreaWidget<BoardLogView> {
  constructor(options: { deviceId: string; deviceName: string }) {
    super({ content: new BoardLogView(options) });
    this.id = `jp-RemoteDevice-boardLog-${options.deviceId}`;
    this.title.label = `${options.deviceName}: board log`;
    this.title.caption = `Background output and agent messages of ${options.deviceName}`;
    this.title.closable = true;
  }
}
