"""Schemathesis run against a real server + agent, meant to run INSIDE a fresh network namespace
(tests/test_openapi.py starts it with ``unshare -n``): the fuzzer invents hosts and the server
dials what it is given, so nothing must be able to leave the machine.

    python tests/fuzz_openapi_ns.py OUT.json [--max-examples N] [--budget SECONDS]

Writes {"operations", "cases", "status_counts", "failures", "namespace_isolated", ...} to OUT.json.
Not a test module (pytest does not collect it).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SPEC = HERE.parent / "jupyter_remote_device" / "server" / "openapi.yaml"


def namespace_isolated():
    """Only a loopback interface here (a fresh namespace), and no default route."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line]
    routes = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.strip()
    return names == ["lo"] and not routes, names


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--max-examples", type=int, default=25)
    p.add_argument("--budget", type=float, default=240.0, help="seconds for the whole fuzz run")
    p.add_argument("--spec", default=str(SPEC), help="the OpenAPI file (default: the package's)")
    args = p.parse_args()
    result = {"operations": 0, "cases": 0, "status_counts": {}, "failures": [], "errors": [],
              "server_alive_after": False}
    isolated, links = namespace_isolated()
    result["namespace_isolated"] = isolated
    result["links"] = links
    if not isolated:
        json.dump(result, open(args.out, "w"))
        print("refusing to fuzz outside a private network namespace: links %s" % links)
        return 2

    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings, strategies as st
    from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

    from conftest import Agent
    from jrd_procs import JupyterProc

    agent = Agent(camera="synthetic")
    jp = JupyterProc(device_manager={"mdns": False, "allowed_networks": ["127.0.0.0/8", "::1/128"],
                                     "connect_timeout": 2.0, "heartbeat_interval": 1.0, "heartbeat_timeout": 2.0,
                                     "probe_interval": 5.0, "probe_hosts": []})
    try:
        jp.start()
        headers = {"Authorization": "token " + jp.token}
        base = "http://127.0.0.1:%d/jupyter-remote-device" % jp.port

        def ensure_device():
            code, dev = jp.request("POST", "devices", {"host": "127.0.0.1", "port": agent.port, "token": agent.token})
            did = dev["id"]
            jp.request("POST", "devices/%s/session" % did)
            return did

        ensure_device()
        schema = schemathesis.openapi.from_path(args.spec)
        checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
        session = requests.Session()
        started = time.monotonic()
        counts = result["status_counts"]

        for op_result in schema.get_all_operations():
            op = op_result.ok()
            result["operations"] += 1
            label = "%s %s" % (op.method.upper(), op.path)
            if time.monotonic() - started > args.budget:
                result["errors"].append("budget exhausted before %s" % label)
                continue
            use_real = "device_id" in (op.path_parameters.keys() if hasattr(op.path_parameters, "keys") else
                                       [p.name for p in op.path_parameters])

            strategy = op.as_strategy()
            try:  # malformed inputs too (wrong types, missing fields, junk bodies)
                strategy = st.one_of(strategy, op.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
            except Exception as e:
                result["errors"].append("%s: no negative strategy: %s" % (label, e))

            @settings(max_examples=args.max_examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy, real=st.booleans())
            def run(case, real):
                if time.monotonic() - started > args.budget:
                    return
                if use_real and real:
                    case.path_parameters["device_id"] = ensure_device()
                    if op.path.endswith("/exec") and isinstance(case.body, dict):
                        # fuzzed text as code on the (namespaced, temp-rooted) agent: keep it inert
                        case.body["code"] = "pass  # " + repr(case.body.get("code"))[:200].replace("\n", " ")
                try:
                    response = case.call(base_url=base, session=session, headers=headers, timeout=20)
                except Exception as e:  # the server hung or dropped the connection
                    result["failures"].append({"op": label, "error": "request failed: %r" % e,
                                               "case": repr(case)[:500]})
                    return
                result["cases"] += 1
                counts[str(response.status_code)] = counts.get(str(response.status_code), 0) + 1
                if response.status_code >= 500 and response.status_code not in (502, 504):
                    result["failures"].append({"op": label, "status": response.status_code,
                                               "body": response.text[:500], "case": repr(case)[:500]})
                    return
                try:
                    case.validate_response(response, checks=checks)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as e:  # schemathesis' FailureGroup is an exception group
                    result["failures"].append({"op": label, "status": response.status_code,
                                               "error": str(e)[:1500], "body": response.text[:300],
                                               "case": repr(case)[:500]})

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                result["errors"].append("%s: %s" % (label, traceback.format_exc()[-1500:]))
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        code, _ = jp.request("GET", "version", timeout=10)
        code2, dev = jp.request("POST", "devices/%s/exec" % ensure_device(), {"code": "print(6*7)"}, timeout=30)
        result["server_alive_after"] = code == 200 and code2 == 200 and dev.get("stdout") == "42\n"
        log = jp.read_log()
        result["tracebacks_in_server_log"] = log.count("Traceback")
    finally:
        jp.stop()
        agent.close()
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
