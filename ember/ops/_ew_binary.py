"""Binary arithmetic (add, sub, mul, div) on large float arrays: row blocks on Ember's
threads, a bias or scalar broadcast into each block; everything else is the plain ufunc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import cpu
from ._ew_kernels import _COST, quiet

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["par_binary"]


# output elements: below, one NumPy call. A memory-bound ufunc gains from a second thread only
# once its operands leave the caches; the blocks are larger than EW_BLOCK (a block's cost is a
# few us of Python around a ufunc that streams memory).
_BIN_MIN = 1 << 20
_BIN_BLOCK = 1 << 18


def par_binary(ufunc: np.ufunc, quiet_fp: bool = False) -> Callable[[Any, Any], Any]:
    """``ufunc(x, y)`` with large float32/float64 outputs computed in blocks of rows on
    Ember's threads (a bias or a scalar broadcasts into each block); every other call is the
    plain ufunc. ``quiet_fp`` silences floating-point warnings (as :func:`quiet`).

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_binary import par_binary
        >>> par_binary(np.add)(np.ones((2, 3)), np.arange(3.0)).tolist()
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """
    small = quiet(ufunc, 2) if quiet_fp else ufunc
    fast = cpu.FAST_FLOATS

    def impl(x, y):
        tx, ty = type(x) is np.ndarray, type(y) is np.ndarray
        if (tx and x.size >= _BIN_MIN) or (ty and y.size >= _BIN_MIN):
            dx = x.dtype if tx else None
            dy = y.dtype if ty else None
            d = dx if dx is not None else dy
            if (
                d in fast
                and (dx is None or dx == d)  # np.dtype(None) is float64: no `in (None, d)`
                and (dy is None or dy == d)
                and (tx or type(x) in (float, int))
                and (ty or type(y) in (float, int))
            ):
                return _binary_blocks(ufunc, x, y, d, quiet_fp)
        return small(x, y)

    impl.__name__ = ufunc.__name__
    return impl


def _binary_blocks(ufunc, x, y, dtype, quiet_fp):
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    out = np.empty(shape, dtype)
    if out.ndim == 0 or out.shape[0] < 2:
        return ufunc(x, y, out=out)
    rows = out.shape[0]
    inner = max(1, out.size // rows)

    def rows_of(a):  # the operand's rows [a:b], or the whole operand where it broadcasts
        if type(a) is np.ndarray and a.ndim == out.ndim and a.shape[0] == rows:
            return lambda s, e: a[s:e]
        return lambda s, e: a

    fx, fy = rows_of(x), rows_of(y)

    def block(s, e, slot):
        if quiet_fp:
            with np.errstate(all="ignore"):
                ufunc(fx(s, e), fy(s, e), out=out[s:e])
        else:
            ufunc(fx(s, e), fy(s, e), out=out[s:e])

    from ._parallel import parallel_for

    parallel_for(rows, max(1, _BIN_BLOCK // inner), block, out.size * _COST["cheap"])
    return out
