/**
 * A room full of boards: filter, group/sort, offline collapse and "forget offline", DOM-free
 * (the Devices sidebar draws what these functions decide; jest tests them directly).
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IDevice } from './api';

/** The sidebar's groups, in display order. */
export type RoomGroup = 'connected' | 'online' | 'offline';

export const GROUP_ORDER: ReadonlyArray<RoomGroup> = [
  'connected',
  'online',
  'offline'
];

/** Which group a board belongs to: connected first (also while re-connecting), then reachable, then offline. */
export function groupOf(device: IDevice): RoomGroup {
  switch (device.status) {
    case 'connected':
    case 'connecting':
      return 'connected';
    case 'offline':
      return 'offline';
    default:
      return 'online'; // online, error (reachable; the last attempt failed)
  }
}

/** Board names compare like people read them: desk-2 before desk-10, case-insensitive. */
const collator = new Intl.Collator(undefined, {
  numeric: true,
  sensitivity: 'base'
});

export function compareDevices(a: IDevice, b: IDevice): number {
  const g = GROUP_ORDER.indexOf(groupOf(a)) - GROUP_ORDER.indexOf(groupOf(b));
  if (g !== 0) {
    return g;
  }
  return (
    collator.compare(a.name || a.host, b.name || b.host) ||
    collator.compare(a.host, b.host) ||
    a.port - b.port ||
    collator.compare(a.id, b.id)
  );
}

/**
 * Whether a board matches what the user typed: every word of the query must occur in its
 * name (or, for boards without a name, its address), case-insensitive; an empty query matches all.
 */
export function matchesFilter(device: IDevice, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    return true;
  }
  const haystack =
    `${device.name || ''} ${device.host}:${device.port}`.toLowerCase();
  return words.every(w => haystack.includes(w));
}

export interface IRoomSection {
  group: RoomGroup;
  /** The group's boards that match the filter, sorted. */
  devices: IDevice[];
  /** How many boards of the group there are before the filter. */
  total: number;
  /** Whether the section's rows are hidden (only the header shows). */
  collapsed: boolean;
}

export interface IRoomView {
  sections: IRoomSection[];
  /** Boards that match the filter / all boards. */
  shown: number;
  total: number;
}

/**
 * The sections to draw: non-empty groups in order, each sorted; the offline one collapsed when
 * `collapseOffline` is true (a filter that matches offline boards opens it, so a search finds them).
 */
export function roomView(
  devices: ReadonlyArray<IDevice>,
  query: string,
  collapseOffline: boolean
): IRoomView {
  const sections: IRoomSection[] = [];
  let shown = 0;
  const filtering = query.trim() !== '';
  for (const group of GROUP_ORDER) {
    const all = devices.filter(d => groupOf(d) === group);
    if (all.length === 0) {
      continue;
    }
    const matching = all
      .filter(d => matchesFilter(d, query))
      .sort(compareDevices);
    if (filtering && matching.length === 0) {
      continue;
    }
    shown += matching.length;
    sections.push({
      group,
      devices: matching,
      total: all.length,
      collapsed: group === 'offline' && collapseOffline && !filtering
    });
  }
  return { sections, shown, total: devices.length };
}

/** Sources whose offline entries "Forget offline boards" removes; configured boards always stay. */
export const FORGETTABLE_SOURCES: ReadonlySet<string> = new Set([
  'manual',
  'probe',
  'mdns',
  'ssh'
]);

export function forgettable(devices: ReadonlyArray<IDevice>): IDevice[] {
  return devices.filter(
    d => d.status === 'offline' && FORGETTABLE_SOURCES.has(d.source)
  );
}

/** "in use by alice" from a board's error (the server's 409 in-use message), or null. */
export function heldBy(device: IDevice): string | null {
  if (device.status === 'connected' || !device.error) {
    return null;
  }
  const m =
    /\bin use by (.+?) \(since /.exec(device.error) ??
    /\bin use by ([^\s;,]+?)\.?(?:[\s;,]|$)/.exec(device.error);
  if (m) {
    return m[1];
  }
  const t = /\bTaken over by (.+?)(?:; |\.?$)/.exec(device.error);
  return t ? t[1] : null;
}

/** Above this many offline boards the offline group starts collapsed (until the user opens it). */
export const COLLAPSE_OFFLINE_ABOVE = 5;

/** Above this many boards each board takes one line; a selected board shows its details. */
export const COMPACT_ABOVE = 8;

/**
 * The room's view state, shared by the filter bar, the list and the camera grid command:
 * the filter text, whether offline boards are collapsed, and the selected boards.
 */
export class RoomState {
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get query(): string {
    return this._query;
  }

  set query(value: string) {
    if (value !== this._query) {
      this._query = value;
      this._changed.emit();
    }
  }

  /** Whether offline boards are collapsed, given how many there are (the user's choice wins). */
  collapseOffline(offlineCount: number): boolean {
    return this._collapseOffline ?? offlineCount > COLLAPSE_OFFLINE_ABOVE;
  }

  setCollapseOffline(value: boolean): void {
    if (value !== this._collapseOffline) {
      this._collapseOffline = value;
      this._changed.emit();
    }
  }

  isSelected(id: string): boolean {
    return this._selected.has(id);
  }

  /** Select / unselect one board; `only` replaces the selection with it. */
  toggleSelected(id: string, only = false): void {
    const was = this._selected.has(id);
    if (only) {
      const alone = was && this._selected.size === 1;
      this._selected.clear();
      if (!alone) {
        this._selected.add(id);
      }
    } else if (was) {
      this._selected.delete(id);
    } else {
      this._selected.add(id);
    }
    this._changed.emit();
  }

  clearSelection(): void {
    if (this._selected.size) {
      this._selected.clear();
      this._changed.emit();
    }
  }

  /** Ids of selected boards that still exist. */
  selected(devices: ReadonlyArray<IDevice>): IDevice[] {
    return devices.filter(d => this._selected.has(d.id));
  }

  /** Drop ids of boards that went away. */
  prune(devices: ReadonlyArray<IDevice>): void {
    const ids = new Set(devices.map(d => d.id));
    for (const id of [...this._selected]) {
      if (!ids.has(id)) {
        this._selected.delete(id);
      }
    }
  }

  private _query = '';
  private _collapseOffline: boolean | undefined = undefined;
  private _selected = new Set<string>();
  private _changed = new Signal<this, void>(this);
}

/**
 * The boards a camera grid shows: the selected connected boards, or every connected board
 * when none of the selected ones is connected.
 */
export function gridDevices(
  devices: ReadonlyArray<IDevice>,
  state: RoomState | null
): IDevice[] {
  const connected = devices
    .filter(d => d.status === 'connected')
    .sort(compareDevices);
  const chosen = state ? connected.filter(d => state.isSelected(d.id)) : [];
  return chosen.length ? chosen : connected;
}
