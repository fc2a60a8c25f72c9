"""Camera benchmark: ``python -m benchmarks.camera`` prints one JSON object.

Everything runs on loopback in one run (a synthetic-camera agent, a ``jupyter
server`` subprocess with this extension, WebSocket viewers in this process), so the
ratios compare like with like on this machine:

- ``fanout``: 1, 4 and 16 viewers of one 640x480 q80 stream of a 30 fps camera:
  delivered fps per viewer vs the camera's source fps (from the frames' ``seq`` and
  ``captured_at``), capture-to-socket latency (receive time minus ``captured_at``:
  same machine, same clock), server and agent CPU and RSS;
- ``api_status``: jupyter ``/api/status`` latency (a separate process polling) while
  16 viewers stream, and idle for comparison;
- ``unthrottled``: a camera that makes frames on demand (``JRD_CAMERA_FPS=0``), one
  viewer with no fps cap, at 640x480 and 1280x720: delivered fps vs the agent's
  encode-only fps for the same synthetic frames (measured in a subprocess, one
  thread, the frames generated beforehand), plus the same stream read straight from
  the agent over rpyc (no jupyter server) to show where the difference goes;
- ``slow_viewer``: a normal viewer next to one reading one frame a second: the
  normal viewer's ratio and the server's RSS over the run.

Bounded: a few seconds per scenario, every wait has a timeout; child processes are
killed at the end (also on error).  Use ``--quick`` for shorter windows.
"""
import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from jupyter_remote_device.app import spawn_agent, stop_process

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

STATUS_PROBER = r"""
import http.client, json, sys, time
port, token, duration = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
lat = []
end = time.time() + duration
while time.time() < end:
    t = time.perf_counter()
    c.request("GET", "/api/status", headers={"Authorization": "token " + token})
    r = c.getresponse(); r.read()
    lat.append(time.perf_counter() - t)
    time.sleep(0.01)
print(json.dumps(lat))
"""

ENCODE_ONLY = r"""
import json, sys, time
from jupyter_remote_device.agent.camera.synthetic import SyntheticSource
w, h, q = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
src = SyntheticSource("0", fps=0)
src.open(w, h)
frames = [src.capture()[0] for _ in range(30)]
print("ready", flush=True)
for line in sys.stdin:  # one timed window per line: "<seconds>"
    seconds = float(line)
    t = time.perf_counter(); n = 0; size = 0
    while time.perf_counter() - t < seconds:
        size += len(src.encode(frames[n % len(frames)], w, h, q)); n += 1
    enc = n / (time.perf_counter() - t)
    t = time.perf_counter(); m = 0
    while time.perf_counter() - t < seconds / 2:
        f = src.capture()[0]; src.encode(f, w, h, q); m += 1
    both = m / (time.perf_counter() - t)
    print(json.dumps({"encode_only_fps": round(enc, 1), "generate_and_encode_fps": round(both, 1),
                      "jpeg_kb": round(size / n / 1000.0, 1)}), flush=True)
"""


class EncodeOnly(object):
    """A worker process that encodes the synthetic camera's frames in one thread, on
    request, so encode-only windows can sit right next to the streaming windows."""

    def __init__(self, width, height, quality=80):
        self.proc = subprocess.Popen([sys.executable, "-c", ENCODE_ONLY, str(width), str(height), str(quality)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, seconds):
        self.proc.stdin.write("%f\n" % seconds)
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / float(CLK_TCK)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    return None


class ProcMeter(object):
    def __init__(self, pids):
        self.pids = pids
        self.t0 = time.time()
        self.c0 = dict((k, cpu_seconds(p)) for k, p in pids.items())

    def result(self):
        dt = time.time() - self.t0
        out = {}
        for k, p in self.pids.items():
            out[k + "_cpu_percent"] = round(100.0 * (cpu_seconds(p) - self.c0[k]) / dt, 1)
            out[k + "_rss_mb"] = rss_mb(p)
        return out


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def ms(x):
    return None if x is None else round(1000.0 * x, 2)


class Server(object):
    """A ``jupyter server`` subprocess with the extension, isolated in a temp dir."""

    def __init__(self, tmp):
        self.port = free_port()
        self.token = secrets.token_hex(16)
        cfg = {
            "ServerApp": {"jpserver_extensions": {"jupyter_remote_device": True}, "ip": HOST,
                          "port": self.port, "open_browser": False, "root_dir": tmp,
                          "port_retries": 0, "allow_root": True},
            "IdentityProvider": {"token": self.token},
            "DeviceManager": {"mdns": False, "allowed_networks": ["127.0.0.0/8", "::1/128"],
                              "probe_hosts": []},
        }
        path = os.path.join(tmp, "bench_server_config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ)
        for d in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
            env[d] = os.path.join(tmp, d.lower())
        self.log = open(os.path.join(tmp, "server.log"), "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--config=" + path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        end = time.time() + 60
        while True:
            try:
                self.request("GET", "/api/status")
                break
            except Exception:
                if self.proc.poll() is not None or time.time() > end:
                    raise RuntimeError("jupyter server did not start; see %s" % self.log.name)
                time.sleep(0.2)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://%s:%d%s" % (HOST, self.port, path), data=data, method=method,
                                     headers={"Authorization": "token " + self.token})
        with urllib.request.urlopen(req, timeout=20) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def add_device(self, port, token, name):
        dev = self.request("POST", "/jupyter-remote-device/devices",
                           {"host": HOST, "port": port, "token": token, "name": name})
        self.request("POST", "/jupyter-remote-device/devices/%s/session" % dev["id"], {})
        return dev["id"]

    def ws_url(self, did, width, height, quality=80, fps=0):
        """The camera socket's path (the raw client adds host, port and token)."""
        return "/jupyter-remote-device/devices/%s/camera?width=%d&height=%d&quality=%d&fps=%s" % (
            did, width, height, quality, fps)

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def header(msg):
    (n,) = struct.unpack(">I", msg[:4])
    return json.loads(msg[4:4 + n].decode())


class RawViewer(object):
    """A minimal WebSocket client (one thread, blocking socket): handshake, then read
    frames and time them as they complete.  Cheaper per message than a coroutine
    client, so with 16 viewers the measuring side isn't what limits the rate.
    ``every`` > 0 makes a slow viewer: it stops reading for that long after each frame
    (TCP backpressure reaches the server, as with a real slow browser)."""

    def __init__(self, server, path, start_at, stop_at, every=0.0):
        self.server, self.path = server, path
        self.start_at, self.stop_at, self.every = start_at, stop_at, every
        self.rec = []
        self.statuses = 0
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, sock, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(head + mask + masked)

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # reported, never silent
            self.error = "%s: %s" % (type(e).__name__, e)

    def _loop(self):
        sock = socket.create_connection((HOST, self.server.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: token %s\r\n\r\n"
                      % (self.path, HOST, self.server.port, key, self.server.token)).encode())
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("handshake: connection closed")
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("handshake refused: %r" % head[:200])
        buf = bytearray(rest)
        try:
            while True:
                left = self.stop_at - time.time()
                if left <= 0:
                    break
                # parse every complete frame in the buffer
                while len(buf) >= 2 and time.time() < self.stop_at:
                    b0, b1 = buf[0], buf[1]
                    n, off = b1 & 0x7F, 2
                    if n == 126:
                        if len(buf) < 4:
                            break
                        n, off = struct.unpack(">H", bytes(buf[2:4]))[0], 4
                    elif n == 127:
                        if len(buf) < 10:
                            break
                        n, off = struct.unpack(">Q", bytes(buf[2:10]))[0], 10
                    if len(buf) < off + n:
                        break
                    opcode = b0 & 0x0F
                    payload = bytes(buf[off:off + n])
                    del buf[:off + n]
                    if opcode == 2:
                        t = time.time()
                        if t >= self.start_at:
                            h = header(payload)
                            self.rec.append((t, h["seq"], h["captured_at"]))
                        if self.every:
                            time.sleep(self.every)
                    elif opcode == 1:
                        self.statuses += 1
                    elif opcode == 9:
                        self._send(sock, 0xA, payload)
                    elif opcode == 8:
                        return
                sock.settimeout(max(0.05, self.stop_at - time.time()))
                try:
                    chunk = sock.recv(1 << 20)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf += chunk
        finally:
            try:
                self._send(sock, 8, struct.pack(">H", 1000))
            except Exception:
                pass
            sock.close()

    async def result(self):
        while self.thread.is_alive():
            await asyncio.sleep(0.05)
        if self.error:
            raise RuntimeError("viewer failed: " + self.error)
        return self.rec


async def run_viewer(server, path, start_at, stop_at, every=0.0):
    """Read frames until stop_at; returns [(recv_time, seq, captured_at)] for frames after start_at."""
    return await RawViewer(server, path, start_at, stop_at, every).result()


def summarize(rec):
    if len(rec) < 2:
        return {"frames": len(rec)}
    (t0, s0, c0), (t1, s1, c1) = rec[0], rec[-1]
    delivered = (len(rec) - 1) / (t1 - t0)
    source = (s1 - s0) / (c1 - c0) if c1 > c0 else None
    return {"frames": len(rec), "delivered_fps": round(delivered, 2),
            "source_fps": round(source, 2) if source else None,
            "ratio": round(len(rec) / float(s1 - s0 + 1), 3)}


async def fanout(server, did, pids, n, seconds, warmup, status_probe=False):
    now = time.time()
    start_at, stop_at = now + warmup, now + warmup + seconds
    url = server.ws_url(did, 640, 480, 80, 0)
    tasks = [asyncio.ensure_future(run_viewer(server, url, start_at, stop_at)) for _ in range(n)]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    meter = ProcMeter(pids)
    prober = None
    if status_probe:
        prober = subprocess.Popen([sys.executable, "-c", STATUS_PROBER, str(server.port), server.token,
                                   str(seconds - 0.3)], stdout=subprocess.PIPE, text=True)
    recs = await asyncio.gather(*tasks)
    usage = meter.result()
    per = [summarize(r) for r in recs]
    lat = [t - c for r in recs for (t, s, c) in r]
    out = {"viewers": n, "loadavg_1m": round(os.getloadavg()[0], 2),
           "delivered_fps_per_viewer": [p.get("delivered_fps") for p in per],
           "source_fps": per[0].get("source_fps"),
           "ratio_min": min(p.get("ratio", 0) for p in per),
           "ratio_mean": round(sum(p.get("ratio", 0) for p in per) / n, 3),
           "latency_ms": {"p50": ms(pct(lat, 50)), "p95": ms(pct(lat, 95)), "p99": ms(pct(lat, 99)),
                          "max": ms(max(lat) if lat else None)}}
    out.update(usage)
    if prober is not None:
        lat_s = json.loads(prober.communicate(timeout=seconds + 30)[0])
        out["api_status_ms"] = {"n": len(lat_s), "p50": ms(pct(lat_s, 50)), "p99": ms(pct(lat_s, 99)),
                                "max": ms(max(lat_s))}
    return out


def status_idle(server, seconds):
    p = subprocess.run([sys.executable, "-c", STATUS_PROBER, str(server.port), server.token, str(seconds)],
                       stdout=subprocess.PIPE, text=True, timeout=seconds + 30)
    lat = json.loads(p.stdout)
    return {"n": len(lat), "p50": ms(pct(lat, 50)), "p99": ms(pct(lat, 99)), "max": ms(max(lat))}


def agent_direct(port, token, width, height, seconds):
    """The same unthrottled stream read straight from the agent (pipelined camera_next)."""
    import collections

    import rpyc

    from jupyter_remote_device.link import connect
    c = connect(HOST, port, token)
    try:
        sid = c.root.camera_open("0", width, height, 80, 0)
        anext = rpyc.async_(c.root.camera_next)
        c.root.camera_next(sid, -1, 5.0)  # time from the first frame on
        pending = collections.deque(anext(sid, -1, 2.0) for _ in range(2))
        n = 0
        t0 = time.time()
        while time.time() - t0 < seconds:
            data = pending.popleft().value
            pending.append(anext(sid, -1, 2.0))
            if data:
                n += 1
        fps = n / (time.time() - t0)
        for r in pending:
            r.wait()
        c.root.camera_close(sid)
        return round(fps, 1)
    finally:
        c.close()


def agent_encode_totals(port, token):
    from jupyter_remote_device.link import connect
    c = connect(HOST, port, token)
    try:
        cam = json.loads(c.root.camera_stats())["cameras"][0]
        return cam["encodes"], cam.get("encode_s", 0.0)
    finally:
        c.close()


async def unthrottled(server, did, pids, width, height, rounds, window, agent_port, agent_token):
    """Short interleaved rounds of (stream through the server, the agent read straight
    over rpyc, encode-only in a worker process).  Other load on a shared machine moves
    all three; each round's delivered/encode-only pair is measured seconds apart, and
    the best and median of each series are reported."""
    loop = asyncio.get_running_loop()
    path = server.ws_url(did, width, height, 80, 0)
    delivered, direct, enc_only, in_run, paired, lat = [], [], [], [], [], []
    worker = await loop.run_in_executor(None, EncodeOnly, width, height)
    # a stream that never reads keeps the camera open between rounds (an on-demand
    # source makes no frames for it), so no round pays for opening the camera
    from jupyter_remote_device.link import connect
    keep = await loop.run_in_executor(None, connect, HOST, agent_port, agent_token)
    await loop.run_in_executor(None, keep.root.camera_open, "0", width, height, 80, 0)
    extra = {}
    meter = ProcMeter(pids)
    usage = {}
    try:
        for _ in range(rounds):
            e0 = await loop.run_in_executor(None, agent_encode_totals, agent_port, agent_token)
            now = time.time()
            rec = await run_viewer(server, path, now + 0.5, now + 0.5 + window)
            e1 = await loop.run_in_executor(None, agent_encode_totals, agent_port, agent_token)
            usage = meter.result()
            s = summarize(rec)
            eo = await loop.run_in_executor(None, worker.run, window / 2)
            enc_only.append(eo["encode_only_fps"])
            extra = eo
            if s.get("delivered_fps"):
                delivered.append(s["delivered_fps"])
                paired.append(s["delivered_fps"] / eo["encode_only_fps"])
            lat.extend(t - c for (t, _, c) in rec)
            if e1[0] > e0[0] and e1[1] > e0[1]:
                in_run.append((e1[0] - e0[0]) / (e1[1] - e0[1]))
            direct.append(await loop.run_in_executor(None, agent_direct, agent_port, agent_token, width,
                                                     height, window / 2))
            meter = ProcMeter(pids)
    finally:
        worker.close()
        keep.close()

    def best_med(v, nd=1):
        v = sorted(v)
        return {"best": round(v[-1], nd), "median": round(v[len(v) // 2], nd),
                "all": [round(x, nd) for x in v]} if v else None

    out = {"rounds": rounds, "window_s": window, "loadavg_1m": round(os.getloadavg()[0], 2),
           "delivered_fps": best_med(delivered),
           "agent_direct_rpyc_fps": best_med(direct),
           "encode_only_fps": best_med(enc_only),
           "agent_in_run_encode_only_fps": best_med(in_run),
           "paired_ratio": best_med(paired, 3),
           "generate_and_encode_fps": extra.get("generate_and_encode_fps"),
           "jpeg_kb": extra.get("jpeg_kb"),
           "latency_ms": {"p50": ms(pct(lat, 50)), "p95": ms(pct(lat, 95))}}
    out.update(usage)
    if delivered and enc_only:
        out["ratio_vs_encode_only"] = round(max(delivered) / max(enc_only), 3)
    if delivered and in_run:
        out["ratio_vs_in_run_encode_only"] = round(max(delivered) / max(in_run), 3)
    return out


async def slow_viewer(server, did, pids, seconds, warmup):
    now = time.time()
    url = server.ws_url(did, 640, 480, 80, 0)
    start_at, stop_at = now + warmup, now + warmup + seconds
    normal = asyncio.ensure_future(run_viewer(server, url, start_at, stop_at))
    slow = asyncio.ensure_future(run_viewer(server, url, start_at, stop_at, every=1.0))
    await asyncio.sleep(warmup)
    rss = [rss_mb(pids["server"])]
    meter = ProcMeter(pids)
    while time.time() < stop_at - 0.2:
        await asyncio.sleep(1.0)
        rss.append(rss_mb(pids["server"]))
    rn, rs = await normal, await slow
    out = {"normal": summarize(rn), "slow_frames": len(rs), "server_rss_mb_over_time": rss}
    out.update(meter.result())
    return out


async def main_async(args, tmp, procs):
    agent, aport, atoken = spawn_agent(host=HOST, camera="synthetic", root=os.path.join(tmp, "board1"),
                                       env=dict(os.environ, JRD_CAMERA_FPS="30"))
    procs.append(agent)
    agent2, aport2, atoken2 = spawn_agent(host=HOST, camera="synthetic", root=os.path.join(tmp, "board2"),
                                          env=dict(os.environ, JRD_CAMERA_FPS="0"))
    procs.append(agent2)
    server = Server(tmp)
    procs.append(server)
    did = server.add_device(aport, atoken, "bench-30fps")
    did2 = server.add_device(aport2, atoken2, "bench-on-demand")
    pids = {"server": server.proc.pid, "agent": agent.pid, "bench_clients": os.getpid()}
    pids2 = {"server": server.proc.pid, "agent": agent2.pid, "bench_clients": os.getpid()}
    sec, warm = args.seconds, 1.0
    result = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
              }
    idle = ProcMeter(pids)
    await asyncio.sleep(1.0)
    result["idle"] = idle.result()
    result["api_status_idle_ms"] = status_idle(server, min(3.0, sec))
    result["fanout"] = []
    for n in (1, 4, 16):
        result["fanout"].append(await fanout(server, did, pids, n, sec, warm, status_probe=(n == 16)))
        await asyncio.sleep(0.5)
    result["slow_viewer"] = await slow_viewer(server, did, pids, max(sec, 5.0), warm)
    await asyncio.sleep(0.5)
    result["unthrottled"] = {}
    for (w, h) in ((640, 480), (1280, 720)):
        result["unthrottled"]["%dx%d" % (w, h)] = await unthrottled(
            server, did2, pids2, w, h, args.rounds, min(1.0, sec / 2), aport2, atoken2)
        await asyncio.sleep(0.3)
    result["after"] = {"server_rss_mb": rss_mb(server.proc.pid), "agent_rss_mb": rss_mb(agent.pid),
                       "loadavg": [round(x, 2) for x in os.getloadavg()]}
    return result


def targets(r):
    f = dict((x["viewers"], x) for x in r["fanout"])
    u = r["unthrottled"]
    return {
        "delivered/source >= 0.97 (1 viewer)": f[1]["ratio_min"],
        "delivered/source >= 0.97 (4 viewers)": f[4]["ratio_min"],
        "delivered/source >= 0.95 (16 viewers)": f[16]["ratio_min"],
        "latency p50 <= 5 ms (1 viewer)": f[1]["latency_ms"]["p50"],
        "latency p95 <= 12 ms (1 viewer)": f[1]["latency_ms"]["p95"],
        "unthrottled/encode-only >= 0.7 (640x480), best vs best": u["640x480"].get("ratio_vs_encode_only"),
        "unthrottled/encode-only >= 0.85 (1280x720), best vs best": u["1280x720"].get("ratio_vs_encode_only"),
        "unthrottled/encode-only (640x480), median of paired rounds": (u["640x480"].get("paired_ratio") or {}).get(
            "median"),
        "unthrottled/encode-only (1280x720), median of paired rounds": (u["1280x720"].get("paired_ratio") or {}).get(
            "median"),
        "unthrottled/agent in-run encode-only (640x480)": u["640x480"].get("ratio_vs_in_run_encode_only"),
        "unthrottled/agent in-run encode-only (1280x720)": u["1280x720"].get("ratio_vs_in_run_encode_only"),
        "normal viewer beside a slow one >= 0.95": r["slow_viewer"]["normal"].get("ratio"),
        "/api/status p99 <= 20 ms (16 viewers)": f[16]["api_status_ms"]["p99"],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=4.0, help="measuring window per scenario (default 4)")
    p.add_argument("--rounds", type=int, default=6, help="unthrottled rounds per size (best-of)")
    p.add_argument("--quick", action="store_true", help="2 s windows, 2 rounds")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 2.0
        args.rounds = 3
    tmp = tempfile.mkdtemp(prefix="jrd-bench-camera-")
    procs = []
    t0 = time.time()
    try:
        result = asyncio.run(main_async(args, tmp, procs))
        result["targets"] = targets(result)
        result["wall_s"] = round(time.time() - t0, 1)
        print(json.dumps(result, indent=1))
    finally:
        for pr in reversed(procs):
            try:
                if isinstance(pr, Server):
                    pr.stop()
                else:
                    pr.kill()
                    pr.wait(10)
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
