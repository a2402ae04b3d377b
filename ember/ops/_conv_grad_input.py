"""The kernel of ``conv2d_grad_input`` (the transposed convolution).

Stride-1 gradients as a convolution of the padded gradient with the flipped kernel, the
others as one GEMM per block plus a col2im scatter (compiled, or NumPy in blocks).
:mod:`ember.ops.conv` declares the primitive and its VJP.
"""

from __future__ import annotations

import os

import numpy as np

from . import _conv_gemm
from ._conv_depthwise import (
    _depthwise_grad_input,
    _dw_nhwc_kernel,
    _dw_planes_run,
    _dw_rows_run,
    _jit_depthwise,
    _nchw,
    _planes_kernel,
)
from ._conv_forward import (
    _MIN_SPLIT_CHANNELS,
    _channel_step,
    _conv2d_impl,
    _implicit_path,
    _strided_1x1,
)
from ._conv_util import (
    _block_images,
    _compute_dtype,
    _nhwc,
    _phase_window,
    _workspace,
)
from ._core import AbstractValue
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._parallel import parallel_for

# -- grad input (transposed convolution) ---------------------------------------------------------
_FULL_CONV_RATIO = 1.25


def _full_conv_ratio(o, c, kh, kw, dilation, groups, dtype, pixels):
    """How many input pixels per output pixel a stride-1 input gradient may have and still
    run as a convolution of the padded gradient rather than col2im's scatter: 1.25 with an
    im2col gather (the full-padded gather grows with the input), 1.5 as an implicit GEMM,
    which gathers nothing (2 Xeon cores, ms: a 'valid' 5x5 16 -> 32 over 32x32 images, ratio
    1.31, 2.69 -> 2.23; a 'valid' 3x3 64 -> 64 over 16x16, 0.93 -> 0.70; LeNet's 5x5 6 ->
    16 over 14x14, ratio 1.96, stays with the scatter: 0.64 against 1.13)."""
    pads = (kh - 1, kh - 1, kw - 1, kw - 1)
    if _implicit_path(o, c, kh, kw, (1, 1), pads, dilation, groups, dtype, pixels):
        return _FULL_CONV_RATIO_IMPLICIT
    return _FULL_CONV_RATIO


_FULL_CONV_RATIO_IMPLICIT = float(os.environ.get("EMBER_FULL_CONV_RATIO_IMPLICIT", "1.5"))
_SCATTER_PAR_ELEMS = 1 << 18  # below: the scatter-add loop runs as one block


def _conv2d_grad_input_impl(g, w, *, stride, padding, dilation, groups, in_hw):
    dtype = _compute_dtype(g)
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    c = cg * groups
    h, wd = in_hw
    t, b, l, r = padding
    og = o // groups
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    if _strided_1x1(kh, kw, stride, padding):
        # only every stride-th input pixel gets a gradient: a 1x1 stride-1 one, spread out
        sub = _conv2d_grad_input_impl(
            g, w, stride=(1, 1), padding=padding, dilation=dilation, groups=groups, in_hw=(ho, wo)
        )
        gx = np.zeros((n, h, wd, c), sub.dtype).transpose(0, 3, 1, 2)
        gx[:, :, :: stride[0], :: stride[1]] = sub
        return gx
    if (
        stride == (1, 1)
        and max(t, b) <= eh
        and max(l, r) <= ew
        and h * wd <= _full_conv_ratio(o, c, kh, kw, dilation, groups, dtype, h * wd) * ho * wo
    ):
        # Stride 1, 'same'-like padding: the transposed convolution is a convolution of g
        # with the flipped, in/out-swapped kernel (one im2col + GEMM, no scatter-add loop).
        # (For 'valid' convs the full-padded im2col is larger than col2im's: scatter instead.)
        wt = w.reshape(groups, og, cg, kh, kw).transpose(0, 2, 1, 3, 4)
        wt = wt.reshape(groups * cg, og, kh, kw)[:, :, ::-1, ::-1]
        return _conv2d_impl(
            g,
            wt,
            stride=stride,
            padding=(eh - t, eh - b, ew - l, ew - r),
            dilation=dilation,
            groups=groups,
        )
    kn = _dw_nhwc_kernel("dw_nhwc_grad_input", g, w, groups, dtype)
    if kn is not None:  # channels-last depthwise: each input pixel gathers its taps in place
        gx = np.empty((n, h, wd, c), dtype)
        wk = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), dtype=dtype)  # (kh, kw, C)
        tail = (*stride, t, l, *dilation)
        _dw_rows_run(
            kn, n * h, ((g.transpose(0, 2, 3, 1), wk, gx), tail), n * ho * wo * o * kh * kw
        )
        gx = gx.transpose(0, 3, 1, 2)
        return gx if gx.dtype == g.dtype else gx.astype(g.dtype)
    kp = _planes_kernel("dw_planes_grad_input", g, groups, cg, dtype)
    if kp is not None:
        gx = np.empty((n, c, h, wd), dtype)
        w3 = _nchw(w[:, 0], dtype)
        _dw_planes_run(
            kp,
            n,
            c,
            (_nchw(g, dtype), w3, gx),
            og,
            stride,
            padding,
            dilation,
            n * ho * wo * o * kh * kw,
        )
        return gx if gx.dtype == g.dtype else gx.astype(g.dtype)
    hp, wp = h + t + max(b, 0), wd + l + max(r, 0)
    # (the compiled copy when the col2im below runs on numba's threads too)
    gm = _nhwc(g, dtype, compiled=_compiled_col2im(n, groups, cg, dtype))
    # The padded input gradient is kept as stride x stride phase grids: kernel offset (i, j)
    # scatters into one phase grid at a contiguous (Ho, Wo) window, so each scatter-add moves
    # runs of Wo*C elements instead of C (stride 2: 9 adds of 16-element runs measured ~6 ms
    # for a 32x32x16x16 gradient; phases make them ~10x cheaper). Stride 1: one phase.
    if groups > 1 and cg == 1:
        kd = _jit_depthwise("depthwise_grad_input", og, dtype)
        if kd is not None:
            gxp = np.zeros((n, hp, wp, c), dtype)
            w3 = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), dtype=dtype)  # (kh, kw, C)

            def kblock(a, bb, slot):
                kd(gm[a:bb], w3, gxp[a:bb], stride[0], stride[1], dilation[0], dilation[1])

            parallel_for(n, max(1, -(-n // 8)), kblock, n * ho * wo * c * kh * kw)
            gx = gxp[:, t : t + h, l : l + wd].transpose(0, 3, 1, 2)
            return gx if gx.dtype == g.dtype else gx.astype(g.dtype)
    kc = _col2im_kernel(cg, stride, dtype)
    if kc is not None:
        gx = _grad_input_col2im(kc, gm, w, (n, hp, wp, c), stride, dilation, groups, dtype)
        gx = gx[:, t : t + h, l : l + wd].transpose(0, 3, 1, 2)
        return gx if gx.dtype == g.dtype else gx.astype(g.dtype)
    s0, s1 = stride
    hq, wq = -(-hp // s0), -(-wp // s1)
    grid = np.zeros((s0, s1, n, hq, wq, c), dtype)
    if groups > 1 and cg == 1:
        _depthwise_grad_input(gm, w, grid, stride, dilation)
    else:
        # One (og, cg) weight slab per group and kernel offset: each offset's GEMM writes a
        # contiguous (pixels, cg) slab that is added to its window (one GEMM into a
        # (pixels, kh*kw*cg) matrix and adds reading strided slices of it measured 2-2.5x
        # slower: runs of only cg elements).
        wts = [
            [
                np.ascontiguousarray(w[gi * og : (gi + 1) * og, :, i, j], dtype=dtype)
                for i in range(kh)
                for j in range(kw)
            ]
            for gi in range(groups)
        ]
        k = kh * kw * cg

        # where each (group, offset) lands, built once (slicing a 6-D view costs ~3 us)
        dsts = [
            [
                _phase_window(grid, 0, n, i, j, ho, wo, stride, dilation, gi * cg, cg)
                for i in range(kh)
                for j in range(kw)
            ]
            for gi in range(groups)
        ]

        def block(a, bb, slot):
            slab = _workspace(((bb - a) * ho * wo, cg), dtype, "slab")
            slab4 = slab.reshape(bb - a, ho, wo, cg)
            for gi in range(groups):
                gsl = gm[a:bb, :, :, gi * og : (gi + 1) * og] if groups > 1 else gm[a:bb]
                g2 = gsl.reshape(-1, og)
                for wt, dst in zip(wts[gi], dsts[gi]):
                    np.matmul(g2, wt, out=slab)
                    np.add(dst[a:bb], slab4, out=dst[a:bb])

        # Each block costs 2*kh*kw NumPy calls. Threads pay off only when those calls are
        # large: two threads trading the GIL around many ~10 us calls measured slower than
        # one. Small gradients run as one block on the calling thread.
        if n * ho * wo * cg < _SCATTER_PAR_ELEMS:
            nb, work = n, 0
        else:
            nb, work = max(_block_images(n, ho * wo * k), -(-n // 4)), n * ho * wo * k * og
        parallel_for(n, nb, block, work)
    if s0 == s1 == 1:
        gx = grid[0, 0, :, t : t + h, l : l + wd].transpose(0, 3, 1, 2)
    else:
        gx = np.empty((n, h, wd, c), dtype)
        for py in range(s0):
            y0 = (py - t) % s0
            ny = len(range(y0, h, s0))
            for px in range(s1):
                x0 = (px - l) % s1
                nx = len(range(x0, wd, s1))
                qy, qx = (y0 + t) // s0, (x0 + l) // s1
                gx[:, y0::s0, x0::s1] = grid[py, px, :, qy : qy + ny, qx : qx + nx]
        gx = gx.transpose(0, 3, 1, 2)
    return gx if gx.dtype == g.dtype else gx.astype(g.dtype)


# col2im: one GEMM per block of images, g (pixels, og) @ w (og, kh*kw*cg), then a compiled
# loop adds each pixel's kh*kw runs of cg elements into its window of the padded input
# gradient. Measured against the scatter below ('valid' 5x5, 32 -> 64 channels, 24x24, 32
# images, one thread): 21.6 -> ~17 ms; the product has K = og and N = kh*kw*cg, both large,
# where the scatter runs kh*kw GEMMs with N = cg. Used from 6 input channels per group, or
# any for strided convs (lenet's 6 -> 16 5x5: 1.44 -> 1.24 ms; 3 -> 16 3x3 stride 2: 0.77 ->
# 0.52 ms; but 4 -> 8 3x3 stride 1 0.32 -> 0.38 ms: short runs do not vectorize). The scatter
# loops on 1-D slices (vectorized; 16 x (16 -> 32) 'valid' 5x5 scatter 1.6 -> 1.0 ms).
_COL2IM_MIN_C = 6


def _col2im_kernel(cg, stride, dtype):
    if cg < _COL2IM_MIN_C and stride == (1, 1):
        return None
    from ..backends import jit

    return jit.get_for("col2im_nhwc", dtype)


def _few_images_col2im(n, groups, cg):
    """Whether col2im splits single images over threads by channels (few images)."""
    return n < 8 and groups == 1 and cg >= 2 * _MIN_SPLIT_CHANNELS


def _compiled_col2im(n, groups, cg, dtype):
    """Whether col2im's GEMM and scatter run as one loop on numba's threads
    (:func:`ember.ops._conv_gemm.grad_input_col2im`: one group, float32, blocks of images,
    the packed micro-kernel). Measured on 2 Xeon cores against the pool's blocks, ms:
    8x128x16x16 -> 64 3x3 stride 2 2.15 -> 1.89, 32x32x16x16 -> 16 1.10 -> 0.82,
    16x32x14x14 -> 16 5x5 stride 2 0.97 -> 0.66, LeNet's 8x16x10x10 -> 6 'valid' 5x5
    0.10 -> 0.07."""
    from ._parallel import packed_kernel_available

    return (
        groups == 1
        and dtype == np.float32
        and not _few_images_col2im(n, groups, cg)
        and packed_kernel_available()
    )


def _grad_input_col2im(kc, gm, w, shape, stride, dilation, groups, dtype):
    n, ho, wo, o = gm.shape
    _, cg, kh, kw = w.shape
    og = o // groups
    gxp = np.zeros(shape, dtype)
    if _few_images_col2im(n, groups, cg):
        return _grad_input_col2im_channels(kc, gm, w, gxp, stride, dilation, dtype)
    # (og, kh*kw*cg) per group, columns ordered (i, j, c)
    wms = [
        np.ascontiguousarray(w[gi * og : (gi + 1) * og].transpose(0, 2, 3, 1), dtype=dtype).reshape(
            og, -1
        )
        for gi in range(groups)
    ]
    k = kh * kw * cg
    nb = _block_images(n, ho * wo * k)
    if _compiled_col2im(n, groups, cg, dtype):
        got = _conv_gemm.grad_input_col2im(gm, wms[0], gxp, (kh, kw), stride, dilation, nb,
                                           _workspace)  # fmt: skip
        if got is not None:
            return got

    def block(a, b, slot):
        cols = _workspace(((b - a) * ho * wo, k), dtype, "col2im")
        for gi in range(groups):
            gsl = gm[a:b, :, :, gi * og : (gi + 1) * og] if groups > 1 else gm[a:b]
            np.matmul(gsl.reshape(-1, og), wms[gi], out=cols)
            kc(cols, gxp[a:b], gi * cg, 0, ho, wo, kh, kw, *stride, *dilation)

    parallel_for(n, nb, block, n * ho * wo * k * o)
    return gxp


def _grad_input_col2im_channels(kc, gm, w, gxp, stride, dilation, dtype):
    """col2im for fewer than 8 images (one group): blocks of (image, input channels), so that
    a single image splits over threads; each block makes the columns of its channels only
    and scatters them into its own channels of the gradient (pixels in order)."""
    n, ho, wo, o = gm.shape
    _, c, kh, kw = w.shape
    step = _channel_step(c, n)
    spans = [(c0, min(c, c0 + step)) for c0 in range(0, c, step)]
    # (O, kh*kw*cc) per block of channels, columns ordered (i, j, c)
    wms = [
        np.ascontiguousarray(w[:, c0:c1].transpose(0, 2, 3, 1), dtype=dtype).reshape(o, -1)
        for c0, c1 in spans
    ]

    def block(u0, u1, slot):
        for u in range(u0, u1):
            img, s = divmod(u, len(spans))
            cols = _workspace((ho * wo, wms[s].shape[1]), dtype, "col2im")
            np.matmul(gm[img].reshape(-1, o), wms[s], out=cols)
            kc(cols, gxp[img : img + 1], spans[s][0], 0, ho, wo, kh, kw, *stride, *dilation)

    parallel_for(n * len(spans), 1, block, n * ho * wo * kh * kw * c * o)
    return gxp


def _conv2d_grad_input_abstract(g, w, *, stride, padding, dilation, groups, in_hw):
    return AbstractValue((g.shape[0], w.shape[1] * groups) + tuple(in_hw), g.dtype)
