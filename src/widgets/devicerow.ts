/**
 * One row of the Devices list: a board's status, address, error, system info and its actions
 * (Connect, Disconnect, Camera, Notebook, Push file…, Terminal, Board log, Install…, Token…,
 * Why?, Take over, Remove). DevicesList (sidebar.ts) keys and caches the rows.
 */
import { CommandRegistry } from '@lumino/commands';

import { IDevice } from '../api';
import { CommandIDs } from '../commands';
import { DevicesModel, Format } from '../model';
import { heldBy, RoomState } from '../room';
import { h } from './dom';

const SOURCE_LABELS: { [key: string]: string } = {
  config: 'configured',
  manual: 'added by hand',
  probe: 'found by port probe',
  mdns: 'found by mDNS',
  ssh: 'SSH'
};

const STATUS_LABELS: { [key: string]: string } = {
  offline: 'offline',
  online: 'online',
  connecting: 'connecting…',
  connected: 'connected',
  error: 'error'
};

/**
 * Builds the rows of the Devices list from the model (pending connects), the commands (captions,
 * enabled state, execution) and the room (selection).
 */
export class DeviceRowRenderer {
  constructor(
    private _model: DevicesModel,
    private _commands: CommandRegistry,
    private _room: RoomState
  ) {}

  private _boardOps(actions: HTMLElement, args: { [key: string]: any }): void {
    for (const [label, command, cls] of [
      ['Terminal', CommandIDs.openTerminal, 'terminal'],
      ['Board log', CommandIDs.openBoardLog, 'boardlog'],
      ['Install…', CommandIDs.installPackage, 'install']
    ]) {
      if (this._commands.hasCommand(command)) {
        actions.appendChild(
          this._button(label, command, args, `jp-RemoteDevice-action-${cls}`)
        );
      }
    }
  }

  private _button(
    label: string,
    command: string,
    args: { [key: string]: any },
    cls: string
  ): HTMLElement {
    const btn = h(
      'button',
      {
        class: `jp-Button jp-mod-small jp-mod-minimal jp-RemoteDevice-action ${cls}`,
        type: 'button',
        title: this._commands.caption(command, args) || label
      },
      label
    ) as HTMLButtonElement;
    btn.disabled = !this._commands.isEnabled(command, args);
    btn.addEventListener('click', event => {
      event.stopPropagation();
      void this._commands.execute(command, args);
    });
    return btn;
  }

  /** The row of one board: header, address, error, info (when connected), actions. */
  row(device: IDevice): HTMLElement {
    const pending = this._model.isPending(device.id);
    const status =
      pending && device.status !== 'connected' ? 'connecting' : device.status;
    const args = { id: device.id };
    const selected = this._room.isSelected(device.id);
    const holder = heldBy(device);
    const row = h('li', {
      class: `jp-RemoteDevice-row jp-mod-${status}${selected ? ' jp-mod-selected' : ''}`,
      'data-device-id': device.id,
      'data-device-name': device.name,
      'data-status': status,
      'aria-selected': selected ? 'true' : 'false',
      tabindex: '0'
    });
    // Click (or Enter/Space on the row) selects a board, Ctrl/Cmd-click adds it to the selection
    // (the camera grid shows the selected boards); a compact row shows its details while selected.
    const select = (event: MouseEvent | KeyboardEvent) =>
      this._room.toggleSelected(device.id, !(event.ctrlKey || event.metaKey));
    row.addEventListener('click', event => {
      if (!(event.target as HTMLElement).closest('button, a, input, select')) {
        select(event);
      }
    });
    row.addEventListener('keydown', event => {
      if (
        event.target === row &&
        (event.key === 'Enter' || event.key === ' ')
      ) {
        event.preventDefault();
        select(event);
      }
    });
    const dot = h('span', {
      class: `jp-RemoteDevice-dot jp-mod-${status}`,
      title: STATUS_LABELS[status] ?? status,
      'aria-label': STATUS_LABELS[status] ?? status
    });
    row.appendChild(
      h(
        'div',
        { class: 'jp-RemoteDevice-rowHeader' },
        dot,
        h(
          'span',
          { class: 'jp-RemoteDevice-name', title: device.name },
          device.name || device.host
        ),
        h(
          'span',
          {
            class: 'jp-RemoteDevice-statusText',
            'data-holder': holder ?? undefined,
            title: holder ? (device.error ?? undefined) : undefined
          },
          holder ? `in use by ${holder}` : (STATUS_LABELS[status] ?? status)
        )
      )
    );
    const kind = device.kind
      ? ` · ${device.kind === 'classic' ? 'rpyc classic' : 'agent'}`
      : '';
    row.appendChild(
      h(
        'div',
        { class: 'jp-RemoteDevice-address' },
        h(
          'span',
          { class: 'jp-RemoteDevice-hostport' },
          `${device.host}:${device.port}`
        ),
        h(
          'span',
          { class: 'jp-RemoteDevice-source' },
          ` · ${SOURCE_LABELS[device.source] ?? device.source}${kind}`
        )
      )
    );
    if (device.error && status !== 'connected') {
      row.appendChild(
        h(
          'div',
          { class: 'jp-RemoteDevice-error', title: device.error },
          device.error
        )
      );
    }
    if (device.status === 'connected' && device.info) {
      row.appendChild(this._info(device));
    }
    const actions = h('div', { class: 'jp-RemoteDevice-actions' });
    const disconnect = () =>
      this._button(
        'Disconnect',
        CommandIDs.disconnect,
        args,
        'jp-RemoteDevice-action-disconnect'
      );
    if (device.status === 'connected') {
      actions.appendChild(disconnect());
      actions.appendChild(
        this._button(
          'Camera',
          CommandIDs.openCamera,
          args,
          'jp-RemoteDevice-action-camera'
        )
      );
      actions.appendChild(
        this._button(
          'Notebook',
          CommandIDs.openNotebook,
          args,
          'jp-RemoteDevice-action-notebook'
        )
      );
      actions.appendChild(
        this._button(
          'Push file…',
          CommandIDs.pushFile,
          args,
          'jp-RemoteDevice-action-push'
        )
      );
      this._boardOps(actions, { ...args, name: device.name }); // terminal, board log, install (boardops.ts)
    } else {
      const btn = this._button(
        status === 'connecting' ? 'Connecting…' : 'Connect',
        CommandIDs.connect,
        args,
        'jp-RemoteDevice-action-connect'
      ) as HTMLButtonElement;
      if (pending) {
        btn.disabled = true;
      }
      actions.appendChild(btn);
      if (holder && !pending) {
        actions.appendChild(
          this._button(
            'Take over',
            CommandIDs.connect,
            { id: device.id, takeOver: true },
            'jp-RemoteDevice-action-takeover'
          )
        );
      }
      if (status === 'error' || status === 'online' || status === 'offline') {
        // Same host:port again: the server keeps the id and updates the token.
        actions.appendChild(
          this._button(
            'Token…',
            CommandIDs.addDevice,
            {
              host: device.host,
              port: device.port,
              name: device.name,
              title: `Token for ${device.name}`
            },
            'jp-RemoteDevice-action-token'
          )
        );
      }
      if (
        device.error &&
        !pending &&
        this._commands.hasCommand(CommandIDs.diagnose)
      ) {
        // the connection doctor: every step, what it found, what to check (widgets/diagnose.ts)
        actions.appendChild(
          this._button(
            'Why?',
            CommandIDs.diagnose,
            { ...args, name: device.name },
            'jp-RemoteDevice-action-why'
          )
        );
      }
      if (status === 'connecting' && !pending) {
        // The server is re-opening a lost session: allow giving up.
        actions.appendChild(disconnect());
      }
    }
    if (device.source === 'manual' || device.source === 'ssh') {
      actions.appendChild(
        this._button(
          'Remove',
          CommandIDs.removeDevice,
          args,
          'jp-RemoteDevice-action-remove'
        )
      );
    }
    row.appendChild(actions);
    return row;
  }

  private _info(device: IDevice): HTMLElement {
    const info = device.info!;
    const rows: [string, string | null, string][] = [
      ['Model', info.model ?? info.hostname, 'model'],
      [
        'Arch',
        [info.platform ? String(info.platform).split('-')[0] : null, info.arch]
          .filter(Boolean)
          .join(' ') || null,
        'arch'
      ],
      ['Python', info.python, 'python'],
      ['rpyc', info.rpyc_version ?? null, 'rpyc'],
      [
        'CPU',
        Format.percent(info.cpu_percent) !== null
          ? `${Format.percent(info.cpu_percent)}${info.cpu_count ? ` of ${info.cpu_count} cores` : ''}`
          : info.cpu_count
            ? `${info.cpu_count} cores`
            : null,
        'cpu'
      ],
      ['Memory', Format.memory(info.mem_total, info.mem_available), 'memory'],
      ['Temp', Format.temperature(info.temperature_c), 'temperature'],
      ['Uptime', Format.duration(info.uptime_s), 'uptime'],
      ['Agent', info.agent_version, 'agent']
    ];
    const dl = h('dl', { class: 'jp-RemoteDevice-info' });
    for (const [label, value, key] of rows) {
      if (value === null || value === undefined || value === '') {
        continue;
      }
      dl.appendChild(h('dt', {}, label));
      dl.appendChild(
        h(
          'dd',
          {
            'data-info': key,
            title: key === 'arch' ? String(info.platform ?? value) : undefined
          },
          String(value)
        )
      );
    }
    return dl;
  }
}
