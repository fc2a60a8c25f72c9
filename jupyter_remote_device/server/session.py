"""DeviceSession: one board connection with heartbeat and automatic reconnect.

The control connection carries info, heartbeat, exec polling and small file
calls. Long activities get their own connection from ``connect_new()``: every
camera stream (stream.py) and every transfer (transfer.py), because one rpyc
connection is served by one agent thread, one call at a time.
"""
import asyncio
import socket
import threading
import time
import uuid

from .. import link
from ..link import ConnectionLost, LinkError, board_error, calls
from ..link.dial import close_quietly
from ..link.errors import BoardStopped
from ..link.heartbeat import Heartbeat
from .errors import ApiError, api_error

RUN_WAIT = 0.25  # s a REST exec waits on the board in its first call (exec_run), then polls: one
#                  call at a time per connection, so others (and interrupts) wait at most this long


def _shutdown(conn):
    """Unblock any thread reading this connection (a read stuck on a dribbling peer)."""
    try:
        conn._channel.stream.sock.shutdown(socket.SHUT_RDWR)
    except Exception:
        pass


def drop(conn):
    """Unblock the threads reading a connection (or a wrapper with ``.conn``), then close it;
    neither step fails (the link may already be gone)."""
    _shutdown(getattr(conn, "conn", conn))
    close_quietly(conn)


def map_remote_error(e, device_name=""):
    """What an rpyc call raised: ConnectionLost when the link itself broke, else an ApiError."""
    err = board_error(e, device_name or "the board")
    return err if isinstance(err, ConnectionLost) else api_error(err)


def json_text(value, what="an answer"):
    """link.checks.json_text, with its LinkError as an ApiError (for the server's modules)."""
    try:
        return link.json_text(value, what)
    except LinkError as e:
        raise api_error(e)


def plain(value, what="an answer"):
    """link.checks.plain, with its LinkError as an ApiError (for the server's modules)."""
    try:
        return link.plain(value, what)
    except LinkError as e:
        raise api_error(e)


class DeviceSession:
    def __init__(self, manager, device):
        self.manager = manager
        self.device = device
        self.log = manager.log
        self.conn = None
        self.root = None
        self.camera = None
        self.closed = False
        self._hb_task = None
        self._reconnect_task = None
        self.connected_at = None
        self.session_id = uuid.uuid4().hex  # this session's claim on the board (see _claim)
        self._exec_run = True  # the agent has exec_run (one round trip per exec); older ones don't
        self._stopped = None  # "Stopped: why" after the agent said it is stopping
        self._beat = None  # link.heartbeat on the control connection
        self._slots = None  # at most manager.max_calls_per_device calls at once (heartbeats apart)

    @property
    def device_id(self):
        return self.device.id

    @property
    def name(self):
        return self.device.name

    # -- connections -----------------------------------------------------
    def connect_new(self):
        """BLOCKING: a new authenticated connection to this board (for worker threads)."""
        return self.manager.dial(self.device)

    def _claim_and_info(self, root, take_over):
        """BLOCKING: hold the board for this session (409 in-use when another session holds it)
        and read its info: both calls in one round trip (link/calls.py)."""
        claim, info = calls.pipelined(root, [("claim", (self.manager.user_name, self.session_id, bool(take_over))),
                                             ("info", ())])
        if isinstance(claim, AttributeError):  # an agent without the holder concept
            claim = None
        for answer in (claim, info):
            if isinstance(answer, BaseException):
                raise answer
        if claim is not None:
            self._check_claim(json_text(claim, "a claim reply"))
        return json_text(info, "its info")

    def _check_claim(self, reply):
        if not reply.get("ok"):
            holder = reply.get("holder") or {}
            raise ApiError(409, "in-use", "%s is in use by %s (since %s). Take it over explicitly with "
                           "POST devices/%s/session {\"take_over\": true}" % (
                               self.device.name, holder.get("user") or "another user",
                               time.strftime("%H:%M:%S", time.localtime(holder.get("since") or 0)),
                               self.device.id))

    def _open_blocking(self, take_over=False):
        conn = self.connect_new()
        # a board that stalls mid-frame must not hold this thread past the request's timeout
        watchdog = threading.Timer(self.manager.connect_timeout + 1.0, _shutdown, (conn,))
        watchdog.daemon = True
        watchdog.start()
        try:
            root = conn.root
            info = self._claim_and_info(root, take_over)
        except BaseException as e:
            drop(conn)
            if isinstance(e, ApiError):
                raise
            err = map_remote_error(e, self.device.name)
            if isinstance(err, BoardStopped):
                err = ApiError(502, "refused", "%s: %s" % (self.device.name, err))
            elif isinstance(err, ConnectionLost):
                err = ApiError(502, "protocol", "The connection to %s broke while opening: %s" % (
                    self.device.name, str(err)))
            raise err from None
        finally:
            watchdog.cancel()
        return conn, root, info

    async def open(self, take_over=False):
        """Connect and claim the board (raises ApiError); then heartbeat in the background."""
        conn, root, info = await self.manager.run_with_timeout(self._open_blocking, take_over)
        self._attach(conn, root, info)

    def _taken_over(self, info):
        holder = info.get("holder") if isinstance(info, dict) else None
        return bool(holder) and holder.get("session_id") not in (None, self.session_id)

    def _attach(self, conn, root, info):
        self.conn, self.root = conn, root
        loop = asyncio.get_running_loop()

        def frozen(why):  # from the heartbeat's thread: a board that stopped answering
            loop.call_soon_threadsafe(lambda: self.conn is conn and self._lost(why))

        if self._beat is not None:
            self._beat.stop()
        self._beat = Heartbeat(conn, timeout=self.manager.heartbeat_timeout, on_lost=frozen, label=self.device.name)
        self.connected_at = time.time()
        self.device.info = info
        self.device.kind = getattr(conn, "jrd_kind", "agent")  # "classic": link/classic.py
        self.device.error = None
        self._stopped = None
        self.device.status = "connected"
        self.camera = self._make_camera()
        self.manager.changed(self.device)
        if self._hb_task is None or self._hb_task.done():
            self._hb_task = asyncio.ensure_future(self._heartbeat())

    def _make_camera(self):
        try:
            from .stream import CameraStreams
        except ImportError:
            return None
        return CameraStreams(self.connect_new, self.log, self.device.name, parked=self.device.camera_parked)

    # -- calls -------------------------------------------------------------
    def _call_blocking(self, name, args, timeout):
        root = self.root
        if root is None:
            raise ConnectionLost("not connected")
        # one round trip, no method netref (link/calls.py): a timed call is bounded by its own
        # timeout even on a black-holed link
        return plain(calls.call(root, name, *args, timeout=timeout), "an answer to %s" % name)

    async def call(self, name, *args, timeout=None):
        """Run ``root.<name>(*args)`` in a worker thread; errors become ApiError."""
        if self.closed or self.conn is None:
            raise ApiError(409, "not-connected", "%s is not connected (%s)" % (
                self.device.name, self.device.error or "connecting"))
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, int(self.manager.max_calls_per_device)))
        try:
            async with self._slots:  # one slow board cannot take every worker of the shared pool
                return await self.manager.run(self._call_blocking, name, args, timeout)
        except Exception as e:
            err = map_remote_error(e, self.device.name)
            if isinstance(err, BoardStopped):
                self._lost(str(err), stopped=True)
                raise ApiError(409, "not-connected", "%s stopped: %s" % (self.device.name, err))
            if isinstance(err, ConnectionLost):
                self._lost(str(err))
                raise ApiError(502, "protocol", "The connection to %s broke; reconnecting" % self.device.name)
            raise err

    async def call_json(self, name, *args, timeout=None):
        return json_text(await self.call(name, *args, timeout=timeout), "an answer to %s" % name)

    def _busy_error(self):
        return ApiError(409, "busy", "%s is running other code (a notebook cell); try again when it "
                        "finishes or interrupt it" % self.device.name)

    async def exec(self, code, timeout=30.0):
        """Run code in the REST namespace; returns {"stdout","stderr","error"}.

        One round trip for code that ends within ``RUN_WAIT`` s (exec_run: start, wait,
        output and forget in one call); longer code is polled after that."""
        deadline = time.monotonic() + timeout
        out, err, error = [], [], None
        first = None
        if self._exec_run:
            try:
                first = await self.call_json("exec_run", code, "rest", "exec", False, False,
                                             min(timeout, RUN_WAIT), None, "rest")
            except ApiError as e:
                if "exec_run" not in e.message:
                    raise
                self._exec_run = False  # an older agent: start and poll
        if first is not None:
            if first.get("status") == "busy":
                raise self._busy_error()
            exec_id = first.get("exec_id")
            for ev in first.get("events", ()):
                error = _collect(ev, out, err) or error
            if first.get("done"):
                return {"stdout": "".join(out), "stderr": "".join(err), "error": error}
        else:
            busy = await self.call_json("exec_busy")
            if busy.get("busy") and busy.get("ns") != "rest":
                raise self._busy_error()
            exec_id = await self.call("exec_start", code, "rest", "exec", False, False)
        try:
            while True:
                wait = max(0.0, min(0.25, deadline - time.monotonic()))
                reply = await self.call_json("exec_poll", exec_id, wait)
                for ev in reply.get("events", ()):
                    error = _collect(ev, out, err) or error
                if reply.get("done"):
                    break
                if time.monotonic() >= deadline:
                    await self.call("exec_interrupt", exec_id)
                    raise ApiError(504, "timeout", "The code ran longer than %g s on %s and was interrupted"
                                   % (timeout, self.device.name))
        finally:
            try:
                await self.call("exec_forget", exec_id)
            except ApiError:
                pass
        return {"stdout": "".join(out), "stderr": "".join(err), "error": error}

    # -- heartbeat and reconnect -------------------------------------------
    async def _heartbeat(self):
        interval = self.manager.heartbeat_interval
        while not self.closed and self.conn is not None:
            await asyncio.sleep(interval)
            if self.closed or self.conn is None:
                return
            try:
                # bounded here too: a board stalling mid-frame blocks the reading thread itself
                raw = await asyncio.wait_for(
                    self.manager.run(self._call_blocking, "info", (), self.manager.heartbeat_timeout),
                    self.manager.heartbeat_timeout + 2.0)
            except asyncio.CancelledError:
                raise
            except (Exception, asyncio.TimeoutError) as e:
                err = map_remote_error(e, self.device.name)
                reason = str(err) if isinstance(err, ConnectionLost) else (
                    "no heartbeat answer within %gs" % self.manager.heartbeat_timeout)
                self._lost(reason, stopped=isinstance(err, BoardStopped))
                return
            if self.closed:
                return
            try:
                info = json_text(raw, "its info")
            except ApiError:
                continue
            self.device.info = info
            if self._taken_over(info):
                self._evicted(info["holder"])
                return
            self.manager.changed(self.device)

    def _evicted(self, holder):
        """Another session took the board over: stop, say who, do not reconnect."""
        self.log.warning("remote-device %s: taken over by %s", self.device.name, holder.get("user"))
        asyncio.ensure_future(self.manager.session_ended(
            self, "Taken over by %s; open the session again to take it back" % (holder.get("user") or "another user")))

    def _lost(self, why, stopped=False):
        """The control connection is gone: tell everyone, then reconnect with backoff. When the
        agent said it is stopping, the error says "Stopped: ..." (not a network error) until it
        is back (a service restart reconnects by itself)."""
        if self.closed or self.conn is None:
            return
        self.log.warning("remote-device %s: %s", self.device.name, why)
        conn, self.conn, self.root = self.conn, None, None
        _shutdown(conn)  # unblocks threads stuck reading it; close() then cannot hang on them
        self.manager.pool.submit(close_quietly, conn)
        camera, self.camera = self.camera, None
        if camera is not None:
            # viewers stay open ("reconnecting"); the next CameraStreams adopts them
            asyncio.ensure_future(camera.close(reconnecting=True))
        self.device.status = "connecting"
        self._stopped = "Stopped: %s" % why if stopped else None
        self.device.error = ("%s; reconnecting when it is back" % self._stopped) if stopped else (
            "Connection lost (%s); reconnecting" % why)
        self.manager.changed(self.device)
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self):
        delay = 0.5
        while not self.closed:
            await asyncio.sleep(delay)
            if self.closed:
                return
            try:
                conn, root, info = await self.manager.run_with_timeout(self._open_blocking)
            except ApiError as e:
                if e.reason == "in-use":  # someone else holds it now: never steal it back silently
                    asyncio.ensure_future(self.manager.session_ended(self, e.message))
                    return
                self.device.error = ("%s; retrying (%s)" % (self._stopped, e.message)) if self._stopped else (
                    "Connection lost; retrying (%s)" % e.message)
                self.manager.changed(self.device)
                delay = min(delay * 2, self.manager.reconnect_max_delay)
                continue
            if self.closed:
                close_quietly(conn)
                return
            self.log.info("remote-device %s: reconnected", self.device.name)
            self._attach(conn, root, info)
            return

    async def close(self):
        self.closed = True
        if self._beat is not None:
            self._beat.stop()
        for task in (self._hb_task, self._reconnect_task):
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        camera, self.camera = self.camera, None
        if camera is not None:
            await camera.close()
        else:  # closed while reconnecting: end the camera viewers waiting for us
            try:
                from .stream import release_parked
                release_parked(self.device.camera_parked, "the session with %s ended" % self.device.name)
            except ImportError:
                pass
        conn, self.conn, self.root = self.conn, None, None
        if conn is not None:
            await self.manager.run(close_quietly, conn)


def _collect(ev, out, err):
    """Add one exec event to stdout/stderr; the error dict when it is one."""
    t = ev.get("type")
    if t == "stream":
        (out if ev.get("name") == "stdout" else err).append(ev.get("text", ""))
    elif t == "error":
        return {k: ev.get(k) for k in ("ename", "evalue", "traceback")}
    return None
