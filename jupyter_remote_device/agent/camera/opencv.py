"""V4L2 cameras (``/dev/video*``) through OpenCV: ``cv2.VideoCapture`` + ``cv2.imencode``.

Listing is cheap and doesn't need OpenCV: the video nodes are found in /dev, their
names in /sys/class/video4linux, and their frame sizes with the V4L2
``VIDIOC_ENUM_FMT``/``VIDIOC_ENUM_FRAMESIZES`` ioctls (opening a node this way
doesn't start capture).  Metadata-only nodes (UVC cameras expose two) are skipped.
OpenCV is imported only when a camera is opened, and only when /dev/video* exists.
"""
import glob
import os
import re
import struct
import time

from .base import COMMON_MODES, CameraError, Source


# ioctl numbers: _IOC(dir, 'V', nr, size) with dir READ|WRITE = 3, READ = 2
def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (ord("V") << 8) | nr


_CAP_FMT = "16s32s32sIII3I"        # struct v4l2_capability, 104 bytes
_FMTDESC_FMT = "III32sII3I"          # struct v4l2_fmtdesc, 64 bytes
_FRMSIZE_FMT = "III6I2I"             # struct v4l2_frmsizeenum, 44 bytes
VIDIOC_QUERYCAP = _ioc(2, 0, struct.calcsize(_CAP_FMT))
VIDIOC_ENUM_FMT = _ioc(3, 2, struct.calcsize(_FMTDESC_FMT))
VIDIOC_ENUM_FRAMESIZES = _ioc(3, 74, struct.calcsize(_FRMSIZE_FMT))
V4L2_CAP_VIDEO_CAPTURE = 0x00000001
V4L2_CAP_DEVICE_CAPS = 0x80000000
V4L2_BUF_TYPE_VIDEO_CAPTURE = 1
V4L2_FRMSIZE_TYPE_DISCRETE = 1


def _nodes():
    out = []
    for path in glob.glob("/dev/video*"):
        m = re.match(r"^/dev/video(\d+)$", path)
        if m:
            out.append((int(m.group(1)), path))
    return sorted(out)


def _v4l2_info(path):
    """(is_capture, card name, [(w, h), ...]) from ioctls; raises OSError when unreadable."""
    import fcntl
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        buf = bytearray(struct.calcsize(_CAP_FMT))
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buf, True)
        driver, card, bus, version, caps, device_caps = struct.unpack(_CAP_FMT, bytes(buf))[:6]
        effective = device_caps if caps & V4L2_CAP_DEVICE_CAPS else caps
        is_capture = bool(effective & V4L2_CAP_VIDEO_CAPTURE)
        name = card.split(b"\0", 1)[0].decode("utf-8", "replace")
        sizes = set()
        if is_capture:
            for i in range(32):  # pixel formats
                fbuf = bytearray(struct.pack(_FMTDESC_FMT, i, V4L2_BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0, 0, 0, 0))
                try:
                    fcntl.ioctl(fd, VIDIOC_ENUM_FMT, fbuf, True)
                except OSError:
                    break
                pixfmt = struct.unpack(_FMTDESC_FMT, bytes(fbuf))[4]
                for j in range(64):  # frame sizes of that format
                    sbuf = bytearray(struct.pack(_FRMSIZE_FMT, j, pixfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0))
                    try:
                        fcntl.ioctl(fd, VIDIOC_ENUM_FRAMESIZES, sbuf, True)
                    except OSError:
                        break
                    vals = struct.unpack(_FRMSIZE_FMT, bytes(sbuf))
                    if vals[2] == V4L2_FRMSIZE_TYPE_DISCRETE:
                        sizes.add((vals[3], vals[4]))
                    else:  # stepwise / continuous: offer the common modes inside the range
                        min_w, max_w, _sw, min_h, max_h = vals[3], vals[4], vals[5], vals[6], vals[7]
                        for (w, h) in COMMON_MODES:
                            if min_w <= w <= max_w and min_h <= h <= max_h:
                                sizes.add((w, h))
                        break
        return is_capture, name, sorted(sizes, key=lambda s: (s[0] * s[1], s))
    finally:
        os.close(fd)


def _sys_name(index):
    try:
        with open("/sys/class/video4linux/video%d/name" % index) as f:
            return f.read().strip()
    except OSError:
        return None


def probe(log=None):
    nodes = _nodes()
    if not nodes:
        return []
    try:  # cv2 is big: find it now, import it when a stream opens
        import importlib.util
        found = importlib.util.find_spec("cv2") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        if log:
            log.info("opencv backend: /dev/video* present but cv2 is not installed")
        return []
    out = []
    for index, path in nodes:
        name = _sys_name(index) or path
        modes = list(COMMON_MODES[:4])
        try:
            is_capture, card, sizes = _v4l2_info(path)
            if not is_capture:
                continue  # metadata or output node
            name = card or name
            if sizes:
                modes = sizes
        except OSError as e:
            if log:
                log.info("opencv backend: can't query %s (%s); assuming common modes", path, e)
        out.append(OpenCVSource(str(index), "%s (%s)" % (name, path), modes, log=log))
    return out


class OpenCVSource(Source):
    backend = "opencv"

    def __init__(self, camera_id, name, modes, log=None):
        Source.__init__(self, camera_id, name, modes, log)
        self._cap = None

    def open(self, width, height):
        import cv2
        cap = cv2.VideoCapture(int(self.id), getattr(cv2, "CAP_V4L2", 0))
        if not cap.isOpened():
            cap.release()
            raise CameraError("can't open /dev/video%s (busy, or no permission?)" % self.id)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        try:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a queue (where supported)
        except Exception:
            pass
        self._cap = cap
        self.size = (int(width), int(height))

    def reconfigure(self, width, height):
        import cv2
        if self._cap is None:
            return self.open(width, height)
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        self.size = (int(width), int(height))

    def capture(self):
        if self._cap is None:
            raise CameraError("camera %s is not open" % self.id)
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise CameraError("/dev/video%s delivered no frame" % self.id)
        h, w = frame.shape[:2]
        return frame, time.time(), int(w), int(h)

    def close(self):
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
        self.size = None

    def encode(self, frame, width, height, quality):
        import cv2
        h, w = frame.shape[:2]
        if (w, h) != (width, height):
            frame = cv2.resize(frame, (int(width), int(height)), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
        if not ok:
            raise CameraError("cv2.imencode failed")
        return buf.tobytes()
