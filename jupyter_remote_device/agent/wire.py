"""What both ends of the board link share: the greeting, the rpyc settings and the channel limits.

The agent (``__main__.py``) serves with these; the Jupyter side (``jupyter_remote_device.link``)
dials with them. Standard library + rpyc only, Python 3.8 syntax: this module runs on boards.
"""
import json
import re
import socket
import struct
import zlib

from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream

# -- names both ends use
CAMERA_MIME = "application/vnd.jupyter.remote-device.camera+json"   # a live camera in a cell's output
NO_MDNS_ENV = "JUPYTER_REMOTE_DEVICE_NO_MDNS"                        # "1": no mDNS, neither side
STOP_PREFIX = "agent-stopping: "    # what every call raises once the agent is stopping (lifecycle.py)

# a pip requirement both ends accept: a name, extras, version specifiers (packages.py, server/packages.py)
REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(\[[A-Za-z0-9._,-]{1,200}\])?"
                            r"([<>=!~]=?[A-Za-z0-9.*+!_-]{1,60}(,[<>=!~]=?[A-Za-z0-9.*+!_-]{1,60}){0,9})?$")

# -- the greeting: the agent's first line, in clear, before any handshake or rpyc byte
MAGIC = b"JRD-AGENT/"
PROTOCOL = 1


def greeting(version, tls, rpyc=None, challenge=None):
    """The line an agent sends first: ``JRD-AGENT/1 {"version", "protocol", "tls", "rpyc"}`` and a newline.

    ``challenge`` (``{"nonce", "auth"}``) is the token challenge the agent sends again once TLS is
    up: told now, a client answers it in the same flight as its TLS Finished instead of waiting a
    round trip for it (the nonce is no secret: the answer travels inside TLS, and it is fresh per
    connection, so a recorded answer is worth nothing)."""
    hello = {"version": version, "protocol": PROTOCOL, "tls": bool(tls), "rpyc": rpyc}
    if challenge is not None:
        hello["challenge"] = challenge
    return MAGIC + str(PROTOCOL).encode() + b" " + json.dumps(hello).encode() + b"\n"


def parse_greeting(line):
    """The JSON of a greeting line read after MAGIC (``b"1 {...}"``); ValueError when malformed."""
    _, _, payload = line.partition(b" ")
    hello = json.loads(payload.decode("utf-8"))
    if not isinstance(hello, dict):
        raise ValueError("the greeting is not a JSON object")
    return hello


def looks_like_rpyc_frame(head):
    """A stock rpyc (6.x) classic server that speaks first sends a channel frame: ``!LB`` header."""
    if len(head) < 5:
        return False
    length, compressed = struct.unpack("!LB", head[:5])
    return compressed in (0, 1) and 0 < length < (1 << 24)


# -- rpyc: exposed_* methods only, no pickle, no remote classes, no local tracebacks sent
RPYC_CONFIG = {
    "allow_public_attrs": False,
    "allow_all_attrs": False,
    "allow_pickle": False,
    "allow_setattr": False,
    "allow_delattr": False,
    "import_custom_exceptions": False,
    "instantiate_custom_exceptions": False,
    "instantiate_oldstyle_exceptions": False,
    "include_local_traceback": False,
    "include_local_version": False,
    "sync_request_timeout": 30,
}

# -- the channel
IO_CHUNK = 1 << 20          # rpyc's default re-slices at 64000 bytes
MAX_FRAME = 64 << 20        # the largest rpyc frame either end accepts (after inflating)


def rpyc_config(**overrides):
    cfg = dict(RPYC_CONFIG)
    cfg.update(overrides)
    return cfg


class TunedSocketStream(SocketStream):
    """SocketStream with a large IO chunk."""

    MAX_IO_CHUNK = IO_CHUNK


class BoundedChannel(Channel):
    """A Channel that refuses absurd frames: a peer cannot make us buffer gigabytes by
    announcing a huge frame, nor inflate a zlib bomb."""

    MAX_FRAME = MAX_FRAME

    def recv(self):
        header = self.stream.read(self.FRAME_HEADER.size)
        length, compressed = self.FRAME_HEADER.unpack(header)
        if length > self.MAX_FRAME:
            self.close()
            raise EOFError("the peer sent a %d-byte frame (limit %d): connection closed" % (length, self.MAX_FRAME))
        data = self.stream.read(length + len(self.FLUSHER))[:-len(self.FLUSHER)]
        if compressed:
            d = zlib.decompressobj()
            try:
                data = d.decompress(data, self.MAX_FRAME)
            except zlib.error as e:
                self.close()
                raise EOFError("the peer sent a corrupt frame: %s" % e)
            if d.unconsumed_tail:
                data = d = None  # the traceback keeps this frame's locals: do not keep 64 MiB with it
                self.close()
                raise EOFError("the peer sent a frame inflating past %d bytes: connection closed" % self.MAX_FRAME)
        return data


def channel(sock):
    """The rpyc channel both ends use over a connected socket: no zlib, big IO chunk, bounded frames."""
    tune_socket(sock)
    return BoundedChannel(TunedSocketStream(sock), compress=False)


def tune_socket(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
            except OSError:
                pass
