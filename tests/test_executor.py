"""The board's exec engine, in-process (no rpyc): semantics of agent/executor.py.

``run_forever`` must own the main thread (that is how interrupts reach time.sleep
and socket reads), so each test runs its client side in a helper thread while the
test's main thread runs the executor.
"""
import ast
import base64
import os
import signal
import sys
import textwrap
import threading
import time

import pytest

from jupyter_remote_device.agent import executor as executor_mod
from jupyter_remote_device.agent.executor import CAMERA_MIME, Executor
from jupyter_remote_device.kernel.syntax import is_complete


def drive(fn, timeout=30.0):
    """Run ``fn(executor)`` in a thread while this (main) thread runs the executor."""
    ex = Executor()
    stop = threading.Event()
    box = {}

    def client():
        try:
            box["result"] = fn(ex)
        except BaseException as e:  # re-raised on the main thread
            box["error"] = e
        finally:
            stop.set()
            while ex.busy()["busy"] or ex.busy()["queued"]:  # a failed test must not leave code running
                ex.interrupt()
                for r in list(ex._queue):
                    ex.interrupt(r.id)
                time.sleep(0.05)

    def watchdog():
        if not stop.wait(timeout):
            box.setdefault("error", AssertionError("test client timed out"))
            stop.set()
            ex.interrupt()

    t = threading.Thread(target=client, daemon=True)
    threading.Thread(target=watchdog, daemon=True).start()
    t.start()
    ex.run_forever(stop)
    t.join(5)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def collect(ex, exec_id, timeout=10.0, wait=0.2):
    events = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = ex.poll(exec_id, wait)
        events += r["events"]
        if r["done"]:
            return events, r["status"]
    raise AssertionError("exec %s did not finish in %s s; events so far: %r" % (exec_id, timeout, events[-5:]))


def run(ex, code, **kw):
    return collect(ex, ex.start(code, **kw))


def stdout_of(events, name="stdout"):
    return "".join(e["text"] for e in events if e["type"] == "stream" and e["name"] == name)


def of_type(events, t):
    return [e for e in events if e["type"] == t]


def test_stream_result_and_namespace():
    def client(ex):
        ev, st = run(ex, "x = 41\nprint('a')\nprint('b', file=__import__('sys').stderr)\nx + 1")
        assert st == "ok"
        assert stdout_of(ev) == "a\n"
        assert stdout_of(ev, "stderr") == "b\n"
        res = of_type(ev, "result")
        assert len(res) == 1 and res[0]["data"]["text/plain"] == "42"
        assert res[0]["execution_count"] == 1
        # persistent namespace; `_` holds the last result; ';' suppresses it
        ev, st = run(ex, "_ + x")
        assert of_type(ev, "result")[0]["data"]["text/plain"] == "83"
        ev, st = run(ex, "x;")
        assert st == "ok" and not of_type(ev, "result")
        # silent: no result, no execution count bump
        ev, st = run(ex, "x", silent=True)
        assert not of_type(ev, "result")
        # another namespace is separate
        ev, st = run(ex, "x", ns="other")
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "NameError"
        # reset clears one namespace only
        ex.reset("rest")
        ev, st = run(ex, "x")
        assert of_type(ev, "error")[0]["ename"] == "NameError"
        ev, st = run(ex, "y = 1", ns="other")
        assert st == "ok"
        # exec mode: no result; eval mode: a value
        ev, st = run(ex, "1 + 1", mode="exec")
        assert not of_type(ev, "result")
        ev, st = run(ex, "2 * 21", mode="eval")
        assert of_type(ev, "result")[0]["data"]["text/plain"] == "42"
        with pytest.raises(ValueError):
            ex.start("1", mode="bogus")
        assert ex.poll("nope", 0)["status"] == "unknown"
    drive(client)


def test_output_is_live_and_coalesced():
    def client(ex):
        eid = ex.start("import time\nfor i in range(5):\n    print('line', i)\n    time.sleep(0.15)\n"
                       "for i in range(2000): print(i)")
        seen_running = []
        events = []
        deadline = time.time() + 10
        while time.time() < deadline:
            r = ex.poll(eid, 0.05)
            if r["events"] and not r["done"]:
                seen_running.append(stdout_of(r["events"]))
            events += r["events"]
            if r["done"]:
                break
        assert r["status"] == "ok"
        assert len(seen_running) >= 3, seen_running  # several prints arrived before the end
        text = stdout_of(events)
        assert text.startswith("line 0\nline 1\n")
        assert text.endswith("1998\n1999\n")
        # 2000 prints were coalesced into few events
        assert len(of_type(events, "stream")) < 200
    drive(client)


def test_error_has_board_line_numbers():
    def client(ex):
        code = "def f(a):\n    b = a * 2\n    return b / 0\n\nf(1)\n"
        ev, st = run(ex, code)
        assert st == "error"
        err = of_type(ev, "error")
        assert len(err) == 1
        err = err[0]
        assert err["ename"] == "ZeroDivisionError"
        tb = "\n".join(err["traceback"])
        assert "line 5" in tb and "line 3" in tb
        assert "return b / 0" in tb and "f(1)" in tb
        assert "agent/executor" not in tb and "engine.py" not in tb  # the engine's own frames are hidden
        ev, st = run(ex, "x = (1,\ny = 2")
        err = of_type(ev, "error")[0]
        assert st == "error" and err["ename"] == "SyntaxError"
        ev, st = run(ex, "raise SystemExit(3)")
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "SystemExit"
        ev, st = run(ex, "try:\n    1/0\nexcept Exception as e:\n    raise ValueError('bad') from e")
        tb = "\n".join(of_type(ev, "error")[0]["traceback"])
        assert "ZeroDivisionError" in tb and "direct cause" in tb and "ValueError: bad" in tb
        ev, st = run(ex, "print('still alive')")  # the engine survives SystemExit
        assert st == "ok" and stdout_of(ev) == "still alive\n"
    drive(client)


def test_input_request_and_no_stdin():
    def client(ex):
        eid = ex.start("name = input('who? ')\nprint('hi', name)", allow_stdin=True)
        deadline = time.time() + 5
        req = []
        while not req and time.time() < deadline:
            req = of_type(ex.poll(eid, 0.2)["events"], "input_request")
        assert req and req[0]["prompt"] == "who? " and req[0]["password"] is False
        ex.send_input(eid, "bob")
        ev, st = collect(ex, eid)
        assert st == "ok" and stdout_of(ev) == "hi bob\n"
        eid = ex.start("import getpass\npw = getpass.getpass()\nlen(pw)", allow_stdin=True)
        deadline = time.time() + 5
        req = []
        while not req and time.time() < deadline:
            req = of_type(ex.poll(eid, 0.2)["events"], "input_request")
        assert req and req[0]["password"] is True
        ex.send_input(eid, "s3cret")
        ev, st = collect(ex, eid)
        assert of_type(ev, "result")[0]["data"]["text/plain"] == "6"
        ev, st = run(ex, "input('x')")
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "StdinNotImplementedError"
        # an interrupt ends an input() wait
        eid = ex.start("input('wait: ')", allow_stdin=True)
        deadline = time.time() + 5
        while time.time() < deadline and not of_type(ex.poll(eid, 0.2)["events"], "input_request"):
            pass
        assert ex.interrupt(eid)
        ev, st = collect(ex, eid)
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "KeyboardInterrupt"
    drive(client)


@pytest.mark.parametrize("body", [
    "import time\nwhile True:\n    time.sleep(0.5)",
    "while True:\n    n += 1",
    "import socket\na, b = socket.socketpair()\na.recv(10)",
    "import threading\nthreading.Event().wait()",
])
def test_interrupt_keeps_namespace(body):
    def client(ex):
        ev, st = run(ex, "keep = 'me'\nn = 0")
        assert st == "ok"
        eid = ex.start(body)
        deadline = time.time() + 5
        while ex.busy()["exec_id"] != eid and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        t0 = time.time()
        assert ex.interrupt(eid) is True
        ev, st = collect(ex, eid, timeout=5, wait=0.05)
        latency = time.time() - t0
        assert latency < 3.0
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "KeyboardInterrupt"
        ev, st = run(ex, "keep")
        assert of_type(ev, "result")[0]["data"]["text/plain"] == "'me'"
        assert ex.busy()["busy"] is False
        return latency
    latency = drive(client)
    print("interrupt latency %.3f s" % latency)


def test_queue_is_fifo_and_queued_exec_can_be_aborted():
    def client(ex):
        a = ex.start("import time\ntime.sleep(0.5)\nprint('a')", ns="k1")
        b = ex.start("print('b')", ns="k2")
        c = ex.start("print('c')", ns="k2")
        time.sleep(0.1)
        assert ex.busy() == {"busy": True, "exec_id": a, "ns": "k1", "queued": 2}
        assert ex.poll(b, 0)["status"] == "queued"
        assert ex.interrupt(b) is True       # a queued exec is aborted, the running one untouched
        assert collect(ex, b)[1] == "aborted"
        assert stdout_of(collect(ex, a)[0]) == "a\n"
        assert stdout_of(collect(ex, c)[0]) == "c\n"
        assert ex.interrupt() is False       # nothing runs
        ex.forget(a)
        assert ex.poll(a, 0)["status"] == "unknown"
    drive(client)


def _decode(b64):
    return base64.b64decode(b64)


def test_display_images_and_rich_reprs():
    pytest.importorskip("PIL")

    def client(ex):
        ev, st = run(ex, "from PIL import Image\nImage.new('RGB', (64, 48), (255, 0, 0))")
        res = of_type(ev, "result")[0]["data"]
        assert "image/png" in res and _decode(res["image/png"]).startswith(b"\x89PNG")
        # a large photo-like image becomes a JPEG of at most ~50 KB
        code = textwrap.dedent("""
            import os
            from PIL import Image
            big = Image.frombytes('RGB', (640, 480), os.urandom(640 * 480 * 3))
            display(big)
        """)
        ev, st = run(ex, code)
        assert st == "ok", ev
        d = of_type(ev, "display")
        assert len(d) == 1
        data = d[0]["data"]
        assert "image/jpeg" in data and "image/png" not in data
        assert len(_decode(data["image/jpeg"])) <= 50 * 1000 * 1.1
        # _repr_html_ and friends, display ids and updates
        code = textwrap.dedent("""
            class H:
                def _repr_html_(self):
                    return '<b>hi</b>'
            h = display(H(), display_id='d1')
            update_display('new text', display_id='d1')
            h.update(H())
        """)
        ev, st = run(ex, code)
        assert st == "ok", ev
        d = of_type(ev, "display")
        assert d[0]["data"]["text/html"] == "<b>hi</b>" and d[0]["transient"]["display_id"] == "d1"
        assert d[0]["update"] is False
        assert all(x["update"] for x in d[1:]) and len(d) >= 2
        assert d[-1]["data"]["text/html"] == "<b>hi</b>"
    drive(client)


def test_display_numpy_image():
    np = pytest.importorskip("numpy")
    pytest.importorskip("PIL")
    assert np is not None

    def client(ex):
        ev, st = run(ex, "import numpy as np\narr = np.zeros((32, 32, 3), dtype='uint8')\ndisplay(arr)\narr.shape")
        assert st == "ok", ev
        data = of_type(ev, "display")[0]["data"]
        assert "image/png" in data
        # as a result an array shows as text
        assert of_type(ev, "result")[0]["data"]["text/plain"] == "(32, 32, 3)"
    drive(client)


def test_show_is_throttled_live_display():
    pytest.importorskip("PIL")

    def client(ex):
        code = textwrap.dedent("""
            import time
            from PIL import Image
            t0 = time.time()
            i = 0
            while time.time() - t0 < 1.0:
                show(Image.new('RGB', (80, 60), (i % 256, 0, 0)))
                i += 1
                time.sleep(0.005)
            i
        """)
        ev, st = run(ex, code)
        assert st == "ok", ev
        d = of_type(ev, "display")
        shown = int(of_type(ev, "result")[0]["data"]["text/plain"])
        assert shown > 30
        assert 2 <= len(d) <= 14          # <= 10 a second (+ the final frame)
        ids = set(x["transient"]["display_id"] for x in d)
        assert len(ids) == 1
        assert d[0]["update"] is False and all(x["update"] for x in d[1:])
        assert "image/jpeg" in d[0]["data"]
    drive(client)


def test_maix_display_show_is_mirrored(tmp_path):
    pytest.importorskip("PIL")
    pkg = tmp_path / "maix"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "display.py").write_text("calls = []\ndef show(img=None):\n    calls.append(img)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        def client(ex):
            code = textwrap.dedent("""
                from maix import display
                from PIL import Image
                for i in range(30):
                    display.show(Image.new('RGB', (320, 240), (0, i * 8, 0)))
                len(display.calls)
            """)
            ev, st = run(ex, code)
            assert st == "ok", ev
            assert of_type(ev, "result")[0]["data"]["text/plain"] == "30"  # the real show() still ran
            d = of_type(ev, "display")
            assert 1 <= len(d) <= 3
            spec = d[0]["data"][CAMERA_MIME]
            assert spec["width"] == 320 and spec["height"] == 240 and spec["device"]
            assert "image/jpeg" in d[0]["data"]
            assert d[-1]["transient"]["display_id"] == d[0]["transient"]["display_id"]
        drive(client)
    finally:
        sys.path.remove(str(tmp_path))
        for name in list(sys.modules):
            if name == "maix" or name.startswith("maix."):
                del sys.modules[name]


def test_show_camera_bundle():
    def client(ex):
        ex.snapshot = lambda w, h: b"\xff\xd8fakejpeg\xff\xd9"
        ev, st = run(ex, "show_camera(320, 240)")
        assert st == "ok", ev
        data = of_type(ev, "display")[0]["data"]
        assert data[CAMERA_MIME]["width"] == 320 and data[CAMERA_MIME]["height"] == 240
        assert _decode(data["image/jpeg"]) == b"\xff\xd8fakejpeg\xff\xd9"
    drive(client)


def test_output_is_bounded():
    """A client that stops reading does not make the board buffer without limit."""
    def client(ex):
        eid = ex.start("s = 'x' * 1023\nfor i in range(6 * 1024):\n    print(s)")  # ~6 MB
        deadline = time.time() + 20
        while ex.busy()["busy"] or ex.busy()["queued"]:
            time.sleep(0.05)
            assert time.time() < deadline
        ev, st = collect(ex, eid)
        assert st == "ok"
        assert len(stdout_of(ev)) <= executor_mod.MAX_BUFFERED
        assert "output dropped" in stdout_of(ev, "stderr")
    drive(client)


def test_complete_and_inspect():
    def client(ex):
        run(ex, "import os\nmy_value = 12\ndef my_func(a, b=2):\n    'Adds things.'\n    return a + b")
        r = ex.complete("rest", "my_", 3)
        assert set(r["matches"]) >= {"my_value", "my_func"}
        assert r["cursor_start"] == 0 and r["cursor_end"] == 3
        r = ex.complete("rest", "os.pa", 5)
        assert "os.path" in r["matches"]
        r = ex.complete("rest", "import jso", 10)
        assert "json" in r["matches"] and r["cursor_start"] == 7
        r = ex.complete("rest", "x = prin", 8)
        assert "print" in r["matches"]
        assert ex.complete("rest", "zzz_nothing", 11)["matches"] == []
        r = ex.inspect("rest", "my_func(", 8)
        assert r["found"] and "my_func(a, b=2)" in r["data"]["text/plain"]
        assert "Adds things." in r["data"]["text/plain"]
        r = ex.inspect("rest", "os.path.join", 12, 1)
        assert r["found"]
        assert ex.inspect("rest", "nothing_here", 5)["found"] is False
    drive(client)


def test_top_level_await():
    def client(ex):
        ev, st = run(ex, "import asyncio\nawait asyncio.sleep(0.01)\n'done'")
        assert st == "ok" and of_type(ev, "result")[0]["data"]["text/plain"] == "'done'"
    drive(client)


def test_sigint_when_idle_stops_the_loop():
    ex = Executor()
    stop = threading.Event()
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    threading.Timer(5, stop.set).start()  # safety
    t0 = time.time()
    ex.run_forever(stop)
    assert stop.is_set() and time.time() - t0 < 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_background_mode_interrupts_sleep():
    """Off the main thread (as inside a stock rpyc classic server) interrupts still work."""
    ex = Executor()
    stop = threading.Event()
    t = threading.Thread(target=ex.run_forever, args=(stop,), daemon=True)
    t.start()
    try:
        eid = ex.start("import time\nk = 1\ntime.sleep(20)")
        time.sleep(0.4)
        t0 = time.time()
        assert ex.interrupt(eid)
        ev, st = collect(ex, eid, timeout=5)
        assert time.time() - t0 < 3
        assert st == "error" and of_type(ev, "error")[0]["ename"] == "KeyboardInterrupt"
        eid = ex.start("while True:\n    k += 1")
        time.sleep(0.3)
        ex.interrupt(eid)
        ev, st = collect(ex, eid, timeout=5)
        assert of_type(ev, "error")[0]["ename"] == "KeyboardInterrupt"
    finally:
        stop.set()
        t.join(5)
        if ex._orig_sleep is not None:
            time.sleep = ex._orig_sleep


def test_is_complete():
    assert is_complete("x = 1")["status"] == "complete"
    r = is_complete("for i in range(3):")
    assert r["status"] == "incomplete" and r["indent"] == "    "
    assert is_complete("x = (1,")["status"] == "incomplete"
    assert is_complete("1 +* 2")["status"] == "invalid"


def test_source_keeps_python38_syntax():
    src = open(executor_mod.__file__, encoding="utf-8").read()
    ast.parse(src, feature_version=(3, 8))


def test_interrupts_racing_with_the_end_of_execs_never_hang():
    """Interrupts landing just before, during or after short execs: every exec finishes."""
    import random
    rnd = random.Random(7)

    def client(ex):
        outcomes = {"ok": 0, "error": 0, "aborted": 0}
        for i in range(200):
            eid = ex.start("import time\ntime.sleep(%f)\nv = %d" % (rnd.random() * 0.004, i))
            time.sleep(rnd.random() * 0.004)
            ex.interrupt(eid)
            ev, st = collect(ex, eid, timeout=5, wait=0.05)
            outcomes[st] += 1
        ev, st = run(ex, "print('alive')")
        assert st == "ok" and stdout_of(ev) == "alive\n"
        assert ex.busy()["busy"] is False
        return outcomes

    outcomes = drive(client, timeout=60)
    assert sum(outcomes.values()) == 200
    print(outcomes)


def test_interrupts_racing_in_background_mode():
    import random
    rnd = random.Random(11)
    ex = Executor()
    stop = threading.Event()
    t = threading.Thread(target=ex.run_forever, args=(stop,), daemon=True)
    t.start()
    try:
        for _i in range(200):
            eid = ex.start("v = 0\nfor _ in range(%d):\n    v += 1" % rnd.randint(0, 20000))
            time.sleep(rnd.random() * 0.003)
            ex.interrupt(eid)
            collect(ex, eid, timeout=5, wait=0.05)
        ev, st = run(ex, "print('alive')")
        assert st == "ok" and stdout_of(ev) == "alive\n"
    finally:
        stop.set()
        t.join(5)
        if ex._orig_sleep is not None:
            time.sleep = ex._orig_sleep


def test_abandon_stops_the_execs_of_a_client_that_left():
    def client(ex):
        gone, other = object(), object()
        a = ex.start("while True:\n    pass", owner=gone)
        b = ex.start("print('b')", owner=gone)
        c = ex.start("print('c')", owner=other)
        time.sleep(0.3)
        assert ex.abandon(object()) == 0 and ex.abandon(None) == 0
        assert ex.abandon(gone) == 2
        assert collect(ex, a)[1] == "error"
        assert collect(ex, b)[1] == "aborted"
        ev, st = collect(ex, c)
        assert st == "ok" and stdout_of(ev) == "c\n"
    drive(client)
