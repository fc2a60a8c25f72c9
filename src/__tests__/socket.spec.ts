/**
 * ReconnectingSocket against a real WebSocket server on 127.0.0.1 (the `ws`
 * package) with jsdom's real WebSocket client: open, messages, send, re-open
 * with backoff after the server drops or goes away, stop.
 */
import { AddressInfo } from 'net';
import { WebSocketServer } from 'ws';

import { exponentialBackoff, ReconnectingSocket, SocketState } from '../socket';

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

function listen(port = 0): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({ host: '127.0.0.1', port });
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

function shut(server: WebSocketServer): Promise<void> {
  for (const client of server.clients) {
    client.terminate();
  }
  return new Promise(resolve => server.close(() => resolve()));
}

describe('exponentialBackoff', () => {
  it('doubles from the first delay up to the largest', () => {
    const d = exponentialBackoff(100, 1000);
    expect([1, 2, 3, 4, 5, 6].map(d)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(d(0)).toBe(100);
  });
});

describe('ReconnectingSocket', () => {
  let server: WebSocketServer;
  let port: number;
  let urls: string[];
  let socket: ReconnectingSocket;
  let states: SocketState[];
  let received: string[];
  let delays: number[];
  let serverGot: string[];

  beforeEach(async () => {
    server = await listen();
    port = (server.address() as AddressInfo).port;
    serverGot = [];
    server.on('connection', (ws, req) => {
      ws.send(`hello ${req.url}`);
      ws.on('message', data => serverGot.push(String(data)));
    });
    urls = [];
    states = [];
    received = [];
    delays = [];
    let n = 0;
    socket = new ReconnectingSocket({
      url: () => {
        const url = `ws://127.0.0.1:${port}/events?n=${n++}`;
        urls.push(url);
        return url;
      },
      socketFactory: url => new WebSocket(url) as any,
      retryDelay: attempt => {
        delays.push(attempt);
        return 10 * attempt;
      }
    });
    socket.stateChanged.connect((_, c) => states.push(c.state));
    socket.messageReceived.connect((_, data) => received.push(String(data)));
  });

  afterEach(async () => {
    socket.dispose();
    await shut(server);
  });

  it('opens, receives, sends and stops', async () => {
    const opened: boolean[] = [];
    socket.opened.connect((_, o) => opened.push(o.reconnected));
    expect(socket.send('too early')).toBe(false);
    socket.start();
    expect(socket.state).toBe('connecting');
    await until(() => received.length === 1);
    expect(socket.state).toBe('open');
    expect(opened).toEqual([false]);
    expect(received[0]).toBe('hello /events?n=0');
    expect(socket.send('ping')).toBe(true);
    await until(() => serverGot.length === 1);
    expect(serverGot).toEqual(['ping']);
    socket.stop();
    expect(socket.state).toBe('idle');
    expect(socket.isRunning).toBe(false);
    await until(() => server.clients.size === 0);
    expect(states).toEqual(['connecting', 'open', 'idle']);
  });

  it('re-opens after the server drops it, asking for the URL again', async () => {
    const opened: boolean[] = [];
    socket.opened.connect((_, o) => opened.push(o.reconnected));
    socket.start();
    await until(() => received.length === 1);
    for (const client of server.clients) {
      client.close(4000, 'board restarted');
    }
    await until(() => received.length === 2);
    expect(opened).toEqual([false, true]);
    expect(received[1]).toBe('hello /events?n=1');
    expect(states).toEqual([
      'connecting',
      'open',
      'waiting',
      'connecting',
      'open'
    ]);
    expect(socket.attempts).toBe(0);
  });

  it('backs off while nothing listens and comes back when the server does', async () => {
    socket.start();
    await until(() => received.length === 1);
    await shut(server);
    await until(() => socket.attempts >= 3);
    // the n-th retry waits retryDelay(n): 1, 2, 3, ...
    expect(delays.slice(0, 3)).toEqual([1, 2, 3]);
    expect(socket.state === 'waiting' || socket.state === 'connecting').toBe(
      true
    );
    server = await listen(port);
    server.on('connection', (ws, req) => ws.send(`again ${req.url}`));
    await until(() => socket.state === 'open', 10000);
    expect(received[received.length - 1]).toMatch(/^again \/events\?n=\d+$/);
    expect(socket.attempts).toBe(0);
  });

  it('retryNow skips the backoff; stop ends the retries', async () => {
    const slow = new ReconnectingSocket({
      url: () => `ws://127.0.0.1:${port}/slow`,
      socketFactory: url => new WebSocket(url) as any,
      retryDelay: () => 60000
    });
    const got: string[] = [];
    slow.messageReceived.connect((_, d) => got.push(String(d)));
    try {
      slow.start();
      await until(() => got.length === 1);
      for (const client of server.clients) {
        client.close(4000, 'bye');
      }
      await until(() => slow.state === 'waiting');
      slow.retryNow(); // no 60 s wait
      await until(() => got.length === 2);
      expect(slow.state).toBe('open');
      slow.stop();
      const before = server.clients.size;
      await until(() => server.clients.size < before || before === 0);
      slow.retryNow(); // stopped: does nothing
      expect(slow.state).toBe('idle');
    } finally {
      slow.dispose();
    }
  });

  it('reports a factory that throws and retries', async () => {
    let calls = 0;
    const bad = new ReconnectingSocket({
      url: () => 'ws://127.0.0.1:1/x',
      socketFactory: () => {
        calls++;
        throw new Error('no sockets here');
      },
      retryDelay: () => 5
    });
    const reasons: string[] = [];
    bad.stateChanged.connect((_, c) => {
      if (c.state === 'waiting') {
        reasons.push(c.reason);
      }
    });
    bad.start();
    await until(() => calls >= 3);
    bad.dispose();
    expect(reasons[0]).toBe('no sockets here');
    const after = calls;
    await new Promise(r => setTimeout(r, 30));
    expect(calls).toBe(after);
  });
});
