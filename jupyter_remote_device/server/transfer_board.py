"""The board side of transfers: one transfer connection's wire methods (looked up once) and a
pipelined, sha256-verified file push. Every answer passes ``link.checks``."""
import collections
import hashlib
import os
import socket

from ..link import calls
from ..link.checks import json_text
from ..link.errors import LinkError
from .errors import api_error

CHUNK = 1 << 20            # bytes per fs_write_chunk / fs_read call
IN_FLIGHT = 4              # pipelined calls per connection
CHUNK_TIMEOUT = 120.0      # a single call that takes longer means the board is stuck


def board_error(e, what="the board"):
    """The ApiError for what a transfer call raised (errors.api_error, named for the transfer)."""
    return api_error(e, what)


class _Board(object):
    """The wire methods of one transfer connection, each one round trip (``link.calls``: a call by
    name, HANDLE_CALLATTR; looking a method up first would cost a round trip of its own)."""

    def __init__(self, conn):
        self.conn = conn
        self._root = conn.root
        self.put_async = self.put  # None once an agent without fs_put said so (transfer.py)

    def put(self, *args):
        return calls.start(self._root, "fs_put", args)

    def write_chunk(self, *args):
        return calls.start(self._root, "fs_write_chunk", args)

    def read_async(self, *args):
        return calls.start(self._root, "fs_read", args)

    def close_async(self, *args):
        return calls.start(self._root, "fs_write_close", args)

    def hash_async(self, *args):
        return calls.start(self._root, "fs_hash", args)

    def start(self, name, *args):
        return calls.start(self._root, name, args)

    def call(self, name, *args):
        return calls.call(self._root, name, *args)

    def json(self, name, *args):
        return json_text(self.call(name, *args), "an answer to %s" % name)

    def finish_write(self, handle, sha256, size=None):
        """fs_write_close: the board puts the file in place when its sha256 matches ours; we check
        what it says it wrote too (a board that lies about a result is caught here)."""
        return confirmed(_wait(self.close_async(handle, sha256), CHUNK_TIMEOUT * 2), sha256, size)

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass

    def sever(self):
        """Cut the link under a worker blocked in send/recv (conn.close() itself would
        block writing its goodbye to a board that stopped reading)."""
        try:
            inner = getattr(self.conn, "conn", self.conn)  # classic.ClassicConnection wraps one
            inner._channel.stream.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass


def confirmed(answer, sha256, size=None, what="a write"):
    """The board's ``{"path", "size", "sha256"}`` for a write, when it matches what we sent
    (LinkError ``protocol`` otherwise: the file is not verified)."""
    res = json_text(answer, "the result of %s" % what)
    if res.get("sha256") != sha256 or (size is not None and res.get("size") != size):
        raise LinkError("protocol", "the board reported %s for %s (sha256 %s, %s bytes); we sent sha256 %s, "
                        "%s bytes: not verified" % ("another content", res.get("path") or what,
                                                    str(res.get("sha256"))[:64], res.get("size"), sha256, size))
    return res


def _wait(ar, timeout=CHUNK_TIMEOUT):
    ar.set_expiry(timeout)
    return ar.value


def send_file(board, local, remote, size, mtime, on_bytes=None, should_stop=None, handles=None):
    """Push one local file to ``remote`` (device path) with pipelined chunks.

    Returns the board's ``{"path","size","sha256"}``; the write is verified by sha256
    on the board.  ``on_bytes(n)`` is called as chunks are acknowledged;
    ``should_stop()`` is polled between chunks (raise Cancelled from it).
    """
    handle = board.call("fs_write_open", remote, size, mtime)
    if handles is not None:
        handles.add(handle)
    hasher = hashlib.sha256()
    pending = collections.deque()
    ok = False
    try:
        with open(local, "rb", buffering=0) as f:
            offset = 0
            while True:
                if should_stop is not None:
                    should_stop()
                data = f.read(CHUNK)
                if not data:
                    break
                hasher.update(data)
                pending.append((board.write_chunk(handle, data, offset), len(data)))
                offset += len(data)
                del data
                while len(pending) >= IN_FLIGHT:
                    ar, n = pending.popleft()
                    _wait(ar)
                    if on_bytes is not None:
                        on_bytes(n)
            while pending:
                ar, n = pending.popleft()
                _wait(ar)
                if on_bytes is not None:
                    on_bytes(n)
            if should_stop is not None:
                should_stop()
        if offset != size:
            raise ValueError("%s changed while it was being pushed (%d bytes read, %d expected)"
                             % (os.path.basename(local), offset, size))
        res = board.finish_write(handle, hasher.hexdigest(), size)
        ok = True
        return res
    finally:
        if handles is not None:
            handles.discard(handle)
        if not ok:
            try:
                board.call("fs_write_abort", handle)
            except Exception:
                pass  # the connection is gone: the agent aborts the write on disconnect
