"""Dial an agent: TCP (+TLS), the token handshake, then a tuned client-only rpyc connection.

Used by the server extension and the kernel. Standard library + rpyc only.
The connection uses ``rpyc.VoidService``: we expose nothing, so a board (even a
hostile one) cannot call into the Jupyter side.
"""
import errno
import json
import os
import socket
import ssl
import struct
import time
import zlib

import rpyc
from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream
from rpyc.utils.factory import connect_channel

from . import auth

IO_CHUNK = 1 << 20

CLIENT_CONFIG = {
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_pickle": False,
    "allow_setattr": False,
    "allow_delattr": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
    "instantiate_oldstyle_exceptions": False,
    "include_local_traceback": False,
    "include_local_version": False,
    "sync_request_timeout": 30,
}


class ConnectError(Exception):
    """Dialing failed; ``reason`` is one of the REST contract's codes."""

    def __init__(self, reason, message, kind=None):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message
        self.kind = kind


class TunedSocketStream(SocketStream):
    """SocketStream with a large IO chunk (rpyc's default re-slices at 64000 bytes)."""

    MAX_IO_CHUNK = IO_CHUNK


class BoundedChannel(Channel):
    """A Channel that refuses absurd frames: a peer (a hostile board) cannot make us buffer
    gigabytes by announcing a huge frame, nor inflate a zlib bomb."""

    MAX_FRAME = 64 << 20

    def recv(self):
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.MAX_FRAME:
            self.close()
            raise EOFError("the peer sent a %d-byte frame (limit %d): connection closed" % (length, self.MAX_FRAME))
        data = self.stream.read(length + len(self.FLUSHER))[:-len(self.FLUSHER)]
        if compressed:
            d = zlib.decompressobj()
            try:
                data = d.decompress(data, self.MAX_FRAME)
            except zlib.error as e:
                self.close()
                raise EOFError("the peer sent a corrupt frame: %s" % e)
            if d.unconsumed_tail:
                self.close()
                raise EOFError("the peer sent a frame inflating past %d bytes: connection closed" % self.MAX_FRAME)
        return data


class RemoteBaseException(Exception):
    """A peer raised SystemExit/KeyboardInterrupt/GeneratorExit: never let those loose here."""


def _safe_unboxer(conn):
    unbox = conn._unbox_exc

    def safe(raw):
        exc = unbox(raw)
        if not isinstance(exc, Exception):
            wrapped = RemoteBaseException("the board raised %s: %s" % (
                type(exc).__name__, str(exc)[:200] if exc.args else ""))
            wrapped._remote_tb = getattr(exc, "_remote_tb", "")
            return wrapped
        return exc

    return safe


def tune_socket(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
            except OSError:
                pass


def wrap_connection(sock, service=rpyc.VoidService, config=None):
    """Turn an authenticated socket into an rpyc connection: no compression, big IO chunk."""
    tune_socket(sock)
    cfg = dict(CLIENT_CONFIG)
    if config:
        cfg.update(config)
    conn = connect_channel(BoundedChannel(TunedSocketStream(sock), compress=False), service=service, config=cfg)
    conn._unbox_exc = _safe_unboxer(conn)
    return conn


def looks_like_rpyc_frame(head):
    """A stock rpyc (6.x) classic server speaks first with a channel frame: !LB header."""
    if len(head) < 5:
        return False
    length, compressed = struct.unpack("!LB", head[:5])
    return compressed in (0, 1) and 0 < length < (1 << 24)


def _remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def _dial(host, port, deadline):
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConnectError("unreachable", "Cannot resolve %s: %s" % (host, e.strerror or e))
    last = None
    for family, stype, proto, _, addr in infos:
        sock = socket.socket(family, stype, proto)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(addr)
            return sock
        except socket.timeout:
            sock.close()
            raise ConnectError("timeout", "No answer from %s:%s within the connect timeout" % (host, port))
        except ConnectionRefusedError:
            sock.close()
            last = ConnectError("refused", "Nothing is listening on %s:%s (connection refused). "
                                "Is the agent running on the board?" % (host, port))
        except OSError as e:
            sock.close()
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                last = ConnectError("unreachable", "%s:%s is unreachable: %s" % (host, port, e.strerror or e))
            else:
                last = ConnectError("unreachable", "Cannot reach %s:%s: %s" % (host, port, e.strerror or e))
    raise last or ConnectError("unreachable", "Cannot reach %s:%s" % (host, port))


def read_greeting(sock, host, port, deadline):
    """Read the agent's first line. Returns its JSON; classifies anything else."""
    head = bytearray()
    try:
        while len(head) < len(auth.MAGIC):
            sock.settimeout(_remaining(deadline))
            b = sock.recv(len(auth.MAGIC) - len(head))
            if not b:
                raise ConnectError("not-an-agent", "%s:%s closed the connection without a greeting: "
                                   "it is not a jupyter-remote-device agent" % (host, port))
            head += b
            if not auth.MAGIC.startswith(bytes(head[:len(auth.MAGIC)])):
                break
        if bytes(head) != auth.MAGIC:
            if looks_like_rpyc_frame(bytes(head)):
                raise ConnectError("not-an-agent", "%s:%s is a stock rpyc classic server, not the agent"
                                   % (host, port), kind="classic")
            raise ConnectError("not-an-agent", "Something else answers on %s:%s: it is not a "
                               "jupyter-remote-device agent" % (host, port))
        sock.settimeout(_remaining(deadline))
        line = auth.read_line(sock)
        _, _, payload = line.partition(b" ")
        return json.loads(payload.decode("utf-8"))
    except socket.timeout:
        raise ConnectError("timeout", "%s:%s accepted the connection but said nothing within the connect "
                           "timeout: it is not an agent, or the board is overloaded" % (host, port))
    except (ValueError, UnicodeDecodeError):
        raise ConnectError("protocol", "%s:%s sent a malformed greeting" % (host, port))
    except (OSError, EOFError) as e:
        raise ConnectError("protocol", "The connection to %s:%s broke during the greeting: %s" % (host, port, e))


def handshake(sock, host, port, token, deadline, tls=False, ssl_context=None, user=None):
    """Run the client side of auth.py's handshake. Returns the (possibly TLS) socket."""
    hello = read_greeting(sock, host, port, deadline)
    try:
        if hello.get("tls"):
            ctx = ssl_context
            if ctx is None:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            sock.settimeout(_remaining(deadline))
            sock = ctx.wrap_socket(sock, server_hostname=host if ctx.check_hostname else None)
        elif tls:
            raise ConnectError("protocol", "%s:%s does not offer TLS, but this board is configured for TLS"
                               % (host, port))
        sock.settimeout(_remaining(deadline))
        challenge = auth.read_json_line(sock)
        nonce = challenge.get("nonce")
        if not isinstance(nonce, str):
            raise ValueError("no nonce")
        cnonce = os.urandom(16).hex()
        reply = {"cnonce": cnonce, "user": user}
        if challenge.get("auth") == "hmac-sha256":
            if not token:
                raise ConnectError("auth-failed", "%s:%s requires a token and none was given. The agent "
                                   "prints its token when it starts (and keeps it in "
                                   "~/.config/jupyter-remote-device/token on the board)." % (host, port))
            reply["mac"] = auth.client_mac(token, nonce, cnonce)
        auth.send_json_line(sock, reply)
        sock.settimeout(_remaining(deadline))
        answer = auth.read_json_line(sock)
        if not answer.get("ok"):
            raise ConnectError("auth-failed", "The board at %s:%s refused the token (%s). Check the token "
                               "the agent printed when it started." % (host, port, answer.get("error", "refused")))
        if challenge.get("auth") == "hmac-sha256":
            proof = answer.get("proof")
            if not isinstance(proof, str) or proof != auth.agent_proof(token, nonce, cnonce):
                raise ConnectError("auth-failed", "%s:%s accepted the connection but could not prove it knows "
                                   "the token: it may be an impostor" % (host, port))
        return sock, hello
    except socket.timeout:
        raise ConnectError("timeout", "The handshake with %s:%s did not finish within the connect timeout"
                           % (host, port))
    except ssl.SSLError as e:
        raise ConnectError("protocol", "TLS with %s:%s failed: %s" % (host, port, e))
    except (ValueError, UnicodeDecodeError):
        raise ConnectError("protocol", "%s:%s broke the handshake protocol" % (host, port))
    except (OSError, EOFError):
        raise ConnectError("auth-failed" if token else "protocol",
                           "%s:%s closed the connection during the handshake (wrong token?)" % (host, port))


def connect(host, port, token=None, timeout=5.0, tls=False, ssl_context=None, user=None,
            sync_request_timeout=30, service=rpyc.VoidService):
    """A new authenticated, tuned rpyc connection to the agent at host:port."""
    deadline = time.monotonic() + float(timeout)
    sock = _dial(host, int(port), deadline)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock, hello = handshake(sock, host, port, token, deadline, tls=tls, ssl_context=ssl_context, user=user)
        from ..link.rpyc_family import agent_rpyc_problem
        problem = agent_rpyc_problem(hello, "%s:%s" % (host, port))
        if problem:
            raise ConnectError("too-old", problem)
        sock.settimeout(None)
        conn = wrap_connection(sock, service=service, config={"sync_request_timeout": sync_request_timeout})
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise
    conn._jrd_hello = hello
    return conn


def probe(host, port, timeout=2.0):
    """What answers on host:port? ``{"kind": "agent"|"classic"|None, "version"?, "tls"?}``.

    Raises ConnectError for refused / unreachable / timeout (a silent port).
    """
    deadline = time.monotonic() + float(timeout)
    sock = _dial(host, int(port), deadline)
    try:
        hello = read_greeting(sock, host, port, deadline)
        return {"kind": "agent", "version": hello.get("version"), "tls": bool(hello.get("tls"))}
    except ConnectError as e:
        if e.kind == "classic":
            return {"kind": "classic"}
        if e.reason == "not-an-agent":
            return {"kind": None}
        raise
    finally:
        sock.close()
