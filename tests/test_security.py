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
import struct
import subprocess
import sys
import threading
import time

import pytest
import rpyc
import tornado.httpclient
import tornado.web
import tornado.websocket
from jupyter_server.auth.authorizer import Authorizer
from rpyc.utils.server import ThreadedServer

from jrd_helpers import tls_if_offered
from jupyter_remote_device import link
from jupyter_remote_device.agent import auth
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
    if request.node.originalname in NETWORKS_BY_TEST:
        cfg["DeviceManager"] = dict(jrd_config, allowed_networks=NETWORKS_BY_TEST[request.node.originalname])
    return cfg


NETWORKS_BY_TEST = {
    "test_names_resolving_outside_are_not_dialed": ["10.0.0.0/8"],
    "test_ipv6_loopback_outside_allowed": ["127.0.0.0/8"],
}


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
        s = tls_if_offered(s, auth.read_line(s))
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
    conn = link.connect("127.0.0.1", agent.port, token=agent.token)
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
            s = tls_if_offered(s, auth.read_line(s))
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
            s = tls_if_offered(s, auth.read_line(s))
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
    conn = link.connect("127.0.0.1", agent.port, token=agent.token)
    conn.close()


def test_insecure_no_auth_warns_loudly(tmp_path):
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path), "--insecure-no-auth"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("JRD-AGENT LISTENING"), line
        port = int(line.rsplit(":", 1)[1])
        conn = link.connect("127.0.0.1", port)  # no token needed
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
        with pytest.raises(link.ConnectError) as e:
            link.connect("127.0.0.1", port, token=None)
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
        conn = link.connect("127.0.0.1", port, token=secret)
        json.loads(conn.root.info())
        sid = conn.root.camera_open("0", 160, 120, 50, 0)
        assert conn.root.camera_next(sid, -1, 5.0)
        conn.close()
        with pytest.raises(link.ConnectError):
            link.connect("127.0.0.1", port, token=secret[:-1])
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


# -- a hostile board ------------------------------------------------------------------------
#
# A real rpyc server on 127.0.0.1 that speaks our handshake (AgentAuthenticator) but whose
# service tries to reach back into the Jupyter side, or a raw socket that answers the handshake
# and then sends broken or endless rpyc frames. The server must stay out of reach, answer every
# request with a JSON error in time, and keep serving.

REACHED = []  # what a hostile board managed to touch on our side (must stay empty)


def _try_reach(conn, where):
    attempts = {
        "root-attr": lambda: conn.root.getmodule,
        # VoidService answers only rpyc's own get_service_name/get_service_aliases
        "root-exposed": lambda: [n for n in dir(conn.root) if n.startswith("exposed_") and n not in
                                 ("exposed_get_service_aliases", "exposed_get_service_name")] or None,
        "modules": lambda: conn.modules.os.getcwd(),
        "builtins": lambda: conn.builtins.open,
        "eval": lambda: conn.eval("1+1"),
        "teleport": lambda: rpyc.utils.classic.teleport_function(conn, lambda: __import__("os").getpid())(),
        "execute": lambda: conn.execute("import os"),
    }
    for name, fn in attempts.items():
        try:
            value = fn()
        except Exception:
            continue
        if value:
            REACHED.append((where, name, repr(value)[:80]))


class _Evil(str):
    """A str subclass: not brine-able, so it crosses as a netref; its methods call back."""

    def __new__(cls, text, conn):
        obj = str.__new__(cls, text)
        obj._conn = conn
        return obj

    def startswith(self, *a):
        _try_reach(self._conn, "str.startswith")
        return str.startswith(self, *a)

    def __getattribute__(self, name):
        if name not in ("_conn", "__class__") and not name.startswith("__"):
            _try_reach(object.__getattribute__(self, "_conn"), "str." + name)
        return object.__getattribute__(self, name)


def _hostile_service(mode):
    class Hostile(rpyc.Service):
        def on_connect(self, conn):
            self._conn = conn
            threading.Thread(target=_try_reach, args=(conn, "on_connect"), daemon=True).start()

        def exposed_hello(self):
            return json.dumps({"agent_version": "evil", "protocol": 1, "features": []})

        def exposed_claim(self, *a):
            _try_reach(self._conn, "claim")
            return json.dumps({"ok": True, "holder": None})

        def exposed_info(self):
            _try_reach(self._conn, "info")
            if mode == "dict":
                return {"hostname": "evil"}  # a dict: crosses as a netref
            if mode == "list":
                return ["evil"]
            if mode == "str-subclass":
                return _Evil(json.dumps({"hostname": "evil"}), self._conn)
            if mode == "function":
                return lambda *a: _try_reach(self._conn, "called-back")
            if mode == "raise":
                raise SystemExit("evil")
            return json.dumps({"hostname": "evil"})

    return Hostile


class HostileBoard:
    def __init__(self, mode, token="evil-token"):
        self.mode = mode
        self.token = token
        self.authenticator = auth.AgentAuthenticator(token, "evil")
        self.stop = threading.Event()
        self.sent = 0
        if mode == "zip-bomb":  # made before the test measures memory, and before anyone dials (it takes seconds)
            import zlib
            self.bomb = zlib.compress(b"\0" * (256 << 20), 9)
        if mode in ("dict", "list", "str-subclass", "function", "raise", "callback"):
            self.server = ThreadedServer(_hostile_service(mode), hostname="127.0.0.1", port=0,
                                         authenticator=self.authenticator,
                                         protocol_config={"allow_public_attrs": True, "sync_request_timeout": 5})
            self.server._listen()
            self.port = self.server.port
            threading.Thread(target=self.server.start, daemon=True).start()
        else:
            self.server = None
            self.srv = socket.socket()
            self.srv.bind(("127.0.0.1", 0))
            self.srv.listen(16)
            self.srv.settimeout(0.2)
            self.port = self.srv.getsockname()[1]
            threading.Thread(target=self._raw_accept, daemon=True).start()

    def _raw_accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._raw, args=(c,), daemon=True).start()

    def _raw(self, c):
        try:
            c, _ = self.authenticator(c)
            c.settimeout(1.0)
            junk = os.urandom(1 << 16)
            limit = 256 << 20  # bounded: at most 256 MiB per connection, at most 20 s
            t_end = time.monotonic() + 20
            if self.mode == "huge-frame":
                c.sendall(struct.pack("!LB", 0xFFFFFFF0, 0))
            elif self.mode == "zip-bomb":
                bomb = self.bomb
                c.sendall(struct.pack("!LB", len(bomb), 1) + bomb + b"\n")
                # a frame's payload is read after its header; keep the socket open
            elif self.mode == "bad-brine":
                frame = b"\xff" * 100
                c.sendall(struct.pack("!LB", len(frame), 0) + frame + b"\n")
            while not self.stop.is_set() and time.monotonic() < t_end and self.sent < limit:
                if self.mode in ("garbage", "huge-frame"):
                    try:
                        c.sendall(junk)
                        self.sent += len(junk)
                    except socket.timeout:
                        continue
                else:
                    time.sleep(0.1)
                    # drain what the client says, answer nothing
                    try:
                        if not c.recv(65536):
                            break
                    except socket.timeout:
                        pass
        except Exception:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        if self.server is not None:
            self.server.close()
        else:
            self.srv.close()


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


@pytest.mark.parametrize("mode", ["callback", "dict", "list", "str-subclass", "function", "raise",
                                  "huge-frame", "zip-bomb", "bad-brine", "garbage"])
async def test_hostile_board_gets_nothing(api, mode, jrd_config):
    REACHED.clear()
    board = HostileBoard(mode)
    rss0 = _rss_mb()
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": board.port, "token": board.token})
        assert code == 201
        limit = jrd_config["connect_timeout"] + 3.0
        t0 = time.monotonic()
        code, body = await api("POST", "devices/%s/session" % dev["id"])
        elapsed = time.monotonic() - t0
        assert elapsed < limit, "%s: the session request took %.1f s" % (mode, elapsed)
        assert isinstance(body, dict) and (body.get("message") or code == 200), (mode, code, body)
        if code == 200:
            # connected (the board answered well-formed JSON): using it must not reach in either
            assert mode == "callback", (mode, body)
            code, out = await api("POST", "devices/%s/exec" % dev["id"], {"code": "1"})
            assert code == 200 and out["stdout"] == "" or (isinstance(out, dict) and out.get("message")), (code, out)
        else:
            assert code in (502, 504), (mode, code, body)
            assert body.get("reason") in ("protocol", "timeout", "not-an-agent"), body
        # the server keeps serving, quickly
        t0 = time.monotonic()
        code, _ = await api("GET", "devices")
        assert code == 200 and time.monotonic() - t0 < 2
        code, d = await api("GET", "devices/" + dev["id"])
        assert code == 200 and d["status"] in ("error", "connecting", "connected", "online", "offline")
        await asyncio.sleep(1.0)  # give a hostile callback thread time to try
    finally:
        board.close()
    assert not REACHED, REACHED
    # a board cannot make the server buffer what it sends
    assert _rss_mb() - rss0 < 150, "server RSS grew by %.0f MB (%s)" % (_rss_mb() - rss0, mode)


# -- allowed_networks: names are checked where they resolve, at dial time -------------------

class CountingListener:
    """A loopback port that counts connections (to prove nothing was dialed)."""

    def __init__(self, host="127.0.0.1"):
        self.srv = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.srv.bind((host, 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.stop.set()
        self.srv.close()


async def test_names_resolving_outside_are_not_dialed(api):
    """allowed_networks = 10.0.0.0/8 only: 'localhost' and numeric spellings of 127.0.0.1 resolve
    outside it: refused with 403 not-allowed at dial time, and no connection is ever made."""
    lis = CountingListener()
    try:
        for host in ("localhost", "LOCALHOST", "2130706433", "0x7f000001", "127.1"):
            code, dev = await api("POST", "devices", {"host": host, "port": lis.port})
            if code == 400:  # refused as malformed at add time: fine too
                assert dev["reason"] == "bad-request"
                continue
            assert code in (200, 201), (host, dev)
            code, err = await api("POST", "devices/%s/session" % dev["id"])
            assert (code, err["reason"]) == (403, "not-allowed"), (host, err)
            assert "allowed_networks" in err["message"]
            code, d = await api("GET", "devices/" + dev["id"])
            assert d["status"] in ("error", "offline")
        # IP literals outside are refused when added
        for host in ("127.0.0.1", "[::1]", "::1", "::ffff:127.0.0.1", "169.254.169.254"):
            code, err = await api("POST", "devices", {"host": host, "port": lis.port})
            assert (code, err["reason"]) == (403, "not-allowed"), (host, err)
        await asyncio.sleep(0.5)  # background status probes had their chance
        assert lis.accepted == 0, "the server dialed an address outside allowed_networks"
    finally:
        lis.close()


async def test_ipv6_loopback_outside_allowed(api):
    """allowed_networks = 127.0.0.0/8 only: ::1 (literal or bracketed) is outside."""
    for host in ("::1", "[::1]", "0:0:0:0:0:0:0:1"):
        code, err = await api("POST", "devices", {"host": host, "port": 18861})
        assert (code, err["reason"]) == (403, "not-allowed"), (host, err)
    lis = CountingListener()
    try:  # while 127.0.0.1 itself is fine
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": lis.port})
        assert code == 201
    finally:
        lis.close()


async def test_ipv6_loopback_allowed_by_default_config(api):
    """conftest allows ::1/128: an agent listening on [::1] is reachable by its literal."""
    try:
        proc, port, token = __import__("jupyter_remote_device.app", fromlist=["spawn_agent"]).spawn_agent(
            host="::1", camera="none")
    except Exception as e:
        pytest.skip("no IPv6 loopback here: %s" % e)
    try:
        code, dev = await api("POST", "devices", {"host": "[::1]", "port": port, "token": token})
        assert code == 201 and dev["host"] == "::1"
        code, dev = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200 and dev["status"] == "connected", dev
    finally:
        proc.terminate()
        proc.wait(10)


# -- bad input: a clear 4xx, and the server stays up ---------------------------------------

@pytest.mark.parametrize("route,params,body", [
    ("devices/nope/files", {"path": "a" * 10000}, None),
    ("devices/nope/files", {"path": "a\x00b"}, None),
    ("devices/%00", {}, None),
    ("devices/" + "x" * 5000, {}, None),
    ("devices/<script>", {}, None),
    ("jobs/%ff%fe", {}, None),
])
async def test_odd_ids_and_paths(api, route, params, body):
    code, err = await api("GET", route, **params)
    assert 400 <= code < 500 and isinstance(err, dict) and err.get("message"), (route, code, err)
    code, _ = await api("GET", "version")
    assert code == 200


async def test_bad_input_on_a_connected_board(api, agent, connected, jp_fetch):
    did = await connected()
    cases = [
        ("GET", "devices/%s/files" % did, {"path": "a" * 10000}, None, 400),
        ("GET", "devices/%s/files" % did, {"path": "x\x00y"}, None, (400, 404)),  # tornado blanks controls
        ("GET", "devices/%s/files/content" % did, {"path": "../../etc/passwd"}, None, (400, 403)),
        ("DELETE", "devices/%s/files" % did, {"path": "."}, None, 400),
        ("DELETE", "devices/%s/files" % did, {"path": "/"}, None, 400),
        ("POST", "devices/%s/exec" % did, {}, {"code": "1", "timeout": True}, 400),
        ("POST", "devices/%s/exec" % did, {}, {"code": "1", "timeout": 1e308}, 400),
        ("POST", "devices/%s/exec" % did, {}, {"code": ["print(1)"]}, 400),
        ("POST", "devices/%s/push" % did, {}, {"source": 5, "dest": "x"}, 400),
        ("POST", "devices/%s/push" % did, {}, {"source": "a", "dest": "x", "sync": "yes"}, 400),
        ("POST", "devices/%s/files" % did, {}, {"path": "d", "type": "fifo"}, 400),
        ("PATCH", "devices/%s/files" % did, {}, {"path": "x"}, 400),
        ("POST", "devices/%s/session" % did, {}, {"token": 12}, 400),
        ("POST", "devices", {}, {"host": "127.0.0.1", "port": 18861.5}, 400),
        ("POST", "devices", {}, {"host": "127.0.0.1", "port": -1}, 400),
        ("POST", "devices", {}, {"host": "999.999.999.999", "port": 1}, 400),
        ("POST", "devices", {}, {"host": "1.2.3.4.5", "port": 1}, 400),
        ("POST", "devices", {}, {"host": "a" * 64 + ".b", "port": 1}, 400),
        ("POST", "devices", {}, {"host": "http://127.0.0.1/", "port": 1}, 400),
        ("POST", "devices", {}, {"host": "127.0.0.1:80", "port": 1}, 400),
        ("POST", "devices", {}, {"host": "127.0.0.1", "port": 1, "tls": "no"}, (400, 201, 200)),
    ]
    for method, route, params, body, want in cases:
        code, err = await api(method, route, body, **params)
        ok = code in want if isinstance(want, tuple) else code == want
        assert ok, (method, route, params, body, code, err)
        if code >= 400:
            assert isinstance(err, dict) and err.get("message") and err.get("reason"), err
    # raw junk bodies on every JSON endpoint
    for route in ("devices", "devices/%s/session" % did, "devices/%s/exec" % did, "devices/%s/push" % did,
                  "devices/%s/files" % did):
        for raw in (b"\xff\xfe\x00", b"{" * 50000, b"[" * 100000 + b"]" * 100000,
                    b'"just a string"', b"\x00" * 100):
            code, err = await api("POST", route, raw_body=raw)
            assert code in (400, 413), (route, raw[:20], code, err)
            assert isinstance(err, dict) and err["reason"] in ("bad-request", "too-large"), (route, raw[:20], err)
        code, err = await api("POST", route, raw_body=b'{"code": "' + b"x" * (2 << 20) + b'"}')
        assert (code, err["reason"]) == (413, "too-large"), route
    # wrong-typed query parameters
    r = await jp_fetch("jupyter-remote-device", "devices", did, "files", method="DELETE", raise_error=False,
                       params={"path": "nothing-here", "recursive": "maybe"})
    assert r.code in (400, 404), r.code
    # the board and the server are fine after all that
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "print('ok')"})
    assert code == 200 and out["stdout"] == "ok\n"
