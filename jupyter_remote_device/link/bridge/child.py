"""The bridge process: one rpyc <= 5 classic connection to a board, driven over our pipes.

Started by ``link/bridge/__init__.py`` as ``python -I -S -c ...`` with only the standard library,
this folder and the shipped rpyc 5.3.1 wheel (zipimport) on ``sys.path``: the Jupyter side's own
rpyc 6 is never imported here, and nothing of jupyter_remote_device either. The TCP connection to
the board is made by the Jupyter side (``allowed_networks``, timeouts, tunnels) and handed over as
file descriptor 3.

Requests arrive on stdin, answers leave on the original stdout, both in ``framing``'s format
(JSON + raw bytes, never pickle). Python's own stdout is pointed at stderr so nothing else can
write into the answer pipe. Requests (``{"id", "op", ...}``):

* ``open {"config"}``: the rpyc connection over fd 3, with rpyc's client-only ``ClassicClient``;
* ``eval {"code"}`` / ``execute {"code"}``: classic eval/execute on the board, plain results only;
* ``modcall {"module", "func", "args"}``: ``modules[module].func(*args)``; a plain result is the
  answer; an object (the agent glue's ``Root``) becomes *the attached object* (answer ``{"root"}``);
* ``call {"name", "args"}``: ``<attached>.name(*args)``, asynchronously: many may be in flight;
* ``ping {"timeout"}``, ``close``.

Answers: ``{"id", "ok": value}``, ``{"id", "exc": <rpyc's own boxed exception, as the board sent
it>}`` (the Jupyter side unboxes it with its rpyc, as for any board), or ``{"id", "error":
{"type", "message"}}`` for a failure here (the link broke, a non-plain answer). When the board
link ends: ``{"event": "closed", "message"}`` and the process exits.
"""
import os
import sys
import threading

import framing

OPS = ("open", "eval", "execute", "modcall", "call", "ping", "close")


class BoardRaised(Exception):
    """An exception the board raised, still in rpyc's boxed (brine) form."""

    def __init__(self, raw):
        Exception.__init__(self, "remote exception")
        self.raw = raw


class Bridge(object):
    def __init__(self, out):
        self.out = out
        self.out_lock = threading.Lock()
        self.conn = None
        self.target = None
        self.methods = {}
        self.modfuncs = {}
        self.closing = False

    # -- answers
    def send(self, message):
        try:
            data = framing.encode(message)
        except (framing.FramingError, TypeError, ValueError) as e:
            if "id" not in message:
                return
            data = framing.encode({"id": message["id"], "error": {"type": "protocol",
                                                                  "message": "unsendable answer: %s" % e}})
        with self.out_lock:
            try:
                self.out.write(data)
                self.out.flush()
            except (OSError, ValueError):
                os._exit(0)  # the Jupyter side is gone

    def fail(self, rid, kind, message):
        self.send({"id": rid, "error": {"type": kind, "message": str(message)[:2000]}})

    def attempt(self, rid, fn):
        """``(True, fn())``; or ``(False, None)`` once what went wrong was sent for ``rid``."""
        import rpyc
        try:
            return True, fn()
        except BoardRaised as e:
            self.send({"id": rid, "exc": e.raw})
        except Exception as e:
            self.fail(rid, *describe(e, rpyc))
        return False, None

    def answer(self, rid, fn):
        """Run ``fn()`` and send its result (or what went wrong)."""
        ok, value = self.attempt(rid, fn)
        if not ok:
            return
        bad = non_plain(value)
        if bad is not None:
            self.fail(rid, "protocol", "the board answered with %s, not plain data" % bad)
            return
        self.send({"id": rid, "ok": value})

    # -- requests
    def open(self, req):
        import socket

        import rpyc
        from rpyc.core.channel import Channel
        from rpyc.core.service import ClassicClient
        from rpyc.core.stream import SocketStream
        from rpyc.utils.factory import connect_channel

        limit = int(req.get("max_frame") or (64 << 20))

        class BoundedChannel(Channel):
            """Refuse absurd frames (a hostile board announcing gigabytes, or a zlib bomb)."""

            def recv(self):
                import zlib
                header = self.stream.read(self.FRAME_HEADER.size)
                length, compressed = self.FRAME_HEADER.unpack(header)
                if length > limit:
                    self.close()
                    raise EOFError("the board sent a %d-byte frame (limit %d)" % (length, limit))
                data = self.stream.read(length + len(self.FLUSHER))[:-len(self.FLUSHER)]
                if compressed:
                    d = zlib.decompressobj()
                    data = d.decompress(data, limit)
                    if d.unconsumed_tail:
                        self.close()
                        raise EOFError("the board sent a frame inflating past %d bytes" % limit)
                return data

        class BigChunkStream(SocketStream):
            MAX_IO_CHUNK = 1 << 20

        sock = socket.socket(fileno=int(req.get("fd", 3)))
        sock.settimeout(None)
        config = dict(req.get("config") or {})
        self.conn = connect_channel(BoundedChannel(BigChunkStream(sock), compress=False),
                                    service=ClassicClient, config=config)
        self.conn._unbox_exc = BoardRaised  # keep the board's exceptions boxed: the Jupyter side unboxes
        t = threading.Thread(target=self.serve, name="bridge-serve")
        t.daemon = True
        t.start()
        return rpyc.__version__

    def serve(self):
        message = "the board closed the connection"
        try:
            while not self.conn.closed:
                self.conn.serve(1.0)
        except EOFError as e:
            message = str(e) or message
        except Exception as e:
            message = "the rpyc connection broke: %s: %s" % (type(e).__name__, e)
        if not self.closing:
            self.send({"event": "closed", "message": message})
        os._exit(0)

    def modcall(self, rid, req):
        import rpyc
        key = (str(req.get("module")), str(req.get("func")))
        if key[1].startswith("_"):
            self.fail(rid, "AttributeError", key[1])
            return

        def run():
            fn = self.modfuncs.get(key)
            if fn is None:
                fn = self.modfuncs[key] = getattr(self.conn.modules[key[0]], key[1])
            return fn(*tuple(req.get("args") or ()))

        ok, value = self.attempt(rid, run)
        if not ok:
            return
        if isinstance(value, rpyc.BaseNetref):
            self.target, self.methods = value, {}
            self.send({"id": rid, "root": True})
            return
        self.answer(rid, lambda: value)

    def call(self, rid, req):
        import rpyc
        name = str(req.get("name"))
        args = tuple(req.get("args") or ())
        fn = self.methods.get(name)
        if fn is None:
            if self.target is None:
                self.fail(rid, "protocol", "nothing attached")
                return
            if name.startswith("_"):
                self.fail(rid, "AttributeError", name)
                return

            def resolve():  # a getattr round trip: not on the reading thread
                ok, f = self.attempt(rid, lambda: rpyc.async_(getattr(self.target, name)))
                if ok:
                    self.methods[name] = f
                    self.start_call(rid, f, args)
            spawn(resolve)
            return
        self.start_call(rid, fn, args)

    def start_call(self, rid, fn, args):
        import rpyc
        try:
            res = fn(*args)
        except Exception as e:
            self.fail(rid, *describe(e, rpyc))
            return
        res.add_callback(lambda r: self.answer(rid, lambda: r.value))

    def handle(self, req):
        rid = req.get("id")
        op = req.get("op")
        if op not in OPS:
            self.fail(rid, "protocol", "unknown request %r" % (op,))
            return
        if op == "call":
            self.call(rid, req)
            return
        if self.conn is None and op != "open":
            self.fail(rid, "protocol", "not open")
            return
        if op == "open":
            self.answer(rid, lambda: self.open(req))
        elif op == "eval":
            spawn(self.answer, rid, lambda: self.conn.eval(str(req["code"])))
        elif op == "execute":
            spawn(self.answer, rid, lambda: self.conn.execute(str(req["code"])))
        elif op == "modcall":
            spawn(self.modcall, rid, req)
        elif op == "ping":
            spawn(self.answer, rid, lambda: self.conn.ping(timeout=float(req.get("timeout") or 3)) or True)
        elif op == "close":
            self.closing = True
            try:
                self.conn.close()
            except Exception:
                pass
            self.send({"id": rid, "ok": True})
            os._exit(0)


def describe(e, rpyc):
    """(kind, message) of an exception raised here (``BoardRaised`` aside)."""
    if hasattr(e, "_remote_tb"):  # raised on the board, unboxed by rpyc itself (while opening)
        return "remote", "%s: %s" % (type(e).__name__, str(e).split("\n")[0][:300])
    if isinstance(e, EOFError):
        return "eof", str(e) or "the board closed the connection"
    if isinstance(e, rpyc.AsyncResultTimeout):
        return "timeout", str(e)
    if isinstance(e, (OSError, ValueError, TypeError, AttributeError, KeyError)):
        return type(e).__name__, str(e)
    return "protocol", "%s: %s" % (type(e).__name__, e)


def spawn(fn, *args):
    t = threading.Thread(target=fn, args=args)
    t.daemon = True
    t.start()


def non_plain(value, depth=0):
    """None when ``value`` is plain data (what the agent's wire allows); else what it is."""
    if value is None or type(value) in (bool, int, float, str, bytes):
        return None
    if type(value) is tuple and depth < framing.MAX_DEPTH:
        for v in value:
            bad = non_plain(v, depth + 1)
            if bad is not None:
                return bad
        return None
    return "an object reference" if hasattr(value, "____id_pack__") else "a %s" % type(value).__name__


def main():
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                       # print() and friends go to stderr, never into the answers
    sys.stdout = sys.stderr
    inp = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    bridge = Bridge(out)
    while True:
        try:
            req = framing.read_message(inp)
        except (EOFError, OSError):
            os._exit(0)                 # the Jupyter side closed: so do we
        except framing.FramingError as e:
            sys.stderr.write("bridge: bad request: %s\n" % e)
            os._exit(2)
        if isinstance(req, dict):
            bridge.handle(req)


if __name__ == "__main__":
    main()
