"""The board's file store: every device path lives under the agent's ``--root``.

Paths (the ``path`` argument of every method) are device paths, relative to the
root.  ``""``, ``"."`` and ``"/"`` all name the root itself, and a leading ``"/"``
is root-relative too (``"/app/main.py"`` is ``<root>/app/main.py``): the device
tree a client sees starts at ``/`` = the root, so an absolute path can never reach
outside it.  ``..`` may be used only while it stays inside the root; a path that
climbs out, or that crosses a symlink resolving outside the root, raises
``PermissionError``.  Malformed paths (not a string, a NUL byte, over 4096
characters) raise ``ValueError``.

Writes are atomic: ``write_open`` creates a temp file ``.<name>.jrd-tmp-<hex>`` in
the destination's directory, chunks go into it, and ``write_close`` fsyncs it,
checks the sha256 the client computed (when given) and ``os.replace``-s it onto the
destination.  A reader never sees a half-written file under the destination name;
temps of an agent that died mid-write are removed at its next start
(``cleanup_stale_temps``, driven by a small journal plus a bounded walk).

Errors are builtin exception types with a message for a person (rpyc rebuilds
builtin exceptions on the client): ``PermissionError`` (outside the root),
``FileNotFoundError``, ``FileExistsError``, ``IsADirectoryError``,
``NotADirectoryError``, ``ValueError`` (bad input, hash or size mismatch) and
``OSError(ENOTEMPTY)``.

Standard library only, Python 3.8 syntax: this module runs on boards.
"""
import errno
import os
import posixpath
import re
import stat as stat_mod
import threading
import time
import zlib

from . import lazy as _lazy
from .digest import bulk_sha256
from .lazy import JOURNAL_NAME

MAX_PATH = 4096
MAX_READ = 16 * 1024 * 1024
MAX_PUT = 64 * 1024 * 1024
TEMP_MARK = ".jrd-tmp-"
TEMP_RE = re.compile(r"^\..*\.jrd-tmp-[0-9a-f]{16}$")
HASH_BLOCK = 1024 * 1024
WALK_DIR_LIMIT = 20000
WALK_TIME_LIMIT = 30.0
WALK_SYNC_TIME = 1.0


def is_temp_name(name):
    """True for our own temp files (and the journal): they are never listed."""
    return name == JOURNAL_NAME or (TEMP_MARK in name and TEMP_RE.match(name) is not None)


def _hash_file(real, block=HASH_BLOCK):
    h = bulk_sha256()
    with open(real, "rb", buffering=0) as f:
        buf = bytearray(block)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


class _Write(object):
    __slots__ = ("handle", "fd", "tmp", "dest", "rel", "size", "mtime", "hasher",
                 "pos", "sequential", "written_end", "lock", "closed")

    def __init__(self, handle, fd, tmp, dest, rel, size, mtime):
        self.handle = handle
        self.fd = fd
        self.tmp = tmp
        self.dest = dest
        self.rel = rel
        self.size = size
        self.mtime = mtime
        self.hasher = bulk_sha256()
        self.pos = 0              # next offset of a sequential write
        self.sequential = True    # every write so far landed at self.pos
        self.written_end = 0      # highest byte written + 1
        self.lock = threading.Lock()
        self.closed = False


# the agent's root folder (code run on the board reads it: "Run file on device"); known before
# this module is loaded (lazy.LazyFiles), and set again by each FileStore
ROOT = _lazy.FILES_ROOT


class FileStore(object):
    def __init__(self, root, log=None):
        global ROOT
        self.root = ROOT = _lazy.prepare_root(root)
        self.log = log
        self._lock = threading.Lock()
        self._writes = {}
        self._journal = os.path.join(self.root, JOURNAL_NAME)
        self._walk_dirs = 0
        self._walk_unfinished = False
        try:
            n = self.cleanup_stale_temps()
            if n and log is not None:
                log.info("removed %d stale temp file(s) left by an interrupted write", n)
        except Exception as e:  # never keep the agent from starting
            if log is not None:
                log.warning("stale temp cleanup failed: %s", e)

    # ------------------------------------------------------------------ paths
    def _check_syntax(self, path):
        if path is None:
            path = ""
        if not isinstance(path, str):
            raise ValueError("a device path must be a string, not %s" % type(path).__name__)
        if "\x00" in path:
            raise ValueError("a device path cannot contain a NUL character")
        if len(path) > MAX_PATH:
            raise ValueError("a device path is limited to %d characters" % MAX_PATH)
        return path

    def _rel(self, path):
        """Normalised root-relative path ("" for the root); refuses escapes."""
        path = self._check_syntax(path)
        norm = posixpath.normpath("/" + path)
        # normpath("/..") == "/": refuse by counting the climb component by component
        depth = 0
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                depth -= 1
                if depth < 0:
                    raise PermissionError("%r is outside the device root" % (path,))
            else:
                depth += 1
        rel = norm.lstrip("/")
        return rel

    def resolve(self, path):
        """Absolute local path for a device path; PermissionError if it escapes."""
        rel = self._rel(path)
        full = os.path.join(self.root, rel) if rel else self.root
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PermissionError("%r is outside the device root (a symlink leads out of it)" % (path,))
        return full

    def _display(self, full):
        rel = os.path.relpath(full, self.root)
        return "" if rel == "." else rel.replace(os.sep, "/")

    # ------------------------------------------------------------------ reading
    def _inside(self, real):
        return real == self.root or real.startswith(self.root + os.sep)

    def _entry(self, name, full):
        if os.path.islink(full) and not self._inside(os.path.realpath(full)):
            # a symlink leading out of the root: listed (it is there), but nothing of its target
            # (size, mtime, file or folder) is shown; opening it is refused (resolve)
            st = os.lstat(full)
            return {"name": name, "type": "file", "size": 0, "mtime": st.st_mtime, "outside_root": True}
        try:
            st = os.stat(full)
        except OSError:
            st = os.lstat(full)  # a dangling symlink: show it, as a file of size 0
        isdir = stat_mod.S_ISDIR(st.st_mode)
        return {"name": name, "type": "directory" if isdir else "file",
                "size": 0 if isdir else st.st_size, "mtime": st.st_mtime}

    def list(self, path=""):
        full = self.resolve(path)
        if not os.path.exists(full):
            raise FileNotFoundError("%r does not exist on the device" % (path,))
        if not os.path.isdir(full):
            raise NotADirectoryError("%r is a file, not a folder" % (path,))
        entries = []
        with os.scandir(full) as it:
            for de in it:
                if is_temp_name(de.name):
                    continue
                try:
                    entries.append(self._entry(de.name, de.path))
                except OSError:
                    continue  # vanished while listing
        entries.sort(key=lambda e: (e["type"] != "directory", e["name"].lower(), e["name"]))
        return {"path": self._display(full), "entries": entries}

    def stat(self, path):
        full = self.resolve(path)
        try:
            st = os.stat(full)
        except FileNotFoundError:
            raise FileNotFoundError("%r does not exist on the device" % (path,))
        isdir = stat_mod.S_ISDIR(st.st_mode)
        return {"path": self._display(full), "name": os.path.basename(full) if full != self.root else "",
                "type": "directory" if isdir else "file",
                "size": 0 if isdir else st.st_size, "mtime": st.st_mtime}

    def _open_file(self, path, flags=os.O_RDONLY):
        full = self.resolve(path)
        if os.path.isdir(full):
            raise IsADirectoryError("%r is a folder, not a file" % (path,))
        try:
            return os.open(full, flags)
        except FileNotFoundError:
            raise FileNotFoundError("%r does not exist on the device" % (path,))

    def read(self, path, offset=0, size=MAX_READ):
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("offset must be a non-negative integer")
        if size is None:
            size = MAX_READ
        if not isinstance(size, int) or size < 0:
            raise ValueError("size must be a non-negative integer")
        size = min(size, MAX_READ)
        fd = self._open_file(path)
        try:
            if hasattr(os, "pread"):
                return os.pread(fd, size, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)
        finally:
            os.close(fd)

    def hash(self, path):
        full = self.resolve(path)
        if os.path.isdir(full):
            raise IsADirectoryError("%r is a folder, not a file" % (path,))
        try:
            st = os.stat(full)
            digest = _hash_file(full)
        except FileNotFoundError:
            raise FileNotFoundError("%r does not exist on the device" % (path,))
        return {"path": self._display(full), "size": st.st_size, "sha256": digest, "mtime": st.st_mtime}

    def hash_many(self, base, rels):
        """sha256 of several files under ``base`` in one call: {rel: sha256 or None}."""
        out = {}
        for rel in rels:
            try:
                out[rel] = self.hash(self._join(base, rel))["sha256"]
            except (OSError, ValueError):
                out[rel] = None
        return out

    def _join(self, base, rel):
        base = self._check_syntax(base)
        rel = self._check_syntax(rel)
        if not base or base in (".", "/"):
            return rel
        return base.rstrip("/") + "/" + rel

    def manifest(self, path="", with_hash=False):
        """Every file and folder under ``path`` (for sync).

        ``{"path", "exists", "type", "files": {rel: {"size","mtime"[,"sha256"]}}, "dirs": [rel]}``
        with "/"-separated paths relative to ``path``.  A missing ``path`` gives
        ``exists: false`` and empty maps; a file gives one entry under its own name.
        Symlinks are not followed into folders (a link to a file is listed as that
        file when it stays inside the root).
        """
        full = self.resolve(path)
        out = {"path": self._display(full), "exists": False, "type": None, "files": {}, "dirs": []}
        if not os.path.exists(full):
            return out
        out["exists"] = True
        if not os.path.isdir(full):
            st = os.stat(full)
            out["type"] = "file"
            ent = {"size": st.st_size, "mtime": st.st_mtime}
            if with_hash:
                ent["sha256"] = _hash_file(full)
            out["files"][os.path.basename(full)] = ent
            return out
        out["type"] = "directory"
        rootlen = len(full.rstrip(os.sep)) + 1
        for dirpath, dirnames, filenames in os.walk(full):
            keep = []
            for d in dirnames:
                dp = os.path.join(dirpath, d)
                if os.path.islink(dp):
                    continue
                keep.append(d)
                out["dirs"].append(dp[rootlen:].replace(os.sep, "/"))
            dirnames[:] = keep
            for name in filenames:
                if is_temp_name(name):
                    continue
                fp = os.path.join(dirpath, name)
                try:
                    if os.path.islink(fp):
                        real = os.path.realpath(fp)
                        if not real.startswith(self.root + os.sep):
                            continue
                    st = os.stat(fp)
                except OSError:
                    continue
                if not stat_mod.S_ISREG(st.st_mode):
                    continue
                ent = {"size": st.st_size, "mtime": st.st_mtime}
                if with_hash:
                    ent["sha256"] = _hash_file(fp)
                out["files"][fp[rootlen:].replace(os.sep, "/")] = ent
        return out

    # ------------------------------------------------------------------ writing
    def _journal_add(self, tmp):
        try:
            with open(self._journal, "a") as f:
                f.write(tmp + "\n")
        except OSError:
            pass  # the bounded walk still finds it

    def _journal_reset_if_idle(self):
        # called with self._lock held
        if not self._writes:
            try:
                os.remove(self._journal)
            except OSError:
                pass

    def write_open(self, path, size=None, mtime=None):
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ValueError("size must be a non-negative integer or null")
        if mtime is not None and (not isinstance(mtime, (int, float)) or isinstance(mtime, bool)):
            raise ValueError("mtime must be a number (epoch seconds) or null")
        full = self.resolve(path)
        if full == self.root or os.path.isdir(full):
            raise IsADirectoryError("%r is a folder: give the file's path" % (path,))
        name = os.path.basename(full)
        if is_temp_name(name):
            raise ValueError("%r is a reserved name" % (name,))
        parent = os.path.dirname(full)
        try:
            os.makedirs(parent, exist_ok=True)
        except FileExistsError:
            raise NotADirectoryError("a parent of %r is a file, not a folder" % (path,))
        except NotADirectoryError:
            raise NotADirectoryError("a parent of %r is a file, not a folder" % (path,))
        # re-check after creating parents: a symlinked parent must not lead out
        self.resolve(path)
        handle = os.urandom(8).hex()
        tmp = os.path.join(parent, "." + name + TEMP_MARK + handle)
        with self._lock:
            self._journal_add(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._writes[handle] = _Write(handle, fd, tmp, full, self._display(full), size, mtime)
        return handle

    def _get(self, handle):
        with self._lock:
            w = self._writes.get(handle) if isinstance(handle, str) else None
        if w is None:
            raise ValueError("unknown or finished write handle %r" % (handle,))
        return w

    def write_chunk(self, handle, data, offset=None):
        w = self._get(handle)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError("chunk data must be bytes")
        if offset is not None and (not isinstance(offset, int) or isinstance(offset, bool) or offset < 0):
            raise ValueError("offset must be a non-negative integer or null")
        n = len(data)
        with w.lock:
            if w.closed:
                raise ValueError("write handle %r is closed" % (handle,))
            if offset is None:
                offset = w.pos
            if w.size is not None and offset + n > w.size:
                raise ValueError("chunk at %d+%d goes past the announced size %d" % (offset, n, w.size))
            view = memoryview(data)
            done = 0
            if offset == w.written_end and offset == w.pos:
                # plain append: os.write at the current position (the common case)
                while done < n:
                    done += os.write(w.fd, view[done:])
            else:
                while done < n:
                    done += os.pwrite(w.fd, view[done:], offset + done)
                os.lseek(w.fd, max(w.written_end, offset + n), os.SEEK_SET)
            if w.sequential and offset == w.pos:
                w.hasher.update(view)
                w.pos += n
            else:
                w.sequential = False
            w.written_end = max(w.written_end, offset + n)
        return n

    def write_close(self, handle, sha256=None):
        if sha256 is not None and not isinstance(sha256, str):
            raise ValueError("sha256 must be a hex string or null")
        w = self._get(handle)
        with w.lock:
            if w.closed:
                raise ValueError("write handle %r is closed" % (handle,))
            w.closed = True
        try:
            os.fsync(w.fd)
            size = os.fstat(w.fd).st_size
            os.close(w.fd)
            w.fd = None
            if w.size is not None and size != w.size:
                raise ValueError("%r: received %d bytes, expected %d" % (w.rel, size, w.size))
            if w.sequential and w.pos == size:
                digest = w.hasher.hexdigest()
            else:
                digest = _hash_file(w.tmp)
            if sha256 is not None and digest != sha256.lower():
                raise ValueError("%r: sha256 mismatch (the board got %s, expected %s); nothing was written"
                                 % (w.rel, digest, sha256.lower()))
            if w.mtime is not None:
                os.utime(w.tmp, (time.time(), float(w.mtime)))
            if os.path.isdir(w.dest):
                raise IsADirectoryError("%r became a folder during the write" % (w.rel,))
            os.replace(w.tmp, w.dest)
            self._fsync_dir(os.path.dirname(w.dest))
            return {"path": w.rel, "size": size, "sha256": digest}
        except BaseException:
            self._discard(w)
            raise
        finally:
            with self._lock:
                self._writes.pop(handle, None)
                self._journal_reset_if_idle()

    def _fsync_dir(self, d):
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _discard(self, w):
        if w.fd is not None:
            try:
                os.close(w.fd)
            except OSError:
                pass
            w.fd = None
        try:
            os.remove(w.tmp)
        except OSError:
            pass

    def put(self, path, data, mtime=None, sha256=None, encoding=None):
        """A whole small file in one call (open + write + verified close).

        ``encoding="zlib"``: ``data`` is zlib-compressed (text files travel smaller
        over a slow link); the sha256 is of the decompressed content.
        """
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("data must be bytes")
        if encoding == "zlib":
            d = zlib.decompressobj()
            try:
                data = d.decompress(data, MAX_PUT)
            except zlib.error as e:
                raise ValueError("compressed data is corrupt: %s" % e)
            if d.unconsumed_tail or not d.eof:
                raise ValueError("compressed data is truncated or larger than %d bytes" % MAX_PUT)
        elif encoding is not None:
            raise ValueError("unknown encoding %r (known: zlib)" % (encoding,))
        handle = self.write_open(path, len(data), mtime)
        try:
            self.write_chunk(handle, data, 0)
        except BaseException:
            self.write_abort(handle)
            raise
        return self.write_close(handle, sha256)

    def write_abort(self, handle):
        with self._lock:
            w = self._writes.pop(handle, None) if isinstance(handle, str) else None
        if w is None:
            return None
        with w.lock:
            w.closed = True
            self._discard(w)
        with self._lock:
            self._journal_reset_if_idle()
        return None

    def open_handles(self):
        with self._lock:
            return list(self._writes)

    def abort_all(self):
        for h in self.open_handles():
            self.write_abort(h)

    # ------------------------------------------------------------------ changing the tree
    def mkdir(self, path, parents=True):
        full = self.resolve(path)
        if os.path.isdir(full):
            return self.stat(path)
        if os.path.exists(full):
            raise FileExistsError("%r exists and is a file" % (path,))
        try:
            if parents:
                os.makedirs(full)
            else:
                os.mkdir(full)
        except FileNotFoundError:
            raise FileNotFoundError("the parent folder of %r does not exist (pass parents=true)" % (path,))
        except FileExistsError:
            if not os.path.isdir(full):
                raise FileExistsError("%r (or one of its parents) exists and is a file" % (path,))
        except NotADirectoryError:
            raise NotADirectoryError("a parent of %r is a file, not a folder" % (path,))
        self.resolve(path)
        return self.stat(path)

    def delete(self, path, recursive=False):
        full = self.resolve(path)
        if full == self.root:
            raise PermissionError("the device root itself cannot be deleted")
        if os.path.islink(full) or not os.path.isdir(full):
            try:
                os.remove(full)
            except FileNotFoundError:
                raise FileNotFoundError("%r does not exist on the device" % (path,))
            return None
        if not recursive:
            try:
                os.rmdir(full)
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise OSError(errno.ENOTEMPTY, "%r is not empty; pass recursive=true" % (path,))
                raise
            return None
        self._rmtree(full)
        return None

    def _rmtree(self, full):
        # never follows symlinks (removes the link itself)
        for dirpath, dirnames, filenames in os.walk(full, topdown=False):
            for name in filenames:
                os.remove(os.path.join(dirpath, name))
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    os.remove(p)
                else:
                    os.rmdir(p)
        os.rmdir(full)

    def rename(self, src, dst):
        s = self.resolve(src)
        d = self.resolve(dst)
        if s == self.root:
            raise PermissionError("the device root itself cannot be renamed")
        if not os.path.lexists(s):
            raise FileNotFoundError("%r does not exist on the device" % (src,))
        if os.path.lexists(d):
            raise FileExistsError("%r already exists" % (dst,))
        if os.path.isdir(s) and (d + os.sep).startswith(s + os.sep):
            raise ValueError("cannot move %r into itself" % (src,))
        parent = os.path.dirname(d)
        if not os.path.isdir(parent):
            os.makedirs(parent)
        os.rename(s, d)
        return self.stat(dst)

    def touch(self, path, mtime):
        """Set a file's mtime (sync uses it when only the mtime differed)."""
        if not isinstance(mtime, (int, float)) or isinstance(mtime, bool):
            raise ValueError("mtime must be a number (epoch seconds)")
        full = self.resolve(path)
        try:
            os.utime(full, (time.time(), float(mtime)))
        except FileNotFoundError:
            raise FileNotFoundError("%r does not exist on the device" % (path,))
        return self.stat(path)

    # ------------------------------------------------------------------ temps
    def cleanup_stale_temps(self, background=True):
        """Remove temp files left by writes that never finished (agent killed).

        Called at start.  Reads the journal of temps this root has seen opened,
        then walks the root for strays (bounded in folders).  The walk runs
        in-line for up to WALK_SYNC_TIME seconds; a bigger root is finished in a
        background thread so a huge root never delays the start.  A temp that
        belongs to a write open right now is never touched.  Returns how many were
        removed in-line.
        """
        removed = 0
        try:
            with open(self._journal) as f:
                listed = [line.rstrip("\n") for line in f]
        except OSError:
            listed = []
        for tmp in listed:
            if tmp and is_temp_name(os.path.basename(tmp)) and tmp.startswith(self.root + os.sep):
                removed += self._remove_stale(tmp)
        walker = os.walk(self.root)
        removed += self._walk_stale(walker, time.time() + (WALK_SYNC_TIME if background else WALK_TIME_LIMIT))
        if self._walk_unfinished and background:
            t = threading.Thread(target=self._walk_stale, args=(walker, time.time() + WALK_TIME_LIMIT, True),
                                 name="jrd-temp-cleanup", daemon=True)
            t.start()
        with self._lock:
            self._journal_reset_if_idle()
        return removed

    def _remove_stale(self, path):
        with self._lock:
            if any(w.tmp == path for w in self._writes.values()):
                return 0
            try:
                os.remove(path)
                return 1
            except OSError:
                return 0

    def _walk_stale(self, walker, deadline, report=False):
        removed = 0
        self._walk_unfinished = True
        for dirpath, _dirnames, filenames in walker:
            self._walk_dirs += 1
            for name in filenames:
                if TEMP_MARK in name and name != JOURNAL_NAME and is_temp_name(name):
                    removed += self._remove_stale(os.path.join(dirpath, name))
            if self._walk_dirs >= WALK_DIR_LIMIT:
                break
            if time.time() > deadline:
                return removed
        self._walk_unfinished = False
        if report and removed and self.log is not None:
            self.log.info("removed %d stale temp file(s) in the background", removed)
        return removed
