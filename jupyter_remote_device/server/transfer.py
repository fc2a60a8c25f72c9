"""Push / sync jobs between the Jupyter workspace and a board (``TransferManager``).

The rooms of a transfer: ``transfer_paths.py`` (workspace paths, local walk, hashing),
``transfer_board.py`` (one connection's wire methods, the pipelined verified push),
``transfer_io.py`` (streamed single-file download / upload for the files/content route).

Every transfer uses its own rpyc connection (``session.connect_new()``), so a big
transfer never stalls the session's heartbeat, exec or camera traffic, and it
pipelines its calls: several ``fs_write_chunk`` (or ``fs_read``) requests of
1 MiB are in flight at once, which is what turns rpyc's per-call latency into
throughput.  All rpyc and file work runs in worker threads; the Tornado loop only
ever sees ``emit`` calls (scheduled with ``call_soon_threadsafe``) and awaits.

Integrity: the server hashes (sha256) what it reads, the board hashes what it
writes, and ``fs_write_close`` refuses to put a file in place when they differ.
A write lands in a temp file next to its destination and is renamed over it only
when complete, so a cancelled or failed push (board killed, network lost) never
leaves a partial file under the destination name.
"""
import asyncio
import collections
import hashlib
import os
import posixpath
import threading
import time
import uuid

from ..link.checks import json_text
from ..link.errors import LinkError
from .errors import bad_request, not_found
from .transfer_board import CHUNK, CHUNK_TIMEOUT, IN_FLIGHT, _Board, _wait, board_error, confirmed, send_file
from .transfer_io import Upload, download
from .transfer_paths import (
    DEFAULT_IGNORE,
    _dev_join,
    _ignored,
    check_device_path,
    hash_local,
    maybe_compress,
    resolve_workspace,
    walk_local,
)

__all__ = ["CHUNK", "CHUNK_TIMEOUT", "IN_FLIGHT", "Cancelled", "Job", "TransferManager", "Upload", "download"]

CANCEL_GRACE = 2.0         # after cancel, close the job's connection if the worker is still waiting
EMIT_INTERVAL = 0.1        # progress events at most 10x/s per job
MAX_FINISHED_JOBS = 200
MTIME_TOLERANCE = 0.001    # seconds; beyond it sync compares sha256


class Cancelled(Exception):
    pass


# ---------------------------------------------------------------------------- jobs
class Job(object):
    def __init__(self, kind, source, dest, device_id, delete=False, display_source=None):
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.state = "running"
        self.bytes_done = 0
        self.bytes_total = 0
        self.files_done = 0
        self.files_total = 0
        self.files_skipped = 0
        self.files_deleted = 0
        self.wire_bytes = 0
        self.error = None
        self.reason = None
        self.verified = None
        self.source = display_source if display_source is not None else source
        self.local = source
        self.dest = dest
        self.device_id = device_id
        self.delete = delete
        self.created = time.time()
        self.started_sending = None
        self.finished = None
        self.cancel_event = threading.Event()
        self.handles = set()
        self.board = None
        self.thread = None
        self.lock = threading.Lock()
        self.last_emit = 0.0

    def rate(self):
        if not self.started_sending or not self.bytes_done:
            return 0.0
        end = self.finished or time.time()
        return self.bytes_done / max(end - self.started_sending, 1e-6)

    def to_dict(self):
        rate = self.rate()
        left = max(self.bytes_total - self.bytes_done, 0)
        eta = None
        if self.state == "running" and rate > 0:
            eta = left / rate
        elif self.state != "running":
            eta = 0.0
        return {
            "id": self.id, "kind": self.kind, "state": self.state,
            "bytes_done": self.bytes_done, "bytes_total": self.bytes_total,
            "files_done": self.files_done, "files_total": self.files_total,
            "files_skipped": self.files_skipped, "files_deleted": self.files_deleted,
            "wire_bytes": self.wire_bytes,
            "rate": rate, "eta": eta, "error": self.error, "reason": self.reason,
            "verified": self.verified, "source": self.source, "dest": self.dest,
            "device_id": self.device_id, "delete": self.delete,
            "created": self.created, "finished": self.finished,
        }


class TransferManager(object):
    """Runs push / sync jobs, one worker thread and one board connection per job.

    ``emit(message)`` receives ``{"type": "job", "job": Job}`` (the events WS
    message of DESIGN.md), always on the event loop thread, at most ~10 times a
    second per job plus every state change.
    """

    def __init__(self, root_dir, emit=None, log=None, ignore=DEFAULT_IGNORE):
        self.root_dir = os.path.realpath(os.path.abspath(os.path.expanduser(root_dir)))
        self._emit_cb = emit
        self.log = log
        self.ignore = frozenset(ignore)
        self._jobs = collections.OrderedDict()
        self._lock = threading.Lock()
        self._loop = None

    # -- events -----------------------------------------------------------
    def _emit(self, job, force=False):
        if self._emit_cb is None:
            return
        now = time.monotonic()
        if not force and now - job.last_emit < EMIT_INTERVAL:
            return
        job.last_emit = now
        snapshot = job.to_dict()
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver, snapshot)
        except RuntimeError:  # loop closed while shutting down
            pass

    def _deliver(self, snapshot):
        try:
            self._emit_cb({"type": "job", "job": snapshot})
        except Exception:  # a broken listener must not break the job
            if self.log:
                self.log.exception("job event listener failed")

    # -- API --------------------------------------------------------------
    def start_push(self, session, source, dest, sync=False, delete=False, ignore=None):
        """Start pushing a workspace file or folder to the board; returns the Job dict.

        ``source`` is relative to the Jupyter workspace (an absolute path must lie
        inside it).  ``dest`` is a device path (relative to the agent's root):

        - a **file** goes *to* ``dest`` (the new file's path), or *into* ``dest``
          under its own name when ``dest`` ends with ``/``, is empty (the device
          root) or is an existing folder on the board;
        - a **folder**'s contents go *to* ``dest`` (the folder is created or
          updated, so ``push proj -> app`` gives ``app/main.py`` and pushing again
          updates the same files), or *into* ``dest`` as ``dest/<name>`` when
          ``dest`` ends with ``/`` or is empty.

        ``sync=True`` sends only files whose size or mtime differ (then compares
        sha256 where only the mtime differs) and keeps mtimes, so a second sync of
        an unchanged folder sends nothing; ``delete=True`` (sync only) also removes
        board files under the destination that the source no longer has.  Names in
        ``ignore`` (default ``.git``, ``__pycache__``, ``.ipynb_checkpoints``) are
        neither sent nor deleted.
        """
        if not isinstance(sync, bool):
            raise bad_request("sync must be true or false")
        if not isinstance(delete, bool):
            raise bad_request("delete must be true or false")
        if delete and not sync:
            raise bad_request("delete=true needs sync=true")
        if ignore is None:
            ignore = self.ignore
        elif not isinstance(ignore, (list, tuple)) or not all(isinstance(x, str) for x in ignore):
            raise bad_request("ignore must be a list of names")
        dest = check_device_path(dest, "dest")
        local, display = resolve_workspace(self.root_dir, source)
        if local == self.root_dir:
            raise bad_request("pick a file or folder inside the workspace, not the whole workspace")
        job = Job("sync" if sync else "push", local, dest, getattr(session, "device_id", None),
                  delete=delete, display_source=display)
        ignore = frozenset(ignore)

        def work(job, board):
            if os.path.isdir(job.local):
                self._push_dir(job, board, ignore)
            else:
                self._push_file(job, board)

        return self.start_job(job, session, work)

    def start_job(self, job, session, work):
        """Run ``work(job, board)`` in a worker thread on a board connection of its own.

        The job is listed (``get``, ``jobs``), cancelled (``cancel``) and reported on the
        events socket like a push: ``work`` raises ``Cancelled`` (see ``stopper``) when the
        job is cancelled, any other exception fails the job with the mapped API error, and
        the job is done when ``work`` returns.  Returns the Job dict (call on the loop).
        """
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        with self._lock:
            self._jobs[job.id] = job
            self._trim()
        job.thread = threading.Thread(target=self._run, args=(job, session, work),
                                      name="jrd-%s-%s" % (job.kind, job.id), daemon=True)
        job.thread.start()
        return job.to_dict()

    def emit_job(self, job, force=False):
        """Report a job's progress on the events socket (at most ~10 times a second unless ``force``)."""
        self._emit(job, force)

    def stopper(self, job):
        """A function that raises ``Cancelled`` once the job is cancelled (poll it between chunks)."""
        return self._stopper(job)

    def get(self, job_id):
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise not_found("no transfer job %r" % (job_id,))
        return job.to_dict()

    def jobs(self):
        with self._lock:
            return [j.to_dict() for j in self._jobs.values()]

    def cancel(self, job_id):
        """Stop a running job (within one chunk); its temp file is removed on the board.

        A finished job keeps its state.  The cleanup happens in the job's thread
        right after; ``wait(job_id)`` can be used to wait for it.
        """
        with self._lock:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise not_found("no transfer job %r" % (job_id,))
        with job.lock:
            if job.state == "running":
                job.cancel_event.set()
                job.state = "cancelled"
                job.error = "cancelled"
                job.finished = time.time()
        self._emit(job, force=True)
        if job.thread is not None and job.thread.is_alive():
            # a board that stopped answering would keep the worker in a wait: close its
            # connection if the worker has not stopped by itself shortly (the agent then
            # aborts the write on disconnect)
            t = threading.Timer(CANCEL_GRACE, self._force_stop, args=(job,))
            t.daemon = True
            t.start()
        return job.to_dict()

    def _force_stop(self, job):
        board = job.board
        if board is not None and job.thread is not None and job.thread.is_alive():
            board.sever()

    def wait(self, job_id, timeout=None):
        """Block until the job's thread has finished (for tests and shutdown; not on the loop)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise not_found("no transfer job %r" % (job_id,))
        if job.thread is not None:
            job.thread.join(timeout)
        return job.to_dict()

    def cancel_device(self, device_id):
        """Cancel every running job of a device (it was removed or disconnected)."""
        with self._lock:
            ids = [j.id for j in self._jobs.values() if j.device_id == device_id and j.state == "running"]
        for jid in ids:
            self.cancel(jid)

    def shutdown(self, timeout=5.0):
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            if j.state == "running":
                self.cancel(j.id)
        deadline = time.monotonic() + timeout
        for j in jobs:
            if j.thread is not None:
                j.thread.join(max(0.0, deadline - time.monotonic()))

    def _trim(self):
        finished = [j for j in self._jobs.values() if j.state != "running"]
        while len(finished) > MAX_FINISHED_JOBS:
            j = finished.pop(0)
            self._jobs.pop(j.id, None)

    # -- the worker -------------------------------------------------------
    def _run(self, job, session, work):
        board = None
        try:
            conn = session.connect_new()
            board = _Board(conn)
            job.board = board
            work(job, board)
            with job.lock:
                if job.state == "running":
                    job.state = "done"
                    job.finished = time.time()
                    if job.verified is None:
                        job.verified = True
        except Cancelled:
            pass
        except Exception as e:
            with job.lock:
                if job.state == "running":
                    api = board_error(e, "the board")
                    job.state = "failed"
                    job.error = api.message
                    job.reason = api.reason
                    job.finished = time.time()
                    job.verified = False
            if self.log:
                self.log.warning("%s %s -> %s failed: %s", job.kind, job.source, job.dest, job.error)
        finally:
            if board is not None:
                for h in list(job.handles):
                    try:
                        board.call("fs_write_abort", h)
                    except Exception:
                        pass
                board.close()
            job.board = None
            self._emit(job, force=True)

    def _stopper(self, job):
        def should_stop():
            if job.cancel_event.is_set():
                raise Cancelled()
        return should_stop

    def _on_bytes(self, job):
        def on_bytes(n):
            job.bytes_done += n
            self._emit(job)
        return on_bytes

    def _send_many(self, job, board, items):
        """items: [(local, remote, size, mtime)].

        Big files go one at a time with pipelined chunks; files up to CHUNK bytes go
        whole in one ``fs_put`` call each, several in flight (per-file round trips
        dominate a folder of small files otherwise).
        """
        stop = self._stopper(job)
        on_bytes = self._on_bytes(job)
        pending = collections.deque()
        chunked = collections.deque()  # big files, and what an agent without fs_put refused

        def settle():
            ar, n, digest, item, wire_len = pending.popleft()
            try:
                confirmed(_wait(ar), digest, n)
            except AttributeError:  # "no such call": an agent older than fs_put: in chunks instead
                board.put_async = None
                job.wire_bytes -= wire_len
                chunked.append(item)
                return
            job.bytes_done += n
            job.files_done += 1
            self._emit(job)

        def drain():
            while pending or chunked:
                while pending:
                    settle()
                while chunked:
                    self._send_chunked(job, board, chunked.popleft(), stop, on_bytes)

        for item in items:
            local, remote, size, mtime = item
            stop()
            if size <= CHUNK and board.put_async is not None:
                with open(local, "rb") as f:
                    data = f.read(CHUNK + 1)
                if len(data) != size:
                    raise ValueError("%s changed while it was being pushed" % os.path.basename(local))
                digest = hashlib.sha256(data).hexdigest()
                wire, encoding = maybe_compress(local, data)
                pending.append((board.put_async(remote, wire, mtime, digest, encoding), size, digest, item,
                                len(wire)))
                job.wire_bytes += len(wire)
                while len(pending) >= IN_FLIGHT * 2:
                    settle()
                continue
            chunked.append(item)
            drain()
        drain()

    def _send_chunked(self, job, board, item, stop, on_bytes):
        local, remote, size, mtime = item
        send_file(board, local, remote, size, mtime, on_bytes=on_bytes, should_stop=stop, handles=job.handles)
        job.wire_bytes += size
        job.files_done += 1
        self._emit(job)

    def _start_sending(self, job, items):
        job.files_total = len(items)
        job.bytes_total = sum(it[2] for it in items)
        job.started_sending = time.time()
        self._emit(job, force=True)

    def _push_file(self, job, board):
        st = os.stat(job.local)
        name = os.path.basename(job.local)
        dest = job.dest
        if dest.endswith("/") or _dev_join(dest) == "":
            target = _dev_join(dest, name)
        else:
            try:
                info = board.json("fs_stat", dest)
            except FileNotFoundError:
                info = None
            target = _dev_join(dest, name) if info and info.get("type") == "directory" else _dev_join(dest)
        job.dest = target
        if job.kind == "sync":
            man = board.json("fs_manifest", target, False)
            if man.get("type") == "directory":
                raise IsADirectoryError("%r is a folder on the device" % target)
            remote = man["files"].get(posixpath.basename(target)) if man.get("exists") else None
            send = self._differs(job, board, {"": (job.local, st.st_size, st.st_mtime)},
                                 {"": remote} if remote else {}, target_of=lambda rel: target)
        else:
            send = [""]
        items = [(job.local, target, st.st_size, st.st_mtime)] if send else []
        job.files_skipped = 0 if send else 1
        self._start_sending(job, items)
        self._send_many(job, board, items)

    def _push_dir(self, job, board, ignore):
        name = os.path.basename(job.local.rstrip(os.sep))
        dest = job.dest
        base = _dev_join(dest, name) if (dest.endswith("/") or _dev_join(dest) == "") else _dev_join(dest)
        job.dest = base
        if base == "" and job.delete:
            # never mirror-delete the whole device root by accident
            raise ValueError("sync with delete needs a destination folder, not the device root")
        files, dirs = walk_local(job.local, self.root_dir, ignore)
        man = board.json("fs_manifest", base, False)
        if man.get("exists") and man.get("type") != "directory":
            raise NotADirectoryError("%r is a file on the device, not a folder" % base)
        remote_files = man.get("files", {}) if man.get("exists") else {}
        remote_dirs = set(man.get("dirs", ())) if man.get("exists") else set()

        if job.kind == "sync":
            send = set(self._differs(job, board, files, remote_files, target_of=lambda rel: _dev_join(base, rel)))
        else:
            send = set(files)
        items = [(files[rel][0], _dev_join(base, rel), files[rel][1], files[rel][2])
                 for rel in sorted(files) if rel in send]
        job.files_skipped = len(files) - len(items)
        self._start_sending(job, items)

        # folders: the base itself, and empty ones (files create their parents)
        if not man.get("exists"):
            board.call("fs_mkdir", base, True)
        parents = set()
        for rel in files:
            d = posixpath.dirname(rel)
            while d:
                parents.add(d)
                d = posixpath.dirname(d)
        for d in dirs:
            if d not in remote_dirs and d not in parents:
                board.call("fs_mkdir", _dev_join(base, d), True)

        self._send_many(job, board, items)

        if job.delete:
            self._delete_extra(job, board, base, files, set(dirs), remote_files, remote_dirs, ignore)

    def _differs(self, job, board, files, remote_files, target_of):
        """Which local files (rels) need sending: size/mtime first, then sha256."""
        send = []
        check = []
        for rel, (_path, size, mtime) in files.items():
            r = remote_files.get(rel)
            if r is None or r.get("size") != size:
                send.append(rel)
            elif abs(float(r.get("mtime", 0)) - mtime) <= MTIME_TOLERANCE:
                continue
            else:
                check.append(rel)
        # same size, different mtime: compare content (board hashes pipelined)
        stop = self._stopper(job)
        pending = collections.deque()

        def settle(item):
            rel, ar = item
            try:
                remote_sha = json_text(_wait(ar), "a hash").get("sha256")
            except (OSError, ValueError, LinkError):
                remote_sha = None
            path, size, mtime = files[rel]
            if remote_sha != hash_local(path):
                send.append(rel)
            else:
                try:  # same content: align the board's mtime so the next sync is quick
                    board.call("fs_touch", target_of(rel), mtime)
                except Exception:
                    pass  # an agent without fs_touch: the next sync compares hashes again

        for rel in check:
            stop()
            pending.append((rel, board.hash_async(target_of(rel))))
            while len(pending) >= IN_FLIGHT:
                settle(pending.popleft())
        while pending:
            settle(pending.popleft())
        return send

    def _delete_extra(self, job, board, base, files, dirs, remote_files, remote_dirs, ignore):
        stop = self._stopper(job)
        gone_dirs = []
        for d in sorted(remote_dirs):
            if d in dirs or _ignored(d, ignore):
                continue
            if any(d.startswith(g + "/") for g in gone_dirs):
                continue
            stop()
            board.call("fs_delete", _dev_join(base, d), True)
            gone_dirs.append(d)
            job.files_deleted += sum(1 for f in remote_files if f.startswith(d + "/"))
        for rel in sorted(remote_files):
            if rel in files or _ignored(rel, ignore):
                continue
            if any(rel.startswith(g + "/") for g in gone_dirs):
                continue
            stop()
            try:
                board.call("fs_delete", _dev_join(base, rel), False)
            except FileNotFoundError:
                pass
            job.files_deleted += 1
        self._emit(job, force=True)


# ---------------------------------------------------------------------------- upload
