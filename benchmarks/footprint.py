"""Idle memory of the agent vs a bare rpyc classic server: ``python -m benchmarks.footprint``.

Boards like the V831 have 64 MB of RAM: the agent's idle footprint should stay
within 1 MB of what MaixPy3 boards already run, ``ThreadedServer(SlaveService)``
started from ``python -c`` (the ``rpyc_classic`` command is shown too: its CLI
imports add ~3 MB, so it is not the baseline). Each starts on 127.0.0.1, gets one
authenticated / plain client connection and a trivial call, then its RSS (VmRSS) is
read from /proc.  ``camera_stream``: the agent's CPU per streamed frame beside the
encode cost it measures itself.  Prints one JSON object. Bounded: a few seconds.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import rpyc

from jupyter_remote_device import link
from jupyter_remote_device.app import spawn_agent


def rss_kb(pid, field="VmRSS"):
    """A /proc status memory figure in KB: VmRSS, or RssAnon (private memory)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def rss_and_anon(pid):
    return rss_kb(pid), rss_kb(pid, "RssAnon")


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


SLAVE_SERVER = (
    "import sys\n"
    "from rpyc.utils.server import ThreadedServer\n"
    "from rpyc.core import SlaveService\n"
    "ThreadedServer(SlaveService, hostname='127.0.0.1', port=int(sys.argv[1]), auto_register=False).start()\n")


def measure_classic(cli=False):
    """(RSS, RssAnon) of a stock classic server: ``ThreadedServer(SlaveService)`` from ``python -c`` (what
    MaixPy3 boards run), or with ``cli`` the ``rpyc_classic`` command (its CLI imports add ~3 MB)."""
    port = free_port()
    if cli:
        cmd = [sys.executable, "-c", "from rpyc.cli.rpyc_classic import main; main()", "--host", "127.0.0.1",
               "--port", str(port)]
    else:
        cmd = [sys.executable, "-c", SLAVE_SERVER, str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        conn = rpyc.classic.connect("127.0.0.1", port)
        conn.modules.os.getpid()
        time.sleep(0.5)
        out = rss_and_anon(proc.pid)
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def measure_agent(camera, pyc_dir=None, extra_args=()):
    """(RSS, RssAnon) of an idle agent; with ``pyc_dir`` its modules load from bytecode cached there
    (as on a board where the package was installed), else they compile from source."""
    root = tempfile.mkdtemp(prefix="jrd-footprint-")
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": pyc_dir} if pyc_dir else None
    proc, port, token = spawn_agent(root=root, camera=camera, env=env, extra_args=tuple(extra_args))
    try:
        conn = link.connect("127.0.0.1", port, token=token)
        conn.root.ping()
        time.sleep(0.5)
        out = rss_and_anon(proc.pid)
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_per_frame(seconds=3.0, width=640, height=480, quality=80, extra_args=()):
    """Agent CPU per streamed frame (camera_next over one connection) beside the encode cost
    the agent itself measures (camera_stats' encode_ms)."""
    root = tempfile.mkdtemp(prefix="jrd-footprint-")
    proc, port, token = spawn_agent(root=root, camera="synthetic", extra_args=tuple(extra_args))
    try:
        conn = link.connect("127.0.0.1", port, token=token)
        sid = conn.root.camera_open("0", width, height, quality, 0)
        conn.root.camera_next(sid, -1, 5.0)
        c0, t0, n = cpu_s(proc.pid), time.time(), 0
        while time.time() - t0 < seconds:
            if conn.root.camera_next(sid, -1, 5.0):
                n += 1
        cpu = cpu_s(proc.pid) - c0
        stats = json.loads(conn.root.camera_stats())
        conn.close()
        enc = stats["cameras"][0].get("encode_ms")
        per = 1000.0 * cpu / n if n else None
        return {"size": "%dx%d" % (width, height), "quality": quality, "frames": n,
                "fps": round(n / seconds, 1), "agent_cpu_ms_per_frame": round(per, 2) if per else None,
                "encode_ms_per_frame": enc,
                "other_ms_per_frame": round(per - enc, 2) if per and enc else None}
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / float(os.sysconf("SC_CLK_TCK"))


def main():
    slave, slave_anon = measure_classic()
    cli = measure_classic(cli=True)[0]
    agent_none = measure_agent("none")[0]
    agent_synth = measure_agent("synthetic")[0]
    pyc = tempfile.mkdtemp(prefix="jrd-footprint-pyc-")
    measure_agent("synthetic", pyc)  # writes the bytecode
    agent_pyc, agent_pyc_anon = measure_agent("none", pyc)
    agent_pyc_synth = measure_agent("synthetic", pyc)[0]
    agent_pyc_plain = measure_agent("none", pyc, ["--no-tls"])[0]
    result = {
        "slave_service_rss_kb": slave,
        "rpyc_classic_cli_rss_kb": cli,
        "agent_idle_rss_kb": agent_none,
        "agent_idle_rss_kb_synthetic_camera": agent_synth,
        "agent_minus_slave_service_kb": agent_none - slave,
        "agent_synthetic_minus_slave_service_kb": agent_synth - slave,
        "agent_minus_rpyc_classic_cli_kb": agent_none - cli,
        "agent_idle_rss_kb_from_pyc": agent_pyc,
        "agent_from_pyc_minus_slave_service_kb": agent_pyc - slave,
        "agent_synthetic_from_pyc_minus_slave_service_kb": agent_pyc_synth - slave,
        # TLS (the default) against the plain link of ThreadedServer(SlaveService): its cost is
        # mostly OpenSSL's code pages (file-backed); RssAnon is the private memory
        "agent_from_pyc_no_tls_minus_slave_service_kb": agent_pyc_plain - slave,
        "agent_from_pyc_anon_minus_slave_service_anon_kb": agent_pyc_anon - slave_anon,
        "target_kb": 1024,
        "target_met_without_tls": agent_pyc_plain - slave <= 1024,
        "target_met_with_tls": agent_pyc - slave <= 1024,
        "camera_stream": cpu_per_frame(),
        "camera_stream_no_tls": cpu_per_frame(extra_args=["--no-tls"]),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
