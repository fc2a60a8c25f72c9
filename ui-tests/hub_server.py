"""JupyterHub for the hub Galata run (playwright.hub.config.js): configurable-http-proxy, two
users (alice, bob; DummyAuthenticator, password in tests/jrd_hub.py), their single-user servers
with this extension (this checkout's build) and Galata's helper extension, XSRF checks on.

Boards, configured once for every user in the shared single-user config: desk-01..desk-03 are
real loopback agents with the synthetic camera; desk-04..desk-11 are addresses where nothing
listens (offline). allowed_networks is loopback.

When both servers are up it answers 200 on http://127.0.0.1:(PORT+1)/ (Playwright waits for
that), and stops everything on SIGTERM/SIGINT.

    python hub_server.py --port 18890
"""
import argparse
import http.server
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
os.environ.setdefault("JUPYTER_REMOTE_DEVICE_NO_MDNS", "1")

import jupyterlab.galata  # noqa: E402

from jrd_helpers import free_port  # noqa: E402
from jrd_hub import Hub  # noqa: E402
from jupyter_remote_device.app import spawn_agent, stop_process  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("JRD_UI_HUB_PORT", "18890")))
    args = ap.parse_args()

    agents = []
    stop = threading.Event()
    hub = None
    try:
        devices = []
        for i in range(3):
            proc, port, token = spawn_agent(host="127.0.0.1", port=0, camera="synthetic")
            agents.append(proc)
            devices.append({"host": "127.0.0.1", "port": port, "name": "desk-%02d" % (i + 1), "token": token})
        for i in range(3, 11):  # nothing listens there: offline boards
            devices.append({"host": "127.0.0.1", "port": free_port(), "name": "desk-%02d" % (i + 1)})
        build = os.path.join(REPO, "jupyter_remote_device", "labextension")
        hub = Hub(
            port=args.port,
            device_manager={"configured_devices": devices, "allowed_networks": ["127.0.0.0/8"], "mdns": False,
                            "connect_timeout": 3.0, "heartbeat_interval": 1.0, "probe_interval": 2.0},
            server_config={"LabServerApp": {"extra_labextensions_path": [os.path.dirname(jupyterlab.galata.__file__)]},
                           "LabApp": {"expose_app_in_browser": True}},
            labextension=build if os.path.exists(os.path.join(build, "package.json")) else None,
        )
        for user in hub.users:  # the folder the tests' file browser opens (tmpPath in room.hub.ts)
            os.makedirs(os.path.join(hub.dir, "users", user, "root", "room-tests"), exist_ok=True)
        hub.start()
        for user in hub.users:
            hub.spawn(user)

        class Ready(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ready\n")

            def log_message(self, *a):
                pass

        ready = http.server.ThreadingHTTPServer(("127.0.0.1", args.port + 1), Ready)
        threading.Thread(target=ready.serve_forever, daemon=True).start()
        print("hub ready on %s (dir %s)" % (hub.url, hub.dir), flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *a: stop.set())
        stop.wait()
        ready.shutdown()
    finally:
        if hub is not None:
            hub.stop()
        for proc in agents:
            stop_process(proc)


if __name__ == "__main__":
    main()
