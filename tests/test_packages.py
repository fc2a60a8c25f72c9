"""pip on the board as a job: wheels built here (zipfile, no network), pushed, installed with
--no-index into a folder under the board's root; what is missing said plainly; bad input."""
import asyncio
import base64
import hashlib
import json
import os
import zipfile

import pytest

from jupyter_remote_device import link as client


def make_wheel(folder, name, version, value, requires=()):
    """A real, minimal pure-Python wheel (PEP 427), built without pip or network."""
    dist = "%s-%s" % (name, version)
    path = os.path.join(str(folder), "%s-py3-none-any.whl" % dist)
    files = {
        "%s/__init__.py" % name: "VALUE = %r\n" % value,
        "%s.dist-info/METADATA" % dist: "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
            name, version, "".join("Requires-Dist: %s\n" % r for r in requires)),
        "%s.dist-info/WHEEL" % dist: "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for fn, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (fn, digest, len(data)))
    record.append("%s.dist-info/RECORD,," % dist)
    with zipfile.ZipFile(path, "w") as z:
        for fn, text in files.items():
            z.writestr(fn, text)
        z.writestr("%s.dist-info/RECORD" % dist, "\n".join(record) + "\n")
    return path


async def wait_job(api, job_id, timeout=120):
    for _ in range(int(timeout / 0.2)):
        code, job = await api("GET", "jobs/" + job_id)
        assert code == 200
        if job["state"] != "running":
            return job
        await asyncio.sleep(0.2)
    raise AssertionError("job still running: %r" % job)


async def test_install_workspace_wheels_without_network(api, connected, agent, jp_root_dir):
    did = await connected()
    (jp_root_dir / "wheels").mkdir()
    make_wheel(jp_root_dir / "wheels", "jrdtinydep", "1.0", "dep-ok")
    make_wheel(jp_root_dir / "wheels", "jrdtiny", "0.3", "tiny-ok", requires=["jrdtinydep>=1.0"])
    code, job = await api("POST", "devices/%s/packages" % did, {
        "packages": ["wheels/jrdtiny-0.3-py3-none-any.whl", "wheels/jrdtinydep-1.0-py3-none-any.whl"],
        "target": "site", "no_index": True})
    assert code == 202, job
    assert job["kind"] == "pip" and job["state"] == "running" and "log" in job
    job = await wait_job(api, job["id"])
    assert job["state"] == "done", job
    assert job["exit_code"] == 0 and job["files_done"] == 2 and job["verified"] is True
    assert "Successfully installed" in job["log"] and "jrdtiny" in job["log"]
    assert job["check"]["pip"] and job["check"]["free_bytes"] > 0
    # installed where asked, importable on the board; the pushed wheels are gone again
    site = os.path.join(agent.root, "site")
    code, out = await api("POST", "devices/%s/exec" % did, {"code": (
        "import sys; sys.path.insert(0, %r)\nimport jrdtiny, jrdtinydep\nprint(jrdtiny.VALUE, jrdtinydep.VALUE)\n"
        % site)})
    assert out["stdout"] == "tiny-ok dep-ok\n", out
    assert not os.listdir(os.path.join(agent.root, ".jrd-wheels"))


async def test_pip_failure_is_a_failed_job_with_its_log(api, connected, jp_root_dir):
    did = await connected()
    make_wheel(jp_root_dir, "jrdneedy", "1.0", "x", requires=["jrd-not-anywhere-at-all"])
    code, job = await api("POST", "devices/%s/packages" % did, {
        "packages": ["jrdneedy-1.0-py3-none-any.whl"], "target": "site2", "no_index": True})
    assert code == 202
    job = await wait_job(api, job["id"])
    assert job["state"] == "failed" and job["reason"] == "pip-failed" and job["exit_code"] != 0, job
    assert "jrd-not-anywhere-at-all" in job["log"]
    assert "exit code" in job["error"]


async def test_missing_pip_is_said_plainly(api, make_agent, connected, tmp_path):
    # a board whose Python has no working pip: `python -m pip` fails there
    shadow = tmp_path / "nopip" / "pip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named pip')\n")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    a = make_agent(camera="none", env={"PYTHONPATH": "%s:%s" % (tmp_path / "nopip", here)})
    did = await connected(a)
    code, job = await api("POST", "devices/%s/packages" % did, {"packages": ["jrdtiny"], "no_index": True})
    assert code == 202
    job = await wait_job(api, job["id"])
    assert job["state"] == "failed" and job["reason"] == "no-pip", job
    assert "pip is not installed" in job["error"] and "ensurepip" in job["error"]


def test_room_check_says_what_is_missing(agent):
    c = client.connect("127.0.0.1", agent.port, token=agent.token)
    try:
        check = json.loads(c.root.pip_check(None, 10 ** 15))
    finally:
        c.close()
    assert check["ok"] is False and check["pip"]
    assert any("not enough room" in p and "MB free" in p for p in check["problems"]), check


async def test_cancel_a_pip_job(api, connected, jp_root_dir):
    did = await connected()
    make_wheel(jp_root_dir, "jrdslow", "1.0", "x")
    code, job = await api("POST", "devices/%s/packages" % did, {
        "packages": ["jrdslow-1.0-py3-none-any.whl"], "target": "site3", "no_index": True})
    code, _ = await api("DELETE", "jobs/" + job["id"])
    assert code == 204
    job = await wait_job(api, job["id"])
    assert job["state"] in ("cancelled", "done")


@pytest.mark.parametrize("body,status", [
    (None, 400), ({}, 400), ({"packages": "numpy"}, 400), ({"packages": []}, 400), ({"packages": [3]}, 400),
    ({"packages": ["--index-url=http://evil/"]}, 400), ({"packages": ["-r requirements.txt"]}, 400),
    ({"packages": ["numpy; os.system('x')"]}, 400), ({"packages": ["../outside.whl"]}, 403),
    ({"packages": ["missing.whl"]}, 404), ({"packages": ["numpy"], "upgrade": "yes"}, 400),
    ({"packages": ["numpy"], "target": "../x"}, 403), ({"packages": ["numpy"], "target": "."}, 400),
    ({"packages": ["x"] * 51}, 400),
])
async def test_packages_bad_input(api, connected, body, status):
    did = await connected()
    code, err = await api("POST", "devices/%s/packages" % did, body)
    assert code == status and err["message"] and err["reason"], (body, code, err)


async def test_packages_needs_a_session_and_a_device(api, agent):
    code, err = await api("POST", "devices/nope/packages", {"packages": ["numpy"]})
    assert code == 404
    code, dev = await api("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    code, err = await api("POST", "devices/%s/packages" % dev["id"], {"packages": ["numpy"]})
    assert code == 409 and err["reason"] == "not-connected"


def test_kernel_pip_magic_installs_a_local_wheel(tmp_path, agent):
    pytest.importorskip("jupyter_client")
    from jupyter_client.kernelspec import KernelSpecManager

    from test_kernel import SPEC, Kernel, texts

    prefix = tmp_path / "prefix"
    KernelSpecManager().install_kernel_spec(SPEC, "remote-device", prefix=str(prefix))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = tmp_path / "data"
    data.mkdir()
    k = Kernel(env={"JUPYTER_PATH": str(prefix / "share" / "jupyter"), "JUPYTER_DATA_DIR": str(data),
                    "PYTHONPATH": here})
    try:
        reply, msgs = k.run("%%connect 127.0.0.1:%d --token %s" % (agent.port, agent.token))
        assert reply["status"] == "ok", (reply, msgs)
        wheel = make_wheel(tmp_path, "jrdkernel", "2.0", "kernel-ok")
        site = os.path.join(agent.root, "ksite")
        reply, msgs = k.run("%%pip install --no-index --target %s %s" % (site, wheel), timeout=120)
        assert reply["status"] == "ok", (reply, msgs)
        out = texts(msgs)
        assert "Successfully installed jrdkernel-2.0" in out and "restart the kernel" in out, out
        reply, msgs = k.run("import sys; sys.path.insert(0, %r)\nimport jrdkernel\nprint(jrdkernel.VALUE)" % site)
        assert texts(msgs) == "kernel-ok\n"
        reply, msgs = k.run("%pip")
        assert reply["status"] == "error" and reply["ename"] == "UsageError" and "pip command" in reply["evalue"]
        reply, msgs = k.run("%pip install --no-index jrd-not-anywhere-at-all", timeout=120)
        assert "pip exited with code" in texts(msgs, "stdout") + texts(msgs, "stderr")
    finally:
        k.close()
