"""Every board Python (3.8 to 3.13) with every rpyc family (4.x, 5.x, 6.x), as the README's
compatibility table says: a stock ``ThreadedServer(SlaveService)`` board (nothing of ours on it)
driven as a classic board (probe, connect, info, exec, a file), and the agent from the bundle a
user copies by hand, started with that board Python whose only installed rpyc is the one in the
cell. Each cell skips with the reason where that Python is missing or pip cannot install that
rpyc for it (``old_boards.board_python``).
"""
import json

import pytest

from jupyter_remote_device.link import rpyc_family
from jupyter_remote_device.link.classic import connect_classic
from jupyter_remote_device.link.probe import probe as probe_board
from old_boards import OldBoard, board_python

PYTHONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]
RPYCS = ["4.1.5", "5.3.1", "6.0.2"]
CELLS = [(p, r) for p in PYTHONS for r in RPYCS]


def _python(py, rv):
    python, why = board_python(py, rv, pillow=False)
    if python is None:
        pytest.skip(why)
    return python


def _run(conn, code):
    root = conn.root
    eid = root.exec_start(code, "matrix", "cell", False, False)
    out, done = [], False
    while not done:
        reply = json.loads(root.exec_poll(eid, 1.0))
        done = reply.get("done")
        out += [ev.get("text", "") for ev in reply.get("events", ()) if ev.get("type") == "stream"]
    return "".join(out)


@pytest.mark.parametrize("py,rv", CELLS, ids=["py%s-rpyc%s" % c for c in CELLS])
def test_classic_board(py, rv, tmp_path):
    board = OldBoard(_python(py, rv), with_maix=False)
    try:
        rpyc_family.remember("127.0.0.1", board.port, None)
        found = probe_board("127.0.0.1", board.port, timeout=2.0)
        assert found == {"kind": "classic", "rpyc_family": 5 if rv < "6" else 6}
        conn = connect_classic("127.0.0.1", board.port, timeout=10, root=str(tmp_path / "root"))
        try:
            info = json.loads(conn.root.info())
            assert info["rpyc_version"] == rv and info["python"].startswith(py + "."), info
            assert _run(conn, "import sys\nprint('%d.%d' % sys.version_info[:2], 6 * 7)") == "%s 42\n" % py
            conn.root.fs_put("cell.txt", b"cell")
            assert (tmp_path / "root" / "cell.txt").read_bytes() == b"cell"
        finally:
            conn.close()
    finally:
        board.close()


@pytest.mark.parametrize("py,rv", CELLS, ids=["py%s-rpyc%s" % c for c in CELLS])
def test_bundled_agent(py, rv, tmp_path):
    import rpyc

    from jupyter_remote_device import link as client
    from jupyter_remote_device.app import main, spawn_agent, stop_process
    python = _python(py, rv)
    dest = tmp_path / "jrd-agent"
    assert main(["bundle", str(dest)]) == 0
    env = {"PYTHONPATH": str(dest), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    proc, port, token = spawn_agent(python=python, camera="none", root=str(tmp_path / "root"), env=env,
                                    extra_args=["--no-mdns"])
    try:
        conn = client.connect("127.0.0.1", port, token=token, timeout=10)
        try:
            info = json.loads(conn.root.info())
            assert info["python"].startswith(py + ".") and info["rpyc_version"] == rpyc.__version__, info
        finally:
            conn.close()
    finally:
        stop_process(proc)
