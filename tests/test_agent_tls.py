"""TLS by default: the agent makes its own certificate on first start (openssl, else the
cryptography module, else plain with a loud warning), keeps it beside its token, prints and
exposes its SHA-256 fingerprint; the Jupyter side still connects."""
import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time

import pytest

from jupyter_remote_device import link as client
from jupyter_remote_device.agent import tlscert
from jupyter_remote_device.app import READY_PREFIX, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "tls-test-token"


def start(tmp_path, *extra, env=None):
    e = dict(os.environ, PYTHONPATH=REPO, JRD_AGENT_TOKEN=TOKEN, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    e.update(env or {})
    p = subprocess.Popen([sys.executable, "-u", "-m", "jupyter_remote_device.agent", "--host", "127.0.0.1",
                          "--port", "0", "--camera", "none", "--root", str(tmp_path / "root"), "--no-mdns"]
                         + list(extra), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=e, text=True)
    lines = []
    deadline = time.monotonic() + 30
    while not any(line.startswith("JRD-AGENT TLS") for line in lines):
        line = p.stdout.readline()
        assert line and time.monotonic() < deadline, (lines, p.stderr.read() if p.poll() is not None else "")
        lines.append(line.strip())
    port = int([line for line in lines if line.startswith(READY_PREFIX)][0].rsplit(":", 1)[1])
    return p, port, lines


def peer_fingerprint(conn):
    sock = conn._channel.stream.sock
    assert isinstance(sock, ssl.SSLSocket)
    return tlscert.fingerprint_der(sock.getpeercert(binary_form=True))


def test_tls_by_default_with_its_own_certificate(tmp_path):
    p, port, lines = start(tmp_path)
    try:
        pem = tmp_path / "cfg" / "jupyter-remote-device" / tlscert.TLS_FILE
        assert pem.exists() and (pem.stat().st_mode & 0o777) == 0o600
        r = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-fingerprint", "-sha256"],
                           capture_output=True, text=True)
        openssl_fp = r.stdout.strip().split("=", 1)[1]
        printed = [line for line in lines if line.startswith("JRD-AGENT TLS ")][0].split(" ", 3)[3]
        assert printed == openssl_fp
        assert client.probe("127.0.0.1", port)["tls"] is True
        conn = client.connect("127.0.0.1", port, TOKEN)
        info = json.loads(conn.root.info())
        assert info["tls"] is True and info["tls_fingerprint"] == printed and info["tls_note"] is None
        assert peer_fingerprint(conn) == printed  # what a client pins is what the agent printed
        conn.close()
    finally:
        stop_process(p, 5)
    # the next start keeps the certificate (a pinned fingerprint stays valid)
    p, port, lines2 = start(tmp_path)
    try:
        def tls_line(ls):
            return [x for x in ls if x.startswith("JRD-AGENT TLS")]
        assert tls_line(lines2) == tls_line(lines)
    finally:
        stop_process(p, 5)


def test_certificate_beside_the_token_file(tmp_path):
    tf = tmp_path / "elsewhere" / "token"
    p, port, lines = start(tmp_path, "--token-file", str(tf), env={"JRD_AGENT_TOKEN": ""})
    try:
        assert (tmp_path / "elsewhere" / tlscert.TLS_FILE).exists()
        assert not (tmp_path / "cfg" / "jupyter-remote-device" / tlscert.TLS_FILE).exists()
        conn = client.connect("127.0.0.1", port, tf.read_text().strip())
        assert json.loads(conn.root.info())["tls"] is True
        conn.close()
    finally:
        stop_process(p, 5)


def test_cryptography_module_when_openssl_is_missing(tmp_path):
    pytest.importorskip("cryptography")
    p, port, lines = start(tmp_path, env={"JRD_AGENT_CERT_TOOLS": "cryptography"})
    try:
        conn = client.connect("127.0.0.1", port, TOKEN)
        info = json.loads(conn.root.info())
        assert info["tls"] is True and peer_fingerprint(conn) == info["tls_fingerprint"]
        conn.close()
    finally:
        stop_process(p, 5)


@pytest.mark.parametrize("how", ["no-tools", "--no-tls"])
def test_plain_says_so_loudly(tmp_path, how):
    if how == "no-tools":
        p, port, lines = start(tmp_path, env={"JRD_AGENT_CERT_TOOLS": "none"})
    else:
        p, port, lines = start(tmp_path, "--no-tls")
    try:
        assert [line for line in lines if line.startswith("JRD-AGENT TLS")][0].startswith("JRD-AGENT TLS off")
        assert client.probe("127.0.0.1", port)["tls"] is False
        conn = client.connect("127.0.0.1", port, TOKEN)
        info = json.loads(conn.root.info())
        assert info["tls"] is False and info["tls_fingerprint"] is None and info["tls_note"].startswith("plain")
        conn.close()
    finally:
        stop_process(p, 5)
    err = p.stderr.read()
    assert "WARNING" in err and ("WITHOUT TLS" in err or "--no-tls" in err), err


def test_concurrent_first_starts_make_one_consistent_pair(tmp_path):
    path = str(tmp_path / "cfg" / tlscert.TLS_FILE)
    results = []
    threads = [threading.Thread(target=lambda: results.append(tlscert.make_self_signed(path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(1 for r in results if r in ("openssl", "cryptography")) == 1, results
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(path)  # the key matches the certificate
    assert [f for f in os.listdir(str(tmp_path / "cfg")) if f != tlscert.TLS_FILE] == []
    assert len(tlscert.fingerprint_file(path).split(":")) == 32
    assert len(hashlib.sha256(tlscert.cert_der(path)).hexdigest()) == 64


async def test_the_server_connects_over_tls(api, agent, connected):
    did = await connected()
    code, dev = await api("GET", "devices/" + did)
    assert dev["info"]["tls"] is True and len(dev["info"]["tls_fingerprint"].split(":")) == 32
    code, res = await api("POST", "devices/%s/exec" % did, {"code": "print(6 * 7)"})
    assert code == 200 and res["stdout"].strip() == "42"
