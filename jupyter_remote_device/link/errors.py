"""What can go wrong on a board link, as reasons (the REST contract's codes), with no HTTP in sight.

``LinkError`` carries a ``reason`` and a message for a person; ``server/errors.py`` maps reasons to
HTTP statuses, the kernel shows them as they are. ``board_error`` classifies whatever an rpyc call
raised: an exception raised on the board (rpyc attaches ``_remote_tb``), a timeout, or a broken
connection (``ConnectionLost``).
"""
import errno
import socket

from rpyc.core.async_ import AsyncResultTimeout

from ..agent.wire import STOP_PREFIX


class LinkError(Exception):
    """Dialing or talking to a board failed; ``reason`` is one of the contract's codes."""

    def __init__(self, reason, message, kind=None):
        Exception.__init__(self, message)
        self.reason = reason
        self.message = message
        self.kind = kind  # what answered, when known ("classic" for a stock rpyc server)


ConnectError = LinkError  # the name callers of the agent's old client module know


class ConnectionLost(LinkError):
    """The connection itself broke (EOF, reset, heartbeat or call timeout on a dead link)."""

    def __init__(self, message):
        LinkError.__init__(self, "protocol", message)


class BoardStopped(ConnectionLost):
    """The agent said it is stopping (SIGTERM, a service stop): the session ends, no reconnect."""


class RemoteBaseException(Exception):
    """A board raised SystemExit / KeyboardInterrupt / GeneratorExit: never let those loose here."""


_LINK_ERRNOS = frozenset(getattr(errno, n) for n in (
    "EBADF", "ENOTCONN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENETDOWN", "EPIPE", "ECONNRESET",
    "ECONNABORTED", "ESHUTDOWN") if hasattr(errno, n))


def is_remote(e):
    """True for an exception raised on the board (rpyc attaches the remote traceback)."""
    return hasattr(e, "_remote_tb")


def is_connection_error(e):
    """True when the connection itself broke (board killed, network lost), not a board-side error."""
    if isinstance(e, AsyncResultTimeout):
        return True
    if is_remote(e) or isinstance(e, LinkError):
        return isinstance(e, ConnectionLost)
    if isinstance(e, (EOFError, ConnectionError, socket.timeout, TimeoutError)):
        return True
    return isinstance(e, OSError) and e.errno in _LINK_ERRNOS


def message_of(e):
    """A person's message from an exception, also one rebuilt by rpyc.

    rpyc rebuilds a remote OSError through ``__new__`` + ``args``, so its ``str()``
    reads "[Errno None] None: None -> None": the text is in ``args``.
    """
    if isinstance(e, LinkError):
        return e.message
    if isinstance(e, OSError) and not is_remote(e) and e.strerror and e.filename:
        return "%s: %s" % (e.strerror, e.filename)
    args = getattr(e, "args", ())
    if args:
        text = args[-1] if isinstance(e, OSError) and len(args) > 1 else args[0]
        return str(text)
    return type(e).__name__


def _errno_of(e):
    code = getattr(e, "errno", None)
    if code is None and isinstance(e, OSError) and len(e.args) > 1 and isinstance(e.args[0], int):
        code = e.args[0]
    return code


def board_error(e, what="the board"):
    """A LinkError for what a call to the board raised (``what`` names the board in messages)."""
    if isinstance(e, LinkError):
        return e
    msg = message_of(e)
    if isinstance(e, AsyncResultTimeout):
        return LinkError("timeout", "%s did not answer in time" % what)
    if is_connection_error(e):
        return ConnectionLost("the connection to %s was lost (%s)" % (
            what, msg if msg and msg != "None" else type(e).__name__))
    if not is_remote(e) and not isinstance(e, OSError):
        return LinkError("protocol", "Unexpected error talking to %s: %s: %s" % (what, type(e).__name__, msg))
    if is_remote(e) and msg.startswith(STOP_PREFIX):
        return BoardStopped(msg[len(STOP_PREFIX):])
    if isinstance(e, PermissionError):
        return LinkError("outside-root", msg)
    if isinstance(e, FileNotFoundError):
        return LinkError("not-found", msg)
    if isinstance(e, FileExistsError):
        return LinkError("exists", msg)
    if isinstance(e, OSError) and _errno_of(e) == errno.ENOTEMPTY:
        return LinkError("not-empty", msg)
    if isinstance(e, OSError) and _errno_of(e) == errno.ENOSPC:
        return LinkError("no-space", "%s has no space left: %s" % (what, msg))
    if isinstance(e, (IsADirectoryError, NotADirectoryError, ValueError, TypeError, KeyError)):
        return LinkError("bad-request", msg)
    if isinstance(e, OSError):
        return LinkError("os-error", "%s could not do it: %s" % (what, msg))
    return LinkError("protocol", "%s reported an error: %s: %s" % (what, type(e).__name__, msg))
