"""The agent on its own: auth before any call, replay, TLS, stdlib-only and Python 3.8 syntax."""
import ast
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest
import rpyc

from jrd_helpers import board_says, tls_if_offered
from jupyter_remote_device import link
from jupyter_remote_device.agent import auth, wire

AGENT_DIR = pathlib.Path(__file__).resolve().parent.parent / "jupyter_remote_device" / "agent"


def test_connect_and_call(agent):
    conn = link.connect("127.0.0.1", agent.port, token=agent.token)
    try:
        hello = json.loads(conn.root.hello())
        assert hello["protocol"] == 1 and "exec" in hello["features"]
        info = json.loads(conn.root.info())
        assert info["hostname"] == socket.gethostname()
    finally:
        conn.close()


def test_wrong_token_refused_before_any_call(agent):
    t0 = time.monotonic()
    with pytest.raises(link.ConnectError) as e:
        link.connect("127.0.0.1", agent.port, token="wrong")
    assert e.value.reason == "auth-failed"
    assert time.monotonic() - t0 < 3


def test_raw_rpyc_without_handshake_gets_nothing(agent):
    """A client that skips the handshake and speaks rpyc straight away is dropped."""
    with pytest.raises(Exception):  # noqa: B017 - whatever rpyc raises, the call must fail
        conn = rpyc.connect("127.0.0.1", agent.port, config={"sync_request_timeout": 3})
        conn.root.info()


def _raw_handshake(port, mac_for):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    greeting = auth.read_line(s)
    assert greeting.startswith(wire.MAGIC)
    s = tls_if_offered(s, greeting)
    challenge = auth.read_json_line(s)
    cnonce = os.urandom(16).hex()
    auth.send_json_line(s, {"cnonce": cnonce, "mac": mac_for(challenge["nonce"], cnonce)})
    answer = auth.read_json_line(s)
    s.close()
    return challenge["nonce"], cnonce, answer


def test_replayed_answer_fails(agent):
    seen = {}

    def honest(nonce, cnonce):
        seen["mac"] = auth.client_mac(agent.token, nonce, cnonce)
        seen["cnonce"] = cnonce
        return seen["mac"]

    nonce1, _, answer = _raw_handshake(agent.port, honest)
    assert answer["ok"] is True
    nonce2, _, answer = _raw_handshake(agent.port, lambda nonce, cnonce: seen["mac"])
    assert nonce2 != nonce1
    assert answer["ok"] is False


def test_token_file_created_with_0600(tmp_path):
    path = tmp_path / "cfg" / "token"
    token, created = auth.load_or_create_token(str(path))
    assert created and len(token) >= 32
    assert (path.stat().st_mode & 0o777) == 0o600
    again, created = auth.load_or_create_token(str(path))
    assert again == token and not created


def test_agent_without_token_creates_and_saves_one(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "jupyter_remote_device.agent", "--help"], capture_output=True,
                         text=True, timeout=30)
    assert "--token" in out.stdout and "--insecure-no-auth" in out.stdout
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path / "root")],
                         stdout=subprocess.PIPE, text=True, env=dict(os.environ, **env))
    try:
        lines = [p.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("JRD-AGENT TOKEN ")
        token_file = tmp_path / "jupyter-remote-device" / "token"
        token = token_file.read_text().strip()
        assert token in lines[0]
        assert (token_file.stat().st_mode & 0o777) == 0o600
        port = int(lines[1].rsplit(":", 1)[1])
        conn = link.connect("127.0.0.1", port, token=token)
        assert json.loads(conn.root.hello())["protocol"] == 1
        conn.close()
    finally:
        p.terminate()
        p.wait(10)


def test_tls_end_to_end(make_agent, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("openssl could not make a test certificate: %s" % r.stderr[-200:])
    a = make_agent(camera="none", extra_args=("--certfile", str(cert), "--keyfile", str(key)))
    import ssl
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    conn = link.connect("127.0.0.1", a.port, token=a.token, ssl_context=ctx)
    try:
        assert json.loads(conn.root.hello())["protocol"] == 1
        assert conn._channel.stream.sock.version().startswith("TLS")
    finally:
        conn.close()
    assert link.probe("127.0.0.1", a.port)["tls"] is True
    # a client that insists on a certificate it does not trust is refused
    bad = ssl.create_default_context()
    with pytest.raises(link.ConnectError) as e:
        link.connect("127.0.0.1", a.port, token=a.token, ssl_context=bad)
    assert e.value.reason == "protocol"


def test_board_cannot_call_back(agent):
    """Our side is a VoidService: the board's end of the connection reaches nothing."""
    conn = link.connect("127.0.0.1", agent.port, token=agent.token)
    try:
        code = ("import gc, rpyc\n"
                "conns = [o for o in gc.get_objects() if isinstance(o, rpyc.Connection)]\n"
                "out = []\n"
                "for c in conns:\n"
                "    try:\n"
                "        out.append(sorted(n for n in dir(c.root) if n.startswith('exposed_')))\n"
                "        c.root.getmodule('os')\n"
                "        out.append('REACHED')\n"
                "    except Exception as e:\n"
                "        out.append(type(e).__name__)\n"
                "print(out)\n")
        text = board_says(conn, code)
        assert "REACHED" not in text, text
        assert "Error" in text or "[]" in text
    finally:
        conn.close()


def _agent_sources():
    return sorted(p for p in AGENT_DIR.rglob("*.py"))


@pytest.mark.parametrize("path", _agent_sources(), ids=lambda p: str(p.relative_to(AGENT_DIR)))
def test_agent_source_is_python38(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 8))


def test_agent_minimum_version_with_vermin():
    import shutil
    exe = shutil.which("vermin")
    if exe is None:
        pytest.skip("vermin is not installed (pip install .[test])")
    r = subprocess.run([exe, "--no-tips", "-t=3.8-", "--violations",
                        "--eval-annotations", str(AGENT_DIR)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


# rpyc; Pillow optional; the rest are the boards' own camera libraries, imported lazily by their backend;
# cryptography only to make the TLS certificate where the openssl command is missing (tlscert.py)
ALLOWED_IMPORTS = {"rpyc", "PIL", "cv2", "numpy", "picamera2", "maix", "zeroconf", "libcamera", "simplejpeg",
                   "av", "cryptography"}  # optional board libraries, imported lazily (av: replaying mp4/webm)


def test_agent_imports_only_stdlib_and_rpyc():
    stdlib = set(sys.stdlib_module_names)
    for path in _agent_sources():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                board_module = top.lstrip("_").startswith("maix")  # MaixPy's own modules (_maix, maix)
                assert top in stdlib or top in ALLOWED_IMPORTS or board_module or top == "jupyter_remote_device", \
                    (path, name)
                assert not name.startswith("jupyter_remote_device.server"), (path, name)
                if top == "jupyter_remote_device":
                    assert name.startswith("jupyter_remote_device.agent"), (path, name)


PKG_DIR = AGENT_DIR.parent
# docs/ARCHITECTURE.md, "What may import what": for each room, the modules of this package it may import
ROOM_RULES = {
    "agent": ("jupyter_remote_device.agent",),
    "link": ("jupyter_remote_device.link", "jupyter_remote_device.agent.wire", "jupyter_remote_device.agent.auth",
             "=jupyter_remote_device.agent"),
    "server": ("jupyter_remote_device.server", "jupyter_remote_device.link", "=jupyter_remote_device",
               "jupyter_remote_device._version"),
    "kernel": ("jupyter_remote_device.kernel", "jupyter_remote_device.link", "=jupyter_remote_device",
               "jupyter_remote_device._version"),
}


def _imports_of(path):
    """The absolute names of this package's modules that a source file imports."""
    parts = list(path.relative_to(PKG_DIR.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "jupyter_remote_device":
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "jupyter_remote_device":
                continue
            for a in node.names:  # "from .. import link" imports a module too
                sub = mod + "." + a.name
                is_module = (PKG_DIR.parent / (sub.replace(".", "/") + ".py")).exists() or \
                    (PKG_DIR.parent / sub.replace(".", "/")).is_dir()
                yield node.lineno, sub if is_module else mod


def _allowed(name, rules):
    for rule in rules:
        if rule.startswith("="):
            if name == rule[1:]:
                return True
        elif name == rule or name.startswith(rule + "."):
            return True
    return False


@pytest.mark.parametrize("room", sorted(ROOM_RULES))
def test_imports_stay_in_their_rooms(room):
    """agent/ imports nothing of the rest; link/ only agent/'s shared wire definitions; server/ and
    kernel/ reach boards only through link/ and never import each other (docs/ARCHITECTURE.md)."""
    crossing = []
    for path in sorted((PKG_DIR / room).rglob("*.py")):
        for lineno, name in _imports_of(path):
            if not _allowed(name, ROOM_RULES[room]):
                crossing.append("%s:%d imports %s" % (path.relative_to(PKG_DIR), lineno, name))
    assert not crossing, "imports crossing a room's line:\n" + "\n".join(crossing)


def test_no_python_module_is_too_long_to_read():
    """A new concern gets a new file (docs/ARCHITECTURE.md, Habits): no module over ~700 lines."""
    long = ["%s: %d lines" % (p.relative_to(PKG_DIR), n) for p in sorted(PKG_DIR.rglob("*.py"))
            for n in [len(p.read_text().splitlines())] if n > 750]
    assert not long, long


def test_room_rules_catch_a_crossing(tmp_path):
    """The rule checker itself: a kernel module importing the server is caught."""
    rules = ROOM_RULES["kernel"]
    assert not _allowed("jupyter_remote_device.server.manager", rules)
    assert not _allowed("jupyter_remote_device.agent.executor", rules)
    assert _allowed("jupyter_remote_device.link.saved", rules)
    assert not _allowed("jupyter_remote_device.agent.executor", ROOM_RULES["link"])
    assert _allowed("jupyter_remote_device.agent", ROOM_RULES["link"])


def test_agent_starts_without_jupyter():
    """The agent never imports the Jupyter side (boards don't have it)."""
    code = ("import sys, jupyter_remote_device.agent.__main__ as m, jupyter_remote_device.agent.wire\n"
            "bad = [n for n in sys.modules if n.split('.')[0] in ('jupyter_server', 'tornado', 'traitlets', "
            "'jupyter_core', 'jupyter_client', 'ipykernel')]\n"
            "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=str(AGENT_DIR.parent.parent))
    assert r.stdout.strip() == "[]", r.stdout + r.stderr
