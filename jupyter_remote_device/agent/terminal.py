"""Terminals on the board: a shell on a pseudo-terminal per terminal id.

Standard library only, Python 3.8 syntax. One ``Terminals`` object per agent process;
the service forwards ``term_*`` calls to it and closes what a connection opened when
that connection goes away.

The shell is the user's login shell (``$SHELL``, else the passwd entry, else /bin/sh),
started in its own session with the pty as its controlling terminal, so Ctrl-C (a
``\\x03`` written to the pty) interrupts the foreground program and resizes reach
full-screen programs as SIGWINCH.
"""
import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import threading
import time

MAX_READ = 64 * 1024        # bytes returned by one read call
MAX_WRITE = 64 * 1024       # bytes accepted by one write call
MAX_TERMINALS = 32          # per agent process


def available():
    """(ok, why not) for this board."""
    try:
        import pty  # noqa: F401  (its presence says the platform has ptys)
    except ImportError as e:  # pragma: no cover
        return False, "no pty support on this board: %s" % e
    if not hasattr(os, "openpty"):  # pragma: no cover
        return False, "no os.openpty on this board"
    return True, None


def user_shell():
    shell = os.environ.get("SHELL")
    if shell and os.access(shell, os.X_OK):
        return shell
    try:
        import pwd
        shell = pwd.getpwuid(os.getuid()).pw_shell
        if shell and os.access(shell, os.X_OK):
            return shell
    except (ImportError, KeyError):
        pass
    for s in ("/bin/bash", "/bin/sh"):
        if os.access(s, os.X_OK):
            return s
    raise OSError(errno.ENOENT, "no shell found on this board")


def _winsize(rows, cols, height_px=0, width_px=0):
    rows = max(1, min(int(rows), 1000))
    cols = max(1, min(int(cols), 1000))
    return struct.pack("HHHH", rows, cols, max(0, min(int(width_px), 65535)), max(0, min(int(height_px), 65535)))


def _make_controlling_tty():  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal(object):
    def __init__(self, term_id, rows=24, cols=80, cwd=None, shell=None):
        self.id = term_id
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, _winsize(rows, cols))
            env = dict(os.environ)
            env["TERM"] = "xterm-256color"
            env.pop("PYTHONSTARTUP", None)
            argv = [shell or user_shell()]
            if cwd is None or not os.path.isdir(cwd):
                cwd = os.path.expanduser("~")
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                         start_new_session=True, preexec_fn=_make_controlling_tty,
                                         close_fds=True)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        os.close(slave)
        self.fd = master
        self.lock = threading.Lock()
        self.created = time.time()
        self.exit_code = None
        self.closed = False

    def read(self, max_bytes=MAX_READ, wait=1.0):
        """Output of the pty (at most max_bytes), b"" when nothing came within wait s, None at the end."""
        if self.closed:
            return None
        max_bytes = max(1, min(int(max_bytes), MAX_READ))
        try:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, min(float(wait), 10.0)))
        except (OSError, ValueError):
            return None
        if not ready:
            if self.proc.poll() is not None and not self._pending():
                return None
            return b""
        try:
            data = os.read(self.fd, max_bytes)
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF):  # the shell (and everyone holding the pty) is gone
                return None
            raise
        if not data:
            return None
        # what is already waiting goes in the same answer (a pty hands out ~4 KiB at a time):
        # fewer round trips under a flood of output, no added wait for a lone keystroke echo
        chunks, size = [data], len(data)
        while size < max_bytes:
            try:
                more, _, _ = select.select([self.fd], [], [], 0)
                if not more:
                    break
                part = os.read(self.fd, max_bytes - size)
            except OSError:
                break
            if not part:
                break
            chunks.append(part)
            size += len(part)
        return b"".join(chunks)

    def _pending(self):
        try:
            buf = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
            return struct.unpack("i", buf)[0] > 0
        except OSError:
            return False

    def write(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        if not isinstance(data, bytes):
            raise TypeError("data must be str or bytes")
        if len(data) > MAX_WRITE:
            raise ValueError("at most %d bytes per write" % MAX_WRITE)
        view = memoryview(data)
        deadline = time.time() + 10.0
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except (BlockingIOError, InterruptedError):
                pass
            if view:
                if time.time() > deadline:
                    raise OSError(errno.EAGAIN, "the terminal does not take input")
                select.select([], [self.fd], [], 0.5)
        return len(data)

    def resize(self, rows, cols, height_px=0, width_px=0):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, _winsize(rows, cols, height_px, width_px))

    def close(self, grace=1.0):
        """End the shell (SIGHUP to its session, SIGKILL after grace s); returns its exit code."""
        with self.lock:
            if not self.closed:
                self.closed = True
                if self.proc.poll() is None:
                    for sig in (signal.SIGHUP, signal.SIGCONT):
                        try:
                            os.killpg(self.proc.pid, sig)
                        except OSError:
                            pass
                    try:
                        self.proc.wait(grace)
                    except subprocess.TimeoutExpired:
                        try:
                            os.killpg(self.proc.pid, signal.SIGKILL)
                        except OSError:
                            pass
                        try:
                            self.proc.wait(5.0)
                        except subprocess.TimeoutExpired:
                            pass
                try:
                    os.close(self.fd)
                except OSError:
                    pass
            self.exit_code = self.proc.returncode
        return self.exit_code


class Terminals(object):
    """Every terminal of this agent process, by id."""

    def __init__(self, cwd=None, log=None):
        self.cwd = cwd
        self.log = log
        self._terms = {}
        self._lock = threading.Lock()

    def open(self, rows=24, cols=80):
        ok, why = available()
        if not ok:
            raise OSError(errno.ENOSYS, why)
        with self._lock:
            if len(self._terms) >= MAX_TERMINALS:
                raise OSError(errno.EMFILE, "this board already has %d terminals open" % MAX_TERMINALS)
        term = Terminal(os.urandom(8).hex(), rows, cols, cwd=self.cwd)
        with self._lock:
            self._terms[term.id] = term
        if self.log:
            self.log.info("terminal %s opened (pid %d)", term.id, term.proc.pid)
        return term.id

    def get(self, term_id):
        term = self._terms.get(term_id)
        if term is None:
            raise KeyError("no terminal %r" % (term_id,))
        return term

    def close(self, term_id):
        with self._lock:
            term = self._terms.pop(term_id, None)
        if term is None:
            return None
        code = term.close()
        if self.log:
            self.log.info("terminal %s closed (exit code %s)", term_id, code)
        return code

    def close_all(self):
        for tid in list(self._terms):
            try:
                self.close(tid)
            except Exception:
                pass
