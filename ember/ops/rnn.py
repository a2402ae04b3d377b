"""Fused recurrent primitives: a whole LSTM layer pass over a sequence.

``lstm_seq`` runs the recurrence of one LSTM layer in one direction. The input
projection ``x @ W_ih^T + b`` for every time step is computed beforehand by the caller
in one matmul; the per-step loop does one ``(B, H) @ (H, 4H)`` matmul and the gate
arithmetic in place, in preallocated buffers. Its VJP binds ``lstm_seq_bwd``, which
runs the reverse recurrence in the same style (this backward is not differentiable
again: double backward through an LSTM raises).

Gate order of the inputs, weights and gradients is PyTorch's: ``i, f, g, o``. The
saved gate activations (the third output, read only by the backward) are stored in the
internal order ``i, f, o, g`` so that the three sigmoid gates are one contiguous slice.
Both loops run with NumPy's BLAS on one thread (see ``_SingleThreadBlas``).
"""

from __future__ import annotations

import threading

import numpy as np

from ._core import SAVE_BOTH, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind

__all__ = ["lstm_seq"]


def _lstm_abstract(xg, h0, c0, w_hh, reverse=False):
    if len(xg.shape) != 3 or xg.shape[2] % 4:
        raise ShapeError(f"lstm_seq: gate inputs must be (T, B, 4H), got {xg.shape}")
    t, b, g = xg.shape
    h = g // 4
    if tuple(h0.shape) != (b, h) or tuple(c0.shape) != (b, h):
        raise ShapeError(f"lstm_seq: h0/c0 must be {(b, h)}, got {h0.shape} and {c0.shape}")
    if tuple(w_hh.shape) != (g, h):
        raise ShapeError(f"lstm_seq: w_hh must be {(g, h)}, got {w_hh.shape}")
    return (AbstractValue((t, b, h), xg.dtype), AbstractValue((t, b, h), xg.dtype),
            AbstractValue((t, b, g), xg.dtype))


class _SingleThreadBlas:
    """Scope in which NumPy's BLAS runs on one thread (re-entrant and thread-safe).

    NOTE: the recurrent loops issue one small GEMM per time step ((B, H) @ (H, 4H)).
    OpenBLAS's thread hand-off for such sizes costs more than it saves, and on a
    loaded machine (more runnable threads than cores) each step can wait for a
    descheduled worker: measured on 2 cores under load, an LSTM(64, 256) forward +
    backward at T=64, B=32 took 320-520 ms with 2 BLAS threads and 90-100 ms with one.
    The whole-sequence dW_hh GEMM of the backward runs in the same scope (under load:
    median 11 ms on one thread vs 16 ms on two). Without ``threadpoolctl`` this is a
    no-op.
    """

    __slots__ = ("_ctl", "_depth", "_lock", "_saved")

    def __init__(self):
        self._ctl = None
        self._depth = 0
        self._saved = None
        self._lock = threading.Lock()

    def _controller(self):
        if self._ctl is None:
            try:
                from threadpoolctl import ThreadpoolController
                self._ctl = ThreadpoolController().select(user_api="blas")
            except Exception:  # noqa: BLE001  (threadpoolctl is optional)
                self._ctl = False
        return self._ctl

    def __enter__(self):
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                ctl = self._controller()
                if ctl:
                    self._saved = ctl.limit(limits=1)
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved is not None:
                saved, self._saved = self._saved, None
                saved.restore_original_limits()
        return False


_single_thread_blas = _SingleThreadBlas()


def _lstm_impl(xg, h0, c0, w_hh, reverse=False):
    T, B, G = xg.shape
    H = G // 4
    dtype = xg.dtype
    # NOTE: internally the gates are stored in the order i, f, o, g (sigmoid gates
    # first, contiguous), and sigmoid(x) = 0.5 * tanh(x / 2) + 0.5: the i, f, o columns
    # of the input projection and of W_hh are pre-scaled by 1/2 so that one tanh call
    # covers all four gates and the sigmoid fix-up is two calls on one slice.
    acts = np.empty((T, B, G), dtype)
    np.multiply(xg[..., :2 * H], 0.5, out=acts[..., :2 * H])
    np.multiply(xg[..., 3 * H:], 0.5, out=acts[..., 2 * H:3 * H])
    acts[..., 3 * H:] = xg[..., 2 * H:3 * H]
    w_p = np.empty((G, H), dtype)
    np.multiply(w_hh[:2 * H], 0.5, out=w_p[:2 * H])
    np.multiply(w_hh[3 * H:], 0.5, out=w_p[2 * H:3 * H])
    w_p[3 * H:] = w_hh[2 * H:3 * H]
    w_t = np.ascontiguousarray(w_p.T)
    hs = np.empty((T, B, H), dtype)
    cs = np.empty((T, B, H), dtype)
    gbuf = np.empty((B, G), dtype)
    tmp = np.empty((B, H), dtype)
    h = h0.astype(dtype, copy=False)
    c = c0.astype(dtype, copy=False)
    H2, H3 = 2 * H, 3 * H
    steps = range(T - 1, -1, -1) if reverse else range(T)
    with _single_thread_blas:
        for t in steps:
            a = acts[t]
            np.matmul(h, w_t, out=gbuf)
            a += gbuf
            np.tanh(a, out=a)
            s = a[:, :H3]
            s *= 0.5
            s += 0.5
            c_new = cs[t]
            np.multiply(a[:, H:H2], c, out=c_new)
            np.multiply(a[:, :H], a[:, H3:], out=tmp)
            c_new += tmp
            h_new = hs[t]
            np.tanh(c_new, out=h_new)
            h_new *= a[:, H2:H3]
            h, c = h_new, c_new
    return hs, cs, acts


def _lstm_bwd_impl(g_hs, g_cs, hs, cs, acts, h0, c0, w_hh, reverse=False):
    # ``acts`` holds the gate activations in the internal order i, f, o, g (see
    # _lstm_impl); the gate gradients are written in PyTorch's order i, f, g, o.
    T, B, H = hs.shape
    G = 4 * H
    H2, H3 = 2 * H, 3 * H
    dtype = hs.dtype
    dgates = np.empty((T, B, G), dtype)
    dh = np.zeros((B, H), dtype)
    dc = np.zeros((B, H), dtype)
    tmp = np.empty((B, H), dtype)
    sd = np.empty((B, H3), dtype)
    tcs = np.tanh(cs)
    c0 = c0.astype(dtype, copy=False)
    steps = range(T) if reverse else range(T - 1, -1, -1)
    first = T - 1 if reverse else 0  # the step whose previous state is (h0, c0)
    w = np.ascontiguousarray(w_hh, dtype=dtype)
    with _single_thread_blas:
        for t in steps:
            a = acts[t]
            i, f, o, g = a[:, :H], a[:, H:H2], a[:, H2:H3], a[:, H3:]
            if t == first:
                c_prev = c0
            else:
                c_prev = cs[t + 1] if reverse else cs[t - 1]
            tc = tcs[t]
            dh += g_hs[t]
            d = dgates[t]
            dif, dg, do = d[:, :H2], d[:, H2:H3], d[:, H3:]
            # do = dh * tanh(c) (times sigmoid' below); dc += dh * o * (1 - tanh(c)^2)
            np.multiply(dh, tc, out=do)
            np.multiply(do, tc, out=tmp)
            np.subtract(dh, tmp, out=tmp)
            tmp *= o
            dc += tmp
            dc += g_cs[t]
            np.multiply(dc, g, out=d[:, :H])
            np.multiply(dc, c_prev, out=d[:, H:H2])
            np.multiply(dc, i, out=dg)
            dc *= f
            # through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2
            s = a[:, :H3]
            np.subtract(1.0, s, out=sd)
            sd *= s
            dif *= sd[:, :H2]
            do *= sd[:, H2:]
            np.multiply(g, g, out=tmp)
            np.subtract(1.0, tmp, out=tmp)
            dg *= tmp
            np.matmul(d, w, out=dh)
        if reverse:
            h_prev = np.concatenate([hs[1:], h0[None].astype(dtype, copy=False)], axis=0)
        else:
            h_prev = np.concatenate([h0[None].astype(dtype, copy=False), hs[:-1]], axis=0)
        dw = dgates.reshape(T * B, G).T @ h_prev.reshape(T * B, H)
    return dgates, dh, dc, dw


def _lstm_vjp(g, out, xg, h0, c0, w_hh, reverse=False):
    g_hs, g_cs, _ = g
    hs, cs, acts = out
    dxg, dh0, dc0, dw = bind(lstm_seq_bwd_p, (g_hs, g_cs, hs, cs, acts, h0, c0, w_hh),
                             {"reverse": reverse})
    return dxg, dh0, dc0, dw


def _lstm_bwd_abstract(g_hs, g_cs, hs, cs, acts, h0, c0, w_hh, reverse=False):
    return (AbstractValue(acts.shape, acts.dtype), AbstractValue(h0.shape, hs.dtype),
            AbstractValue(c0.shape, hs.dtype), AbstractValue(w_hh.shape, hs.dtype))


lstm_seq_p = Primitive("lstm_seq", "opaque", impl=_lstm_impl, abstract=_lstm_abstract,
                       vjp=_lstm_vjp, save=SAVE_BOTH, n_out=3,
                       doc="one LSTM layer over a sequence: (xg, h0, c0, w_hh) -> "
                           "(hs, cs, gate activations)")
lstm_seq_bwd_p = Primitive("lstm_seq_bwd", "opaque", impl=_lstm_bwd_impl,
                           abstract=_lstm_bwd_abstract, vjp=None, save=SAVE_NONE, n_out=4,
                           doc="the reverse recurrence of lstm_seq")


def lstm_seq(xg, h0, c0, w_hh, reverse: bool = False):
    """Run one LSTM layer direction over a sequence.

    Args:
        xg: ``(T, B, 4H)`` input projections ``x_t @ W_ih^T + b_ih + b_hh``.
        h0, c0: ``(B, H)`` initial states.
        w_hh: ``(4H, H)`` recurrent weights (gate order i, f, g, o).
        reverse: run from the last time step to the first.

    Returns:
        ``(hs, cs)``: hidden and cell states for every step, each ``(T, B, H)``
        (for ``reverse`` step ``t`` is still stored at index ``t``).
    """
    hs, cs, _ = bind(lstm_seq_p, (xg, h0, c0, w_hh), {"reverse": bool(reverse)})
    return hs, cs
