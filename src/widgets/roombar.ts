/**
 * The Devices sidebar's room bar: filter-as-you-type, the count of boards shown, "Camera grid"
 * and "Forget offline boards"; and the group headers of the list (connected / online / offline,
 * the offline one a toggle).
 */
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from '../commands';
import { DevicesModel } from '../model';
import {
  forgettable,
  IRoomSection,
  RoomGroup,
  RoomState,
  roomView
} from '../room';
import { h } from './dom';

const GROUP_LABELS: { [K in RoomGroup]: string } = {
  connected: 'Connected',
  online: 'Online',
  offline: 'Offline'
};

/** A group's header; the offline one folds its rows away (aria-expanded). */
export function sectionHeader(
  section: IRoomSection,
  toggle: () => void
): HTMLElement {
  const count =
    section.devices.length === section.total
      ? `${section.total}`
      : `${section.devices.length} of ${section.total}`;
  const label = `${GROUP_LABELS[section.group]} · ${count}`;
  if (section.group !== 'offline') {
    return h('h3', { class: 'jp-RemoteDevice-groupHeader' }, label);
  }
  const btn = h(
    'button',
    {
      type: 'button',
      class: 'jp-RemoteDevice-groupHeader jp-RemoteDevice-groupToggle',
      'aria-expanded': section.collapsed ? 'false' : 'true',
      title: section.collapsed
        ? 'Show the offline boards'
        : 'Hide the offline boards'
    },
    h(
      'span',
      { class: 'jp-RemoteDevice-caret', 'aria-hidden': 'true' },
      section.collapsed ? '▸' : '▾'
    ),
    label
  );
  btn.addEventListener('click', toggle);
  return btn;
}

/** The room bar shows from this many boards on (or while a filter is typed). */
export const ROOM_BAR_FROM = 4;

export class RoomBar extends Widget {
  constructor(options: {
    model: DevicesModel;
    commands: CommandRegistry;
    room: RoomState;
  }) {
    super();
    this._model = options.model;
    this._commands = options.commands;
    this._room = options.room;
    this.addClass('jp-RemoteDevice-roomBar');
    this._input = h('input', {
      type: 'search',
      class: 'jp-RemoteDevice-filter jp-mod-styled',
      placeholder: 'Filter boards',
      'aria-label': 'Filter boards by name',
      spellcheck: 'false'
    }) as HTMLInputElement;
    this._input.addEventListener('input', () => {
      this._room.query = this._input.value;
    });
    this._input.addEventListener('keydown', event => {
      if (event.key === 'Escape' && this._input.value) {
        event.stopPropagation();
        this._input.value = '';
        this._room.query = '';
      }
    });
    this._count = h('span', {
      class: 'jp-RemoteDevice-filterCount',
      'aria-live': 'polite'
    });
    this._grid = this._action(
      'Grid',
      CommandIDs.openCameraGrid,
      'jp-RemoteDevice-action-grid'
    );
    this._forget = this._action(
      'Forget',
      CommandIDs.forgetOffline,
      'jp-RemoteDevice-action-forget'
    );
    this._grid.setAttribute('aria-label', 'Open camera grid');
    this._forget.setAttribute('aria-label', 'Forget offline boards');
    // One line: the filter, how many boards it shows, Camera grid, Forget offline (n).
    this.node.appendChild(
      h(
        'div',
        { class: 'jp-RemoteDevice-filterRow' },
        this._input,
        this._count,
        this._grid,
        this._forget
      )
    );
    this._model.changed.connect(this._update, this);
    this._room.changed.connect(this._update, this);
    this._update();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._update, this);
    this._room.changed.disconnect(this._update, this);
    super.dispose();
  }

  /** The filter box (tests type into it). */
  get input(): HTMLInputElement {
    return this._input;
  }

  private _action(
    label: string,
    command: string,
    cls: string
  ): HTMLButtonElement {
    const btn = h(
      'button',
      {
        type: 'button',
        class: `jp-Button jp-mod-small jp-mod-minimal jp-RemoteDevice-action ${cls}`
      },
      label
    ) as HTMLButtonElement;
    btn.addEventListener('click', () => void this._commands.execute(command));
    return btn;
  }

  private _update(): void {
    const devices = this._model.devices;
    // A room starts at a few boards: below ROOM_BAR_FROM the bar stays out of the way.
    this.node.style.display =
      devices.length < ROOM_BAR_FROM && !this._room.query ? 'none' : '';
    const view = roomView(devices, this._room.query, false);
    this._count.textContent = this._room.query.trim()
      ? `${view.shown} of ${view.total}`
      : `${view.total}`;
    this._count.title = `${view.shown} of ${view.total} boards shown`;
    const connected = devices.filter(d => d.status === 'connected').length;
    const selected = this._room
      .selected(devices)
      .filter(d => d.status === 'connected').length;
    this._grid.style.display = this._commands.hasCommand(
      CommandIDs.openCameraGrid
    )
      ? ''
      : 'none';
    this._grid.disabled = connected === 0;
    this._grid.title = selected
      ? `Camera grid: the ${selected} selected connected board${selected === 1 ? '' : 's'}`
      : connected
        ? `Camera grid: all ${connected} connected board${connected === 1 ? '' : 's'} (select rows to pick some)`
        : 'Camera grid: connect boards first';
    const stale = forgettable(devices).length;
    this._forget.style.display = stale ? '' : 'none';
    this._forget.textContent = `Forget (${stale})`;
    this._forget.title = stale
      ? `Remove ${stale} offline board${stale === 1 ? '' : 's'} added by hand or found (configured boards stay)`
      : 'No offline board to forget (configured boards always stay)';
  }

  private _model: DevicesModel;
  private _commands: CommandRegistry;
  private _room: RoomState;
  private _input: HTMLInputElement;
  private _count: HTMLElement;
  private _grid: HTMLButtonElement;
  private _forget: HTMLButtonElement;
}
