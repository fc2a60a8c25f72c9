"""What the board can tell about itself (Linux /proc and /sys; None where unknown)."""
import os
import socket
import sys
import threading
import time


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def model():
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        text = _read(path)
        if text:
            return text.strip("\x00 \n")
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Model", "Hardware", "model name"):
            return value.strip()
    return None


def memory():
    text = _read("/proc/meminfo")
    if not text:
        return None, None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    avail = values.get("MemAvailable")
    if avail is None and "MemFree" in values:
        avail = values["MemFree"] + values.get("Buffers", 0) + values.get("Cached", 0)
    return values.get("MemTotal"), avail


def temperature():
    best = None
    try:
        zones = [n for n in os.listdir("/sys/class/thermal") if n.startswith("thermal_zone")]
    except OSError:
        zones = []
    for zone in zones:
        text = _read("/sys/class/thermal/%s/temp" % zone)
        try:
            value = int(text.strip()) / 1000.0
        except (AttributeError, ValueError):
            continue
        if -40 < value < 150 and (best is None or value > best):
            best = value
    return best


def uptime():
    text = _read("/proc/uptime")
    try:
        return float(text.split()[0])
    except (AttributeError, IndexError, ValueError):
        return None


class CpuMeter(object):
    """System CPU % between successive calls, from /proc/stat (None where absent)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._last = self._sample()

    @staticmethod
    def _sample():
        text = _read("/proc/stat")
        if not text:
            return None
        fields = text.splitlines()[0].split()[1:]
        try:
            values = [int(v) for v in fields]
        except ValueError:
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    def percent(self):
        with self._lock:
            now = self._sample()
            last, self._last = self._last, now
        if now is None or last is None:
            return None
        total, idle = now[0] - last[0], now[1] - last[1]
        if total <= 0:
            # nothing elapsed since the last call: sample a short window instead
            time.sleep(0.05)
            return self.percent()
        return round(100.0 * (total - idle) / total, 1)


_cpu = CpuMeter()


def rpyc_version():
    """The rpyc this process runs ("5.3.1"; rpyc 4.x has a tuple), or None."""
    mod = sys.modules.get("rpyc")
    if mod is None:
        return None
    v = getattr(mod, "__version__", None) or getattr(getattr(mod, "version", None), "version", None)
    if isinstance(v, tuple):
        return ".".join(str(x) for x in v)
    return str(v) if v is not None else None


_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython", "jython": "Jython"}


def _uname():
    return os.uname()


def platform_name():
    """What ``platform.platform()`` says (``Linux-<release>-<machine>-with-glibc2.36``), without
    importing ``platform`` (a third of a MB of a board's memory)."""
    u = _uname()
    name = "%s-%s-%s" % (u.sysname, u.release, u.machine)
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        libc = None
    if libc:
        name += "-with-" + libc.replace(" ", "")
    return name


def info(agent_version, cameras=None):
    mem_total, mem_available = memory()
    return {
        "hostname": socket.gethostname(),
        "model": model(),
        "platform": platform_name(),
        "arch": _uname().machine or None,
        "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
        "python_implementation": _IMPLEMENTATIONS.get(sys.implementation.name, sys.implementation.name),
        "rpyc_version": rpyc_version(),
        "agent_version": agent_version,
        "cpu_count": os.cpu_count(),
        "cpu_percent": _cpu.percent(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "mem_total": mem_total,
        "mem_available": mem_available,
        "temperature_c": temperature(),
        "uptime_s": uptime(),
        "cameras": cameras if cameras is not None else [],
        "pid": os.getpid(),
        "executable": sys.executable,
        "time": time.time(),
    }
