"""The remote-device kernel, end to end: jupyter_client -> kernel -> rpyc -> a real agent.

Everything runs on 127.0.0.1: a loopback agent (spawn_agent), a kernel started
from the package's kernelspec, and for the classic case a stock rpyc classic
server (SlaveService) started by the test.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from jrd_helpers import free_port  # noqa: E402
from jupyter_remote_device.agent.executor import CAMERA_MIME  # noqa: E402
from jupyter_remote_device.app import spawn_agent, stop_process  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SPEC = os.path.join(REPO, "jupyter_remote_device", "kernel", "spec")
TIMEOUT = 20

MAIX_INIT = ""
MAIX_DISPLAY = "calls = [0]\ndef show(img=None):\n    calls[0] += 1\n"
MAIX_CAMERA = textwrap.dedent("""
    from PIL import Image
    _n = [0]
    _size = [(320, 240)]
    def config(size):
        _size[0] = tuple(size)
    def capture():
        _n[0] += 1
        return Image.new('RGB', _size[0], ((_n[0] * 9) % 256, 80, 160))
""")




def stop_proc(proc):
    stop_process(proc, 5)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Kernelspec + Jupyter data dir (saved boards) + a stand-in `maix` package."""
    base = tmp_path_factory.mktemp("kernel-env")
    prefix = base / "prefix"
    KernelSpecManager().install_kernel_spec(SPEC, "remote-device", prefix=str(prefix))
    data_dir = base / "data"
    (data_dir / "remote_device").mkdir(parents=True)
    maix_dir = base / "pylib"
    (maix_dir / "maix").mkdir(parents=True)
    (maix_dir / "maix" / "__init__.py").write_text(MAIX_INIT)
    (maix_dir / "maix" / "display.py").write_text(MAIX_DISPLAY)
    (maix_dir / "maix" / "camera.py").write_text(MAIX_CAMERA)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "PYTHONPATH")}
    os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")
    os.environ["JUPYTER_DATA_DIR"] = str(data_dir)
    os.environ["PYTHONPATH"] = REPO + (os.pathsep + saved["PYTHONPATH"] if saved["PYTHONPATH"] else "")
    yield {"data_dir": data_dir, "maix_dir": str(maix_dir)}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def agent(env):
    proc, port, token = spawn_agent(env={"PYTHONPATH": REPO + os.pathsep + env["maix_dir"]})
    yield {"proc": proc, "port": port, "token": token}
    stop_proc(proc)


class Kernel(object):
    def __init__(self, env=None):
        self.km = KernelManager(kernel_name="remote-device")
        if env:
            full = dict(os.environ)
            full.update(env)
            self.km.start_kernel(env=full)
        else:
            self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT)

    def run(self, code, timeout=TIMEOUT, allow_stdin=False, stdin_hook=None):
        msgs = []
        kw = {}
        if stdin_hook is not None:
            kw["stdin_hook"] = stdin_hook
        reply = self.kc.execute_interactive(code, timeout=timeout, allow_stdin=allow_stdin,
                                            output_hook=msgs.append, **kw)
        return reply["content"], msgs

    def connect(self, agent):
        reply, msgs = self.run("%%connect 127.0.0.1:%d --token %s" % (agent["port"], agent["token"]))
        assert reply["status"] == "ok", (reply, msgs)
        return msgs

    def request(self, method, *args, **kw):
        getattr(self.kc, method)(*args, **kw)
        return self.kc.get_shell_msg(timeout=TIMEOUT)["content"]

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def texts(msgs, name="stdout"):
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and m["content"]["name"] == name)


def of_type(msgs, t):
    return [m["content"] for m in msgs if m["msg_type"] == t]


@pytest.fixture(scope="module")
def kernel(env, agent):
    k = Kernel()
    k.connect(agent)
    yield k
    k.close()


def test_not_connected_is_explained(env):
    k = Kernel()
    try:
        reply, msgs = k.run("1 + 1")
        assert reply["status"] == "error" and reply["ename"] == "NotConnected"
        assert "%connect" in reply["evalue"]
        reply, msgs = k.run("%connect")
        assert "Not connected" in texts(msgs)
        reply, msgs = k.run("%%connect 127.0.0.1:%d" % free_port())
        assert reply["status"] == "error" and "refused" in reply["evalue"]
        reply, msgs = k.run("%nonsense")
        assert reply["status"] == "error" and "Unknown magic" in reply["evalue"]
        assert k.request("is_complete", "%connect 1.2.3.4")["status"] == "complete"
        assert k.request("complete", "%con", 4)["matches"] == ["%connect"]
    finally:
        k.close()


def test_stream_is_live_and_result(kernel):
    code = "import time\nfor i in range(4):\n    print('tick', i)\n    time.sleep(0.25)\n6 * 7"
    kernel.kc.execute(code)
    arrivals = []
    result = None
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        msg = kernel.kc.get_iopub_msg(timeout=TIMEOUT)
        if msg["msg_type"] == "stream":
            arrivals.append((time.time(), msg["content"]["text"]))
        elif msg["msg_type"] == "execute_result":
            result = (time.time(), msg["content"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kernel.kc.get_shell_msg(timeout=TIMEOUT)["content"]
    assert reply["status"] == "ok"
    assert "".join(t for _, t in arrivals) == "".join("tick %d\n" % i for i in range(4))
    assert len(arrivals) >= 3                      # streamed, not one blob at the end
    assert result[0] - arrivals[0][0] > 0.5        # the first print arrived well before the end
    assert result[1]["data"]["text/plain"] == "42"
    assert result[1]["execution_count"] == reply["execution_count"]


def test_error_reply_has_board_line_numbers(kernel):
    reply, msgs = kernel.run("a = 1\nb = 0\nc = a / b\n")
    assert reply["status"] == "error" and reply["ename"] == "ZeroDivisionError"
    errs = of_type(msgs, "error")
    assert len(errs) == 1
    tb = "\n".join(errs[0]["traceback"])
    assert "line 3" in tb and "c = a / b" in tb
    reply, msgs = kernel.run("def f(\n")
    assert reply["status"] == "error" and reply["ename"] == "SyntaxError"


def test_input_goes_through_stdin_channel(kernel):
    asked = []

    def stdin_hook(msg):
        asked.append(msg["content"]["prompt"])
        kernel.kc.input("Ada")

    reply, msgs = kernel.run("n = input('name? ')\nprint('hello', n)", allow_stdin=True, stdin_hook=stdin_hook)
    assert reply["status"] == "ok", reply
    assert asked == ["name? "]
    assert texts(msgs) == "hello Ada\n"
    reply, msgs = kernel.run("input()", allow_stdin=False)
    assert reply["status"] == "error" and reply["ename"] == "StdinNotImplementedError"


def test_image_display(kernel):
    reply, msgs = kernel.run("from PIL import Image\nimg = Image.new('RGB', (40, 30), (0, 0, 255))\n"
                             "display(img)\nimg")
    assert reply["status"] == "ok", reply
    shown = of_type(msgs, "display_data")
    assert len(shown) == 1
    data = shown[0]["data"]
    mime = "image/png" if "image/png" in data else "image/jpeg"
    assert mime in data and base64.b64decode(data[mime])
    assert any(k.startswith("image/") for k in of_type(msgs, "execute_result")[0]["data"])


def test_complete_inspect_is_complete(kernel):
    kernel.run("import os\nboard_value = 3\ndef board_func(x, y=1):\n    'Board docs.'\n    return x")
    c = kernel.request("complete", "board_", 6)
    assert c["status"] == "ok" and {"board_value", "board_func"} <= set(c["matches"])
    assert c["cursor_start"] == 0 and c["cursor_end"] == 6
    c = kernel.request("complete", "os.pat", 6)
    assert "os.path" in c["matches"]
    i = kernel.request("inspect", "board_func(", 11)
    assert i["found"] and "Board docs." in i["data"]["text/plain"]
    assert kernel.request("inspect", "nope_nope", 4)["found"] is False
    assert kernel.request("is_complete", "for i in x:")["status"] == "incomplete"
    assert kernel.request("is_complete", "x = 1")["status"] == "complete"
    assert kernel.request("is_complete", "1 +* 2")["status"] == "invalid"


@pytest.mark.parametrize("body", ["while True:\n    spin += 1", "import time\ntime.sleep(60)"])
def test_interrupt_keeps_namespace(kernel, body):
    kernel.run("kept = 'yes'\nspin = 0")
    msg_id = kernel.kc.execute(body)
    # wait until the board really runs it
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        m = kernel.kc.get_iopub_msg(timeout=TIMEOUT)
        if m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == msg_id:
            break
    time.sleep(0.5)
    t0 = time.time()
    kernel.km.interrupt_kernel()
    reply = kernel.kc.get_shell_msg(timeout=TIMEOUT)
    latency = time.time() - t0
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert latency < 3.0
    print("kernel interrupt latency %.3f s" % latency)
    reply, msgs = kernel.run("kept")
    assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "'yes'"


def test_maix_display_show_loop_streams_updates_and_stops_on_interrupt(kernel):
    code = "from maix import camera, display\nwhile True:\n    display.show(camera.capture())"
    msg_id = kernel.kc.execute(code)
    first = None
    updates = []
    t_start = None
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        m = kernel.kc.get_iopub_msg(timeout=TIMEOUT)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "display_data":
            first = m["content"]
            t_start = time.time()
        elif m["msg_type"] == "update_display_data":
            updates.append(m["content"])
            if time.time() - t_start > 1.5:
                break
    assert first is not None and len(updates) >= 5
    elapsed = time.time() - t_start
    assert len(updates) <= elapsed * 10 + 3          # at most ~10 updates a second
    kernel.km.interrupt_kernel()
    reply = kernel.kc.get_shell_msg(timeout=TIMEOUT)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    spec = first["data"][CAMERA_MIME]
    assert spec["width"] == 320 and spec["height"] == 240
    assert spec["host"] == "127.0.0.1" and spec["device"]
    jpeg = base64.b64decode(first["data"]["image/jpeg"])
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= 50 * 1000
    did = first["transient"]["display_id"]
    assert all(u["transient"]["display_id"] == did for u in updates)
    # the real display.show kept running on the board
    reply, msgs = kernel.run("display.calls[0] > 10")
    assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "True"


def test_camera_magic_emits_camera_bundle(kernel):
    reply, msgs = kernel.run("%camera 320 240")
    assert reply["status"] == "ok", reply
    data = of_type(msgs, "display_data")[0]["data"]
    spec = data[CAMERA_MIME]
    assert spec["width"] == 320 and spec["height"] == 240 and spec["port"]
    from jupyter_remote_device.server.manager import device_id_for
    assert spec["device_id"] == device_id_for("127.0.0.1", spec["port"])   # what the server calls it
    jpeg = base64.b64decode(data["image/jpeg"])    # a still from the agent's (synthetic) camera
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= 50 * 1000


def test_restart_resets_namespace(env, agent):
    k = Kernel()
    try:
        k.connect(agent)
        k.run("survivor = 1")
        reply, msgs = k.run("survivor")
        assert reply["status"] == "ok"
        k.km.restart_kernel(now=False)
        k.kc.wait_for_ready(timeout=TIMEOUT)
        k.connect(agent)
        reply, msgs = k.run("survivor")
        assert reply["status"] == "error" and reply["ename"] == "NameError"
        # restarting while a loop runs stops that loop on the board (it would block everyone)
        k.kc.execute("while True:\n    pass")
        time.sleep(0.5)
        k.km.restart_kernel(now=False)
        k.kc.wait_for_ready(timeout=TIMEOUT)
        k.connect(agent)
        t0 = time.time()
        reply, msgs = k.run("print('free')", timeout=10)
        assert reply["status"] == "ok" and texts(msgs) == "free\n" and time.time() - t0 < 5
    finally:
        k.close()


def test_reconnect_after_agent_restart(env):
    port = free_port()
    token = "t0ken-%d" % port
    proc, port, _ = spawn_agent(port=port, token=token)
    k = Kernel()
    try:
        k.connect({"port": port, "token": token})
        assert k.run("v = 1\nv")[0]["status"] == "ok"
        # the agent restarts between two cells: the next cell reconnects and says so
        stop_proc(proc)
        proc, _, _ = spawn_agent(port=port, token=token)
        reply, msgs = k.run("print('back')")
        assert reply["status"] == "ok", reply
        assert texts(msgs) == "back\n"
        assert "reconnected" in texts(msgs, "stderr")
        # the board is down: the cell says so plainly, then works once it is back
        stop_proc(proc)
        reply, msgs = k.run("print('x')")
        assert reply["status"] == "error"
        assert "127.0.0.1:%d" % port in reply["evalue"] and "not reachable" in reply["evalue"]
        proc, _, _ = spawn_agent(port=port, token=token)
        reply, msgs = k.run("print('again')")
        assert reply["status"] == "ok" and texts(msgs) == "again\n"
        # the board goes away in the middle of a cell: that cell ends with a plain message
        msg_id = k.kc.execute("import time\ntime.sleep(30)")
        time.sleep(0.5)
        proc.kill()
        proc.wait(5)
        r = k.kc.get_shell_msg(timeout=TIMEOUT)
        assert r["parent_header"]["msg_id"] == msg_id
        assert r["content"]["status"] == "error" and r["content"]["ename"] == "ConnectionLost"
        assert "reconnects on the next cell" in r["content"]["evalue"]
        proc, _, _ = spawn_agent(port=port, token=token)
        reply, msgs = k.run("print('and again')")
        assert reply["status"] == "ok" and texts(msgs) == "and again\n"
    finally:
        k.close()
        stop_proc(proc)


def _write_devices(env, devices):
    path = env["data_dir"] / "remote_device" / "devices.json"
    path.write_text(json.dumps({"devices": devices}))


def test_connect_by_saved_name_and_dollar_connect(env, agent):
    _write_devices(env, [{"id": "d-42", "name": "bench-board", "host": "127.0.0.1", "port": agent["port"],
                          "token": agent["token"], "source": "manual"}])
    k = Kernel()
    try:
        reply, msgs = k.run("%devices")
        out = texts(msgs)
        assert "bench-board" in out and "d-42" in out and "127.0.0.1:%d" % agent["port"] in out
        assert agent["token"] not in out                     # tokens are never printed
        reply, msgs = k.run("%connect bench-board\nimport socket\nsocket.gethostname() != ''")
        assert reply["status"] == "ok", reply
        assert "Connected to bench-board" in texts(msgs)
        assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "True"
        assert k.request("complete", "%connect ben", 12)["matches"] == ["bench-board"]
        reply, msgs = k.run("%disconnect")
        assert "Disconnected" in texts(msgs)
        assert k.run("1")[0]["ename"] == "NotConnected"
        # rpyc_ikernel's form; the token comes from the saved board with that address
        reply, msgs = k.run('$connect("127.0.0.1:%d")\nprint("via dollar")' % agent["port"])
        assert reply["status"] == "ok", reply
        assert "via dollar" in texts(msgs)
        reply, msgs = k.run("%connect d-42")           # by id
        assert reply["status"] == "ok"
    finally:
        k.close()
        _write_devices(env, [])


CLASSIC_SERVER = """
import sys
from rpyc.utils.server import ThreadedServer
from rpyc.core import SlaveService
s = ThreadedServer(SlaveService, hostname="127.0.0.1", port=0, auto_register=False,
                   protocol_config={"allow_all_attrs": True, "import_custom_exceptions": True})
print("PORT", s.port, flush=True)
s.start()
"""


@pytest.fixture
def classic_server(env):
    """The real ``rpyc_classic`` CLI (threaded SlaveService; no --register: no registry broadcast)."""
    port = free_port()
    try:
        import plumbum  # noqa: F401  (rpyc's CLI needs it)
        cmd = [sys.executable, "-c", "import sys; from rpyc.cli.rpyc_classic import main; "
               "sys.argv[0] = 'rpyc_classic'; main()", "--host", "127.0.0.1", "--port", str(port), "-q"]
    except ImportError:
        cmd = [sys.executable, "-c", CLASSIC_SERVER.replace("port=0", "port=%d" % port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.time() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "rpyc_classic did not start"
            time.sleep(0.05)
    yield port
    stop_proc(proc)


def test_stock_rpyc_classic_server(env, classic_server):
    k = Kernel()
    try:
        reply, msgs = k.run('$connect("127.0.0.1:%d")' % classic_server)
        assert reply["status"] == "ok", reply
        assert "classic" in texts(msgs)
        reply, msgs = k.run("import time\nfor i in range(3):\n    print(i)\n    time.sleep(0.1)\nq = 5\nq * 2")
        assert reply["status"] == "ok", reply
        assert texts(msgs) == "0\n1\n2\n"
        assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "10"
        reply, msgs = k.run("1/0")
        assert reply["ename"] == "ZeroDivisionError" and "line 1" in "\n".join(reply["traceback"])
        assert "q" in k.request("complete", "q", 1)["matches"]
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


def test_two_kernels_share_the_board_in_turn(kernel, agent):
    """One interpreter on the board: a second kernel's cell waits (and says so), namespaces stay apart."""
    other = Kernel()
    try:
        other.connect(agent)
        kernel.run("mine = 'first kernel'")
        msg_id = kernel.kc.execute("import time\ntime.sleep(2.5)")
        time.sleep(0.3)
        t0 = time.time()
        reply, msgs = other.run("print('second')\n'mine' in globals()")
        assert reply["status"] == "ok", reply
        assert time.time() - t0 > 1.5                    # it ran after the first kernel's cell
        assert "waiting" in texts(msgs, "stderr")
        assert texts(msgs) == "second\n"
        assert of_type(msgs, "execute_result")[0]["data"]["text/plain"] == "False"
        r = kernel.kc.get_shell_msg(timeout=TIMEOUT)
        assert r["parent_header"]["msg_id"] == msg_id and r["content"]["status"] == "ok"
    finally:
        other.close()


def test_environment_preselects_the_board(env, agent):
    k = Kernel(env={"JRD_DEVICE_HOST": "127.0.0.1", "JRD_DEVICE_PORT": str(agent["port"]),
                    "JRD_DEVICE_TOKEN": agent["token"]})
    try:
        reply, msgs = k.run("print('preselected')")
        assert reply["status"] == "ok", reply
        assert texts(msgs) == "preselected\n"
    finally:
        k.close()


def test_a_vanished_client_does_not_keep_the_board_busy(env, agent):
    """A kernel killed in the middle of a loop: the agent stops that loop when its connection closes."""
    k = Kernel()
    k.connect(agent)
    k.kc.execute("while True:\n    pass")
    time.sleep(0.5)
    k.km.kill_kernel() if hasattr(k.km, "kill_kernel") else k.km.shutdown_kernel(now=True)
    k.kc.stop_channels()
    other = Kernel()
    try:
        other.connect(agent)
        t0 = time.time()
        reply, msgs = other.run("print('board is free')", timeout=15)
        assert reply["status"] == "ok" and texts(msgs) == "board is free\n"
        assert time.time() - t0 < 10
    finally:
        other.close()
        try:
            k.km.shutdown_kernel(now=True)
        except Exception:
            pass
