"""Running the row kernels of :mod:`ember.backends.kernels_norm` (softmax, normalization,
cross entropy, last-axis reductions) on Ember's threads.

A kernel sees a C-contiguous ``(rows, n)`` block and writes its own rows of the output; the
blocks are fixed by the shape (about :data:`BLOCK` elements each, never by the thread count),
so results are bitwise the same on any number of threads.
"""

from __future__ import annotations

import numpy as np

from .._env import env_int
from ..backends import jit
from ..backends.cpu import FAST_FLOATS

__all__: list[str] = []  # helpers only

# Elements per block: a block's rows stay in L2 while a kernel makes its passes over them, and
# a 2M-element softmax still makes 16+ blocks for the pool's queue (each block costs a Python
# call of ~2 us, so much smaller blocks lose on the dispatch).
BLOCK = env_int("EMBER_NORM_BLOCK", 1 << 16, minimum=1)
# Work per element as parallel_for counts it: at 2M elements (PAR_MIN_WORK = 8M) a softmax
# runs ~1 ms on one core, where a second thread pays for its 20-100 us wake-up.
_COST = 4


def kernel(name: str, *arrays):
    """The compiled kernel ``name`` when every array is a NumPy float32/float64 array of one
    dtype, else None (the op then runs its NumPy code)."""
    d = arrays[0].dtype
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != d or d not in FAST_FLOATS:
            return None
    return jit.get(name)


def rows(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` as a C-contiguous (rows, n) matrix (a copy only when ``x`` is not contiguous)."""
    return np.ascontiguousarray(x).reshape(-1, n)


def block_rows(n: int) -> int:
    """Rows per block for rows of ``n`` elements."""
    return max(1, BLOCK // max(n, 1))


def run_rows(fn, nrows: int, n: int, cost: int = _COST) -> None:
    """``fn(r0, r1)`` over fixed row blocks, on Ember's threads when the array is large."""
    from ._parallel import parallel_for

    per = block_rows(n)
    if nrows <= per:
        fn(0, nrows)
        return
    parallel_for(nrows, per, lambda a, b, slot: fn(a, b), cost * nrows * n)
