"""One device stream: one rpyc connection, one ``camera_open`` on the agent, one pump.

A ``DeviceStream`` is what every subscriber with the same (camera, width, height,
quality, fps) shares (see ``stream.py`` for the fan-out).  Its pump runs in a worker
thread of the owning ``CameraStreams``' pool and pipelines ``camera_next`` calls
(``PIPELINE`` in flight, so the board starts on the next frame while this one travels);
each frame goes to the loop thread as a ``Frame`` (the agent's bytes, never re-encoded)
and from there to every subscriber's ``offer``.  If the connection breaks the pump
re-dials with backoff on its own and the subscribers hear ``reconnecting``.
"""
import collections
import json
import struct
import threading
import time

from ..link import calls
from ..link.checks import data as board_data
from ..link.dial import close_quietly
from ..link.errors import LinkError, is_connection_error, is_remote, message_of
from .errors import ApiError, api_error, bad_request

PIPELINE = 2           # camera_next calls in flight per device stream
NEXT_TIMEOUT = 1.0     # seconds the agent may hold one camera_next
DEFAULTS = {"width": 640, "height": 480, "quality": 80, "fps": 0}
LIMITS = {"width": (16, 8192), "height": (16, 8192), "quality": (1, 100), "fps": (0, 240)}
MAX_HEADER = 4096      # a frame header longer than this is not one of ours


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
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            raise bad_request("%s must be a finite number, got %r" % (k, str(v)[:40]))
        if k != "fps" and isinstance(settings[k], float) and settings[k] != int(settings[k]):
            raise bad_request("%s must be an integer" % k)
        if not lo <= v <= hi:
            raise bad_request("%s must be between %s and %s (got %s)" % (k, lo, hi, v))
        out[k] = int(v) if (k != "fps" or v == int(v)) else v
    return out


def stream_key(camera_id, s):
    return (str(camera_id), int(s["width"]), int(s["height"]), int(s["quality"]), float(s["fps"]))


class Frame(object):
    """One camera frame as it came from the board, plus when it reached this server."""
    __slots__ = ("data", "seq", "captured_at", "width", "height", "received", "received_wall")

    def __init__(self, data, header):
        self.data = data
        self.seq = _num(header.get("seq"), 0)
        self.captured_at = _num(header.get("captured_at"), 0.0)
        self.width = _num(header.get("width"), 0)
        self.height = _num(header.get("height"), 0)
        self.received = time.monotonic()
        self.received_wall = time.time()

    @property
    def image(self):
        """The JPEG bytes (after the header)."""
        (n,) = struct.unpack(">I", self.data[:4])
        return self.data[4 + n:]

    def __len__(self):
        return len(self.data)


def _num(v, default):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def parse_header(frame):
    """The JSON header of one frame from the board (hostile bytes: bounded, checked)."""
    if not isinstance(frame, bytes) or len(frame) < 4:
        raise ValueError("a camera frame must be bytes with a header")
    (n,) = struct.unpack(">I", frame[:4])
    if n > MAX_HEADER or 4 + n > len(frame):
        raise ValueError("a camera frame header of %d bytes" % n)
    h = json.loads(frame[4:4 + n].decode("utf-8"))
    if not isinstance(h, dict):
        raise ValueError("a camera frame header must be an object")
    return h


def map_error(e, device_name):
    """An ApiError for what a blocking camera call raised (errors.api_error; a missing camera is 404)."""
    if is_remote(e) and message_of(e).startswith("no camera "):
        return ApiError(404, "not-found", message_of(e))
    return api_error(e, device_name)


def is_link_error(e):
    """The camera connection broke (reconnect), rather than the board refusing (error)."""
    return not is_remote(e) and (isinstance(e, (LinkError, EOFError, OSError, TimeoutError)) or is_connection_error(e))


class DeviceStream(object):
    """One agent stream (one connection, one camera_open) shared by its subscribers."""

    def __init__(self, owner, key):
        self.owner = owner
        self.key = key
        self.camera_id = key[0]
        self.settings = {"width": key[1], "height": key[2], "quality": key[3], "fps": key[4]}
        self.viewers = set()        # subscribers (Viewer, FrameSubscriber)
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
        self.generation = 0         # grows each time the pump (re)opens: seq may restart
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

    def _deliver(self, frame):
        if self.stopped:
            return
        if self.state != "streaming":
            self._set_state("streaming", None)
        self.width, self.height = frame.width or self.width, frame.height or self.height
        for v in list(self.viewers):
            try:
                v.offer(frame)
            except Exception:  # one subscriber's bug must not starve the others
                self.owner.log.exception("remote-device: a camera subscriber failed")

    def _set_state(self, state, message):
        self.state = state
        self.message = message
        for v in list(self.viewers):
            v.stream_state_changed()

    # -- worker thread -------------------------------------------------------
    def open_blocking(self):
        """Dial and camera_open (raises). Runs in a worker thread."""
        conn = self.owner.connect()
        try:
            s = self.settings
            sid = calls.call(conn.root, "camera_open", self.camera_id, s["width"], s["height"], s["quality"],
                             s["fps"])
        except BaseException:
            close_quietly(conn)
            raise
        return conn, sid

    def run_blocking(self):
        """The pump: pipelined camera_next until stopped; re-dials when the link breaks."""
        delay = 0.25
        name = self.owner.device_name
        try:
            while not self._stop.is_set():
                if self.conn is None:
                    try:
                        self.conn, self.sid = self.open_blocking()
                        self._rate.clear()  # a restarted board restarts seq
                        self.last_seq = None
                        self.generation += 1
                        delay = 0.25
                    except Exception as e:
                        link = is_link_error(e)
                        self._post(self._set_state, "reconnecting" if link else "error",
                                   "%s; retrying" % map_error(e, name).message)
                        self._stop.wait(delay)
                        delay = min(delay * 2, 5.0)
                        continue
                try:
                    self._pump()
                except Exception as e:
                    if self._stop.is_set():
                        break
                    link = is_link_error(e)
                    msg = ("the camera connection to %s broke (%s); reconnecting" % (name, e)
                           if link else "the board reported: %s" % map_error(e, name).message)
                    self.owner.log.warning("remote-device %s camera: %s", name, msg)
                    self._post(self._set_state, "reconnecting" if link else "error", msg)
                    conn, self.conn, self.sid = self.conn, None, None
                    close_quietly(conn)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self.release()

    def _pump(self):
        conn, sid = self.conn, self.sid
        root = conn.root

        def anext(*args):
            return calls.start(root, "camera_next", args)

        pending = collections.deque()
        for _ in range(PIPELINE):
            r = anext(sid, -1, NEXT_TIMEOUT)
            r.set_expiry(NEXT_TIMEOUT + 15.0)
            pending.append(r)
        while not self._stop.is_set():
            with self._config_lock:
                cfg, self._config = self._config, None
            if cfg is not None:
                calls.call(root, "camera_configure", sid, cfg["width"], cfg["height"], cfg["quality"], cfg["fps"])
            res = pending.popleft()
            data = res.value  # waits (serving this connection); raises what the agent raised
            if self._stop.is_set():
                break
            r = anext(sid, -1, NEXT_TIMEOUT)
            r.set_expiry(NEXT_TIMEOUT + 15.0)
            pending.append(r)
            if not data:
                continue  # timeout on the board: nothing new (fps cap, slow sensor)
            try:
                data = board_data(data, "a camera frame")
                frame = Frame(data, parse_header(data))
            except (ValueError, TypeError, struct.error, LinkError) as e:
                raise ApiError(502, "protocol", "the board sent a malformed camera frame (%s)" % e)
            seq = frame.seq
            if self.last_seq is not None and seq > self.last_seq + 1:
                self.skipped += seq - self.last_seq - 1
            self.last_seq = seq
            self.frames += 1
            self._rate.append((frame.captured_at, seq))
            self._post(self._deliver, frame)

    def release(self):
        conn, sid, self.conn, self.sid = self.conn, self.sid, None, None
        if conn is None:
            return
        try:
            if sid is not None:
                r = calls.start(conn.root, "camera_close", (sid,))
                r.set_expiry(3.0)
                r.wait()
        except Exception:
            pass  # the agent closes a dropped connection's streams anyway
        close_quietly(conn)
