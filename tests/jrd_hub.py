"""A real JupyterHub on loopback for the tests (not a test module).

JupyterHub (its own process, its DB and cookie secret in a temp dir) with configurable-http-proxy
from npm, ``DummyAuthenticator`` with a shared password, ``SimpleLocalProcessSpawner`` (no system
users: each user's home is a folder under the temp dir) starting JupyterHub's own
``jupyterhub-singleuser`` with ``JUPYTERHUB_SINGLEUSER_APP=jupyter_server`` and this extension.
Every process has its own JUPYTER_CONFIG_DIR / JUPYTER_DATA_DIR / JUPYTER_RUNTIME_DIR; the boards
are configured once for every user in a shared config dir on JUPYTER_CONFIG_PATH, the way an
administrator puts them in ``/etc/jupyter``.

``find_proxy()`` locates ``configurable-http-proxy``: ``$JRD_CHP`` (the executable), then PATH,
then ``node_modules/.bin`` of the repository (``scripts/test.sh`` installs it with
``npm install --prefix .hub-proxy configurable-http-proxy``).
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

from jrd_helpers import free_port

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "classroom-password"


def find_proxy():
    env = os.environ.get("JRD_CHP")
    if env and os.access(env, os.X_OK):
        return env
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    for base in (os.path.join(REPO, ".hub-proxy"), REPO):
        p = os.path.join(base, "node_modules", ".bin", "configurable-http-proxy")
        if os.access(p, os.X_OK):
            return p
    return None


def singleuser_cmd():
    found = shutil.which("jupyterhub-singleuser")
    return [found] if found else [sys.executable, "-m", "jupyterhub.singleuser"]


HUB_CONFIG = r'''
import json, os, sys
P = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "params.json")))
c.JupyterHub.bind_url = "http://127.0.0.1:%d/" % P["port"]
c.JupyterHub.hub_bind_url = "http://127.0.0.1:%d" % P["hub_port"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % P["proxy_api_port"]
c.ConfigurableHTTPProxy.command = [P["chp"]]
c.ConfigurableHTTPProxy.pid_file = os.path.join(P["dir"], "proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(P["dir"], "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(P["dir"], "cookie_secret")
c.JupyterHub.pid_file = os.path.join(P["dir"], "hub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = P["password"]
c.Authenticator.allowed_users = set(P["users"])
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(P["dir"], "home", "{username}")
c.Spawner.cmd = P["singleuser_cmd"]
c.Spawner.args = P["singleuser_args"]
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.JupyterHub.services = [{"name": "jrd-tests", "api_token": P["service_token"]}]
c.JupyterHub.load_roles = [{"name": "jrd-tests", "services": ["jrd-tests"],
                            "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}]

def _user_dir(spawner, kind):
    return os.path.join(P["dir"], "users", spawner.user.name, kind)

env = dict(P["env"])
env.update({
    "JUPYTERHUB_SINGLEUSER_APP": "jupyter_server",
    # machine-wide config shared by every user (what /etc/jupyter is in a real deployment)
    "JUPYTER_CONFIG_PATH": P["shared_config"],
    "JUPYTER_CONFIG_DIR": lambda s: _user_dir(s, "config"),
    "JUPYTER_DATA_DIR": lambda s: _user_dir(s, "data"),
    "JUPYTER_RUNTIME_DIR": lambda s: _user_dir(s, "runtime"),
    "JUPYTER_PLATFORM_DIRS": "1",
})
c.Spawner.environment = env

def _pre_spawn(spawner):
    for kind in ("config", "data", "runtime", "root"):
        os.makedirs(_user_dir(spawner, kind), exist_ok=True)
    if P.get("labextension"):  # this checkout's JupyterLab extension build, ahead of any installed one
        exts = os.path.join(_user_dir(spawner, "data"), "labextensions")
        os.makedirs(exts, exist_ok=True)
        link = os.path.join(exts, "jupyter-remote-device")
        if not os.path.lexists(link):
            os.symlink(P["labextension"], link)
c.Spawner.pre_spawn_hook = _pre_spawn
c.Spawner.notebook_dir = os.path.join(P["dir"], "users", "{username}", "root")
'''


class Hub:
    """``python -m jupyterhub`` with a proxy, two (or more) users, a shared single-user config."""

    def __init__(self, users=("alice", "bob"), device_manager=None, singleuser_args=(), server_config=None,
                 port=None, workdir=None, env=None, labextension=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="jrd-hub-")
        self.users = list(users)
        self.port = port or free_port()
        self.service_token = secrets.token_hex(16)
        self.device_manager = dict(device_manager or {})
        self.server_config = dict(server_config or {})
        self.singleuser_args = list(singleuser_args)
        self.extra_env = dict(env or {})
        self.labextension = labextension
        self.proc = None
        self.log_path = os.path.join(self.dir, "hub.log")
        self.url = "http://127.0.0.1:%d" % self.port

    def write_config(self):
        chp = find_proxy()
        if chp is None:
            raise RuntimeError("configurable-http-proxy not found (npm install configurable-http-proxy)")
        shared = os.path.join(self.dir, "shared-config")
        os.makedirs(shared, exist_ok=True)
        server_cfg = {"ServerApp": {"jpserver_extensions": {"jupyter_remote_device": True}, "allow_root": True,
                                    "open_browser": False},
                      "DeviceManager": self.device_manager}
        for section, values in self.server_config.items():
            server_cfg.setdefault(section, {}).update(values)
        with open(os.path.join(shared, "jupyter_server_config.json"), "w") as f:
            json.dump(server_cfg, f, indent=1)
        env = {"PYTHONPATH": REPO, "JUPYTER_REMOTE_DEVICE_NO_MDNS": "1", "PATH": os.environ.get("PATH", "")}
        env.update(self.extra_env)
        params = {"dir": self.dir, "port": self.port, "hub_port": free_port(), "proxy_api_port": free_port(),
                  "chp": chp, "password": PASSWORD, "users": self.users, "service_token": self.service_token,
                  "singleuser_cmd": singleuser_cmd(), "singleuser_args": self.singleuser_args,
                  "shared_config": shared, "env": env, "labextension": self.labextension}
        with open(os.path.join(self.dir, "params.json"), "w") as f:
            json.dump(params, f, indent=1)
        path = os.path.join(self.dir, "jupyterhub_config.py")
        with open(path, "w") as f:
            f.write(HUB_CONFIG)
        return path

    def start(self, timeout=90):
        import requests

        path = self.write_config()
        env = dict(os.environ)
        for name in ("config", "data", "runtime"):
            os.makedirs(os.path.join(self.dir, "hub-" + name), exist_ok=True)
        env.update({"JUPYTER_CONFIG_DIR": os.path.join(self.dir, "hub-config"),
                    "JUPYTER_DATA_DIR": os.path.join(self.dir, "hub-data"),
                    "JUPYTER_RUNTIME_DIR": os.path.join(self.dir, "hub-runtime"),
                    "JUPYTER_PLATFORM_DIRS": "1", "PYTHONPATH": REPO})
        for k in ("JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN", "CONFIGPROXY_AUTH_TOKEN", "JUPYTER_CONFIG_PATH"):
            env.pop(k, None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", path], cwd=self.dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("jupyterhub exited %s:\n%s" % (self.proc.returncode, self.read_log()[-4000:]))
            try:
                if requests.get(self.url + "/hub/api/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("jupyterhub did not start:\n%s" % self.read_log()[-4000:])

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def user_log(self, name):
        return self.read_log()  # single-user servers log to the hub's stdout (LocalProcessSpawner)

    # --- the hub's REST API, as the admin service ---------------------------------------------------
    def hub_api(self, method, path, body=None, token=None):
        import requests

        r = requests.request(method, self.url + "/hub/api/" + path.lstrip("/"),
                             headers={"Authorization": "token " + (token or self.service_token)},
                             data=json.dumps(body) if body is not None else None, timeout=30)
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = r.text
        return r.status_code, data

    def spawn(self, user, timeout=120):
        """Start USER's single-user server and wait until the hub says it is ready."""
        code, data = self.hub_api("POST", "users/%s/server" % user)
        if code not in (201, 202, 400):  # 400: already running
            raise RuntimeError("spawn %s: %s %s" % (user, code, data))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, data = self.hub_api("GET", "users/" + user)
            server = (data.get("servers") or {}).get("", {}) if isinstance(data, dict) else {}
            if server.get("ready"):
                return server
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError("%s's server did not start:\n%s" % (user, self.read_log()[-6000:]))

    def user_token(self, user, scopes=None, note="jrd tests"):
        """A real hub API token of USER (what the Token page makes), by default for USER's server only."""
        body = {"note": note, "expires_in": 3600, "scopes": scopes or ["access:servers!user=%s" % user]}
        code, data = self.hub_api("POST", "users/%s/tokens" % user, body)
        if code != 201:
            raise RuntimeError("token for %s: %s %s" % (user, code, data))
        return data["token"]

    def login(self, user, password=PASSWORD):
        """A browser-like session: the hub's login form (with its _xsrf), then the OAuth round trip to
        /user/USER/. Returns a UserSession."""
        import requests

        s = requests.Session()
        r = s.get(self.url + "/hub/login", timeout=30)
        r.raise_for_status()
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
        data = {"username": user, "password": password}
        if m:
            data["_xsrf"] = m.group(1)
        r = s.post(self.url + "/hub/login?next=" + urllib.parse.quote("/hub/home"), data=data, timeout=30)
        if r.status_code >= 400 or "/hub/login" in r.url:
            raise RuntimeError("login of %s failed: %s %s" % (user, r.status_code, r.url))
        return UserSession(self, user, s)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the hub stops the proxy and the single-user servers (cleanup_servers)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        # anything the hub left behind (a proxy whose parent was killed)
        for name in ("proxy.pid",):
            try:
                pid = int(open(os.path.join(self.dir, name)).read().strip())
                os.kill(pid, 15)
            except (OSError, ValueError):
                pass


class UserSession:
    """A logged-in user talking to their single-user server through the hub's proxy, the way the
    browser does: cookies from the OAuth round trip, the server's _xsrf cookie sent back as
    X-XSRFToken on every request that changes something."""

    def __init__(self, hub, user, session):
        self.hub = hub
        self.user = user
        self.s = session
        self.base = "%s/user/%s/" % (hub.url, user)
        r = self.s.get(self.base + "lab", timeout=60)  # OAuth with the hub; the page sets _xsrf
        r.raise_for_status()
        if not r.url.startswith(self.base):
            raise RuntimeError("%s did not reach their server: %s" % (user, r.url))

    @property
    def xsrf(self):
        for cookie in self.s.cookies:
            if cookie.name == "_xsrf" and cookie.path.startswith("/user/%s" % self.user):
                return cookie.value
        return None

    def request(self, method, route, body=None, xsrf=True, timeout=60):
        headers = {}
        if xsrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers["X-XSRFToken"] = self.xsrf or ""
        r = self.s.request(method, self.base + "jupyter-remote-device/" + route, headers=headers,
                           data=json.dumps(body) if body is not None else None, timeout=timeout,
                           allow_redirects=False)
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = r.text
        return r.status_code, data


class TokenClient:
    """USER's single-user server through the proxy with a hub API token (scripts, curl)."""

    def __init__(self, hub, user, token):
        self.hub, self.user, self.token = hub, user, token
        self.base = "%s/user/%s/" % (hub.url, user)

    def request(self, method, route, body=None, timeout=60):
        import requests

        r = requests.request(method, self.base + "jupyter-remote-device/" + route,
                             headers={"Authorization": "token " + self.token},
                             data=json.dumps(body) if body is not None else None, timeout=timeout,
                             allow_redirects=False)
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = r.text
        return r.status_code, data
