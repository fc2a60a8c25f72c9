"""Dial a board: the network policy (``allowed_networks``, ``connect_timeout``, tokens), TCP,
the agent's greeting and token handshake (+TLS), then a tuned, guarded client-only rpyc connection.

``dial`` is the one entry point the server and the kernel use: it probes what answers when it
is not known yet and connects to an agent or, through ``classic.py``, to a stock rpyc classic
server. Our side is ``rpyc.VoidService`` (or ``ClassicClient``): it exposes nothing, so a board,
even a hostile one, cannot call into the Jupyter side.
"""
import errno
import hashlib
import hmac
import ipaddress
import os
import socket
import ssl
import time

import rpyc
from rpyc.core import consts, netref
from rpyc.core.protocol import Connection
from rpyc.utils.factory import connect_channel

from ..agent import auth, wire
from .checks import guard
from .errors import LinkError

ANY_NETWORK = ("0.0.0.0/0", "::/0")


class Policy(object):
    """Where we may dial and how long we wait: the same settings for the server and the kernel."""

    def __init__(self, allowed_networks=ANY_NETWORK, connect_timeout=5.0, tokens=None, user=None, log=None):
        self.connect_timeout = float(connect_timeout)
        self.tokens = dict(tokens or {})
        self.user = user
        self.networks = []
        for cidr in allowed_networks:
            try:
                self.networks.append(ipaddress.ip_network(str(cidr), strict=False))
            except ValueError:
                if log is not None:
                    log.error("remote-device: ignoring invalid allowed_networks entry %r", cidr)

    def token_for(self, host, port):
        return self.tokens.get("%s:%d" % (host, int(port))) or self.tokens.get(host)

    def is_allowed(self, ip):
        addr = ipaddress.ip_address(str(ip).split("%")[0])
        return any(addr in net for net in self.networks)

    def resolve(self, host, port):
        """BLOCKING: the first address of host that allowed_networks permits (LinkError otherwise)."""
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise LinkError("unreachable", "Cannot resolve %s: %s" % (host, e.strerror or e))
        for info in infos:
            ip = info[4][0].split("%")[0]
            if self.is_allowed(ip):
                return ip
        raise LinkError("not-allowed", "%s resolves outside the networks this server may dial "
                        "(DeviceManager.allowed_networks)" % host)


def remaining(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def tcp(host, port, deadline):
    """BLOCKING: a connected TCP socket to host:port before ``deadline`` (LinkError otherwise)."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise LinkError("unreachable", "Cannot resolve %s: %s" % (host, e.strerror or e))
    last = None
    for family, stype, proto, _, addr in infos:
        sock = socket.socket(family, stype, proto)
        try:
            sock.settimeout(remaining(deadline))
            sock.connect(addr)
            return sock
        except socket.timeout:
            sock.close()
            raise LinkError("timeout", "No answer from %s:%s within the connect timeout" % (host, port))
        except ConnectionRefusedError:
            sock.close()
            last = LinkError("refused", "Nothing is listening on %s:%s (connection refused). "
                             "Is the agent running on the board?" % (host, port))
        except OSError as e:
            sock.close()
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                last = LinkError("unreachable", "%s:%s is unreachable: %s" % (host, port, e.strerror or e))
            else:
                last = LinkError("unreachable", "Cannot reach %s:%s: %s" % (host, port, e.strerror or e))
    raise last or LinkError("unreachable", "Cannot reach %s:%s" % (host, port))


def close_quietly(obj):
    try:
        obj.close()
    except Exception:
        pass


def read_greeting(sock, host, port, deadline):
    """Read the agent's first line. Returns its JSON; classifies anything else."""
    magic = wire.MAGIC
    head = bytearray()
    try:
        while len(head) < len(magic):
            sock.settimeout(remaining(deadline))
            b = sock.recv(len(magic) - len(head))
            if not b:
                raise LinkError("not-an-agent", "%s:%s closed the connection without a greeting: "
                                "it is not a jupyter-remote-device agent" % (host, port))
            head += b
            if not magic.startswith(bytes(head[:len(magic)])):
                break
        if bytes(head) != magic:
            if wire.looks_like_rpyc_frame(bytes(head)):
                raise LinkError("not-an-agent", "%s:%s is a stock rpyc classic server, not the agent"
                                % (host, port), kind="classic")
            raise LinkError("not-an-agent", "Something else answers on %s:%s: it is not a "
                            "jupyter-remote-device agent" % (host, port))
        sock.settimeout(remaining(deadline))
        return wire.parse_greeting(auth.read_line(sock))
    except socket.timeout:
        raise LinkError("timeout", "%s:%s accepted the connection but said nothing within the connect "
                        "timeout: it is not an agent, or the board is overloaded" % (host, port))
    except (ValueError, UnicodeDecodeError):
        raise LinkError("protocol", "%s:%s sent a malformed greeting" % (host, port))
    except (OSError, EOFError) as e:
        raise LinkError("protocol", "The connection to %s:%s broke during the greeting: %s" % (host, port, e))


_PINNING_CONTEXT = []


def _pinning_context():
    """The client context for boards' self-signed certificates: no CA check (the fingerprint is
    pinned instead, trust on first use), so no CA store either: create_default_context() would load
    the system's CAs (~20 ms of CPU) on every dial. Made once; an SSLContext is safe to share."""
    if not _PINNING_CONTEXT:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _PINNING_CONTEXT.append(ctx)
    return _PINNING_CONTEXT[0]


def _client_tls(sock, host, ssl_context, deadline):
    ctx = ssl_context if ssl_context is not None else _pinning_context()
    sock.settimeout(remaining(deadline))
    return ctx.wrap_socket(sock, server_hostname=host if ctx.check_hostname else None)


def fingerprint_of(sock):
    """The SHA-256 fingerprint of the peer's TLS certificate, as ``AA:BB:...`` (None without TLS)."""
    getpeercert = getattr(sock, "getpeercert", None)
    der = getpeercert(binary_form=True) if getpeercert is not None else None
    if not der:
        return None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def same_fingerprint(a, b):
    def norm(x):
        return str(x or "").replace(":", "").strip().lower()
    return norm(a) == norm(b)


def _reply(challenge, token, user, cnonce, host, port):
    """Our answer to a board's challenge; LinkError ``auth-failed`` where the token and the board's
    way of authenticating do not go together (no downgrade)."""
    reply = {"cnonce": cnonce, "user": user}
    if token and challenge.get("auth") != "hmac-sha256":
        raise LinkError("auth-failed", "%s:%s offers no authentication, but this board has a token: "
                        "refused (a board with a token must prove it knows it)" % (host, port))
    if challenge.get("auth") == "hmac-sha256":
        if not token:
            raise LinkError("auth-failed", "%s:%s requires a token and none was given. The agent "
                            "prints its token when it starts (and keeps it in "
                            "~/.config/jupyter-remote-device/token on the board)." % (host, port))
        reply["mac"] = auth.client_mac(token, challenge["nonce"], cnonce)
    return reply


def handshake(sock, host, port, token, deadline, tls=False, ssl_context=None, user=None, fingerprint=None,
              before_answer=None):
    """Run the client side of auth.py's handshake. Returns (the possibly TLS socket, greeting).

    ``before_answer(sock, hello)``, when given, runs once the reply is sent and before the board's
    answer is read: what it sends travels in the same round trip (the board reads the handshake
    byte by byte and never past it, so rpyc's first request waits in its socket until the board
    accepts us; a refused connection never reads it).

    No downgrade: with a token, a board that offers no authentication (or cannot prove it knows
    the token) is refused. With ``fingerprint`` (pinned on first use), a TLS certificate with
    another fingerprint is refused with ``cert-changed``, and a board that stopped offering TLS
    with ``protocol``. The greeting returned carries ``fingerprint`` when TLS is on.
    """
    hello = read_greeting(sock, host, port, deadline)
    try:
        if hello.get("tls"):
            sock = _client_tls(sock, host, ssl_context, deadline)
            seen = fingerprint_of(sock)
            hello["fingerprint"] = seen
            if fingerprint and not same_fingerprint(seen, fingerprint):
                raise LinkError("cert-changed", "The TLS certificate of %s:%s has changed (it was %s, now %s). "
                                "If the board was reinstalled or made a new certificate, accept the new one "
                                "explicitly (POST devices/{id}/session {\"accept_certificate\": true}); "
                                "otherwise something is in between." % (host, port, fingerprint, seen))
        elif tls or fingerprint:
            raise LinkError("protocol", "%s:%s does not offer TLS, but this board is configured for TLS%s"
                            % (host, port, " (its certificate was pinned)" if fingerprint else ""))
        early = hello.pop("challenge", None)  # told in the greeting: answered without waiting for it again
        if not (isinstance(early, dict) and isinstance(early.get("nonce"), str) and 0 < len(early["nonce"]) <= 128):
            early = None
        if early is None:
            sock.settimeout(remaining(deadline))
            challenge = auth.read_json_line(sock)
        else:
            challenge = early
        nonce = challenge.get("nonce")
        if not isinstance(nonce, str):
            raise ValueError("no nonce")
        cnonce = os.urandom(16).hex()
        auth.send_json_line(sock, _reply(challenge, token, user, cnonce, host, port))
        if before_answer is not None:
            before_answer(sock, hello)
        if early is not None:  # the same challenge comes again inside TLS
            sock.settimeout(remaining(deadline))
            again = auth.read_json_line(sock)
            if again.get("nonce") != nonce or again.get("auth") != challenge.get("auth"):
                raise LinkError("protocol", "%s:%s changed its challenge during the handshake" % (host, port))
        sock.settimeout(remaining(deadline))
        answer = auth.read_json_line(sock)
        if not answer.get("ok"):
            raise LinkError("auth-failed", "The board at %s:%s refused the token (%s). Check the token "
                            "the agent printed when it started." % (host, port, answer.get("error", "refused")))
        if token:
            proof = answer.get("proof")
            if not isinstance(proof, str) or not hmac.compare_digest(proof, auth.agent_proof(token, nonce, cnonce)):
                raise LinkError("auth-failed", "%s:%s accepted the connection but could not prove it knows "
                                "the token: it may be an impostor" % (host, port))
        return sock, hello
    except LinkError:
        raise
    except socket.timeout:
        raise LinkError("timeout", "The handshake with %s:%s did not finish within the connect timeout"
                        % (host, port))
    except ssl.SSLError as e:
        raise LinkError("protocol", "TLS with %s:%s failed: %s" % (host, port, e))
    except (ValueError, UnicodeDecodeError):
        raise LinkError("protocol", "%s:%s broke the handshake protocol" % (host, port))
    except (OSError, EOFError):
        raise LinkError("auth-failed" if token else "protocol",
                        "%s:%s closed the connection during the handshake (wrong token?)" % (host, port))


def rpyc_over(sock, service=rpyc.VoidService, **config):
    """An rpyc connection over a connected socket: the shared channel and config, guarded."""
    conn = connect_channel(wire.channel(sock), service=service, config=wire.rpyc_config(**config))
    return guard(conn)


class AgentRoot(object):
    """What an agent's root netref says its ``__class__`` is, without asking the board."""


_ROOT_CLASS = []


def _root_class():
    """The netref class of the agent's root, made here instead of asking the board for its
    methods (rpyc's HANDLE_INSPECT: a round trip and ~3 KB per connection, for a list a board
    could make up). A netref sends every attribute to the board anyway; the class only holds
    Python's special methods, which nothing here calls on the root."""
    if not _ROOT_CLASS:
        _ROOT_CLASS.append(netref.class_factory((__name__ + ".AgentRoot", 0, 0), ()))
    return _ROOT_CLASS[0]


class AgentConnection(Connection):
    """The client connection to an agent: its ``root`` costs one round trip (GETROOT, no
    INSPECT), and that round trip may already be under way (``request_root``)."""

    _jrd_root_next = False
    _jrd_root_request = None

    def request_root(self, timeout=None):
        """Send GETROOT now; ``root`` collects the answer."""
        self._jrd_root_next = True
        self._jrd_root_request = self.async_request(consts.HANDLE_GETROOT, timeout=timeout)

    @property
    def root(self):
        if self._remote_root is None:
            pending, self._jrd_root_request = self._jrd_root_request, None
            try:
                if pending is None:
                    self._jrd_root_next = True
                    self._remote_root = self.sync_request(consts.HANDLE_GETROOT)
                else:
                    self._remote_root = pending.value
            finally:
                self._jrd_root_next = False
        return self._remote_root

    def _netref_factory(self, id_pack):
        if self._jrd_root_next:  # the answer to GETROOT
            self._jrd_root_next = False
            return _root_class()(self, id_pack)
        return Connection._netref_factory(self, id_pack)


class AgentClient(rpyc.VoidService):
    """Our side of an agent connection: exposes nothing (VoidService)."""
    _protocol = AgentConnection


def connect(host, port, token=None, timeout=5.0, tls=False, ssl_context=None, user=None,
            sync_request_timeout=30, fingerprint=None):
    """BLOCKING: a new authenticated, tuned rpyc connection to the agent at host:port.

    ``conn._jrd_hello`` is the agent's greeting (with ``fingerprint`` under TLS)."""
    deadline = time.monotonic() + float(timeout)
    sock = tcp(host, int(port), deadline)
    made = []

    def start_rpyc(tls_sock, hello):
        """Behind the handshake's reply: the rpyc connection and its GETROOT, in the same round trip."""
        from .rpyc_family import agent_rpyc_problem
        problem = agent_rpyc_problem(hello, "%s:%s" % (host, port))
        if problem:
            raise LinkError("too-old", problem)
        conn = rpyc_over(tls_sock, service=AgentClient, sync_request_timeout=sync_request_timeout)
        made.append(conn)
        tls_sock.settimeout(remaining(deadline))
        conn.request_root(timeout=sync_request_timeout)

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock, hello = handshake(sock, host, port, token, deadline, tls=tls, ssl_context=ssl_context, user=user,
                                fingerprint=fingerprint, before_answer=start_rpyc)
        sock.settimeout(None)
    except BaseException:
        for conn in made:
            close_quietly(conn)
        close_quietly(sock)
        raise
    conn = made[0]
    conn._jrd_hello = hello
    return conn


def dial(host, port, policy, kind=None, token=None, tls=False, timeout=None, on_kind=None,
         sync_request_timeout=30, classic_root=None, fingerprint=None):
    """BLOCKING: a connection to whatever board answers on host:port, within ``policy``.

    ``kind`` is what answered last time (``"agent"``, ``"classic"`` or None = probe first: a
    silent rpyc classic server would look like a timeout to the agent's dial). ``on_kind(kind)``
    is told what was found. Returns an agent connection or a ``classic.ClassicConnection``
    (both have ``root`` with the agent's wire methods). Raises LinkError.
    """
    from . import classic
    from .probe import probe

    timeout = float(timeout or policy.connect_timeout)
    ip = policy.resolve(host, port)
    token = token if token is not None else policy.token_for(host, port)

    def found(k):
        if on_kind is not None:
            on_kind(k)
        return k

    if kind is None:
        kind = found(probe(ip, port, timeout=min(2.0, timeout)).get("kind"))
    options = {} if classic_root is None else {"root": classic_root}
    if kind == "classic":  # stock rpyc_classic servers wait for us to speak
        try:
            return classic.connect_classic(ip, port, timeout=timeout, sync_request_timeout=sync_request_timeout,
                                           **options)
        except LinkError as e:
            if e.reason != "protocol":
                raise
            found(None)  # something else answers now: try the agent
    try:
        return connect(ip, port, token=token, timeout=timeout, tls=tls, user=policy.user,
                       sync_request_timeout=sync_request_timeout, fingerprint=fingerprint)
    except LinkError as e:
        if e.kind != "classic":
            raise
    found("classic")  # a stock rpyc classic server that speaks first: drive it with the agent code sent over
    return classic.connect_classic(ip, port, timeout=timeout, sync_request_timeout=sync_request_timeout, **options)
