"""Cameras end to end: the agent's CameraHub over rpyc, and the server's fan-out over WebSockets.

Correctness only (speed lives in benchmarks/camera.py). Real parts: a spawned agent
with the synthetic camera, a real jupyter_server (pytest-jupyter), real sockets.
"""
import asyncio
import base64
import io
import json
import os
import socket
import time

import pytest
from PIL import Image

from jupyter_remote_device.agent.camera import parse_frame
from jupyter_remote_device.link import connect


def _stats(conn):
    return json.loads(conn.root.camera_stats())


def _check_frame(data, width, height, after_seq=None):
    header, jpeg = parse_frame(data)
    assert set(header) >= {"seq", "captured_at", "width", "height", "format"}
    assert header["format"] == "jpeg"
    assert (header["width"], header["height"]) == (width, height)
    assert abs(header["captured_at"] - time.time()) < 10
    if after_seq is not None:
        assert header["seq"] > after_seq
    img = Image.open(io.BytesIO(jpeg))
    img.load()
    assert img.format == "JPEG" and img.size == (width, height)
    return header, jpeg


def _wait_until(pred, timeout=5.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


@pytest.fixture
def board(agent):
    conns = []

    def dial():
        c = connect("127.0.0.1", agent.port, agent.token)
        conns.append(c)
        return c

    yield dial
    for c in conns:
        try:
            c.close()
        except Exception:
            pass


# -- agent level ------------------------------------------------------------------------

def test_list_is_cheap_and_describes_the_camera(board):
    c = board()
    cams = json.loads(c.root.camera_list())
    assert cams and cams[0]["id"] == "0" and cams[0]["backend"] == "synthetic"
    assert [640, 480] in cams[0]["modes"]
    assert _stats(c)["active_captures"] == 0  # listing starts nothing


def test_frames_in_order_with_valid_jpeg_and_header(board):
    c = board()
    sid = c.root.camera_open("0", 640, 480, 80, 0)
    last = -1
    sizes = []
    for _ in range(12):
        data = c.root.camera_next(sid, last, 3.0)
        assert data is not None
        header, jpeg = _check_frame(data, 640, 480, after_seq=last)
        last = header["seq"]
        sizes.append(len(jpeg))
    # a real-sensor-like pattern: tens of KB at 640x480 q80, different every frame
    assert 20000 < sum(sizes) / len(sizes) < 120000
    assert len(set(sizes)) > 1
    c.root.camera_close(sid)


def test_same_settings_share_one_capture_and_one_encode(board):
    a, b = board(), board()
    s1 = a.root.camera_open("0", 640, 480, 80, 0)
    s2 = b.root.camera_open("0", 640, 480, 80, 0)
    st = _stats(a)
    assert st["active_captures"] == 1 and st["streams"] == 2
    f1 = a.root.camera_next(s1, -1, 3.0)
    h1, _ = parse_frame(f1)
    f2 = b.root.camera_next(s2, h1["seq"] - 1, 3.0)
    h2, _ = parse_frame(f2)
    if h2["seq"] == h1["seq"]:
        assert f1 == f2  # the very same encode
    last1, last2 = h1["seq"], h2["seq"]
    for _ in range(10):
        last1 = parse_frame(a.root.camera_next(s1, last1, 3.0))[0]["seq"]
        last2 = parse_frame(b.root.camera_next(s2, last2, 3.0))[0]["seq"]
    st = _stats(a)
    cam = st["cameras"][0]
    assert st["active_captures"] == 1
    # one encode per captured frame at most, however many streams take it
    assert cam["encodes"] <= cam["captures"]


def test_different_settings_get_their_own_encode_of_the_same_capture(board):
    c = board()
    big = c.root.camera_open("0", 640, 480, 80, 0)
    small = c.root.camera_open("0", 320, 240, 50, 0)
    hb, _ = _check_frame(c.root.camera_next(big, -1, 3.0), 640, 480)
    hs, _ = _check_frame(c.root.camera_next(small, hb["seq"] - 1, 3.0), 320, 240)
    assert hs["seq"] >= hb["seq"]
    st = _stats(c)
    assert st["active_captures"] == 1 and st["cameras"][0]["distinct_encodings"] == 2


def test_camera_released_when_the_last_stream_closes(board):
    a, b = board(), board()
    s1 = a.root.camera_open("0", 640, 480, 80, 0)
    s2 = b.root.camera_open("0", 320, 240, 80, 0)
    a.root.camera_next(s1, -1, 3.0)
    a.root.camera_close(s1)
    assert _stats(a)["active_captures"] == 1
    b.root.camera_close(s2)
    st = _stats(a)
    assert st["active_captures"] == 0 and st["streams"] == 0
    # reopening works, and a dropped connection releases its streams too
    c = board()
    c.root.camera_open("0", 320, 240, 80, 0)
    assert _stats(a)["active_captures"] == 1
    c.close()
    assert _wait_until(lambda: _stats(a)["active_captures"] == 0)


def test_configure_changes_settings_live(board):
    c = board()
    sid = c.root.camera_open("0", 640, 480, 80, 0)
    h, _ = _check_frame(c.root.camera_next(sid, -1, 3.0), 640, 480)
    desc = json.loads(c.root.camera_configure(sid, 320, 240, 40, 0))
    assert desc["stream_id"] == sid and (desc["width"], desc["height"], desc["quality"]) == (320, 240, 40)
    h2, _ = _check_frame(c.root.camera_next(sid, h["seq"], 3.0), 320, 240, after_seq=h["seq"])
    # back up to a larger size: never an upscaled stale frame
    c.root.camera_configure(sid, 1280, 720, 70, 0)
    _check_frame(c.root.camera_next(sid, h2["seq"], 3.0), 1280, 720, after_seq=h2["seq"])


def test_fps_cap_is_respected(board):
    c = board()
    sid = c.root.camera_open("0", 320, 240, 60, 5)
    last, stamps = -1, []
    end = time.time() + 1.6
    while time.time() < end:
        data = c.root.camera_next(sid, last, 2.0)
        if data:
            h, _ = parse_frame(data)
            last = h["seq"]
            stamps.append(h["captured_at"])
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert gaps and min(gaps) > 0.15  # 5 fps cap on a 30 fps source: ~0.2 s apart, never 0.033


def test_bad_requests_get_clear_errors(board):
    c = board()
    with pytest.raises(Exception, match="no camera"):
        c.root.camera_open("7", 640, 480, 80, 0)
    with pytest.raises(Exception, match="quality"):
        c.root.camera_open("0", 640, 480, 0, 0)
    with pytest.raises(Exception, match="no open camera stream"):
        c.root.camera_next("nope", -1, 0.1)
    assert _stats(c)["active_captures"] == 0
    c.root.camera_close("nope")  # closing something unknown is harmless


# -- server level -----------------------------------------------------------------------

def _manager(jp_serverapp):
    return jp_serverapp.web_app.settings["jrd_manager"]


async def _read(ws, timeout=5.0):
    msg = await asyncio.wait_for(ws.read_message(), timeout)
    assert msg is not None, "socket closed"
    return msg


async def _next_frame(ws, timeout=5.0):
    """The next binary frame (skipping status messages) -> (header, jpeg)."""
    end = time.time() + timeout
    while time.time() < end:
        msg = await _read(ws, max(0.1, end - time.time()))
        if isinstance(msg, bytes):
            return parse_frame(msg)
    raise AssertionError("no frame within %ss" % timeout)


async def _status(ws, pred, timeout=8.0):
    end = time.time() + timeout
    while time.time() < end:
        msg = await _read(ws, max(0.1, end - time.time()))
        if isinstance(msg, str):
            st = json.loads(msg)
            assert st["type"] == "status"
            if pred(st):
                return st
    raise AssertionError("no matching status within %ss" % timeout)


def _camera_ws(jp_ws_fetch, did, **params):
    params = dict({"width": 320, "height": 240, "quality": 70, "fps": 0}, **params)
    return jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                       params={k: str(v) for k, v in params.items()})


async def test_ws_stream_delivers_frames_and_status(jp_ws_fetch, connected, agent):
    did = await connected()
    ws = await _camera_ws(jp_ws_fetch, did)
    st = await _status(ws, lambda s: True)
    assert st["state"] == "streaming" and "fps" in st and "source_fps" in st and "dropped" in st
    last = -1
    for _ in range(8):
        h, jpeg = await _next_frame(ws)
        assert h["seq"] > last and (h["width"], h["height"]) == (320, 240)
        last = h["seq"]
        Image.open(io.BytesIO(jpeg)).load()
    ws.close()


async def test_ws_viewers_share_a_stream_and_change_settings_live(jp_ws_fetch, connected, agent):
    did = await connected()
    probe = connect("127.0.0.1", agent.port, agent.token)
    try:
        w1 = await _camera_ws(jp_ws_fetch, did)
        w2 = await _camera_ws(jp_ws_fetch, did)
        await _next_frame(w1)
        await _next_frame(w2)
        st = _stats(probe)
        assert st["streams"] == 1 and st["active_captures"] == 1
        # live change for one viewer: it moves to its own device stream, the socket stays
        w1.write_message(json.dumps({"type": "settings", "width": 640, "height": 480, "quality": 60}))
        end = time.time() + 5
        while True:
            h, _ = await _next_frame(w1)
            if (h["width"], h["height"]) == (640, 480):
                break
            assert time.time() < end
        h2, _ = await _next_frame(w2)
        assert (h2["width"], h2["height"]) == (320, 240)
        assert _stats(probe)["streams"] == 2
        # bad messages: a status with an error, the stream goes on
        w1.write_message("{not json")
        st = await _status(w1, lambda s: s.get("error") == "bad-request")
        assert st["message"]
        w1.write_message(json.dumps({"type": "settings", "quality": 1000}))
        st = await _status(w1, lambda s: s.get("error") == "bad-request")
        assert "quality" in st["message"]
        await _next_frame(w1)
        # pause / resume
        w1.write_message(json.dumps({"type": "pause"}))
        await _status(w1, lambda s: s["state"] == "paused")
        assert _wait_until(lambda: _stats(probe)["streams"] == 1)
        w1.write_message(json.dumps({"type": "resume"}))
        await _status(w1, lambda s: s["state"] == "streaming")
        h, _ = await _next_frame(w1)
        assert (h["width"], h["height"]) == (640, 480)
        w1.close()
        w2.close()
    finally:
        probe.close()


def _raw_ws_blocked(port, path, auth_header):
    """A WebSocket client that completes the handshake and then never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small window: the server blocks soon
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
           % (path, port, key, "".join("%s: %s\r\n" % kv for kv in auth_header.items())))
    s.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "handshake refused"
        head += chunk
    assert b" 101 " in head.split(b"\r\n", 1)[0], head
    return s


async def test_blocked_viewer_drops_to_latest_while_the_other_keeps_its_rate(
        jp_ws_fetch, jp_serverapp, jp_http_port, jp_base_url, jp_auth_header, connected, agent):
    did = await connected()
    params = "width=1280&height=720&quality=90&fps=0"
    path = "%sjupyter-remote-device/devices/%s/camera?%s" % (jp_base_url, did, params)
    blocked = await asyncio.get_running_loop().run_in_executor(
        None, _raw_ws_blocked, jp_http_port, path, dict(jp_auth_header))
    try:
        normal = await _camera_ws(jp_ws_fetch, did, width=1280, height=720, quality=90)
        sess = _manager(jp_serverapp).require_session(did)
        h0, _ = await _next_frame(normal)
        t0 = time.time()
        got = 0
        h = h0
        while time.time() - t0 < 3.0:
            h, _ = await _next_frame(normal)
            got += 1
        source_frames = h["seq"] - h0["seq"]
        assert source_frames > 0
        # the normal viewer gets (nearly) every frame the camera made
        assert got >= 0.6 * source_frames
        viewers = sess.camera.stats()["viewer_list"]
        assert len(viewers) == 2
        slow = min(viewers, key=lambda v: v["sent"])
        fast = max(viewers, key=lambda v: v["sent"])
        assert slow["dropped"] > 0 and slow["sent"] < fast["sent"] / 2
        # one shared device stream for both
        assert sess.camera.stats()["device_streams"] == 1
        normal.close()
    finally:
        blocked.close()


async def test_camera_released_when_the_last_viewer_leaves(jp_ws_fetch, jp_serverapp, connected, agent):
    did = await connected()
    probe = connect("127.0.0.1", agent.port, agent.token)
    try:
        w1 = await _camera_ws(jp_ws_fetch, did)
        w2 = await _camera_ws(jp_ws_fetch, did, width=640, height=480)
        await _next_frame(w1)
        await _next_frame(w2)
        assert _stats(probe)["active_captures"] == 1 and _stats(probe)["streams"] == 2
        w1.close()
        await asyncio.sleep(0)
        end = time.time() + 5
        while _stats(probe)["streams"] != 1:
            assert time.time() < end
            await asyncio.sleep(0.05)
        assert _stats(probe)["active_captures"] == 1
        w2.close()
        end = time.time() + 5
        while _stats(probe)["active_captures"] != 0:
            assert time.time() < end, _stats(probe)
            await asyncio.sleep(0.05)
        sess = _manager(jp_serverapp).require_session(did)
        end = time.time() + 5
        while sess.camera.stats()["device_streams"]:
            assert time.time() < end
            await asyncio.sleep(0.05)
    finally:
        probe.close()


async def test_viewer_survives_an_agent_restart(jp_ws_fetch, connected, agent):
    did = await connected()
    ws = await _camera_ws(jp_ws_fetch, did)
    await _next_frame(ws)
    await asyncio.get_running_loop().run_in_executor(None, agent.restart)
    await _status(ws, lambda s: s["state"] == "reconnecting", timeout=10)
    await _status(ws, lambda s: s["state"] == "streaming", timeout=20)
    h, _ = await _next_frame(ws, timeout=10)
    assert (h["width"], h["height"]) == (320, 240)
    ws.close()


async def test_unknown_camera_and_bad_query(jp_ws_fetch, connected, agent):
    did = await connected()
    ws = await _camera_ws(jp_ws_fetch, did, camera="9")
    st = await _status(ws, lambda s: True)
    assert st["state"] == "error" and "camera" in st["message"]
    msg = await asyncio.wait_for(ws.read_message(), 5)
    assert msg is None  # the server closed the socket


async def test_viewer_stops_when_the_session_closes_while_reconnecting(jp_ws_fetch, api, connected, agent):
    did = await connected()
    ws = await _camera_ws(jp_ws_fetch, did)
    await _next_frame(ws)
    await asyncio.get_running_loop().run_in_executor(None, agent.kill)
    await _status(ws, lambda s: s["state"] == "reconnecting", timeout=10)
    for _ in range(100):  # the session noticed too: the viewer is parked, waiting for it
        code, dev = await api("GET", "devices/" + did)
        if dev["status"] == "connecting":
            break
        await asyncio.sleep(0.1)
    assert dev["status"] == "connecting"
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    st = await _status(ws, lambda s: s["state"] == "stopped", timeout=10)
    assert st["message"]
    msg = await asyncio.wait_for(ws.read_message(), 5)
    assert msg is None  # the server closed the socket


async def test_a_viewer_that_waited_on_an_opening_stream_gets_frames_when_the_opener_leaves(
        jp_serverapp, connected):
    """The first viewer of a stream leaves while it opens (a restored camera tab shown, hidden and
    shown again): the stream stops with it, and a second viewer that waited on that opening gets
    a device stream of its own, not the stopped one (which would never send it a frame)."""
    from jupyter_remote_device.server.stream import FrameSubscriber, normalize_settings
    did = await connected()
    cams = _manager(jp_serverapp).require_session(did).camera
    settings = normalize_settings({"width": 320, "height": 240, "quality": 70, "fps": 0})
    opener = FrameSubscriber(cams, "0", dict(settings), lambda frame: None)
    opening = asyncio.ensure_future(cams._add(opener))
    end = time.time() + 5
    while not cams._streams:  # the opener's device stream exists and is opening
        assert time.time() < end
        await asyncio.sleep(0)
    got = []
    waiting = asyncio.ensure_future(cams.subscribe("0", dict(settings), got.append))
    await asyncio.sleep(0)
    opener.close()  # leaves before the board answered camera_open
    await asyncio.wait_for(opening, 10)
    second = await asyncio.wait_for(waiting, 10)
    try:
        end = time.time() + 5
        while not got:
            assert time.time() < end, "the second viewer got no frame: it joined a stopped stream"
            await asyncio.sleep(0.05)
        assert second.stream is not None and not second.stream.stopped
        assert cams.stats()["device_streams"] == 1
    finally:
        second.close()
