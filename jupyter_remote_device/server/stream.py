"""Camera fan-out: one device stream per distinct setting, N viewers, latest frame wins.

``CameraStreams`` belongs to one connected ``DeviceSession``.  Viewers (one per
camera WebSocket) asking for the same (camera, width, height, quality, fps) share
one *device stream*: one rpyc connection of its own (``connect()``), one
``camera_open`` on the agent, and one pump running in a worker thread of this
module's own pool.  The pump pipelines ``camera_next`` calls (``PIPELINE`` in
flight, so the board starts on the next frame while this one travels) and hands
every frame, as the agent's bytes (no re-encoding, no base64), to each viewer's
one-frame "latest" slot.  A viewer's ``pump(ws)`` coroutine awaits
``ws.write_message`` for each frame: a slow socket simply gets fewer frames
(the slot is overwritten, counted in ``dropped``), never a queue, so server
memory stays flat.

Lifecycle
- A device stream stops (``camera_close`` + its connection closed, in its worker
  thread) when its last viewer leaves, pauses or moves to other settings.
- A settings message moves the viewer live: if it is the stream's only viewer and
  nobody streams the new settings yet, the same device stream is reconfigured
  (``camera_configure``; no new connection); otherwise the viewer joins or opens
  the device stream for its new settings, then leaves the old one.
- If a device stream's connection breaks, its viewers get ``reconnecting`` and the
  stream re-dials with backoff on its own.
- Session loss: ``DeviceSession`` calls ``close(reconnecting=True)``: device
  streams stop, viewers stay alive in state ``reconnecting`` (parked for up to
  ``ORPHAN_TTL`` seconds), and the next ``CameraStreams`` made with the same
  ``connect`` (the session's bound ``connect_new``, which compares equal) adopts
  them and re-opens their streams: the browser's socket never drops.
  ``close()`` (session closed for good) ends every viewer with ``stopped``; its
  ``pump`` returns.

Status messages (text, about once a second and on every change):
``{"type": "status", "state": "streaming"|"paused"|"reconnecting"|"error"|"stopped",
"fps": delivered to this viewer, "source_fps": the camera's capture rate,
"dropped": frames this viewer skipped (latest wins), "width", "height",
"quality", "fps_cap", "message"?}``.  A bad client message gets a status with the
current state plus ``"error": "bad-request"`` and a ``message``.
"""
import asyncio
import collections
import json
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .errors import ApiError, bad_request

PIPELINE = 2           # camera_next calls in flight per device stream
NEXT_TIMEOUT = 1.0     # seconds the agent may hold one camera_next
STATUS_INTERVAL = 1.0
ORPHAN_TTL = 120.0     # how long viewers wait for their session to come back
DEFAULTS = {"width": 640, "height": 480, "quality": 80, "fps": 0}
LIMITS = {"width": (16, 8192), "height": (16, 8192), "quality": (1, 100), "fps": (0, 240)}

# viewers whose session was lost, waiting for the next CameraStreams of that board
_ORPHANS = {}


def normalize_settings(settings, base=None):
    """Validated {"width","height","quality","fps"}; raises ApiError 400."""
    out = dict(base or DEFAULTS)
    if settings is None:
        return out
    if not isinstance(settings, dict):
        raise bad_request("camera settings must be an object")
    for k, (lo, hi) in LIMITS.items():
        if k not in settings or settings[k] is None:
            continue
        v = settings[k]
        if isinstance(v, bool):
            raise bad_request("%s must be a number" % k)
        try:
            v = float(v) if k == "fps" else int(v)
        except (TypeError, ValueError):
            raise bad_request("%s must be a number, got %r" % (k, str(v)[:40]))
        if k != "fps" and isinstance(settings[k], float) and settings[k] != int(settings[k]):
            raise bad_request("%s must be an integer" % k)
        if not lo <= v <= hi:
            raise bad_request("%s must be between %s and %s (got %s)" % (k, lo, hi, v))
        out[k] = int(v) if (k != "fps" or v == int(v)) else v
    return out


def _header(frame):
    (n,) = struct.unpack(">I", frame[:4])
    return json.loads(frame[4:4 + n].decode("utf-8"))


def _map_error(e, device_name):
    """An ApiError for what a blocking camera call raised."""
    if isinstance(e, ApiError):
        return e
    msg = str(e.args[0]) if getattr(e, "args", None) else type(e).__name__
    if hasattr(e, "_remote_tb") and msg.startswith("no camera "):
        return ApiError(404, "not-found", msg)
    try:
        from .session import ConnectionLost, map_remote_error
    except ImportError:  # pragma: no cover
        return ApiError(502, "protocol", "%s: %s" % (device_name, msg))
    err = map_remote_error(e, device_name)
    if isinstance(err, ConnectionLost):
        return ApiError(502, "protocol", str(err))
    return err


def _is_link_error(e):
    if hasattr(e, "_remote_tb"):
        return False
    if type(e).__name__ in ("AsyncResultTimeout", "ConnectError"):
        return True
    return isinstance(e, (EOFError, ConnectionError, OSError, TimeoutError))


class _DeviceStream(object):
    """One agent stream (one connection, one camera_open) shared by its viewers."""

    def __init__(self, owner, key):
        self.owner = owner
        self.key = key
        self.camera_id = key[0]
        self.settings = {"width": key[1], "height": key[2], "quality": key[3], "fps": key[4]}
        self.viewers = set()
        self.state = "opening"
        self.message = None
        self.opened = None          # asyncio.Future: the first open's outcome
        self.future = None          # the pump's executor future
        self._stop = threading.Event()
        self._config = None         # settings the pump thread must apply (set on the loop)
        self._config_lock = threading.Lock()
        self.conn = None
        self.sid = None
        self.frames = 0
        self.skipped = 0
        self.last_seq = None
        self.width = key[1]
        self.height = key[2]
        self._rate = collections.deque(maxlen=64)  # (captured_at, seq) for source_fps

    # -- loop side -----------------------------------------------------------
    @property
    def stopped(self):
        return self._stop.is_set()

    def source_fps(self):
        r = self._rate
        if len(r) < 2:
            return 0.0
        (t0, s0), (t1, s1) = r[0], r[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def reconfigure(self, settings):
        self.settings = dict(settings)
        with self._config_lock:
            self._config = dict(settings)

    def stop(self):
        self._stop.set()

    def _post(self, fn, *args):
        try:
            self.owner.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is gone (server shutting down)
            self._stop.set()

    def _deliver(self, frame, seq, captured_at, width, height):
        if self.stopped:
            return
        if self.state != "streaming":
            self._set_state("streaming", None)
        self.width, self.height = width, height
        for v in list(self.viewers):
            v._offer(frame)

    def _set_state(self, state, message):
        self.state = state
        self.message = message
        for v in list(self.viewers):
            v._stream_state_changed()

    # -- worker thread -------------------------------------------------------
    def open_blocking(self):
        """Dial and camera_open (raises). Runs in a worker thread."""
        conn = self.owner.connect()
        try:
            s = self.settings
            sid = conn.root.camera_open(self.camera_id, s["width"], s["height"], s["quality"], s["fps"])
        except BaseException:
            _close_quietly(conn)
            raise
        return conn, sid

    def run_blocking(self):
        """The pump: pipelined camera_next until stopped; re-dials when the link breaks."""
        import rpyc
        delay = 0.25
        try:
            while not self._stop.is_set():
                if self.conn is None:
                    try:
                        self.conn, self.sid = self.open_blocking()
                        self._rate.clear()  # a restarted board restarts seq
                        self.last_seq = None
                        delay = 0.25
                    except Exception as e:
                        link = _is_link_error(e)
                        self._post(self._set_state, "reconnecting" if link else "error",
                                   "%s; retrying" % _map_error(e, self.owner.device_name).message)
                        self._stop.wait(delay)
                        delay = min(delay * 2, 5.0)
                        continue
                try:
                    self._pump(rpyc)
                except Exception as e:
                    if self._stop.is_set():
                        break
                    link = _is_link_error(e)
                    msg = ("the camera connection to %s broke (%s); reconnecting" % (self.owner.device_name, e)
                           if link else "the board reported: %s" % _map_error(e, self.owner.device_name).message)
                    self.owner.log.warning("remote-device %s camera: %s", self.owner.device_name, msg)
                    self._post(self._set_state, "reconnecting" if link else "error", msg)
                    conn, self.conn, self.sid = self.conn, None, None
                    _close_quietly(conn)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._release()

    def _pump(self, rpyc):
        conn, sid = self.conn, self.sid
        anext = rpyc.async_(conn.root.camera_next)
        pending = collections.deque()
        for _ in range(PIPELINE):
            r = anext(sid, -1, NEXT_TIMEOUT)
            r.set_expiry(NEXT_TIMEOUT + 15.0)
            pending.append(r)
        while not self._stop.is_set():
            with self._config_lock:
                cfg, self._config = self._config, None
            if cfg is not None:
                conn.root.camera_configure(sid, cfg["width"], cfg["height"], cfg["quality"], cfg["fps"])
            res = pending.popleft()
            frame = res.value  # waits (serving this connection); raises what the agent raised
            if self._stop.is_set():
                break
            r = anext(sid, -1, NEXT_TIMEOUT)
            r.set_expiry(NEXT_TIMEOUT + 15.0)
            pending.append(r)
            if not frame:
                continue  # timeout on the board: nothing new (fps cap, slow sensor)
            h = _header(frame)
            seq = h.get("seq", 0)
            if self.last_seq is not None and seq > self.last_seq + 1:
                self.skipped += seq - self.last_seq - 1
            self.last_seq = seq
            self.frames += 1
            self._rate.append((h.get("captured_at", 0.0), seq))
            self._post(self._deliver, frame, seq, h.get("captured_at"), h.get("width"), h.get("height"))

    def _release(self):
        conn, sid, self.conn, self.sid = self.conn, self.sid, None, None
        if conn is None:
            return
        try:
            import rpyc
            if sid is not None:
                r = rpyc.async_(conn.root.camera_close)(sid)
                r.set_expiry(3.0)
                r.wait()
        except Exception:
            pass  # the agent closes a dropped connection's streams anyway
        _close_quietly(conn)


def _close_quietly(conn):
    try:
        conn.close()
    except Exception:
        pass


class Viewer(object):
    """One WebSocket's view of a camera; see the module docstring."""

    def __init__(self, owner, camera_id, settings):
        self.owner = owner
        self.camera_id = str(camera_id)
        self.settings = dict(settings)
        self.stream = None
        self.paused = False
        self.closed = False
        self.ended = None            # (state, message) once the viewer is over
        self.parked_until = None     # set while waiting for the session to come back
        self.error = None            # (state, message) of a failed move/adopt
        self.sent = 0
        self.dropped = 0
        self._latest = None
        self._event = asyncio.Event()
        self._status_due = True
        self._timer = None
        self._fps_mark = (time.monotonic(), 0)
        self._fps = 0.0
        self._notice = None          # one-off message for the next status (bad client message)
        # at most one write in flight per socket, either the pump's or the fast path's
        self._ws = None
        self._busy = False           # the pump coroutine is writing
        self._inflight = None        # a fast-path write still flushing
        self._sock_error = False

    # -- the contract ---------------------------------------------------------
    async def pump(self, ws):
        """Send frames and status to ``ws`` until the viewer or the socket closes.

        While the socket keeps up, ``_offer`` writes each frame straight from the
        delivery callback (no task switch per frame); when a write is still flushing
        the frame waits in the one-frame slot and this coroutine sends it after."""
        from tornado.iostream import StreamClosedError
        from tornado.websocket import WebSocketClosedError
        self._arm_timer()
        self._status_now()  # the first status goes out at once
        self._ws = ws
        try:
            while True:
                await self._event.wait()
                self._event.clear()
                if self._sock_error:
                    return
                if self.ended is None and not self.closed and self._inflight is not None:
                    continue  # its completion wakes us again
                self._busy = True
                try:
                    if self._status_due:
                        self._status_due = False
                        await ws.write_message(json.dumps(self.status()))
                    if self.ended is not None or self.closed:
                        return
                    frame, self._latest = self._latest, None
                    if frame is not None and not self.paused:
                        self.sent += 1
                        await ws.write_message(frame, binary=True)
                finally:
                    self._busy = False
        except (WebSocketClosedError, StreamClosedError):
            return
        finally:
            self.close()

    async def on_client_message(self, text):
        try:
            try:
                msg = json.loads(text)
            except (TypeError, ValueError):
                raise bad_request("not JSON: %s" % str(text)[:60])
            if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
                raise bad_request('expected {"type": "settings"|"pause"|"resume", ...}')
            kind = msg["type"]
            if kind == "settings":
                new = normalize_settings(msg, base=self.settings)
                if self.paused:
                    self.settings = new  # applied on resume
                else:
                    await self.owner._move(self, new)
            elif kind == "pause":
                if not self.paused:
                    self.paused = True
                    self._latest = None
                    self.owner._detach(self)
            elif kind == "resume":
                if self.paused:
                    self.paused = False
                    await self.owner._move(self, self.settings)
            else:
                raise bad_request("unknown message type %r" % kind[:40])
        except ApiError as e:
            self._notice = {"error": e.reason, "message": e.message}
        except Exception as e:  # never raise out of here
            self._notice = {"error": "internal", "message": "%s: %s" % (type(e).__name__, e)}
        self._status_now()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self._latest = None
        self._ws = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        _unpark(self)
        self.owner._forget(self)
        self._event.set()

    # -- state ---------------------------------------------------------------
    @property
    def state(self):
        if self.ended is not None:
            return self.ended[0]
        if self.paused:
            return "paused"
        if self.error is not None:
            return self.error[0]
        if self.stream is None:
            return "reconnecting"
        st = self.stream.state
        return "reconnecting" if st == "opening" else st

    def status(self):
        now = time.monotonic()
        t0, n0 = self._fps_mark
        if now - t0 >= 0.5:
            self._fps = (self.sent - n0) / (now - t0)
            self._fps_mark = (now, self.sent)
        st = self.stream
        out = {"type": "status", "state": self.state, "fps": round(self._fps, 2),
               "source_fps": round(st.source_fps(), 2) if st is not None else 0.0,
               "dropped": self.dropped, "sent": self.sent,
               "width": st.width if st is not None else self.settings["width"],
               "height": st.height if st is not None else self.settings["height"],
               "quality": self.settings["quality"], "fps_cap": self.settings["fps"],
               "viewers": len(st.viewers) if st is not None else 1}
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

    def _offer(self, frame):
        if self.closed or self.paused:
            return
        ws = self._ws
        if (ws is not None and not self._busy and self._inflight is None and not self._status_due
                and self._latest is None and not self._sock_error):
            # fast path: the socket is idle, write now
            try:
                fut = ws.write_message(frame, binary=True)
                if asyncio.iscoroutine(fut):
                    fut = asyncio.ensure_future(fut)
            except Exception:
                self._sock_error = True
                self._event.set()
                return
            self.sent += 1
            if fut is not None and not fut.done():
                self._inflight = fut
                fut.add_done_callback(self._written)
            elif fut is not None:
                self._written(fut)
            return
        if self._latest is not None:
            self.dropped += 1
        self._latest = frame
        self._event.set()

    def _written(self, fut):
        if self._inflight is fut:
            self._inflight = None
        if fut.cancelled() or fut.exception() is not None:
            self._sock_error = True
            self._event.set()
        elif self._latest is not None or self._status_due or self.closed or self.ended is not None:
            self._event.set()

    def _stream_state_changed(self):
        self._status_now()

    def _status_now(self):
        self._status_due = True
        self._event.set()

    def _end(self, state, message):
        if self.ended is None:
            self.ended = (state, message)
        self._status_now()

    def _arm_timer(self):
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(STATUS_INTERVAL, self._tick)

    def _tick(self):
        self._timer = None
        if self.closed:
            return
        if self.parked_until is not None and time.monotonic() > self.parked_until:
            _unpark(self)
            self._end("stopped", "the connection to %s did not come back" % self.owner.device_name)
        self._status_now()
        self._arm_timer()


def _unpark(viewer):
    for key, lst in list(_ORPHANS.items()):
        if viewer in lst:
            lst.remove(viewer)
            if not lst:
                _ORPHANS.pop(key, None)
    viewer.parked_until = None


def release_parked(connect, message="the session ended"):
    """End the viewers parked for ``connect`` (the session closed for good while it
    was reconnecting): they get ``stopped`` and their pumps return."""
    key = connect
    try:
        hash(key)
    except TypeError:
        return
    for v in _ORPHANS.pop(key, []):
        v.parked_until = None
        v._end("stopped", message)


class CameraStreams(object):
    """All camera streams of one connected board; see the module docstring."""

    def __init__(self, connect, log, device_name):
        self.connect = connect
        self.log = log
        self.device_name = device_name
        self.loop = None
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="jrd-camera")
        self._streams = {}       # key -> _DeviceStream (running or opening)
        self._viewers = set()
        self._closed = False
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        orphans = _ORPHANS.pop(self._orphan_key(), [])
        if orphans and self.loop is not None and self.loop.is_running():
            for v in orphans:
                if not v.closed and v.ended is None:
                    asyncio.ensure_future(self._adopt(v))
        elif orphans:
            _ORPHANS[self._orphan_key()] = orphans

    def _orphan_key(self):
        try:
            hash(self.connect)
            return self.connect
        except TypeError:
            return self.device_name

    # -- the contract ---------------------------------------------------------
    async def add_viewer(self, camera_id, settings):
        """A new viewer attached to (a possibly shared) device stream; raises ApiError."""
        if self._closed:
            raise ApiError(409, "not-connected", "%s is not connected" % self.device_name)
        self.loop = asyncio.get_running_loop()
        s = normalize_settings(settings)
        viewer = Viewer(self, camera_id, s)
        self._viewers.add(viewer)
        try:
            await self._attach(viewer, s)
        except BaseException:
            self._viewers.discard(viewer)
            viewer.closed = True
            raise
        return viewer

    async def close(self, reconnecting=False):
        """The session ends (or, with reconnecting=True, lost its link: viewers wait)."""
        if self._closed:
            return
        self._closed = True
        streams = list(self._streams.values())
        self._streams.clear()
        viewers = [v for v in self._viewers if not v.closed]
        for v in viewers:
            v.stream = None
            v._latest = None
        for st in streams:
            st.viewers.clear()
            st.stop()
        if reconnecting:
            deadline = time.monotonic() + ORPHAN_TTL
            parked = [v for v in viewers if v.ended is None]
            for v in parked:
                v.parked_until = deadline
                v._status_now()
            if parked:
                _ORPHANS.setdefault(self._orphan_key(), []).extend(parked)
        else:
            for v in viewers:
                v._end("stopped", "the session with %s ended" % self.device_name)
        self._viewers.clear()
        futs = [st.future for st in streams if st.future is not None]
        if futs:
            await asyncio.wait([asyncio.wrap_future(f) for f in futs], timeout=2 * NEXT_TIMEOUT + 3.5)
        self._pool.shutdown(wait=False)

    def stats(self):
        return {
            "device": self.device_name,
            "device_streams": len(self._streams),
            "viewers": len([v for v in self._viewers if not v.closed]),
            "streams": [{"camera_id": st.camera_id, "settings": dict(st.settings), "state": st.state,
                         "viewers": len(st.viewers), "frames": st.frames, "skipped": st.skipped,
                         "source_fps": round(st.source_fps(), 2)} for st in self._streams.values()],
            "viewer_list": [{"camera_id": v.camera_id, "state": v.state, "sent": v.sent, "dropped": v.dropped,
                             "settings": dict(v.settings)} for v in self._viewers if not v.closed],
        }

    # -- internals (loop thread) -----------------------------------------------
    @staticmethod
    def _key(camera_id, s):
        return (str(camera_id), int(s["width"]), int(s["height"]), int(s["quality"]), float(s["fps"]))

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _get_stream(self, key):
        """The running device stream for key, opening it if needed (raises ApiError)."""
        st = self._streams.get(key)
        if st is None or st.stopped:
            st = _DeviceStream(self, key)
            st.opened = asyncio.get_running_loop().create_future()
            self._streams[key] = st
            try:
                st.conn, st.sid = await self._run(st.open_blocking)
            except Exception as e:
                if self._streams.get(key) is st:
                    del self._streams[key]
                st.stop()
                err = _map_error(e, self.device_name)
                st.opened.set_exception(err)
                st.opened.exception()  # mark retrieved
                raise err
            st.state = "streaming"
            st.opened.set_result(True)
            if self._closed or (self._streams.get(key) is not st):
                # closed while opening: give the connection back
                st.stop()
                t = threading.Thread(target=st._release, name="jrd-camera-release")
                t.daemon = True
                t.start()
                raise ApiError(409, "not-connected", "%s is not connected" % self.device_name)
            st.future = self._pool.submit(st.run_blocking)
        elif not st.opened.done():
            await asyncio.shield(st.opened)
        return st

    async def _attach(self, viewer, settings):
        key = self._key(viewer.camera_id, settings)
        old = viewer.stream
        if old is not None and old.key == key and not old.stopped:
            viewer.settings = dict(settings)
            return
        st = await self._get_stream(key)
        if viewer.closed or self._closed:
            self._maybe_stop(st)
            return
        viewer.settings = dict(settings)
        viewer.error = None
        st.viewers.add(viewer)
        viewer.stream = st
        if old is not None and old is not st:
            old.viewers.discard(viewer)
            self._maybe_stop(old)
        viewer._status_now()

    async def _move(self, viewer, settings):
        """Live settings change / resume: reconfigure in place, join, or open."""
        if self._closed:
            viewer.settings = dict(settings)
            return
        key = self._key(viewer.camera_id, settings)
        old = viewer.stream
        if (old is not None and not old.stopped and old.key != key and old.viewers == {viewer}
                and key not in self._streams and old.state == "streaming"):
            del self._streams[old.key]
            old.key = key
            self._streams[key] = old
            old.reconfigure(settings)
            viewer.settings = dict(settings)
            viewer._status_now()
            return
        try:
            await self._attach(viewer, settings)
        except ApiError as e:
            viewer.error = ("error", e.message)
            viewer._status_now()
            raise

    def _detach(self, viewer):
        st, viewer.stream = viewer.stream, None
        if st is not None:
            st.viewers.discard(viewer)
            self._maybe_stop(st)

    def _forget(self, viewer):
        self._detach(viewer)
        self._viewers.discard(viewer)

    def _maybe_stop(self, st):
        if not st.viewers and st.opened is not None and st.opened.done():
            if self._streams.get(st.key) is st:
                del self._streams[st.key]
            st.stop()

    async def _adopt(self, viewer):
        """Re-attach a viewer parked by a lost session's CameraStreams."""
        viewer.owner = self
        viewer.parked_until = None
        self._viewers.add(viewer)
        if viewer.closed:
            self._viewers.discard(viewer)
            return
        if viewer.paused:
            viewer._status_now()
            return
        try:
            await self._attach(viewer, viewer.settings)
        except ApiError as e:
            viewer._end("stopped", "could not re-open the camera: %s" % e.message)
        except Exception as e:
            viewer._end("stopped", "could not re-open the camera: %s" % e)
