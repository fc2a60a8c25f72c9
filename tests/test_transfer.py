"""Push / sync jobs and streamed file content through the REST API: a real
jupyter_server (pytest-jupyter) talking to real agent subprocesses on 127.0.0.1."""
import asyncio
import hashlib
import json
import os
import time

# no pytest.mark.asyncio: pytest-jupyter runs these coroutines on the server's own loop

MiB = 1 << 20


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


def temps(top):
    found = []
    for dirpath, _, files in os.walk(top):
        found += [os.path.join(dirpath, f) for f in files if ".jrd-tmp-" in f]
    return found


def board_files(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if ".jrd-tmp-" in f or f == ".jrd-temps":
                continue
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = p
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def sparse(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


async def wait_job(api, job_id, timeout=60.0, until=None):
    deadline = time.monotonic() + timeout
    while True:
        code, job = await api("GET", "jobs/" + job_id)
        assert code == 200, job
        if (until(job) if until else job["state"] != "running"):
            return job
        assert time.monotonic() < deadline, "job still running: %r" % job
        await asyncio.sleep(0.01)


async def push(api, did, body, timeout=60.0):
    code, job = await api("POST", "devices/%s/push" % did, body)
    assert code == 202, job
    assert job["state"] == "running" and job["id"]
    return await wait_job(api, job["id"], timeout)


async def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_push_file(api, agent, connected, jp_root_dir):
    did = await connected()
    data = os.urandom(5 * MiB + 123)
    write(os.path.join(str(jp_root_dir), "data", "blob.bin"), data)
    job = await push(api, did, {"source": "data/blob.bin", "dest": "incoming/"})
    assert job["state"] == "done", job
    assert job["verified"] is True and job["error"] is None
    assert job["bytes_done"] == job["bytes_total"] == len(data)
    assert job["files_done"] == job["files_total"] == 1
    assert job["kind"] == "push" and job["dest"] == "incoming/blob.bin" and job["device_id"] == did
    for key in ("id", "kind", "state", "bytes_done", "bytes_total", "files_done", "files_total", "rate",
                "eta", "error", "verified"):
        assert key in job
    on_board = os.path.join(agent.root, "incoming", "blob.bin")
    assert sha_file(on_board) == hashlib.sha256(data).hexdigest()
    # the mtime travels with the file
    assert abs(os.stat(on_board).st_mtime - os.stat(os.path.join(str(jp_root_dir), "data", "blob.bin")).st_mtime) < 1e-3
    # dest without a trailing slash names the file; an existing folder means "into"
    job = await push(api, did, {"source": "data/blob.bin", "dest": "renamed.bin"})
    assert job["state"] == "done" and os.path.isfile(os.path.join(agent.root, "renamed.bin"))
    job = await push(api, did, {"source": "data/blob.bin", "dest": "incoming"})
    assert job["state"] == "done" and job["dest"] == "incoming/blob.bin"
    assert temps(agent.root) == []
    code, listing = await api("GET", "jobs")
    assert code == 200 and len(listing["jobs"]) >= 3


async def test_push_folder(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    files = {
        "proj/main.py": b"print('hi')\n",
        "proj/lib/util.py": os.urandom(3 * MiB + 1),
        "proj/lib/deeper/ünïcode name.txt": "ü".encode(),
        "proj/empty.txt": b"",
        "proj/__pycache__/main.cpython-311.pyc": b"junk",
        "proj/.git/HEAD": b"ref: refs/heads/main\n",
        "proj/.ipynb_checkpoints/x-checkpoint.ipynb": b"{}",
    }
    for rel, data in files.items():
        write(os.path.join(ws, rel), data)
    os.makedirs(os.path.join(ws, "proj", "empty_dir"))
    text = ("import os\nprint(os.getcwd())\n" * 3000).encode()
    files["proj/lib/big_text.py"] = text
    write(os.path.join(ws, "proj", "lib", "big_text.py"), text)
    job = await push(api, did, {"source": "proj", "dest": "app"})
    assert job["state"] == "done", job
    assert job["verified"] is True and job["files_done"] == job["files_total"] == 5
    # the text file travelled compressed, the random one as is
    assert job["wire_bytes"] < job["bytes_done"] - len(text) // 2
    assert job["dest"] == "app"
    got = board_files(agent.root)
    assert sorted(got) == ["app/empty.txt", "app/lib/big_text.py", "app/lib/deeper/ünïcode name.txt",
                           "app/lib/util.py", "app/main.py"]
    for rel in ("main.py", "lib/util.py", "lib/deeper/ünïcode name.txt", "empty.txt", "lib/big_text.py"):
        assert open(got["app/" + rel], "rb").read() == files["proj/" + rel]
    assert os.path.isdir(os.path.join(agent.root, "app", "empty_dir"))
    # pushing again updates the same folder (no app/proj nesting)
    job = await push(api, did, {"source": "proj", "dest": "app"})
    assert job["state"] == "done" and not os.path.exists(os.path.join(agent.root, "app", "proj"))
    # a trailing slash means "into"
    job = await push(api, did, {"source": "proj", "dest": "into/"})
    assert job["state"] == "done" and job["dest"] == "into/proj"
    assert os.path.isfile(os.path.join(agent.root, "into", "proj", "main.py"))


async def test_sync_sends_only_changes_and_deletes_only_when_asked(api, agent, connected, jp_root_dir):
    did = await connected()
    ws = str(jp_root_dir)
    for i in range(12):
        write(os.path.join(ws, "site", "d%d" % (i % 3), "f%02d.txt" % i), os.urandom(1000 + i))
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["state"] == "done" and job["kind"] == "sync" and job["files_done"] == 12

    # unchanged: nothing is sent
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["state"] == "done", job
    assert job["files_done"] == 0 and job["bytes_done"] == 0 and job["files_total"] == 0
    assert job["files_skipped"] == 12 and job["verified"] is True

    # one file changed: exactly that one is sent
    changed = os.path.join(ws, "site", "d1", "f04.txt")
    write(changed, b"new content!")
    # same size and content, only the mtime differs: compared by sha256, not sent
    touched = os.path.join(ws, "site", "d2", "f05.txt")
    os.utime(touched, (time.time(), time.time() + 50))
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["files_done"] == 1 and job["bytes_done"] == len(b"new content!")
    assert open(os.path.join(agent.root, "site", "d1", "f04.txt"), "rb").read() == b"new content!"
    # same size, different content, different mtime: sent (the hash tells them apart)
    same_size = os.path.join(ws, "site", "d0", "f00.txt")
    write(same_size, os.urandom(1000))
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["files_done"] == 1
    assert sha_file(os.path.join(agent.root, "site", "d0", "f00.txt")) == sha_file(same_size)
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["files_done"] == 0 and job["bytes_done"] == 0

    # extra files on the board stay without delete ...
    write(os.path.join(agent.root, "site", "extra.txt"), b"board only")
    write(os.path.join(agent.root, "site", "old_dir", "x.txt"), b"board only")
    write(os.path.join(agent.root, "site", "__pycache__", "cache.pyc"), b"ignored")
    os.remove(os.path.join(ws, "site", "d0", "f03.txt"))
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True})
    assert job["state"] == "done" and job["files_deleted"] == 0
    assert os.path.exists(os.path.join(agent.root, "site", "extra.txt"))
    assert os.path.exists(os.path.join(agent.root, "site", "d0", "f03.txt"))
    # ... and go with delete: true (ignored names are left alone)
    job = await push(api, did, {"source": "site", "dest": "site", "sync": True, "delete": True})
    assert job["state"] == "done", job
    assert job["files_deleted"] == 3 and job["files_done"] == 0
    assert not os.path.exists(os.path.join(agent.root, "site", "extra.txt"))
    assert not os.path.exists(os.path.join(agent.root, "site", "old_dir"))
    assert not os.path.exists(os.path.join(agent.root, "site", "d0", "f03.txt"))
    assert os.path.exists(os.path.join(agent.root, "site", "__pycache__", "cache.pyc"))
    local = sorted(os.path.relpath(os.path.join(d, f), os.path.join(ws, "site")) for d, _, fs in
                   os.walk(os.path.join(ws, "site")) for f in fs)
    board = sorted(os.path.relpath(os.path.join(d, f), os.path.join(agent.root, "site")) for d, _, fs in
                   os.walk(os.path.join(agent.root, "site")) for f in fs if "__pycache__" not in d)
    assert local == board

    # delete needs sync
    code, err = await api("POST", "devices/%s/push" % did, {"source": "site", "dest": "site", "delete": True})
    assert code == 400 and err["reason"] == "bad-request"


async def test_push_validation(api, agent, connected, jp_root_dir, tmp_path):
    did = await connected()
    ws = str(jp_root_dir)
    write(os.path.join(ws, "ok.txt"), b"ok")
    outside = tmp_path / "outside_secret.txt"
    outside.write_text("secret")
    os.symlink(str(outside), os.path.join(ws, "link_out.txt"))
    os.symlink(str(tmp_path), os.path.join(ws, "dir_out"))
    cases = [
        ({"source": "../outside_secret.txt", "dest": "x"}, 403, "outside-root"),
        ({"source": "a/../../outside_secret.txt", "dest": "x"}, 403, "outside-root"),
        ({"source": str(outside), "dest": "x"}, 403, "outside-root"),
        ({"source": "/etc/passwd", "dest": "x"}, 403, "outside-root"),
        ({"source": "link_out.txt", "dest": "x"}, 403, "outside-root"),
        ({"source": "dir_out", "dest": "x"}, 403, "outside-root"),
        ({"source": "missing.txt", "dest": "x"}, 404, "not-found"),
        ({"source": 12, "dest": "x"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": 5}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": "x", "sync": "yes"}, 400, "bad-request"),
        ({"source": "", "dest": "x"}, 400, "bad-request"),
        ({"source": "ok.txt", "dest": "../up.txt"}, 403, "outside-root"),
        ({"source": "ok.txt", "dest": "a\x00b"}, 400, "bad-request"),
    ]
    for body, status, reason in cases:
        code, err = await api("POST", "devices/%s/push" % did, body)
        assert (code, err.get("reason")) == (status, reason), (body, code, err)
        assert err["message"]
    assert not os.path.exists(os.path.join(agent.root, "x"))
    code, err = await api("GET", "jobs/nope")
    assert code == 404 and err["reason"] == "not-found"
    code, err = await api("DELETE", "jobs/nope")
    assert code == 404 and err["reason"] == "not-found"
    # a board-side refusal fails the job with a message (a file where a folder is needed)
    write(os.path.join(agent.root, "afile"), b"x")
    job = await push(api, did, {"source": "ok.txt", "dest": "afile/ok.txt"})
    assert job["state"] == "failed" and job["error"] and job["verified"] is False


async def test_cancel_mid_file(api, agent, connected, jp_root_dir):
    did = await connected()
    sparse(os.path.join(str(jp_root_dir), "huge.bin"), 2048 * MiB)
    code, job = await api("POST", "devices/%s/push" % did, {"source": "huge.bin", "dest": "huge.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running" and 0 < job["bytes_done"] < job["bytes_total"]
    code, _ = await api("DELETE", "jobs/" + job["id"])
    assert code == 204
    code, job = await api("GET", "jobs/" + job["id"])
    assert job["state"] == "cancelled"
    assert await wait_for(lambda: temps(agent.root) == []), temps(agent.root)
    assert not os.path.exists(os.path.join(agent.root, "huge.bin"))
    code, job2 = await api("GET", "jobs/" + job["id"])
    assert job2["state"] == "cancelled" and job2["bytes_done"] < job2["bytes_total"]
    # the session is still fine afterwards
    write(os.path.join(str(jp_root_dir), "small.txt"), b"after cancel")
    job = await push(api, did, {"source": "small.txt", "dest": "small.txt"})
    assert job["state"] == "done"


async def test_agent_killed_mid_push(api, agent, connected, jp_root_dir):
    did = await connected()
    sparse(os.path.join(str(jp_root_dir), "huge.bin"), 2048 * MiB)
    code, job = await api("POST", "devices/%s/push" % did, {"source": "huge.bin", "dest": "dst/huge.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running"
    agent.kill()
    job = await wait_job(api, job["id"], timeout=30)
    assert job["state"] == "failed", job
    assert "connection" in job["error"] and "lost" in job["error"], job["error"]
    assert job["verified"] is False
    dest = os.path.join(agent.root, "dst", "huge.bin")
    assert not os.path.exists(dest)
    assert len(temps(agent.root)) == 1  # SIGKILL: the partial temp is still there ...
    agent.restart()
    assert temps(agent.root) == []      # ... until the agent starts again
    assert not os.path.exists(dest)


async def test_concurrent_pushes_to_one_board(api, agent, connected, jp_root_dir):
    did = await connected()
    blobs = {}
    for i in range(4):
        blobs[i] = os.urandom(6 * MiB + i)
        write(os.path.join(str(jp_root_dir), "c", "f%d.bin" % i), blobs[i])
    ids = []
    for i in range(4):
        code, job = await api("POST", "devices/%s/push" % did, {"source": "c/f%d.bin" % i, "dest": "c/"})
        assert code == 202
        ids.append(job["id"])
    # exec on the session keeps working while the pushes run
    code, res = await api("POST", "devices/%s/exec" % did, {"code": "print(6 * 7)"})
    assert code == 200 and res["stdout"].strip() == "42"
    for jid in ids:
        job = await wait_job(api, jid)
        assert job["state"] == "done" and job["verified"] is True
    for i, data in blobs.items():
        assert open(os.path.join(agent.root, "c", "f%d.bin" % i), "rb").read() == data
    assert temps(agent.root) == []


async def test_job_events(api, agent, connected, jp_root_dir, jp_ws_fetch):
    did = await connected()
    write(os.path.join(str(jp_root_dir), "ev.bin"), os.urandom(3 * MiB))
    ws = await jp_ws_fetch("jupyter-remote-device", "events")
    try:
        code, job = await api("POST", "devices/%s/push" % did, {"source": "ev.bin", "dest": "ev.bin"})
        assert code == 202
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            if msg.get("type") == "job" and msg["job"]["id"] == job["id"]:
                seen.append(msg["job"])
                if msg["job"]["state"] != "running":
                    break
        assert seen and seen[-1]["state"] == "done" and seen[-1]["bytes_done"] == 3 * MiB
    finally:
        ws.close()


async def test_file_content_put_get_round_trip(api, agent, connected, jp_fetch):
    did = await connected()
    data = os.urandom(7 * MiB + 999)
    code, res = await api("PUT", "devices/%s/files/content" % did, raw_body=data, path="up/ünï code.bin")
    assert code == 201, res
    assert res == {"path": "up/ünï code.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert open(os.path.join(agent.root, "up", "ünï code.bin"), "rb").read() == data
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content",
                       params={"path": "up/ünï code.bin"})
    assert r.code == 200 and r.body == data
    # empty file
    code, res = await api("PUT", "devices/%s/files/content" % did, raw_body=b"", path="empty.bin")
    assert code == 201 and res["size"] == 0
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content", params={"path": "empty.bin"})
    assert r.code == 200 and r.body == b""
    # errors: missing, a folder, outside the root
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content",
                       params={"path": "nope.bin"}, raise_error=False)
    assert r.code == 404 and json.loads(r.body)["reason"] == "not-found"
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content",
                       params={"path": "up"}, raise_error=False)
    assert r.code == 400
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", "content",
                       params={"path": "../etc/passwd"}, raise_error=False)
    assert r.code == 403 and json.loads(r.body)["reason"] == "outside-root"
    code, err = await api("PUT", "devices/%s/files/content" % did, raw_body=b"x", path="../evil.txt")
    assert code == 403 and err["reason"] == "outside-root"
    assert temps(agent.root) == []


async def test_transfer_manager_direct(agent, jp_root_dir):
    """TransferManager / Upload / download with a minimal session (real connections)."""
    from jupyter_remote_device import link
    from jupyter_remote_device.server.transfer import TransferManager, Upload, download

    class Session:
        device_id = "direct"
        name = "direct"

        def connect_new(self):
            return link.connect("127.0.0.1", agent.port, agent.token)

    events = []
    tm = TransferManager(str(jp_root_dir), events.append)
    data = os.urandom(2 * MiB + 3)
    write(os.path.join(str(jp_root_dir), "d.bin"), data)
    job = tm.start_push(Session(), "d.bin", "direct/")
    while tm.get(job["id"])["state"] == "running":
        await asyncio.sleep(0.01)
    assert tm.get(job["id"])["state"] == "done"
    await asyncio.sleep(0.05)
    assert events and events[-1]["type"] == "job" and events[-1]["job"]["state"] == "done"

    up = Upload(Session(), "direct/up.bin")
    await up.start()
    for off in range(0, len(data), 65536):
        await up.feed(data[off:off + 65536])
    res = await up.finish()
    assert res["sha256"] == hashlib.sha256(data).hexdigest()

    # an aborted upload leaves nothing
    up = Upload(Session(), "direct/aborted.bin")
    await up.start()
    await up.feed(os.urandom(3 * MiB))
    await up.abort()
    assert not os.path.exists(os.path.join(agent.root, "direct", "aborted.bin"))
    assert await wait_for(lambda: temps(agent.root) == [])

    chunks = []

    async def flush():
        pass

    out = await download(Session(), "direct/d.bin", chunks.append, flush)
    assert out["size"] == len(data) and b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= MiB


async def test_cancel_while_board_is_frozen(api, agent, connected, jp_root_dir, jp_serverapp):
    """A board that stops answering (SIGSTOP) cannot keep a cancelled job's worker waiting."""
    import signal
    did = await connected()
    sparse(os.path.join(str(jp_root_dir), "huge.bin"), 2048 * MiB)
    code, job = await api("POST", "devices/%s/push" % did, {"source": "huge.bin", "dest": "frozen.bin"})
    assert code == 202
    job = await wait_job(api, job["id"], until=lambda j: j["bytes_done"] > 0 or j["state"] != "running")
    assert job["state"] == "running"
    agent.proc.send_signal(signal.SIGSTOP)
    try:
        code, _ = await api("DELETE", "jobs/" + job["id"])
        assert code == 204
        tm = jp_serverapp.web_app.settings["jrd_manager"].transfers
        worker = tm._jobs[job["id"]].thread
        assert await wait_for(lambda: not worker.is_alive(), timeout=10)
    finally:
        agent.proc.send_signal(signal.SIGCONT)
    assert await wait_for(lambda: temps(agent.root) == [], timeout=10), temps(agent.root)
    assert not os.path.exists(os.path.join(agent.root, "frozen.bin"))
    code, job = await api("GET", "jobs/" + job["id"])
    assert job["state"] == "cancelled"


async def test_interrupted_put_leaves_nothing(api, agent, connected, jp_serverapp, jp_auth_header, jp_base_url):
    """A client that drops a PUT half way leaves neither the file nor a temp on the board."""
    from urllib.parse import quote
    did = await connected()
    url = "%sjupyter-remote-device/devices/%s/files/content?path=%s" % (jp_base_url, did, quote("half.bin"))
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_serverapp.port)
    head = "PUT %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n" % (url, 10 * MiB)
    head += "".join("%s: %s\r\n" % kv for kv in jp_auth_header.items()) + "\r\n"
    writer.write(head.encode())
    writer.write(os.urandom(3 * MiB))
    await writer.drain()
    assert await wait_for(lambda: len(temps(agent.root)) == 1, timeout=10)  # the write is open on the board
    writer.close()
    assert await wait_for(lambda: temps(agent.root) == [], timeout=10), temps(agent.root)
    assert not os.path.exists(os.path.join(agent.root, "half.bin"))
    # and the next upload works
    code, res = await api("PUT", "devices/%s/files/content" % did, raw_body=b"whole", path="half.bin")
    assert code == 201 and res["size"] == 5


async def test_push_and_sync_to_a_classic_board(api, jp_root_dir):
    """A stock rpyc classic server (MaixPy3 boards) takes pushes too: the session sends the
    agent's files.py there, and the same pipelined transfer runs over the classic link."""
    from jrd_helpers import ClassicServer
    classic = ClassicServer()
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": classic.port, "name": "maix"})
        assert code in (200, 201), dev
        did = dev["id"]
        deadline = time.monotonic() + 20
        while dev["kind"] != "classic" and time.monotonic() < deadline:  # the status probe tells
            await asyncio.sleep(0.1)
            code, dev = await api("GET", "devices/" + did)
        code, d = await api("POST", "devices/%s/session" % did)
        assert code == 200 and d["kind"] == "classic", d
        ws = str(jp_root_dir)
        big = os.urandom(3 * MiB + 7)
        write(os.path.join(ws, "maixapp", "main.py"), b"print('hello from the board')\n")
        write(os.path.join(ws, "maixapp", "model.bin"), big)
        job = await push(api, did, {"source": "maixapp", "dest": "app", "sync": True})
        assert job["state"] == "done" and job["verified"] is True and job["files_done"] == 2, job
        board_root = os.path.join(classic.home, "jrd-root")
        assert open(os.path.join(board_root, "app", "model.bin"), "rb").read() == big
        job = await push(api, did, {"source": "maixapp", "dest": "app", "sync": True})
        assert job["state"] == "done" and job["files_done"] == 0 and job["bytes_done"] == 0
        code, r = await api("POST", "devices/%s/exec" % did, {"code": "exec(open('%s').read())"
                                                                 % os.path.join(board_root, "app", "main.py")})
        assert code == 200 and r["stdout"] == "hello from the board\n", r
        assert temps(board_root) == []
    finally:
        classic.close()


async def test_an_agent_without_fs_put_gets_small_files_in_chunks(api, make_agent, connected, jp_root_dir, tmp_path):
    """An agent older than ``fs_put`` (its method taken out at start, in a real agent process): a
    folder push still delivers every file, verified, through the chunked path."""
    from jrd_helpers import patched_agent_env
    old = make_agent(camera="none", env=patched_agent_env(tmp_path / "boot", "from jupyter_remote_device.agent "
                                                         "import service\ndel service.AgentService.exposed_fs_put\n"))
    did = await connected(old)
    ws = str(jp_root_dir)
    files = {"old/a.py": b"print('a')\n", "old/b.txt": ("b" * 5000).encode(), "old/sub/c.bin": os.urandom(2000),
             "old/big.bin": os.urandom(2 * MiB + 5)}
    for rel, data in files.items():
        write(os.path.join(ws, rel), data)
    job = await push(api, did, {"source": "old", "dest": "old"})
    assert job["state"] == "done" and job["verified"] is True, job
    assert job["files_done"] == job["files_total"] == 4 and job["bytes_done"] == job["bytes_total"]
    got = board_files(old.root)
    assert sorted(got) == ["old/a.py", "old/b.txt", "old/big.bin", "old/sub/c.bin"]
    for rel, data in files.items():
        assert open(got[rel], "rb").read() == data
    assert job["wire_bytes"] == sum(len(d) for d in files.values())  # nothing counted twice
