"""Saved boards: ``devices.json``, written by the server's DeviceManager, read by kernels.

``{"devices": [{"id", "name", "host", "port", "token", "source", "tls", "ssh", ...}]}``, mode 0600,
in ``<jupyter data dir>/remote_device/``. ``device_id_for`` is the one id of a board at host:port.
"""
import hashlib
import json
import os


def device_id_for(host, port):
    return hashlib.sha1(("%s:%d" % (host.lower(), int(port))).encode()).hexdigest()[:12]


def devices_file():
    try:
        from jupyter_core.paths import jupyter_data_dir
        base = jupyter_data_dir()
    except Exception:
        base = os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter")
    return os.path.join(base, "remote_device", "devices.json")


def load(path=None, strict=False):
    """The saved boards (a list of dicts with a host); [] when there is none or it is unreadable.

    With ``strict``, an unreadable or malformed file raises (OSError / ValueError) instead; a
    missing one is still [].
    """
    path = path or devices_file()
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        if strict:
            raise
        return []
    devs = data.get("devices") if isinstance(data, dict) else data
    if not isinstance(devs, list):
        if strict:
            raise ValueError("%s holds no device list" % path)
        return []
    return [d for d in devs if isinstance(d, dict) and d.get("host")]


def save(devices, path=None):
    """Write the boards atomically, readable by this user only (tokens inside)."""
    path = path or devices_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"devices": list(devices)}, f, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def find(key, devices=None):
    """A saved board whose id or name is ``key`` (an exact name first, then case-insensitive)."""
    devices = load() if devices is None else devices
    for test in (lambda d: str(d.get("id")) == key,
                 lambda d: str(d.get("name", "")) == key,
                 lambda d: str(d.get("name", "")).lower() == key.lower()):
        for d in devices:
            if test(d):
                return d
    return None


def find_by_address(host, port, devices=None):
    devices = load() if devices is None else devices
    for d in devices:
        try:
            if d.get("host") == host and int(d.get("port") or 0) == int(port):
                return d
        except (TypeError, ValueError):
            continue
    return None
