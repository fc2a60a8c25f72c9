"""The workspace side of transfers: device path syntax, workspace paths confined to ``root_dir``,
walking a local tree, hashing and optional compression of what is sent."""
import hashlib
import os
import zlib

from .errors import bad_request, not_found, outside_root

DEFAULT_IGNORE = (".git", "__pycache__", ".ipynb_checkpoints")
MAX_DEVICE_PATH = 4096
READ_CHUNK = 1 << 20          # bytes read at a time when hashing a local file


def check_device_path(path, name="dest"):
    """Syntax check of a device path (the board does the real confinement)."""
    if path is None:
        path = ""
    if not isinstance(path, str):
        raise bad_request("%s must be a string (a path on the device)" % name)
    if "\x00" in path or len(path) > MAX_DEVICE_PATH:
        raise bad_request("%s is not a valid device path" % name)
    if climbs_out(path):
        raise outside_root("%s %r is outside the device root" % (name, path))
    return path


def climbs_out(rel):
    """True when a relative ``/``-path's ``..`` parts climb above where it starts."""
    depth = 0
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _inside(real, root):
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def resolve_workspace(root_dir, source):
    """(absolute path, display path) of a workspace path; ApiError otherwise."""
    if not isinstance(source, str):
        raise bad_request("source must be a string (a path in the Jupyter workspace)")
    if not source.strip() or "\x00" in source or len(source) > MAX_DEVICE_PATH:
        raise bad_request("source must name a file or folder in the Jupyter workspace")
    root = os.path.realpath(os.path.abspath(os.path.expanduser(root_dir)))
    if os.path.isabs(source):
        full = os.path.normpath(source)
        if not _inside(os.path.realpath(full), root) and not _inside(full, root):
            raise outside_root("%r is outside the Jupyter workspace" % source)
    else:
        depth = 0
        for part in source.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            depth += -1 if part == ".." else 1
            if depth < 0:
                raise outside_root("%r is outside the Jupyter workspace" % source)
        full = os.path.normpath(os.path.join(root, source))
    real = os.path.realpath(full)
    if not _inside(real, root):
        raise outside_root("%r is outside the Jupyter workspace (a symlink leads out of it)" % source)
    if not os.path.exists(real):
        raise not_found("%r does not exist in the Jupyter workspace" % source)
    if not (os.path.isfile(real) or os.path.isdir(real)):
        raise bad_request("%r is neither a file nor a folder" % source)
    display = os.path.relpath(real, root).replace(os.sep, "/")
    return real, ("" if display == "." else display)


def _dev_join(*parts):
    out = ""
    for p in parts:
        if not p or p in (".", "/"):
            continue
        p = p.strip("/")
        if not p:
            continue
        out = p if not out else out + "/" + p
    return out


def _ignored(rel, ignore):
    return any(part in ignore for part in rel.split("/"))


def walk_local(top, root, ignore):
    """Files and folders under ``top``: ({rel: (abs, size, mtime)}, [rel dirs]).

    Skips ignored names and symlinks that lead outside the workspace ``root``;
    does not descend into symlinked folders (no loops).
    """
    files = {}
    dirs = []
    for dirpath, dirnames, filenames in os.walk(top):
        relbase = os.path.relpath(dirpath, top)
        relbase = "" if relbase == "." else relbase.replace(os.sep, "/")
        keep = []
        for d in sorted(dirnames):
            if d in ignore or os.path.islink(os.path.join(dirpath, d)):
                continue
            keep.append(d)
            dirs.append(_dev_join(relbase, d))
        dirnames[:] = keep
        for name in sorted(filenames):
            if name in ignore or ".jrd-tmp-" in name:
                continue
            p = os.path.join(dirpath, name)
            try:
                if os.path.islink(p) and not _inside(os.path.realpath(p), root):
                    continue
                st = os.stat(p)
            except OSError:
                continue
            if not os.path.isfile(p):
                continue
            files[_dev_join(relbase, name)] = (p, st.st_size, st.st_mtime)
    return files, dirs


TEXT_EXTENSIONS = frozenset((
    ".py", ".pyi", ".txt", ".md", ".rst", ".json", ".ipynb", ".csv", ".tsv", ".html", ".htm", ".js",
    ".mjs", ".ts", ".css", ".xml", ".svg", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".sh",
    ".c", ".h", ".cc", ".cpp", ".hpp", ".sql", ".log", ".tex", ".lua"))
COMPRESS_MIN = 4096


def maybe_compress(path, data):
    """(wire bytes, encoding): text-like files over 4 KB travel zlib-compressed (level 1,
    cheap next to any board link) when that saves at least a quarter."""
    if len(data) < COMPRESS_MIN or os.path.splitext(path)[1].lower() not in TEXT_EXTENSIONS:
        return data, None
    z = zlib.compress(data, 1)
    if len(z) <= len(data) * 3 // 4:
        return z, "zlib"
    return data, None


def hash_local(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(READ_CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
