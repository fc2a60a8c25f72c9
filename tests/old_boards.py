"""Boards as they ship: an old Python with the rpyc of its day, serving ``ThreadedServer(SlaveService)``
started from ``python -c`` (what MaixPy3's maix/rpycs.py runs), with a stand-in MaixPy3 ``maix``
package on the board's path. Not a test module.

The board Pythons are real interpreters (pyenv's, or Debian's ``python3.X``); each board stack is a
venv under a cache dir (``JRD_BOARD_VENVS``, default ``~/.cache/jupyter-remote-device/board-venvs``)
made on first use with ``pip install rpyc==X pillow`` from PyPI. When no such Python exists, or pip
cannot fetch the packages, ``board_python`` says why (tests skip with that reason).
"""
import fcntl
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

from jupyter_remote_device.app import stop_process

CACHE = os.environ.get("JRD_BOARD_VENVS") or os.path.join(
    os.path.expanduser("~"), ".cache", "jupyter-remote-device", "board-venvs")

# MaixPy3's module-level camera (maix/camera.py): config((w, h)), read() -> raw RGB888 bytes,
# capture() -> an image, width()/height(); the agent's maix backend accepts the real
# implementations' class names only, so the stand-in is called like one of them.
MAIX_CAMERA = textwrap.dedent("""
    class SpMaixVideo(object):
        def __init__(self):
            self.size = (240, 240)
            self.n = 0
    camera = SpMaixVideo()
    def config(size):
        camera.size = (int(size[0]), int(size[1]))
    def width():
        return camera.size[0]
    def height():
        return camera.size[1]
    def read():
        camera.n += 1
        w, h = camera.size
        return bytes(((camera.n * 9) % 256, 80, 160)) * (w * h)
    def capture():
        from PIL import Image
        return Image.frombytes("RGB", camera.size, read())
    def close():
        pass
""")
MAIX_DISPLAY = "shown = [0]\ndef show(img=None):\n    shown[0] += 1\n"

BOARD = textwrap.dedent("""
    import sys
    from rpyc.utils.server import ThreadedServer
    from rpyc.core import SlaveService
    s = ThreadedServer(SlaveService, hostname="127.0.0.1", port=0, reuse_addr=True, auto_register=False)
    sys.stderr.write("BOARD LISTENING %d\\n" % s.port)
    sys.stderr.flush()
    s.start()
""")


def find_python(version):
    """A real Python ``version`` ("3.8"): pyenv's, or the system's python3.X; None when there is none."""
    roots = [os.environ.get("PYENV_ROOT") or "", os.path.expanduser("~/.pyenv"), "/root/.pyenv", "/opt/pyenv"]
    for root in roots:
        if not root:
            continue
        found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/versions/")[1].split("/")[0])])
        if found:
            return found[-1]
    for cand in (shutil.which("python" + version), "/usr/bin/python" + version):
        if cand and os.path.exists(cand):
            return cand
    return None


def board_python(version, rpyc_version, pillow=True):
    """(python path of a venv with that rpyc, None) or (None, reason to skip)."""
    base = find_python(version)
    if base is None:
        return None, "no Python %s on this machine (pyenv's or Debian's python%s)" % (version, version)
    name = "py%s-rpyc%s%s" % (version, rpyc_version, "-pil" if pillow else "")
    venv = os.path.join(CACHE, name)
    py = os.path.join(venv, "bin", "python")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions build a venv once
        if os.path.exists(os.path.join(venv, ".complete")):
            return py, None
        shutil.rmtree(venv, ignore_errors=True)
        r = subprocess.run([base, "-m", "venv", venv], capture_output=True, text=True)
        if r.returncode != 0:
            return None, "cannot make a Python %s venv: %s" % (version, (r.stderr or r.stdout).strip()[-300:])
        pkgs = ["rpyc==%s" % rpyc_version] + (["pillow"] if pillow else [])
        r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + pkgs,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            return None, "cannot pip install %s for Python %s: %s" % (
                " ".join(pkgs), version, (r.stderr or r.stdout).strip()[-300:])
        open(os.path.join(venv, ".complete"), "w").close()
    return py, None


def maix_dir(base):
    """A folder holding the stand-in ``maix`` package (MaixPy3's module-level camera and display)."""
    d = os.path.join(base, "pylib")
    os.makedirs(os.path.join(d, "maix"), exist_ok=True)
    for name, text in (("__init__.py", ""), ("camera.py", MAIX_CAMERA), ("display.py", MAIX_DISPLAY)):
        with open(os.path.join(d, "maix", name), "w") as f:
            f.write(text)
    return d


class OldBoard:
    """``ThreadedServer(SlaveService)`` from ``python -c`` on 127.0.0.1, HOME in a temp dir."""

    def __init__(self, python, with_maix=True):
        self.python = python
        self.home = tempfile.mkdtemp(prefix="jrd-oldboard-")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER"))}
        env["HOME"] = self.home
        if with_maix:
            env["PYTHONPATH"] = maix_dir(self.home)  # nothing of ours: the agent code is sent over
        self.proc = subprocess.Popen([python, "-c", BOARD], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=self.home)
        found = {}
        ev = threading.Event()
        self.log = []

        def reader():
            for line in self.proc.stderr:
                if len(self.log) < 2000:
                    self.log.append(line)
                m = re.search(r"BOARD LISTENING (\d+)", line)
                if m and "port" not in found:
                    found["port"] = int(m.group(1))
                    ev.set()
            ev.set()

        threading.Thread(target=reader, daemon=True).start()
        ev.wait(30)
        if "port" not in found:
            self.close()
            raise RuntimeError("the board did not start: %s" % "".join(self.log)[-2000:])
        self.port = found["port"]
        self.root = os.path.join(self.home, "jrd-root")
        deadline = time.monotonic() + 15  # the port is bound before start() listens on it
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("the board does not listen: %s" % "".join(self.log)[-2000:])
                time.sleep(0.05)

    def close(self):
        stop_process(self.proc)
        shutil.rmtree(self.home, ignore_errors=True)


def python_version_of(python):
    r = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                       capture_output=True, text=True)
    return r.stdout.strip()


if __name__ == "__main__":
    # make the venvs ahead of time (scripts/test.sh): python tests/old_boards.py [--pillow 3.8:5.3.1 ...] 3.9:6.0.2
    # (--pillow: the specs that follow also get a venv with Pillow, for the maix camera tests)
    pillow = False
    for spec in sys.argv[1:]:
        if spec == "--pillow":
            pillow = True
            continue
        v, _, rv = spec.partition(":")
        for pil in ((False, True) if pillow and v == "3.8" and rv in ("5.3.1", "4.1.5") else (False,)):
            py, why = board_python(v, rv, pillow=pil)
            print("board Python %s + rpyc %s%s: %s" % (v, rv, " + Pillow" if pil else "", py or "skipped: " + why))
