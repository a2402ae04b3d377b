"""The MPI backend (``mpi4py``): non-blocking MPI-3 collectives on NumPy buffers.

Contiguous arrays are handed to MPI as they are (no copies); mpi4py is imported on first use
so that ``import ember`` never needs it.
"""

from __future__ import annotations

import os
import socket

import numpy as np

from ._backend import Backend, Request
from .errors import DistBackendError

__all__ = ["MPIBackend", "load_mpi"]

_MPI = None


def load_mpi():
    """Import ``mpi4py.MPI`` once, with a clear error when the extra is missing."""
    global _MPI
    if _MPI is None:
        try:
            import mpi4py
        except ImportError as e:  # pragma: no cover - depends on the install
            raise DistBackendError(
                "ember.distributed needs MPI: install the extra with "
                "`pip install ember[dist]` (mpi4py and the mpich wheel)"
            ) from e
        # NOTE: we finalize ourselves; after a rank died MPI_Finalize can block forever.
        mpi4py.rc.finalize = False
        from mpi4py import MPI

        _MPI = MPI
    return _MPI


# NumPy dtype -> MPI datatype name and the reductions MPI defines for it.
_ARITH = frozenset(("sum", "product", "max", "min"))
_INT = _ARITH | {"band", "bor", "bxor"}
_TYPES = {
    np.dtype(np.float32): ("FLOAT", _ARITH),
    np.dtype(np.float64): ("DOUBLE", _ARITH),
    np.dtype(np.int8): ("INT8_T", _INT),
    np.dtype(np.int16): ("INT16_T", _INT),
    np.dtype(np.int32): ("INT32_T", _INT),
    np.dtype(np.int64): ("INT64_T", _INT),
    np.dtype(np.uint8): ("UINT8_T", _INT),
    np.dtype(np.uint16): ("UINT16_T", _INT),
    np.dtype(np.uint32): ("UINT32_T", _INT),
    np.dtype(np.uint64): ("UINT64_T", _INT),
    np.dtype(np.bool_): ("C_BOOL", frozenset(("band", "bor", "bxor", "max", "min"))),
    np.dtype(np.complex64): ("C_FLOAT_COMPLEX", frozenset(("sum", "product"))),
    np.dtype(np.complex128): ("C_DOUBLE_COMPLEX", frozenset(("sum", "product"))),
}
_OPS = {
    "sum": "SUM",
    "product": "PROD",
    "max": "MAX",
    "min": "MIN",
    "band": "BAND",
    "bor": "BOR",
    "bxor": "BXOR",
}
# MPI's logical ops are the right ones for C_BOOL (bitwise ops are undefined on it).
_BOOL_OPS = {"band": "LAND", "bor": "LOR", "bxor": "LXOR", "max": "LOR", "min": "LAND"}


class _MPIRequest(Request):
    __slots__ = ("keep", "req")

    def __init__(self, req, *keep):
        self.req = req
        self.keep = keep  # the buffers must outlive the request

    def test(self) -> bool:
        return bool(self.req.Test())

    def cancel(self) -> None:
        # Collectives cannot be cancelled in MPI; dropping the reference is all we can do.
        self.req = None


class MPIBackend(Backend):
    """Collectives over an MPI communicator (``MPI.COMM_WORLD`` by default)."""

    name = "mpi"

    def __init__(self, comm=None):
        MPI = load_mpi()
        if not MPI.Is_initialized():
            MPI.Init_thread(MPI.THREAD_MULTIPLE)
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD.Dup()
        self._rank = self.comm.Get_rank()
        self._size = self.comm.Get_size()

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._size

    # ----- helpers ------------------------------------------------------------------------
    def supports(self, dtype: np.dtype, op: str | None) -> bool:
        entry = _TYPES.get(np.dtype(dtype))
        if op is None:
            return True
        return entry is not None and op in entry[1]

    def _spec(self, arr: np.ndarray):
        """[buffer, datatype]; for gather-like calls MPI splits it in world_size blocks."""
        entry = _TYPES.get(arr.dtype)
        if entry is None:  # move-only dtypes (float16, bfloat16, ...) travel as bytes
            return [arr.reshape(-1).view(np.uint8), self.MPI.BYTE]
        return [arr, getattr(self.MPI, entry[0])]

    def _op(self, dtype, op):
        if dtype == np.bool_:
            return getattr(self.MPI, _BOOL_OPS[op])
        return getattr(self.MPI, _OPS[op])

    # ----- collectives --------------------------------------------------------------------
    def barrier(self) -> Request:
        return _MPIRequest(self.comm.Ibarrier())

    def allreduce(self, buf, op):
        return _MPIRequest(
            self.comm.Iallreduce(self.MPI.IN_PLACE, self._spec(buf), self._op(buf.dtype, op)), buf
        )

    def broadcast(self, buf, src):
        return _MPIRequest(self.comm.Ibcast(self._spec(buf), root=src), buf)

    def reduce(self, buf, op, dst):
        mop = self._op(buf.dtype, op)
        if self._rank == dst:
            req = self.comm.Ireduce(self.MPI.IN_PLACE, self._spec(buf), mop, root=dst)
        else:
            req = self.comm.Ireduce(self._spec(buf), None, mop, root=dst)
        return _MPIRequest(req, buf)

    def allgather(self, buf, out):
        return _MPIRequest(self.comm.Iallgather(self._spec(buf), self._spec(out)), buf, out)

    def gather(self, buf, out, dst):
        recv = self._spec(out) if self._rank == dst else None
        return _MPIRequest(self.comm.Igather(self._spec(buf), recv, root=dst), buf, out)

    def scatter(self, buf, out, src):
        send = self._spec(buf) if self._rank == src else None
        return _MPIRequest(self.comm.Iscatter(send, self._spec(out), root=src), buf, out)

    def reduce_scatter(self, buf, out, op):
        return _MPIRequest(
            self.comm.Ireduce_scatter_block(
                self._spec(buf), self._spec(out), self._op(buf.dtype, op)
            ),
            buf,
            out,
        )

    def split(self, ranks):
        MPI = self.MPI
        member = self._rank in ranks
        # NOTE: Split is blocking; the caller has just completed a watched collective with
        # every rank, so a dead rank was caught there rather than hanging here.
        sub = self.comm.Split(0 if member else MPI.UNDEFINED, self._rank)
        if not member:
            return None
        return MPIBackend(sub)

    # ----- lifecycle ----------------------------------------------------------------------
    def process_info(self) -> list[tuple[str, int]]:
        return self.comm.allgather((socket.gethostname(), os.getpid()))

    def shutdown(self, healthy: bool) -> None:
        if not healthy:
            return  # a dead peer can make Comm_free/Finalize block: leave it to exit
        self.comm.Free()
