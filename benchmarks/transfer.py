"""Transfer benchmark: ``python -m benchmarks.transfer`` prints one JSON object.

Everything runs on loopback (127.0.0.1) in one run, so the ratios compare like
with like on this machine:

- ``push``: a random file (default 128 MB) pushed through ``TransferManager`` to a
  real agent subprocess (pipelined 1 MiB ``fs_write_chunk`` calls, sha256 on both
  sides, fsync + atomic rename on the board), over the board link's TLS (the default);
- ``push_no_tls``: the same push to a second agent started with ``--no-tls`` (interleaved
  with the first: the cost of the encryption);
- ``classic_upload``: ``rpyc.classic.upload`` of a smaller file (default 16 MB) to a
  stock ``rpyc_classic`` server, the way rpyc_ikernel-era tools copy files;
- ``plain_socket``: the same job over one plain TCP socket to a receiver process
  that hashes with sha256, writes a temp file, fsyncs and renames it: the floor any
  push has to pay;
- ``folder``: a 120-file folder pushed, then re-synced unchanged (must send nothing);
- ``agent_rss``: the agent's resident memory growth while it receives the pushes.

Bounded: fixed repetitions, every wait has a timeout; temp files are removed at
the end (also on error).
"""
import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from jupyter_remote_device import link
from jupyter_remote_device.app import spawn_agent
from jupyter_remote_device.server.transfer import CHUNK, IN_FLIGHT, TransferManager

HOST = "127.0.0.1"
MB = 1000 * 1000


class LoopbackSession(object):
    """What TransferManager needs from a DeviceSession: new connections to the board."""

    def __init__(self, port, token):
        self.port = port
        self.token = token
        self.device_id = "bench"
        self.name = "bench"

    def connect_new(self):
        return link.connect(HOST, self.port, self.token, timeout=10)


def write_random(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 << 20)
            b = os.urandom(n)
            h.update(b)
            f.write(b)
            left -= n
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(object):
    def __init__(self, pid, interval=0.01):
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kb(self.pid)
            if v is not None:
                self.peak = max(self.peak, v)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


def run_job(tm, session, source, dest, sync=False, timeout=300):
    j = tm.start_push(session, source, dest, sync=sync)
    t0 = time.perf_counter()
    tm.wait(j["id"], timeout)
    dt = time.perf_counter() - t0
    job = tm.get(j["id"])
    if job["state"] != "done":
        raise RuntimeError("push %s -> %s ended %s: %s" % (source, dest, job["state"], job["error"]))
    return job, dt


# ---------------------------------------------------------------------------- plain socket floor
RECEIVER = r"""
import hashlib, os, socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
sys.stdout.write("%d\n" % srv.getsockname()[1]); sys.stdout.flush()
srv.settimeout(120)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(120)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = c.makefile("rb")
    line = f.readline()
    if not line or line == b"quit\n":
        break
    size, dest = line.decode().rstrip("\n").split(" ", 1)
    size = int(size)
    tmp = os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".tmp")
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = size
    while left:
        n = f.readinto(view[:min(left, len(buf))])
        if not n:
            break
        h.update(view[:n])
        os.write(fd, view[:n])
        left -= n
    os.fsync(fd); os.close(fd)
    os.replace(tmp, dest)
    c.sendall(h.hexdigest().encode() + b"\n")
    c.close()
"""


def plain_socket_push(port, local, dest):
    size = os.path.getsize(local)
    h = hashlib.sha256()
    s = socket.create_connection((HOST, port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.sendall(("%d %s\n" % (size, dest)).encode())
        with open(local, "rb", buffering=0) as f:
            while True:
                b = f.read(CHUNK)
                if not b:
                    break
                h.update(b)
                s.sendall(b)
        reply = s.makefile("rb").readline().decode().strip()
    finally:
        s.close()
    if reply != h.hexdigest():
        raise RuntimeError("plain socket receiver hash mismatch")


# ---------------------------------------------------------------------------- classic rpyc
def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_classic(port):
    cmd = [sys.executable, "-c", "from rpyc.cli.rpyc_classic import main; main()",
           "--host", HOST, "-p", str(port), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("rpyc_classic did not start")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------------------- main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=128, help="pushed file size (MB), default 128")
    p.add_argument("--classic-mb", type=int, default=16, help="classic.upload file size (MB), default 16")
    p.add_argument("--files", type=int, default=120, help="files in the folder test, default 120")
    p.add_argument("--reps", type=int, default=4, help="repetitions of each timed push (best is reported)")
    args = p.parse_args(argv)
    reps = max(1, min(args.reps, 10))

    tmp = tempfile.mkdtemp(prefix="jrd-bench-")
    ws = os.path.join(tmp, "ws")
    board_root = os.path.join(tmp, "board")
    floor_dir = os.path.join(tmp, "floor")
    classic_dir = os.path.join(tmp, "classic")
    for d in (ws, board_root, floor_dir, classic_dir):
        os.makedirs(d)
    agent = plain_agent = receiver = classic = None
    out = {"host": HOST, "chunk_bytes": CHUNK, "in_flight": IN_FLIGHT, "python": sys.version.split()[0],
           "cpu_count": os.cpu_count()}
    try:
        size = args.size_mb * MB
        big = os.path.join(ws, "big.bin")
        big_sha = write_random(big, size)

        agent, port, token = spawn_agent(host=HOST, root=board_root, camera="none")
        session = LoopbackSession(port, token)
        warm = session.connect_new()  # the agent as it idles with one session connection
        warm.root.hello()
        time.sleep(0.3)
        rss_base = rss_kb(agent.pid)
        tm = TransferManager(ws)
        plain_root = os.path.join(tmp, "board-plain")
        os.makedirs(plain_root)
        plain_agent, pport, ptoken = spawn_agent(host=HOST, root=plain_root, camera="none", extra_args=("--no-tls",))
        plain_session = LoopbackSession(pport, ptoken)

        # -- push and the plain-socket floor, interleaved (same machine noise) --
        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
        rport = int(receiver.stdout.readline())
        times = []
        ftimes = []
        peaks = []
        ptimes = []
        for _ in range(reps):
            with RssSampler(agent.pid) as s:
                job, dt = run_job(tm, session, "big.bin", "bench/big.bin")
            peaks.append(s.peak)
            times.append(dt)
            if not job["verified"] or sha256_file(os.path.join(board_root, "bench", "big.bin")) != big_sha:
                raise RuntimeError("pushed file differs")
            t0 = time.perf_counter()
            plain_socket_push(rport, big, os.path.join(floor_dir, "big.bin"))
            ftimes.append(time.perf_counter() - t0)
            job, dt = run_job(tm, plain_session, "big.bin", "bench/big.bin")
            if not job["verified"]:
                raise RuntimeError("the push without TLS was not verified")
            ptimes.append(dt)
        push_mb_s = size / MB / min(times)
        floor_mb_s = size / MB / min(ftimes)
        out["push"] = {"bytes": size, "seconds": [round(t, 3) for t in times], "best_mb_s": round(push_mb_s, 1),
                       "verified": True}
        no_tls_mb_s = size / MB / min(ptimes)
        out["push_no_tls"] = {"seconds": [round(t, 3) for t in ptimes], "best_mb_s": round(no_tls_mb_s, 1)}
        out["plain_socket"] = {"seconds": [round(t, 3) for t in ftimes], "best_mb_s": round(floor_mb_s, 1)}
        out["agent_rss"] = {
            "baseline_kb": rss_base,
            "peak_kb_per_push": peaks,
            "growth_first_push_kb": (peaks[0] - rss_base) if rss_base and peaks[0] else None,
            "growth_max_kb": (max(peaks) - rss_base) if rss_base and peaks else None,
        }

        # -- classic.upload ---------------------------------------------------
        import rpyc
        import rpyc.utils.classic as rclassic
        csize = args.classic_mb * MB
        small = os.path.join(ws, "classic.bin")
        write_random(small, csize)
        cport = free_port()
        classic = start_classic(cport)
        conn = rpyc.classic.connect(HOST, cport)
        try:
            t0 = time.perf_counter()
            rclassic.upload(conn, small, os.path.join(classic_dir, "classic.bin"))
            cdt = time.perf_counter() - t0
        finally:
            conn.close()
        if sha256_file(small) != sha256_file(os.path.join(classic_dir, "classic.bin")):
            raise RuntimeError("classic.upload result differs")
        classic_mb_s = csize / MB / cdt
        out["classic_upload"] = {"bytes": csize, "seconds": round(cdt, 3), "mb_s": round(classic_mb_s, 2)}

        # -- folder push and re-sync -----------------------------------------
        folder = os.path.join(ws, "proj")
        total = 0
        for i in range(args.files):
            sub = os.path.join(folder, "pkg%d" % (i % 6))
            os.makedirs(sub, exist_ok=True)
            n = 200 + (i * 7919) % 60000
            with open(os.path.join(sub, "file_%03d.py" % i), "wb") as f:
                f.write(os.urandom(n))
            total += n
        job, dt = run_job(tm, session, "proj", "app")
        out["folder_push"] = {"files": job["files_done"], "bytes": job["bytes_done"], "seconds": round(dt, 3),
                              "files_per_s": round(job["files_done"] / dt, 1)}
        job2, dt2 = run_job(tm, session, "proj", "app", sync=True)
        out["folder_resync"] = {"seconds": round(dt2, 3), "files_sent": job2["files_done"],
                                "bytes_sent": job2["bytes_done"], "files_skipped": job2["files_skipped"]}
        # touch one file: the sync sends exactly that one
        with open(os.path.join(folder, "pkg0", "file_000.py"), "ab") as f:
            f.write(b"# changed\n")
        job3, dt3 = run_job(tm, session, "proj", "app", sync=True)
        out["folder_resync_one_changed"] = {"seconds": round(dt3, 3), "files_sent": job3["files_done"],
                                            "bytes_sent": job3["bytes_done"]}
        warm.close()

        growth = out["agent_rss"]["growth_max_kb"]
        out["ratios"] = {
            "push_vs_classic_upload": round(push_mb_s / classic_mb_s, 1),
            "push_vs_plain_socket": round(push_mb_s / floor_mb_s, 3),
            "push_tls_vs_no_tls": round(push_mb_s / no_tls_mb_s, 3),
        }
        out["targets"] = {
            "push_ge_50x_classic": push_mb_s >= 50 * classic_mb_s,
            "push_ge_0.3x_plain_socket": push_mb_s >= 0.3 * floor_mb_s,
            "agent_rss_growth_lt_8mb": growth is not None and growth < 8 * 1024,
            "resync_sends_nothing": job2["files_done"] == 0 and job2["bytes_done"] == 0,
        }
    finally:
        if receiver is not None:
            stop(receiver)
        stop(classic)
        stop(agent)
        stop(plain_agent)
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if all(out["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
