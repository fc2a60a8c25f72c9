/**
 * The "Devices" sidebar: one row per board, live through the DevicesModel.
 */
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';
import {
  addIcon,
  refreshIcon,
  Toolbar,
  ToolbarButton
} from '@jupyterlab/ui-components';

import { IDevice } from '../api';
import { CommandIDs } from '../commands';
import { boardIcon } from '../icons';
import { DevicesModel, ServerState } from '../model';
import { compareDevices, COMPACT_ABOVE, RoomState, roomView } from '../room';
import { DeviceRowRenderer } from './devicerow';
import { h } from './dom';
import { ROOM_BAR_FROM, RoomBar, sectionHeader } from './roombar';

/**
 * The list part of the sidebar.
 */
export class DevicesList extends Widget {
  constructor(
    private _model: DevicesModel,
    private _commands: CommandRegistry,
    readonly room: RoomState = new RoomState()
  ) {
    super();
    this.addClass('jp-RemoteDevice-list');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Remote devices');
    _model.changed.connect(this._schedule, this);
    _model.serverChanged.connect(this._schedule, this);
    _model.eventsStateChanged.connect(this._schedule, this);
    room.changed.connect(this._schedule, this);
    this._rowRenderer = new DeviceRowRenderer(_model, _commands, room);
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    if (this._frame) {
      cancelAnimationFrame(this._frame);
    }
    this._model.changed.disconnect(this._schedule, this);
    this._model.serverChanged.disconnect(this._schedule, this);
    this._model.eventsStateChanged.disconnect(this._schedule, this);
    this.room.changed.disconnect(this._schedule, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._render();
  }

  private _schedule(): void {
    if (this._frame || this.isDisposed) {
      return;
    }
    if (typeof requestAnimationFrame === 'undefined') {
      this._render();
      return;
    }
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._render();
    });
  }

  /** Rebuild the DOM from the model (cheap: a handful of rows). */
  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const node = this.node;
    // Keep the scroll position and the focused action across renders.
    const scroll = node.scrollTop;
    const active = document.activeElement as HTMLElement | null;
    if (active && node.contains(active)) {
      const rowNode = active.closest(
        '.jp-RemoteDevice-row'
      ) as HTMLElement | null;
      const action = [...active.classList].find(c =>
        c.startsWith('jp-RemoteDevice-action-')
      );
      if (rowNode?.dataset.deviceId && action) {
        this._focus = { id: rowNode.dataset.deviceId, action };
      }
    }
    node.textContent = '';
    const banner = this._banner(this._model.server);
    if (banner) {
      node.appendChild(banner);
    }
    if (
      this._model.eventsState === 'closed' &&
      this._model.server.kind !== 'missing'
    ) {
      node.appendChild(
        h(
          'div',
          { class: 'jp-RemoteDevice-banner jp-mod-warning' },
          'Lost the live connection to the Jupyter server; reconnecting…'
        )
      );
    }
    const devices = this._model.devices;
    if (devices.length === 0) {
      if (this._model.server.kind !== 'missing') {
        node.appendChild(this._emptyState());
      }
    } else {
      this._renderRoom(node, devices);
    }
    node.scrollTop = scroll;
    // Give the focus back to the same action of the same board.
    if (this._focus) {
      const { id, action } = this._focus;
      this._focus = null;
      const target = node.querySelector(
        `.jp-RemoteDevice-row[data-device-id="${CSS.escape(id)}"] .${action}`
      ) as HTMLElement | null;
      target?.focus();
    }
  }

  /**
   * A room: groups (connected, online, offline), each sorted by name, filtered as typed;
   * above COMPACT_ABOVE boards one line each (a selected board shows its details).
   */
  private _renderRoom(
    node: HTMLElement,
    devices: ReadonlyArray<IDevice>
  ): void {
    this.room.prune(devices);
    const offline = devices.filter(d => d.status === 'offline').length;
    const view = roomView(
      devices,
      this.room.query,
      this.room.collapseOffline(offline)
    );
    this._compact = devices.length > COMPACT_ABOVE;
    node.classList.toggle('jp-mod-compact', this._compact);
    const seen = new Set<string>();
    if (devices.length < ROOM_BAR_FROM && !this.room.query) {
      // A desk, not a room: the boards in order, without group headers.
      const list = h('ul', { class: 'jp-RemoteDevice-rows' });
      for (const device of [...devices].sort(compareDevices)) {
        list.appendChild(this._keyedRow(device));
        seen.add(device.id);
      }
      node.appendChild(list);
      this._forgetRows(seen);
      return;
    }
    for (const section of view.sections) {
      const group = h('section', {
        class: 'jp-RemoteDevice-group',
        'data-group': section.group
      });
      group.appendChild(
        sectionHeader(section, () =>
          this.room.setCollapseOffline(!section.collapsed)
        )
      );
      const list = h('ul', {
        class: 'jp-RemoteDevice-rows',
        'aria-label': section.group
      });
      if (!section.collapsed) {
        for (const device of section.devices) {
          list.appendChild(this._keyedRow(device));
          seen.add(device.id);
        }
      }
      group.appendChild(list);
      node.appendChild(group);
    }
    if (view.shown === 0) {
      node.appendChild(
        h(
          'div',
          { class: 'jp-RemoteDevice-empty jp-RemoteDevice-noMatch' },
          `No board matches “${this.room.query}”.`
        )
      );
    }
    this._forgetRows(seen);
  }

  private _forgetRows(seen: Set<string>): void {
    for (const id of [...this._rows.keys()]) {
      if (!seen.has(id)) {
        this._rows.delete(id);
      }
    }
  }

  /** Reuse a row's DOM when nothing it shows changed. */
  private _keyedRow(device: IDevice): HTMLElement {
    const pending = this._model.isPending(device.id);
    const key = JSON.stringify([
      device,
      pending,
      this._commands.isEnabled(CommandIDs.removeDevice, { id: device.id }),
      this._compact,
      this.room.isSelected(device.id)
    ]);
    const cached = this._rows.get(device.id);
    if (cached && cached.key === key) {
      return cached.node;
    }
    const node = this._rowRenderer.row(device);
    this._rows.set(device.id, { key, node });
    return node;
  }

  private _banner(state: ServerState): HTMLElement | null {
    switch (state.kind) {
      case 'missing':
        return h(
          'div',
          {
            class: 'jp-RemoteDevice-banner jp-mod-error',
            'data-server': 'missing'
          },
          h('strong', {}, 'Server extension missing. '),
          state.message
        );
      case 'mismatch':
        return h(
          'div',
          {
            class: 'jp-RemoteDevice-banner jp-mod-warning',
            'data-server': 'mismatch'
          },
          h('strong', {}, 'Version mismatch. '),
          `The server extension is version ${state.version || '(unknown)'} ` +
            `but this JupyterLab extension is version ${state.frontend}. ` +
            'Reinstall jupyter-remote-device and restart Jupyter, then reload this page.'
        );
      case 'unreachable':
        return h(
          'div',
          {
            class: 'jp-RemoteDevice-banner jp-mod-error',
            'data-server': 'unreachable'
          },
          h('strong', {}, 'Cannot reach the server extension. '),
          state.message
        );
      default:
        return null;
    }
  }

  private _emptyState(): HTMLElement {
    const loading =
      !this._model.loaded && this._model.server.kind === 'unknown';
    if (loading) {
      return h(
        'div',
        { class: 'jp-RemoteDevice-empty' },
        'Looking for boards…'
      );
    }
    return h(
      'div',
      { class: 'jp-RemoteDevice-empty' },
      h('p', { class: 'jp-RemoteDevice-emptyTitle' }, 'No boards yet.'),
      h('p', {}, 'Start the agent on the board:'),
      h(
        'pre',
        {},
        'python -m jupyter_remote_device.agent --token SECRET\n# or\njupyter-remote-device-agent --token SECRET'
      ),
      h(
        'p',
        {},
        'It listens on port 18861. Then use ',
        h('strong', {}, 'Add device…'),
        ' above with the board’s address and that token.'
      ),
      h('p', {}, 'A board on Wi-Fi is not found? Check that:'),
      h(
        'ul',
        {},
        h(
          'li',
          {},
          'the board and this Jupyter server are on the same subnet (mDNS does not cross routers);'
        ),
        h(
          'li',
          {},
          'the access point has no client (AP) isolation, which blocks traffic between Wi-Fi clients;'
        ),
        h(
          'li',
          {},
          'no firewall on the board or in between blocks TCP port 18861 (or 18812 for MaixPy’s rpyc server);'
        ),
        h('li', {}, 'you can reach it by address: Add device… with its IP.')
      )
    );
  }

  private _rowRenderer: DeviceRowRenderer;
  private _frame = 0;
  private _compact = false;
  private _rows = new Map<string, { key: string; node: HTMLElement }>();
  private _focus: { id: string; action: string } | null = null;
}

/**
 * The sidebar panel: toolbar (Add device…, Refresh) and the list.
 */
export class DevicesSidebar extends Panel {
  constructor(options: {
    model: DevicesModel;
    commands: CommandRegistry;
    room?: RoomState;
  }) {
    super();
    this.id = 'jp-remote-device-sidebar';
    this.addClass('jp-RemoteDevice-sidebar');
    this.title.icon = boardIcon;
    this.title.caption = 'Devices';
    this.title.label = '';
    const header = new Widget();
    header.addClass('jp-RemoteDevice-header');
    header.node.appendChild(
      h('h2', { class: 'jp-RemoteDevice-title' }, 'Devices')
    );
    this.addWidget(header);
    const toolbar = new Toolbar();
    toolbar.addClass('jp-RemoteDevice-toolbar');
    toolbar.addItem(
      'add',
      new ToolbarButton({
        icon: addIcon,
        label: 'Add device…',
        tooltip: 'Add a board by its address',
        onClick: () => void options.commands.execute(CommandIDs.addDevice)
      })
    );
    toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh the list of boards',
        onClick: () => void options.commands.execute(CommandIDs.refresh)
      })
    );
    this.addWidget(toolbar);
    this.room = options.room ?? new RoomState();
    this.addWidget(
      new RoomBar({
        model: options.model,
        commands: options.commands,
        room: this.room
      })
    );
    this.list = new DevicesList(options.model, options.commands, this.room);
    this.addWidget(this.list);
  }

  readonly room: RoomState;

  readonly list: DevicesList;
}
