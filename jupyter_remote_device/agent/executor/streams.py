"""The exec thread's standard streams and input: ``sys.stdout``/``sys.stderr`` proxies that send
what running code writes to its exec, ``input()`` and ``getpass.getpass()`` as input requests."""
import sys
import threading


class StdinNotImplementedError(RuntimeError):
    """input() was called but the client does not accept input requests."""


class _StreamProxy(object):
    """sys.stdout/sys.stderr replacement: the exec thread's writes go to the exec."""

    def __init__(self, name, original, executor):
        self._name = name
        self._original = original
        self._executor = executor

    def _target(self):
        ex = self._executor
        rec = ex._current
        if rec is not None and threading.get_ident() == ex._exec_ident:
            return rec
        out = ex.output
        return out.thread_exec() if out is not None else None  # a thread a running cell started

    def write(self, s):
        rec = self._target()
        if rec is None:
            if self._executor.output is not None:  # the board log (output.py)
                return self._executor.output.orphan(self._name, s)
            if self._original is None:
                return len(s)
            return self._original.write(s)
        if not isinstance(s, str):
            if isinstance(s, (bytes, bytearray)):
                s = bytes(s).decode("utf-8", "replace")
            else:
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        rec.add_stream(self._name, s)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._target() is None and self._original is not None:
            try:
                self._original.flush()
            except Exception:
                pass

    def isatty(self):
        return False

    def writable(self):
        return True

    @property
    def encoding(self):
        return getattr(self._original, "encoding", "utf-8") or "utf-8"

    def __getattr__(self, name):
        if self._original is None:
            raise AttributeError(name)
        return getattr(self._original, name)


class StreamsMixin(object):
    """The Executor's stream and input plumbing (needs ``_current``, ``_exec_ident``)."""

    def _input(self, prompt="", password=False):
        rec = self._target()
        if rec is None or threading.get_ident() != self._exec_ident:
            raise StdinNotImplementedError("input() works only in the code a client is running")
        if not rec.allow_stdin:
            raise StdinNotImplementedError(
                "input() was called, but this client does not support input requests.")
        prompt = str(prompt)
        with rec.cond:
            rec.input_value = None
            rec.awaiting_input = True
        rec.add_event({"type": "input_request", "prompt": prompt, "password": bool(password)})
        try:
            with rec.cond:
                while rec.input_value is None:
                    if rec.interrupted:
                        raise KeyboardInterrupt()
                    rec.cond.wait(0.1)
                value = rec.input_value
                rec.input_value = None
        finally:
            rec.awaiting_input = False
        return value

    def _install_streams(self):
        """Route sys.stdout/stderr through proxies (again if someone replaced them)."""
        if self._saved_streams is None:
            self._saved_streams = {}
        for name in ("stdout", "stderr"):
            cur = getattr(sys, name)
            if isinstance(cur, _StreamProxy):
                cur._executor = self
                continue
            self._saved_streams.setdefault(name, cur)
            setattr(sys, name, _StreamProxy(name, cur, self))

    def _install_getpass(self):
        """getpass.getpass() in running code asks the client (a password input request)."""
        try:
            import getpass
        except Exception:  # pragma: no cover
            return
        if getattr(getpass.getpass, "_jrd_wrapped", False):
            getpass.getpass._jrd_executor[0] = self
            return
        orig = getpass.getpass
        holder = [self]

        def wrapped(prompt="Password: ", stream=None):
            ex = holder[0]
            if ex is not None and ex._current is not None and threading.get_ident() == ex._exec_ident:
                return ex._input(prompt, password=True)
            return orig(prompt, stream)

        wrapped._jrd_wrapped = True
        wrapped._jrd_executor = holder
        wrapped.__wrapped__ = orig
        getpass.getpass = wrapped

    def _restore_streams(self):
        for name in ("stdout", "stderr"):
            cur = getattr(sys, name)
            if isinstance(cur, _StreamProxy) and cur._executor is self:
                setattr(sys, name, cur._original)
        self._saved_streams = None
