"""Terminals on the board: real agent, real jupyter_server, the WS speaking terminado's messages."""
import asyncio
import json
import re
import time

import pytest
import tornado.httpclient
import tornado.websocket

from jrd_helpers import ClassicServer


async def _open(jp_ws_fetch, did, **params):
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "terminal",
                           params={k: str(v) for k, v in params.items()})
    first = json.loads(await asyncio.wait_for(ws.read_message(), 15))
    assert first[0] == "setup", first
    return ws


async def _until(ws, pattern, timeout=15.0):
    """Read stdout until the text seen so far matches; returns (text, disconnect code or None)."""
    text = ""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "never saw %r; got %r" % (pattern, text[-2000:])
        try:
            msg = await asyncio.wait_for(ws.read_message(), left)
        except asyncio.TimeoutError:
            raise AssertionError("never saw %r; got %r" % (pattern, text[-2000:]))
        if msg is None:
            return text, None
        kind, *rest = json.loads(msg)
        if kind == "stdout":
            text += rest[0]
            if re.search(pattern, text):
                return text, None
        elif kind == "disconnect":
            return text, rest[0]


def _send(ws, *msg):
    ws.write_message(json.dumps(list(msg)))


async def test_terminal_echo_resize_ctrl_c_exit(api, connected, jp_ws_fetch):
    did = await connected()
    ws = await _open(jp_ws_fetch, did, name="t1", rows=30, cols=100)
    try:
        _send(ws, "stdin", "echo hel''lo-$((40+2))\n")
        await _until(ws, r"hello-42")
        _send(ws, "stdin", "stty size\n")
        await _until(ws, r"[\r\n]30 100\r?\n")
        _send(ws, "set_size", 40, 120, 800, 1000)
        _send(ws, "stdin", "stty size\n")
        await _until(ws, r"[\r\n]40 120\r?\n")
        # Ctrl-C stops the foreground program; the shell lives on
        _send(ws, "stdin", "sleep 60; echo not-\"interrupted\"\n")
        await asyncio.sleep(0.5)
        _send(ws, "stdin", "\x03")
        _send(ws, "stdin", "echo after-$((6*7))\n")
        text, _ = await _until(ws, r"after-42")
        assert "not-interrupted" not in text
        # a full-screen program sees the terminal's size too
        _send(ws, "stdin", "python3 -c \"import shutil; print('cols', shutil.get_terminal_size().columns)\"\n")
        await _until(ws, r"cols 120")
        _send(ws, "stdin", "exit 7\n")
        text, code = await _until(ws, r"(?!)")
        assert code == 7
        assert await asyncio.wait_for(ws.read_message(), 5) is None
    finally:
        ws.close()
    code, body = await api("GET", "devices/%s/terminals" % did)
    assert code == 200 and body == {"terminals": []}


async def test_terminal_several_reattach_and_close(api, connected, jp_ws_fetch, jp_serverapp):
    did = await connected()
    a = await _open(jp_ws_fetch, did, name="ta")
    b = await _open(jp_ws_fetch, did, name="tb")
    _send(a, "stdin", "export MARK=alpha; echo $$ > /dev/null\n")
    _send(b, "stdin", "echo \"b:${MARK:-unset}\"\n")
    await _until(b, r"b:unset")
    _send(a, "stdin", "echo \"a:$MARK\"\n")
    await _until(a, r"a:alpha")
    code, body = await api("GET", "devices/%s/terminals" % did)
    assert sorted(t["name"] for t in body["terminals"]) == ["ta", "tb"]
    # a page reload: the socket goes, the shell stays, the next socket with that name gets it back
    a.close()
    await asyncio.sleep(0.3)
    a2 = await _open(jp_ws_fetch, did, name="ta")
    text, _ = await _until(a2, r"a:alpha")  # the recent output is replayed
    _send(a2, "stdin", "echo \"again:$MARK\"\n")
    await _until(a2, r"again:alpha")
    # the tab closes: DELETE ends the shell at once
    code, _ = await api("DELETE", "devices/%s/terminals/ta" % did)
    assert code == 204
    msg = None
    while True:
        m = await asyncio.wait_for(a2.read_message(), 10)
        if m is None:
            break
        msg = json.loads(m)
    assert msg[0] == "disconnect"
    code, err = await api("DELETE", "devices/%s/terminals/ta" % did)
    assert code == 404 and err["reason"] == "not-found"
    # keep-alive over: a dropped socket's shell ends by itself
    reg = jp_serverapp.web_app.settings["jrd_manager"]._jrd_terminals
    reg.keep_alive = 0.5
    b.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, body = await api("GET", "devices/%s/terminals" % did)
        if not body["terminals"]:
            break
        await asyncio.sleep(0.2)
    assert body == {"terminals": []}


async def test_terminal_ends_with_the_session(api, connected, jp_ws_fetch):
    did = await connected()
    ws = await _open(jp_ws_fetch, did, name="s1")
    _send(ws, "stdin", "echo ready\n")
    await _until(ws, "ready")
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    _, disconnect = await _until(ws, r"(?!)")
    assert disconnect is not None


async def test_terminal_bad_input(api, connected, jp_ws_fetch, agent):
    # unknown device: refused before the upgrade
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("jupyter-remote-device", "devices", "nope", "terminal")
    assert e.value.code == 404
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    did = dev["id"]
    # a bad name
    with pytest.raises(tornado.httpclient.HTTPClientError) as e:
        await jp_ws_fetch("jupyter-remote-device", "devices", did, "terminal", params={"name": "../x"})
    assert e.value.code == 400
    # no session: the socket says why and closes
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "terminal")
    msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert msg[0] == "disconnect" and "not connected" in msg[1]
    assert await asyncio.wait_for(ws.read_message(), 10) is None
    # garbage messages are ignored; the terminal keeps working
    await connected()
    ws = await _open(jp_ws_fetch, did, name="bad")
    for junk in ("not json", "{}", "[]", "[1,2]", '["stdin", 5]', '["set_size", "a", "b"]',
                 '["set_size", 1e309, 5]', '["stdin"]', '["whatever", 1]'):
        ws.write_message(junk)
    _send(ws, "set_size", 100000, -5)  # clamped, not an error
    _send(ws, "stdin", "echo still-$((2+2))\n")
    await _until(ws, "still-4")
    ws.close()
    code, err = await api("GET", "devices/nope/terminals")
    assert code == 404
    code, err = await api("DELETE", "devices/%s/terminals/nothere" % did)
    assert code == 404 and err["reason"] == "not-found"


async def test_terminal_on_a_stock_classic_board(api, jp_ws_fetch):
    srv = ClassicServer()
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": srv.port})
        code, dev = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200 and dev["kind"] == "classic", dev
        ws = await _open(jp_ws_fetch, dev["id"], name="c1", rows=20, cols=70)
        _send(ws, "stdin", "stty size; echo classic-$((3*3))\n")
        text, _ = await _until(ws, r"classic-9")
        assert "20 70" in text
        _send(ws, "stdin", "exit\n")
        _, code = await _until(ws, r"(?!)")
        assert code == 0
        await api("DELETE", "devices/%s/session" % dev["id"])
    finally:
        srv.close()
