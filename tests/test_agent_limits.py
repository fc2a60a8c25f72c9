"""The agent stays up: out of file descriptors (prlimit), slow-loris handshakes, too many pending
handshakes (in total and per address). Real agent processes on loopback."""
import os
import socket
import subprocess
import sys
import time

import pytest

from jupyter_remote_device import link
from jupyter_remote_device.app import READY_PREFIX, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "limits-test-token"


def start_agent(tmp_path, *extra, prefix=()):
    env = dict(os.environ, PYTHONPATH=REPO, JRD_AGENT_TOKEN=TOKEN)
    cmd = list(prefix) + [sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path), "--no-mdns"] + list(extra)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 30
    while True:
        line = p.stdout.readline()
        assert line, "the agent did not start"
        if line.startswith(READY_PREFIX):
            return p, int(line.rsplit(":", 1)[1])
        assert time.monotonic() < deadline


def raw(port, source="127.0.0.1", timeout=5.0):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def greeting(s):
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            return None
        buf += b
    return buf


def closed_within(s, seconds):
    """True when the peer closes ``s`` within ``seconds`` (reads until EOF)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def test_slow_loris_is_cut_off_at_the_deadline(tmp_path):
    p, port = start_agent(tmp_path, "--handshake-timeout", "2", "--no-tls")
    try:
        s = raw(port)
        assert greeting(s).startswith(b"JRD-AGENT/")
        assert greeting(s)  # the challenge line (no TLS here)
        t0 = time.monotonic()
        # one byte every 0.2 s: each read is quick, the handshake never ends
        cut = None
        while time.monotonic() - t0 < 8:
            try:
                s.sendall(b" ")
            except OSError:
                cut = time.monotonic() - t0
                break
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    cut = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            except OSError:
                cut = time.monotonic() - t0
                break
        assert cut is not None and cut < 4.0, cut
        s.close()
        # and the agent still serves
        link.connect("127.0.0.1", port, TOKEN).close()
    finally:
        stop_process(p, 5)


def test_stalled_tls_handshake_is_cut_off(tmp_path):
    """TLS on (the default): a client that never finishes the TLS handshake is cut off too."""
    p, port = start_agent(tmp_path, "--handshake-timeout", "2")
    try:
        s = raw(port)
        hello = greeting(s)
        assert b'"tls": true' in hello or b'"tls":true' in hello
        s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
        t0 = time.monotonic()
        assert closed_within(s, 5.0)
        assert 1.0 < time.monotonic() - t0 < 4.0
        s.close()
        link.connect("127.0.0.1", port, TOKEN).close()
    finally:
        stop_process(p, 5)


def test_pending_handshakes_capped_per_address_and_in_total(tmp_path):
    p, port = start_agent(tmp_path, "--handshake-timeout", "30", "--max-pending", "12",
                          "--max-pending-per-address", "8")
    held = []
    try:
        for _ in range(8):  # 8 silent clients from one address: all admitted (greeting sent)
            s = raw(port)
            assert greeting(s)
            held.append(s)
        s = raw(port)  # the 9th from that address is closed at once
        assert greeting(s) is None
        s.close()
        # another address is still admitted
        other = raw(port, "127.0.0.2")
        assert greeting(other)
        held.append(other)
        for i in range(3, 6):  # up to the total cap (12): more addresses
            s = raw(port, "127.0.0.%d" % i)
            g = greeting(s)
            if g is None:
                s.close()
                break
            held.append(s)
        assert len(held) == 12
        s = raw(port, "127.0.0.9")
        assert greeting(s) is None  # total cap reached
        s.close()
        for s in held:
            s.close()
        # once they are gone, a real client gets in
        deadline = time.monotonic() + 5
        while True:
            try:
                link.connect("127.0.0.1", port, TOKEN).close()
                break
            except link.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert p.poll() is None
    finally:
        for s in held:
            s.close()
        stop_process(p, 5)


@pytest.mark.skipif(not os.path.exists("/usr/bin/prlimit"), reason="needs prlimit (util-linux)")
def test_out_of_file_descriptors_does_not_end_the_agent(tmp_path):
    p, port = start_agent(tmp_path, "--handshake-timeout", "30", "--max-pending", "200",
                          prefix=["prlimit", "--nofile=32:32"])
    held = []
    try:
        # 7 per address (under the per-address cap), across addresses: more than the fds it has
        for i in range(60):
            try:
                s = raw(port, "127.0.0.%d" % (2 + i // 7), timeout=2)
            except OSError:
                break
            held.append(s)
        time.sleep(1.5)  # the agent meets EMFILE in accept() while they stay
        assert p.poll() is None, "the agent exited when accept() failed"
        fds = len(os.listdir("/proc/%d/fd" % p.pid))
        assert fds >= 28, fds  # it really ran out
        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = link.connect("127.0.0.1", port, TOKEN, timeout=3)
                break
            except link.ConnectError:
                assert time.monotonic() < deadline, "the agent does not accept again"
                time.sleep(0.2)
        assert conn.root.exec_busy()
        conn.close()
        assert p.poll() is None
    finally:
        for s in held:
            s.close()
        stop_process(p, 5)


def test_the_handshake_is_not_held_by_nagle():
    """The agent's side of a connection has TCP_NODELAY from its first byte: the handshake writes
    small messages back to back (TLS session tickets, then the challenge), which Nagle's algorithm
    would hold until the client's delayed ACK (40 ms per connection, most of a session open)."""
    import threading

    from jupyter_remote_device.agent import auth
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    client = socket.create_connection(lsock.getsockname(), timeout=5)
    served, _ = lsock.accept()
    authenticator = auth.AgentAuthenticator("t" * 32, "test")
    t = threading.Thread(target=lambda: _swallow(authenticator, served, time.monotonic() + 5), daemon=True)
    t.start()
    try:
        assert auth.read_line(client)  # the greeting: sent once the option is set
        assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.close()
        t.join(10)
        served.close()
        lsock.close()


def _swallow(authenticator, sock, deadline):
    try:
        authenticator(sock, deadline=deadline)
    except Exception:
        pass  # the client hangs up after the greeting


def test_the_agent_reads_its_options_without_argparse_and_argparse_agrees():
    """The exact forms are read without argparse (its memory would stay in the idle agent); they
    give what argparse gives, and everything else is left to argparse (help, abbreviations, errors)."""
    from jupyter_remote_device.agent.__main__ import parse_args, quick_args
    for argv in ([], ["--port", "0", "--host", "127.0.0.1"], ["--port=5", "--camera=none", "--no-tls"],
                 ["--camera", "file:/tmp/x.mp4", "--handshake-timeout", "2.5", "--no-mdns", "--mdns"],
                 ["--token-file", "/tmp/t", "--root", "/tmp/r", "--insecure-no-auth", "--max-pending", "3",
                  "--max-pending-per-address", "2", "--log-level", "DEBUG", "--certfile", "c", "--keyfile", "k"]):
        quick = quick_args(argv)
        assert quick is not None, argv
        assert vars(quick) == vars(parse_args(argv)), argv
    for argv in (["--help"], ["-h"], ["--por", "1"], ["--port", "x"], ["--port"], ["--camera", "nope"],
                 ["--host", "--port", "1"], ["--no-tls=1"], ["extra"]):
        assert quick_args(argv) is None, argv
    # reading them loads no argparse
    out = subprocess.run([sys.executable, "-c", "import sys\nfrom jupyter_remote_device.agent.__main__ import "
                          "quick_args\nassert quick_args(['--port', '0', '--no-tls'])\n"
                          "print(sorted(m for m in ('argparse', 'gettext', 'getopt') if m in sys.modules))"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)
