"""Raspberry Pi (libcamera) cameras through picamera2.

- list: ``Picamera2.global_camera_info()`` (doesn't acquire a camera).
- capture: a video configuration whose main stream is the wanted size in
  ``BGR888`` (which picamera2 lays out as R, G, B bytes: what Pillow and
  simplejpeg call RGB); ``capture_request()`` gives the array and the
  ``SensorTimestamp`` (CLOCK_MONOTONIC ns) that ``captured_at`` is derived from.
- encode: ``simplejpeg`` (a picamera2 dependency, libjpeg-turbo) when present,
  else Pillow.  The ISP scales to any size, so every requested size is a "mode".
"""
import time

from .base import COMMON_MODES, CameraError, Source, pil_resize


def probe(log=None):
    try:
        from picamera2 import Picamera2
    except Exception:  # ImportError, or libcamera bindings broken
        return []
    try:
        infos = Picamera2.global_camera_info()
    except Exception as e:
        if log:
            log.info("picamera2 backend: can't list cameras: %s", e)
        return []
    out = []
    for i, info in enumerate(infos or []):
        num = info.get("Num", i) if isinstance(info, dict) else i
        model = info.get("Model", "camera") if isinstance(info, dict) else str(info)
        out.append(Picamera2Source(str(num), "%s (libcamera %s)" % (model, num), log=log))
    return out


class Picamera2Source(Source):
    backend = "picamera2"

    def __init__(self, camera_id, name, log=None):
        Source.__init__(self, camera_id, name, COMMON_MODES, log)
        self._cam = None

    def describe(self):
        d = Source.describe(self)
        d["any_size"] = True
        return d

    def nearest_mode(self, width, height):
        # the ISP scales to any size; keep it even and sane
        w = max(32, min(int(width), 4056)) // 2 * 2
        h = max(32, min(int(height), 3040)) // 2 * 2
        return w, h

    def _configure(self, width, height):
        cam = self._cam
        config = cam.create_video_configuration(main={"size": (int(width), int(height)), "format": "BGR888"},
                                                buffer_count=4)
        cam.configure(config)
        self.size = (int(width), int(height))

    def open(self, width, height):
        from picamera2 import Picamera2
        try:
            self._cam = Picamera2(int(self.id))
        except Exception as e:
            self._cam = None
            raise CameraError("can't open libcamera camera %s: %s" % (self.id, e))
        try:
            self._configure(width, height)
            self._cam.start()
        except Exception:
            self.close()
            raise

    def reconfigure(self, width, height):
        if self._cam is None:
            return self.open(width, height)
        self._cam.stop()
        self._configure(width, height)
        self._cam.start()

    def capture(self):
        if self._cam is None:
            raise CameraError("camera %s is not open" % self.id)
        request = self._cam.capture_request()
        try:
            arr = request.make_array("main")
            try:
                ts = request.get_metadata().get("SensorTimestamp")
            except Exception:
                ts = None
        finally:
            request.release()
        now_wall, now_mono = time.time(), time.monotonic()
        captured_at = now_wall
        if ts:
            age = now_mono - ts / 1e9
            if 0 <= age < 5:  # same clock (CLOCK_MONOTONIC): use the sensor's own time
                captured_at = now_wall - age
        h, w = arr.shape[:2]
        return arr, captured_at, int(w), int(h)

    def close(self):
        cam, self._cam = self._cam, None
        if cam is not None:
            try:
                cam.stop()
            except Exception:
                pass
            try:
                cam.close()
            except Exception:
                pass
        self.size = None

    def encode(self, frame, width, height, quality):
        h, w = frame.shape[:2]
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = frame[:, :, :3]
        try:
            import simplejpeg
        except ImportError:
            simplejpeg = None
        if simplejpeg is not None and (w, h) == (width, height):
            import numpy
            return simplejpeg.encode_jpeg(numpy.ascontiguousarray(frame), quality=int(quality),
                                          colorspace="RGB", colorsubsampling="420")
        import io

        from PIL import Image
        img = Image.fromarray(frame, "RGB")
        if (w, h) != (width, height):
            img = pil_resize(img, width, height)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(quality))
        return buf.getvalue()
