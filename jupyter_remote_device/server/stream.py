"""Camera fan-out: one device stream per distinct setting, N subscribers, latest frame wins.

``CameraStreams`` belongs to one connected ``DeviceSession``.  Subscribers asking for
the same (camera, width, height, quality, fps) share one *device stream*
(``devstream.DeviceStream``: one rpyc connection of its own, one ``camera_open`` on
the agent, one pump in a worker thread of this object's pool).  Every frame reaches
each subscriber's ``offer(frame)`` on the loop thread as the agent's bytes (no
re-encoding, no base64).  Subscribers are:

- ``viewer.Viewer``: one camera WebSocket, with its own flow control (acks, window,
  socket backlog) and adaptive quality; see viewer.py;
- ``FrameSubscriber``: any consumer inside this server (recording, vision tools), made
  with ``await streams.subscribe(camera_id, settings, on_frame, on_state)``; it gets
  every frame the device stream makes and must not block.

Lifecycle
- A device stream stops (``camera_close`` + its connection closed, in its worker
  thread) when its last subscriber leaves, pauses or moves to other settings.
- ``move(sub, settings)`` moves a subscriber live: if it is the stream's only one and
  nobody streams the new settings yet, the same device stream is reconfigured
  (``camera_configure``; no new connection); otherwise it joins or opens the device
  stream for its new settings, then leaves the old one.
- If a device stream's connection breaks, its subscribers get ``reconnecting`` and the
  stream re-dials with backoff on its own.
- Session loss: ``DeviceSession`` calls ``close(reconnecting=True)``: device streams
  stop, subscribers stay alive in state ``reconnecting``, parked on the device (the
  ``parked`` list the session passes, ``Device.camera_parked``) for up to
  ``ORPHAN_TTL`` seconds, and the next ``CameraStreams`` of that device adopts them
  and re-opens their streams: the browser's socket never drops.  ``close()`` (the
  session closed for good) ends every subscriber with ``stopped``.
"""
import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .devstream import NEXT_TIMEOUT, DeviceStream, map_error, normalize_settings, stream_key
from .errors import ApiError

ORPHAN_TTL = 120.0     # how long subscribers wait for their session to come back

__all__ = ["CameraStreams", "FrameSubscriber", "Subscriber", "normalize_settings", "release_parked"]


class Subscriber(object):
    """What the fan-out needs of a consumer of a device stream (see the module docstring)."""

    def __init__(self, owner, camera_id, settings):
        self.owner = owner
        self.camera_id = str(camera_id)
        self.settings = dict(settings)  # the settings of the device stream it is on (or wants)
        self.stream = None
        self.paused = False
        self.closed = False
        self.ended = None            # (state, message) once it is over
        self.parked_until = None     # set while waiting for the session to come back
        self.parked_in = None        # the device's list it is parked in
        self.error = None            # (state, message) of a failed move/adopt

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

    # called by the fan-out (loop thread) ------------------------------------
    def offer(self, frame):
        """A new frame of the device stream (``devstream.Frame``)."""

    def stream_state_changed(self):
        """The device stream's state changed (or the subscriber moved)."""

    def parked(self):
        """The session was lost: waiting for it to come back."""
        self.stream_state_changed()

    def end(self, state, message):
        if self.ended is None:
            self.ended = (state, message)
        self.stream_state_changed()

    def close(self):
        if self.closed:
            return
        self.closed = True
        unpark(self)
        self.owner.forget(self)


class FrameSubscriber(Subscriber):
    """A consumer inside this server: ``on_frame(frame)`` for every frame of its device
    stream (``frame.data``: the wire bytes, ``frame.image``: the JPEG, ``frame.seq``,
    ``frame.captured_at``, ``frame.width``, ``frame.height``); ``on_state(sub)`` when the
    state changes (``sub.state``: streaming, reconnecting, error, stopped).  Both run on
    the loop thread and must not block.  ``close()`` unsubscribes."""

    def __init__(self, owner, camera_id, settings, on_frame, on_state=None):
        Subscriber.__init__(self, owner, camera_id, settings)
        self.on_frame = on_frame
        self.on_state = on_state
        self.frames = 0

    def offer(self, frame):
        if self.closed or self.paused:
            return
        self.frames += 1
        self.on_frame(frame)

    def stream_state_changed(self):
        if self.on_state is not None and not self.closed:
            self.on_state(self)


def unpark(sub):
    lst = sub.parked_in
    if lst is not None and sub in lst:
        lst.remove(sub)
    sub.parked_in = None
    sub.parked_until = None


def release_parked(parked, message="the session ended"):
    """End the subscribers parked in ``parked`` (the device's list): the session closed
    for good while it was reconnecting.  They get ``stopped``."""
    if not isinstance(parked, list):
        return
    subs, parked[:] = list(parked), []
    for s in subs:
        s.parked_in = None
        s.parked_until = None
        s.end("stopped", message)


class CameraStreams(object):
    """All camera streams of one connected board; see the module docstring."""

    def __init__(self, connect, log, device_name, parked=None):
        self.connect = connect
        self.log = log
        self.device_name = device_name
        self.parked = parked if parked is not None else []
        self.loop = None
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="jrd-camera")
        self._streams = {}       # key -> DeviceStream (running or opening)
        self._subs = set()
        self._closed = False
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        if self.parked and self.loop is not None and self.loop.is_running():
            orphans, self.parked[:] = list(self.parked), []
            for s in orphans:
                s.parked_in = None
                if not s.closed and s.ended is None:
                    asyncio.ensure_future(self._adopt(s))

    # -- the contract ---------------------------------------------------------
    async def add_viewer(self, camera_id, settings, **options):
        """A new camera WebSocket viewer (viewer.Viewer) on a possibly shared device stream;
        ``options``: ack, window, adaptive.  Raises ApiError."""
        from .viewer import Viewer
        return await self._add(Viewer(self, camera_id, normalize_settings(settings), **options))

    async def subscribe(self, camera_id, settings, on_frame, on_state=None):
        """A ``FrameSubscriber`` (see its docstring) for a server-side consumer; raises ApiError."""
        return await self._add(FrameSubscriber(self, camera_id, normalize_settings(settings), on_frame, on_state))

    async def move(self, sub, settings):
        """Live settings change / resume: reconfigure in place, join, or open (raises ApiError)."""
        if self._closed:
            sub.settings = dict(settings)
            return
        key = stream_key(sub.camera_id, settings)
        old = sub.stream
        if (old is not None and not old.stopped and old.key != key and old.viewers == {sub}
                and key not in self._streams and old.state == "streaming"):
            del self._streams[old.key]
            old.key = key
            self._streams[key] = old
            old.reconfigure(settings)
            sub.settings = dict(settings)
            sub.stream_state_changed()
            return
        try:
            await self._attach(sub, settings)
        except ApiError as e:
            sub.error = ("error", e.message)
            sub.stream_state_changed()
            raise

    def detach(self, sub):
        st, sub.stream = sub.stream, None
        if st is not None:
            st.viewers.discard(sub)
            self._maybe_stop(st)

    def forget(self, sub):
        self.detach(sub)
        self._subs.discard(sub)

    async def close(self, reconnecting=False):
        """The session ends (or, with reconnecting=True, lost its link: subscribers wait)."""
        if self._closed:
            return
        self._closed = True
        streams = list(self._streams.values())
        self._streams.clear()
        subs = [s for s in self._subs if not s.closed]
        for s in subs:
            s.stream = None
        for st in streams:
            st.viewers.clear()
            st.stop()
        if reconnecting:
            deadline = time.monotonic() + ORPHAN_TTL
            for s in subs:
                if s.ended is None:
                    s.parked_until = deadline
                    s.parked_in = self.parked
                    self.parked.append(s)
                    s.parked()
        else:
            for s in subs:
                s.end("stopped", "the session with %s ended" % self.device_name)
        self._subs.clear()
        futs = [st.future for st in streams if st.future is not None]
        if futs:
            await asyncio.wait([asyncio.wrap_future(f) for f in futs], timeout=2 * NEXT_TIMEOUT + 3.5)
        self._pool.shutdown(wait=False)

    def stats(self):
        return {
            "device": self.device_name,
            "device_streams": len(self._streams),
            "viewers": len([s for s in self._subs if not s.closed]),
            "streams": [{"camera_id": st.camera_id, "settings": dict(st.settings), "state": st.state,
                         "viewers": len(st.viewers), "frames": st.frames, "skipped": st.skipped,
                         "source_fps": round(st.source_fps(), 2)} for st in self._streams.values()],
            "viewer_list": [s.describe() if hasattr(s, "describe") else
                            {"camera_id": s.camera_id, "state": s.state, "settings": dict(s.settings),
                             "frames": getattr(s, "frames", 0), "kind": "subscriber"}
                            for s in self._subs if not s.closed],
        }

    # -- internals (loop thread) -----------------------------------------------
    async def _add(self, sub):
        if self._closed:
            raise ApiError(409, "not-connected", "%s is not connected" % self.device_name)
        self.loop = asyncio.get_running_loop()
        self._subs.add(sub)
        try:
            await self._attach(sub, sub.settings)
        except BaseException:
            self._subs.discard(sub)
            sub.closed = True
            raise
        return sub

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _get_stream(self, key):
        """The running device stream for key, opening it if needed (raises ApiError)."""
        st = self._streams.get(key)
        while st is not None and not st.stopped and st.opened is not None and not st.opened.done():
            # another viewer is opening it: wait, then look again (if that viewer left while it
            # opened, the stream stopped with it, and attaching to it would get no frames)
            await asyncio.shield(st.opened)
            st = self._streams.get(key)
        if st is None or st.stopped:
            st = DeviceStream(self, key)
            st.opened = asyncio.get_running_loop().create_future()
            self._streams[key] = st
            try:
                st.conn, st.sid = await self._run(st.open_blocking)
            except Exception as e:
                if self._streams.get(key) is st:
                    del self._streams[key]
                st.stop()
                err = map_error(e, self.device_name)
                st.opened.set_exception(err)
                st.opened.exception()  # mark retrieved
                raise err
            st.state = "streaming"
            st.generation = 1
            st.opened.set_result(True)
            if self._closed or (self._streams.get(key) is not st):
                # closed while opening: give the connection back
                st.stop()
                t = threading.Thread(target=st.release, name="jrd-camera-release")
                t.daemon = True
                t.start()
                raise ApiError(409, "not-connected", "%s is not connected" % self.device_name)
            st.future = self._pool.submit(st.run_blocking)
        return st

    async def _attach(self, sub, settings):
        key = stream_key(sub.camera_id, settings)
        old = sub.stream
        if old is not None and old.key == key and not old.stopped:
            sub.settings = dict(settings)
            return
        st = await self._get_stream(key)
        if sub.closed or self._closed:
            self._maybe_stop(st)
            return
        sub.settings = dict(settings)
        sub.error = None
        st.viewers.add(sub)
        sub.stream = st
        if old is not None and old is not st:
            old.viewers.discard(sub)
            self._maybe_stop(old)
        sub.stream_state_changed()

    def _maybe_stop(self, st):
        if not st.viewers and st.opened is not None and st.opened.done():
            if self._streams.get(st.key) is st:
                del self._streams[st.key]
            st.stop()

    async def _adopt(self, sub):
        """Re-attach a subscriber parked by a lost session's CameraStreams."""
        sub.owner = self
        sub.parked_until = None
        self._subs.add(sub)
        if sub.closed:
            self._subs.discard(sub)
            return
        if sub.paused:
            sub.stream_state_changed()
            return
        try:
            await self._attach(sub, sub.settings)
        except ApiError as e:
            sub.end("stopped", "could not re-open the camera: %s" % e.message)
        except Exception as e:
            sub.end("stopped", "could not re-open the camera: %s" % e)
