/**
 * "Add device" dialog body: host, port (default 18861), name, token,
 * validated inline.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { AddDeviceTabs, validateSsh } from './sshdialog';

export const DEFAULT_AGENT_PORT = 18861;

export interface IAddDeviceValue {
  host: string;
  port: number;
  name: string;
  token: string;
  connect: boolean;
  /** SSH tab (sshdialog.ts): "user@host[:port]" and a key path on the server. */
  ssh?: string;
  key?: string;
}

export interface IAddDeviceErrors {
  host?: string;
  port?: string;
  name?: string;
}

const HOST_RE =
  /^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+|[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?)$/;

/** Validate the form's raw strings. */
export function validateAddDevice(raw: {
  host: string;
  port: string;
  name: string;
}): IAddDeviceErrors {
  const errors: IAddDeviceErrors = {};
  const host = raw.host.trim();
  if (!host) {
    errors.host = 'Enter the board’s IP address or host name.';
  } else if (/\s/.test(host) || /[/?#@]/.test(host)) {
    errors.host =
      'Only the address, without spaces, scheme or path (e.g. 192.168.1.42).';
  } else if (!HOST_RE.test(host)) {
    errors.host = 'This is not a valid IP address or host name.';
  } else if (
    /^\d+(\.\d+){3}$/.test(host) &&
    host.split('.').some(p => parseInt(p, 10) > 255)
  ) {
    errors.host = 'Each part of an IPv4 address is 0–255.';
  }
  const port = raw.port.trim();
  if (!/^\d+$/.test(port)) {
    errors.port = 'The port is a number (the agent listens on 18861).';
  } else {
    const n = parseInt(port, 10);
    if (n < 1 || n > 65535) {
      errors.port = 'The port is between 1 and 65535.';
    }
  }
  if (raw.name.length > 64) {
    errors.name = 'Keep the name under 64 characters.';
  }
  return errors;
}

/** Split "host:port" typed into the host field. */
export function splitHostPort(text: string): { host: string; port?: string } {
  const t = text.trim();
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(t);
  if (v6) {
    return { host: v6[1], port: v6[2] };
  }
  const m = /^([^:]+):(\d+)$/.exec(t);
  if (m) {
    return { host: m[1], port: m[2] };
  }
  return { host: t };
}

export class AddDeviceBody
  extends Widget
  implements Dialog.IBodyWidget<IAddDeviceValue>
{
  constructor(initial: Partial<IAddDeviceValue> = {}) {
    super();
    this.addClass('jp-RemoteDevice-addDialog');
    const field = (
      key: string,
      label: string,
      type: string,
      value: string,
      placeholder: string,
      help?: string
    ): HTMLInputElement => {
      const wrap = document.createElement('div');
      wrap.className = 'jp-RemoteDevice-field';
      const id = `jp-remote-device-add-${key}-${Private.nextId()}`;
      const l = document.createElement('label');
      l.htmlFor = id;
      l.textContent = label;
      const input = document.createElement('input');
      input.id = id;
      input.name = key;
      input.type = type;
      input.value = value;
      input.placeholder = placeholder;
      input.className = 'jp-mod-styled jp-RemoteDevice-input';
      input.autocomplete = 'off';
      input.spellcheck = false;
      const err = document.createElement('div');
      err.className = 'jp-RemoteDevice-fieldError';
      err.dataset.field = key;
      err.setAttribute('aria-live', 'polite');
      wrap.appendChild(l);
      wrap.appendChild(input);
      if (help) {
        const h = document.createElement('div');
        h.className = 'jp-RemoteDevice-fieldHelp';
        h.textContent = help;
        wrap.appendChild(h);
      }
      wrap.appendChild(err);
      this.node.appendChild(wrap);
      this._errors[key] = err;
      input.addEventListener('input', () => {
        this._touched.add(key);
        this.validate();
      });
      input.addEventListener('blur', () => {
        this._touched.add(key);
        this.validate();
      });
      return input;
    };
    this._host = field(
      'host',
      'Host',
      'text',
      initial.host ?? '',
      '192.168.1.42 or board.local'
    );
    this._port = field(
      'port',
      'Port',
      'text',
      String(initial.port ?? DEFAULT_AGENT_PORT),
      String(DEFAULT_AGENT_PORT)
    );
    this._port.inputMode = 'numeric';
    this._name = field(
      'name',
      'Name (optional)',
      'text',
      initial.name ?? '',
      'my-camera-board'
    );
    this._token = field(
      'token',
      'Token',
      'password',
      initial.token ?? '',
      'the --token given to the agent',
      'Printed by the agent when it starts (stored in ~/.config/jupyter-remote-device/token on the board).'
    );
    const connectWrap = document.createElement('label');
    connectWrap.className = 'jp-RemoteDevice-checkbox';
    this._connect = document.createElement('input');
    this._connect.type = 'checkbox';
    this._connect.name = 'connect';
    this._connect.checked = initial.connect ?? true;
    connectWrap.appendChild(this._connect);
    connectWrap.appendChild(document.createTextNode(' Connect now'));
    this.node.appendChild(connectWrap);
    this._host.addEventListener('change', () => {
      // Accept "host:port" in the host field.
      const split = splitHostPort(this._host.value);
      if (split.port) {
        this._host.value = split.host;
        this._port.value = split.port;
        this.validate();
      }
    });
    if (initial.host) {
      this._touched.add('host');
    }
  }

  /** Validate, show messages, enable/disable OK; returns true when valid. */
  validate(showAll = false): boolean {
    const split = splitHostPort(this._host.value);
    const errors = validateAddDevice({
      host: split.host,
      port: split.port ?? this._port.value,
      name: this._name.value
    }) as { [key: string]: string | undefined };
    let ok = true;
    for (const key of ['host', 'port', 'name']) {
      const msg = errors[key];
      if (msg) {
        ok = false;
      }
      const show = showAll || this._touched.has(key);
      const el = this._errors[key];
      el.textContent = show && msg ? msg : '';
      const input =
        key === 'host' ? this._host : key === 'port' ? this._port : this._name;
      input.classList.toggle('jp-mod-invalid', !!(show && msg));
      input.setAttribute('aria-invalid', String(!!(show && msg)));
    }
    const accept = this._acceptButton();
    if (accept) {
      accept.disabled = !ok;
    }
    return ok;
  }

  getValue(): IAddDeviceValue {
    const split = splitHostPort(this._host.value);
    return {
      host: split.host,
      port: parseInt((split.port ?? this._port.value).trim(), 10),
      name: this._name.value.trim(),
      token: this._token.value,
      connect: this._connect.checked
    };
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.validate();
    requestAnimationFrame(() =>
      (this._touched.has('host') ? this._token : this._host).focus()
    );
  }

  private _acceptButton(): HTMLButtonElement | null {
    const dialog = this.node.closest('.jp-Dialog-content');
    return (
      (dialog?.querySelector(
        '.jp-Dialog-button.jp-mod-accept'
      ) as HTMLButtonElement) ?? null
    );
  }

  private _host: HTMLInputElement;
  private _port: HTMLInputElement;
  private _name: HTMLInputElement;
  private _token: HTMLInputElement;
  private _connect: HTMLInputElement;
  private _errors: { [key: string]: HTMLElement } = {};
  private _touched = new Set<string>();
}

/**
 * Show the dialog until the user cancels or enters a valid address.
 */
export async function askForDevice(
  initial: Partial<IAddDeviceValue> = {},
  title = 'Add device'
): Promise<IAddDeviceValue | null> {
  let value: Partial<IAddDeviceValue> = initial;
  for (;;) {
    // A new board: "Address" and "SSH" tabs; a known one (Token…): address only.
    const body = initial.host
      ? new AddDeviceBody(value)
      : new AddDeviceTabs(new AddDeviceBody(value), value);
    const result = await showDialog({
      title,
      body,
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({ label: initial.host ? 'Save' : 'Add' })
      ],
      focusNodeSelector: initial.host
        ? 'input[name="token"]'
        : 'input[name="host"]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    const v = result.value;
    if (v.ssh !== undefined) {
      if (
        Object.keys(validateSsh({ ssh: v.ssh, key: v.key ?? '', name: v.name }))
          .length === 0
      ) {
        return v;
      }
      value = v;
      continue;
    }
    const errors = validateAddDevice({
      host: v.host,
      port: String(v.port),
      name: v.name
    });
    if (Object.keys(errors).length === 0) {
      return v;
    }
    // Enter pressed with invalid input: show it again with the messages.
    value = { ...v, port: Number.isFinite(v.port) ? v.port : undefined };
  }
}

namespace Private {
  let counter = 0;

  /** A number unique within this page, for element ids. */
  export function nextId(): number {
    return counter++;
  }
}
