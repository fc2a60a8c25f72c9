"""Terminal benchmark: ``python -m benchmarks.terminal`` prints one JSON object.

Everything on loopback in one run, so ratios compare like with like:

- ``echo``: keystroke to echo through a real agent's pty the way server/terminal.py does
  it (a writer connection sends the key, a reader connection blocks in ``term_read``);
  median and p95 over a fixed number of keys;
- ``throughput``: a shell command printing ``--mb`` MB, read through the agent's pty with
  the same blocking reads, against the floor: the same command on a local pty read
  directly (``ratio`` = agent MB/s / local MB/s);
- ``reads``: how many ``term_read`` calls the output took (one call returns up to 64 KiB).

Bounded: fixed counts, every loop has a deadline.
"""
import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time

from jupyter_remote_device.agent import client
from jupyter_remote_device.app import spawn_agent, stop_process

HOST = "127.0.0.1"


def drain(read, until, deadline):
    got = bytearray()
    calls = 0
    while until not in got[-len(until) - 64:] and time.monotonic() < deadline:
        data = read()
        calls += 1
        if data is None:
            break
        got += data
    return bytes(got), calls


def local_throughput(cmd, marker, timeout):
    master, slave = os.openpty()
    proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    t0 = time.monotonic()
    total = 0
    tail = b""
    deadline = t0 + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 1.0)
            if not r:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            total += len(data)
            tail = (tail + data)[-64:]
            if marker in tail:
                break
        return total, time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=200)
    p.add_argument("--mb", type=int, default=20)
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    proc, port, token = spawn_agent(camera="none")
    out = {"keys": args.keys, "mb": args.mb}
    try:
        reader = client.connect(HOST, port, token)
        writer = client.connect(HOST, port, token)
        tid = reader.root.term_open(40, 120)
        read_fn, write_fn = reader.root.term_read, writer.root.term_write

        def read():
            return read_fn(tid, 65536, 2.0)

        write_fn(tid, "stty -echoctl; PS1='$ '\n")
        drain(read, b"$ ", time.monotonic() + 10)
        # echo: one key, wait for it to come back
        lat = []
        for i in range(args.keys):
            ch = "abcdefghij"[i % 10]
            t0 = time.perf_counter()
            write_fn(tid, ch)
            drain(read, ch.encode(), time.monotonic() + 5)
            lat.append((time.perf_counter() - t0) * 1000)
        write_fn(tid, "\x15")  # Ctrl-U: drop the typed line
        drain(read, b"", time.monotonic() + 0.2)
        lat.sort()
        out["echo_ms"] = {"median": round(statistics.median(lat), 3),
                          "p95": round(lat[int(len(lat) * 0.95) - 1], 3), "max": round(lat[-1], 3)}
        # throughput
        cmd = "head -c %d /dev/zero | tr '\\0' a; echo; echo JRD-END-$((1+1))" % (args.mb * 1000 * 1000)
        write_fn(tid, cmd + "\n")
        t0 = time.monotonic()
        got, calls = drain(read, b"JRD-END-2", t0 + args.timeout)
        dt = time.monotonic() - t0
        agent_mbs = len(got) / dt / 1e6
        local_bytes, local_dt = local_throughput(cmd, b"JRD-END-2", args.timeout)
        local_mbs = local_bytes / local_dt / 1e6
        out["throughput"] = {"agent_MBps": round(agent_mbs, 2), "local_pty_MBps": round(local_mbs, 2),
                             "ratio": round(agent_mbs / local_mbs, 3) if local_mbs else None,
                             "bytes": len(got), "reads": calls,
                             "bytes_per_read": int(len(got) / max(calls, 1))}
        reader.root.term_close(tid)
        reader.close()
        writer.close()
    finally:
        stop_process(proc)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
