"""Idle memory of the agent vs a bare rpyc classic server: ``python -m benchmarks.footprint``.

Boards like the V831 have 64 MB of RAM: the agent's idle footprint should stay
within a couple of MB of the stock ``rpyc_classic`` server that MaixPy3 boards
already run. Both start on 127.0.0.1, each gets one authenticated / plain client
connection and a trivial call, then their RSS (VmRSS) is read from /proc.
Prints one JSON object. Bounded: a few seconds.
"""
import json
import socket
import subprocess
import sys
import tempfile
import time

import rpyc

from jupyter_remote_device.agent import client
from jupyter_remote_device.app import spawn_agent


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d never opened" % port)


def measure_classic():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from rpyc.cli.rpyc_classic import main; main()",
                             "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        conn = rpyc.classic.connect("127.0.0.1", port)
        conn.modules.os.getpid()
        time.sleep(0.5)
        out = rss_kb(proc.pid)
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def measure_agent(camera):
    root = tempfile.mkdtemp(prefix="jrd-footprint-")
    proc, port, token = spawn_agent(root=root, camera=camera)
    try:
        conn = client.connect("127.0.0.1", port, token=token)
        conn.root.ping()
        time.sleep(0.5)
        out = rss_kb(proc.pid)
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    classic = measure_classic()
    agent_none = measure_agent("none")
    agent_synth = measure_agent("synthetic")
    result = {
        "rpyc_classic_rss_kb": classic,
        "agent_idle_rss_kb": agent_none,
        "agent_idle_rss_kb_synthetic_camera": agent_synth,
        "agent_minus_classic_kb": agent_none - classic,
        "agent_synthetic_minus_classic_kb": agent_synth - classic,
        "target_kb": 2048,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
