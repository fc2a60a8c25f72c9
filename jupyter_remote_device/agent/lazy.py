"""The exec engine and the file store, loaded on first use (the agent's idle footprint,
DESIGN.md "boards we meet").

``executor.py`` is the largest part of the agent, and compiling it (boards often have no
``.pyc`` for code that was pushed to them) costs a few MB of memory that Python keeps.  An
agent that only serves files or the camera never needs it, so ``LazyExecutor`` stands in
for ``executor.Executor``: the first attribute that needs the real engine imports and
builds it (from whichever thread asks), and ``run_forever`` on the main thread waits
until then and hands over to the real one.  Calls that only ask about running code get
the answer "nothing runs" without loading anything.

``files.py`` is the next largest: ``LazyFiles`` stands in for ``files.FileStore`` the same way.
It makes the root folder at once; the store itself (and its clean-up of temp files that a
killed agent left) comes with the first file call, or at once when the journal of unfinished
writes says the last run was cut off mid-write.

Python 3.8 syntax; standard library only.
"""
import os
import threading

JOURNAL_NAME = ".jrd-temps"  # files.py: the temps of writes in progress, one path a line
FILES_ROOT = None  # the agent's root folder once known (files.ROOT: code run on the board reads it)


def prepare_root(root):
    """The real path of the agent's root folder, made when missing (ValueError for a non-path)."""
    if not isinstance(root, str) or not root:
        raise ValueError("the device root must be a non-empty path")
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        os.makedirs(root)
    return os.path.realpath(root)


class _OnFirstUse(object):
    """Builds the real object (``_make``) the first time something needs it, from whichever thread
    asks; any attribute it does not answer itself is the real object's."""

    def __init__(self):
        self._real = None
        self._lock = threading.Lock()

    @property
    def loaded(self):
        return self._real is not None

    def get(self):
        """The real object (imported and built on first call)."""
        real = self._real
        if real is not None:
            return real
        with self._lock:
            if self._real is None:
                self._real = self._make()
                self._made()
            return self._real

    def _made(self):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.get(), name)


class LazyExecutor(_OnFirstUse):
    """Stands in for executor.Executor until something needs it; see the module docstring."""

    def __init__(self, log=None, setup=None):
        _OnFirstUse.__init__(self)
        self._log = log
        self._setup = setup          # setup(executor): wire cameras, the board log
        self._loaded = threading.Event()

    def _make(self):
        from .executor import Executor
        real = Executor(log=self._log)
        if self._setup is not None:
            self._setup(real)
        return real

    def _made(self):
        self._loaded.set()

    # what may be asked without loading the engine ---------------------------------
    def busy(self):
        if self._real is None:
            return {"busy": False, "exec_id": None, "ns": None, "queued": 0}
        return self._real.busy()

    def abandon(self, owner):
        if self._real is not None:
            return self._real.abandon(owner)
        return None

    def interrupt(self, exec_id=None):
        if self._real is None:
            return False
        return self._real.interrupt(exec_id)

    def forget(self, exec_id):
        if self._real is not None:
            self._real.forget(exec_id)

    def run_forever(self, stop_event):
        """Main thread: wait until the engine is wanted (or stop), then run it here."""
        while not stop_event.is_set():
            if self._loaded.wait(0.2):
                return self._real.run_forever(stop_event)


class LazyFiles(_OnFirstUse):
    """Stands in for files.FileStore until a file call needs it; see the module docstring."""

    def __init__(self, root, log=None):
        global FILES_ROOT
        _OnFirstUse.__init__(self)
        self.root = FILES_ROOT = prepare_root(root)
        self._log = log
        if os.path.exists(os.path.join(self.root, JOURNAL_NAME)):
            self.get()  # cut off mid-write last time: clean up now, not at the first call

    def _make(self):
        from .files import FileStore
        return FileStore(self.root, log=self._log)

    # what may be asked without loading the store: nothing is open before it exists
    def write_abort(self, handle):
        if self._real is not None:
            return self._real.write_abort(handle)
        return None

    def abort_all(self):
        if self._real is not None:
            return self._real.abort_all()
        return None
