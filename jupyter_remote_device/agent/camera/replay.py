"""A recording played as the board's camera: ``--camera file:PATH``.

PATH is one of what the server records (server/record.py), or the like:

- a **frames folder**: JPEGs plus ``frames.csv`` (``seq,captured_at,file``), played with
  the recorded intervals; without ``frames.csv``, its ``*.jpg``/``*.jpeg`` in name order;
- an **mjpeg** file: Motion JPEG in AVI (``.avi``/``.mjpeg``/``.mjpg``, what OpenMV's
  ``mjpeg`` module and our recorder write; empty chunks hold the previous frame, so gaps
  keep their length), or a bare concatenation of JPEGs;
- an **mp4 / webm / mkv / mov** file: decoded with PyAV when it is importable on the
  board (``pip install av``), with Pillow for the JPEG encode; otherwise a clear error.

It loops at the recorded rate (a bare JPEG stream or a folder without times plays at
``JRD_CAMERA_FPS``, default 30).  JPEG sources hand their frames out as they are (no
re-encode) when a stream asks for the recording's own size, which is the only mode it
offers.  Standard library only for folders and mjpeg (Python 3.8 syntax).
"""
import csv
import io
import os
import struct
import time

from .base import CameraError, Source, pil_encode

VIDEO_EXT = (".mp4", ".m4v", ".webm", ".mkv", ".mov")
MJPEG_EXT = (".avi", ".mjpeg", ".mjpg")
MAX_FRAME = 32 << 20
MAX_GAP = 5.0


def _default_fps():
    try:
        fps = float(os.environ.get("JRD_CAMERA_FPS", "30"))
    except ValueError:
        fps = 30.0
    return fps if fps > 0 else 30.0


def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker; None when it is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return (w, h) if w and h else None
        if marker == 0xDA:
            return None
        i += 2 + length
    return None


# -- readers: .open() -> (width, height); .next() -> (frame, seconds until the next one) --------
class FolderReader(object):
    def __init__(self, path):
        self.path = path
        self.items = []  # (file, interval)
        self.i = 0

    def open(self):
        csv_path = os.path.join(self.path, "frames.csv")
        rows = []
        if os.path.isfile(csv_path):
            with io.open(csv_path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    name = os.path.basename((row.get("file") or "").strip())
                    try:
                        t = float(row.get("captured_at") or "nan")
                    except ValueError:
                        t = float("nan")
                    if name and os.path.isfile(os.path.join(self.path, name)):
                        rows.append((name, t))
        if not rows:
            names = sorted(n for n in os.listdir(self.path) if n.lower().endswith((".jpg", ".jpeg")))
            rows = [(n, float("nan")) for n in names]
        if not rows:
            raise CameraError("%s holds no JPEG frames (and no frames.csv)" % self.path)
        period = 1.0 / _default_fps()
        gaps = [b[1] - a[1] for a, b in zip(rows, rows[1:]) if b[1] - a[1] > 0]
        typical = sorted(gaps)[len(gaps) // 2] if gaps else period
        self.items = []
        for k, (name, t) in enumerate(rows):
            nxt = rows[k + 1][1] if k + 1 < len(rows) else float("nan")
            dt = nxt - t
            if not (dt > 0):  # nan, equal or backwards: the typical interval
                dt = typical
            self.items.append((name, min(dt, MAX_GAP)))
        first = self._read(self.items[0][0])
        size = jpeg_size(first)
        if size is None:
            raise CameraError("%s is not a JPEG" % os.path.join(self.path, self.items[0][0]))
        self.i = 0
        return size

    def _read(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read(MAX_FRAME)

    def next(self):
        name, dt = self.items[self.i]
        self.i = (self.i + 1) % len(self.items)
        return self._read(name), dt

    def close(self):
        pass

    def count(self):
        return len(self.items)


class AviReader(object):
    """Motion JPEG in AVI (RIFF), read with the standard library: the frame rate from the
    stream header, the frames from the 'movi' list (also OpenDML's RIFF AVIX parts)."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.frames = []  # (offset, size, ticks it lasts)
        self.period = 1.0 / 30
        self.i = 0

    def open(self):
        self.f = open(self.path, "rb")
        self.frames = []
        size = os.fstat(self.f.fileno()).st_size
        pos = 0
        rate = None
        while pos + 12 <= size:
            self.f.seek(pos)
            hdr = self.f.read(12)
            tag, length, kind = hdr[:4], struct.unpack("<I", hdr[4:8])[0], hdr[8:12]
            if tag != b"RIFF" or kind not in (b"AVI ", b"AVIX"):
                if pos == 0:
                    raise CameraError("%s is not an AVI file" % self.path)
                break
            r = self._walk(pos + 12, min(size, pos + 8 + length))
            rate = rate or r
            pos += 8 + length + (length & 1)
        if rate:
            self.period = rate
        frames = []
        for off, n in self.frames:
            if n == 0 and frames:  # an empty chunk: the previous frame lasts one tick longer
                o, s, ticks = frames[-1]
                frames[-1] = (o, s, ticks + 1)
            elif n > 0:
                frames.append((off, n, 1))
        if not frames:
            raise CameraError("%s holds no video frames" % self.path)
        self.frames = frames
        first = self._read(0)
        wh = jpeg_size(first)
        if wh is None:
            raise CameraError("%s is not Motion JPEG (its first frame is no JPEG)" % self.path)
        self.i = 0
        return wh

    def _walk(self, pos, end):
        """Collect '##dc'/'##db' chunks between pos and end; returns seconds per frame or None."""
        rate = None
        f = self.f
        while pos + 8 <= end:
            f.seek(pos)
            h = f.read(8)
            if len(h) < 8:
                break
            tag, n = h[:4], struct.unpack("<I", h[4:8])[0]
            if tag == b"LIST":
                kind = f.read(4)
                if kind in (b"hdrl", b"strl", b"movi", b"rec "):
                    r = self._walk(pos + 12, min(end, pos + 8 + n))
                    rate = r or rate  # the stream header's rate wins over the main header's
            elif tag == b"strh" and n >= 28:
                d = f.read(28)
                if d[:4] == b"vids":
                    scale, rt = struct.unpack("<II", d[20:28])
                    if scale and rt:
                        rate = float(scale) / float(rt)
            elif tag == b"avih" and n >= 4 and rate is None:
                (us,) = struct.unpack("<I", f.read(4))
                if us:
                    rate = us / 1e6
            elif tag[2:] in (b"dc", b"db") and tag[:2].isdigit():
                if n <= MAX_FRAME:
                    self.frames.append((pos + 8, n))
            pos += 8 + n + (n & 1)
        return rate

    def _read(self, k):
        off, n, _ = self.frames[k]
        self.f.seek(off)
        return self.f.read(n)

    def next(self):
        k = self.i
        self.i = (self.i + 1) % len(self.frames)
        return self._read(k), self.period * self.frames[k][2]

    def close(self):
        f, self.f = self.f, None
        if f is not None:
            f.close()

    def count(self):
        return len(self.frames)


class MjpegStreamReader(object):
    """A bare concatenation of JPEGs (what an MJPEG HTTP stream saved to a file is)."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.frames = []
        self.i = 0

    def open(self):
        self.f = open(self.path, "rb")
        starts, pos, tail = [], 0, b""
        while True:
            block = self.f.read(1 << 20)
            if not block:
                break
            buf = tail + block
            base = pos - len(tail)
            k = buf.find(b"\xff\xd8\xff")
            while k != -1:
                if not starts or base + k > starts[-1]:
                    starts.append(base + k)
                k = buf.find(b"\xff\xd8\xff", k + 3)
            tail = buf[-2:]
            pos += len(block)
        ends = starts[1:] + [pos]
        self.frames = [(s, e - s) for s, e in zip(starts, ends) if 0 < e - s <= MAX_FRAME]
        if not self.frames:
            raise CameraError("%s holds no JPEG frames" % self.path)
        wh = jpeg_size(self._read(0))
        if wh is None:
            raise CameraError("%s: its first frame is no JPEG" % self.path)
        self.i = 0
        return wh

    def _read(self, k):
        off, n = self.frames[k]
        self.f.seek(off)
        return self.f.read(n)

    def next(self):
        k = self.i
        self.i = (self.i + 1) % len(self.frames)
        return self._read(k), 1.0 / _default_fps()

    def close(self):
        f, self.f = self.f, None
        if f is not None:
            f.close()

    def count(self):
        return len(self.frames)


class VideoReader(object):
    """mp4/webm/... through PyAV (optional on the board); frames are PIL images."""

    def __init__(self, path):
        self.path = path
        self.container = None
        self.frames = None
        self.prev = None
        self.n = None

    @staticmethod
    def available():
        try:
            import importlib.util
            return importlib.util.find_spec("av") is not None and importlib.util.find_spec("PIL") is not None
        except (ImportError, ValueError):
            return False

    def _start(self):
        import av
        if self.container is not None:
            self.container.close()
        self.container = av.open(self.path)
        st = self.container.streams.video[0]
        st.thread_type = "AUTO"
        self.frames = self.container.decode(st)
        self.prev = None

    def open(self):
        if not self.available():
            raise CameraError("playing %s needs PyAV and Pillow on the board (pip install av Pillow); "
                              "or record as mjpeg or frames, which play with the standard library"
                              % os.path.basename(self.path))
        try:
            self._start()
            first = next(self.frames)
        except StopIteration:
            raise CameraError("%s holds no video frames" % self.path)
        except Exception as e:
            raise CameraError("can't read %s: %s" % (self.path, e))
        self._pending = first
        return first.width, first.height

    def _frame(self):
        if self._pending is not None:
            f, self._pending = self._pending, None
            return f
        try:
            return next(self.frames)
        except StopIteration:
            self._start()  # loop
            return next(self.frames)

    def next(self):
        f = self._frame()
        t = f.time if f.time is not None else None
        image = f.to_image()
        try:
            following = next(self.frames)
        except StopIteration:
            following = None
        self._pending = following
        dt = 1.0 / _default_fps()
        if following is not None and t is not None and following.time is not None and following.time > t:
            dt = min(following.time - t, MAX_GAP)
        if following is None:
            self._start()
            self._pending = None
        return image, dt

    def close(self):
        c, self.container = self.container, None
        if c is not None:
            c.close()

    def count(self):
        return None


def reader_for(path):
    if os.path.isdir(path):
        return FolderReader(path)
    if not os.path.isfile(path):
        raise CameraError("no recording at %s (a file or a frames folder)" % path)
    low = path.lower()
    if low.endswith(VIDEO_EXT):
        return VideoReader(path)
    with open(path, "rb") as f:
        magic = f.read(12)
    if magic[:4] == b"RIFF" and magic[8:12] == b"AVI ":
        return AviReader(path)
    if magic[:2] == b"\xff\xd8":
        return MjpegStreamReader(path)
    if low.endswith(MJPEG_EXT):
        raise CameraError("%s is neither Motion JPEG in AVI nor a JPEG stream" % path)
    return VideoReader(path)  # let PyAV try anything else


def probe(path, log=None):
    path = os.path.abspath(os.path.expanduser(path))
    reader = reader_for(path)
    size = reader.open()  # fail now, at agent start, with a message for a person
    count = reader.count()
    reader.close()
    return [ReplaySource("0", path, size, count, log=log)]


class ReplaySource(Source):
    backend = "file"

    def __init__(self, camera_id, path, size, count=None, log=None):
        Source.__init__(self, camera_id, "Recording %s" % os.path.basename(path.rstrip("/")), [size], log)
        self.path = path
        self.count = count
        self.native = tuple(size)
        self._reader = None
        self._next = 0.0
        self._dt = 0.0

    def describe(self):
        d = Source.describe(self)
        d["path"] = self.path
        d["frames"] = self.count
        return d

    def open(self, width, height):
        reader = reader_for(self.path)
        self.native = tuple(reader.open())
        self.modes = [self.native]
        self._reader = reader
        self.size = self.native
        self._next = time.time()
        self._dt = 0.0

    def capture(self):
        if self._reader is None:
            raise CameraError("the recording is not open")
        t = time.time()
        self._next += self._dt
        if self._next > t:
            time.sleep(self._next - t)
        elif t - self._next > 1.0:
            self._next = t  # fell far behind: restart the schedule from now
        frame, self._dt = self._reader.next()
        w, h = self.native
        return frame, time.time(), w, h

    def close(self):
        r, self._reader = self._reader, None
        if r is not None:
            r.close()
        self.size = None

    def encode(self, frame, width, height, quality):
        if isinstance(frame, bytes):
            if (width, height) == self.native:
                return frame  # the recording's own JPEG, untouched
            try:
                from PIL import Image
            except ImportError:
                return frame, self.native[0], self.native[1]
            frame = Image.open(io.BytesIO(frame))
        return pil_encode(frame, width, height, quality)
