"""``jupyter remote-device demo`` is one process tree: a stop signal ends all of it, ports freed."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from jrd_helpers import free_port
from jupyter_remote_device import proctree
from jupyter_remote_device.app import demo_lab_command, parse_demo_args

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def _port_free(port):
    """Nothing listens there, and a new server could bind it (as servers do, with SO_REUSEADDR:
    our own finished HTTP connections may sit in TIME_WAIT)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        pass
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _get(url, data=None, timeout=5):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode() or "null")


def _start_demo(tmp, prefix=()):
    port, token = free_port(), "demo-test-token"
    env = dict(os.environ, PYTHONPATH=REPO)
    for name in ("config", "data", "runtime"):
        os.makedirs(os.path.join(tmp, name), exist_ok=True)
        env["JUPYTER_%s_DIR" % name.upper()] = os.path.join(tmp, name)
    log = open(os.path.join(tmp, "demo.log"), "wb")
    # Jupyter options as they are, no "--": --port, --ServerApp.*, --no-browser
    proc = subprocess.Popen(
        list(prefix) + [sys.executable, "-m", "jupyter_remote_device.app", "demo", "--port", str(port), "--no-browser",
         "--ServerApp.token=%s" % token, "--ServerApp.base_url=/jrd-demo-test/",
         "--ServerApp.root_dir=%s" % tmp],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
        start_new_session=True)  # nohup-like: no terminal
    base = "http://127.0.0.1:%d/jrd-demo-test/" % port
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, open(os.path.join(tmp, "demo.log")).read()
        try:
            _get(base + "api/status?token=" + token)
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.5)
    text = open(os.path.join(tmp, "demo.log")).read()
    agent_port = int(re.search(r"Simulated board: 127\.0\.0\.1:(\d+)", text).group(1))
    return proc, base, token, port, agent_port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_demo_stops_its_whole_tree(sig):
    tmp = tempfile.mkdtemp(prefix="jrd-demo-test-")
    proc, base, token, port, agent_port = _start_demo(tmp)
    try:
        # the base_url and token given on the command line reached JupyterLab; the board is listed
        devices = _get(base + "jupyter-remote-device/devices?token=" + token)["devices"]
        assert [d["port"] for d in devices] == [agent_port]
        # something JupyterLab started itself: a kernel (in a session of its own)
        _get(base + "api/kernels?token=" + token, data=b'{"name": "python3"}')
        deadline = time.monotonic() + 30
        while True:
            tree = proctree.descendants(proc.pid)
            cmdlines = []
            for p in tree:
                try:
                    cmdlines.append(open("/proc/%d/cmdline" % p, "rb").read())
                except OSError:
                    pass
            if any(b"ipykernel" in c for c in cmdlines) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert any(b"ipykernel" in c for c in cmdlines), cmdlines
        assert any(b"jupyter_remote_device.agent" in c for c in cmdlines), cmdlines
        assert len(tree) >= 3
        t0 = time.monotonic()
        proc.send_signal(sig)
        proc.wait(20)
        took = time.monotonic() - t0
        left = [p for p in tree if _alive(p)]
        assert left == [], "still running after %.1fs: %s" % (took, left)
        assert took < 10, took
        assert _port_free(port) and _port_free(agent_port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in proctree.descendants(proc.pid):
            os.kill(p, signal.SIGKILL)


def test_demo_under_nohup_ignores_sighup_and_stops_on_sigterm():
    tmp = tempfile.mkdtemp(prefix="jrd-demo-test-")
    proc, base, token, port, agent_port = _start_demo(tmp, prefix=["nohup"])
    try:
        tree = proctree.descendants(proc.pid)
        proc.send_signal(signal.SIGHUP)  # the terminal closing: nohup asked to ignore it
        time.sleep(1.5)
        # The demo, its JupyterLab and its board are still there. (Not every process of the
        # snapshot: a short-lived helper such as openssl making the board's certificate may
        # have ended by itself meanwhile.)
        assert proc.poll() is None
        _get(base + "api/status?token=" + token)
        assert not _port_free(agent_port)
        tree = proctree.descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)  # kill PID
        proc.wait(20)
        assert [p for p in tree if _alive(p)] == []
        assert _port_free(port) and _port_free(agent_port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_demo_arguments_pass_through():
    args, lab = parse_demo_args(["--port", "8899", "--ServerApp.certfile=/c.pem", "--agent-port", "1234",
                                 "--no-browser", "--", "--ip=0.0.0.0"])
    assert args.agent_port == 1234
    assert lab == ["--port", "8899", "--ServerApp.certfile=/c.pem", "--no-browser", "--ip=0.0.0.0"]
    cmd = demo_lab_command("cfg.py", lab)
    assert "--ServerApp.port=8888" not in cmd and "--ServerApp.ip=127.0.0.1" not in cmd
    assert cmd[-5:] == lab
    assert args.camera == "synthetic"
    args, _ = parse_demo_args(["--camera", "file:clips/street.mp4"])
    assert args.camera == "file:clips/street.mp4"  # a recording as the demo board's camera
    args, lab = parse_demo_args(["--lab-port", "9000"])
    cmd = demo_lab_command("cfg.py", lab)
    assert "--ServerApp.port=9000" in cmd and "--ServerApp.port=8888" not in cmd
    assert "--ServerApp.ip=127.0.0.1" in cmd
