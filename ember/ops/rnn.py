"""Fused recurrent primitives: a whole LSTM layer pass over a sequence.

``lstm_seq`` runs one LSTM layer in one direction. Its VJP binds ``lstm_seq_bwd``, which
runs the reverse recurrence (only the dh/dc chain is a loop: dW_hh, dW_ih, dx and db are
one GEMM or sum each over the whole sequence). This backward is not differentiable again:
double backward through an LSTM raises.

Float32 with numba runs the compiled loops of :mod:`ember.backends.kernels_rnn`,
batch-major as PyTorch's (states (B, H); a step is ``h (B, H) @ W_hh^T`` plus the step's
input projection, as OpenBLAS small-matrix tiles per block of hidden units, and the cell
update). Other dtypes run a per-step NumPy loop in the transposed layout (states (H, B),
one ``(4H, H) @ (H, B)`` matmul per step) whose BLAS thread count is picked by timing its
first steps (``_BlasThreads``).

Gate order of the inputs, weights and gradients is PyTorch's: ``i, f, g, o``. The saved
gate values (the third output, (T, B, 4H), read only by the backward) are in *block
order* (:func:`block_rows`): each block of hidden units holds its i, f, g, o columns in
turn, the layout the compiled loops work in; the NumPy loop converts its own layout to it
and back.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time

import numpy as np

from ..backends import jit
from . import _parallel
from ._ad import ZERO_FILL_OFF, defvjp
from ._core import SAVE_BOTH, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind

__all__ = ["lstm_seq"]


def _lstm_abstract(x, w_ih, b, h0, c0, w_hh, reverse=False):
    if len(x.shape) != 3:
        raise ShapeError(f"lstm_seq: input must be (T, B, I), got {x.shape}")
    t, bs, i = x.shape
    if len(w_ih.shape) != 2 or w_ih.shape[0] % 4 or w_ih.shape[1] != i:
        raise ShapeError(f"lstm_seq: w_ih must be (4H, {i}), got {w_ih.shape}")
    g = w_ih.shape[0]
    h = g // 4
    if tuple(b.shape) != (g,):
        raise ShapeError(f"lstm_seq: bias must be {(g,)}, got {b.shape}")
    if tuple(h0.shape) != (bs, h) or tuple(c0.shape) != (bs, h):
        raise ShapeError(f"lstm_seq: h0/c0 must be {(bs, h)}, got {h0.shape} and {c0.shape}")
    if tuple(w_hh.shape) != (g, h):
        raise ShapeError(f"lstm_seq: w_hh must be {(g, h)}, got {w_hh.shape}")
    return (
        AbstractValue((t, bs, h), x.dtype),
        AbstractValue((t, bs, h), x.dtype),
        AbstractValue((t, bs, g), x.dtype),  # the gate values, batch-major, block order
    )


class _BlasThreads:
    """Chooses, per recurrent loop, whether NumPy's BLAS runs on one thread or on Ember's
    thread count (``ember.get_num_threads()``; re-entrant and thread-safe).

    NOTE: the loops issue one small GEMM per time step ((4H, H) @ (H, B)), too small to
    hand to Ember's pool step by step. On a quiet machine OpenBLAS's threads speed them up
    (2 cores, LSTM(64, 256), T=64, B=32: the whole training step at 46 ms with 2 threads vs
    68 ms with one); on a loaded machine (more runnable threads than cores) each step can
    wait for a descheduled worker and two threads are 3-5x *slower* (fwd + bwd 320-520 ms
    vs 90-100 ms). Neither setting is right everywhere, so ``run`` times the first steps
    both ways (alternating, three steps each), runs the rest of the loop with the faster
    setting and reuses the choice for the next calls of that loop while it stays fast; the
    whole-sequence GEMMs around the loop follow the last decision (``single``).
    """

    __slots__ = ("_state", "single")

    PROBE = 6  # steps timed (alternating settings) before a choice
    REPROBE = 8  # calls of one loop that reuse a choice

    def __init__(self):
        self.single = False
        self._state = {}  # loop key -> [single, calls left, fastest probe step (s)]

    @staticmethod
    def _available():
        return _parallel._set_blas_threads is not None and _parallel.get_num_threads() > 1

    @staticmethod
    def _setting(one):
        return _parallel.blas_threads(1 if one else _parallel.get_num_threads())

    def scope(self):
        """The BLAS setting of the last decision (a no-op without a usable OpenBLAS)."""
        return self._setting(self.single) if self._available() else contextlib.nullcontext()

    def run(self, key, steps, body):
        """``body(t)`` for every ``t`` in ``steps``, with the faster BLAS setting.

        ``key`` names the loop (its step cost). A decision is reused for ``REPROBE``
        calls, and dropped early when a loop runs at under half the speed measured when
        it was made (the load changed)."""
        steps = list(steps)
        n = self.PROBE
        if len(steps) < 4 * n or not self._available():
            with self.scope():
                for t in steps:
                    body(t)
            return
        clock = time.perf_counter
        st = self._state.get(key)
        if st is None or st[1] <= 0:
            best = [math.inf, math.inf]  # fastest step: [one thread, default]
            for k, t in enumerate(steps[:n]):
                one = k % 2 == 1
                t0 = clock()
                with self._setting(one):
                    body(t)
                j = 0 if one else 1
                best[j] = min(best[j], clock() - t0)
            # NOTE: the minimum, not the sum: one preemption during a probe step must
            # not flip the choice.
            single = best[0] < best[1]
            st = [single, self.REPROBE, best[0 if single else 1]]
            self._state[key] = st
            steps = steps[n:]
        else:
            st[1] -= 1
        self.single = st[0]
        t0 = clock()
        with self.scope():
            for t in steps:
                body(t)
        if clock() - t0 > 2.0 * st[2] * len(steps):
            st[1] = 0


_blas = _BlasThreads()


def _gate_rows(a, H, dtype):
    """Rows of a ``(4H, ...)`` array in the internal gate order i, f, o, g, with the
    sigmoid gates scaled by 1/2 (see _lstm_impl)."""
    out = np.empty(a.shape, dtype)
    np.multiply(a[: 2 * H], 0.5, out=out[: 2 * H])
    np.multiply(a[3 * H :], 0.5, out=out[2 * H : 3 * H])
    out[3 * H :] = a[2 * H : 3 * H]
    return out


# -- the compiled loops (float32) -------------------------------------------------------------
def _compiled_loop(name, dtype):
    """``(kernel, sgemm address)`` for the float32 recurrence kernel ``name`` of
    :mod:`ember.backends.kernels_rnn`, or None (another dtype, no numba, no OpenBLAS cblas)."""
    if dtype != np.float32:
        return None
    from ..backends.cpu import sgemm_address

    fptr = sgemm_address()
    if fptr is None:
        return None
    # the parallel build on any thread count (its blocks are fixed by the hidden size)
    k = _parallel.parallel_kernel(name, 1 << 62) or jit.get(name)
    return None if k is None else (k, fptr)


def unit_blocks(H, wide=None):
    """Bounds of the fixed blocks of hidden units the compiled loops split a step into: up
    to 4 blocks of at least 32 units (a block's GEMM stays efficient), by H only; with MKL's
    GEMM blocks (``wide``; by default :func:`ember.ops._parallel.mkl_blocks`) up to 4 blocks
    of at least 128 units, and two where H has 64: each block is one MKL call per step, and
    wider calls ran faster (2 Xeon cores, the 256-unit LSTM workload, steps/s alternated in
    fresh processes: 42.4 with 4 blocks on the packed kernel, 43.0 with 4 on MKL, 45.1 with 2
    on MKL). Results depend on the blocks only, never on the thread count.

    Example:
        >>> from ember.ops.rnn import unit_blocks
        >>> unit_blocks(256, wide=False).tolist(), unit_blocks(256, wide=True).tolist()
        ([0, 64, 128, 192, 256], [0, 128, 256])
    """
    if wide is None:
        wide = _parallel.mkl_blocks()
    nblk = min(4, max(min(2, H // 32), H // 128)) if wide else min(4, H // 32)
    nblk = max(1, nblk)
    return np.array([H * i // nblk for i in range(nblk + 1)], np.int64)


def block_rows(H, gates=(0, 1, 2, 3), wide=None):
    """Row indices that put a ``(4H, ...)`` array's gate rows in the compiled loops' *block
    order*: for each unit block of :func:`unit_blocks` (``j0:j1``), the rows ``q * H + j0 :
    q * H + j1`` of each gate ``q`` in ``gates`` in turn (PyTorch's rows are i, f, g, o: the
    default keeps that order inside a block).

    Example:
        >>> from ember.ops.rnn import block_rows
        >>> block_rows(2).tolist()
        [0, 1, 2, 3, 4, 5, 6, 7]
        >>> block_rows(64, wide=False)[62:66].tolist()  # two blocks of 32 units: block 0's f rows
        [94, 95, 128, 129]
    """
    if wide is None:
        wide = _parallel.mkl_blocks()
    return _block_rows(H, tuple(gates), bool(wide))


@functools.lru_cache(maxsize=64)
def _block_rows(H, gates, wide):
    bounds = unit_blocks(H, wide)
    rows = np.concatenate(
        [np.arange(q * H + j0, q * H + j1) for j0, j1 in itertools.pairwise(bounds) for q in gates]
    )
    rows.flags.writeable = False  # shared by every call (cached)
    return rows


def _unblock(a, rows):
    """``a`` (4H, ...) with its rows in block order (``rows`` from :func:`block_rows`) back
    in PyTorch's order."""
    out = np.empty_like(a)
    out[rows] = a
    return out


def _lstm_fwd_compiled(loop, x, w_ih, b, h0, c0, w_hh, reverse):
    from ..backends.kernels_blas import step_tiles

    k, fptr = loop
    T, B, In = x.shape
    G = w_ih.shape[0]
    H = G // 4
    f32 = np.float32
    bounds = unit_blocks(H)
    rows = block_rows(H)
    wt = np.ascontiguousarray(w_hh[rows].T, dtype=f32)
    wxt = np.empty((In + 1, G), f32)
    wxt[:In] = w_ih[rows].T
    wxt[In] = b[rows]
    xs = _with_ones(x)
    hs = np.empty((T, B, H), f32)
    cs = np.empty((T, B, H), f32)
    acts = np.empty((T, B, G), f32)
    scratch = np.empty((B, G), f32)
    most = 4 * int(np.diff(bounds).max())
    tiles, tiles_x = step_tiles(B, most, H), step_tiles(B, most, In + 1)
    packed = _parallel.packed_gemm_preferred()  # (MKL: one call per block, see unit_blocks)
    wpk = _block_panels(wt, 4 * bounds) if packed else _NO_PANELS
    wxpk = _block_panels(wxt, 4 * bounds) if packed else _NO_PANELS
    with _parallel.one_blas_thread():
        k(fptr, wt, wxt, xs, np.ascontiguousarray(h0, dtype=f32),
          np.ascontiguousarray(c0, dtype=f32), hs, cs, acts, scratch, bounds, tiles, tiles_x,
          reverse, packed, wpk, wxpk)  # fmt: skip
    return hs, cs, acts


_NO_PANELS = np.zeros((1, 1, 1, 32), np.float32)


def _block_panels(w, cols):
    """The column blocks ``cols[i]:cols[i+1]`` of ``w`` (K, N) each packed in the packed
    GEMM's 32-column panels (:func:`ember.ops._parallel.pack_b`, straight into the result):
    (blocks, panels, K, 32), zero-padded to the widest block."""
    widths = np.diff(cols)
    npan = -(-int(widths.max()) // 32)
    out = np.empty((len(widths), npan, w.shape[0], 32), np.float32)
    for i, (c0, c1) in enumerate(itertools.pairwise(cols)):
        used = -(-int(c1 - c0) // 32)
        _parallel.pack_b(w[:, c0:c1], out[i, :used])
        out[i, used:] = 0
    return out


def _with_ones(x):
    """``x`` (T, B, In) as float32 with a last column of ones (T, B, In + 1)."""
    xs = np.empty(x.shape[:2] + (x.shape[2] + 1,), np.float32)
    xs[..., :-1] = x
    xs[..., -1] = 1.0
    return xs


def units_major(a, dtype):
    """A (T, B, H) sequence as a C-contiguous (T, H, B) array of ``dtype`` (free when it is
    laid out so already, as the layers' own outputs are). Gradients from batch-first models
    arrive laid out (B, T, H): their batch rows lie T*H elements apart, a multiple of 4 KiB
    that NumPy's transposed copy reads at cache-aliasing addresses (a (64, 32, 256) float32
    gradient: 0.93 ms); the compiled tiled copy of :func:`ember.ops._layout.nchw_to_nhwc`
    takes ~0.3 ms.

    Example:
        >>> import numpy as np
        >>> from ember.ops.rnn import units_major
        >>> units_major(np.arange(6.0).reshape(1, 2, 3), np.float64)[0].tolist()
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    """
    from ._layout import aliasing_planes, nchw_to_nhwc

    x4 = a[:, :, None, :]  # (T, B, 1, H) "NCHW" -> (T, 1, H, B) "NHWC"
    if a.dtype == dtype and aliasing_planes(x4):
        out = np.empty((a.shape[0], a.shape[2], a.shape[1]), dtype)
        nchw_to_nhwc(x4, out[:, None])
        return out
    return np.ascontiguousarray(a.transpose(0, 2, 1), dtype=dtype)


def _bwd_inputs(g_hs, g_cs, cs, c0, dtype):
    """The backward loops' operands in the transposed layout, of ``dtype``: cs, g_hs, g_cs
    (None when all zero; a 0-d zero means no cell-state gradient) as contiguous (T, H, B);
    tanh(cs); c0 (H, B). Contiguous copies: per-step reads of a transposed (B, H) view are
    strided gathers."""
    csT = units_major(cs, dtype)
    g_hsT = units_major(g_hs, dtype)
    g_csT = units_major(g_cs, dtype) if g_cs.ndim and np.any(g_cs) else None
    tcs = np.tanh(csT)
    c0T = np.ascontiguousarray(c0.T, dtype=dtype)
    return csT, g_hsT, g_csT, tcs, c0T


def _lstm_bwd_compiled(loop, g_hs, g_cs, hs, cs, acts, x, w_ih, h0, c0, w_hh, reverse):
    from ..backends.kernels_blas import step_tiles

    k, fptr = loop
    T, B, H = hs.shape
    G = 4 * H
    f32 = np.float32

    def batch_major(a):
        return np.ascontiguousarray(a, dtype=f32)

    cs = batch_major(cs)
    has_gc = bool(g_cs.ndim and np.any(g_cs))
    g_hs = batch_major(g_hs)
    g_cs = batch_major(g_cs) if has_gc else g_hs  # (never read then)
    rows = block_rows(H)
    wb = np.ascontiguousarray(w_hh[rows], dtype=f32)
    dG = np.empty((T, B, G), f32)
    dh = np.zeros((B, H), f32)
    dc = np.zeros((B, H), f32)
    bounds = unit_blocks(H)
    tiles = step_tiles(B, int(np.diff(bounds).max()), G)
    packed = _parallel.packed_gemm_preferred()  # (MKL: one call per block, see unit_blocks)
    wpk = _block_panels(wb, bounds) if packed else _NO_PANELS
    with _parallel.one_blas_thread():
        k(fptr, wb, batch_major(acts), cs, batch_major(c0), g_hs, g_cs, has_gc, dG, dh, dc,
          bounds, tiles, reverse, packed, wpk)  # fmt: skip
    # the whole-sequence GEMMs: dx = dG @ W_ih, and [dW_ih | db | dW_hh] = dG^T @ [x | 1 |
    # h_prev] as one product (h_prev: the state each step started from, h0 first; an
    # (In + 1)-column product beside an H-column one ran as two narrow OpenBLAS calls)
    d2 = dG.reshape(T * B, G)
    dx = _parallel.gemm(d2, np.ascontiguousarray(w_ih[rows], dtype=f32)).reshape(T, B, -1)
    In = x.shape[2]
    z = np.empty((T, B, In + 1 + H), f32)
    z[..., :In] = x
    z[..., In] = 1.0
    if reverse:
        z[:-1, :, In + 1 :] = hs[1:]
        z[-1, :, In + 1 :] = h0
    else:
        z[1:, :, In + 1 :] = hs[:-1]
        z[0, :, In + 1 :] = h0
    dw = _parallel.gemm(d2.T, z.reshape(T * B, -1))
    return (
        dx,
        _unblock(dw[:, :In], rows),
        _unblock(dw[:, In], rows),
        dh,
        dc,
        _unblock(dw[:, In + 1 :], rows),
    )


def _lstm_impl(x, w_ih, b, h0, c0, w_hh, reverse=False):
    # (the compiled loops take no empty sequence or batch: the NumPy loop does)
    loop = _compiled_loop("lstm_fwd_loop", x.dtype) if x.shape[0] and x.shape[1] else None
    if loop is not None:
        return _lstm_fwd_compiled(loop, x, w_ih, b, h0, c0, w_hh, reverse)
    T, B, In = x.shape
    G = w_ih.shape[0]
    H = G // 4
    dtype = x.dtype
    # NOTE: the NumPy loop works in the transposed layout: states are (H, B), the step GEMM
    # is W_hh (4H, H) @ h^T (H, B) (measured 30% faster than h @ W_hh^T with NumPy's calls)
    # and every gate is a contiguous (H, B) block of the (4H, B) step buffer. The gate
    # pre-activations of the whole sequence are one GEMM into ``pre`` (4H, T, B); the
    # activations are saved as ``acts`` (T, 4H, B), contiguous per step for the backward.
    # Internally the gates are in the order i, f, o, g (sigmoid gates first, one slice),
    # and sigmoid(x) = 0.5 * tanh(x / 2) + 0.5: the i, f, o rows of W_ih, b and W_hh are
    # permuted and pre-scaled by 1/2 once per call (weight sized), so one tanh call
    # covers all four gates and the sigmoid fix-up is two calls on one slice.
    w_p = _gate_rows(w_hh, H, dtype)
    w_ih_p = _gate_rows(w_ih, H, dtype)
    b_p = _gate_rows(b, H, dtype)
    with _blas.scope():
        pre = np.matmul(w_ih_p, x.reshape(T * B, In).T)
    pre += b_p[:, None]
    pre = pre.reshape(G, T, B)
    acts = np.empty((T, G, B), dtype)  # contiguous per step for the backward's reads
    hsT = np.empty((T, H, B), dtype)
    csT = np.empty((T, H, B), dtype)
    tmp = np.empty((H, B), dtype)
    h0T = np.ascontiguousarray(h0.T, dtype=dtype)
    c0T = np.ascontiguousarray(c0.T, dtype=dtype)
    H2, H3 = 2 * H, 3 * H
    first = T - 1 if reverse else 0  # the step whose previous state is (h0, c0)
    back = 1 if reverse else -1

    gates = jit.get_for("lstm_fwd_gates", dtype)

    def step(t):
        if t == first:
            h, c = h0T, c0T
        else:
            h, c = hsT[t + back], csT[t + back]
        gbuf = acts[t]
        np.matmul(w_p, h, out=gbuf)
        gbuf += pre[:, t]
        np.tanh(gbuf, out=gbuf)
        if gates is not None:  # sigmoid fix-up and the cell update in one compiled call
            gates(gbuf, c, csT[t])
            h_new = hsT[t]
            np.tanh(csT[t], out=h_new)
            h_new *= gbuf[H2:H3]
            return
        s = gbuf[:H3]
        s *= 0.5
        s += 0.5
        c_new = csT[t]
        np.multiply(gbuf[H:H2], c, out=c_new)
        np.multiply(gbuf[:H], gbuf[H3:], out=tmp)
        c_new += tmp
        h_new = hsT[t]
        np.tanh(c_new, out=h_new)
        h_new *= gbuf[H2:H3]

    _blas.run("lstm_fwd", range(T - 1, -1, -1) if reverse else range(T), step)
    # saved as the compiled loops save them, batch-major in block order (one format whichever
    # code runs the backward)
    acts = np.ascontiguousarray(acts[:, block_rows(H, _INTERNAL_GATES)].transpose(0, 2, 1))
    return hsT.transpose(0, 2, 1), csT.transpose(0, 2, 1), acts


# the block order's gates i, f, g, o as rows of the NumPy loop's internal order i, f, o, g
_INTERNAL_GATES = (0, 1, 3, 2)


def _lstm_bwd_impl(g_hs, g_cs, hs, cs, acts, x, w_ih, h0, c0, w_hh, reverse=False):
    # ``acts`` (T, 4H, B) holds the gate activations in the internal order i, f, o, g
    # (see _lstm_impl); the gate gradients ``dG`` (4H, T, B) are in PyTorch's order
    # i, f, g, o. The loop runs in the transposed layout (states (H, B)).
    loop = _compiled_loop("lstm_bwd_loop", hs.dtype) if hs.shape[0] and hs.shape[1] else None
    if loop is not None:
        return _lstm_bwd_compiled(loop, g_hs, g_cs, hs, cs, acts, x, w_ih, h0, c0, w_hh, reverse)
    T, B, H = hs.shape
    G = 4 * H
    H2, H3 = 2 * H, 3 * H
    dtype = hs.dtype
    internal = np.empty((T, G, B), acts.dtype)  # from the saved format to the loop's
    internal[:, block_rows(H, _INTERNAL_GATES)] = acts.transpose(0, 2, 1)  # (H, B) i, f, o, g
    acts = internal
    csT, g_hsT, g_csT, tcs, c0T = _bwd_inputs(g_hs, g_cs, cs, c0, dtype)
    w_t = np.ascontiguousarray(w_hh.T, dtype=dtype)
    dG = np.empty((G, T, B), dtype)
    dh = np.zeros((H, B), dtype)
    dc = np.zeros((H, B), dtype)
    tmp = np.empty((H, B), dtype)
    sd = np.empty((H3, B), dtype)
    d = np.empty((G, B), dtype)
    first = T - 1 if reverse else 0  # the step whose previous state is (h0, c0)
    back = 1 if reverse else -1
    di, df, dg, do = d[:H], d[H:H2], d[H2:H3], d[H3:]
    dif = d[:H2]
    cell = jit.get_for("lstm_bwd_cell", dtype)
    if cell is not None:  # the step's ~20 elementwise NumPy calls as one compiled kernel
        gcs = g_csT if g_csT is not None else g_hsT

        def step(t):
            cell(
                acts[t],
                tcs[t],
                c0T if t == first else csT[t + back],
                g_hsT[t],
                gcs[t],
                g_csT is not None,
                dh,
                dc,
                d,
            )
            dG[:, t] = d
            np.matmul(w_t, d, out=dh)

        _blas.run("lstm_bwd", range(T) if reverse else range(T - 1, -1, -1), step)
        return _lstm_bwd_finish(dG, dh, dc, hs, h0, x, w_ih, reverse, dtype)

    def step(t):
        a = acts[t]
        i, f, o, g = a[:H], a[H:H2], a[H2:H3], a[H3:]
        c_prev = c0T if t == first else csT[t + back]
        tc = tcs[t]
        np.add(dh, g_hsT[t], out=dh)
        # do = dh * tanh(c) (times sigmoid' below); dc += dh * o * (1 - tanh(c)^2)
        np.multiply(dh, tc, out=do)
        np.multiply(do, tc, out=tmp)
        np.subtract(dh, tmp, out=tmp)
        np.multiply(tmp, o, out=tmp)
        np.add(dc, tmp, out=dc)
        if g_csT is not None:
            np.add(dc, g_csT[t], out=dc)
        np.multiply(dc, g, out=di)
        np.multiply(dc, c_prev, out=df)
        np.multiply(dc, i, out=dg)
        np.multiply(dc, f, out=dc)
        # through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2
        s = a[:H3]
        np.subtract(1.0, s, out=sd)
        np.multiply(sd, s, out=sd)
        np.multiply(dif, sd[:H2], out=dif)
        np.multiply(do, sd[H2:], out=do)
        np.multiply(g, g, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        np.multiply(dg, tmp, out=dg)
        dG[:, t] = d
        np.matmul(w_t, d, out=dh)

    _blas.run("lstm_bwd", range(T) if reverse else range(T - 1, -1, -1), step)
    return _lstm_bwd_finish(dG, dh, dc, hs, h0, x, w_ih, reverse, dtype)


def sequence_grads(d_in, d_hid, hs, h0, x, w_ih, reverse, dtype):
    """The whole-sequence GEMMs after the reverse loop of a recurrent layer (LSTM, GRU, RNN).

    ``d_in`` / ``d_hid`` (G, T, B): gradients of the input-side and hidden-side gate
    pre-activations (one array for LSTM and RNN, two for GRU, whose hidden-side n gate is
    scaled by r); ``hs`` (T, B, H): the layer's outputs; ``h0`` (B, H). Returns
    ``dx, dw_ih, db_in, dw_hh, db_hid`` (``db_hid`` is None when ``d_hid is d_in``). The
    GEMMs run with the per-step loops' BLAS setting (the NumPy loops; the compiled LSTM
    loop has its own, batch-major, in ``_lstm_bwd_compiled``)."""
    G, T, B = d_in.shape
    H = hs.shape[2]
    h0 = h0[None].astype(dtype, copy=False)
    mm = np.matmul
    with _blas.scope():
        h_prev = np.concatenate([hs[1:], h0] if reverse else [h0, hs[:-1]], axis=0)
        di = d_in.reshape(G, T * B)
        dh = di if d_hid is d_in else d_hid.reshape(G, T * B)
        dw_hh = mm(dh, h_prev.reshape(T * B, H))
        dx = mm(di.T, w_ih.astype(dtype, copy=False)).reshape(x.shape)
        dw_ih = mm(di, x.reshape(T * B, x.shape[2]))
    db_in = _parallel.row_sums(di)[:, 0]
    db_hid = None if d_hid is d_in else _parallel.row_sums(dh)[:, 0]
    return dx, dw_ih, db_in, dw_hh, db_hid


def _lstm_bwd_finish(dG, dh, dc, hs, h0, x, w_ih, reverse, dtype):
    dx, dw_ih, db, dw_hh, _ = sequence_grads(dG, dG, hs, h0, x, w_ih, reverse, dtype)
    return dx, dw_ih, db, np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T), dw_hh


def _lstm_vjp(g, out, x, w_ih, b, h0, c0, w_hh, reverse=False):
    # (in ZERO_FILL_OFF: outputs nobody used arrive as None instead of full-size zeros, ~10 MB
    # per step for a 64x32x256 layer's cell states and gate activations; a cell-state
    # gradient of None goes to the backward as a 0-d zero, which it reads as "none")
    from .._creation import from_numpy

    g_hs, g_cs, _ = g
    hs, cs, acts = out
    if g_hs is None:
        g_hs = from_numpy(np.zeros(hs.shape, hs._data.dtype))
    if g_cs is None:
        g_cs = from_numpy(np.zeros((), cs._data.dtype))
    return bind(
        lstm_seq_bwd_p, (g_hs, g_cs, hs, cs, acts, x, w_ih, h0, c0, w_hh), {"reverse": reverse}
    )


def _lstm_bwd_abstract(g_hs, g_cs, hs, cs, acts, x, w_ih, h0, c0, w_hh, reverse=False):
    d = hs.dtype
    return (
        AbstractValue(x.shape, d),
        AbstractValue(w_ih.shape, d),
        AbstractValue((w_ih.shape[0],), d),
        AbstractValue(h0.shape, d),
        AbstractValue(c0.shape, d),
        AbstractValue(w_hh.shape, d),
    )


def no_double_backward(layer: str, cell: str, prim: str):
    """The VJP of a fused recurrence's backward primitive: it says what is unsupported and
    what to use instead (its hand-written reverse loop has no derivative of its own)."""

    def rule(*_args, **_params):
        raise RuntimeError(
            f"double backward through the fused {layer} ({prim}) is not supported: compute "
            f"the first gradient with create_graph=False, or unroll the sequence with "
            f"nn.{cell} (built from differentiable ember ops) to take higher-order gradients"
        )

    return rule


# one LSTM layer over a sequence: (x, w_ih, b, h0, c0, w_hh) -> (hs, cs, gate activations)
lstm_seq_p = Primitive(
    "lstm_seq",
    "opaque",
    impl=_lstm_impl,
    abstract=_lstm_abstract,
    save=SAVE_BOTH,
    n_out=3,
)
defvjp(lstm_seq_p, _lstm_vjp)
ZERO_FILL_OFF.add(lstm_seq_p)
# the reverse recurrence of lstm_seq (first-order only)
lstm_seq_bwd_p = Primitive(
    "lstm_seq_bwd",
    "opaque",
    impl=_lstm_bwd_impl,
    abstract=_lstm_bwd_abstract,
    save=SAVE_NONE,
    n_out=6,
)
defvjp(lstm_seq_bwd_p, no_double_backward("LSTM", "LSTMCell", "lstm_seq_bwd"))


def lstm_seq(x, w_ih, b, h0, c0, w_hh, reverse: bool = False):
    """Run one LSTM layer direction over a sequence.

    Args:
        x: ``(T, B, I)`` time-major input.
        w_ih: ``(4H, I)`` input weights; b: ``(4H,)`` bias (``b_ih + b_hh``, or zeros).
        h0, c0: ``(B, H)`` initial states.
        w_hh: ``(4H, H)`` recurrent weights (gate order i, f, g, o for all three).
        reverse: run from the last time step to the first.

    Returns:
        ``(hs, cs)``: hidden and cell states for every step, each ``(T, B, H)``
        (for ``reverse`` step ``t`` is still stored at index ``t``).
    """
    hs, cs, _ = bind(lstm_seq_p, (x, w_ih, b, h0, c0, w_hh), {"reverse": bool(reverse)})
    return hs, cs
