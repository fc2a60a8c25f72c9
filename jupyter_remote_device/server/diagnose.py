"""The connection doctor: ``POST diagnose`` and ``POST devices/{id}/diagnose``.

Walks every step from the name to the agent's version and says, for each, what it found
and what to check: ``{"ok", "steps": [{"step", "ok": true | false | null, "message",
"hint"?}]}``. ``null`` is "not checked" (an earlier step failed) or "does not apply".
It dials only addresses ``allowed_networks`` permits, waits at most ``connect_timeout``
per step, and reads at most a few bytes of whatever answers (it is not trusted).
"""
import errno
import ipaddress
import json
import socket
import time

import tornado.web
from jupyter_server.auth.decorator import authorized

from .. import __version__, link
from ..link import rpyc_family, wire
from .errors import ApiError, bad_request

STEPS = ("resolve", "route", "tcp", "protocol", "tls", "auth", "version")
AGENT_PORT = 18861
NEEDED_FEATURES = ("info", "exec", "files")


def _step(step, ok, message, hint=None):
    d = {"step": step, "ok": ok, "message": message}
    if hint:
        d["hint"] = hint
    return d


def _printable(data):
    text = data[:48].decode("latin-1")
    return "".join(c if 32 <= ord(c) < 127 else "." for c in text)


def _version_tuple(v):
    out = []
    for part in str(v).split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out + [0] * (3 - len(out)))


class Doctor(object):
    def __init__(self, manager, host, port, token=None, tls=False):
        self.manager = manager
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.timeout = float(manager.connect_timeout)
        self.steps = []
        self.ip = None
        self.hello = None
        self.kind = None

    def run(self):
        for name in STEPS:
            fn = getattr(self, "_" + name)
            try:
                res = fn()
            except Exception as e:  # a step must never break the report
                res = _step(name, False, "This check failed unexpectedly: %s: %s" % (type(e).__name__, e))
            self.steps.append(res)
            if res["ok"] is False:
                break
        done = {s["step"] for s in self.steps}
        for name in STEPS:
            if name not in done:
                self.steps.append(_step(name, None, "Not checked: an earlier step failed."))
        return {"ok": all(s["ok"] is not False for s in self.steps) and self.kind is not None,
                "host": self.host, "port": self.port, "kind": self.kind, "steps": self.steps}

    # -- steps ---------------------------------------------------------------
    def _resolve(self):
        try:
            ipaddress.ip_address(self.host)
            self.addrs = [self.host]
            return _step("resolve", True, "%s is an IP address: nothing to look up." % self.host)
        except ValueError:
            pass
        t0 = time.monotonic()
        try:
            infos = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as e:
            hint = ("Check the spelling. Names ending in .local need mDNS (Avahi on Linux, Bonjour on "
                    "Windows/macOS) on this machine; WSL2, Docker and many VPNs do not pass mDNS. "
                    "Use the board's IP address instead (shown on its screen, by `hostname -I` on the "
                    "board, or in your router's list of clients).")
            return _step("resolve", False, "Cannot resolve %s: %s." % (self.host, e.strerror or e), hint)
        addrs = []
        for info in infos:
            a = info[4][0].split("%")[0]
            if a not in addrs:
                addrs.append(a)
        self.addrs = addrs
        return _step("resolve", True, "%s resolves to %s (%.0f ms)." % (
            self.host, ", ".join(addrs[:4]), (time.monotonic() - t0) * 1000))

    def _route(self):
        allowed = [a for a in self.addrs if self.manager.is_allowed(a)]
        if not allowed:
            nets = ", ".join(map(str, self.manager.allowed_networks))
            return _step("route", False, "%s is outside the networks this server may dial "
                         "(DeviceManager.allowed_networks = %s)." % (", ".join(self.addrs[:4]), nets),
                         "Ask whoever runs this Jupyter server to add the boards' subnet to "
                         "DeviceManager.allowed_networks, or use a board inside the allowed networks.")
        self.ip = allowed[0]
        addr = ipaddress.ip_address(self.ip)
        if addr.is_loopback:
            return _step("route", True, "%s is this machine (loopback)." % self.ip)
        fam = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            s.connect((self.ip, self.port))  # UDP connect: picks a route, sends nothing
            local = s.getsockname()[0]
        except OSError as e:
            return _step("route", False, "This machine has no route to %s: %s." % (self.ip, e.strerror or e),
                         "The Jupyter machine is not on the board's network. Is it on another Wi-Fi, a VPN, "
                         "or inside WSL2/Docker (NAT)? The board and the server must reach each other; "
                         "try `ping %s` from the Jupyter machine." % self.ip)
        finally:
            s.close()
        same = ""
        try:
            if fam == socket.AF_INET and ipaddress.ip_network(local + "/24", strict=False) == \
                    ipaddress.ip_network(self.ip + "/24", strict=False):
                same = " (same /24 subnet)"
        except ValueError:
            pass
        return _step("route", True, "%s is reached from this machine's address %s%s." % (self.ip, local, same))

    def _tcp(self):
        fam = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        t0 = time.monotonic()
        try:
            s.connect((self.ip, self.port))
        except socket.timeout:
            s.close()
            return _step("tcp", False, "No answer from %s:%d within %g s (the packets vanish)." % (
                self.ip, self.port, self.timeout),
                "Something drops the connection silently: a firewall on the board (allow the port, e.g. "
                "`sudo ufw allow %d/tcp`) or in between; Wi-Fi client (AP) isolation, common on guest, "
                "hotel and campus networks (devices cannot reach each other: try `ping %s`; use a wired "
                "port or a hotspot); or the board is off or now has another address." % (self.port, self.ip))
        except ConnectionRefusedError:
            s.close()
            other = "" if self.port == AGENT_PORT else " (the agent's default port is %d)" % AGENT_PORT
            return _step("tcp", False, "Nothing listens on %s:%d: the board refused the connection." % (
                self.ip, self.port),
                "The board is up, but no agent listens on port %d%s. Start it on the board: "
                "`python3 -m jupyter_remote_device.agent` (it prints its port and token); MaixPy3 boards "
                "run rpyc on 18812." % (self.port, other))
        except OSError as e:
            s.close()
            if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
                return _step("tcp", False, "%s is unreachable: %s." % (self.ip, e.strerror or e),
                             "Nobody answers at that address on the local network: the board is off, "
                             "asleep, or got another address (check your router's client list).")
            return _step("tcp", False, "Cannot connect to %s:%d: %s." % (self.ip, self.port, e.strerror or e))
        self.sock = s
        return _step("tcp", True, "%s:%d accepts TCP connections (%.0f ms)." % (
            self.ip, self.port, (time.monotonic() - t0) * 1000))

    def _protocol(self):
        s = self.sock
        try:
            head = self._read_some(s, min(self.timeout / 2.0, 2.0))
            if head is None:  # silent: an rpyc server waits for the client; so does an HTTP server
                try:
                    s.sendall(rpyc_family.ping_frame(rpyc_family.last_seen(self.ip, self.port) or rpyc_family.OLD))
                except OSError:
                    pass
                head = self._read_some(s, min(self.timeout / 2.0, 2.0))
                if head is None:
                    return _step("protocol", False, "%s:%d accepts connections but says nothing, even when "
                                 "spoken to." % (self.ip, self.port),
                                 "This is neither the agent (which greets at once) nor an rpyc server. Some "
                                 "other program holds this port, or the board is overloaded. Check what "
                                 "listens there (`ss -ltnp` on the board).")
        finally:
            s.close()
        if head == b"":
            return _step("protocol", False, "%s:%d closes the connection without a word." % (self.ip, self.port),
                         "Not an agent: something accepts and hangs up (a proxy, a port forwarder with "
                         "nothing behind it, or a service limiting clients).")
        if head.startswith(wire.MAGIC):
            line = head.split(b"\n", 1)[0]
            try:
                self.hello = json.loads(line.split(b" ", 1)[1].decode("utf-8"))
                if not isinstance(self.hello, dict):
                    raise ValueError
            except (IndexError, ValueError, UnicodeDecodeError):
                return _step("protocol", False, "%s:%d greets like an agent but the greeting is malformed." % (
                    self.ip, self.port), "A damaged or foreign agent: reinstall it on the board.")
            self.kind = "agent"
            return _step("protocol", True, "A jupyter-remote-device agent answers (version %s)." % (
                str(self.hello.get("version"))[:40]))
        family = rpyc_family.family_of(head)
        if family is not None or wire.looks_like_rpyc_frame(head):
            self.kind = "classic"
            return _step("protocol", True, "A stock rpyc classic server answers (%s, as MaixPy3 boards run on "
                         "18812): it works without the agent, which the server sends over." % (
                             rpyc_family.FAMILY_NAMES.get(family, "rpyc")))
        if head.startswith(b"SSH-"):
            banner = _printable(head.split(b"\r", 1)[0].split(b"\n", 1)[0])
            return _step("protocol", False, "An SSH server answers here (%s), not the agent." % banner,
                         "Use Add device… → SSH with user@%s:%d (the server then starts the agent for you), "
                         "or the agent's own port %d." % (self.host, self.port, AGENT_PORT))
        if head.startswith(b"HTTP/") or head[:1] == b"<":
            server = ""
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"server:"):
                    server = " (%s)" % _printable(line[7:].strip())
            return _step("protocol", False, "An HTTP (web) server answers here%s, not the agent." % server,
                         "This port serves web pages (MaixPy3's MJPEG stream is on 18811, Jupyter on 8888). "
                         "The agent listens on %d by default." % AGENT_PORT)
        return _step("protocol", False, "Something else answers on %s:%d: %r…" % (
            self.ip, self.port, _printable(head)),
            "Not an agent nor an rpyc server. Check the port: the agent's default is %d." % AGENT_PORT)

    def _read_some(self, s, wait):
        """Up to 512 bytes (what arrives first), b"" on close, None when silent."""
        deadline = time.monotonic() + wait
        data = b""
        while len(data) < 512:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(512 - len(data))
            except socket.timeout:
                break
            except OSError:
                return data
            if not b:
                return data
            data += b
            if b"\n" in data:
                break
        return data or None

    def _tls(self):
        if self.kind == "classic":
            return _step("tls", None, "rpyc classic servers have no encryption: the link is plain.")
        if self.hello.get("tls"):
            return _step("tls", True, "The agent offers TLS: the link will be encrypted (checked in the next step).")
        if self.tls:
            return _step("tls", False, "This board is configured for TLS, but the agent does not offer it.",
                         "Start the agent with --certfile/--keyfile, or add the board without TLS.")
        return _step("tls", None, "The agent does not offer TLS: the link is not encrypted.",
                     "Start the agent with --certfile/--keyfile to encrypt the link.")

    def _auth(self):
        if self.kind == "classic":
            return _step("auth", None, "rpyc classic servers have no authentication: anyone who reaches the "
                         "port can run code on the board.", "Prefer the agent (or SSH) on shared networks.")
        try:
            conn = link.connect(self.ip, self.port, token=self.token, timeout=self.timeout, tls=self.tls,
                                  user=self.manager.user_name)
        except link.LinkError as e:
            if e.reason == "auth-failed":
                hint = ("The agent prints its token when it starts (JRD-AGENT TOKEN …) and keeps it in "
                        "~/.config/jupyter-remote-device/token on the board. Give it in Add device… "
                        "(or DeviceManager.tokens).")
                return _step("auth", False, ("No token was given, and the board requires one." if not self.token
                                             else "The board refused the token: it is not the agent's token."), hint)
            if "TLS" in e.message:
                self.steps[-1] = _step("tls", False, e.message, "The agent's certificate or TLS setup is broken: "
                                       "check --certfile/--keyfile on the board.")
                return _step("auth", None, "Not checked: TLS failed.")
            return _step("auth", False, e.message)
        self.conn = conn
        return _step("auth", True, "The board accepted the token and proved it knows it too." if self.token else
                     "The agent accepted the connection without a token (started with --insecure-no-auth).")

    def _version(self):
        if self.kind == "classic":
            return _step("version", None, "The agent code is sent by this server (version %s) when it connects."
                         % __version__)
        conn = self.conn
        try:
            from .session import json_text
            hello = json_text(conn.root.hello(), "its hello")
        except Exception as e:
            return _step("version", False, "The agent does not answer its hello call: %s" % e,
                         "A damaged or very old agent: update it on the board.")
        finally:
            try:
                conn.close()
            except Exception:
                pass
        theirs = str(hello.get("agent_version"))[:40]
        features = hello.get("features") if isinstance(hello.get("features"), list) else []
        missing = [f for f in NEEDED_FEATURES if f not in features]
        update = ("Update the agent on the board to %s: copy this server's jupyter_remote_device/agent/ "
                  "folder there (or `pip install -U jupyter-remote-device`), then restart it." % __version__)
        if missing:
            return _step("version", False, "The agent (version %s) lacks %s." % (theirs, ", ".join(missing)), update)
        mine_t, theirs_t = _version_tuple(__version__), _version_tuple(theirs)
        if theirs_t[:2] < mine_t[:2]:
            return _step("version", False, "The board runs agent %s; this server is %s (too old)." % (
                theirs, __version__), update)
        extra = [f for f in ("terminal", "log", "pip") if f not in features]
        if theirs_t != mine_t:
            return _step("version", True, "Agent %s, server %s: compatible%s." % (
                theirs, __version__, "; no %s on this agent" % ", ".join(extra) if extra else ""))
        return _step("version", True, "Agent %s, the same as this server." % theirs)


def diagnose(manager, host, port, token=None, tls=False):
    """BLOCKING: the doctor's report for host:port."""
    return Doctor(manager, host, port, token=token, tls=tls).run()


def _ssh_report(manager, dev):
    """A board reached over SSH: the path to its SSH server (the agent sits behind the tunnel)."""
    doc = Doctor(manager, dev.ssh.get("host") or dev.host, int(dev.ssh.get("port") or 22))
    report = doc.run()
    for s in report["steps"]:
        if s["step"] == "protocol" and s["ok"] is False and "SSH server answers" in s["message"]:
            s["ok"], s["message"] = True, s["message"].replace(", not the agent", ": the board is reached over SSH")
            s.pop("hint", None)
            for later in report["steps"]:
                if later["step"] in ("tls", "auth", "version"):
                    later.update({"ok": None, "message": "Checked when connecting over SSH (host key, login, "
                                  "agent)."})
    report["ok"] = all(s["ok"] is not False for s in report["steps"])
    report["kind"] = "ssh"
    return report


def routes(ID):
    from .handlers import BaseHandler
    from .manager import normalize_host, validate_port

    async def run(handler, fn, *args):
        m = handler.manager
        # every step is bounded by connect_timeout; the whole report by a few of them
        return await m.run_with_timeout(fn, *args, timeout=m.connect_timeout * 4 + 6)

    class DiagnoseHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        async def post(self):
            body = self.body_json()
            host = normalize_host(body.get("host"))
            port = validate_port(body.get("port", AGENT_PORT))
            token = body.get("token")
            if token is not None and (not isinstance(token, str) or len(token) > 1024):
                raise bad_request("token must be a string")
            tls = body.get("tls", False)
            if not isinstance(tls, bool):
                raise bad_request("tls must be true or false")
            self.reply(await run(self, diagnose, self.manager, host, port, token or None, tls))

    class DeviceDiagnoseHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        async def post(self, device_id):
            dev = self.manager.get(device_id)
            body = self.body_json(required=False)
            token = body.get("token", dev.token)
            if token is not None and (not isinstance(token, str) or len(token) > 1024):
                raise bad_request("token must be a string")
            if dev.ssh:
                report = await run(self, _ssh_report, self.manager, dev)
            else:
                report = await run(self, diagnose, self.manager, dev.host, dev.port, token or None, dev.tls)
            report["device_id"] = dev.id
            self.reply(report)

    return [(r"/diagnose", DiagnoseHandler), (r"/devices/%s/diagnose" % ID, DeviceDiagnoseHandler)]


__all__ = ["diagnose", "routes", "STEPS", "ApiError"]
