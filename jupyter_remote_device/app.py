"""``jupyter remote-device ...``: demo, agent, and helpers to start an agent subprocess."""
import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

READY_PREFIX = "JRD-AGENT LISTENING "


def spawn_agent(host="127.0.0.1", port=0, token=None, root=None, camera="synthetic", extra_args=(),
                env=None, timeout=30.0, python=None, start_new_session=False):
    """Start ``python -m jupyter_remote_device.agent`` and wait until it listens.

    Returns ``(popen, port, token)``. The caller terminates the process. A fresh
    token is made when none is given; ``root`` defaults to a new temp folder.
    """
    token = token or secrets.token_hex(16)
    root = root or tempfile.mkdtemp(prefix="jrd-root-")
    # the token travels in the environment: on the command line every user would see it in ps
    cmd = [python or sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", host,
           "--port", str(port), "--root", root, "--camera", camera]
    cmd += list(extra_args)
    full_env = dict(os.environ)
    # the agent must find this package even when it is only on our sys.path
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full_env["PYTHONPATH"] = here + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    full_env["JRD_AGENT_TOKEN"] = token
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None, env=full_env,
                            text=True, bufsize=1, start_new_session=start_new_session)
    found = {}

    def reader():
        for line in proc.stdout:
            if line.startswith(READY_PREFIX) and "port" not in found:
                found["port"] = int(line.rsplit(":", 1)[1])
                found["event"].set()
        found["event"].set()

    found["event"] = threading.Event()
    threading.Thread(target=reader, daemon=True).start()
    found["event"].wait(timeout)
    if "port" not in found:
        proc.kill()
        proc.wait()
        raise RuntimeError("the agent did not start (exit code %s): %s" % (proc.returncode, " ".join(cmd)))
    proc.jrd_root = root
    return proc, found["port"], token


def stop_process(proc, timeout=10):
    """Terminate a child process, kill it if it has not exited within ``timeout`` seconds, reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class _Stop(Exception):
    """A stop signal (SIGTERM, SIGHUP, SIGINT) reached the demo."""


def _say(text):
    """Print for a person, never failing (nohup, a closed or broken stdout)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def parse_demo_args(argv):
    """The demo's own options; everything else is JupyterLab's, passed on as it is."""
    p = argparse.ArgumentParser(
        prog="jupyter remote-device demo", allow_abbrev=False,
        description="JupyterLab plus a simulated board (synthetic camera) on loopback. Any other "
                    "option is JupyterLab's, passed on unchanged (e.g. --port 8899, "
                    "--ServerApp.certfile=cert.pem, --no-browser).")
    p.add_argument("--agent-port", "--board-port", dest="agent_port", type=int, default=0,
                   help="the simulated board's port (default: a free one)")
    p.add_argument("--lab-port", type=int, default=None, help="same as JupyterLab's --port")
    p.add_argument("--root", default=None, help="the simulated board's file root (default: a temp folder)")
    p.add_argument("--camera", default="synthetic",
                   help="the simulated board's camera: synthetic (default), or file:PATH to play a recording "
                        "(mp4/webm/mjpeg file or frames folder) as its camera, looping")
    args, lab_args = p.parse_known_args(argv)
    lab_args = [a for a in lab_args if a != "--"]
    if args.lab_port is not None:
        lab_args.insert(0, "--ServerApp.port=%d" % args.lab_port)
    return args, lab_args


def _gives(lab_args, *names):
    """True when the JupyterLab options set one of these (as ``--name`` or ``--name=value``)."""
    for a in lab_args:
        if a.split("=", 1)[0] in names:
            return True
    return False


def demo_lab_command(cfg, lab_args):
    cmd = [sys.executable, "-m", "jupyterlab", "--config", cfg]
    if not _gives(lab_args, "--port", "--ServerApp.port"):
        cmd.append("--ServerApp.port=8888")
    if not _gives(lab_args, "--ip", "--ServerApp.ip"):
        cmd.append("--ServerApp.ip=127.0.0.1")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not _gives(lab_args, "--allow-root"):
        cmd.append("--allow-root")  # containers and fresh VMs run as root
    return cmd + lab_args


def demo(argv):
    """Run the simulated board and JupyterLab as one process tree.

    SIGTERM, SIGHUP (unless ignored, as under nohup) and SIGINT stop both and whatever they
    started (kernels, agents), then the demo exits: no orphan keeps a port. The children get
    no terminal (stdin is /dev/null, their own session): a Ctrl-C reaches only the demo, which
    stops them in order.
    """
    from . import proctree

    args, lab_args = parse_demo_args(argv)
    proctree.become_subreaper()
    stopping = {}

    def on_signal(signum, frame):
        if not stopping:
            stopping["signal"] = signum
            raise _Stop()

    handled = [signal.SIGTERM, signal.SIGINT]
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        handled.append(signal.SIGHUP)  # under nohup SIGHUP stays ignored, as nohup asked
    previous = {s: signal.signal(s, on_signal) for s in handled}
    agent = lab = None
    cfg_dir = tempfile.mkdtemp(prefix="jrd-demo-config-")
    try:
        root = args.root or tempfile.mkdtemp(prefix="jrd-demo-board-")
        agent, port, token = spawn_agent(port=args.agent_port, root=root, camera=args.camera,
                                         start_new_session=True)
        cfg = os.path.join(cfg_dir, "jupyter_server_config.py")
        with open(cfg, "w") as f:
            f.write("c.DeviceManager.configured_devices = [%r]\n"
                    % {"host": "127.0.0.1", "port": port, "name": "demo-board", "token": token})
            f.write("c.DeviceManager.mdns = False\n")
            f.write("c.DeviceManager.allowed_networks = ['127.0.0.0/8', '::1/128']\n")
        _say("\n  Simulated board: 127.0.0.1:%d (%s camera), files in %s"
             % (port, "recorded" if args.camera.startswith("file:") else args.camera, root))
        _say("  In JupyterLab: open the Devices sidebar (left), or run the palette command "
             "'Connect device' and pick demo-board.")
        _say("  Stop with Ctrl-C or kill %d: the board and JupyterLab stop with it.\n" % os.getpid())
        lab = subprocess.Popen(demo_lab_command(cfg, lab_args), stdin=subprocess.DEVNULL,
                               start_new_session=True)
        while True:
            try:
                rc = lab.wait(0.5)
                break
            except subprocess.TimeoutExpired:
                if agent.poll() is not None:
                    _say("The simulated board stopped (exit code %s); stopping JupyterLab." % agent.returncode)
                    rc = 1
                    break
        return rc
    except _Stop:
        return 0
    finally:
        # from here on a second signal must not cut the clean-up short
        for s in handled:
            signal.signal(s, signal.SIG_IGN)
        proctree.stop_tree([lab, agent], grace=4.0)
        shutil.rmtree(cfg_dir, ignore_errors=True)
        for s, h in previous.items():
            try:
                signal.signal(s, h)
            except (TypeError, ValueError):
                pass


def bundle(argv):
    """``jupyter remote-device bundle DIR``: the agent folder a user copies to a board by hand."""
    import argparse

    from .link.bundle import agent_files
    from .link.rpyc_bundle import rpyc_version, write_bundle
    p = argparse.ArgumentParser(prog="jupyter remote-device bundle",
                                description="Write the agent, with the rpyc it speaks, into DIR (copy DIR to "
                                            "the board; it needs only Python 3.8+ there).")
    p.add_argument("dir", help="folder to write (created; existing files are replaced)")
    a = p.parse_args(argv)
    dest, n = write_bundle(a.dir, agent_files()[0])
    _say("Wrote %d files (the agent and rpyc %s) to %s.\nOn the board: cd %s && python3 -m "
         "jupyter_remote_device.agent --root ~/work" % (n, rpyc_version(), dest, os.path.basename(dest)))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": demo, "bundle": bundle,
                "agent": lambda a: __import__("jupyter_remote_device.agent.__main__", fromlist=["main"]).main(a)}
    if not argv or argv[0] not in commands:
        print("usage: jupyter remote-device {demo,agent,bundle} [options]\n\n"
              "  demo    JupyterLab plus a simulated board on loopback, ready to connect\n"
              "  agent   run the board agent here (same as python -m jupyter_remote_device.agent)\n"
              "  bundle  write the agent folder (with the rpyc it speaks) to copy onto a board")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
