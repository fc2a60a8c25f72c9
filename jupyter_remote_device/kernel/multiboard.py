"""``%%boards NAME|HOST[:PORT] ...``: run one cell on several boards at once, each board's output
apart and labelled (a teacher checking a room).

Each board gets its own connection (kept between ``%%boards`` cells, so variables stay) and
this kernel's namespace on that board; the cell runs on every board in parallel (at most
``MAX_PARALLEL`` at a time). What a board prints is shown live in that board's own output block
(``display_data`` updated in place, headed by the board's name and its state); rich outputs
(images, ``show()``) follow, marked with the board in their metadata. A board that cannot be
reached, or whose code raises, says so in its block; the cell's reply is an error naming the
boards that failed (so "Run all" stops), after every board has finished. Interrupt stops
every board's run.

The board names are the ones ``%connect NAME`` knows (the server's saved boards, which include
the configured ones), or addresses.
"""
import queue
import re
import shlex
import threading
import time
import uuid

from ..link.wire import CAMERA_MIME
from . import boards
from .inert import make_inert

MAX_BOARDS = 64
MAX_PARALLEL = 16
POLL_WAIT = 0.25
MAX_BLOCK_CHARS = 200_000  # the text kept per board's block (the tail wins)
UPDATE_EVERY = 0.1  # s: live updates of a block at most 10 times a second

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
USAGE = ("Usage: %%boards NAME|HOST[:PORT] [NAME ...] [--timeout SECONDS] on the first line, then the code "
         "to run on each board. Board names are those %devices lists.")


class UsageError(Exception):
    pass


def parse_line(line):
    """'%%boards a b --timeout 5' -> (['a', 'b'], 5.0 or None). UsageError when malformed."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError("%%%%boards: %s. %s" % (e, USAGE))
    if not words or words[0] != "%%boards":
        raise UsageError(USAGE)
    names, timeout = [], None
    i = 1
    while i < len(words):
        w = words[i]
        if w == "--timeout" or w.startswith("--timeout="):
            value = w.split("=", 1)[1] if "=" in w else (words[i + 1] if i + 1 < len(words) else None)
            i += 1 if "=" in w else 2
            try:
                timeout = float(value)
            except (TypeError, ValueError):
                raise UsageError("%%boards: --timeout needs a number of seconds")
            if not 0 < timeout <= 86400:
                raise UsageError("%%boards: --timeout must be between 0 and 86400 seconds")
            continue
        if w.startswith("-"):
            raise UsageError("%%%%boards: unknown option %s. %s" % (w, USAGE))
        if w not in names:
            names.append(w)
        i += 1
    if not names:
        raise UsageError("%%boards needs at least one board. " + USAGE)
    if len(names) > MAX_BOARDS:
        raise UsageError("%%%%boards: at most %d boards in one cell" % MAX_BOARDS)
    return names, timeout


def resolve(name):
    """A saved board's name (or id), else HOST[:PORT] -> boards.Target. UsageError otherwise."""
    dev = boards.find_device(name)
    if dev is not None:
        return boards.target_from_device(dev)
    try:
        host, port = boards.split_host_port(name, boards.AGENT_PORT)
    except ValueError as e:
        raise UsageError("%%%%boards: %s is neither a saved board (see %%devices) nor an address: %s" % (name, e))
    return boards.with_saved_token(boards.Target(host, port))


class _Run(object):
    """One board's part of a cell: its block's state, filled by a worker thread."""

    def __init__(self, name, target):
        self.name = name
        self.target = target
        self.display_id = "jrd-boards-" + uuid.uuid4().hex
        self.state = "connecting"  # connecting, running, ok, error, unreachable, interrupted, timeout
        self.text = []
        self.size = 0
        self.error = None  # (ename, evalue)
        self.started = time.monotonic()
        self.elapsed = None
        self.backend = None
        self.exec_id = None

    def add_text(self, text):
        text = _ANSI.sub("", text)
        self.text.append(text)
        self.size += len(text)
        while self.size > MAX_BLOCK_CHARS and len(self.text) > 1:
            self.size -= len(self.text.pop(0))

    def header(self):
        label = self.target.label if self.name == self.target.address else "%s (%s)" % (self.name, self.target.address)
        took = " · %.1f s" % self.elapsed if self.elapsed is not None else ""
        return "── %s · %s%s" % (label, self.state, took)

    def bundle(self):
        body = "".join(self.text)
        if self.size > MAX_BLOCK_CHARS:
            body = "[… earlier output cut …]\n" + body
        plain = self.header() + "\n" + body
        html_body = _escape(body) if body else ""
        html = ('<div class="jp-RemoteDevice-boardOutput" data-board="%s" data-state="%s">'
                '<div style="font-weight:600;border-bottom:1px solid var(--jp-border-color2,#ccc)">%s</div>'
                '<pre style="margin:2px 0 6px">%s</pre></div>') % (
                    _escape(self.name), self.state, _escape(self.header()), html_body)
        return {"text/plain": plain, "text/html": html}


def _escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class BoardsMagic(object):
    """``%%boards`` for one kernel: the connections it keeps, the run in progress."""

    def __init__(self, kernel):
        self.kernel = kernel
        self._backends = {}  # target key -> backend
        self._lock = threading.Lock()
        self._runs = []
        self._interrupted = threading.Event()

    # -- the kernel's hooks -----------------------------------------------------------------------
    @staticmethod
    def matches(code):
        return code.lstrip().startswith("%%boards")

    def interrupt(self):
        """Interrupt every board's run (the kernel's interrupt_request)."""
        self._interrupted.set()
        for run in list(self._runs):
            backend, exec_id = run.backend, run.exec_id
            if backend is not None and exec_id is not None:
                try:
                    backend.interrupt(exec_id)
                except Exception:
                    pass
        return bool(self._runs)

    def close(self):
        with self._lock:
            backends, self._backends = list(self._backends.values()), {}
        for b in backends:
            try:
                b.reset(self.kernel.ns)
            except Exception:
                pass
            try:
                b.close()
            except Exception:
                pass

    def run(self, code, silent):
        """Run the cell; returns the execute reply."""
        k = self.kernel
        code = code.lstrip()
        line, _, body = code.partition("\n")
        try:
            names, timeout = parse_line(line)
            targets = [(n, resolve(n)) for n in names]
        except UsageError as e:
            return k._error_reply("UsageError", str(e))
        if not body.strip():
            return k._error_reply("UsageError", "%%boards: the cell has no code to run below its first line")
        self._interrupted.clear()
        self._runs = runs = [_Run(n, t) for n, t in targets]
        events = queue.Queue()
        for run in runs:
            self._publish(run, update=False, silent=silent)
        pending = list(runs)
        workers = []

        def launch():
            while pending and sum(1 for w in workers if w.is_alive()) < MAX_PARALLEL:
                run = pending.pop(0)
                w = threading.Thread(target=self._work, args=(run, body, timeout, events), daemon=True,
                                     name="jrd-boards-%s" % run.name)
                workers.append(w)
                w.start()

        launch()
        dirty = {}
        last = {}
        try:
            while pending or any(w.is_alive() for w in workers) or not events.empty():
                try:
                    run, kind, payload = events.get(timeout=0.05)
                except queue.Empty:
                    run = None
                except KeyboardInterrupt:
                    self.interrupt()
                    continue
                if run is not None:
                    if kind == "text":
                        run.add_text(payload)
                        dirty[run] = True
                    elif kind == "rich":
                        self._publish_rich(run, payload, silent)
                    elif kind == "state":
                        dirty[run] = True
                now = time.monotonic()
                for r in list(dirty):
                    if r.state not in ("connecting", "running") or now - last.get(r, 0) >= UPDATE_EVERY:
                        self._publish(r, update=True, silent=silent)
                        last[r] = now
                        del dirty[r]
                launch()
        finally:
            for r in list(dirty):
                self._publish(r, update=True, silent=silent)
            self._runs = []
        failed = [r for r in runs if r.state != "ok"]
        if not failed:
            return k._ok_reply()
        parts = ["%s (%s)" % (r.name, r.error[0] if r.error else r.state) for r in failed]
        return k._error_reply("BoardsFailed", "%d of %d boards failed: %s" % (len(failed), len(runs), ", ".join(parts)),
                              publish=not silent)

    # -- one board --------------------------------------------------------------------------------
    def _backend(self, target):
        key = target.key()
        with self._lock:
            b = self._backends.get(key)
        if b is not None and not b.closed:
            return b
        b = self.kernel._open_board(target)
        with self._lock:
            old = self._backends.get(key)
            self._backends[key] = b
        if old is not None and old is not b:
            try:
                old.close()
            except Exception:
                pass
        return b

    def _work(self, run, code, timeout, events):
        def finish(state, error=None):
            run.state = state
            run.error = error
            run.elapsed = time.monotonic() - run.started
            events.put((run, "state", None))

        try:
            backend = self._backend(run.target)
        except boards.BoardError as e:
            run.add_text("not reachable: %s (%s)\n" % (e.message, e.reason))
            return finish("unreachable", ("Unreachable", e.message))
        except Exception as e:
            run.add_text("could not connect: %s: %s\n" % (type(e).__name__, e))
            return finish("unreachable", (type(e).__name__, str(e)))
        run.backend = backend
        run.state = "running"
        events.put((run, "state", None))
        ns = self.kernel.ns
        try:
            run.exec_id = exec_id = backend.start(code, ns, "cell", False, False)
            if self._interrupted.is_set():
                backend.interrupt(exec_id)
            deadline = time.monotonic() + timeout if timeout else None
            timed_out = False
            status, error = "ok", None
            while True:
                r = backend.poll(exec_id, POLL_WAIT)
                for ev in r.get("events", ()):
                    t = ev.get("type")
                    if t == "stream":
                        events.put((run, "text", ev.get("text", "")))
                    elif t == "error":
                        error = ev
                        tb = ev.get("traceback") or ["%s: %s" % (ev.get("ename"), ev.get("evalue"))]
                        events.put((run, "text", "\n".join(tb) + "\n"))
                    elif t in ("display", "result"):
                        data = ev.get("data") or {}
                        if set(data) <= {"text/plain"}:
                            events.put((run, "text", str(data.get("text/plain", "")) + "\n"))
                        else:
                            events.put((run, "rich", ev))
                    elif t == "input_request":
                        backend.send_input(exec_id, "")
                        events.put((run, "text", "[input() is not available under %%boards: got '']\n"))
                if r.get("done"):
                    status = r.get("status")
                    break
                if deadline is not None and time.monotonic() > deadline and not timed_out:
                    timed_out = True
                    backend.interrupt(exec_id)
            backend.forget(exec_id)
        except Exception as e:
            if boards._is_connection_error(e) or getattr(backend, "closed", False):
                with self._lock:
                    if self._backends.get(run.target.key()) is backend:
                        del self._backends[run.target.key()]
                run.add_text("the connection was lost: %s: %s\n" % (type(e).__name__, e))
                return finish("unreachable", ("ConnectionLost", str(e)))
            run.add_text("talking to the board failed: %s: %s\n" % (type(e).__name__, e))
            return finish("error", (type(e).__name__, str(e)))
        finally:
            run.exec_id = None
        if timed_out:
            return finish("timeout", ("Timeout", "still running after %g s" % timeout))
        if status == "aborted" or (error and error.get("ename") == "KeyboardInterrupt" and self._interrupted.is_set()):
            return finish("interrupted", ("KeyboardInterrupt", ""))
        if status == "error" or error is not None:
            error = error or {}
            return finish("error", (error.get("ename", "Error"), error.get("evalue", "")))
        return finish("ok")

    # -- output -----------------------------------------------------------------------------------
    def _publish(self, run, update, silent):
        if silent:
            return
        content = {"data": run.bundle(), "metadata": {"remote_device": {"board": run.name,
                                                                        "state": run.state}},
                   "transient": {"display_id": run.display_id}}
        self.kernel.send_response(self.kernel.iopub_socket, "update_display_data" if update else "display_data",
                                  content)

    def _publish_rich(self, run, ev, silent):
        """A board's image or other rich output, after its block; made inert like any board output.
        (The live camera MIME type is dropped: its viewer follows the %connect board, not this one;
        the still image beside it stays.)"""
        if silent:
            return
        data = dict(ev.get("data") or {})
        data.pop(CAMERA_MIME, None)
        data, notes = make_inert(data)
        if notes:
            run.add_text("[active content from the board was made inert: %s]\n" % "; ".join(notes))
        if not data:
            return
        metadata = dict(ev.get("metadata") or {})
        metadata["remote_device"] = {"board": run.name}
        content = {"data": data, "metadata": metadata, "transient": {}}
        display_id = (ev.get("transient") or {}).get("display_id")
        if display_id:
            content["transient"]["display_id"] = "%s-%s" % (run.display_id, display_id)
        self.kernel.send_response(self.kernel.iopub_socket,
                                  "update_display_data" if ev.get("update") and display_id else "display_data",
                                  content)
