"""One process tree for ``jupyter remote-device demo``: what it starts ends with it.

The demo starts a simulated board (an agent process) and JupyterLab, which starts kernels
(jupyter_client puts each kernel in a session of its own, so a process-group kill misses
them). Here the demo becomes a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): a
descendant orphaned by its parent (a kernel whose server went away) is re-parented to the
demo, so on the way out every descendant can still be found in ``/proc`` and stopped.

Where ``/proc`` or prctl are missing, it falls back to the direct children.
"""
import ctypes
import os
import signal
import subprocess
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Make orphaned descendants re-parent to this process (Linux); True when it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _ppids():
    """{pid: ppid} for every process visible in /proc (empty without /proc)."""
    out = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) >= 2:
            out[int(name)] = int(rest[1])
    return out


def descendants(pid=None):
    """Every live descendant of ``pid`` (default: this process), children first."""
    pid = os.getpid() if pid is None else pid
    ppids = _ppids()
    children = {}
    for p, pp in ppids.items():
        children.setdefault(pp, []).append(p)
    out, todo = [], list(children.get(pid, ()))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
        return stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] != b"Z"
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _reap():
    """Collect exited children (ours, and orphans re-parented to us) so none stays a zombie."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError:
            return
        if pid == 0:
            return


def stop_tree(procs, grace=4.0, log=None):
    """Stop ``procs`` (Popen objects, in order) and every descendant of this process.

    Each gets SIGTERM (servers shut their kernels down on it); whatever is still alive after
    ``grace`` seconds gets SIGKILL. Returns within about ``grace + 2`` seconds.
    """
    deadline = time.monotonic() + grace
    seen = set(descendants())
    for p in procs:
        if p is not None and p.poll() is None:
            _signal(p.pid, signal.SIGTERM)
    while time.monotonic() < deadline:
        seen.update(descendants())
        _reap()
        if all(p is None or p.poll() is not None for p in procs) and not any(_alive(q) for q in seen):
            break
        time.sleep(0.1)
    # what started later (kernels, agents) or ignored SIGTERM
    seen.update(descendants())
    for q in list(seen):
        if _alive(q):
            _signal(q, signal.SIGTERM)
    end = time.monotonic() + 1.0
    while time.monotonic() < end and any(_alive(q) for q in seen):
        _reap()
        time.sleep(0.05)
    for q in list(seen) + descendants():
        if _alive(q):
            if log:
                log("killing %d (still running)" % q)
            _signal(q, signal.SIGKILL)
    for p in procs:
        if p is not None:
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        _reap()
        if not any(_alive(q) for q in seen):
            break
        time.sleep(0.05)
