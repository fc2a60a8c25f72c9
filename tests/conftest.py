"""Shared fixtures: real agent subprocesses on 127.0.0.1 and a real jupyter_server."""
import json
import os
import shutil
import signal
import tempfile

import pytest

from jupyter_remote_device.app import spawn_agent, stop_process

pytest_plugins = ["pytest_jupyter.jupyter_server"]

# No test multicasts on the machine's real interfaces: mDNS stays off in every server and agent
# the tests start (and their subprocesses), except inside a network namespace a test made.
os.environ["JUPYTER_REMOTE_DEVICE_NO_MDNS"] = "1"

LOOPBACK = ["127.0.0.0/8", "::1/128"]


class Agent:
    def __init__(self, camera="synthetic", token=None, root=None, extra_args=(), env=None, port=0):
        self.root = root or tempfile.mkdtemp(prefix="jrd-test-root-")
        self.camera = camera
        self.extra_args = tuple(extra_args)
        self.env = env
        self.proc, self.port, self.token = spawn_agent(port=port, token=token, root=self.root, camera=camera,
                                                       extra_args=extra_args, env=env)

    def restart(self):
        """Start again on the same port with the same token and root."""
        self.stop()
        self.proc, self.port, self.token = spawn_agent(port=self.port, token=self.token, root=self.root,
                                                       camera=self.camera, extra_args=self.extra_args,
                                                       env=self.env)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        stop_process(self.proc)

    def close(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def make_agent():
    agents = []

    def make(**kwargs):
        a = Agent(**kwargs)
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.close()


@pytest.fixture
def agent(make_agent):
    return make_agent()


@pytest.fixture
def jrd_config():
    """DeviceManager settings for a test; tests may update it before the server starts."""
    return {"mdns": False, "allowed_networks": LOOPBACK, "connect_timeout": 3.0,
            "heartbeat_interval": 1.0, "heartbeat_timeout": 2.0, "reconnect_max_delay": 2.0,
            "probe_interval": 2.0}


@pytest.fixture
def jp_server_config(jrd_config):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_remote_device": True}},
            "DeviceManager": jrd_config}


@pytest.fixture
def api(jp_fetch):
    """``await api(method, route, body=None, **params) -> (status, json)``; never raises on HTTP errors."""

    async def call(method, route, body=None, raw_body=None, headers=None, **params):
        kwargs = {"method": method, "raise_error": False, "params": params or None, "headers": headers or {}}
        if raw_body is not None:
            kwargs["body"] = raw_body
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        if kwargs["params"] is None:
            del kwargs["params"]
        r = await jp_fetch("jupyter-remote-device", *route.split("/"), **kwargs)
        text = r.body.decode("utf-8") if r.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return r.code, data

    return call


@pytest.fixture
def connected(api, agent):
    """Add the agent as a device and open a session; returns (device_id, agent)."""

    async def go(a=None):
        a = a or agent
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": a.port, "token": a.token,
                                                   "name": "test-board"})
        assert code in (200, 201), dev
        code, dev = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200, dev
        assert dev["status"] == "connected"
        return dev["id"]

    return go
