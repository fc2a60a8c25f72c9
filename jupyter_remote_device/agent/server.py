"""The agent's rpyc server: a ThreadedServer that stays up under abuse.

* ``accept()`` errors never end it: out of file descriptors (EMFILE/ENFILE), buffers or
  memory, a connection reset before accept, a thread that cannot start — each is logged (at
  most once every 10 s) and the server waits a moment and goes on. Only closing it ends it.
* Handshakes are bounded: each has an absolute deadline (``handshake_timeout`` from accept, not
  per read: a client dribbling one byte at a time is cut off at the deadline, TLS included); at
  most ``max_pending`` handshakes run at once, at most ``max_pending_per_address`` from one
  address (a Jupyter server, or an SSH tunnel, opens several at once: camera, transfers);
  connections beyond that are closed at once.
* Authenticated connections skip zlib and re-slicing and refuse absurd frames (wire.py).

Standard library + rpyc, Python 3.8 syntax.
"""
import errno
import socket
import threading
import time

from rpyc.lib import spawn
from rpyc.utils.server import ThreadedServer

from .wire import channel

_RETRY_ERRNOS = frozenset(getattr(errno, n) for n in (
    "EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED", "EPROTO", "EPERM", "ENOSR", "ETIMEDOUT",
    "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "EOPNOTSUPP") if hasattr(errno, n))
_RESOURCE_ERRNOS = frozenset(getattr(errno, n) for n in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
                             if hasattr(errno, n))


class AgentServer(ThreadedServer):
    def __init__(self, *args, **kwargs):
        self.handshake_timeout = float(kwargs.pop("handshake_timeout", 10.0))
        self.max_pending = int(kwargs.pop("max_pending", 64))
        self.max_pending_per_address = int(kwargs.pop("max_pending_per_address", 16))
        ThreadedServer.__init__(self, *args, **kwargs)
        self._pending = {}          # id(sock) -> (sock, peer, deadline)
        self._pending_by = {}       # peer -> count
        self._plock = threading.Lock()
        self._last_warning = {}
        self._reaper = None
        inner = self.authenticator
        if inner is not None:
            self.authenticator = lambda sock: self._bounded_handshake(inner, sock)

    # -- logging without flooding -------------------------------------------------------
    def _warn(self, key, msg, *args):
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= 10.0:
            self._last_warning[key] = now
            self.logger.warning(msg, *args)

    # -- accept loop ----------------------------------------------------------------------
    def accept(self):
        while self.active:
            try:
                sock, addrinfo = self.listener.accept()
            except socket.timeout:
                continue
            except OSError as e:
                if not self.active:
                    return
                code = getattr(e, "errno", None)
                if code in (errno.EINTR, errno.EAGAIN):
                    continue
                if code in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
                    raise EOFError()  # the listener itself is gone (closed)
                if code in _RESOURCE_ERRNOS:
                    self._warn("accept-resource", "cannot accept connections (%s): waiting for resources; "
                               "the agent stays up", e)
                    time.sleep(0.1)
                elif code not in _RETRY_ERRNOS:
                    self._warn("accept-other", "accept failed (%s); the agent stays up", e)
                    time.sleep(0.05)
                continue
            except (MemoryError, RuntimeError) as e:
                self._warn("accept-memory", "accept failed (%s); the agent stays up", e)
                time.sleep(0.1)
                continue
            if not self.active:
                _close(sock)
                return
            self._admit(sock, addrinfo)

    def _admit(self, sock, addrinfo):
        peer = addrinfo[0] if isinstance(addrinfo, tuple) and addrinfo else str(addrinfo)
        if self.authenticator is None:  # no handshake to bound
            self._serve_now(sock)
            return
        with self._plock:
            if len(self._pending) >= self.max_pending or \
                    self._pending_by.get(peer, 0) >= self.max_pending_per_address:
                full = True
            else:
                full = False
                self._pending[id(sock)] = (sock, peer, time.monotonic() + self.handshake_timeout)
                self._pending_by[peer] = self._pending_by.get(peer, 0) + 1
        if full:
            self._warn("pending-" + peer, "too many handshakes in progress (from %s or in total): "
                       "closing new connections until they finish", peer)
            _close(sock)
            return
        self._start_reaper()
        self._serve_now(sock)

    def _serve_now(self, sock):
        try:
            sock.setblocking(True)
            self.clients.add(sock)
            spawn(self._authenticate_and_serve_client, sock)
        except (RuntimeError, MemoryError, OSError) as e:  # "can't start new thread"
            self._warn("thread", "cannot serve a new connection (%s); the agent stays up", e)
            self.clients.discard(sock)
            self._done(sock)
            _close(sock)
            time.sleep(0.05)

    # -- handshakes ---------------------------------------------------------------------
    def _authenticate_and_serve_client(self, sock):
        try:
            ThreadedServer._authenticate_and_serve_client(self, sock)
        except Exception as e:  # a peer gone before its handshake began (getpeername fails), ...
            self.logger.debug("connection ended: %s", e)
        finally:
            self._done(sock)  # also when the handshake never started

    def _done(self, sock):
        with self._plock:
            entry = self._pending.pop(id(sock), None)
            if entry is not None:
                n = self._pending_by.get(entry[1], 1) - 1
                if n > 0:
                    self._pending_by[entry[1]] = n
                else:
                    self._pending_by.pop(entry[1], None)

    def _bounded_handshake(self, inner, sock):
        try:
            with self._plock:
                entry = self._pending.get(id(sock))
            deadline = entry[2] if entry else time.monotonic() + self.handshake_timeout
            return inner(sock, deadline=deadline) if getattr(inner, "takes_deadline", False) else inner(sock)
        finally:
            self._done(sock)

    def _start_reaper(self):
        if self._reaper is not None:
            return
        self._reaper = threading.Thread(target=self._reap, name="agent-handshake-reaper", daemon=True)
        try:
            self._reaper.start()
        except RuntimeError:
            self._reaper = None

    def _reap(self):
        """Cut off handshakes past their deadline, whatever they are blocked in (TLS included)."""
        while self.active:
            time.sleep(0.25)
            now = time.monotonic()
            with self._plock:
                late = [s for s, _, d in self._pending.values() if d < now]
            for s in late:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # -- authenticated connections ------------------------------------------------------
    def _serve_client(self, sock, credentials):
        config = dict(self.protocol_config, credentials=credentials,
                      endpoints=(sock.getsockname(), sock.getpeername()), logger=self.logger)
        conn = self.service._connect(channel(sock), config)
        self._handle_connection(conn)


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass
