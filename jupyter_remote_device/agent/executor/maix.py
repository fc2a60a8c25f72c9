"""MaixPy compatibility: ``maix.display.show(img)`` is mirrored into the running exec as a live
image (plus a camera bundle), whether ``maix.display`` was imported before or after us."""
import sys

from ..wire import CAMERA_MIME
from .display import _live_image_bundle


class MaixMixin(object):
    """The Executor's MaixPy hooks (needs ``_current``, ``_live``, ``hostname``)."""

    def _install_maix_hook(self):
        """Mirror ``maix.display.show(img)`` into the running exec (MaixPy compat)."""
        ex = self
        mod = sys.modules.get("maix.display")
        if mod is not None:
            _wrap_maix_display(mod, ex)
        for f in sys.meta_path:
            if isinstance(f, _MaixFinder):
                f.executor = ex
                return
        sys.meta_path.insert(0, _MaixFinder(ex))

    def _mirror_display_show(self, img):
        rec = self._target()
        if rec is None:
            return
        key = "maix-display-%s" % rec.id
        host = self.hostname

        def bundle(obj):
            data, meta = _live_image_bundle(obj)
            w = h = None
            m = meta.get("image/jpeg") or meta.get("image/png") or {}
            w, h = m.get("width"), m.get("height")
            data[CAMERA_MIME] = {"device": host, "width": w, "height": h, "source": "display.show"}
            return data, meta

        self._live(img, key, bundle)


def _wrap_maix_display(mod, executor):
    show = getattr(mod, "show", None)
    if show is None or not callable(show):
        return
    if getattr(show, "_jrd_wrapped", False):
        show._jrd_executor[0] = executor
        return
    holder = [executor]

    def wrapped(img=None, *args, **kw):
        result = show(img, *args, **kw) if img is not None or args or kw else show()
        ex = holder[0]
        if img is not None and ex is not None and ex._current is not None:
            try:
                ex._mirror_display_show(img)
            except Exception as e:  # never break the user's loop
                ex.log.debug("display.show mirror failed: %s", e)
        return result

    wrapped._jrd_wrapped = True
    wrapped._jrd_executor = holder
    wrapped.__wrapped__ = show
    wrapped.__doc__ = getattr(show, "__doc__", None)
    wrapped.__name__ = getattr(show, "__name__", "show")
    mod.show = wrapped


class _MaixFinder(object):
    """A meta-path finder that wraps maix.display.show right after it is imported."""

    def __init__(self, executor):
        self.executor = executor
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "maix.display" or self._busy:
            return None
        import importlib.util
        self._busy = True
        try:
            spec = importlib.util.find_spec(fullname)
        except Exception:
            spec = None
        finally:
            self._busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _MaixLoader(spec.loader, self)
        return spec


class _MaixLoader(object):
    def __init__(self, loader, finder):
        self._loader = loader
        self._finder = finder

    def create_module(self, spec):
        fn = getattr(self._loader, "create_module", None)
        return fn(spec) if fn else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            _wrap_maix_display(module, self._finder.executor)
        except Exception:
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)
