"""Dropout's kernel: the mask from a counter-based hash of (seed, element index), applied in
one pass (compiled ``dropout_fwd`` from ``backends/kernels_ew.py`` when numba is available, the
same hash in NumPy otherwise), in fixed blocks on Ember's threads.
"""

from __future__ import annotations

import math

import numpy as np

from ..backends import cpu, jit
from ._ew_kernels import _COST, _run_blocks

__all__ = ["dropout_apply"]


# Each element's keep/drop draw is a function of the seed and its C-order index alone, so the
# mask is the same for any block split and thread count, the backward recomputes it from the
# seed (nothing saved), and the compiled and NumPy paths agree bitwise.
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix64_int(z):
    z &= _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return z ^ (z >> 31)


def _mix64_np(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _dropout_consts(seed, p):
    # the key is SplitMix64's first output for the seed: seeds 0, 1, 2, ... start far apart
    key = _mix64_int(int(seed) + _GOLDEN)
    thresh = min(1 << 24, math.ceil(p * (1 << 24)))  # keep when the 24-bit draw >= p * 2^24
    return key, thresh


def _np_dropout_block(xf, of, key, start, thresh, scale):
    idx = np.arange(start, start + xf.size, dtype=np.uint64)
    idx *= np.uint64(_GOLDEN)
    idx += np.uint64(key)
    u = _mix64_np(idx) >> np.uint64(40)
    m = np.where(u >= np.uint64(thresh), scale, xf.dtype.type(0))
    np.multiply(xf, m, out=of)


def dropout_apply(
    x: np.ndarray, seed: int, p: float, mask_shape: tuple | None = None
) -> np.ndarray:
    """``x`` with elements dropped with probability ``p`` and the rest scaled by
    ``1 / (1 - p)``; the mask (of ``mask_shape``, broadcast against ``x``; default
    ``x.shape``) is a function of ``seed`` alone, so the same call on the gradient applies
    the same mask.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_dropout import dropout_apply
        >>> y = dropout_apply(np.ones(1000, np.float32), seed=3, p=0.25)
        >>> sorted(set(y.tolist())), bool(0.6 < (y > 0).mean() < 0.9)
        ([0.0, 1.3333333730697632], True)
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    shape = tuple(x.shape) if mask_shape is None else tuple(mask_shape)
    low = x.dtype not in cpu.FAST_FLOATS
    dtype = np.dtype(np.float32) if low else x.dtype
    key, thresh = _dropout_consts(seed, p)
    scale = dtype.type(1.0 / (1.0 - p)) if p < 1 else dtype.type(0)
    if shape != tuple(x.shape) or low:
        m = _dropout_fill(np.ones(shape, dtype), key, thresh, scale)
        return (x.astype(dtype, copy=False) * m).astype(x.dtype, copy=False)
    return _dropout_fill(np.ascontiguousarray(x), key, thresh, scale)


def _dropout_fill(x, key, thresh, scale):
    out = np.empty_like(x)
    xf, of = x.reshape(-1), out.reshape(-1)
    k = jit.get("dropout_fwd")
    if k is not None:
        ukey, uth = np.uint64(key), np.uint64(thresh)

        def block(a, b):
            k(xf[a:b], ukey, a, uth, scale, of[a:b])
    else:

        def block(a, b):
            with np.errstate(all="ignore"):
                _np_dropout_block(xf[a:b], of[a:b], key, a, thresh, scale)

    _run_blocks(xf.size, _COST["mid"], block)
    return out
