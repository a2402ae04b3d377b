"""Shared pieces of the convolution kernels (:mod:`ember.ops.conv`,
:mod:`ember.ops._conv_depthwise`): output sizes, the per-thread workspace of im2col blocks
and padded inputs, NCHW -> NHWC layout and padding, window views and the im2col gather.

Example:
    >>> from ember.ops._conv_util import conv_out_size
    >>> conv_out_size(32, 3, 1, 1, 1, 1)  # 3x3, stride 1, padding 1: 'same'
    32
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._layout import aliasing_planes, nchw_to_nhwc

__all__ = ["clear_workspace", "conv_out_size"]


def conv_out_size(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _compute_dtype(a):
    # bf16/f16: compute in float32 and round once (NumPy GEMM on halves is slow).
    if a.dtype.kind == "V" or a.dtype == np.float16:
        return np.dtype(np.float32)
    return a.dtype


# -- workspace ------------------------------------------------------------------------------------
# im2col blocks and padded inputs never escape a kernel, so their buffers are reused across
# calls (writing into an existing buffer measured 16.2 -> 9.5 ms for a 32x64x56x56 3x3 im2col:
# a fresh allocation page-faults). Per thread (worker threads gather their own blocks), at most
# _WS_ENTRIES buffers / _WS_BYTES bytes are kept; clear_workspace() releases them.
_WS_ENTRIES = 32


_WS_BYTES = 512 << 20


_ws = threading.local()


def _workspace(shape, dtype, tag=None):
    d = getattr(_ws, "bufs", None)
    if d is None:
        d = _ws.bufs = {}
    key = (tuple(shape), np.dtype(dtype).str, tag)
    buf = d.pop(key, None)
    if buf is not None:  # a hit: the set of buffers (and their total size) is unchanged
        d[key] = buf  # most recently used last
        return buf
    buf = np.empty(shape, dtype)
    if buf.nbytes > _WS_BYTES:
        return buf
    d[key] = buf
    total = sum(b.nbytes for b in d.values())
    while len(d) > _WS_ENTRIES or total > _WS_BYTES:
        total -= d.pop(next(iter(d))).nbytes
    return buf


def clear_workspace():
    """Release the im2col buffers kept by the conv kernels (of the calling thread)."""
    _ws.bufs = {}


# -- layout helpers -------------------------------------------------------------------------------
_SHARED = threading.local()
_FWD = threading.local()  # a forward's padded NHWC copy of its NCHW input, for its VJP


def remember_padded(x, padding, xp) -> None:
    """Keep ``xp``, the padded NHWC copy of NCHW ``x`` that a recorded forward made, for the
    weight gradient of the same convolution (one entry per thread: the next forward or the
    VJP that reads it releases it). Converting x again there costs as much as in the forward
    (a DRAM-bound pass: 1.0-1.4 ms of a (8, 64, 32, 32) step on one core)."""
    _FWD.entry = (x, tuple(padding), xp)


def forward_padded(x, padding=None):
    """``(padding, xp)``: the copy :func:`remember_padded` kept for ``x``, inside that
    convolution's VJP (:func:`reusing_forward_layout`) only, where autograd has checked that
    ``x`` was not written since the forward; None elsewhere."""
    e = getattr(_FWD, "entry", None)
    if e is None or e[0] is not x or getattr(_FWD, "allowed", None) is not x:
        return None
    if padding is not None and e[1] != tuple(padding):
        return None
    return e[1], e[2]


@contextlib.contextmanager
def reusing_forward_layout(x):
    """Within the block (a convolution's VJP), :func:`forward_padded` may hand out the
    forward's copy of ``x``; on leaving, that copy is released."""
    prev = getattr(_FWD, "allowed", None)
    _FWD.allowed = x
    try:
        yield
    finally:
        _FWD.allowed = prev
        e = getattr(_FWD, "entry", None)
        if e is not None and e[0] is x:
            _FWD.entry = None


@contextlib.contextmanager
def shared_layouts():
    """Within the block, :func:`_nhwc` converts each source array once: a convolution's
    backward hands the same NCHW output gradient to its input-gradient and weight-gradient
    primitives, which would each copy it to NHWC (0.4-0.7 ms for (8, 128, 16, 16)). Only
    for the span of one VJP, in which nothing can write the arrays.

    Example:
        >>> import numpy as np
        >>> from ember.ops._conv_util import _nhwc, shared_layouts
        >>> g = np.zeros((2, 16, 4, 4), np.float32)
        >>> with shared_layouts():
        ...     _nhwc(g, g.dtype) is _nhwc(g, g.dtype)
        True
    """
    prev = getattr(_SHARED, "cache", None)
    _SHARED.cache = {} if prev is None else prev
    try:
        yield
    finally:
        _SHARED.cache = prev


def _nhwc(x, dtype, compiled=False):
    """An NCHW-shaped array as a C-contiguous NHWC array of ``dtype`` (free when the array is
    already laid out channels-last, as conv outputs and ufuncs of them are). ``compiled``:
    the compiled copy on numba's threads (for callers outside the pool's blocks; see
    :func:`ember.ops._layout.nchw_to_nhwc`). Inside :func:`shared_layouts` a source array
    is converted once (the copy is only read)."""
    xt = x.transpose(0, 2, 3, 1)
    if xt.dtype == dtype and xt.flags.c_contiguous:
        return xt
    cache = getattr(_SHARED, "cache", None)
    key = (id(x), np.dtype(dtype))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None and hit[0] is x:  # (the source is held: its id is not reused)
            return hit[1]
    if compiled or aliasing_planes(x):
        out = nchw_to_nhwc(x, dtype=dtype, compiled=compiled)
    else:
        out = np.ascontiguousarray(xt, dtype=dtype)
    if cache is not None:
        cache[key] = (x, out)
    return out


def _copy_nhwc(dst, x):
    """dst (N, H, W, C) = x (N, C, H, W) (see :func:`ember.ops._layout.nchw_to_nhwc`)."""
    nchw_to_nhwc(x, dst, compiled=False)


def _pad_nhwc(x, pad, dtype, tag):
    """``x`` (NCHW shape, any strides) as a zero-padded NHWC array (a view when unpadded).
    Negative padding crops (transposed conv with output_padding)."""
    t, b, l, r = pad
    if min(pad) < 0:
        h, w = x.shape[2:]
        x = x[:, :, max(-t, 0) : h - max(-b, 0), max(-l, 0) : w - max(-r, 0)]
        t, b, l, r = (max(p, 0) for p in pad)
    if not (t or b or l or r):
        return _nhwc(x, dtype)
    n, c, h, w = x.shape
    out = _workspace((n, h + t + b, w + l + r, c), dtype, tag)  # transient: reuse the buffer
    if t:
        out[:, :t] = 0
    if b:
        out[:, h + t :] = 0
    if l:
        out[:, t : t + h, :l] = 0
    if r:
        out[:, t : t + h, w + l :] = 0
    _copy_nhwc(out[:, t : t + h, l : l + w], x)
    return out


def _window(xs, i, j, ho, wo, stride, dilation):
    """The (N, Ho, Wo, C) view of padded NHWC ``xs`` that kernel offset (i, j) reads."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return xs[
        :,
        h0 : h0 + (ho - 1) * stride[0] + 1 : stride[0],
        w0 : w0 + (wo - 1) * stride[1] + 1 : stride[1],
    ]


def _windows(xp, c0, cg, kh, kw, stride, dilation, ho, wo):
    """Zero-copy (N, Ho, Wo, kh, kw, cg) window view of padded NHWC ``xp`` (channels
    ``c0:c0+cg``): element [n, y, x, i, j, c] is what kernel offset (i, j) of output pixel
    (y, x) reads. Built once per call; blocks slice it (as_strided itself costs ~3 us)."""
    base = xp if c0 == 0 and cg == xp.shape[3] else xp[..., c0 : c0 + cg]
    sn, sh, sw, sc = base.strides
    return as_strided(
        base,
        (xp.shape[0], ho, wo, kh, kw, cg),
        (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False,
    )


def _cols(win, a, b):
    """im2col of images ``a:b``: a ((b-a)*Ho*Wo, kh*kw*cg) matrix, columns ordered (i, j, c),
    gathered from the window view into a per-thread workspace (runs of kw*cg contiguous
    elements for stride 1); a view of the input for 1x1 stride-1 kernels. With one input
    channel the runs would be only kw long, so the matrix is gathered transposed instead
    (runs of Wo) and returned as a column-major view (BLAS takes either)."""
    return _gather(win[a:b])


def _gather(v):
    """The im2col matrix of a window view (or a slice of one, e.g. some output rows)."""
    nb, ho, wo, kh, kw, cg = v.shape
    isz = v.itemsize
    if (
        kh == kw == 1
        and v.strides[2] == cg * isz
        and v.strides[1] == wo * v.strides[2]
        and v.strides[0] == ho * v.strides[1]
        and v.strides[5] == isz
    ):
        return v.reshape(nb * ho * wo, cg)  # dense 1x1 stride-1: the input is the matrix
    if cg == 1 and kh * kw > 1:
        cols_t = _workspace((kh, kw, nb, ho, wo), v.dtype, "cols-t")
        np.copyto(cols_t, v[..., 0].transpose(3, 4, 0, 1, 2))
        return cols_t.reshape(kh * kw, nb * ho * wo).T
    cols = _workspace(v.shape, v.dtype, "cols")
    np.copyto(cols, v)
    return cols.reshape(nb * ho * wo, kh * kw * cg)


# Images per block: an im2col block of about _BLOCK_ELEMS elements (L2-resident), and at least
# 8 blocks (two per thread for up to 4 threads) so that threads pulling blocks finish together.
# NOTE: from the shapes only, never the thread count, so that results are bitwise the same
# for any ember.set_num_threads (BLAS rounds a block's edge rows differently).
_BLOCK_ELEMS = int(os.environ.get("EMBER_CONV_BLOCK", str(1 << 18)))


def _block_images(n, per_image):
    nb = max(1, _BLOCK_ELEMS // max(per_image, 1))
    return max(1, min(nb, -(-n // 8)))


def _phase_window(grid, a, b, i, j, ho, wo, stride, dilation, c0, cg):
    """Where kernel offset (i, j) of output pixels (Ho, Wo) lands in the phase grids of the
    padded input: padded row y*s + i*d is row y + (i*d)//s of phase (i*d) % s."""
    oy, ox = i * dilation[0], j * dilation[1]
    qy, qx = oy // stride[0], ox // stride[1]
    return grid[oy % stride[0], ox % stride[1], a:b, qy : qy + ho, qx : qx + wo, c0 : c0 + cg]
