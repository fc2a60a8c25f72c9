"""Configuration that works as documented: DeviceManager traits set on the command line
(raw strings: ``--DeviceManager.probe_hosts=127.0.0.1``) and in ``jupyter_server_config.py``
reach the extension, against a real ``jupyter server`` subprocess and real agents on 127.0.0.1."""
import json
import os
import textwrap

import pytest

from jrd_helpers import JupyterServerProc, wait_until


@pytest.fixture
def server_procs():
    procs = []

    def make(**kwargs):
        p = JupyterServerProc(**kwargs)
        procs.append(p)
        return p

    yield make
    for p in procs:
        p.close()


def _devices(server):
    code, body = server.request("GET", "jupyter-remote-device/devices")
    assert code == 200, body
    return {d["port"]: d for d in body["devices"]}


def _check_listed(server, probed, configured):
    def ready():
        devs = _devices(server)
        p, c = devs.get(probed.port), devs.get(configured.port)
        if p and c and p["status"] == "online" and p["kind"] == "agent":
            return devs
        return None

    devs = wait_until(ready, 30)
    assert devs, "not listed: %r\n%s" % (_devices(server), server.log())
    p, c = devs[probed.port], devs[configured.port]
    assert p["source"] == "probe" and p["has_token"]
    assert c["source"] == "config" and c["name"] == "bench board" and c["has_token"]
    # the tokens reached the manager: sessions open on both
    for d in (p, c):
        code, s = server.request("POST", "jupyter-remote-device/devices/%s/session" % d["id"])
        assert code == 200 and s["status"] == "connected", s
    return devs


def test_command_line_raw_strings(make_agent, server_procs):
    probed, configured = make_agent(), make_agent()
    tokens = {"127.0.0.1:%d" % probed.port: probed.token, "127.0.0.1:%d" % configured.port: configured.token}
    server = server_procs(args=[
        "--DeviceManager.probe_hosts=127.0.0.1",
        "--DeviceManager.probe_ports=%d" % probed.port,
        "--DeviceManager.probe_interval=0.5",
        "--DeviceManager.tokens=%s" % json.dumps(tokens),
        '--DeviceManager.configured_devices=[{"host": "127.0.0.1", "port": %d, "name": "bench board"}]'
        % configured.port,
        "--DeviceManager.allowed_networks=127.0.0.0/8,::1/128",
    ])
    _check_listed(server, probed, configured)


def test_command_line_list_forms(make_agent, server_procs):
    """JSON lists and host:port strings work as well as comma-separated words."""
    probed, configured = make_agent(), make_agent()
    server = server_procs(args=[
        '--DeviceManager.probe_hosts=["127.0.0.1/32"]',
        '--DeviceManager.probe_ports=[%d, 1]' % probed.port,
        "--DeviceManager.probe_interval=0.5",
        "--DeviceManager.tokens=127.0.0.1:%d=%s,127.0.0.1:%d=%s" % (probed.port, probed.token,
                                                                   configured.port, configured.token),
        "--DeviceManager.configured_devices=127.0.0.1:%d" % configured.port,
        '--DeviceManager.allowed_networks=["127.0.0.0/8"]',
    ])

    def ready():
        devs = _devices(server)
        p, c = devs.get(probed.port), devs.get(configured.port)
        return devs if p and c and p["kind"] == "agent" else None

    devs = wait_until(ready, 30)
    assert devs, server.log()
    assert devs[probed.port]["source"] == "probe" and devs[configured.port]["source"] == "config"
    assert devs[probed.port]["has_token"] and devs[configured.port]["has_token"]


def test_config_file(make_agent, server_procs, tmp_path):
    probed, configured = make_agent(), make_agent()
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.py").write_text(textwrap.dedent("""
        c.DeviceManager.probe_hosts = ["127.0.0.1"]
        c.DeviceManager.probe_ports = [%d]
        c.DeviceManager.probe_interval = 0.5
        c.DeviceManager.tokens = {"127.0.0.1:%d": "%s", "127.0.0.1:%d": "%s"}
        c.DeviceManager.configured_devices = [{"host": "127.0.0.1", "port": %d, "name": "bench board"}]
        c.DeviceManager.allowed_networks = ["127.0.0.0/8", "::1/128"]
        c.DeviceManager.mdns = False
    """ % (probed.port, probed.port, probed.token, configured.port, configured.token, configured.port)))
    server = server_procs(config_dir=str(config_dir))
    _check_listed(server, probed, configured)


def test_allowed_networks_from_command_line(make_agent, server_procs):
    """A narrowed allowed_networks keeps the probe (and manual adds) away from loopback."""
    probed = make_agent()
    server = server_procs(args=["--DeviceManager.probe_hosts=127.0.0.1",
                                "--DeviceManager.probe_ports=%d" % probed.port,
                                "--DeviceManager.probe_interval=0.5",
                                "--DeviceManager.allowed_networks=10.99.0.0/16"])
    import time
    time.sleep(2.5)
    assert _devices(server) == {}
    code, err = server.request("POST", "jupyter-remote-device/devices", {"host": "127.0.0.1", "port": probed.port})
    assert code == 403 and err["reason"] == "not-allowed", err


def test_manual_board_survives_restart(make_agent, server_procs, tmp_path):
    a = make_agent()
    data_dir = str(tmp_path / "data")
    args = ["--DeviceManager.allowed_networks=127.0.0.0/8"]
    first = server_procs(data_dir=data_dir, args=args)
    code, dev = first.request("POST", "jupyter-remote-device/devices",
                              {"host": "127.0.0.1", "port": a.port, "token": a.token, "name": "kept"})
    assert code == 201, dev
    first.close()
    path = os.path.join(data_dir, "remote_device", "devices.json")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    second = server_procs(data_dir=data_dir, args=args)
    devs = _devices(second)
    assert devs[a.port]["name"] == "kept" and devs[a.port]["id"] == dev["id"] and devs[a.port]["has_token"]
    code, s = second.request("POST", "jupyter-remote-device/devices/%s/session" % dev["id"])
    assert code == 200 and s["status"] == "connected", s
