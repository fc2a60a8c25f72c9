"""The agent's rpyc service. Its ``exposed_*`` methods are the wire protocol.

Rules every method keeps:
- arguments and results are brine-able values only (str, bytes, int, float,
  bool, None, tuples); structured results are JSON strings. No netref ever
  crosses the wire, in either direction.
- the service is thin: it forwards to the shared module objects (Executor,
  FileStore, CameraHub), and remembers what this connection opened so that a
  dropped connection leaves nothing behind (camera streams, half-written files).

A new instance is made per connection (rpyc instantiates the class).
"""
import json
import threading
import time

import rpyc

from . import __version__, sysinfo

PROTOCOL = 1
FEATURES = ("info", "exec", "exec_run", "files", "camera", "claim", "terminal", "log", "pip")


def _j(obj):
    return json.dumps(obj, separators=(",", ":"))


class Board(object):
    """The shared state of one agent process (one per board)."""

    def __init__(self, files, executor, cameras, log=None):
        self.files = files
        self.executor = executor
        self.cameras = cameras
        self.log = log
        self.started = time.time()
        self.lock = threading.Lock()
        self.connections = 0
        # who holds the board: {"user", "session_id", "since"} plus the holding connection's
        # service (not exposed). Claiming never steals silently: take_over must be explicit.
        self.holder = None
        self._holder_owner = None
        self.services = set()   # live connections' services (lifecycle.py tells each one on stop)
        self.stopping = None    # set on SIGTERM: the message every call then fails with
        self.tls = {}           # {"tls", "tls_fingerprint", "tls_note"} (__main__.py)
        self.output = None       # output.Output (board log, fd capture), set by __main__ / classic glue
        self._terminals = None
        self._pip = None

    @property
    def terminals(self):
        with self.lock:
            if self._terminals is None:
                from .terminal import Terminals
                self._terminals = Terminals(cwd=getattr(self.files, "root", None), log=self.log)
            return self._terminals

    @property
    def pip(self):
        with self.lock:
            if self._pip is None:
                from .packages import Pip
                self._pip = Pip(self.files, log=self.log)
            return self._pip

    @property
    def board_log(self):
        with self.lock:
            if self.output is None:
                from .output import Output
                self.output = Output()
            return self.output.board_log

    def claim(self, owner, user, session_id, take_over):
        with self.lock:
            held = self.holder
            if held is not None and held["session_id"] != session_id and not take_over:
                return {"ok": False, "holder": dict(held)}
            previous = held if held is not None and held["session_id"] != session_id else None
            if held is None or held["session_id"] != session_id:
                self.holder = {"user": user, "session_id": session_id, "since": time.time()}
            self._holder_owner = owner
            if previous is not None and self.log:
                self.log.warning("board taken over by %r from %r", user, previous.get("user"))
            return {"ok": True, "holder": dict(self.holder), "previous": previous}

    def release(self, owner, session_id=None):
        with self.lock:
            if self.holder is None:
                return False
            if (session_id is not None and self.holder["session_id"] == session_id) or \
                    (session_id is None and self._holder_owner is owner):
                self.holder, self._holder_owner = None, None
                return True
            return False

    def info(self):
        try:
            cams = self.cameras.list() if self.cameras is not None else []
        except Exception as e:  # a broken camera must not hide the rest
            cams = [{"error": str(e)}]
        data = sysinfo.info(__version__, cams)
        data["agent_started"] = self.started
        data["connections"] = self.connections
        data["holder"] = dict(self.holder) if self.holder is not None else None
        data.update(self.tls)
        return data


class AgentService(rpyc.Service):
    """One instance per connection, bound to the process-wide ``Board``."""

    def __init__(self, board):
        self._board = board
        self._streams = set()
        self._handles = set()
        self._lock = threading.Lock()
        self._credentials = None
        self._heard_stop = False
        self._terms = set()

    # -- lifecycle --------------------------------------------------------
    def on_connect(self, conn):
        self._credentials = conn._config.get("credentials")
        with self._board.lock:
            self._board.connections += 1
            self._board.services.add(self)

    def on_disconnect(self, conn):
        with self._board.lock:
            self._board.connections -= 1
            self._board.services.discard(self)
        self._board.release(self)  # a holder whose connection is gone holds nothing
        abandon = getattr(self._board.executor, "abandon", None)
        if abandon is not None:  # nobody reads that code's output any more: stop it (executor.py)
            try:
                abandon(self)
            except Exception:
                pass
        with self._lock:
            streams, self._streams = self._streams, set()
            handles, self._handles = self._handles, set()
        for sid in streams:
            try:
                self._board.cameras.close_stream(sid)
            except Exception:
                pass
        for h in handles:
            try:
                self._board.files.write_abort(h)
            except Exception:
                pass
        with self._lock:
            terms, self._terms = self._terms, set()
        for tid in terms:  # a shell nobody can reach any more ends with its connection
            try:
                self._board.terminals.close(tid)
            except Exception:
                pass

    def _rpyc_getattr(self, name):
        """Only ``exposed_*`` methods are reachable (as rpyc's default); each call first checks
        that the agent is not stopping: once it is, every call fails with the stop message,
        which is how a connected server hears the agent is going (lifecycle.py)."""
        if type(name) is bytes:
            name = name.decode("utf-8")
        if type(name) is not str or name.startswith("_"):
            raise AttributeError("cannot access %r" % (name,))
        if not name.startswith("exposed_"):
            name = "exposed_" + name
        if not callable(getattr(type(self), name, None)):
            raise AttributeError("no such call: %r" % (name[8:],))
        method = getattr(self, name)
        board = self._board

        def call(*args, **kwargs):
            if board.stopping is not None:
                self._heard_stop = True
                raise EOFError(board.stopping)  # "the conversation ends", with why
            return method(*args, **kwargs)
        call.__name__ = name
        return call

    # -- board ------------------------------------------------------------
    def exposed_hello(self):
        return _j({"agent_version": __version__, "protocol": PROTOCOL, "features": list(FEATURES)})

    def exposed_ping(self):
        return time.time()

    def exposed_info(self):
        return _j(self._board.info())

    # -- who holds the board (several Jupyter users/servers may share it) -----
    def exposed_claim(self, user=None, session_id="", take_over=False):
        """Hold the board for a session. JSON {"ok", "holder", "previous"?}: ok false when another
        live session holds it and take_over is not set (nothing changes then)."""
        if user is None and self._credentials:
            user = self._credentials.get("user")
        user = None if user is None else str(user)[:200]
        return _j(self._board.claim(self, user, str(session_id)[:200], bool(take_over)))

    def exposed_release(self, session_id):
        return bool(self._board.release(self, str(session_id)))

    # -- exec -------------------------------------------------------------
    def exposed_exec_start(self, code, ns="rest", mode="cell", silent=False, allow_stdin=False):
        ex = self._board.executor
        kw = {"owner": self} if hasattr(ex, "abandon") else {}  # an older shared executor has no owners
        return ex.start(str(code), ns=str(ns), mode=str(mode), silent=bool(silent),
                        allow_stdin=bool(allow_stdin), **kw)

    def exposed_exec_poll(self, exec_id, wait=0.2):
        return _j(self._board.executor.poll(str(exec_id), wait=min(max(float(wait), 0.0), 5.0)))

    def exposed_exec_run(self, code, ns="rest", mode="cell", silent=False, allow_stdin=False, wait=1.0,
                         flush=None, only_ns=None):
        """exec_start and the polls in one call: one round trip for code that ends within
        ``wait`` seconds (at most 30).  JSON ``{"exec_id", "events", "done", "status"}``; a
        finished exec is forgotten here (nothing left to poll or forget).  ``flush``: return
        early once output has waited that long, so a long cell's output streams (then keep
        going with exec_poll).  ``only_ns``: refuse, with ``{"busy": {...}, "done": true}``,
        while code of another namespace runs (REST exec beside a notebook cell)."""
        ex = self._board.executor
        if only_ns is not None:
            b = ex.busy()
            if b.get("busy") and b.get("ns") != str(only_ns):
                return _j({"busy": b, "exec_id": None, "events": [], "done": True, "status": "busy"})
        exec_id = self.exposed_exec_start(code, ns, mode, silent, allow_stdin)
        wait = min(max(float(wait), 0.0), 30.0)
        flush = None if flush is None else min(max(float(flush), 0.0), wait)
        deadline = time.monotonic() + wait
        events, first_output, reply = [], None, None
        while True:
            now = time.monotonic()
            left = deadline - now
            if first_output is not None:
                left = min(left, first_output + flush - now)
            reply = ex.poll(exec_id, wait=max(0.0, left))
            events.extend(reply.get("events", ()))
            if reply.get("done"):
                ex.forget(exec_id)
                break
            now = time.monotonic()
            if events and flush is not None and first_output is None:
                first_output = now
            if now >= deadline or (first_output is not None and now >= first_output + flush):
                break
        return _j({"exec_id": exec_id, "events": events, "done": bool(reply.get("done")),
                   "status": reply.get("status")})

    def exposed_exec_input(self, exec_id, text):
        self._board.executor.send_input(str(exec_id), str(text))

    def exposed_exec_interrupt(self, exec_id=None):
        return bool(self._board.executor.interrupt(None if exec_id is None else str(exec_id)))

    def exposed_exec_busy(self):
        return _j(self._board.executor.busy())

    def exposed_exec_forget(self, exec_id):
        self._board.executor.forget(str(exec_id))

    def exposed_complete(self, ns, code, cursor_pos):
        return _j(self._board.executor.complete(str(ns), str(code), int(cursor_pos)))

    def exposed_inspect(self, ns, code, cursor_pos, detail_level=0):
        return _j(self._board.executor.inspect(str(ns), str(code), int(cursor_pos), int(detail_level)))

    def exposed_ns_reset(self, ns):
        self._board.executor.reset(str(ns))

    # -- files ------------------------------------------------------------
    def exposed_fs_list(self, path=""):
        return _j(self._board.files.list(path))

    def exposed_fs_stat(self, path):
        return _j(self._board.files.stat(path))

    def exposed_fs_read(self, path, offset, size):
        return self._board.files.read(path, int(offset), int(size))

    def exposed_fs_write_open(self, path, size=None, mtime=None):
        h = self._board.files.write_open(path, size=size, mtime=mtime)
        with self._lock:
            self._handles.add(h)
        return h

    def exposed_fs_write_chunk(self, handle, data, offset=None):
        if not isinstance(data, bytes):
            raise TypeError("data must be bytes")
        return self._board.files.write_chunk(handle, data, offset)

    def exposed_fs_write_close(self, handle, sha256=None):
        try:
            return _j(self._board.files.write_close(handle, sha256))
        finally:
            with self._lock:
                self._handles.discard(handle)

    def exposed_fs_write_abort(self, handle):
        with self._lock:
            self._handles.discard(handle)
        self._board.files.write_abort(handle)

    def exposed_fs_mkdir(self, path, parents=True):
        return _j(self._board.files.mkdir(path, parents=bool(parents)))

    def exposed_fs_delete(self, path, recursive=False):
        self._board.files.delete(path, recursive=bool(recursive))

    def exposed_fs_rename(self, src, dst):
        return _j(self._board.files.rename(src, dst))

    def exposed_fs_hash(self, path):
        return _j(self._board.files.hash(path))

    def exposed_fs_manifest(self, path="", with_hash=False):
        return _j(self._board.files.manifest(path, with_hash=bool(with_hash)))

    def exposed_fs_touch(self, path, mtime):
        return _j(self._board.files.touch(path, mtime))

    def exposed_fs_put(self, path, data, mtime=None, sha256=None, encoding=None):
        if not isinstance(data, bytes):
            raise TypeError("data must be bytes")
        return _j(self._board.files.put(path, data, mtime, sha256, encoding))

    # -- camera -----------------------------------------------------------
    def _cams(self):
        if self._board.cameras is None:
            raise RuntimeError("this agent was started without a camera")
        return self._board.cameras

    def exposed_camera_list(self):
        return _j(self._cams().list())

    def exposed_camera_open(self, camera_id="0", width=640, height=480, quality=80, fps=0):
        sid = self._cams().open_stream(str(camera_id), int(width), int(height), int(quality), float(fps))
        with self._lock:
            self._streams.add(sid)
        return sid

    def exposed_camera_next(self, stream_id, after_seq=-1, timeout=2.0):
        return self._cams().next_frame(str(stream_id), int(after_seq), min(max(float(timeout), 0.0), 10.0))

    def exposed_camera_configure(self, stream_id, width, height, quality, fps):
        return _j(self._cams().configure(str(stream_id), int(width), int(height), int(quality), float(fps)))

    def exposed_camera_close(self, stream_id):
        with self._lock:
            self._streams.discard(stream_id)
        self._cams().close_stream(str(stream_id))

    def exposed_camera_stats(self):
        return _j(self._cams().stats())

    # -- terminals (agent/terminal.py): the connection that opens one owns it ------------
    def exposed_term_open(self, rows=24, cols=80):
        tid = self._board.terminals.open(int(rows), int(cols))
        with self._lock:
            self._terms.add(tid)
        return tid

    def exposed_term_read(self, term_id, max_bytes=65536, wait=1.0):
        return self._board.terminals.get(str(term_id)).read(int(max_bytes), float(wait))

    def exposed_term_write(self, term_id, data):
        if not isinstance(data, (str, bytes)):
            raise TypeError("data must be str or bytes")
        return self._board.terminals.get(str(term_id)).write(data)

    def exposed_term_resize(self, term_id, rows, cols, height_px=0, width_px=0):
        self._board.terminals.get(str(term_id)).resize(int(rows), int(cols), int(height_px), int(width_px))

    def exposed_term_close(self, term_id):
        with self._lock:
            self._terms.discard(str(term_id))
        return self._board.terminals.close(str(term_id))

    # -- board log (agent/output.py) ---------------------------------------------------
    def exposed_log_read(self, after=0, wait=0.0, limit=500):
        seq, entries = self._board.board_log.read(int(after), min(max(float(wait), 0.0), 10.0),
                                                  min(max(int(limit), 1), 500))
        return _j({"seq": seq, "entries": entries})

    # -- pip (agent/packages.py) -------------------------------------------------------
    def exposed_pip_check(self, target=None, need_bytes=0):
        return _j(self._board.pip.check(None if target is None else str(target), int(need_bytes)))

    def exposed_pip_start(self, packages=(), wheels=(), upgrade=False, no_index=False, find_links=(),
                          target=None):
        return self._board.pip.start([str(p) for p in packages][:200], [str(w) for w in wheels][:200],
                                     bool(upgrade), bool(no_index), [str(d) for d in find_links][:10],
                                     None if target is None else str(target))

    def exposed_pip_read(self, run_id, wait=1.0):
        return _j(self._board.pip.get(str(run_id)).read(float(wait)))

    def exposed_pip_cancel(self, run_id):
        self._board.pip.cancel(str(run_id))
