"""Real processes for discovery / classic / SSH tests (loopback only)."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ClassicServer:
    """A stock rpyc classic server (what MaixPy3 boards run) on 127.0.0.1, HOME in a temp dir."""

    def __init__(self, port=0):
        self.home = tempfile.mkdtemp(prefix="jrd-classic-home-")
        env = dict(os.environ, HOME=self.home)
        env.pop("PYTHONPATH", None)  # nothing of ours on the board's path: the code is sent over
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from rpyc.cli.rpyc_classic import main; main()",
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=self.home)
        found = {}
        ev = threading.Event()

        def reader():
            for line in self.proc.stderr:
                m = re.search(r"server started on \[[^\]]*\]:(\d+)", line)
                if m and "port" not in found:
                    found["port"] = int(m.group(1))
                    ev.set()
            ev.set()

        threading.Thread(target=reader, daemon=True).start()
        ev.wait(30)
        if "port" not in found:
            self.close()
            raise RuntimeError("rpyc_classic did not start")
        self.port = found["port"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)


class PlainServer:
    """Something that is not rpyc: accepts, says a line, closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                c.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
            except OSError:
                pass
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()


async def wait_for(fn, timeout=15.0, interval=0.2):
    """Poll ``await fn()`` until it returns something truthy; returns it (or the last value)."""
    import asyncio

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(interval)
    return value
