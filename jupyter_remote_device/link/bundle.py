"""The agent bundle: the agent package's sources, as sent to a board.

One walk of ``agent/`` serves both ways of getting the agent onto a board:

* ``agent_files()``: files for SSH (``server/ssh.py`` copies them over SFTP and runs
  ``python3 -m jupyter_remote_device.agent``), with the rpyc we speak (``rpyc_bundle``) and a
  digest that says when a copy is current;
* ``agent_sources()``: an in-memory package for a stock rpyc classic server (``classic.py``):
  its name carries the digest, so a newer Jupyter side never reuses an older copy.
"""
import hashlib
import json
import os

from ..agent import __version__ as AGENT_VERSION
from .rpyc_bundle import rpyc_files

AGENT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent")
# what a classic board does not need: the agent's own server, its mDNS announcer and service installer
NOT_FOR_CLASSIC = ("__main__", "mdns", "server", "service_install")

_CACHE = {}


def _walk():
    """[(path relative to agent/, bytes)] of every agent module, in a stable order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(AGENT_DIR):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                if fn == "_version.py":
                    continue  # written by the bundle itself
                full = os.path.join(dirpath, fn)
                with open(full, "rb") as f:
                    out.append((os.path.relpath(full, AGENT_DIR).replace(os.sep, "/"), f.read()))
    return out


def _version_module():
    """``agent/_version.py`` of a bundle: the version, read once here (package.json's)."""
    return ("__version__ = %r\n" % AGENT_VERSION).encode()


def agent_files():
    """([(path relative to the board's PYTHONPATH, bytes)], digest) of what runs the agent."""
    if "files" not in _CACHE:
        out = [("jupyter_remote_device/__init__.py",
                ('"""jupyter-remote-device (agent only, deployed over SSH)."""\n__version__ = %r\n'
                 % AGENT_VERSION).encode())]
        out += [("jupyter_remote_device/agent/" + rel, data) for rel, data in _walk()]
        out.append(("jupyter_remote_device/agent/_version.py", _version_module()))
        out += rpyc_files()  # the agent brings the rpyc we speak: the board's own (or none) does not matter
        h = hashlib.sha256()
        for rel, data in out:
            h.update(rel.encode() + b"\0" + data + b"\0")
        _CACHE["files"] = (out, h.hexdigest()[:16])
    return _CACHE["files"]


def agent_sources():
    """(package name, {dotted relative name: (source, is_package)}) for a classic board."""
    if "sources" not in _CACHE:
        sources = {}
        for rel, data in _walk():
            mod = rel[:-len(".py")]
            is_pkg = mod == "__init__" or mod.endswith("/__init__")
            if is_pkg:
                mod = mod[:-len("__init__")].rstrip("/")
            if mod.split("/")[0] in NOT_FOR_CLASSIC:
                continue
            sources[mod.replace("/", ".")] = (data.decode("utf-8"), is_pkg)
        sources["_version"] = (_version_module().decode("utf-8"), False)
        digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode("utf-8")).hexdigest()[:10]
        _CACHE["sources"] = ("jrd_classic_agent_" + digest, sources)
    return _CACHE["sources"]


def boot_source():
    """The source of ``agent/classic_boot.py``, run first on a classic board."""
    with open(os.path.join(AGENT_DIR, "classic_boot.py"), "r", encoding="utf-8") as f:
        return f.read()
