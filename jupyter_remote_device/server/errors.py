"""Errors that reach a client as ``{"message", "reason"}`` with an HTTP status."""


class ApiError(Exception):
    """An error for a person, with the HTTP status and the contract's reason code."""

    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def to_dict(self):
        return {"message": self.message, "reason": self.reason}


def bad_request(message):
    return ApiError(400, "bad-request", message)


def not_found(message):
    return ApiError(404, "not-found", message)


def outside_root(message):
    return ApiError(403, "outside-root", message)


def not_connected(message):
    return ApiError(409, "not-connected", message)


def busy(message):
    return ApiError(409, "busy", message)
