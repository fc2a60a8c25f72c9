"""Images for cell output: PIL / numpy / maix images to PNG or JPEG within a size budget
(Pillow optional: a minimal PNG encoder covers raw numpy arrays), and camera stills."""
import base64
import io
import struct
import zlib

MAX_IMAGE_BYTES = 50 * 1000         # target size of an image in a display


def _pil():
    try:
        from PIL import Image  # noqa: F401
        return Image
    except Exception:
        return None


def _png_from_rgb(width, height, data, channels=3):
    """A minimal PNG encoder (no Pillow needed) for 8-bit gray/RGB/RGBA rows."""
    color = {1: 0, 3: 2, 4: 6}[channels]
    stride = width * channels
    raw = bytearray()
    for y in range(height):
        raw.append(0)
        raw += data[y * stride:(y + 1) * stride]

    def chunk(tag, payload):
        c = struct.pack(">I", len(payload)) + tag + payload
        return c + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw), 6))
            + chunk(b"IEND", b""))


def _is_pil_image(obj):
    mod = type(obj).__module__ or ""
    return mod.startswith("PIL.") and hasattr(obj, "save") and hasattr(obj, "size")


def _to_pil(obj):
    """A PIL image for obj (PIL image, image-like numpy array, maix image) or None."""
    if _is_pil_image(obj):
        return obj
    Image = _pil()
    if Image is None:
        return None
    mod = type(obj).__module__ or ""
    try:
        if mod.startswith("numpy") and hasattr(obj, "ndim") and hasattr(obj, "dtype"):
            if str(obj.dtype) == "uint8" and (obj.ndim == 2 or (obj.ndim == 3 and obj.shape[2] in (1, 3, 4))):
                if obj.ndim == 3 and obj.shape[2] == 1:
                    obj = obj[:, :, 0]
                return Image.fromarray(obj)
            return None
        if mod.startswith("maix") or mod.startswith("_maix"):
            for name in ("to_pil", "to_PIL"):
                fn = getattr(obj, name, None)
                if callable(fn):
                    return fn()
            w, h = obj.width, obj.height
            w = w() if callable(w) else w
            h = h() if callable(h) else h
            data = obj.tobytes()
            if len(data) == w * h * 3:
                return Image.frombytes("RGB", (w, h), data)
    except Exception:
        return None
    return None


def encode_image(img, prefer="auto", max_bytes=MAX_IMAGE_BYTES, quality=85):
    """Encode a PIL image: returns (mime, bytes, (width, height)).

    PNG for small or palette images when it fits in ``max_bytes``; otherwise JPEG,
    lowering quality and then the size until it fits (where possible).
    """
    w, h = img.size
    if prefer in ("auto", "png") and (prefer == "png" or w * h <= 256 * 256 or img.mode in ("1", "P")):
        buf = io.BytesIO()
        try:
            img.save(buf, format="PNG")
            if buf.tell() <= max_bytes or prefer == "png":
                return "image/png", buf.getvalue(), (w, h)
        except Exception:
            pass
    im = img
    if im.mode not in ("RGB", "L"):
        try:
            im = im.convert("RGB")
        except Exception:
            pass
    data = b""
    for scale_step in range(5):
        for q in (quality, 70, 55, 40):
            if q > quality:
                continue
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=q)
            data = buf.getvalue()
            if len(data) <= max_bytes:
                return "image/jpeg", data, (w, h)
        if scale_step == 4:
            break
        nw, nh = max(1, int(im.size[0] * 0.7)), max(1, int(im.size[1] * 0.7))
        if nw < 32 or nh < 32:
            break
        im = im.resize((nw, nh))
    return "image/jpeg", data, (w, h)


def image_bundle(obj, max_bytes=MAX_IMAGE_BYTES, prefer="auto"):
    """(data, metadata) for an image-like object, or None."""
    img = _to_pil(obj)
    if img is not None:
        mime, raw, (w, h) = encode_image(img, prefer=prefer, max_bytes=max_bytes)
        data = {mime: base64.b64encode(raw).decode("ascii"),
                "text/plain": "<%s image %dx%d>" % (getattr(img, "mode", "?"), w, h)}
        return data, {mime: {"width": w, "height": h}}
    # no Pillow: raw numpy uint8 array -> minimal PNG
    mod = type(obj).__module__ or ""
    if mod.startswith("numpy") and getattr(obj, "ndim", 0) in (2, 3) and str(getattr(obj, "dtype", "")) == "uint8":
        try:
            h, w = obj.shape[0], obj.shape[1]
            ch = 1 if obj.ndim == 2 else obj.shape[2]
            if ch in (1, 3, 4):
                raw = _png_from_rgb(w, h, obj.tobytes(), ch)
                return ({"image/png": base64.b64encode(raw).decode("ascii"),
                         "text/plain": "<image %dx%d>" % (w, h)}, {})
        except Exception:
            return None
    return None


def _hub_snapshot(hub, width, height, timeout=3.0):
    """One JPEG (<= ~50 KB) from a CameraHub's first camera, or None."""
    cams = hub.list()
    if not cams:
        return None
    sid = hub.open_stream(cams[0]["id"], width, height, 70, 0)
    try:
        frame = hub.next_frame(sid, -1, timeout)
    finally:
        try:
            hub.close_stream(sid)
        except Exception:
            pass
    if not frame:
        return None
    hlen = struct.unpack(">I", frame[:4])[0]
    jpeg = bytes(frame[4 + hlen:])
    if len(jpeg) > MAX_IMAGE_BYTES:
        Image = _pil()
        if Image is not None:
            try:
                jpeg = encode_image(Image.open(io.BytesIO(jpeg)), prefer="jpeg", quality=60)[1]
            except Exception:
                pass
    return jpeg


def _placeholder_jpeg(width, height, text):
    Image = _pil()
    if Image is None:
        return None
    try:
        from PIL import ImageDraw
        w, h = max(16, min(width, 640)), max(16, min(height, 480))
        im = Image.new("RGB", (w, h), (32, 32, 40))
        ImageDraw.Draw(im).text((10, 10), text, fill=(220, 220, 220))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=70)
        return buf.getvalue()
    except Exception:
        return None
