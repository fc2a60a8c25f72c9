"""File writers for camera recordings: mp4 (H.264), webm (VP8), mjpeg (AVI) and a frames folder.

Each writer takes the board's JPEG frames with their ``captured_at`` (device epoch
seconds) and keeps those timestamps: the video's presentation times are the
frames' own capture times relative to the first frame, so a recording plays at
the rate the source delivered, gaps included.  Encoding and containers are
PyAV's (the ffmpeg libraries its wheel ships); nothing here encodes by hand.

All methods are BLOCKING and run in the recording's worker thread, never on the
Tornado loop.  Bytes from the board are hostile: a frame that does not decode as
a JPEG is skipped (``BadFrame``), sizes are checked, timestamps are clamped.
"""
import csv
import io
import os
from fractions import Fraction

FORMATS = ("mp4", "webm", "mjpeg", "frames")
EXTENSIONS = {"mp4": (".mp4", ".m4v"), "webm": (".webm",), "mjpeg": (".avi", ".mjpeg", ".mjpg"), "frames": ("",)}
DEFAULT_EXT = {"mp4": ".mp4", "webm": ".webm", "mjpeg": ".avi", "frames": ""}
MAX_SIDE = 8192
MS = Fraction(1, 1000)


class BadFrame(ValueError):
    """A frame that can't go into the file (not a JPEG, absurd size); the recording goes on."""


def format_for_path(path):
    """The format a file name implies (None when it implies none)."""
    low = path.lower()
    for fmt, exts in EXTENSIONS.items():
        for ext in exts:
            if ext and low.endswith(ext):
                return fmt
    return None


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - a dependency of this package
        raise RuntimeError("recording needs PyAV (pip install av)")
    return av


class _Writer(object):
    """Common bookkeeping: first timestamp, monotonic presentation times, bytes written."""

    def __init__(self, path):
        self.path = path
        self.t0 = None
        self.last_pts = None
        self.bytes = 0
        self.frames = 0
        self.width = None
        self.height = None

    def _pts(self, captured_at, units_per_s):
        if self.t0 is None:
            self.t0 = captured_at
        pts = int(round((captured_at - self.t0) * units_per_s))
        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # equal or backwards clocks: keep the order
        self.last_pts = pts
        return pts

    def size_on_disk(self):
        return self.bytes


class _Decoder(object):
    """JPEG bytes -> av.VideoFrame (validates what the board sent)."""

    def __init__(self):
        av = _av()
        self._ctx = av.CodecContext.create("mjpeg", "r")
        self._av = av

    def decode(self, jpeg):
        if not jpeg[:2] == b"\xff\xd8":
            raise BadFrame("not a JPEG")
        try:
            frames = self._ctx.decode(self._av.Packet(jpeg))
        except Exception as e:  # av.error.* for broken data
            raise BadFrame("JPEG does not decode: %s" % e)
        if not frames:
            raise BadFrame("JPEG gave no picture")
        f = frames[-1]
        if not (0 < f.width <= MAX_SIDE and 0 < f.height <= MAX_SIDE):
            raise BadFrame("absurd frame size %dx%d" % (f.width, f.height))
        return f


class VideoWriter(_Writer):
    """mp4 (libx264, yuv420p, +faststart) or webm (libvpx VP8), variable frame rate in ms."""

    CODECS = {
        "mp4": ("mp4", "libx264", {"preset": "veryfast", "crf": "23"}, {"movflags": "+faststart"}),
        "webm": ("webm", "libvpx", {"deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "2M"}, {}),
    }
    # libvpx's own threads spin against each other on a busy machine (benchmarks/record.py:
    # 6 ms a 640x480 frame with one, up to 10x that with more); x264 threads well
    THREADS = {"mp4": 0, "webm": 1}

    def __init__(self, path, fmt):
        _Writer.__init__(self, path)
        self.fmt = fmt
        self._container = None
        self._stream = None
        self._decoder = _Decoder()

    def open(self, width, height, fps):
        av = _av()
        container_fmt, codec, opts, copts = self.CODECS[self.fmt]
        # 4:2:0 needs even sides
        self.width, self.height = max(2, width - width % 2), max(2, height - height % 2)
        self._container = av.open(self.path, "w", format=container_fmt, options=copts)
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        st = self._container.add_stream(codec, rate=rate, options=opts)
        st.width, st.height, st.pix_fmt = self.width, self.height, "yuv420p"
        st.codec_context.time_base = MS
        st.codec_context.thread_count = self.THREADS[self.fmt]
        st.time_base = MS
        self._stream = st

    def write(self, jpeg, captured_at):
        frame = self._decoder.decode(jpeg)
        frame = frame.reformat(self.width, self.height, "yuv420p")
        frame.pts = self._pts(captured_at, 1000)
        frame.time_base = MS
        for pkt in self._stream.encode(frame):
            self.bytes += pkt.size
            self._container.mux(pkt)
        self.frames += 1

    def close(self):
        c, self._container = self._container, None
        if c is None:
            return
        try:
            for pkt in self._stream.encode():
                self.bytes += pkt.size
                c.mux(pkt)
        finally:
            c.close()  # writes the index (and, for mp4, moves it to the front)
        try:
            self.bytes = os.path.getsize(self.path)
        except OSError:
            pass


class MjpegWriter(_Writer):
    """Motion JPEG in AVI (what OpenMV's .mjpeg files are): the board's JPEGs, not re-encoded.

    AVI has a constant frame duration: the time base is one source frame, and a gap
    in the capture times becomes empty (repeat) chunks, so timing is kept."""

    def __init__(self, path):
        _Writer.__init__(self, path)
        self._container = None
        self._stream = None
        self._decoder = _Decoder()
        self._encoder = None
        self._rate = 30

    def open(self, width, height, fps):
        av = _av()
        self.width, self.height = width, height
        self._rate = max(1, min(240, int(round(fps)) if fps > 0 else 30))
        self._container = av.open(self.path, "w", format="avi")
        st = self._container.add_stream("mjpeg", rate=self._rate)
        st.width, st.height, st.pix_fmt = width, height, "yuvj420p"
        st.time_base = Fraction(1, self._rate)
        self._stream = st

    def write(self, jpeg, captured_at):
        av = _av()
        frame = self._decoder.decode(jpeg)  # checks it is a JPEG we can play back
        data = jpeg
        if (frame.width, frame.height) != (self.width, self.height):
            data = self._reencode(frame)
        pkt = av.Packet(data)
        pkt.stream = self._stream
        pkt.pts = pkt.dts = self._pts(captured_at, self._rate)
        pkt.time_base = self._stream.time_base
        self._container.mux(pkt)
        self.bytes += len(data)
        self.frames += 1

    def _reencode(self, frame):
        av = _av()
        if self._encoder is None:
            enc = av.CodecContext.create("mjpeg", "w")
            enc.width, enc.height, enc.pix_fmt = self.width, self.height, "yuvj420p"
            enc.time_base = Fraction(1, self._rate)
            self._encoder = enc
        f = frame.reformat(self.width, self.height, "yuvj420p")
        f.pts = None
        out = b"".join(bytes(p) for p in self._encoder.encode(f))
        if not out:
            raise BadFrame("could not re-encode a frame of another size")
        return out

    def close(self):
        c, self._container = self._container, None
        if c is not None:
            c.close()
        try:
            self.bytes = os.path.getsize(self.path)
        except OSError:
            pass


class FramesWriter(_Writer):
    """A folder of the board's JPEGs (as they arrived) plus frames.csv (seq,captured_at,file)."""

    def __init__(self, path):
        _Writer.__init__(self, path)
        self._csv = None
        self._csv_file = None

    def open(self, width, height, fps):
        self.width, self.height = width, height
        os.makedirs(self.path, exist_ok=True)
        self._csv_file = io.open(os.path.join(self.path, "frames.csv"), "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(["seq", "captured_at", "file"])

    def write(self, jpeg, captured_at, seq=None):
        if not (jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"):
            raise BadFrame("not a JPEG")
        self._pts(captured_at, 1000)
        name = "%06d.jpg" % (self.frames + 1)
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(jpeg)
        self._csv.writerow([int(seq) if seq is not None else self.frames + 1, "%.6f" % captured_at, name])
        self._csv_file.flush()
        self.bytes += len(jpeg)
        self.frames += 1

    def close(self):
        f, self._csv_file = self._csv_file, None
        if f is not None:
            f.close()


def make_writer(fmt, path):
    if fmt in ("mp4", "webm"):
        return VideoWriter(path, fmt)
    if fmt == "mjpeg":
        return MjpegWriter(path)
    if fmt == "frames":
        return FramesWriter(path)
    raise ValueError("unknown format %r" % fmt)
