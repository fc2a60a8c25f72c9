"""What every camera backend provides, and the helpers they share.

A backend module exposes ``probe(log=None) -> [Source, ...]``: the cameras it can
see, found cheaply (no capture starts, no sensor is held), and ``[]`` when its
library or hardware is absent.  Heavy imports happen inside ``probe``/``Source``
methods, never at module import, so ``auto`` can try every backend cleanly.

The hub drives a ``Source`` from one capture thread (``open``, ``capture``,
``close``) and encodes from the threads that serve streams (``encode``); a
backend need not be thread-safe beyond that split.

Python 3.8 syntax, standard library only at import time.
"""
import io
import json
import os
import struct
import threading
import time

# The modes most sensors and UVC cameras offer; used when a backend can't ask.
COMMON_MODES = ((320, 240), (640, 480), (800, 600), (1280, 720), (1920, 1080))


class CameraError(ValueError):
    """A camera request that can't be served; the message is for a person."""


def nearest_mode(modes, width, height):
    """The mode closest to the request: same aspect first, then size (log area)."""
    if not modes:
        return int(width), int(height)
    best = None
    want_aspect = float(width) / float(height)
    want_area = float(width) * float(height)
    for (w, h) in modes:
        aspect_cost = abs((float(w) / float(h)) / want_aspect - 1.0)
        ratio = (float(w) * float(h)) / want_area
        area_cost = ratio if ratio >= 1.0 else 1.0 / ratio
        # an exact match wins; otherwise prefer the right shape, then the size
        cost = (0 if (w, h) == (width, height) else 1, round(aspect_cost, 2), area_cost)
        if best is None or cost < best[0]:
            best = (cost, (int(w), int(h)))
    return best[1]


def frame_bytes(seq, captured_at, width, height, jpeg):
    """One DESIGN.md camera frame: 4-byte BE header length, JSON header, JPEG."""
    header = json.dumps({"seq": seq, "captured_at": captured_at, "width": width,
                         "height": height, "format": "jpeg"}, separators=(",", ":")).encode("utf-8")
    return struct.pack(">I", len(header)) + header + jpeg


def parse_frame(data):
    """Inverse of ``frame_bytes``: (header dict, jpeg bytes). Used by tests and tools."""
    if len(data) < 4:
        raise ValueError("short frame")
    (n,) = struct.unpack(">I", data[:4])
    header = json.loads(data[4:4 + n].decode("utf-8"))
    return header, data[4 + n:]


_scratch = threading.local()


def _scratch_file():
    """A per-thread in-memory file with a real descriptor (Linux memfd), or None.

    Pillow encodes into a file descriptor with ``encode_to_file``, which runs the
    whole JPEG encode with the GIL released; into a BytesIO it holds the GIL.  With a
    descriptor, encodes of different settings run on different cores, and the
    capture thread and the rpyc threads keep running while a frame is encoded."""
    f = getattr(_scratch, "f", False)
    if f is False:
        f = None
        if hasattr(os, "memfd_create"):
            try:
                f = os.fdopen(os.memfd_create("jrd-jpeg", getattr(os, "MFD_CLOEXEC", 1)), "w+b", buffering=0)
            except (OSError, ValueError):
                f = None
        _scratch.f = f
    return f


def pil_encode(image, width, height, quality):
    """JPEG-encode a PIL image at (width, height) and quality with Pillow."""
    if image.size != (width, height):
        image = pil_resize(image, width, height)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    f = _scratch_file()
    if f is not None:
        try:
            f.seek(0)
            image.save(f, "JPEG", quality=int(quality))
            n = f.tell()
            return os.pread(f.fileno(), n, 0)
        except (OSError, AttributeError, io.UnsupportedOperation):
            _scratch.f = None  # fall back to memory for this thread
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def pil_resize(image, width, height):
    from PIL import Image
    w, h = image.size
    if (w % width == 0 and h % height == 0 and w // width == h // height and w != width
            and hasattr(image, "reduce")):
        return image.reduce(w // width)  # exact integer factor: the cheap path (Pillow >= 7)
    resample = getattr(Image, "Resampling", Image).BILINEAR
    return image.resize((width, height), resample)


class Source(object):
    """One camera. Subclasses override open/capture/encode/close."""

    backend = "?"
    #: True when the source can make a frame whenever asked (no sensor clock):
    #: the hub then captures only while a stream waits for a frame.
    on_demand = False

    def __init__(self, camera_id, name, modes=COMMON_MODES, log=None):
        self.id = str(camera_id)
        self.name = name
        self.modes = [tuple(int(v) for v in m) for m in modes]
        self.log = log
        self.size = None  # (w, h) while open

    def describe(self):
        return {"id": self.id, "backend": self.backend, "name": self.name,
                "modes": [[w, h] for (w, h) in self.modes]}

    def nearest_mode(self, width, height):
        return nearest_mode(self.modes, width, height)

    # -- capture side (capture thread) -------------------------------------
    def open(self, width, height):
        """Start the sensor at (width, height) (a mode from ``self.modes``)."""
        raise NotImplementedError

    def reconfigure(self, width, height):
        """Switch a running sensor to another mode; default: close and reopen."""
        self.close()
        self.open(width, height)

    def capture(self):
        """Block until the next frame; return (frame, captured_at, width, height).

        ``captured_at`` is the device's epoch time when the frame left the sensor.
        ``frame`` is whatever ``encode`` understands."""
        raise NotImplementedError

    def close(self):
        """Release the sensor. Idempotent."""
        self.size = None

    # -- encode side (stream threads) --------------------------------------
    def encode(self, frame, width, height, quality):
        """JPEG bytes of ``frame`` scaled to (width, height) at ``quality``."""
        return pil_encode(frame, width, height, quality)


def now():
    return time.time()
