"""Trust on a hostile network, the Jupyter side (issue 14): no authentication downgrade, TLS
certificates pinned on first use, a board's write results checked, active content from a board
made inert, the kernel under the server's DeviceManager settings, frozen boards noticed in seconds.
Real agents on 127.0.0.1, a real jupyter_server, real kernels."""
import json
import os
import signal
import subprocess
import time

import pytest

from jupyter_remote_device import link
from jupyter_remote_device.kernel.inert import make_inert
from jupyter_remote_device.kernel.settings import kernel_policy
from jupyter_remote_device.link import calls


def _cert(tmp_path, name):
    key, cert = tmp_path / ("%s-key.pem" % name), tmp_path / ("%s-cert.pem" % name)
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("openssl could not make a test certificate: %s" % r.stderr[-200:])
    return ("--certfile", str(cert), "--keyfile", str(key))


# -- no downgrade ---------------------------------------------------------------------------------
def test_a_token_is_never_downgraded_to_no_auth(make_agent):
    """An agent offering no authentication is refused when we hold a token for it (it could be
    anyone); without a token it is still reachable (--insecure-no-auth is the user's choice)."""
    a = make_agent(camera="none", extra_args=("--insecure-no-auth",))
    with pytest.raises(link.LinkError) as e:
        link.connect("127.0.0.1", a.port, token="a-token-we-hold")
    assert e.value.reason == "auth-failed" and "no authentication" in e.value.message
    conn = link.connect("127.0.0.1", a.port, token=None)
    conn.close()


async def test_rest_session_refuses_a_board_that_offers_no_auth(api, make_agent):
    a = make_agent(camera="none", extra_args=("--insecure-no-auth",))
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": a.port, "token": "secret"})
    assert code == 201
    code, err = await api("POST", "devices/%s/session" % dev["id"])
    assert code == 502 and err["reason"] == "auth-failed", err


# -- TLS pinned on first use ------------------------------------------------------------------------
def test_fingerprint_checked_by_link(make_agent, tmp_path):
    a = make_agent(camera="none", extra_args=_cert(tmp_path, "one"))
    conn = link.connect("127.0.0.1", a.port, token=a.token)
    fp = conn._jrd_hello["fingerprint"]
    conn.close()
    assert len(fp.replace(":", "")) == 64
    link.connect("127.0.0.1", a.port, token=a.token, fingerprint=fp.lower()).close()
    with pytest.raises(link.LinkError) as e:
        link.connect("127.0.0.1", a.port, token=a.token, fingerprint="00" * 32)
    assert e.value.reason == "cert-changed" and fp in e.value.message


async def test_certificate_pinned_then_change_refused_until_accepted(api, make_agent, tmp_path):
    first = _cert(tmp_path, "first")
    a = make_agent(camera="none", extra_args=first)
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": a.port, "token": a.token})
    did = dev["id"]
    code, dev = await api("POST", "devices/%s/session" % did)
    assert code == 200 and dev["fingerprint"], dev
    pinned = dev["fingerprint"]
    await api("DELETE", "devices/%s/session" % did)
    # the board comes back with another certificate on the same port (a relay, or a reinstall)
    a.stop()
    a.extra_args = _cert(tmp_path, "second")
    a.restart()
    code, err = await api("POST", "devices/%s/session" % did)
    assert code == 502 and err["reason"] == "cert-changed", err
    code, dev = await api("GET", "devices/%s" % did)
    assert dev["fingerprint"] == pinned
    code, dev = await api("POST", "devices/%s/session" % did, {"accept_certificate": True})
    assert code == 200 and dev["status"] == "connected", dev
    assert dev["fingerprint"] and dev["fingerprint"] != pinned
    code, err = await api("POST", "devices/%s/session" % did, {"accept_certificate": "yes"})
    assert code == 400


# -- the token's challenge, told in the greeting ------------------------------------------------------
def test_an_agent_that_does_not_tell_its_challenge_early_is_still_reached(make_agent, tmp_path):
    """An older agent sends the challenge only once TLS is up: we wait for it, as before."""
    from jrd_helpers import patched_agent_env
    old = make_agent(camera="none", env=patched_agent_env(tmp_path / "boot", (
        "from jupyter_remote_device.agent import auth, wire\n"
        "plain = wire.greeting\n"
        "auth.greeting = lambda version, tls, rpyc=None, challenge=None: plain(version, tls, rpyc=rpyc)\n")))
    import socket
    with socket.create_connection(("127.0.0.1", old.port), timeout=10) as raw:
        line = raw.makefile("rb").readline()
    assert line.startswith(b"JRD-AGENT/") and b"challenge" not in line and b'"tls": true' in line, line
    conn = link.connect("127.0.0.1", old.port, token=old.token, timeout=10)
    try:
        assert conn._jrd_hello["tls"]
        assert json.loads(calls.call(conn.root, "hello"))["agent_version"]
    finally:
        conn.close()
    with pytest.raises(link.LinkError) as e:
        link.connect("127.0.0.1", old.port, token="wrong" * 8, timeout=10)
    assert e.value.reason == "auth-failed"


def test_a_board_that_changes_its_challenge_is_refused(make_agent, tmp_path):
    """The challenge inside TLS must be the one the greeting told: a board (or something in
    between) that says another one is refused."""
    from jrd_helpers import patched_agent_env
    liar = make_agent(camera="none", env=patched_agent_env(tmp_path / "boot", (
        "from jupyter_remote_device.agent import auth\n"
        "send = auth.send_json_line\n"
        "def lying(sock, obj):\n"
        "    if 'nonce' in obj:\n"
        "        obj = dict(obj, nonce='0' * 32)\n"
        "    send(sock, obj)\n"
        "auth.send_json_line = lying\n")))
    with pytest.raises(link.LinkError) as e:
        link.connect("127.0.0.1", liar.port, token=liar.token, timeout=10)
    assert e.value.reason == "protocol" and "changed its challenge" in e.value.message, e.value.message


# -- write results are checked ----------------------------------------------------------------------
def test_a_lying_write_result_is_not_verified():
    from jupyter_remote_device.server.transfer_board import confirmed
    good = json.dumps({"path": "a", "size": 3, "sha256": "ab" * 32})
    assert confirmed(good, "ab" * 32, 3)["path"] == "a"
    for lie in ({"path": "a", "size": 3, "sha256": "cd" * 32}, {"path": "a", "size": 4, "sha256": "ab" * 32},
                {"path": "a"}):
        with pytest.raises(link.LinkError) as e:
            confirmed(json.dumps(lie), "ab" * 32, 3)
        assert e.value.reason == "protocol" and "not verified" in e.value.message


# -- active content ---------------------------------------------------------------------------------
def test_active_content_is_made_inert():
    data, notes = make_inert({
        "text/html": '<b onclick="steal()">hi</b><script>alert(1)</script><iframe src="x"></iframe>'
                     '<a href=" javascript:alert(1)">x</a><td>1 &amp; 2</td>',
        "application/javascript": "alert(1)",
        "image/svg+xml": '<svg onload="alert(1)"><circle r="3"/><script>x()</script></svg>',
        "text/plain": "hi"})
    assert "application/javascript" not in data
    html = data["text/html"]
    assert "script" not in html and "onclick" not in html and "iframe" not in html and "javascript" not in html
    assert "<b>hi</b>" in html and "1 &amp; 2" in html
    assert "onload" not in data["image/svg+xml"] and "script" not in data["image/svg+xml"]
    assert data["text/plain"] == "hi" and len(notes) == 3
    same, none = make_inert({"text/html": "<table><tr><td>ok</td></tr></table>", "text/plain": "t"})
    assert same["text/html"] == "<table><tr><td>ok</td></tr></table>" and none == []


# -- the kernel under the server's settings ---------------------------------------------------------
def test_kernel_policy_reads_the_server_config(tmp_path):
    (tmp_path / "jupyter_server_config.json").write_text(json.dumps({"DeviceManager": {
        "allowed_networks": ["10.0.0.0/8"], "tokens": {"10.1.2.3:18861": "t"}, "connect_timeout": 1.5}}))
    (tmp_path / "jupyter_server_config.py").write_text("c.DeviceManager.connect_timeout = 2.5\n")
    files = [str(tmp_path / "jupyter_server_config.json"), str(tmp_path / "jupyter_server_config.py")]
    p = kernel_policy(files=files)
    assert p.connect_timeout == 2.5 and p.token_for("10.1.2.3", 18861) == "t"
    assert p.is_allowed("10.9.9.9") and not p.is_allowed("127.0.0.1")
    with pytest.raises(link.LinkError) as e:
        p.resolve("127.0.0.1", 18861)
    assert e.value.reason == "not-allowed"


@pytest.fixture
def kernel_env(tmp_path):
    """A kernelspec and config dir for kernels started by these tests."""
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = tmp_path / "prefix"
    KernelSpecManager().install_kernel_spec(os.path.join(repo, "jupyter_remote_device", "kernel", "spec"),
                                            "remote-device", prefix=str(prefix))
    conf = tmp_path / "config"
    conf.mkdir()
    env = dict(os.environ, JUPYTER_PATH=str(prefix / "share" / "jupyter"), JUPYTER_CONFIG_DIR=str(conf),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),
               PYTHONPATH=repo + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    return {"env": env, "config": conf, "prefix": prefix}


class _Kernel(object):
    def __init__(self, env):
        from jupyter_client.manager import KernelManager
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
        try:
            self.km = KernelManager(kernel_name="remote-device")
            self.km.start_kernel(env=env)
        finally:
            if saved is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = saved
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=30)

    def run(self, code, timeout=30):
        msgs = []
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=msgs.append)
        return reply["content"], msgs

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _texts(msgs, name):
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def test_kernel_obeys_allowed_networks(kernel_env, agent):
    (kernel_env["config"] / "jupyter_server_config.json").write_text(json.dumps(
        {"DeviceManager": {"allowed_networks": ["10.0.0.0/8"]}}))
    k = _Kernel(kernel_env["env"])
    try:
        reply, msgs = k.run("%%connect 127.0.0.1:%d --token %s" % (agent.port, agent.token))
        assert reply["status"] == "error" and "not-allowed" in reply["evalue"], reply
    finally:
        k.close()


def test_kernel_survives_board_output_and_freezes(kernel_env, agent):
    """Active content arrives inert with a note; a board frozen under a running cell (SIGSTOP)
    ends the cell within seconds with a message that says so, and the kernel stays up."""
    k = _Kernel(kernel_env["env"])
    try:
        reply, msgs = k.run("%%connect 127.0.0.1:%d --token %s" % (agent.port, agent.token))
        assert reply["status"] == "ok", (reply, msgs)
        reply, msgs = k.run('display({"text/html": "<b>bold</b><script>alert(1)</script>", '
                            '"application/javascript": "alert(2)", "text/plain": "x"}, raw=True)')
        assert reply["status"] == "ok"
        shown = [m["content"]["data"] for m in msgs if m["msg_type"] == "display_data"]
        assert shown and shown[0]["text/html"] == "<b>bold</b>" and "application/javascript" not in shown[0]
        assert "made inert" in _texts(msgs, "stderr")
        k.kc.execute("import time\nfor i in range(600):\n    time.sleep(0.1)\n")
        time.sleep(1.0)
        t0 = time.monotonic()
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            reply = None
            while time.monotonic() - t0 < 20:
                msg = k.kc.get_shell_msg(timeout=20)
                if msg["msg_type"] == "execute_reply":
                    reply = msg["content"]
                    break
            waited = time.monotonic() - t0
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        assert reply is not None and reply["status"] == "error", reply
        assert "stopped answering" in reply["evalue"], reply
        assert waited < 10, waited
        # the kernel is alive and reconnects to the thawed board
        reply, msgs = k.run("print(6 * 7)")
        assert reply["status"] == "ok" and "42" in _texts(msgs, "stdout"), (reply, msgs)
    finally:
        k.close()


def test_board_exceptions_are_unboxed_safely(tmp_path):
    """A board raising SystemExit / KeyboardInterrupt through a guarded connection gives us a
    RemoteBaseException, never the real thing (it would end a kernel or a server thread)."""
    import sys
    import time as _time

    from rpyc.core.service import ClassicClient

    from jrd_helpers import free_port
    from jupyter_remote_device.link.dial import rpyc_over, tcp
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c",
                               "from rpyc.utils.server import ThreadedServer\n"
                               "from rpyc.core.service import SlaveService\n"
                               "ThreadedServer(SlaveService, hostname='127.0.0.1', port=%d).start()\n" % port])
    try:
        def connect():
            deadline = _time.monotonic() + 15
            while True:
                try:
                    return rpyc_over(tcp("127.0.0.1", port, _time.monotonic() + 2), service=ClassicClient)
                except link.LinkError:
                    if _time.monotonic() > deadline:
                        raise
                    _time.sleep(0.1)

        for code in ("raise SystemExit(3)", "raise GeneratorExit()"):  # (a stock server dies on KeyboardInterrupt)
            conn = connect()
            try:
                with pytest.raises(link.RemoteBaseException) as e:
                    conn.execute(code)
                assert code.split()[1].split("(")[0] in str(e.value)
            finally:
                conn.close()
    finally:
        server.kill()
        server.wait(10)


def test_a_call_by_name_to_a_frozen_board_ends_within_the_connection_timeout(make_agent):
    """A call by name (one round trip, link/calls.py) is bounded like rpyc's own calls: by the
    connection's sync_request_timeout unless the caller says otherwise."""
    import time as _time
    frozen = make_agent(camera="none")
    conn = link.connect("127.0.0.1", frozen.port, token=frozen.token, sync_request_timeout=1.5)
    try:
        assert calls.call(conn.root, "ping") > 0
        frozen.proc.send_signal(signal.SIGSTOP)
        try:
            _wait_stopped(frozen.proc.pid)
            t = _time.monotonic()
            with pytest.raises(TimeoutError):
                calls.call(conn.root, "ping")
            assert _time.monotonic() - t < 5
            with pytest.raises(TimeoutError):
                calls.call(conn.root, "ping", timeout=0.3)
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
    finally:
        conn.close()


def _wait_stopped(pid, limit=5.0):
    """Until every thread of ``pid`` is stopped (a SIGSTOP is not instant for a thread on another core)."""
    import time as _time
    end = _time.monotonic() + limit
    while _time.monotonic() < end:
        states = []
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if states and all(st in ("T", "t") for st in states):
            return
        _time.sleep(0.01)
    raise AssertionError("process %d did not stop" % pid)
