/**
 * Board operations in the page: the terminal connection against a real WebSocket server
 * on 127.0.0.1 (the `ws` package) speaking the server's terminado messages; the doctor's
 * report rendering; what "Install package" sends.
 */
import { AddressInfo } from 'net';
import { WebSocketServer } from 'ws';

import { renderDiagnosis } from '../widgets/diagnose';
import { parsePackages } from '../widgets/packages';
import { BoardTerminalConnection } from '../widgets/terminal';

function until(pred: () => boolean, timeout = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (pred()) {
        resolve();
      } else if (Date.now() - start > timeout) {
        reject(new Error('timed out'));
      } else {
        setTimeout(tick, 5);
      }
    };
    tick();
  });
}

describe('BoardTerminalConnection', () => {
  let server: WebSocketServer;
  let port: number;
  let urls: string[];
  let got: any[];

  beforeEach(async () => {
    urls = [];
    got = [];
    server = await new Promise<WebSocketServer>((resolve, reject) => {
      const s = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      s.once('listening', () => resolve(s));
      s.once('error', reject);
    });
    port = (server.address() as AddressInfo).port;
    // a tiny board terminal: setup, echo stdin as stdout, "exit" ends with code 3
    server.on('connection', (ws, req) => {
      urls.push(req.url ?? '');
      ws.send(JSON.stringify(['setup', { name: 'x' }]));
      ws.on('message', data => {
        const msg = JSON.parse(String(data));
        got.push(msg);
        if (msg[0] === 'stdin' && msg[1] === 'exit\r') {
          ws.send(JSON.stringify(['disconnect', 3]));
          ws.close();
        } else if (msg[0] === 'stdin') {
          ws.send(JSON.stringify(['stdout', `echo:${msg[1]}`]));
        }
      });
    });
  });

  afterEach(async () => {
    for (const c of server.clients) {
      c.terminate();
    }
    await new Promise<void>(resolve => server.close(() => resolve()));
  });

  const factory = (url: string) => {
    const path = url.replace(/^[a-z]+:\/\/[^/]+/, '');
    return new WebSocket(`ws://127.0.0.1:${port}${path}`) as any;
  };

  it('sends what was typed before the shell was ready, in order, then streams output', async () => {
    const conn = new BoardTerminalConnection({
      deviceId: 'dev1',
      deviceName: 'board',
      name: 'tab1',
      socketFactory: factory
    });
    const out: string[] = [];
    conn.messageReceived.connect((_, m) => {
      if (m.type === 'stdout') {
        out.push(String(m.content![0]));
      }
    });
    conn.send({ type: 'set_size', content: [10, 20, 100, 200] });
    conn.send({ type: 'set_size', content: [30, 90, 300, 900] });
    conn.send({ type: 'stdin', content: ['ls\r'] });
    expect(conn.connectionStatus).toBe('connecting');
    await until(() => conn.connectionStatus === 'connected');
    await until(() => out.length === 1);
    expect(out).toEqual(['echo:ls\r']);
    // only the latest size before the shell was ready; the name is in the URL
    expect(got[0]).toEqual(['set_size', 30, 90, 300, 900]);
    expect(got[1]).toEqual(['stdin', 'ls\r']);
    expect(urls[0]).toContain('devices/dev1/terminal');
    expect(urls[0]).toContain('name=tab1');
    expect(urls[0]).not.toContain('replay=0');
    conn.dispose();
  });

  it('ends when the shell exits and does not reconnect', async () => {
    const conn = new BoardTerminalConnection({
      deviceId: 'dev1',
      deviceName: 'board',
      socketFactory: factory
    });
    expect(conn.name).toMatch(/^[0-9a-f]{12}$/);
    const kinds: string[] = [];
    conn.messageReceived.connect((_, m) => kinds.push(m.type));
    await until(() => conn.connectionStatus === 'connected');
    conn.send({ type: 'stdin', content: ['exit\r'] });
    await until(() => conn.ended && conn.connectionStatus === 'disconnected');
    expect(kinds).toContain('disconnect');
    await new Promise(r => setTimeout(r, 1300));
    expect(urls.length).toBe(1);
    conn.dispose();
  });

  it('reconnects after a dropped link without replaying what the tab shows', async () => {
    const conn = new BoardTerminalConnection({
      deviceId: 'dev1',
      deviceName: 'board',
      name: 'keep',
      socketFactory: factory
    });
    await until(() => conn.connectionStatus === 'connected');
    for (const c of server.clients) {
      c.terminate();
    }
    await until(() => urls.length === 2, 5000);
    await until(() => conn.connectionStatus === 'connected');
    expect(urls[1]).toContain('name=keep');
    expect(urls[1]).toContain('replay=0');
    conn.dispose();
  });
});

describe('renderDiagnosis', () => {
  it('shows each step with its state, message and hint', () => {
    const el = renderDiagnosis({
      ok: false,
      steps: [
        { step: 'resolve', ok: true, message: 'an IP address' },
        {
          step: 'tcp',
          ok: false,
          message: 'refused',
          hint: 'start the agent'
        },
        { step: 'auth', ok: null, message: 'not checked' }
      ]
    });
    const items = Array.from(el.querySelectorAll('li'));
    expect(items.map(li => li.dataset.step)).toEqual([
      'resolve',
      'tcp',
      'auth'
    ]);
    expect(items[0].className).toContain('jp-mod-ok');
    expect(items[1].className).toContain('jp-mod-failed');
    expect(items[1].textContent).toContain('Port: refused');
    expect(
      items[1].querySelector('.jp-RemoteDevice-diagnosis-hint')!.textContent
    ).toBe('start the agent');
    expect(items[2].className).toContain('jp-mod-skipped');
  });
});

describe('parsePackages', () => {
  it('splits names and wheel paths on spaces, commas and new lines', () => {
    expect(
      parsePackages(' numpy==1.24, requests\nwheels/a-1.0-py3-none-any.whl  ')
    ).toEqual(['numpy==1.24', 'requests', 'wheels/a-1.0-py3-none-any.whl']);
    expect(parsePackages('  \n ')).toEqual([]);
  });
});
