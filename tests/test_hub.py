"""The extension under a real JupyterHub: two users, their single-user servers under /user/NAME/,
reached only through the hub's configurable-http-proxy; boards configured once for every user;
a board held by one user is "in use by" them for the other, until an explicit take-over;
allowed_networks keeps every user inside the boards' network.

alice drives her server like the browser does (hub login form, OAuth, the server's _xsrf cookie
sent back as X-XSRFToken); bob uses a hub API token, as a script or curl would.
"""
import asyncio
import json
import struct
import time

import pytest

from jrd_hub import Hub, TokenClient, find_proxy

pytestmark = pytest.mark.skipif(find_proxy() is None, reason="configurable-http-proxy (npm) is not installed")

try:
    import jupyterhub  # noqa: F401
except ImportError:  # pragma: no cover - the test extra installs it
    pytestmark = pytest.mark.skip(reason="jupyterhub is not installed")


@pytest.fixture(scope="module")
def boards():
    from conftest import Agent

    agents = [Agent(camera="synthetic"), Agent(camera="synthetic")]
    yield agents
    for a in agents:
        a.close()


@pytest.fixture(scope="module")
def hub(boards):
    dm = {"configured_devices": [{"host": "127.0.0.1", "port": a.port, "name": "desk-%02d" % (i + 1),
                                  "token": a.token} for i, a in enumerate(boards)],
          "allowed_networks": ["127.0.0.0/8"], "mdns": False, "connect_timeout": 3.0,
          "heartbeat_interval": 1.0, "heartbeat_timeout": 2.0, "reconnect_max_delay": 2.0}
    h = Hub(device_manager=dm)
    try:
        h.start()
        for user in h.users:
            h.spawn(user)
    except Exception:
        h.stop()
        raise
    yield h
    h.stop()


@pytest.fixture(scope="module")
def alice(hub):
    return hub.login("alice")


@pytest.fixture(scope="module")
def bob(hub):
    return TokenClient(hub, "bob", hub.user_token("bob"))


def _by_name(client):
    code, data = client.request("GET", "devices")
    assert code == 200, data
    return {d["name"]: d for d in data["devices"]}


def _wait(pred, timeout=10.0, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def test_every_user_sees_the_configured_boards(hub, alice, bob):
    for client in (alice, bob):
        code, v = client.request("GET", "version")
        assert code == 200 and v["version"]
        devs = _by_name(client)
        assert {"desk-01", "desk-02"} <= set(devs)
        assert all(devs[n]["source"] == "config" for n in ("desk-01", "desk-02"))
    # one config for everyone: the same ids on both servers
    assert {d["id"] for d in _by_name(alice).values()} == {d["id"] for d in _by_name(bob).values()}
    # each user's server is their own process with their own data dir
    code, data = hub.hub_api("GET", "users/alice")
    assert data["servers"][""]["url"] == "/user/alice/"


def test_xsrf_is_checked_through_the_proxy(alice):
    assert alice.xsrf, "the single-user server set no _xsrf cookie on /user/alice/"
    code, err = alice.request("POST", "devices", {"host": "127.0.0.1", "port": 1}, xsrf=False)
    assert code == 403, err
    code, dev = alice.request("POST", "devices", {"host": "127.0.0.1", "port": 9, "name": "scratch"})
    assert code == 201, dev
    code, _ = alice.request("DELETE", "devices/" + dev["id"])
    assert code == 204


def test_a_user_cannot_reach_another_users_server(hub, alice, bob):
    import requests

    # bob's token is for bob's server only
    r = requests.get(hub.url + "/user/alice/jupyter-remote-device/devices",
                     headers={"Authorization": "token " + bob.token}, allow_redirects=False, timeout=30)
    assert r.status_code == 403, r.status_code
    # alice's browser session does not open bob's server either
    r = alice.s.get(hub.url + "/user/bob/jupyter-remote-device/devices", timeout=30)
    assert r.status_code == 403 and "devices" not in r.text, (r.status_code, r.text[:200])


def test_allowed_networks_hold_for_every_user(alice, bob):
    for client in (alice, bob):
        code, err = client.request("POST", "devices", {"host": "10.20.30.40", "port": 18861})
        assert (code, err["reason"]) == (403, "not-allowed"), err
        assert err["message"]
        code, err = client.request("POST", "devices", {"host": "192.168.0.10", "port": 18812})
        assert (code, err["reason"]) == (403, "not-allowed"), err


def test_held_board_is_in_use_for_the_other_user_until_taken_over(alice, bob):
    did = _by_name(alice)["desk-01"]["id"]
    code, dev = alice.request("POST", "devices/%s/session" % did)
    assert code == 200, dev
    assert dev["status"] == "connected" and dev["info"]["holder"]["user"] == "alice"

    code, err = bob.request("POST", "devices/%s/session" % did)
    assert (code, err["reason"]) == (409, "in-use"), err
    assert "in use by alice" in err["message"]
    dev = _by_name(bob)["desk-01"]
    assert dev["status"] == "error" and "in use by alice" in dev["error"]
    # the other board is free for bob
    d2 = _by_name(bob)["desk-02"]["id"]
    code, dev2 = bob.request("POST", "devices/%s/session" % d2)
    assert code == 200 and dev2["info"]["holder"]["user"] == "bob", dev2

    code, out = alice.request("POST", "devices/%s/exec" % did, {"code": "print('alice here')"})
    assert code == 200 and out["stdout"] == "alice here\n", out

    # explicit take-over
    code, dev = bob.request("POST", "devices/%s/session" % did, {"take_over": True})
    assert code == 200, dev
    assert dev["info"]["holder"]["user"] == "bob"
    code, out = bob.request("POST", "devices/%s/exec" % did, {"code": "print('bob here')"})
    assert code == 200 and out["stdout"] == "bob here\n", out

    # alice's server notices (heartbeat) and says who took it; it does not grab it back
    dev = _wait(lambda: (lambda d: d if d["status"] == "error" else None)(_by_name(alice)["desk-01"]))
    assert dev and "Taken over by bob" in dev["error"], dev
    code, err = alice.request("POST", "devices/%s/exec" % did, {"code": "1"})
    assert (code, err["reason"]) == (409, "not-connected")
    code, err = alice.request("POST", "devices/%s/session" % did)
    assert (code, err["reason"]) == (409, "in-use") and "in use by bob" in err["message"], err

    # bob lets go of both: alice opens desk-01 without a take-over
    for d in (did, d2):
        code, _ = bob.request("DELETE", "devices/%s/session" % d)
        assert code == 204
    code, dev = _wait(lambda: (lambda r: r if r[0] == 200 else None)(alice.request("POST", "devices/%s/session" % did)),
                      timeout=8) or (None, None)
    assert code == 200 and dev["info"]["holder"]["user"] == "alice", dev
    code, _ = alice.request("DELETE", "devices/%s/session" % did)
    assert code == 204


def test_camera_and_events_websockets_through_the_proxy(hub, bob):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    did = _by_name(bob)["desk-02"]["id"]
    code, dev = bob.request("POST", "devices/%s/session" % did)
    assert code == 200, dev
    ws_base = hub.url.replace("http://", "ws://") + "/user/bob/jupyter-remote-device/"
    headers = {"Authorization": "token " + bob.token}

    async def go():
        ev = await websocket_connect(HTTPRequest(ws_base + "events", headers=headers))
        first = json.loads(await asyncio.wait_for(ev.read_message(), 20))
        assert first["type"] == "devices" and did in {d["id"] for d in first["devices"]}
        ev.close()
        cam = await websocket_connect(HTTPRequest(ws_base + "devices/%s/camera?width=160&height=120&fps=5&ack=1"
                                                  % did, headers=headers))
        seqs = []
        deadline = time.monotonic() + 30
        while len(seqs) < 3 and time.monotonic() < deadline:
            msg = await asyncio.wait_for(cam.read_message(), 20)
            assert msg is not None
            if isinstance(msg, bytes):
                (n,) = struct.unpack(">I", msg[:4])
                head = json.loads(msg[4:4 + n])
                assert msg[4 + n:4 + n + 2] == b"\xff\xd8" and head["format"] == "jpeg"
                seqs.append(head["seq"])
                await cam.write_message(json.dumps({"type": "ack", "seq": head["seq"]}))
        cam.close()
        return seqs

    seqs = asyncio.run(go())
    assert len(seqs) == 3 and seqs == sorted(seqs)
    code, _ = bob.request("DELETE", "devices/%s/session" % did)
    assert code == 204
