"""Board targets and the one backend the kernel runs code through.

``Backend`` dials with ``link.dial`` (the agent, or a stock rpyc classic server driven with the
agent's own code, under the same ``Policy`` as the server: allowed_networks, tokens,
connect_timeout) and speaks the agent's wire methods on ``conn.root``; every answer passes
``link.checks``. A second connection carries interrupts (the first may be inside a poll).
The saved boards (``%connect NAME``) are ``link.saved``'s.
"""
import re
import threading

from ..link import LinkError, Policy, calls, dial, json_text, plain, saved
from ..link.classic import kind_of
from ..link.errors import is_connection_error
from ..link.heartbeat import Heartbeat, cut

AGENT_PORT = 18861
CLASSIC_PORT = 18812
INTERRUPT_TIMEOUT = 5.0

BoardError = LinkError  # what the kernel shows: a contract reason and a message

devices_file = saved.devices_file
load_devices = saved.load
find_device = saved.find
find_by_address = saved.find_by_address
device_id_for = saved.device_id_for


def split_host_port(text, default_port):
    """'host', 'host:port', '[v6]:port', 'v6' -> (host, port). ValueError when absurd."""
    text = text.strip()
    if not text:
        raise ValueError("no host given")
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", text)
    if m:
        host, port = m.group(1), m.group(2)
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, None
    if port is None or port == "":
        port = default_port
    try:
        port = int(port)
    except ValueError:
        raise ValueError("%r is not a port number" % (port,))
    if not 0 < port < 65536:
        raise ValueError("port %d is out of range" % port)
    if not re.match(r"^[A-Za-z0-9_.:%-]+$", host):
        raise ValueError("%r is not a host name or address" % (host,))
    return host, port


class Target(object):
    """Where to connect: host, port, token, and the saved board's id/name if known."""

    def __init__(self, host, port, token=None, name=None, device_id=None, tls=False, fingerprint=None):
        self.tls = bool(tls)
        self.fingerprint = fingerprint  # the TLS certificate the server pinned (saved boards)
        self.host = host
        self.port = int(port)
        self.token = token
        self.name = name
        self.device_id = device_id

    @property
    def address(self):
        if ":" in self.host:
            return "[%s]:%d" % (self.host, self.port)
        return "%s:%d" % (self.host, self.port)

    @property
    def label(self):
        if self.name:
            return "%s (%s)" % (self.name, self.address)
        return self.address

    def key(self):
        return (self.host, self.port)


def target_from_device(d):
    return Target(d["host"], int(d.get("port") or AGENT_PORT), token=d.get("token") or None,
                  name=d.get("name") or None, device_id=d.get("id"), tls=bool(d.get("tls")),
                  fingerprint=d.get("fingerprint") if isinstance(d.get("fingerprint"), str) else None)


def with_saved_token(target):
    """Fill token/name/id from the saved boards when the address matches one."""
    d = find_by_address(target.host, target.port)
    if d is not None:
        if target.token is None and d.get("token"):
            target.token = d.get("token")
        target.name = target.name or d.get("name")
        target.device_id = target.device_id or d.get("id")
        target.tls = target.tls or bool(d.get("tls"))
        if target.fingerprint is None and isinstance(d.get("fingerprint"), str):
            target.fingerprint = d.get("fingerprint")
    return target


_is_connection_error = is_connection_error


class Backend(object):
    """One board connection for the kernel: exec, poll, input, interrupt, completion, inspection."""

    def __init__(self, target, policy=None, timeout=None):
        self.target = target
        self.policy = policy or Policy()
        self.timeout = timeout
        self._kind = None
        self.conn = self._dial()
        self.kind = kind_of(self.conn)
        try:
            self.hello = self._json("hello")
        except Exception:
            self.hello = {}
        self._ctl = None
        self._ctl_lock = threading.Lock()
        # a frozen board (SIGSTOP, Wi-Fi gone) is noticed within 5 s: its calls fail at once
        self.heartbeat = Heartbeat(self.conn, on_lost=self._frozen, label=target.label)
        t = threading.Thread(target=self._control, name="jrd-kernel-ctl")
        t.daemon = True
        t.start()

    @property
    def lost(self):
        """Why the heartbeat gave the board up (None while it answers)."""
        return self.heartbeat.lost

    def _frozen(self, why):
        ctl = self._ctl
        if ctl is not None:
            cut(ctl)  # an interrupt waiting on it answers at once

    def _found(self, kind):
        self._kind = kind

    def _dial(self):
        t = self.target
        return dial(t.host, t.port, self.policy, kind=self._kind, token=t.token, tls=t.tls,
                    timeout=self.timeout, on_kind=self._found, fingerprint=t.fingerprint)

    def _control(self):
        """A second connection for interrupts (the main one may be inside a poll)."""
        with self._ctl_lock:
            if self._ctl is None or self._ctl.closed:
                try:
                    self._ctl = self._dial()
                except Exception:
                    self._ctl = None
            return self._ctl

    @property
    def closed(self):
        return self.conn.closed

    def close(self):
        self.heartbeat.stop()
        for c in (self.conn, self._ctl):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass

    def _json(self, name, *args):
        return json_text(calls.call(self.conn.root, name, *args), "an answer to %s" % name)

    def info(self):
        try:
            return self._json("info")
        except Exception:
            return {}

    def ping(self):
        return plain(calls.call(self.conn.root, "ping"), "a ping")

    def start(self, code, ns, mode="cell", silent=False, allow_stdin=False):
        return plain(calls.call(self.conn.root, "exec_start", code, ns, mode, bool(silent), bool(allow_stdin)),
                     "an exec id")

    def run(self, code, ns, mode="cell", silent=False, allow_stdin=False, wait=0.3, flush=0.05):
        """exec_start and the first polls in one call (one round trip for a short cell); None
        from an agent without exec_run (then start and poll)."""
        if "exec_run" not in (self.hello.get("features") or ()):
            return None
        return self._json("exec_run", code, ns, mode, bool(silent), bool(allow_stdin), wait, flush)

    def poll(self, exec_id, wait):
        return self._json("exec_poll", exec_id, wait)

    def send_input(self, exec_id, text):
        calls.call(self.conn.root, "exec_input", exec_id, text)

    def interrupt(self, exec_id):
        if self.lost:
            return False  # nothing to interrupt on a board that stopped answering
        ctl = self._control()
        conn = ctl if ctl is not None else self.conn
        res = calls.start(conn.root, "exec_interrupt", (exec_id,))
        res.set_expiry(INTERRUPT_TIMEOUT)
        return bool(plain(res.value, "an interrupt reply"))

    def complete(self, ns, code, cursor_pos):
        return self._json("complete", ns, code, cursor_pos)

    def inspect(self, ns, code, cursor_pos, detail_level=0):
        return self._json("inspect", ns, code, cursor_pos, detail_level)

    def reset(self, ns):
        calls.call(self.conn.root, "ns_reset", ns)

    def forget(self, exec_id):
        try:
            calls.call(self.conn.root, "exec_forget", exec_id)
        except Exception:
            pass


def open_backend(target, policy=None, timeout=None):
    """Connect to an agent, or to a stock rpyc classic server when that is what answers."""
    return Backend(target, policy=policy, timeout=timeout)
