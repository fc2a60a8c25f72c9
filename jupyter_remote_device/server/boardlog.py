"""The board log (WS ``devices/{id}/log``): output no cell waits for, and the agent's own log.

Messages are JSON ``{"t", "stream": "stdout" | "stderr" | "agent", "text"}``, one line
each; the last 500 lines come first. Each socket has its own connection to the board,
read by a dedicated thread that blocks in ``log_read`` (the board answers as soon as a
line arrives). What the board sends is checked like any answer from a board: plain
JSON, known streams, bounded text.
"""
import asyncio
import threading

from jupyter_server.auth.decorator import authorized, ws_authenticated

from .errors import ApiError

STREAMS = ("stdout", "stderr", "agent")
MAX_TEXT = 4096
WAIT = 5.0


def _clean(entries):
    out = []
    if not isinstance(entries, list):
        return out
    for e in entries[-500:]:
        if not isinstance(e, dict):
            continue
        t, stream, text, seq = e.get("t"), e.get("stream"), e.get("text"), e.get("seq")
        if stream not in STREAMS or not isinstance(text, str) or not isinstance(t, (int, float)) \
                or isinstance(t, bool):
            continue
        out.append({"t": float(t), "stream": stream, "text": text[:MAX_TEXT],
                    "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None})
    return out


class LogFollower(object):
    def __init__(self, manager, session, send, on_end):
        self.manager = manager
        self.session = session
        self.send = send
        self.on_end = on_end
        self.loop = asyncio.get_running_loop()
        self.conn = None
        self.stopped = False

    def open_blocking(self):
        from .session import json_text, map_remote_error
        try:
            self.conn = self.session.connect_new()
            self._read = self.conn.root.log_read
            first = json_text(self._read(0, 0.0, 500), "its log")
        except AttributeError:
            self.close_blocking()
            raise ApiError(501, "not-available", "The agent on %s keeps no board log (update it)" % self.session.name)
        except BaseException as e:
            self.close_blocking()
            if isinstance(e, ApiError):
                raise
            raise ApiError(502, "protocol", str(map_remote_error(e, self.session.name)))
        return first

    def start(self, first):
        self._deliver(_clean(first.get("entries")))
        seq = first.get("seq")
        self.after = seq if isinstance(seq, int) and not isinstance(seq, bool) else 0
        threading.Thread(target=self._loop, name="jrd-log-%s" % self.session.device_id, daemon=True).start()

    def _loop(self):
        from .session import json_text
        try:
            while not self.stopped:
                reply = json_text(self._read(self.after, WAIT, 500), "its log")
                seq = reply.get("seq")
                if not isinstance(seq, int) or isinstance(seq, bool):
                    break
                entries = _clean(reply.get("entries"))
                if seq < self.after:  # the agent restarted: its numbering starts over
                    self.after = 0
                    continue
                self.after = seq
                if entries:
                    self.loop.call_soon_threadsafe(self._deliver, entries)
        except Exception as e:
            if not self.stopped:
                self.manager.log.info("remote-device %s: board log ended: %s", self.session.name, e)
        if not self.stopped:
            try:
                self.loop.call_soon_threadsafe(self.on_end)
            except RuntimeError:
                pass

    def _deliver(self, entries):
        for e in entries:
            self.send({"t": e["t"], "stream": e["stream"], "text": e["text"]})

    def stop(self):
        self.stopped = True
        self.manager.pool.submit(self.close_blocking)

    def close_blocking(self):
        conn, self.conn = self.conn, None
        if conn is None:
            return
        from .session import drop
        drop(conn)


def routes(ID):
    from .handlers import _SocketBase

    class BoardLogSocket(_SocketBase):
        follower = None

        @ws_authenticated
        @authorized
        async def get(self, device_id):
            try:
                self.manager.get(device_id)
            except ApiError as e:
                from .terminal import refuse
                return refuse(self, e)
            res = super().get(device_id)
            if res is not None:
                await res

        async def open(self, device_id):
            try:
                sess = self.manager.require_session(device_id)
                follower = LogFollower(self.manager, sess, self.send_json, self._ended)
                first = await self.manager.run_with_timeout(follower.open_blocking)
            except ApiError as e:
                self.send_json({"t": None, "stream": "agent", "text": e.message, "error": e.reason})
                self.close(4000 + (e.status if e.status < 1000 else 0), e.reason)
                return
            if self.ws_connection is None:
                follower.stop()
                return
            self.follower = follower
            follower.start(first)

        def _ended(self):
            if self.ws_connection is not None:
                self.close(1000, "the board log ended")

        def on_message(self, message):
            pass

        def on_close(self):
            if self.follower is not None:
                self.follower.stop()

    return [(r"/devices/%s/log" % ID, BoardLogSocket)]
