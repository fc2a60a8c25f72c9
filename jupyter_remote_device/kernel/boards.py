"""Board targets and the two ways of running code on a board.

* ``AgentBackend``: a jupyter-remote-device agent (token handshake, exec_* calls).
* ``ClassicBackend``: a stock rpyc classic server (MaixPy3 boards on 18812). We
  connect with ``rpyc.ClassicClient`` (we expose nothing to the board), send the
  executor module's source once, and drive it through ``call_json``.

Both take and return plain values (dicts decoded from JSON).
"""
import json
import os
import re
import threading

import rpyc
import rpyc.utils.factory
from rpyc.core.service import ClassicClient

from ..agent import client as agent_client
from ..link import rpyc_family

AGENT_PORT = 18861
CLASSIC_PORT = 18812
REMOTE_MODULE = "jrd_board_executor"


class BoardError(Exception):
    """A board could not be reached or used; ``reason`` is a contract code."""

    def __init__(self, reason, message):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message


# ---------------------------------------------------------------- saved boards

def devices_file():
    try:
        from jupyter_core.paths import jupyter_data_dir
        base = jupyter_data_dir()
    except Exception:
        base = os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter")
    return os.path.join(base, "remote_device", "devices.json")


def load_devices(path=None):
    """The Jupyter server's saved boards (a list of dicts); [] when there is none."""
    path = path or devices_file()
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    devs = data.get("devices") if isinstance(data, dict) else data
    if not isinstance(devs, list):
        return []
    return [d for d in devs if isinstance(d, dict) and d.get("host")]


def find_device(key, devices=None):
    """A saved board whose name or id is ``key`` (case-insensitive name match)."""
    devices = load_devices() if devices is None else devices
    for d in devices:
        if str(d.get("id")) == key:
            return d
    for d in devices:
        if str(d.get("name", "")) == key:
            return d
    low = key.lower()
    for d in devices:
        if str(d.get("name", "")).lower() == low:
            return d
    return None


def find_by_address(host, port, devices=None):
    devices = load_devices() if devices is None else devices
    for d in devices:
        try:
            if d.get("host") == host and int(d.get("port") or 0) == int(port):
                return d
        except (TypeError, ValueError):
            continue
    return None


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


def device_id_for(host, port):
    """The id the Jupyter server gives the board at host:port (server.manager.device_id_for)."""
    try:
        from ..server.manager import device_id_for as server_id
        return server_id(host, int(port))
    except Exception:
        import hashlib
        return hashlib.sha1(("%s:%d" % (host.lower(), int(port))).encode()).hexdigest()[:12]


class Target(object):
    """Where to connect: host, port, token, and the saved board's id/name if known."""

    def __init__(self, host, port, token=None, name=None, device_id=None, tls=False):
        self.tls = bool(tls)
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
                  name=d.get("name") or None, device_id=d.get("id"), tls=bool(d.get("tls")))


def with_saved_token(target):
    """Fill token/name/id from the saved boards when the address matches one."""
    d = find_by_address(target.host, target.port)
    if d is not None:
        if target.token is None and d.get("token"):
            target.token = d.get("token")
        target.name = target.name or d.get("name")
        target.device_id = target.device_id or d.get("id")
        target.tls = target.tls or bool(d.get("tls"))
    return target


# ---------------------------------------------------------------- backends

def _is_connection_error(e):
    return isinstance(e, (EOFError, ConnectionError, OSError, TimeoutError)) or \
        type(e).__name__ in ("AsyncResultTimeout",)


class _Backend(object):
    """What both backends share: the exec connection ``conn`` and the interrupt connection ``_ctl``."""

    conn = None
    _ctl = None

    @property
    def closed(self):
        return self.conn.closed

    def close(self):
        for c in (self.conn, self._ctl):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass


class AgentBackend(_Backend):
    kind = "agent"

    def __init__(self, target, timeout=5.0):
        self.target = target
        self.timeout = timeout
        self.conn = self._dial()
        try:
            self.hello = json.loads(self.conn.root.hello())
        except Exception:
            self.hello = {}
        self._ctl = None
        self._ctl_lock = threading.Lock()
        t = threading.Thread(target=self._control, name="jrd-kernel-ctl")
        t.daemon = True
        t.start()

    def _dial(self):
        t = self.target
        try:
            return agent_client.connect(t.host, t.port, token=t.token, timeout=self.timeout, tls=t.tls)
        except agent_client.ConnectError as e:
            raise BoardError(e.reason, e.message)

    def _control(self):
        """A second connection for interrupts (the main one may be inside a poll)."""
        with self._ctl_lock:
            if self._ctl is None or self._ctl.closed:
                try:
                    self._ctl = self._dial()
                except Exception:
                    self._ctl = None
            return self._ctl

    def info(self):
        try:
            return json.loads(self.conn.root.info())
        except Exception:
            return {}

    def ping(self):
        return self.conn.root.ping()

    def start(self, code, ns, mode="cell", silent=False, allow_stdin=False):
        return self.conn.root.exec_start(code, ns, mode, bool(silent), bool(allow_stdin))

    def poll(self, exec_id, wait):
        return json.loads(self.conn.root.exec_poll(exec_id, wait))

    def send_input(self, exec_id, text):
        self.conn.root.exec_input(exec_id, text)

    def interrupt(self, exec_id):
        ctl = self._control()
        conn = ctl if ctl is not None else self.conn
        return bool(conn.root.exec_interrupt(exec_id))

    def complete(self, ns, code, cursor_pos):
        return json.loads(self.conn.root.complete(ns, code, cursor_pos))

    def inspect(self, ns, code, cursor_pos, detail_level=0):
        return json.loads(self.conn.root.inspect(ns, code, cursor_pos, detail_level))

    def reset(self, ns):
        self.conn.root.ns_reset(ns)

    def forget(self, exec_id):
        try:
            self.conn.root.exec_forget(exec_id)
        except Exception:
            pass



def _executor_source():
    """(module name, source): the name carries a hash so a newer kernel never reuses an old copy."""
    import hashlib

    from ..agent import executor
    path = executor.__file__
    if path.endswith((".pyc", ".pyo")):
        path = path[:-1]
    with open(path, "r", encoding="utf-8") as f:
        src = f.read()
    return "%s_%s" % (REMOTE_MODULE, hashlib.sha256(src.encode("utf-8")).hexdigest()[:10]), src


_BOOT = r'''
import sys as _s, types as _t
_shared = _s.modules.get(%(shared)r)
if _shared is None or not hasattr(_shared, "call_json"):
    if %(name)r not in _s.modules:
        _m = _t.ModuleType(%(name)r)
        _m.__file__ = "<%(name)s>"
        exec(compile(%(src)r, "<%(name)s>", "exec"), _m.__dict__)
        _s.modules[%(name)r] = _m
    _s.modules[%(shared)r] = _s.modules[%(name)r]
_s.modules[%(shared)r].ensure_background()
'''


class ClassicBackend(_Backend):
    """A stock rpyc classic server driven through the teleported executor."""

    kind = "classic"

    def __init__(self, target, timeout=5.0):
        self.target = target
        self.timeout = timeout
        self.conn = self._dial()
        self.module, src = _executor_source()
        try:
            python, rpyc_version, platform = self.conn.eval(rpyc_family.BOARD_VERSIONS)
            self.versions = {"python": rpyc_family.version_text(python),
                             "rpyc_version": rpyc_family.version_text(rpyc_version), "platform": str(platform)}
        except Exception as e:
            self.close()
            raise BoardError("protocol", "%s runs an rpyc classic server, but it did not say which Python "
                             "and rpyc it runs: %s" % (target.address, e))
        old = rpyc_family.too_old(python, rpyc_version, "The board at %s" % target.address)
        if old:
            self.close()
            raise BoardError("too-old", old)
        try:
            # one executor per board process: reuse the one the Jupyter server's classic
            # session (server/classic.py) or another kernel already started there
            self.conn.execute(_BOOT % {"name": self.module, "src": src, "shared": REMOTE_MODULE})
            self.module = REMOTE_MODULE
            self._api = self.conn.modules[self.module].call_json
        except Exception as e:
            self.close()
            raise BoardError("protocol", "%s runs an rpyc classic server, but setting up the executor "
                             "there failed: %s" % (target.address, e))
        self.hello = {"kind": "classic"}
        self._ctl = None
        self._ctl_api = None
        self._ctl_lock = threading.Lock()

    def _dial(self):
        t = self.target
        family = rpyc_family.last_seen(t.host, t.port)
        if family is None:
            found = probe(t, self.timeout)
            family = found.get("rpyc_family") or rpyc_family.NEW
        if family == rpyc_family.OLD:  # rpyc 4.x/5.x (MaixPy3): through an rpyc 5.3.1 bridge process
            import time

            from ..link.bridge import BridgeConnection
            try:
                sock = agent_client._dial(t.host, t.port, time.monotonic() + float(self.timeout))
            except agent_client.ConnectError as e:
                raise BoardError(e.reason, e.message)
            try:
                return BridgeConnection(sock, timeout=self.timeout, sync_request_timeout=30, label=t.address)
            except Exception as e:
                sock.close()
                rpyc_family.remember(t.host, t.port, None)
                if hasattr(e, "_remote_tb"):  # it answered, refusing rpyc 5's first requests: rpyc 3.x
                    raise BoardError("too-old", rpyc_family.ancient_rpyc("The board at %s" % t.address))
                raise BoardError("protocol", "Cannot talk to the rpyc classic server at %s: %s" % (t.address, e))
        try:
            conn = rpyc.utils.factory.connect(
                t.host, t.port, service=ClassicClient,
                config={"sync_request_timeout": 30, "allow_pickle": False,
                        "import_custom_exceptions": False, "instantiate_custom_exceptions": False})
        except Exception as e:
            raise BoardError("refused" if isinstance(e, ConnectionRefusedError) else "unreachable",
                             "Cannot reach the rpyc classic server at %s: %s" % (t.address, e))
        return conn

    def _call(self, method, *args):
        return json.loads(self._api(method, *args))

    def info(self):
        data = dict(self.versions)
        try:
            data["hostname"] = str(self.conn.eval("__import__('socket').gethostname()"))
        except Exception:
            pass
        return data

    def ping(self):
        return self.conn.ping()

    def start(self, code, ns, mode="cell", silent=False, allow_stdin=False):
        return json.loads(self._api("start", code, ns, mode, bool(silent), bool(allow_stdin)))

    def poll(self, exec_id, wait):
        return self._call("poll", exec_id, wait)

    def send_input(self, exec_id, text):
        self._call("send_input", exec_id, text)

    def interrupt(self, exec_id):
        with self._ctl_lock:
            if self._ctl_api is None:
                try:
                    self._ctl = self._dial()
                    self._ctl_api = self._ctl.modules[self.module].call_json
                except Exception:
                    self._ctl_api = self._api
        return bool(json.loads(self._ctl_api("interrupt", exec_id)))

    def complete(self, ns, code, cursor_pos):
        return self._call("complete", ns, code, cursor_pos)

    def inspect(self, ns, code, cursor_pos, detail_level=0):
        return self._call("inspect", ns, code, cursor_pos, detail_level)

    def reset(self, ns):
        self._call("reset", ns)

    def forget(self, exec_id):
        try:
            self._call("forget", exec_id)
        except Exception:
            pass



def probe(target, timeout=5.0):
    """What answers on the target (``link/rpyc_family.identify``: an rpyc ping at once, no waiting
    for a greeting). Raises BoardError when nothing can be reached or nothing answers."""
    import socket
    import time
    deadline = time.monotonic() + float(timeout)
    try:
        sock = agent_client._dial(target.host, target.port, deadline)
    except agent_client.ConnectError as e:
        raise BoardError(e.reason, e.message)
    try:
        return rpyc_family.identify(sock, target.host, target.port, deadline)
    except socket.timeout:
        raise BoardError("timeout", "%s accepted the connection but said nothing: it is neither a "
                         "jupyter-remote-device agent nor an rpyc classic server" % target.address)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def sniff(target, timeout=5.0):
    """What answers on the target? "agent" | "classic"; BoardError otherwise."""
    kind = probe(target, timeout).get("kind")
    if kind is None:
        raise BoardError("not-an-agent", "Something else answers on %s: neither a jupyter-remote-device agent "
                         "nor an rpyc classic server" % target.address)
    return kind


def open_backend(target, timeout=5.0):
    """Connect to an agent, or to a stock rpyc classic server when that is what answers."""
    kind = sniff(target, timeout=timeout)
    if kind == "agent":
        return AgentBackend(target, timeout=timeout)
    return ClassicBackend(target, timeout=timeout)
