"""``RemoteDeviceKernel``: a thin ipykernel ``Kernel`` whose cells run on a board.

The kernel dials the board itself (``%connect``), starts each cell with
``exec_start`` in its own namespace on the board and relays the events that
``exec_poll`` returns as iopub messages. See DESIGN.md ("Kernel").
"""
import os
import re
import shlex
import signal
import threading
import time
import uuid

from ipykernel.kernelbase import Kernel

from .. import __version__
from ..link.wire import CAMERA_MIME
from . import boards
from .boards import AGENT_PORT, CLASSIC_PORT, BoardError, Target
from .inert import make_inert
from .multiboard import BoardsMagic
from .settings import kernel_policy
from .syntax import is_complete as _is_complete

POLL_WAIT = 0.5
RUN_WAIT = 0.3   # s the first call (exec_run) waits for a cell on the board: interrupts wait at most this
RUN_FLUSH = 0.15  # s output waits before that call returns early with it (output of long cells streams)
MAGICS = ("%connect", "%disconnect", "%devices", "%camera", "%pip", "%%boards")
HELP = """\
This kernel runs Python on a board (jupyter-remote-device).
  %connect HOST[:PORT] [--token T] [--tls]
                                     connect to an agent (port 18861 when none is given)
  %connect NAME                      a board the Jupyter server knows (its saved boards)
  $connect("ip[:port]")              rpyc_ikernel's form (port 18812 when none is given)
  %connect                           show the current board
  %disconnect                        close the connection
  %devices                           list the saved boards
  %camera [WIDTH HEIGHT]             the board's live camera in this cell
  %%boards NAME [NAME ...]           run the rest of the cell on each of these boards, each output apart
  %pip install PKG|FILE.whl ...      pip on the board (local wheels are sent along)
On the board: display(obj), update_display(obj, display_id=...), show(img) (a live
image, updated in place), show_camera(width, height), input()."""


class _MagicError(Exception):
    def __init__(self, ename, evalue):
        Exception.__init__(self, evalue)
        self.ename = ename
        self.evalue = evalue


class RemoteDeviceKernel(Kernel):
    implementation = "jupyter_remote_device"
    implementation_version = __version__
    language = "python"
    language_version = "3"
    language_info = {
        "name": "python",
        "version": "3",
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "pygments_lexer": "ipython3",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "nbconvert_exporter": "python",
    }
    banner = "Python on a remote device (jupyter-remote-device). %connect HOST[:PORT] or %connect NAME to pick a board."

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ns = self._namespace_id()
        self.target = None
        self.backend = None
        self.board_info = {}
        self._reset_targets = set()
        self.policy = kernel_policy(self.log)  # the server's allowed_networks, tokens, connect_timeout
        self._boards = BoardsMagic(self)  # %%boards (multiboard.py)
        self._current_exec = None
        self._interrupted = threading.Event()
        self._sigint_installed = False
        host = os.environ.get("JRD_DEVICE_HOST")
        if host:
            try:
                port = int(os.environ.get("JRD_DEVICE_PORT") or AGENT_PORT)
            except ValueError:
                port = AGENT_PORT
            self.target = boards.with_saved_token(Target(host, port, token=os.environ.get("JRD_DEVICE_TOKEN") or None))

    def _namespace_id(self):
        """Stable across restarts of the same kernel (the connection file keeps its name)."""
        cf = getattr(self.parent, "connection_file", None) or ""
        base = os.path.splitext(os.path.basename(cf))[0]
        if base:
            return "kernel:" + base
        return "kernel:" + uuid.uuid4().hex

    # ------------------------------------------------------------ iopub helpers
    def _stream(self, name, text):
        if text:
            self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _error_reply(self, ename, evalue, traceback=None, publish=True):
        tb = traceback if traceback is not None else ["%s: %s" % (ename, evalue)]
        if publish:
            self.send_response(self.iopub_socket, "error", {"ename": ename, "evalue": evalue, "traceback": tb})
        return {"status": "error", "ename": ename, "evalue": evalue, "traceback": tb,
                "execution_count": self.execution_count}

    def _ok_reply(self):
        return {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}

    def _fix_bundle(self, data):
        spec = data.get(CAMERA_MIME)
        if isinstance(spec, dict) and self.target is not None:
            spec = dict(spec)
            if spec.get("device") and "hostname" not in spec:
                spec["hostname"] = spec["device"]
            spec["device"] = self.target.name or self.target.address
            spec["host"] = self.target.host
            spec["port"] = self.target.port
            spec["device_id"] = self.target.device_id or boards.device_id_for(self.target.host, self.target.port)
            data = dict(data)
            data[CAMERA_MIME] = spec
        return data

    def _bundle(self, data):
        """A board's MIME bundle as the notebook gets it: active content made inert (noted on stderr)."""
        data, notes = make_inert(self._fix_bundle(data or {}))
        if notes:
            self._stream("stderr", "[jupyter-remote-device: active content from the board was made inert: %s]\n"
                         % "; ".join(notes))
        return data

    def _publish_event(self, ev, silent):
        t = ev.get("type")
        if t == "stream":
            self._stream(ev.get("name", "stdout"), ev.get("text", ""))
        elif t == "result":
            if not silent:
                self.send_response(self.iopub_socket, "execute_result", {
                    "execution_count": self.execution_count, "data": self._bundle(ev.get("data")),
                    "metadata": ev.get("metadata") or {}})
        elif t == "display":
            content = {"data": self._bundle(ev.get("data")), "metadata": ev.get("metadata") or {},
                       "transient": ev.get("transient") or {}}
            if ev.get("update") and content["transient"].get("display_id"):
                self.send_response(self.iopub_socket, "update_display_data", content)
            else:
                self.send_response(self.iopub_socket, "display_data", content)
        elif t == "error":
            self.send_response(self.iopub_socket, "error", {
                "ename": ev.get("ename", "Error"), "evalue": ev.get("evalue", ""),
                "traceback": ev.get("traceback") or []})

    # ------------------------------------------------------------ connecting
    def _connect(self, target, announce=True):
        self._disconnect()
        self.target = target
        try:
            backend = boards.open_backend(target, policy=self.policy)
        except BoardError as e:
            raise _MagicError("ConnectError", "Could not connect to %s: %s (%s). The kernel tries again on the "
                              "next cell." % (target.label, e.message, e.reason))
        self._attach(backend)
        if announce:
            self._stream("stdout", self._describe_connection())

    def _attach(self, backend):
        self.backend = backend
        self.board_info = backend.info() or {}
        key = backend.target.key()
        if key not in self._reset_targets:
            # a fresh kernel (or a restarted one) starts from an empty namespace
            try:
                backend.reset(self.ns)
            except Exception:
                pass
            self._reset_targets.add(key)

    def _describe_connection(self):
        if self.backend is None:
            if self.target is not None:
                return "Not connected (the next cell will try %s again).\n" % self.target.label
            return "Not connected to a board. Use %connect HOST[:PORT] [--token T] or %connect NAME.\n"
        info = self.board_info
        bits = []
        if self.backend.kind == "classic":
            bits.append("stock rpyc classic server")
        elif self.backend.hello.get("agent_version"):
            bits.append("agent %s" % self.backend.hello.get("agent_version"))
        for k, fmt in (("hostname", "host %s"), ("model", "%s"), ("python", "Python %s"),
                       ("rpyc_version", "rpyc %s")):
            if info.get(k):
                bits.append(fmt % info.get(k))
        return "Connected to %s%s.\n" % (self.target.label, (": " + ", ".join(bits)) if bits else "")

    def _disconnect(self):
        if self.backend is not None:
            try:
                self.backend.close()
            except Exception:
                pass
        self.backend = None

    def _ensure_backend(self, silent):
        """The connected backend; reconnects to the chosen board if the link dropped."""
        if self.backend is not None and not self.backend.closed:
            return self.backend
        if self.target is None:
            raise _MagicError("NotConnected", "No board connected. Use %connect HOST[:PORT] [--token T], "
                                              "%connect NAME (see %devices) or $connect(\"ip\") first.")
        lost = self.backend is not None
        self._disconnect()
        try:
            backend = boards.open_backend(self.target, policy=self.policy)
        except BoardError as e:
            raise _MagicError("ConnectionLost" if lost else "ConnectError",
                              "The board %s is not reachable: %s (%s). The kernel tries again on the next cell."
                              % (self.target.label, e.message, e.reason))
        self._attach(backend)
        if lost and not silent:
            self._stream("stderr", "[the connection to %s had dropped; reconnected. If the board restarted, "
                                   "variables defined before are gone]\n" % self.target.label)
        return backend

    # ------------------------------------------------------------ magics
    def _run_magics(self, code, silent):
        """Handle leading kernel magics; returns the code left for the board (same line numbers)."""
        lines = code.split("\n")
        i = 0
        while i < len(lines):
            s = lines[i].strip()
            if not s or s.startswith("#"):
                i += 1
                continue
            if s.startswith("$connect"):
                self._magic_dollar_connect(s)
            elif s.startswith("%") and not s.startswith("%%"):
                word = s.split(None, 1)[0]
                rest = s[len(word):].strip()
                if word == "%connect":
                    self._magic_connect(rest, silent)
                elif word == "%disconnect":
                    had = self.target
                    self._disconnect()
                    self.target = None
                    self._stream("stdout", "Disconnected from %s.\n" % had.label if had else "Not connected.\n")
                elif word == "%devices":
                    self._stream("stdout", self._devices_text())
                elif word == "%camera":
                    lines[i] = self._camera_code(rest)
                    break
                elif word == "%pip":  # pip on the board (kernel/pip.py)
                    from .pip import PipUsage, board_code
                    try:
                        lines[i] = board_code(rest)
                    except PipUsage as e:
                        raise _MagicError("UsageError", str(e))
                    break
                elif word in ("%help", "%remote_device"):
                    self._stream("stdout", HELP + "\n")
                else:
                    raise _MagicError("UsageError", "Unknown magic %s. This kernel runs plain Python on the board; "
                                                    "its magics are %s." % (word, ", ".join(MAGICS)))
            else:
                break
            lines[i] = ""
            i += 1
        return "\n".join(lines)

    def _magic_connect(self, rest, silent):
        try:
            args = shlex.split(rest)
        except ValueError as e:
            raise _MagicError("UsageError", "%%connect: %s" % e)
        token = None
        tls = False
        positional = []
        j = 0
        while j < len(args):
            a = args[j]
            if a == "--token":
                if j + 1 >= len(args):
                    raise _MagicError("UsageError", "%connect: --token needs a value")
                token = args[j + 1]
                j += 2
                continue
            if a.startswith("--token="):
                token = a.split("=", 1)[1]
            elif a == "--tls":
                tls = True
            elif a.startswith("-"):
                raise _MagicError("UsageError", "%%connect: unknown option %s. Usage: %%connect HOST[:PORT] "
                                                "[--token T] or %%connect NAME" % a)
            else:
                positional.append(a)
            j += 1
        if not positional:
            self._stream("stdout", self._describe_connection())
            return
        if len(positional) > 1:
            raise _MagicError("UsageError", "%connect takes one board: HOST[:PORT] or a saved board's NAME")
        what = positional[0]
        dev = boards.find_device(what)
        if dev is not None:
            target = boards.target_from_device(dev)
        else:
            try:
                host, port = boards.split_host_port(what, AGENT_PORT)
            except ValueError as e:
                raise _MagicError("UsageError", "%%connect %s: %s (and no saved board has that name; see "
                                                "%%devices)" % (what, e))
            target = boards.with_saved_token(Target(host, port))
        if token is not None:
            target.token = token
        if tls:
            target.tls = True
        self._connect(target, announce=True)

    def _magic_dollar_connect(self, s):
        m = re.match(r"""^\$connect\(\s*["']([^"']+)["']\s*(?:,\s*(?:port\s*=\s*)?(\d+)\s*)?\)\s*;?\s*$""", s)
        if not m:
            raise _MagicError("UsageError", '$connect expects $connect("ip[:port]")')
        try:
            host, port = boards.split_host_port(m.group(1), CLASSIC_PORT)
            if m.group(2):
                port = int(m.group(2))
        except ValueError as e:
            raise _MagicError("UsageError", "$connect: %s" % e)
        self._connect(boards.with_saved_token(Target(host, port)), announce=True)

    def _devices_text(self):
        devs = boards.load_devices()
        if not devs:
            return "No saved boards in %s. Add one in the Devices sidebar, or use %%connect HOST[:PORT].\n" \
                % boards.devices_file()
        rows = [("NAME", "ID", "ADDRESS", "SOURCE", "TOKEN")]
        for d in devs:
            t = boards.target_from_device(d)
            rows.append((str(d.get("name") or ""), str(d.get("id") or ""), t.address, str(d.get("source") or ""),
                         "yes" if d.get("token") else "no"))
        widths = [max(len(r[k]) for r in rows) for k in range(5)]
        out = ["  ".join(c.ljust(widths[k]) for k, c in enumerate(r)).rstrip() for r in rows]
        return "\n".join(out) + "\n\nConnect with %connect NAME.\n"

    def _camera_code(self, rest):
        nums = re.findall(r"\d+", rest)
        w, h = (int(nums[0]), int(nums[1])) if len(nums) >= 2 else (640, 480)
        return "show_camera(%d, %d)" % (w, h)

    # ------------------------------------------------------------ execute
    def _install_sigint(self):
        """interrupt_mode "signal" fallback: SIGINT forwards an interrupt to the board."""
        if self._sigint_installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            def on_sigint(signum, frame):
                threading.Thread(target=self._interrupt_remote, daemon=True).start()
            signal.signal(signal.SIGINT, on_sigint)
            self._sigint_installed = True
        except Exception:
            pass

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                         *, cell_meta=None, cell_id=None):
        self._install_sigint()
        self._interrupted.clear()
        self._allow_stdin = bool(allow_stdin)
        try:
            if BoardsMagic.matches(code):
                return self._boards.run(code, silent)
            rest = self._run_magics(code, silent)
            if not rest.strip():
                return self._ok_reply()
            backend = self._ensure_backend(silent)
        except _MagicError as e:
            return self._error_reply(e.ename, e.evalue)
        return self._run_remote(backend, rest, silent, allow_stdin, retry=True)

    def _run_remote(self, backend, code, silent, allow_stdin, retry):
        first = None
        try:
            run = getattr(backend, "run", None)
            # one round trip for a short cell: start, wait up to RUN_WAIT, its output (exec_run)
            first = run(code, self.ns, "cell", bool(silent), bool(allow_stdin), RUN_WAIT, RUN_FLUSH) \
                if run is not None else None
            exec_id = first["exec_id"] if first else backend.start(code, self.ns, "cell", bool(silent),
                                                                   bool(allow_stdin))
        except Exception as e:
            if boards._is_connection_error(e) and retry:
                # a stale connection (board rebooted, agent restarted): reconnect once, then run
                self.backend = backend  # so _ensure_backend reports it as lost
                try:
                    backend.close()
                except Exception:
                    pass
                try:
                    backend = self._ensure_backend(silent)
                except _MagicError as me:
                    return self._error_reply(me.ename, me.evalue)
                return self._run_remote(backend, code, silent, allow_stdin, retry=False)
            return self._lost_reply(e)
        self._current_exec = exec_id
        if self._interrupted.is_set():  # the interrupt came while the cell was being sent
            try:
                backend.interrupt(exec_id)
            except Exception:
                pass
        status = "ok"
        error = None
        ran_whole = bool(first and first.get("done"))
        queued_since = time.monotonic()
        told_queued = False
        try:
            while True:
                if first is not None:
                    r, first = first, None
                else:
                    try:
                        r = backend.poll(exec_id, POLL_WAIT)
                    except KeyboardInterrupt:
                        self._interrupt_remote()
                        continue
                if r.get("status") == "queued" and not told_queued and not silent and \
                        time.monotonic() - queued_since > 1.0:
                    told_queued = True
                    self._stream("stderr", "[waiting: the board is running code for another client; this "
                                           "cell starts when that finishes (interrupt to cancel)]\n")
                for ev in r.get("events", ()):
                    if ev.get("type") == "input_request":
                        value = self._ask_input(ev.get("prompt", ""), bool(ev.get("password")))
                        if value is not None:
                            backend.send_input(exec_id, value)
                        continue
                    if ev.get("type") == "error":
                        error = ev
                    self._publish_event(ev, silent)
                if r.get("done"):
                    status = r.get("status")
                    break
        except Exception as e:
            if boards._is_connection_error(e) or getattr(backend, "closed", False):
                return self._lost_reply(e)
            return self._error_reply(type(e).__name__, "talking to the board failed: %s" % e)
        finally:
            self._current_exec = None
        if not ran_whole:
            backend.forget(exec_id)  # (exec_run forgets a cell that ended within its call)
        if status == "unknown":
            return self._lost_reply(RuntimeError("the board forgot this cell (the agent restarted?)"))
        if status == "aborted":
            return self._error_reply("KeyboardInterrupt", "the cell was interrupted before it started")
        if status == "error" or error is not None:
            error = error or {}
            return self._error_reply(error.get("ename", "Error"), error.get("evalue", ""),
                                     error.get("traceback") or [], publish=False)
        return self._ok_reply()

    def _lost_reply(self, exc):
        label = self.target.label if self.target is not None else "the board"
        frozen = getattr(self.backend, "lost", None)
        if frozen:
            self._disconnect()
            self.backend = None
            return self._error_reply("ConnectionLost", "%s%s: the cell was ended. The kernel reconnects on the "
                                     "next cell." % (frozen[:1].upper(), frozen[1:]))
        self._disconnect()
        # keep self.target: the next cell reconnects
        self.backend = None
        return self._error_reply("ConnectionLost", "The connection to %s was lost (%s: %s): the board rebooted, "
                                 "the agent stopped or the network dropped. The kernel reconnects on the next "
                                 "cell." % (label, type(exc).__name__, exc))

    def _ask_input(self, prompt, password):
        """Ask the frontend for input over the stdin channel; None when interrupted."""
        if not self._allow_stdin:
            return ""
        import zmq
        try:
            ident = self._get_shell_context_var(self._shell_parent_ident)
        except AttributeError:  # ipykernel 6
            ident = self._parent_ident["shell"]
        parent = self.get_parent("shell")
        while True:  # purge stale replies
            try:
                self.stdin_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError as e:
                if e.errno == zmq.EAGAIN:
                    break
                raise
        self.session.send(self.stdin_socket, "input_request", {"prompt": prompt, "password": password},
                          parent, ident=ident)
        while not self._interrupted.is_set():
            try:
                rlist, _, xlist = zmq.select([self.stdin_socket], [], [self.stdin_socket], 0.05)
            except KeyboardInterrupt:
                self._interrupt_remote()
                return None
            if rlist or xlist:
                ident2, reply = self.session.recv(self.stdin_socket)
                if (ident2, reply) != (None, None):
                    try:
                        value = reply["content"]["value"]
                    except Exception:
                        value = ""
                    return "" if value == "\x04" else value
        return None

    # ------------------------------------------------------------ interrupt
    def _open_board(self, target):
        """A new backend for TARGET under this kernel's policy (also for %%boards)."""
        return boards.open_backend(target, policy=self.policy)

    def _interrupt_remote(self):
        self._interrupted.set()
        self._boards.interrupt()
        backend, exec_id = self.backend, self._current_exec
        if backend is None or exec_id is None:
            return False
        return backend.interrupt(exec_id)

    async def interrupt_request(self, stream, ident, parent):
        content = {"status": "ok"}
        try:
            self._interrupt_remote()
        except Exception as e:
            content = {"status": "error", "ename": type(e).__name__, "evalue": str(e), "traceback": []}
        self.session.send(stream, "interrupt_reply", content, parent, ident=ident)

    # ------------------------------------------------------------ completion / inspection
    async def do_complete(self, code, cursor_pos):
        if cursor_pos is None:
            cursor_pos = len(code)
        before = code[:cursor_pos]
        line = before.rsplit("\n", 1)[-1]
        m = re.match(r"^\s*(%\w*)$", line)
        if m:
            tok = m.group(1)
            return {"status": "ok", "matches": [x for x in MAGICS if x.startswith(tok)],
                    "cursor_start": cursor_pos - len(tok), "cursor_end": cursor_pos, "metadata": {}}
        m = re.match(r"^\s*%connect\s+(\S*)$", line)
        if m:
            tok = m.group(1)
            names = []
            for d in boards.load_devices():
                for v in (d.get("name"), d.get("id")):
                    if v and str(v).startswith(tok) and str(v) not in names:
                        names.append(str(v))
            return {"status": "ok", "matches": names, "cursor_start": cursor_pos - len(tok),
                    "cursor_end": cursor_pos, "metadata": {}}
        empty = {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos, "metadata": {}}
        if self.backend is None or self.backend.closed:
            return empty
        try:
            r = self.backend.complete(self.ns, code, cursor_pos)
        except Exception:
            return empty
        r.setdefault("metadata", {})
        r["status"] = "ok"
        return r

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        none = {"status": "ok", "found": False, "data": {}, "metadata": {}}
        if self.backend is None or self.backend.closed:
            return none
        try:
            r = self.backend.inspect(self.ns, code, cursor_pos, detail_level)
        except Exception:
            return none
        r["status"] = "ok"
        r.setdefault("metadata", {})
        return r

    async def do_is_complete(self, code):
        lines = [ln for ln in code.split("\n")]
        # kernel magics are complete on their own
        if lines and all((not ln.strip()) or ln.strip().startswith(("%", "$connect")) for ln in lines):
            return {"status": "complete"}
        return _is_complete(code)

    async def do_shutdown(self, restart):
        self._boards.close()
        backend = self.backend
        if backend is not None and not backend.closed:
            try:
                # a loop still running would otherwise keep the board busy for everyone
                if self._current_exec is not None:
                    backend.interrupt(self._current_exec)
            except Exception:
                pass
            try:
                backend.reset(self.ns)   # free the board's memory; a restart starts empty
            except Exception:
                pass
        self._disconnect()
        return {"status": "ok", "restart": restart}

    async def do_history(self, *args, **kwargs):
        return {"status": "ok", "history": []}
