"""Graceful stop of the agent (SIGTERM, SIGHUP, Ctrl-C twice): within a few seconds, always.

On a stop signal (``Stopper.request``, called from the signal handler on the main thread):

1. the board is marked stopping: every call a client makes from then on fails with
   ``EOFError("agent-stopping: ...")``, which the Jupyter side reads as "the
   agent said it is stopping" (the device shows *stopped*, not a network error);
2. the running cell is interrupted (it ends with a note on stderr), queued ones aborted;
3. each connected client is given up to ``NOTICE_S`` seconds to hear it (its next call: a
   heartbeat, an exec poll, a camera frame); clients that have heard it or hung up are done;
4. open writes are aborted (their temp files removed), cameras closed, the server closed;
5. if the main thread is still stuck in user code (a C call, a loop that swallows
   KeyboardInterrupt), the process exits anyway (``os._exit``) after ``FORCE_S``.

Standard library only, Python 3.8 syntax.
"""
import os
import threading
import time

from .wire import STOP_PREFIX

NOTICE_S = 3.5   # a little more than the Jupyter side's default heartbeat interval (3 s)
FORCE_S = 1.5    # after the clean-up, how long the main thread may still take


class Stopper(object):
    def __init__(self, board, server=None, stop_event=None, log=None):
        self.board = board
        self.server = server
        self.stop_event = stop_event
        self.log = log
        self.reason = None
        self.done = threading.Event()
        self._thread = None

    @property
    def requested(self):
        return self.reason is not None

    def message(self):
        return "%sthe agent on this board is stopping (%s)" % (STOP_PREFIX, self.reason)

    def request(self, reason):
        """Begin the stop (safe to call from a signal handler, several times: no lock is taken
        here, the main thread may hold any of them when the signal lands)."""
        if self.reason is not None:
            return
        self.reason = reason
        self.board.stopping = self.message()
        if self.stop_event is not None:
            self.stop_event.set()
        self._thread = threading.Thread(target=self._run, name="agent-stop", daemon=True)
        self._thread.start()

    def _abort_cells(self):
        ex = self.board.executor
        if not getattr(ex, "loaded", True):
            return  # the exec engine never ran (lazy.py): nothing to interrupt
        ex = getattr(ex, "_real", None) or ex  # the engine itself (its lock), not the lazy stand-in
        try:
            with ex._lock:
                queued = [r.id for r in ex._queue]
                rec = ex._current
            for exec_id in queued:
                ex.interrupt(exec_id)
            if rec is not None:
                rec.add_stream("stderr", "\n[jupyter-remote-device: the agent is stopping (%s); "
                                         "the cell was interrupted]\n" % self.reason)
                ex.interrupt()
        except Exception as e:  # never let the clean-up fail on the executor's internals
            if self.log:
                self.log.warning("stop: could not interrupt the running code: %s", e)

    def _clients_heard(self):
        with self.board.lock:
            services = list(self.board.services)
        return all(getattr(s, "_heard_stop", False) for s in services)

    def _run(self):
        t0 = time.time()
        if self.log:
            self.log.warning("stopping (%s)", self.reason)
        self._abort_cells()
        while time.time() - t0 < NOTICE_S and not self._clients_heard():
            time.sleep(0.05)
        self.cleanup()
        if self.server is not None:
            try:
                self.server.close()
            except Exception:
                pass
        self.done.set()
        # the main thread returns from run_forever once the cell is gone; give it a moment
        time.sleep(FORCE_S)
        if self.log:
            self.log.warning("the running code did not stop in time: exiting anyway")
        os._exit(0)

    def cleanup(self):
        files = self.board.files
        try:
            files.abort_all()  # temp files of unfinished writes removed
        except Exception:
            pass
        terms = getattr(self.board, "_terminals", None)
        if terms is not None:  # shells opened from JupyterLab end with the agent
            try:
                terms.close_all()
            except Exception:
                pass
        cams = self.board.cameras
        if cams is not None:
            try:
                cams.close_all()
            except Exception:
                pass

    def wait(self, timeout=None):
        """Main thread: wait for the clean-up (clients told, writes aborted, cameras closed)."""
        self.done.wait(timeout)
