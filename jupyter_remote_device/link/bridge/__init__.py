"""Boards that speak rpyc <= 5 (MaixPy3 images: rpyc 4.x / 5.x), driven with a real rpyc of their family.

rpyc 6 changed the message layout (``I1(msg) + brine.dump((seq, args))`` instead of
``brine.dump((msg, seq, args))``): it cannot talk to rpyc <= 5 at all (tomerfiliba-org/rpyc#552).
Rather than speak an old protocol by hand, a **bridge process** does: a Python subprocess with only
the standard library and the rpyc 5.3.1 wheel shipped in this folder on its path (zipimport; it
never sees the Jupyter side's rpyc 6). rpyc 5.3.1 talks to 4.x and 5.x servers alike.

* The Jupyter side dials the board (``allowed_networks``, timeouts) and hands the connected socket
  to the bridge (``pass_fds``); it keeps its own copy, so ``shutdown()`` still cuts the link.
* The bridge runs the classic calls (eval, execute, the agent bootstrap) and then calls the
  attached object's methods, the agent's wire (``info``, ``exec_start``, ``fs_read`` ...). Over
  the pipes only plain values travel (``framing``: JSON + raw bytes; no pickle, sizes bounded);
  an answer that is not plain data is refused in the bridge, an exception raised on the board
  comes back in rpyc's own boxed form and is unboxed here by our rpyc like any board's.
* ``BridgeConnection`` looks like an rpyc connection to the rest of the code: ``root.<name>(...)``
  blocks, ``rpyc.async_(root.<name>)(...)`` gives a real ``rpyc.AsyncResult`` (``set_expiry``,
  ``wait``, ``value``), plus ``ping``, ``closed``, ``close``.

One bridge process per board connection (a session's control link, a camera stream's own link, a
kernel's): it lives exactly as long as that connection and dies with its parent.
"""
import collections
import itertools
import os
import socket
import subprocess
import sys
import threading
import time

from rpyc.core import consts, vinegar
from rpyc.core.async_ import AsyncResult, AsyncResultTimeout
from rpyc.lib import Timeout

from . import framing

HERE = os.path.dirname(os.path.abspath(__file__))
BRIDGE_RPYC = "5.3.1"
WHEEL = os.path.join(HERE, "rpyc-%s-py3-none-any.whl" % BRIDGE_RPYC)
WHEEL_SHA256 = "6e8153792ac221a80f420d2e0b241a10c6e43b105d325998b18a4e7af329f9ec"  # as on PyPI

# the rpyc 5 connection's settings: expose nothing, unpickle nothing, keep the board's exceptions boxed
BRIDGE_CONFIG = {
    "allow_public_attrs": False, "allow_all_attrs": False, "allow_pickle": False,
    "allow_setattr": False, "allow_delattr": False, "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False, "instantiate_oldstyle_exceptions": False,
    "include_local_traceback": False, "include_local_version": False,
}

LAUNCH = "import sys; sys.path[:0] = [%r, %r]; import child; child.main()"


class BridgeError(Exception):
    """The bridge could not be started or its conversation broke; ``reason`` is a contract code."""

    def __init__(self, reason, message):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message


class RemoteBaseException(Exception):
    """A board raised SystemExit / KeyboardInterrupt / GeneratorExit: never let those loose here."""


def _unbox_board_exception(raw):
    """rpyc's own unboxing of a board's exception (no imports, no custom classes)."""
    try:
        exc = vinegar.load(raw, import_custom_exceptions=False, instantiate_custom_exceptions=False,
                           instantiate_oldstyle_exceptions=False)
    except Exception:
        exc = RuntimeError("the board raised an exception that could not be read")
    if isinstance(exc, type):  # StopIteration, by rpyc's shorthand
        exc = exc()
    if not isinstance(exc, Exception):
        wrapped = RemoteBaseException("the board raised %s: %s" % (
            type(exc).__name__, str(exc)[:200] if getattr(exc, "args", None) else ""))
        wrapped._remote_tb = getattr(exc, "_remote_tb", "")
        return wrapped
    return exc


_LOCAL = {"OSError": OSError, "ValueError": ValueError, "TypeError": TypeError,
          "AttributeError": AttributeError, "KeyError": KeyError}


def _bridge_exception(error):
    kind = str(error.get("type")) if isinstance(error, dict) else "protocol"
    message = str(error.get("message", "")) if isinstance(error, dict) else "malformed answer"
    if kind == "eof":
        return EOFError(message or "the board closed the connection")
    if kind == "timeout":
        return AsyncResultTimeout(message or "result expired")
    if kind in _LOCAL:
        return _LOCAL[kind](message)
    if kind == "remote":  # the board raised where rpyc itself unboxed it (while opening)
        e = BridgeError("protocol", message)
        e._remote_tb = ""
        return e
    return BridgeError("protocol", message or "the bridge failed")


class _Method(object):
    """``root.<name>``: callable, and shaped like an rpyc netref so ``rpyc.async_`` accepts it."""

    __slots__ = ("____conn__", "____id_pack__", "_name", "__weakref__")

    def __init__(self, conn, name):
        self.____conn__ = conn
        self.____id_pack__ = ("jrd.bridge", 0, name)
        self._name = name

    def __call__(self, *args, **kwargs):
        return self.____conn__.call(self._name, args, kwargs)

    def __repr__(self):
        return "<bridged method %s>" % self._name


class _Root(object):
    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self._conn, name)


class _ModuleFunc(object):
    def __init__(self, conn, module, func):
        self._conn, self._module, self._func = conn, module, func

    def __call__(self, *args):
        return self._conn.request({"op": "modcall", "module": self._module, "func": self._func,
                                   "args": list(args)})


class _Module(object):
    def __init__(self, conn, name):
        self._conn, self._name = conn, name

    def __getattr__(self, func):
        if func.startswith("_"):
            raise AttributeError(func)
        return _ModuleFunc(self._conn, self._name, func)


class _Modules(object):
    def __init__(self, conn):
        self._conn = conn

    def __getitem__(self, name):
        return _Module(self._conn, str(name))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _Module(self._conn, name)


class _Stream(object):
    def __init__(self, sock):
        self.sock = sock


class _Channel(object):
    """What callers reach for to cut a stuck link: ``conn._channel.stream.sock.shutdown()``."""

    def __init__(self, sock):
        self.stream = _Stream(sock)


class BridgeConnection(object):
    """An rpyc <= 5 classic connection held by a bridge process (see the module docstring)."""

    jrd_bridge = BRIDGE_RPYC

    def __init__(self, sock, timeout=5.0, sync_request_timeout=30.0, label="the board"):
        self.label = label
        self.sync_request_timeout = sync_request_timeout
        self._sock = sock
        self._channel = _Channel(sock)
        self._ids = itertools.count(1)
        self._pending = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._close_reason = None
        self._stderr = collections.deque(maxlen=40)
        self.root = _Root(self)
        fd = sock.fileno()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", LAUNCH % (WHEEL, HERE)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(fd,), close_fds=True, start_new_session=True)
        except OSError as e:
            raise BridgeError("protocol", "cannot start the rpyc %s bridge process: %s" % (BRIDGE_RPYC, e))
        for target, name in ((self._read_answers, "jrd-bridge-read"), (self._read_stderr, "jrd-bridge-err")):
            t = threading.Thread(target=target, name=name)
            t.daemon = True
            t.start()
        try:
            self.bridge_rpyc = self.request({"op": "open", "fd": fd, "config": BRIDGE_CONFIG}, timeout)
        except BaseException:
            self.close()
            raise

    # -- the pipes
    def _read_answers(self):
        reason = "the bridge process ended"
        try:
            while True:
                msg = framing.read_message(self._proc.stdout)
                if not isinstance(msg, dict):
                    continue
                if msg.get("event") == "closed":
                    reason = str(msg.get("message") or "the board closed the connection")
                    break
                res = self._pending.pop(msg.get("id"), None)
                if res is None:
                    continue  # an answer nobody waits for any more (expired)
                if "ok" in msg:
                    res(False, msg["ok"])
                elif msg.get("root") is True:
                    res(False, self.root)
                elif "exc" in msg:
                    res(True, _unbox_board_exception(msg["exc"]))
                else:
                    res(True, _bridge_exception(msg.get("error")))
                with self._cond:
                    self._cond.notify_all()
        except EOFError:
            pass
        except (OSError, ValueError) as e:
            reason = "the bridge's answers broke off: %s" % e
        self._lost(reason)
        try:
            self._proc.stdout.close()
        except (OSError, ValueError):
            pass
        try:  # the bridge exits right after its last answer: reap it (no zombie until close())
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def _read_stderr(self):
        try:
            for line in self._proc.stderr:
                self._stderr.append(line.decode("utf-8", "replace").rstrip()[:500])
        except (OSError, ValueError):
            pass
        try:
            self._proc.stderr.close()
        except (OSError, ValueError):
            pass

    def _lost(self, reason):
        with self._lock:
            if self._close_reason is None:
                self._close_reason = reason
            self._closed = True
            pending, self._pending = self._pending, {}
        for res in pending.values():
            res(True, EOFError("%s: %s" % (self.label, self._close_reason)))
        with self._cond:
            self._cond.notify_all()

    def _send(self, message):
        data = framing.encode(message)
        with self._write_lock:
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (OSError, ValueError):
                raise EOFError("%s: the connection is closed (%s)" % (self.label, self._close_reason or "bridge gone"))

    # -- the rpyc-like surface
    def async_call(self, message):
        """Send a request; an ``rpyc.AsyncResult`` for its answer."""
        res = AsyncResult(self)
        with self._lock:
            if self._closed:
                raise EOFError("%s: the connection is closed (%s)" % (self.label, self._close_reason))
            rid = next(self._ids)
            self._pending[rid] = res
        message["id"] = rid
        try:
            self._send(message)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return res

    def request(self, message, timeout=None):
        """BLOCKING: send a request and wait for its answer (raises what the answer says)."""
        res = self.async_call(message)
        res.set_expiry(self.sync_request_timeout if timeout is None else timeout)
        return res.value

    def serve(self, timeout=None, wait_for_lock=True, waiting=None):
        """What ``AsyncResult.wait`` calls: wait until some answer arrives (or the timeout)."""
        timeout = Timeout(timeout)
        with self._cond:
            if waiting is not None and not waiting():
                return False
            if self._closed:
                return False
            self._cond.wait(timeout.timeleft())
        return True

    def async_request(self, handler, proxy, *args):
        """``rpyc.async_(root.<name>)(...)`` lands here (``HANDLE_CALL``, (args, kwargs))."""
        if handler != consts.HANDLE_CALL or not isinstance(proxy, _Method):
            raise TypeError("the bridge only calls the attached object's methods")
        call_args, kwargs = args
        if kwargs:
            raise TypeError("keyword arguments do not cross the bridge")
        return self.async_call({"op": "call", "name": proxy._name, "args": list(call_args)})

    def call(self, name, args, kwargs=None):
        if kwargs:
            raise TypeError("keyword arguments do not cross the bridge")
        return self.request({"op": "call", "name": name, "args": list(args)})

    def eval(self, code, timeout=None):
        return self.request({"op": "eval", "code": code}, timeout)

    def execute(self, code, timeout=None):
        return self.request({"op": "execute", "code": code}, timeout)

    @property
    def modules(self):
        """``conn.modules[name].func(*args)`` as in rpyc's classic API: plain results, or, when
        the board returns an object, ``root`` (that object becomes what ``root`` calls)."""
        return _Modules(self)

    def ping(self, data=None, timeout=3):
        self.request({"op": "ping", "timeout": timeout}, timeout + 1.0)

    @property
    def closed(self):
        return self._closed

    def stderr_tail(self):
        return "\n".join(self._stderr)

    def close(self):
        if not self._closed:
            try:
                res = self.async_call({"op": "close"})
                res.set_expiry(2.0)
                res.wait()
            except Exception:
                pass
        self._lost("closed")
        for fn in (lambda: self._sock.shutdown(socket.SHUT_RDWR), self._sock.close,
                   self._proc.stdin.close):
            try:
                fn()
            except (OSError, ValueError):
                pass
        proc = self._proc
        deadline = time.monotonic() + 2.0
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
