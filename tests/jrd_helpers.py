"""Real processes for discovery / classic / SSH tests (loopback only)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ClassicServer:
    """A stock rpyc classic server (what MaixPy3 boards run) on 127.0.0.1, HOME in a temp dir."""

    def __init__(self, port=0):
        self.home = tempfile.mkdtemp(prefix="jrd-classic-home-")
        env = dict(os.environ, HOME=self.home)
        env.pop("PYTHONPATH", None)  # nothing of ours on the board's path: the code is sent over
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from rpyc.cli.rpyc_classic import main; main()",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=self.home)
        found = {}
        ev = threading.Event()

        def reader():
            for line in self.proc.stderr:
                m = re.search(r"server started on \[[^\]]*\]:(\d+)", line)
                if m and "port" not in found:
                    found["port"] = int(m.group(1))
                    ev.set()
            ev.set()

        threading.Thread(target=reader, daemon=True).start()
        ev.wait(30)
        if "port" not in found:
            self.close()
            raise RuntimeError("rpyc_classic did not start")
        self.port = found["port"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)


class PlainServer:
    """Something that is not rpyc: accepts, says a line, closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


async def wait_for(fn, timeout=15.0, interval=0.2):
    """Poll ``await fn()`` until it returns something truthy; returns it (or the last value)."""
    import asyncio

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(interval)
    return value


SSHD = "/usr/sbin/sshd"


def ssh_keygen(path, kind="ed25519"):
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "jrd-test", "-f", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path + ".pub") as f:
        return f.read().strip()


class SshServer:
    """A real OpenSSH server on 127.0.0.1 with a test host key, a test user key and HOME in a temp dir."""

    def __init__(self):
        import getpass

        self.dir = tempfile.mkdtemp(prefix="jrd-sshd-")
        os.chmod(self.dir, 0o755)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home)
        self.user = getpass.getuser()
        self.host_key = os.path.join(self.dir, "host_ed25519")
        self.host_pub = ssh_keygen(self.host_key)
        self.user_key = os.path.join(self.dir, "user_ed25519")
        user_pub = ssh_keygen(self.user_key)
        self.other_key = os.path.join(self.dir, "other_ed25519")
        ssh_keygen(self.other_key)
        self.authorized_keys = os.path.join(self.dir, "authorized_keys")
        with open(self.authorized_keys, "w") as f:
            f.write(user_pub + "\n")
        os.chmod(self.authorized_keys, 0o600)
        self.port = free_port()
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write("[127.0.0.1]:%d %s\n" % (self.port, " ".join(self.host_pub.split()[:2])))
        self.config = os.path.join(self.dir, "sshd_config")
        lines = [
            "ListenAddress 127.0.0.1",
            "Port %d" % self.port,
            "HostKey %s" % self.host_key,
            "PidFile %s" % os.path.join(self.dir, "sshd.pid"),
            "AuthorizedKeysFile %s" % self.authorized_keys,
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding local",
            "Subsystem sftp internal-sftp",
            "SetEnv HOME=%s" % self.home,
            "LogLevel ERROR",
        ]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sshd exited: %s" % self.proc.stderr.read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            raise RuntimeError("sshd did not listen")

    def kill_agents(self):
        """Stop agents this sshd's user started from the test HOME (deploy tests)."""
        import glob
        import json
        import signal

        for state in glob.glob(os.path.join(self.home, ".cache", "jupyter-remote-device", "agent-*", "agent.json")):
            try:
                with open(state) as f:
                    pid = int(json.load(f)["pid"])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, KeyError, TypeError):
                pass

    def close(self):
        self.kill_agents()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def sshd_unavailable():
    if not os.path.exists(SSHD):
        return "no OpenSSH server (%s): apt-get install openssh-server" % SSHD
    if shutil.which("ssh-keygen") is None:
        return "no ssh-keygen"
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        return "asyncssh is not installed"
    return None
