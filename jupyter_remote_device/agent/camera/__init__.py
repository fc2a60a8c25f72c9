"""Cameras on the board: one capture loop per camera, shared by every stream.

``CameraHub`` is the module object the agent's rpyc service forwards the
``camera_*`` wire methods to.

- One capture thread per camera runs only while at least one stream is open on
  it; when the last stream closes the thread stops and the sensor is released
  (``close_stream`` waits for that, so ``stats()`` is exact right after).
- The camera captures at the largest mode its open streams ask for.  Streams are
  encoded lazily: the first stream that takes frame N at (width, height, quality)
  encodes it, every other stream with the same triple gets the same bytes (one
  encode per distinct triple per captured frame; a frame nobody takes is never
  encoded).  Frames are "latest wins": a stream that comes back late gets the
  newest frame, never a backlog.
- ``next_frame`` never hands a stream the same frame twice: it waits for a frame
  newer than both ``after_seq`` and the last frame that stream returned, so a
  client can pipeline several calls on one stream.  It honours the stream's fps
  cap (0 = every frame the source makes).

Python 3.8 syntax; standard library only (backends import their libraries lazily).
"""
import itertools
import logging
import os
import threading
import time

from .base import CameraError, frame_bytes, parse_frame  # noqa: F401

BACKENDS = ("maix", "picamera2", "opencv", "synthetic")
MAX_TIMEOUT = 60.0

__all__ = ["CameraHub", "CameraError", "frame_bytes", "parse_frame", "BACKENDS"]


def _probe_backend(name, log):
    if name == "synthetic":
        from . import synthetic as mod
    elif name == "opencv":
        from . import opencv as mod
    elif name == "picamera2":
        from . import picamera2 as mod
    elif name == "maix":
        from . import maix as mod
    elif name.startswith("file:"):  # a recording played as the camera
        from . import replay
        return replay.probe(name[len("file:"):], log=log)
    else:
        raise CameraError("unknown camera backend %r (choose auto, %s or file:PATH)" % (name, ", ".join(BACKENDS)))
    return mod.probe(log=log)


class _Frame(object):
    __slots__ = ("seq", "image", "captured_at", "width", "height", "target", "taken")

    def __init__(self, seq, image, captured_at, width, height, target):
        self.seq = seq
        self.target = target  # the mode the capture loop asked the sensor for
        self.taken = False  # a stream has taken it (on-demand sources then make the next)
        self.image = image
        self.captured_at = captured_at
        self.width = width
        self.height = height


class _Encoding(object):
    """One (width, height, quality) encode of one captured frame."""
    __slots__ = ("seq", "data", "error", "done")

    def __init__(self, seq):
        self.seq = seq
        self.data = None
        self.error = None
        self.done = False


class _Stream(object):
    def __init__(self, sid, cam, width, height, quality, fps):
        self.id = sid
        self.cam = cam
        self.width = width
        self.height = height
        self.quality = quality
        self.fps = fps
        self.last_seq = 0
        self.last_captured_at = None
        self.closed = False
        self.opened_at = time.time()
        self.frames = 0

    def describe(self):
        return {"stream_id": self.id, "camera_id": self.cam.source.id, "width": self.width,
                "height": self.height, "quality": self.quality, "fps": self.fps}


class _Camera(object):
    """The shared state of one camera: its capture thread, latest frame, encodes."""

    def __init__(self, source, log):
        self.source = source
        self.log = log
        lock = threading.Lock()
        self.cond = threading.Condition(lock)       # stream calls wait here (new frame, encode done)
        self.loop_cond = threading.Condition(lock)  # the capture thread waits here (same lock)
        self.streams = {}
        self.thread = None
        self.stopping = False
        self.seq = 0
        self.latest = None
        self.encodes = {}
        self.waiting = 0  # stream calls waiting for a newer frame
        self.demand_after = 0  # on-demand sources: a stream needs a frame newer than this seq
        self.error = None
        self.interval = None  # EMA of the time between captures
        self.last_t = None
        self.opened = None  # the mode the sensor is open at (None while closed/switching)
        self.captures = 0
        self.encode_count = 0
        self.encode_time = 0.0

    # the mode the sensor should run at: the largest any open stream asks for
    def wanted_size(self):
        best = None
        for st in self.streams.values():
            if best is None or st.width * st.height > best[0] * best[1]:
                best = (st.width, st.height)
        return best

    def source_fps(self):
        if self.thread is None or not self.interval:
            return 0.0
        return 1.0 / self.interval


class CameraHub(object):
    """All cameras of this board; see the module docstring."""

    def __init__(self, backend="auto", log=None):
        self.log = log or logging.getLogger("jupyter_remote_device.agent.camera")
        self.backend = None
        self._lock = threading.RLock()
        self._cameras = {}
        self._streams = {}
        self._ids = itertools.count(1)
        self._tag = "%04x" % (int.from_bytes(os.urandom(2), "big"))
        self._stats_prev = None
        self._cpu_prev = (time.time(), self._cpu_seconds())
        sources = self._select(str(backend or "auto"))
        for src in sources:
            self._cameras[src.id] = _Camera(src, self.log)

    # -- backend selection --------------------------------------------------
    def _select(self, backend):
        if backend != "auto":
            sources = _probe_backend(backend, self.log)
            if not sources:
                raise CameraError("camera backend %r found no camera on this board" % backend)
            self.backend = "file" if backend.startswith("file:") else backend
            return sources
        for name in BACKENDS:
            try:
                sources = _probe_backend(name, self.log)
            except Exception as e:  # a broken library must not stop the agent
                self.log.info("camera backend %s unavailable: %s", name, e)
                continue
            if sources:
                self.backend = name
                self.log.info("camera backend: %s (%d camera(s))", name, len(sources))
                return sources
        raise CameraError("no camera backend works on this board (tried %s)" % ", ".join(BACKENDS))

    # -- wire methods -------------------------------------------------------
    def list(self):
        out = []
        for cam in self._cameras.values():
            try:
                d = cam.source.describe()
            except Exception as e:
                d = {"id": cam.source.id, "backend": cam.source.backend, "name": str(cam.source.name),
                     "modes": [], "error": str(e)}
            d["active"] = cam.thread is not None
            out.append(d)
        return out

    def open_stream(self, camera_id, width=640, height=480, quality=80, fps=0):
        cam = self._cameras.get(str(camera_id))
        if cam is None:
            raise CameraError("no camera %r on this board (cameras: %s)"
                              % (str(camera_id), ", ".join(sorted(self._cameras)) or "none"))
        width, height, quality, fps = self._check(cam, width, height, quality, fps)
        sid = "%s-%s-%d" % (cam.source.id, self._tag, next(self._ids))
        st = _Stream(sid, cam, width, height, quality, fps)
        with cam.cond:
            # a capture thread still shutting down must finish before a new one starts
            self._wait_stopped(cam)
            cam.streams[sid] = st
            with self._lock:
                self._streams[sid] = st
            if cam.thread is None:
                cam.error = None
                cam.stopping = False
                cam.latest = None
                cam.encodes = {}
                cam.interval = None
                t = threading.Thread(target=self._capture_loop, args=(cam,),
                                     name="camera-%s" % cam.source.id)
                t.daemon = True
                cam.thread = t
                t.start()
            cam.cond.notify_all()
            cam.loop_cond.notify_all()
        return sid

    def next_frame(self, stream_id, after_seq=-1, timeout=2.0):
        st = self._stream(stream_id)
        cam = st.cam
        try:
            timeout = min(max(float(timeout), 0.0), MAX_TIMEOUT)
        except (TypeError, ValueError):
            raise CameraError("timeout must be a number of seconds")
        deadline = time.monotonic() + timeout
        with cam.cond:
            after = max(int(after_seq), st.last_seq)
            frame = None
            demanding = False
            try:
                while True:
                    if st.closed:
                        return None
                    if cam.error is not None:
                        raise CameraError("camera %s failed: %s" % (cam.source.id, cam.error))
                    lat = cam.latest
                    remaining = deadline - time.monotonic()
                    due = self._due(st, cam)
                    if (lat is not None and lat.seq > after and (due is None or lat.captured_at >= due)
                            and self._fits(st, cam, lat)):
                        frame = lat
                        break
                    wall = time.time()
                    if due is not None and wall < due:
                        # fps cap: nothing may go out before `due`; don't ask for frames yet
                        if demanding:
                            demanding = False
                            cam.waiting -= 1
                        wait_for = min(remaining, max(0.001, due - wall))
                    else:
                        wait_for = remaining
                        if not demanding:
                            demanding = True
                            cam.waiting += 1
                        seen = lat.seq if lat is not None else 0
                        if cam.source.on_demand and seen >= cam.demand_after:
                            cam.demand_after = seen
                            cam.loop_cond.notify_all()
                    if remaining <= 0:
                        return None
                    cam.cond.wait(wait_for)
            finally:
                if demanding:
                    cam.waiting -= 1
            key = (st.width, st.height, st.quality)
            enc = cam.encodes.get(key)
            mine = enc is None or enc.seq != frame.seq
            if mine:
                enc = _Encoding(frame.seq)
                cam.encodes[key] = enc
            else:
                while not enc.done:
                    cam.cond.wait()
            st.last_seq = frame.seq
            st.last_captured_at = frame.captured_at
            st.frames += 1
            if not frame.taken:
                frame.taken = True
                if cam.source.on_demand:
                    cam.loop_cond.notify_all()  # make the next frame while this one encodes
        if mine:
            t0 = time.time()
            try:
                jpeg = cam.source.encode(frame.image, st.width, st.height, st.quality)
                ew, eh = st.width, st.height
                if isinstance(jpeg, tuple):  # a backend that could only encode another size
                    jpeg, ew, eh = jpeg
                enc.data = frame_bytes(frame.seq, frame.captured_at, ew, eh, jpeg)
            except Exception as e:
                enc.error = "%s: %s" % (type(e).__name__, e)
            with cam.cond:
                enc.done = True
                cam.encode_count += 1
                cam.encode_time += time.time() - t0
                cam.cond.notify_all()
        if enc.error is not None:
            raise CameraError("encoding frame %d failed: %s" % (frame.seq, enc.error))
        return enc.data

    def configure(self, stream_id, width=None, height=None, quality=None, fps=None):
        st = self._stream(stream_id)
        cam = st.cam
        width, height, quality, fps = self._check(
            cam, st.width if width is None else width, st.height if height is None else height,
            st.quality if quality is None else quality, st.fps if fps is None else fps)
        with cam.cond:
            st.width, st.height, st.quality, st.fps = width, height, quality, fps
            st.last_captured_at = None  # the new cap starts now
            st.last_seq = max(st.last_seq, cam.seq)  # only frames captured after the change
            cam.cond.notify_all()
            cam.loop_cond.notify_all()
        return st.describe()

    def close_stream(self, stream_id):
        with self._lock:
            st = self._streams.pop(str(stream_id), None)
        if st is None:
            return None
        cam = st.cam
        with cam.cond:
            st.closed = True
            cam.streams.pop(st.id, None)
            if not cam.streams:
                cam.stopping = True
            cam.cond.notify_all()
            cam.loop_cond.notify_all()
            if not cam.streams:
                # release the sensor before returning (bounded: one capture at most)
                self._wait_stopped(cam, timeout=5.0)
        return None

    def stats(self):
        now = time.time()
        cpu = self._cpu_seconds()
        t_prev, cpu_prev = self._cpu_prev
        self._cpu_prev = (now, cpu)
        dt = now - t_prev
        cpu_percent = round(100.0 * (cpu - cpu_prev) / dt, 1) if (cpu is not None and cpu_prev is not None
                                                                  and dt > 0) else None
        encodes = sum(c.encode_count for c in self._cameras.values())
        captures = sum(c.captures for c in self._cameras.values())
        prev = self._stats_prev
        self._stats_prev = (now, encodes, captures)
        cams = []
        for cam in self._cameras.values():
            cams.append({"id": cam.source.id, "backend": cam.source.backend, "active": cam.thread is not None,
                         "size": list(cam.source.size) if cam.source.size else None,
                         "streams": len(cam.streams), "source_fps": round(cam.source_fps(), 2),
                         "seq": cam.seq, "captures": cam.captures, "encodes": cam.encode_count,
                         "encode_s": round(cam.encode_time, 4),
                         "encode_ms": round(1000.0 * cam.encode_time / cam.encode_count, 3)
                         if cam.encode_count else None,
                         "distinct_encodings": len(set((s.width, s.height, s.quality)
                                                       for s in list(cam.streams.values()))),
                         "error": cam.error})
        out = {
            "backend": self.backend,
            "active_captures": sum(1 for c in self._cameras.values() if c.thread is not None),
            "streams": len(self._streams),
            "cpu_percent": cpu_percent,
            "source_fps": round(max([c["source_fps"] for c in cams] or [0.0]), 2),
            "encodes": encodes,
            "captures": captures,
            "cameras": cams,
        }
        if prev is not None and now - prev[0] > 0:
            out["encodes_per_s"] = round((encodes - prev[1]) / (now - prev[0]), 2)
            out["captures_per_s"] = round((captures - prev[2]) / (now - prev[0]), 2)
        rss = self._rss()
        if rss is not None:
            out["rss"] = rss
        return out

    def close_all(self):
        with self._lock:
            sids = list(self._streams)
        for sid in sids:
            try:
                self.close_stream(sid)
            except Exception:
                pass

    # -- helpers ------------------------------------------------------------
    def _stream(self, stream_id):
        with self._lock:
            st = self._streams.get(str(stream_id))
        if st is None:
            raise CameraError("no open camera stream %r (closed, or never opened)" % (stream_id,))
        return st

    @staticmethod
    def _check(cam, width, height, quality, fps):
        try:
            width, height = int(width), int(height)
        except (TypeError, ValueError):
            raise CameraError("width and height must be integers")
        if width <= 0 or height <= 0 or width > 16384 or height > 16384:
            raise CameraError("width and height must be between 1 and 16384 (got %dx%d)" % (width, height))
        try:
            quality = int(quality)
        except (TypeError, ValueError):
            raise CameraError("quality must be an integer 1-100")
        if not 1 <= quality <= 100:
            raise CameraError("quality must be 1-100 (got %d)" % quality)
        try:
            fps = float(fps or 0)
        except (TypeError, ValueError):
            raise CameraError("fps must be a number (0 = as fast as the camera delivers)")
        if fps < 0 or fps != fps or fps > 1000:
            raise CameraError("fps must be between 0 and 1000 (got %r)" % fps)
        w, h = cam.source.nearest_mode(width, height)
        return int(w), int(h), quality, fps

    @staticmethod
    def _fits(st, cam, frame):
        """False for a frame captured at a smaller mode while the sensor is switching
        to a larger one (after a configure): wait for the new mode, don't upscale."""
        if frame.width * frame.height >= st.width * st.height:
            return True
        return frame.target == cam.wanted_size()

    @staticmethod
    def _due(st, cam):
        """Earliest captured_at this stream may take next (None: no cap)."""
        if st.fps <= 0 or st.last_captured_at is None:
            return None
        period = 1.0 / st.fps
        # half a source frame of slack, so a 30 fps cap on a 30 fps source takes every frame
        slack = min(period * 0.5, 0.5 * (cam.interval or period))
        return st.last_captured_at + period - slack

    @staticmethod
    def _wait_stopped(cam, timeout=5.0):
        """With cam.cond held: wait until the capture thread (if stopping) is gone."""
        end = time.monotonic() + timeout
        while cam.thread is not None and cam.stopping:
            left = end - time.monotonic()
            if left <= 0:
                break
            cam.cond.wait(left)

    def _publish(self, cam, image, captured_at, w, h, target):
        """With cam.cond held: make a captured frame the latest one."""
        cam.seq += 1
        cam.captures += 1
        cam.latest = _Frame(cam.seq, image, captured_at, w, h, target)
        if len(cam.encodes) > 16:  # settings nobody uses any more
            cam.encodes = dict((k, v) for k, v in cam.encodes.items() if v.seq >= cam.seq - 1)
        if cam.last_t is not None:
            d = captured_at - cam.last_t
            if d > 0:
                cam.interval = d if cam.interval is None else cam.interval * 0.9 + d * 0.1
        cam.last_t = captured_at
        cam.cond.notify_all()

    def _capture_loop(self, cam):
        """The camera's thread: opens/reconfigures/releases the sensor and, for sensors
        with their own clock, captures continuously while streams are open."""
        src = cam.source
        opened = None
        failures = 0
        cam.last_t = None
        try:
            while True:
                with cam.cond:
                    if cam.stopping or not cam.streams:
                        break
                    want = cam.wanted_size()
                    if src.on_demand and want == opened:
                        # keep exactly one untaken frame ready: make the next one as soon
                        # as a stream takes the latest (it encodes, GIL released, while
                        # this thread draws), or when a stream waits for a fresher one
                        while (cam.streams and not cam.stopping and cam.wanted_size() == opened
                               and cam.latest is not None and not cam.latest.taken
                               and cam.demand_after < cam.latest.seq):
                            cam.loop_cond.wait(0.5)
                        if cam.stopping or not cam.streams:
                            break
                        want = cam.wanted_size()
                    cam.opened = None if want != opened else opened
                try:
                    if want != opened:
                        if opened is None:
                            src.open(want[0], want[1])
                        else:
                            src.reconfigure(want[0], want[1])
                        opened = want
                        cam.last_t = None
                    image, captured_at, w, h = src.capture()
                    failures = 0
                except Exception as e:
                    failures += 1
                    self.log.warning("camera %s capture failed (%d): %s", src.id, failures, e)
                    with cam.cond:
                        if failures >= 3:
                            cam.error = "%s: %s" % (type(e).__name__, e)
                        cam.cond.notify_all()
                    if failures >= 3:
                        break
                    try:
                        src.close()
                    except Exception:
                        pass
                    opened = None
                    time.sleep(0.2 * failures)
                    continue
                with cam.cond:
                    cam.opened = opened
                    self._publish(cam, image, captured_at, w, h, opened)
        except Exception:
            self.log.exception("camera %s capture loop crashed", src.id)
            with cam.cond:
                cam.error = cam.error or "capture loop crashed"
        finally:
            with cam.cond:
                cam.opened = None
            try:
                src.close()
            except Exception as e:
                self.log.warning("camera %s: releasing failed: %s", src.id, e)
            with cam.cond:
                cam.thread = None
                cam.stopping = False
                cam.latest = None
                cam.encodes = {}
                cam.cond.notify_all()

    @staticmethod
    def _cpu_seconds():
        try:
            import resource
            ru = resource.getrusage(resource.RUSAGE_SELF)
            return ru.ru_utime + ru.ru_stime
        except Exception:
            pass
        try:
            with open("/proc/self/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            tck = os.sysconf("SC_CLK_TCK")
            return (int(parts[11]) + int(parts[12])) / float(tck)
        except Exception:
            return None

    @staticmethod
    def _rss():
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE")
        except Exception:
            return None
