"""Soak: ``python -m benchmarks.soak --minutes N`` (default 1) prints one JSON object.

One real agent (synthetic camera) and one real ``jupyter server`` subprocess with the
extension, both on 127.0.0.1. For N minutes, concurrently:

- a camera viewer (WebSocket) reads frames; it closes and re-opens every 20 s;
- a control loop: close + re-open the session, exec, PUT a small file, list files,
  push a workspace file and wait for its job, every cycle;
- an events WebSocket stays open.

Every ``--sample`` seconds it records RSS, open fds and threads of the server and the
agent. Leaks show as growth: the summary compares the last samples with the samples
after a warm-up (``flat`` = fds grew by at most 8 and RSS by at most 25 MB each).
Bounded: stops by itself after N minutes (at most 60); every wait has a timeout;
loopback only; temp folders are removed at the end.
"""
import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time

import tornado.httpclient
import tornado.websocket

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from jrd_procs import JupyterProc  # noqa: E402
from jupyter_remote_device.app import spawn_agent  # noqa: E402


def proc_stats(pid):
    out = {"rss_mb": None, "fds": None, "threads": None}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss_mb"] = round(int(line.split()[1]) / 1024.0, 1)
                elif line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        pass
    return out


class Soak:
    def __init__(self, args):
        self.args = args
        self.counts = {"cycles": 0, "reconnects": 0, "execs": 0, "puts": 0, "lists": 0, "pushes": 0,
                       "frames": 0, "camera_opens": 0, "camera_closed_by_reconnect": 0, "events": 0}
        self.errors = []
        self.samples = []
        self.stop_at = None

    def error(self, where, what):
        if len(self.errors) < 50:
            self.errors.append({"t": round(time.monotonic() - self.t0, 1), "where": where, "error": str(what)[:300]})

    async def req(self, method, route, body=None, raw=None, params="", timeout=30):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        r = await self.http.fetch(self.jp.url(route) + params, method=method, body=data, raise_error=False,
                                  headers={"Authorization": "token " + self.jp.token}, request_timeout=timeout)
        try:
            return r.code, json.loads(r.body) if r.body else None
        except ValueError:
            return r.code, r.body

    def ws_url(self, route):
        return self.jp.url(route).replace("http://", "ws://")

    async def camera_loop(self):
        while time.monotonic() < self.stop_at:
            try:
                req = tornado.httpclient.HTTPRequest(
                    self.ws_url("devices/%s/camera?width=320&height=240&quality=60&fps=15" % self.did),
                    headers={"Authorization": "token " + self.jp.token}, connect_timeout=10, request_timeout=10)
                ws = await tornado.websocket.websocket_connect(req)
                self.counts["camera_opens"] += 1
                until = min(self.stop_at, time.monotonic() + 20)
                last = {}
                while time.monotonic() < until:
                    msg = await asyncio.wait_for(ws.read_message(), 10)
                    if msg is None:
                        # the control loop's session close/re-open ends viewers: expected
                        if last.get("state") == "stopped" or last.get("reason") == "not-connected":
                            self.counts["camera_closed_by_reconnect"] += 1
                        else:
                            self.error("camera", "socket closed by the server after %s" % (last,))
                        await asyncio.sleep(0.3)
                        break
                    if isinstance(msg, bytes):
                        self.counts["frames"] += 1
                    else:
                        last = json.loads(msg)
                ws.close()
            except Exception as e:
                self.error("camera", repr(e))
                await asyncio.sleep(1)

    async def events_loop(self):
        try:
            req = tornado.httpclient.HTTPRequest(self.ws_url("events"),
                                                 headers={"Authorization": "token " + self.jp.token})
            ws = await tornado.websocket.websocket_connect(req)
            while time.monotonic() < self.stop_at:
                try:
                    msg = await asyncio.wait_for(ws.read_message(), 2)
                except asyncio.TimeoutError:
                    continue
                if msg is None:
                    self.error("events", "socket closed")
                    return
                self.counts["events"] += 1
            ws.close()
        except Exception as e:
            self.error("events", repr(e))

    async def control_loop(self):
        payload = os.urandom(200 * 1024)
        with open(os.path.join(self.jp.workdir, "root", "soak.bin"), "wb") as f:
            f.write(os.urandom(512 * 1024))
        while time.monotonic() < self.stop_at:
            self.counts["cycles"] += 1
            try:
                if self.counts["cycles"] % 10 == 0:  # reconnect every tenth cycle
                    code, _ = await self.req("DELETE", "devices/%s/session" % self.did)
                    code, body = await self.req("POST", "devices/%s/session" % self.did)
                    if code != 200:
                        self.error("session", (code, body))
                        await asyncio.sleep(1)
                        continue
                    self.counts["reconnects"] += 1
                code, out = await self.req("POST", "devices/%s/exec" % self.did,
                                           {"code": "x = sum(range(10000))\nprint(x)"})
                if code == 200 and out["stdout"] == "49995000\n":
                    self.counts["execs"] += 1
                else:
                    self.error("exec", (code, out))
                code, out = await self.req("PUT", "devices/%s/files/content" % self.did, raw=payload,
                                           params="?path=soak/put.bin")
                if code == 201 and out["size"] == len(payload):
                    self.counts["puts"] += 1
                else:
                    self.error("put", (code, out))
                code, out = await self.req("GET", "devices/%s/files" % self.did, params="?path=soak")
                if code == 200:
                    self.counts["lists"] += 1
                else:
                    self.error("list", (code, out))
                code, job = await self.req("POST", "devices/%s/push" % self.did,
                                           {"source": "soak.bin", "dest": "soak/pushed.bin"})
                if code != 202:
                    self.error("push", (code, job))
                    continue
                deadline = time.monotonic() + 30
                while job.get("state") == "running" and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    code, job = await self.req("GET", "jobs/" + job["id"])
                if job.get("state") == "done" and job.get("verified"):
                    self.counts["pushes"] += 1
                else:
                    self.error("push", job)
            except Exception as e:
                self.error("control", repr(e))
                await asyncio.sleep(0.5)

    async def sample_loop(self):
        while True:
            t = round(time.monotonic() - self.t0, 1)
            self.samples.append({"t": t, "server": proc_stats(self.jp.proc.pid),
                                 "agent": proc_stats(self.agent.pid)})
            if time.monotonic() >= self.stop_at:
                return
            await asyncio.sleep(min(self.args.sample, max(0.0, self.stop_at - time.monotonic())))

    async def run(self):
        self.http = tornado.httpclient.AsyncHTTPClient()
        code, dev = await self.req("POST", "devices", {"host": "127.0.0.1", "port": self.port, "token": self.token,
                                                      "name": "soak"})
        self.did = dev["id"]
        code, dev = await self.req("POST", "devices/%s/session" % self.did)
        if code != 200:
            raise RuntimeError("cannot open a session: %s %s" % (code, dev))
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.args.minutes * 60
        await asyncio.gather(self.sample_loop(), self.camera_loop(), self.control_loop(), self.events_loop())

    def summary(self):
        def series(who, key):
            return [s[who][key] for s in self.samples if s[who][key] is not None]

        out = {}
        warm = max(1, len(self.samples) // 5)  # after ~20 % of the run
        flat = True
        for who in ("server", "agent"):
            d = {}
            for key in ("rss_mb", "fds", "threads"):
                v = series(who, key)
                if not v:
                    continue
                base = v[min(warm, len(v) - 1)]
                tail = v[-max(1, len(v) // 5):]
                d[key] = {"start": v[0], "after_warmup": base, "end": v[-1], "max": max(v),
                          "growth_after_warmup": round(max(tail) - base, 1)}
            out[who] = d
            if d.get("fds", {}).get("growth_after_warmup", 0) > 8 or \
                    d.get("rss_mb", {}).get("growth_after_warmup", 0) > 25:
                flat = False
        out["flat"] = flat
        return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--sample", type=float, default=5.0, help="seconds between resource samples")
    p.add_argument("--samples", action="store_true", help="include every sample in the JSON")
    args = p.parse_args(argv)
    args.minutes = max(0.1, min(args.minutes, 60.0))
    tmp = tempfile.mkdtemp(prefix="jrd-soak-")
    agent = None
    jp = None
    soak = Soak(args)
    result = {"minutes": args.minutes}
    try:
        agent, port, token = spawn_agent(root=os.path.join(tmp, "board"), camera="synthetic")
        os.makedirs(os.path.join(tmp, "board"), exist_ok=True)
        jp = JupyterProc(device_manager={"mdns": False, "allowed_networks": ["127.0.0.0/8", "::1/128"],
                                         "heartbeat_interval": 2.0, "probe_interval": 5.0},
                         workdir=os.path.join(tmp, "jupyter"))
        jp.start()
        soak.jp, soak.agent, soak.port, soak.token = jp, agent, port, token
        asyncio.run(soak.run())
        result.update(soak.summary())
        result["counts"] = soak.counts
        result["errors"] = soak.errors
        result["server_log_tracebacks"] = jp.read_log().count("Traceback")
        if args.samples:
            result["samples"] = soak.samples
        else:
            result["samples_taken"] = len(soak.samples)
    except Exception as e:
        result["fatal"] = repr(e)
        result["errors"] = soak.errors
    finally:
        if jp is not None:
            jp.stop()
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(10)
            except Exception:
                agent.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return 0 if "fatal" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
