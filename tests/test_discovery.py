"""Discovery end to end: the background probe (agent, stock rpyc classic server, a non-rpyc
port, a closed port, a board coming and going), sessions to a classic board, and mDNS
inside a network namespace this test creates (never on the machine's real interfaces).

Everything here talks to 127.0.0.1 or to addresses inside the test's own namespaces.
"""
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from jrd_helpers import ClassicServer, PlainServer, free_port, wait_for
from jupyter_remote_device.app import stop_process
from jupyter_remote_device.server.discovery import expand_hosts


class ProbeBoards:
    def __init__(self, make_agent):
        self.agent = make_agent()
        self.classic = ClassicServer()
        self.plain = PlainServer()
        self.closed_port = free_port()

    @property
    def ports(self):
        return [self.agent.port, self.classic.port, self.plain.port, self.closed_port]

    def close(self):
        self.classic.close()
        self.plain.close()


@pytest.fixture
def probe_boards(make_agent):
    b = ProbeBoards(make_agent)
    yield b
    b.close()


@pytest.fixture
def jrd_config(jrd_config, request):
    if "probe_boards" in request.fixturenames:
        boards = request.getfixturevalue("probe_boards")
        jrd_config.update(probe_hosts=["127.0.0.1"], probe_ports=boards.ports, probe_interval=0.5,
                          tokens={"127.0.0.1:%d" % boards.agent.port: boards.agent.token})
    if "narrow_networks" in request.fixturenames:
        jrd_config.update(allowed_networks=["10.99.0.0/16"])
    return jrd_config


@pytest.fixture
def narrow_networks():
    return True


def test_expand_hosts_caps_and_dedups():
    log = logging.getLogger("test")
    assert expand_hosts(["127.0.0.1", "127.0.0.1", " localhost ", "[::1]"], log) == \
        ["127.0.0.1", "localhost", "::1"]
    assert expand_hosts(["127.0.0.0/30"], log) == ["127.0.0.1", "127.0.0.2"]
    assert len(expand_hosts(["10.0.0.0/22"], log)) == 1022
    assert expand_hosts(["10.0.0.0/16", "127.0.0.1"], log) == ["127.0.0.1"]  # too big: skipped
    assert expand_hosts(["not a cidr/99"], log) == []
    assert len(expand_hosts(["10.0.0.0/22", "10.1.0.0/22"], log)) == 1024  # total capped


async def _devices(api):
    code, body = await api("GET", "devices")
    assert code == 200
    return {d["port"]: d for d in body["devices"]}


async def test_probe_lists_agent_and_classic_only(api, probe_boards):
    b = probe_boards

    async def both():
        devs = await _devices(api)
        a, c = devs.get(b.agent.port), devs.get(b.classic.port)
        if a and c and a["kind"] == "agent" and c["kind"] == "classic" and \
                a["status"] == "online" and c["status"] == "online":
            return devs
        return None

    devs = await wait_for(both, 20)
    assert devs, "the probe did not list both boards: %r" % (await _devices(api),)
    assert devs[b.agent.port]["source"] == "probe" and devs[b.classic.port]["source"] == "probe"
    assert devs[b.agent.port]["host"] == "127.0.0.1"
    assert devs[b.agent.port]["has_token"]  # from DeviceManager.tokens
    # a few more rounds: the HTTP port and the closed port never show up
    await asyncio.sleep(1.5)
    devs = await _devices(api)
    assert b.plain.port not in devs and b.closed_port not in devs
    assert set(devs) == {b.agent.port, b.classic.port}


async def test_probed_board_comes_and_goes(api, probe_boards):
    b = probe_boards

    async def status(want):
        d = (await _devices(api)).get(b.agent.port)
        return d if d and d["status"] == want else None

    dev = await wait_for(lambda: status("online"), 20)
    assert dev and dev["kind"] == "agent"
    b.agent.stop()
    gone = await wait_for(lambda: status("offline"), 20)
    assert gone and gone["id"] == dev["id"] and gone["error"]
    b.agent.restart()
    back = await wait_for(lambda: status("online"), 20)
    assert back and back["id"] == dev["id"]
    # and a session works on the probed board (token from DeviceManager.tokens)
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200 and d["status"] == "connected" and d["info"]["agent_version"]


async def test_deleted_probed_board_stays_deleted(api, probe_boards):
    b = probe_boards

    async def found():
        return (await _devices(api)).get(b.agent.port)

    dev = await wait_for(found, 20)
    assert dev
    code, _ = await api("DELETE", "devices/" + dev["id"])
    assert code == 204
    await asyncio.sleep(2.0)  # four probe rounds
    assert b.agent.port not in await _devices(api)


async def test_probe_respects_allowed_networks(api, probe_boards, narrow_networks):
    await asyncio.sleep(2.0)
    assert await _devices(api) == {}


async def test_classic_board_session_exec_files_camera(api, probe_boards, jp_ws_fetch):
    b = probe_boards

    async def classic():
        d = (await _devices(api)).get(b.classic.port)
        return d if d and d["kind"] == "classic" else None

    dev = await wait_for(classic, 20)
    assert dev, "the probe did not find the classic server"
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    assert d["status"] == "connected" and d["kind"] == "classic"
    assert d["info"]["kind"] == "classic" and d["info"]["python"] and d["info"]["hostname"]
    did = dev["id"]
    # exec runs in the classic server's process (its HOME is the test's temp dir)
    code, r = await api("POST", "devices/%s/exec" % did,
                        {"code": "import os\nprint(6 * 7, os.environ['HOME'])"})
    assert code == 200, r
    assert r["error"] is None and r["stdout"].split() == ["42", b.classic.home]
    code, r = await api("POST", "devices/%s/exec" % did, {"code": "1/0"})
    assert code == 200 and r["error"]["ename"] == "ZeroDivisionError"
    # files: the default root ~/jrd-root on the board
    payload = os.urandom(100000)
    code, r = await api("PUT", "devices/%s/files/content" % did, raw_body=payload, path="data/blob.bin")
    assert code == 201, r
    assert r["size"] == len(payload)
    with open(os.path.join(b.classic.home, "jrd-root", "data", "blob.bin"), "rb") as f:
        assert f.read() == payload
    code, listing = await api("GET", "devices/%s/files" % did, path="data")
    assert code == 200 and [e["name"] for e in listing["entries"]] == ["blob.bin"]
    code, err = await api("GET", "devices/%s/files" % did, path="../..")
    assert code in (400, 403) and err["reason"] in ("outside-root", "bad-request")
    # camera (the synthetic backend: Pillow is installed where the classic server runs)
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", did, "camera",
                           params={"width": "320", "height": "240", "quality": "70"})
    seqs = []
    try:
        while len(seqs) < 2:
            msg = await asyncio.wait_for(ws.read_message(), 15)
            assert msg is not None
            if isinstance(msg, str):
                continue
            hlen = int.from_bytes(msg[:4], "big")
            header = json.loads(msg[4:4 + hlen])
            assert header["width"] == 320 and msg[4 + hlen:4 + hlen + 2] == b"\xff\xd8"
            seqs.append(header["seq"])
    finally:
        ws.close()
    assert seqs == sorted(seqs)
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204


async def test_classic_interrupt_by_timeout(api, probe_boards):
    """exec's timeout interrupts a loop on the classic board (PyThreadState_SetAsyncExc path)."""
    b = probe_boards

    async def classic():
        d = (await _devices(api)).get(b.classic.port)
        return d if d and d["kind"] == "classic" else None

    dev = await wait_for(classic, 20)
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    t0 = time.monotonic()
    code, r = await api("POST", "devices/%s/exec" % dev["id"],
                        {"code": "import time\nwhile True:\n    time.sleep(0.05)", "timeout": 1.0})
    assert code == 504 and r["reason"] == "timeout"
    assert time.monotonic() - t0 < 10
    code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print('still here')"})
    assert code == 200 and r["stdout"] == "still here\n"


# ----------------------------------------------------------------------------- mDNS
# Only inside two network namespaces made here (a veth pair, 10.231.x.0/24 addresses
# inside them, a multicast route): zeroconf never sees the machine's real interfaces.

def _run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


class NetnsPair:
    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = "jrd-a-" + tag, "jrd-b-" + tag
        self.ip_a, self.ip_b = "10.231.7.1", "10.231.7.2"
        self.made = []
        steps = [("ip", "netns", "add", self.a), ("ip", "netns", "add", self.b),
                 ("ip", "-n", self.a, "link", "set", "lo", "up"), ("ip", "-n", self.b, "link", "set", "lo", "up"),
                 ("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", self.b),
                 ("ip", "-n", self.a, "addr", "add", self.ip_a + "/24", "dev", "va"),
                 ("ip", "-n", self.b, "addr", "add", self.ip_b + "/24", "dev", "vb"),
                 ("ip", "-n", self.a, "link", "set", "va", "up"), ("ip", "-n", self.b, "link", "set", "vb", "up"),
                 ("ip", "-n", self.a, "route", "add", "224.0.0.0/4", "dev", "va"),
                 ("ip", "-n", self.b, "route", "add", "224.0.0.0/4", "dev", "vb")]
        for step in steps:
            r = _run(*step)
            if r.returncode != 0:
                self.close()
                raise RuntimeError("%s: %s" % (" ".join(step), r.stderr.strip()))
            if step[1:3] == ("netns", "add"):
                self.made.append(step[3])

    def close(self):
        for ns in self.made:
            _run("ip", "netns", "del", ns)
        self.made = []


def _netns_unavailable():
    if shutil.which("ip") is None:
        return "no `ip` command (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root here"
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        return "zeroconf is not installed"
    try:
        NetnsPair().close()
    except Exception as e:
        return "cannot make a network namespace: %s" % e
    return None


@pytest.fixture
def netns_pair():
    why = _netns_unavailable()
    if why:
        pytest.skip(why)
    pair = NetnsPair()
    yield pair
    pair.close()


def _spawn_agent_in(ns, host, token, extra=()):
    root = tempfile.mkdtemp(prefix="jrd-ns-root-")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, HOME=root, PYTHONPATH=here)
    env.pop("JUPYTER_REMOTE_DEVICE_NO_MDNS", None)  # inside the test's own namespace only
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-u", "-m", "jupyter_remote_device.agent",
                             "--host", host, "--port", "18861", "--token", token, "--root", root,
                             "--camera", "none", "--mdns"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("JRD-AGENT LISTENING"):
            return proc, root
    proc.kill()
    raise RuntimeError("the agent did not start in the namespace")


def _stop(proc):
    stop_process(proc, 15)


def test_mdns_inside_network_namespaces(netns_pair):
    from jrd_helpers import JupyterServerProc, wait_until

    n = netns_pair
    token = uuid.uuid4().hex
    agent, root = _spawn_agent_in(n.a, n.ip_a, token)
    server = None
    try:
        server = JupyterServerProc(netns=n.b, args=[
            "--DeviceManager.mdns=True", "--DeviceManager.allowed_networks=10.231.7.0/24",
            '--DeviceManager.tokens={"%s:18861": "%s"}' % (n.ip_a, token),
            "--DeviceManager.probe_interval=1"])

        def listed():
            code, body = server.request("GET", "jupyter-remote-device/devices")
            assert code == 200, body
            found = [d for d in body["devices"] if d["source"] == "mdns"]
            return found[0] if found else None

        dev = wait_until(listed, 30)
        assert dev, "mDNS did not list the board:\n" + server.log()
        assert dev["host"] == n.ip_a and dev["port"] == 18861 and dev["kind"] == "agent"
        code, d = server.request("POST", "jupyter-remote-device/devices/%s/session" % dev["id"])
        assert code == 200 and d["status"] == "connected", d
        code, r = server.request("POST", "jupyter-remote-device/devices/%s/exec" % dev["id"],
                                 {"code": "import socket\nprint('hi from the namespace')"})
        assert code == 200 and r["stdout"] == "hi from the namespace\n", r
        code, _ = server.request("DELETE", "jupyter-remote-device/devices/%s/session" % dev["id"])
        # the board leaves (zeroconf says goodbye on close): it goes offline
        _stop(agent)

        def offline():
            code, body = server.request("GET", "jupyter-remote-device/devices/" + dev["id"])
            return body if body.get("status") == "offline" else None

        assert wait_until(offline, 20), server.log()
    finally:
        _stop(agent)
        if server is not None:
            server.close()
        shutil.rmtree(root, ignore_errors=True)


def test_mdns_respects_allowed_networks(netns_pair):
    from jrd_helpers import JupyterServerProc

    n = netns_pair
    agent, root = _spawn_agent_in(n.a, n.ip_a, uuid.uuid4().hex)
    server = None
    try:
        server = JupyterServerProc(netns=n.b, args=["--DeviceManager.mdns=True",
                                                    "--DeviceManager.allowed_networks=10.99.0.0/16"])
        time.sleep(5)  # announcements and answers have long arrived by then
        code, body = server.request("GET", "jupyter-remote-device/devices")
        assert code == 200 and body["devices"] == [], body
        assert "browsing mDNS" in server.log()  # it did browse; the board was filtered out
    finally:
        _stop(agent)
        if server is not None:
            server.close()
        shutil.rmtree(root, ignore_errors=True)


async def test_manual_classic_board_session_right_away(api):
    """Add host:port of a (silent) stock rpyc classic server by hand and connect at once."""
    classic = ClassicServer()
    try:
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": classic.port, "name": "maixpy"})
        assert code == 201, dev
        code, d = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200 and d["status"] == "connected" and d["kind"] == "classic", d
        code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print('classic')"})
        assert code == 200 and r["stdout"] == "classic\n", r
        code, _ = await api("DELETE", "devices/%s/session" % dev["id"])
        assert code == 204
    finally:
        classic.close()
