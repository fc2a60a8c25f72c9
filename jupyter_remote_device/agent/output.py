"""Where output on the board goes: the cell that is waiting for it, or the board log.

Standard library only, Python 3.8 syntax.

* ``BoardLog``: the last 500 lines of output no cell waits for (threads whose cell has
  ended, subprocesses, C libraries, the agent's own log records), read by the server's
  ``devices/{id}/log`` socket with ``read(after, wait)``.
* ``Output.capture_fds()`` (as ipykernel does): file descriptors 1 and 2 become pipes read
  by a thread, so ``os.system``, subprocesses and C code writing to them are seen; while a
  cell runs their output goes to that cell, otherwise to the board log (and on to the
  agent's original stdout/stderr, so its console still shows it).
* ``Output.attach(executor)``: the exec engine asks ``thread_exec()`` where a write from a
  thread other than its own belongs (threads remember the cell that started them; their
  output goes to that cell while it runs), and sends what no cell takes to ``orphan()``.
"""
import collections
import fcntl
import logging
import os
import select
import struct
import termios
import threading
import time

MAX_LINES = 500
MAX_LINE = 4000            # characters kept of one line
_RUNNING = ("running",)


class BoardLog(object):
    def __init__(self, maxlen=MAX_LINES):
        self._entries = collections.deque(maxlen=maxlen)
        self._seq = 0
        self._cond = threading.Condition()
        self._open_line = {}       # stream -> the last entry of that stream did not end a line

    def write(self, stream, text):
        if not text:
            return
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace")
        now = time.time()
        with self._cond:
            if self._open_line.get(stream) and text.startswith("\n"):
                text = text[1:]  # ends the line already logged
            parts = text.split("\n")
            ends_line = parts[-1] == ""
            if ends_line:
                parts.pop()
            for line in parts:
                if len(line) > MAX_LINE:
                    line = line[:MAX_LINE] + "\u2026"
                self._seq += 1
                self._entries.append((self._seq, now, stream, line.rstrip("\r")))
            self._open_line[stream] = not ends_line
            self._cond.notify_all()

    def read(self, after=0, wait=0.0, limit=MAX_LINES):
        """Entries newer than seq ``after`` (waiting up to ``wait`` s for one): (last seq, [entries])."""
        deadline = time.time() + max(0.0, min(float(wait), 30.0))
        with self._cond:
            while self._seq <= after:
                left = deadline - time.time()
                if left <= 0:
                    break
                self._cond.wait(left)
            if after > self._seq:  # the reader knew an older agent process: start over
                after = 0
            out = [{"seq": s, "t": t, "stream": st, "text": x} for (s, t, st, x) in self._entries if s > after]
            return self._seq, out[-max(1, int(limit)):]


class BoardLogHandler(logging.Handler):
    """The agent's own log records, as stream "agent" (rpyc's per-connection chatter left out)."""

    def __init__(self, board_log):
        logging.Handler.__init__(self, logging.INFO)
        self.board_log = board_log
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record):
        try:
            if record.levelno < logging.WARNING and "rpyc" in (record.pathname or ""):
                return
            self.board_log.write("agent", self.format(record) + "\n")
        except Exception:  # pragma: no cover
            pass


class Output(object):
    def __init__(self):
        self.board_log = BoardLog()
        self.executor = None
        self._echo = {}            # stream -> fd of the original stdout/stderr
        self._pipes = {}           # stream -> read end
        self._busy = {}            # stream -> the reader holds data it has not routed yet
        self._threads = []

    # -- the exec engine's side ---------------------------------------------
    def attach(self, executor):
        self.executor = executor
        executor.output = self
        _tag_threads(self)

    def thread_exec(self):
        """The running exec a write from this (non-exec) thread belongs to, or None."""
        rec = getattr(threading.current_thread(), "_jrd_exec", None)
        if rec is not None and rec.status in _RUNNING:
            return rec
        return None

    def orphan(self, stream, text):
        """Output no cell is waiting for: the board log, and the agent's own console."""
        if not isinstance(text, str):
            if isinstance(text, (bytes, bytearray)):
                text = bytes(text).decode("utf-8", "replace")
            else:
                raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        self.board_log.write(stream, text)
        self.echo(stream, text)
        return len(text)

    def echo(self, stream, text):
        fd = self._echo.get(stream)
        if fd is None:
            orig = getattr(__import__("sys"), "__%s__" % stream, None)
            if orig is not None and not self._pipes:
                try:
                    orig.write(text)
                    orig.flush()
                except Exception:
                    pass
            return
        data = text.encode("utf-8", "replace")
        try:
            while data:
                n = os.write(fd, data)
                data = data[n:]
        except OSError:
            pass

    def echo_file(self, stream):
        """A text file writing to the original stdout/stderr (for the agent's console log)."""
        fd = self._echo.get(stream)
        if fd is None:
            return None
        return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")

    # -- file descriptors 1 and 2 ------------------------------------------------
    def capture_fds(self):
        """Make fds 1 and 2 pipes read by this object (once per process)."""
        if self._pipes:
            return
        for stream, fd in (("stdout", 1), ("stderr", 2)):
            try:
                saved = os.dup(fd)
            except OSError:
                continue  # no such fd (a daemon without stdout): nothing to capture
            r, w = os.pipe()
            try:
                import sys
                f = getattr(sys, "__%s__" % stream, None)
                if f is not None:
                    f.flush()
            except Exception:
                pass
            os.dup2(w, fd)
            os.close(w)
            self._echo[stream] = saved
            self._pipes[stream] = r
            self._busy[stream] = False
        if self._pipes:  # one reader for both pipes
            t = threading.Thread(target=self._pump, name="jrd-fd-capture")
            t.daemon = True
            t.start()
            self._threads.append(t)

    def _pump(self):
        import codecs
        readers = {r: (stream, codecs.getincrementaldecoder("utf-8")("replace")) for stream, r in self._pipes.items()}
        while readers:
            try:
                ready = select.select(list(readers), [], [])[0]  # idle without a 64 KB read buffer held
            except InterruptedError:
                continue
            except (OSError, ValueError):
                return
            for r in ready:
                stream, decoder = readers[r]
                self._busy[stream] = True  # before the read: flush() relies on it
                try:
                    try:
                        data = os.read(r, 65536)
                    except InterruptedError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        del readers[r]
                        continue
                    self.route(stream, decoder.decode(data))
                finally:
                    self._busy[stream] = False

    def route(self, stream, text):
        if not text:
            return
        ex = self.executor
        rec = ex._current if ex is not None else None
        if rec is not None and rec.status in _RUNNING:
            rec.add_stream(stream, text)
        else:
            self.orphan(stream, text)

    def flush(self, timeout=0.5):
        """Wait (briefly) until what was written to fds 1 and 2 so far has been routed.

        The reader marks a stream busy before it reads and until it has routed what it read, so
        "the pipe is empty, and then the stream is not busy" means all of it was routed: no wait
        at all when nothing was written."""
        if not self._pipes:
            return
        deadline = time.time() + timeout
        for stream, r in self._pipes.items():
            while not (_pending(r) == 0 and not self._busy.get(stream)) and time.time() < deadline:
                time.sleep(0.002)


def _pending(fd):
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _tag_threads(output):
    """Threads remember the exec that started them (directly or through another such thread)."""
    cls = threading.Thread
    if getattr(cls.start, "_jrd_tagging", None) is not None:
        cls.start._jrd_tagging[0] = output
        return
    orig = cls.start
    holder = [output]

    def start(self):
        out = holder[0]
        ex = out.executor if out is not None else None
        if ex is not None:
            rec = ex._current
            if rec is not None and threading.get_ident() == ex._exec_ident:
                self._jrd_exec = rec
            else:
                parent = getattr(threading.current_thread(), "_jrd_exec", None)
                if parent is not None:
                    self._jrd_exec = parent
        return orig(self)

    start._jrd_tagging = holder
    start.__wrapped__ = orig
    cls.start = start
