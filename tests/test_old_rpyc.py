"""MaixPy3 boards exactly as they ship: Python 3.8 with rpyc 5.3.1 or 4.1.5 serving
``ThreadedServer(SlaveService)`` from ``python -c``, a stand-in MaixPy3 ``maix`` on the board's path,
nothing of ours installed. rpyc 6 (ours) cannot speak to them; the bridge (``link/bridge``) does.

Through a real jupyter_server: probe, connect (sidebar's info: rpyc and Python versions), exec with
output, interrupt, files, the maix camera over the WS, discovery; the kernel's ``$connect`` with
cells, live output and interrupt; a board too old for anything gets words, not a timeout.
Skips with the reason when no Python 3.8 exists or pip cannot fetch the board's rpyc.
"""
import asyncio
import io
import json
import os
import sys
import time

import pytest

from jrd_helpers import wait_for
from jupyter_remote_device.link import rpyc_family
from jupyter_remote_device.link.bridge import WHEEL, WHEEL_SHA256
from jupyter_remote_device.link.probe import probe as probe_board
from old_boards import OldBoard, board_python

BOARDS = ["5.3.1", "4.1.5"]


@pytest.fixture(scope="module", params=BOARDS)
def board(request):
    py, why = board_python("3.8", request.param)
    if py is None:
        pytest.skip(why)
    b = OldBoard(py)
    b.rpyc = request.param
    yield b
    b.close()


def test_the_shipped_wheel_is_pypis_and_needs_no_plumbum():
    import hashlib
    import subprocess
    with open(WHEEL, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == WHEEL_SHA256
    # what the bridge imports (isolated: no site-packages, so neither our rpyc 6 nor plumbum)
    code = ("import sys; sys.path.insert(0, %r); import rpyc, rpyc.core.service, rpyc.utils.factory; "
            "print(rpyc.__version__, 'plumbum' in sys.modules, rpyc.__file__.startswith(%r))" % (WHEEL, WHEEL))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["5.3.1", "False", "True"]


def test_probe_tells_the_family_at_once(board):
    rpyc_family.remember("127.0.0.1", board.port, None)
    t0 = time.monotonic()
    found = probe_board("127.0.0.1", board.port, timeout=2.0)
    assert found == {"kind": "classic", "rpyc_family": 5}
    assert time.monotonic() - t0 < 1.0   # no waiting for a greeting that never comes
    assert not [line for line in board.log if "Traceback" in line]  # the board understood the ping


async def _connect(api, board):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": board.port, "name": "maixpy3"})
    assert code in (200, 201), dev
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    return d


async def test_connect_exec_interrupt_files(api, jp_fetch, board):
    d = await _connect(api, board)
    did = d["id"]
    assert d["status"] == "connected" and d["kind"] == "classic", d
    assert d["info"]["rpyc_version"] == board.rpyc and d["info"]["python"].startswith("3.8."), d["info"]
    code, r = await api("POST", "devices/%s/exec" % did,
                        {"code": "import sys, rpyc\nprint(sys.version_info[:2], 6 * 7)"})
    assert code == 200 and r["error"] is None and r["stdout"] == "(3, 8) 42\n", r
    code, r = await api("POST", "devices/%s/exec" % did, {"code": "1/0"})
    assert code == 200 and r["error"]["ename"] == "ZeroDivisionError", r
    # interrupt: a loop that never ends is stopped by the exec timeout, the board stays usable
    t0 = time.monotonic()
    code, r = await api("POST", "devices/%s/exec" % did,
                        {"code": "import time\nwhile True:\n    time.sleep(0.05)", "timeout": 1.5})
    assert code == 504 and r["reason"] == "timeout", r
    assert time.monotonic() - t0 < 6
    code, r = await api("POST", "devices/%s/exec" % did, {"code": "print('still here')"})
    assert code == 200 and r["stdout"] == "still here\n", r
    # files, into ~/jrd-root on the board
    payload = os.urandom(300000)
    code, r = await api("PUT", "devices/%s/files/content" % did, raw_body=payload, path="data/blob.bin")
    assert code == 201 and r["size"] == len(payload), r
    with open(os.path.join(board.root, "data", "blob.bin"), "rb") as f:
        assert f.read() == payload
    code, listing = await api("GET", "devices/%s/files" % did, path="data")
    assert code == 200 and [e["name"] for e in listing["entries"]] == ["blob.bin"], listing
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content", params={"path": "data/blob.bin"})
    assert r.code == 200 and r.body == payload
    code, r = await api("GET", "devices/%s/files/content" % did, path="nope.txt")
    assert code == 404 and r["reason"] == "not-found", r
    code, _ = await api("DELETE", "devices/%s/files" % did, path="data/blob.bin")
    assert code == 204 and not os.path.exists(os.path.join(board.root, "data", "blob.bin"))
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    await api("DELETE", "devices/" + did)


async def _job(api, route, body, timeout=60.0):
    code, job = await api("POST", route, body)
    assert code == 202, job
    deadline = time.monotonic() + timeout
    while job["state"] == "running":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)
        code, job = await api("GET", "jobs/" + job["id"])
    return job


async def test_push_sync_and_pull_jobs(api, board, jp_root_dir):
    """The pipelined push (async writes in flight through the bridge), sync, and pull back."""
    d = await _connect(api, board)
    did = d["id"]
    ws = str(jp_root_dir)
    big = os.urandom(3 * (1 << 20) + 7)
    os.makedirs(os.path.join(ws, "maixapp", "lib"))
    for rel, data in (("main.py", b"print('hello from the board')\n"), ("lib/model.bin", big)):
        with open(os.path.join(ws, "maixapp", rel), "wb") as f:
            f.write(data)
    job = await _job(api, "devices/%s/push" % did, {"source": "maixapp", "dest": "app", "sync": True})
    assert job["state"] == "done" and job["verified"] is True and job["files_done"] == 2, job
    with open(os.path.join(board.root, "app", "lib", "model.bin"), "rb") as f:
        assert f.read() == big
    job = await _job(api, "devices/%s/push" % did, {"source": "maixapp", "dest": "app", "sync": True})
    assert job["state"] == "done" and job["files_done"] == 0 and job["bytes_done"] == 0, job
    job = await _job(api, "devices/%s/pull" % did, {"source": "app", "dest": "back"})
    assert job["state"] == "done" and job["verified"] is True and job["files_done"] == 2, job
    with open(os.path.join(ws, "back", "lib", "model.bin"), "rb") as f:
        assert f.read() == big
    await api("DELETE", "devices/%s/session" % did)
    await api("DELETE", "devices/" + did)


async def test_terminal(api, jp_ws_fetch, board):
    """A shell on the board (each terminal has its own reader and writer links: two bridges)."""
    from test_terminal import _open, _send, _until
    d = await _connect(api, board)
    ws = await _open(jp_ws_fetch, d["id"], name="old", rows=30, cols=100)
    try:
        _send(ws, "stdin", "echo hel''lo-$((40+2))\n")
        await _until(ws, r"hello-42")
        _send(ws, "stdin", "exit 3\n")
        text, code = await _until(ws, r"(?!)")
        assert code == 3
    finally:
        ws.close()
    await api("DELETE", "devices/%s/session" % d["id"])
    await api("DELETE", "devices/" + d["id"])


async def test_maix_camera_streams(api, jp_ws_fetch, board):
    from PIL import Image
    d = await _connect(api, board)
    did = d["id"]
    cams = d["info"]["cameras"]
    assert cams and cams[0]["backend"] == "maix", cams
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                           params={"width": "240", "height": "240", "quality": "70", "fps": "0"})
    frames = []
    end = time.time() + 20
    while len(frames) < 5 and time.time() < end:
        msg = await asyncio.wait_for(ws.read_message(), 10)
        assert msg is not None, "camera socket closed"
        if isinstance(msg, bytes):
            n = int.from_bytes(msg[:4], "big")
            header = json.loads(msg[4:4 + n])
            frames.append((header, msg[4 + n:]))
    ws.close()
    assert len(frames) == 5
    seqs = [h["seq"] for h, _ in frames]
    assert len(set(seqs)) == 5 and seqs[-3:] == sorted(seqs[-3:]), seqs  # new captures, not one repeated
    h, jpeg = frames[-1]
    assert (h["width"], h["height"]) == (240, 240) and h["format"] == "jpeg"
    assert Image.open(io.BytesIO(jpeg)).size == (240, 240)
    code, _ = await api("DELETE", "devices/%s/session" % did)
    await api("DELETE", "devices/" + did)


@pytest.fixture
def jrd_config(jrd_config, request, tmp_path):
    if "probe_board_port" in request.fixturenames:
        jrd_config.update(probe_hosts=["127.0.0.1"], probe_ports=[request.getfixturevalue("probe_board_port")],
                          probe_interval=1.0)
    if "sshd" in request.fixturenames:
        # SSH runs the board's Python, whose only installed rpyc is its 4.x/5.x
        sshd, board = request.getfixturevalue("sshd"), request.getfixturevalue("board")
        jrd_config.update(ssh_known_hosts=sshd.known_hosts, ssh_python=board.python, ssh_timeout=60.0,
                          connect_timeout=5.0, devices_file=str(tmp_path / "devices.json"))
    return jrd_config


@pytest.fixture
def probe_board_port(board):
    return board.port


async def test_probe_discovery_lists_the_board(api, board, probe_board_port):
    async def found():
        code, body = await api("GET", "devices")
        return [d for d in body["devices"] if d["port"] == board.port and d["source"] == "probe"]

    devs = await wait_for(found, 20)
    assert devs and devs[0]["kind"] == "classic", devs
    code, d = await api("POST", "devices/%s/session" % devs[0]["id"])
    assert code == 200 and d["info"]["rpyc_version"] == board.rpyc, d
    await api("DELETE", "devices/%s/session" % devs[0]["id"])


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """The remote-device kernelspec and an empty Jupyter data dir (no saved boards)."""
    pytest.importorskip("jupyter_client")
    from jupyter_client.kernelspec import KernelSpecManager
    base = tmp_path_factory.mktemp("old-kernel")
    spec = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "jupyter_remote_device", "kernel", "spec")
    KernelSpecManager().install_kernel_spec(spec, "remote-device", prefix=str(base / "prefix"))
    (base / "data" / "remote_device").mkdir(parents=True)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_DATA_DIR")}
    os.environ["JUPYTER_PATH"] = str(base / "prefix" / "share" / "jupyter")
    os.environ["JUPYTER_DATA_DIR"] = str(base / "data")
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_kernel_dollar_connect_cells_and_interrupt(kernel_env, board):
    from test_kernel import TIMEOUT, Kernel, of_type, texts
    k = Kernel()
    try:
        reply, msgs = k.run('$connect("127.0.0.1:%d")' % board.port)
        assert reply["status"] == "ok", (reply, msgs)
        said = texts(msgs)
        assert "classic" in said and "rpyc %s" % board.rpyc in said and "Python 3.8." in said, said
        # live output: each line arrives while the cell still runs
        msg_id = k.kc.execute("import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.4)\nq = 5")
        arrivals = []
        while True:
            m = k.kc.get_iopub_msg(timeout=TIMEOUT)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "stream":
                arrivals.append((time.monotonic(), m["content"]["text"]))
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        assert "".join(t for _, t in arrivals) == "0\n1\n2\n"
        assert arrivals[-1][0] - arrivals[0][0] > 0.5, arrivals
        reply, msgs = k.run("q * 2")
        assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "10"
        reply, msgs = k.run("1/0")
        assert reply["ename"] == "ZeroDivisionError"
        # MaixPy3 code as notebooks written for rpyc_ikernel have it
        reply, msgs = k.run("from maix import camera, display\ncamera.config((240, 240))\n"
                            "img = camera.capture()\ndisplay.show(img)\nimg.size")
        assert reply["status"] == "ok", reply
        assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "(240, 240)"
        # interrupt a blocking call; the namespace stays
        msg_id = k.kc.execute("import time\ntime.sleep(60)")
        time.sleep(1.0)
        t0 = time.time()
        k.km.interrupt_kernel()
        reply = k.kc.get_shell_msg(timeout=TIMEOUT)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["ename"] == "KeyboardInterrupt" and time.time() - t0 < 3
        assert k.run("q")[0]["status"] == "ok"
    finally:
        k.close()


@pytest.fixture(scope="module")
def sshd():
    from jrd_helpers import SshServer, sshd_unavailable
    why = sshd_unavailable()
    if why:
        pytest.skip(why)
    s = SshServer()
    yield s
    s.close()


async def test_agent_deployed_over_ssh_brings_its_rpyc(api, sshd, board):
    import rpyc
    sshd.kill_agents()
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.user_key, "name": "old-board-ssh"})
    assert code == 201, dev
    try:
        code, d = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200, d
        assert d["kind"] == "agent" and d["info"]["python"].startswith("3.8."), d["info"]
        assert d["info"]["rpyc_version"] == rpyc.__version__, d["info"]   # ours, not the board's
        code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": (
            "import os, sys, rpyc, subprocess\nprint(rpyc.__version__, rpyc.__file__)\n"
            "env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}\n"
            "print(subprocess.run([sys.executable, '-c', 'import rpyc; print(rpyc.__version__)'], "
            "capture_output=True, text=True, cwd='/', env=env).stdout.strip())")})
        assert code == 200 and r["error"] is None, r
        mine, board_own = r["stdout"].splitlines()
        assert mine.split()[0] == rpyc.__version__ and "/.cache/jupyter-remote-device/" in mine.split()[1]
        assert board_own == board.rpyc or board_own == str(tuple(int(x) for x in board.rpyc.split(".")))
        code, r = await api("PUT", "devices/%s/files/content" % dev["id"], raw_body=b"via ssh", path="s.txt")
        assert code == 201, r
    finally:
        code, body = await api("GET", "devices")
        for x in body.get("devices", []):
            await api("DELETE", "devices/" + x["id"])
        sshd.kill_agents()


def _agent_with(python, pythonpath, tmp_path):
    from jupyter_remote_device.app import spawn_agent
    env = {"PYTHONPATH": pythonpath, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return spawn_agent(python=python, camera="none", root=str(tmp_path / "root"), env=env,
                       extra_args=["--no-mdns"])


def test_hand_copied_bundle_runs_on_the_board_with_its_own_rpyc(board, tmp_path):
    """``jupyter remote-device bundle DIR``: copied to a Python 3.8 board whose only rpyc is 4.x/5.x."""
    import rpyc

    from jupyter_remote_device import link as client
    from jupyter_remote_device.app import main, stop_process
    dest = tmp_path / "jrd-agent"
    assert main(["bundle", str(dest)]) == 0
    assert (dest / "rpyc" / "__init__.py").exists() and (dest / "README.txt").exists()
    proc, port, token = _agent_with(board.python, str(dest), tmp_path)
    try:
        conn = client.connect("127.0.0.1", port, token=token, timeout=10)
        try:
            info = json.loads(conn.root.info())
            assert info["python"].startswith("3.8.") and info["rpyc_version"] == rpyc.__version__, info
        finally:
            conn.close()
    finally:
        stop_process(proc)


def test_agent_on_the_boards_old_rpyc_gets_clear_words(board, tmp_path):
    """Our agent started with the board's rpyc 4.x/5.x: not a timeout, a message naming both versions."""
    import rpyc

    from jupyter_remote_device import link as client
    from jupyter_remote_device.app import stop_process
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc, port, token = _agent_with(board.python, repo, tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(client.ConnectError) as e:
            client.connect("127.0.0.1", port, token=token, timeout=10)
        assert time.monotonic() - t0 < 5
        assert e.value.reason == "too-old"
        assert "rpyc %s" % board.rpyc in e.value.message and rpyc.__version__ in e.value.message
        assert "bundle" in e.value.message
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def py37_board():
    py, why = board_python("3.7", "5.3.1", pillow=False)
    if py is None:
        pytest.skip(why)
    b = OldBoard(py, with_maix=False)
    yield b
    b.close()


async def test_a_board_too_old_for_anything_gets_words_not_a_timeout(api, py37_board):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": py37_board.port})
    assert code == 201, dev
    t0 = time.monotonic()
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert time.monotonic() - t0 < 5
    assert code == 502 and err["reason"] == "too-old", err
    assert "Python 3.7." in err["message"] and "rpyc 5.3.1" in err["message"] and "3.8" in err["message"], err
    code, d = await api("GET", "devices/" + dev["id"])
    assert d["status"] == "error" and "Python 3.7." in d["error"], d


def test_kernel_says_so_too(kernel_env, py37_board):
    from test_kernel import Kernel
    k = Kernel()
    try:
        reply, msgs = k.run('$connect("127.0.0.1:%d")' % py37_board.port)
        assert reply["status"] == "error", reply
        text = reply["evalue"] + "".join(reply["traceback"])
        assert "too-old" in text and "Python 3.7." in text and "rpyc 5.3.1" in text, text
    finally:
        k.close()


def test_rpyc_3_board_gets_words_too(tmp_path):
    """rpyc 3.x (Python 3.6; rpyc 3 does not import on 3.7+) speaks the old wire but refuses rpyc 5's
    requests: too-old, saying what it must be and what to do, within the connect timeout."""
    from jupyter_remote_device.link import LinkError
    from jupyter_remote_device.link.classic import connect_classic
    py, why = board_python("3.6", "3.4.4", pillow=False)
    if py is None:
        pytest.skip(why)
    b = OldBoard(py, with_maix=False)
    try:
        t0 = time.monotonic()
        with pytest.raises(LinkError) as e:
            connect_classic("127.0.0.1", b.port, timeout=5)
        assert time.monotonic() - t0 < 5
        assert e.value.reason == "too-old" and "older than 4.0" in e.value.message, e.value.message
        assert "Python 3.8" in e.value.message and "bundle" in e.value.message
    finally:
        b.close()


def test_bridge_passes_plain_values_only_and_bounds_frames(board):
    """What a board answers crosses the bridge's pipes as plain data only; an absurd frame ends
    the link (EOF), never a huge buffer; the bridge process goes with its connection."""
    import socket
    import struct
    import threading

    from jupyter_remote_device.link.bridge import BridgeConnection, BridgeError
    conn = BridgeConnection(socket.create_connection(("127.0.0.1", board.port)), label="board")
    try:
        assert conn.eval("(1, 'two', b'3', None, 4.5, (True,))") == (1, "two", b"3", None, 4.5, (True,))
        with pytest.raises(BridgeError) as e:
            conn.eval("object()")
        assert e.value.reason == "protocol" and "not plain data" in e.value.message
        with pytest.raises(ZeroDivisionError) as e:   # unboxed by our rpyc, with the board's traceback
            conn.eval("1/0")
        assert getattr(e.value, "_remote_tb", "")
        big = conn.eval("b'x' * (8 << 20)")
        assert big == b"x" * (8 << 20)
    finally:
        conn.close()
    assert conn.closed and conn._proc.poll() is not None

    # a hostile "board": answers the first request with a frame header announcing 1 GB
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def hostile():
        c, _ = srv.accept()
        c.recv(65536)
        c.sendall(struct.pack("!LB", 1 << 30, 0) + b"\x12" * 100)
        time.sleep(5)
        c.close()

    threading.Thread(target=hostile, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises((EOFError, BridgeError)):
        BridgeConnection(socket.create_connection(srv.getsockname()), timeout=10, label="hostile")
    assert time.monotonic() - t0 < 5
    srv.close()
