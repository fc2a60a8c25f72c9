"""``install-service``: systemd unit / procd / BusyBox init scripts, written with the options given;
``--dry-run`` changes nothing; ``--root-dir`` installs into a folder; the sysv script really runs
the agent, restarts it when it fails and stops it."""
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from jrd_helpers import free_port
from jupyter_remote_device import link
from jupyter_remote_device.agent import service_install, tlscert

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env=None):
    """``python -m jupyter_remote_device.agent ARGS`` (the board's own command)."""
    e = dict(os.environ, PYTHONPATH=REPO)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "jupyter_remote_device.agent"] + list(args),
                          capture_output=True, text=True, timeout=60, env=e)


def tree(top):
    out = []
    for dirpath, dirs, files in os.walk(top):
        out += [os.path.relpath(os.path.join(dirpath, f), top) for f in files + dirs]
    return sorted(out)


def test_dry_run_systemd_writes_nothing(tmp_path):
    token_file = str(tmp_path / "cfg" / "token")
    r = run_cli("install-service", "--dry-run", "--init", "systemd", "--system", "--root-dir", str(tmp_path / "sys"),
                "--token-file", token_file, "--root", "/srv/board", "--port", "18999", "--camera", "opencv",
                "--token", "not-on-a-command-line")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "/etc/systemd/system/jupyter-remote-device-agent.service" in out
    exec_line = [line for line in out.splitlines() if line.startswith("ExecStart=")][0]
    for part in ("-m jupyter_remote_device.agent", "--root /srv/board", "--port 18999", "--camera opencv",
                 "--token-file " + token_file):
        assert part in exec_line, exec_line
    assert "not-on-a-command-line" not in out  # the token goes to the token file, never into the unit
    assert "Restart=on-failure" in out and "WantedBy=multi-user.target" in out
    assert "systemctl enable --now jupyter-remote-device-agent" in out
    assert "journalctl -u jupyter-remote-device-agent" in out
    assert not os.path.exists(str(tmp_path / "sys")) and not os.path.exists(token_file)


def test_dry_run_user_unit_and_init_script():
    r = run_cli("install-service", "--dry-run", "--init", "systemd", "--user", "--port", "18862")
    assert r.returncode == 0, r.stderr
    assert "systemd/user/jupyter-remote-device-agent.service" in r.stdout
    assert "WantedBy=default.target" in r.stdout and "systemctl --user enable --now" in r.stdout
    assert "loginctl enable-linger" in r.stdout
    r = run_cli("install-service", "--dry-run", "--init", "sysv", "--system", "--camera", "maix", "--root", "/root/w")
    assert r.returncode == 0, r.stderr
    assert "/etc/init.d/S99jupyter-remote-device-agent" in r.stdout
    for part in ("start)", "stop)", "restart)", "status)", "--camera maix", "--root /root/w", "/var/log/"):
        assert part in r.stdout, part
    r = run_cli("install-service", "--dry-run", "--init", "procd", "--system")
    assert r.returncode == 0, r.stderr
    assert "#!/bin/sh /etc/rc.common" in r.stdout and "USE_PROCD=1" in r.stdout and "respawn" in r.stdout
    # a typo in the agent's options is caught at install time, not at the next boot
    r = run_cli("install-service", "--dry-run", "--init", "sysv", "--camera", "nonsense")
    assert r.returncode != 0 and "camera" in r.stderr


@pytest.mark.parametrize("init", ["systemd", "procd", "sysv"])
def test_install_into_root_dir_and_uninstall(tmp_path, init):
    top = tmp_path / "board"
    token_file = "/etc/jrd/token"
    out = io.StringIO()
    rc = service_install.main(["install-service", "--init", init, "--system", "--root-dir", str(top),
                               "--token-file", token_file, "--port", "18998", "--root", "/data"], out=out)
    assert rc == 0, out.getvalue()
    unit = {"systemd": "etc/systemd/system/jupyter-remote-device-agent.service",
            "procd": "etc/init.d/jupyter-remote-device-agent",
            "sysv": "etc/init.d/S99jupyter-remote-device-agent"}[init]
    path = top / unit
    assert path.exists()
    text = path.read_text()
    assert "--port 18998" in text and "--root /data" in text and "--token-file /etc/jrd/token" in text
    assert (path.stat().st_mode & 0o777) == (0o644 if init == "systemd" else 0o755)
    tok = top / "etc/jrd/token"
    assert (tok.stat().st_mode & 0o777) == 0o600 and len(tok.read_text().strip()) >= 32
    # the certificate the service will serve is made now, beside the token, its fingerprint shown
    pem = top / "etc/jrd/agent-tls.pem"
    assert (pem.stat().st_mode & 0o777) == 0o600
    assert tlscert.fingerprint_file(str(pem)) in out.getvalue()
    if init == "procd":
        link = os.readlink(str(top / "etc/rc.d/S99jupyter-remote-device-agent"))
        assert link == "../init.d/jupyter-remote-device-agent"
    if init != "systemd":
        r = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    out = io.StringIO()
    assert service_install.main(["status", "--init", init, "--system", "--root-dir", str(top)], out=out) == 0
    assert "installed" in out.getvalue()
    out = io.StringIO()
    assert service_install.main(["uninstall-service", "--init", init, "--system", "--root-dir", str(top)], out=out) == 0
    assert not path.exists() and not os.path.lexists(str(top / "etc/rc.d/S99jupyter-remote-device-agent"))
    assert tok.exists()  # the token stays: reinstalling keeps the board's token


def _wait_port(port, token, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return link.connect("127.0.0.1", port, token, timeout=2)
        except link.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _agent_pid(pidfile):
    with open(pidfile) as f:
        return int(f.read().strip())


def test_sysv_script_runs_restarts_and_stops_the_agent(tmp_path):
    top = tmp_path / "board"
    port = free_port()
    out = io.StringIO()
    assert service_install.main(["install-service", "--init", "sysv", "--system", "--root-dir", str(top),
                                 "--token-file", str(tmp_path / "token"), "--token", "svc-test-token",
                                 "--host", "127.0.0.1", "--port", str(port), "--camera", "none",
                                 "--root", str(tmp_path / "files"), "--no-mdns"], out=out) == 0
    script = str(top / "etc/init.d/S99jupyter-remote-device-agent")
    # --root-dir wrote the token file under top/; this "board" is the machine itself: put it in place
    stored = top / str(tmp_path / "token").lstrip("/")
    assert stored.read_text().strip() == "svc-test-token" and (stored.stat().st_mode & 0o777) == 0o600
    os.replace(str(stored), str(tmp_path / "token"))
    env = dict(os.environ, LOGDIR=str(tmp_path / "log"), RUNDIR=str(tmp_path / "run"), PYTHONPATH=REPO)
    pidfile = str(tmp_path / "run" / "jupyter-remote-device-agent.pid")
    r = subprocess.run(["sh", script, "start"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    first = None
    try:
        conn = _wait_port(port, "svc-test-token")
        assert conn.root.exec_busy()
        conn.close()
        first = _agent_pid(pidfile)
        # the token is not on the agent's command line
        assert b"svc-test-token" not in open("/proc/%d/cmdline" % first, "rb").read()
        r = subprocess.run(["sh", script, "status"], env=env, capture_output=True, text=True)
        assert r.returncode == 0 and "running" in r.stdout
        # restart on failure: a crash (SIGKILL) brings a new agent up
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                second = _agent_pid(pidfile)
            except (OSError, ValueError):
                second = None
            if second not in (None, first):
                break
            assert time.monotonic() < deadline, "no restart"
            time.sleep(0.2)
        _wait_port(port, "svc-test-token").close()
        assert "restarting" in open(str(tmp_path / "log" / "jupyter-remote-device-agent.log")).read()
    finally:
        r = subprocess.run(["sh", script, "stop"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    time.sleep(0.3)
    for pid in (first, second):
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z"
    with pytest.raises(link.ConnectError):
        link.connect("127.0.0.1", port, "svc-test-token", timeout=2)
    r = subprocess.run(["sh", script, "status"], env=env, capture_output=True, text=True)
    assert r.returncode == 3 and "stopped" in r.stdout
