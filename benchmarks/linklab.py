"""The link lab: a bottleneck link between two of our processes, and a slow board.

``LinkProxy`` is a userspace TCP proxy on 127.0.0.1 (``tc netem`` is not available
everywhere; this is portable) that shapes each direction like a real path:

- a rate cap (bits per second) per direction: bytes leave the bottleneck no faster;
- a one-way delay per direction (RTT = both delays);
- a small link buffer: the proxy reads from the sender only while the bottleneck
  holds less than ``buffer`` bytes, and its own sockets have small receive buffers,
  so the excess waits in the *sender's* socket (as on a real path, where the sender's
  send queue is what grows) rather than in the proxy;
- a TCP connect costs one RTT (the handshake) before the first byte goes through.

It also counts, per connection and in total, the bytes each way and the *round
trips*: a run of client-to-server data followed by server-to-client data is one
exchange, so a request and its reply count 1 however many segments they take, and
pipelined requests count 1 together.  Tests count round trips with it; benchmarks
time things through it.

Use it between any two processes: point the client at ``proxy.port`` instead of the
server's port (a browser-side client to Jupyter, Jupyter to an agent, a kernel to an
agent).  It runs its own asyncio loop in a daemon thread, so sync and async callers
alike can use it::

    with LinkProxy(("127.0.0.1", agent_port), rate_bps=16e6, delay_s=0.010) as link:
        ... dial 127.0.0.1:link.port ...
        link.stats()["round_trips"]

``slow_board(...)``: a context that puts a process (the agent) under a cgroup v1 CPU
quota and memory limit where ``/sys/fs/cgroup/cpu`` and ``/sys/fs/cgroup/memory``
exist and we are root; otherwise it says why not (``SlowBoard.skipped``).

Loopback only; every wait is bounded.
"""
import asyncio
import os
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
CHUNK = 16384
SOCK_BUF = 16384   # the proxy's socket buffers (the kernel doubles it)


class Shape(object):
    """One direction of a link: rate (bits/s, None = unlimited), one-way delay (s), buffer (bytes)."""

    def __init__(self, rate_bps=None, delay_s=0.0, buffer_bytes=None):
        self.rate = None if not rate_bps else float(rate_bps) / 8.0  # bytes per second
        self.delay = float(delay_s or 0.0)
        if buffer_bytes is None:
            # a small buffer: ~5 ms of the rate, at least two chunks
            buffer_bytes = max(2 * CHUNK, int((self.rate or 0) * 0.005))
        self.buffer = int(buffer_bytes)

    def describe(self):
        return {"rate_mbps": round(self.rate * 8 / 1e6, 3) if self.rate else None,
                "delay_ms": round(self.delay * 1000, 2), "buffer_bytes": self.buffer}


class _Conn(object):
    def __init__(self, n):
        self.n = n
        self.bytes = {"up": 0, "down": 0}
        self.round_trips = 0
        self.last_dir = None
        self.trace = []  # (seconds since open, "up"/"down", bytes) with LinkProxy(trace=True)
        self.opened = time.monotonic()
        self.closed = None


class LinkProxy(object):
    """A shaped TCP proxy on 127.0.0.1 to ``target`` (host, port); see the module docstring."""

    def __init__(self, target, rate_bps=None, delay_s=0.0, up=None, down=None, buffer_bytes=None,
                 connect_rtt=True, trace=False):
        self.target = target
        # "up": client -> target; "down": target -> client (a symmetric link unless told otherwise)
        self.up = up or Shape(rate_bps, delay_s, buffer_bytes)
        self.down = down or Shape(rate_bps, delay_s, buffer_bytes)
        self.connect_rtt = connect_rtt
        self.trace = trace
        self.conns = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server = None
        self._tasks = set()
        self.port = None
        self._thread = threading.Thread(target=self._run, name="linklab", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self.port is None:
            raise RuntimeError("the link proxy did not start")

    def set_rate(self, rate_bps, direction="both"):
        """Change the rate cap live (None: unlimited); open connections follow at once."""
        for d in ((self.up, self.down) if direction == "both" else (getattr(self, direction),)):
            d.rate = None if not rate_bps else float(rate_bps) / 8.0

    @property
    def rtt(self):
        return self.up.delay + self.down.delay

    # -- the lab's own thread ---------------------------------------------------
    def _run(self):
        asyncio.set_event_loop(self._loop)
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)  # inherited by accepted sockets
        lsock.bind((HOST, 0))
        lsock.listen(64)
        lsock.setblocking(False)
        self._lsock = lsock
        self.port = lsock.getsockname()[1]
        self._accept_task = self._loop.create_task(self._accept_loop())
        self._ready.set()
        try:
            self._loop.run_forever()
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        finally:
            lsock.close()
            self._loop.close()

    async def _accept_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(self._lsock)
            except (OSError, asyncio.CancelledError):
                return
            t = loop.create_task(self._serve(client))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _serve(self, client):
        loop = asyncio.get_running_loop()
        with self._lock:
            conn = _Conn(len(self.conns))
            self.conns.append(conn)
        client.setblocking(False)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUF)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.setblocking(False)
        try:
            if self.connect_rtt and self.rtt:
                await asyncio.sleep(self.rtt)  # SYN, SYN-ACK over the link
            await asyncio.wait_for(loop.sock_connect(upstream, self.target), 10)
        except (OSError, asyncio.TimeoutError):
            client.close()
            upstream.close()
            conn.closed = time.monotonic()
            return
        try:
            await asyncio.gather(self._pump(client, upstream, self.up, conn, "up"),
                                 self._pump(upstream, client, self.down, conn, "down"))
        finally:
            client.close()
            upstream.close()
            conn.closed = time.monotonic()

    async def _pump(self, src, dst, shape, conn, direction):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        state = {"queued": 0}
        free_at = loop.time()  # when the bottleneck has sent everything read so far

        async def writer():
            while True:
                arrival, data = await queue.get()
                wait = arrival - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    await loop.sock_sendall(dst, data)
                except OSError:
                    return
                state["queued"] -= len(data)

        wtask = loop.create_task(writer())
        try:
            while True:
                now = loop.time()
                limit = shape.buffer + int((shape.rate or 0) * shape.delay) + 2 * CHUNK
                if shape.rate:
                    backlog = (free_at - now) * shape.rate  # bytes still to leave the bottleneck
                    want = min(CHUNK, shape.buffer // 2)  # read in whole chunks, not in slivers
                    if backlog > shape.buffer - want:
                        await asyncio.sleep(max(0.0005, (backlog - (shape.buffer - want)) / shape.rate))
                        continue
                    room = int(shape.buffer - max(0.0, backlog))
                else:
                    room = CHUNK
                if state["queued"] > limit:  # the receiver does not read: stop reading too
                    await asyncio.sleep(0.002)
                    continue
                try:
                    data = await loop.sock_recv(src, max(1, min(CHUNK, room)))
                except OSError:
                    data = b""
                now = loop.time()
                if not data:
                    queue.put_nowait((max(free_at, now) + shape.delay, None))
                    break
                with self._lock:
                    conn.bytes[direction] += len(data)
                    if direction == "down" and conn.last_dir == "up":
                        conn.round_trips += 1
                    conn.last_dir = direction
                    if self.trace:
                        conn.trace.append((round(time.monotonic() - conn.opened, 4), direction, len(data)))
                start = max(now, free_at)
                free_at = start + (len(data) / shape.rate if shape.rate else 0.0)
                state["queued"] += len(data)
                queue.put_nowait((free_at + shape.delay, data))
            await wtask
        finally:
            if not wtask.done():
                wtask.cancel()

    # -- the caller's side ------------------------------------------------------
    def stats(self):
        with self._lock:
            conns = [{"n": c.n, "up": c.bytes["up"], "down": c.bytes["down"], "round_trips": c.round_trips,
                      "open": c.closed is None} for c in self.conns]
        return {"connections": len(conns), "round_trips": sum(c["round_trips"] for c in conns),
                "bytes_up": sum(c["up"] for c in conns), "bytes_down": sum(c["down"] for c in conns),
                "conns": conns}

    def mark(self):
        """A snapshot to diff against: ``link.since(mark)`` -> what happened after it."""
        return self.stats()

    def since(self, mark):
        now = self.stats()
        before = {c["n"]: c for c in mark["conns"]}
        rts = 0
        for c in now["conns"]:
            rts += c["round_trips"] - before.get(c["n"], {"round_trips": 0})["round_trips"]
        return {"round_trips": rts, "connections": now["connections"] - mark["connections"],
                "bytes_up": now["bytes_up"] - mark["bytes_up"], "bytes_down": now["bytes_down"] - mark["bytes_down"]}

    def describe(self):
        return {"up": self.up.describe(), "down": self.down.describe(), "rtt_ms": round(self.rtt * 1000, 2)}

    def close(self):
        def stop():
            # first unhook the listening socket: an accept already scheduled in this loop turn would
            # otherwise set a result on the future cancelled below (asyncio's InvalidStateError)
            self._loop.remove_reader(self._lsock)
            for t in list(self._tasks) + [self._accept_task]:
                t.cancel()
            self._loop.stop()  # the listening socket closes once the loop is done with it
        try:
            self._loop.call_soon_threadsafe(stop)
        except RuntimeError:
            return
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the slow board ------------------------------------------------------------------

CGROUP = "/sys/fs/cgroup"


def _own_cgroup(controller):
    """Our process's cgroup path for a v1 controller ('/' when at the root)."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if controller in ctrls.split(","):
                    return path
    except OSError:
        pass
    return "/"


class SlowBoard(object):
    """A cgroup v1 pair (cpu quota, memory limit) for one process; see ``slow_board``."""

    def __init__(self, cpus=0.25, memory_mb=64):
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.skipped = None
        self.dirs = []
        cpu_root, mem_root = os.path.join(CGROUP, "cpu"), os.path.join(CGROUP, "memory")
        if os.geteuid() != 0:
            self.skipped = "not root: cannot make cgroups"
        elif not (os.path.isdir(cpu_root) and os.path.isdir(mem_root)):
            self.skipped = "no cgroup v1 cpu and memory controllers at %s" % CGROUP
        if self.skipped:
            return
        name = "jrd-slow-board-%d" % os.getpid()
        try:
            # nested under our own cgroups, so every limit we are under still applies
            self.cpu = os.path.join(cpu_root, _own_cgroup("cpu").lstrip("/"), name)
            self.mem = os.path.join(mem_root, _own_cgroup("memory").lstrip("/"), name)
            for d in (self.cpu, self.mem):
                os.makedirs(d, exist_ok=True)
                self.dirs.append(d)
            period = 100000
            _write(os.path.join(self.cpu, "cpu.cfs_period_us"), period)
            _write(os.path.join(self.cpu, "cpu.cfs_quota_us"), int(period * cpus))
            _write(os.path.join(self.mem, "memory.limit_in_bytes"), int(memory_mb) << 20)
            try:
                _write(os.path.join(self.mem, "memory.memsw.limit_in_bytes"), int(memory_mb) << 20)
            except OSError:
                pass  # no swap accounting: the RAM limit alone
        except OSError as e:
            self.skipped = "could not set up cgroups: %s" % e
            self.close()

    def add(self, pid):
        """Move ``pid`` (and the threads it starts from now on) under the limits."""
        if self.skipped:
            return False
        for d in (self.cpu, self.mem):
            _write(os.path.join(d, "cgroup.procs"), pid)
        return True

    def launcher(self, directory):
        """An executable that joins these cgroups, then runs Python with its arguments: give it
        to ``spawn_agent(python=...)`` so the agent is limited from its first byte (memory is
        charged to the cgroup a page was touched in)."""
        path = os.path.join(directory, "slow-python")
        with open(path, "w") as f:
            f.write("#!%s\nimport os, sys\nfor d in %r:\n"
                    "    open(os.path.join(d, 'cgroup.procs'), 'w').write(str(os.getpid()))\n"
                    "os.execv(%r, [%r] + sys.argv[1:])\n"
                    % (sys.executable, [self.cpu, self.mem], sys.executable, sys.executable))
        os.chmod(path, 0o755)
        return path

    def memory_peak(self):
        try:
            with open(os.path.join(self.mem, "memory.max_usage_in_bytes")) as f:
                return int(f.read())
        except (OSError, ValueError, AttributeError):
            return None

    def describe(self):
        if self.skipped:
            return {"skipped": self.skipped}
        return {"cpus": self.cpus, "memory_mb": self.memory_mb}

    def close(self):
        for d in reversed(self.dirs):
            for _ in range(50):  # the process must have left (exited) first
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)
        self.dirs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def slow_board(cpus=0.25, memory_mb=64):
    return SlowBoard(cpus, memory_mb)


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))
