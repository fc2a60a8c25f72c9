"""The kernel obeys the server's ``DeviceManager`` settings: ``allowed_networks``, ``tokens`` and
``connect_timeout``, read from the same Jupyter config files (``jupyter_server_config.json`` /
``.py`` and ``jupyter_server_config.d/*.json`` in every Jupyter config directory, the user's
winning), so a notebook cannot dial where the server may not."""
import glob
import json
import os

from ..link import Policy
from ..link.dial import ANY_NETWORK

NAMES = ("allowed_networks", "tokens", "connect_timeout")


def _config_files():
    try:
        from jupyter_core.paths import jupyter_config_path
        dirs = jupyter_config_path()
    except Exception:
        dirs = []
    files = []
    for d in reversed(dirs):  # lowest precedence first: the user's directory comes first in the list
        files += sorted(glob.glob(os.path.join(d, "jupyter_server_config.d", "*.json")))
        files += [os.path.join(d, "jupyter_server_config.json"), os.path.join(d, "jupyter_server_config.py")]
    return [f for f in files if os.path.isfile(f)]


def _section(path, log=None):
    """The ``DeviceManager`` section of one config file (a dict; {} when unreadable)."""
    try:
        if path.endswith(".json"):
            with open(path, "r", encoding="utf-8") as f:
                data = json.load(f)
            section = data.get("DeviceManager") if isinstance(data, dict) else None
            return dict(section) if isinstance(section, dict) else {}
        from traitlets.config.loader import PyFileConfigLoader
        cfg = PyFileConfigLoader(os.path.basename(path), os.path.dirname(path)).load_config()
        return {k: v for k, v in cfg.get("DeviceManager", {}).items()}
    except Exception as e:
        if log is not None:
            log.warning("remote-device kernel: cannot read %s: %s", path, e)
        return {}


def _as_list(value):
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else [v.strip() for v in value.split(",")]
    return [str(v) for v in value if str(v).strip()]


def device_manager_settings(log=None, files=None):
    """The merged DeviceManager settings the kernel obeys (only ``NAMES``)."""
    merged = {}
    for path in (_config_files() if files is None else files):
        for k, v in _section(path, log).items():
            if k in NAMES:
                merged[k] = v
    return merged


def kernel_policy(log=None, files=None):
    """A link ``Policy`` from the Jupyter config files (the server's defaults where unset)."""
    s = device_manager_settings(log, files)
    try:
        networks = _as_list(s["allowed_networks"]) if "allowed_networks" in s else list(ANY_NETWORK)
    except (TypeError, ValueError):
        networks = []  # unreadable: dial nowhere rather than everywhere
    tokens = s.get("tokens") if isinstance(s.get("tokens"), dict) else {}
    try:
        timeout = float(s.get("connect_timeout", 5.0))
    except (TypeError, ValueError):
        timeout = 5.0
    return Policy(networks, timeout, tokens, log=log)
