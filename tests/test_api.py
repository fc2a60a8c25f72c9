"""The REST contract end to end: real jupyter_server, real agent processes on 127.0.0.1."""
import asyncio
import json
import socket
import time

import pytest

from jupyter_remote_device import __version__


async def test_version(api):
    code, body = await api("GET", "version")
    assert code == 200
    assert body == {"version": __version__}


async def test_add_list_get_delete_device(api, agent):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "name": "b1",
                                              "token": agent.token})
    assert code == 201
    assert dev["name"] == "b1" and dev["host"] == "127.0.0.1" and dev["port"] == agent.port
    assert dev["source"] == "manual" and dev["info"] is None
    assert dev["status"] in ("offline", "online")
    assert "token" not in dev
    code, again = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "name": "renamed"})
    assert code == 200 and again["id"] == dev["id"] and again["name"] == "renamed"
    code, listing = await api("GET", "devices")
    assert [d["id"] for d in listing["devices"]] == [dev["id"]]
    code, one = await api("GET", "devices/" + dev["id"])
    assert code == 200 and one["name"] == "renamed"
    code, _ = await api("DELETE", "devices/" + dev["id"])
    assert code == 204
    code, err = await api("GET", "devices/" + dev["id"])
    assert code == 404 and err["reason"] == "not-found" and err["message"]


async def test_device_becomes_online_by_itself(api, agent):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port})
    for _ in range(50):
        code, dev = await api("GET", "devices/" + dev["id"])
        if dev["status"] == "online":
            break
        await asyncio.sleep(0.1)
    assert dev["status"] == "online" and dev["kind"] == "agent"


async def test_session_info_exec_and_close(api, agent, connected):
    did = await connected()
    code, dev = await api("GET", "devices/" + did)
    info = dev["info"]
    for key in ("hostname", "model", "platform", "arch", "python", "agent_version", "cpu_count",
                "cpu_percent", "mem_total", "mem_available", "temperature_c", "uptime_s", "cameras"):
        assert key in info
    assert info["hostname"] == socket.gethostname()
    assert info["agent_version"] == __version__
    assert info["cpu_count"] >= 1 and info["mem_total"] > 0
    assert info["cameras"] and info["cameras"][0]["backend"] == "synthetic"

    code, out = await api("POST", "devices/%s/exec" % did, {"code": "x = 6 * 7\nprint(x)\nimport sys\n"
                                                                     "print('warn', file=sys.stderr)"})
    assert code == 200, out
    assert out == {"stdout": "42\n", "stderr": "warn\n", "error": None}
    # the namespace persists
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "print(x + 1)"})
    assert out["stdout"] == "43\n"
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "def f():\n    1/0\nf()"})
    assert code == 200
    assert out["error"]["ename"] == "ZeroDivisionError"
    assert any("1/0" in line for line in out["error"]["traceback"])

    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    code, dev = await api("GET", "devices/" + did)
    assert dev["status"] in ("online", "offline")
    code, err = await api("POST", "devices/%s/exec" % did, {"code": "1"})
    assert code == 409 and err["reason"] == "not-connected"


async def test_exec_timeout_interrupts(api, agent, connected):
    did = await connected()
    t0 = time.monotonic()
    code, err = await api("POST", "devices/%s/exec" % did, {"code": "import time\ntime.sleep(30)", "timeout": 1})
    assert code == 504 and err["reason"] == "timeout"
    assert time.monotonic() - t0 < 10
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "print('alive')"})
    assert out["stdout"] == "alive\n"


async def test_files_list_put_get_delete(api, agent, connected, jp_fetch):
    did = await connected()
    payload = bytes(range(256)) * 4099
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content", method="PUT",
                       params={"path": "dir/sub/data.bin"}, body=payload)
    assert r.code == 201
    meta = json.loads(r.body)
    import hashlib
    assert meta["size"] == len(payload) and meta["sha256"] == hashlib.sha256(payload).hexdigest()
    with open("%s/dir/sub/data.bin" % agent.root, "rb") as f:
        assert f.read() == payload
    code, listing = await api("GET", "devices/%s/files" % did, path="dir/sub")
    assert code == 200
    assert [(e["name"], e["type"], e["size"]) for e in listing["entries"]] == [("data.bin", "file", len(payload))]
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content", params={"path": "dir/sub/data.bin"})
    assert r.code == 200 and r.body == payload
    code, err = await api("DELETE", "devices/%s/files" % did, path="dir")
    assert code == 409 and err["reason"] == "not-empty"
    code, _ = await api("DELETE", "devices/%s/files" % did, path="dir", recursive="true")
    assert code == 204
    code, err = await api("GET", "devices/%s/files" % did, path="dir")
    assert code == 404 and err["reason"] == "not-found"


@pytest.mark.parametrize("path", ["../etc", "/../../etc/passwd", "a/../../x", "../" * 10])
async def test_files_confined_to_root(api, agent, connected, path):
    did = await connected()
    code, err = await api("GET", "devices/%s/files" % did, path=path)
    assert code in (400, 403) and err["reason"] in ("outside-root", "bad-request"), (path, err)
    assert err["message"]


async def test_push_single_file(api, agent, connected, jp_root_dir):
    did = await connected()
    (jp_root_dir / "hello.py").write_text("print('hi')\n")
    code, job = await api("POST", "devices/%s/push" % did, {"source": "hello.py", "dest": "code/hello.py"})
    assert code == 202, job
    for _ in range(100):
        code, job = await api("GET", "jobs/" + job["id"])
        if job["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done" and job["verified"] is True
    assert job["bytes_done"] == job["bytes_total"] == len("print('hi')\n")
    with open("%s/code/hello.py" % agent.root) as f:
        assert f.read() == "print('hi')\n"
    code, err = await api("POST", "devices/%s/push" % did, {"source": "../outside.py", "dest": "x"})
    assert code == 403 and err["reason"] == "outside-root"


async def test_camera_websocket_frames(api, agent, connected, jp_ws_fetch):
    did = await connected()
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                           params={"width": "320", "height": "240", "quality": "70"})
    seqs = []
    try:
        while len(seqs) < 3:
            msg = await asyncio.wait_for(ws.read_message(), 10)
            assert msg is not None
            if isinstance(msg, str):
                assert json.loads(msg)["type"] == "status"
                continue
            hlen = int.from_bytes(msg[:4], "big")
            header = json.loads(msg[4:4 + hlen])
            jpeg = msg[4 + hlen:]
            assert header["format"] == "jpeg" and header["width"] == 320 and header["height"] == 240
            assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
            assert abs(header["captured_at"] - time.time()) < 5
            seqs.append(header["seq"])
    finally:
        ws.close()
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


async def test_events_websocket(api, agent, jp_ws_fetch):
    ws = await jp_ws_fetch("jupyter-remote-device", "events")
    try:
        first = json.loads(await asyncio.wait_for(ws.read_message(), 5))
        assert first == {"type": "devices", "devices": []}
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 5))
        assert msg["type"] == "device" and msg["device"]["id"] == dev["id"]
        code, _ = await api("POST", "devices/%s/session" % dev["id"])
        statuses = set()
        deadline = time.monotonic() + 10
        while "connected" not in statuses and time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 5))
            if msg["type"] == "device":
                statuses.add(msg["device"]["status"])
        assert "connected" in statuses
        code, _ = await api("DELETE", "devices/" + dev["id"])
        while True:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 5))
            if msg["type"] == "removed":
                assert msg["id"] == dev["id"]
                break
    finally:
        ws.close()


def test_saved_boards_file_lists_configured_and_manual_boards(tmp_path):
    """Kernels find boards (and their tokens) by name in the saved boards file; it is private."""
    import os
    import stat

    from jupyter_remote_device.server.manager import DeviceManager

    path = tmp_path / "remote_device" / "devices.json"
    m = DeviceManager(devices_file=str(path), mdns=False,
                      configured_devices=[{"host": "127.0.0.1", "port": 18861, "name": "cfg", "token": "t1"}])
    m.add_device("127.0.0.2", 18861, name="man", token="t2")
    saved = {d["name"]: d for d in json.loads(path.read_text())["devices"]}
    assert saved["cfg"]["token"] == "t1" and saved["cfg"]["source"] == "config"
    assert saved["man"]["token"] == "t2" and saved["man"]["source"] == "manual"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # a restart without that configuration keeps the manual board only
    m2 = DeviceManager(devices_file=str(path), mdns=False)
    assert sorted(d["name"] for d in m2.list()) == ["man"]
