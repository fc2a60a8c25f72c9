"""Token challenge/response (and optional TLS) for agent connections.

The handshake runs on the raw socket before rpyc sees a byte, so a client that
does not know the token never reaches a single service call:

1. agent -> client, in clear:  ``JRD-AGENT/1 {"version": ..., "tls": bool}\\n``
2. if ``tls``: both sides wrap the socket in TLS.
3. agent -> client: ``{"nonce": hex, "auth": "hmac-sha256" | "none"}\\n``
4. client -> agent: ``{"cnonce": hex, "mac": HMAC(token, "jrd-client|nonce|cnonce"), "user": ...}\\n``
5. agent -> client: ``{"ok": true, "proof": HMAC(token, "jrd-agent|cnonce|nonce")}\\n``
   or ``{"ok": false, "error": "..."}\\n`` after a short delay, then close.

The token never crosses the wire; the nonce is fresh per connection (a
recorded answer is useless later) and the agent proves it knows the token too.
Standard library only: this module runs on boards (Python 3.8+).
"""
import json
import os
import socket
import ssl
import threading
import time

from rpyc.utils.authenticators import AuthenticationError

from .digest import compare_digest, hmac_sha256
from .sysinfo import rpyc_version
from .wire import greeting

MAX_LINE = 4096
HANDSHAKE_TIMEOUT = 10.0


def _mac(token, *parts):
    msg = "|".join(parts).encode("utf-8")
    return hmac_sha256(token.encode("utf-8"), msg)


def client_mac(token, nonce, cnonce):
    return _mac(token, "jrd-client", nonce, cnonce)


def agent_proof(token, nonce, cnonce):
    return _mac(token, "jrd-agent", cnonce, nonce)


def read_line(sock, limit=MAX_LINE, deadline=None):
    """Read one ``\\n``-terminated line byte by byte (never past it: rpyc follows).

    With ``deadline`` (a ``time.monotonic()`` value) the whole line must arrive by then
    (socket.timeout otherwise), however slowly the bytes dribble in."""
    buf = bytearray()
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("handshake deadline passed")
            sock.settimeout(left)
        b = sock.recv(1)
        if not b:
            raise EOFError("connection closed during handshake")
        if b == b"\n":
            return bytes(buf)
        buf += b
        if len(buf) > limit:
            raise ValueError("handshake line too long")


def send_json_line(sock, obj):
    sock.sendall(json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n")


def read_json_line(sock, deadline=None):
    obj = json.loads(read_line(sock, deadline=deadline).decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("handshake message is not an object")
    return obj


class FailureLimiter(object):
    """Slows down guessing: each recent failure from an address adds delay (capped)."""

    def __init__(self, base=0.2, cap=1.0, window=60.0):
        self.base = base
        self.cap = cap
        self.window = window
        self._lock = threading.Lock()
        self._failures = {}

    def delay(self, addr):
        now = time.time()
        with self._lock:
            recent = [t for t in self._failures.get(addr, ()) if now - t < self.window]
            self._failures[addr] = recent
            return min(self.cap, self.base * (1 + len(recent)))

    def failed(self, addr):
        with self._lock:
            self._failures.setdefault(addr, []).append(time.time())
            if len(self._failures) > 1024:  # bounded memory under a scan
                self._failures.clear()


class AgentAuthenticator(object):
    """An rpyc authenticator: ``(sock) -> (sock, credentials)`` or AuthenticationError.

    ``deadline`` (monotonic time) bounds the whole handshake, not each read (server.py)."""

    takes_deadline = True

    def __init__(self, token, version, ssl_context=None, log=None):
        self.token = token
        self.version = version
        self.ssl_context = ssl_context
        self.log = log
        self.limiter = FailureLimiter()

    def __call__(self, sock, deadline=None):
        try:
            peer = sock.getpeername()[0]
        except OSError:
            peer = "?"
        if deadline is None:
            deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            # from the first byte: the handshake writes small messages back to back (TLS 1.3's
            # session tickets, then the challenge), which Nagle holds for the peer's delayed ACK (40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):  # not TCP (a test's socketpair, a Unix socket)
            pass
        try:
            challenge = {"nonce": os.urandom(16).hex(), "auth": "hmac-sha256" if self.token else "none"}
            nonce = challenge["nonce"]
            sock.sendall(greeting(self.version, self.ssl_context is not None, rpyc=rpyc_version(),
                                  challenge=challenge))
            if self.ssl_context is not None:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            send_json_line(sock, challenge)  # again, inside TLS (clients that did not read it above wait for it)
            reply = read_json_line(sock, deadline)
            if self.token:
                cnonce = reply.get("cnonce")
                mac = reply.get("mac")
                if not (isinstance(cnonce, str) and isinstance(mac, str) and 16 <= len(cnonce) <= 128):
                    raise AuthenticationError("malformed handshake")
                if not compare_digest(mac.encode(), client_mac(self.token, nonce, cnonce).encode()):
                    self.limiter.failed(peer)
                    time.sleep(max(0.0, min(self.limiter.delay(peer), deadline - time.monotonic())))
                    send_json_line(sock, {"ok": False, "error": "the token was not accepted"})
                    if self.log:
                        self.log.warning("refused a connection from %s: wrong token", peer)
                    raise AuthenticationError("wrong token")
                proof = agent_proof(self.token, nonce, cnonce)
            else:
                proof = None
            user = reply.get("user")
            send_json_line(sock, {"ok": True, "proof": proof})
        except AuthenticationError:
            raise
        except (OSError, ValueError, EOFError, ssl.SSLError) as e:
            raise AuthenticationError("handshake failed: %s" % (e,))
        sock.settimeout(None)
        return sock, {"peer": peer, "user": user if isinstance(user, str) else None}


def make_server_ssl_context(certfile, keyfile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.options |= ssl.OP_NO_TICKET  # no client resumes a session: the tickets would be made and sent for nothing
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


def token_path():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "jupyter-remote-device", "token")


TOKEN_ENV = "JRD_AGENT_TOKEN"


def secure_token_file(path, warn=None):
    """A token file others can read is no secret: make it 0600 (and say so) before using it.

    Returns True when the mode had to be fixed."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_mode & 0o077:
        os.chmod(path, 0o600)
        if warn:
            warn("WARNING: the token file %s was readable by other users (mode %o): it is now 0600. "
                 "Anyone who read it can still use it: make a new token (delete the file and restart "
                 "the agent) if other people share this board." % (path, st.st_mode & 0o777))
        return True
    return False


def _warn_stderr(text):
    import sys
    sys.stderr.write("\n*** %s ***\n\n" % text)


def save_token(token, path=None):
    """Write the token (mode 0600, its folder 0700), replacing the file atomically."""
    path = path or token_path()
    d = os.path.dirname(path)
    if d and not os.path.isdir(d):
        os.makedirs(d, mode=0o700)
    tmp = path + ".jrd-new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_or_create_token(path=None, warn=_warn_stderr):
    """Reuse the saved token or create one (file mode 0600). Returns (token, created).

    A saved token file readable by others is made 0600 with a warning, never reused silently."""
    path = path or token_path()
    try:
        with open(path) as f:
            tok = f.read().strip()
        if tok:
            secure_token_file(path, warn)
            return tok, False
    except (IOError, OSError):
        pass
    tok = os.urandom(24).hex()
    save_token(tok, path)
    return tok, True
