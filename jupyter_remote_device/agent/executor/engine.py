"""The exec engine: a FIFO of execs run on the thread that calls ``run_forever``, one namespace
per client, results as MIME bundles, errors as tracebacks without the engine's own frames."""
import ast
import collections
import itertools
import linecache
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback

from .display import DisplayMixin, _bundle_size, _DisplayHandle, mime_bundle
from .images import _hub_snapshot
from .interrupt import InterruptMixin
from .introspection import IntrospectionMixin
from .maix import MaixMixin
from .records import EXPIRE_AFTER, TERMINAL_STATES as _TERMINAL_STATES, _Exec, _Namespace
from .streams import StreamsMixin

try:  # the builtins module (a dict when this source is exec'd elsewhere)
    import builtins as _builtins_mod
except ImportError:  # pragma: no cover
    _builtins_mod = None

MAX_LINECACHE = 400                 # cell sources kept for tracebacks

# the frames of this package, hidden from tracebacks ("<jrd-agent executor.engine>" when served from memory)
_HERE = sys._getframe().f_code.co_filename
_OWN_PREFIX = _HERE.rsplit(".", 1)[0] + "." if _HERE.startswith("<") else os.path.dirname(_HERE) + os.sep


def _log_to(log):
    if log is None:
        return logging.getLogger("jupyter_remote_device.agent.executor")
    return log


class Executor(InterruptMixin, DisplayMixin, StreamsMixin, IntrospectionMixin, MaixMixin):
    """Runs code FIFO on the thread that calls ``run_forever`` (see the package doc)."""

    def __init__(self, log=None):
        self.log = _log_to(log)
        self._lock = threading.RLock()
        self._queue_cond = threading.Condition(self._lock)
        self._queue = collections.deque()
        self._execs = {}
        self._namespaces = {}
        self._current = None
        self._exec_ident = None
        self._main_mode = False
        self._interrupt_pending = False
        self._in_user = False
        self._last_terminal_sigint = 0.0
        self._stop_event = None
        self._cell_counter = itertools.count(1)
        self._cell_files = collections.deque()
        self._async_loop = None
        self._orig_sleep = None
        self.hostname = socket.gethostname()
        # optional hook set by __main__/service: fn(width, height) -> JPEG bytes or None
        self.snapshot = None
        self._saved_streams = None
        self.output = None  # output.Output when attached: fd 1/2 capture, threads, board log
        self._install_maix_hook()

    def use_cameras(self, hub):
        """Let show_camera() put a real still from the board's first camera in the cell."""
        if hub is None:
            return

        def snapshot(width, height):
            return _hub_snapshot(hub, width, height)

        self.snapshot = snapshot

    def start(self, code, ns="rest", mode="cell", silent=False, allow_stdin=False, owner=None):
        """Queue code; ``owner`` (optional, e.g. the rpyc connection) is for ``abandon()``."""
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        if mode not in ("cell", "exec", "eval"):
            raise ValueError("mode must be 'cell', 'exec' or 'eval', not %r" % (mode,))
        ns = str(ns or "rest")
        exec_id = os.urandom(8).hex()
        rec = _Exec(exec_id, code, ns, mode, bool(silent), bool(allow_stdin))
        rec.owner = owner
        with self._lock:
            self._expire()
            self._execs[exec_id] = rec
            self._queue.append(rec)
            self._queue_cond.notify_all()
        return exec_id

    def poll(self, exec_id, wait=0.2):
        rec = self._execs.get(exec_id)
        if rec is None:
            return {"events": [], "done": True, "status": "unknown"}
        try:
            wait = max(0.0, min(float(wait or 0), 30.0))
        except (TypeError, ValueError):
            wait = 0.2
        with rec.cond:
            if not rec.pending and rec.status not in _TERMINAL_STATES and wait > 0:
                rec.cond.wait(wait)
            events = rec.drain()
            status = rec.status
        if status in _TERMINAL_STATES:
            # the client has everything: keep the record only briefly
            rec.finished_at = rec.finished_at or time.time()
        return {"events": events, "done": status in _TERMINAL_STATES, "status": status}

    def abandon(self, owner):
        """The client that started execs as ``owner`` is gone: abort its queued execs and
        interrupt its running one (nobody would read their output; they would block the
        board). Returns how many were stopped."""
        if owner is None:
            return 0
        n = 0
        with self._lock:
            mine = [r for r in self._queue if getattr(r, "owner", None) is owner]
            cur = self._current
        for r in mine:
            if self.interrupt(r.id):
                n += 1
        if cur is not None and getattr(cur, "owner", None) is owner and self.interrupt(cur.id):
            n += 1
        return n

    def send_input(self, exec_id, text):
        rec = self._execs.get(exec_id)
        if rec is None:
            raise KeyError("unknown exec_id %r" % (exec_id,))
        with rec.cond:
            rec.input_value = "" if text is None else str(text)
            rec.cond.notify_all()

    def reset(self, ns):
        ns = str(ns or "rest")
        with self._lock:
            self._namespaces.pop(ns, None)

    def busy(self):
        with self._lock:
            rec = self._current
            return {"busy": rec is not None, "exec_id": rec.id if rec else None,
                    "ns": rec.ns if rec else None, "queued": len(self._queue)}

    def forget(self, exec_id):
        with self._lock:
            rec = self._execs.get(exec_id)
            if rec is not None and rec.status in _TERMINAL_STATES:
                del self._execs[exec_id]

    def run_forever(self, stop_event):
        """Run queued execs until stop_event is set (see the module docstring)."""
        self._stop_event = stop_event
        self._exec_ident = threading.get_ident()
        self._main_mode = threading.current_thread() is threading.main_thread() and hasattr(signal, "pthread_kill")
        previous = None
        self._install_streams()
        self._install_getpass()
        if self._main_mode:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        else:
            self._install_sleep_wrapper()
        try:
            while not stop_event.is_set():
                try:
                    self.run_once(timeout=0.2)
                except KeyboardInterrupt:
                    # a late interrupt landing outside user code
                    continue
        finally:
            if self._main_mode:
                try:
                    signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
                except Exception:
                    pass
            self._exec_ident = None
            self._restore_streams()

    def run_once(self, timeout=0.2):
        """Run the next queued exec (waiting up to ``timeout`` s); True when one ran."""
        with self._lock:
            if not self._queue:
                self._queue_cond.wait(timeout)
            if not self._queue:
                return False
            rec = self._queue.popleft()
            self._interrupt_pending = False
            self._current = rec
            rec.status = "running"
        self._install_streams()
        try:
            self._run(rec)
        finally:
            # An interrupt may land anywhere outside user code only as a stray
            # KeyboardInterrupt: retry the bookkeeping until it is done, so an exec
            # always ends up finished and the engine idle.
            while True:
                try:
                    self._in_user = False
                    if not self._main_mode:
                        self._clear_async_exc()
                    if rec.status not in _TERMINAL_STATES:
                        rec.finish("error")
                    with self._lock:
                        self._current = None
                        self._interrupt_pending = False
                    break
                except KeyboardInterrupt:
                    continue
        if self._main_mode and signal.getsignal(signal.SIGINT) != self._on_sigint:
            try:  # user code replaced our handler: take it back
                signal.signal(signal.SIGINT, self._on_sigint)
            except Exception:
                pass
        return True

    def _namespace(self, ns):
        ns = str(ns or "rest")
        with self._lock:
            space = self._namespaces.get(ns)
            if space is None:
                space = _Namespace(ns, self._make_builtins())
                self._namespaces[ns] = space
            return space

    def _make_builtins(self):
        if isinstance(__builtins__, dict):
            b = dict(__builtins__)
        else:
            b = dict(_builtins_mod.__dict__)
        b["display"] = self._display
        b["update_display"] = self._update_display
        b["show"] = self._show
        b["show_camera"] = self._show_camera
        b["input"] = self._input
        b["DisplayHandle"] = _DisplayHandle
        return b

    def _register_source(self, filename, code):
        lines = code.splitlines(True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        linecache.cache[filename] = (len(code), None, lines, filename)
        self._cell_files.append(filename)
        while len(self._cell_files) > MAX_LINECACHE:
            linecache.cache.pop(self._cell_files.popleft(), None)

    def _run(self, rec):
        space = self._namespace(rec.ns)
        g = space.globals
        if not rec.silent:
            space.execution_count += 1
        count = space.execution_count
        filename = "<cell-%d>" % next(self._cell_counter)
        self._register_source(filename, rec.code)
        status = "ok"
        try:
            try:
                self._in_user = True
                try:
                    if rec.interrupted:
                        raise KeyboardInterrupt()
                    value, has_value = self._exec_code(rec, g, filename)
                    self._flush_live(rec)
                    if has_value and value is not None and not rec.silent:
                        g["_"] = value
                        data, meta = mime_bundle(value)   # may run the user's _repr_*_ code
                        rec.add_event({"type": "result", "execution_count": count, "data": data,
                                       "metadata": meta}, size=_bundle_size(data))
                finally:
                    self._in_user = False
            except BaseException as e:  # KeyboardInterrupt, SystemExit too: the agent stays up
                status = "error"
                self._report_error(rec, e)
        except KeyboardInterrupt as e:  # a late interrupt landing while reporting
            status = "error"
            self._report_error(rec, e)
        try:
            self._flush_live(rec)
            if self.output is not None:
                self.output.flush()  # what the cell's subprocesses wrote to fds 1/2 belongs to it
        except BaseException:
            pass
        rec.finish(status)

    def _exec_code(self, rec, g, filename):
        flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
        code = rec.code
        if rec.mode == "eval":
            co = compile(code.strip(), filename, "eval", flags, True)
            return self._eval(co, g), True
        tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | flags, True)
        last = None
        if rec.mode == "cell" and tree.body and isinstance(tree.body[-1], ast.Expr) \
                and not code.rstrip().endswith(";"):
            last = tree.body.pop()
        if tree.body:
            co = compile(tree, filename, "exec", flags, True)
            self._eval(co, g)
        if last is not None:
            expr = ast.Expression(last.value)
            ast.copy_location(expr, last)
            co = compile(expr, filename, "eval", flags, True)
            return self._eval(co, g), True
        return None, False

    def _eval(self, co, g):
        if co.co_flags & 0x80:  # CO_COROUTINE: top-level await
            import asyncio
            if self._async_loop is None or self._async_loop.is_closed():
                self._async_loop = asyncio.new_event_loop()
            return self._async_loop.run_until_complete(eval(co, g))
        return eval(co, g)

    def _report_error(self, rec, e):
        try:
            text = "".join(_format_exception(e)).rstrip("\n")
        except Exception:
            text = "%s: %s" % (type(e).__name__, e)
        try:
            evalue = str(e)
        except Exception:
            evalue = "<unprintable>"
        rec.add_event({"type": "error", "ename": type(e).__name__, "evalue": evalue,
                       "traceback": text.split("\n")})

    def _expire(self):
        now = time.time()
        for k, rec in list(self._execs.items()):
            if rec.finished_at is not None and now - rec.finished_at > EXPIRE_AFTER:
                del self._execs[k]


def _format_exception(e, _seen=None):
    """Like traceback.format_exception, without the executor's own frames."""
    seen = _seen if _seen is not None else set()
    seen.add(id(e))
    lines = []
    cause = e.__cause__
    context = e.__context__
    if cause is not None and id(cause) not in seen:
        lines += _format_exception(cause, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and id(context) not in seen and not e.__suppress_context__:
        lines += _format_exception(context, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith(_OWN_PREFIX)]
    if frames:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(e), e)
    return lines


EXECUTOR = None
_BACKGROUND = {}


def ensure_background():
    """The process-wide Executor, running on a daemon thread (created once)."""
    global EXECUTOR
    if EXECUTOR is None:
        EXECUTOR = Executor()
        stop = threading.Event()
        t = threading.Thread(target=EXECUTOR.run_forever, args=(stop,), name="jrd-executor")
        t.daemon = True
        t.start()
        _BACKGROUND["thread"] = t
        _BACKGROUND["stop"] = stop
    return EXECUTOR
