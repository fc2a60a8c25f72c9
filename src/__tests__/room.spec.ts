/**
 * A room full of boards: filter, group/sort, offline collapse, forget offline, selection,
 * "in use by", and the sidebar drawing them (30 boards, one line each).
 */
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { IDevice } from '../api';
import { CommandIDs } from '../commands';
import { DevicesModel } from '../model';
import {
  compareDevices,
  forgettable,
  gridDevices,
  groupOf,
  heldBy,
  matchesFilter,
  RoomState,
  roomView
} from '../room';
import { addRoomCommands } from '../roomcommands';
import { DevicesSidebar } from '../widgets/sidebar';

const dev = (
  name: string,
  status: IDevice['status'],
  extra: Partial<IDevice> = {}
): IDevice => ({
  id: `id-${name}`,
  name,
  host: '127.0.0.1',
  port: 18861,
  source: 'config',
  status,
  kind: 'agent',
  info: null,
  error: null,
  ...extra
});

describe('room logic', () => {
  it('groups connected (and re-connecting) first, then reachable, then offline', () => {
    expect(groupOf(dev('a', 'connected'))).toBe('connected');
    expect(groupOf(dev('a', 'connecting'))).toBe('connected');
    expect(groupOf(dev('a', 'online'))).toBe('online');
    expect(groupOf(dev('a', 'error'))).toBe('online');
    expect(groupOf(dev('a', 'offline'))).toBe('offline');
  });

  it('sorts by group, then names as people read them', () => {
    const list = [
      dev('desk-10', 'online'),
      dev('desk-2', 'offline'),
      dev('Desk-1', 'online'),
      dev('desk-3', 'connected'),
      dev('desk-9', 'online')
    ].sort(compareDevices);
    expect(list.map(d => d.name)).toEqual([
      'desk-3',
      'Desk-1',
      'desk-9',
      'desk-10',
      'desk-2'
    ]);
  });

  it('filters by every typed word, case-insensitive, on name (and address)', () => {
    const d = dev('Desk-07 window', 'online', { host: '10.0.5.17' });
    expect(matchesFilter(d, '')).toBe(true);
    expect(matchesFilter(d, '  ')).toBe(true);
    expect(matchesFilter(d, 'desk')).toBe(true);
    expect(matchesFilter(d, 'DESK-07')).toBe(true);
    expect(matchesFilter(d, 'window desk')).toBe(true);
    expect(matchesFilter(d, 'desk door')).toBe(false);
    expect(matchesFilter(d, '10.0.5.17')).toBe(true);
    expect(matchesFilter(d, 'desk-08')).toBe(false);
  });

  it('builds sections: empty groups left out, offline collapsed unless a filter looks for it', () => {
    const devices = [
      dev('a1', 'connected'),
      dev('b1', 'offline'),
      dev('b2', 'offline'),
      dev('c1', 'online')
    ];
    let view = roomView(devices, '', true);
    expect(
      view.sections.map(s => [s.group, s.devices.length, s.collapsed])
    ).toEqual([
      ['connected', 1, false],
      ['online', 1, false],
      ['offline', 2, true]
    ]);
    expect([view.shown, view.total]).toEqual([4, 4]);
    view = roomView(devices, 'b2', true);
    expect(
      view.sections.map(s => [
        s.group,
        s.devices.map(d => d.name),
        s.total,
        s.collapsed
      ])
    ).toEqual([['offline', ['b2'], 2, false]]);
    expect([view.shown, view.total]).toEqual([1, 4]);
    expect(roomView(devices, 'zzz', false).sections).toEqual([]);
    expect(roomView([], '', false).sections).toEqual([]);
  });

  it('forgets only offline boards added by hand or found; configured boards stay', () => {
    const devices = [
      dev('cfg', 'offline', { source: 'config' }),
      dev('man', 'offline', { source: 'manual' }),
      dev('probe', 'offline', { source: 'probe' }),
      dev('mdns', 'offline', { source: 'mdns' }),
      dev('ssh', 'offline', { source: 'ssh' }),
      dev('man-on', 'online', { source: 'manual' }),
      dev('probe-err', 'error', { source: 'probe' })
    ];
    expect(forgettable(devices).map(d => d.name)).toEqual([
      'man',
      'probe',
      'mdns',
      'ssh'
    ]);
  });

  it('reads who holds a board from the server messages', () => {
    const inUse =
      'desk-01 is in use by alice (since 10:02:03). Take it over explicitly with POST devices/x/session';
    expect(heldBy(dev('a', 'error', { error: inUse }))).toBe('alice');
    expect(
      heldBy(
        dev('a', 'error', {
          error: 'desk-01 is in use by j.doe (since 10:02:03). Take'
        })
      )
    ).toBe('j.doe');
    expect(
      heldBy(
        dev('a', 'error', {
          error: 'Taken over by bob; open the session again to take it back'
        })
      )
    ).toBe('bob');
    expect(
      heldBy(dev('a', 'error', { error: 'refused the token' }))
    ).toBeNull();
    expect(heldBy(dev('a', 'connected', { error: inUse }))).toBeNull();
  });

  it('keeps a selection; the grid shows selected connected boards, or all connected ones', () => {
    const state = new RoomState();
    let changes = 0;
    state.changed.connect(() => changes++);
    const devices = [
      dev('a', 'connected'),
      dev('b', 'connected'),
      dev('c', 'online')
    ];
    expect(gridDevices(devices, state).map(d => d.name)).toEqual(['a', 'b']);
    state.toggleSelected('id-b', true);
    expect(gridDevices(devices, state).map(d => d.name)).toEqual(['b']);
    state.toggleSelected('id-c'); // multi-select; c is not connected, so the grid ignores it
    expect(state.selected(devices).map(d => d.name)).toEqual(['b', 'c']);
    expect(gridDevices(devices, state).map(d => d.name)).toEqual(['b']);
    state.toggleSelected('id-a', true); // a plain click selects only that board
    expect(state.selected(devices).map(d => d.name)).toEqual(['a']);
    state.toggleSelected('id-a', true); // and unselects it when it was the only one
    expect(state.selected(devices)).toEqual([]);
    state.toggleSelected('id-c', true);
    expect(gridDevices(devices, state).map(d => d.name)).toEqual(['a', 'b']);
    state.prune([devices[0]]);
    expect(state.isSelected('id-c')).toBe(false);
    expect(changes).toBe(5);
  });

  it('collapses the offline group by default only when it is long; the user decides after that', () => {
    const state = new RoomState();
    expect(state.collapseOffline(3)).toBe(false);
    expect(state.collapseOffline(6)).toBe(true);
    state.setCollapseOffline(false);
    expect(state.collapseOffline(20)).toBe(false);
  });
});

function fakeModel(devices: IDevice[], removed: string[] = []) {
  let list = devices;
  const model = new DevicesModel({
    api: {
      version: async () => ({ version: '0.1.0' }),
      listDevices: async () => list,
      removeDevice: async (id: string) => {
        removed.push(id);
        list = list.filter(d => d.id !== id);
      }
    } as any,
    socketFactory: () =>
      ({
        readyState: 0,
        onopen: null,
        onclose: null,
        onerror: null,
        onmessage: null,
        send: () => undefined,
        close: () => undefined
      }) as any,
    frontendVersion: '0.1.0'
  });
  return model;
}

describe('Devices sidebar as a room', () => {
  const thirty = (): IDevice[] =>
    Array.from({ length: 30 }, (_, i) => {
      const n = i + 1;
      const status: IDevice['status'] =
        n <= 4 ? 'connected' : n <= 20 ? 'online' : 'offline';
      return dev(`desk-${String(n).padStart(2, '0')}`, status, {
        id: `d${n}`,
        port: 18000 + n,
        source: n > 26 ? 'manual' : 'config'
      });
    }).reverse();

  async function setup(devices: IDevice[]) {
    const removed: string[] = [];
    const model = fakeModel(devices, removed);
    const commands = new CommandRegistry();
    const executed: [string, any][] = [];
    for (const id of Object.values(CommandIDs)) {
      if (id !== CommandIDs.forgetOffline && id !== CommandIDs.openCameraGrid) {
        commands.addCommand(id, {
          label: id,
          execute: args => void executed.push([id, args])
        });
      }
    }
    const sidebar = new DevicesSidebar({ model, commands });
    addRoomCommands({ app: { commands } as any, model, room: sidebar.room });
    Widget.attach(sidebar, document.body);
    await model.start();
    const render = () => (sidebar.list as any)._render();
    render();
    const names = () =>
      [...sidebar.list.node.querySelectorAll('.jp-RemoteDevice-row')].map(
        r => (r as HTMLElement).dataset.deviceName
      );
    const input = sidebar.node.querySelector(
      '.jp-RemoteDevice-filter'
    ) as HTMLInputElement;
    return {
      model,
      sidebar,
      commands,
      executed,
      removed,
      render,
      names,
      input
    };
  }

  it('draws 30 boards in groups, one line each, offline collapsed; filters as you type', async () => {
    const { model, sidebar, render, names, input } = await setup(thirty());
    const list = sidebar.list.node;
    expect(list.classList.contains('jp-mod-compact')).toBe(true);
    const groups = [...list.querySelectorAll('.jp-RemoteDevice-group')].map(
      g => (g as HTMLElement).dataset.group
    );
    expect(groups).toEqual(['connected', 'online', 'offline']);
    // 10 offline boards: collapsed by default, the header says how many
    const toggle = list.querySelector(
      '.jp-RemoteDevice-groupToggle'
    ) as HTMLButtonElement;
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(toggle.textContent).toContain('Offline · 10');
    expect(names()).toEqual(
      Array.from(
        { length: 20 },
        (_, i) => `desk-${String(i + 1).padStart(2, '0')}`
      )
    );
    toggle.click();
    render();
    expect(names()).toHaveLength(30);
    expect(names()[29]).toBe('desk-30');
    expect(
      (
        list.querySelector('.jp-RemoteDevice-groupToggle') as HTMLElement
      ).getAttribute('aria-expanded')
    ).toBe('true');

    input.value = 'desk-1';
    input.dispatchEvent(new Event('input'));
    render();
    expect(names()).toEqual([
      'desk-10',
      'desk-11',
      'desk-12',
      'desk-13',
      'desk-14',
      'desk-15',
      'desk-16',
      'desk-17',
      'desk-18',
      'desk-19'
    ]);
    expect(
      sidebar.node.querySelector('.jp-RemoteDevice-filterCount')!.textContent
    ).toBe('10 of 30');
    input.value = 'desk-2';
    input.dispatchEvent(new Event('input'));
    render();
    // the online desk-20 first, then the matching offline boards (a filter opens the offline group)
    sidebar.room.setCollapseOffline(true);
    render();
    expect(names()).toEqual([
      'desk-20',
      'desk-21',
      'desk-22',
      'desk-23',
      'desk-24',
      'desk-25',
      'desk-26',
      'desk-27',
      'desk-28',
      'desk-29'
    ]);
    input.value = 'nothing-like-it';
    input.dispatchEvent(new Event('input'));
    render();
    expect(names()).toEqual([]);
    expect(
      list.querySelector('.jp-RemoteDevice-noMatch')!.textContent
    ).toContain('nothing-like-it');
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));
    render();
    expect(input.value).toBe('');
    expect(names()).toHaveLength(20); // the offline group folded again
    model.dispose();
    sidebar.dispose();
  });

  it('selects a row by click (its details show), Take over for a board in use', async () => {
    const devices = thirty();
    devices[0] = dev('desk-30', 'error', {
      id: 'd30',
      error:
        'desk-30 is in use by alice (since 10:00:00). Take it over explicitly with POST devices/d30/session'
    });
    const { model, sidebar, render, executed } = await setup(devices);
    const row = () =>
      sidebar.list.node.querySelector('[data-device-id="d30"]') as HTMLElement;
    expect(
      row().querySelector('.jp-RemoteDevice-statusText')!.textContent
    ).toBe('in use by alice');
    const take = row().querySelector(
      '.jp-RemoteDevice-action-takeover'
    ) as HTMLButtonElement;
    take.click();
    expect(executed.pop()).toEqual([
      CommandIDs.connect,
      { id: 'd30', takeOver: true }
    ]);
    expect(row().getAttribute('aria-selected')).toBe('false'); // a button click does not select
    row().click();
    render();
    expect(row().classList.contains('jp-mod-selected')).toBe(true);
    expect(sidebar.room.isSelected('d30')).toBe(true);
    (
      sidebar.list.node.querySelector('[data-device-id="d1"]') as HTMLElement
    ).dispatchEvent(new MouseEvent('click', { bubbles: true, ctrlKey: true }));
    render();
    expect(
      sidebar.room
        .selected(model.devices)
        .map(d => d.id)
        .sort()
    ).toEqual(['d1', 'd30']);
    model.dispose();
    sidebar.dispose();
  });

  it('Forget offline removes offline manual boards only', async () => {
    const { model, sidebar, commands, removed } = await setup(thirty());
    const btn = sidebar.node.querySelector(
      '.jp-RemoteDevice-action-forget'
    ) as HTMLButtonElement;
    expect(btn.disabled).toBe(false);
    expect(btn.textContent).toBe('Forget (4)');
    expect(btn.getAttribute('aria-label')).toBe('Forget offline boards');
    const done = await commands.execute(CommandIDs.forgetOffline, {
      confirm: false
    });
    expect(done).toBe(4);
    expect(removed.sort()).toEqual(['d27', 'd28', 'd29', 'd30']);
    expect(model.devices).toHaveLength(26);
    expect(btn.style.display).toBe('none');
    model.dispose();
    sidebar.dispose();
  });

  it('keeps the roomy layout for a few boards', async () => {
    const { model, sidebar } = await setup([
      dev('one', 'online'),
      dev('two', 'connected')
    ]);
    expect(sidebar.list.node.classList.contains('jp-mod-compact')).toBe(false);
    model.dispose();
    sidebar.dispose();
  });
});
