"""Convolution as im2col + GEMM in one compiled loop (float32; compiled by numba through
:mod:`ember.backends.jit`, run by its parallel build).

Each block of output rows (a few images, or some rows of one image) is gathered into an
im2col matrix in a per-thread scratch buffer that stays in L2 and multiplied right away by
OpenBLAS's ``cblas_sgemm`` (called by address, single-threaded:
:mod:`ember.backends.kernels_blas`). The blocks are a ``prange`` loop, so they run on numba's
threads with OpenMP's ~2-4 us fork and join instead of a hand-off per block to Python threads;
the gather copies runs of ``kw * C`` contiguous input elements and writes the zero padding
itself, so the padded copy of the input is never made. Measured on a 2-core AMD EPYC against
the pool-driven NumPy gather (2 threads, forward): 32x16x32x32 -> 16 channels 2.35 -> 1.36 ms,
8x64x32x32 -> 128 stride 2 2.19 -> 1.53 ms.

Blocks are fixed by the shapes (never by the thread count) and each output row is computed
by one GEMM call whatever thread runs it, so results are bitwise the same on any number of
threads. Layouts: inputs and outputs NHWC, C-contiguous; im2col columns ordered (i, j, c).
"""

import numpy as np

from .jit import inline_helpers
from .kernels_blas import NO_TRANS, TRANS, sgemm, sgemm_tiles
from .kernels_conv import _col2im
from .kernels_gemm import MC, NR, _gemm_block, _gemm_flat, _rows_of_panel  # packed micro-kernel

try:
    from numba import get_thread_id, prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range

    def get_thread_id():
        return 0


__all__ = [
    "conv_gemm_bwd",
    "conv_gemm_fwd",
    "conv_gemm_grad_input",
    "conv_gemm_grad_weight",
    "conv_implicit_fwd",
    "conv_implicit_grad_weight",
    "pad_nhwc",
]

_ZERO = np.float32(0.0)


def im2col_rows(x, n0, n1, y0, y1, kh, kw, sh, sw, dh, dw, pt, pl, wo, cols):
    """``cols`` (rows, kh*kw*C) = the im2col rows of output rows ``y0:y1`` of images
    ``n0:n1`` of NHWC ``x``, reading input pixel (y*sh - pt + i*dh, x*sw - pl + j*dw) for
    kernel offset (i, j); pixels outside the input read as zeros (padding)."""
    H = x.shape[1]
    W = x.shape[2]
    C = x.shape[3]
    xf = x.reshape(-1)
    K = kh * kw * C
    KC = kw * C
    cf = cols.reshape(-1)
    r = 0
    for n in range(n0, n1):
        for y in range(y0, y1):
            for i in range(kh):
                yy = y * sh - pt + i * dh
                q0 = r * K + i * KC
                if yy < 0 or yy >= H:
                    for xo in range(wo):
                        q = q0 + xo * K
                        cf[q : q + KC] = _ZERO
                    continue
                base = (n * H + yy) * W * C
                for xo in range(wo):
                    q = q0 + xo * K
                    x0 = xo * sw - pl
                    if dw == 1:  # the valid offsets j read one contiguous run of the row
                        ja = min(kw, max(0, -x0))
                        jb = max(ja, min(kw, W - x0))
                        if ja > 0:
                            cf[q : q + ja * C] = _ZERO
                        s = base + (x0 + ja) * C
                        cf[q + ja * C : q + jb * C] = xf[s : s + (jb - ja) * C]
                        if jb < kw:
                            cf[q + jb * C : q + KC] = _ZERO
                    else:
                        for j in range(kw):
                            xx = x0 + j * dw
                            if 0 <= xx < W:
                                s = base + xx * C
                                cf[q + j * C : q + (j + 1) * C] = xf[s : s + C]
                            else:
                                cf[q + j * C : q + (j + 1) * C] = _ZERO
            r += wo


def _unit_count(n, ho, nbi, rpc):
    """How many blocks: ``nbi`` whole images each, or ``rpc`` rows of one image."""
    if rpc >= ho:
        return (n + nbi - 1) // nbi
    return n * ((ho + rpc - 1) // rpc)


def _unit_rows(u, n, ho, nbi, rpc):
    """Block ``u``'s images ``n0:n1`` and output rows ``y0:y1``: ``nbi`` whole images per
    block when ``rpc >= ho``, else ``rpc`` rows of one image."""
    if rpc >= ho:
        n0 = u * nbi
        return n0, min(n, n0 + nbi), 0, ho
    nch = (ho + rpc - 1) // rpc
    img = u // nch
    y0 = (u % nch) * rpc
    return img, img + 1, y0, min(ho, y0 + rpc)


def pad_nhwc(x, xp, pt, pl):
    """``xp`` (N, Hp, Wp, C) = NHWC ``x`` (N, H, W, C) placed at row ``pt``, column ``pl``,
    zeros around it; one padded row per ``prange`` unit."""
    n = x.shape[0]
    h = x.shape[1]
    w = x.shape[2]
    hp = xp.shape[1]
    c = x.shape[3]
    for u in prange(n * hp):
        img = u // hp
        yp = u - img * hp
        dst = xp[img, yp].reshape(-1)
        y = yp - pt
        if y < 0 or y >= h:
            dst[:] = _ZERO
            continue
        dst[: pl * c] = _ZERO
        dst[pl * c : (pl + w) * c] = x[img, y].reshape(-1)
        dst[(pl + w) * c :] = _ZERO


def conv_implicit_fwd(xp, wpk, out, bias, has_bias, kh, kw, sh, sw):
    """``out`` (N, Ho, Wo, O) = the convolution of the padded NHWC input ``xp`` (N, Hp, Wp,
    C) with the weights packed per kernel row: ``wpk[i]`` = rows ``i * kw * C`` to ``(i +
    1) * kw * C`` of the (kh*kw*C, O) GEMM operand, in panels (+ ``bias`` when
    ``has_bias``). An implicit GEMM: for output row ``y`` and kernel row ``i`` the im2col
    rows are runs of ``kw * C`` contiguous input elements at a stride of ``sw * C``, which
    the micro-kernel reads in place (:func:`ember.backends.kernels_gemm._gemm_flat`), so no
    im2col matrix (kh * kw times the input) is written and read back. Each output row is
    computed the same way in any unit: results do not depend on the thread count."""
    n = out.shape[0]
    ho = out.shape[1]
    wo = out.shape[2]
    o = out.shape[3]
    hp = xp.shape[1]
    wp = xp.shape[2]
    c = xp.shape[3]
    k = kw * c
    xf = xp.reshape(-1)
    of = out.reshape(-1)
    per = max(1, (n * ho) // 64)  # output rows per unit: ~64 units
    edge_rows = MC if o % NR not in (0, 16) else 1  # (a partial panel's scratch tile)
    for u in prange((n * ho + per - 1) // per):
        edge = np.empty((edge_rows, NR), np.float32)
        for row in range(u * per, min(n * ho, (u + 1) * per)):
            img = row // ho
            y = row - img * ho
            coff = row * wo * o
            for i in range(kh):
                aoff = ((img * hp + y * sh + i) * wp) * c
                _gemm_flat(xf, aoff, sw * c, k, wpk[i], of, coff, o, wo, o,
                           0 if i == 0 else 1, edge)  # fmt: skip
            if has_bias:
                for r in range(wo):
                    q = coff + r * o
                    for j in range(o):
                        of[q + j] = of[q + j] + bias[j]


def conv_gemm_fwd(
    fptr, x, wm, out, bias, has_bias, kh, kw, sh, sw, dh, dw, pt, pl, nbi, rpc, scratch, tiles,
    packed, wpk,
):  # fmt: skip
    """``out`` (N, Ho, Wo, O) = the convolution of NHWC ``x`` (N, H, W, C) with ``wm``
    (kh*kw*C, O) (+ ``bias`` (O,) when ``has_bias``), padding ``pt``/``pl`` at the top/left
    (the bottom/right follow from the output size). Blocks: ``nbi`` images, or ``rpc``
    output rows of one image when ``rpc < Ho``; ``scratch`` (threads, block rows, K); a
    block's GEMM runs as ``tiles`` (rows, columns) of OpenBLAS's small-matrix kernels
    (:func:`ember.backends.kernels_blas.small_gemm_tiles`), or, when ``packed``, through
    Ember's micro-kernel on ``wpk``: ``wm`` in its 32-column panels
    (:mod:`ember.backends.kernels_gemm`)."""
    n = out.shape[0]
    ho = out.shape[1]
    wo = out.shape[2]
    o = out.shape[3]
    k = wm.shape[0]
    units = _unit_count(n, ho, nbi, rpc)
    of = out.reshape(-1)
    for u in prange(units):
        n0, n1, y0, y1 = _unit_rows(u, n, ho, nbi, rpc)
        cols = scratch[get_thread_id()]
        im2col_rows(x, n0, n1, y0, y1, kh, kw, sh, sw, dh, dw, pt, pl, wo, cols)
        m = (n1 - n0) * (y1 - y0) * wo
        r0 = (n0 * ho + y0) * wo
        dst = of[r0 * o :]
        if packed:
            _gemm_block(cols, wpk, dst[: m * o].reshape(m, o), 0, m, 0, wpk.shape[0], 0)
        else:
            sgemm_tiles(
                fptr, NO_TRANS, NO_TRANS, m, o, k, cols.ctypes.data, k, k * 4, wm.ctypes.data,
                o, 4, _ZERO, dst.ctypes.data, o, min(tiles[0], m), tiles[1],
            )  # fmt: skip
        if has_bias:
            for r in range(m):
                dst[r * o : (r + 1) * o] += bias


def conv_gemm_grad_weight(fptr, x, g, parts, kh, kw, sh, sw, dh, dw, pt, pl, nbi, rpc, scratch):
    """The weight gradient of the convolution of NHWC ``x`` whose NHWC output gradient is
    ``g`` (N, Ho, Wo, O): per block (as :func:`conv_gemm_fwd` splits the output),
    ``parts[u]`` (kh*kw*C, O) = the block's im2col^T @ its ``g`` rows; the caller sums
    ``parts`` over blocks (a fixed order)."""
    n = g.shape[0]
    ho = g.shape[1]
    wo = g.shape[2]
    o = g.shape[3]
    k = parts.shape[1]
    units = _unit_count(n, ho, nbi, rpc)
    gf = g.reshape(-1)
    for u in prange(units):
        n0, n1, y0, y1 = _unit_rows(u, n, ho, nbi, rpc)
        cols = scratch[get_thread_id()]
        im2col_rows(x, n0, n1, y0, y1, kh, kw, sh, sw, dh, dw, pt, pl, wo, cols)
        m = (n1 - n0) * (y1 - y0) * wo
        off = (n0 * ho + y0) * wo * o
        sgemm(
            fptr, TRANS, NO_TRANS, k, o, m,
            cols.ctypes.data, k, gf[off:].ctypes.data, o, parts[u].ctypes.data, o,
        )  # fmt: skip


def conv_implicit_grad_weight(xp, g, parts, kh, kw, sh, sw, rpu, bps):
    """The weight gradient of the convolution of the padded NHWC input ``xp`` (N, Hp, Wp, C)
    whose NHWC output gradient is ``g`` (N, Ho, Wo, O), without an im2col matrix:
    ``parts[u]`` (kh*kw*C, 16 for O <= 16, else ceil(O / NR) * NR) = the sum over output
    rows ``u * rpu`` to ``(u + 1) * rpu`` (of N*Ho) of, per kernel row ``i``, the rows' input
    runs transposed times the rows' gradient. For output row ``y`` and kernel row ``i`` the A
    operand (kw*C rows, Wo columns) is input row ``y * sh + i`` read in place: element (m, xo) at
    ``xo * sw * C + m`` (the micro-kernel's strided A); the gradient row is packed into
    panels in ``bps[thread]`` (ceil(O / NR) * Wo * NR). Units are fixed by the shapes and
    each adds its rows in order, so results do not depend on the thread count; the caller
    sums ``parts`` in unit order."""
    n = g.shape[0]
    ho = g.shape[1]
    wo = g.shape[2]
    o = g.shape[3]
    hp = xp.shape[1]
    wp = xp.shape[2]
    c = xp.shape[3]
    kwc = kw * c
    ldc = parts.shape[2]  # (16 when half: every column of parts is written)
    npan = (o + NR - 1) // NR
    half = o <= 16  # (16-column tiles: the panel's upper half is zeros)
    xpf = xp.reshape(-1)
    gf = g.reshape(-1)
    rows = n * ho
    for u in prange(parts.shape[0]):
        bp = bps[get_thread_id()]
        pf = parts[u].reshape(-1)
        r0 = u * rpu
        r1 = min(rows, r0 + rpu)
        for r in range(r0, r1):
            img = r // ho
            y = r - img * ho
            for p in range(npan):  # the gradient row in panels (npan, Wo, NR)
                j0 = p * NR
                w = min(NR, o - j0)
                for xo in range(wo):
                    src = (r * wo + xo) * o + j0
                    dst = (p * wo + xo) * NR
                    bp[dst : dst + w] = gf[src : src + w]
                    bp[dst + w : dst + NR] = _ZERO
            acc = 0 if r == r0 else 1
            for i in range(kh):
                a0 = (img * hp + y * sh + i) * wp * c
                for p in range(npan):
                    _rows_of_panel(xpf[a0:], 1, sw * c, bp, p * wo * NR, wo, pf,
                                   i * kwc * ldc + p * NR, ldc, acc, 0, kwc, half)  # fmt: skip


def conv_gemm_grad_input(g, wpk, gxp, kh, kw, sh, sw, dh, dw, nbi, scratch):
    """``gxp`` (N, Hp, Wp, C; zeroed) += the transposed convolution of the C-contiguous NHWC
    output gradient ``g`` (N, Ho, Wo, O) with the (O, kh*kw*C) weight matrix packed in panels
    as ``wpk`` (columns ordered (i, j, c)): per block of ``nbi`` whole images, the block's
    columns ``g rows @ W`` on the packed micro-kernel into this thread's ``scratch``, then
    scattered into the block's own images (col2im, pixels in order). The GEMM, the scatter
    and the blocks all run on numba's threads (no hand-off to Ember's pool between kernels),
    and each block writes only its own images: results do not depend on the thread count."""
    n = g.shape[0]
    ho = g.shape[1]
    wo = g.shape[2]
    o = g.shape[3]
    npan = wpk.shape[0]
    g2 = g.reshape(n * ho * wo, o)
    per = ho * wo
    for u in prange((n + nbi - 1) // nbi):
        n0 = u * nbi
        n1 = min(n, n0 + nbi)
        rows = (n1 - n0) * per
        cols = scratch[get_thread_id()][:rows]
        _gemm_block(g2[n0 * per : n1 * per], wpk, cols, 0, rows, 0, npan, 0)
        _col2im(cols, gxp[n0:n1], 0, 0, ho, wo, kh, kw, sh, sw, dh, dw)


def conv_gemm_bwd(
    fptr, g, wf, xm, gx, parts, kh, kw, dh, dw, pt, pl, nbi, rpc, scratch, tiles, packed, wpk
):
    """Both gradients of a stride-1 convolution from one im2col of its output gradient:
    ``g`` (N, Ho, Wo, O) NHWC is gathered at the input positions (padding ``pt``/``pl``, the
    flipped kernel's), then per block ``gx`` (N, H, W, C) rows = cols @ ``wf`` (kh*kw*O, C,
    the flipped kernel; as ``tiles``, or packed as ``wpk``: see :func:`conv_gemm_fwd`) and
    ``parts[u]``
    (kh*kw*O, C) = cols^T @ the block's ``xm`` rows (the input, NHWC); the caller sums
    ``parts`` over blocks (a fixed order)."""
    n = gx.shape[0]
    h = gx.shape[1]
    w = gx.shape[2]
    c = gx.shape[3]
    k = wf.shape[0]
    units = _unit_count(n, h, nbi, rpc)
    gxf = gx.reshape(-1)
    xf = xm.reshape(-1)
    for u in prange(units):
        n0, n1, y0, y1 = _unit_rows(u, n, h, nbi, rpc)
        cols = scratch[get_thread_id()]
        im2col_rows(g, n0, n1, y0, y1, kh, kw, 1, 1, dh, dw, pt, pl, w, cols)
        m = (n1 - n0) * (y1 - y0) * w
        off = (n0 * h + y0) * w * c
        if packed:
            gxb = gxf[off : off + m * c].reshape(m, c)
            _gemm_block(cols, wpk, gxb, 0, m, 0, wpk.shape[0], 0)
        else:
            sgemm_tiles(
                fptr, NO_TRANS, NO_TRANS, m, c, k, cols.ctypes.data, k, k * 4, wf.ctypes.data,
                c, 4, _ZERO, gxf[off:].ctypes.data, c, min(tiles[0], m), tiles[1],
            )  # fmt: skip
        sgemm(
            fptr, TRANS, NO_TRANS, k, c, m,
            cols.ctypes.data, k, xf[off:].ctypes.data, c, parts[u].ctypes.data, c,
        )  # fmt: skip


inline_helpers(globals(), ("im2col_rows", "_unit_count", "_unit_rows"), boundscheck=False)
