"""Loop kernels for :mod:`ember.backends.jit` (compiled by numba when the ``[jit]`` extra is
installed). Each is plain Python over NumPy arrays, valid for float32 and float64, and writes
its results into arrays it is given; callers split the work into blocks of rows and run the
blocks on Ember's threads. Sums accumulate in float64.
"""

import numpy as np

try:  # some outer loops are prange: jit.get_parallel splits them over numba's threads
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range

__all__ = [
    "adam_step_blocks",
    "avg_pool2x2_planes",
    "avg_pool_tiled_grad",
    "depthwise_fwd",
    "depthwise_grad_input",
    "depthwise_grad_weight",
    "lstm_bwd_cell",
    "lstm_fwd_gates",
    "max_pool2x2_nhwc",
    "max_pool2x2_planes",
    "max_pool2x2_scatter_nhwc",
    "max_pool2x2_scatter_planes",
    "max_pool_nhwc",
    "max_pool_scatter_nhwc",
    "nchw_to_nhwc",
    "nchw_to_nhwc_padded",
    "relu",
    "relu_blocks",
    "relu_grad",
    "relu_grad_blocks",
]


# -- elementwise on flat (same-layout) buffers -----------------------------------------------------
def relu(x, out):
    """out = max(x, 0); NaN stays NaN (as PyTorch)."""
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        out[i] = v if (v > zero or v != v) else zero  # noqa: PLR0124  (v != v: NaN)


def relu_grad(g, y, out):
    """out = 0 where y <= 0 else g (y: the ReLU output; a NaN output passes g, as PyTorch)."""
    zero = g.dtype.type(0)
    for i in range(g.size):
        out[i] = zero if y[i] <= zero else g[i]


_FLAT_BLOCK = 1 << 13  # elements per prange block of the flat kernels below (see kernels_ew)


def relu_blocks(x, out):
    """:func:`relu` over blocks of a flat array, the blocks a ``prange`` loop (exact: any
    split gives the same bits)."""
    n = x.size
    for blk in prange((n + _FLAT_BLOCK - 1) // _FLAT_BLOCK):
        lo = blk * _FLAT_BLOCK
        hi = min(n, lo + _FLAT_BLOCK)
        xb, ob = x[lo:hi], out[lo:hi]
        zero = x.dtype.type(0)
        for i in range(hi - lo):
            v = xb[i]
            ob[i] = v if (v > zero or v != v) else zero  # noqa: PLR0124  (v != v: NaN)


def relu_grad_blocks(g, y, out):
    """:func:`relu_grad` over blocks of flat arrays, the blocks a ``prange`` loop."""
    n = g.size
    for blk in prange((n + _FLAT_BLOCK - 1) // _FLAT_BLOCK):
        lo = blk * _FLAT_BLOCK
        hi = min(n, lo + _FLAT_BLOCK)
        gb, yb, ob = g[lo:hi], y[lo:hi], out[lo:hi]
        zero = g.dtype.type(0)
        for i in range(hi - lo):
            ob[i] = zero if yb[i] <= zero else gb[i]


# -- 2x2 / stride-2 max pooling on channels-last images (N, H, W, C) -------------------------------
# Written for the common case only: the straight-line body over the channel loop vectorizes
# (a general window loop inside it measured 6-20x slower than NumPy's strided views).
def max_pool2x2_nhwc(x, out, idx):
    """out = max of each 2x2 window, idx = its offset (0..3): the first maximum in scan order,
    or the last NaN (NaN propagates), as PyTorch."""
    n = x.shape[0]
    c = x.shape[3]
    ho, wo = out.shape[1], out.shape[2]
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for k in range(c):
                    best = x[b, 2 * i, 2 * j, k]
                    bi = 0
                    v = x[b, 2 * i, 2 * j + 1, k]
                    if v > best or v != v:  # noqa: PLR0124  (NaN; np.isnan is 6x slower)
                        best = v
                        bi = 1
                    v = x[b, 2 * i + 1, 2 * j, k]
                    if v > best or v != v:  # noqa: PLR0124
                        best = v
                        bi = 2
                    v = x[b, 2 * i + 1, 2 * j + 1, k]
                    if v > best or v != v:  # noqa: PLR0124
                        best = v
                        bi = 3
                    out[b, i, j, k] = best
                    idx[b, i, j, k] = bi


def max_pool2x2_scatter_nhwc(g, idx, gx):
    """gx (N, H, W, C): each 2x2 window gets g at its argmax and 0 elsewhere (rows/columns
    past 2*Ho, 2*Wo are left to the caller)."""
    n = g.shape[0]
    c = g.shape[3]
    ho, wo = g.shape[1], g.shape[2]
    zero = g.dtype.type(0)
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for k in range(c):
                    v = g[b, i, j, k]
                    o = idx[b, i, j, k]
                    gx[b, 2 * i, 2 * j, k] = v if o == 0 else zero
                    gx[b, 2 * i, 2 * j + 1, k] = v if o == 1 else zero
                    gx[b, 2 * i + 1, 2 * j, k] = v if o == 2 else zero
                    gx[b, 2 * i + 1, 2 * j + 1, k] = v if o == 3 else zero


# The same two kernels on NCHW planes (P = N * C, H, W): a contiguous NCHW input needs no
# transposed copy, and its gradient comes back NCHW (no transposed copy at the leaf either).
def avg_pool2x2_planes(x, out):
    """out[p, i, j] = the mean of the 2x2 window at (2i, 2j) of plane p, summed in the
    NumPy path's order (row by row) and divided by 4."""
    ho, wo = out.shape[1], out.shape[2]
    for p in range(x.shape[0]):
        for i in range(ho):
            r0 = x[p, 2 * i]
            r1 = x[p, 2 * i + 1]
            o = out[p, i]
            for j in range(wo):
                s = r0[2 * j] + r0[2 * j + 1]
                s += r1[2 * j]
                s += r1[2 * j + 1]
                o[j] = s / 4


def max_pool2x2_planes(x, out, idx):
    """out[p, i, j] = max of the 2x2 window at (2i, 2j) of plane p; idx its offset (0..3):
    the first maximum in scan order, or the last NaN, as PyTorch."""
    ho, wo = out.shape[1], out.shape[2]
    for p in range(x.shape[0]):
        for i in range(ho):
            r0 = x[p, 2 * i]
            r1 = x[p, 2 * i + 1]
            o = out[p, i]
            ix = idx[p, i]
            for j in range(wo):
                best = r0[2 * j]
                bi = 0
                v = r0[2 * j + 1]
                if v > best or v != v:  # noqa: PLR0124  (NaN)
                    best = v
                    bi = 1
                v = r1[2 * j]
                if v > best or v != v:  # noqa: PLR0124
                    best = v
                    bi = 2
                v = r1[2 * j + 1]
                if v > best or v != v:  # noqa: PLR0124
                    best = v
                    bi = 3
                o[j] = best
                ix[j] = bi


def max_pool2x2_scatter_planes(g, idx, gx):
    """gx (P, H, W): each 2x2 window gets g at its argmax and 0 elsewhere (rows/columns past
    2*Ho, 2*Wo are left to the caller)."""
    ho, wo = g.shape[1], g.shape[2]
    zero = g.dtype.type(0)
    for p in range(g.shape[0]):
        for i in range(ho):
            gi = g[p, i]
            ii = idx[p, i]
            r0 = gx[p, 2 * i]
            r1 = gx[p, 2 * i + 1]
            for j in range(wo):
                v = gi[j]
                o = ii[j]
                r0[2 * j] = v if o == 0 else zero
                r0[2 * j + 1] = v if o == 1 else zero
                r1[2 * j] = v if o == 2 else zero
                r1[2 * j + 1] = v if o == 3 else zero


# -- optimizer updates (flat, contiguous, in place) ------------------------------------------------
def adam_step_blocks(p, g, m, v, w1, b2, c2, step_size, bc2_sqrt, eps, wd, decay, neg):
    """One Adam step in place on flat arrays, in the order of PyTorch's float32 kernels:
    g' = (-g if neg else g) + wd * p; m += w1 * (g' - m); v = v * b2 + c2 * g' * g';
    p = p * decay - step_size * m / (sqrt(v) / bc2_sqrt + eps), where ``decay`` is AdamW's
    decoupled weight decay 1 - lr * weight_decay (1: none; PyTorch multiplies p by it first,
    as its own pass, with the same rounding). The blocks of 8192 elements are a ``prange``
    loop: each element is updated on its own, so the serial build and the parallel one on any
    thread count give the same bits, and a large parameter's update (seven arrays' worth of
    memory) runs on every core (2-core AMD EPYC, us per step, one thread -> two: 1M elements
    434 -> 214, 3M 1392 -> 735)."""
    n = p.size
    for blk in prange((n + _FLAT_BLOCK - 1) // _FLAT_BLOCK):
        lo = blk * _FLAT_BLOCK
        hi = min(n, lo + _FLAT_BLOCK)
        pb, gb, mb, vb = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        for i in range(hi - lo):
            gi = -gb[i] if neg else gb[i]
            pi = pb[i]
            if wd != 0:
                gi = gi + wd * pi
            if decay != 1:
                pi = pi * decay
            mi = mb[i] + w1 * (gi - mb[i])
            vi = vb[i] * b2 + c2 * gi * gi
            mb[i] = mi
            vb[i] = vi
            pb[i] = pi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))


# -- general max pooling on channels-last images (N, H, W, C), many channels -----------------------
# Window loops outside, channel loop inside: the channel loop vectorizes (worth it from ~16
# channels; fewer channels use NumPy or the 2x2 kernel above).
def max_pool_nhwc(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    """out[n, i, j, c] = max over the window of output pixel (i, j) (padding never wins),
    idx = the window offset a*kw + e of the maximum: the first in scan order, or the last
    NaN (NaN propagates), as PyTorch. A window of -inf only gives the offset of its first
    position inside the image (PyTorch's); one entirely in padding gives -inf, index 0."""
    n, h, w, c = x.shape
    ho, wo = out.shape[1], out.shape[2]
    ninf = x.dtype.type(-np.inf)
    for b in prange(n):
        for i in range(ho):
            a0 = 0
            while a0 < kh and i * sh - ph + a0 * dh < 0:
                a0 += 1
            for j in range(wo):
                e0 = 0
                while e0 < kw and j * sw - pw + e0 * dw < 0:
                    e0 += 1
                off0 = a0 * kw + e0 if a0 < kh and e0 < kw else 0
                for k in range(c):
                    out[b, i, j, k] = ninf
                    idx[b, i, j, k] = off0
                for a in range(kh):
                    r = i * sh - ph + a * dh
                    if r < 0 or r >= h:
                        continue
                    for e in range(kw):
                        q = j * sw - pw + e * dw
                        if q < 0 or q >= w:
                            continue
                        off = a * kw + e
                        for k in range(c):
                            v = x[b, r, q, k]
                            if v > out[b, i, j, k] or v != v:  # noqa: PLR0124  (NaN check)
                                out[b, i, j, k] = v
                                idx[b, i, j, k] = off


def avg_pool_tiled_grad(g, out, kh, kw, div):
    """out (N, C, Ho*kh, Wo*kw) = each value of g (N, C, Ho, Wo; any strides) divided by
    ``div``, spread over its kh x kw window (an average pool whose windows tile the input).
    NumPy's broadcast copy of the same ran its innermost loop over the kw = 2 columns of a
    window: ~2 ms for a (16, 64, 32, 32) gradient."""
    n, c, ho, wo = g.shape
    for q in prange(n * c):
        b = q // c
        k = q - b * c
        for i in range(ho):
            gr = g[b, k, i]
            for a in range(kh):
                orow = out[b, k, i * kh + a]
                for j in range(wo):
                    v = gr[j] / div
                    for e in range(kw):
                        orow[j * kw + e] = v


def max_pool_scatter_nhwc(g, idx, gx, kw, sh, sw, ph, pw, dh, dw):
    """gx (zeroed, (N, H, W, C)) += g at the input position each window's maximum came from."""
    n, ho, wo, c = g.shape
    for b in prange(n):
        for i in range(ho):
            for j in range(wo):
                for k in range(c):
                    off = idx[b, i, j, k]
                    r = i * sh - ph + (off // kw) * dh
                    q = j * sw - pw + (off % kw) * dw
                    gx[b, r, q, k] += g[b, i, j, k]


# -- NCHW -> channels-last (NHWC) -----------------------------------------------------------
# NumPy's transposed copy reads channel planes 4 KiB apart (32x32 float32 images) at addresses
# that share cache sets: a (16, 64, 32, 32) copy took 2.9-3.1 ms. These loops read one image
# row of one channel at a time (unit stride) and write it into the channels-last row at a
# stride of C, one (image, row) pair per prange unit. On 2 Xeon threads: (8, 64, 32, 32)
# 0.15 ms (0.21 with the earlier loop over 16-pixel tiles, 0.17 for NumPy's plain copy of the
# same bytes), (32, 128, 16, 16) 0.33 ms (1.16), (4, 3, 224, 224) 0.13 ms (NumPy 0.69).
def nchw_to_nhwc(x, out):
    """out[b, i, j, k] = x[b, k, i, j] for x (N, C, H, W) and out (N, H, W, C), any strides."""
    n, c, h, w = x.shape
    for bi in prange(n * h):
        b = bi // h
        i = bi - b * h
        orow = out[b, i]
        for k in range(c):
            xr = x[b, k, i]
            for j in range(w):
                orow[j, k] = xr[j]


# -- transposed copies --------------------------------------------------------------------
# NumPy copies a transposed matrix in the destination's order, reading one source column per
# output row: with source rows a multiple of 4 KiB apart those reads share cache sets (a
# (1024, 2048) float32 matrix's transpose: 10.9 ms, PyTorch 1.9). Here each output row takes
# 8 source rows at a time (8 unit-stride read streams), in blocks of 256 output rows split over
# numba's threads (one core, ms, NumPy / this / PyTorch: (2048, 1024) 6.8 / 2.1 / 1.6,
# (4096, 4096) 130 / 22 / 71, (256, 1024) 0.29 / 0.21 / 0.15, (1000, 2000) 1.9 / 1.7 / 1.7).
def transpose_rows(src, out):
    """out[i, j] = src[j, i] for ``src`` (C, R) with unit-stride rows and ``out`` (R, C)."""
    c, r = src.shape
    for b in prange((r + 255) // 256):
        i0 = b * 256
        i1 = min(i0 + 256, r)
        for j0 in range(0, c, 8):
            j1 = min(j0 + 8, c)
            for i in range(i0, i1):
                orow = out[i]
                for j in range(j0, j1):
                    orow[j] = src[j, i]


def nchw_to_nhwc_padded(x, xp, pt, pl):
    """``xp`` (N, Hp, Wp, C; C-contiguous) = NCHW ``x`` transposed to channels-last and placed
    at row ``pt``, column ``pl``, zeros around it: the padded input of a convolution in one
    pass (one padded row per prange unit) instead of a transposed copy and a padded copy."""
    n, c, h, w = x.shape
    hp = xp.shape[1]
    for u in prange(n * hp):
        b = u // hp
        yp = u - b * hp
        dst = xp[b, yp].reshape(-1)
        y = yp - pt
        if y < 0 or y >= h:
            dst[:] = 0
            continue
        dst[: pl * c] = 0
        dst[(pl + w) * c :] = 0
        base = pl * c
        for k in range(c):
            xr = x[b, k, y]
            for j in range(w):
                dst[base + j * c + k] = xr[j]


# -- depthwise convolution on padded channels-last images (one output channel per input) -----------
def depthwise_fwd(xp, w, out, sh, sw, dh, dw):
    """out[n, i, j, c] = sum_{a, e} xp[n, i*sh + a*dh, j*sw + e*dw, c] * w[a, e, c]."""
    n, ho, wo, c = out.shape
    kh, kw = w.shape[0], w.shape[1]
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for k in range(c):
                    out[b, i, j, k] = 0
                for a in range(kh):
                    r = i * sh + a * dh
                    for e in range(kw):
                        q = j * sw + e * dw
                        for k in range(c):
                            out[b, i, j, k] += xp[b, r, q, k] * w[a, e, k]


def depthwise_grad_input(g, w, gxp, sh, sw, dh, dw):
    """gxp (zeroed, padded (N, Hp, Wp, C)) += the transposed depthwise conv of g."""
    n, ho, wo, c = g.shape
    kh, kw = w.shape[0], w.shape[1]
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    r = i * sh + a * dh
                    for e in range(kw):
                        q = j * sw + e * dw
                        for k in range(c):
                            gxp[b, r, q, k] += g[b, i, j, k] * w[a, e, k]


def depthwise_grad_weight(xp, g, gw, sh, sw, dh, dw):
    """gw[a, e, c] = sum over images and pixels of xp[n, i*sh + a*dh, j*sw + e*dw, c] *
    g[n, i, j, c] (float64 accumulators)."""
    n, ho, wo, c = g.shape
    kh, kw = gw.shape[0], gw.shape[1]
    for a in range(kh):
        for e in range(kw):
            for k in range(c):
                gw[a, e, k] = 0.0
    for b in range(n):
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    r = i * sh + a * dh
                    for e in range(kw):
                        q = j * sw + e * dw
                        for k in range(c):
                            gw[a, e, k] += np.float64(xp[b, r, q, k]) * g[b, i, j, k]


# -- LSTM ------------------------------------------------------------------------------------------
def lstm_bwd_cell(a, tc, c_prev, g_h, g_c, has_gc, dh, dc, d):
    """One reverse step of the LSTM recurrence in the transposed layout (states (H, B)).
    ``a`` (4H, B): gate activations i, f, o (sigmoid) and g (tanh); ``tc`` = tanh(c_t).
    On entry ``dh``/``dc`` hold the gradients flowing back from step t+1; ``g_h`` (and
    ``g_c`` if ``has_gc``) the gradients of this step's outputs. Writes the gate
    pre-activation gradients, in PyTorch's order i, f, g, o, to ``d`` and the cell gradient
    for step t-1 to ``dc`` (the caller then sets dh = W_hh^T d). All arrays C-contiguous
    (strided ones keep LLVM from vectorizing the loop)."""
    h, b = tc.shape
    one = tc.dtype.type(1)
    for r in range(h):
        for k in range(b):
            dhv = dh[r, k] + g_h[r, k]
            tcv = tc[r, k]
            iv = a[r, k]
            fv = a[h + r, k]
            ov = a[2 * h + r, k]
            gv = a[3 * h + r, k]
            dov = dhv * tcv
            dcv = dc[r, k] + (dhv - dov * tcv) * ov
            if has_gc:
                dcv = dcv + g_c[r, k]
            di = dcv * gv * ((one - iv) * iv)
            df = dcv * c_prev[r, k] * ((one - fv) * fv)
            dg = dcv * iv * (one - gv * gv)
            do = dov * ((one - ov) * ov)
            dc[r, k] = dcv * fv
            d[r, k] = di
            d[h + r, k] = df
            d[2 * h + r, k] = dg
            d[3 * h + r, k] = do


def lstm_fwd_gates(a, c_prev, c_new):
    """After tanh of the step's gate pre-activations ``a`` (4H, B; rows i, f, o pre-scaled by
    1/2 so that sigmoid(x) = tanh(x/2)/2 + 1/2): turn rows i, f, o into sigmoids in place and
    write c_new = f * c_prev + i * g. (tanh itself stays in NumPy: numba's is ~70x slower.)"""
    h, b = c_prev.shape
    half = a.dtype.type(0.5)
    for r in range(h):
        for k in range(b):
            i = a[r, k] * half + half
            f = a[h + r, k] * half + half
            a[r, k] = i
            a[h + r, k] = f
            a[2 * h + r, k] = a[2 * h + r, k] * half + half
            c_new[r, k] = f * c_prev[r, k] + i * a[3 * h + r, k]
