"""Round trips per call, counted by the link lab's proxy between Jupyter and the board.

A REST exec, a file listing and a trivial kernel cell each cost one round trip (plus
the board's own time); a session open costs the handshake.  Counted, not timed: the
proxy (benchmarks/linklab.py) counts a request and its reply as one exchange however
many segments they take.  Real parts: a spawned agent, a real jupyter_server, the real
remote-device kernel.
"""
import os

import pytest

from benchmarks.linklab import LinkProxy

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


@pytest.fixture
def jrd_config(jrd_config):
    # no heartbeat during the counts
    return dict(jrd_config, heartbeat_interval=3600.0, heartbeat_timeout=30.0)


@pytest.fixture
def link(agent):
    # 40 ms RTT: well above how late the proxy (a thread of this process) may read, so a reply
    # is never read before a request that was sent ahead of it
    with LinkProxy(("127.0.0.1", agent.port), delay_s=0.020, trace=True) as proxy:
        yield proxy


@pytest.fixture
def shaped(api, agent, link):
    """A device reached through the link; returns its id (session open)."""

    async def go():
        code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": link.port, "token": agent.token,
                                                   "name": "linked-board"})
        assert code in (200, 201), dev
        code, dev = await api("POST", "devices/%s/session" % dev["id"])
        assert code == 200, dev
        return dev["id"]

    return go


async def test_rest_exec_is_one_round_trip(api, shaped, link):
    did = await shaped()
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "1"})  # warm: the method's first use
    assert code == 200, out
    for src, want in (("1", ""), ("print('hi')", "hi\n"), ("for i in range(200): print(i)", None)):
        mark = link.mark()
        code, out = await api("POST", "devices/%s/exec" % did, {"code": src})
        assert code == 200 and out["error"] is None, out
        if want is not None:
            assert out["stdout"] == want
        else:
            assert out["stdout"].count("\n") == 200  # output arrives whole, in the same reply
        assert link.since(mark)["round_trips"] == 1, (src, link.since(mark))
    # an error is still one round trip
    mark = link.mark()
    code, out = await api("POST", "devices/%s/exec" % did, {"code": "1/0"})
    assert code == 200 and out["error"]["ename"] == "ZeroDivisionError"
    assert link.since(mark)["round_trips"] == 1


async def test_listing_and_stat_are_one_round_trip(api, shaped, link, agent):
    did = await shaped()
    with open(os.path.join(agent.root, "a.txt"), "w") as f:
        f.write("x")
    await api("GET", "devices/%s/files" % did, path="")
    mark = link.mark()
    code, out = await api("GET", "devices/%s/files" % did, path="")
    assert code == 200 and [e["name"] for e in out["entries"]] == ["a.txt"]
    assert link.since(mark)["round_trips"] == 1


async def test_session_open_costs_the_handshake(api, shaped, link):
    did = await shaped()
    code, _ = await api("DELETE", "devices/%s/session" % did)
    assert code == 204
    before = len(link.conns)
    code, dev = await api("POST", "devices/%s/session" % did)
    assert code == 200 and dev["status"] == "connected" and dev["info"]["hostname"]
    # the session's connection (beside it the manager may probe the port: a greeting, no session;
    # the old connection's goodbye is not counted)
    new = sorted(link.conns[before:], key=lambda c: c.bytes["up"])
    assert new and all(c.bytes["up"] < 100 for c in new[:-1]), [c.bytes for c in new]
    # TLS's hello and the board's flight (1); our Finished with the answer to the token's challenge
    # (told in the greeting) and rpyc's root request behind it, then the board's challenge again,
    # its answer and the root (1; the root's class is made here, not asked for); the session's
    # claim and info together (1)
    assert new[-1].round_trips <= 3, " ".join(d[1][0] + str(d[2]) for d in new[-1].trace)


def _quiet_link(link, still=0.5, limit=10.0):
    """Wait until nothing crosses the link for ``still`` seconds (at most ``limit``)."""
    import time
    end = time.monotonic() + limit
    last, since = None, time.monotonic()
    while time.monotonic() < end:
        now = link.stats()
        key = (now["connections"], now["bytes_up"], now["bytes_down"])
        if key != last:
            last, since = key, time.monotonic()
        elif time.monotonic() - since >= still:
            return
        time.sleep(0.05)


def _kernel(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    spec = os.path.join(REPO, "jupyter_remote_device", "kernel", "spec")
    KernelSpecManager().install_kernel_spec(spec, "remote-device", prefix=str(tmp_path))
    return os.path.join(str(tmp_path), "share", "jupyter")


def test_trivial_kernel_cell_is_one_round_trip(tmp_path, agent, link, monkeypatch):
    from jupyter_client.manager import KernelManager
    monkeypatch.setenv("JUPYTER_PATH", _kernel(tmp_path))
    monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    km = KernelManager(kernel_name="remote-device")
    km.start_kernel(env=dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
                             JUPYTER_DATA_DIR=str(tmp_path / "data")))
    kc = km.client()
    kc.start_channels()
    quiet = lambda m: None  # noqa: E731
    try:
        kc.wait_for_ready(timeout=60)
        r = kc.execute_interactive("%%connect 127.0.0.1:%d --token %s" % (link.port, agent.token), timeout=60,
                                   output_hook=quiet)
        assert r["content"]["status"] == "ok", r["content"]
        kc.execute_interactive("1", timeout=60, output_hook=quiet)  # warm
        _quiet_link(link)  # the kernel's second (interrupt) connection has finished its handshake
        out = []
        for src in ("1", "x = 2", "print(x)"):
            # the fewest of three runs: a board slowed by other load may end a cell after the
            # first call's wait (then it is polled), and the kernel's 5 s heartbeat may fall in
            counts = []
            for _ in range(3):
                mark = link.mark()
                r = kc.execute_interactive(src, timeout=60, output_hook=out.append)
                assert r["content"]["status"] == "ok"
                counts.append(link.since(mark)["round_trips"])
            assert min(counts) == 1, (src, counts)
        assert any(m["msg_type"] == "stream" and m["content"]["text"] == "2\n" for m in out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

