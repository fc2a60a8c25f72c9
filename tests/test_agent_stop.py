"""The agent stops gracefully on SIGTERM: writes aborted (no partial file), servers told (the device
shows "stopped", not a network error), and it exits within a few seconds even while a cell runs."""
import asyncio
import os
import signal
import time

import pytest

from jupyter_remote_device import link as agent_client
from jupyter_remote_device.app import spawn_agent, stop_process

MiB = 1 << 20


def temps(top):
    found = []
    for dirpath, _, files in os.walk(top):
        found += [os.path.join(dirpath, f) for f in files if ".jrd-tmp-" in f]
    return found


async def wait_until(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        v = await pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_sigterm_during_push_leaves_no_partial_file_and_reports_stopped(api, agent, connected, jp_root_dir):
    did = await connected()
    with open(os.path.join(str(jp_root_dir), "huge.bin"), "wb") as f:
        f.truncate(2048 * MiB)
    code, job = await api("POST", "devices/%s/push" % did, {"source": "huge.bin", "dest": "dst/huge.bin"})
    assert code == 202

    async def started():
        _, j = await api("GET", "jobs/" + job["id"])
        return j if j["bytes_done"] > 0 or j["state"] != "running" else None

    j = await wait_until(started)
    assert j["state"] == "running"
    t0 = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    rc = await loop.run_in_executor(None, agent.proc.wait, 15)
    took = time.monotonic() - t0
    assert rc == 0 and took < 6, (rc, took)

    async def ended():
        _, j = await api("GET", "jobs/" + job["id"])
        return j if j["state"] != "running" else None

    j = await wait_until(ended)
    assert j["state"] == "failed" and j["verified"] is False, j
    assert "stopping" in j["error"], j["error"]
    # a graceful stop removes the temp file itself (a SIGKILL leaves it for the next start)
    assert temps(agent.root) == []
    assert not os.path.exists(os.path.join(agent.root, "dst", "huge.bin"))

    async def stopped():
        _, d = await api("GET", "devices/" + did)
        return d if d["status"] != "connected" else None

    d = await wait_until(stopped)
    assert d["status"] == "connecting", d  # a service restart brings it back by itself
    assert d["error"].startswith("Stopped") and "SIGTERM" in d["error"], d
    code, err = await api("POST", "devices/%s/exec" % did, {"code": "1"})
    assert code == 409 and err["reason"] == "not-connected"
    await asyncio.sleep(1.5)  # reconnect attempts meet a closed port: still "Stopped", not a network error
    _, d = await api("GET", "devices/" + did)
    assert d["error"].startswith("Stopped"), d
    # the agent back on its port (systemctl restart): the session reconnects
    await loop.run_in_executor(None, agent.restart)

    async def back():
        _, d = await api("GET", "devices/" + did)
        return d if d["status"] == "connected" else None

    d = await wait_until(back, timeout=20)
    assert d["error"] is None


async def test_idle_session_hears_the_stop(api, agent, connected):
    """No call in flight: the heartbeat's next call hears "stopping" before the agent exits."""
    did = await connected()
    agent.proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, agent.proc.wait, 15) == 0

    async def stopped():
        _, d = await api("GET", "devices/" + did)
        return d if d["status"] != "connected" else None

    d = await wait_until(stopped)
    assert d["status"] == "connecting" and d["error"].startswith("Stopped"), d


@pytest.mark.parametrize("code", ["while True: pass", "import time; time.sleep(100)",
                                  "while True:\n    try:\n        while True: pass\n"
                                  "    except KeyboardInterrupt:\n        pass"])
def test_sigterm_during_busy_cell_ends_the_agent(code):
    proc, port, token = spawn_agent(camera="none")
    try:
        conn = agent_client.connect("127.0.0.1", port, token)
        exec_id = conn.root.exec_start(code, "t", "cell", False, False)
        deadline = time.monotonic() + 10
        while conn.root.exec_busy() == '{"busy":false}' or '"busy":true' not in conn.root.exec_busy():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # inside the loop / the sleep
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # the client is told: its next call fails with the stop message
        told = None
        while time.monotonic() - t0 < 5:
            try:
                conn.root.exec_poll(exec_id, 0.2)
            except EOFError as e:  # the agent's answer (remote), or the connection's end
                told = str(e) if hasattr(e, "_remote_tb") else None
                break
            time.sleep(0.05)
        assert told is not None and "agent-stopping" in told and "SIGTERM" in told, told
        proc.wait(10)
        took = time.monotonic() - t0
        # the loop that swallows KeyboardInterrupt is ended by the exit deadline
        assert took < 6, took
        assert proc.returncode == 0
    finally:
        stop_process(proc, 5)
        if proc.poll() is None:
            proc.kill()
