"""Drive a stock rpyc classic server (MaixPy3 boards on 18812) as if it ran the agent.

Nothing is installed on the board. We connect with ``rpyc.core.service.ClassicClient`` (we
expose nothing: the board cannot call into the Jupyter side) over the same bounded channel and
guarded unboxing as an agent connection, then send the agent package (``bundle.agent_sources``)
once per board process: ``agent/classic_boot.py`` serves it from memory there and
``agent/classic_glue.py`` gives each connection a ``Root`` with the agent's wire methods.
``connect_classic`` returns a connection-like wrapper whose ``root`` is that remote object, so
sessions, camera streams, transfers and the kernel use it exactly like an agent connection.

Both rpyc wire families are driven: rpyc 6 servers with our rpyc, rpyc 4.x/5.x servers (MaixPy3
images) through a bridge process running rpyc 5.3.1 (``link/bridge``); ``rpyc_family`` tells them
apart and refuses (``too-old``) a board nothing here can drive.

Limitations:

* Code runs on a daemon thread of the classic server (its main thread is not ours), so
  interrupt uses ``PyThreadState_SetAsyncExc`` plus an interruptible ``time.sleep``:
  pure-Python loops and ``time.sleep`` stop, other blocking calls only when they return.
* No authentication: a classic server has none; anyone who reaches its port can run code
  on the board. Prefer the agent (or reach the board over SSH).
* The board pays for the sources once per board process; a different Jupyter-side version
  sends its own copy (the package name carries a hash of the sources).
"""
import socket
import time

import rpyc
from rpyc.core.service import ClassicClient

from . import rpyc_family
from .bundle import agent_sources, boot_source
from .checks import json_text
from .dial import close_quietly, rpyc_over, tcp
from .errors import LinkError
from .probe import probe

DEFAULT_ROOT = "~/jrd-root"


class ClassicConnection(object):
    """Looks like an agent connection: ``root`` has the wire methods; ``close()``."""

    jrd_kind = "classic"

    def __init__(self, conn, root, hello):
        self.conn = conn
        self.root = root
        self._jrd_hello = hello

    @property
    def closed(self):
        return self.conn.closed

    @property
    def _channel(self):
        return self.conn._channel

    def ping(self, *args, **kwargs):
        return self.conn.ping(*args, **kwargs)

    def close(self):
        if not self.conn.closed:
            try:  # release camera streams / write handles now (the board's watcher would, within 1 s)
                res = rpyc.async_(self.root.close)()
                res.set_expiry(2.0)
                res.wait()
            except Exception:
                pass
        close_quietly(self.conn)


def bootstrap(conn, root=DEFAULT_ROOT, camera="auto"):
    """BLOCKING: make sure the agent package runs in the classic server; a Root for ``conn``
    (an rpyc 6 connection or a bridge)."""
    pkg, sources = agent_sources()
    if not conn.eval("%r in __import__('sys').modules" % (pkg,)):
        conn.execute(boot_source() + "\ninstall(%r, %r)\n" % (pkg, sources))
    # (a bridge, for rpyc <= 5 boards, offers the same classic calls)
    return conn.modules[pkg + ".classic_glue"].attach(str(root), str(camera))


def _open_rpyc(host, port, sock, family, timeout, sync_request_timeout):
    """An rpyc connection of the board's family: our rpyc 6, or an rpyc 5.3.1 bridge process."""
    if family == rpyc_family.OLD:
        from .bridge import BridgeConnection
        return BridgeConnection(sock, timeout=timeout, sync_request_timeout=sync_request_timeout,
                                label="%s:%s" % (host, port))
    sock.settimeout(None)
    return rpyc_over(sock, service=ClassicClient, sync_request_timeout=sync_request_timeout)


def connect_classic(host, port, timeout=5.0, root=DEFAULT_ROOT, camera="auto", sync_request_timeout=30):
    """BLOCKING: connect to a stock rpyc classic server and set up the agent there (LinkError;
    ``too-old`` for a board nothing here can drive)."""
    deadline = time.monotonic() + float(timeout)
    family = rpyc_family.last_seen(host, port)
    if family is None:
        found = probe(host, port, timeout=max(0.5, deadline - time.monotonic()))
        if found.get("kind") != "classic":
            raise LinkError("protocol", "%s:%s no longer answers like an rpyc classic server" % (host, port))
        family = found["rpyc_family"]
    sock = tcp(host, int(port), deadline)
    try:
        conn = _open_rpyc(host, port, sock, family, max(0.5, deadline - time.monotonic()), sync_request_timeout)
    except Exception as e:
        close_quietly(sock)
        rpyc_family.remember(host, port, None)
        if family == rpyc_family.OLD and hasattr(e, "_remote_tb"):  # it answered, refusing rpyc 5's requests
            raise LinkError("too-old", rpyc_family.ancient_rpyc("The board at %s:%s" % (host, port)))
        raise LinkError("protocol", "%s:%s looked like an rpyc classic server (%s), but the rpyc "
                        "conversation failed: %s" % (host, port, rpyc_family.FAMILY_NAMES.get(family), e))
    try:
        python, rpyc_version, _platform = conn.eval(rpyc_family.BOARD_VERSIONS)
        old = rpyc_family.too_old(python, rpyc_version, "The board at %s:%s" % (host, port))
        if old:
            raise LinkError("too-old", old)
        remote_root = bootstrap(conn, root, camera)
        hello = json_text(remote_root.hello(), "its hello")
    except Exception as e:
        close_quietly(conn)
        if isinstance(e, LinkError):
            raise
        rpyc_family.remember(host, port, None)
        if isinstance(e, (EOFError, socket.error)):
            raise LinkError("protocol", "The rpyc classic server at %s:%s closed the connection while "
                            "the agent code was being set up: %s" % (host, port, e))
        raise LinkError("protocol", "%s:%s runs an rpyc classic server, but setting up the agent code "
                        "there failed: %s: %s" % (host, port, type(e).__name__, e))
    hello["rpyc_version"] = rpyc_family.version_text(rpyc_version)
    hello["python"] = rpyc_family.version_text(python)
    return ClassicConnection(conn, remote_root, hello)


def kind_of(conn):
    return getattr(conn, "jrd_kind", "agent")


__all__ = ["ClassicConnection", "DEFAULT_ROOT", "bootstrap", "connect_classic", "kind_of"]
