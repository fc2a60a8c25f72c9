"""Camera flow control over real sockets: acks, the window, a viewer that stops acking.

Real parts: a spawned agent with the synthetic camera, a real jupyter_server
(pytest-jupyter), real WebSockets.  Correctness only (speed lives in benchmarks/).
"""
import asyncio
import json
import time

from jupyter_remote_device.agent.camera import parse_frame


async def _read(ws, timeout):
    try:
        msg = await asyncio.wait_for(ws.read_message(), timeout)
    except asyncio.TimeoutError:
        return None
    assert msg is not None, "socket closed"
    return msg


async def collect(ws, seconds):
    """(frames [(header, nbytes)], statuses) that arrive within ``seconds``."""
    frames, statuses = [], []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return frames, statuses
        msg = await _read(ws, left)
        if msg is None:
            continue
        if isinstance(msg, bytes):
            h, jpeg = parse_frame(msg)
            frames.append((h, len(msg)))
        else:
            statuses.append(json.loads(msg))


async def next_frame(ws, timeout=8.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = await _read(ws, max(0.05, end - time.monotonic()))
        if isinstance(msg, bytes):
            return parse_frame(msg)[0]
    raise AssertionError("no frame within %ss" % timeout)


async def status_where(ws, pred, timeout=8.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        msg = await _read(ws, max(0.05, end - time.monotonic()))
        if isinstance(msg, str):
            st = json.loads(msg)
            if pred(st):
                return st
    raise AssertionError("no matching status within %ss" % timeout)


def camera_ws(jp_ws_fetch, did, **params):
    params = dict({"width": 320, "height": 240, "quality": 60, "fps": 0}, **params)
    return jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                       params={k: str(v) for k, v in params.items()})


def ack(ws, seq, **extra):
    ws.write_message(json.dumps(dict({"type": "ack", "seq": seq}, **extra)))


async def test_window_bounds_unacked_frames_and_acks_release_more(jp_ws_fetch, connected):
    did = await connected()
    ws = await camera_ws(jp_ws_fetch, did, ack=1)
    other = await camera_ws(jp_ws_fetch, did)  # no acks: streams on at the camera's rate
    # no acks yet: exactly `window` (2) frames, then nothing more
    frames, statuses = await collect(ws, 3.0)
    assert len(frames) == 2, [h["seq"] for h, _ in frames]
    assert statuses and statuses[-1]["ack"] is True and statuses[-1]["window"] == 2
    await status_where(ws, lambda s: s["unacked"] == 2)
    o_frames, _ = await collect(other, 2.0)
    assert len(o_frames) >= 5  # the other viewer keeps its frames meanwhile
    # acking the first frame frees one slot: one more frame, not more
    ack(ws, frames[0][0]["seq"])
    more, _ = await collect(ws, 3.0)
    assert len(more) == 1 and more[0][0]["seq"] > frames[1][0]["seq"]
    # an ack is cumulative: the latest seq frees both
    ack(ws, more[0][0]["seq"])
    more2, _ = await collect(ws, 3.0)
    assert len(more2) == 2
    # a larger window: up to 5 outstanding
    ws.write_message(json.dumps({"type": "settings", "window": 5}))
    more3, st = await collect(ws, 3.0)
    assert len(more3) == 3, len(more3)  # 2 already outstanding + 3 = 5
    await status_where(ws, lambda s: s["window"] == 5 and s["unacked"] == 5)
    # bad acks: a status with an error, nothing breaks
    ws.write_message(json.dumps({"type": "ack", "seq": "x"}))
    bad = await status_where(ws, lambda s: s.get("error") == "bad-request")
    assert "seq" in bad["message"]
    ws.close()
    other.close()


async def test_acked_viewer_streams_and_reports_link_rtt_latency(jp_ws_fetch, connected):
    did = await connected()
    ws = await camera_ws(jp_ws_fetch, did, ack=1)
    got = 0
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        msg = await _read(ws, 1.0)
        if isinstance(msg, bytes):
            ack(ws, parse_frame(msg)[0]["seq"])
            got += 1
    assert got >= 20  # acked immediately: the synthetic camera's rate (~30 fps), not 2 frames
    st = await status_where(ws, lambda s: s["acked"] > 0 and s["latency_ms"] is not None, timeout=3)
    assert st["state"] == "streaming" and st["fps"] > 5
    assert 0 <= st["latency_ms"] < 2000
    assert st["link_kbps"] is None or st["link_kbps"] > 0
    assert st["quality"] == 60 and (st["width"], st["height"]) == (320, 240)
    ws.close()


async def test_viewer_that_stops_acking_gets_nothing_while_others_keep_theirs(jp_ws_fetch, connected):
    did = await connected()
    a = await camera_ws(jp_ws_fetch, did, ack=1)
    b = await camera_ws(jp_ws_fetch, did, ack=1)

    async def acking(ws, seconds):
        n, last = 0, None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = await _read(ws, 0.2)
            if isinstance(msg, bytes):
                last = parse_frame(msg)[0]["seq"]
                ack(ws, last)
                n += 1
        return n, last

    # both ack for a while
    (na, last_a), (nb, _) = await asyncio.gather(acking(a, 2.0), acking(b, 2.0))
    assert na >= 10 and nb >= 10
    # a stops acking: at most the window's worth more, while b keeps streaming
    (fa, _), (nb2, _) = await asyncio.gather(collect(a, 2.5), acking(b, 2.5))
    assert len(fa) <= 2, len(fa)
    assert nb2 >= 15
    # a acks again: it resumes
    newest = fa[-1][0]["seq"] if fa else last_a
    ack(a, newest)
    na2, _ = await acking(a, 2.0)
    assert na2 >= 10
    a.close()
    b.close()


# -- through the link lab ---------------------------------------------------------------

async def _acking_statuses(ws, seconds, pred=None):
    """Ack every frame for up to ``seconds``; the statuses seen (stops early when pred(status))."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = await _read(ws, 0.5)
        if isinstance(msg, bytes):
            ack(ws, parse_frame(msg)[0]["seq"])
        elif isinstance(msg, str):
            st = json.loads(msg)
            seen.append(st)
            if pred is not None and pred(st):
                break
    return seen


def _shaped_ws(jp_base_url, jp_auth_header, port, did, **params):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect
    q = "&".join("%s=%s" % kv for kv in dict({"width": 640, "height": 480, "quality": 80, "fps": 0},
                                             **params).items())
    url = "ws://127.0.0.1:%d%sjupyter-remote-device/devices/%s/camera?%s" % (port, jp_base_url, did, q)
    return websocket_connect(HTTPRequest(url, headers=dict(jp_auth_header)))


async def test_adaptive_quality_moves_down_on_a_slow_link_and_back_up(
        jp_http_port, jp_base_url, jp_auth_header, connected):
    from benchmarks.linklab import LinkProxy
    did = await connected()
    # the viewer reaches Jupyter over 2 Mbit/s each way, 20 ms RTT: 640x480 q80 at 30 fps needs ~10
    with LinkProxy(("127.0.0.1", jp_http_port), rate_bps=2e6, delay_s=0.010) as link:
        ws = await _shaped_ws(jp_base_url, jp_auth_header, link.port, did, ack=1, adaptive=1)
        seen = await _acking_statuses(ws, 30, lambda s: s.get("quality", 80) < 80 and s.get("link_kbps"))
        down = seen[-1]
        assert down["adaptive"] is True and down["requested"] == {"width": 640, "height": 480, "quality": 80}
        assert down["quality"] < 80, [(s.get("quality"), s.get("link_kbps")) for s in seen]
        assert 500 < down["link_kbps"] < 4000  # the meter sees about the link's 2 Mbit/s
        assert down["rtt_ms"] is None or down["rtt_ms"] >= 15
        # it keeps going down until the stream fits (quality, then size)
        seen = await _acking_statuses(ws, 20, lambda s: s["quality"] <= 40 or s["width"] < 640)
        assert seen[-1]["quality"] <= 40 or seen[-1]["width"] < 640
        # the link gets fast: it climbs back to what was asked for
        link.set_rate(None)
        seen = await _acking_statuses(ws, 45, lambda s: s["quality"] == 80 and s["width"] == 640)
        up = seen[-1]
        assert (up["quality"], up["width"], up["height"]) == (80, 640, 480), [
            (s["quality"], s["width"], s.get("link_kbps")) for s in seen[-8:]]
        ws.close()


async def test_viewer_without_acks_stays_bounded_on_a_slow_link(jp_http_port, jp_base_url, jp_auth_header, connected):
    from benchmarks.linklab import LinkProxy
    did = await connected()
    with LinkProxy(("127.0.0.1", jp_http_port), rate_bps=2e6, delay_s=0.010) as link:
        ws = await _shaped_ws(jp_base_url, jp_auth_header, link.port, did)
        lat = []
        end = time.monotonic() + 10
        while time.monotonic() < end:
            msg = await _read(ws, 0.5)
            if isinstance(msg, bytes):
                lat.append((time.monotonic(), time.time() - parse_frame(msg)[0]["captured_at"]))
        ws.close()
    late = sorted(x for t, x in lat if t > end - 3)
    assert len(lat) > 10 and late
    # a ~55 KB frame takes ~0.22 s on this link: a backlog that grew would show seconds here
    assert late[len(late) // 2] < 1.0, late
