"""pip on the board: check that it can run, then run it as a child process with its log.

Standard library only, Python 3.8 syntax. The agent builds pip's command line itself
from package names (checked: no options can be smuggled in), wheel paths under the
device root and a few flags; the server never sends a command line.
"""
import collections
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time

from .wire import REQUIREMENT_RE  # a name, extras, version specifiers (shared with the Jupyter side)

MIN_FREE = 20 * 1024 * 1024     # bytes pip needs at least, whatever it installs
MAX_LOG = 1024 * 1024           # undelivered log kept per run
MAX_RUNS = 8
CHECK_TIMEOUT = 120.0           # `python -m pip --version` on a slow board


def _free_bytes(path):
    p = os.path.abspath(path)
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    try:
        return shutil.disk_usage(p).free, p
    except OSError:
        return None, p


def _env():
    env = dict(os.environ)
    env.update({"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"})
    return env


def check(target=None, need_bytes=0):
    """{"ok", "python", "pip", "site", "free_bytes", "need_bytes", "problems": [for a person]}."""
    problems = []
    pip_version = None
    try:
        p = subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=CHECK_TIMEOUT, env=_env())
        out = p.stdout.decode("utf-8", "replace").strip()
        if p.returncode == 0 and out.startswith("pip "):
            pip_version = out.split()[1]
        else:
            problems.append("pip is not installed for %s on the board (%s). Install it there with "
                            "`%s -m ensurepip` or the system's package (e.g. `apt install python3-pip`)."
                            % (sys.executable, out.splitlines()[-1][:200] if out else "no output", sys.executable))
    except subprocess.TimeoutExpired:
        problems.append("`%s -m pip --version` did not finish within %d s on the board"
                        % (sys.executable, CHECK_TIMEOUT))
    except OSError as e:
        problems.append("cannot run %s on the board: %s" % (sys.executable, e))
    site = target or sysconfig.get_paths().get("purelib") or sys.prefix
    if target is None and not os.access(site, os.W_OK):
        import site as site_mod
        user = getattr(site_mod, "getusersitepackages", lambda: None)()
        if user:
            site = user  # pip installs with --user when site-packages is not writable
    free, where = _free_bytes(site)
    need = max(MIN_FREE, 3 * int(need_bytes or 0))
    if free is not None and free < need:
        problems.append("not enough room on the board: %.1f MB free on %s, pip needs about %.1f MB. "
                        "Free some space (e.g. `pip cache purge`, remove old files) or install into "
                        "another folder (target)." % (free / 1e6, where, need / 1e6))
    return {"ok": not problems, "python": sys.executable, "python_version": sys.version.split()[0],
            "pip": pip_version, "site": site, "free_bytes": free, "need_bytes": need, "problems": problems}


def build_argv(packages, wheels=(), upgrade=False, no_index=False, find_links=(), target=None):
    argv = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--progress-bar", "off"]
    if upgrade:
        argv.append("--upgrade")
    if no_index:
        argv.append("--no-index")
    for d in find_links:
        argv += ["--find-links", d]
    if target:
        argv += ["--target", target]
    for name in packages:
        if not isinstance(name, str) or not REQUIREMENT_RE.match(name):
            raise ValueError("%r is not a package name (like numpy or numpy==1.24)" % (name,))
        argv.append(name)
    for w in wheels:
        if not w.endswith(".whl") or not os.path.isfile(w):
            raise ValueError("%r is not a wheel file on the board" % (w,))
        argv.append(w)
    if not packages and not wheels:
        raise ValueError("nothing to install")
    return argv


class PipRun(object):
    def __init__(self, argv):
        self.id = os.urandom(8).hex()
        self.argv = argv
        self.started = time.time()
        self._cond = threading.Condition()
        self._chunks = collections.deque()
        self._size = 0
        self._dropped = 0
        self.exit_code = None
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=_env())
        t = threading.Thread(target=self._pump, name="jrd-pip-%s" % self.id)
        t.daemon = True
        t.start()

    def _pump(self):
        import codecs
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        while True:
            try:
                data = self.proc.stdout.read1(65536) if hasattr(self.proc.stdout, "read1") else \
                    os.read(self.proc.stdout.fileno(), 65536)
            except (OSError, ValueError):
                data = b""
            text = dec.decode(data, final=not data)
            with self._cond:
                if text:
                    if self._size + len(text) > MAX_LOG:
                        self._dropped += len(text)
                    else:
                        self._chunks.append(text)
                        self._size += len(text)
                if not data:
                    self.exit_code = self.proc.wait()
                self._cond.notify_all()
            if not data:
                return

    def read(self, wait=1.0):
        deadline = time.time() + max(0.0, min(float(wait), 10.0))
        with self._cond:
            while not self._chunks and self.exit_code is None:
                left = deadline - time.time()
                if left <= 0:
                    break
                self._cond.wait(left)
            text = "".join(self._chunks)
            if self._dropped:
                text += "\n[%d characters of pip output dropped]\n" % self._dropped
                self._dropped = 0
            self._chunks.clear()
            self._size = 0
            done = self.exit_code is not None
        return {"output": text, "done": done, "exit_code": self.exit_code}

    def cancel(self):
        t = threading.Thread(target=self._stop, name="jrd-pip-stop")  # the caller does not wait
        t.daemon = True
        t.start()

    def _stop(self):
        if self.proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except OSError:
                    pass
                try:
                    self.proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue


class Pip(object):
    """Runs of pip on this board, by id (few at once: pip is heavy on a small board)."""

    def __init__(self, files, log=None):
        self.files = files
        self.log = log
        self._runs = {}
        self._lock = threading.Lock()

    def _path(self, device_path):
        full = self.files.resolve(device_path)
        return full

    def check(self, target=None, need_bytes=0):
        return check(self._path(target) if target else None, need_bytes)

    def start(self, packages, wheels=(), upgrade=False, no_index=False, find_links=(), target=None):
        argv = build_argv(packages, [self._path(w) for w in wheels], upgrade, no_index,
                          [self._path(d) for d in find_links], self._path(target) if target else None)
        with self._lock:
            for rid, run in list(self._runs.items()):
                if run.exit_code is not None and time.time() - run.started > 3600:
                    del self._runs[rid]
            if sum(1 for r in self._runs.values() if r.exit_code is None) >= 2:
                raise OSError("pip already runs twice on this board: wait for those to finish")
            if len(self._runs) >= MAX_RUNS:
                oldest = min((r for r in self._runs.values() if r.exit_code is not None),
                             key=lambda r: r.started, default=None)
                if oldest is not None:
                    del self._runs[oldest.id]
            run = PipRun(argv)
            self._runs[run.id] = run
        if self.log:
            self.log.info("pip install started: %s", " ".join(argv[4:]))
        return run.id

    def get(self, run_id):
        run = self._runs.get(run_id)
        if run is None:
            raise KeyError("no pip run %r" % (run_id,))
        return run

    def cancel(self, run_id):
        run = self._runs.get(run_id)
        if run is not None:
            run.cancel()
