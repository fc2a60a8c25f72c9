"""``jupyter remote-device ...``: demo, agent, and helpers to start an agent subprocess."""
import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading

READY_PREFIX = "JRD-AGENT LISTENING "


def spawn_agent(host="127.0.0.1", port=0, token=None, root=None, camera="synthetic", extra_args=(),
                env=None, timeout=30.0, python=None):
    """Start ``python -m jupyter_remote_device.agent`` and wait until it listens.

    Returns ``(popen, port, token)``. The caller terminates the process. A fresh
    token is made when none is given; ``root`` defaults to a new temp folder.
    """
    token = token or secrets.token_hex(16)
    root = root or tempfile.mkdtemp(prefix="jrd-root-")
    cmd = [python or sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", host,
           "--port", str(port), "--token", token, "--root", root, "--camera", camera]
    cmd += list(extra_args)
    full_env = dict(os.environ)
    # the agent must find this package even when it is only on our sys.path
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full_env["PYTHONPATH"] = here + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, env=full_env, text=True, bufsize=1)
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


def demo(argv):
    p = argparse.ArgumentParser(prog="jupyter remote-device demo",
                                description="JupyterLab plus a simulated board (synthetic camera) on loopback.")
    p.add_argument("--port", type=int, default=0, help="agent port (default: a free one)")
    p.add_argument("--lab-port", type=int, default=8888)
    p.add_argument("--root", default=None, help="the simulated board's file root (default: a temp folder)")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("lab_args", nargs=argparse.REMAINDER, help="more arguments for jupyter lab")
    args = p.parse_args(argv)
    root = args.root or tempfile.mkdtemp(prefix="jrd-demo-board-")
    proc, port, token = spawn_agent(port=args.port, root=root, camera="synthetic")
    cfg_dir = tempfile.mkdtemp(prefix="jrd-demo-config-")
    cfg = os.path.join(cfg_dir, "jupyter_server_config.py")
    with open(cfg, "w") as f:
        f.write("c.DeviceManager.configured_devices = [%r]\n"
                % {"host": "127.0.0.1", "port": port, "name": "demo-board", "token": token})
        f.write("c.DeviceManager.mdns = False\n")
        f.write("c.DeviceManager.allowed_networks = ['127.0.0.0/8', '::1/128']\n")
    print("\n  Simulated board: 127.0.0.1:%d (synthetic camera), files in %s" % (port, root))
    print("  In JupyterLab: open the Devices sidebar (left), or run the palette command "
          "'Connect device' and pick demo-board.\n")
    sys.stdout.flush()
    cmd = [sys.executable, "-m", "jupyterlab", "--config", cfg, "--ServerApp.port=%d" % args.lab_port,
           "--ServerApp.ip=127.0.0.1"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and fresh VMs run as root
    cmd += [a for a in args.lab_args if a != "--"]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0
    finally:
        stop_process(proc, 5)
        shutil.rmtree(cfg_dir, ignore_errors=True)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"demo": demo, "agent": lambda a: __import__("jupyter_remote_device.agent.__main__",
                                                             fromlist=["main"]).main(a)}
    if not argv or argv[0] not in commands:
        print("usage: jupyter remote-device {demo,agent} [options]\n\n"
              "  demo   JupyterLab plus a simulated board on loopback, ready to connect\n"
              "  agent  run the board agent here (same as python -m jupyter_remote_device.agent)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
