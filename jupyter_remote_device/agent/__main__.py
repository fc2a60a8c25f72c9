"""``python -m jupyter_remote_device.agent``: serve this board over rpyc.

Prints ``JRD-AGENT LISTENING host:port`` on stdout once it accepts connections.
Code sent by ``exec`` runs on this process's main thread (see executor.py); the
rpyc server runs in background threads.
"""
import ipaddress
import logging
import os
import signal
import sys
import threading
import types

from rpyc.utils.helpers import classpartial

from . import __version__, auth
from .server import AgentServer
from .service import AgentService, Board
from .wire import RPYC_CONFIG

CAMERA_CHOICES = ("auto", "synthetic", "opencv", "picamera2", "maix", "none")

# the same locked-down rpyc settings as our client side: exposed_* methods only, no pickle
SERVER_CONFIG = dict(RPYC_CONFIG)


def forget_cli(loaded_before):
    """argparse (and gettext, locale, ... that it pulls in) is needed once, at start: let their
    memory go (the parsed options are kept as a SimpleNamespace, which holds nothing of them)."""
    for name in set(sys.modules) - loaded_before:
        if name.split(".")[0] in ("argparse", "gettext", "locale", "_locale"):
            sys.modules.pop(name, None)


def forget_module(name):
    """Let one of our modules that is needed only at start go (its code is memory the idle agent keeps)."""
    sys.modules.pop(__package__ + "." + name, None)
    package = sys.modules.get(__package__)
    if package is not None and hasattr(package, name):
        delattr(package, name)


def trim_memory():
    """Give the memory that compiling our modules used back to the system (glibc keeps freed
    heap otherwise: a board without .pyc files would idle a few MB heavier). Best effort."""
    import gc
    gc.collect()
    if not _compiled_from_source():
        return  # loaded from .pyc: little to give back, and ctypes itself costs a third of a MB
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except Exception:  # no ctypes, or not glibc (musl has no malloc_trim): nothing to do
        pass


def _compiled_from_source():
    """True when one of our modules had no usable .pyc (it was compiled at start)."""
    for name, mod in list(sys.modules.items()):
        if name.startswith("jupyter_remote_device.") and getattr(mod, "__file__", None):
            cached = getattr(mod, "__cached__", None)
            try:
                if not cached or os.stat(cached).st_mtime < os.stat(mod.__file__).st_mtime:
                    return True
            except OSError:
                return True
    return False


def is_loopback(host):
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _camera_arg(value):
    if value in CAMERA_CHOICES or (value.startswith("file:") and len(value) > 5):
        return value
    import argparse
    raise argparse.ArgumentTypeError("invalid choice: %r (choose from %s, or file:PATH)"
                                     % (value, ", ".join(CAMERA_CHOICES)))


# The agent's options, written once: (flag, dest, type, default, help). A flag whose type is a
# bool takes no value and stores that bool.
OPTIONS = (
    ("--host", "host", str, "0.0.0.0", "address to listen on (default 0.0.0.0)"),
    ("--port", "port", int, 18861, "TCP port (default 18861; 0 picks a free one)"),
    ("--token", "token", str, None,
     "shared secret (visible in ps: prefer --token-file or the JRD_AGENT_TOKEN environment "
     "variable); default: reuse or create ~/.config/jupyter-remote-device/token"),
    ("--token-file", "token_file", str, None, "read the token from this file (created if missing)"),
    ("--root", "root", str, None, "folder that file operations are confined to (default ~/jrd-root)"),
    ("--camera", "camera", _camera_arg, "auto",
     "camera backend (default auto); file:PATH plays a recording (mp4/webm/mjpeg file or "
     "frames folder) as the camera, looping"),
    ("--certfile", "certfile", str, None, "TLS certificate (PEM) to use instead of the agent's own self-signed one"),
    ("--keyfile", "keyfile", str, None, "TLS private key (PEM)"),
    ("--no-tls", "no_tls", True, False,
     "serve the board link unencrypted (default: TLS with a certificate made on first start, kept beside the token)"),
    ("--insecure-no-auth", "insecure_no_auth", True, False,
     "accept connections without a token (anyone who can reach the port can run code)"),
    ("--log-level", "log_level", str, "WARNING", None),
    ("--handshake-timeout", "handshake_timeout", float, 10.0,
     "seconds a client has for the whole handshake (default 10)"),
    ("--max-pending", "max_pending", int, 64, "handshakes in progress at once, in total (default 64)"),
    ("--max-pending-per-address", "max_pending_per_address", int, 16,
     "handshakes in progress at once from one address (default 16)"),
    ("--mdns", "mdns", True, None,
     "advertise on mDNS/DNS-SD (default: on when zeroconf is installed and --host is not loopback)"),
    ("--no-mdns", "mdns", False, None, "do not advertise on mDNS"),
)


def quick_args(argv):
    """The options read without argparse, whose memory an idle agent would keep (~0.35 MB, even
    once forgotten): only the exact ``--flag value`` / ``--flag=value`` forms of OPTIONS. None for
    anything else (help, an abbreviation, a bad value), which ``parse_args`` then handles and explains."""
    table = {o[0]: o for o in OPTIONS}
    values = {o[1]: o[3] for o in OPTIONS}
    i = 0
    while i < len(argv):
        flag, eq, text = argv[i].partition("=")
        opt = table.get(flag)
        if opt is None:
            return None
        kind = opt[2]
        i += 1
        if isinstance(kind, bool):
            if eq:
                return None
            values[opt[1]] = kind
            continue
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                return None
            text = argv[i]
            i += 1
        try:
            values[opt[1]] = kind(text)
        except Exception:
            return None
    return types.SimpleNamespace(**values)


def parse_args(argv=None):
    import argparse  # dropped again once parsed (see forget_cli)
    p = argparse.ArgumentParser(prog="jupyter-remote-device-agent",
                                description="Serve this board to JupyterLab (jupyter-remote-device agent).",
                                epilog="As a service: %(prog)s install-service [--user|--system] [--dry-run] "
                                       "[agent options], uninstall-service, status (--help on each).")
    for flag, dest, kind, default, help_text in OPTIONS:
        if isinstance(kind, bool):
            p.add_argument(flag, dest=dest, action="store_const", const=kind, default=default, help=help_text)
        elif kind is _camera_arg:
            p.add_argument(flag, dest=dest, type=kind, default=default, help=help_text,
                           metavar="|".join(CAMERA_CHOICES) + "|file:PATH")
        else:
            p.add_argument(flag, dest=dest, type=kind, default=default, help=help_text)
    return p.parse_args(argv)


def make_cameras(name, log):
    if name == "none":
        return None
    try:
        from .camera import CameraHub
    except ImportError as e:  # Pillow-less board without camera modules
        log.warning("no camera support: %s", e)
        return None
    try:
        return CameraHub(name, log=log)
    except Exception as e:
        if name != "auto":
            raise
        log.warning("no camera: %s", e)
        return None


SERVICE_ACTIONS = ("install-service", "uninstall-service", "status")
REEXEC_MARK = "JRD_AGENT_REEXEC"


def _without_token(argv):
    """argv without ``--token T`` / ``--token=T``, and the token."""
    out, token, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--token" and i + 1 < len(argv):
            token = argv[i + 1]
            i += 2
            continue
        if a.startswith("--token="):
            token = a[len("--token="):]
        else:
            out.append(a)
        i += 1
    return out, token


def hide_token(argv):
    """``--token T`` is readable by every user of the board in ``ps``: warn, and restart this
    process (same pid) with the token in the environment (readable only by its own user)."""
    rest, token = _without_token(argv)
    if token is None:
        return
    sys.stderr.write("\n*** WARNING: --token is visible to every user of this machine (ps, /proc): use "
                     "--token-file FILE or the %s environment variable. Restarting without it on the "
                     "command line. ***\n\n" % auth.TOKEN_ENV)
    if os.environ.get(REEXEC_MARK) or token not in sys.argv or not sys.executable:
        return  # not our own command line (embedded), or already tried: go on as we are
    import subprocess
    env = dict(os.environ)
    env[auth.TOKEN_ENV] = token
    env[REEXEC_MARK] = "1"
    if getattr(sys.stdout, "write_through", False):  # started with -u: keep it unbuffered
        env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable] + subprocess._args_from_interpreter_flags() + ["-m", "jupyter_remote_device.agent"]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, cmd + rest, env)
    except OSError:
        pass


def _capture_fds(output):
    """fds 1/2 to pipes (output.py); the console log keeps writing to the real stderr."""
    if os.environ.get("JUPYTER_REMOTE_DEVICE_NO_FD_CAPTURE"):
        return
    try:
        output.capture_fds()
    except OSError as e:  # pragma: no cover
        logging.getLogger("jupyter_remote_device.agent").warning("no fd capture: %s", e)
        return
    console = output.echo_file("stderr")
    if console is None:
        return
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.setStream(console)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SERVICE_ACTIONS:
        from . import service_install  # the agent as a service (systemd / procd / sysv)
        return service_install.main(argv)
    hide_token(argv)
    loaded_before = set(sys.modules)
    args = quick_args(argv) or types.SimpleNamespace(**vars(parse_args(argv)))
    forget_cli(loaded_before)
    env_token = os.environ.pop(auth.TOKEN_ENV, None)  # not handed on to what the board's code starts
    os.environ.pop(REEXEC_MARK, None)
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s agent %(levelname)s %(message)s")
    for h in logging.getLogger().handlers:
        h.setLevel(level)  # the console keeps --log-level; the board log takes INFO and up
    log = logging.getLogger("jupyter_remote_device.agent")
    log.setLevel(min(level, logging.INFO))
    from .output import BoardLogHandler, Output
    output = Output()
    log.addHandler(BoardLogHandler(output.board_log))

    if args.insecure_no_auth:
        token = None
        sys.stderr.write("\n*** WARNING: --insecure-no-auth: ANYONE who can reach %s:%s can run code on this "
                         "board. Use it only on a trusted, isolated network. ***\n\n" % (args.host, args.port))
        if not is_loopback(args.host):
            sys.stderr.write("*** WARNING: listening beyond loopback (%s) without authentication. ***\n\n"
                             % args.host)
    elif args.token or env_token:
        token = args.token or env_token
    else:
        token, created = auth.load_or_create_token(args.token_file)
        where = args.token_file or auth.token_path()
        if created:
            print("JRD-AGENT TOKEN %s (saved to %s)" % (token, where))
        else:
            print("JRD-AGENT TOKEN (reusing the one saved in %s)" % where)

    from . import tlscert
    ssl_context, fingerprint, tls_note = None, None, None
    if args.certfile:
        ssl_context = auth.make_server_ssl_context(args.certfile, args.keyfile)
        fingerprint = tlscert.fingerprint_file(args.certfile)
    elif args.insecure_no_auth or args.no_tls:
        tls_note = "plain: %s" % ("--insecure-no-auth" if args.insecure_no_auth else "--no-tls")
        if args.no_tls and not args.insecure_no_auth:
            sys.stderr.write("\n*** WARNING: --no-tls: the board link is not encrypted; anyone on this network "
                             "can read the code, files and camera frames it carries. ***\n\n")
    else:  # TLS by default: our own self-signed certificate, made on first start beside the token
        config_dir = os.path.dirname(os.path.abspath(os.path.expanduser(args.token_file or auth.token_path())))
        ssl_context, fingerprint, tls_note = tlscert.load_or_create(
            config_dir, warn=lambda text: sys.stderr.write("\n*** %s ***\n\n" % text))

    forget_module("tlscert")  # needed once, at start
    root = os.path.abspath(os.path.expanduser(args.root or os.path.join("~", "jrd-root")))
    from .lazy import LazyExecutor, LazyFiles
    files = LazyFiles(root, log=log)
    cameras = make_cameras(args.camera, log)

    def setup(executor):  # when the exec engine is first needed (lazy.py)
        executor.use_cameras(cameras)  # show_camera() stills
        output.attach(executor)  # threads a cell starts write to it; the rest goes to the board log

    executor = LazyExecutor(log=log, setup=setup)
    board = Board(files, executor, cameras, log=log)
    board.output = output
    board.tls = {"tls": ssl_context is not None, "tls_fingerprint": fingerprint, "tls_note": tls_note}

    authenticator = auth.AgentAuthenticator(token, __version__, ssl_context=ssl_context, log=log)
    server = AgentServer(classpartial(AgentService, board), hostname=args.host, port=args.port,
                         authenticator=authenticator, protocol_config=SERVER_CONFIG, logger=log,
                         ipv6=":" in args.host, handshake_timeout=args.handshake_timeout,
                         max_pending=args.max_pending,
                         max_pending_per_address=max(1, min(args.max_pending_per_address, args.max_pending)))
    server._listen()  # listen() before announcing: rpyc's start() would only do it in the thread (race)
    port = server.port
    stop = threading.Event()

    def serve():
        try:
            server.start()
        finally:
            stop.set()

    t = threading.Thread(target=serve, name="rpyc-server", daemon=True)
    t.start()

    from .lifecycle import Stopper
    stopper = Stopper(board, server, stop, log)

    def on_term(signum, frame):
        stopper.request(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_term)
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, on_term)  # the terminal went away (under nohup it stays ignored)
    adv = None
    if args.mdns or (args.mdns is None and not is_loopback(args.host)):
        from . import mdns  # optional zeroconf advertisement (agent/mdns.py)
        if args.mdns or mdns.available():
            adv = mdns.start(args.host, port, __version__, auth=token is not None, log=log)
    print("JRD-AGENT LISTENING %s:%d" % (args.host, port))
    print("JRD-AGENT ROOT %s" % root)
    print("JRD-AGENT TLS %s" % ("sha256 " + fingerprint if ssl_context is not None else "off (%s)" % tls_note))
    sys.stdout.flush()
    _capture_fds(output)
    trim_memory()
    log.info("agent %s listening on %s:%d, root %s", __version__, args.host, port, root)
    try:
        executor.run_forever(stop)
    except KeyboardInterrupt:
        pass
    finally:
        if not stopper.requested:  # Ctrl-C, or the server thread ended
            stopper.request("SIGINT" if t.is_alive() else "server ended")
        stopper.wait(30)
        if adv is not None:
            adv.close()
        server.close()
        board.terminals.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
