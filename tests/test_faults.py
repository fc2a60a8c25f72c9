"""Faults: the agent killed mid-stream and coming back, a black-holed link, Jupyter restarted,
a busy board. Real agent processes and real servers on 127.0.0.1; a loopback TCP proxy plays
the broken network."""
import asyncio
import json
import select
import socket
import threading
import time

from jrd_procs import JupyterProc


class Events:
    """Reads the events WebSocket in the background; ``wait(pred, timeout)``."""

    def __init__(self, ws):
        self.ws = ws
        self.messages = []
        self._cond = asyncio.Condition()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            msg = await self.ws.read_message()
            if msg is None:
                return
            async with self._cond:
                self.messages.append((time.monotonic(), json.loads(msg)))
                self._cond.notify_all()

    async def wait(self, pred, timeout, since=0):
        deadline = time.monotonic() + timeout
        async with self._cond:
            while True:
                for t, m in self.messages[since:]:
                    if pred(m):
                        return t, m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, None
                try:
                    await asyncio.wait_for(self._cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    def close(self):
        self.task.cancel()
        self.ws.close()


def _dev_msg(did, status, error_required=False):
    def pred(m):
        if m.get("type") != "device" or m["device"]["id"] != did:
            return False
        d = m["device"]
        return d["status"] == status and (d["error"] if error_required else True)
    return pred


async def _read_frame(ws, timeout):
    """Next binary frame's header (skipping status text), or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            msg = await asyncio.wait_for(ws.read_message(), left)
        except asyncio.TimeoutError:
            return None
        if msg is None:
            raise AssertionError("camera socket closed")
        if isinstance(msg, bytes):
            hlen = int.from_bytes(msg[:4], "big")
            return json.loads(msg[4:4 + hlen])


async def test_agent_killed_mid_stream_then_back(api, agent, connected, jp_ws_fetch):
    did = await connected()
    events = Events(await jp_ws_fetch("jupyter-remote-device", "events"))
    cam = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                            params={"width": "160", "height": "120", "quality": "50"})
    try:
        assert await _read_frame(cam, 10) is not None
        mark = len(events.messages)
        t0 = time.monotonic()
        agent.kill()
        t, m = await events.wait(_dev_msg(did, "connecting", True), 3.0, since=mark)
        assert m is not None, "no 'connecting' event within 3 s of SIGKILL"
        assert t - t0 < 3.0
        assert "lost" in m["device"]["error"].lower() or "broke" in m["device"]["error"].lower()
        code, dev = await api("GET", "devices/" + did)
        assert dev["status"] == "connecting"
        code, err = await api("POST", "devices/%s/exec" % did, {"code": "1"})
        assert code == 409 and err["reason"] == "not-connected"
        # it keeps trying (backoff) while the agent is gone; the error says so
        await asyncio.sleep(2.0)
        code, dev = await api("GET", "devices/" + did)
        assert dev["status"] == "connecting" and dev["error"]

        mark = len(events.messages)
        agent.restart()
        t, m = await events.wait(_dev_msg(did, "connected"), 10.0, since=mark)
        assert m is not None, "did not reconnect by itself"
        code, out = await api("POST", "devices/%s/exec" % did, {"code": "print(2)"})
        assert code == 200 and out["stdout"] == "2\n"
        # the same camera socket streams again (viewer adopted by the new session)
        hdr = await _read_frame(cam, 15)
        assert hdr is not None and hdr["width"] == 160
    finally:
        cam.close()
        events.close()


async def test_backoff_is_capped(api, agent, connected, jrd_config):
    """Agent gone for a while: retries continue, spaced by a backoff that stops growing at the cap."""
    did = await connected()
    agent.kill()
    await asyncio.sleep(jrd_config["reconnect_max_delay"] * 3 + 2)
    agent.restart()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        code, dev = await api("GET", "devices/" + did)
        if dev["status"] == "connected":
            break
        await asyncio.sleep(0.2)
    assert dev["status"] == "connected"
    # with a cap of reconnect_max_delay, it is back within cap + connect slack
    assert time.monotonic() - t0 < jrd_config["reconnect_max_delay"] + jrd_config["connect_timeout"] + 2


class BlackHoleProxy:
    """127.0.0.1 TCP proxy; ``blackhole()`` stops forwarding (data swallowed) but keeps sockets open."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.holed = threading.Event()
        self.dribbling = threading.Event()
        self.stopped = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.holed.is_set():
                self.socks.append(c)  # accepted, never answered
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    def _pump(self, a, b):
        peers = {a: b, b: a}
        while not self.stopped.is_set():
            try:
                r, _, _ = select.select([a, b], [], [], 0.2)
            except (OSError, ValueError):
                return
            for s in r:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    if not self.holed.is_set():
                        for x in (a, b):
                            try:
                                x.close()
                            except OSError:
                                pass
                        return
                    continue
                if self.holed.is_set():
                    continue  # swallowed
                if self.dribbling.is_set() and s is b:
                    # the start of the board's next frame (its header and a byte), then silence:
                    # the reader is left inside a frame
                    self.holed.set()
                    data = data[:6]
                try:
                    peers[s].sendall(data)
                except OSError:
                    return

    def blackhole(self):
        self.holed.set()

    def dribble(self):
        self.dribbling.set()

    def heal(self):
        self.dribbling.clear()
        self.holed.clear()

    def close(self):
        self.stopped.set()
        self.srv.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


async def test_black_holed_link_detected_by_heartbeat(api, agent, jp_ws_fetch, jrd_config):
    proxy = BlackHoleProxy(agent.port)
    events = Events(await jp_ws_fetch("jupyter-remote-device", "events"))
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": proxy.port, "token": agent.token})
        did = dev["id"]
        code, dev = await api("POST", "devices/%s/session" % did)
        assert code == 200 and dev["status"] == "connected"
        mark = len(events.messages)
        proxy.blackhole()
        limit = jrd_config["heartbeat_interval"] + jrd_config["heartbeat_timeout"] + 2.5
        t, m = await events.wait(_dev_msg(did, "connecting", True), limit, since=mark)
        assert m is not None, "black hole not detected within %g s" % limit
        assert "heartbeat" in m["device"]["error"]
        # REST calls answer quickly meanwhile, not after a 30 s rpyc timeout
        t1 = time.monotonic()
        code, err = await api("POST", "devices/%s/exec" % did, {"code": "1"})
        assert code == 409 and time.monotonic() - t1 < 2
        code, lst = await api("GET", "devices")
        assert code == 200
        # retries through the hole time out, the server keeps serving
        await asyncio.sleep(jrd_config["connect_timeout"] + 1.5)
        code, dev = await api("GET", "devices/" + did)
        assert dev["status"] == "connecting" and dev["error"]
        mark = len(events.messages)
        proxy.heal()
        t, m = await events.wait(_dev_msg(did, "connected"), 15, since=mark)
        assert m is not None, "did not come back after the link healed"
        code, out = await api("POST", "devices/%s/exec" % did, {"code": "print('back')"})
        assert code == 200 and out["stdout"] == "back\n"
    finally:
        events.close()
        proxy.close()


def test_jupyter_restart_keeps_manual_devices(agent, tmp_path, jrd_config):
    j = JupyterProc(device_manager=jrd_config, workdir=str(tmp_path / "jp"))
    j.start()
    try:
        code, dev = j.request("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token,
                                                  "name": "kept"})
        assert code == 201
        code, _ = j.request("POST", "devices/%s/session" % dev["id"])
        assert code == 200
    finally:
        j.stop()
    j2 = JupyterProc(device_manager=jrd_config, workdir=str(tmp_path / "jp"), port=j.port)
    j2.token = j.token
    j2.start()
    try:
        code, lst = j2.request("GET", "devices")
        assert code == 200
        kept = [d for d in lst["devices"] if d["id"] == dev["id"]]
        assert kept and kept[0]["name"] == "kept" and kept[0]["source"] == "manual" and kept[0]["has_token"]
        # and the saved token works: a session opens without giving it again
        code, d = j2.request("POST", "devices/%s/session" % dev["id"])
        assert code == 200 and d["status"] == "connected", d
    finally:
        j2.stop()


async def test_busy_board_blocks_nothing_else(api, agent, connected, jp_ws_fetch):
    did = await connected()
    events = Events(await jp_ws_fetch("jupyter-remote-device", "events"))
    cam = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                            params={"width": "160", "height": "120", "quality": "50"})
    try:
        assert await _read_frame(cam, 10) is not None
        long_exec = asyncio.ensure_future(api("POST", "devices/%s/exec" % did,
                                              {"code": "import time\ntime.sleep(6)\nprint('done')",
                                               "timeout": 30}))
        await asyncio.sleep(0.5)
        assert not long_exec.done()
        mark = len(events.messages)
        worst = 0.0
        frames = 0
        t_end = time.monotonic() + 4.0
        while time.monotonic() < t_end:
            for method, route in (("GET", "devices"), ("GET", "devices/" + did), ("GET", "version")):
                t0 = time.monotonic()
                code, body = await api(method, route)
                worst = max(worst, time.monotonic() - t0)
                assert code == 200
            if await _read_frame(cam, 2.0) is not None:
                frames += 1
        assert not long_exec.done(), "the exec should still be running"
        assert worst < 1.5, "a request waited %.2f s behind the busy board" % worst
        assert frames >= 5, "camera stalled while the board was busy (%d frames)" % frames
        # info kept refreshing (heartbeat) during the exec: uptime moved
        ups = [m["device"]["info"]["uptime_s"] for _, m in events.messages[mark:]
               if m.get("type") == "device" and m["device"]["id"] == did and m["device"].get("info")]
        assert len(set(ups)) >= 2, ups
        code, out = await long_exec
        assert code == 200 and out["stdout"] == "done\n"
    finally:
        cam.close()
        events.close()


async def test_board_stalling_mid_frame_is_detected(api, agent, jp_ws_fetch, jrd_config):
    """The board sends a frame's header and then nothing: the reading thread is stuck inside
    the frame; the heartbeat still notices (bounded on the loop side) and the session recovers."""
    proxy = BlackHoleProxy(agent.port)
    events = Events(await jp_ws_fetch("jupyter-remote-device", "events"))
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": proxy.port, "token": agent.token})
        did = dev["id"]
        code, dev = await api("POST", "devices/%s/session" % did)
        assert code == 200
        mark = len(events.messages)
        proxy.dribble()
        limit = jrd_config["heartbeat_interval"] + jrd_config["heartbeat_timeout"] + 5
        t, m = await events.wait(_dev_msg(did, "connecting", True), limit, since=mark)
        assert m is not None, "a board stalled mid-frame was not detected within %g s" % limit
        code, lst = await api("GET", "devices")
        assert code == 200
        mark = len(events.messages)
        proxy.heal()
        t, m = await events.wait(_dev_msg(did, "connected"), 15, since=mark)
        assert m is not None, "did not come back after the link healed"
        code, out = await api("POST", "devices/%s/exec" % did, {"code": "print('back')"})
        assert code == 200 and out["stdout"] == "back\n"
    finally:
        events.close()
        proxy.close()
