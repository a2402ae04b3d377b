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

Layouts are those of :mod:`ember.ops.rnn` (states transposed to (H, B), flattened; gate rows
in the block order of :func:`lstm_fwd_loop`).
"""

import numpy as np

from .jit import inline_helpers
from .kernels_blas import NO_TRANS, sgemm_beta
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


def _sgemm_rows_in_calls(fptr, m, n, k, a, lda, b, ldb, beta, c, ldc, chunk):
    """C (m, n) = A (m, k) @ B (k, n) + ``beta`` * C (row-major float32 byte addresses) as
    calls of at most ``chunk`` rows (:func:`ember.backends.kernels_blas.small_gemm_rows`:
    OpenBLAS runs them without packing the operands)."""
    for i0 in range(0, m, chunk):
        rows = min(chunk, m - i0)
        sgemm_beta(fptr, NO_TRANS, NO_TRANS, rows, n, k, a + i0 * lda * 4, lda, b, ldb, beta,
                   c + i0 * ldc * 4, ldc)  # fmt: skip


def lstm_fwd_loop(
    fptr, wb, wxb, xs, h0, c0, hs, cs, acts, scratch, bounds, chunk, chunk_x, reverse
):
    """The forward recurrence of one LSTM layer (float32).

    Gate rows are in *block order*: block ``k`` (units ``bounds[k]:bounds[k+1]``) holds the
    rows i, f, g, o of its units in turn, so each block's gates, states and saved
    activations are contiguous runs and its cell update is one long vectorized loop.
    ``wb`` (4H, H): W_hh's rows in block order; ``wxb`` (4H, In + 1): W_ih's rows in block
    order with the bias as the last column; ``xs`` (In + 1, T * B): the inputs transposed,
    with a row of ones (so the input projection and bias of a step are one GEMM, added to
    the recurrent one; no (4H, T, B) array of pre-activations is written and read back);
    ``h0``, ``c0`` (H * B,): the initial states transposed to (H, B). Writes ``hs``, ``cs``
    (T, H * B): the states, transposed per step; ``acts`` (T, 4H * B): the gate values
    (sigmoid, or tanh for g) in block order. ``scratch`` (4H * B,): a step's gate
    pre-activations. A block's GEMMs run as calls of at most ``chunk`` / ``chunk_x`` rows."""
    T = hs.shape[0]
    H = wb.shape[1]
    B = h0.shape[0] // H
    nx = wxb.shape[1]
    nblk = bounds.shape[0] - 1
    for s in range(T):
        t = T - 1 - s if reverse else s
        tp = t + 1 if reverse else t - 1
        hp = h0 if s == 0 else hs[tp]
        cp = c0 if s == 0 else cs[tp]
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            n = (j1 - j0) * B
            g0 = 4 * j0 * B
            zaddr = scratch.ctypes.data + g0 * 4
            _sgemm_rows_in_calls(
                fptr, 4 * (j1 - j0), B, H, wb[4 * j0 :].ctypes.data, H, hp.ctypes.data, B,
                _ZERO, zaddr, B, chunk,
            )  # fmt: skip
            _sgemm_rows_in_calls(
                fptr, 4 * (j1 - j0), B, nx, wxb[4 * j0 :].ctypes.data, nx,
                xs.ctypes.data + t * B * 4, T * B, _ONE, zaddr, B, chunk_x,
            )  # fmt: skip
            z = scratch[g0 : g0 + 4 * n]
            a = acts[t, g0 : g0 + 4 * n]
            cpu = cp[j0 * B : j1 * B]
            cn = cs[t, j0 * B : j1 * B]
            hn = hs[t, j0 * B : j1 * B]
            for k in range(n):
                iv = _sigmoid(z[k])
                fv = _sigmoid(z[n + k])
                gv = _tanh(z[2 * n + k])
                ov = _sigmoid(z[3 * n + k])
                a[k] = iv
                a[n + k] = fv
                a[2 * n + k] = gv
                a[3 * n + k] = ov
                c = fv * cpu[k] + iv * gv
                cn[k] = c
                hn[k] = ov * _tanh(c)


def lstm_bwd_loop(
    fptr, wbt, acts, tcs, cs, c0, g_hs, g_cs, has_gc, dG, dstep, dh, dc, bounds, chunk, reverse
):
    """The reverse recurrence of one LSTM layer (float32): for each step (last first), the
    cell's gradients for every unit block, then ``dh = W_hh^T d`` for every unit block.

    Layouts as :func:`lstm_fwd_loop` writes them (gate rows in block order): ``wbt`` (H, 4H)
    = ``wb``^T; ``acts`` (T, 4H * B); ``tcs`` = tanh(cs), ``cs``, ``g_hs``, ``g_cs``
    (T, H * B) (``g_cs`` read only when ``has_gc``); ``c0`` (H * B,). Writes the gate
    pre-activation gradients ``dG`` (4H, T, B; rows in block order) and leaves the gradients
    of ``h0``/``c0`` in ``dh``/``dc`` (H * B,; zero on entry). ``dstep`` (4H * B,): a step's
    gate gradients, contiguous for the GEMM (reading them from ``dG``, rows T * B apart,
    made the GEMM 3x slower). The ``dh`` GEMMs run as calls of at most ``chunk`` rows."""
    T = acts.shape[0]
    H = wbt.shape[0]
    B = dh.shape[0] // H
    G = 4 * H
    nblk = bounds.shape[0] - 1
    one = _ONE
    for s in range(T):
        t = s if reverse else T - 1 - s
        tp = t + 1 if reverse else t - 1
        cp = c0 if s == T - 1 else cs[tp]  # the step whose previous cell state is c0
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            n = (j1 - j0) * B
            g0 = 4 * j0 * B
            a = acts[t, g0 : g0 + 4 * n]
            d = dstep[g0 : g0 + 4 * n]
            tc = tcs[t, j0 * B : j1 * B]
            gh = g_hs[t, j0 * B : j1 * B]
            gc = g_cs[t, j0 * B : j1 * B]
            cpu = cp[j0 * B : j1 * B]
            dhu = dh[j0 * B : j1 * B]
            dcu = dc[j0 * B : j1 * B]
            for k in range(n):
                dhv = dhu[k] + gh[k]
                tcv = tc[k]
                iv, fv, gv, ov = a[k], a[n + k], a[2 * n + k], a[3 * n + k]
                dov = dhv * tcv
                dcv = dcu[k] + (dhv - dov * tcv) * ov
                if has_gc:
                    dcv = dcv + gc[k]
                d[k] = dcv * gv * ((one - iv) * iv)
                d[n + k] = dcv * cpu[k] * ((one - fv) * fv)
                d[2 * n + k] = dcv * iv * (one - gv * gv)
                d[3 * n + k] = dov * ((one - ov) * ov)
                dcu[k] = dcv * fv
            for r in range(4 * j0, 4 * j1):
                dG[r, t] = dstep[r * B : (r + 1) * B]
        for blk in prange(nblk):
            j0 = bounds[blk]
            j1 = bounds[blk + 1]
            # dh[j0:j1] = W_hh^T[j0:j1] @ dstep
            _sgemm_rows_in_calls(
                fptr, j1 - j0, B, G, wbt[j0:].ctypes.data, G, dstep.ctypes.data, B, _ZERO,
                dh.ctypes.data + j0 * B * 4, B, chunk,
            )  # fmt: skip


inline_helpers(globals(), ("_tanh", "_sigmoid", "_sgemm_rows_in_calls"), fastmath={"contract"})

for _k in __all__:
    globals()[_k].jit_options = {"fastmath": {"contract"}}
