"""A board shared by several Jupyter users/servers: it shows who holds it; a second user gets
409 in-use, and only an explicit take-over moves it (never a silent steal).

Two real servers: pytest-jupyter's (user "alice") and a ``jupyter server`` subprocess (user "bob").
"""
import asyncio
import json
import time

import pytest

from jrd_procs import JupyterProc
from jupyter_remote_device import link


@pytest.fixture
def jrd_config(jrd_config):
    jrd_config = dict(jrd_config, user_name="alice")
    return jrd_config


@pytest.fixture
def bob(jrd_config, tmp_path):
    cfg = dict(jrd_config, user_name="bob")
    j = JupyterProc(device_manager=cfg, workdir=str(tmp_path / "bob"))
    j.start()
    yield j
    j.stop()


async def _bob(bob, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: bob.request(*args, **kwargs))


async def _add(api, agent):
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    assert code in (200, 201), dev
    return dev["id"]


def test_agent_claim_semantics(agent):
    a = link.connect("127.0.0.1", agent.port, token=agent.token, user="alice")
    b = link.connect("127.0.0.1", agent.port, token=agent.token, user="bob")
    try:
        r = json.loads(a.root.claim("alice", "s-a", False))
        assert r["ok"] and r["holder"]["user"] == "alice"
        assert json.loads(a.root.claim("alice", "s-a", False))["ok"]  # idempotent for the holder
        r = json.loads(b.root.claim("bob", "s-b", False))
        assert r["ok"] is False and r["holder"]["user"] == "alice"
        assert json.loads(b.root.info())["holder"]["session_id"] == "s-a"  # nothing changed
        r = json.loads(b.root.claim("bob", "s-b", True))
        assert r["ok"] and r["holder"]["user"] == "bob" and r["previous"]["user"] == "alice"
        assert json.loads(a.root.info())["holder"]["user"] == "bob"
        assert json.loads(a.root.claim("alice", "s-a", False))["ok"] is False
        # the user defaults to the handshake's
        c = link.connect("127.0.0.1", agent.port, token=agent.token, user="carol")
        b.close()  # the holder's connection went away: the board is free
        time.sleep(0.3)
        assert json.loads(c.root.info())["holder"] is None
        r = json.loads(c.root.claim(None, "s-c", False))
        assert r["ok"] and r["holder"]["user"] == "carol"
        assert c.root.release("s-c") is True
        assert json.loads(c.root.info())["holder"] is None
        c.close()
    finally:
        a.close()
        b.close()


async def test_second_user_gets_in_use_then_takes_over(api, agent, bob):
    did = await _add(api, agent)
    code, dev = await api("POST", "devices/%s/session" % did)
    assert code == 200, dev
    assert dev["info"]["holder"]["user"] == "alice"

    code, bdev = await _bob(bob, "POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    assert code == 201, bdev
    assert bdev["id"] == did
    code, err = await _bob(bob, "POST", "devices/%s/session" % did)
    assert (code, err["reason"]) == (409, "in-use"), err
    assert "in use by alice" in err["message"] and "take_over" in err["message"]
    code, bdev = await _bob(bob, "GET", "devices/" + did)
    assert bdev["status"] == "error" and "alice" in bdev["error"]

    # alice is undisturbed
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "print('still alice')"})
    assert code == 200 and out["stdout"] == "still alice\n"
    code, err = await _bob(bob, "POST", "devices/%s/session" % did, {"take_over": "yes"})
    assert (code, err["reason"]) == (400, "bad-request")

    # the explicit take-over
    code, bdev = await _bob(bob, "POST", "devices/%s/session" % did, {"take_over": True})
    assert code == 200, bdev
    assert bdev["status"] == "connected" and bdev["info"]["holder"]["user"] == "bob"
    code, out = await _bob(bob, "POST", "devices/%s/exec" % did, {"code": "print('bob')"})
    assert code == 200 and out["stdout"] == "bob\n"

    # alice learns it (heartbeat) and stops; she does not grab it back by herself
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        code, dev = await api("GET", "devices/" + did)
        if dev["status"] == "error":
            break
        await asyncio.sleep(0.2)
    assert dev["status"] == "error" and "Taken over by bob" in dev["error"], dev
    code, err = await api("POST", "devices/%s/exec" % did, {"code": "1"})
    assert (code, err["reason"]) == (409, "not-connected")
    await asyncio.sleep(2.5)  # a few heartbeats/reconnect periods: still bob's
    code, bdev = await _bob(bob, "GET", "devices/" + did)
    assert bdev["status"] == "connected" and bdev["info"]["holder"]["user"] == "bob"
    code, err = await api("POST", "devices/%s/session" % did)
    assert (code, err["reason"]) == (409, "in-use") and "bob" in err["message"]

    # bob lets go: alice opens it without any take-over
    code, _ = await _bob(bob, "DELETE", "devices/%s/session" % did)
    assert code == 204
    deadline = time.monotonic() + 5
    while True:
        code, dev = await api("POST", "devices/%s/session" % did)
        if code == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert code == 200, dev
    assert dev["info"]["holder"]["user"] == "alice"


async def test_same_server_reopen_and_reconnect_keep_the_claim(api, agent, connected):
    did = await connected()
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    code, dev = await api("POST", "devices/%s/session" % did)
    assert code == 200 and dev["info"]["holder"]["user"] == "alice"
    # the agent restarts: the session reconnects and claims again (nobody else holds it)
    agent.restart()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        code, dev = await api("GET", "devices/" + did)
        if dev["status"] == "connected" and dev["error"] is None and (dev["info"] or {}).get("holder"):
            break
        await asyncio.sleep(0.2)
    assert dev["status"] == "connected" and dev["info"]["holder"]["user"] == "alice", dev
