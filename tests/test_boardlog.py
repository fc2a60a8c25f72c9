"""Output goes where the user looks: the running cell (fds 1/2, threads it started) or the board log."""
import asyncio
import json
import time

import pytest
import tornado.httpclient

from jrd_helpers import ClassicServer

CELL = r'''
import os, subprocess, sys, threading
os.system("echo fd-$((20+1))")
subprocess.run("echo sub-err-$((2*11)) 1>&2", shell=True)
t = threading.Thread(target=lambda: print("thread-out-23"))
t.start(); t.join()
def grandchild():
    inner = threading.Thread(target=lambda: sys.stderr.write("grand-24\n"))
    inner.start(); inner.join()
t = threading.Thread(target=grandchild)
t.start(); t.join()
print("cell-25")
'''

LATER = r'''
import os, threading, time
def later():
    time.sleep(0.6)
    print("late-thread-31")
    os.system("echo late-fd-32 1>&2")
threading.Thread(target=later, daemon=True).start()
print("started")
'''


async def _log_until(ws, want, timeout=20.0):
    seen = []
    deadline = time.monotonic() + timeout
    while not all(any(w in m["text"] for m in seen) for w in want):
        left = deadline - time.monotonic()
        assert left > 0, "never saw %r in %r" % (want, [m["text"] for m in seen][-30:])
        try:
            raw = await asyncio.wait_for(ws.read_message(), left)
        except asyncio.TimeoutError:
            raise AssertionError("never saw %r in %r" % (want, [m["text"] for m in seen][-30:]))
        assert raw is not None, "the log socket closed; saw %r" % seen
        msg = json.loads(raw)
        assert set(msg) == {"t", "stream", "text"}, msg
        seen.append(msg)
    return seen


async def test_fd_and_thread_output_lands_in_the_cell(api, connected):
    did = await connected()
    code, out = await api("POST", "devices/%s/exec" % did, {"code": CELL})
    assert code == 200, out
    assert out["error"] is None, out
    for w in ("fd-21", "thread-out-23", "cell-25"):
        assert w in out["stdout"], out
    assert "sub-err-22" in out["stderr"] and "grand-24" in out["stderr"], out


async def test_output_no_cell_waits_for_goes_to_the_board_log(api, connected, jp_ws_fetch):
    did = await connected()
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "log")
    try:
        seen = await _log_until(ws, ["listening on"])  # the agent's own messages, from before we opened
        assert any(m["stream"] == "agent" for m in seen)
        code, out = await api("POST", "devices/%s/exec" % did, {"code": LATER})
        assert code == 200 and out["stdout"] == "started\n", out
        seen = await _log_until(ws, ["late-thread-31", "late-fd-32"])
        by_text = {m["text"]: m for m in seen}
        assert by_text["late-thread-31"]["stream"] == "stdout"
        assert by_text["late-fd-32"]["stream"] == "stderr"
        assert abs(by_text["late-thread-31"]["t"] - time.time()) < 30
    finally:
        ws.close()
    # a new socket gets the recent lines first (last 500)
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "log")
    try:
        await _log_until(ws, ["late-thread-31", "late-fd-32", "listening on"], timeout=10)
    finally:
        ws.close()


async def test_board_log_keeps_the_last_500_lines(api, connected, jp_ws_fetch):
    did = await connected()
    code, out = await api("POST", "devices/%s/exec" % did, {"code": (
        "import threading\n"
        "def spam():\n"
        "    import time; time.sleep(0.3)\n"
        "    for i in range(700):\n"
        "        print('line-%d' % i)\n"
        "threading.Thread(target=spam).start()\n")})
    assert code == 200
    await asyncio.sleep(1.5)
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "log")
    first = []
    try:
        while True:
            try:
                raw = await asyncio.wait_for(ws.read_message(), 1.5)
            except asyncio.TimeoutError:
                break
            first.append(json.loads(raw))
    finally:
        ws.close()
    assert len(first) == 500
    assert first[-1]["text"] == "line-699"


async def test_board_log_on_a_classic_board(api, jp_ws_fetch):
    srv = ClassicServer()
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": srv.port})
        code, dev = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200 and dev["kind"] == "classic"
        did = dev["id"]
        code, out = await api("POST", "devices/%s/exec" % did, {"code": LATER.replace("os.system", "print")})
        assert code == 200 and out["stdout"] == "started\n", out
        ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "log")
        try:
            await _log_until(ws, ["late-thread-31"])
        finally:
            ws.close()
        await api("DELETE", "devices/%s/session" % did)
    finally:
        srv.close()


async def test_board_log_bad_input(api, agent, jp_ws_fetch):
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("jupyter-remote-device", "devices", "nope", "log")
    assert e.value.code == 404
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", dev["id"], "log")
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert msg["error"] == "not-connected" and "not connected" in msg["text"]
    assert await asyncio.wait_for(ws.read_message(), 10) is None
