"""Sipeed boards: MaixPy3 (V831/R329) and the newer MaixPy (MaixCAM).

Newer MaixPy (``maix.camera.Camera`` exists):
    ``camera.Camera(w, h)`` opens the sensor (the ISP scales to the size asked),
    ``.read()`` returns a ``maix.image.Image``; it is JPEG-encoded on the board with
    ``img.to_jpeg(quality)`` (hardware encoder; quality range (50, 100], lower
    values are raised to 51) and ``.to_bytes()``; other sizes with ``img.resize``.

MaixPy3 (module-level ``camera.config/read/capture``):
    ``camera.config((w, h))`` then ``camera.read()`` returns the frame as raw RGB888
    bytes (``camera.capture()`` would wrap the same bytes in an image object); it
    is encoded with ``_maix.rgb2jpg(rgb, w, h, 3, JCS_RGB, quality)`` (libjpeg in
    MaixPy3's C extension), falling back to Pillow when a resize is needed.
    MaixPy3's camera is one module-global object: while a stream is open, notebook
    code on the same board that calls ``camera.capture()`` shares (competes for)
    the same frames.  Without a real sensor MaixPy3 falls back to a dummy camera
    (solid red frames); that one is not offered.

Nothing is imported until ``probe`` runs; a board without ``maix`` gets ``[]``.
"""
import time

from .base import COMMON_MODES, CameraError, Source, pil_resize

JCS_RGB = 2  # libjpeg's J_COLOR_SPACE for RGB input
_MAIXPY3_REAL = ("V831VivoMaixVideo", "SpMaixVideo", "CvMaixVideo")


def probe(log=None):
    try:
        from maix import camera
    except Exception:  # ImportError, or a maix package without a camera
        return []
    if hasattr(camera, "Camera"):  # MaixPy (MaixCAM): a class per sensor
        name = "MaixPy camera"
        try:
            devices = camera.list_devices()
            if devices:
                name = "MaixPy camera (%s)" % devices[0]
        except Exception:
            pass
        return [MaixCamSource("0", name, log=log)]
    if hasattr(camera, "config") and hasattr(camera, "read"):  # MaixPy3
        impl = type(getattr(camera, "camera", None)).__name__
        if impl not in _MAIXPY3_REAL:
            if log:
                log.info("maix backend: MaixPy3 found no camera (%s)", impl)
            return []
        return [MaixPy3Source("0", "MaixPy3 camera (%s)" % impl, log=log)]
    return []


class MaixCamSource(Source):
    """Newer MaixPy: ``maix.camera.Camera`` and ``maix.image.Image``."""
    backend = "maix"

    def __init__(self, camera_id, name, log=None):
        Source.__init__(self, camera_id, name, ((320, 240), (640, 480), (1280, 720), (1920, 1080),
                                                  (2560, 1440)), log)
        self._cam = None

    def describe(self):
        d = Source.describe(self)
        d["any_size"] = True
        return d

    def nearest_mode(self, width, height):
        # the ISP scales; the hardware likes even sizes
        return max(32, min(int(width), 2560)) // 2 * 2, max(32, min(int(height), 1440)) // 2 * 2

    def open(self, width, height):
        from maix import camera
        try:
            self._cam = camera.Camera(int(width), int(height))
        except Exception as e:
            self._cam = None
            raise CameraError("can't open the MaixPy camera at %dx%d: %s" % (width, height, e))
        self.size = (int(width), int(height))

    def reconfigure(self, width, height):
        cam = self._cam
        if cam is not None and hasattr(cam, "set_resolution"):
            try:
                cam.set_resolution(int(width), int(height))
                self.size = (int(width), int(height))
                return
            except Exception:
                pass
        self.close()
        self.open(width, height)

    def capture(self):
        if self._cam is None:
            raise CameraError("camera %s is not open" % self.id)
        img = self._cam.read()
        if img is None:
            raise CameraError("the MaixPy camera delivered no frame")
        return img, time.time(), int(img.width()), int(img.height())

    def close(self):
        cam, self._cam = self._cam, None
        if cam is not None and hasattr(cam, "close"):
            try:
                cam.close()
            except Exception:
                pass
        self.size = None

    def encode(self, frame, width, height, quality):
        img = frame
        if (int(img.width()), int(img.height())) != (width, height):
            img = img.resize(int(width), int(height))
        jpg = img.to_jpeg(max(51, min(100, int(quality))))
        return bytes(jpg.to_bytes())


class MaixPy3Source(Source):
    """MaixPy3: module-level ``maix.camera`` delivering raw RGB888 bytes."""
    backend = "maix"

    def __init__(self, camera_id, name, log=None):
        Source.__init__(self, camera_id, name, ((224, 224), (240, 240)) + tuple(COMMON_MODES[:4]), log)
        self._open = False

    def open(self, width, height):
        from maix import camera
        try:
            camera.config((int(width), int(height)))
        except Exception as e:
            raise CameraError("can't configure the MaixPy3 camera at %dx%d: %s" % (width, height, e))
        self._open = True
        self.size = (int(width), int(height))

    def reconfigure(self, width, height):
        # SpMaixVideo/CvMaixVideo only apply config() to a closed camera
        self.close()
        self.open(width, height)

    def capture(self):
        from maix import camera
        if not self._open:
            raise CameraError("camera %s is not open" % self.id)
        raw = camera.read()
        if not raw:
            raise CameraError("the MaixPy3 camera delivered no frame")
        w, h = int(camera.width()), int(camera.height())
        if len(raw) != w * h * 3:
            raise CameraError("unexpected MaixPy3 frame: %d bytes for %dx%d RGB" % (len(raw), w, h))
        return (bytes(raw), w, h), time.time(), w, h

    def close(self):
        if self._open:
            self._open = False
            try:
                from maix import camera
                camera.close()
            except Exception:
                pass
        self.size = None

    def encode(self, frame, width, height, quality):
        raw, w, h = frame
        if (w, h) == (width, height):
            try:
                import _maix
                return _maix.rgb2jpg(raw, w, h, 3, JCS_RGB, int(quality))
            except ImportError:
                pass
        try:
            from PIL import Image
        except ImportError:
            Image = None
        if Image is None:
            # no Pillow to scale with: send the captured size (the header says so)
            import _maix
            return _maix.rgb2jpg(raw, w, h, 3, JCS_RGB, int(quality)), w, h
        import io
        img = Image.frombytes("RGB", (w, h), raw)
        if (w, h) != (width, height):
            img = pil_resize(img, width, height)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(quality))
        return buf.getvalue()
