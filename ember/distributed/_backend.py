"""The collective-backend interface: one class per transport (MPI now, NCCL later).

A backend moves NumPy (later: device) buffers; it knows nothing about Tensors, autograd or
process-group bookkeeping. Every collective is non-blocking and returns a :class:`Request`;
:class:`ember.distributed.Work` waits on requests under the failure watchdog.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

__all__ = ["REDUCTIONS", "Backend", "Request"]

# Reduction names every backend understands (``ReduceOp`` values map to these).
REDUCTIONS = ("sum", "max", "min", "product", "band", "bor", "bxor")


class Request(abc.ABC):
    """One in-flight backend operation."""

    @abc.abstractmethod
    def test(self) -> bool:
        """Drive progress; True once the operation has completed."""

    def cancel(self) -> None:  # noqa: B027  (optional for backends)
        """Best effort: give up on the operation after a failure."""


class Backend(abc.ABC):
    """A collective transport between ``world_size`` processes.

    Buffers are C-contiguous NumPy arrays; ``out`` may be ``buf`` itself (in place).
    Every rank must issue the same collectives in the same order.
    """

    name: str = "?"

    @property
    @abc.abstractmethod
    def rank(self) -> int: ...

    @property
    @abc.abstractmethod
    def world_size(self) -> int: ...

    @abc.abstractmethod
    def supports(self, dtype: np.dtype, op: str | None) -> bool:
        """Whether ``dtype`` can be reduced with ``op`` (None: only moved)."""

    @abc.abstractmethod
    def barrier(self) -> Request: ...

    @abc.abstractmethod
    def allreduce(self, buf: np.ndarray, op: str) -> Request:
        """Reduce ``buf`` over all ranks, in place."""

    @abc.abstractmethod
    def broadcast(self, buf: np.ndarray, src: int) -> Request: ...

    @abc.abstractmethod
    def reduce(self, buf: np.ndarray, op: str, dst: int) -> Request:
        """Reduce into ``buf`` on ``dst`` (in place there; other ranks' buffers unchanged)."""

    @abc.abstractmethod
    def allgather(self, buf: np.ndarray, out: np.ndarray) -> Request:
        """``out`` (world_size * buf.size elements) receives every rank's ``buf`` in rank order."""

    @abc.abstractmethod
    def gather(self, buf: np.ndarray, out: np.ndarray | None, dst: int) -> Request: ...

    @abc.abstractmethod
    def scatter(self, buf: np.ndarray | None, out: np.ndarray, src: int) -> Request: ...

    @abc.abstractmethod
    def reduce_scatter(self, buf: np.ndarray, out: np.ndarray, op: str) -> Request:
        """Reduce ``buf`` (world_size equal blocks); rank r receives block r in ``out``."""

    def split(self, ranks: list[int]) -> Backend | None:
        """A backend over the sorted ``ranks`` (collective: every rank calls it); None on
        ranks outside them."""
        raise NotImplementedError(f"the {self.name} backend has no sub-groups")

    def process_info(self) -> list[tuple[str, int]]:
        """(host, pid) of every rank, for naming a dead rank after a timeout."""
        return []

    def shutdown(self, healthy: bool) -> None:  # noqa: B027  (optional)
        """Release the transport; ``healthy=False`` after a rank failure (must not block)."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "rank": self.rank, "world_size": self.world_size}
