"""The rpyc the agent bundle brings along: the very rpyc the Jupyter side speaks.

A board's own rpyc (MaixPy3 images ship 4.x or 5.x) cannot talk to ours (rpyc 6; rpyc#552), and
many boards have no pip to fix that. So every agent bundle that runs as its own process (copied
over SSH, or written to a folder a user copies by hand with ``jupyter remote-device bundle DIR``)
holds a copy of the Jupyter side's installed rpyc package beside ``jupyter_remote_device/``. The
agent is started with that folder first on its path (``PYTHONPATH=DIR`` or ``cd DIR``), so the
board's rpyc, or the lack of one, does not matter. rpyc is pure Python (MIT licensed; its licence
travels with it) and needs nothing else at run time (plumbum only for its command-line tools).

A stock classic board (no agent process) is different: our code runs inside the board's own rpyc
server, which is itself the link; the Jupyter side speaks that server's family (``link/bridge``).
"""
import os

import rpyc

RPYC_DIR = os.path.dirname(os.path.abspath(rpyc.__file__))


def rpyc_version():
    return str(rpyc.__version__)


def _license():
    try:
        from importlib import metadata
        dist = metadata.distribution("rpyc")
        for f in dist.files or ():
            if os.path.basename(str(f)).upper().startswith(("LICENSE", "LICENCE", "COPYING")):
                return f.read_text()
    except Exception:
        pass
    return None


def rpyc_files():
    """[(path relative to the bundle folder, bytes)] of the local rpyc package (``rpyc/...``)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(RPYC_DIR):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                full = os.path.join(dirpath, fn)
                with open(full, "rb") as f:
                    rel = os.path.relpath(full, os.path.dirname(RPYC_DIR)).replace(os.sep, "/")
                    out.append((rel, f.read()))
    text = _license()
    if text:
        out.append(("rpyc/LICENSE", text.encode("utf-8")))
    return out


README = """jupyter-remote-device agent, ready to copy to a board.

This folder holds the agent (jupyter_remote_device/agent) and the rpyc it speaks
(rpyc {rpyc}: the Jupyter side's own; a board's older rpyc cannot talk to it).
Nothing needs installing on the board: only Python 3.8 or newer. Pillow is optional
(synthetic camera, JPEG where the board has no encoder).

Copy the whole folder (scp -r, a USB stick, an SD card), then on the board:

    cd {name}
    python3 -m jupyter_remote_device.agent --root ~/work --camera auto

(or from anywhere: PYTHONPATH=/path/to/{name} python3 -m jupyter_remote_device.agent ...).
The agent prints its token; give it to JupyterLab when you add the board.
"""


def write_bundle(dest, bundle_files):
    """Write the agent bundle (``bundle_files``: [(rel, bytes)], our rpyc included) into ``dest``."""
    dest = os.path.abspath(dest)
    files = list(bundle_files)
    if not any(rel.startswith("rpyc/") for rel, _ in files):
        files += rpyc_files()
    files.append(("README.txt", README.format(rpyc=rpyc_version(), name=os.path.basename(dest)).encode()))
    for rel, data in files:
        path = os.path.join(dest, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return dest, len(files)
