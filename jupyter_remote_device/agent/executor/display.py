"""What a cell shows: MIME bundles (IPython's ``_repr_*_`` protocol, images, repr), and the
``display`` / ``update_display`` / ``show`` / ``show_camera`` builtins with throttled live updates."""
import base64
import os
import time

from ..wire import CAMERA_MIME
from .images import _is_pil_image, _placeholder_jpeg, _to_pil, encode_image, image_bundle

LIVE_INTERVAL = 0.1                 # live displays: at most 10 updates a second


def _text_repr(obj):
    try:
        r = repr(obj)
    except Exception as e:  # a broken __repr__ must not break the cell
        return "<%s object (repr failed: %s)>" % (type(obj).__name__, e)
    if len(r) > 79 and type(obj) in (dict, list, tuple, set, frozenset) and len(r) < 200000:
        try:
            import pprint  # lazily: it pulls in dataclasses
            r = pprint.pformat(obj, width=79)
        except Exception:
            pass
    return r


_REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)


def mime_bundle(obj, images=True):
    """(data, metadata) for obj, IPython style: _repr_*_ methods, images, repr()."""
    data, meta = {}, {}
    if isinstance(obj, type):
        return {"text/plain": _text_repr(obj)}, {}
    fn = getattr(obj, "_repr_mimebundle_", None)
    if callable(fn):
        try:
            out = fn(include=None, exclude=None)
            if isinstance(out, tuple) and len(out) == 2:
                d, m = out
            else:
                d, m = out, {}
            if isinstance(d, dict):
                data.update(d)
            if isinstance(m, dict):
                meta.update(m)
        except Exception:
            pass
    pil = _is_pil_image(obj)  # Pillow's own _repr_png_ ignores our size budget
    for name, mime in _REPR_METHODS:
        if mime in data or (pil and mime.startswith("image/")):
            continue
        fn = getattr(obj, name, None)
        if not callable(fn):
            continue
        try:
            v = fn()
        except Exception:
            continue
        if v is None:
            continue
        if isinstance(v, tuple) and len(v) == 2:
            v, m = v
            if isinstance(m, dict):
                meta[mime] = m
        if isinstance(v, (bytes, bytearray)):
            v = base64.b64encode(bytes(v)).decode("ascii")
        data[mime] = v
    if images and not any(k.startswith("image/") for k in data):
        try:
            ib = image_bundle(obj)
        except Exception:
            ib = None
        if ib is not None:
            d, m = ib
            for k, v in d.items():
                if k == "text/plain" and k in data:
                    continue
                data[k] = v
            meta.update(m)
    if "text/plain" not in data:
        data["text/plain"] = _text_repr(obj)
    return data, meta


def _live_image_bundle(obj):
    img = _to_pil(obj)
    if img is not None:
        mime, raw, (w, h) = encode_image(img, prefer="jpeg", quality=80)
        return ({mime: base64.b64encode(raw).decode("ascii"),
                 "text/plain": "<image %dx%d>" % (w, h)}, {mime: {"width": w, "height": h}})
    return mime_bundle(obj)


def _bundle_size(data):
    n = 0
    for v in data.values():
        if isinstance(v, str):
            n += len(v)
        else:
            n += 64
    return n


class DisplayMixin(object):
    """The Executor's display builtins (needs ``_current``, ``hostname``, ``snapshot``, ``log``)."""

    def _target(self):
        rec = self._current
        return rec

    def _display(self, *objs, **kw):
        display_id = kw.pop("display_id", None)
        metadata = kw.pop("metadata", None)
        transient = kw.pop("transient", None)
        update = bool(kw.pop("update", False))
        raw = bool(kw.pop("raw", False))
        kw.pop("include", None)
        kw.pop("exclude", None)
        kw.pop("clear", None)
        if kw:
            raise TypeError("display() got unexpected keyword arguments: %s" % ", ".join(sorted(kw)))
        if display_id is True:
            display_id = os.urandom(16).hex()
        rec = self._target()
        for obj in objs:
            if raw and isinstance(obj, dict):
                data, meta = dict(obj), dict(metadata or {})
            else:
                data, meta = mime_bundle(obj)
                if metadata:
                    meta.update(metadata)
            ev = {"type": "display", "data": data, "metadata": meta, "update": update}
            tr = dict(transient or {})
            if display_id:
                tr["display_id"] = str(display_id)
            if tr:
                ev["transient"] = tr
            if rec is not None:
                rec.add_event(ev, size=_bundle_size(data),
                              replace_display_id=tr.get("display_id") if update else None)
        if display_id:
            return _DisplayHandle(self, display_id)
        return None

    def _update_display(self, obj, display_id=None, **kw):
        if display_id is None:
            raise TypeError("update_display() needs display_id")
        kw["display_id"] = display_id
        kw["update"] = True
        self._display(obj, **kw)

    def _live(self, obj, key, bundle_fn):
        """Throttled live display (at most 10/s, latest wins, flushed at the end)."""
        rec = self._target()
        if rec is None:
            return
        st = rec.live.get(key)
        if st is None:
            st = rec.live[key] = {"last": 0.0, "sent": False, "pending": None, "fn": bundle_fn}
        now = time.time()
        if now - st["last"] < LIVE_INTERVAL:
            st["pending"] = obj
            return
        st["pending"] = None
        st["last"] = now
        self._emit_live(rec, key, st, obj)

    def _emit_live(self, rec, key, st, obj):
        try:
            data, meta = st["fn"](obj)
        except Exception as e:
            data, meta = {"text/plain": "<cannot display %s: %s>" % (type(obj).__name__, e)}, {}
        ev = {"type": "display", "data": data, "metadata": meta,
              "transient": {"display_id": key}, "update": st["sent"]}
        rec.add_event(ev, size=_bundle_size(data), replace_display_id=key if st["sent"] else None)
        st["sent"] = True

    def _flush_live(self, rec):
        for key, st in list(rec.live.items()):
            obj = st.get("pending")
            if obj is not None:
                st["pending"] = None
                self._emit_live(rec, key, st, obj)

    def _show(self, img, *args, **kw):
        """show(img): a live image in the cell output, updated in place (<= 10/s)."""
        rec = self._target()
        key = "show-%s" % (rec.id if rec else "idle")
        self._live(img, key, _live_image_bundle)

    def _show_camera(self, width=640, height=480, camera=None):
        """Show the board's live camera in this cell (a camera bundle + a still)."""
        width, height = int(width), int(height)
        still = None
        if callable(self.snapshot):
            try:
                still = self.snapshot(width, height)
            except Exception as e:
                self.log.debug("snapshot failed: %s", e)
        if still is None:
            still = _placeholder_jpeg(width, height, "camera: %s" % self.hostname)
        spec = {"device": self.hostname, "width": width, "height": height}
        if camera is not None:
            spec["camera"] = camera
        data = {CAMERA_MIME: spec,
                "text/plain": "<live camera %s %dx%d>" % (self.hostname, width, height)}
        if still:
            data["image/jpeg"] = base64.b64encode(still).decode("ascii")
        self._display(data, raw=True)


class _DisplayHandle(object):
    def __init__(self, executor, display_id):
        self._executor = executor
        self.display_id = display_id

    def display(self, obj, **kw):
        kw["display_id"] = self.display_id
        self._executor._display(obj, **kw)

    def update(self, obj, **kw):
        self._executor._update_display(obj, display_id=self.display_id, **kw)

    def __repr__(self):
        return "<DisplayHandle display_id=%s>" % self.display_id
