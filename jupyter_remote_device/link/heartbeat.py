"""A heartbeat on a board connection: notice a board that stops answering (SIGSTOP, Wi-Fi gone)
within ``timeout`` seconds, instead of waiting on rpyc's 30 s request timeout or TCP's minutes.

Every ``interval`` seconds an rpyc ping goes out on the connection; when none comes back within
``timeout``, the connection's socket is shut down, so every call waiting on it fails at once
(``EOFError``), and ``on_lost(reason)`` is told. A connection that breaks otherwise (EOF, reset,
an agent that is stopping) is left to its users, who see why. One daemon thread per watched
connection; it ends when the connection closes or breaks.
"""
import socket
import threading
import time

INTERVAL = 1.0
TIMEOUT = 4.0   # + INTERVAL: a frozen board is noticed within 5 s


def cut(conn):
    """Shut down a connection's socket (agent, classic or bridge connection alike)."""
    for holder in (conn, getattr(conn, "conn", None)):
        try:
            holder._channel.stream.sock.shutdown(socket.SHUT_RDWR)
            return True
        except Exception:
            continue
    return False


class Heartbeat(object):
    def __init__(self, conn, interval=INTERVAL, timeout=TIMEOUT, on_lost=None, label="the board"):
        self.conn = conn
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.on_lost = on_lost
        self.label = label
        self.lost = None           # why the board was given up, once it was
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jrd-heartbeat", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _closed(self):
        try:
            return bool(self.conn.closed)
        except Exception:
            return True

    def _run(self):
        while not self._stop.wait(self.interval):
            if self._closed():
                return
            t0 = time.monotonic()
            try:
                self.conn.ping(timeout=self.timeout)
                continue
            except Exception as e:
                if self._stop.is_set() or self._closed():
                    return
                if time.monotonic() - t0 < self.timeout * 0.9 and not _is_timeout(e):
                    return  # the connection broke (the board said why, or hung up): its users see that
                why = "%s stopped answering (no heartbeat within %g s)" % (self.label, self.timeout)
            self.lost = why
            cut(self.conn)
            if self.on_lost is not None:
                try:
                    self.on_lost(why)
                except Exception:
                    pass
            return


def _is_timeout(e):
    return type(e).__name__ in ("AsyncResultTimeout", "timeout", "TimeoutError")
