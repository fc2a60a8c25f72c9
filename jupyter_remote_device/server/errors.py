"""The one error table: what reaches a client as ``{"message", "reason"}`` with an HTTP status.

``STATUS`` maps every reason the server uses to its status (DESIGN.md's table plus the
reasons boards and handlers really produce); ``openapi.yaml`` lists the same reasons (a test
checks). ``api_error`` turns any exception (a ``link.LinkError``, an exception raised on a
board, a broken connection) into an ``ApiError``: every module uses it.
"""
from ..link.errors import LinkError, board_error

STATUS = {
    "bad-request": 400,
    "outside-root": 403,
    "not-allowed": 403,
    "not-found": 404,
    "not-connected": 409,
    "busy": 409,
    "in-use": 409,
    "exists": 409,
    "not-empty": 409,
    "os-error": 409,
    "no-camera": 409,
    "no-terminal": 409,
    "too-large": 413,
    "not-supported": 501,
    "not-available": 501,
    "refused": 502,
    "unreachable": 502,
    "auth-failed": 502,
    "not-an-agent": 502,
    "protocol": 502,
    "host-key": 502,
    "cert-changed": 502,
    "too-old": 502,
    "timeout": 504,
    "no-space": 507,
}


class ApiError(Exception):
    """An error for a person, with the HTTP status and the contract's reason code."""

    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def to_dict(self):
        return {"message": self.message, "reason": self.reason}


def error(reason, message):
    """An ApiError with the table's status for ``reason``."""
    return ApiError(STATUS.get(reason, 502), reason, message)


def api_error(e, what="the board"):
    """The ApiError for any exception: itself, a LinkError by the table, a board's error classified."""
    if isinstance(e, ApiError):
        return e
    if not isinstance(e, LinkError):
        e = board_error(e, what)
    return error(e.reason, e.message)


def bad_request(message):
    return error("bad-request", message)


def not_found(message):
    return error("not-found", message)


def outside_root(message):
    return error("outside-root", message)


def not_connected(message):
    return error("not-connected", message)


def busy(message):
    return error("busy", message)
