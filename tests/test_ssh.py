"""Boards reached over SSH, against a real OpenSSH server this test starts on 127.0.0.1:
the tunnel, deploying and starting the agent (nothing installed on the "board"), reuse of
the running agent, a wrong key (auth-failed), host key checking (host-key), bad input,
and the SSH board surviving a server restart (saved with mode 0600)."""
import asyncio
import json
import os
import stat
import sys

import pytest

from jrd_helpers import SshServer, ssh_keygen, sshd_unavailable

pytestmark = pytest.mark.skipif(sshd_unavailable() is not None, reason=str(sshd_unavailable()))


@pytest.fixture(scope="module")
def sshd():
    s = SshServer()
    yield s
    s.close()


@pytest.fixture
def jrd_config(jrd_config, sshd, tmp_path, request):
    jrd_config.update(ssh_known_hosts=sshd.known_hosts, ssh_python=sys.executable, ssh_timeout=60.0,
                      connect_timeout=5.0, devices_file=str(tmp_path / "devices.json"))
    if "impostor_known_hosts" in request.fixturenames:
        jrd_config["ssh_known_hosts"] = str(request.getfixturevalue("impostor_known_hosts"))
    return jrd_config


async def _delete_all(api):
    """Delete every board (closes sessions and SSH links while the loop still runs: a connection
    left to the garbage collector would wait on a tunnel nobody serves any more)."""
    code, body = await api("GET", "devices")
    for d in (body or {}).get("devices", []):
        await api("DELETE", "devices/" + d["id"])


def _state_dirs(sshd):
    base = os.path.join(sshd.home, ".cache", "jupyter-remote-device")
    return [os.path.join(base, d) for d in os.listdir(base)] if os.path.isdir(base) else []


async def test_ssh_deploy_tunnel_session(api, sshd, jrd_config):
    sshd.kill_agents()
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.user_key, "name": "ssh-board"})
    assert code == 201, dev
    assert dev["source"] == "ssh" and dev["name"] == "ssh-board"
    assert dev["ssh"] == {"user": sshd.user, "host": "127.0.0.1", "port": sshd.port, "key": sshd.user_key}
    assert "token" not in dev
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    assert d["status"] == "connected" and d["kind"] == "agent" and d["info"]["agent_version"]
    # the agent was copied into ~/.cache/jupyter-remote-device/agent-<version>/ and runs from there
    dirs = _state_dirs(sshd)
    assert len(dirs) == 1
    with open(os.path.join(dirs[0], "agent.json")) as f:
        state = json.load(f)
    assert stat.S_IMODE(os.stat(os.path.join(dirs[0], "token")).st_mode) == 0o600
    code, r = await api("POST", "devices/%s/exec" % dev["id"],
                        {"code": "import os, jupyter_remote_device as p\nprint(os.getpid(), p.__file__)"})
    assert code == 200 and r["error"] is None, r
    pid, path = r["stdout"].split()
    assert int(pid) == state["pid"] and path.startswith(dirs[0])
    # files land in the board user's ~/jrd-root
    code, r = await api("PUT", "devices/%s/files/content" % dev["id"], raw_body=b"over ssh", path="hello.txt")
    assert code == 201, r
    with open(os.path.join(sshd.home, "jrd-root", "hello.txt"), "rb") as f:
        assert f.read() == b"over ssh"
    # the agent listens on the board's loopback only, on the port it chose
    code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print('ok')"})
    assert r["stdout"] == "ok\n"
    # a new session reuses the running agent (no second deploy, same process)
    code, _ = await api("DELETE", "devices/%s/session" % dev["id"])
    assert code == 204
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "import os\nprint(os.getpid())"})
    assert int(r["stdout"]) == state["pid"]
    # and the device is saved (mode 0600) with what is needed to come back
    with open(jrd_config["devices_file"]) as f:
        saved = json.load(f)["devices"]
    assert stat.S_IMODE(os.stat(jrd_config["devices_file"]).st_mode) == 0o600
    [s] = [x for x in saved if x["id"] == dev["id"]]
    assert s["source"] == "ssh" and s["ssh"]["agent_port"] == state["port"] and s["token"] == state["token"]
    await _delete_all(api)


async def test_ssh_agent_died_is_restarted(api, sshd):
    sshd.kill_agents()
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.user_key})
    assert code in (200, 201), dev
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    code, _ = await api("DELETE", "devices/%s/session" % dev["id"])
    sshd.kill_agents()
    await asyncio.sleep(0.5)
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print(2 + 2)"})
    assert r["stdout"] == "4\n"
    await _delete_all(api)


async def test_ssh_wrong_key(api, sshd):
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.other_key})
    assert code == 201
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 502 and err["reason"] == "auth-failed", err
    assert "SSH" in err["message"]
    code, d = await api("GET", "devices/" + dev["id"])
    assert d["status"] == "error" and d["error"]


@pytest.fixture
def impostor_known_hosts(sshd, tmp_path):
    """known_hosts that pins another key for the test sshd's address."""
    pub = ssh_keygen(str(tmp_path / "impostor"))
    known = tmp_path / "known_hosts"
    known.write_text("[127.0.0.1]:%d %s\n" % (sshd.port, " ".join(pub.split()[:2])))
    return known


async def test_ssh_host_key_mismatch(api, sshd, impostor_known_hosts):
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.user_key})
    assert code == 201
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 502 and err["reason"] == "host-key", err
    assert "known_hosts" in err["message"] or "host key" in err["message"]
    # an unknown host (nothing about it in known_hosts) is refused the same way
    impostor_known_hosts.write_text("")
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 502 and err["reason"] == "host-key", err


async def test_ssh_bad_input(api, sshd, tmp_path):
    for body, reason in (({"ssh": "a@b@c"}, "bad-request"), ({"ssh": 5}, "bad-request"),
                         ({"ssh": "u@127.0.0.1:70000"}, "bad-request"),
                         ({"ssh": "u@127.0.0.1", "key": str(tmp_path / "missing")}, "bad-request"),
                         ({"ssh": "u@10.1.2.3"}, "not-allowed")):
        code, err = await api("POST", "devices", body)
        assert code in (400, 403) and err["reason"] == reason, (body, err)
    code, listing = await api("GET", "devices")
    assert listing["devices"] == []


def test_ssh_board_survives_restart(sshd, tmp_path):
    """Two successive jupyter servers sharing JUPYTER_DATA_DIR: the SSH board is still there (0600)."""
    from jrd_helpers import JupyterServerProc

    sshd.kill_agents()
    data_dir = str(tmp_path / "data")
    args = ["--DeviceManager.allowed_networks=127.0.0.0/8", "--DeviceManager.ssh_known_hosts=%s" % sshd.known_hosts,
            "--DeviceManager.ssh_python=%s" % sys.executable]
    first = JupyterServerProc(data_dir=data_dir, args=args)
    try:
        code, dev = first.request("POST", "jupyter-remote-device/devices",
                                  {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port), "key": sshd.user_key,
                                   "name": "over ssh"})
        assert code == 201, dev
        code, s = first.request("POST", "jupyter-remote-device/devices/%s/session" % dev["id"])
        assert code == 200 and s["status"] == "connected", s
    finally:
        first.close()
    path = os.path.join(data_dir, "remote_device", "devices.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = JupyterServerProc(data_dir=data_dir, args=args)
    try:
        code, body = second.request("GET", "jupyter-remote-device/devices")
        [d] = body["devices"]
        assert d["id"] == dev["id"] and d["source"] == "ssh" and d["name"] == "over ssh"
        assert d["ssh"] == {"user": sshd.user, "host": "127.0.0.1", "port": sshd.port, "key": sshd.user_key}
        code, s = second.request("POST", "jupyter-remote-device/devices/%s/session" % dev["id"],
                                 {"take_over": True})
        assert code == 200 and s["status"] == "connected", (s, second.log())
        code, r = second.request("POST", "jupyter-remote-device/devices/%s/exec" % dev["id"], {"code": "print(1)"})
        assert code == 200 and r["stdout"] == "1\n", r
    finally:
        second.close()
        sshd.kill_agents()


@pytest.fixture
def ssh_agent_sock(sshd, tmp_path, monkeypatch):
    """A real ssh-agent holding the test user key; SSH_AUTH_SOCK points at it."""
    import shutil
    import subprocess
    import time

    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("no ssh-agent/ssh-add")
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        env = dict(os.environ, SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", sshd.user_key], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)


async def test_ssh_login_with_the_ssh_agent(api, sshd, ssh_agent_sock, monkeypatch, tmp_path):
    """No key given: the server's SSH agent (SSH_AUTH_SOCK) logs in."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no default ~/.ssh/id_* keys to fall back on
    sshd.kill_agents()
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port)})
    assert code == 201 and dev["ssh"]["key"] is None, dev
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200 and d["status"] == "connected", d
    code, r = await api("POST", "devices/%s/exec" % dev["id"], {"code": "print('via agent')"})
    assert r["stdout"] == "via agent\n"
    await _delete_all(api)


async def test_ssh_camera_through_the_tunnel(api, sshd, jp_ws_fetch):
    """Camera frames come through the tunnel on their own connection (synthetic camera: the test
    "board" has Pillow, so the deployed agent's --camera auto picks it)."""
    sshd.kill_agents()
    code, dev = await api("POST", "devices", {"ssh": "%s@127.0.0.1:%d" % (sshd.user, sshd.port),
                                              "key": sshd.user_key})
    code, d = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 200, d
    if not d["info"]["cameras"]:
        await _delete_all(api)
        pytest.skip("the deployed agent found no camera (no Pillow for the synthetic one)")
    ws = await jp_ws_fetch("jupyter-remote-device", "devices", dev["id"], "camera",
                           params={"width": "320", "height": "240", "quality": "60"})
    frames = 0
    try:
        while frames < 3:
            msg = await asyncio.wait_for(ws.read_message(), 15)
            assert msg is not None
            if isinstance(msg, bytes):
                hlen = int.from_bytes(msg[:4], "big")
                assert json.loads(msg[4:4 + hlen])["width"] == 320 and msg[4 + hlen:4 + hlen + 2] == b"\xff\xd8"
                frames += 1
    finally:
        ws.close()
    await _delete_all(api)
