/**
 * "Add device…" SSH tab: validation, the request body, tab switching.
 */
import { Widget } from '@lumino/widgets';

import { AddDeviceBody, IAddDeviceValue } from '../widgets/adddialog';
import { AddDeviceTabs, sshRequest, validateSsh } from '../widgets/sshdialog';

const ok = (ssh: string, key = '', name = '') =>
  validateSsh({ ssh, key, name });

describe('validateSsh', () => {
  it('accepts user@host[:port] forms the server accepts', () => {
    for (const t of [
      'pi@192.168.1.42',
      'root@board.local:2222',
      'board.local',
      'me@[::1]:22',
      ' pi@raspberrypi '
    ]) {
      expect(ok(t)).toEqual({});
    }
  });

  it('explains what is wrong', () => {
    expect(ok('').ssh).toMatch(/Enter user@host/);
    expect(ok('ssh://pi@host').ssh).toMatch(/without spaces, scheme or path/);
    expect(ok('pi@host/x').ssh).toMatch(/without spaces, scheme or path/);
    expect(ok('pi @host').ssh).toMatch(/without spaces/);
    expect(ok('pi@host:99999').ssh).toMatch(/between 1 and 65535/);
    expect(ok('pi@host:0').ssh).toMatch(/between 1 and 65535/);
    expect(ok('pi@300.1.1.1').ssh).toMatch(/0–255/);
    expect(ok('a@b@c').ssh).toMatch(/not user@host/);
    expect(ok('pi@host', 'id_rsa').key).toMatch(
      /file path on the Jupyter server/
    );
    expect(ok('pi@host', '~/.ssh/id_ed25519')).toEqual({});
    expect(ok('pi@host', '/keys/board')).toEqual({});
    expect(ok('pi@host', '', 'x'.repeat(65)).name).toMatch(/under 64/);
  });
});

describe('sshRequest', () => {
  it('posts only what was given', () => {
    const base: IAddDeviceValue = {
      host: '',
      port: 18861,
      name: '',
      token: '',
      connect: true
    };
    expect(sshRequest({ ...base, ssh: ' pi@h ' })).toEqual({ ssh: 'pi@h' });
    expect(
      sshRequest({ ...base, ssh: 'pi@h:2222', key: '~/.ssh/k', name: 'cam' })
    ).toEqual({
      ssh: 'pi@h:2222',
      key: '~/.ssh/k',
      name: 'cam'
    });
  });
});

describe('AddDeviceTabs', () => {
  afterEach(() => {
    document.body.innerHTML = '';
  });

  const make = (initial: Partial<IAddDeviceValue> = {}) => {
    // Inside a fake dialog so the accept button is found.
    const content = document.createElement('div');
    content.className = 'jp-Dialog-content';
    const accept = document.createElement('button');
    accept.className = 'jp-Dialog-button jp-mod-accept';
    document.body.appendChild(content);
    const tabs = new AddDeviceTabs(new AddDeviceBody(initial), initial);
    Widget.attach(tabs, content);
    content.appendChild(accept);
    return { tabs, accept };
  };

  const type = (tabs: Widget, name: string, value: string) => {
    const input = tabs.node.querySelector(
      `input[name="${name}"]`
    ) as HTMLInputElement;
    input.value = value;
    input.dispatchEvent(new Event('input', { bubbles: true }));
  };

  it('starts on Address and returns the address form value', () => {
    const { tabs, accept } = make();
    expect(tabs.mode).toBe('address');
    expect(
      (tabs.node.querySelector('.jp-RemoteDevice-sshForm') as HTMLElement).style
        .display
    ).toBe('none');
    type(tabs, 'host', '10.0.0.7:18862');
    expect(accept.disabled).toBe(false);
    const v = tabs.getValue();
    expect(v.ssh).toBeUndefined();
    expect(v.host).toBe('10.0.0.7');
    expect(v.port).toBe(18862);
  });

  it('switches to SSH, validates inline and returns the SSH fields', () => {
    const { tabs, accept } = make();
    (
      tabs.node.querySelector('.jp-RemoteDevice-tab-ssh') as HTMLButtonElement
    ).click();
    expect(tabs.mode).toBe('ssh');
    expect(tabs.node.dataset.mode).toBe('ssh');
    expect(
      tabs.node
        .querySelector('.jp-RemoteDevice-tab-ssh')!
        .getAttribute('aria-selected')
    ).toBe('true');
    expect(accept.disabled).toBe(true);
    type(tabs, 'ssh-ssh', 'pi@host:99999');
    expect(
      tabs.node.querySelector('[data-field="ssh-ssh"]')!.textContent
    ).toMatch(/between 1 and 65535/);
    expect(accept.disabled).toBe(true);
    type(tabs, 'ssh-ssh', 'pi@board.local:2222');
    type(tabs, 'ssh-key', '~/.ssh/id_ed25519');
    type(tabs, 'ssh-name', 'cam');
    expect(tabs.node.querySelector('[data-field="ssh-ssh"]')!.textContent).toBe(
      ''
    );
    expect(accept.disabled).toBe(false);
    const v = tabs.getValue();
    expect(sshRequest(v)).toEqual({
      ssh: 'pi@board.local:2222',
      key: '~/.ssh/id_ed25519',
      name: 'cam'
    });
    expect(v.connect).toBe(true);
    (
      tabs.node.querySelector('input[name="ssh-connect"]') as HTMLInputElement
    ).checked = false;
    expect(tabs.getValue().connect).toBe(false);
    // Back to Address: the address value again.
    (
      tabs.node.querySelector(
        '.jp-RemoteDevice-tab-address'
      ) as HTMLButtonElement
    ).click();
    expect(tabs.getValue().ssh).toBeUndefined();
  });

  it('reopens on the SSH tab with what was typed', () => {
    const { tabs } = make({ ssh: 'pi@', key: '', name: 'n' });
    expect(tabs.mode).toBe('ssh');
    expect(
      (tabs.node.querySelector('input[name="ssh-ssh"]') as HTMLInputElement)
        .value
    ).toBe('pi@');
    expect(
      tabs.node.querySelector('[data-field="ssh-ssh"]')!.textContent
    ).toMatch(/not user@host/);
  });
});
