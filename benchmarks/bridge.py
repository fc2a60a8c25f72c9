"""Bridge benchmark: ``python -m benchmarks.bridge [--calls N] [--seconds S]``.

Two stock classic boards on 127.0.0.1 with the same board Python (3.8; a stand-in MaixPy3
``maix`` camera): one with rpyc 5.3.1 (driven through the bridge process, ``link/bridge``), one
with rpyc 6.0.2 (driven directly by our rpyc). Prints one JSON document with, for both and as
ratios bridge / direct within this run:

* ``connect_s``: connect + classic bootstrap (the agent's code sent over);
* ``call_ms``: median / p90 of a trivial wire call (``exec_busy``);
* ``read_mb_s``: reading a 32 MB file in 1 MB ``fs_read`` chunks;
* ``camera_fps``: ``camera_next`` frames per second at 240x240 (what one viewer pulls);
* ``bridge_rss_mb``: the bridge process's resident memory.

The board stacks are the test venvs (``tests/old_boards.py``); made on first use.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from jupyter_remote_device.link import rpyc_family  # noqa: E402
from jupyter_remote_device.link.classic import connect_classic  # noqa: E402
from old_boards import OldBoard, board_python  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def measure(python, calls, seconds):
    board = OldBoard(python)
    out = {}
    try:
        rpyc_family.remember("127.0.0.1", board.port, None)
        root_dir = tempfile.mkdtemp(prefix="jrd-bench-root-")
        t0 = time.perf_counter()
        conn = connect_classic("127.0.0.1", board.port, timeout=30, root=root_dir)
        out["connect_s"] = round(time.perf_counter() - t0, 3)
        root = conn.root
        try:
            busy = root.exec_busy
            for _ in range(20):
                busy()
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                busy()
                times.append((time.perf_counter() - t) * 1000)
            out["call_ms"] = {"p50": round(statistics.median(times), 3), "p90": round(pct(times, 90), 3)}
            size = 32 << 20
            with open(os.path.join(root_dir, "big.bin"), "wb") as f:
                f.write(os.urandom(size))
            t = time.perf_counter()
            got, off = 0, 0
            while off < size:
                chunk = root.fs_read("big.bin", off, 1 << 20)
                got += len(chunk)
                off += len(chunk)
            out["read_mb_s"] = round(got / (1 << 20) / (time.perf_counter() - t), 1)
            sid = root.camera_open("0", 240, 240, 70, 0)
            n, seq = 0, -1
            end = time.perf_counter() + seconds
            t = time.perf_counter()
            while time.perf_counter() < end:
                frame = root.camera_next(sid, seq, 2.0)
                if frame:
                    hlen = int.from_bytes(frame[:4], "big")
                    seq = json.loads(frame[4:4 + hlen])["seq"]
                    n += 1
            out["camera_fps"] = round(n / (time.perf_counter() - t), 1)
            root.camera_close(sid)
            proc = getattr(getattr(conn, "conn", None), "_proc", None)
            if proc is not None:
                with open("/proc/%d/status" % proc.pid) as f:
                    rss = [ln for ln in f if ln.startswith("VmRSS:")][0].split()[1]
                out["bridge_rss_mb"] = round(int(rss) / 1024.0, 1)
        finally:
            conn.close()
    finally:
        board.close()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args(argv)
    result = {}
    for name, rv in (("bridge", "5.3.1"), ("direct", "6.0.2")):
        py, why = board_python("3.8", rv)
        if py is None:
            print(json.dumps({"skipped": why}))
            return 1
        result[name] = measure(py, min(a.calls, 5000), min(a.seconds, 30.0))
    b, d = result["bridge"], result["direct"]
    result["ratio_bridge_over_direct"] = {
        "connect_s": round(b["connect_s"] / d["connect_s"], 2),
        "call_ms_p50": round(b["call_ms"]["p50"] / d["call_ms"]["p50"], 2),
        "read_mb_s": round(b["read_mb_s"] / d["read_mb_s"], 2),
        "camera_fps": round(b["camera_fps"] / d["camera_fps"], 2),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
