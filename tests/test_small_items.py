"""Smaller trust items: camera sizes that are not finite numbers, NUL in a path, token files others
can read, --token visible in ps, listings of symlinks that lead out of the board's root."""
import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from jupyter_remote_device import link as client
from jupyter_remote_device.agent import auth
from jupyter_remote_device.agent.files import FileStore
from jupyter_remote_device.app import READY_PREFIX, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("query", [{"width": "inf"}, {"height": "1e999"}, {"fps": "nan"}, {"quality": "-inf"}])
async def test_camera_query_not_finite_is_a_clear_400(jp_ws_fetch, connected, query):
    did = await connected()
    params = dict({"width": "320", "height": "240", "quality": "70", "fps": "0"}, **query)
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera", params=params)
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 5))
    assert msg["type"] == "status" and msg["state"] == "error" and msg["reason"] == "bad-request", msg
    assert "finite" in msg["message"] or "between" in msg["message"], msg
    assert await asyncio.wait_for(ws.read_message(), 5) is None  # closed, no uncaught error


async def test_camera_settings_message_infinite_is_refused(jp_ws_fetch, connected):
    did = await connected()
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                           params={"width": "320", "height": "240", "quality": "70", "fps": "0"})
    ws.write_message('{"type": "settings", "width": Infinity}')  # Python's json reads Infinity
    deadline = time.monotonic() + 8
    while True:
        msg = await asyncio.wait_for(ws.read_message(), 5)
        assert msg is not None and time.monotonic() < deadline, "no status for the bad settings"
        if isinstance(msg, str):
            st = json.loads(msg)
            if "error" in st:  # the one-off notice for a bad client message (not "internal")
                assert st["error"] == "bad-request" and "width" in st["message"], st
                break
    ws.close()


async def test_nul_in_a_path_is_400_not_a_space(api, agent, connected):
    did = await connected()
    os.makedirs(os.path.join(agent.root, "a b"))
    with open(os.path.join(agent.root, "a b", "f.txt"), "w") as f:
        f.write("x")
    # "a\0b" must not become "a b" (which exists)
    code, err = await api("GET", "devices/%s/files" % did, path="a\x00b")
    assert code == 400 and err["reason"] == "bad-request" and "NUL" in err["message"], err
    code, err = await api("GET", "devices/%s/files/content" % did, path="a\x00b/f.txt")
    assert code == 400 and err["reason"] == "bad-request", err
    code, err = await api("PUT", "devices/%s/files/content" % did, raw_body=b"data", path="new\x00.txt")
    assert code == 400 and err["reason"] == "bad-request", err
    assert sorted(os.listdir(agent.root)) == ["a b"]
    # a trailing blank is part of the name (get_argument would strip it)
    code, res = await api("GET", "devices/%s/files" % did, path="a b")
    assert code == 200 and [e["name"] for e in res["entries"]] == ["f.txt"]
    code, err = await api("GET", "devices/%s/files" % did, path="a b ")
    assert code == 404, err


def test_token_file_readable_by_others_is_fixed_with_a_warning(tmp_path):
    path = tmp_path / "token"
    path.write_text("abcdef0123456789abcdef0123456789\n")
    os.chmod(str(path), 0o644)
    warnings = []
    token, created = auth.load_or_create_token(str(path), warn=warnings.append)
    assert token == "abcdef0123456789abcdef0123456789" and not created
    assert (path.stat().st_mode & 0o777) == 0o600
    assert warnings and "0600" in warnings[0] and "644" in warnings[0]
    # the agent itself says so on stderr
    os.chmod(str(path), 0o640)
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path / "r"), "--token-file",
                          str(path), "--no-mdns", "--no-tls"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=REPO))
    try:
        while not p.stdout.readline().startswith(READY_PREFIX):
            assert p.poll() is None
        assert (path.stat().st_mode & 0o777) == 0o600
    finally:
        stop_process(p, 5)
    assert "readable by other users" in p.stderr.read()


def test_token_on_the_command_line_leaves_ps(tmp_path):
    secret = "cmdline-" + os.urandom(8).hex()
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path), "--token", secret,
                          "--no-mdns"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO))
    try:
        port = None
        while port is None:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            if line.startswith(READY_PREFIX):
                port = int(line.rsplit(":", 1)[1])
        cmdline = open("/proc/%d/cmdline" % p.pid, "rb").read()
        assert secret.encode() not in cmdline and b"--token" not in cmdline, cmdline
        assert b"jupyter_remote_device.agent" in cmdline
        conn = client.connect("127.0.0.1", port, secret)  # the same process, the same token
        code = "import os; print(os.environ.get('JRD_AGENT_TOKEN'))"
        from jrd_helpers import board_says
        # not handed on to the board's code (and what it starts)
        assert board_says(conn, code, polls=50).strip() == "None"
        conn.close()
    finally:
        stop_process(p, 5)
    assert "--token is visible" in p.stderr.read()


def test_listing_hides_the_targets_of_symlinks_leading_out(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (outside / "secret-dir").mkdir(parents=True)
    (outside / "big.bin").write_bytes(b"x" * 12345)
    root.mkdir()
    (root / "inside.txt").write_text("hello")
    os.symlink(str(outside / "big.bin"), str(root / "to-file"))
    os.symlink(str(outside / "secret-dir"), str(root / "to-dir"))
    os.symlink("inside.txt", str(root / "ok-link"))
    fs = FileStore(str(root))
    entries = {e["name"]: e for e in fs.list("")["entries"]}
    for name in ("to-file", "to-dir"):
        e = entries[name]
        assert e["outside_root"] is True and e["size"] == 0 and e["type"] == "file", e
        assert e["mtime"] == os.lstat(str(root / name)).st_mtime
    assert entries["ok-link"]["size"] == 5 and "outside_root" not in entries["ok-link"]
    with pytest.raises(PermissionError):
        fs.stat("to-file")
