"""A synthetic camera (Pillow): a moving test pattern of any size.

Every frame shows its frame number and capture time over a textured, noisy
background that scrolls, so JPEG sizes and encode cost resemble a real sensor
(about 50-65 KB at 640x480 quality 80).  The background and its noise are
precomputed (a few noisy tiles a little larger than the frame) and each frame is a
crop at a moving offset plus a few cheap overlays, so making a frame costs a
fraction of encoding it.

Source rate: ``fps`` (default 30; the ``JRD_CAMERA_FPS`` environment variable
overrides it; ``0`` makes frames on demand, as fast as streams take them).
``JRD_CAMERA_COUNT`` (default 1) makes more than one synthetic camera.
"""
import math
import os
import random
import time

from .base import COMMON_MODES, CameraError, Source, pil_encode

MODES = ((160, 120),) + tuple(COMMON_MODES)
_TILES = 4


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401
    except ImportError:
        raise CameraError("the synthetic camera needs Pillow (pip install Pillow)")
    return Image, ImageDraw, ImageFont


def probe(log=None, fps=None):
    # find Pillow without importing it: an idle agent stays small until a stream opens
    try:
        import importlib.util
        if importlib.util.find_spec("PIL") is None:
            return []
    except (ImportError, ValueError):
        return []
    if fps is None:
        try:
            fps = float(os.environ.get("JRD_CAMERA_FPS", "30"))
        except ValueError:
            fps = 30.0
    try:
        count = max(1, min(8, int(os.environ.get("JRD_CAMERA_COUNT", "1"))))
    except ValueError:
        count = 1
    return [SyntheticSource(str(i), fps=fps, log=log) for i in range(count)]


class SyntheticSource(Source):
    backend = "synthetic"

    def __init__(self, camera_id="0", fps=30.0, log=None):
        name = "Synthetic test pattern %s (%s)" % (camera_id, ("%g fps" % fps) if fps > 0 else "on demand")
        Source.__init__(self, camera_id, name, MODES, log)
        self.fps = float(fps)
        self.on_demand = self.fps <= 0
        self._tiles = None
        self._margin = 0
        self._n = 0
        self._next = 0.0
        self._glyphs = {}
        self._sprite = None
        self._rng = random.Random(int(camera_id) if str(camera_id).isdigit() else 7)

    def describe(self):
        d = Source.describe(self)
        d["any_size"] = True
        d["source_fps"] = self.fps if self.fps > 0 else None
        return d

    def nearest_mode(self, width, height):
        # a test pattern has every size up to 1920x1080 (its precomputed noise tiles
        # cost about 4 x 3 bytes per pixel of memory)
        return max(16, min(int(width), 1920)), max(16, min(int(height), 1080))

    # -- capture ------------------------------------------------------------
    def open(self, width, height):
        Image, ImageDraw, ImageFont = _pil()
        self._ImageDraw = ImageDraw
        w, h = int(width), int(height)
        m = max(8, min(w, h) // 8)
        bw, bh = w + m, h + m
        rnd = self._rng
        # smooth colour field + mid-frequency grey texture + grid lines
        sw, sh = max(2, bw // 48 + 2), max(2, bh // 48 + 2)
        smooth = Image.frombytes("RGB", (sw, sh), bytes(rnd.getrandbits(8) for _ in range(sw * sh * 3)))
        smooth = smooth.resize((bw, bh), Image.BICUBIC)
        tw, th = max(2, bw // 16), max(2, bh // 16)
        tex = Image.frombytes("L", (tw, th), bytes(rnd.getrandbits(8) for _ in range(tw * th)))
        tex = tex.resize((bw, bh), Image.BILINEAR).convert("RGB")
        bg = Image.blend(smooth, tex, 0.25)
        draw = ImageDraw.Draw(bg)
        step = max(8, min(w, h) // 10)
        for x in range(0, bw, step):
            draw.line((x, 0, x, bh), fill=(220, 220, 220))
        for y in range(0, bh, step):
            draw.line((0, y, bw, y), fill=(220, 220, 220))
        from PIL import ImageChops
        tiles = []
        for _ in range(_TILES):  # sensor-like noise, a different field per tile
            noise = Image.effect_noise((bw, bh), 3).convert("RGB")
            tiles.append(ImageChops.add(bg, noise, 1.0, -128))
        self._tiles = tiles
        self._margin = m
        self._glyphs = {}
        self._font = self._load_font(ImageFont, max(10, h // 18))
        r = max(4, min(w, h) // 10)
        sprite = Image.new("L", (2 * r, 2 * r), 0)
        ImageDraw.Draw(sprite).ellipse((0, 0, 2 * r - 1, 2 * r - 1), fill=255)
        self._sprite = sprite
        self.size = (w, h)
        self._next = time.time()

    @staticmethod
    def _load_font(ImageFont, size):
        try:
            return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
        except Exception:
            return ImageFont.load_default()

    def _glyph(self, ch):
        g = self._glyphs.get(ch)
        if g is None:
            from PIL import Image, ImageDraw
            font = self._font
            try:
                box = font.getbbox(ch)
                gw, gh = max(1, box[2]), max(1, box[3])
            except Exception:
                gw, gh = font.getsize(ch)
            mask = Image.new("L", (gw + 1, gh + 1), 0)
            ImageDraw.Draw(mask).text((0, 0), ch, fill=255, font=font)
            try:
                adv = int(round(font.getlength(ch)))
            except Exception:
                adv = gw
            g = (mask, max(adv, 1))
            self._glyphs[ch] = g
        return g

    def _text(self, img, x, y, s, fill):
        """Opaque glyph stamps (colour on black) pasted side by side: one cheap copy per
        character, on the black box drawn under the text."""
        for ch in s:
            key = (ch, fill)
            stamp = self._glyphs.get(key)
            if stamp is None:
                from PIL import Image
                mask, adv = self._glyph(ch)
                stamp = Image.new("RGB", (adv, mask.size[1]), (0, 0, 0))
                stamp.paste(fill, (0, 0, min(adv, mask.size[0]), mask.size[1]),
                            mask.crop((0, 0, min(adv, mask.size[0]), mask.size[1])))
                self._glyphs[key] = stamp
            img.paste(stamp, (x, y))
            x += stamp.size[0]
        return x

    def capture(self):
        if self._tiles is None:
            raise CameraError("synthetic camera is not open")
        if self.fps > 0:  # the sensor clock
            period = 1.0 / self.fps
            t = time.time()
            if self._next > t:
                time.sleep(self._next - t)
            elif t - self._next > period:
                self._next = t  # fell behind: restart the schedule from now
            self._next += period
        ImageDraw = self._ImageDraw
        n = self._n
        self._n += 1
        w, h = self.size
        m = self._margin
        tile = self._tiles[n % _TILES]
        # scroll on a slow Lissajous path, plus a little shake
        ox = int((math.sin(n * 0.031) + 1.0) * 0.5 * (m - 2)) + (n % 2)
        oy = int((math.cos(n * 0.023) + 1.0) * 0.5 * (m - 2)) + ((n // 2) % 2)
        img = tile.crop((ox, oy, ox + w, oy + h))
        draw = ImageDraw.Draw(img)
        # a bar sweeping across and a ball bouncing
        bx = int((n * max(2, w // 90)) % (w + w // 8)) - w // 8
        draw.rectangle((bx, h // 5, bx + w // 8, h // 5 + h // 7), fill=(230, 40, 40))
        r = self._sprite.size[0] // 2
        cx = int((math.sin(n * 0.07) + 1.0) * 0.5 * (w - 2 * r))
        cy = int(abs(math.sin(n * 0.11)) * (h - 2 * r - h // 3)) + h // 3
        draw.bitmap((cx, cy), self._sprite, fill=(30, 110, 255))
        stamp = time.time()
        lt = time.localtime(stamp)
        line1 = "#%d" % n
        line2 = "%02d:%02d:%02d.%03d" % (lt.tm_hour, lt.tm_min, lt.tm_sec, int((stamp % 1) * 1000))
        fh = self._glyph("0")[0].size[1]
        pad = max(2, fh // 5)
        tw = (len(line2) + 1) * self._glyph("0")[1]
        draw.rectangle((0, 0, tw + 2 * pad, 2 * fh + 3 * pad), fill=(0, 0, 0))
        self._text(img, pad, pad, line1, (255, 255, 255))
        self._text(img, pad, 2 * pad + fh, line2, (255, 255, 0))
        return img, time.time(), w, h

    def close(self):
        self._tiles = None
        self._glyphs = {}
        self._sprite = None
        self.size = None

    def encode(self, frame, width, height, quality):
        return pil_encode(frame, width, height, quality)
