"""``%pip ...`` in the remote-device kernel: pip runs on the board, its log in the cell.

The magic line becomes one line of board code (line numbers stay): it checks that pip
exists and that there is room (and says plainly what is missing), writes local ``.whl``
files given on the line (read here, next to the kernel: e.g. made with ``pip download
--platform ...``) to a temp folder on the board and adds it as ``--find-links``, then runs
``python -m pip`` there, streaming its output. Interrupt stops pip.
"""
import base64
import os
import shlex

MAX_WHEELS = 32 * 1024 * 1024   # bytes of local wheels sent inline with one %pip line

BOARD_SOURCE = r'''
def _jrd_pip(args, wheels):
    import base64, os, shutil, subprocess, sys, sysconfig, tempfile
    r = subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        last = (r.stdout.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1][:200]
        raise RuntimeError("pip is not installed for %s on the board (%s). Install it there with "
                           "`%s -m ensurepip` or the system's package (e.g. `apt install python3-pip`)."
                           % (sys.executable, last, sys.executable))
    site = sysconfig.get_paths().get("purelib") or sys.prefix
    if "--target" in args and args.index("--target") + 1 < len(args):
        site = args[args.index("--target") + 1]
    p = os.path.abspath(site)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    free = shutil.disk_usage(p).free
    need = max(20e6, 3 * sum(len(w) * 3 // 4 for _, w in wheels))
    if free < need:
        raise RuntimeError("not enough room on the board: %.1f MB free on %s, pip needs about %.1f MB. "
                           "Free some space (e.g. `pip cache purge`) or use --target on another disk."
                           % (free / 1e6, p, need / 1e6))
    tmp, extra = None, []
    if wheels:
        tmp = tempfile.mkdtemp(prefix="jrd-wheels-")
        for name, data in wheels:
            path = os.path.join(tmp, os.path.basename(name))
            with open(path, "wb") as f:
                f.write(base64.b64decode(data))
            extra.append(path)
        extra += ["--find-links", tmp]
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "pip"] + list(args) + extra, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        for line in iter(proc.stdout.readline, b""):
            sys.stdout.write(line.decode("utf-8", "replace"))
        proc.wait()
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, True)
    if proc.returncode:
        sys.stderr.write("pip exited with code %d\n" % proc.returncode)
    elif args and args[0] in ("install", "uninstall"):
        print("Note: you may need to restart the kernel to use updated packages.")
'''


class PipUsage(ValueError):
    pass


def board_code(rest, cwd=None):
    """One line of board code for ``%pip REST`` (raises PipUsage for a person)."""
    try:
        args = shlex.split(rest)
    except ValueError as e:
        raise PipUsage("%%pip: %s" % e)
    if not args:
        raise PipUsage("%pip needs a pip command, e.g. %pip install numpy")
    wheels, keep, total = [], [], 0
    for a in args:
        local = os.path.join(cwd or os.getcwd(), os.path.expanduser(a))
        if a.endswith(".whl") and os.path.isfile(local):
            size = os.path.getsize(local)
            total += size
            if total > MAX_WHEELS:
                raise PipUsage("%%pip: local wheels over %d MB: push them with \"Install package on device…\" "
                               "instead" % (MAX_WHEELS >> 20))
            with open(local, "rb") as f:
                wheels.append((os.path.basename(local), base64.b64encode(f.read()).decode("ascii")))
        else:
            keep.append(a)
    return "(lambda g: (exec(%r, g), g['_jrd_pip'](%r, %r)))({})" % (BOARD_SOURCE, keep, wheels)
