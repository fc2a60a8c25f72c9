"""Calls on a board's rpyc root in one round trip each.

``root.name(*args)`` on an rpyc netref costs two round trips: a getattr that brings back
a netref to the bound method, then the call.  rpyc's ``HANDLE_CALLATTR`` does both in one
request (the board still checks the name against its exposed methods), so every call
here costs one round trip plus the board's own time, with no netref kept or sent.
``pipelined`` sends several calls before waiting for the first answer: one round trip
for all of them.

A root that is not a netref (the classic glue's local ``Root``, server/classic.py) is
called as it is.
"""
import rpyc
from rpyc.core import consts
from rpyc.core.netref import BaseNetref, asyncreq

__all__ = ["call", "start", "pipelined"]


def start(root, name, args=()):
    """Send ``root.<name>(*args)``; an rpyc AsyncResult (``.value`` waits, raises what the board raised)."""
    if isinstance(root, BaseNetref):
        return asyncreq(root, consts.HANDLE_CALLATTR, str(name), tuple(args), ())
    return rpyc.async_(getattr(root, name))(*args)


def call(root, name, *args, timeout=None):
    """``root.<name>(*args)`` in one round trip; ``timeout`` (s) bounds the wait for the answer
    (by default the connection's ``sync_request_timeout``, as for rpyc's own calls)."""
    if not isinstance(root, BaseNetref) and timeout is None:
        return getattr(root, name)(*args)
    res = start(root, name, args)
    if timeout is None:  # root is a netref here
        timeout = object.__getattribute__(root, "____conn__")._config.get("sync_request_timeout")
    if timeout is not None:
        res.set_expiry(timeout)
    return res.value


def pipelined(root, calls, timeout=None):
    """[(name, args), ...] sent at once; their answers (an exception instance for a call that
    raised), in order."""
    pending = [start(root, name, args) for name, args in calls]
    out = []
    for res in pending:
        if timeout is not None:
            res.set_expiry(timeout)
        try:
            out.append(res.value)
        except Exception as e:
            out.append(e)
    return out
