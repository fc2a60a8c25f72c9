"""Which rpyc a board speaks, asked without waiting for a greeting, and the boards nothing can drive.

Two wire families exist (tomerfiliba-org/rpyc#552): rpyc <= 5 frames a message as
``brine.dump((msg, seq, args))`` (a brine 3-tuple: first payload byte ``TAG_TUP3`` = 0x12), rpyc 6
as ``I1(msg) + brine.dump((seq, args))`` (first payload byte the message code: 1, 2 or 3).

``identify`` sends one rpyc ping request the moment the TCP connection is up (a threaded
SlaveService server, which MaixPy3 runs, says nothing until the client speaks) and reads the
first answer:

* ``JRD-AGENT/...``: our agent (it greets at once; it then drops our ping as a bad handshake);
* an rpyc frame: the first payload byte tells the family, whether the server understood the ping
  (it echoes it) or not (it answers with its own close request in its own layout, then hangs up),
  and also when the server spoke first (a ``ClassicService`` server asks for our root at once);
* anything else: not an agent, not rpyc.

The ping is sent in the family last seen at that address (rpyc <= 5 first: MaixPy3 boards), so a
board's log normally shows no complaint. The frames are made with rpyc's own ``brine`` and
``consts`` (identical in rpyc 4, 5 and 6); only the two layouts above differ.
"""
import json
import socket
import struct
import threading
import time

from rpyc.core import brine, consts

MAGIC = b"JRD-AGENT/"
OLD, NEW = 5, 6        # rpyc <= 5, rpyc 6
FAMILY_NAMES = {OLD: "rpyc 4.x/5.x", NEW: "rpyc 6.x"}
MIN_PYTHON = (3, 8)    # the agent's code (the classic bootstrap sends it) needs Python 3.8
MIN_RPYC = (4, 0)      # rpyc 3.x speaks neither family's netref protocol

_FRAME = struct.Struct("!LB")
_seen = {}
_seen_lock = threading.Lock()


def ping_frame(family, seq=1):
    """An rpyc ``HANDLE_PING`` request frame in the given family's layout."""
    args = (consts.HANDLE_PING, (consts.LABEL_VALUE, (b"jrd",)))
    if family == OLD:
        data = brine.dump((consts.MSG_REQUEST, seq, args))
    else:
        data = brine.I1.pack(consts.MSG_REQUEST) + brine.dump((seq, args))
    return _FRAME.pack(len(data), 0) + data + b"\n"


def family_of(head):
    """``OLD`` / ``NEW`` for the first 6 bytes of an rpyc channel frame; None for anything else."""
    if len(head) < 6:
        return None
    length, compressed = _FRAME.unpack(head[:5])
    if compressed not in (0, 1) or not 0 < length < (1 << 24):
        return None
    if compressed:       # a compressed frame: the layout is inside the zlib stream
        return None
    first = head[5]
    if first == brine.TAG_TUP3[0]:
        return OLD
    if first in (consts.MSG_REQUEST, consts.MSG_REPLY, consts.MSG_EXCEPTION):
        return NEW
    return None


def remember(host, port, family):
    with _seen_lock:
        if family is None:
            _seen.pop((host, int(port)), None)
        else:
            _seen[(host, int(port))] = family
            if len(_seen) > 4096:
                _seen.clear()


def last_seen(host, port):
    with _seen_lock:
        return _seen.get((host, int(port)))


def identify(sock, host, port, deadline):
    """BLOCKING: what answers on this freshly connected socket?

    ``{"kind": "agent", "version", "tls"}``, ``{"kind": "classic", "rpyc_family": 5 | 6}`` or
    ``{"kind": None}``; raises ``socket.timeout`` when nothing at all answers before ``deadline``.
    The socket is used up (close it afterwards).
    """
    family = last_seen(host, port) or OLD
    sock.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        sock.sendall(ping_frame(family))
    except OSError:
        pass  # an agent may already have hung up on us; read what it said
    head = b""
    try:
        while len(head) < len(MAGIC):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            b = sock.recv(len(MAGIC) - len(head))
            if not b:
                break
            head += b
            if len(head) >= 6 and not MAGIC.startswith(head[:len(MAGIC)]):
                break
    except socket.timeout:
        if not head:
            raise
    except OSError:
        pass
    if head.startswith(MAGIC):
        hello = {}
        try:
            line = b""
            while not line.endswith(b"\n") and len(line) < 4096:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                b = sock.recv(1)
                if not b:
                    break
                line += b
            hello = json.loads(line.partition(b" ")[2].decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            pass
        if not isinstance(hello, dict):
            hello = {}
        return {"kind": "agent", "version": hello.get("version"), "tls": bool(hello.get("tls"))}
    fam = family_of(head)
    if fam is None:
        return {"kind": None}
    remember(host, port, fam)
    return {"kind": "classic", "rpyc_family": fam}


def version_tuple(text):
    """``"5.3.1"`` / ``(4, 1, 5)`` / ``"6.0.0b1"`` -> a tuple of ints (``()`` when unreadable)."""
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        parts = str(text or "").split(".")
    out = []
    for p in parts:
        digits = ""
        for ch in str(p):
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def version_text(value):
    t = version_tuple(value)
    return ".".join(str(x) for x in t) if t else (str(value) if value else "unknown")


BOARD_VERSIONS = ("(lambda s, r: (tuple(s.version_info[:3]), "
                  "getattr(r, '__version__', None) or getattr(getattr(r, 'version', None), 'version', None), "
                  "s.platform))(__import__('sys'), __import__('rpyc'))")


def too_old(python, rpyc_version, address="the board"):
    """A message naming both versions and what to do, when nothing here can drive such a board; else None."""
    py = version_tuple(python)
    rv = version_tuple(rpyc_version)
    pyt, rvt = version_text(python), version_text(rpyc_version)
    if py and py < MIN_PYTHON:
        return ("%s runs Python %s with rpyc %s. jupyter-remote-device needs Python 3.8 or newer on the "
                "board (the agent's code runs there). Update the board's image (MaixPy3 images ship "
                "Python 3.8), or install Python 3.8+ on it and run the agent there (README: Running the "
                "agent on a board)." % (address, pyt, rvt))
    if rv and rv < MIN_RPYC:
        return ("%s runs rpyc %s (Python %s). jupyter-remote-device speaks rpyc 4.x, 5.x and 6.x; "
                "rpyc %s is too old. On the board: pip install 'rpyc>=4,<6' (or copy the agent folder, "
                "which brings its own rpyc: README, Running the agent on a board)." % (address, rvt, pyt, rvt))
    return None


def family_of_version(version):
    """``OLD`` for rpyc 4.x/5.x, ``NEW`` for 6.x and later, None when unknown."""
    t = version_tuple(version)
    if not t:
        return None
    return OLD if t[0] <= 5 else NEW


def agent_rpyc_problem(hello, address):
    """Words for an agent whose rpyc cannot talk to ours (its greeting says which it runs); else None."""
    import rpyc
    theirs = hello.get("rpyc") if isinstance(hello, dict) else None
    if theirs is None or family_of_version(theirs) == family_of_version(rpyc.__version__):
        return None
    return ("The agent at %s runs with rpyc %s, which cannot talk to the rpyc %s of this Jupyter server "
            "(rpyc 6 and rpyc 5 are not wire-compatible). Run the agent with the rpyc it brings: on the "
            "Jupyter machine, jupyter remote-device bundle DIR, copy DIR to the board and start "
            "python3 -m jupyter_remote_device.agent from inside it (or add the board over SSH, which "
            "does this for you)." % (address, version_text(theirs), rpyc.__version__))


def ancient_rpyc(address):
    """Words for a board that speaks the rpyc <= 5 wire but refuses rpyc 5.3.1's first requests:
    rpyc 3.x (Python 3.6 or older; rpyc 3 does not even import on 3.7+). It cannot say which."""
    return ("%s speaks the rpyc 4.x/5.x wire, but rpyc 5.3.1 cannot talk to it either: it runs an rpyc "
            "older than 4.0 (rpyc 3.x, on Python 3.6 or older). jupyter-remote-device needs rpyc 4.0 or "
            "newer and Python 3.8 or newer on the board: update the board's image, or install Python 3.8+ "
            "there and run the agent folder from 'jupyter remote-device bundle' (it brings its own rpyc)."
            % address)
