"""Every failure the contract names: a JSON error with a human message, in time, never a 500."""
import socket
import threading
import time

import pytest


def _listener(behaviour):
    """A loopback TCP server that is not an agent. Returns (port, stop)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()
    conns = []

    def run():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conns.append(c)
            if behaviour == "http":
                try:
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass
            elif behaviour == "close":
                c.close()
            # "silent": keep it open and say nothing

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def close():
        stop.set()
        srv.close()
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    return srv.getsockname()[1], close


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _connect_error(api, port, token="x", host="127.0.0.1"):
    code, dev = await api("POST", "devices", {"host": host, "port": port, "token": token})
    assert code in (200, 201), dev
    t0 = time.monotonic()
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    elapsed = time.monotonic() - t0
    code2, after = await api("GET", "devices/" + dev["id"])
    return code, err, elapsed, after


async def test_refused(api):
    code, err, elapsed, dev = await _connect_error(api, _free_port())
    assert (code, err["reason"]) == (502, "refused")
    assert "listening" in err["message"]
    assert dev["status"] == "error" and dev["error"] == err["message"]


async def test_not_rpyc_port(api):
    port, close = _listener("http")
    try:
        code, err, elapsed, dev = await _connect_error(api, port)
    finally:
        close()
    assert (code, err["reason"]) == (502, "not-an-agent")
    assert elapsed < 3.5


async def test_closes_immediately(api):
    port, close = _listener("close")
    try:
        code, err, elapsed, dev = await _connect_error(api, port)
    finally:
        close()
    assert code == 502 and err["reason"] in ("not-an-agent", "protocol")


async def test_silent_port_times_out_within_connect_timeout(api, jrd_config):
    port, close = _listener("silent")
    try:
        code, err, elapsed, dev = await _connect_error(api, port)
    finally:
        close()
    assert (code, err["reason"]) == (504, "timeout")
    assert elapsed < jrd_config["connect_timeout"] + 1.5


async def test_wrong_token(api, agent):
    code, err, elapsed, dev = await _connect_error(api, agent.port, token="not-the-token")
    assert (code, err["reason"]) == (502, "auth-failed")
    assert "token" in err["message"]
    assert elapsed < 3.5
    # the right token then works, through the session body
    code, dev = await api("POST", "devices/%s/session" % dev["id"], {"token": agent.token})
    assert code == 200 and dev["status"] == "connected"


async def test_missing_token(api, agent):
    code, err, elapsed, dev = await _connect_error(api, agent.port, token="")
    assert (code, err["reason"]) == (502, "auth-failed")


async def test_not_allowed_network(api):
    code, err = await api("POST", "devices", {"host": "10.1.2.3", "port": 18861})
    assert (code, err["reason"]) == (403, "not-allowed")
    assert "allowed_networks" in err["message"]


@pytest.mark.parametrize("body,fragment", [
    ({"port": 18861}, "host"),
    ({"host": "", "port": 1}, "host"),
    ({"host": "a b", "port": 1}, "host"),
    ({"host": "x" * 300, "port": 1}, "host"),
    ({"host": 12, "port": 1}, "host"),
    ({"host": "127.0.0.1", "port": 0}, "port"),
    ({"host": "127.0.0.1", "port": 70000}, "port"),
    ({"host": "127.0.0.1", "port": "abc"}, "port"),
    ({"host": "127.0.0.1", "port": True}, "port"),
    ({"host": "127.0.0.1", "port": 1, "name": ["x"]}, "name"),
    ({"host": "127.0.0.1", "port": 1, "token": 5}, "token"),
])
async def test_bad_device_bodies(api, body, fragment):
    code, err = await api("POST", "devices", body)
    assert (code, err["reason"]) == (400, "bad-request")
    assert fragment in err["message"]


@pytest.mark.parametrize("raw", [b"{", b"[]", b"\xff\xfe", b"null", b"42"])
async def test_bad_json(api, raw):
    code, err = await api("POST", "devices", raw_body=raw)
    assert (code, err["reason"]) == (400, "bad-request")
    assert err["message"]


async def test_too_large_body(api):
    code, err = await api("POST", "devices", raw_body=b'{"host": "' + b"a" * (2 << 20) + b'"}')
    assert (code, err["reason"]) == (413, "too-large")


async def test_unknown_ids(api):
    for method, route in (("GET", "devices/nope"), ("DELETE", "devices/nope"), ("POST", "devices/nope/session"),
                          ("POST", "devices/nope/exec"), ("GET", "devices/nope/files"), ("GET", "jobs/nope"),
                          ("DELETE", "jobs/nope")):
        body = {"code": "1"} if route.endswith("exec") else None
        code, err = await api(method, route, body)
        assert code == 404 and err["reason"] == "not-found", (method, route, err)


async def test_needs_session(api, agent):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    for method, route, body in (("POST", "exec", {"code": "1"}), ("GET", "files", None),
                                ("POST", "push", {"source": "x", "dest": "y"})):
        code, err = await api(method, "devices/%s/%s" % (dev["id"], route), body)
        assert (code, err["reason"]) == (409, "not-connected"), route


async def test_bad_exec_bodies(api, agent, connected):
    did = await connected()
    for body in ({}, {"code": 5}, {"code": "1", "timeout": "x"}, {"code": "1", "timeout": -1}):
        code, err = await api("POST", "devices/%s/exec" % did, body)
        assert (code, err["reason"]) == (400, "bad-request"), body


async def test_unauthenticated_requests_refused(jp_fetch, jp_ws_fetch, jp_serverapp, http_server_client):
    """No token, no cookie: every route refuses."""
    import tornado.httpclient
    import tornado.websocket

    base = "http://127.0.0.1:%d%sjupyter-remote-device/" % (http_server_client._http_server._sockets and
                                                             list(http_server_client._http_server._sockets.values())[0].getsockname()[1],
                                                             jp_serverapp.base_url)
    client = tornado.httpclient.AsyncHTTPClient()
    for method, route in (("GET", "version"), ("GET", "devices"), ("POST", "devices"), ("GET", "devices/x"),
                          ("DELETE", "devices/x"), ("POST", "devices/x/session"), ("POST", "devices/x/exec"),
                          ("GET", "devices/x/files"), ("GET", "devices/x/files/content?path=a"),
                          ("PUT", "devices/x/files/content?path=a"), ("POST", "devices/x/push"), ("GET", "jobs/x")):
        r = await client.fetch(base + route, method=method, raise_error=False,
                               body=b"{}" if method in ("POST", "PUT") else None)
        assert r.code == 403, (method, route, r.code)
    for route in ("events", "devices/x/camera"):
        with pytest.raises(tornado.httpclient.HTTPClientError) as e:
            await tornado.websocket.websocket_connect(base.replace("http", "ws") + route)
        assert e.value.code == 403
