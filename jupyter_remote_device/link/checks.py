"""The checks applied to every answer a board gives, on every path (agent, classic, kernel,
camera stream, transfer): treat every byte from a board as hostile.

* ``plain``: an answer is plain data (brine values), never an object reference (netref),
  whose every use would be a call into the board;
* ``json_text``: a JSON answer is text of bounded size holding a JSON object;
* ``data``: a binary answer is ``bytes`` of bounded size;
* ``guard``: a connection's exceptions from the board are unboxed safely (a board's
  ``SystemExit`` or ``KeyboardInterrupt`` becomes a ``RemoteBaseException``, never ends us).

Frames themselves are bounded by ``agent.wire.BoundedChannel`` (both ends).
"""
import json

import rpyc

from ..agent.wire import MAX_FRAME
from .errors import LinkError, RemoteBaseException

MAX_JSON = 16 << 20      # the largest JSON answer we parse
MAX_DATA = MAX_FRAME     # the largest binary answer (a file chunk, a camera frame)


def plain(value, what="an answer"):
    """``value`` when it is plain data; LinkError ``protocol`` when it is (or holds) a netref."""
    if isinstance(value, rpyc.BaseNetref):
        raise LinkError("protocol", "The board sent %s that is an object reference, not data: "
                        "it is not a well-behaved agent" % what)
    if type(value) is tuple:
        for v in value:
            plain(v, what)
    return value


def json_text(value, what="an answer", limit=MAX_JSON):
    """Parse a board's JSON answer (a str) into a dict, or LinkError ``protocol``."""
    plain(value, what)
    if type(value) not in (str, bytes):
        raise LinkError("protocol", "The board sent %s that is not JSON text" % what)
    if len(value) > limit:
        raise LinkError("protocol", "The board sent %s of %d characters (limit %d)" % (what, len(value), limit))
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise LinkError("protocol", "The board sent %s that is not valid JSON" % what)
    if not isinstance(data, dict):
        raise LinkError("protocol", "The board sent %s that is not a JSON object" % what)
    return data


def data(value, what="data", limit=MAX_DATA):
    """A board's binary answer: ``bytes`` of at most ``limit`` bytes, or LinkError ``protocol``."""
    plain(value, what)
    if type(value) is not bytes:
        raise LinkError("protocol", "The board sent %s that is not bytes (%s)" % (what, type(value).__name__))
    if len(value) > limit:
        raise LinkError("protocol", "The board sent %s of %d bytes (limit %d)" % (what, len(value), limit))
    return value


def safe_unboxer(conn):
    """An exception unboxer for ``conn`` that never lets a BaseException of the board loose here."""
    unbox = conn._unbox_exc

    def safe(raw):
        exc = unbox(raw)
        if not isinstance(exc, Exception):
            wrapped = RemoteBaseException("the board raised %s: %s" % (
                type(exc).__name__, str(exc)[:200] if exc.args else ""))
            wrapped._remote_tb = getattr(exc, "_remote_tb", "")
            return wrapped
        return exc

    return safe


def guard(conn):
    """Install the safe unboxer on an rpyc connection (agent and classic alike); returns it."""
    if not getattr(conn, "_jrd_guarded", False):
        conn._unbox_exc = safe_unboxer(conn)
        conn._jrd_guarded = True
    return conn
