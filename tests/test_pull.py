"""Pull jobs (POST devices/{id}/pull): a real jupyter_server (pytest-jupyter) pulling from a real
agent subprocess on 127.0.0.1 into the workspace (jp_root_dir)."""
import asyncio
import hashlib
import json
import os
import signal
import time

import pytest
import tornado.httpclient

from jupyter_remote_device.server import pull as pull_mod
from jupyter_remote_device.server.errors import ApiError

MiB = 1 << 20


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def sparse(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def temps(top):
    found = []
    for dirpath, _, files in os.walk(top):
        found += [os.path.join(dirpath, f) for f in files if ".jrd-tmp-" in f]
    return found


def tree(top):
    out = {}
    for dirpath, dirs, files in os.walk(top):
        rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
        for d in dirs:
            out[(d if rel == "." else rel + "/" + d) + "/"] = None
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[f if rel == "." else rel + "/" + f] = fh.read()
    return out


async def wait_job(api, job_id, timeout=60.0, until=None):
    deadline = time.monotonic() + timeout
    while True:
        code, job = await api("GET", "jobs/" + job_id)
        assert code == 200, job
        if (until(job) if until else job["state"] != "running"):
            return job
        assert time.monotonic() < deadline, "job still running: %r" % job
        await asyncio.sleep(0.01)


async def pull(api, did, body, timeout=60.0):
    code, job = await api("POST", "devices/%s/pull" % did, body)
    assert code == 202, job
    assert job["state"] == "running" and job["kind"] == "pull" and job["id"]
    return await wait_job(api, job["id"], timeout)


async def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_pull_file(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    data = os.urandom(5 * MiB + 123)
    write(os.path.join(agent.root, "data", "blob.bin"), data)
    os.utime(os.path.join(agent.root, "data", "blob.bin"), (1_600_000_000, 1_600_000_000.5))
    job = await pull(api, did, {"source": "data/blob.bin", "dest": ""})
    assert job["state"] == "done", job
    assert job["verified"] is True and job["error"] is None
    assert job["bytes_done"] == job["bytes_total"] == len(data)
    assert job["files_done"] == job["files_total"] == 1
    assert job["source"] == "data/blob.bin" and job["dest"] == "blob.bin" and job["device_id"] == did
    got = os.path.join(ws, "blob.bin")
    assert hashlib.sha256(open(got, "rb").read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert abs(os.stat(got).st_mtime - 1_600_000_000.5) < 1e-3  # the board's mtime travels along
    # dest names the file; missing parents are made; an existing folder means "into"
    job = await pull(api, did, {"source": "data/blob.bin", "dest": "new/dir/renamed.bin"})
    assert job["state"] == "done" and job["dest"] == "new/dir/renamed.bin"
    assert open(os.path.join(ws, "new", "dir", "renamed.bin"), "rb").read() == data
    job = await pull(api, did, {"source": "data/blob.bin", "dest": "new"})
    assert job["state"] == "done" and job["dest"] == "new/blob.bin"
    job = await pull(api, did, {"source": "data/blob.bin", "dest": "later/"})
    assert job["state"] == "done" and job["dest"] == "later/blob.bin"
    # pulling again overwrites, as push does; an empty file is a file too
    write(os.path.join(agent.root, "data", "blob.bin"), b"v2")
    write(os.path.join(agent.root, "empty.txt"), b"")
    job = await pull(api, did, {"source": "data/blob.bin", "dest": "blob.bin"})
    assert job["state"] == "done" and open(got, "rb").read() == b"v2"
    job = await pull(api, did, {"source": "empty.txt", "dest": ""})
    assert job["state"] == "done" and os.path.getsize(os.path.join(ws, "empty.txt")) == 0
    assert temps(ws) == []


async def test_pull_folder(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    files = {
        "proj/main.py": b"print('hi')\n",
        "proj/lib/util.py": os.urandom(3 * MiB + 1),
        "proj/lib/deeper/ünïcode name.txt": "ü".encode(),
        "proj/empty.txt": b"",
    }
    for rel, data in files.items():
        write(os.path.join(agent.root, rel), data)
    os.makedirs(os.path.join(agent.root, "proj", "empty_dir"))
    job = await pull(api, did, {"source": "proj", "dest": "copy"})
    assert job["state"] == "done", job
    assert job["files_done"] == job["files_total"] == 4
    assert job["bytes_done"] == job["bytes_total"] == sum(len(d) for d in files.values())
    assert job["dest"] == "copy" and job["verified"] is True
    expected = {rel[len("proj/"):]: data for rel, data in files.items()}
    expected.update({"lib/": None, "lib/deeper/": None, "empty_dir/": None})
    assert tree(os.path.join(ws, "copy")) == expected
    # "into": dest ending with "/" (or empty) gets the folder under its own name
    job = await pull(api, did, {"source": "proj/lib", "dest": "into/"})
    assert job["state"] == "done" and job["dest"] == "into/lib"
    assert open(os.path.join(ws, "into", "lib", "util.py"), "rb").read() == files["proj/lib/util.py"]
    job = await pull(api, did, {"source": "proj", "dest": ""})
    assert job["state"] == "done" and job["dest"] == "proj"
    assert os.path.isdir(os.path.join(ws, "proj", "empty_dir"))
    # a folder onto a workspace file fails the job, and leaves the file alone
    write(os.path.join(ws, "afile"), b"keep")
    job = await pull(api, did, {"source": "proj", "dest": "afile"})
    assert job["state"] == "failed" and job["reason"] == "bad-request" and job["error"]
    assert open(os.path.join(ws, "afile"), "rb").read() == b"keep"
    assert temps(ws) == []


async def test_pull_bad_input(api, agent, connected, jp_root_dir, tmp_path):
    did = await connected()
    ws = str(jp_root_dir)
    write(os.path.join(agent.root, "ok.txt"), b"ok")
    write(os.path.join(ws, "afile"), b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(ws, "dir_out"))
    # a link on the board that leads out of the agent's root
    os.symlink(str(outside), os.path.join(agent.root, "board_out"))
    (outside / "secret.txt").write_text("secret")
    cases = [
        ({"source": 12, "dest": "x"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": 5}, 400, "bad-request"),
        ({"dest": "x"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": "a\x00b"}, 400, "bad-request"),
        ({"source": "a\x00b", "dest": "x"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": "afile/"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": "../up.txt"}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": "a/../../up.txt"}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": "/etc/jrd-pulled.txt"}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": str(outside / "x.txt")}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": "dir_out/x.txt"}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": "dir_out/"}, 403, "outside-root"),
        ({"source": "../etc/passwd", "dest": "x"}, 403, "outside-root"),
        ({"source": "board_out/secret.txt", "dest": "x"}, 403, "outside-root"),
        ({"source": "missing.txt", "dest": "x"}, 404, "not-found"),
    ]
    for body, status, reason in cases:
        code, err = await api("POST", "devices/%s/pull" % did, body)
        assert (code, err.get("reason")) == (status, reason), (body, code, err)
        assert err["message"]
    for raw in (b"not json", b"[1, 2]", b""):
        code, err = await api("POST", "devices/%s/pull" % did, raw_body=raw)
        assert code == 400 and err["reason"] == "bad-request" and err["message"], (raw, err)
    code, err = await api("POST", "devices/nope/pull", {"source": "ok.txt", "dest": "x"})
    assert code == 404 and err["reason"] == "not-found"
    code, err = await api("DELETE", "devices/%s/session" % did)
    code, err = await api("POST", "devices/%s/pull" % did, {"source": "ok.txt", "dest": "x"})
    assert code == 409 and err["reason"] == "not-connected"
    assert not os.path.exists(os.path.join(ws, "x"))
    assert not os.path.exists(str(outside / "x.txt"))
    assert temps(ws) == []


async def test_pull_unauthenticated(jp_serverapp, jp_http_port, api, agent, connected):
    did = await connected()
    write(os.path.join(agent.root, "ok.txt"), b"ok")
    url = "http://127.0.0.1:%d%sjupyter-remote-device/devices/%s/pull" % (
        jp_http_port, jp_serverapp.base_url, did)
    client = tornado.httpclient.AsyncHTTPClient()
    for headers in ({}, {"Authorization": "token not-the-token"}):
        r = await client.fetch(url, method="POST", body=json.dumps({"source": "ok.txt", "dest": "stolen.txt"}),
                               headers=dict(headers, **{"Content-Type": "application/json"}), raise_error=False)
        assert r.code in (401, 403), r.code
    assert not os.path.exists(os.path.join(jp_serverapp.root_dir, "stolen.txt"))


async def test_cancel_pull(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    sparse(os.path.join(agent.root, "huge.bin"), 2048 * MiB)
    code, job = await api("POST", "devices/%s/pull" % did, {"source": "huge.bin", "dest": "huge.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running" and 0 < job["bytes_done"] < job["bytes_total"]
    code, _ = await api("DELETE", "jobs/" + job["id"])
    assert code == 204
    code, job = await api("GET", "jobs/" + job["id"])
    assert job["state"] == "cancelled"
    assert await wait_for(lambda: temps(ws) == []), temps(ws)
    assert not os.path.exists(os.path.join(ws, "huge.bin"))
    # the session is still fine afterwards
    write(os.path.join(agent.root, "small.txt"), b"after cancel")
    job = await pull(api, did, {"source": "small.txt", "dest": ""})
    assert job["state"] == "done" and open(os.path.join(ws, "small.txt"), "rb").read() == b"after cancel"


async def test_cancel_pull_while_board_is_frozen(api, agent, connected, jp_root_dir, jp_serverapp):
    """A board that stops answering (SIGSTOP) cannot keep a cancelled pull's worker waiting."""
    did = await connected()
    ws = str(jp_root_dir)
    sparse(os.path.join(agent.root, "huge.bin"), 2048 * MiB)
    code, job = await api("POST", "devices/%s/pull" % did, {"source": "huge.bin", "dest": "frozen.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running"
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        code, _ = await api("DELETE", "jobs/" + job["id"])
        assert code == 204
        worker = jp_serverapp.web_app.settings["jrd_manager"].transfers._jobs[job["id"]].thread
        assert await wait_for(lambda: not worker.is_alive(), timeout=10)
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    assert temps(ws) == [] and not os.path.exists(os.path.join(ws, "frozen.bin"))
    code, job = await api("GET", "jobs/" + job["id"])
    assert job["state"] == "cancelled"


async def test_agent_killed_mid_pull(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    sparse(os.path.join(agent.root, "huge.bin"), 2048 * MiB)
    write(os.path.join(ws, "dst", "huge.bin"), b"the old copy")
    code, job = await api("POST", "devices/%s/pull" % did, {"source": "huge.bin", "dest": "dst/huge.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running"
    agent.kill()
    job = await wait_job(api, job["id"], timeout=30)
    assert job["state"] == "failed" and "lost" in job["error"], job
    assert job["verified"] is False
    # no partial file: the old copy is untouched and no temp is left
    assert open(os.path.join(ws, "dst", "huge.bin"), "rb").read() == b"the old copy"
    assert temps(ws) == []


async def test_pull_job_events(api, agent, connected, jp_root_dir, jp_ws_fetch):
    did = await connected()
    write(os.path.join(agent.root, "ev.bin"), os.urandom(3 * MiB))
    ws = await jp_ws_fetch("jupyter-remote-device", "events")
    try:
        code, job = await api("POST", "devices/%s/pull" % did, {"source": "ev.bin", "dest": ""})
        assert code == 202
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            if msg.get("type") == "job" and msg["job"]["id"] == job["id"]:
                seen.append(msg["job"])
                if msg["job"]["state"] != "running":
                    break
        assert seen and seen[-1]["state"] == "done" and seen[-1]["kind"] == "pull"
        assert seen[-1]["bytes_done"] == 3 * MiB
    finally:
        ws.close()


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "/etc/passwd", "", "a//b", "a/./b", "a\x00b", 5])
def test_board_names_that_lead_out_are_refused(name):
    """A hostile board's manifest cannot name a file outside the folder being pulled."""
    man = {"exists": True, "type": "directory", "files": {name: {"size": 1, "mtime": 1.0}}, "dirs": []}
    if not isinstance(name, str):
        man["files"] = {"ok": {"size": 1, "mtime": 1.0}}
        man["dirs"] = [name]
    with pytest.raises(ApiError) as e:
        pull_mod._check_manifest(man, "proj")
    assert e.value.reason == "protocol" and e.value.status == 502


@pytest.mark.parametrize("st", [None, "x", {"type": "link"}, {"type": "file", "size": -1},
                                {"type": "file", "size": "12"}, {"type": "file", "size": 1 << 50},
                                {"type": "file", "size": True}, {"type": "file", "size": 1, "mtime": "now"}])
def test_board_stats_that_make_no_sense_are_refused(st):
    with pytest.raises(ApiError) as e:
        pull_mod._check_stat(st, "x")
    assert e.value.reason == "protocol"


def test_workspace_target(tmp_path):
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    os.symlink(str(tmp_path), str(root / "out"))
    assert pull_mod.workspace_target(str(root), "") == (str(root), "")
    assert pull_mod.workspace_target(str(root), "sub/new/x.txt")[1] == "sub/new/x.txt"
    assert pull_mod.workspace_target(str(root), str(root / "sub"))[1] == "sub"
    for bad in ("..", "../ws2", "out/x", "out", str(tmp_path / "elsewhere")):
        with pytest.raises(ApiError) as e:
            pull_mod.workspace_target(str(root), bad)
        assert e.value.reason == "outside-root", bad
