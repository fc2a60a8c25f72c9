"""Drive a stock rpyc classic server (MaixPy3 boards on 18812) as if it ran the agent.

Nothing is installed on the board. We connect with ``rpyc.core.service.ClassicClient`` (we
expose nothing: the board cannot call into the Jupyter server), then send the
agent's own sources (``agent/__init__, sysinfo, files, executor, service,
camera/*``) over the classic connection and register them there as an in-memory
package (a ``sys.meta_path`` finder serving the sources; nothing is written to
the board's disk). A small glue module (``GLUE`` below) makes one process-wide
``Board`` (FileStore + Executor + CameraHub) and, per connection, an
``AgentService`` wrapped in an object whose attributes are the wire names
(``info``, ``exec_start``, ``fs_list``, ``camera_next`` ...). ``connect_classic``
returns a connection-like wrapper whose ``root`` is that remote object, so
sessions, camera streams and transfers use it exactly like an agent connection.

Limitations (documented in docs/reaching-boards.md):

* Code runs on a daemon thread of the classic server (its main thread is not
  ours), so interrupt uses ``PyThreadState_SetAsyncExc`` plus an interruptible
  ``time.sleep``: pure-Python loops and ``time.sleep`` stop, other blocking calls
  (socket reads, C extensions) only when they return.
* No authentication: a classic server has none; anyone who reaches its port can
  run code on the board. Prefer the agent (or reach the board over SSH).
* The board's CPU/RSS cost of the sources is paid once per board process; a
  second Jupyter server version sends its own copy (the package name carries a
  hash of the sources).
"""
import hashlib
import json
import os
import socket
import time

import rpyc
from rpyc.core.channel import Channel
from rpyc.core.service import ClassicClient
from rpyc.utils.factory import connect_channel

from ..agent import client
from ..link import rpyc_family
from .errors import ApiError

DEFAULT_ROOT = "~/jrd-root"
MODULES = ("__init__", "sysinfo", "files", "executor", "service", "terminal", "output", "packages", "digest",
           "lazy", "camera/__init__", "camera/base", "camera/synthetic", "camera/opencv", "camera/picamera2",
           "camera/maix", "camera/replay")

GLUE = r'''
"""Glue for a stock rpyc classic server (sent by jupyter_remote_device.server.classic)."""
import json
import sys
import threading
import time

from . import __version__
from .service import AgentService, Board

_LOCK = threading.Lock()
_STATE = {"board": None, "roots": [], "watcher": None}


class _ConfHolder(object):
    def __init__(self, conn):
        cfg = getattr(conn, "_config", None)
        self._config = cfg if isinstance(cfg, dict) else {}


def _rpyc_version():
    """The board's own rpyc ("5.3.1"; rpyc 4.x keeps a tuple)."""
    mod = sys.modules.get("rpyc")
    v = getattr(mod, "__version__", None) or getattr(getattr(mod, "version", None), "version", None)
    return ".".join(str(x) for x in v) if isinstance(v, tuple) else (str(v) if v is not None else None)


def _current_connection():
    """The rpyc Connection serving this call (to notice when it closes)."""
    f = sys._getframe(1)
    while f is not None:
        s = f.f_locals.get("self")
        if s is not None and hasattr(s, "_channel") and hasattr(s, "_config") and hasattr(s, "closed"):
            return s
        f = f.f_back
    return None


def _make_board(root, camera):
    from .files import FileStore
    ex = sys.modules.get("jrd_board_executor")
    if ex is None or not hasattr(ex, "ensure_background"):
        from . import executor as ex
        sys.modules.setdefault("jrd_board_executor", ex)   # the kernel's classic fallback shares it
    executor = ex.ensure_background()
    from .output import Output
    output = Output()  # threads a cell starts write to it, the rest to the board log (no fd capture here)
    output.attach(executor)
    files = FileStore(root)
    cameras = None
    if camera != "none":
        try:
            from .camera import CameraHub
            cameras = CameraHub(camera)
        except Exception:
            cameras = None
    board = Board(files, executor, cameras)
    board.output = output
    return board


def _watch():
    while True:
        time.sleep(1.0)
        with _LOCK:
            roots = list(_STATE["roots"])
        for r in roots:
            c = r._conn
            try:
                gone = c is not None and c.closed
            except Exception:
                gone = True
            if gone:
                r.close()


class Root(object):
    """The agent's wire methods under their wire names (``info``, ``fs_list`` ...)."""

    def __init__(self, board, conn):
        self._svc = AgentService(board)
        self._conn = conn
        self._closed = False
        self._svc.on_connect(_ConfHolder(conn))
        for name in dir(self._svc):
            if name.startswith("exposed_"):
                short = name[len("exposed_"):]
                if not hasattr(type(self), short):
                    setattr(self, short, getattr(self._svc, name))

    def hello(self):
        data = json.loads(self._svc.exposed_hello())
        data["kind"] = "classic"
        return json.dumps(data)

    def info(self):
        data = json.loads(self._svc.exposed_info())
        data["kind"] = "classic"
        data["rpyc_version"] = _rpyc_version()
        return json.dumps(data)

    def close(self):
        with _LOCK:
            if self._closed:
                return
            self._closed = True
            try:
                _STATE["roots"].remove(self)
            except ValueError:
                pass
        self._svc.on_disconnect(_ConfHolder(self._conn))


def attach(root, camera):
    """A new Root for the calling connection (the board state is shared)."""
    with _LOCK:
        if _STATE["board"] is None:
            _STATE["board"] = _make_board(root, camera)
        board = _STATE["board"]
    r = Root(board, _current_connection())
    with _LOCK:
        _STATE["roots"].append(r)
        if _STATE["watcher"] is None:
            t = threading.Thread(target=_watch, name="jrd-classic-watch")
            t.daemon = True
            t.start()
            _STATE["watcher"] = t
    return r
'''

BOOT = r'''
import sys as _sys
if %(pkg)r not in _sys.modules:
    import importlib.abc as _iabc
    import importlib.util as _iutil

    class _JrdFinder(_iabc.MetaPathFinder, _iabc.Loader):
        """Serves the jupyter-remote-device agent sources from memory."""
        pkg = %(pkg)r
        sources = %(sources)r

        def find_spec(self, fullname, path=None, target=None):
            if fullname != self.pkg and not fullname.startswith(self.pkg + "."):
                return None
            rel = fullname[len(self.pkg) + 1:]
            if rel not in self.sources:
                return None
            return _iutil.spec_from_loader(fullname, self, origin="<jrd:" + fullname + ">",
                                           is_package=self.sources[rel][1])

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            rel = module.__name__[len(self.pkg) + 1:]
            code = compile(self.sources[rel][0], "<jrd-agent " + (rel or "__init__") + ">", "exec")
            exec(code, module.__dict__)

    _sys.meta_path.append(_JrdFinder())
    __import__(%(pkg)r + "._classic")
'''

_SOURCES = None


def agent_sources():
    """(package name, {dotted-relative-name: (source, is_package)}) of the agent + glue."""
    global _SOURCES
    if _SOURCES is None:
        base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent")
        sources = {}
        for mod in MODULES:
            with open(os.path.join(base, mod + ".py"), "r", encoding="utf-8") as f:
                src = f.read()
            is_pkg = mod.endswith("__init__")
            rel = mod[:-len("__init__")].rstrip("/") if is_pkg else mod
            sources[rel.replace("/", ".")] = (src, is_pkg)
        sources["_classic"] = (GLUE, False)
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode("utf-8")).hexdigest()[:10]
        _SOURCES = ("jrd_classic_agent_" + digest, sources)
    return _SOURCES


def probe_board(host, port, timeout=2.0):
    """BLOCKING: what answers on host:port? ``{"kind": "agent"|"classic"|None, ...}``.

    Sends an rpyc ping at once (threaded SlaveService servers, what MaixPy3 boards run, wait for
    the client to speak) and tells the agent, rpyc <= 5 and rpyc 6 apart by the first answer
    (``link/rpyc_family.py``); a classic server's answer adds ``"rpyc_family": 5 | 6``.
    Raises ``client.ConnectError`` for refused / unreachable / timeout.
    """
    deadline = time.monotonic() + float(timeout)
    sock = client._dial(host, int(port), deadline)
    try:
        return rpyc_family.identify(sock, host, port, deadline)
    except socket.timeout:
        raise client.ConnectError("timeout", "%s:%s accepted the connection but never answered" % (host, port))
    finally:
        try:
            sock.close()
        except OSError:
            pass


class ClassicConnection(object):
    """Looks like an agent connection: ``root`` has the wire methods; ``close()``."""

    jrd_kind = "classic"

    def __init__(self, conn, root, hello):
        self.conn = conn
        self.root = root
        self._jrd_hello = hello

    @property
    def closed(self):
        return self.conn.closed

    def ping(self, *args, **kwargs):
        return self.conn.ping(*args, **kwargs)

    def close(self):
        if not self.conn.closed:
            try:  # release camera streams / write handles now (the board's watcher would, within 1 s)
                res = rpyc.async_(self.root.close)()
                res.set_expiry(2.0)
                res.wait()
            except Exception:
                pass
        try:
            self.conn.close()
        except Exception:
            pass


def _classic_config(sync_request_timeout):
    cfg = dict(client.CLIENT_CONFIG)
    cfg["sync_request_timeout"] = sync_request_timeout
    return cfg


def _open_rpyc(host, port, sock, family, timeout, sync_request_timeout):
    """An rpyc connection of the board's family: our rpyc 6, or an rpyc 5.3.1 bridge process."""
    if family == rpyc_family.OLD:
        from ..link.bridge import BridgeConnection
        return BridgeConnection(sock, timeout=timeout, sync_request_timeout=sync_request_timeout,
                                label="%s:%s" % (host, port))
    client.tune_socket(sock)
    sock.settimeout(None)
    return connect_channel(Channel(client.TunedSocketStream(sock), compress=False),
                           service=ClassicClient, config=_classic_config(sync_request_timeout))


def connect_classic(host, port, timeout=5.0, root=DEFAULT_ROOT, camera="auto", sync_request_timeout=30):
    """BLOCKING: connect to a stock rpyc classic server and set up the agent there.

    rpyc 6 servers are driven with our rpyc; rpyc 4.x/5.x servers (MaixPy3 images) through a
    bridge process running rpyc 5.3.1 (``link/bridge``). Raises ApiError (the REST contract's
    reasons; ``too-old`` for a board nothing here can drive).
    """
    deadline = time.monotonic() + float(timeout)
    family = rpyc_family.last_seen(host, port)
    try:
        if family is None:
            found = probe_board(host, port, timeout=max(0.5, deadline - time.monotonic()))
            if found.get("kind") != "classic":
                raise ApiError(502, "protocol", "%s:%s no longer answers like an rpyc classic server" % (host, port))
            family = found["rpyc_family"]
        sock = client._dial(host, int(port), deadline)
    except client.ConnectError as e:
        raise ApiError(504 if e.reason == "timeout" else 502, e.reason, e.message)
    try:
        conn = _open_rpyc(host, port, sock, family, max(0.5, deadline - time.monotonic()), sync_request_timeout)
    except Exception as e:
        try:
            sock.close()
        except OSError:
            pass
        rpyc_family.remember(host, port, None)
        if family == rpyc_family.OLD and hasattr(e, "_remote_tb"):  # it answered, refusing rpyc 5's requests
            raise ApiError(502, "too-old", rpyc_family.ancient_rpyc("The board at %s:%s" % (host, port)))
        raise ApiError(502, "protocol", "%s:%s looked like an rpyc classic server (%s), but the rpyc "
                       "conversation failed: %s" % (host, port, rpyc_family.FAMILY_NAMES.get(family), e))
    try:
        python, rpyc_version, _platform = conn.eval(rpyc_family.BOARD_VERSIONS)
        old = rpyc_family.too_old(python, rpyc_version, "The board at %s:%s" % (host, port))
        if old:
            raise ApiError(502, "too-old", old)
        pkg, sources = agent_sources()
        if not conn.eval("%r in __import__('sys').modules" % (pkg,)):
            conn.execute(BOOT % {"pkg": pkg, "sources": sources})
        glue = conn.modules[pkg + "._classic"]   # (the bridge offers the same classic calls)
        remote_root = glue.attach(str(root), str(camera))
        hello = json.loads(remote_root.hello())
    except Exception as e:
        try:
            conn.close()
        except Exception:
            pass
        if isinstance(e, ApiError):
            raise
        rpyc_family.remember(host, port, None)
        if isinstance(e, (EOFError, socket.error)):
            raise ApiError(502, "protocol", "The rpyc classic server at %s:%s closed the connection while "
                           "the agent code was being set up: %s" % (host, port, e))
        raise ApiError(502, "protocol", "%s:%s runs an rpyc classic server, but setting up the agent code "
                       "there failed: %s: %s" % (host, port, type(e).__name__, e))
    hello["rpyc_version"] = rpyc_family.version_text(rpyc_version)
    hello["python"] = rpyc_family.version_text(python)
    return ClassicConnection(conn, remote_root, hello)
