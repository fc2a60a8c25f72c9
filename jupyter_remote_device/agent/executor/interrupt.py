"""Interrupting running code: SIGINT to the main thread when the executor owns it, else
``PyThreadState_SetAsyncExc`` plus an interruptible ``time.sleep`` (see the package doc)."""
import signal
import threading
import time


class InterruptMixin(object):
    """The Executor's interrupts (needs ``_lock``, ``_current``, ``_queue``, ``_exec_ident``)."""

    def interrupt(self, exec_id=None):
        with self._lock:
            rec = self._current
            if exec_id is not None and (rec is None or rec.id != exec_id):
                queued = self._execs.get(exec_id)
                if queued is not None and queued.status == "queued":
                    try:
                        self._queue.remove(queued)
                    except ValueError:
                        return False
                    queued.finish("aborted")
                    return True
                return False
            if rec is None:
                return False
            rec.interrupted = True
            self._interrupt_pending = True
            with rec.cond:
                rec.cond.notify_all()   # wakes an input() wait
            ident = self._exec_ident
        self._deliver_interrupt(ident)
        return True

    def _on_sigint(self, signum, frame):
        requested = self._interrupt_pending
        self._interrupt_pending = False
        rec = self._current
        if rec is None:
            if not requested and self._stop_event is not None:
                self._stop_event.set()      # Ctrl-C while idle: stop the agent
            return
        if not requested:
            now = time.time()
            if now - self._last_terminal_sigint < 3.0 and self._stop_event is not None:
                self._stop_event.set()
            self._last_terminal_sigint = now
        rec.interrupted = True
        if self._in_user:
            raise KeyboardInterrupt()

    def _clear_async_exc(self):
        ident = self._exec_ident
        if ident is None:
            return
        try:
            import ctypes
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        except Exception:
            pass

    def _deliver_interrupt(self, ident):
        if ident is None:
            return
        if self._main_mode:
            try:
                signal.pthread_kill(ident, signal.SIGINT)
                return
            except Exception as e:  # pragma: no cover
                self.log.warning("pthread_kill failed: %s", e)
        if not self._in_user:
            return  # _run() sees rec.interrupted before it starts user code
        try:
            import ctypes
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))
        except Exception as e:  # pragma: no cover
            self.log.warning("cannot interrupt: %s", e)

    def _install_sleep_wrapper(self):
        if self._orig_sleep is not None:
            return
        orig = time.sleep
        self._orig_sleep = orig
        ex = self

        def sleep(secs):
            rec = ex._current
            if rec is None or threading.get_ident() != ex._exec_ident:
                return orig(secs)
            end = time.time() + max(0.0, secs)
            while True:
                if rec.interrupted:
                    raise KeyboardInterrupt()
                left = end - time.time()
                if left <= 0:
                    return None
                orig(min(left, 0.05))

        sleep.__doc__ = orig.__doc__
        time.sleep = sleep
