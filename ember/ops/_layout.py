"""NCHW -> channels-last (NHWC) copies of 4-D float arrays.

NumPy copies a transposed array in its strided order; when the channel planes lie a multiple
of 4 KiB apart (32x32 float32 images) its reads share cache sets and the copy crawls (a
(16, 64, 32, 32) float32 NCHW -> NHWC copy: 2.9 ms, 2.3 ms in blocks of 8 channels). The
compiled ``nchw_to_nhwc`` kernel reads each channel's image row with unit stride and writes it
into the channels-last row, split over (image, row) pairs on numba's threads; it is used for
every NCHW input whose rows are contiguous (2 Xeon threads: (8, 64, 32, 32) 0.15 ms against
0.21 for NumPy's blocks of 8 channels, (1, 64, 56, 56) 0.05 against NumPy's 0.08,
(4, 3, 224, 224) 0.13 against 0.69). :func:`nchw_to_nhwc_padded` also writes a convolution's
zero padding in the same pass.
"""

from __future__ import annotations

import numpy as np

from ..backends.cpu import FAST_FLOATS

__all__ = ["aliasing_planes", "c_order", "like_layout", "nchw_to_nhwc", "nchw_to_nhwc_padded"]

_MIN = 1 << 14  # elements: below, NumPy's copy costs less than a kernel call


def aliasing_planes(x: np.ndarray) -> bool:
    """True for NCHW-strided inputs whose channel planes are a multiple of 4 KiB apart (a
    transposed copy then reads many planes at addresses that share cache sets).

    Example:
        >>> import numpy as np
        >>> from ember.ops._layout import aliasing_planes
        >>> aliasing_planes(np.zeros((2, 16, 32, 32), np.float32))
        True
    """
    return x.shape[1] > 8 and x.strides[1] % 4096 == 0 and x.strides[3] == x.itemsize


def _unit_rows(x: np.ndarray) -> bool:
    """Whether ``x``'s image rows are contiguous (the compiled copies read them as runs)."""
    return x.strides[3] == x.itemsize


def nchw_to_nhwc_padded(x: np.ndarray, padding) -> np.ndarray | None:
    """``x`` (N, C, H, W; float32 with contiguous rows) as a new C-contiguous zero-padded NHWC
    array, transposed and padded in one compiled pass; ``padding`` is (top, bottom, left,
    right), each >= 0. None where the compiled kernel does not apply (other dtypes or
    strides, no numba): the caller then copies and pads in two steps.

    Example:
        >>> import numpy as np
        >>> from ember.ops._layout import nchw_to_nhwc_padded
        >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
        >>> xp = nchw_to_nhwc_padded(x, (1, 0, 0, 1))
        >>> xp is None or xp[0, 1].tolist() == [[0.0, 4.0], [1.0, 5.0], [0.0, 0.0]]
        True
    """
    t, b, left, r = padding
    if x.dtype != np.float32 or not _unit_rows(x) or x.ndim != 4:
        return None
    n, c, h, w = x.shape
    xp = np.empty((n, h + t + b, w + left + r, c), x.dtype)
    from ..backends import jit
    from ._parallel import parallel_kernel

    # (small inputs too: one compiled pass beats NumPy's copy and pad)
    k = parallel_kernel("nchw_to_nhwc_padded", 4 * x.size) or jit.get("nchw_to_nhwc_padded")
    if k is None:
        return None
    k(x, xp, t, left)
    return xp


def _kernel(name, x, out):
    if x.size < _MIN or x.dtype not in FAST_FLOATS or out.dtype != x.dtype:
        return None
    from ._parallel import parallel_kernel

    k = parallel_kernel(name, 4 * x.size)
    if k is None:
        from ..backends import jit

        k = jit.get(name)
    return k


def nchw_to_nhwc(
    x: np.ndarray, out: np.ndarray | None = None, dtype=None, compiled: bool = True
) -> np.ndarray:
    """``x`` (N, C, H, W; any strides) copied into ``out`` (N, H, W, C, any strides; a new
    C-contiguous array of ``dtype``, default x's, when None). ``compiled=False``: NumPy's
    copy even for aliasing planes (in blocks of 8 channels), for callers whose next work
    runs on Ember's own pool: numba's OpenMP threads still spin there for a while after the
    copy (a convolution measured 0.3-0.5 ms slower with the compiled copy before it).

    Example:
        >>> import numpy as np
        >>> from ember.ops._layout import nchw_to_nhwc
        >>> nchw_to_nhwc(np.arange(8.0).reshape(1, 2, 2, 2))[0, 0].tolist()
        [[0.0, 4.0], [1.0, 5.0]]
    """
    if out is None:
        n, c, h, w = x.shape
        out = np.empty((n, h, w, c), dtype or x.dtype)
    k = _kernel("nchw_to_nhwc", x, out) if compiled and _unit_rows(x) else None
    if k is not None:
        k(x, out)
    elif aliasing_planes(x):  # 8 channels at a time: fewer planes read at once
        for c0 in range(0, x.shape[1], 8):
            out[..., c0 : c0 + 8] = x[:, c0 : c0 + 8].transpose(0, 2, 3, 1)
    else:
        out[...] = x.transpose(0, 2, 3, 1)
    return out


def like_layout(a: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``a``'s values laid out in memory as ``like`` (same shape): ``a`` itself when the
    strides already match, else a copy; a C-contiguous NCHW ``a`` for a channels-last
    ``like`` through the tiled :func:`nchw_to_nhwc` copy. Elementwise kernels on two arrays
    of one layout run flat (an NCHW gradient against a channels-last activation otherwise
    takes NumPy's strided loops: a (32, 64, 8, 8) ReLU gradient 0.63 ms).

    Example:
        >>> import numpy as np
        >>> from ember.ops._layout import like_layout
        >>> cl = np.zeros((1, 2, 3, 3), np.float32).transpose(0, 2, 3, 1).copy()
        >>> cl = cl.transpose(0, 3, 1, 2)  # channels-last memory, NCHW shape
        >>> a = np.arange(18.0, dtype=np.float32).reshape(1, 2, 3, 3)
        >>> b = like_layout(a, cl)
        >>> b.strides == cl.strides and bool((b == a).all())
        True
    """
    if a.strides == like.strides:
        return a
    if a.ndim == 4 and a.flags.c_contiguous and like.transpose(0, 2, 3, 1).flags.c_contiguous:
        return nchw_to_nhwc(a).transpose(0, 3, 1, 2)
    if a.ndim == 2 and a.dtype == like.dtype:  # a matrix and its transpose's layout
        if like.flags.c_contiguous and a.flags.f_contiguous:
            return c_order(a)
        if like.flags.f_contiguous and a.flags.c_contiguous:
            return c_order(a.T).T
    out = np.empty_like(like, dtype=a.dtype)
    out[...] = a
    return out


_TRANSPOSE_MIN = 1 << 16  # elements: below, NumPy's transposed copy costs about the same


def c_order(x: np.ndarray, dtype=None) -> np.ndarray:
    """``np.ascontiguousarray(x, dtype)``, with a transposed float matrix whose source rows lie
    a multiple of 4 KiB apart (``w.T`` of a C-ordered ``w`` with 1024 float32 columns)
    copied by the compiled blocked kernel ``transpose_rows``: NumPy's copy reads it a column
    at a time at addresses that share cache sets (3-6x slower). Returns ``x`` itself when it
    is C-contiguous of ``dtype``.

    Example:
        >>> import numpy as np
        >>> from ember.ops._layout import c_order
        >>> w = np.arange(6.0, dtype=np.float32).reshape(2, 3)
        >>> t = c_order(w.T)
        >>> t.flags.c_contiguous, t.tolist()
        (True, [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]])
    """
    if (
        x.ndim != 2
        or x.size < _TRANSPOSE_MIN
        or x.dtype not in FAST_FLOATS
        or (dtype is not None and np.dtype(dtype) != x.dtype)
        or x.strides[0] != x.itemsize
        or x.strides[1] % 4096  # (other strides: NumPy's copy runs as fast, measured)
        or x.flags.c_contiguous
    ):
        return np.ascontiguousarray(x, dtype)
    src = x.T  # (C, R) with unit-stride rows
    from ..backends import jit
    from ._parallel import parallel_kernel

    k = parallel_kernel("transpose_rows", 4 * x.size) or jit.get("transpose_rows")
    if k is None:
        return np.ascontiguousarray(x)
    out = np.empty(x.shape, x.dtype)
    k(src, out)
    return out
