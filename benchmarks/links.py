"""Real links: ``python -m benchmarks.links [--quick]`` prints one JSON object.

Everything on 127.0.0.1, shaped by the link lab (benchmarks/linklab.py): a
synthetic-camera agent, a ``jupyter server`` subprocess with this extension, and
clients in this process.  Each result is a ratio to the link's own limits:

- ``remote_viewer``: a camera viewer that reaches Jupyter over 8 Mbit/s each way,
  40 ms RTT (the board is on loopback), 640x480 q80 from a 30 fps camera; three
  viewers in turn: one that never acks (a legacy client: bounded by what the server
  sees of its socket), one that acks (``ack=1``, as the frontend), one that acks with
  ``adaptive=1`` (the frontend's default).  Latency = receive time - ``captured_at``
  (same clock), p50 early and late in the run (growth = late - early); fps and the
  share of the frames the link can carry at the requested quality
  (``link_fps = link bytes/s / frame bytes``);
- ``board_wifi``: Jupyter reaches the board over 16 Mbit/s, 20 ms RTT: a 720p camera
  (fps vs what the link carries, latency vs 2 frame times + RTT), push (vs the link
  rate), REST exec, a trivial kernel cell and a session open (in RTTs, with the round
  trips the link lab counted);
- ``slow_board``: the agent under a CPU quota of a twentieth of a core and 64 MB (cgroup
  v1, where the machine allows; skipped with the reason otherwise): camera fps, exec
  latency, the agent's memory.

Bounded: every scenario runs for a fixed few seconds; every wait has a timeout.
"""
import argparse
import base64
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time

from jupyter_remote_device.app import spawn_agent, stop_process

from .camera import HOST, Server, cpu_seconds, pct
from .linklab import LinkProxy, slow_board

MBIT = 1e6
SLOW_CPUS = 0.05  # a twentieth of one of this machine's cores: roughly a V831-class board's one core


def ms(x):
    return None if x is None else round(1000.0 * x, 1)


class WsViewer(object):
    """A WebSocket camera client in one thread (blocking socket).  With ``ack`` it
    acknowledges each frame right after it "drew" it (``draw_s`` later), as the
    frontend does.  Records (recv_time, seq, captured_at, nbytes) and the statuses."""

    def __init__(self, port, token, path, seconds, ack=False, draw_s=0.004):
        self.port, self.token, self.path = port, token, path
        self.seconds, self.ack, self.draw_s = seconds, ack, draw_s
        self.rec = []
        self.statuses = []
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
        sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _run(self):
        try:
            self._loop()
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)

    def _loop(self):
        import socket
        sock = socket.create_connection((HOST, self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: token %s\r\n\r\n"
                      % (self.path, HOST, self.port, key, self.token)).encode())
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
        stop_at = time.time() + self.seconds
        try:
            while time.time() < stop_at:
                while len(buf) >= 2:
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
                        (hn,) = struct.unpack(">I", payload[:4])
                        h = json.loads(payload[4:4 + hn].decode())
                        self.rec.append((t, h["seq"], h["captured_at"], len(payload)))
                        if self.ack:
                            if self.draw_s:
                                time.sleep(self.draw_s)
                            hold = int((time.time() - t) * 1000)
                            self._send(sock, 1, json.dumps({"type": "ack", "seq": h["seq"],
                                                            "hold_ms": hold}).encode())
                    elif opcode == 1:
                        self.statuses.append(json.loads(payload.decode()))
                    elif opcode == 9:
                        self._send(sock, 0xA, payload)
                    elif opcode == 8:
                        return
                sock.settimeout(max(0.05, stop_at - time.time()))
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

    def result(self):
        self.thread.join(self.seconds + 30)
        if self.error:
            raise RuntimeError("viewer failed: " + self.error)
        return self.rec


def summarize(rec, t_start, seconds, early=(1.0, 4.0), late_span=4.0):
    """fps, bytes/frame and latency p50 early/late for frames of one run."""
    if not rec:
        return {"frames": 0}
    t0 = t_start
    lat = [(t - t0, t - cap) for (t, _, cap, _) in rec]
    e = [x for (dt, x) in lat if early[0] <= dt < early[1]]
    late = [x for (dt, x) in lat if dt >= seconds - late_span]
    steady = [r for r in rec if r[0] - t0 >= 2.0]
    span = (steady[-1][0] - steady[0][0]) if len(steady) > 1 else 0
    fps = (len(steady) - 1) / span if span > 0 else 0.0
    size = statistics.mean(r[3] for r in steady) if steady else None
    return {"frames": len(rec), "fps": round(fps, 2), "frame_kb": round(size / 1000.0, 1) if size else None,
            "latency_p50_early_ms": ms(statistics.median(e)) if e else None,
            "latency_p50_late_ms": ms(statistics.median(late)) if late else None,
            "latency_p90_late_ms": ms(pct(late, 90)) if late else None,
            "latency_growth_ms": ms(statistics.median(late) - statistics.median(e)) if e and late else None}


def last_status(v):
    for st in reversed(v.statuses):
        if st.get("type") == "status" and st.get("state") == "streaming":
            return {k: st.get(k) for k in ("fps", "quality", "width", "height", "link_kbps", "rtt_ms",
                                           "latency_ms", "dropped", "window")}
    return None


def camera_path(did, w, h, q, fps=0, **extra):
    path = "/jupyter-remote-device/devices/%s/camera?width=%d&height=%d&quality=%d&fps=%s" % (did, w, h, q, fps)
    for k, v in extra.items():
        path += "&%s=%s" % (k, v)
    return path


def view(port, server, path, seconds, ack=False):
    t = time.time()
    v = WsViewer(port, server.token, path, seconds, ack=ack)
    rec = v.result()
    out = summarize(rec, t, seconds)
    out["status"] = last_status(v)
    return out


# -- scenarios -------------------------------------------------------------------------

def remote_viewer(server, did, seconds):
    rate, delay = 8 * MBIT, 0.020
    w, h, q = 640, 480, 80
    base = view(server.port, server, camera_path(did, w, h, q), 4.0)  # unshaped: the frame size at q80
    frame_bytes = base["frame_kb"] * 1000.0
    link_fps = (rate / 8.0) / frame_bytes
    out = {"link": {"rate_mbps": rate / MBIT, "rtt_ms": 2 * delay * 1000}, "width": w, "height": h, "quality": q,
           "source_fps_unshaped": base["fps"], "frame_kb": base["frame_kb"], "link_fps": round(link_fps, 2)}
    with LinkProxy((HOST, server.port), rate_bps=rate, delay_s=delay) as link:
        for name, extra, ack in (("no_ack", {}, False), ("ack", {"ack": 1}, True),
                                 ("ack_adaptive", {"ack": 1, "adaptive": 1}, True)):
            r = view(link.port, server, camera_path(did, w, h, q, **extra), seconds, ack=ack)
            r["fps_ratio_to_link"] = round(r["fps"] / link_fps, 3) if r.get("fps") else 0.0
            r["fps_ratio_to_source"] = round(r["fps"] / base["fps"], 3) if base.get("fps") else None
            out[name] = r
    out["targets"] = {"latency_p50_ms": 300, "fps_ratio_to_link": 0.6, "no_ack_latency_ms": 1000,
                      "aim_latency_p50_ms": 150, "aim_fps_adaptive": 25}
    return out


def rest_timings(server, did, n):
    exec_t = []
    for _ in range(n):
        t = time.perf_counter()
        r = server.request("POST", "/jupyter-remote-device/devices/%s/exec" % did, {"code": "1"})
        exec_t.append(time.perf_counter() - t)
        assert r["error"] is None, r
    list_t = []
    for _ in range(n):
        t = time.perf_counter()
        server.request("GET", "/jupyter-remote-device/devices/%s/files?path=." % did)
        list_t.append(time.perf_counter() - t)
    return statistics.median(exec_t), statistics.median(list_t)


def session_open(server, did, n):
    times = []
    for _ in range(n):
        server.request("DELETE", "/jupyter-remote-device/devices/%s/session" % did)
        t = time.perf_counter()
        server.request("POST", "/jupyter-remote-device/devices/%s/session" % did, {})
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def push(server, did, tmp, mb):
    path = os.path.join(tmp, "push.bin")
    with open(path, "wb") as f:
        f.write(os.urandom(mb << 20))
    t = time.perf_counter()
    job = server.request("POST", "/jupyter-remote-device/devices/%s/push" % did,
                         {"source": "push.bin", "dest": "push.bin"})
    end = time.time() + 120
    while job["state"] == "running" and time.time() < end:
        time.sleep(0.05)
        job = server.request("GET", "/jupyter-remote-device/jobs/%s" % job["id"])
    dt = time.perf_counter() - t
    if job["state"] != "done":
        raise RuntimeError("push ended %s: %s" % (job["state"], job.get("error")))
    return (mb << 20) / dt


def kernel_cell(port, token, n, tmp):
    """Median of a trivial cell on the remote-device kernel dialling 127.0.0.1:port."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = os.path.join(repo, "jupyter_remote_device", "kernel", "spec")
    KernelSpecManager().install_kernel_spec(spec, "remote-device", prefix=tmp)
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.path.join(tmp, "share", "jupyter")
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    old = dict(os.environ)
    os.environ.update(env)
    try:
        km = KernelManager(kernel_name="remote-device")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            quiet = lambda m: None  # noqa: E731
            r = kc.execute_interactive("%%connect 127.0.0.1:%d --token %s" % (port, token), timeout=60,
                                       output_hook=quiet)
            assert r["content"]["status"] == "ok", r["content"]
            for _ in range(3):
                kc.execute_interactive("1", timeout=60, output_hook=quiet)
            times = []
            for _ in range(n):
                t = time.perf_counter()
                r = kc.execute_interactive("1", timeout=60, output_hook=quiet)
                times.append(time.perf_counter() - t)
            return statistics.median(times)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    finally:
        os.environ.clear()
        os.environ.update(old)


def board_wifi(server, agent_port, token, tmp, seconds, quick):
    rate, delay = 16 * MBIT, 0.010
    rtt = 2 * delay
    out = {"link": {"rate_mbps": rate / MBIT, "rtt_ms": rtt * 1000}}
    with LinkProxy((HOST, agent_port), rate_bps=rate, delay_s=delay) as link:
        dev = server.request("POST", "/jupyter-remote-device/devices",
                             {"host": HOST, "port": link.port, "token": token, "name": "wifi-board"})
        did = dev["id"]
        t = time.perf_counter()
        server.request("POST", "/jupyter-remote-device/devices/%s/session" % did, {})
        first_open = time.perf_counter() - t
        # 720p camera, read next to Jupyter (the viewer's own link is not the bottleneck here)
        cam = view(server.port, server, camera_path(did, 1280, 720, 80, ack=1), seconds, ack=True)
        link_fps = (rate / 8.0) / (cam["frame_kb"] * 1000.0) if cam.get("frame_kb") else None
        fps_target = min(link_fps, 30.0) if link_fps else None
        cam["link_fps"] = round(link_fps, 2) if link_fps else None
        cam["fps_ratio_to_link"] = round(cam["fps"] / fps_target, 3) if fps_target else None
        if link_fps and cam.get("fps"):
            budget = 2.0 / min(link_fps, cam["fps"]) + rtt
            cam["latency_budget_ms"] = ms(budget)
            cam["latency_ratio_to_budget"] = round(cam["latency_p50_late_ms"] / 1000.0 / budget, 3) \
                if cam.get("latency_p50_late_ms") else None
        out["camera_720p"] = cam
        # push
        mb = 4 if quick else 12
        bps = push(server, did, tmp, mb)
        out["push"] = {"mb": mb, "mbit_s": round(bps * 8 / MBIT, 2), "ratio_to_link": round(bps * 8 / rate, 3)}
        # exec, listing, session open, kernel cell: in RTTs, and the round trips counted on the link
        n = 10 if quick else 25
        m0 = link.mark()
        exec_s, list_s = rest_timings(server, did, n)
        counted = link.since(m0)
        out["exec"] = {"median_ms": ms(exec_s), "in_rtt": round(exec_s / rtt, 2),
                       "target": "<= 2 RTT + 10 ms", "ok": exec_s <= 2 * rtt + 0.010}
        out["listing"] = {"median_ms": ms(list_s), "in_rtt": round(list_s / rtt, 2)}
        out["round_trips_per_exec_and_listing"] = round(counted["round_trips"] / (2.0 * n), 2)
        m0 = link.mark()
        so = session_open(server, did, 3 if quick else 5)
        counted = link.since(m0)
        out["session_open"] = {"median_ms": ms(so), "in_rtt": round(so / rtt, 2), "first_ms": ms(first_open),
                               "round_trips": round(counted["round_trips"] / (3.0 if quick else 5.0), 1),
                               "target": "<= 6 RTT + 20 ms", "ok": so <= 6 * rtt + 0.020}
        try:
            kc_s = kernel_cell(link.port, token, 10 if quick else 25, tmp)
            out["kernel_cell"] = {"median_ms": ms(kc_s), "in_rtt": round(kc_s / rtt, 2),
                                  "target": "<= 2 RTT + 10 ms", "ok": kc_s <= 2 * rtt + 0.010}
        except Exception as e:
            out["kernel_cell"] = {"error": "%s: %s" % (type(e).__name__, e)}
        server.request("DELETE", "/jupyter-remote-device/devices/%s" % did)
    out["targets"] = {"camera_fps_ratio_to_link": 0.85, "push_ratio_to_link": 0.85}
    return out


def slow(server, tmp, seconds, quick):
    sb = slow_board(cpus=SLOW_CPUS, memory_mb=64)
    if sb.skipped:
        return {"skipped": sb.skipped}
    proc, port, token = spawn_agent(root=tempfile.mkdtemp(prefix="jrd-slow-", dir=tmp), python=sb.launcher(tmp))
    try:
        did = server.add_device(port, token, "slow-board")
        c0, t0 = cpu_seconds(proc.pid), time.time()
        cam = view(server.port, server, camera_path(did, 640, 480, 80, ack=1), seconds, ack=True)
        cam["agent_cpu_percent"] = round(100.0 * (cpu_seconds(proc.pid) - c0) / (time.time() - t0), 1)
        cam["fps_ratio_to_source"] = round(cam["fps"] / 30.0, 3) if cam.get("fps") else 0.0
        n = 10 if quick else 20
        exec_s, list_s = rest_timings(server, did, n)
        with open("/proc/%d/status" % proc.pid) as f:
            rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")][0]
        out = {"limits": sb.describe(), "camera_640x480": cam, "exec_median_ms": ms(exec_s),
               "listing_median_ms": ms(list_s), "agent_rss_kb": rss,
               "memory_peak_mb": round(sb.memory_peak() / 1048576.0, 1) if sb.memory_peak() else None}
        server.request("DELETE", "/jupyter-remote-device/devices/%s" % did)
        return out
    finally:
        stop_process(proc)
        sb.close()


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="shorter windows")
    p.add_argument("--only", choices=("remote_viewer", "board_wifi", "slow_board"), action="append")
    args = p.parse_args(argv)
    seconds = 8.0 if args.quick else 16.0
    only = set(args.only or ("remote_viewer", "board_wifi", "slow_board"))
    tmp = tempfile.mkdtemp(prefix="jrd-bench-links-")
    server = Server(tmp)
    proc, port, token = spawn_agent(root=tempfile.mkdtemp(prefix="jrd-root-", dir=tmp))
    result = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    try:
        did = server.add_device(port, token, "bench-board")
        if "remote_viewer" in only:
            result["remote_viewer"] = remote_viewer(server, did, seconds)
        server.request("DELETE", "/jupyter-remote-device/devices/%s/session" % did)  # one holder per board
        if "board_wifi" in only:
            result["board_wifi"] = board_wifi(server, port, token, tmp, seconds / 2, args.quick)
        if "slow_board" in only:
            result["slow_board"] = slow(server, tmp, seconds / 2, args.quick)
    finally:
        stop_process(proc)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
