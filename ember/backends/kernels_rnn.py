"""The LSTM recurrence as one compiled loop (float32; compiled by numba through
:mod:`ember.backends.jit`, run by its parallel build).

A recurrent step is too small to split by handing blocks to Python threads (a (1024, 256) @
(256, 32) GEMM and a (256, 32) cell update: ~0.1-0.2 ms), and a per-step Python loop adds
~10 NumPy calls per step. Here the whole loop over time runs in one kernel: each step is a
``prange`` over fixed blocks of hidden units (OpenMP's ~2-4 us fork and join is the step's
barrier), and each block does its own GEMMs through OpenBLAS's ``cblas_sgemm`` (called by
address, single-threaded, in tiles its small-matrix kernels run without packing the weight
every step: :func:`ember.backends.kernels_blas.step_tiles`) and the cell arithmetic for its
units. The blocks are fixed by the hidden size, never by the thread count, so results are
bitwise the same on any number of threads.

Layouts are batch-major, as PyTorch's: states (B, H) per step, so the layer's outputs need
no transposes; gate columns in the block order of :func:`lstm_fwd_loop`.
"""

import numpy as np

from .kernels_blas import NO_TRANS, sgemm_tiles
from .kernels_ew import _sigmoid, _tanh  # float32, plain arithmetic (they vectorize)
from .kernels_gemm import _gemm_block  # the packed micro-kernel (Intel AVX-512)

try:
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range

__all__ = ["lstm_bwd_loop", "lstm_fwd_loop"]

_F = np.float32
_ONE, _ZERO = _F(1.0), _F(0.0)


def lstm_fwd_loop(
    fptr, wt, wxt, xs, h0, c0, hs, cs, acts, scratch, bounds, tiles, tiles_x, reverse,
    packed, wpk, wxpk,
):  # fmt: skip
    """The forward recurrence of one LSTM layer (float32), batch-major: states are (B, H).

    Gate columns are in *block order*: block ``k`` (units ``bounds[k]:bounds[k+1]``) holds
    the columns i, f, g, o of its units in turn, so each block's gates are one contiguous run
    of a row and its GEMM output a column block. ``wt`` (H, 4H): W_hh^T, columns in block
    order; ``wxt`` (In + 1, 4H): [W_ih | b]^T likewise (the bias as a last input row);
    ``xs`` (T, B, In + 1): the inputs with a column of ones (a step's input projection and
    bias are one GEMM added to the recurrent one: no (T, B, 4H) array of pre-activations is
    written and read back); ``h0``, ``c0`` (B, H). Writes ``hs``, ``cs`` (T, B, H) and
    ``acts`` (T, B, 4H): the gate values (sigmoid; tanh for g) in block order. ``scratch``
    (B, 4H): a step's gate pre-activations. The GEMMs run as tiles of ``tiles`` /
    ``tiles_x`` = (rows, columns) (:func:`ember.backends.kernels_blas.step_tiles`), or, when
    ``packed``, through Ember's micro-kernel on ``wpk`` / ``wxpk`` (nblk, panels, K, 32): each
    block's columns of ``wt`` / ``wxt`` packed (:mod:`ember.backends.kernels_gemm`)."""
    T = hs.shape[0]
    B = hs.shape[1]
    H = wt.shape[0]
    G = 4 * H
    nx = wxt.shape[0]
    nblk = bounds.shape[0] - 1
    for s in range(T):
        t = T - 1 - s if reverse else s
        tp = t + 1 if reverse else t - 1
        hp = h0 if s == 0 else hs[tp]
        cp = c0 if s == 0 else cs[tp]
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            hb = j1 - j0
            g0 = 4 * j0
            if packed:
                zb = scratch[:, g0 : g0 + 4 * hb]
                npan = (4 * hb + 31) // 32
                _gemm_block(hp, wpk[blk], zb, 0, B, 0, npan, 0)
                _gemm_block(xs[t], wxpk[blk], zb, 0, B, 0, npan, 1)
            else:
                zaddr = scratch.ctypes.data + g0 * 4
                sgemm_tiles(
                    fptr, NO_TRANS, NO_TRANS, B, 4 * hb, H, hp.ctypes.data, H, H * 4,
                    wt.ctypes.data + g0 * 4, G, 4, _ZERO, zaddr, G, tiles[0], tiles[1],
                )  # fmt: skip
                sgemm_tiles(
                    fptr, NO_TRANS, NO_TRANS, B, 4 * hb, nx, xs[t].ctypes.data, nx, nx * 4,
                    wxt.ctypes.data + g0 * 4, G, 4, _ONE, zaddr, G, tiles_x[0], tiles_x[1],
                )  # fmt: skip
            for b in range(B):
                z = scratch[b, g0 : g0 + 4 * hb]
                a = acts[t, b, g0 : g0 + 4 * hb]
                cpu = cp[b, j0:j1]
                cn = cs[t, b, j0:j1]
                hn = hs[t, b, j0:j1]
                for r in range(hb):
                    iv = _sigmoid(z[r])
                    fv = _sigmoid(z[hb + r])
                    gv = _tanh(z[2 * hb + r])
                    ov = _sigmoid(z[3 * hb + r])
                    a[r] = iv
                    a[hb + r] = fv
                    a[2 * hb + r] = gv
                    a[3 * hb + r] = ov
                    c = fv * cpu[r] + iv * gv
                    cn[r] = c
                    hn[r] = ov * _tanh(c)


def lstm_bwd_loop(
    fptr, wb, acts, cs, c0, g_hs, g_cs, has_gc, dG, dh, dc, bounds, tiles, reverse, packed, wpk
):
    """The reverse recurrence of one LSTM layer (float32), batch-major: for each step (last
    first), the cell's gradients for every unit block, then ``dh = d @ W_hh`` for every
    block of units.

    Layouts as :func:`lstm_fwd_loop` writes them: ``wb`` (4H, H): W_hh, rows in block order;
    ``acts`` (T, B, 4H); ``cs``, ``g_hs``, ``g_cs`` (T, B, H) (``g_cs`` read only when
    ``has_gc``; tanh(cs) is recomputed here, as the forward computed it); ``c0`` (B, H).
    Writes the gate pre-activation gradients
    ``dG`` (T, B, 4H; block order: a step's rows are the next GEMM's operand as they are)
    and leaves the gradients of ``h0``/``c0`` in ``dh``/``dc`` (B, H; zero on entry). The
    ``dh`` GEMMs run as tiles of ``tiles``, or, when ``packed``, through Ember's micro-kernel
    on ``wpk`` (nblk, panels, 4H, 32): each block's columns of ``wb`` packed."""
    T = acts.shape[0]
    B = acts.shape[1]
    H = wb.shape[1]
    G = 4 * H
    nblk = bounds.shape[0] - 1
    one = _ONE
    # one parallel region per step: each block first finishes the previous step's dh for its
    # own units (dh[:, j0:j1] = dG[t'] @ W_hh[:, j0:j1], which needs every block's dG[t']:
    # complete when the previous region ended), then runs its cell gradients, which read only
    # those units of dh (T + 1 fork-joins instead of 2T)
    for s in range(T + 1):
        t = s if reverse else T - 1 - s
        tn = t - 1 if reverse else t + 1  # the step whose dG this region's GEMMs read
        tp = t + 1 if reverse else t - 1
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            hb = j1 - j0
            g0 = 4 * j0
            if s > 0:
                # dh[:, j0:j1] = dG[tn] (B, 4H) @ W_hh[:, j0:j1] (rows in block order)
                if packed:
                    _gemm_block(dG[tn], wpk[blk], dh[:, j0:j1], 0, B, 0, (hb + 31) // 32, 0)
                else:
                    sgemm_tiles(
                        fptr, NO_TRANS, NO_TRANS, B, hb, G, dG[tn].ctypes.data, G, G * 4,
                        wb.ctypes.data + j0 * 4, H, 4, _ZERO, dh.ctypes.data + j0 * 4, H,
                        tiles[0], tiles[1],
                    )  # fmt: skip
            if s == T:
                continue
            cp = c0 if s == T - 1 else cs[tp]  # the step whose previous cell state is c0
            for b in range(B):
                a = acts[t, b, g0 : g0 + 4 * hb]
                d = dG[t, b, g0 : g0 + 4 * hb]
                ct = cs[t, b, j0:j1]
                gh = g_hs[t, b, j0:j1]
                gc = g_cs[t, b, j0:j1]
                cpu = cp[b, j0:j1]
                dhu = dh[b, j0:j1]
                dcu = dc[b, j0:j1]
                for r in range(hb):
                    dhv = dhu[r] + gh[r]
                    tcv = _tanh(ct[r])
                    iv, fv, gv, ov = a[r], a[hb + r], a[2 * hb + r], a[3 * hb + r]
                    dov = dhv * tcv
                    dcv = dcu[r] + (dhv - dov * tcv) * ov
                    if has_gc:
                        dcv = dcv + gc[r]
                    d[r] = dcv * gv * ((one - iv) * iv)
                    d[hb + r] = dcv * cpu[r] * ((one - fv) * fv)
                    d[2 * hb + r] = dcv * iv * (one - gv * gv)
                    d[3 * hb + r] = dov * ((one - ov) * ov)
                    dcu[r] = dcv * fv


for _k in __all__:
    globals()[_k].jit_options = {"fastmath": {"contract"}}
