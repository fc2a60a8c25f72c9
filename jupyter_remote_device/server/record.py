"""Camera recordings on the server: ``POST devices/{id}/recordings`` -> 202 Job (kind "record").

A recording is one more subscriber of the board's camera fan-out (stream.py's
``CameraStreams.subscribe``): it takes every frame of the shared capture, as the board's JPEG bytes, at the
source's rate (no second capture on the board; with the same settings as an open
tab it shares that tab's device stream and encode).  Frames go into a queue and a
worker thread of the recording writes them (record_writers.py: PyAV for mp4/webm/
mjpeg, plain files for a frames folder) with the frames' own ``captured_at`` as
presentation times.  Nothing touches a file on the Tornado loop.

The file is written under a hidden temporary name next to its destination and
renamed into place once it is complete, so the file browser only ever shows whole,
playable files.  A recording ends:

- ``DELETE jobs/{id}``: ``done`` (``stopped_by: "stop"``), the reply comes once the
  file is complete;
- after ``seconds`` of captured time: ``done`` (``"seconds"``);
- when the board is lost (its camera stays unreachable for ``RECONNECT_GRACE``
  seconds) or the session ends: ``done`` (``"board-lost"`` / ``"session-ended"``)
  with the frames that arrived, and a ``message`` saying so;
- with no frame at all, or when the file can't be written: ``failed``, nothing left.

Closing every camera tab does not stop it: the recording is its own subscriber.
"""
import asyncio
import collections
import io
import json
import os
import queue
import shutil
import threading
import time
import uuid

from .errors import ApiError, bad_request, outside_root
from .record_writers import DEFAULT_EXT, FORMATS, BadFrame, format_for_path, make_writer
from .transfer_paths import _inside, climbs_out

EMIT_INTERVAL = 0.5       # progress events per recording (elapsed time, size) at most 2x/s
RECONNECT_GRACE = 5.0     # seconds a lost camera may take to come back before the recording ends
WARMUP_FRAMES = 8         # frames (or WARMUP_SECONDS of capture) used to measure the source rate
WARMUP_SECONDS = 1.0
QUEUE_MAX = 600           # frames waiting for the encoder before new ones are dropped
MAX_SECONDS = 24 * 3600
MAX_FINISHED = 100
DEFAULT_DIR = "recordings"
_STOP = object()


def resolve_destination(root_dir, path):
    """(absolute path, workspace path) of a file or folder to create; ApiError otherwise."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path or len(path) > 4096:
        raise bad_request("path must name a file (or, for format frames, a folder) in the Jupyter workspace")
    root = os.path.realpath(os.path.abspath(os.path.expanduser(root_dir)))
    rel = path.replace("\\", "/")
    if os.path.isabs(path):
        full = os.path.normpath(path)
    else:
        if climbs_out(rel):
            raise outside_root("%r is outside the Jupyter workspace" % path)
        full = os.path.normpath(os.path.join(root, rel))
    if full == root or not _inside(full, root):
        raise outside_root("%r is outside the Jupyter workspace" % path)
    # the deepest folder that exists must be inside too (no symlink out of the workspace)
    probe = os.path.dirname(full)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not _inside(os.path.realpath(probe), root) or (os.path.islink(full) and not _inside(
            os.path.realpath(full), root)):
        raise outside_root("%r is outside the Jupyter workspace (a symlink leads out of it)" % path)
    if os.path.lexists(full):
        raise ApiError(409, "exists", "%s already exists in the workspace: pick another name"
                       % os.path.relpath(full, root))
    base = os.path.basename(full)
    if base.startswith("."):
        raise bad_request("pick a name that does not start with a dot (hidden files are temporary ones)")
    return full, os.path.relpath(full, root).replace(os.sep, "/")


class Recording(object):
    def __init__(self, manager, device_id, device_name, fmt, full, display, settings, camera_id, seconds):
        self.id = uuid.uuid4().hex[:12]
        self.manager = manager
        self.device_id = device_id
        self.device_name = device_name
        self.format = fmt
        self.full = full
        self.path = display
        d, b = os.path.split(full)
        self.temp = os.path.join(d, ".%s.%s.recording" % (b, self.id))
        self.settings = settings
        self.camera_id = camera_id
        self.seconds = seconds
        self.state = "running"
        self.stopped_by = None
        self.error = None
        self.reason = None
        self.message = None
        self.frames = 0
        self.dropped = 0
        self.bad = 0
        self.bytes = 0
        self.duration_s = 0.0
        self.source_fps = None
        self.width = None
        self.height = None
        self.created = time.time()
        self.finished = None
        self.viewer = None
        self.queue = queue.Queue()
        self.thread = None
        self.done = None            # asyncio.Future set when the file is complete
        self.loop = None
        self.last_seq = None
        self.written_seq = None
        self.first_seq = None       # seq of the first frame written (with last_seq: what the source made)
        self._grace = None
        self._stopping = False
        self.last_emit = 0.0
        self.loop_thread = threading.get_ident()  # made on the loop

    def to_dict(self):
        fps = (self.frames - 1) / self.duration_s if self.frames > 1 and self.duration_s > 0 else None
        elapsed = (self.finished or time.time()) - self.created
        return {
            "id": self.id, "kind": "record", "state": self.state,
            "bytes_done": self.bytes, "bytes_total": 0, "files_done": 1 if self.state == "done" else 0,
            "files_total": 1, "rate": (self.bytes / elapsed) if elapsed > 0 else 0.0,
            "error": self.error, "reason": self.reason, "verified": None,
            "frames": self.frames, "duration_s": round(self.duration_s, 3), "path": self.path,
            "format": self.format, "device_id": self.device_id, "camera": self.camera_id,
            "fps": round(fps, 3) if fps else None, "source_fps": self.source_fps,
            "width": self.width, "height": self.height, "dropped": self.dropped, "bad_frames": self.bad,
            "seconds": self.seconds, "stopped_by": self.stopped_by, "message": self.message,
            "seq_first": self.first_seq, "seq_last": self.written_seq,
            "elapsed_s": round(elapsed, 3), "created": self.created, "finished": self.finished,
            "settings": dict(self.settings),
        }

    # -- loop side -----------------------------------------------------------
    def _on_frame(self, frame):
        frame = frame.data  # the wire bytes (header + JPEG); checked again in the worker
        if self._stopping:
            return
        if self.queue.qsize() >= QUEUE_MAX:  # the encoder fell far behind: drop, don't grow
            self.dropped += 1
            return
        self.queue.put(frame)

    def _on_status(self, msg):  # on the loop
        state = msg.get("state")
        if self._stopping:
            return
        if state == "streaming":
            if self._grace is not None:
                self._grace.cancel()
                self._grace = None
        elif state in ("reconnecting", "error"):
            if self._grace is None:
                why = msg.get("message") or "the camera of %s stopped" % self.device_name
                self._grace = self.loop.call_later(RECONNECT_GRACE, self.stop, "board-lost", why)
        elif state == "stopped":
            self.stop("session-ended", msg.get("message") or "the session with %s ended" % self.device_name)

    def stop(self, by="stop", message=None):
        """End the recording (on the loop); the worker completes the file."""
        if self._stopping:
            return
        self._stopping = True
        self.stopped_by = by
        if message:
            self.message = message
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        viewer, self.viewer = self.viewer, None
        if viewer is not None:
            viewer.close()
        self.queue.put(_STOP)

    def _on_state(self, sub):
        msg = None
        if sub.ended is not None:
            msg = sub.ended[1]
        elif sub.error is not None:
            msg = sub.error[1]
        elif sub.stream is not None:
            msg = sub.stream.message
        self._on_status({"state": sub.state, "message": msg})

    def _finish_on_loop(self):
        self._stopping = True
        self._drain()
        self.manager._emit(self, force=True)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)
        if self.viewer is not None:  # ended by the worker (seconds reached, write failed)
            viewer, self.viewer = self.viewer, None
            viewer.close()

    # -- worker thread -------------------------------------------------------
    def run_blocking(self):
        writer = None
        warm = []
        try:
            while True:
                item = self.queue.get()
                if item is _STOP:
                    break
                frame = self._parse(item)
                if frame is None:
                    continue
                if writer is None:
                    warm.append(frame)
                    span = warm[-1][1] - warm[0][1]
                    if len(warm) < WARMUP_FRAMES and span < WARMUP_SECONDS:
                        continue
                    writer = self._open(warm)
                    batch, warm = warm, []
                else:
                    batch = [frame]
                if self._write(writer, batch):
                    break
            if writer is None and warm:
                writer = self._open(warm)
                self._write(writer, warm)
            if writer is None or writer.frames == 0:
                raise RuntimeError("no frame arrived from the camera of %s" % self.device_name)
            writer.close()
            self.bytes = writer.size_on_disk()
            os.rename(self.temp, self.full)  # the whole file (or folder) appears at once
            self.state = "done"
        except Exception as e:
            self.state = "failed"
            self.error = str(e) if isinstance(e, (RuntimeError, BadFrame)) else "%s: %s" % (type(e).__name__, e)
            self.reason = "record-failed"
            if writer is not None:
                try:
                    writer.close()
                except Exception:
                    pass
            self._remove_temp()
            self.manager.log.warning("remote-device recording %s failed: %s", self.path, self.error)
        finally:
            self.finished = time.time()
            self._drain()
            self._post(self._finish_on_loop)

    def _parse(self, data):
        """(jpeg, captured_at, seq) of one frame from the board, or None (counted as bad)."""
        import struct
        try:
            (n,) = struct.unpack(">I", data[:4])
            if n > 4096 or len(data) < 4 + n:
                raise ValueError("bad header length")
            h = json.loads(data[4:4 + n].decode("utf-8"))
            if not isinstance(h, dict):
                raise ValueError("header is not an object")
            ca = h.get("captured_at")
            ca = float(ca) if isinstance(ca, (int, float)) and not isinstance(ca, bool) else time.time()
            if ca != ca or ca in (float("inf"), float("-inf")):
                ca = time.time()
            seq = h.get("seq")
            seq = int(seq) if isinstance(seq, int) and not isinstance(seq, bool) else None
        except (ValueError, UnicodeDecodeError, struct.error):
            self.bad += 1
            return None
        if seq is not None and self.last_seq is not None and self.last_seq < seq <= self.last_seq + 10000:
            self.dropped += seq - self.last_seq - 1  # frames the capture made that never reached us
        if seq is not None:
            self.last_seq = seq
        return data[4 + n:], ca, seq

    def _open(self, warm):
        from PIL import Image
        size = None
        for jpeg, _, _ in warm:
            try:
                size = Image.open(io.BytesIO(jpeg)).size
                break
            except Exception:
                continue
        if size is None:
            raise RuntimeError("the camera of %s sent no decodable JPEG" % self.device_name)
        span = warm[-1][1] - warm[0][1]
        # the source's rate: by seq when the board numbers its frames (frames it made that
        # never reached us still count), else by the frames that arrived
        s0, s1 = warm[0][2], warm[-1][2]
        made = (s1 - s0) if (s0 is not None and s1 is not None and 0 < s1 - s0 < 100 * len(warm)) else len(warm) - 1
        fps = made / span if made > 0 and span > 0 else 30.0
        fps = max(1.0, min(240.0, fps))
        self.source_fps = round(fps, 2)
        writer = make_writer(self.format, self.temp)
        writer.open(size[0], size[1], fps)
        self.width, self.height = writer.width, writer.height
        return writer

    def _write(self, writer, batch):
        """Write frames; True when the recording reached its length."""
        for jpeg, ca, seq in batch:
            if writer.t0 is not None and self.seconds and ca - writer.t0 >= self.seconds:
                self.stopped_by = self.stopped_by or "seconds"
                return True
            try:
                if self.format == "frames":
                    writer.write(jpeg, ca, seq)
                else:
                    writer.write(jpeg, ca)
            except BadFrame:
                self.bad += 1
                continue
            self.frames = writer.frames
            if seq is not None:
                self.first_seq = seq if self.first_seq is None else self.first_seq
                self.written_seq = seq
            self.duration_s = max(0.0, ca - writer.t0)
            self.bytes = writer.size_on_disk()
            self.manager._emit(self)
        return False

    def _drain(self):
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return

    def _remove_temp(self):
        try:
            if os.path.isdir(self.temp):
                shutil.rmtree(self.temp, ignore_errors=True)
            elif os.path.lexists(self.temp):
                os.unlink(self.temp)
        except OSError:
            pass

    def _post(self, fn, *args):
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is gone (server shutting down)
            pass


class RecordingManager(object):
    """The recordings of this server (jobs of kind "record"); ``emit`` as in TransferManager."""

    def __init__(self, root_dir, emit=None, log=None):
        self.root_dir = os.path.realpath(os.path.abspath(os.path.expanduser(root_dir)))
        self._emit_cb = emit
        self.log = log
        self._jobs = collections.OrderedDict()

    def _emit(self, rec, force=False):
        now = time.monotonic()
        if not force and now - rec.last_emit < EMIT_INTERVAL:
            return
        rec.last_emit = now
        snap = rec.to_dict()
        if self._emit_cb is None:
            return
        if threading.get_ident() == rec.loop_thread:
            self._deliver(snap)
        else:
            rec._post(self._deliver, snap)

    def _deliver(self, snap):
        try:
            self._emit_cb({"type": "job", "job": snap})
        except Exception:
            if self.log:
                self.log.exception("job event listener failed")

    def has(self, job_id):
        return isinstance(job_id, str) and job_id in self._jobs

    def get(self, job_id):
        rec = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if rec is None:
            raise ApiError(404, "not-found", "no recording %r" % (job_id,))
        return rec.to_dict()

    def jobs(self):
        return [r.to_dict() for r in self._jobs.values()]

    async def start(self, session, body):
        """Validate ``body``, subscribe to the camera, start the worker; the Job dict."""
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object")
        fmt = body.get("format")
        path = body.get("path")
        if path is not None and not isinstance(path, str):
            raise bad_request("path must be a string (a workspace path)")
        if fmt is None:
            fmt = format_for_path(path) if path else "mp4"
            if fmt is None:
                raise bad_request("say which format: format must be one of %s" % ", ".join(FORMATS))
        if fmt not in FORMATS:
            raise bad_request("unknown format %r: use one of %s" % (str(fmt)[:40], ", ".join(FORMATS)))
        if path is None or not path.strip():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in session.name)[:40] or "camera"
            path = "%s/%s-%s%s" % (DEFAULT_DIR, safe, stamp, DEFAULT_EXT[fmt])
        elif fmt != "frames" and format_for_path(path) != fmt:
            path = path + DEFAULT_EXT[fmt]
        seconds = body.get("seconds")
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
                raise bad_request("seconds must be a number between 0 and %d" % MAX_SECONDS)
            seconds = float(seconds)
        camera_id = body.get("camera", "0")
        if not isinstance(camera_id, (str, int)) or isinstance(camera_id, bool) or len(str(camera_id)) > 64:
            raise bad_request("camera must be a camera id (a string)")
        from .stream import normalize_settings
        settings = normalize_settings({k: body[k] for k in ("width", "height", "quality", "fps") if k in body})
        if session.camera is None:
            raise ApiError(409, "no-camera", "Camera streaming is not available for %s" % session.name)
        loop = asyncio.get_running_loop()
        full, display = await loop.run_in_executor(None, resolve_destination, self.root_dir, path)
        if any(r.full == full and r.state == "running" for r in self._jobs.values()):
            raise ApiError(409, "exists", "%s is being recorded already: pick another name" % display)
        rec = Recording(self, session.device_id, session.name, fmt, full, display, settings, str(camera_id),
                        seconds)
        rec.loop = loop
        rec.done = loop.create_future()
        await loop.run_in_executor(None, _make_parent, full, self.root_dir)
        rec.viewer = await session.camera.subscribe(rec.camera_id, settings, rec._on_frame,
                                                    rec._on_state)  # raises ApiError
        self._jobs[rec.id] = rec
        self._trim()
        rec.thread = threading.Thread(target=rec.run_blocking, name="jrd-record-%s" % rec.id, daemon=True)
        rec.thread.start()
        self._emit(rec, force=True)
        if self.log:
            self.log.info("remote-device: recording %s camera %s to %s", session.name, rec.camera_id, display)
        return rec.to_dict()

    async def stop(self, job_id, timeout=60.0):
        """Stop a recording and wait until its file is complete (DELETE jobs/{id})."""
        rec = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if rec is None:
            raise ApiError(404, "not-found", "no recording %r" % (job_id,))
        rec.stop("stop")
        if rec.done is not None and not rec.done.done():
            try:
                await asyncio.wait_for(asyncio.shield(rec.done), timeout)
            except asyncio.TimeoutError:
                pass
        return rec.to_dict()

    async def shutdown(self):
        recs = [r for r in self._jobs.values() if r.state == "running"]
        for r in recs:
            r.stop("stop", "the Jupyter server stopped")
        futs = [r.done for r in recs if r.done is not None and not r.done.done()]
        if futs:
            await asyncio.wait(futs, timeout=30)

    def _trim(self):
        finished = [j for j in self._jobs.values() if j.state != "running"]
        while len(finished) > MAX_FINISHED:
            self._jobs.pop(finished.pop(0).id, None)


def _make_parent(full, root):
    parent = os.path.dirname(full)
    os.makedirs(parent, exist_ok=True)
    if not _inside(os.path.realpath(parent), root):
        raise outside_root("the folder of %r is outside the Jupyter workspace" % full)


def setup(manager, root_dir, log):
    """Attach a RecordingManager to the DeviceManager (called from setup_handlers)."""
    manager.recordings = RecordingManager(root_dir, manager.emit, log)
    return manager.recordings


def recordings_handler():
    """The ``devices/{id}/recordings`` handler class (imported lazily by handlers.py)."""
    import tornado.web
    from jupyter_server.auth.decorator import authorized

    from .handlers import BaseHandler

    class RecordingsHandler(BaseHandler):
        @tornado.web.authenticated
        @authorized
        def get(self, device_id):
            self.manager.get(device_id)
            self.reply({"recordings": [r for r in _recordings(self).jobs() if r["device_id"] == device_id]})

        @tornado.web.authenticated
        @authorized
        async def post(self, device_id):
            body = self.body_json(required=False)
            sess = self.manager.require_session(device_id)
            self.reply(await _recordings(self).start(sess, body), 202)

    return RecordingsHandler


def _recordings(handler):
    rec = getattr(handler.manager, "recordings", None)
    if rec is None:
        raise ApiError(501, "not-available", "Recording is not available on this server")
    return rec
