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

from jupyter_remote_device.app import stop_process


def tls_if_offered(sock, greeting):
    """After the agent's greeting line: speak TLS (unverified, a first contact) when it offers it."""
    import json
    import ssl
    hello = json.loads(greeting.split(b" ", 1)[1])
    if hello.get("tls"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock)
    return sock


def board_says(conn, code, polls=100):
    """What ``code`` prints, run in the agent process itself (exec_start, then exec_poll)."""
    import json
    exec_id = conn.root.exec_start(code, "t", "exec", False, False)
    text = ""
    for _ in range(polls):
        reply = json.loads(conn.root.exec_poll(exec_id, 0.2))
        text += "".join(e.get("text", "") for e in reply["events"] if e["type"] == "stream")
        if reply["done"]:
            return text
    raise AssertionError("the code did not finish: %r" % text)


def patched_agent_env(folder, code):
    """The environment for a real agent process that runs ``code`` first (a ``sitecustomize`` in
    ``folder``): an older agent, or one that breaks the protocol on purpose."""
    import jupyter_remote_device
    os.makedirs(str(folder), exist_ok=True)
    with open(os.path.join(str(folder), "sitecustomize.py"), "w") as f:
        f.write(code)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(jupyter_remote_device.__file__)))
    return {"PYTHONPATH": os.pathsep.join([str(folder), parent])}


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
        stop_process(self.proc)
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

        pids = []
        for state in glob.glob(os.path.join(self.home, ".cache", "jupyter-remote-device", "agent-*", "agent.json")):
            try:
                with open(state) as f:
                    pid = int(json.load(f)["pid"])
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except (OSError, ValueError, KeyError, TypeError):
                pass

        def alive(pid):
            try:
                with open("/proc/%d/status" % pid) as f:
                    return "\nState:\tZ" not in f.read()
            except OSError:
                return False

        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in pids:
            if alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
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


class ExtensionNotLoaded(RuntimeError):
    pass


class JupyterServerProc:
    """``python -m jupyter_server`` as a subprocess (optionally inside a network namespace).

    Config and data dirs are private temp folders (``data_dir`` can be shared by two
    successive servers). ``get``/``post`` talk to it with the server token, from inside
    the namespace when there is one.
    """

    def __init__(self, args=(), netns=None, data_dir=None, config_dir=None, port=None):
        import secrets

        self.dir = tempfile.mkdtemp(prefix="jrd-jupyter-")
        self.netns = netns
        self.token = secrets.token_hex(16)
        self.port = port or free_port()
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.config_dir = config_dir or os.path.join(self.dir, "config")
        os.makedirs(self.config_dir, exist_ok=True)
        env = dict(os.environ, JUPYTER_DATA_DIR=self.data_dir, JUPYTER_CONFIG_DIR=self.config_dir,
                   JUPYTER_RUNTIME_DIR=os.path.join(self.dir, "runtime"), HOME=self.dir)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if netns:
            env.pop("JUPYTER_REMOTE_DEVICE_NO_MDNS", None)  # mDNS may run inside the test's own namespace
        cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1",
               "--port=%d" % self.port, "--port-retries=0", "--IdentityProvider.token=%s" % self.token,
               "--ServerApp.root_dir=%s" % self.dir,
               "--ServerApp.jpserver_extensions=jupyter_remote_device=True"] + list(args)
        if not any(a.startswith("--DeviceManager.mdns") for a in args):
            cmd.append("--DeviceManager.mdns=False")  # mDNS only where a test turns it on (in a netns)
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter server exited:\n" + self.log())
            try:
                code, _ = self.request("GET", "api/status")
                if code == 200:
                    code, _ = self.request("GET", "jupyter-remote-device/version")
                    if code == 200:
                        return
                    log = self.log()
                    self.close()
                    raise ExtensionNotLoaded("the extension did not load:\n" + log)
            except ExtensionNotLoaded:
                raise
            except Exception:
                pass
            time.sleep(0.3)
        log = self.log()
        self.close()
        raise RuntimeError("jupyter server did not start:\n" + log)

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, timeout=20):
        import json

        url = "http://127.0.0.1:%d/%s" % (self.port, path)
        script = ("import json,sys,urllib.request,urllib.error\n"
                  "req=urllib.request.Request(sys.argv[1],method=sys.argv[2],data=sys.argv[4].encode() "
                  "if sys.argv[4] else (b'' if sys.argv[2] in ('POST','PUT') else None),"
                  "headers={'Authorization':'token '+sys.argv[3],'Content-Type':'application/json'})\n"
                  "try:\n r=urllib.request.urlopen(req,timeout=15); c=r.status; b=r.read()\n"
                  "except urllib.error.HTTPError as e:\n c=e.code; b=e.read()\n"
                  "sys.stdout.write(json.dumps([c,b.decode('utf-8','replace')]))\n")
        payload = json.dumps(body) if body is not None else ""
        cmd = [sys.executable, "-c", script, url, method, self.token, payload]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        code, text = json.loads(out.stdout)
        try:
            return code, json.loads(text) if text else None
        except ValueError:
            return code, text

    def close(self):
        stop_process(self.proc, 20)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(fn, timeout=20.0, interval=0.3):
    """Poll ``fn()`` (blocking) until truthy; returns it (or the last value)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    return value
