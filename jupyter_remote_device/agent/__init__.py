"""The board agent: ``python -m jupyter_remote_device.agent``.

Standard library + rpyc only (Pillow optional); Python 3.8 syntax. This package
must not import anything from the Jupyter side.

The version is written once, in ``package.json``. It reaches us as ``agent/_version.py``
in a bundle sent to a board (``link/bundle.py``), as the build's
``jupyter_remote_device/_version.py`` in an installed package, or straight from
``package.json`` in a source checkout (both read as text, not imported).
"""
import json as _json
import os as _os
import re as _re


def _read_version():
    try:
        from ._version import __version__ as v  # a bundle sent to a board
        return v
    except ImportError:
        pass
    here = _os.path.dirname(_os.path.abspath(__file__))
    try:
        with open(_os.path.join(here, _os.pardir, "_version.py"), "r", encoding="utf-8") as f:
            m = _re.search(r"""__version__\s*=\s*["']([^"']+)["']""", f.read())
        if m:
            return m.group(1)
    except (OSError, ValueError):
        pass
    try:
        with open(_os.path.join(here, _os.pardir, _os.pardir, "package.json"), "r", encoding="utf-8") as f:
            return str(_json.load(f)["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "0+unknown"


__version__ = _read_version()
