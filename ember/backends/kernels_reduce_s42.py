"""Loop kernels for plain reductions (compiled by numba through :mod:`ember.backends.jit`):
the full sum of a flat array in fixed blocks, the maximum/minimum of rows and their first
index, and the gradient of a row maximum/minimum.

Like the row kernels of :mod:`ember.backends.kernels_norm`, each ``prange`` iteration writes
only its own row or block of the output, and blocks are fixed by the shape: results are
bitwise the same for any number of threads.

- Sums add chunks of 512 elements in the input's dtype (vector lanes) and the chunk sums in
  float64 (:func:`ember.backends.kernels_norm.rowsum`): a float32 sum of 4M uniform values
  stays near 1e-8 relative (PyTorch's cascade sum: ~1e-7).
- A maximum written as one running ``if`` does not vectorize (LLVM keeps NaN ordering), so
  the row extrema compare the floats' bits as integers (magnitude bits flipped for
  negatives), both the largest and the smallest key in one pass: a NaN maps above +inf
  (positive sign bit) or below -inf (negative), so a row holding one is seen either way and
  its result is NaN, as PyTorch's.
"""

import numpy as np

from .kernels_norm import FASTMATH, _fast, rowsum

try:  # row loops are prange: jit.get_parallel splits them over numba's threads
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]

__all__ = ["amax_grad_rows", "flat_block_sums", "row_arg_extrema", "row_extrema"]

# Elements per block of flat_block_sums (fixed: the blocks and the order of their sums never
# depend on the thread count)
SUM_BLOCK = 1 << 16


@_fast
def flat_block_sums(x, out, blk):
    """out[b] = sum(x[b * blk : (b + 1) * blk]) as float64 for a 1-D ``x`` (chunks of 512
    summed in x's dtype, the chunk sums in float64); ``out`` has ``ceil(len(x) / blk)``
    elements."""
    n = x.shape[0]
    for b in prange(out.shape[0]):
        out[b] = rowsum(x[b * blk : min(n, (b + 1) * blk)])


def rowext(a):
    """(min, max, nan) of a non-empty 1-D float array: ``nan`` is a NaN of the row, or 0.0
    when there is none. Compiled, it reduces the floats' bits as integers (``_rowext32``,
    ``_rowext64``).

    Example:
        >>> import numpy as np
        >>> from ember.backends.kernels_reduce_s42 import rowext
        >>> [float(v) for v in rowext(np.array([1.0, 3.0, -2.0]))]
        [-2.0, 3.0, 0.0]
    """
    lo = hi = a[0]
    bad = a.dtype.type(0)
    for v in a:
        if v != v:  # noqa: PLR0124 - the NaN test (CONTRIBUTING: v != v in kernels)
            bad = v
        lo = v if v < lo else lo
        hi = v if v > hi else hi
    return lo, hi, bad


def _rowext32(a):
    bits = a.view(np.int32)
    mag = np.int32(0x7FFFFFFF)
    hi = np.int32(-(2**31))
    lo = np.int32(2**31 - 1)
    for j in range(bits.shape[0]):
        i = bits[j]
        k = np.int32(i ^ ((i >> np.int32(31)) & mag))
        hi = k if k > hi else hi
        lo = k if k < lo else lo
    # keys of +inf and -inf: beyond them lie the NaNs
    if hi > np.int32(0x7F800000):
        bad = np.int32(hi ^ ((hi >> np.int32(31)) & mag)).view(np.float32)
    elif lo < np.int32(-2139095041):
        bad = np.int32(lo ^ ((lo >> np.int32(31)) & mag)).view(np.float32)
    else:
        bad = np.float32(0)
    vhi = np.int32(hi ^ ((hi >> np.int32(31)) & mag)).view(np.float32)
    vlo = np.int32(lo ^ ((lo >> np.int32(31)) & mag)).view(np.float32)
    return vlo, vhi, bad


def _rowext64(a):
    bits = a.view(np.int64)
    mag = np.int64(0x7FFFFFFFFFFFFFFF)
    hi = np.int64(-(2**63))
    lo = np.int64(2**63 - 1)
    for j in range(bits.shape[0]):
        i = bits[j]
        k = np.int64(i ^ ((i >> np.int64(63)) & mag))
        hi = k if k > hi else hi
        lo = k if k < lo else lo
    if hi > np.int64(0x7FF0000000000000):
        bad = np.int64(hi ^ ((hi >> np.int64(63)) & mag)).view(np.float64)
    elif lo < np.int64(-9218868437227405313):
        bad = np.int64(lo ^ ((lo >> np.int64(63)) & mag)).view(np.float64)
    else:
        bad = np.float64(0)
    vhi = np.int64(hi ^ ((hi >> np.int64(63)) & mag)).view(np.float64)
    vlo = np.int64(lo ^ ((lo >> np.int64(63)) & mag)).view(np.float64)
    return vlo, vhi, bad


try:  # rowext picks its code by dtype when compiled
    from numba import types as _nbtypes
    from numba.extending import overload as _overload

    @_overload(rowext, jit_options={"fastmath": FASTMATH})
    def _rowext_overload(a):
        if a.dtype == _nbtypes.float32:
            return _rowext32
        if a.dtype == _nbtypes.float64:
            return _rowext64
        return None

except ImportError:  # pragma: no cover - the kernels then run as NumPy code in the ops
    pass


@_fast
def row_extrema(x, out, want_min):
    """out[i] = max(x[i]) (min when ``want_min``) over the last axis of a (R, n) array,
    n >= 1; NaN where the row holds one."""
    for i in prange(x.shape[0]):
        lo, hi, bad = rowext(x[i])
        if bad != bad:  # noqa: PLR0124 - the NaN test
            out[i] = bad
        elif want_min:
            out[i] = lo
        else:
            out[i] = hi


_ARG_CHUNK = 256  # elements per chunk of row_arg_extrema's first pass


@_fast
def row_arg_extrema(x, idx, want_min):
    """idx[i] = the first index of max(x[i]) (min when ``want_min``) over the last axis of a
    (R, n) array, n >= 1; the first NaN's index where the row holds one (as PyTorch). One
    vectorized pass finds the extremum of each chunk and the first chunk holding the row's
    (or a NaN); only that chunk is scanned element by element."""
    n = x.shape[1]
    for i in prange(x.shape[0]):
        xi = x[i]
        best = 0
        bv = xi[0]
        found_nan = False
        for c0 in range(0, n, _ARG_CHUNK):
            lo, hi, bad = rowext(xi[c0 : min(n, c0 + _ARG_CHUNK)])
            if bad != bad:  # noqa: PLR0124 - the NaN test
                best = c0
                found_nan = True
                break
            v = lo if want_min else hi
            if c0 == 0 or (v < bv if want_min else v > bv):
                bv = v
                best = c0
        seg = xi[best : min(n, best + _ARG_CHUNK)]
        k = 0
        for j in range(seg.shape[0]):
            if (seg[j] != seg[j]) if found_nan else (seg[j] == bv):
                k = j
                break
        idx[i] = best + k


@_fast
def amax_grad_rows(g, x, o, out):
    """out[i, j] = (x[i, j] == o[i]) * (g[i] / count_i), count_i the elements of row i equal
    to o[i]: the gradient of a last-axis amax/amin (ties share it evenly, a NaN row gets NaN
    as the ``g * mask / count`` of the ops)."""
    n = x.shape[1]
    for i in prange(x.shape[0]):
        xi = x[i]
        oi = out[i]
        m = o[i]
        c = 0
        for j in range(n):
            c += 1 if xi[j] == m else 0
        v = g[i] / x.dtype.type(c)
        one = x.dtype.type(1)
        zero = x.dtype.type(0)
        for j in range(n):
            oi[j] = (one if xi[j] == m else zero) * v
