"""Security by construction: every route the extension registers needs authentication AND
authorization; the handshake, the limiter, the logs and the saved tokens keep secrets secret.

The route list is read from the running server's router, not written by hand: a new
route without ``@tornado.web.authenticated``/``@ws_authenticated`` + ``@authorized`` fails here.
"""
import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
from jupyter_server.auth.authorizer import Authorizer

from jupyter_remote_device.agent import auth, client
from jupyter_remote_device.server import handlers as jrd_handlers

NAMESPACE = "jupyter-remote-device/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class DenyRemoteDevice(Authorizer):
    """Allows everything but the ``remote-device`` resource; records what it was asked."""

    asked = []

    def is_authorized(self, handler, user, action, resource):
        DenyRemoteDevice.asked.append((handler.request.method, handler.request.path, action, resource))
        return resource != jrd_handlers.AUTH_RESOURCE


DENY_TESTS = {"test_every_method_is_authorized"}


@pytest.fixture
def jp_server_config(jrd_config, request):
    """conftest's config, plus the denying authorizer for the tests in DENY_TESTS."""
    cfg = {"ServerApp": {"jpserver_extensions": {"jupyter_remote_device": True}}, "DeviceManager": jrd_config}
    if request.node.originalname in DENY_TESTS:
        DenyRemoteDevice.asked = []
        cfg["ServerApp"]["authorizer_class"] = DenyRemoteDevice
    return cfg


# -- the route table, read from the live app -------------------------------------------

def _walk_rules(router, out):
    for rule in getattr(router, "rules", ()):
        target = rule.target
        if isinstance(target, type) and issubclass(target, tornado.web.RequestHandler):
            pattern = getattr(rule.matcher, "regex", None)
            if pattern is not None:
                out.append((pattern.pattern, target))
        elif hasattr(target, "rules"):
            _walk_rules(target, out)
    return out


def our_routes(serverapp):
    app = serverapp.web_app
    rules = []
    _walk_rules(app.default_router, rules)
    _walk_rules(app.wildcard_router, rules)
    seen, routes = set(), []
    for pattern, cls in rules:
        if NAMESPACE in pattern and (pattern, cls) not in seen:
            seen.add((pattern, cls))
            routes.append((pattern, cls))
    return routes


def _is_ours(cls):
    return cls.__module__.startswith("jupyter_remote_device")


def implemented_methods(cls):
    """HTTP methods whose implementation comes from one of our classes."""
    out = []
    for m in METHODS:
        for klass in cls.__mro__:
            if m.lower() in vars(klass):
                if _is_ours(klass):
                    out.append(m)
                break
    return out


def is_websocket(cls):
    return issubclass(cls, tornado.websocket.WebSocketHandler)


def concrete_path(pattern):
    """Turn a route regex into a request path (named groups -> 'nope')."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "nope", pattern)
    path = path.rstrip("$")
    assert re.fullmatch(pattern.rstrip("$") + "$", path), (pattern, path)
    return path


def test_routes_are_found(jp_serverapp):
    routes = our_routes(jp_serverapp)
    classes = {cls.__name__ for _, cls in routes}
    # the list is discovered, this only checks the discovery works at all
    assert {"VersionHandler", "DevicesHandler", "EventsHandler", "CameraHandler"} <= classes, classes
    for _, cls in routes:
        assert _is_ours(cls), cls
        if not is_websocket(cls):
            assert implemented_methods(cls), cls


def test_no_origin_or_xsrf_override(jp_serverapp):
    """check_origin / check_xsrf_cookie / auth lookups stay jupyter_server's."""
    for _, cls in our_routes(jp_serverapp):
        for name in ("check_origin", "check_xsrf_cookie", "get_current_user", "xsrf_token",
                     "check_referer", "check_host", "skip_check_origin", "get_login_url"):
            for klass in cls.__mro__:
                if name in vars(klass):
                    assert not _is_ours(klass), "%s overrides %s" % (cls.__name__, name)
                    break


def _base(serverapp, port):
    return "http://127.0.0.1:%d%s" % (port, serverapp.base_url)


async def _raw_fetch(url, method, headers=None):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    return await tornado.httpclient.AsyncHTTPClient().fetch(
        url, method=method, raise_error=False, body=body, headers=headers or {},
        allow_nonstandard_methods=True, request_timeout=20, follow_redirects=False)


async def test_unauthenticated_refused_everywhere(jp_serverapp, jp_fetch, jp_http_port):
    base = _base(jp_serverapp, jp_http_port)
    checked = 0
    for pattern, cls in our_routes(jp_serverapp):
        path = concrete_path(pattern)
        url = "http://127.0.0.1:%d%s" % (jp_http_port, path)
        if is_websocket(cls):
            with pytest.raises(tornado.httpclient.HTTPClientError) as e:
                await tornado.websocket.websocket_connect(url.replace("http://", "ws://"))
            assert e.value.code in (401, 403), (pattern, e.value.code)
            checked += 1
            continue
        for method in implemented_methods(cls):
            r = await _raw_fetch(url + "?path=a", method)
            assert r.code in (401, 403), (method, path, r.code)
            # a bogus token is no better than none
            r = await _raw_fetch(url + "?path=a", method, {"Authorization": "token not-the-token"})
            assert r.code in (401, 403), (method, path, r.code)
            checked += 1
    assert checked >= 15
    # and the server is still fine
    r = await jp_fetch("jupyter-remote-device", "version")
    assert r.code == 200


async def test_every_method_is_authorized(jp_serverapp, jp_fetch, jp_ws_fetch):
    """Authenticated, but the authorizer denies ``remote-device``: every method answers 403."""
    assert jp_serverapp.authorizer.__class__ is DenyRemoteDevice
    routes = our_routes(jp_serverapp)
    checked = 0
    prefix = jp_serverapp.base_url
    for pattern, cls in routes:
        path = concrete_path(pattern)
        assert path.startswith(prefix)
        parts = path[len(prefix):].split("/")
        before = len(DenyRemoteDevice.asked)
        if is_websocket(cls):
            with pytest.raises(tornado.httpclient.HTTPClientError) as e:
                await jp_ws_fetch(*parts)
            assert e.value.code == 403, pattern
        else:
            for method in implemented_methods(cls):
                body = b"{}" if method in ("POST", "PUT", "PATCH") else None
                r = await jp_fetch(*parts, method=method, body=body, raise_error=False,
                                   params={"path": "a"}, allow_nonstandard_methods=True)
                assert r.code == 403, (method, path, r.code, r.body[:200])
                checked += 1
        asked = [a for a in DenyRemoteDevice.asked[before:] if a[3] == jrd_handlers.AUTH_RESOURCE]
        assert asked, "the authorizer was never asked about %s" % pattern
    assert checked >= 15
    # jupyter_server's own API still works for this user: the denial is ours, by resource
    r = await jp_fetch("api", "status")
    assert r.code == 200


async def test_authorized_user_gets_through(jp_serverapp, jp_fetch):
    """Control: with the default authorizer the same requests are not 403."""
    r = await jp_fetch("jupyter-remote-device", "devices", raise_error=False)
    assert r.code == 200
    r = await jp_fetch("jupyter-remote-device", "devices", "nope", raise_error=False)
    assert r.code == 404


# -- the agent side ---------------------------------------------------------------------

def _wrong_attempt(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        auth.read_line(s)
        challenge = auth.read_json_line(s)
        auth.send_json_line(s, {"cnonce": os.urandom(16).hex(),
                                "mac": auth.client_mac("wrong", challenge["nonce"], "x" * 32)})
        return auth.read_json_line(s)
    finally:
        s.close()


def test_failed_attempts_are_slowed(agent):
    """A burst of wrong tokens costs time: each refusal waits, and the wait grows."""
    t0 = time.monotonic()
    n = 5
    for _ in range(n):
        answer = _wrong_attempt(agent.port)
        assert answer["ok"] is False and "token" not in answer.get("error", "x").replace("the token", "")
    elapsed = time.monotonic() - t0
    # FailureLimiter: base 0.2 s, growing with recent failures; loose lower bound only
    assert elapsed >= 0.2 * n, elapsed
    # the right token still works straight after
    conn = client.connect("127.0.0.1", agent.port, token=agent.token)
    try:
        assert json.loads(conn.root.hello())["protocol"] == 1
    finally:
        conn.close()


def test_limiter_grows_and_caps():
    lim = auth.FailureLimiter(base=0.1, cap=0.5, window=60)
    d = [lim.delay("1.2.3.4")]
    for _ in range(10):
        lim.failed("1.2.3.4")
        d.append(lim.delay("1.2.3.4"))
    assert d == sorted(d) and d[0] == pytest.approx(0.1) and d[-1] == pytest.approx(0.5)
    assert lim.delay("5.6.7.8") == pytest.approx(0.1)  # per address


def test_constant_time_compare_is_used():
    """The mac comparison goes through hmac.compare_digest (not ==)."""
    import inspect

    src = inspect.getsource(auth.AgentAuthenticator.__call__)
    assert "compare_digest" in src
    assert not re.search(r"mac\s*[!=]=", src)


def test_nonce_is_fresh_and_long(agent):
    nonces = set()
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
        try:
            auth.read_line(s)
            nonces.add(auth.read_json_line(s)["nonce"])
        finally:
            s.close()
    assert len(nonces) == 5 and all(len(n) >= 32 for n in nonces)


def test_malformed_handshakes_refused(agent):
    """Garbage, short cnonce, missing mac, a huge line: refused, and the agent still serves."""
    for reply in (b"not json\n", b'{"cnonce": "ab", "mac": "x"}\n', b'{"cnonce": "' + b"a" * 32 + b'"}\n',
                  b"[1,2]\n", b"x" * 10000 + b"\n"):
        s = socket.create_connection(("127.0.0.1", agent.port), timeout=5)
        try:
            auth.read_line(s)
            auth.read_json_line(s)
            s.sendall(reply)
            s.settimeout(5)
            data = b""
            try:
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    data += b
            except (ConnectionResetError, socket.timeout):
                pass
            assert b'"ok":true' not in data.replace(b" ", b"")
        finally:
            s.close()
    conn = client.connect("127.0.0.1", agent.port, token=agent.token)
    conn.close()


def test_insecure_no_auth_warns_loudly(tmp_path):
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path), "--insecure-no-auth"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("JRD-AGENT LISTENING"), line
        port = int(line.rsplit(":", 1)[1])
        conn = client.connect("127.0.0.1", port)  # no token needed
        conn.close()
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "WARNING" in err and "insecure-no-auth" in err and "ANYONE" in err


def test_without_flag_a_token_is_always_required(tmp_path):
    """No --token and no --insecure-no-auth: the agent makes a token; a tokenless client is refused."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path / "r")],
                         stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [p.stdout.readline(), p.stdout.readline()]
        port = int(lines[1].rsplit(":", 1)[1])
        with pytest.raises(client.ConnectError) as e:
            client.connect("127.0.0.1", port, token=None)
        assert e.value.reason == "auth-failed"
    finally:
        p.terminate()
        p.wait(10)


async def test_token_never_logged(make_agent, api, jp_serverapp, caplog):
    """Agent at DEBUG and the server at DEBUG: the token string appears in no log line."""
    secret = "S3cr3t-" + os.urandom(12).hex()
    a = make_agent(token=secret, camera="synthetic", extra_args=("--log-level", "DEBUG"))
    caplog.set_level(logging.DEBUG)
    jp_serverapp.log.setLevel(logging.DEBUG)
    logging.getLogger("rpyc").setLevel(logging.DEBUG)
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": a.port, "token": secret})
    assert code == 201
    code, dev = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, dev
    assert secret not in json.dumps(dev)
    code, out = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print(1)"})
    assert out["stdout"] == "1\n"
    # a wrong token and a token change are logged events too
    code, bad = await api("POST", "devices", {"host": "127.0.0.1", "port": a.port, "token": secret + "x"})
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 502
    code, lst = await api("GET", "devices")
    assert secret not in json.dumps(lst)
    await asyncio.sleep(0.5)
    a.stop()
    # the agent's stderr went to our stderr (spawn_agent passes stderr=None): read both logs
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text, "no server log captured"
    assert secret not in text
    assert "wrong token" in text or "refused" in text or "token" in text


def test_agent_debug_log_has_no_token(tmp_path):
    secret = "S3cr3t-" + os.urandom(12).hex()
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "synthetic", "--root", str(tmp_path), "--token", secret,
                          "--log-level", "DEBUG"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        conn = client.connect("127.0.0.1", port, token=secret)
        json.loads(conn.root.info())
        sid = conn.root.camera_open("0", 160, 120, 50, 0)
        assert conn.root.camera_next(sid, -1, 5.0)
        conn.close()
        with pytest.raises(client.ConnectError):
            client.connect("127.0.0.1", port, token=secret[:-1])
    finally:
        p.terminate()
        out, err = p.communicate(timeout=10)
    assert "wrong token" in err  # the debug log is really there
    assert secret not in out and secret not in err


async def test_devices_file_is_0600(api, agent, jp_serverapp):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    assert code == 201
    path = jp_serverapp.web_app.settings["jrd_manager"].devices_file
    assert os.path.exists(path)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    assert agent.token in open(path).read()  # it is the token store...
    # ...and a token update keeps the mode
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": "other"})
    assert (os.stat(path).st_mode & 0o777) == 0o600
    parent = os.path.dirname(path)
    assert not os.path.exists(path + ".tmp")
    assert oct(os.stat(parent).st_mode & 0o002) == "0o0"  # not world-writable
