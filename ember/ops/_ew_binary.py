"""Binary arithmetic (add, sub, mul, div) on large float arrays: row blocks on Ember's
threads, a bias or scalar broadcast into each block, and a compiled loop for ``x op bias`` (a
1-D operand along the last axis: NumPy's broadcast loops run it ~2x slower than a copy);
everything else is the plain ufunc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import cpu, jit
from ._core import _QUIET, _fp_reset, _fp_set
from ._ew_kernels import _COST, EW_BLOCK, quiet

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["par_binary"]


# output elements: below, one NumPy call. A memory-bound ufunc gains from a second thread only
# once its operands leave the caches; the blocks are larger than EW_BLOCK (a block's cost is a
# few us of Python around a ufunc that streams memory).
_BIN_MIN = 1 << 20
_BIN_BLOCK = 1 << 18
_BIAS_MIN = 1 << 14  # x op bias: the compiled loop from this many elements (a call costs ~1 us)
_BIAS_KERNEL = {"add": "bias_add", "subtract": "bias_sub", "multiply": "bias_mul"}
_BIAS_KERNEL["divide"] = "bias_div"  # np.true_divide.__name__
_COMMUTES = ("add", "multiply")
# x op y of one shape and layout: the compiled flat loop on numba's threads from this many
# elements (work = elements * cost reaches parallel_kernel's threshold here)
_FLAT_MIN = 1 << 16


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
    # the quiet call written out below: one Python call less on the small-tensor path
    inline = quiet_fp and _fp_set is not None
    fp_set, fp_reset, q = _fp_set, _fp_reset, _QUIET
    fast = cpu.FAST_FLOATS
    kname = _BIAS_KERNEL.get(ufunc.__name__)
    commutes = ufunc.__name__ in _COMMUTES

    def impl(x, y):
        tx, ty = type(x) is np.ndarray, type(y) is np.ndarray
        if kname is not None and tx != ty:  # an array and a Python number
            a, s = (x, y) if tx else (y, x)
            if (tx or commutes) and a.size >= _BIN_MIN and type(s) in (float, int):
                r = _scalar_rows(kname, a, s)
                if r is not None:
                    return r
        if tx and ty and kname is not None:
            if x.size >= _BIAS_MIN and _is_bias(x, y):
                r = _bias_rows(kname, x, y)
                if r is not None:
                    return r
            elif commutes and y.size >= _BIAS_MIN and _is_bias(y, x):
                r = _bias_rows(kname, y, x)
                if r is not None:
                    return r
            if x.size >= _FLAT_MIN and x.shape == y.shape:
                if x.strides != y.strides:  # e.g. a gradient against a transposed activation
                    x, y = _one_layout(x, y)
                r = _flat_binary(kname, x, y)
                if r is not None:
                    return r
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
        if inline:
            token = fp_set(q)
            try:
                return ufunc(x, y)
            finally:
                fp_reset(token)
        return small(x, y)

    impl.__name__ = ufunc.__name__
    impl.fp_quiet = quiet_fp  # type: ignore[attr-defined]  # (read by Primitive)
    return impl


def _is_bias(x, b):
    """True when ``b`` (C-contiguous, float32/64 as ``x``) is the trailing block of ``x``'s
    shape (a bias along the last axis, or an attention mask over the last two) and ``x`` is
    C-contiguous with more dimensions."""
    return (
        1 <= b.ndim < x.ndim
        and x.shape[x.ndim - b.ndim :] == b.shape
        and x.dtype == b.dtype
        and x.dtype in cpu.FAST_FLOATS
        and x.flags.c_contiguous
        and b.flags.c_contiguous
    )


def _scalar_rows(kname, x, s):
    """``x op s`` for a Python number ``s`` through the bias kernel (a row of ``s``): the
    same float32/64 result per element as the ufunc's, on numba's threads; None where it
    does not apply."""
    if x.dtype not in cpu.FAST_FLOATS or not x.flags.c_contiguous or x.ndim == 0:
        return None
    c = x.shape[-1]
    if c == 0:
        return None
    row = np.full(c, s, x.dtype)
    return _bias_rows(kname, x if x.ndim >= 2 else x.reshape(1, c), row, x.shape)


def _bias_rows(kname, x, b, shape=None):
    """``x op b`` by the compiled row kernel (``b``: the trailing block of ``x``'s shape),
    on numba's threads (or in blocks of rows on Ember's); None without numba. ``shape``:
    the result's shape when ``x`` was reshaped for the call."""
    from ._parallel import parallel_kernel

    k = jit.get(kname)
    if k is None:
        return None
    c = b.size
    b = b.reshape(-1)
    out = np.empty_like(x)
    x2, o2 = x.reshape(-1, c), out.reshape(-1, c)
    kp = parallel_kernel(kname, out.size * _COST["cheap"])
    if kp is not None:
        kp(x2, b, o2)
        return out if shape is None else out.reshape(shape)
    rows = x2.shape[0]
    step = max(1, EW_BLOCK // max(c, 1))
    if rows <= step:
        k(x2, b, o2)
        return out if shape is None else out.reshape(shape)

    def block(s, e, slot):
        k(x2[s:e], b, o2[s:e])

    from ._parallel import parallel_for

    parallel_for(rows, step, block, out.size * _COST["cheap"])
    return out if shape is None else out.reshape(shape)


def _one_layout(x, y):
    """``x`` and ``y`` (one shape, different strides) in one layout for the flat kernel: ``y``
    copied into ``x``'s layout when ``x`` is dense (the result is laid out as the first
    operand, as PyTorch's TensorIterator lays it out), with the tiled copies of
    :func:`ember.ops._layout.like_layout`; else as they are. NumPy's loops read a transposed
    operand across rows that share cache sets (a (1024, 1024) float32 product with a
    transposed operand: ~3.5 ms; the tiled copy and the flat product ~0.4).

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_binary import _one_layout
        >>> a, b = np.ones((2, 3)), np.ones((3, 2)).T
        >>> _one_layout(b, a)[1].flags.f_contiguous
        True
    """
    from ._layout import like_layout

    if x.dtype != y.dtype or x.dtype not in cpu.FAST_FLOATS or cpu.dense_flat(x) is None:
        return x, y
    return x, like_layout(y, x)


def binary_into(ufunc, a, b):
    """``a = ufunc(a, b)`` in place for a float32/float64 array ``a`` and ``b`` an array of
    ``a``'s dtype that broadcasts to ``a``'s shape, or a Python number (``x.add_(y)``, a
    gradient accumulated into ``.grad``): the kernels ``par_binary`` picks (a number or a bias
    row by the compiled row kernels, one layout by the flat kernels, on numba's threads)
    writing into ``a``, else NumPy's ufunc with ``out=a``. Each element is ``ufunc(a, b)``:
    the bits of the out-of-place result.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_binary import binary_into
        >>> a = np.ones((2, 3), np.float32)
        >>> binary_into(np.add, a, np.arange(3, dtype=np.float32)); a.tolist()
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """
    kname = _BIAS_KERNEL.get(ufunc.__name__) if a.size >= _BIAS_MIN else None  # (small: ufunc)
    if kname is not None and a.dtype in cpu.FAST_FLOATS and a.flags.c_contiguous and a.ndim:
        from ._parallel import parallel_kernel

        work = a.size * _COST["cheap"]
        if type(b) in (float, int) and a.size >= _BIN_MIN and a.shape[-1]:
            kp = parallel_kernel(kname, work)
            if kp is not None:
                x2 = a.reshape(-1, a.shape[-1])
                kp(x2, np.full(a.shape[-1], b, a.dtype), x2)  # (elementwise: out may be x)
                return
        elif type(b) is np.ndarray and b.dtype == a.dtype:
            if a.size >= _BIAS_MIN and _is_bias(a, b):
                kp = parallel_kernel(kname, work)
                if kp is not None:
                    x2 = a.reshape(-1, b.size)
                    kp(x2, b.reshape(-1), x2)
                    return
            elif a.size >= _FLAT_MIN and b.shape == a.shape and b.flags.c_contiguous:
                kp = parallel_kernel("flat_" + kname[5:], work)
                if kp is not None:
                    af = a.reshape(-1)
                    kp(af, b.reshape(-1), af)
                    return
    if _fp_set is None:
        with np.errstate(all="ignore"):
            ufunc(a, b, out=a)
        return
    token = _fp_set(_QUIET)  # (silent inf/nan as PyTorch: cheaper than np.errstate)
    try:
        ufunc(a, b, out=a)
    finally:
        _fp_reset(token)


def add_into(a, b):
    """``a += b`` in place for NumPy arrays of one shape and dtype (a gradient accumulated
    into ``.grad``): one pass of the compiled flat kernel on numba's threads where both are
    large and laid out alike, else :func:`binary_into`. Each element is ``a + b``, the bits
    of the out-of-place sum.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_binary import add_into
        >>> a = np.ones(3, np.float32)
        >>> add_into(a, np.arange(3, dtype=np.float32)); a.tolist()
        [1.0, 2.0, 3.0]
    """
    if a.size >= _FLAT_MIN and a.strides == b.strides and a.dtype in cpu.FAST_FLOATS:
        af, bf = cpu.dense_flat(a), cpu.dense_flat(b)
        if af is not None and bf is not None:
            from ._parallel import parallel_kernel

            k = parallel_kernel("flat_add", a.size * _COST["cheap"])
            if k is not None:
                k(af, bf, af)  # (elementwise: the output may be an input)
                return
    binary_into(np.add, a, b)


def _flat_binary(kname, x, y):
    """``x op y`` for float32/float64 arrays of one shape, dtype and dense layout by the
    compiled flat kernel on numba's threads (the result in that layout, as the ufunc gives);
    None where it does not apply."""
    if x.dtype != y.dtype or x.dtype not in cpu.FAST_FLOATS or x.strides != y.strides:
        return None
    xf, yf = cpu.dense_flat(x), cpu.dense_flat(y)
    if xf is None or yf is None:
        return None
    from ._parallel import parallel_kernel

    k = parallel_kernel("flat_" + kname[5:], x.size * _COST["cheap"])
    if k is None:
        return None
    out = np.empty_like(x)
    k(xf, yf, cpu.dense_flat(out))
    return out


def _binary_blocks(ufunc, x, y, dtype, quiet_fp):
    from ._parallel import PAR_MIN_WORK, get_num_threads, parallel_for

    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    out = np.empty(shape, dtype)
    # one thread: one call (add/sub/mul/div are exact per element, so the blocking never
    # changes a result; on one thread it only costs Python per block)
    one = get_num_threads() == 1 or out.size * _COST["cheap"] < PAR_MIN_WORK
    if out.ndim == 0 or out.shape[0] < 2 or one:
        if quiet_fp:
            with np.errstate(all="ignore"):
                return ufunc(x, y, out=out)
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

    parallel_for(rows, max(1, _BIN_BLOCK // inner), block, out.size * _COST["cheap"])
    return out
