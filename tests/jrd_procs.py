"""A real ``jupyter server`` subprocess on loopback (for tests needing two servers, a restart,
or a server inside a network namespace). Not a test module."""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from jrd_helpers import free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))




class JupyterProc:
    """``python -m jupyter_server`` with our extension, isolated dirs, a token, on 127.0.0.1."""

    def __init__(self, device_manager=None, workdir=None, port=None, prefix=(), env=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="jrd-jp-")
        self.token = secrets.token_hex(16)
        self.port = port or free_port()
        self.device_manager = dict(device_manager or {})
        self.prefix = list(prefix)
        self.extra_env = dict(env or {})
        self.proc = None
        self.log_path = os.path.join(self.workdir, "server.log")

    def _env(self):
        env = dict(os.environ)
        for name in ("config", "data", "runtime", "root"):
            os.makedirs(os.path.join(self.workdir, name), exist_ok=True)
        env.update({"JUPYTER_CONFIG_DIR": os.path.join(self.workdir, "config"),
                    "JUPYTER_DATA_DIR": os.path.join(self.workdir, "data"),
                    "JUPYTER_RUNTIME_DIR": os.path.join(self.workdir, "runtime"),
                    "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": REPO})
        env.pop("JUPYTERHUB_USER", None)
        env.update(self.extra_env)
        return env

    def command(self):
        cfg = {"ServerApp": {"jpserver_extensions": {"jupyter_remote_device": True}, "open_browser": False,
                             "ip": "127.0.0.1", "port": self.port, "port_retries": 0, "allow_root": True,
                             "root_dir": os.path.join(self.workdir, "root")},
               "IdentityProvider": {"token": self.token},
               "DeviceManager": self.device_manager}
        os.makedirs(self.workdir, exist_ok=True)
        path = os.path.join(self.workdir, "jupyter_server_config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return self.prefix + [sys.executable, "-m", "jupyter_server", "--config=%s" % path]

    def start(self, timeout=60):
        cmd = self.command()
        env = self._env()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyter server exited %s:\n%s" % (self.proc.returncode, self.read_log()[-3000:]))
            try:
                code, _ = self.request("GET", "version", timeout=2)
                if code == 200:
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("jupyter server did not start:\n%s" % self.read_log()[-3000:])

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def url(self, route):
        return "http://127.0.0.1:%d/jupyter-remote-device/%s" % (self.port, route)

    def request(self, method, route, body=None, timeout=30, raw=None):
        """BLOCKING: (status, json-or-text)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        req = urllib.request.Request(self.url(route), data=data, method=method,
                                     headers={"Authorization": "token " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                code, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read()
        try:
            return code, json.loads(text) if text else None
        except ValueError:
            return code, text

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
