"""Completion and inspection in a namespace, without evaluating arbitrary code."""
import keyword
import re
import sys
import time
import types

from .display import _text_repr


class IntrospectionMixin(object):
    """The Executor's ``complete`` and ``inspect`` (needs ``_namespace``)."""

    def complete(self, ns, code, cursor_pos=None):
        if cursor_pos is None:
            cursor_pos = len(code)
        cursor_pos = max(0, min(int(cursor_pos), len(code)))
        g = self._namespace(ns).globals
        before = code[:cursor_pos]
        line = before.rsplit("\n", 1)[-1]
        m = re.search(r"^\s*(?:import\s+|from\s+)([\w.]*)$", line)
        if m:
            token = m.group(1)
            matches = _module_names(token)
            return {"matches": matches, "cursor_start": cursor_pos - len(token),
                    "cursor_end": cursor_pos, "metadata": {}}
        m = re.search(r"^\s*from\s+([\w.]+)\s+import\s+(?:.*,\s*)?(\w*)$", line)
        if m:
            token = m.group(2)
            mod = sys.modules.get(m.group(1))
            names = sorted(n for n in dir(mod) if n.startswith(token)) if mod is not None else []
            return {"matches": names, "cursor_start": cursor_pos - len(token),
                    "cursor_end": cursor_pos, "metadata": {}}
        m = re.search(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]?\w*)*$|\.$", before)
        token = m.group(0) if m else ""
        if token.startswith("."):
            token = ""
        matches = []
        if "." in token:
            expr, _, attr = token.rpartition(".")
            obj = _resolve(expr, g)
            if obj is not _MISSING:
                try:
                    names = dir(obj)
                except Exception:
                    names = []
                if not attr.startswith("_"):
                    names = [n for n in names if not n.startswith("_")]
                matches = [expr + "." + n for n in names if n.startswith(attr)]
        else:
            b = g.get("__builtins__")
            if isinstance(b, types.ModuleType):
                b = b.__dict__
            pool = set(g) | set(b or {}) | set(keyword.kwlist)
            matches = [n for n in pool if n.startswith(token) and (token.startswith("_") or not n.startswith("_"))]
        matches.sort(key=lambda s: (s.rsplit(".", 1)[-1].startswith("_"), s.lower()))
        return {"matches": matches[:1000], "cursor_start": cursor_pos - len(token),
                "cursor_end": cursor_pos, "metadata": {}}

    def inspect(self, ns, code, cursor_pos=None, detail_level=0):
        if cursor_pos is None:
            cursor_pos = len(code)
        cursor_pos = max(0, min(int(cursor_pos), len(code)))
        g = self._namespace(ns).globals
        name = _name_at(code, cursor_pos)
        if not name:
            return {"found": False, "data": {}, "metadata": {}}
        obj = _resolve(name, g)
        if obj is _MISSING:
            return {"found": False, "data": {}, "metadata": {}}
        return {"found": True, "data": {"text/plain": _describe(name, obj, detail_level)}, "metadata": {}}


_MISSING = object()


_module_cache = {"t": 0.0, "names": []}


def _module_names(prefix):
    if "." in prefix:
        parent, _, part = prefix.rpartition(".")
        mod = sys.modules.get(parent)
        names = []
        if mod is not None and hasattr(mod, "__path__"):
            try:
                import pkgutil
                names = [parent + "." + m.name for m in pkgutil.iter_modules(mod.__path__)]
            except Exception:
                names = []
        names += [n for n in sys.modules if n.startswith(parent + ".") and "." not in n[len(parent) + 1:]]
        return sorted(set(n for n in names if n.startswith(prefix)))
    now = time.time()
    if now - _module_cache["t"] > 60:
        names = set(sys.builtin_module_names)
        try:
            import pkgutil
            for m in pkgutil.iter_modules():
                names.add(m.name)
        except Exception:
            pass
        names.update(n for n in sys.modules if "." not in n)
        _module_cache["names"] = sorted(names)
        _module_cache["t"] = now
    return [n for n in _module_cache["names"] if n.startswith(prefix)]


def _resolve(dotted, g):
    """Look a dotted name up in a namespace without evaluating arbitrary code."""
    parts = dotted.split(".")
    if not parts or not all(re.match(r"^[A-Za-z_]\w*$", p) for p in parts):
        return _MISSING
    first = parts[0]
    if first in g:
        obj = g[first]
    else:
        b = g.get("__builtins__")
        if isinstance(b, types.ModuleType):
            b = b.__dict__
        if b and first in b:
            obj = b[first]
        elif first in sys.modules:
            obj = sys.modules[first]
        else:
            return _MISSING
    for p in parts[1:]:
        try:
            obj = getattr(obj, p)
        except Exception:
            return _MISSING
    return obj


def _name_at(code, pos):
    """The dotted name at the cursor, or the callee when the cursor is inside a call."""
    ident = r"[A-Za-z_][\w.]*"
    left = re.search(r"[\w.]*$", code[:pos]).group(0)
    right = re.match(r"\w*", code[pos:]).group(0)
    name = (left + right).strip(".")
    if name and re.match(r"^[A-Za-z_]", name):
        return name
    # inside a call: foo(a, b|
    depth = 0
    i = pos - 1
    while i >= 0:
        c = code[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = re.search(ident + r"$", code[:i])
                return m.group(0) if m else ""
            depth -= 1
        elif c == "\n" and depth == 0 and i < pos - 200:
            break
        i -= 1
    return ""


def _describe(name, obj, detail_level=0):
    import inspect as _inspect
    out = []
    out.append("Type:           %s" % type(obj).__name__)
    try:
        s = _text_repr(obj)
        if len(s) > 200:
            s = s[:200] + "..."
        out.append("String form:    %s" % s)
    except Exception:
        pass
    if hasattr(obj, "__len__") and not isinstance(obj, type):
        try:
            out.append("Length:         %d" % len(obj))
        except Exception:
            pass
    if callable(obj):
        try:
            out.append("Signature:      %s%s" % (name, _inspect.signature(obj)))
        except Exception:
            pass
    try:
        f = _inspect.getsourcefile(obj) or _inspect.getfile(obj)
        out.append("File:           %s" % f)
    except Exception:
        pass
    doc = _inspect.getdoc(obj) if not isinstance(obj, (int, float, str, bytes, list, dict, tuple, set)) else None
    if doc:
        out.append("Docstring:\n%s" % doc)
    if detail_level and detail_level > 0:
        try:
            out.append("Source:\n%s" % _inspect.getsource(obj))
        except Exception:
            pass
    return "\n".join(out)
