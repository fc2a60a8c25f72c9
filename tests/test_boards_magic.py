"""``%%boards``: one cell on several boards at once, each board's output apart and labelled.

Two real agents on 127.0.0.1 (each with its own mark in its environment), saved under the names
desk-01 and desk-02 in the Jupyter data dir, and the remote-device kernel from the package's
kernelspec driven with jupyter_client.
"""
import json
import os
import time

import pytest

pytest.importorskip("jupyter_client")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from jrd_helpers import free_port  # noqa: E402
from jupyter_remote_device.app import spawn_agent, stop_process  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SPEC = os.path.join(REPO, "jupyter_remote_device", "kernel", "spec")
TIMEOUT = 30


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    base = tmp_path_factory.mktemp("boards-magic")
    prefix = base / "prefix"
    KernelSpecManager().install_kernel_spec(SPEC, "remote-device", prefix=str(prefix))
    data_dir = base / "data"
    (data_dir / "remote_device").mkdir(parents=True)
    agents = []
    for mark in ("mark-a", "mark-b"):
        agents.append(spawn_agent(env={"PYTHONPATH": REPO, "JRD_TEST_MARK": mark}))
    dead = free_port()
    devices = [{"id": "d%d" % i, "name": "desk-%02d" % (i + 1), "host": "127.0.0.1", "port": port, "token": token}
               for i, (_, port, token) in enumerate(agents)]
    devices.append({"id": "d9", "name": "desk-09", "host": "127.0.0.1", "port": dead, "token": "x"})
    (data_dir / "remote_device" / "devices.json").write_text(json.dumps({"devices": devices}))
    config_dir = base / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(
        {"DeviceManager": {"allowed_networks": ["127.0.0.0/8"], "connect_timeout": 3}}))
    env = dict(os.environ, JUPYTER_PATH=str(prefix / "share" / "jupyter"), JUPYTER_DATA_DIR=str(data_dir),
               JUPYTER_CONFIG_DIR=str(config_dir), PYTHONPATH=REPO)
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH",)}
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    km = KernelManager(kernel_name="remote-device")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    yield {"kc": kc, "km": km, "agents": agents, "dead": dead}
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    for proc, _, _ in agents:
        stop_process(proc, 5)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run(kc, code, timeout=TIMEOUT):
    msgs = []
    reply = kc.execute_interactive(code, timeout=timeout, output_hook=msgs.append)
    return reply["content"], msgs


def blocks(msgs):
    """The last state of every board's block: {board: (state, text)}, in first-shown order."""
    out = {}
    for m in msgs:
        if m["msg_type"] in ("display_data", "update_display_data"):
            meta = m["content"]["metadata"].get("remote_device") or {}
            if "state" in meta:
                out[meta["board"]] = (meta["state"], m["content"]["data"]["text/plain"])
    return out


def test_one_cell_on_two_boards_each_output_apart(room):
    reply, msgs = run(room["kc"], "%%boards desk-01 desk-02\nimport os\n"
                                  "print('hello from', os.environ['JRD_TEST_MARK'])\n"
                                  "value = os.environ['JRD_TEST_MARK'].upper()")
    assert reply["status"] == "ok", (reply, msgs)
    b = blocks(msgs)
    assert list(b) == ["desk-01", "desk-02"]
    assert b["desk-01"][0] == "ok" and b["desk-02"][0] == "ok"
    assert b["desk-01"][1].startswith("── desk-01 (127.0.0.1:%d) · ok" % room["agents"][0][1])
    assert "hello from mark-a" in b["desk-01"][1] and "mark-b" not in b["desk-01"][1]
    assert "hello from mark-b" in b["desk-02"][1] and "mark-a" not in b["desk-02"][1]
    # nothing of a board's output outside its own block
    assert not [m for m in msgs if m["msg_type"] == "stream"]
    html = [m for m in msgs if m["msg_type"] == "update_display_data"][-1]["content"]["data"]["text/html"]
    assert "data-board=" in html and "<script" not in html

    # each board keeps its own namespace between %%boards cells
    reply, msgs = run(room["kc"], "%%boards desk-02 desk-01\nprint(value * 2)")
    assert reply["status"] == "ok", reply
    b = blocks(msgs)
    assert list(b) == ["desk-02", "desk-01"]
    assert "MARK-BMARK-B" in b["desk-02"][1] and "MARK-AMARK-A" in b["desk-01"][1]


def test_a_failing_and_an_unreachable_board_are_named_others_still_run(room):
    code = ("%%boards desk-01 desk-02 desk-09\nimport os\nif os.environ['JRD_TEST_MARK'] == 'mark-b':\n"
            "    1 / 0\nprint('fine on', os.environ['JRD_TEST_MARK'])")
    reply, msgs = run(room["kc"], code)
    assert reply["status"] == "error" and reply["ename"] == "BoardsFailed", reply
    assert "2 of 3 boards failed" in reply["evalue"]
    assert "desk-02 (ZeroDivisionError)" in reply["evalue"] and "desk-09 (Unreachable)" in reply["evalue"]
    b = blocks(msgs)
    assert b["desk-01"][0] == "ok" and "fine on mark-a" in b["desk-01"][1]
    assert b["desk-02"][0] == "error" and "ZeroDivisionError" in b["desk-02"][1]
    assert "fine on" not in b["desk-02"][1]
    assert b["desk-09"][0] == "unreachable" and "not reachable" in b["desk-09"][1]


def test_addresses_usage_errors_and_outside_allowed_networks(room):
    port = room["agents"][1][1]
    token = room["agents"][1][2]
    # an address of a saved board picks its token from the saved boards
    reply, msgs = run(room["kc"], "%%%%boards 127.0.0.1:%d\nprint(1 + 1)" % port)
    assert reply["status"] == "ok", reply
    assert "2" in blocks(msgs)["127.0.0.1:%d" % port][1]
    for cell, text in (("%%boards\nprint(1)", "at least one board"),
                       ("%%boards desk-01 --fast\nprint(1)", "%%boards: unknown option --fast"),
                       ("%%boards desk-01 --timeout soon\nprint(1)", "--timeout needs a number"),
                       ("%%boards desk-01\n", "no code"),
                       ("%%boards no-such-board!\nprint(1)", "neither a saved board")):
        reply, _ = run(room["kc"], cell)
        assert reply["status"] == "error" and reply["ename"] == "UsageError" and text in reply["evalue"], (cell, reply)
    reply, msgs = run(room["kc"], "%%boards 10.1.2.3:18861\nprint(1)")
    assert reply["status"] == "error", reply
    state, text = blocks(msgs)["10.1.2.3:18861"]
    assert state == "unreachable" and "not-allowed" in text, text
    assert token  # (the token never shows in any output)
    assert all(token not in json.dumps(m["content"]) for m in msgs)


def test_interrupt_stops_every_board(room):
    kc = room["kc"]
    msg_id = kc.execute("%%boards desk-01 desk-02\nimport time\nwhile True:\n    time.sleep(0.05)")
    # wait until both boards run
    deadline = time.monotonic() + TIMEOUT
    running = set()
    msgs = []
    while time.monotonic() < deadline and len(running) < 2:
        m = kc.get_iopub_msg(timeout=TIMEOUT)
        msgs.append(m)
        meta = (m["content"].get("metadata") or {}).get("remote_device") or {}
        if meta.get("state") == "running":
            running.add(meta["board"])
    assert running == {"desk-01", "desk-02"}
    room["km"].interrupt_kernel()
    reply = kc.get_shell_msg(timeout=TIMEOUT)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
    assert reply["content"]["status"] == "error", reply["content"]
    assert "2 of 2 boards failed" in reply["content"]["evalue"]
    assert "KeyboardInterrupt" in reply["content"]["evalue"]
    # and the boards are free again
    reply, msgs = run(kc, "%%boards desk-01 desk-02\nprint('after')")
    assert reply["status"] == "ok", reply
    assert all("after" in t for _, t in blocks(msgs).values())


def test_rich_output_is_labelled_by_board_and_inert(room):
    code = ("%%boards desk-01 desk-02\nimport os\nclass Card:\n"
            "    def _repr_html_(self):\n"
            "        return '<b>%s</b><script>alert(1)</script>' % os.environ['JRD_TEST_MARK']\n"
            "display(Card())\nfrom PIL import Image\nshow(Image.new('RGB', (32, 24), (200, 10, 10)))")
    reply, msgs = run(room["kc"], code)
    assert reply["status"] == "ok", reply
    rich = [m["content"] for m in msgs if m["msg_type"] in ("display_data", "update_display_data")
            and "state" not in (m["content"]["metadata"].get("remote_device") or {})]
    by_board = {}
    for c in rich:
        by_board.setdefault(c["metadata"]["remote_device"]["board"], []).append(c["data"])
    assert set(by_board) == {"desk-01", "desk-02"}
    for board, mark in (("desk-01", "mark-a"), ("desk-02", "mark-b")):
        blob = json.dumps(by_board[board])
        assert mark in blob and "<script" not in blob
        assert any("image/jpeg" in d or "image/png" in d for d in by_board[board])


def test_timeout_interrupts_a_board_still_running(room):
    reply, msgs = run(room["kc"], "%%boards desk-01 desk-02 --timeout 1\nimport os, time\n"
                                  "if os.environ['JRD_TEST_MARK'] == 'mark-a':\n    time.sleep(60)\nprint('quick')")
    assert reply["status"] == "error" and "1 of 2 boards failed: desk-01 (Timeout)" in reply["evalue"], reply
    b = blocks(msgs)
    assert b["desk-01"][0] == "timeout" and b["desk-02"][0] == "ok" and "quick" in b["desk-02"][1]
