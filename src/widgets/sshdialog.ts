/**
 * "Add device…" with two tabs: "Address" (the agent's host:port, adddialog.ts)
 * and "SSH" (user@host[:port], an optional key file on the Jupyter server, a
 * name): the server logs in, deploys/starts the agent and tunnels to it.
 */
import { Dialog } from '@jupyterlab/apputils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import type { IAddDeviceValue } from './adddialog';

/** Same grammar as the server's ssh.TARGET_RE. */
const TARGET_RE =
  /^(?:([A-Za-z0-9._][A-Za-z0-9._-]{0,63})@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]{1,253})(?::(\d{1,5}))?$/;

export interface ISshErrors {
  ssh?: string;
  key?: string;
  name?: string;
}

/** Validate the SSH form's raw strings. */
export function validateSsh(raw: {
  ssh: string;
  key: string;
  name: string;
}): ISshErrors {
  const errors: ISshErrors = {};
  const target = raw.ssh.trim();
  if (!target) {
    errors.ssh = 'Enter user@host (and :port when SSH is not on 22).';
  } else if (
    /\s/.test(target) ||
    /^[a-z]+:\/\//i.test(target) ||
    target.includes('/')
  ) {
    errors.ssh =
      'Only user@host[:port], without spaces, scheme or path (e.g. pi@192.168.1.42).';
  } else {
    const m = TARGET_RE.exec(target);
    if (!m) {
      errors.ssh =
        'This is not user@host[:port] (e.g. pi@raspberrypi.local or root@10.0.0.7:2222).';
    } else if (
      m[3] !== undefined &&
      (parseInt(m[3], 10) < 1 || parseInt(m[3], 10) > 65535)
    ) {
      errors.ssh = 'The SSH port is between 1 and 65535.';
    } else if (
      /^\d+(\.\d+){3}$/.test(m[2]) &&
      m[2].split('.').some(p => parseInt(p, 10) > 255)
    ) {
      errors.ssh = 'Each part of an IPv4 address is 0–255.';
    }
  }
  const key = raw.key.trim();
  if (key && !/^(\/|~)/.test(key)) {
    errors.key =
      'The key is a file path on the Jupyter server, e.g. ~/.ssh/id_ed25519.';
  } else if (/[\n\r\0]/.test(raw.key) || key.length > 4096) {
    errors.key = 'This is not a file path.';
  }
  if (raw.name.length > 64) {
    errors.name = 'Keep the name under 64 characters.';
  }
  return errors;
}

/** The POST devices body of an SSH board. */
export function sshRequest(value: IAddDeviceValue): {
  ssh: string;
  key?: string;
  name?: string;
} {
  const body: { ssh: string; key?: string; name?: string } = {
    ssh: (value.ssh ?? '').trim()
  };
  if (value.key && value.key.trim()) {
    body.key = value.key.trim();
  }
  if (value.name && value.name.trim()) {
    body.name = value.name.trim();
  }
  return body;
}

let counter = 0;

/** The SSH tab's form. */
export class SshDeviceForm extends Widget {
  constructor(initial: Partial<IAddDeviceValue> = {}) {
    super();
    this.addClass('jp-RemoteDevice-sshForm');
    const field = (
      key: string,
      label: string,
      value: string,
      placeholder: string,
      help?: string
    ) => {
      const wrap = document.createElement('div');
      wrap.className = 'jp-RemoteDevice-field';
      const id = `jp-remote-device-ssh-${key}-${counter++}`;
      const l = document.createElement('label');
      l.htmlFor = id;
      l.textContent = label;
      const input = document.createElement('input');
      input.id = id;
      input.name = `ssh-${key}`;
      input.type = 'text';
      input.value = value;
      input.placeholder = placeholder;
      input.className = 'jp-mod-styled jp-RemoteDevice-input';
      input.autocomplete = 'off';
      input.spellcheck = false;
      const err = document.createElement('div');
      err.className = 'jp-RemoteDevice-fieldError';
      err.dataset.field = `ssh-${key}`;
      err.setAttribute('aria-live', 'polite');
      wrap.append(l, input);
      if (help) {
        const hp = document.createElement('div');
        hp.className = 'jp-RemoteDevice-fieldHelp';
        hp.textContent = help;
        wrap.appendChild(hp);
      }
      wrap.appendChild(err);
      this.node.appendChild(wrap);
      this._errors[key] = err;
      this._inputs[key] = input;
      const touch = () => {
        this._touched.add(key);
        this.validate();
      };
      input.addEventListener('input', touch);
      input.addEventListener('blur', touch);
      return input;
    };
    field(
      'ssh',
      'SSH login',
      initial.ssh ?? '',
      'pi@192.168.1.42 or root@board.local:2222',
      'user@host[:port]; the Jupyter server logs in, starts the agent on the board if needed and tunnels to it.'
    );
    field(
      'key',
      'Private key (optional)',
      initial.key ?? '',
      '~/.ssh/id_ed25519',
      'A path on the Jupyter server. Empty: the server’s SSH agent and default keys.'
    );
    field(
      'name',
      'Name (optional)',
      initial.ssh !== undefined ? (initial.name ?? '') : '',
      'my-camera-board'
    );
    const connectWrap = document.createElement('label');
    connectWrap.className = 'jp-RemoteDevice-checkbox';
    this._connect = document.createElement('input');
    this._connect.type = 'checkbox';
    this._connect.name = 'ssh-connect';
    this._connect.checked = initial.connect ?? true;
    connectWrap.append(
      this._connect,
      document.createTextNode(' Connect now (logs in, starts the agent)')
    );
    this.node.appendChild(connectWrap);
    if (initial.ssh) {
      this._touched.add('ssh');
    }
  }

  /** Show the messages; true when valid. */
  validate(showAll = false): boolean {
    const errors = validateSsh({
      ssh: this._inputs.ssh.value,
      key: this._inputs.key.value,
      name: this._inputs.name.value
    }) as { [key: string]: string | undefined };
    let ok = true;
    for (const key of ['ssh', 'key', 'name']) {
      const msg = errors[key];
      ok = ok && !msg;
      const show = !!msg && (showAll || this._touched.has(key));
      this._errors[key].textContent = show ? msg! : '';
      this._inputs[key].classList.toggle('jp-mod-invalid', show);
      this._inputs[key].setAttribute('aria-invalid', String(show));
    }
    return ok;
  }

  value(): { ssh: string; key: string; name: string; connect: boolean } {
    return {
      connect: this._connect.checked,
      ssh: this._inputs.ssh.value.trim(),
      key: this._inputs.key.value.trim(),
      name: this._inputs.name.value.trim()
    };
  }

  focus(): void {
    this._inputs.ssh.focus();
  }

  private _connect: HTMLInputElement;
  private _inputs: { [key: string]: HTMLInputElement } = {};
  private _errors: { [key: string]: HTMLElement } = {};
  private _touched = new Set<string>();
}

/**
 * The dialog body with an "Address" and an "SSH" tab. `address` is the
 * existing AddDeviceBody (passed in to keep the modules independent).
 */
export class AddDeviceTabs
  extends Widget
  implements Dialog.IBodyWidget<IAddDeviceValue>
{
  constructor(
    private _address: Widget &
      Dialog.IBodyWidget<IAddDeviceValue> & {
        validate(showAll?: boolean): boolean;
      },
    initial: Partial<IAddDeviceValue> = {}
  ) {
    super();
    this.addClass('jp-RemoteDevice-addTabs');
    this._ssh = new SshDeviceForm(initial);
    const bar = document.createElement('div');
    bar.className = 'jp-RemoteDevice-tabBar';
    bar.setAttribute('role', 'tablist');
    const tab = (mode: 'address' | 'ssh', label: string) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `jp-RemoteDevice-tab jp-RemoteDevice-tab-${mode}`;
      b.setAttribute('role', 'tab');
      b.dataset.mode = mode;
      b.textContent = label;
      b.addEventListener('click', event => {
        event.preventDefault();
        this.mode = mode;
      });
      bar.appendChild(b);
      return b;
    };
    this._tabs = { address: tab('address', 'Address'), ssh: tab('ssh', 'SSH') };
    this.node.appendChild(bar);
    this.node.appendChild(this._address.node);
    this.node.appendChild(this._ssh.node);
    this._ssh.node.addEventListener('input', () => this._updateAccept());
    this._address.node.addEventListener('input', () => this._updateAccept());
    this._mode = initial.ssh !== undefined ? 'ssh' : 'address';
    this._applyMode();
  }

  get mode(): 'address' | 'ssh' {
    return this._mode;
  }

  set mode(mode: 'address' | 'ssh') {
    if (mode === this._mode) {
      return;
    }
    this._mode = mode;
    this._applyMode();
    requestAnimationFrame(() => {
      if (this._mode === 'ssh') {
        this._ssh.focus();
      } else {
        (
          this._address.node.querySelector(
            'input[name="host"]'
          ) as HTMLInputElement | null
        )?.focus();
      }
    });
  }

  /** Validate the shown tab; true when valid. */
  validate(showAll = false): boolean {
    return this._mode === 'ssh'
      ? this._ssh.validate(showAll)
      : this._address.validate(showAll);
  }

  getValue(): IAddDeviceValue {
    const base = this._address.getValue!();
    if (this._mode === 'address') {
      return base;
    }
    const v = this._ssh.value();
    return {
      ...base,
      ssh: v.ssh,
      key: v.key,
      name: v.name,
      token: '',
      connect: v.connect
    };
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    // The inner body's own onAfterAttach does not run (it is not a child
    // widget): validate both now.
    this._address.validate();
    this._ssh.validate();
    this._updateAccept();
    requestAnimationFrame(() => {
      if (this._mode === 'ssh') {
        this._ssh.focus();
      }
    });
  }

  private _applyMode(): void {
    const ssh = this._mode === 'ssh';
    // (style, not the hidden attribute: the forms' CSS sets display)
    this._address.node.style.display = ssh ? 'none' : '';
    this._ssh.node.style.display = ssh ? '' : 'none';
    this.node.dataset.mode = this._mode;
    for (const [mode, b] of Object.entries(this._tabs)) {
      const on = mode === this._mode;
      b.classList.toggle('jp-mod-active', on);
      b.setAttribute('aria-selected', String(on));
    }
    this._updateAccept();
  }

  private _updateAccept(): void {
    const ok =
      this._mode === 'ssh' ? this._ssh.validate() : this._address.validate();
    const dialog = this.node.closest('.jp-Dialog-content');
    const accept = dialog?.querySelector(
      '.jp-Dialog-button.jp-mod-accept'
    ) as HTMLButtonElement | null;
    if (accept) {
      accept.disabled = !ok;
    }
  }

  private _ssh: SshDeviceForm;
  private _mode: 'address' | 'ssh';
  private _tabs: { [mode: string]: HTMLButtonElement };
}
