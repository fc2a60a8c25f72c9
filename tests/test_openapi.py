"""The OpenAPI contract (server/openapi.yaml) against the real server: real responses, happy paths
and errors, validate against the spec; a bounded schemathesis run (inside a network namespace the
test makes, since a fuzzer invents hosts and the server dials what it is given) finds no 5xx
besides the documented 502/504 and no schema violation."""
import asyncio
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

SPEC_PATH = pathlib.Path(__file__).resolve().parent.parent / "jupyter_remote_device" / "server" / "openapi.yaml"
FUZZ_SCRIPT = pathlib.Path(__file__).resolve().parent / "fuzz_openapi_ns.py"


def load_spec():
    with open(SPEC_PATH) as f:
        return yaml.safe_load(f)


def deref(spec):
    """Inline every local $ref (the spec has no cycles)."""
    def resolve(ref):
        node = spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(copy.deepcopy(resolve(node["$ref"])))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(spec)


SPEC = deref(load_spec())


def _template_regex(template):
    return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")


def find_operation(method, route):
    """(template, operation) for a concrete route like 'devices/abc/exec'."""
    path = "/" + route.split("?")[0]
    for template, item in SPEC["paths"].items():
        if _template_regex(template).match(path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError("%s %s is not in openapi.yaml" % (method, path))


def validate_response(method, route, status, content_type, body):
    template, op = find_operation(method, route)
    responses = op["responses"]
    assert str(status) in responses, "%s %s answered %s, not documented (%s)" % (
        method, template, status, sorted(responses))
    spec = responses[str(status)]
    content = spec.get("content")
    if not content:
        assert not body, "%s %s %s: the spec says no body, got %r" % (method, template, status, body[:100])
        return
    ctype = (content_type or "").split(";")[0].strip()
    assert ctype in content, "%s %s %s: content type %r not in %s" % (method, template, status, ctype, list(content))
    schema = content[ctype].get("schema")
    if ctype == "application/json":
        data = json.loads(body)
        errors = sorted(OAS30Validator(schema).iter_errors(data), key=str)
        assert not errors, "%s %s %s: %s\n%s" % (method, template, status, errors[0].message, json.dumps(data)[:500])


@pytest.fixture
def vapi(jp_fetch):
    """Like conftest's ``api``, but every response is checked against openapi.yaml."""
    seen = []

    async def call(method, route, body=None, raw_body=None, headers=None, **params):
        kwargs = {"method": method, "raise_error": False, "headers": headers or {}}
        if params:
            kwargs["params"] = params
        if raw_body is not None:
            kwargs["body"] = raw_body
        elif body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        r = await jp_fetch("jupyter-remote-device", *route.split("/"), **kwargs)
        validate_response(method, route, r.code, r.headers.get("Content-Type"), r.body or b"")
        seen.append((method, find_operation(method, route)[0], r.code))
        ctype = r.headers.get("Content-Type", "")
        data = json.loads(r.body) if r.body and ctype.startswith("application/json") else r.body
        return r.code, data

    call.seen = seen
    return call


def test_spec_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(load_spec())


def test_spec_covers_every_rest_route(jp_serverapp):
    """Every REST route/method the server registers is in the spec, and nothing else."""
    from test_security import implemented_methods, is_websocket, our_routes

    registered = set()
    for pattern, cls in our_routes(jp_serverapp):
        if is_websocket(cls):
            continue
        tail = pattern.split("jupyter-remote-device", 1)[1].rstrip("$")
        template = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", tail)
        for m in implemented_methods(cls):
            registered.add((m.lower(), template))
    documented = {(m, t) for t, item in SPEC["paths"].items() for m in item if m in
                  ("get", "post", "put", "patch", "delete")}
    assert registered == documented, ("missing from spec", registered - documented,
                                      "in spec only", documented - registered)


async def test_responses_match_spec(vapi, agent, jp_root_dir):
    """Happy paths and errors of every operation, validated against the spec."""
    code, _ = await vapi("GET", "version")
    assert code == 200
    code, _ = await vapi("GET", "devices")
    code, dev = await vapi("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token,
                                               "name": "spec-board"})
    assert code == 201
    did = dev["id"]
    code, _ = await vapi("POST", "devices", {"host": "127.0.0.1", "port": agent.port})
    assert code == 200
    for bad in ({"host": 5}, {"host": "127.0.0.1", "port": 0}, {"port": 1}):
        code, _ = await vapi("POST", "devices", bad)
        assert code == 400
    code, _ = await vapi("POST", "devices", {"host": "10.9.9.9", "port": 1})
    assert code == 403
    code, _ = await vapi("POST", "devices", raw_body=b'{"host": "' + b"a" * (2 << 20) + b'"}')
    assert code == 413
    code, _ = await vapi("GET", "devices/" + did)
    code, _ = await vapi("GET", "devices/nope")
    assert code == 404
    # before a session
    code, _ = await vapi("POST", "devices/%s/exec" % did, {"code": "1"})
    assert code == 409
    code, _ = await vapi("GET", "devices/%s/files" % did)
    assert code == 409
    # a refused port (502) and a wrong token (502)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    code, d2 = await vapi("POST", "devices", {"host": "127.0.0.1", "port": free})
    code, _ = await vapi("POST", "devices/%s/session" % d2["id"])
    assert code == 502
    code, _ = await vapi("DELETE", "devices/" + d2["id"])
    assert code == 204

    code, dev = await vapi("POST", "devices/%s/session" % did, {"take_over": False})
    assert code == 200 and dev["info"]
    code, _ = await vapi("POST", "devices/%s/session" % did, {"take_over": 3})
    assert code == 400
    code, out = await vapi("POST", "devices/%s/exec" % did, {"code": "print(1)"})
    assert code == 200
    code, out = await vapi("POST", "devices/%s/exec" % did, {"code": "1/0"})
    assert code == 200 and out["error"]["ename"] == "ZeroDivisionError"
    code, _ = await vapi("POST", "devices/%s/exec" % did, {"code": "import time; time.sleep(5)", "timeout": 0.5})
    assert code == 504
    code, _ = await vapi("POST", "devices/%s/exec" % did, {"code": 1})
    assert code == 400

    code, _ = await vapi("POST", "devices/%s/files" % did, {"path": "d", "type": "directory"})
    assert code == 201
    code, meta = await vapi("PUT", "devices/%s/files/content" % did, raw_body=b"hello", path="d/a.txt")
    assert code == 201 and meta["size"] == 5
    code, _ = await vapi("GET", "devices/%s/files" % did, path="d")
    assert code == 200
    code, data = await vapi("GET", "devices/%s/files/content" % did, path="d/a.txt")
    assert code == 200 and data == b"hello"
    code, _ = await vapi("GET", "devices/%s/files/content" % did, path="d/missing")
    assert code == 404
    code, _ = await vapi("GET", "devices/%s/files" % did, path="../x")
    assert code in (400, 403)
    code, _ = await vapi("PATCH", "devices/%s/files" % did, {"path": "d/b.txt"}, path="d/a.txt")
    assert code == 200
    code, _ = await vapi("DELETE", "devices/%s/files" % did, path="d")
    assert code == 409
    code, _ = await vapi("DELETE", "devices/%s/files" % did, path="d", recursive="true")
    assert code == 204

    (jp_root_dir / "p.txt").write_text("x" * 1000)
    code, job = await vapi("POST", "devices/%s/push" % did, {"source": "p.txt", "dest": "p.txt"})
    assert code == 202
    for _ in range(100):
        code, job = await vapi("GET", "jobs/" + job["id"])
        if job["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done"
    code, _ = await vapi("GET", "jobs")
    assert code == 200
    code, _ = await vapi("DELETE", "jobs/" + job["id"])
    assert code == 204
    code, _ = await vapi("GET", "jobs/nope")
    assert code == 404
    code, _ = await vapi("POST", "devices/%s/push" % did, {"source": "../x", "dest": "x"})
    assert code == 403
    code, job = await vapi("POST", "devices/%s/pull" % did, {"source": "p.txt", "dest": "pulled/"})
    assert code == 202
    for _ in range(100):
        code, job = await vapi("GET", "jobs/" + job["id"])
        if job["state"] != "running":
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done" and (jp_root_dir / "pulled" / "p.txt").read_text() == "x" * 1000
    for body, status in (({"source": "p.txt", "dest": "../x"}, 403), ({"source": "missing", "dest": ""}, 404),
                         ({"source": 1}, 400)):
        code, _ = await vapi("POST", "devices/%s/pull" % did, body)
        assert code == status, body
    # a recording (record.py): 202 Job, listed, stopped with DELETE jobs/{id}
    code, rec = await vapi("POST", "devices/%s/recordings" % did, {"format": "frames", "path": "spec-rec",
                                                                   "width": 160, "height": 120})
    assert code == 202
    for _ in range(100):
        code, rec = await vapi("GET", "jobs/" + rec["id"])
        if rec["frames"] >= 2:
            break
        await asyncio.sleep(0.05)
    code, _ = await vapi("GET", "devices/%s/recordings" % did)
    assert code == 200
    code, _ = await vapi("DELETE", "jobs/" + rec["id"])
    assert code == 204
    code, rec = await vapi("GET", "jobs/" + rec["id"])
    assert rec["state"] == "done" and rec["frames"] >= 2
    code, _ = await vapi("POST", "devices/%s/recordings" % did, {"format": "gif"})
    assert code == 400
    code, _ = await vapi("POST", "devices/%s/recordings" % did, {"format": "mp4", "path": "../x.mp4"})
    assert code == 403
    code, _ = await vapi("GET", "devices/nope/recordings")
    assert code == 404
    await _board_operations(vapi, did, agent)
    code, _ = await vapi("DELETE", "devices/%s/session" % did)
    assert code == 204
    code, _ = await vapi("DELETE", "devices/" + did)
    assert code == 204
    ops = {(m, t) for m, t, _ in vapi.seen}
    documented = {(m.upper(), t) for t, item in SPEC["paths"].items() for m in item
                  if m in ("get", "post", "put", "patch", "delete")}
    assert documented <= ops, documented - ops


async def _board_operations(vapi, did, agent):
    """terminal.py, diagnose.py, packages.py"""
    code, _ = await vapi("GET", "devices/%s/terminals" % did)
    assert code == 200
    code, _ = await vapi("DELETE", "devices/%s/terminals/none" % did)
    assert code == 404
    code, _ = await vapi("POST", "diagnose", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
    assert code == 200
    code, _ = await vapi("POST", "diagnose", {"host": 5})
    assert code == 400
    code, _ = await vapi("POST", "devices/%s/diagnose" % did)
    assert code == 200
    code, job = await vapi("POST", "devices/%s/packages" % did, {"packages": ["p.txt.whl"], "no_index": True})
    assert code == 404
    code, job = await vapi("POST", "devices/%s/packages" % did, {"packages": ["jrd-nothing-here"],
                                                               "no_index": True, "target": "t"})
    assert code == 202
    for _ in range(300):
        code, job = await vapi("GET", "jobs/" + job["id"])
        if job["state"] != "running":
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "failed" and job["kind"] == "pip"
    code, _ = await vapi("POST", "devices/%s/packages" % did, {"packages": ["--evil"]})
    assert code == 400


def _namespace_prefix():
    """A command prefix running in a new network namespace with lo up, or None."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return None, "unshare/ip not available"
    flags = ["-n"] if os.geteuid() == 0 else ["-r", "-n"]
    probe = subprocess.run(["unshare"] + flags + ["--", "sh", "-c", "ip link set lo up && ip -o addr show lo"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0 or "127.0.0.1" not in probe.stdout:
        return None, "cannot make a network namespace here: %s" % (probe.stderr.strip()[:200])
    return ["unshare"] + flags + ["--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'], None


@pytest.mark.timeout(600)
def test_schemathesis_in_network_namespace(tmp_path):
    pytest.importorskip("schemathesis")
    prefix, why = _namespace_prefix()
    if prefix is None:
        pytest.skip(why)
    out = tmp_path / "fuzz.json"
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parent.parent))
    r = subprocess.run(prefix + [sys.executable, str(FUZZ_SCRIPT), str(out), "--max-examples", "25",
                                 "--budget", "240"],
                       capture_output=True, text=True, timeout=500, env=env, cwd=str(tmp_path))
    assert out.exists(), "fuzz run produced no result:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-3000:])
    result = json.loads(out.read_text())
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=1))
    assert result["namespace_isolated"], result
    assert result["operations"] >= 15 and result["cases"] >= 15 * 5, result
    assert result["server_alive_after"], result
    assert not result["failures"], json.dumps(result["failures"][:10], indent=1)
    bad5xx = {s: n for s, n in result["status_counts"].items() if int(s) >= 500 and int(s) not in (502, 504)}
    assert not bad5xx, result["status_counts"]


def test_error_table_matches_the_spec_and_the_code():
    """server/errors.py's STATUS is openapi.yaml's x-reasons, and every reason the code gives
    (ApiError(status, "reason"), error("reason"), LinkError("reason")) is in it with that status."""
    from jupyter_remote_device.server.errors import STATUS

    assert load_spec()["components"]["schemas"]["Error"]["x-reasons"] == STATUS
    pkg = SPEC_PATH.parent.parent
    wrong = []
    for path in sorted(pkg.rglob("*.py")):
        if "agent" in path.relative_to(pkg).parts:
            continue
        text = path.read_text()
        for m in re.finditer(r'ApiError\((\d{3}), "([a-z-]+)"', text):
            if STATUS.get(m.group(2)) != int(m.group(1)):
                wrong.append("%s: %s" % (path.name, m.group(0)))
        for m in re.finditer(r'\b(?:error|LinkError)\("([a-z-]+)"', text):
            if m.group(1) not in STATUS:
                wrong.append("%s: %s" % (path.name, m.group(0)))
    assert not wrong, wrong
