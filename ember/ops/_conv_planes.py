"""Convolutions with few input channels per group (a first layer: grayscale 5x5, RGB 3x3),
stride 1: the im2col gathered from zero-padded CNHW channel planes in "wide" rows, forward and
weight gradient. Called by :mod:`ember.ops.conv` (its ``_plane_path`` choice).

Example:
    >>> from ember.ops._conv_planes import _plane_path
    >>> _plane_path(1, 5, 5, (1, 1)), _plane_path(64, 3, 3, (1, 1))
    (True, False)
"""

from __future__ import annotations

import os

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._conv_util import _block_images, _workspace
from ._parallel import parallel_for

# -- few input channels: im2col over channel planes -----------------------------------------------
# With few input channels the NHWC im2col copies runs of only kw*C elements (5 for a grayscale
# 5x5 kernel, 9 for RGB 3x3). For stride 1 the im2col is gathered instead from CNHW planes in
# "wide" rows: the row of (c, i, j) for one image is the contiguous run of L = (Ho-1)*Wp + Wo
# elements of the padded plane starting at i*dh*Wp + j*dw, whose columns x >= Wo of each output
# row are junk (they read the next row). The GEMM runs over those wide rows and the junk columns
# are dropped (forward) or multiplied by zeros (weight gradient).
_PLANE_RUN = int(os.environ.get("EMBER_CONV_PLANE_RUN", "16"))


def _plane_path(cg, kh, kw, stride):
    return stride == (1, 1) and kh * kw > 1 and cg * kw < _PLANE_RUN


def _pad_planes(x, pad, dtype):
    """``x`` (NCHW shape, any strides) as zero-padded CNHW planes (C, N, Hp, Wp) in a
    workspace (negative padding crops)."""
    t, b, l, r = pad
    if min(pad) < 0:
        h, w = x.shape[2:]
        x = x[:, :, max(-t, 0) : h - max(-b, 0), max(-l, 0) : w - max(-r, 0)]
        t, b, l, r = (max(p, 0) for p in pad)
    n, c, h, w = x.shape
    out = _workspace((c, n, h + t + b, w + l + r), dtype, "planes")
    if t or b or l or r:
        out[...] = 0
    out[:, :, t : t + h, l : l + w] = x.transpose(1, 0, 2, 3)
    return out


def _plane_rows(xpl, c0, cg, kh, kw, dilation, ho, wo):
    """Zero-copy (cg, kh, kw, N, L) view of the wide rows of planes ``c0:c0+cg``."""
    _, n, hp, wp = xpl.shape
    isz = xpl.itemsize
    ln = (ho - 1) * wp + wo
    return as_strided(
        xpl[c0 : c0 + cg],
        (cg, kh, kw, n, ln),
        (n * hp * wp * isz, dilation[0] * wp * isz, dilation[1] * isz, hp * wp * isz, isz),
        writeable=False,
    )


def _plane_cols(rows, a, b):
    """The (cg*kh*kw, (b-a)*L) wide im2col matrix of images ``a:b`` (rows ordered (c, i, j))."""
    v = rows[:, :, :, a:b]
    cols = _workspace(v.shape, v.dtype, "plane-cols")
    np.copyto(cols, v)
    return cols.reshape(v.shape[0] * v.shape[1] * v.shape[2], -1)


def _wide_view(buf, nb, ho, wo, wp, og):
    """The valid (nb, Ho, Wo, og) pixels of a wide (nb*L, og) GEMM result or operand."""
    s0 = buf.strides[0]
    ln = (ho - 1) * wp + wo
    return as_strided(buf, (nb, ho, wo, og), (ln * s0, wp * s0, s0, buf.strides[1]))


def _few_channel_kernel(name, dtype, groups, o, wide):
    """``(kernel, scratch)`` for the compiled few-channel convolution loop ``name`` (one
    group, float32/float64; ``wide``: the length of an image's wide rows), or None."""
    from ._parallel import blas_loop_kernel

    if groups != 1 or dtype not in (np.float32, np.float64):
        return None
    found = blas_loop_kernel(name)  # (any parallel build: its sgemm address is unused)
    if found is None:
        return None
    kern, _, threads = found
    return kern, _workspace((threads, o, wide), dtype, "plane-acc")


def _conv_planes_fwd(x, w, out, padding, dilation, groups):
    n, ho, wo, o = out.shape
    cg, kh, kw = w.shape[1:]
    og = o // groups
    xpl = _pad_planes(x, padding, out.dtype)
    wide = (ho - 1) * xpl.shape[3] + wo
    found = _few_channel_kernel("conv_planes_fwd", out.dtype, groups, o, wide)
    if found is not None and out.flags.c_contiguous:
        kern, scratch = found
        kern(xpl, np.ascontiguousarray(w, dtype=out.dtype), out, *dilation, scratch)
        return
    wp = xpl.shape[3]
    ln = (ho - 1) * wp + wo
    rows = [_plane_rows(xpl, g * cg, cg, kh, kw, dilation, ho, wo) for g in range(groups)]
    wms = [
        np.ascontiguousarray(w[g * og : (g + 1) * og].reshape(og, -1).T, dtype=out.dtype)
        for g in range(groups)
    ]  # (cg*kh*kw, og), rows ordered (c, i, j)
    k = cg * kh * kw

    def block(a, b, slot):
        tmp = _workspace(((b - a) * ln, og), out.dtype, "plane-out")
        for g in range(groups):
            np.matmul(_plane_cols(rows[g], a, b).T, wms[g], out=tmp)
            dst = out[a:b, :, :, g * og : (g + 1) * og] if groups > 1 else out[a:b]
            np.copyto(dst, _wide_view(tmp, b - a, ho, wo, wp, og))

    parallel_for(n, _block_images(n, ln * k), block, n * ln * k * o)


def _conv_planes_grad_weight(x, gm, kernel, padding, dilation, groups, dtype):
    n, ho, wo, o = gm.shape
    kh, kw = kernel
    c = x.shape[1]
    cg, og = c // groups, o // groups
    xpl = _pad_planes(x, padding, dtype)
    wp = xpl.shape[3]
    ln = (ho - 1) * wp + wo
    found = _few_channel_kernel("conv_planes_grad_weight", np.dtype(dtype), groups, o, ln)
    if found is not None:
        kern, scratch = found
        parts = np.empty((n, o, c, kh, kw))  # float64: see the kernel
        kern(xpl, np.ascontiguousarray(gm, dtype=dtype), parts, *dilation, scratch)
        return np.add.reduce(parts, axis=0).astype(dtype)
    rows = [_plane_rows(xpl, g * cg, cg, kh, kw, dilation, ho, wo) for g in range(groups)]
    k = cg * kh * kw
    nb = _block_images(n, ln * k)
    parts = np.empty((-(-n // nb), groups, k, og), dtype)

    def block(a, b, slot):
        gwide = _workspace(((b - a) * ln, og), dtype, "plane-g")
        gwide[...] = 0
        gv = _wide_view(gwide, b - a, ho, wo, wp, og)
        for g in range(groups):
            np.copyto(gv, gm[a:b, :, :, g * og : (g + 1) * og] if groups > 1 else gm[a:b])
            np.matmul(_plane_cols(rows[g], a, b), gwide, out=parts[a // nb, g])

    # NOTE: (K, pixels) @ (pixels, og) with a small K x og output does not scale over threads
    # (two threads measured slower than one): such products stay on the calling thread.
    parallel_for(n, nb, block, n * ln * k * o if k * og >= 1024 else 0)
    tot = parts[0] if len(parts) == 1 else np.add.reduce(parts, axis=0)
    # (groups, cg, kh, kw, og) -> (groups, og, cg, kh, kw) = (O, cg, kh, kw)
    return tot.reshape(groups, cg, kh, kw, og).transpose(0, 4, 1, 2, 3).reshape(o, cg, kh, kw)
