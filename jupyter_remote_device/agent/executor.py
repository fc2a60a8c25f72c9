"""The board's exec engine: runs code cells in persistent namespaces.

Standard library only (Pillow optional and imported lazily), Python 3.8 syntax.

Threading contract (for ``agent/__main__.py``)
-------------------------------------------------
* Create one ``Executor`` per agent process and share it with every rpyc
  connection (the service forwards ``exec_*`` calls to it).
* Call ``executor.run_forever(stop_event)`` **on the main thread**, after the rpyc
  server has been started in other threads.  User code runs on that thread.
* ``run_forever`` installs its own SIGINT handler for as long as it runs and
  restores the previous one when it returns:

  - ``interrupt()`` (from an rpyc thread) sends SIGINT to the main thread with
    ``signal.pthread_kill``; the handler raises ``KeyboardInterrupt`` inside the
    running code (this also breaks ``time.sleep``, blocking socket reads and lock
    waits).  If nothing runs any more by the time the signal lands, it is ignored.
  - A SIGINT from a terminal (Ctrl-C) while code runs interrupts that code too;
    a second one within 3 s also sets ``stop_event``.  Ctrl-C while idle sets
    ``stop_event``.
  - ``run_forever`` returns within ~0.2 s once ``stop_event`` is set and no code
    runs; ``__main__`` then closes the rpyc server and exits.

  If ``run_forever`` is called on another thread (e.g. inside a stock rpyc classic
  server, where the main thread is not ours) interrupts fall back to
  ``PyThreadState_SetAsyncExc`` plus an interruptible ``time.sleep`` wrapper:
  pure-Python loops and ``time.sleep`` still stop, other blocking calls only when
  they return.

* ``executor.use_cameras(hub)`` (optional, with the agent's CameraHub) lets
  ``show_camera()`` put a real still from the board's camera in the cell.
* On a stock rpyc classic server (no agent) this module's source is sent over the
  classic connection, registered as ``sys.modules["jrd_board_executor"]`` and
  driven through ``ensure_background()`` / ``call_json(method, *args)`` (JSON
  strings only, so no netref crosses the wire). One executor per board process.

Injected in every namespace: ``display``, ``update_display``, ``show(img)`` (a live
image updated in place, <= 10/s), ``show_camera(width, height)`` and ``input``;
``getpass.getpass`` asks the client for a password; ``maix.display.show(img)`` is
mirrored into the running exec (MaixPy compatibility).

Events returned by ``poll()`` (one JSON-able dict each)::

    {"type": "stream", "name": "stdout"|"stderr", "text"}
    {"type": "result", "execution_count", "data": {mime: ...}, "metadata": {}}
    {"type": "display", "data", "metadata", "transient": {"display_id"}?, "update": bool}
    {"type": "input_request", "prompt", "password"}
    {"type": "error", "ename", "evalue", "traceback": [lines]}

Output written to ``sys.stdout``/``sys.stderr`` by the exec thread goes to the
running exec (coalesced); so does output of threads it started, while it runs. With an
``output.Output`` attached (the agent does), fds 1 and 2 (``os.system``, subprocesses, C
libraries) go to the running exec too, and whatever no exec takes goes to the board log.
"""

import ast
import base64
import collections
import io
import itertools
import json
import keyword
import linecache
import logging
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import types
import zlib

try:  # the builtins module (a dict when this source is exec'd elsewhere)
    import builtins as _builtins_mod
except ImportError:  # pragma: no cover
    _builtins_mod = None

__all__ = ["Executor", "StdinNotImplementedError", "CAMERA_MIME"]

_THIS_FILE = sys._getframe().f_code.co_filename

CAMERA_MIME = "application/vnd.jupyter.remote-device.camera+json"
MAX_BUFFERED = 4 * 1024 * 1024      # undelivered output kept per exec
MAX_IMAGE_BYTES = 50 * 1000         # target size of an image in a display
LIVE_INTERVAL = 0.1                 # live displays: at most 10 updates a second
EXPIRE_AFTER = 60.0                 # finished execs are forgotten after this
MAX_LINECACHE = 400                 # cell sources kept for tracebacks
_TERMINAL_STATES = ("ok", "error", "aborted")


class StdinNotImplementedError(RuntimeError):
    """input() was called but the client does not accept input requests."""


class _Interrupted(BaseException):
    pass


def _log_to(log):
    if log is None:
        return logging.getLogger("jupyter_remote_device.agent.executor")
    return log


# ---------------------------------------------------------------- images

def _pil():
    try:
        from PIL import Image  # noqa: F401
        return Image
    except Exception:
        return None


def _png_from_rgb(width, height, data, channels=3):
    """A minimal PNG encoder (no Pillow needed) for 8-bit gray/RGB/RGBA rows."""
    color = {1: 0, 3: 2, 4: 6}[channels]
    stride = width * channels
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        raw += data[y * stride:(y + 1) * stride]

    def chunk(tag, payload):
        c = struct.pack(">I", len(payload)) + tag + payload
        return c + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
            + chunk(b"IEND", b""))


def _is_pil_image(obj):
    mod = type(obj).__module__ or ""
    return mod.startswith("PIL.") and hasattr(obj, "save") and hasattr(obj, "size")


def _to_pil(obj):
    """A PIL image for obj (PIL image, image-like numpy array, maix image) or None."""
    if _is_pil_image(obj):
        return obj
    Image = _pil()
    if Image is None:
        return None
    mod = type(obj).__module__ or ""
    try:
        if mod.startswith("numpy") and hasattr(obj, "ndim") and hasattr(obj, "dtype"):
            if str(obj.dtype) == "uint8" and (obj.ndim == 2 or (obj.ndim == 3 and obj.shape[2] in (1, 3, 4))):
                if obj.ndim == 3 and obj.shape[2] == 1:
                    obj = obj[:, :, 0]
                return Image.fromarray(obj)
            return None
        if mod.startswith("maix") or mod.startswith("_maix"):
            for name in ("to_pil", "to_PIL"):
                fn = getattr(obj, name, None)
                if callable(fn):
                    return fn()
            w, h = obj.width, obj.height
            w = w() if callable(w) else w
            h = h() if callable(h) else h
            data = obj.tobytes()
            if len(data) == w * h * 3:
                return Image.frombytes("RGB", (w, h), data)
    except Exception:
        return None
    return None


def encode_image(img, prefer="auto", max_bytes=MAX_IMAGE_BYTES, quality=85):
    """Encode a PIL image: returns (mime, bytes, (width, height)).

    PNG for small or palette images when it fits in ``max_bytes``; otherwise JPEG,
    lowering quality and then the size until it fits (where possible).
    """
    w, h = img.size
    if prefer in ("auto", "png") and (prefer == "png" or w * h <= 256 * 256 or img.mode in ("1", "P")):
        buf = io.BytesIO()
        try:
            img.save(buf, format="PNG")
            if buf.tell() <= max_bytes or prefer == "png":
                return "image/png", buf.getvalue(), (w, h)
        except Exception:
            pass
    im = img
    if im.mode not in ("RGB", "L"):
        try:
            im = im.convert("RGB")
        except Exception:
            pass
    data = b""
    for scale_step in range(5):
        for q in (quality, 70, 55, 40):
            if q > quality:
                continue
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=q)
            data = buf.getvalue()
            if len(data) <= max_bytes:
                return "image/jpeg", data, (w, h)
        if scale_step == 4:
            break
        nw, nh = max(1, int(im.size[0] * 0.7)), max(1, int(im.size[1] * 0.7))
        if nw < 32 or nh < 32:
            break
        im = im.resize((nw, nh))
    return "image/jpeg", data, (w, h)


def image_bundle(obj, max_bytes=MAX_IMAGE_BYTES, prefer="auto"):
    """(data, metadata) for an image-like object, or None."""
    img = _to_pil(obj)
    if img is not None:
        mime, raw, (w, h) = encode_image(img, prefer=prefer, max_bytes=max_bytes)
        data = {mime: base64.b64encode(raw).decode("ascii"),
                "text/plain": "<%s image %dx%d>" % (getattr(img, "mode", "?"), w, h)}
        return data, {mime: {"width": w, "height": h}}
    # no Pillow: raw numpy uint8 array -> minimal PNG
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy") and getattr(obj, "ndim", 0) in (2, 3) and str(getattr(obj, "dtype", "")) == "uint8":
        try:
            h, w = obj.shape[0], obj.shape[1]
            ch = 1 if obj.ndim == 2 else obj.shape[2]
            if ch in (1, 3, 4):
                raw = _png_from_rgb(w, h, obj.tobytes(), ch)
                return ({"image/png": base64.b64encode(raw).decode("ascii"),
                         "text/plain": "<image %dx%d>" % (w, h)}, {})
        except Exception:
            return None
    return None


def _text_repr(obj):
    try:
        r = repr(obj)
    except Exception as e:  # a broken __repr__ must not break the cell
        return "<%s object (repr failed: %s)>" % (type(obj).__name__, e)
    if len(r) > 79 and type(obj) in (dict, list, tuple, set, frozenset) and len(r) < 200000:
        try:
            import pprint  # lazily: it pulls in dataclasses
            r = pprint.pformat(obj, width=79)
        except Exception:
            pass
    return r


_REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)


def mime_bundle(obj, images=True):
    """(data, metadata) for obj, IPython style: _repr_*_ methods, images, repr()."""
    data, meta = {}, {}
    if isinstance(obj, type):
        return {"text/plain": _text_repr(obj)}, {}
    fn = getattr(obj, "_repr_mimebundle_", None)
    if callable(fn):
        try:
            out = fn(include=None, exclude=None)
            if isinstance(out, tuple) and len(out) == 2:
                d, m = out
            else:
                d, m = out, {}
            if isinstance(d, dict):
                data.update(d)
            if isinstance(m, dict):
                meta.update(m)
        except Exception:
            pass
    pil = _is_pil_image(obj)  # Pillow's own _repr_png_ ignores our size budget
    for name, mime in _REPR_METHODS:
        if mime in data or (pil and mime.startswith("image/")):
            continue
        fn = getattr(obj, name, None)
        if not callable(fn):
            continue
        try:
            v = fn()
        except Exception:
            continue
        if v is None:
            continue
        if isinstance(v, tuple) and len(v) == 2:
            v, m = v
            if isinstance(m, dict):
                meta[mime] = m
        if isinstance(v, (bytes, bytearray)):
            v = base64.b64encode(bytes(v)).decode("ascii")
        data[mime] = v
    if images and not any(k.startswith("image/") for k in data):
        try:
            ib = image_bundle(obj)
        except Exception:
            ib = None
        if ib is not None:
            d, m = ib
            for k, v in d.items():
                if k == "text/plain" and k in data:
                    continue
                data[k] = v
            meta.update(m)
    if "text/plain" not in data:
        data["text/plain"] = _text_repr(obj)
    return data, meta


# ---------------------------------------------------------------- streams

class _StreamProxy(object):
    """sys.stdout/sys.stderr replacement: the exec thread's writes go to the exec."""

    def __init__(self, name, original, executor):
        self._name = name
        self._original = original
        self._executor = executor

    def _target(self):
        ex = self._executor
        rec = ex._current
        if rec is not None and threading.get_ident() == ex._exec_ident:
            return rec
        out = ex.output
        return out.thread_exec() if out is not None else None  # a thread a running cell started

    def write(self, s):
        rec = self._target()
        if rec is None:
            if self._executor.output is not None:  # the board log (output.py)
                return self._executor.output.orphan(self._name, s)
            if self._original is None:
                return len(s)
            return self._original.write(s)
        if not isinstance(s, str):
            if isinstance(s, (bytes, bytearray)):
                s = bytes(s).decode("utf-8", "replace")
            else:
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        rec.add_stream(self._name, s)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._target() is None and self._original is not None:
            try:
                self._original.flush()
            except Exception:
                pass

    def isatty(self):
        return False

    def writable(self):
        return True

    @property
    def encoding(self):
        return getattr(self._original, "encoding", "utf-8") or "utf-8"

    def __getattr__(self, name):
        if self._original is None:
            raise AttributeError(name)
        return getattr(self._original, name)


# ---------------------------------------------------------------- one exec

class _Exec(object):
    def __init__(self, exec_id, code, ns, mode, silent, allow_stdin):
        self.id = exec_id
        self.code = code
        self.ns = ns
        self.mode = mode
        self.silent = silent
        self.allow_stdin = allow_stdin
        self.status = "queued"
        self.cond = threading.Condition()
        self.pending = []          # [kind, ...] items, see _drain
        self.buffered = 0
        self.dropped = None        # [bytes] while dropping
        self.created = time.time()
        self.finished_at = None
        self.input_value = None
        self.awaiting_input = False
        self.interrupted = False
        # live display (show / maix display.show)
        self.live = {}             # display_id -> {"last": t, "first": bool, "pending": obj}
        self.owner = None

    # producers -------------------------------------------------------
    def add_stream(self, name, text):
        if not text:
            return
        n = len(text)
        with self.cond:
            if self.buffered + n > MAX_BUFFERED:
                if self.dropped is None:
                    self.dropped = [0]
                    self.pending.append(["dropped", name, self.dropped])
                self.dropped[0] += n
                return
            p = self.pending
            if p and p[-1][0] == "stream" and p[-1][1] == name:
                p[-1][2].append(text)
            else:
                p.append(["stream", name, [text]])
            self.buffered += n
            self.cond.notify_all()

    def add_event(self, event, size=0, replace_display_id=None):
        with self.cond:
            if replace_display_id is not None:
                # latest wins: replace an undelivered update of the same display
                for item in self.pending:
                    if item[0] == "event" and item[1].get("update") and \
                            (item[1].get("transient") or {}).get("display_id") == replace_display_id:
                        self.buffered += size - item[2]
                        item[1] = event
                        item[2] = size
                        self.cond.notify_all()
                        return
            if size and self.buffered + size > MAX_BUFFERED:
                if self.dropped is None:
                    self.dropped = [0]
                    self.pending.append(["dropped", "stderr", self.dropped])
                self.dropped[0] += size
                return
            self.pending.append(["event", event, size])
            self.buffered += size
            self.cond.notify_all()

    def finish(self, status):
        with self.cond:
            self.status = status
            self.finished_at = time.time()
            self.cond.notify_all()

    # consumer --------------------------------------------------------
    def drain(self):
        events = []
        for item in self.pending:
            if item[0] == "stream":
                events.append({"type": "stream", "name": item[1], "text": "".join(item[2])})
            elif item[0] == "dropped":
                events.append({"type": "stream", "name": "stderr",
                               "text": "\n[jupyter-remote-device: %d characters of output dropped "
                                       "(client reading too slowly)]\n" % item[2][0]})
            else:
                events.append(item[1])
        self.pending = []
        self.buffered = 0
        self.dropped = None
        return events


class _Namespace(object):
    def __init__(self, name, builtins_dict):
        self.name = name
        self.module = types.ModuleType("__main__")
        self.globals = self.module.__dict__
        self.globals["__builtins__"] = builtins_dict
        self.execution_count = 0


# ---------------------------------------------------------------- executor

class Executor(object):
    """Runs code FIFO on the thread that calls ``run_forever`` (see module doc)."""

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

    # ------------------------------------------------------------ public API
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

    def interrupt(self, exec_id=None):
        with self._lock:
            rec = self._current
            if exec_id is not None and (rec is None or rec.id != exec_id):
                queued = self._execs.get(exec_id)
                if queued is not None and queued.status == "queued":
                    try:
                        self._queue.remove(queued)
                    except ValueError:
                        return False
                    queued.finish("aborted")
                    return True
                return False
            if rec is None:
                return False
            rec.interrupted = True
            self._interrupt_pending = True
            with rec.cond:
                rec.cond.notify_all()   # wakes an input() wait
            ident = self._exec_ident
        self._deliver_interrupt(ident)
        return True

    def complete(self, ns, code, cursor_pos=None):
        if cursor_pos is None:
            cursor_pos = len(code)
        cursor_pos = max(0, min(int(cursor_pos), len(code)))
        g = self._namespace(ns).globals
        before = code[:cursor_pos]
        line = before.rsplit("\n", 1)[-1]
        m = re.search(r"^\s*(?:import\s+|from\s+)([\w.]*)$", line)
        if m:
            token = m.group(1)
            matches = _module_names(token)
            return {"matches": matches, "cursor_start": cursor_pos - len(token),
                    "cursor_end": cursor_pos, "metadata": {}}
        m = re.search(r"^\s*from\s+([\w.]+)\s+import\s+(?:.*,\s*)?(\w*)$", line)
        if m:
            token = m.group(2)
            mod = sys.modules.get(m.group(1))
            names = sorted(n for n in dir(mod) if n.startswith(token)) if mod is not None else []
            return {"matches": names, "cursor_start": cursor_pos - len(token),
                    "cursor_end": cursor_pos, "metadata": {}}
        m = re.search(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]?\w*)*$|\.$", before)
        token = m.group(0) if m else ""
        if token.startswith("."):
            token = ""
        matches = []
        if "." in token:
            expr, _, attr = token.rpartition(".")
            obj = _resolve(expr, g)
            if obj is not _MISSING:
                try:
                    names = dir(obj)
                except Exception:
                    names = []
                if not attr.startswith("_"):
                    names = [n for n in names if not n.startswith("_")]
                matches = [expr + "." + n for n in names if n.startswith(attr)]
        else:
            b = g.get("__builtins__")
            if isinstance(b, types.ModuleType):
                b = b.__dict__
            pool = set(g) | set(b or {}) | set(keyword.kwlist)
            matches = [n for n in pool if n.startswith(token) and (token.startswith("_") or not n.startswith("_"))]
        matches.sort(key=lambda s: (s.rsplit(".", 1)[-1].startswith("_"), s.lower()))
        return {"matches": matches[:1000], "cursor_start": cursor_pos - len(token),
                "cursor_end": cursor_pos, "metadata": {}}

    def inspect(self, ns, code, cursor_pos=None, detail_level=0):
        if cursor_pos is None:
            cursor_pos = len(code)
        cursor_pos = max(0, min(int(cursor_pos), len(code)))
        g = self._namespace(ns).globals
        name = _name_at(code, cursor_pos)
        if not name:
            return {"found": False, "data": {}, "metadata": {}}
        obj = _resolve(name, g)
        if obj is _MISSING:
            return {"found": False, "data": {}, "metadata": {}}
        return {"found": True, "data": {"text/plain": _describe(name, obj, detail_level)}, "metadata": {}}

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

    # ------------------------------------------------------------ interrupts
    def _on_sigint(self, signum, frame):
        requested = self._interrupt_pending
        self._interrupt_pending = False
        rec = self._current
        if rec is None:
            if not requested and self._stop_event is not None:
                self._stop_event.set()      # Ctrl-C while idle: stop the agent
            return
        if not requested:
            now = time.time()
            if now - self._last_terminal_sigint < 3.0 and self._stop_event is not None:
                self._stop_event.set()
            self._last_terminal_sigint = now
        rec.interrupted = True
        if self._in_user:
            raise KeyboardInterrupt()
        # between user code and bookkeeping: _run() checks rec.interrupted itself

    def _clear_async_exc(self):
        ident = self._exec_ident
        if ident is None:
            return
        try:
            import ctypes
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        except Exception:
            pass

    def _deliver_interrupt(self, ident):
        if ident is None:
            return
        if self._main_mode:
            try:
                signal.pthread_kill(ident, signal.SIGINT)
                return
            except Exception as e:  # pragma: no cover
                self.log.warning("pthread_kill failed: %s", e)
        if not self._in_user:
            return  # _run() sees rec.interrupted before it starts user code
        try:
            import ctypes
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
        except Exception as e:  # pragma: no cover
            self.log.warning("cannot interrupt: %s", e)

    def _install_sleep_wrapper(self):
        if self._orig_sleep is not None:
            return
        orig = time.sleep
        self._orig_sleep = orig
        ex = self

        def sleep(secs):
            rec = ex._current
            if rec is None or threading.get_ident() != ex._exec_ident:
                return orig(secs)
            end = time.time() + max(0.0, secs)
            while True:
                if rec.interrupted:
                    raise KeyboardInterrupt()
                left = end - time.time()
                if left <= 0:
                    return None
                orig(min(left, 0.05))

        sleep.__doc__ = orig.__doc__
        time.sleep = sleep

    # ------------------------------------------------------------ running code
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

    # ------------------------------------------------------------ builtins injected in namespaces
    def _target(self):
        rec = self._current
        return rec

    def _display(self, *objs, **kw):
        display_id = kw.pop("display_id", None)
        metadata = kw.pop("metadata", None)
        transient = kw.pop("transient", None)
        update = bool(kw.pop("update", False))
        raw = bool(kw.pop("raw", False))
        kw.pop("include", None)
        kw.pop("exclude", None)
        kw.pop("clear", None)
        if kw:
            raise TypeError("display() got unexpected keyword arguments: %s" % ", ".join(sorted(kw)))
        if display_id is True:
            display_id = os.urandom(16).hex()
        rec = self._target()
        for obj in objs:
            if raw and isinstance(obj, dict):
                data, meta = dict(obj), dict(metadata or {})
            else:
                data, meta = mime_bundle(obj)
                if metadata:
                    meta.update(metadata)
            ev = {"type": "display", "data": data, "metadata": meta, "update": update}
            tr = dict(transient or {})
            if display_id:
                tr["display_id"] = str(display_id)
            if tr:
                ev["transient"] = tr
            if rec is not None:
                rec.add_event(ev, size=_bundle_size(data),
                              replace_display_id=tr.get("display_id") if update else None)
        if display_id:
            return _DisplayHandle(self, display_id)
        return None

    def _update_display(self, obj, display_id=None, **kw):
        if display_id is None:
            raise TypeError("update_display() needs display_id")
        kw["display_id"] = display_id
        kw["update"] = True
        self._display(obj, **kw)

    def _live(self, obj, key, bundle_fn):
        """Throttled live display (at most 10/s, latest wins, flushed at the end)."""
        rec = self._target()
        if rec is None:
            return
        st = rec.live.get(key)
        if st is None:
            st = rec.live[key] = {"last": 0.0, "sent": False, "pending": None, "fn": bundle_fn}
        now = time.time()
        if now - st["last"] < LIVE_INTERVAL:
            st["pending"] = obj
            return
        st["pending"] = None
        st["last"] = now
        self._emit_live(rec, key, st, obj)

    def _emit_live(self, rec, key, st, obj):
        try:
            data, meta = st["fn"](obj)
        except Exception as e:
            data, meta = {"text/plain": "<cannot display %s: %s>" % (type(obj).__name__, e)}, {}
        ev = {"type": "display", "data": data, "metadata": meta,
              "transient": {"display_id": key}, "update": st["sent"]}
        rec.add_event(ev, size=_bundle_size(data), replace_display_id=key if st["sent"] else None)
        st["sent"] = True

    def _flush_live(self, rec):
        for key, st in list(rec.live.items()):
            obj = st.get("pending")
            if obj is not None:
                st["pending"] = None
                self._emit_live(rec, key, st, obj)

    def _show(self, img, *args, **kw):
        """show(img): a live image in the cell output, updated in place (<= 10/s)."""
        rec = self._target()
        key = "show-%s" % (rec.id if rec else "idle")
        self._live(img, key, _live_image_bundle)

    def _mirror_display_show(self, img):
        rec = self._target()
        if rec is None:
            return
        key = "maix-display-%s" % rec.id
        host = self.hostname

        def bundle(obj):
            data, meta = _live_image_bundle(obj)
            w = h = None
            m = meta.get("image/jpeg") or meta.get("image/png") or {}
            w, h = m.get("width"), m.get("height")
            data[CAMERA_MIME] = {"device": host, "width": w, "height": h, "source": "display.show"}
            return data, meta

        self._live(img, key, bundle)

    def _show_camera(self, width=640, height=480, camera=None):
        """Show the board's live camera in this cell (a camera bundle + a still)."""
        width, height = int(width), int(height)
        still = None
        if callable(self.snapshot):
            try:
                still = self.snapshot(width, height)
            except Exception as e:
                self.log.debug("snapshot failed: %s", e)
        if still is None:
            still = _placeholder_jpeg(width, height, "camera: %s" % self.hostname)
        spec = {"device": self.hostname, "width": width, "height": height}
        if camera is not None:
            spec["camera"] = camera
        data = {CAMERA_MIME: spec,
                "text/plain": "<live camera %s %dx%d>" % (self.hostname, width, height)}
        if still:
            data["image/jpeg"] = base64.b64encode(still).decode("ascii")
        self._display(data, raw=True)

    def _input(self, prompt="", password=False):
        rec = self._target()
        if rec is None or threading.get_ident() != self._exec_ident:
            raise StdinNotImplementedError("input() works only in the code a client is running")
        if not rec.allow_stdin:
            raise StdinNotImplementedError(
                "input() was called, but this client does not support input requests.")
        prompt = str(prompt)
        with rec.cond:
            rec.input_value = None
            rec.awaiting_input = True
        rec.add_event({"type": "input_request", "prompt": prompt, "password": bool(password)})
        try:
            with rec.cond:
                while rec.input_value is None:
                    if rec.interrupted:
                        raise KeyboardInterrupt()
                    rec.cond.wait(0.1)
                value = rec.input_value
                rec.input_value = None
        finally:
            rec.awaiting_input = False
        return value

    # ------------------------------------------------------------ plumbing
    def _install_streams(self):
        """Route sys.stdout/stderr through proxies (again if someone replaced them)."""
        if self._saved_streams is None:
            self._saved_streams = {}
        for name in ("stdout", "stderr"):
            cur = getattr(sys, name)
            if isinstance(cur, _StreamProxy):
                cur._executor = self
                continue
            self._saved_streams.setdefault(name, cur)
            setattr(sys, name, _StreamProxy(name, cur, self))

    def _install_getpass(self):
        """getpass.getpass() in running code asks the client (a password input request)."""
        try:
            import getpass
        except Exception:  # pragma: no cover
            return
        if getattr(getpass.getpass, "_jrd_wrapped", False):
            getpass.getpass._jrd_executor[0] = self
            return
        orig = getpass.getpass
        holder = [self]

        def wrapped(prompt="Password: ", stream=None):
            ex = holder[0]
            if ex is not None and ex._current is not None and threading.get_ident() == ex._exec_ident:
                return ex._input(prompt, password=True)
            return orig(prompt, stream)

        wrapped._jrd_wrapped = True
        wrapped._jrd_executor = holder
        wrapped.__wrapped__ = orig
        getpass.getpass = wrapped

    def _restore_streams(self):
        for name in ("stdout", "stderr"):
            cur = getattr(sys, name)
            if isinstance(cur, _StreamProxy) and cur._executor is self:
                setattr(sys, name, cur._original)
        self._saved_streams = None

    def _install_maix_hook(self):
        """Mirror ``maix.display.show(img)`` into the running exec (MaixPy compat)."""
        ex = self
        mod = sys.modules.get("maix.display")
        if mod is not None:
            _wrap_maix_display(mod, ex)
        for f in sys.meta_path:
            if isinstance(f, _MaixFinder):
                f.executor = ex
                return
        sys.meta_path.insert(0, _MaixFinder(ex))

    def _expire(self):
        now = time.time()
        for k, rec in list(self._execs.items()):
            if rec.finished_at is not None and now - rec.finished_at > EXPIRE_AFTER:
                del self._execs[k]


class _DisplayHandle(object):
    def __init__(self, executor, display_id):
        self._executor = executor
        self.display_id = display_id

    def display(self, obj, **kw):
        kw["display_id"] = self.display_id
        self._executor._display(obj, **kw)

    def update(self, obj, **kw):
        self._executor._update_display(obj, display_id=self.display_id, **kw)

    def __repr__(self):
        return "<DisplayHandle display_id=%s>" % self.display_id


def _live_image_bundle(obj):
    img = _to_pil(obj)
    if img is not None:
        mime, raw, (w, h) = encode_image(img, prefer="jpeg", quality=80)
        return ({mime: base64.b64encode(raw).decode("ascii"),
                 "text/plain": "<image %dx%d>" % (w, h)}, {mime: {"width": w, "height": h}})
    return mime_bundle(obj)


def _hub_snapshot(hub, width, height, timeout=3.0):
    """One JPEG (<= ~50 KB) from a CameraHub's first camera, or None."""
    cams = hub.list()
    if not cams:
        return None
    sid = hub.open_stream(cams[0]["id"], width, height, 70, 0)
    try:
        frame = hub.next_frame(sid, -1, timeout)
    finally:
        try:
            hub.close_stream(sid)
        except Exception:
            pass
    if not frame:
        return None
    hlen = struct.unpack(">I", frame[:4])[0]
    jpeg = bytes(frame[4 + hlen:])
    if len(jpeg) > MAX_IMAGE_BYTES:
        Image = _pil()
        if Image is not None:
            try:
                jpeg = encode_image(Image.open(io.BytesIO(jpeg)), prefer="jpeg", quality=60)[1]
            except Exception:
                pass
    return jpeg


def _placeholder_jpeg(width, height, text):
    Image = _pil()
    if Image is None:
        return None
    try:
        from PIL import ImageDraw
        w, h = max(16, min(width, 640)), max(16, min(height, 480))
        im = Image.new("RGB", (w, h), (32, 32, 40))
        ImageDraw.Draw(im).text((10, 10), text, fill=(220, 220, 220))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=70)
        return buf.getvalue()
    except Exception:
        return None


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
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename != _THIS_FILE]
    if frames:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(e), e)
    return lines


def _bundle_size(data):
    n = 0
    for v in data.values():
        if isinstance(v, str):
            n += len(v)
        else:
            n += 64
    return n


# ---------------------------------------------------------------- maix display.show mirror

def _wrap_maix_display(mod, executor):
    show = getattr(mod, "show", None)
    if show is None or not callable(show):
        return
    if getattr(show, "_jrd_wrapped", False):
        show._jrd_executor[0] = executor
        return
    holder = [executor]

    def wrapped(img=None, *args, **kw):
        result = show(img, *args, **kw) if img is not None or args or kw else show()
        ex = holder[0]
        if img is not None and ex is not None and ex._current is not None:
            try:
                ex._mirror_display_show(img)
            except Exception as e:  # never break the user's loop
                ex.log.debug("display.show mirror failed: %s", e)
        return result

    wrapped._jrd_wrapped = True
    wrapped._jrd_executor = holder
    wrapped.__wrapped__ = show
    wrapped.__doc__ = getattr(show, "__doc__", None)
    wrapped.__name__ = getattr(show, "__name__", "show")
    mod.show = wrapped


class _MaixFinder(object):
    """A meta-path finder that wraps maix.display.show right after it is imported."""

    def __init__(self, executor):
        self.executor = executor
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "maix.display" or self._busy:
            return None
        import importlib.util
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        except Exception:
            spec = None
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _MaixLoader(spec.loader, self)
        return spec

    # Python < 3.4 style API not needed


class _MaixLoader(object):
    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        fn = getattr(self._loader, "create_module", None)
        return fn(spec) if fn else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            _wrap_maix_display(module, self._finder.executor)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)


# ---------------------------------------------------------------- completion / inspection helpers

_MISSING = object()
_module_cache = {"t": 0.0, "names": []}


def _module_names(prefix):
    if "." in prefix:
        parent, _, part = prefix.rpartition(".")
        mod = sys.modules.get(parent)
        names = []
        if mod is not None and hasattr(mod, "__path__"):
            try:
                import pkgutil
                names = [parent + "." + m.name for m in pkgutil.iter_modules(mod.__path__)]
            except Exception:
                names = []
        names += [n for n in sys.modules if n.startswith(parent + ".") and "." not in n[len(parent) + 1:]]
        return sorted(set(n for n in names if n.startswith(prefix)))
    now = time.time()
    if now - _module_cache["t"] > 60:
        names = set(sys.builtin_module_names)
        try:
            import pkgutil
            for m in pkgutil.iter_modules():
                names.add(m.name)
        except Exception:
            pass
        names.update(n for n in sys.modules if "." not in n)
        _module_cache["names"] = sorted(names)
        _module_cache["t"] = now
    return [n for n in _module_cache["names"] if n.startswith(prefix)]


def _resolve(dotted, g):
    """Look a dotted name up in a namespace without evaluating arbitrary code."""
    parts = dotted.split(".")
    if not parts or not all(re.match(r"^[A-Za-z_]\w*$", p) for p in parts):
        return _MISSING
    first = parts[0]
    if first in g:
        obj = g[first]
    else:
        b = g.get("__builtins__")
        if isinstance(b, types.ModuleType):
            b = b.__dict__
        if b and first in b:
            obj = b[first]
        elif first in sys.modules:
            obj = sys.modules[first]
        else:
            return _MISSING
    for p in parts[1:]:
        try:
            obj = getattr(obj, p)
        except Exception:
            return _MISSING
    return obj


def _name_at(code, pos):
    """The dotted name at the cursor, or the callee when the cursor is inside a call."""
    ident = r"[A-Za-z_][\w.]*"
    left = re.search(r"[\w.]*$", code[:pos]).group(0)
    right = re.match(r"\w*", code[pos:]).group(0)
    name = (left + right).strip(".")
    if name and re.match(r"^[A-Za-z_]", name):
        return name
    # inside a call: foo(a, b|
    depth = 0
    i = pos - 1
    while i >= 0:
        c = code[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = re.search(ident + r"$", code[:i])
                return m.group(0) if m else ""
            depth -= 1
        elif c == "\n" and depth == 0 and i < pos - 200:
            break
        i -= 1
    return ""


def _describe(name, obj, detail_level=0):
    import inspect as _inspect
    out = []
    out.append("Type:           %s" % type(obj).__name__)
    try:
        s = _text_repr(obj)
        if len(s) > 200:
            s = s[:200] + "..."
        out.append("String form:    %s" % s)
    except Exception:
        pass
    if hasattr(obj, "__len__") and not isinstance(obj, type):
        try:
            out.append("Length:         %d" % len(obj))
        except Exception:
            pass
    if callable(obj):
        try:
            out.append("Signature:      %s%s" % (name, _inspect.signature(obj)))
        except Exception:
            pass
    try:
        f = _inspect.getsourcefile(obj) or _inspect.getfile(obj)
        out.append("File:           %s" % f)
    except Exception:
        pass
    doc = _inspect.getdoc(obj) if not isinstance(obj, (int, float, str, bytes, list, dict, tuple, set)) else None
    if doc:
        out.append("Docstring:\n%s" % doc)
    if detail_level and detail_level > 0:
        try:
            out.append("Source:\n%s" % _inspect.getsource(obj))
        except Exception:
            pass
    return "\n".join(out)


def is_complete(code):
    """'complete' | 'incomplete' | 'invalid' (+ indent) like IPython, using codeop."""
    import codeop
    try:
        r = codeop.compile_command(code, "<input>", "exec")
    except (SyntaxError, OverflowError, ValueError):
        return {"status": "invalid"}
    if r is None:
        last = code.rstrip("\n").split("\n")[-1] if code.strip() else ""
        indent = re.match(r"\s*", last).group(0)
        if last.rstrip().endswith(":"):
            indent += "    "
        return {"status": "incomplete", "indent": indent}
    if code.rstrip("\n").split("\n")[-1].startswith((" ", "\t")) and not code.endswith("\n\n"):
        return {"status": "incomplete", "indent": ""}
    return {"status": "complete"}


def dumps(obj):
    return json.dumps(obj, default=str)


# ---------------------------------------------------------------- background mode (stock rpyc classic servers)
# The kernel sends this module's source to a board that runs a plain rpyc classic
# server, registers it as sys.modules["jrd_board_executor"] and drives it with
# ``call_json``: every answer is a JSON string, so no netref crosses the wire.

EXECUTOR = None
_BACKGROUND = {}
_API = ("start", "poll", "send_input", "interrupt", "complete", "inspect", "reset", "busy", "forget")


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


def call_json(method, *args):
    if method not in _API:
        raise ValueError("unknown method %r" % (method,))
    ex = ensure_background()
    return json.dumps(getattr(ex, method)(*args), default=str)
