"""The agent on a stock rpyc classic server (imported there by ``classic_boot``).

One process-wide ``Board`` (FileStore + Executor + CameraHub) and, per classic connection,
a ``Root``: an ``AgentService`` whose wire methods carry their wire names (``info``,
``exec_start``, ``fs_list``, ``camera_next`` ...), so the Jupyter side drives a classic
board exactly like an agent. A watcher thread closes the Root of a connection that closed.
"""
import json
import sys
import threading
import time

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
    from . import executor as ex
    from .files import FileStore
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
