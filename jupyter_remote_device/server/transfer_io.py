"""Streamed single-file download and upload between a board and a client (the files/content
route): pipelined reads, chunked verified writes, each on its own board connection."""
import asyncio
import collections
import hashlib

from ..link.checks import data as board_data
from .errors import bad_request
from .transfer_board import CHUNK, IN_FLIGHT, _Board, _wait, board_error
from .transfer_paths import check_device_path


class _Reader(object):
    def __init__(self, session, path, chunk=CHUNK, in_flight=IN_FLIGHT):
        self.session = session
        self.path = path
        self.chunk = chunk
        self.in_flight = in_flight
        self.board = None
        self.size = 0
        self.next_offset = 0
        self.delivered = 0
        self.pending = collections.deque()

    def open(self):
        try:
            self.board = _Board(self.session.connect_new())
            st = self.board.json("fs_stat", self.path)
        except Exception as e:
            self.close()
            raise board_error(e, "the board")
        if st.get("type") == "directory":
            self.close()
            raise bad_request("%r is a folder on the device; list it instead" % self.path)
        self.size = int(st.get("size") or 0)
        return st

    def next(self):
        try:
            while len(self.pending) < self.in_flight and self.next_offset < self.size:
                n = min(self.chunk, self.size - self.next_offset)
                self.pending.append(self.board.read_async(self.path, self.next_offset, n))
                self.next_offset += n
            if not self.pending:
                return b""
            data = board_data(_wait(self.pending.popleft()), "a file chunk")
        except Exception as e:
            raise board_error(e, "the board")
        if not data:  # the file shrank under us: end here
            self.pending.clear()
            self.next_offset = self.size
        self.delivered += len(data)
        return data

    def close(self):
        if self.board is not None:
            self.board.close()
            self.board = None


async def download(session, path, write, flush, on_stat=None):
    """Stream a device file: ``write(bytes)`` then ``await flush()`` per chunk.

    The file is never held whole in memory: at most IN_FLIGHT chunks of CHUNK
    bytes are in flight.  ``on_stat(stat_dict)`` (optional) is called before the
    first write, e.g. to set Content-Length.  Errors before the first byte are
    ApiErrors (404 not-found, 403 outside-root, 400 for a folder, 502/504 board).
    """
    check_device_path(path, "path")
    loop = asyncio.get_running_loop()
    reader = _Reader(session, path)
    try:
        st = await loop.run_in_executor(None, reader.open)
        if on_stat is not None:
            on_stat(st)
        while True:
            data = await loop.run_in_executor(None, reader.next)
            if not data:
                break
            write(data)
            await flush()
        return {"path": st.get("path", path), "size": reader.delivered}
    finally:
        await loop.run_in_executor(None, reader.close)


class Upload(object):
    """A streamed PUT: bytes arrive in small pieces, go to the board in 1 MiB chunks.

    ``start()`` opens the board write (a temp file), ``feed(chunk)`` buffers and
    sends pipelined chunks, ``finish()`` verifies the sha256 and renames the temp
    onto ``path``; ``abort()`` (idempotent) removes the temp.  Errors are ApiErrors.
    """

    def __init__(self, session, path, size=None, mtime=None):
        check_device_path(path, "path")
        if not path.strip("/").strip():
            raise bad_request("path must name a file on the device")
        self.session = session
        self.path = path
        self.size = size
        self.mtime = mtime
        self.board = None
        self.handle = None
        self.hasher = hashlib.sha256()
        self.buf = bytearray()
        self.offset = 0
        self.pending = collections.deque()
        self.done = False
        self._loop = None

    def _run(self, fn, *args):
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop.run_in_executor(None, fn, *args)

    def _open(self):
        try:
            self.board = _Board(self.session.connect_new())
            self.handle = self.board.call("fs_write_open", self.path, self.size, self.mtime)
        except Exception as e:
            self._close_board()
            raise board_error(e, "the board")

    def _send(self, data, drain=False):
        try:
            if data:
                self.hasher.update(data)
                self.pending.append(self.board.write_chunk(self.handle, data, self.offset))
                self.offset += len(data)
            while self.pending and (drain or len(self.pending) >= IN_FLIGHT):
                _wait(self.pending.popleft())
        except Exception as e:
            raise board_error(e, "the board")

    def _close(self):
        try:
            res = self.board.finish_write(self.handle, self.hasher.hexdigest(), self.offset)
        except Exception as e:
            raise board_error(e, "the board")
        self.handle = None
        self._close_board()
        return res

    def _abort(self):
        if self.board is not None and self.handle is not None:
            try:
                self.board.call("fs_write_abort", self.handle)
            except Exception:
                pass
        self.handle = None
        self._close_board()

    def _close_board(self):
        if self.board is not None:
            self.board.close()
            self.board = None

    async def start(self):
        await self._run(self._open)

    async def feed(self, chunk):
        if self.done or self.handle is None:
            raise bad_request("this upload is not open")
        self.buf += chunk
        if len(self.buf) >= CHUNK:
            data = bytes(self.buf)
            self.buf = bytearray()
            await self._run(self._send, data)

    async def finish(self):
        if self.done or self.handle is None:
            raise bad_request("this upload is not open")
        data = bytes(self.buf)
        self.buf = bytearray()
        await self._run(self._send, data, True)
        self.done = True
        return await self._run(self._close)

    async def abort(self):
        self.done = True
        self.buf = bytearray()
        if self.board is not None:
            await self._run(self._abort)
