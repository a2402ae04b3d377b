"""Depthwise convolutions (one input channel per group): forward and both gradients.

The output is the sum of kh*kw window views times per-channel weights, vectorized along
channels (a compiled loop with the ``[jit]`` extra); NCHW-laid-out inputs run compiled loops
on channel planes instead (:mod:`ember.backends.kernels_conv`), with no transposed copy, and
channels-last 3x3 'same' ones their own kernels. :mod:`ember.ops.conv` dispatches here.

Example:
    >>> import numpy as np
    >>> from ember.ops._conv_depthwise import _depthwise_weights
    >>> m, kh, kw, wk = _depthwise_weights(np.ones((4, 1, 3, 3), np.float32), 4, np.float32)
    >>> m, wk.shape  # one output channel per input channel; weights (kh, kw, C, m)
    (1, (3, 3, 4, 1))
"""

from __future__ import annotations

import numpy as np

from ._conv_util import _block_images, _phase_window, _window, _workspace
from ._parallel import parallel_for


def _depthwise_weights(w, c, dtype):
    """Depthwise weight (C*m, 1, kh, kw) as (kh, kw, C, m): per kernel offset, the weights of
    the m output channels of each input channel. Returns (m, kh, kw, weights)."""
    m = w.shape[0] // c
    kh, kw = w.shape[2:]
    return (
        m,
        kh,
        kw,
        np.ascontiguousarray(w.reshape(c, m, kh, kw).transpose(2, 3, 0, 1), dtype=dtype),
    )


def _jit_depthwise(name, m, dtype):
    """The compiled depthwise kernel (one output channel per input channel), or None."""
    from ..backends import jit

    return jit.get_for(name, dtype) if m == 1 else None


def _is_channels_last(a):
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


def _planes_kernel(name, a, groups, cg, dtype):
    """The compiled channel-plane depthwise kernel for NCHW-laid-out ``a``, or None (then the
    NHWC path runs: free for channels-last arrays, which conv outputs are)."""
    if groups == 1 or cg != 1 or _is_channels_last(a) or a.size == 0:
        return None
    from ..backends import jit

    return jit.get_for(name, dtype)


def _dw_work(work, *arrays):
    """The work (in multiply-adds) that decides whether a depthwise kernel runs on two
    threads: its multiply-adds, or 16 per element of its arrays if more. These kernels move
    every input and output element (copies into padded planes, strided reads) and run at a
    tenth of the nominal rate: 8x144x56x56 3x3 stride 2, 8.1M multiply-adds, took 1.6 ms on
    one core and stayed there, under ``PAR_MIN_WORK``. Only the thread count depends on it,
    never the blocks: the results do not."""
    return max(work, 16 * sum(a.size for a in arrays))


def _dw_planes_run(k, n, c, arrays, m, stride, padding, dilation, work, extra=()):
    """Run plane kernel ``k`` over blocks of input channels (independent, so the blocking
    never changes a result; channels rather than images so that one image splits too);
    ``extra``: the kernel's trailing arguments. The 3x3 'same' case (stride 1, padding 1, one
    output channel per input channel, planes of at least 3x3) runs its own kernel
    (``dw3x3_*``: no padded copy of each plane; forward 2x faster on 16x128x28x28)."""
    work = _dw_work(work, *arrays)
    k3 = _dw3x3_kernel(k, arrays, m, stride, padding, dilation)
    if k3 is not None:

        def block3(a, b, slot):
            k3(*arrays, a, b, *extra)

        parallel_for(c, max(1, -(-c // 8)), block3, work)
        return

    def block(a, b, slot):
        k(*arrays, m, a, b, stride[0], stride[1], padding[0], padding[2], *dilation, *extra)

    parallel_for(c, max(1, -(-c // 8)), block, work)


_DW3X3 = {"dw_planes_fwd": "dw3x3_fwd", "dw_planes_grad_weight": "dw3x3_grad_weight"}


def _dw3x3_nhwc_kernel(name, x, w, stride, padding, dilation, groups, dtype):
    """The channels-last 3x3 'same' depthwise kernel ``name`` for ``x`` (NCHW shape laid out
    channels-last in ``dtype``; ``w`` the (C, 1, 3, 3) weight or the (3, 3) kernel size), or
    None. Such inputs are what conv outputs and ops on them are."""
    ksize = tuple(w.shape[2:]) if hasattr(w, "shape") else tuple(w)
    if (
        groups < 2
        or x.ndim != 4
        or x.shape[1] != groups
        or (hasattr(w, "shape") and w.shape[:2] != (groups, 1))
        or ksize != (3, 3)
        or stride != (1, 1)
        or dilation != (1, 1)
        or tuple(padding) != (1, 1, 1, 1)
        or x.dtype != dtype
        or x.size == 0
        or not _is_channels_last(x)
    ):
        return None
    from ..backends import jit

    return jit.get_for(name, dtype)


def _dw_nhwc_kernel(name, x, w, groups, dtype):
    """The channels-last depthwise kernel ``name`` (``dw_nhwc_*``: any kernel size, stride,
    padding and dilation, one output channel per input channel) for ``x`` (NCHW shape laid
    out channels-last in ``dtype``; ``w`` the weight, or None), or None. The 3x3 'same' case
    keeps its own kernels (:func:`_dw3x3_nhwc_kernel`), which run before."""
    if (
        groups < 2
        or x.ndim != 4
        or x.shape[1] != groups
        or (w is not None and w.shape[:2] != (groups, 1))
        or x.dtype != dtype
        or x.size == 0
        or not _is_channels_last(x)
    ):
        return None
    from ..backends import jit

    return jit.get_for(name, dtype)


def _dw_rows_run(k, rows, args, work):
    """Run ``dw_nhwc_*`` kernel ``k`` over fixed blocks of the flattened (image, row) index
    (``rows`` of them; the blocks come from the shape, never from the thread count);
    ``args`` follow the kernel's array arguments. Returns the block size."""
    nb = max(1, -(-rows // 8))

    def block(a, b, slot):
        k(*args[0], a, b, *args[1])

    parallel_for(rows, nb, block, _dw_work(work, *args[0]))
    return nb


def _dw3x3_kernel(k, arrays, m, stride, padding, dilation):
    """The 3x3 'same' kernel standing in for plane kernel ``k``, or None."""
    name = _DW3X3.get(getattr(getattr(k, "py_func", k), "__name__", ""))
    x, w = arrays[0], arrays[1]
    if (
        name is None
        or m != 1
        or stride != (1, 1)
        or dilation != (1, 1)
        or tuple(padding) != (1, 1, 1, 1)
        or x.shape[2] < 3
        or x.shape[3] < 3
        or (name == "dw3x3_fwd" and w.shape[1:] != (3, 3))
        or (name == "dw3x3_grad_weight" and arrays[2].shape[1:] != (3, 3))
    ):
        return None
    from ..backends import jit

    return jit.get(name)


def _nchw(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def _depthwise_fwd(xp, w, out, stride, dilation):
    """groups == C: out[..., c*m + q] = sum_ij window_ij[..., c] * w[c*m + q, 0, i, j]."""
    n, ho, wo, o = out.shape
    c = xp.shape[3]
    m, kh, kw, wk = _depthwise_weights(w, c, out.dtype)
    k = _jit_depthwise("depthwise_fwd", m, out.dtype)
    if k is not None:
        w3 = np.ascontiguousarray(wk[:, :, :, 0])

        def kblock(a, b, slot):
            k(xp[a:b], w3, out[a:b], stride[0], stride[1], dilation[0], dilation[1])

        parallel_for(n, max(1, -(-n // 8)), kblock, n * ho * wo * o * kh * kw)
        return out

    def block(a, b, slot):
        dst = out[a:b].reshape(b - a, ho, wo, c, m)
        tmp = _workspace(dst.shape, out.dtype, "dw")
        for i in range(kh):
            for j in range(kw):
                v = _window(xp[a:b], i, j, ho, wo, stride, dilation)[..., None]
                if i == 0 and j == 0:
                    np.multiply(v, wk[i, j], out=dst)
                else:
                    np.multiply(v, wk[i, j], out=tmp)
                    dst += tmp

    parallel_for(n, _block_images(n, ho * wo * o), block, n * ho * wo * o * kh * kw)
    return out


def _depthwise_grad_input(gm, w, grid, stride, dilation):
    """Transposed depthwise conv: the window of offset (i, j) of the input gradient (in its
    phase grid) gets sum_q g[..., c*m + q] * w[c*m + q, 0, i, j]."""
    n, ho, wo, o = gm.shape
    c = grid.shape[-1]
    m, kh, kw, wk = _depthwise_weights(w, c, gm.dtype)

    def block(a, b, slot):
        g5 = gm[a:b].reshape(b - a, ho, wo, c, m)
        tmp = _workspace(g5.shape, gm.dtype, "dw")
        for i in range(kh):
            for j in range(kw):
                np.multiply(g5, wk[i, j], out=tmp)
                _phase_window(grid, a, b, i, j, ho, wo, stride, dilation, 0, c)[...] += (
                    tmp[..., 0] if m == 1 else tmp.sum(-1)
                )

    parallel_for(n, _block_images(n, ho * wo * o), block, n * ho * wo * o * kh * kw)


def _depthwise_grad_weight(xp, gm, kernel, stride, dilation):
    """groups == C: gw[c*m + q, 0, i, j] = sum over images and pixels of
    window_ij(x)[..., c] * g[..., c*m + q]."""
    n, ho, wo, o = gm.shape
    c = xp.shape[3]
    m = o // c
    kh, kw = kernel
    k = _jit_depthwise("depthwise_grad_weight", m, gm.dtype)
    if k is not None:
        nbk = max(1, -(-n // 8))
        parts64 = np.empty((-(-n // nbk), kh, kw, c))  # float64 partial sums, in block order

        def kblock(a, b, slot):
            k(xp[a:b], gm[a:b], parts64[a // nbk], stride[0], stride[1], dilation[0], dilation[1])

        parallel_for(n, nbk, kblock, n * ho * wo * o * kh * kw)
        tot = np.add.reduce(parts64, axis=0).astype(gm.dtype)  # (kh, kw, c)
        return tot.transpose(2, 0, 1).reshape(o, 1, kh, kw)
    nb = _block_images(n, ho * wo * o)
    parts = np.empty((-(-n // nb), kh, kw, c, m), gm.dtype)

    def block(a, b, slot):
        g5 = gm[a:b].reshape(b - a, ho, wo, c, m)
        tmp = _workspace(g5.shape, gm.dtype, "dw")
        for i in range(kh):
            for j in range(kw):
                np.multiply(
                    _window(xp[a:b], i, j, ho, wo, stride, dilation)[..., None], g5, out=tmp
                )
                np.add.reduce(tmp.reshape(-1, c, m), axis=0, out=parts[a // nb, i, j])

    parallel_for(n, nb, block, n * ho * wo * o * kh * kw)
    tot = np.add.reduce(parts, axis=0)  # (kh, kw, c, m)
    return tot.transpose(2, 3, 0, 1).reshape(o, 1, kh, kw)
