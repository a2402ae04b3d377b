"""The LSTM recurrence as one compiled loop (float32; compiled by numba through
:mod:`ember.backends.jit`, run by its parallel build).

A recurrent step is too small to split by handing blocks to Python threads (a (1024, 256) @
(256, 32) GEMM and a (256, 32) cell update: ~0.1-0.2 ms), and a per-step Python loop adds
~10 NumPy calls per step. Here the whole loop over time runs in one kernel: each step is a
``prange`` over fixed blocks of hidden units (OpenMP's ~2-4 us fork and join is the step's
barrier), and each block does its own GEMM through OpenBLAS's ``cblas_sgemm`` (called by
address, single-threaded: :mod:`ember.backends.kernels_blas`) and the cell arithmetic for its
units. The blocks are fixed by the hidden size, never by the thread count, so results are
bitwise the same on any number of threads.

Layouts are those of :mod:`ember.ops.rnn` (states transposed to (H, B); the saved gate
activations in the internal order i, f, o, g; gate gradients in PyTorch's order i, f, g, o).
"""

import numpy as np

from .jit import inline_helpers
from .kernels_blas import NO_TRANS, sgemm
from .kernels_ew import _exp  # float32 exp in plain arithmetic (vectorizes)

try:
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range

__all__ = ["lstm_bwd_loop", "lstm_fwd_loop"]

_F = np.float32
_ONE, _HALF, _TWO, _ZERO = _F(1.0), _F(0.5), _F(2.0), _F(0.0)

# tanh: an odd polynomial for |x| < 0.625 (keeps the relative accuracy near 0, where
# 1 - 2 / (e^2x + 1) cancels), 1 - 2 / (e^2|x| + 1) beyond; both computed and one picked, so
# the loop vectorizes. Within ~2 ulp of float32 (checked against float64 in the tests).
_T0, _T1, _T2 = _F(-5.70498872745e-3), _F(2.06390887954e-2), _F(-5.37397155531e-2)
_T3, _T4 = _F(1.33314422036e-1), _F(-3.33332819422e-1)
_T_SPLIT = _F(0.625)


def _tanh(x):
    a = abs(x)
    s = x * x
    small = ((((_T0 * s + _T1) * s + _T2) * s + _T3) * s + _T4) * s * x + x
    big = _ONE - _TWO / (_exp(a + a) + _ONE)
    big = big if x >= _ZERO else -big
    return small if a < _T_SPLIT else big


def _sigmoid(x):
    return _ONE / (_ONE + _exp(-x))


def _sgemm_rows_in_calls(fptr, m, n, k, a, lda, b, ldb, c, ldc, chunk):
    """C (m, n) = A (m, k) @ B (k, n) (row-major float32 byte addresses) as calls of at most
    ``chunk`` rows (:func:`ember.backends.kernels_blas.small_gemm_rows`: OpenBLAS runs them
    without packing the operands)."""
    for i0 in range(0, m, chunk):
        rows = min(chunk, m - i0)
        sgemm(fptr, NO_TRANS, NO_TRANS, rows, n, k, a + i0 * lda * 4, lda, b, ldb,
              c + i0 * ldc * 4, ldc)  # fmt: skip


def lstm_fwd_loop(fptr, wb, pre, h0, c0, hs, cs, acts, scratch, bounds, chunk, reverse):
    """The forward recurrence of one LSTM layer (float32).

    ``wb`` (4H, H): W_hh with its rows grouped by unit block (block ``k`` = units
    ``bounds[k]:bounds[k+1]``, rows i, f, g, o of those units in turn); ``pre`` (4H, T, B):
    the input projections plus bias, PyTorch's gate order; ``h0``, ``c0`` (H, B). Writes
    ``hs``, ``cs`` (T, H, B) and ``acts`` (T, 4H, B; sigmoid/tanh gate values in the
    internal order i, f, o, g). ``scratch`` (4H, B) holds a step's GEMM results; a block's
    GEMM runs as calls of at most ``chunk`` rows."""
    T = pre.shape[1]
    H = h0.shape[0]
    B = h0.shape[1]
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
            z = scratch[4 * j0 : 4 * j1]
            _sgemm_rows_in_calls(
                fptr, 4 * hb, B, H, wb[4 * j0 :].ctypes.data, H, hp.ctypes.data, B,
                z.ctypes.data, B, chunk,
            )  # fmt: skip
            a = acts[t]
            for r in range(hb):
                u = j0 + r
                zi, zf, zg, zo = z[r], z[hb + r], z[2 * hb + r], z[3 * hb + r]
                pi, pf, pg, po = pre[u, t], pre[H + u, t], pre[2 * H + u, t], pre[3 * H + u, t]
                ai, af, ao, ag = a[u], a[H + u], a[2 * H + u], a[3 * H + u]
                cpu, cn, hn = cp[u], cs[t, u], hs[t, u]
                for k in range(B):
                    iv = _sigmoid(zi[k] + pi[k])
                    fv = _sigmoid(zf[k] + pf[k])
                    gv = _tanh(zg[k] + pg[k])
                    ov = _sigmoid(zo[k] + po[k])
                    ai[k] = iv
                    af[k] = fv
                    ao[k] = ov
                    ag[k] = gv
                    c = fv * cpu[k] + iv * gv
                    cn[k] = c
                    hn[k] = ov * _tanh(c)


def lstm_bwd_loop(
    fptr, w_t, acts, tcs, cs, c0, g_hs, g_cs, has_gc, dG, dstep, dh, dc, bounds, chunk, reverse
):
    """The reverse recurrence of one LSTM layer (float32): for each step (last first), the
    cell's gradients for every unit block, then ``dh = W_hh^T d`` for every unit block.

    ``w_t`` (H, 4H) = W_hh^T; ``acts`` (T, 4H, B) as :func:`lstm_fwd_loop` writes it;
    ``tcs`` = tanh(cs); ``g_hs``/``g_cs`` (T, H, B) the gradients of the outputs (``g_cs``
    read only when ``has_gc``). Writes the gate pre-activation gradients ``dG`` (4H, T, B,
    PyTorch's order) and leaves the gradients of ``h0``/``c0`` in ``dh``/``dc`` (H, B; zero
    on entry). ``dstep`` (4H, B): a step's gate gradients, contiguous for the GEMM (reading
    them from ``dG``, rows T * B apart, made the GEMM 3x slower). The ``dh`` GEMMs run as
    calls of at most ``chunk`` rows."""
    T = acts.shape[0]
    H = dh.shape[0]
    B = dh.shape[1]
    G = 4 * H
    nblk = bounds.shape[0] - 1
    one = _ONE
    for s in range(T):
        t = s if reverse else T - 1 - s
        tp = t + 1 if reverse else t - 1
        first = s == T - 1  # the step whose previous cell state is c0
        for blk in prange(nblk):
            a = acts[t]
            for u in range(bounds[blk], bounds[blk + 1]):
                ai, af, ao, ag = a[u], a[H + u], a[2 * H + u], a[3 * H + u]
                tc, gh, gc = tcs[t, u], g_hs[t, u], g_cs[t, u]
                cpu = c0[u] if first else cs[tp, u]
                dhu, dcu = dh[u], dc[u]
                di, df, dg, do = dstep[u], dstep[H + u], dstep[2 * H + u], dstep[3 * H + u]
                for k in range(B):
                    dhv = dhu[k] + gh[k]
                    tcv = tc[k]
                    iv, fv, ov, gv = ai[k], af[k], ao[k], ag[k]
                    dov = dhv * tcv
                    dcv = dcu[k] + (dhv - dov * tcv) * ov
                    if has_gc:
                        dcv = dcv + gc[k]
                    di[k] = dcv * gv * ((one - iv) * iv)
                    df[k] = dcv * cpu[k] * ((one - fv) * fv)
                    dg[k] = dcv * iv * (one - gv * gv)
                    do[k] = dov * ((one - ov) * ov)
                    dcu[k] = dcv * fv
                for q in range(4):
                    dG[q * H + u, t] = dstep[q * H + u]
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            # dh[j0:j1] = W_hh^T[j0:j1] @ dstep
            _sgemm_rows_in_calls(
                fptr, j1 - j0, B, G, w_t[j0:].ctypes.data, G, dstep.ctypes.data, B,
                dh[j0:].ctypes.data, B, chunk,
            )  # fmt: skip


inline_helpers(globals(), ("_tanh", "_sigmoid", "_sgemm_rows_in_calls"), fastmath={"contract"})

for _k in __all__:
    globals()[_k].jit_options = {"fastmath": {"contract"}}
