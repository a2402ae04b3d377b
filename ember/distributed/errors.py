"""Errors raised by ``ember.distributed``."""

from __future__ import annotations

__all__ = ["DistBackendError", "DistError", "RankFailureError"]


class DistError(RuntimeError):
    """A distributed operation failed (bad arguments, no process group, ...)."""


class DistBackendError(DistError):
    """The communication backend failed or is not installed."""


class RankFailureError(DistBackendError):
    """A collective did not finish within the timeout because a rank died or hung.

    ``failed_ranks`` lists the ranks known to be dead (empty when none could be named,
    e.g. a hung rank on another machine).
    """

    def __init__(self, message: str, failed_ranks: tuple[int, ...] = ()):
        super().__init__(message)
        self.failed_ranks = tuple(failed_ranks)
