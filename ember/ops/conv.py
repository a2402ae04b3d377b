"""Convolution primitives: ``conv2d``, its two backward primitives and a fused backward.

Kernels compute in an NHWC layout internally. Float32 convolutions with one group (not
Winograd-sized, not few-channel) run the compiled loops of :mod:`ember.ops._conv_gemm`: each
block of output rows is gathered into an L2-sized im2col buffer straight from the unpadded
input and multiplied by ``cblas_sgemm``, the blocks on numba's threads (forward, the fused
backward and the weight gradient). Otherwise, and without numba, the (padded) input is
viewed through a zero-copy ``as_strided`` window view and gathered a few images at a time
into an im2col block of shape (images*Ho*Wo, kh*kw*C) that stays in L2, then multiplied by
the (kh*kw*C, O) weight in one BLAS GEMM per block; blocks are spread over Ember's threads
(``ember.ops._parallel``). NHWC was measured against the CNHW layout of earlier versions on
a 2-core AVX-512 VM: the (pixels, K) @ (K, O) GEMM with few output channels ran 1.4-2x
faster on OpenBLAS's AVX-512 kernels and equal on its AVX2 ones, and the im2col copy moves
contiguous runs of kw*C elements. The output is returned as an NCHW-shaped *view* of the
NHWC buffer (no transpose copy); NumPy ufuncs keep that layout, so the next conv reads it
back as NHWC for free.

Depthwise convolutions (one input channel per group) skip the GEMM: the output is the sum of
kh*kw window views times per-channel weights, vectorized along channels (a compiled loop
with the ``[jit]`` extra); NCHW inputs run compiled loops on channel planes instead
(``backends/kernels_conv.py``), with no transposed copy (:mod:`ember.ops._conv_depthwise`;
the helpers shared with it are :mod:`ember.ops._conv_util`). Inputs with few channels gather
their im2col from channel planes ("wide rows", :mod:`ember.ops._conv_planes`); batches of
fewer than 8 images split output rows into blocks. Special cases: 3x3 stride-1 convs with >=
64 channels use Winograd F(2x2, 3x3) (``_winograd.py``); 1x1 convs of NCHW inputs are (O, C)
@ (C, H*W) GEMMs per image; strided 1x1 convs subsample first; 'valid' and strided input
gradients are one GEMM per block plus a compiled col2im (one loop on numba's threads on the
packed micro-kernel).

The three primitives form an adjoint family, so gradients of any order exist:

- ``conv2d(x, w)``; VJP: ``conv2d_grad_input(g, w)``, ``conv2d_grad_weight(x, g)``;
- ``conv2d_grad_input(g, w)`` (= transposed convolution); VJP: ``conv2d(gg, w)``,
  ``conv2d_grad_weight(gg, g)``;
- ``conv2d_grad_weight(x, g)``; VJP: ``conv2d_grad_input(g, gg)``, ``conv2d(x, gg)``.

A training step (no backward graph recorded) of a stride-1 'same'-like conv instead runs the
fused, non-differentiable ``conv2d_backward`` (both gradients from one im2col).
"""

from __future__ import annotations

import os

import numpy as np

from . import _conv_gemm, _core, _winograd
from ._ad import defvjp
from ._conv_depthwise import (
    _depthwise_fwd,
    _depthwise_grad_input,
    _depthwise_grad_weight,
    _dw3x3_kernel,
    _dw3x3_nhwc_kernel,
    _dw_planes_run,
    _is_channels_last,
    _jit_depthwise,
    _nchw,
    _planes_kernel,
)
from ._conv_planes import _conv_planes_fwd, _conv_planes_grad_weight, _plane_path
from ._conv_util import (
    _block_images,
    _cols,
    _compute_dtype,
    _gather,
    _nhwc,
    _pad_nhwc,
    _phase_window,
    _windows,
    _workspace,
    clear_workspace,
    conv_out_size,
    shared_layouts,
)
from ._core import SAVE_INPUTS, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._parallel import parallel_for
from ._samples import defsample

__all__ = [
    "clear_workspace",
    "conv2d_grad_input_p",
    "conv2d_grad_weight_p",
    "conv2d_p",
    "conv_out_size",
    "gemm",
]


def _w_gemm(w, g, og, dtype, m=None):
    """Weight rows of group ``g`` as the (kh*kw*cg, og) GEMM operand (rows ordered (i, j, c));
    ``m``: the GEMM's row count when known."""
    wg = w[g * og : (g + 1) * og]
    if m is not None and m < wg[0].size:
        # few rows against a big weight (512x512x3x3 for a batch of 2x2 maps): the copy
        # dominates, and an (og, kh, kw, cg) copy reads each output channel's weights in one
        # cache-resident run where a (kh, kw, cg, og) one strides across all of them (1.6 vs
        # 4.7 ms on one core); matmul takes it transposed without copying. With many rows
        # the contiguous operand keeps the GEMM a few percent faster.
        rows = np.ascontiguousarray(wg.transpose(0, 2, 3, 1), dtype=dtype)
        return rows.reshape(og, -1).T
    return np.ascontiguousarray(wg.transpose(2, 3, 1, 0), dtype=dtype).reshape(-1, og)


# -- forward --------------------------------------------------------------------------------------
def _conv_nhwc(xp, w, out, stride, dilation, groups, bias=None):
    """``out`` (N, Ho, Wo, O) = convolution of padded NHWC ``xp`` with ``w`` (O, C/g, kh, kw),
    plus ``bias`` (O,) when given, added to each block right after its GEMM (while the block
    is in cache; a separate pass over the whole output reads it back from memory). Returns
    whether the bias was added (the depthwise and Winograd kernels leave it to the caller)."""
    n, ho, wo, o = out.shape
    c = xp.shape[3]
    cg, og = c // groups, o // groups
    kh, kw = w.shape[2:]
    if groups > 1 and cg == 1:
        _depthwise_fwd(xp, w, out, stride, dilation)
        return False
    if _winograd.usable(kh, kw, stride, dilation, groups, c, o, n * ho * wo):
        _winograd.conv3x3(xp, w, out, _workspace, _row_chunks, _block_images)
        return False
    wms = [_w_gemm(w, g, og, out.dtype, n * ho * wo) for g in range(groups)]
    wins = [_windows(xp, g * cg, cg, kh, kw, stride, dilation, ho, wo) for g in range(groups)]
    k = kh * kw * cg

    # few images: blocks of output rows, so that every thread has work; not for small maps,
    # where every block's GEMM would read the whole weight matrix for a few rows (4 images of
    # 2x2 at 512 channels: 8 reads of 9.4 MB, 11 ms, against 1.2 ms for one GEMM)
    nch, rpc = _row_chunks(n, ho) if ho * wo >= 64 else (1, ho)
    if nch > 1:

        def rows(u0, u1, slot):
            for u in range(u0, u1):
                img, r0 = u // nch, (u % nch) * rpc
                for g in range(groups):
                    cols = _gather(wins[g][img : img + 1, r0 : r0 + rpc])
                    dst = out[img : img + 1, r0 : r0 + rpc, :, g * og : (g + 1) * og]
                    np.matmul(cols, wms[g], out=dst.reshape(-1, og))
                if bias is not None:
                    out[img, r0 : r0 + rpc] += bias

        parallel_for(n * nch, 1, rows, n * ho * wo * k * o)
        return bias is not None

    def block(a, b, slot):
        for g in range(groups):
            cols = _cols(wins[g], a, b)
            dst = out[a:b, :, :, g * og : (g + 1) * og] if groups > 1 else out[a:b]
            np.matmul(cols, wms[g], out=dst.reshape(-1, og))
        if bias is not None:
            out[a:b] += bias

    # (blocks of at least 64 output pixels: a GEMM over fewer rows reads the whole weight
    # matrix for little work)
    per = max(_block_images(n, ho * wo * k), -(-64 // max(ho * wo, 1)))
    parallel_for(n, per, block, n * ho * wo * k * o)
    return bias is not None


def _pad_block(x, padding, dtype, a, b):
    """Images ``a:b`` of ``x`` (NCHW shape, any strides) zero-padded in NHWC, in a per-thread
    workspace. Padding one block at a time, on the thread about to gather its im2col, keeps
    it in cache and spreads the copy over threads (3x3 stride 2, 8x64x32x32, one thread:
    forward ~3%, weight gradient ~8% faster). Unpadded inputs are transposed whole (one
    image at a time measured slower: more, smaller copies)."""
    return _pad_nhwc(x[a:b], padding, dtype, "x-block")


def _conv_nhwc_blocks(x, padding, w, out, stride, dilation, groups, bias, dtype):
    """:func:`_conv_nhwc`'s image blocks for a padded convolution, each block padded by the
    thread that runs it (see :func:`_pad_block`); adds ``bias`` (or None) per block."""
    n, ho, wo, o = out.shape
    cg, kh, kw = w.shape[1:]
    og = o // groups
    wms = [_w_gemm(w, g, og, dtype) for g in range(groups)]
    k = kh * kw * cg

    def block(a, b, slot):
        xb = _pad_block(x, padding, dtype, a, b)
        for g in range(groups):
            cols = _gather(_windows(xb, g * cg, cg, kh, kw, stride, dilation, ho, wo))
            dst = out[a:b, :, :, g * og : (g + 1) * og] if groups > 1 else out[a:b]
            np.matmul(cols, wms[g], out=dst.reshape(-1, og))
        if bias is not None:
            out[a:b] += bias

    parallel_for(n, _block_images(n, ho * wo * k), block, n * ho * wo * k * o)


def _row_chunks(n, ho):
    """For batches of fewer than 8 images: (chunks per image, rows per chunk) splitting each
    image's output rows so that there are about 8 blocks; (1, ho) otherwise. From the shapes
    only (results do not depend on the thread count)."""
    if n == 0 or n >= 8 or ho < 2:
        return 1, ho
    rpc = -(-ho // min(ho, -(-8 // n)))
    return -(-ho // rpc), rpc


# -- 1x1 convolutions of NCHW inputs: per image a (O, C) @ (C, H*W) GEMM, no layout change ------
# (1x256x14x14 -> 256 channels: 0.49 -> ~0.3 ms on one thread; the NHWC path transposes the
# input and splits the single image into row blocks of thin GEMMs.)
def _nchw_1x1(x, kh, kw, stride, padding, groups):
    return (
        kh == kw == 1
        and stride == (1, 1)
        and not any(padding)
        and groups == 1
        and x.flags.c_contiguous
        and x.size > 0
    )


def _pixel_chunks(n, hw):
    """Blocks of (image, pixel range): whole images from 8 images, else each image's pixels
    split in about 8/n chunks (from the shapes only: results never depend on threads)."""
    per = 1 if n >= 8 else min(-(-8 // n), max(1, hw // 64))
    step = -(-hw // per)
    return [(i, p0, min(hw, p0 + step)) for i in range(n) for p0 in range(0, hw, step)]


def _conv1x1_nchw(x, w, dtype, bias=None):
    """(N, O, H, W) = per image (O, C) @ (C, H*W), plus ``bias`` (O,) added per block."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    wm = np.ascontiguousarray(w.reshape(o, c), dtype=dtype)
    xm = x.reshape(n, c, h * wd)
    if xm.dtype != dtype:
        xm = xm.astype(dtype)
    out = np.empty((n, o, h * wd), dtype)
    chunks = _pixel_chunks(n, h * wd)
    if _conv1x1_compiled(wm, xm, out, chunks, bias):
        return out.reshape(n, o, h, wd)

    bcol = None if bias is None else bias.reshape(o, 1)

    def block(a, b, slot):
        for i, p0, p1 in chunks[a:b]:
            np.matmul(wm, xm[i, :, p0:p1], out=out[i, :, p0:p1])
            if bcol is not None:
                out[i, :, p0:p1] += bcol

    parallel_for(len(chunks), max(1, -(-len(chunks) // 8)), block, n * h * wd * c * o)
    return out.reshape(n, o, h, wd)


def _conv1x1_compiled(wm, xm, out, chunks, bias):
    """The float32 1x1 convolution as one compiled loop over the (image, pixel block) units
    of ``chunks`` on numba's threads, each unit's GEMM as OpenBLAS small-matrix tiles (the
    per-image ``(O, C) @ (C, H*W)`` with C = 64 ran at ~75 GFLOP/s per core as one call,
    ~105 as tiles); False where it does not apply."""
    from ._parallel import blas_loop_kernel, one_blas_thread

    if wm.dtype != np.float32 or xm.dtype != np.float32 or not xm.flags.c_contiguous:
        return False
    found = blas_loop_kernel("sgemm_shared_a")
    if found is None:
        return False
    from ..backends.kernels_blas import small_gemm_tiles

    kern, fptr, _ = found
    o, c = wm.shape
    hw = xm.shape[2]
    step = chunks[0][2] - chunks[0][1]
    has_bias = bias is not None
    bv = np.ascontiguousarray(bias, dtype=np.float32) if has_bias else wm[:, 0].copy()
    tiles = small_gemm_tiles(o, step, c)
    with one_blas_thread():
        kern(fptr, o, hw, c, wm.ctypes.data, xm.ctypes.data, xm.strides[0], out, step, bv,
             has_bias, *tiles)  # fmt: skip
    return True


# Fewer than 8 images: col2im splits over input channels, so that one image uses every
# thread. Each block repacks the GEMM's other operand and col2im's runs get shorter: on one
# thread blocks of 16 channels measured 1.3x slower (batch 1, 64 channels), of 64 channels
# 6-10% slower (128 channels), which two threads more than win back.
_MIN_SPLIT_CHANNELS = 64


def _grad_weight_1x1_nchw(x, g, dtype):
    """gw (O, C) = sum over images of g (O, H*W) @ x^T (H*W, C), one partial per block, added
    in block order (fewer than 8 images: blocks of pixels, so that one image splits too)."""
    n, c, h, wd = x.shape
    o = g.shape[1]
    xm = x.reshape(n, c, h * wd).astype(dtype, copy=False)
    gm = np.ascontiguousarray(g, dtype=dtype).reshape(n, o, h * wd)
    if n < 8:
        # pixel blocks (each image split when there are few), one partial each, added in
        # block order (splitting output channels instead repacks x per block: 1.2-2.5x slower)
        chunks = _pixel_chunks(n, h * wd)
        if len(chunks) > 1:
            pparts = np.empty((len(chunks), o, c), dtype)

            def pblock(u0, u1, slot):
                for u in range(u0, u1):
                    i, p0, p1 = chunks[u]
                    np.matmul(gm[i, :, p0:p1], xm[i, :, p0:p1].T, out=pparts[u])

            parallel_for(len(chunks), 1, pblock, n * h * wd * c * o)
            return np.add.reduce(pparts, axis=0).reshape(o, c, 1, 1)
    nb = max(1, -(-n // 8))
    parts = np.empty((-(-n // nb), o, c), dtype)

    def block(a, b, slot):
        acc = parts[a // nb]
        np.matmul(gm[a], xm[a].T, out=acc)
        for i in range(a + 1, b):
            acc += gm[i] @ xm[i].T

    parallel_for(n, nb, block, n * h * wd * c * o)
    tot = parts[0] if len(parts) == 1 else np.add.reduce(parts, axis=0)
    return tot.reshape(o, c, 1, 1)


def _channel_step(c, n, least=_MIN_SPLIT_CHANNELS):
    """Channels per block when fewer than 8 images split over channels: about 8 blocks in
    all, at least ``least`` channels each, a multiple of 8 (from the shapes only, never the
    thread count: the results do not depend on it)."""
    chunks = max(1, min(-(-8 // max(n, 1)), c // least))
    per = -(-c // chunks)
    return -(-per // 8) * 8


def _strided_1x1(kh, kw, stride, padding):
    return kh == kw == 1 and stride != (1, 1) and not any(padding)


def _conv2d_impl(x, w, b=None, *, stride, padding, dilation, groups):
    dtype = _compute_dtype(x)
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    if _strided_1x1(kh, kw, stride, padding):
        # reads only every stride-th pixel: subsample first, so that the layout conversion
        # and the GEMM touch only those (measured 0.69 -> 0.2 ms for 32x16x32x32, stride 2)
        x = x[:, :, :: stride[0], :: stride[1]]
        return _conv2d_impl(
            x, w, b, stride=(1, 1), padding=padding, dilation=dilation, groups=groups
        )
    if _nchw_1x1(x, kh, kw, stride, padding, groups):
        res = _conv1x1_nchw(x, w, dtype, None if b is None else b.astype(dtype, copy=False))
        return res if res.dtype == x.dtype else res.astype(x.dtype)
    ho = conv_out_size(h, kh, stride[0], padding[0], padding[1], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[2], padding[3], dilation[1])
    kp = _planes_kernel("dw_planes_fwd", x, groups, w.shape[1], dtype)
    if kp is not None:  # depthwise, NCHW input: no transposed copy, NCHW output
        res = np.empty((n, o, ho, wo), dtype)
        w3 = _nchw(w[:, 0], dtype)
        work = n * ho * wo * o * kh * kw
        bias = _nchw(b.reshape(-1), dtype) if b is not None else w3.reshape(-1)
        _dw_planes_run(
            kp,
            n,
            groups,
            (_nchw(x, dtype), w3, res),
            o // groups,
            stride,
            padding,
            dilation,
            work,
            (bias, b is not None),
        )
        return res if res.dtype == x.dtype else res.astype(x.dtype)
    k3 = _dw3x3_nhwc_kernel("dw3x3_nhwc_fwd", x, w, stride, padding, dilation, groups, dtype)
    if k3 is not None:  # channels-last 3x3 'same' depthwise: no padded copy, bias folded in
        xt = x.transpose(0, 2, 3, 1)
        res = np.empty(xt.shape, dtype)
        w3 = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), dtype=dtype)  # (3, 3, C)
        bias = _nchw(b.reshape(-1), dtype) if b is not None else w3[0, 0]
        has_b = b is not None

        def dw_block(a, bb, slot):
            k3(xt, w3, res, a, bb, bias, has_b)

        parallel_for(n, max(1, -(-n // 8)), dw_block, n * ho * wo * o * 9)
        res = res.transpose(0, 3, 1, 2)
        return res if res.dtype == x.dtype else res.astype(x.dtype)
    out = np.empty((n, ho, wo, o), dtype)
    bias = None if b is None else b.astype(dtype, copy=False)
    if _dense_1x1(kh, kw, stride, padding, groups):
        # one GEMM on the (channels-last) input itself: no im2col copy
        xm = _nhwc(x, dtype, compiled=True).reshape(-1, x.shape[1])
        gemm(xm, _w_gemm(w, 0, o, dtype), out=out.reshape(-1, o))
    elif _implicit_path(x.shape[1], o, kh, kw, stride, padding, dilation, groups, dtype,
                        n * ho * wo) and _conv_gemm.forward_implicit(
        x, _w_gemm(w, 0, o, dtype), out, bias, (kh, kw), stride, padding,
    ) is not None:  # fmt: skip
        bias = None  # (added by the kernel)
    elif _gemm_kernel_path(
        x.shape[1], o, kh, kw, stride, padding, dilation, groups, dtype, n * ho * wo
    ) and _conv_gemm.forward(
        _nhwc(x, dtype, compiled=True), _w_gemm(w, 0, o, dtype), out, bias, (kh, kw),
        stride, dilation, padding, _workspace,
    ) is not None:  # fmt: skip
        bias = None  # (added per block by the kernel)
    elif _plane_path(w.shape[1], kh, kw, stride) and not (groups > 1 and w.shape[1] == 1):
        _conv_planes_fwd(x, w, out, padding, dilation, groups)
    else:
        cg = w.shape[1]
        if (
            any(padding)
            and _row_chunks(n, ho)[0] == 1
            and not (groups > 1 and cg == 1)
            and not _winograd.usable(kh, kw, stride, dilation, groups, cg * groups, o, n * ho * wo)
        ):
            _conv_nhwc_blocks(x, padding, w, out, stride, dilation, groups, bias, dtype)
            bias = None
        elif _conv_nhwc(_pad_nhwc(x, padding, dtype, "x"), w, out, stride, dilation, groups, bias):
            bias = None
    if bias is not None:
        out += bias
    res = out.transpose(0, 3, 1, 2)
    return res if res.dtype == x.dtype else res.astype(x.dtype)


# Winograd stays ahead of the compiled im2col + GEMM loops from this many channels (2-core
# AMD EPYC, 2 threads: 8x96x32x32 -> 96 6.5 vs 7.3 ms, 32x128x16x16 10.1 vs 10.0; at 64
# channels the compiled loops win: 32x64x8x8 0.97 vs 2.09 ms, 16x64x56x56 20.8 vs 24.7)
_WINOGRAD_MIN_CHANNELS = 96


def _dense_1x1(kh, kw, stride, padding, groups):
    """A 1x1, stride-1, unpadded, one-group convolution: of a channels-last input, one GEMM
    on the input matrix (32x64x16x16 -> 128 channels, 2 threads: 0.74 ms, against 0.87 ms in
    the pool's blocks and 1.46 ms through the im2col loops, whose gather would be a copy)."""
    return kh == kw == 1 and stride == (1, 1) and not any(padding) and groups == 1


def _implicit_path(c, o, kh, kw, stride, padding, dilation, groups, dtype, pixels):
    """Whether a convolution's forward runs as the implicit GEMM of
    :func:`ember.ops._conv_gemm.forward_implicit` (not a Winograd-sized 3x3 with many
    channels, which stays on Winograd). From the shapes only (never the thread count)."""
    if not _conv_gemm.implicit_usable(dtype, c, kw, groups, dilation, padding):
        return False
    return not (
        _winograd.usable(kh, kw, stride, dilation, groups, c, o, pixels)
        and min(c, o) >= _WINOGRAD_MIN_CHANNELS
    )


def _gemm_kernel_path(c, o, kh, kw, stride, padding, dilation, groups, dtype, pixels):
    """Whether a convolution runs through the compiled im2col + GEMM loops
    (:mod:`ember.ops._conv_gemm`): float32, one group, not a Winograd-sized 3x3 and not a
    few-channel input (whose "wide rows" gather from channel planes is faster: 32x3x32x32
    -> 16, 0.63 vs 0.82 ms). From the shapes only (never the thread count)."""
    if not _conv_gemm.usable(dtype, groups, padding) or _plane_path(c, kh, kw, stride):
        return False
    return not (
        _winograd.usable(kh, kw, stride, dilation, groups, c, o, pixels)
        and min(c, o) >= _WINOGRAD_MIN_CHANNELS
    )


def _conv2d_abstract(x, w, b=None, *, stride, padding, dilation, groups):
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(
            f"conv2d: expected 4-D input and weight, got input {x.shape} and weight {w.shape}"
        )
    if x.shape[1] != w.shape[1] * groups:
        raise ShapeError(
            f"conv2d: expected input with {w.shape[1] * groups} channels (weight "
            f"shape {w.shape}, groups {groups}), got input of shape {x.shape}"
        )
    ho = conv_out_size(x.shape[2], w.shape[2], stride[0], padding[0], padding[1], dilation[0])
    wo = conv_out_size(x.shape[3], w.shape[3], stride[1], padding[2], padding[3], dilation[1])
    if ho <= 0 or wo <= 0:
        raise ShapeError(
            f"conv2d: input {x.shape} (padding {padding}) is too small for kernel "
            f"{w.shape[2:]} with dilation {dilation}: output would be {ho}x{wo}"
        )
    return AbstractValue((x.shape[0], w.shape[0], ho, wo), x.dtype)


conv2d_p = Primitive(
    "conv2d", "opaque", impl=_conv2d_impl, abstract=_conv2d_abstract, save=SAVE_INPUTS
)


@defvjp(conv2d_p)
def _conv2d_vjp(g, out, x, w, b=None, *, stride, padding, dilation, groups):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    gb = g.sum((0, 2, 3)) if b is not None and getattr(b, "requires_grad", False) else None
    if (
        x.requires_grad
        and w.requires_grad
        and not _core._state.grad_enabled
        and _shared_backward_ok(x.shape, w.shape, g.shape, p, _compute_dtype(x._data))
    ):
        gx, gw = bind(conv2d_backward_p, (g, x, w), p)
        return gx, gw, gb
    with shared_layouts():  # g converted to NHWC once for both gradients
        gx = (
            bind(conv2d_grad_input_p, (g, w), dict(p, in_hw=tuple(x.shape[2:])))
            if x.requires_grad
            else None
        )
        gw = (
            bind(conv2d_grad_weight_p, (x, g), dict(p, kernel=tuple(w.shape[2:])))
            if w.requires_grad
            else None
        )
    return gx, gw, gb


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


conv2d_backward_p = Primitive(
    "conv2d_backward",
    "opaque",
    impl=_conv2d_backward_impl,
    abstract=_conv2d_backward_abstract,
    nondiff=True,
    n_out=2,
    save=SAVE_NONE,
)
defsample(conv2d_backward_p, _conv2d_backward_sample)


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


conv2d_grad_input_p = Primitive(
    "conv2d_grad_input",
    "opaque",
    impl=_conv2d_grad_input_impl,
    abstract=_conv2d_grad_input_abstract,
    save=SAVE_INPUTS,
)


@defvjp(conv2d_grad_input_p)
def _conv2d_grad_input_vjp(gg, out, g, w, *, stride, padding, dilation, groups, in_hw):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dg = bind(conv2d_p, (gg, w), p) if g.requires_grad else None
    dw = (
        bind(conv2d_grad_weight_p, (gg, g), dict(p, kernel=tuple(w.shape[2:])))
        if w.requires_grad
        else None
    )
    return dg, dw


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

        parallel_for(n, nb3, gw_block, n * ho * wo * o * 9)
        tot3 = np.add.reduce(parts3, axis=0).astype(dtype)  # (3, 3, C)
        gw = tot3.transpose(2, 0, 1).reshape(o, 1, 3, 3)
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
    xm = _nhwc(x, dtype, compiled=True)
    tot = _conv_gemm.grad_weight(xm, gm, kernel, stride, dilation, padding, _workspace)
    return None if tot is None else tot.reshape(kh, kw, c, o).transpose(3, 2, 0, 1)


def _conv2d_grad_weight_abstract(x, g, *, stride, padding, dilation, groups, kernel):
    return AbstractValue((g.shape[1], x.shape[1] // groups) + tuple(kernel), x.dtype)


conv2d_grad_weight_p = Primitive(
    "conv2d_grad_weight",
    "opaque",
    impl=_conv2d_grad_weight_impl,
    abstract=_conv2d_grad_weight_abstract,
    save=SAVE_INPUTS,
)


@defvjp(conv2d_grad_weight_p)
def _conv2d_grad_weight_vjp(gg, out, x, g, *, stride, padding, dilation, groups, kernel):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dx = (
        bind(conv2d_grad_input_p, (g, gg), dict(p, in_hw=tuple(x.shape[2:])))
        if x.requires_grad
        else None
    )
    dg = bind(conv2d_p, (x, gg), p) if g.requires_grad else None
    return dx, dg
