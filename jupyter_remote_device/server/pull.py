"""Pull jobs: a board file or folder copied into the Jupyter workspace (the twin of push).

``POST devices/{id}/pull {"source": device path, "dest": workspace path}`` answers 202 with a
Job (``kind: "pull"``) that runs in the push machinery (``TransferManager.start_job``): its
own board connection, pipelined ``fs_read`` calls of 1 MiB, progress on the events socket,
``DELETE jobs/{id}`` to cancel.  Each file is written to a temp file beside its destination
(``.NAME.jrd-tmp-XXXX``, which push and sync skip), checked against the board's size and
sha256, then renamed over the destination: a cancelled or failed pull never leaves a partial
file under the destination name.

Where things go (as push, the other way round):

- a **file** goes *to* ``dest`` (the new file's workspace path), or *into* ``dest`` under its
  own name when ``dest`` is empty (the workspace root), ends with ``/`` or is an existing
  workspace folder; missing parent folders are made;
- a **folder**'s contents go *to* ``dest`` (made or updated), or *into* ``dest/<name>`` when
  ``dest`` is empty or ends with ``/``.

Everything the board says (stat, manifest, bytes) is checked before it is used: plain types,
names that stay inside the destination, no more bytes than announced.  Nothing is written
outside the workspace (``..``, absolute paths and symlinks that lead out are refused).
"""
import collections
import errno
import hashlib
import os
import posixpath
import time
import uuid

import tornado.web
from jupyter_server.auth.decorator import authorized

from .errors import ApiError, bad_request, outside_root
from .handlers import BaseHandler
from .transfer import Job
from .transfer_board import CHUNK, IN_FLIGHT, _wait
from .transfer_paths import MAX_DEVICE_PATH, _dev_join, _inside, check_device_path, climbs_out

MAX_ENTRIES = 20000            # files + folders in one folder pull
MAX_FILE_SIZE = 1 << 40        # a size beyond this is not a real file
TEMP_MARK = ".jrd-tmp-"


def _protocol(message):
    return ApiError(502, "protocol", "the board gave a malformed answer: %s" % message)


# ---------------------------------------------------------------------------- workspace side
def workspace_target(root_dir, dest):
    """(absolute path, display path) of a workspace destination that may not exist yet.

    Refuses ``..`` that climbs out, absolute paths outside the workspace, and an existing
    ancestor (a symlink) whose real path is outside it.
    """
    if not isinstance(dest, str):
        raise bad_request("dest must be a string (a path in the Jupyter workspace)")
    if "\x00" in dest or len(dest) > MAX_DEVICE_PATH:
        raise bad_request("dest is not a valid workspace path")
    root = os.path.realpath(os.path.abspath(os.path.expanduser(root_dir)))
    rel = dest.replace("\\", "/")
    if os.path.isabs(dest):
        full = os.path.normpath(dest)
        if not _inside(full, root):
            raise outside_root("%r is outside the Jupyter workspace" % dest)
        rel = os.path.relpath(full, root).replace(os.sep, "/")
    if climbs_out(rel):
        raise outside_root("%r is outside the Jupyter workspace" % dest)
    full = os.path.normpath(os.path.join(root, rel))
    check_inside(full, root, dest)
    display = os.path.relpath(full, root).replace(os.sep, "/")
    return full, ("" if display == "." else display)


def check_inside(full, root, what):
    """Raise outside-root when the deepest existing part of ``full`` resolves out of ``root``."""
    probe = full
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not _inside(os.path.realpath(probe), root):
        raise outside_root("%r is outside the Jupyter workspace (a symlink leads out of it)" % (what,))


def _makedirs(path, root):
    """Make ``path`` (and parents) inside the workspace; never through a symlink that leads out."""
    check_inside(path, root, os.path.relpath(path, root))
    if os.path.isdir(path):
        return
    if os.path.lexists(path):
        raise bad_request("%r is a file in the workspace, not a folder" % os.path.relpath(path, root))
    _local(os.makedirs, path, 0o777, True, what=path)
    if not _inside(os.path.realpath(path), root):  # raced with a symlink
        raise outside_root("%r is outside the Jupyter workspace" % os.path.relpath(path, root))


# ---------------------------------------------------------------------------- board answers
def _check_rel(rel):
    """A board-supplied relative path (manifest key): "/"-separated names, no way up or out."""
    if not isinstance(rel, str) or not rel or len(rel) > MAX_DEVICE_PATH or "\x00" in rel:
        raise _protocol("a file name that is not a plain relative path")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _protocol("the file name %r leads out of the folder" % rel)
    return rel


def _check_stat(st, path):
    if not isinstance(st, dict) or st.get("type") not in ("file", "directory"):
        raise _protocol("fs_stat of %r is not a file or folder description" % path)
    size = st.get("size", 0)
    mtime = st.get("mtime")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_SIZE:
        raise _protocol("fs_stat of %r gives an impossible size" % path)
    if mtime is not None and (not isinstance(mtime, (int, float)) or isinstance(mtime, bool)):
        raise _protocol("fs_stat of %r gives a non-numeric mtime" % path)
    return st


def _check_manifest(man, path):
    if not isinstance(man, dict) or not isinstance(man.get("files"), dict) or \
            not isinstance(man.get("dirs", []), list):
        raise _protocol("fs_manifest of %r is not a folder description" % path)
    files = {}
    for rel, ent in man["files"].items():
        _check_rel(rel)
        files[rel] = _check_stat(dict(ent, type="file") if isinstance(ent, dict) else None, rel)
    dirs = [_check_rel(d) for d in man.get("dirs", [])]
    if len(files) + len(dirs) > MAX_ENTRIES:
        raise ApiError(413, "too-large", "%r holds more than %d files and folders: pull its sub-folders one by one"
                       % (path, MAX_ENTRIES))
    return files, dirs


# ---------------------------------------------------------------------------- the worker
def workspace_error(e, what):
    """The ApiError for a failure writing ``what`` into the workspace (not the board's fault)."""
    if isinstance(e, ApiError):
        return e
    msg = "%s: %s" % (what, e.strerror or e)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return ApiError(507, "no-space", "The Jupyter workspace has no space left for %s" % what)
    if isinstance(e, PermissionError):
        return ApiError(403, "not-allowed", "Cannot write into the Jupyter workspace: %s" % msg)
    if isinstance(e, (IsADirectoryError, NotADirectoryError)):
        return bad_request("Cannot write into the Jupyter workspace: %s" % msg)
    return ApiError(409, "os-error", "Cannot write into the Jupyter workspace: %s" % msg)


def _temp_beside(final):
    return os.path.join(os.path.dirname(final), ".%s%s%s" % (os.path.basename(final)[:200], TEMP_MARK,
                                                            uuid.uuid4().hex[:8]))


def fetch_file(board, remote, final, size, mtime, on_bytes, should_stop):
    """Copy one board file to ``final`` through a temp file; verified by size and sha256."""
    if os.path.isdir(final):
        raise bad_request("%r is a folder in the workspace" % os.path.basename(final))
    tmp = _temp_beside(final)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise workspace_error(e, os.path.basename(final))
    ok = False
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            pending = collections.deque()
            offset = got = 0
            while got < size:
                should_stop()
                while len(pending) < IN_FLIGHT and offset < size:
                    n = min(CHUNK, size - offset)
                    pending.append((board.read_async(remote, offset, n), n))
                    offset += n
                ar, n = pending.popleft()
                data = _wait(ar)
                if not isinstance(data, bytes) or len(data) > n:
                    raise _protocol("fs_read of %r sent more than it was asked for" % remote)
                if len(data) < n:
                    raise ValueError("%r changed on the board while it was being pulled (shorter than %d bytes)"
                                     % (remote, size))
                _local(f.write, data, what=final)
                hasher.update(data)
                got += n
                on_bytes(n)
            should_stop()
            _local(f.flush, what=final)
            _local(os.fsync, f.fileno(), what=final)
        digest = hasher.hexdigest()
        answer = board.json("fs_hash", remote)
        if not isinstance(answer, dict) or answer.get("sha256") != digest or answer.get("size") != size:
            raise ValueError("%r changed on the board while it was being pulled (sha256 differs)" % remote)
        if mtime is not None:
            _local(os.utime, tmp, (time.time(), float(mtime)), what=final)
        _local(os.replace, tmp, final, what=final)
        ok = True
        return digest
    finally:
        if not ok:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _local(fn, *args, what=""):
    try:
        return fn(*args)
    except OSError as e:
        raise workspace_error(e, os.path.basename(what))


class PullWork(object):
    """What a pull job does in its worker thread (``TransferManager.start_job`` runs it)."""

    def __init__(self, transfers, source, dest, target, target_display, into):
        self.transfers = transfers
        self.root = transfers.root_dir
        self.source = source
        self.dest = dest
        self.target = target
        self.target_display = target_display
        self.into = into  # dest named a folder to put the source in under its own name

    def __call__(self, job, board):
        st = _check_stat(board.json("fs_stat", self.source), self.source)
        name = posixpath.basename(self.source.strip("/"))
        stop = self.transfers.stopper(job)

        def on_bytes(n):
            job.bytes_done += n
            self.transfers.emit_job(job)

        if st["type"] == "file":
            final = self.target
            if self.into or os.path.isdir(final):
                final = os.path.join(final, name)
            job.dest = os.path.relpath(final, self.root).replace(os.sep, "/")
            items = [(self.source, final, st["size"], st.get("mtime"))]
            self._start(job, items)
            _makedirs(os.path.dirname(final), self.root)
            check_inside(final, self.root, job.dest)
            self._fetch(job, board, items, on_bytes, stop)
            return
        base = os.path.join(self.target, name) if (self.into and name) else self.target
        if os.path.realpath(base) == self.root:
            raise bad_request("pick a folder inside the workspace to pull into, not the whole workspace")
        job.dest = os.path.relpath(base, self.root).replace(os.sep, "/")
        files, dirs = _check_manifest(board.json("fs_manifest", self.source, False), self.source)
        items = [(_dev_join(self.source, rel), os.path.join(base, *rel.split("/")), ent["size"], ent.get("mtime"))
                 for rel, ent in sorted(files.items())]
        self._start(job, items)
        _makedirs(base, self.root)
        for d in sorted(dirs):
            stop()
            _makedirs(os.path.join(base, *d.split("/")), self.root)
        self._fetch(job, board, items, on_bytes, stop)

    def _start(self, job, items):
        job.files_total = len(items)
        job.bytes_total = sum(it[2] for it in items)
        job.started_sending = time.time()
        self.transfers.emit_job(job, force=True)

    def _fetch(self, job, board, items, on_bytes, stop):
        for remote, final, size, mtime in items:
            stop()
            _makedirs(os.path.dirname(final), self.root)
            fetch_file(board, remote, final, size, mtime, on_bytes, stop)
            job.files_done += 1
            job.wire_bytes += size
            self.transfers.emit_job(job)


def start_pull(transfers, session, source, dest):
    """Validate a pull request and start its job; returns the Job dict (202)."""
    if not isinstance(source, str) or not isinstance(dest, str):
        raise bad_request('expected {"source": device path, "dest": workspace path}')
    source = check_device_path(source, "source")
    target, display = workspace_target(transfers.root_dir, dest)
    into = dest == "" or dest.endswith("/") or display == ""
    if os.path.lexists(target) and not os.path.isdir(target) and dest.endswith("/"):
        raise bad_request("%r is a file in the workspace, not a folder" % dest)
    job = Job("pull", source, display, getattr(session, "device_id", None))
    job.local = target
    return transfers.start_job(job, session, PullWork(transfers, source, dest, target, display, into))


class PullHandler(BaseHandler):
    """POST devices/{id}/pull {"source": device path, "dest": workspace path} -> 202 Job."""

    @tornado.web.authenticated
    @authorized
    async def post(self, device_id):
        body = self.body_json()
        source, dest = self.source_dest(body, "device path", "workspace path")
        check_device_path(source, "source")
        workspace_target(self.transfers.root_dir, dest)
        sess = self.manager.require_session(device_id)
        await sess.call_json("fs_stat", source)  # a missing source is a 404 now, not a failed job
        self.reply(start_pull(self.transfers, sess, source, dest), 202)
