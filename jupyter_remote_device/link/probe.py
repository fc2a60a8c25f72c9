"""What answers on host:port? The one probe (status loop, discovery, dial, kernel).

An rpyc ping goes out the moment TCP is up (a threaded SlaveService server, what MaixPy3 boards
run, says nothing until the client speaks); the first answer tells the agent (its greeting), an
rpyc <= 5 and an rpyc 6 classic server apart (``rpyc_family.identify``).
"""
import socket
import time

from . import rpyc_family
from .dial import close_quietly, tcp
from .errors import LinkError


def probe(host, port, timeout=2.0):
    """BLOCKING: ``{"kind": "agent", "version", "tls"}``, ``{"kind": "classic", "rpyc_family": 5 | 6}``
    or ``{"kind": None}`` (something else answers).

    Raises LinkError for refused / unreachable / timeout (a port that never answers).
    """
    deadline = time.monotonic() + float(timeout)
    sock = tcp(host, int(port), deadline)
    try:
        return rpyc_family.identify(sock, host, port, deadline)
    except socket.timeout:
        raise LinkError("timeout", "%s:%s accepted the connection but never answered" % (host, port))
    finally:
        close_quietly(sock)
