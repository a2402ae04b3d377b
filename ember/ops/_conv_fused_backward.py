"""The fused, non-differentiable ``conv2d_backward`` kernel: both gradients from one im2col.

A training step (no backward graph recorded) of a stride-1 'same'-like convolution runs this
instead of the two differentiable gradient primitives; :mod:`ember.ops.conv` declares the
primitive and picks it in ``conv2d``'s VJP (``_shared_backward_ok``).
"""

from __future__ import annotations

import numpy as np

from . import _conv_gemm, _winograd
from ._conv_forward import _gemm_kernel_path, _row_chunks
from ._conv_grad_input import _full_conv_ratio
from ._conv_planes import _plane_path
from ._conv_util import (
    _block_images,
    _cols,
    _compute_dtype,
    _gather,
    _nhwc,
    _pad_nhwc,
    _windows,
    _workspace,
)
from ._core import AbstractValue
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._parallel import parallel_for


# -- both gradients from one im2col (stride 1) ---------------------------------------------------
# For a stride-1 conv with 'same'-like padding the input gradient is a convolution of the padded
# output gradient with the flipped kernel (see conv2d_grad_input), and the weight gradient can
# be read off the very same im2col matrix of g: gw[o, c, i, j] is the (kh-1-i, kw-1-j, o) column
# of that matrix times x (input position by input position). One im2col gather instead of two.
# Used for training steps (no backward graph recorded); the two separate primitives stay the
# differentiable path.
def _shared_backward_ok(x_shape, w_shape, g_shape, p, dtype):
    if p["stride"] != (1, 1) or p["groups"] != 1:
        return False
    _, c, h, wd = x_shape
    _, _, kh, kw = w_shape
    t, b, l, r = p["padding"]
    eh, ew = p["dilation"][0] * (kh - 1), p["dilation"][1] * (kw - 1)
    if _winograd.usable(
        kh, kw, p["stride"], p["dilation"], 1, c, w_shape[0], x_shape[0] * h * wd
    ) and (min(c, w_shape[0]) >= 128 or h * wd >= 1024):
        # the input gradient as a Winograd convolution and the weight gradient from im2col of
        # x beat one shared im2col for wide or large images (32x256x8x8: 97 -> 77 ms per
        # step, 1x128x28x28: 8.9 -> 7.6), not for 64 channels of 8x8 (6.4 -> 6.8)
        return False
    return (
        kh * kw > 1
        and not _plane_path(c, kh, kw, (1, 1))
        and max(t, b) <= eh
        and max(l, r) <= ew
        # (as for the input gradient alone: 1.5 input pixels per output pixel when both
        # gradients run as implicit GEMMs; 'valid' 5x5 16 -> 32 over 32x32, ratio 1.31:
        # 4.20 -> 3.85 ms against the two separate gradients)
        and h * wd
        <= _full_conv_ratio(w_shape[0], c, kh, kw, p["dilation"], 1, dtype, x_shape[0] * h * wd)
        * g_shape[2]
        * g_shape[3]
    )


def _conv2d_backward_impl(g, x, w, *, stride, padding, dilation, groups):
    dtype = _compute_dtype(x)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    k = kh * kw * o
    # rows (i', j', o) of the flipped kernel: w[o, c, kh-1-i', kw-1-j']
    wf = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1), dtype=dtype)
    wf = wf.reshape(k, c)
    gx = np.empty((n, h, wd, c), dtype)
    got = _backward_implicit(g, x, wf, gx, (kh, kw), padding, dilation, groups, dtype)
    if got is not None:
        return got if got[0].dtype == x.dtype else tuple(a.astype(x.dtype) for a in got)
    compiled = _gemm_kernel_path(c, o, kh, kw, stride, padding, dilation, groups, dtype, n * h * wd)
    xm = _nhwc(x, dtype, compiled=compiled)
    tot = None
    if compiled:
        tot = _conv_gemm.backward(
            _nhwc(g, dtype, compiled=True), wf, xm, gx, (kh, kw), dilation, padding, _workspace
        )
    if tot is None:
        tot = _shared_backward_blocks(g, wf, xm, gx, kh, kw, padding, dilation, dtype)
    gw = np.ascontiguousarray(tot.reshape(kh, kw, o, c)[::-1, ::-1].transpose(2, 3, 0, 1))
    gx = gx.transpose(0, 3, 1, 2)
    return (
        gx if gx.dtype == x.dtype else gx.astype(x.dtype),
        gw if gw.dtype == x.dtype else gw.astype(x.dtype),
    )


def _backward_implicit(g, x, wf, gx, kernel, padding, dilation, groups, dtype):
    """A stride-1 convolution's two gradients as implicit GEMMs, with no im2col matrix:
    ``gx`` as the convolution of the padded ``g`` with the flipped kernel ``wf``
    (:func:`ember.ops._conv_gemm.forward_implicit`), the weight gradient from the padded
    input read in place (:func:`ember.ops._conv_gemm.grad_weight_implicit`). Measured on 2
    Xeon cores against the fused backward's one im2col of ``g`` (ms): 8x64x32x32 -> 64 3x3
    6.18 -> 6.08, 32x128x16x16 -> 128 31.0 -> 25.8, 1x64x56x56 -> 64 2.87 -> 2.53,
    32x16x32x32 -> 16 2.91 -> 2.56, 16x16x32x32 -> 32 5x5 'valid' 3.95 -> 3.87. Returns
    ``(gx NCHW-shaped, gw)`` or None where it does not apply (cropping, dilation, groups,
    other dtypes, no packed micro-kernel)."""
    c = gx.shape[3]
    o = g.shape[1]
    kh, kw = kernel
    t, b, left, r = padding
    pads = (kh - 1 - t, kh - 1 - b, kw - 1 - left, kw - 1 - r)
    if min(pads) < 0 or not _conv_gemm.implicit_usable(dtype, o, kw, groups, dilation, pads):
        return None
    if not _conv_gemm.implicit_usable(dtype, c, kw, groups, dilation, padding):
        return None
    gm = _nhwc(g, dtype, compiled=True)
    g_cl = gm.transpose(0, 3, 1, 2)  # (NCHW shape, channels-last memory)
    if _conv_gemm.forward_implicit(g_cl, wf, gx, None, kernel, (1, 1), pads) is None:
        return None
    tot = _conv_gemm.grad_weight_implicit(x, gm, kernel, (1, 1), padding)
    if tot is None:
        return None
    gw = np.ascontiguousarray(tot.reshape(kh, kw, c, o).transpose(3, 2, 0, 1))
    return gx.transpose(0, 3, 1, 2), gw


def _shared_backward_blocks(g, wf, xm, gx, kh, kw, padding, dilation, dtype):
    """:func:`_conv2d_backward_impl`'s pool-driven blocks: ``gx`` (N, H, W, C) and the
    flipped kernel's weight gradient rows (kh*kw*O, C) from one im2col of ``g``."""
    n, h, wd, c = gx.shape
    o = g.shape[1]
    t, b, l, r = padding
    eh, ew = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    gp = _pad_nhwc(g, (eh - t, eh - b, ew - l, ew - r), dtype, "g")
    win = _windows(gp, 0, o, kh, kw, (1, 1), dilation, h, wd)  # at input positions
    k = kh * kw * o
    nch, rpc = _row_chunks(n, h)
    if nch > 1:
        parts = np.empty((n * nch, k, c), dtype)

        def rows(u0, u1, slot):
            for u in range(u0, u1):
                img, r0 = u // nch, (u % nch) * rpc
                cols = _gather(win[img : img + 1, r0 : r0 + rpc])
                np.matmul(cols, wf, out=gx[img : img + 1, r0 : r0 + rpc].reshape(-1, c))
                np.matmul(cols.T, xm[img : img + 1, r0 : r0 + rpc].reshape(-1, c), out=parts[u])

        parallel_for(n * nch, 1, rows, 2 * n * h * wd * k * c)
    else:
        nb = _block_images(n, h * wd * k)
        parts = np.empty((-(-n // nb), k, c), dtype)

        def block(a, bb, slot):
            cols = _cols(win, a, bb)
            np.matmul(cols, wf, out=gx[a:bb].reshape(-1, c))
            np.matmul(cols.T, xm[a:bb].reshape(-1, c), out=parts[a // nb])

        parallel_for(n, nb, block, 2 * n * h * wd * k * c)
    return parts[0] if len(parts) == 1 else np.add.reduce(parts, axis=0)


def _conv2d_backward_abstract(g, x, w, *, stride, padding, dilation, groups):
    return AbstractValue(x.shape, x.dtype), AbstractValue(w.shape, w.dtype)


def _conv2d_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    p = {"stride": (1, 1), "padding": (1, 1, 1, 1), "dilation": (1, 1), "groups": 1}
    return [
        (
            (
                tensor(rng.standard_normal((2, 3, 5, 4))),
                tensor(rng.standard_normal((2, 4, 5, 4))),
                tensor(rng.standard_normal((3, 4, 3, 3))),
            ),
            p,
        ),
        (
            (
                tensor(rng.standard_normal((1, 2, 6, 6))),
                tensor(rng.standard_normal((1, 5, 6, 6))),
                tensor(rng.standard_normal((2, 5, 5, 3))),
            ),
            {"stride": (1, 1), "padding": (4, 4, 2, 2), "dilation": (2, 2), "groups": 1},
        ),
    ]
