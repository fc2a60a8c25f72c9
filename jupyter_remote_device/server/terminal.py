"""Terminals on a board (WS ``devices/{id}/terminal``) speaking terminado's JSON messages.

Client: ``["stdin", text]``, ``["set_size", rows, cols, height_px, width_px]``.
Server: ``["setup", {}]`` once attached, ``["stdout", text]``, ``["disconnect", code]``.

Each terminal has a name (``?name=`` in the URL; the frontend keeps it across page
reloads) and two connections of its own to the board: a reader that blocks in
``term_read`` in a dedicated thread, so output streams without the loop asking for each
chunk, and a writer for keystrokes and resizes (one agent connection serves one call at a
time). A terminal whose sockets are all gone lives on ``keep_alive`` seconds (a page
reload reattaches it and replays its recent output); ``DELETE devices/{id}/terminals/{name}``
(the tab was closed) ends it at once. Everything from the board is checked: bytes only,
at most what was asked for, decoded as UTF-8 with replacement.
"""
import asyncio
import codecs
import functools
import json
import queue
import re
import threading
import time
import uuid

import tornado.web
from jupyter_server.auth.decorator import authorized, ws_authenticated

from ..link import calls
from .errors import ApiError, bad_request, not_found

READ_MAX = 64 * 1024         # bytes per term_read
READ_WAIT = 2.0              # s a term_read blocks on the board
SCROLLBACK = 128 * 1024      # characters replayed to a socket that (re)attaches
MAX_STDIN = 1 << 20          # characters in one stdin message
WRITE_CHUNK = 32 * 1024
MAX_BACKLOG = 512 * 1024     # characters sent to a socket but not yet flushed before the reader pauses
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEEP_ALIVE = 60.0


def _int(v, lo, hi, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ValueError("%s must be a number" % what)
    return max(lo, min(int(v), hi))


class BoardTerminal(object):
    def __init__(self, registry, session, name, rows, cols):
        self.registry = registry
        self.manager = registry.manager
        self.device_id = session.device_id
        self.device_name = session.name
        self.name = name
        self.connect_new = session.connect_new
        self.rows, self.cols = rows, cols
        self.sockets = set()
        self.scrollback = []
        self.scroll_len = 0
        self.ended = None                 # exit code (or -1) once the shell is gone
        self.closing = False
        self.reap_handle = None
        self.loop = asyncio.get_running_loop()
        self.reader = self.writer = None
        self.term_id = None
        self.inbox = queue.Queue()
        self.backlog = 0
        self.flowing = threading.Event()
        self.flowing.set()
        self.opened = time.time()

    # -- life -------------------------------------------------------------
    def open_blocking(self):
        """BLOCKING: dial twice, open the pty; raises ApiError."""
        from .session import ConnectionLost, map_remote_error, plain
        try:
            self.reader = self.connect_new()
            self.writer = self.connect_new()
            try:
                tid = plain(calls.call(self.reader.root, "term_open", self.rows, self.cols), "a terminal id")
            except AttributeError:
                raise ApiError(501, "not-available", "The agent on %s has no terminals (update it)"
                               % self.device_name)
            if not isinstance(tid, str) or not re.match(r"^[0-9a-f]{1,64}$", tid):
                raise ApiError(502, "protocol", "%s answered term_open with something that is not an id"
                               % self.device_name)
            self.term_id = tid
            root = self.writer.root  # each call one round trip, nothing looked up first (link/calls.py)
            self._write_fn = functools.partial(calls.call, root, "term_write")
            self._resize_fn = functools.partial(calls.call, root, "term_resize")
        except BaseException as e:
            self._close_conns()
            err = map_remote_error(e, self.device_name) if not isinstance(e, ApiError) else e
            if isinstance(err, ConnectionLost):
                err = ApiError(502, "protocol", str(err))
            if isinstance(err, ApiError) and err.reason == "os-error":
                err = ApiError(409, "no-terminal", "%s cannot open a terminal: %s" % (self.device_name, err.message))
            raise err
        threading.Thread(target=self._read_loop, name="jrd-term-r-%s" % self.name, daemon=True).start()
        threading.Thread(target=self._write_loop, name="jrd-term-w-%s" % self.name, daemon=True).start()

    def _read_loop(self):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        code = -1
        try:
            read = self.reader.root.term_read
            while not self.closing:
                self.flowing.wait(1.0)
                if self.closing:
                    break
                if not self.flowing.is_set():
                    continue
                data = read(self.term_id, READ_MAX, READ_WAIT)
                if data is None:
                    code = self._exit_code()
                    break
                if type(data) is not bytes or len(data) > READ_MAX:
                    self.manager.log.warning("remote-device %s: terminal sent %s; closing it", self.device_name,
                                             type(data).__name__)
                    break
                if data:
                    text = decoder.decode(data)
                    if text:
                        self._post(self._on_output, text)
        except Exception as e:
            if not self.closing:
                self.manager.log.info("remote-device %s: terminal %s ended: %s", self.device_name, self.name, e)
        self._post(self._on_end, code)

    def _exit_code(self):
        try:
            code = self.writer.root.term_close(self.term_id)
        except Exception:
            return -1
        return code if type(code) is int else -1

    def _write_loop(self):
        while True:
            item = self.inbox.get()
            if item is None:
                return
            try:
                if item[0] == "stdin":
                    data = item[1]
                    while True:  # coalesce what queued up meanwhile (a paste, fast typing)
                        try:
                            nxt = self.inbox.get_nowait()
                        except queue.Empty:
                            break
                        if nxt is None or nxt[0] != "stdin" or len(data) > WRITE_CHUNK:
                            self.inbox.put(nxt)  # keep order: handled next round
                            break
                        data += nxt[1]
                    for i in range(0, len(data), WRITE_CHUNK):
                        self._write_fn(self.term_id, data[i:i + WRITE_CHUNK])
                elif item[0] == "size":
                    self._resize_fn(self.term_id, *item[1:])
            except Exception as e:
                if not self.closing:
                    self.manager.log.info("remote-device %s: terminal write failed: %s", self.device_name, e)

    def _post(self, fn, *args):
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed (server shutting down)
            pass

    # -- on the loop -------------------------------------------------------
    def _on_output(self, text):
        self.scrollback.append(text)
        self.scroll_len += len(text)
        while self.scroll_len > SCROLLBACK and len(self.scrollback) > 1:
            self.scroll_len -= len(self.scrollback.pop(0))
        for s in list(self.sockets):
            self._send(s, ["stdout", text])

    def _send(self, sock, msg):
        text = json.dumps(msg)
        try:
            fut = sock.write_message(text)
        except Exception:
            return
        n = len(text)
        self.backlog += n
        if self.backlog > MAX_BACKLOG:
            self.flowing.clear()  # a socket that does not keep up pauses the reader (and so the board's shell)

        def done(_f):
            self.backlog -= n
            if self.backlog <= MAX_BACKLOG // 2:
                self.flowing.set()

        if fut is not None:
            fut.add_done_callback(done)
        else:
            done(None)

    def _on_end(self, code):
        self.ended = -1 if code is None else code
        for s in list(self.sockets):
            self._send(s, ["disconnect", self.ended])
            try:
                s.close()
            except Exception:
                pass
        self.sockets.clear()
        self.registry.forget(self)
        self.shutdown()

    def attach(self, sock, replay=True):
        if self.reap_handle is not None:
            self.reap_handle.cancel()
            self.reap_handle = None
        self.sockets.add(sock)
        self._send(sock, ["setup", {"name": self.name}])
        if self.scrollback and replay:  # a fresh page gets the recent output; a reconnecting tab has it
            self._send(sock, ["stdout", "".join(self.scrollback)])

    def detach(self, sock):
        self.sockets.discard(sock)
        if not self.sockets and self.ended is None and not self.closing:
            self.reap_handle = self.loop.call_later(self.registry.keep_alive, self.kill)

    def feed(self, message):
        """A client message (already JSON-decoded). Returns an error text or None."""
        if not isinstance(message, list) or not message or not isinstance(message[0], str):
            return "expected a JSON list like [\"stdin\", text]"
        kind = message[0]
        if kind == "stdin":
            if len(message) != 2 or not isinstance(message[1], str):
                return "stdin takes one string"
            if len(message[1]) > MAX_STDIN:
                return "stdin messages are limited to %d characters" % MAX_STDIN
            if message[1]:
                self.inbox.put(("stdin", message[1]))
        elif kind == "set_size":
            try:
                rows = _int(message[1], 1, 1000, "rows")
                cols = _int(message[2], 1, 1000, "cols")
                h = _int(message[3], 0, 65535, "height") if len(message) > 3 else 0
                w = _int(message[4], 0, 65535, "width") if len(message) > 4 else 0
            except (ValueError, IndexError) as e:
                return "set_size takes rows, cols, height_px, width_px: %s" % e
            self.rows, self.cols = rows, cols
            self.inbox.put(("size", rows, cols, h, w))
        # other terminado messages are ignored, as terminado does
        return None

    def kill(self):
        """End the shell now (tab closed, keep-alive over, session gone)."""
        if self.closing:
            return
        self.reap_handle = None
        self.registry.forget(self)
        for s in list(self.sockets):
            self._send(s, ["disconnect", 0])
            try:
                s.close()
            except Exception:
                pass
        self.sockets.clear()
        self.shutdown()

    def shutdown(self):
        if self.closing:
            return
        self.closing = True
        self.flowing.set()
        self.inbox.put(None)
        if self.reap_handle is not None:
            self.reap_handle.cancel()
            self.reap_handle = None
        self.manager.pool.submit(self._shutdown_blocking)

    def _shutdown_blocking(self):
        if self.term_id is not None and self.writer is not None:
            try:
                import rpyc
                res = rpyc.async_(self.writer.root.term_close)(self.term_id)
                res.set_expiry(5.0)
                res.wait()
            except Exception:
                pass
        self._close_conns()

    def _close_conns(self):
        from .session import drop
        for conn in (self.reader, self.writer):
            if conn is None:
                continue
            drop(conn)

    def to_dict(self):
        return {"name": self.name, "device_id": self.device_id, "attached": len(self.sockets),
                "rows": self.rows, "cols": self.cols, "created": self.opened}


class TerminalRegistry(object):
    """Every board terminal of this server, by (device id, name)."""

    keep_alive = KEEP_ALIVE

    def __init__(self, manager):
        self.manager = manager
        self.terms = {}
        manager.add_listener(self._on_event)

    def forget(self, term):
        if self.terms.get((term.device_id, term.name)) is term:
            del self.terms[(term.device_id, term.name)]

    def find(self, device_id, name):
        return self.terms.get((device_id, name))

    def list(self, device_id):
        return [t.to_dict() for (d, _), t in self.terms.items() if d == device_id]

    async def get_or_open(self, session, name, rows, cols):
        term = self.terms.get((session.device_id, name))
        if term is not None and not term.closing:
            return term
        per_device = sum(1 for (d, _) in self.terms if d == session.device_id)
        if per_device >= 16:
            raise ApiError(409, "busy", "%s already has %d terminals open here" % (session.name, per_device))
        term = BoardTerminal(self, session, name, rows, cols)
        self.terms[(session.device_id, name)] = term
        try:
            await self.manager.run_with_timeout(term.open_blocking, timeout=self.manager.connect_timeout * 2)
        except BaseException:
            self.forget(term)
            term.closing = True
            self.manager.pool.submit(term._close_conns)
            raise
        return term

    def close_device(self, device_id):
        for (d, _), t in list(self.terms.items()):
            if d == device_id:
                t.kill()

    def _on_event(self, msg):
        # a session closed (or the device went away): its terminals end with it
        if msg.get("type") == "removed":
            self.close_device(msg.get("id"))
        elif msg.get("type") == "device":
            dev = msg.get("device") or {}
            did = dev.get("id")
            if did and did not in self.manager.sessions and any(d == did for (d, _) in self.terms):
                self.close_device(did)


def registry(manager):
    reg = getattr(manager, "_jrd_terminals", None)
    if reg is None:
        reg = manager._jrd_terminals = TerminalRegistry(manager)
    return reg


def refuse(handler, e):
    """Answer a WebSocket request with the contract's JSON error before any upgrade."""
    handler.set_status(e.status)
    handler.set_header("Content-Type", "application/json")
    handler.finish(json.dumps(e.to_dict()))


def _handlers():
    from .handlers import BaseHandler, _SocketBase

    class TerminalSocket(_SocketBase):
        term = None

        @ws_authenticated
        @authorized
        async def get(self, device_id):
            try:
                self.manager.get(device_id)  # unknown ids fail before the upgrade (404)
                name = self.get_argument("name", "") or uuid.uuid4().hex[:12]
                if not NAME_RE.match(name):
                    raise bad_request("name: 1-64 letters, digits, - or _")
            except ApiError as e:
                return refuse(self, e)
            res = super().get(device_id)
            if res is not None:
                await res

        async def open(self, device_id):
            name = self.get_argument("name", "") or uuid.uuid4().hex[:12]
            try:
                rows = _int(int(self.get_argument("rows", "24")), 1, 1000, "rows")
                cols = _int(int(self.get_argument("cols", "80")), 1, 1000, "cols")
            except ValueError:
                rows, cols = 24, 80
            try:
                sess = self.manager.require_session(device_id)
                term = await registry(self.manager).get_or_open(sess, name, rows, cols)
            except ApiError as e:
                self.send_json(["disconnect", e.message])
                self.close(4000 + (e.status if e.status < 1000 else 0), e.reason)
                return
            if self.ws_connection is None:  # the socket closed while the shell was starting
                term.detach(self)
                return
            self.term = term
            term.attach(self, replay=self.get_argument("replay", "1") != "0")

        def on_message(self, message):
            if self.term is None or not isinstance(message, str):
                return
            try:
                msg = json.loads(message)
            except ValueError:
                msg = None
            err = self.term.feed(msg) if msg is not None else "not JSON"
            if err:
                self.log.info("remote-device terminal: ignored a message: %s", err)

        def on_close(self):
            if self.term is not None:
                self.term.detach(self)

    class TerminalsHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        def get(self, device_id):
            self.manager.get(device_id)
            self.reply({"terminals": registry(self.manager).list(device_id)})

    class TerminalHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        def delete(self, device_id, name):
            self.manager.get(device_id)
            term = registry(self.manager).find(device_id, name)
            if term is None:
                raise not_found("No terminal %r on this device" % name[:64])
            term.kill()
            self.set_status(204)
            self.finish()

    return TerminalSocket, TerminalsHandler, TerminalHandler


def routes(ID):
    sock, many, one = _handlers()
    return [(r"/devices/%s/terminal" % ID, sock),
            (r"/devices/%s/terminals" % ID, many),
            (r"/devices/%s/terminals/(?P<name>[^/]+)" % ID, one)]
