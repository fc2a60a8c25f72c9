"""Kernel benchmark: ``python -m benchmarks.kernel [--rounds N] [--interrupts N]``.

Everything on 127.0.0.1: a loopback agent (spawn_agent), the remote-device kernel,
and a local ipykernel for comparison. Prints one JSON document:

* ``round_trip``: median / p90 of a trivial cell (execute -> reply + idle), both
  kernels, and the ratio (target: remote <= 1.5x local).
* ``prints``: wall time of ``for i in range(10000): print(i)`` until every line
  arrived (both kernels).
* ``classic``: the same trivial-cell round trip against a stock rpyc classic server
  (the kernel's fallback for MaixPy3 boards), for reference.
* ``interrupt``: latency from the interrupt request to the execute reply, over N
  tries alternating ``time.sleep`` and a busy loop (target: <= 1 s in N/N).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from jupyter_remote_device.app import spawn_agent

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SPEC = os.path.join(REPO, "jupyter_remote_device", "kernel", "spec")
TIMEOUT = 60


def start(name):
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    return km, kc


def run(kc, code, timeout=TIMEOUT):
    out = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=out.append)
    return reply["content"], out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def round_trip(kc, n):
    for _ in range(5):
        run(kc, "1")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply, _ = run(kc, "1")
        times.append(time.perf_counter() - t0)
        assert reply["status"] == "ok", reply
    return {"median_ms": statistics.median(times) * 1000, "p90_ms": pct(times, 90) * 1000, "n": n}


def prints(kc, n=10000):
    t0 = time.perf_counter()
    reply, out = run(kc, "for i in range(%d): print(i)" % n)
    dt = time.perf_counter() - t0
    text = "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")
    lines = text.count("\n")
    assert reply["status"] == "ok" and lines == n, (reply, lines)
    return {"seconds": dt, "lines": lines, "stream_messages": sum(1 for m in out if m["msg_type"] == "stream")}


def interrupts(km, kc, n):
    lat = []
    run(kc, "spin = 0")
    bodies = ["import time\ntime.sleep(30)", "while True:\n    spin += 1"]
    for i in range(n):
        msg_id = kc.execute(bodies[i % 2])
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            m = kc.get_iopub_msg(timeout=TIMEOUT)
            if m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == msg_id:
                break
        time.sleep(0.05)
        t0 = time.perf_counter()
        km.interrupt_kernel()
        while True:
            r = kc.get_shell_msg(timeout=TIMEOUT)
            if r["parent_header"].get("msg_id") == msg_id:
                break
        lat.append(time.perf_counter() - t0)
        assert r["content"].get("ename") == "KeyboardInterrupt", r["content"]
        # drain iopub up to idle so the next round starts clean
        while True:
            m = kc.get_iopub_msg(timeout=TIMEOUT)
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" and \
                    m["parent_header"].get("msg_id") == msg_id:
                break
    return {"n": n, "max_s": max(lat), "p50_s": statistics.median(lat), "p90_s": pct(lat, 90),
            "within_1s": sum(1 for x in lat if x <= 1.0)}


CLASSIC_SERVER = """
from rpyc.utils.server import ThreadedServer
from rpyc.core import SlaveService
s = ThreadedServer(SlaveService, hostname="127.0.0.1", port=0, auto_register=False)
print("PORT", s.port, flush=True)
s.start()
"""


def classic_round_trip(n):
    proc = subprocess.Popen([sys.executable, "-c", CLASSIC_SERVER], stdout=subprocess.PIPE, text=True)
    km = kc = None
    try:
        port = int(proc.stdout.readline().split()[1])
        km, kc = start("remote-device")
        reply, _ = run(kc, '$connect("127.0.0.1:%d")' % port)
        assert reply["status"] == "ok", reply
        return round_trip(kc, n)
    finally:
        if kc is not None:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        proc.terminate()
        proc.wait(10)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--interrupts", type=int, default=100)
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="jrd-bench-kernel-")
    KernelSpecManager().install_kernel_spec(SPEC, "remote-device", prefix=tmp)
    os.environ["JUPYTER_PATH"] = os.path.join(tmp, "share", "jupyter")
    os.environ["PYTHONPATH"] = REPO + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")

    proc, port, token = spawn_agent()
    result = {"python": sys.version.split()[0]}
    kms = []
    try:
        km_l, kc_l = start("python3")
        kms.append((km_l, kc_l))
        km_r, kc_r = start("remote-device")
        kms.append((km_r, kc_r))
        reply, _ = run(kc_r, "%%connect 127.0.0.1:%d --token %s" % (port, token))
        assert reply["status"] == "ok", reply

        local = round_trip(kc_l, args.rounds)
        remote = round_trip(kc_r, args.rounds)
        result["round_trip"] = {"local_ipykernel": local, "remote_device": remote,
                                "ratio_median": remote["median_ms"] / local["median_ms"], "target_ratio": 1.5}
        result["prints_10000"] = {"local_ipykernel": prints(kc_l), "remote_device": prints(kc_r)}
        result["interrupt"] = interrupts(km_r, kc_r, args.interrupts)
        result["interrupt"]["target_s"] = 1.0
        result["classic_round_trip"] = classic_round_trip(min(args.rounds, 100))
    finally:
        for km, kc in kms:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        proc.terminate()
        proc.wait(10)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
