"""Recordings end to end: a real agent (synthetic camera at a known rate), a real jupyter_server,
files decoded with PyAV.  Bad input, stop, board loss, tabs closing, and a recording replayed
as a board's camera (``--camera file:PATH``).
"""
# no pytest.mark.asyncio: pytest-jupyter runs these coroutines on the server's own loop
import asyncio
import csv
import io
import json
import os
import time

import av
import pytest
import tornado.httpclient
from PIL import Image

from jupyter_remote_device.agent.camera import parse_frame

FPS = 10.0


@pytest.fixture
def agent(make_agent):
    return make_agent(env={"JRD_CAMERA_FPS": str(FPS)})


async def _wait_job(api, job_id, pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        code, job = await api("GET", "jobs/%s" % job_id)
        assert code == 200, job
        if pred(job):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError("job %s: no matching state within %ss: %s" % (job_id, timeout, job))


def _decode(path):
    """(codec name, pix_fmt, frames, seconds between the first and last frame)."""
    with av.open(path) as c:
        st = c.streams.video[0]
        times = [f.time for f in c.decode(st)]
        return st.codec_context.name, st.codec_context.pix_fmt, len(times), (times[-1] - times[0]) if times else 0


async def _record(api, did, **body):
    body = dict({"width": 320, "height": 240, "quality": 70}, **body)
    code, job = await api("POST", "devices/%s/recordings" % did, body)
    assert code == 202, job
    assert job["kind"] == "record" and job["state"] == "running"
    assert {"frames", "duration_s", "path"} <= set(job)
    return job


def _no_temp_files(folder):
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            assert not n.startswith("."), os.path.join(dirpath, n)


@pytest.mark.parametrize("fmt,codec", [("mp4", "h264"), ("webm", "vp8"), ("mjpeg", "mjpeg")])
async def test_recording_rate_and_file(api, connected, jp_root_dir, fmt, codec):
    did = await connected()
    job = await _record(api, did, format=fmt, path="clips/take", seconds=3)
    assert job["path"].startswith("clips/take.")
    job = await _wait_job(api, job["id"], lambda j: j["state"] != "running")
    assert job["state"] == "done", job
    assert job["stopped_by"] == "seconds"
    full = os.path.join(str(jp_root_dir), job["path"])
    assert os.path.getsize(full) == job["bytes_done"] > 0
    name, pix, frames, span = _decode(full)
    assert name == codec
    if fmt == "mp4":
        assert pix == "yuv420p"
        with open(full, "rb") as f:
            head = f.read(4096)
        assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))
    # the frame count is the recording's duration times the source rate (+-10 %); the source's
    # rate is what it made in that time (its frame numbers), near the nominal FPS unless the
    # machine is overloaded
    source_fps = (job["seq_last"] - job["seq_first"]) / job["duration_s"]
    assert abs(source_fps - FPS) < 0.3 * FPS, job
    expected = job["duration_s"] * source_fps + 1
    assert abs(job["frames"] - expected) <= 0.1 * expected, job
    assert 2.7 <= job["duration_s"] <= 3.05
    # mjpeg (AVI) has a constant frame duration: the decoder sees a frame per tick, gaps repeated
    assert abs(frames - job["frames"]) <= (0.15 * expected + 1 if fmt == "mjpeg" else 0), (frames, job)
    assert abs(span - job["duration_s"]) < 0.2
    assert job["width"] == 320 and job["height"] == 240
    _no_temp_files(str(jp_root_dir))


async def test_frames_folder_with_csv(api, connected, jp_root_dir):
    did = await connected()
    job = await _record(api, did, format="frames", path="shots", seconds=1.5)
    job = await _wait_job(api, job["id"], lambda j: j["state"] != "running")
    assert job["state"] == "done", job
    folder = os.path.join(str(jp_root_dir), "shots")
    with open(os.path.join(folder, "frames.csv")) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["seq", "captured_at", "file"]
    assert len(rows) == job["frames"] == len([n for n in os.listdir(folder) if n.endswith(".jpg")])
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    times = [float(r["captured_at"]) for r in rows]
    assert times == sorted(times) and abs(times[-1] - times[0] - job["duration_s"]) < 0.01
    for r in rows[:3]:
        with open(os.path.join(folder, r["file"]), "rb") as f:
            data = f.read()
        assert data[:2] == b"\xff\xd8"


async def test_stop_leaves_a_playable_file_and_tabs_closing_do_not_stop_it(api, connected, jp_root_dir,
                                                                             jp_ws_fetch):
    did = await connected()
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                           params={"width": "320", "height": "240", "quality": "70", "fps": "0"})
    job = await _record(api, did, format="mp4", path="stopped.mp4")
    code, err = await api("POST", "devices/%s/recordings" % did, {"format": "mp4", "path": "stopped.mp4"})
    assert code == 409 and err["reason"] == "exists"  # that name is being recorded already
    await asyncio.sleep(0.8)
    ws.close()  # the only tab goes away: the recording goes on
    await asyncio.sleep(1.5)
    running = await _wait_job(api, job["id"], lambda j: True)
    assert running["state"] == "running" and running["frames"] >= 1.5 * FPS * 0.8, running
    code, _ = await api("DELETE", "jobs/%s" % job["id"])
    assert code == 204
    code, done = await api("GET", "jobs/%s" % job["id"])  # the DELETE returns once the file is whole
    assert done["state"] == "done" and done["stopped_by"] == "stop", done
    name, pix, frames, span = _decode(os.path.join(str(jp_root_dir), "stopped.mp4"))
    assert name == "h264" and frames == done["frames"] and frames >= 2 * FPS * 0.8
    code, jobs = await api("GET", "jobs")
    assert any(j["id"] == job["id"] and j["kind"] == "record" for j in jobs["jobs"])
    code, lst = await api("GET", "devices/%s/recordings" % did)
    assert code == 200 and [r["id"] for r in lst["recordings"]] == [job["id"]]


async def test_board_loss_leaves_a_playable_file(api, connected, agent, jp_root_dir):
    did = await connected()
    job = await _record(api, did, format="mp4", path="lost.mp4")
    await _wait_job(api, job["id"], lambda j: j["frames"] >= 20)
    await asyncio.get_running_loop().run_in_executor(None, agent.kill)
    done = await _wait_job(api, job["id"], lambda j: j["state"] != "running", timeout=40)
    assert done["state"] == "done" and done["stopped_by"] in ("board-lost", "session-ended"), done
    assert done["message"]
    name, _, frames, _ = _decode(os.path.join(str(jp_root_dir), "lost.mp4"))
    assert name == "h264" and frames == done["frames"] >= 20
    _no_temp_files(str(jp_root_dir))


async def test_job_events_on_the_events_socket(api, connected, jp_ws_fetch):
    did = await connected()
    ev = await jp_ws_fetch("jupyter-remote-device", "events")
    job = await _record(api, did, format="webm", path="ev.webm", seconds=1.5)
    seen = []
    end = time.time() + 20
    while time.time() < end:
        msg = json.loads(await asyncio.wait_for(ev.read_message(), 10))
        if msg.get("type") == "job" and msg["job"]["id"] == job["id"]:
            seen.append(msg["job"])
            if msg["job"]["state"] != "running":
                break
    ev.close()
    assert seen[-1]["state"] == "done" and seen[-1]["kind"] == "record"
    assert any(j["state"] == "running" and j["frames"] > 0 and j["bytes_done"] > 0 for j in seen)


async def test_bad_input(api, connected, jp_root_dir, jp_serverapp, jp_http_port, tmp_path):
    did = await connected()
    tmp_path = tmp_path / "outside"
    tmp_path.mkdir()
    cases = [
        ({"format": "gif", "path": "a.gif"}, 400, "bad-request"),
        ({"path": "a.txt"}, 400, "bad-request"),
        ({"format": "mp4", "path": "../escape.mp4"}, 403, "outside-root"),
        ({"format": "mp4", "path": str(tmp_path / "abs.mp4")}, 403, "outside-root"),
        ({"format": "mp4", "path": 5}, 400, "bad-request"),
        ({"format": "mp4", "seconds": -1}, 400, "bad-request"),
        ({"format": "mp4", "seconds": True}, 400, "bad-request"),
        ({"format": "mp4", "width": "wide"}, 400, "bad-request"),
        ({"format": "mp4", "path": ".hidden.mp4"}, 400, "bad-request"),
    ]
    os.symlink(str(tmp_path), os.path.join(str(jp_root_dir), "out"))
    cases.append(({"format": "mp4", "path": "out/through-link.mp4"}, 403, "outside-root"))
    with open(os.path.join(str(jp_root_dir), "taken.mp4"), "wb") as f:
        f.write(b"x")
    cases.append(({"format": "mp4", "path": "taken.mp4"}, 409, "exists"))
    for body, status, reason in cases:
        code, err = await api("POST", "devices/%s/recordings" % did, body)
        assert (code, err.get("reason")) == (status, reason), (body, code, err)
        assert err["message"]
    code, err = await api("POST", "devices/%s/recordings" % did, raw_body=b"{nope")
    assert code == 400 and err["reason"] == "bad-request"
    code, err = await api("POST", "devices/nope/recordings", {"format": "mp4"})
    assert code == 404 and err["reason"] == "not-found"
    code, err = await api("DELETE", "jobs/nope")
    assert code == 404
    # nothing was written, anywhere
    assert sorted(os.listdir(str(jp_root_dir))) == ["out", "taken.mp4"]
    assert os.listdir(str(tmp_path)) == []
    # not connected
    await api("DELETE", "devices/%s/session" % did)
    code, err = await api("POST", "devices/%s/recordings" % did, {"format": "mp4"})
    assert code == 409 and err["reason"] == "not-connected"
    # unauthenticated
    base = jp_serverapp.base_url
    url = "http://127.0.0.1:%d%sjupyter-remote-device/devices/%s/recordings" % (jp_http_port, base, did)
    r = await tornado.httpclient.AsyncHTTPClient().fetch(url, method="POST", body=b"{}", raise_error=False)
    assert r.code in (401, 403)


async def test_a_recording_replayed_as_the_camera(api, connected, jp_root_dir, make_agent, jp_ws_fetch):
    """Record a frames folder and an mjpeg file, then start agents with --camera file:PATH: they
    stream the recorded frames (the same JPEG bytes) at the recorded rate, looping."""
    did = await connected()
    j1 = await _record(api, did, format="frames", path="rec", seconds=1.2)
    j2 = await _record(api, did, format="mjpeg", path="rec.avi", seconds=1.2)
    j3 = await _record(api, did, format="mp4", path="rec.mp4", seconds=1.2)
    for j in (j1, j2, j3):
        j.update(await _wait_job(api, j["id"], lambda x: x["state"] != "running"))
        assert j["state"] == "done", j
    folder = os.path.join(str(jp_root_dir), "rec")
    recorded = set()
    for n in os.listdir(folder):
        if n.endswith(".jpg"):
            with open(os.path.join(folder, n), "rb") as f:
                recorded.add(f.read())
    mp4 = os.path.join(str(jp_root_dir), "rec.mp4")
    for path in (folder, os.path.join(str(jp_root_dir), "rec.avi"), mp4):
        replay = make_agent(camera="file:" + path)
        did2 = await connected(replay)
        ws = await jp_ws_fetch("jupyter-remote-device", "devices", did2, "camera",
                               params={"width": "320", "height": "240", "quality": "70", "fps": "0"})
        got = []
        end = time.time() + 15
        while len(got) < 2 * j1["frames"] + 2 and time.time() < end:
            msg = await asyncio.wait_for(ws.read_message(), 5)
            if isinstance(msg, bytes):
                got.append(parse_frame(msg))
        ws.close()
        assert len(got) >= 2 * j1["frames"] + 2, "looped"
        assert all(h["width"] == 320 and h["height"] == 240 for h, _ in got)
        # the recording's own frames (the two recordings share one device stream, but start and
        # stop a few frames apart)
        if path == mp4:  # decoded by PyAV on the board, encoded again
            assert all(Image.open(io.BytesIO(jpeg)).size == (320, 240) for _, jpeg in got[:5])
        else:
            mine = sum(1 for _, jpeg in got if jpeg in recorded)
            assert mine == len(got) if path == folder else mine >= 0.8 * len(got), path
            assert len(set(jpeg for _, jpeg in got)) >= 0.8 * j1["frames"]
        span = got[-1][0]["captured_at"] - got[0][0]["captured_at"]
        rate = (len(got) - 1) / span
        seqs = [h["seq"] for h, _ in got]
        assert abs(rate - FPS) < 0.25 * FPS, (path, rate, seqs)  # at its recorded rate (a loaded machine lags)
        await api("DELETE", "devices/%s" % did2)


PY38 = "/root/.pyenv/versions/3.8.18/bin/python"


def test_replay_errors_are_clear(tmp_path):
    import subprocess
    import sys

    from jupyter_remote_device.agent.camera import CameraError, CameraHub
    with pytest.raises(CameraError, match="no recording at"):
        CameraHub("file:" + str(tmp_path / "nope.avi"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="no JPEG frames"):
        CameraHub("file:" + str(tmp_path / "empty"))
    (tmp_path / "junk.avi").write_bytes(b"RIFF\x10\x00\x00\x00AVI junkjunk")
    with pytest.raises(CameraError, match="no video frames"):
        CameraHub("file:" + str(tmp_path / "junk.avi"))
    # an mp4 on a board without PyAV (the Python 3.8 here has none): says what to do
    clip = str(tmp_path / "clip.mp4")
    with av.open(clip, "w") as c:
        st = c.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_image(Image.new("RGB", (64, 48), (i * 80, 0, 0)))
            for p in st.encode(f.reformat(format="yuv420p")):
                c.mux(p)
        for p in st.encode():
            c.mux(p)
    python = PY38 if os.path.exists(PY38) else None
    if python is None:
        pytest.skip("no Python without PyAV here")
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from jupyter_remote_device.agent.camera import CameraHub\n"
            "try:\n    CameraHub('file:%s')\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
            % (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), clip))
    r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    assert "CameraError" in r.stdout and "pip install av" in r.stdout, r.stdout + r.stderr
    # with PyAV it plays
    hub = CameraHub("file:" + clip)
    assert hub.backend == "file" and json.loads(json.dumps(hub.list()))[0]["modes"] == [[64, 48]]
    assert sys.version_info >= (3, 8)


def test_writers_skip_hostile_frames(tmp_path):
    """Bytes from the board are hostile: what is not a JPEG never reaches a file, the rest does."""
    from jupyter_remote_device.server.record_writers import BadFrame, make_writer

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "JPEG")
    good = buf.getvalue()
    for fmt, name in (("mp4", "a.mp4"), ("webm", "a.webm"), ("mjpeg", "a.avi"), ("frames", "f")):
        w = make_writer(fmt, str(tmp_path / name))
        w.open(64, 48, 10.0)
        for bad in (b"", b"GIF89a....", b"\xff\xd8\xff\xe0garbage-not-a-jpeg"):
            with pytest.raises(BadFrame):
                w.write(bad, 1.0, 1) if fmt == "frames" else w.write(bad, 1.0)
        for i in range(5):
            w.write(good, 1.0 + i / 10.0, i) if fmt == "frames" else w.write(good, 1.0 + i / 10.0)
        w.close()
        if fmt == "frames":
            assert sorted(os.listdir(str(tmp_path / name))) == ["000001.jpg", "000002.jpg", "000003.jpg",
                                                                "000004.jpg", "000005.jpg", "frames.csv"]
        else:
            codec, _, frames, span = _decode(str(tmp_path / name))
            assert frames == 5 and abs(span - 0.4) < 0.05, (fmt, frames, span)
