/**
 * The Devices list renders the model: rows, status, info, empty state and the
 * server banners.
 */
import { CommandRegistry } from '@lumino/commands';
import { Widget } from '@lumino/widgets';

import { IDevice, IDevicesApi } from '../api';
import { CommandIDs } from '../commands';
import { DevicesModel } from '../model';
import { DevicesList } from '../widgets/sidebar';

const device = (id: string, extra: Partial<IDevice> = {}): IDevice => ({
  id,
  name: `board-${id}`,
  host: '127.0.0.1',
  port: 18861,
  source: 'config',
  status: 'online',
  kind: 'agent',
  info: null,
  error: null,
  ...extra
});

function setup(api: Partial<IDevicesApi> = {}) {
  const model = new DevicesModel({
    api: {
      version: async () => ({ version: '0.1.0' }),
      listDevices: async () => [],
      ...api
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
  const commands = new CommandRegistry();
  const executed: [string, any][] = [];
  for (const id of Object.values(CommandIDs)) {
    commands.addCommand(id, {
      label: id,
      execute: args => void executed.push([id, args])
    });
  }
  const list = new DevicesList(model, commands);
  Widget.attach(list, document.body);
  const render = () => (list as any)._render();
  return { model, list, executed, render };
}

describe('DevicesList', () => {
  it('shows how to start the agent when there is no board', async () => {
    const { model, list, render } = setup();
    await model.start();
    render();
    expect(list.node.textContent).toContain(
      'python -m jupyter_remote_device.agent --token SECRET'
    );
    expect(list.node.textContent).toContain('client (AP) isolation');
    model.dispose();
    list.dispose();
  });

  it('renders rows with status, address, source and info', async () => {
    const { model, list, executed, render } = setup({
      listDevices: async () => [
        device('a', {
          status: 'connected',
          info: {
            hostname: 'pi',
            model: 'Raspberry Pi 4',
            platform: 'Linux-6.1-aarch64',
            arch: 'aarch64',
            python: '3.11.2',
            rpyc_version: '5.3.1',
            agent_version: '0.1.0',
            cpu_count: 4,
            cpu_percent: 12,
            mem_total: 4e9,
            mem_available: 3e9,
            temperature_c: 51.2,
            uptime_s: 100,
            cameras: []
          }
        }),
        device('b', {
          source: 'manual',
          status: 'error',
          error: 'refused the token'
        })
      ]
    });
    await model.start();
    render();
    const rows = list.node.querySelectorAll('.jp-RemoteDevice-row');
    expect(rows).toHaveLength(2);
    const a = rows[0] as HTMLElement;
    expect(a.dataset.status).toBe('connected');
    expect(a.querySelector('.jp-RemoteDevice-hostport')!.textContent).toBe(
      '127.0.0.1:18861'
    );
    expect(a.querySelector('[data-info="model"]')!.textContent).toBe(
      'Raspberry Pi 4'
    );
    expect(a.querySelector('[data-info="temperature"]')!.textContent).toBe(
      '51.2 °C'
    );
    expect(a.querySelector('[data-info="arch"]')!.textContent).toBe(
      'Linux aarch64'
    );
    // the board's Python and rpyc (MaixPy3 images: Python 3.8 with rpyc 4.x/5.x)
    expect(a.querySelector('[data-info="python"]')!.textContent).toBe('3.11.2');
    expect(a.querySelector('[data-info="rpyc"]')!.textContent).toBe('5.3.1');
    const b = rows[1] as HTMLElement;
    expect(b.querySelector('.jp-RemoteDevice-error')!.textContent).toBe(
      'refused the token'
    );
    expect(b.querySelector('.jp-RemoteDevice-action-remove')).not.toBeNull();
    (
      b.querySelector('.jp-RemoteDevice-action-connect') as HTMLButtonElement
    ).click();
    expect(executed[0]).toEqual([CommandIDs.connect, { id: 'b' }]);

    // An unchanged row keeps its DOM node across renders; a changed one is rebuilt.
    model.handleMessage({
      type: 'device',
      device: device('b', { source: 'manual', status: 'connecting' })
    });
    render();
    const rows2 = list.node.querySelectorAll('.jp-RemoteDevice-row');
    expect(rows2[0]).toBe(a);
    expect(rows2[1]).not.toBe(b);
    expect((rows2[1] as HTMLElement).dataset.status).toBe('connecting');
    model.dispose();
    list.dispose();
  });

  it('says plainly when the server extension is missing or differs', async () => {
    const missing = setup({
      version: async () => {
        const { ApiError } = await import('../api');
        throw new ApiError('nope', 404, 'not-found');
      }
    });
    await missing.model.start();
    missing.render();
    expect(
      missing.list.node.querySelector('[data-server="missing"]')!.textContent
    ).toMatch(/not installed or not enabled/);
    missing.model.dispose();
    missing.list.dispose();

    const mismatch = setup({ version: async () => ({ version: '0.0.9' }) });
    await mismatch.model.start();
    mismatch.render();
    expect(
      mismatch.list.node.querySelector('[data-server="mismatch"]')!.textContent
    ).toMatch(/0\.0\.9.*0\.1\.0/);
    mismatch.model.dispose();
    mismatch.list.dispose();
  });
});
