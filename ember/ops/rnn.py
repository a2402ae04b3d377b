"""Fused recurrent primitives: a whole LSTM layer pass over a sequence.

``lstm_seq`` runs the recurrence of one LSTM layer in one direction. The input
projection ``x @ W_ih^T + b`` for every time step is computed beforehand by the caller
in one matmul; the per-step loop does one ``(B, H) @ (H, 4H)`` matmul and the gate
arithmetic in place, in preallocated buffers. Its VJP binds ``lstm_seq_bwd``, which
runs the reverse recurrence in the same style (this backward is not differentiable
again: double backward through an LSTM raises).

Gate order is PyTorch's: ``i, f, g, o``.
"""

from __future__ import annotations

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


def _lstm_impl(xg, h0, c0, w_hh, reverse=False):
    T, B, G = xg.shape
    H = G // 4
    dtype = xg.dtype
    # NOTE: sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so scaling the i, f, o columns by 1/2
    # lets one tanh call cover all four gates.
    scale = np.full(G, 0.5, dtype)
    scale[2 * H:3 * H] = 1.0
    xs = xg * scale
    w_t = np.ascontiguousarray(w_hh.T * scale, dtype=dtype)
    hs = np.empty((T, B, H), dtype)
    cs = np.empty((T, B, H), dtype)
    acts = np.empty((T, B, G), dtype)
    tmp = np.empty((B, H), dtype)
    h = h0.astype(dtype, copy=False)
    c = c0.astype(dtype, copy=False)
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        a = acts[t]
        np.matmul(h, w_t, out=a)
        a += xs[t]
        np.tanh(a, out=a)
        a[:, :2 * H] *= 0.5
        a[:, :2 * H] += 0.5
        a[:, 3 * H:] *= 0.5
        a[:, 3 * H:] += 0.5
        c_new = cs[t]
        np.multiply(a[:, H:2 * H], c, out=c_new)
        np.multiply(a[:, :H], a[:, 2 * H:3 * H], out=tmp)
        c_new += tmp
        h_new = hs[t]
        np.tanh(c_new, out=h_new)
        h_new *= a[:, 3 * H:]
        h, c = h_new, c_new
    return hs, cs, acts


def _lstm_bwd_impl(g_hs, g_cs, hs, cs, acts, h0, c0, w_hh, reverse=False):
    T, B, H = hs.shape
    G = 4 * H
    dtype = hs.dtype
    dgates = np.empty((T, B, G), dtype)
    dh = np.zeros((B, H), dtype)
    dc = np.zeros((B, H), dtype)
    tc = np.empty((B, H), dtype)
    tmp = np.empty((B, H), dtype)
    steps = range(T) if reverse else range(T - 1, -1, -1)
    first = T - 1 if reverse else 0  # the step whose previous state is (h0, c0)
    w = np.ascontiguousarray(w_hh, dtype=dtype)
    for t in steps:
        a = acts[t]
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        if t == first:
            c_prev = c0
        else:
            c_prev = cs[t + 1] if reverse else cs[t - 1]
        dh += g_hs[t]
        np.tanh(cs[t], out=tc)
        d = dgates[t]
        do = d[:, 3 * H:]
        np.multiply(dh, tc, out=do)
        # dc += g_cs + dh * o * (1 - tanh(c)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        dc += g_cs[t]
        di, df, dg = d[:, :H], d[:, H:2 * H], d[:, 2 * H:3 * H]
        np.multiply(dc, g, out=di)
        np.multiply(dc, i, out=dg)
        np.multiply(dc, c_prev, out=df)
        dc *= f
        # through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2
        for dx, s in ((di, i), (df, f), (do, o)):
            np.subtract(1.0, s, out=tmp)
            tmp *= s
            dx *= tmp
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
