"""The kernel of ``conv2d_grad_weight``: the weight gradient as im2col(x)^T @ g per block.

:mod:`ember.ops.conv` declares the primitive and its VJP.
"""

from __future__ import annotations

import numpy as np

from . import _conv_gemm
from ._conv_depthwise import (
    _depthwise_grad_weight,
    _dw3x3_kernel,
    _dw3x3_nhwc_kernel,
    _dw_nhwc_kernel,
    _dw_planes_run,
    _dw_work,
    _is_channels_last,
    _nchw,
    _planes_kernel,
)
from ._conv_forward import (
    _dense_1x1,
    _gemm_kernel_path,
    _grad_weight_1x1_nchw,
    _nchw_1x1,
    _pad_block,
    _row_chunks,
    _strided_1x1,
)
from ._conv_planes import _conv_planes_grad_weight, _plane_path
from ._conv_util import (
    _block_images,
    _compute_dtype,
    _gather,
    _nhwc,
    _pad_nhwc,
    _windows,
    _workspace,
    forward_padded,
)
from ._core import AbstractValue
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._parallel import parallel_for


# -- grad weight ---------------------------------------------------------------------------------
def _conv2d_grad_weight_impl(x, g, *, stride, padding, dilation, groups, kernel):
    dtype = _compute_dtype(x)
    c = x.shape[1]
    n, o, ho, wo = g.shape
    kh, kw = kernel
    cg, og = c // groups, o // groups
    if _strided_1x1(kh, kw, stride, padding):
        x = x[:, :, :: stride[0], :: stride[1]]
        stride = (1, 1)
    if _nchw_1x1(x, kh, kw, stride, padding, groups) and not _is_channels_last(g):
        gw = _grad_weight_1x1_nchw(x, g, dtype)
        return gw if gw.dtype == x.dtype else gw.astype(x.dtype)
    kp = _planes_kernel("dw_planes_grad_weight", x, groups, cg, dtype)
    # the planes kernel's per-channel float64 reduction is amortized over images; with few
    # images the channels-last kernel wins (1x128x28x28: 0.5 vs 0.2 ms), but not the 3x3 one
    gw64 = np.empty((o, kh, kw))
    if kp is not None and (
        n >= 4 or _dw3x3_kernel(kp, (x, g, gw64), og, stride, padding, dilation) is not None
    ):
        _dw_planes_run(
            kp,
            n,
            c,
            (_nchw(x, dtype), _nchw(g, dtype), gw64),
            og,
            stride,
            padding,
            dilation,
            n * ho * wo * o * kh * kw,
        )
        gw = gw64.astype(x.dtype).reshape(o, 1, kh, kw)
        return gw
    gm = _nhwc(g, dtype)
    if _plane_path(cg, kh, kw, stride) and not (groups > 1 and cg == 1):
        gw = _conv_planes_grad_weight(x, gm, kernel, padding, dilation, groups, dtype)
    elif (
        groups > 1
        and cg == 1
        and og == 1
        and (
            k3 := _dw3x3_nhwc_kernel(
                "dw3x3_nhwc_grad_weight", x, kernel, stride, padding, dilation, groups, dtype
            )
        )
    ):
        # channels-last 3x3 'same': no padded copy; one float64 partial per block of
        # images (fixed by the shape), added in block order
        xt = x.transpose(0, 2, 3, 1)
        nb3 = max(1, -(-n // 8))
        parts3 = np.zeros((-(-n // nb3), 3, 3, c))

        def gw_block(a, bb, slot):
            k3(xt, gm, parts3[a // nb3], a, bb)

        parallel_for(n, nb3, gw_block, _dw_work(n * ho * wo * o * 9, x, gm))
        tot3 = np.add.reduce(parts3, axis=0).astype(dtype)  # (3, 3, C)
        gw = tot3.transpose(2, 0, 1).reshape(o, 1, 3, 3)
    elif og == 1 and (kn := _dw_nhwc_kernel("dw_nhwc_grad_weight", x, None, groups, dtype)):
        # other channels-last depthwise convs (strided ones): read in place; one float64
        # partial per fixed block of output rows, added in block order
        rows = n * ho
        nbr = max(1, -(-rows // 8))
        partsr = np.zeros((-(-rows // nbr), kh, kw, c))

        def gwr_block(a, bb, slot):
            kn(x.transpose(0, 2, 3, 1), gm, partsr[a // nbr], a, bb, *stride, padding[0],
               padding[2], *dilation)  # fmt: skip

        parallel_for(rows, nbr, gwr_block, _dw_work(n * ho * wo * o * kh * kw, x, gm))
        gw = np.add.reduce(partsr, axis=0).astype(dtype).transpose(2, 0, 1).reshape(o, 1, kh, kw)
    elif groups > 1 and cg == 1:
        gw = _depthwise_grad_weight(_pad_nhwc(x, padding, dtype, "x"), gm, kernel, stride, dilation)
    elif _dense_1x1(kh, kw, stride, padding, groups):  # x^T @ g on the input matrix itself
        xm = _nhwc(x, dtype, compiled=True).reshape(-1, c)
        gw = gemm(xm.T, gm.reshape(-1, o)).T.reshape(o, c, 1, 1)
    elif (gwc := _gw_compiled(x, gm, kernel, stride, padding, dilation, groups)) is not None:
        gw = gwc
    else:
        k = kh * kw * cg
        work = n * ho * wo * k * og if k * og >= 1024 else 0
        nch, rpc = _row_chunks(n, ho)
        # One partial sum per block, added in block order: the result does not depend on
        # which thread ran which block (runs stay bitwise repeatable).
        # padded inputs are padded one block at a time (see _pad_block)
        xp = _pad_nhwc(x, padding, dtype, "x") if nch > 1 or not any(padding) else None
        if nch > 1:  # few images: blocks of output rows
            wins = [
                _windows(xp, gi * cg, cg, kh, kw, stride, dilation, ho, wo) for gi in range(groups)
            ]
            parts = np.empty((n * nch, groups, k, og), dtype)

            def rows(u0, u1, slot):
                for u in range(u0, u1):
                    img, r0 = u // nch, (u % nch) * rpc
                    for gi in range(groups):
                        cols = _gather(wins[gi][img : img + 1, r0 : r0 + rpc])
                        gsl = gm[img : img + 1, r0 : r0 + rpc, :, gi * og : (gi + 1) * og]
                        np.matmul(cols.T, gsl.reshape(-1, og), out=parts[u, gi])

            parallel_for(n * nch, 1, rows, work)
        else:
            nb = _block_images(n, ho * wo * k)
            parts = np.empty((-(-n // nb), groups, k, og), dtype)

            def block(a, b, slot):
                xb = xp[a:b] if xp is not None else _pad_block(x, padding, dtype, a, b)
                for gi in range(groups):
                    cols = _gather(_windows(xb, gi * cg, cg, kh, kw, stride, dilation, ho, wo))
                    gsl = gm[a:b, :, :, gi * og : (gi + 1) * og] if groups > 1 else gm[a:b]
                    np.matmul(cols.T, gsl.reshape(-1, og), out=parts[a // nb, gi])

            parallel_for(n, nb, block, work)
        tot = parts[0] if len(parts) == 1 else np.add.reduce(parts, axis=0)
        # (groups, kh, kw, cg, og) -> (groups, og, cg, kh, kw) = (O, cg, kh, kw)
        gw = tot.reshape(groups, kh, kw, cg, og).transpose(0, 4, 3, 1, 2).reshape(o, cg, kh, kw)
    gw = np.ascontiguousarray(gw)
    return gw if gw.dtype == x.dtype else gw.astype(x.dtype)


def _gw_compiled(x, gm, kernel, stride, padding, dilation, groups):
    """The weight gradient (O, C, kh, kw) through the compiled im2col + GEMM loops, or None
    where they do not take the convolution."""
    dtype = _compute_dtype(x)
    n, ho, wo, o = gm.shape
    c = x.shape[1]
    kh, kw = kernel
    if stride == (1, 1) and _conv_gemm.implicit_usable(dtype, c, kw, groups, dilation, padding):
        tot = _conv_gemm.grad_weight_implicit(x, gm, kernel, stride, padding)
        if tot is not None:
            return tot.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
    if not _gemm_kernel_path(c, o, kh, kw, stride, padding, dilation, groups, dtype, n * ho * wo):
        return None
    fp = forward_padded(x, padding) if dtype == np.float32 else None
    if fp is not None:  # the forward's padded copy, read with no more padding: the same bits
        tot = _conv_gemm.grad_weight(fp[1], gm, kernel, stride, dilation, (0, 0, 0, 0), _workspace)
        return None if tot is None else tot.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)
    xm = _nhwc(x, dtype, compiled=True)
    tot = _conv_gemm.grad_weight(xm, gm, kernel, stride, dilation, padding, _workspace)
    return None if tot is None else tot.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)


def _conv2d_grad_weight_abstract(x, g, *, stride, padding, dilation, groups, kernel):
    return AbstractValue((g.shape[1], x.shape[1] // groups) + tuple(kernel), x.dtype)
