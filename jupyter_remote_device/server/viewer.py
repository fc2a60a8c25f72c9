"""One camera WebSocket: flow control, adaptive quality and the status it reports.

A ``Viewer`` is a subscriber of one device stream (stream.py).  It keeps at most one
frame waiting (``_latest``: latest frame wins, the one it replaces is counted in
``dropped``) and at most one write in flight on its socket, and sends the waiting
frame only when the viewer's link has room for it:

- ``ack=1`` (what the frontend sends): the client answers ``{"type": "ack", "seq": S}``
  once it has drawn frame S (acks are cumulative: S acknowledges every frame up to S);
  at most ``window`` frames (default 2, settings ``{"type": "settings", "window": N}``)
  are unacknowledged at any time.  A viewer that stops acking gets no more frames (its
  status messages go on), and resumes with its next ack.
- without acks, what the server sees of its socket: a frame goes out only when the
  kernel's send queue of that socket (``SIOCOUTQ``) holds less than half a frame, so
  on a link slower than the stream the backlog, and so the latency, stays bounded.

``adaptive`` (query ``adaptive=1`` or settings ``{"adaptive": true}``): a ``Ladder``
(adapt.py) lowers the JPEG quality, then the size, so that the wanted frame rate (the
fps cap, else the camera's rate) fits the link rate the ``LinkMeter`` measures, and
climbs back when the link allows.  The viewer then moves to the device stream of that
level (stream.py ``move``).

Status messages (text, about once a second and on every change):
``{"type": "status", "state": "streaming"|"paused"|"reconnecting"|"error"|"stopped",
"fps": frames this viewer got per second (acknowledged ones with ack=1), "source_fps",
"dropped", "sent", "acked", "width", "height", "quality" (what is in use),
"fps_cap", "viewers", "ack", "window", "unacked", "adaptive", "requested":
{"width","height","quality"}, "link_kbps" (the link's capacity while it is saturated,
else what it carries now), "link_saturated", "rtt_ms", "latency_ms" (capture to ack),
"message"?}``.  A bad client message gets a status with ``"error": "bad-request"``.
"""
import asyncio
import collections
import json
import struct
import time

from .adapt import Ladder, LinkMeter
from .devstream import normalize_settings
from .errors import ApiError, bad_request
from .stream import Subscriber, unpark

STATUS_INTERVAL = 1.0
ADAPT_INTERVAL = 0.5
PING_INTERVAL = 1.0
MAX_WINDOW = 32
SIOCOUTQ = 0x5411       # linux: bytes in a socket's send queue
FALLBACK_SNDBUF = 64 * 1024


def _socket_of(ws):
    try:
        return ws.ws_connection.stream.socket
    except AttributeError:
        return None


def _outq(sock):
    """Bytes waiting in the kernel's send queue of ``sock``, or None where we can't tell."""
    if sock is None:
        return None
    try:
        import fcntl
        buf = fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]
    except (ImportError, OSError, ValueError):
        return None


class Viewer(Subscriber):
    """One WebSocket's view of a camera; see the module docstring."""

    def __init__(self, owner, camera_id, settings, ack=False, window=2, adaptive=False):
        Subscriber.__init__(self, owner, camera_id, settings)
        self.requested = dict(settings)  # what the client asked for; self.settings is what is sent
        self.ack = bool(ack)
        self.window = _window(window)
        self.adaptive = bool(adaptive)
        self.ladder = Ladder(settings["width"], settings["height"], settings["quality"]) if adaptive else None
        self.sent = 0
        self.dropped = 0
        self.acked = 0
        self.bytes_sent = 0
        self.unacked = collections.deque()  # (seq, sent_at, nbytes, frame), oldest first
        self.meter = LinkMeter()
        self._latest = None
        self._ws = None
        self._sock = None
        self._writing = False
        self._sock_error = False
        self._done = None
        self._status_due = True
        self._notice = None          # one-off fields for the next status (bad client message)
        self._timers = []
        self._recheck = None
        self._fps_marks = collections.deque(maxlen=8)  # (now, count)
        self._fps = 0.0
        self._ping = None            # (payload, sent_at)
        self._ping_n = 0
        self._drain = collections.deque(maxlen=64)  # (now, bytes that left the socket) without acks
        self._moving = False
        self._adapt_at = 0.0
        self._mark = (0, 0)          # (frames offered, dropped) at the last adaptation check

    # -- the contract ---------------------------------------------------------
    async def pump(self, ws):
        """Send frames and status to ``ws`` until the viewer or the socket closes."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._ws = ws
        self._sock = _socket_of(ws)
        if not self.ack and _outq(self._sock) is None and self._sock is not None:
            try:  # no view of the send queue: keep it small instead
                import socket
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FALLBACK_SNDBUF)
            except OSError:
                pass
        self._every(STATUS_INTERVAL, self._tick)
        self._status_now()
        try:
            await self._done
        finally:
            self.close()

    async def on_client_message(self, text):
        try:
            try:
                msg = json.loads(text)
            except (TypeError, ValueError):
                raise bad_request("not JSON: %s" % str(text)[:60])
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise bad_request('expected {"type": "ack"|"settings"|"pause"|"resume", ...}')
            kind = msg["type"]
            if kind == "ack":
                self._on_ack(msg)
                return  # no status for an ack
            if kind == "settings":
                await self._on_settings(msg)
            elif kind == "pause":
                if not self.paused:
                    self.paused = True
                    self._latest = None
                    self.owner.detach(self)
            elif kind == "resume":
                if self.paused:
                    self.paused = False
                    await self.owner.move(self, self.settings)
            else:
                raise bad_request("unknown message type %r" % kind[:40])
        except ApiError as e:
            self._notice = {"error": e.reason, "message": e.message}
        except Exception as e:  # never raise out of here
            self._notice = {"error": "internal", "message": "%s: %s" % (type(e).__name__, e)}
        self._status_now()

    def on_pong(self, data):
        p = self._ping
        if p is not None and data == p[0]:
            self._ping = None
            now = time.monotonic()
            rtt = now - p[1]
            ahead, rate = p[2], self.meter.rate(now) if self.ack else self._drain_rate()
            if ahead and rate:
                rtt -= ahead / rate  # it waited behind that many bytes in our socket
            self.meter.pong(now, rtt)

    def close(self):
        if self.closed:
            return
        self._latest = None
        self._ws = None
        for t in self._timers:
            t.cancel()
        self._timers = []
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        Subscriber.close(self)
        self._finish()

    def describe(self):
        return {"camera_id": self.camera_id, "state": self.state, "sent": self.sent, "dropped": self.dropped,
                "acked": self.acked, "unacked": len(self.unacked), "ack": self.ack, "window": self.window,
                "settings": dict(self.settings), "requested": dict(self.requested), "kind": "viewer"}

    # -- client messages ------------------------------------------------------
    def _on_ack(self, msg):
        seq = msg.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, (int, float)):
            raise bad_request('an ack needs a numeric "seq"')
        hold = msg.get("hold_ms", 0)
        ok = isinstance(hold, (int, float)) and not isinstance(hold, bool) and 0 <= hold < 60000
        hold = hold / 1000.0 if ok else 0.0  # how long the client held the frame before acking
        now = time.monotonic()
        popped = []
        while self.unacked and self.unacked[0][0] <= seq:
            popped.append(self.unacked.popleft())
        if not popped:
            return  # stale or repeated: nothing outstanding up to seq
        self.acked += 1
        nbytes = sum(p[2] for p in popped)
        first, last = popped[0], popped[-1]
        frame = last[3]
        latency = now - frame.received
        board = frame.received_wall - frame.captured_at
        if 0 <= board < 60:  # the board's clock agrees with ours: count its part too
            latency += board
        self.meter.acked(now - hold, nbytes, first[1], first[4], latency)
        self._flush()
        self._maybe_adapt(now)

    async def _on_settings(self, msg):
        if "window" in msg:
            self.window = _window(msg["window"])
        if "ack" in msg:
            self.ack = bool(msg["ack"])
            if not self.ack:
                self.unacked.clear()
        if "adaptive" in msg:
            on = bool(msg["adaptive"])
            if on != self.adaptive:
                self.adaptive = on
                self.ladder = None
        new = normalize_settings(msg, base=self.requested)
        changed = new != self.requested
        self.requested = new
        if self.adaptive and (self.ladder is None or changed):
            self.ladder = Ladder(new["width"], new["height"], new["quality"])
        target = self._level_settings()
        if self.paused:
            self.settings = target  # applied on resume
        elif target != self.settings:
            await self.owner.move(self, target)
        self._flush()

    # -- frames ---------------------------------------------------------------
    def offer(self, frame):
        if self.closed or self.paused:
            return
        if self.unacked and frame.seq < self.unacked[0][0]:
            self.unacked.clear()  # the board restarted: seq starts again
            self.meter.last_ack = None
        if self._latest is not None:
            self.dropped += 1
        self._latest = frame
        self._flush()

    def _may_send(self, frame):
        if self.ack:
            return len(self.unacked) < self.window
        q = _outq(self._sock)
        if q is None:
            return True  # one write in flight and a small send buffer
        now = time.monotonic()
        self._drain.append((now, self.bytes_sent - q, q))
        if q <= max(2048, len(frame) // 2):
            return True
        if self._recheck is None and self._ws is not None:
            wait = 0.005
            r = self._drain_rate()
            if r:
                wait = min(0.05, max(0.002, (q - len(frame) // 2) / r))
            self._recheck = asyncio.get_running_loop().call_later(wait, self._rechecked)
        return False

    def _rechecked(self):
        self._recheck = None
        self._flush()

    def _drain_rate(self):
        d = self._drain
        if len(d) < 2 or d[-1][0] - d[0][0] < 0.2:
            return None
        return (d[-1][1] - d[0][1]) / (d[-1][0] - d[0][0])

    def _flush(self):
        """Write what is due, one message at a time (called on every event)."""
        ws = self._ws
        if ws is None or self._writing:
            return
        if self._sock_error:
            return self._finish()
        if self._status_due:
            self._status_due = False
            self._write(json.dumps(self.status()), False)
            return
        if self.ended is not None:
            return self._finish()
        frame = self._latest
        if frame is None or self.paused or not self._may_send(frame):
            return
        self._latest = None
        now = time.monotonic()
        if self.ack:
            self.unacked.append((frame.seq, now, len(frame.data), frame, not self.unacked))
        self.sent += 1
        self.bytes_sent += len(frame.data)
        if self.ladder is not None and self.stream is not None:
            i = self.ladder.index_of(self.stream.settings)
            if i is not None:
                self.ladder.saw_frame(len(frame.data), i)
        self._write(frame.data, True)

    def _write(self, msg, binary):
        self._writing = True
        try:
            fut = self._ws.write_message(msg, binary=binary)
        except Exception:
            self._writing = False
            self._sock_error = True
            return self._finish()
        if asyncio.iscoroutine(fut):
            fut = asyncio.ensure_future(fut)
        if fut is None:
            self._writing = False
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            fut.add_done_callback(self._written)

    def _written(self, fut):
        self._writing = False
        if fut.cancelled() or fut.exception() is not None:
            self._sock_error = True
            return self._finish()
        self._flush()

    def _finish(self):
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- adaptation -----------------------------------------------------------
    def _level_settings(self):
        s = dict(self.requested)
        if self.adaptive and self.ladder is not None:
            w, h, q = self.ladder.level
            s.update(width=w, height=h, quality=q)
        return s

    def _maybe_adapt(self, now):
        if not self.adaptive or self.ladder is None or self._moving or self.paused or self.stream is None:
            return
        if now - self._adapt_at < ADAPT_INTERVAL:
            return
        self._adapt_at = now
        rate = self.meter.rate(now) if self.ack else self._drain_rate()
        fps = self.requested["fps"] or self.stream.source_fps()
        if self.requested["fps"] and self.stream.source_fps():
            fps = min(fps, self.stream.source_fps())
        offered, dropped = self.sent + self.dropped - self._mark[0], self.dropped - self._mark[1]
        self._mark = (self.sent + self.dropped, self.dropped)
        share = float(dropped) / offered if offered > 0 else 0.0
        if self.ladder.decide(now, rate, fps, share) is None:
            return
        asyncio.ensure_future(self._apply_level())

    async def _apply_level(self):
        self._moving = True
        try:
            target = self._level_settings()
            if target != self.settings and not self.closed:
                await self.owner.move(self, target)
        except ApiError:
            pass  # the status says so
        finally:
            self._moving = False
        self._status_now()

    # -- status ---------------------------------------------------------------
    def status(self):
        now = time.monotonic()
        count = self.acked if self.ack else self.sent
        marks = self._fps_marks
        if not marks or now - marks[-1][0] >= 0.5:
            marks.append((now, count))
        t0, n0 = marks[0]
        if now - t0 >= 0.5:
            self._fps = (count - n0) / (now - t0)
        st = self.stream
        if self.ack:
            rate = self.meter.rate(now) or self.meter.throughput(now)
        else:
            rate = self._drain_rate()
        rtt = self.meter.rtt(now)
        lat = self.meter.latency_s() if self.ack else None
        out = {"type": "status", "state": self.state, "fps": round(self._fps, 2),
               "source_fps": round(st.source_fps(), 2) if st is not None else 0.0,
               "dropped": self.dropped, "sent": self.sent, "acked": self.acked,
               "width": st.width if st is not None else self.settings["width"],
               "height": st.height if st is not None else self.settings["height"],
               "quality": self.settings["quality"], "fps_cap": self.requested["fps"],
               "viewers": len(st.viewers) if st is not None else 1,
               "ack": self.ack, "window": self.window, "unacked": len(self.unacked),
               "adaptive": self.adaptive,
               "requested": {k: self.requested[k] for k in ("width", "height", "quality")},
               "link_kbps": round(rate * 8 / 1000.0, 1) if rate else None,
               "link_saturated": (self.meter.rate(now) is not None) if self.ack else bool(
                   self._drain and self._drain[-1][2] > 0),
               "rtt_ms": round(rtt * 1000.0, 1) if rtt is not None else None,
               "latency_ms": round(lat * 1000.0, 1) if lat is not None else None}
        message = None
        if self.ended is not None:
            message = self.ended[1]
        elif self.error is not None:
            message = self.error[1]
        elif st is not None and st.message and st.state != "streaming":
            message = st.message
        elif self.parked_until is not None:
            message = "the connection to %s was lost; waiting for it to come back" % self.owner.device_name
        if message:
            out["message"] = message
        if self._notice is not None:
            out.update(self._notice)
            self._notice = None
        return out

    def stream_state_changed(self):
        self._status_now()

    def _status_now(self):
        self._status_due = True
        self._flush()

    def _every(self, interval, fn):
        loop = asyncio.get_running_loop()

        def run():
            if self.closed:
                return
            fn()
            self._timers = [t for t in self._timers if t is not handle[0]]
            handle[0] = loop.call_later(interval, run)
            self._timers.append(handle[0])

        handle = [loop.call_later(interval, run)]
        self._timers.append(handle[0])

    def _tick(self):
        now = time.monotonic()
        if self.parked_until is not None and now > self.parked_until:
            unpark(self)
            self.end("stopped", "the connection to %s did not come back" % self.owner.device_name)
        self._send_ping(now)
        self._maybe_adapt(now)
        self._status_now()

    def _send_ping(self, now):
        ws = self._ws
        if ws is None or not hasattr(ws, "ping"):
            return
        p = self._ping
        if p is not None and now - p[1] < 5.0:
            return  # still waiting for the last one
        self._ping_n += 1
        payload = b"jrd%d" % self._ping_n
        try:
            ws.ping(payload)
        except Exception:
            return
        self._ping = (payload, now, _outq(self._sock) or 0)


def _window(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise bad_request("window must be a number of frames")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise bad_request("window must be a number of frames, got %r" % str(v)[:40])
    if not 1 <= n <= MAX_WINDOW:
        raise bad_request("window must be between 1 and %d (got %d)" % (MAX_WINDOW, n))
    return n

