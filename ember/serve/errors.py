"""Errors a request can meet, each carrying its HTTP status (the gRPC-to-HTTP mapping that
TF Serving and KServe use: INVALID_ARGUMENT 400, NOT_FOUND 404, DEADLINE_EXCEEDED 504, ...)."""

from __future__ import annotations


class ServeError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    status = 500
    kind = "internal"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(ServeError):
    status = 400
    kind = "invalid_argument"


class NotFound(ServeError):
    status = 404
    kind = "not_found"


class TooLarge(ServeError):
    status = 413
    kind = "too_large"


class Timeout(ServeError):
    status = 504
    kind = "deadline_exceeded"


class Unavailable(ServeError):
    status = 503
    kind = "unavailable"
