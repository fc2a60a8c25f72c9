"""Jupyter server configuration for the Galata (Chromium) tests.

Starts two loopback agents with the synthetic camera:

- ``demo-board``: configured with its real token;
- ``locked-board``: configured with a wrong token (the "wrong token" test
  expects ``auth-failed`` and the server's message in the error dialog).

Both agents are terminated when the Jupyter server exits.
"""
import atexit
import os
import sys
import tempfile

from jupyterlab.galata import configure_jupyter_server

# Use the repository's package even when it is not installed in editable mode.
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from jupyter_remote_device.app import spawn_agent  # noqa: E402

configure_jupyter_server(c)  # noqa: F821

_agents = []


def _stop_agents():
    for proc in _agents:
        try:
            proc.terminate()
            proc.wait(5)
        except Exception:
            try:
                proc.kill()
            except Exception:
                pass


atexit.register(_stop_agents)

_demo_root = tempfile.mkdtemp(prefix="jrd-ui-demo-board-")
_demo, _demo_port, _demo_token = spawn_agent(
    host="127.0.0.1", port=0, root=_demo_root, camera="synthetic"
)
_agents.append(_demo)

_locked, _locked_port, _locked_token = spawn_agent(
    host="127.0.0.1", port=0, camera="synthetic"
)
_agents.append(_locked)

# ``replay-board`` plays a known frame (``--camera file:``, agent/camera/replay.py): a gray
# 320x240 picture with a pure red 80x60 rectangle at (80, 60), for the vision tools' tests.
_replay_frames = tempfile.mkdtemp(prefix="jrd-ui-replay-")
try:
    from PIL import Image, ImageDraw

    _img = Image.new("RGB", (320, 240), (128, 128, 128))
    ImageDraw.Draw(_img).rectangle((80, 60, 159, 119), fill=(255, 0, 0))
    _img.save(os.path.join(_replay_frames, "000001.jpg"), "JPEG", quality=100, subsampling=0)
    _replay, _replay_port, _replay_token = spawn_agent(
        host="127.0.0.1", port=0, camera="file:" + _replay_frames, env={"JRD_CAMERA_FPS": "10"}
    )
    _agents.append(_replay)
    _replay_devices = [{"host": "127.0.0.1", "port": _replay_port, "name": "replay-board", "token": _replay_token}]
except Exception as e:  # the other tests still run
    print("replay-board not started: %s" % e, file=sys.stderr)
    _replay_devices = []

c.DeviceManager.configured_devices = [  # noqa: F821
    {"host": "127.0.0.1", "port": _demo_port, "name": "demo-board", "token": _demo_token},
    {
        "host": "127.0.0.1",
        "port": _locked_port,
        "name": "locked-board",
        "token": "not-the-" + _locked_token,
    },
]
c.DeviceManager.configured_devices += _replay_devices  # noqa: F821

# ``maixpy3-board``: a MaixPy3 board as it ships (Python 3.8 with rpyc 5.3.1, stock
# ThreadedServer(SlaveService), a stand-in maix), when scripts/test.sh made that board stack.
try:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import old_boards

    _venv = os.path.join(old_boards.CACHE, "py3.8-rpyc5.3.1-pil")
    if os.path.exists(os.path.join(_venv, ".complete")):
        _old = old_boards.OldBoard(os.path.join(_venv, "bin", "python"))
        atexit.register(_old.close)
        c.DeviceManager.configured_devices += [  # noqa: F821
            {"host": "127.0.0.1", "port": _old.port, "name": "maixpy3-board"}
        ]
except Exception as e:  # the other tests still run
    print("maixpy3-board not started: %s" % e, file=sys.stderr)
c.DeviceManager.mdns = False  # noqa: F821
c.DeviceManager.allowed_networks = ["127.0.0.0/8", "::1/128"]  # noqa: F821
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821  (CI and containers run as root)
