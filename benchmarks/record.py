"""Recording benchmark: ``python -m benchmarks.record`` prints one JSON object.

How fast each recording format writes the board's JPEG frames on this machine, in
one run so the ratios compare like with like: the synthetic camera's frames
(captured once from a real agent's ``CameraHub``, 640x480 Q80 by default) are fed
to the writers of ``server/record_writers.py`` (what a recording's worker thread
runs): ``mp4`` (decode JPEG + libx264), ``webm`` (decode + libvpx VP8), ``mjpeg``
(AVI, the JPEGs as they are, decoded once to check them) and ``frames`` (files +
CSV).  For each: frames per second of wall time and of CPU time (one core), CPU
milliseconds per frame, and the file size per frame.  A writer faster than the
source's rate (``realtime_x`` > 1 at 30 fps) keeps up; the rest of a core is left.

Bounded: a fixed number of frames; temp files are removed at the end.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from jupyter_remote_device.agent.camera import CameraHub, parse_frame
from jupyter_remote_device.server.record_writers import FORMATS, make_writer


def capture(n, width, height, quality):
    os.environ.setdefault("JRD_CAMERA_FPS", "0")  # on demand: as fast as we take them
    hub = CameraHub("synthetic")
    sid = hub.open_stream("0", width, height, quality, 0)
    frames = []
    try:
        while len(frames) < n:
            data = hub.next_frame(sid, -1, 5.0)
            if data:
                frames.append(parse_frame(data)[1])
    finally:
        hub.close_stream(sid)
    return frames


def run(fmt, frames, fps, folder):
    path = os.path.join(folder, "bench-" + fmt)
    w = make_writer(fmt, path)
    t0, c0 = time.perf_counter(), time.process_time()
    w.open(*_size(frames[0]), fps)
    for i, jpeg in enumerate(frames):
        if fmt == "frames":
            w.write(jpeg, 1000.0 + i / fps, i)
        else:
            w.write(jpeg, 1000.0 + i / fps)
    w.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    size = w.size_on_disk()
    return {"frames": len(frames), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "fps_wall": round(len(frames) / wall, 1), "fps_cpu": round(len(frames) / cpu, 1) if cpu else None,
            "cpu_ms_per_frame": round(1000 * cpu / len(frames), 2),
            "bytes_per_frame": int(size / len(frames)), "realtime_x": round(len(frames) / wall / fps, 2)}


def _size(jpeg):
    import io

    from PIL import Image
    return Image.open(io.BytesIO(jpeg)).size


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--quality", type=int, default=80)
    p.add_argument("--fps", type=float, default=30.0, help="the source rate the timestamps say")
    a = p.parse_args(argv)
    frames = capture(max(2, min(a.frames, 2000)), a.width, a.height, a.quality)
    folder = tempfile.mkdtemp(prefix="jrd-bench-record-")
    try:
        out = {"size": [a.width, a.height], "quality": a.quality, "source_fps": a.fps,
               "jpeg_bytes_per_frame": int(sum(len(f) for f in frames) / len(frames)),
               "formats": {fmt: run(fmt, frames, a.fps, folder) for fmt in FORMATS}}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = out["formats"]["frames"]["cpu_ms_per_frame"] or 1e-9
    out["cpu_ratio_vs_frames"] = {k: round(v["cpu_ms_per_frame"] / base, 1) for k, v in out["formats"].items()}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
