"""The forward kernel of ``conv2d`` (:mod:`ember.ops.conv` declares the primitive).

The NHWC im2col + GEMM blocks, 1x1 convolutions of NCHW inputs (one compiled loop), the
Winograd / implicit-GEMM / packed-kernel path choices and the shape rule. Separate from the
primitives so each direction of the adjoint family reads on its own; the gradient kernels
reuse ``_w_gemm`` and the path choices from here.
"""

from __future__ import annotations

import numpy as np

from . import _conv_gemm, _winograd
from ._conv_depthwise import (
    _depthwise_fwd,
    _dw3x3_nhwc_kernel,
    _dw_nhwc_kernel,
    _dw_planes_run,
    _dw_rows_run,
    _dw_work,
    _nchw,
    _planes_kernel,
)
from ._conv_planes import _conv_planes_fwd, _plane_path
from ._conv_util import (
    _block_images,
    _cols,
    _compute_dtype,
    _gather,
    _nhwc,
    _pad_nhwc,
    _windows,
    _workspace,
    conv_out_size,
)
from ._core import AbstractValue, ShapeError
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._parallel import parallel_for


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

        parallel_for(n, max(1, -(-n // 8)), dw_block, _dw_work(n * ho * wo * o * 9, xt, res))
        res = res.transpose(0, 3, 1, 2)
        return res if res.dtype == x.dtype else res.astype(x.dtype)
    kn = _dw_nhwc_kernel("dw_nhwc_fwd", x, w, groups, dtype)
    if kn is not None:  # other channels-last depthwise convs (strided ones): read in place
        xt = x.transpose(0, 2, 3, 1)
        res = np.empty((n, ho, wo, o), dtype)
        wk = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0), dtype=dtype)  # (kh, kw, C)
        bias = _nchw(b.reshape(-1), dtype) if b is not None else wk[0, 0]
        tail = (*stride, padding[0], padding[2], *dilation, bias, b is not None)
        _dw_rows_run(kn, n * ho, ((xt, wk, res), tail), n * ho * wo * o * kh * kw)
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
