"""The connection doctor against real things on 127.0.0.1: closed, silent, HTTP and SSH-like ports,
a real agent (right and wrong token), an old agent, a stock rpyc classic server."""
import os
import shutil
import socket
import threading

import pytest

from jrd_helpers import ClassicServer, PlainServer, free_port
from jupyter_remote_device import __version__
from jupyter_remote_device.app import spawn_agent, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def steps(report):
    return {s["step"]: s for s in report["steps"]}


def assert_shape(report):
    assert set(report) >= {"ok", "steps"}
    assert [s["step"] for s in report["steps"]] == ["resolve", "route", "tcp", "protocol", "tls", "auth", "version"]
    for s in report["steps"]:
        assert s["ok"] in (True, False, None) and isinstance(s["message"], str) and s["message"]
        assert isinstance(s.get("hint", ""), str)
    failed = [s for s in report["steps"] if s["ok"] is False]
    assert len(failed) <= 1  # it stops at the first failure; the rest are "not checked"
    if failed:
        assert failed[0].get("hint"), failed[0]
        assert report["ok"] is False
        after = report["steps"][report["steps"].index(failed[0]) + 1:]
        assert all(s["ok"] is None for s in after)


class Banner:
    """Accepts and sends a fixed banner (like an SSH server), then keeps the socket open a moment."""

    def __init__(self, banner):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.banner = banner
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(self.banner)
                c.settimeout(3)
                c.recv(100)
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()


async def diag(api, **body):
    code, report = await api("POST", "diagnose", body)
    assert code == 200, report
    assert_shape(report)
    return report, steps(report)


async def test_doctor_healthy_agent_and_wrong_token(api, agent):
    report, s = await diag(api, host="localhost", port=agent.port, token=agent.token)
    assert report["ok"] is True and report["kind"] == "agent", report
    assert s["resolve"]["ok"] and "127.0.0.1" in s["resolve"]["message"]
    assert s["route"]["ok"] and "loopback" in s["route"]["message"]
    assert s["tcp"]["ok"] and s["protocol"]["ok"] and s["auth"]["ok"] and s["version"]["ok"]
    assert __version__ in s["version"]["message"]
    report, s = await diag(api, host="127.0.0.1", port=agent.port, token="not-the-token")
    assert s["auth"]["ok"] is False and "refused the token" in s["auth"]["message"]
    assert "~/.config/jupyter-remote-device/token" in s["auth"]["hint"]
    report, s = await diag(api, host="127.0.0.1", port=agent.port)
    assert s["auth"]["ok"] is False and "No token" in s["auth"]["message"]


async def test_doctor_closed_port(api):
    report, s = await diag(api, host="127.0.0.1", port=free_port())
    assert s["tcp"]["ok"] is False and "refused" in s["tcp"]["message"]
    assert "agent" in s["tcp"]["hint"] and "18861" in s["tcp"]["hint"]


async def test_doctor_silent_port(api):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # the kernel accepts connections; nobody ever speaks
    try:
        report, s = await diag(api, host="127.0.0.1", port=sock.getsockname()[1])
    finally:
        sock.close()
    assert s["tcp"]["ok"] is True
    assert s["protocol"]["ok"] is False and "says nothing" in s["protocol"]["message"]


async def test_doctor_non_rpyc_ports(api):
    http = PlainServer()
    ssh = Banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    other = Banner(b"\x00\x01garbage here\n")
    try:
        report, s = await diag(api, host="127.0.0.1", port=http.port)
        assert s["protocol"]["ok"] is False and "HTTP" in s["protocol"]["message"], s["protocol"]
        report, s = await diag(api, host="127.0.0.1", port=ssh.port)
        assert s["protocol"]["ok"] is False and "SSH server" in s["protocol"]["message"]
        assert "OpenSSH_9.2p1" in s["protocol"]["message"] and "SSH" in s["protocol"]["hint"]
        report, s = await diag(api, host="127.0.0.1", port=other.port)
        assert s["protocol"]["ok"] is False and "Something else" in s["protocol"]["message"]
    finally:
        http.close()
        ssh.close()
        other.close()


async def test_doctor_old_agent_version(api, tmp_path, monkeypatch):
    # an agent copied to a board long ago: the folder alone, with an older version number
    pkg = tmp_path / "board" / "jupyter_remote_device"
    shutil.copytree(os.path.join(REPO, "jupyter_remote_device", "agent"), str(pkg / "agent"))
    (pkg / "__init__.py").write_text("")
    # its version as a bundle sent to a board carries it (agent/__init__.py reads _version.py first)
    (pkg / "agent" / "_version.py").write_text('__version__ = "0.0.1"\n')
    monkeypatch.chdir(str(tmp_path))  # `python -m` puts the working directory first on sys.path
    proc, port, token = spawn_agent(camera="none", env={"PYTHONPATH": str(tmp_path / "board")})
    try:
        report, s = await diag(api, host="127.0.0.1", port=port, token=token)
    finally:
        stop_process(proc)
    assert s["auth"]["ok"] is True, report
    assert s["version"]["ok"] is False and "0.0.1" in s["version"]["message"]
    assert "Update the agent" in s["version"]["hint"]


async def test_doctor_classic_server(api):
    srv = ClassicServer()
    try:
        report, s = await diag(api, host="127.0.0.1", port=srv.port)
    finally:
        srv.close()
    assert report["ok"] is True and report["kind"] == "classic"
    assert s["protocol"]["ok"] is True and "classic" in s["protocol"]["message"]
    assert s["auth"]["ok"] is None and "no authentication" in s["auth"]["message"]


async def test_doctor_honours_allowed_networks(api):
    report, s = await diag(api, host="10.11.12.13", port=18861)  # outside the test's loopback-only networks
    assert s["route"]["ok"] is False and "allowed_networks" in s["route"]["message"]
    assert s["tcp"]["ok"] is None  # never dialled


async def test_device_diagnose(api, agent):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    code, report = await api("POST", "devices/%s/diagnose" % dev["id"])
    assert code == 200 and report["ok"] is True and report["device_id"] == dev["id"], report
    assert_shape(report)
    # another token, just for this check
    code, report = await api("POST", "devices/%s/diagnose" % dev["id"], {"token": "wrong"})
    assert code == 200 and steps(report)["auth"]["ok"] is False
    code, err = await api("POST", "devices/nope/diagnose")
    assert code == 404 and err["reason"] == "not-found"


@pytest.mark.parametrize("body", [None, {}, {"host": 5}, {"host": "127.0.0.1", "port": 0},
                                  {"host": "127.0.0.1", "port": "x"}, {"host": "bad host!"},
                                  {"host": "127.0.0.1", "token": 7}, {"host": "127.0.0.1", "tls": "yes"}])
async def test_diagnose_bad_input(api, body):
    code, err = await api("POST", "diagnose", body)
    assert code == 400 and err["reason"] == "bad-request" and err["message"], (body, code, err)


async def test_diagnose_not_json(api):
    code, err = await api("POST", "diagnose", raw_body=b"{nope")
    assert code == 400 and err["reason"] == "bad-request"
