"""The agent's file service over the wire: a real agent subprocess, a real client connection."""
import errno
import hashlib
import os
import time

import pytest
import rpyc

from jupyter_remote_device import link

MiB = 1 << 20


@pytest.fixture
def conn(agent):
    c = link.connect("127.0.0.1", agent.port, agent.token)
    yield c
    c.close()


def put(root, path, data, chunk=MiB, mtime=None, sha=True):
    h = root.fs_write_open(path, len(data), mtime)
    view = memoryview(data)
    for off in range(0, len(data), chunk):
        root.fs_write_chunk(h, bytes(view[off:off + chunk]), off)
    return __import__("json").loads(root.fs_write_close(h, hashlib.sha256(data).hexdigest() if sha else None))


def get(root, path, chunk=MiB):
    out = bytearray()
    while True:
        b = root.fs_read(path, len(out), chunk)
        if not b:
            return bytes(out)
        out += b


def raises(exc, match=None):
    """pytest.raises for errors rebuilt by rpyc: their text is in args (str() is mangled for OSErrors)."""
    import contextlib
    import re

    @contextlib.contextmanager
    def cm():
        with pytest.raises(exc) as ei:
            yield ei
        if match is not None:
            text = str(ei.value.args[-1] if ei.value.args else "")
            assert re.search(match, text), "%r does not match %r" % (text, match)
    return cm()


def temps(top):
    found = []
    for dirpath, _, files in os.walk(top):
        found += [os.path.join(dirpath, f) for f in files if ".jrd-tmp-" in f]
    return found


def wait_for(pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.mark.parametrize("size", [0, 1, 4095, MiB, 3 * MiB + 17])
def test_round_trip_sha256(agent, conn, size):
    data = os.urandom(size)
    res = put(conn.root, "rt/file_%d.bin" % size, data)
    assert res["size"] == size
    assert res["sha256"] == hashlib.sha256(data).hexdigest()
    assert res["path"] == "rt/file_%d.bin" % size
    back = get(conn.root, "rt/file_%d.bin" % size)
    assert hashlib.sha256(back).hexdigest() == res["sha256"]
    with open(os.path.join(agent.root, "rt", "file_%d.bin" % size), "rb") as f:
        assert f.read() == data
    h = __import__("json").loads(conn.root.fs_hash("rt/file_%d.bin" % size))
    assert h["sha256"] == res["sha256"] and h["size"] == size
    assert temps(agent.root) == []


def test_odd_chunks_and_out_of_order_writes(agent, conn):
    import json
    data = os.urandom(2 * MiB + 333)
    # odd-sized sequential chunks, no offsets
    h = conn.root.fs_write_open("odd.bin", None, None)
    pos = 0
    for n in (1, 7, 65537, 1000003):
        conn.root.fs_write_chunk(h, data[pos:pos + n], None)
        pos += n
    conn.root.fs_write_chunk(h, data[pos:], None)
    assert json.loads(conn.root.fs_write_close(h, hashlib.sha256(data).hexdigest()))["size"] == len(data)
    # positioned writes, last chunk first: the board hashes the file at close
    h = conn.root.fs_write_open("ooo.bin", len(data), None)
    conn.root.fs_write_chunk(h, data[MiB:], MiB)
    conn.root.fs_write_chunk(h, data[:MiB], 0)
    res = json.loads(conn.root.fs_write_close(h, hashlib.sha256(data).hexdigest()))
    assert res["sha256"] == hashlib.sha256(data).hexdigest()
    assert get(conn.root, "ooo.bin") == data


def test_pipelined_chunks(agent, conn):
    data = os.urandom(5 * MiB + 5)
    w = rpyc.async_(conn.root.fs_write_chunk)
    h = conn.root.fs_write_open("pipe.bin", len(data), 1234567890.5)
    results = [w(h, data[off:off + MiB], off) for off in range(0, len(data), MiB)]
    assert sum(r.value for r in results) == len(data)
    conn.root.fs_write_close(h, hashlib.sha256(data).hexdigest())
    st = os.stat(os.path.join(agent.root, "pipe.bin"))
    assert st.st_size == len(data) and abs(st.st_mtime - 1234567890.5) < 1e-3


def test_hash_mismatch_leaves_nothing(agent, conn):
    h = conn.root.fs_write_open("bad.bin", 3, None)
    conn.root.fs_write_chunk(h, b"abc", 0)
    with raises(ValueError, match="sha256 mismatch"):
        conn.root.fs_write_close(h, "0" * 64)
    assert not os.path.exists(os.path.join(agent.root, "bad.bin"))
    assert temps(agent.root) == []
    # an existing file is untouched by a failed overwrite
    put(conn.root, "keep.txt", b"original")
    h = conn.root.fs_write_open("keep.txt", None, None)
    conn.root.fs_write_chunk(h, b"new content", 0)
    with pytest.raises(ValueError):
        conn.root.fs_write_close(h, "f" * 64)
    assert get(conn.root, "keep.txt") == b"original"


def test_size_mismatch_refused(agent, conn):
    h = conn.root.fs_write_open("short.bin", 10, None)
    conn.root.fs_write_chunk(h, b"12345", 0)
    with raises(ValueError, match="expected 10"):
        conn.root.fs_write_close(h, None)
    h = conn.root.fs_write_open("long.bin", 4, None)
    with raises(ValueError, match="past the announced size"):
        conn.root.fs_write_chunk(h, b"12345", 0)
    conn.root.fs_write_abort(h)
    assert not os.path.exists(os.path.join(agent.root, "short.bin"))
    assert temps(agent.root) == []


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/../etc/passwd", "./../../", "a/b/../../../c"])
def test_traversal_refused(agent, conn, path):
    for call in (lambda: conn.root.fs_read(path, 0, 10),
                 lambda: conn.root.fs_list(path),
                 lambda: conn.root.fs_stat(path),
                 lambda: conn.root.fs_write_open(path, None, None),
                 lambda: conn.root.fs_mkdir(path, True),
                 lambda: conn.root.fs_delete(path, True),
                 lambda: conn.root.fs_rename("x", path),
                 lambda: conn.root.fs_manifest(path, False)):
        with raises(PermissionError, match="outside the device root"):
            call()


def test_absolute_paths_are_root_relative(agent, conn):
    # "/etc/passwd" is <root>/etc/passwd: it never reaches the real one
    with pytest.raises(FileNotFoundError):
        conn.root.fs_read("/etc/passwd", 0, 100)
    put(conn.root, "/abs/x.txt", b"inside")
    assert open(os.path.join(agent.root, "abs", "x.txt"), "rb").read() == b"inside"
    assert get(conn.root, "abs/x.txt") == b"inside"
    import json
    assert json.loads(conn.root.fs_list("/"))["path"] == ""


def test_symlink_escape_refused(agent, conn, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(str(outside), os.path.join(agent.root, "esc"))
    os.symlink(str(outside / "secret.txt"), os.path.join(agent.root, "esc_file"))
    for call in (lambda: conn.root.fs_read("esc/secret.txt", 0, 100),
                 lambda: conn.root.fs_read("esc_file", 0, 100),
                 lambda: conn.root.fs_list("esc"),
                 lambda: conn.root.fs_write_open("esc/new.txt", None, None),
                 lambda: conn.root.fs_write_open("esc_file", None, None),
                 lambda: conn.root.fs_mkdir("esc/sub", True),
                 lambda: conn.root.fs_hash("esc_file"),
                 lambda: conn.root.fs_delete("esc/secret.txt", False),
                 lambda: conn.root.fs_rename("esc/secret.txt", "stolen.txt")):
        with raises(PermissionError, match="outside the device root"):
            call()
    assert sorted(os.listdir(str(outside))) == ["secret.txt"]
    # a symlink that stays inside the root is fine
    put(conn.root, "real/inside.txt", b"ok")
    os.symlink(os.path.join(agent.root, "real"), os.path.join(agent.root, "alias"))
    assert get(conn.root, "alias/inside.txt") == b"ok"


def test_bad_syntax_is_value_error(conn):
    with pytest.raises(ValueError):
        conn.root.fs_stat("a\x00b")
    with pytest.raises(ValueError):
        conn.root.fs_stat("x" * 5000)
    with pytest.raises(ValueError):
        conn.root.fs_stat(12)
    with raises(ValueError, match="unknown or finished write handle"):
        conn.root.fs_write_chunk("nope", b"x", 0)


def test_spaces_and_non_ascii_names(agent, conn):
    import json
    name = "dir with space/ünïcødé 文件 (1).txt"
    data = "héllo wörld ✓".encode("utf-8")
    res = put(conn.root, name, data)
    assert res["path"] == name
    assert os.path.isfile(os.path.join(agent.root, "dir with space", "ünïcødé 文件 (1).txt"))
    listing = json.loads(conn.root.fs_list("dir with space"))
    assert [e["name"] for e in listing["entries"]] == ["ünïcødé 文件 (1).txt"]
    assert listing["entries"][0]["size"] == len(data) and listing["entries"][0]["type"] == "file"
    assert get(conn.root, name) == data
    renamed = json.loads(conn.root.fs_rename(name, "dir with space/ëxtra ✓.txt"))
    assert renamed["name"] == "ëxtra ✓.txt"
    conn.root.fs_delete("dir with space/ëxtra ✓.txt", False)
    assert json.loads(conn.root.fs_list("dir with space"))["entries"] == []


def test_list_sorted_dirs_first_and_hides_temps(agent, conn):
    import json
    put(conn.root, "l/b.txt", b"b")
    put(conn.root, "l/A.txt", b"a")
    conn.root.fs_mkdir("l/zdir", True)
    conn.root.fs_mkdir("l/adir", True)
    h = conn.root.fs_write_open("l/pending.txt", None, None)
    conn.root.fs_write_chunk(h, b"half", 0)
    entries = json.loads(conn.root.fs_list("l"))["entries"]
    assert [(e["name"], e["type"]) for e in entries] == [
        ("adir", "directory"), ("zdir", "directory"), ("A.txt", "file"), ("b.txt", "file")]
    assert all(set(e) >= {"name", "type", "size", "mtime"} for e in entries)
    man = json.loads(conn.root.fs_manifest("l", False))
    assert sorted(man["files"]) == ["A.txt", "b.txt"] and sorted(man["dirs"]) == ["adir", "zdir"]
    conn.root.fs_write_abort(h)
    assert temps(agent.root) == []


def test_errors_are_builtin_types(agent, conn):
    put(conn.root, "f.txt", b"x")
    with pytest.raises(FileNotFoundError):
        conn.root.fs_read("missing.txt", 0, 10)
    with pytest.raises(FileNotFoundError):
        conn.root.fs_list("missing")
    with pytest.raises(NotADirectoryError):
        conn.root.fs_list("f.txt")
    with pytest.raises(IsADirectoryError):
        conn.root.fs_read("", 0, 10)
    with pytest.raises(NotADirectoryError):
        conn.root.fs_write_open("f.txt/inner.txt", None, None)
    with pytest.raises(FileExistsError):
        conn.root.fs_mkdir("f.txt", True)
    conn.root.fs_mkdir("d", True)
    with pytest.raises(FileExistsError):
        conn.root.fs_rename("f.txt", "d")
    with pytest.raises(IsADirectoryError):
        conn.root.fs_write_open("d", None, None)


def test_delete_non_empty_needs_recursive(agent, conn):
    put(conn.root, "tree/a/b/c.txt", b"c")
    put(conn.root, "tree/top.txt", b"t")
    with pytest.raises(OSError) as ei:
        conn.root.fs_delete("tree", False)
    assert ei.value.errno == errno.ENOTEMPTY
    assert "recursive" in ei.value.args[-1]
    assert os.path.isfile(os.path.join(agent.root, "tree", "a", "b", "c.txt"))
    conn.root.fs_delete("tree", True)
    assert not os.path.exists(os.path.join(agent.root, "tree"))
    conn.root.fs_mkdir("empty", True)
    conn.root.fs_delete("empty", False)
    assert not os.path.exists(os.path.join(agent.root, "empty"))
    with pytest.raises(PermissionError):
        conn.root.fs_delete("", True)


def test_recursive_delete_does_not_follow_symlinks(agent, conn, tmp_path):
    outside = tmp_path / "keep"
    outside.mkdir()
    (outside / "precious.txt").write_text("x")
    put(conn.root, "t/file.txt", b"1")
    os.symlink(str(outside), os.path.join(agent.root, "t", "link"))
    conn.root.fs_delete("t", True)
    assert not os.path.exists(os.path.join(agent.root, "t"))
    assert (outside / "precious.txt").read_text() == "x"


def test_abort_on_disconnect_leaves_no_temp(agent):
    c = link.connect("127.0.0.1", agent.port, agent.token)
    h = c.root.fs_write_open("gone/file.bin", 3 * MiB, None)
    c.root.fs_write_chunk(h, os.urandom(MiB), 0)
    assert len(temps(agent.root)) == 1
    c.close()
    assert wait_for(lambda: temps(agent.root) == [])
    assert not os.path.exists(os.path.join(agent.root, "gone", "file.bin"))


def test_stale_temps_removed_at_start(agent):
    c = link.connect("127.0.0.1", agent.port, agent.token)
    h = c.root.fs_write_open("deep/er/big.bin", None, None)
    c.root.fs_write_chunk(h, os.urandom(MiB), 0)
    # a temp from some older run that the journal does not know about
    stray = os.path.join(agent.root, "deep", ".old.txt.jrd-tmp-0123456789abcdef")
    with open(stray, "wb") as f:
        f.write(b"partial")
    assert len(temps(agent.root)) == 2
    agent.kill()  # SIGKILL: no chance to clean up
    c.close()
    assert len(temps(agent.root)) == 2
    agent.restart()
    assert temps(agent.root) == []
    assert not os.path.exists(os.path.join(agent.root, "deep", "er", "big.bin"))
    c = link.connect("127.0.0.1", agent.port, agent.token)
    try:
        assert put(c.root, "deep/er/big.bin", b"now whole")["size"] == 9
    finally:
        c.close()


def test_concurrent_writers(agent):
    import threading
    errors = []
    blobs = {}

    def worker(i):
        try:
            c = link.connect("127.0.0.1", agent.port, agent.token)
            try:
                data = os.urandom(2 * MiB + i)
                blobs[i] = data
                put(c.root, "conc/%d.bin" % i, data, chunk=256 * 1024)
            finally:
                c.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errors == []
    for i, data in blobs.items():
        with open(os.path.join(agent.root, "conc", "%d.bin" % i), "rb") as f:
            assert f.read() == data


def test_mkdir_rename_touch_manifest(agent, conn):
    import json
    st = json.loads(conn.root.fs_mkdir("m/n/o", True))
    assert st["type"] == "directory" and st["path"] == "m/n/o"
    with pytest.raises(FileNotFoundError):
        conn.root.fs_mkdir("p/q", False)
    put(conn.root, "m/n/o/f.txt", b"12345", mtime=1000.0)
    moved = json.loads(conn.root.fs_rename("m/n", "m2"))
    assert moved["type"] == "directory"
    assert os.path.isfile(os.path.join(agent.root, "m2", "o", "f.txt"))
    man = json.loads(conn.root.fs_manifest("m2", True))
    assert man["exists"] and man["type"] == "directory"
    f = man["files"]["o/f.txt"]
    assert f["size"] == 5 and f["mtime"] == 1000.0 and f["sha256"] == hashlib.sha256(b"12345").hexdigest()
    assert man["dirs"] == ["o"]
    assert json.loads(conn.root.fs_manifest("nothing/here", False))["exists"] is False
    with raises(ValueError, match="into itself"):
        conn.root.fs_rename("m2", "m2/o/inner")


def test_put_whole_small_file(agent, conn):
    import json
    data = os.urandom(70000)
    res = json.loads(conn.root.fs_put("small/p.bin", data, 1500.0, hashlib.sha256(data).hexdigest()))
    assert res["size"] == len(data) and res["sha256"] == hashlib.sha256(data).hexdigest()
    assert os.stat(os.path.join(agent.root, "small", "p.bin")).st_mtime == 1500.0
    with raises(ValueError, match="sha256 mismatch"):
        conn.root.fs_put("small/q.bin", data, None, "0" * 64)
    assert not os.path.exists(os.path.join(agent.root, "small", "q.bin"))
    with raises(PermissionError, match="outside the device root"):
        conn.root.fs_put("../q.bin", data, None, None)
    assert temps(agent.root) == []


def test_put_zlib_encoded(agent, conn):
    import json
    import zlib
    text = ("def f(x):\n    return x * 2\n" * 2000).encode()
    res = json.loads(conn.root.fs_put("z/code.py", zlib.compress(text, 1), None,
                                      hashlib.sha256(text).hexdigest(), "zlib"))
    assert res["size"] == len(text)
    assert open(os.path.join(agent.root, "z", "code.py"), "rb").read() == text
    with raises(ValueError, match="corrupt"):
        conn.root.fs_put("z/bad.py", b"not zlib at all", None, None, "zlib")
    with raises(ValueError, match="truncated"):
        conn.root.fs_put("z/bad.py", zlib.compress(text)[:100], None, None, "zlib")
    with raises(ValueError, match="unknown encoding"):
        conn.root.fs_put("z/bad.py", text, None, None, "brotli")
    # the hash is checked against the decompressed content
    with raises(ValueError, match="sha256 mismatch"):
        conn.root.fs_put("z/bad.py", zlib.compress(text), None, hashlib.sha256(b"other").hexdigest(), "zlib")
    assert not os.path.exists(os.path.join(agent.root, "z", "bad.py"))
    assert temps(agent.root) == []


def test_the_file_store_loads_with_the_first_file_call(make_agent):
    """An idle agent has not loaded files.py (memory); the first file call loads it. Its root is
    known before that all the same (code run on the board reads files.ROOT)."""
    from jrd_helpers import board_says
    loaded = "import sys\nprint('jupyter_remote_device.agent.files' in sys.modules)\n"
    agent = make_agent(camera="none")
    c = link.connect("127.0.0.1", agent.port, agent.token)
    try:
        assert board_says(c, loaded).strip() == "False"
        with open(os.path.join(agent.root, "x.txt"), "w") as f:
            f.write("x")
        assert [e["name"] for e in json_list(c.root.fs_list(""))] == ["x.txt"]
        assert board_says(c, loaded).strip() == "True"
    finally:
        c.close()
    fresh = make_agent(camera="none")
    c = link.connect("127.0.0.1", fresh.port, fresh.token)
    try:
        said = board_says(c, loaded + "from jupyter_remote_device.agent.files import ROOT\nprint(ROOT)\n").split()
        assert said == ["False", os.path.realpath(fresh.root)]
    finally:
        c.close()


def json_list(text):
    import json
    return json.loads(text)["entries"]
