"""The int8 primitives of ember's quantized modules, in NumPy: the same integers as ember.

Activations are quantized to uint8 with PyTorch's rounding (one float32 rounding of
``x * float32(1/scale) + zero_point``, half to even, clamped to 0..255); the int8 weight
(per-output-channel scales) is multiplied exactly: uint8 x int8 products summed as float32
through BLAS stay integers below ``2**24`` for chunks of at most 512 along K (chunk sums are
added in float64, exact as well), so the accumulators equal ember's int32 ones. The epilogue
is ember's: ``float32(acc - zp * colsum) * (float32(scale) * w_scale) + bias`` (then ReLU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["QUANT_PRIMS"]

_K_CHUNK = 512  # 512 * 255 * 128 < 2**24
_EPS = float(np.finfo(np.float32).eps)


def _quantize_u8(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    inv = np.float64(np.float32(1.0) / np.float32(scale))
    v = np.asarray(x, np.float32).astype(np.float64) * inv + np.float64(zp)
    return np.clip(np.rint(v.astype(np.float32)), 0, 255).astype(np.uint8)


def _gemm(a: np.ndarray, q: np.ndarray, w_scale, bias, scale: float, zp: int, relu: bool):
    """uint8 ``a (M, K)`` times int8 ``q (N, K)``: the dequantized float32 ``(M, N)``."""
    wt = q.T.astype(np.float32)
    k = a.shape[1]
    if k <= _K_CHUNK:
        acc = a.astype(np.float32) @ wt
    else:
        acc = np.zeros((a.shape[0], wt.shape[1]), np.float64)
        for s in range(0, k, _K_CHUNK):
            acc += a[:, s : s + _K_CHUNK].astype(np.float32) @ wt[s : s + _K_CHUNK]
    colsum = q.sum(axis=1, dtype=np.int32)
    y = (acc - np.float64(zp) * colsum).astype(np.float32)
    y *= np.float32(scale) * np.asarray(w_scale, np.float32)
    if bias is not None:
        y += bias
    return np.maximum(y, 0, out=y) if relu else y


def _dynamic_qparams(x: np.ndarray) -> tuple[float, int]:
    if x.size == 0:
        return 1.0, 0
    lo, hi = float(x.min()), float(x.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("dynamic quantization: the input contains inf or nan")
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max((hi - lo) / 255, _EPS)
    return scale, int(np.clip(0 - round(lo / scale), 0, 255))


def _dynamic_gemm(x: np.ndarray, q: np.ndarray, w_scale, bias) -> np.ndarray:
    scale, zp = _dynamic_qparams(x)
    return _gemm(_quantize_u8(x, scale, zp), q, w_scale, bias, scale, zp, False)


def quantized_linear(x, w, s, b=None, *, scale, zero_point, relu):
    lead = x.shape[:-1]
    a = _quantize_u8(x.reshape(-1, w.shape[1]), scale, zero_point)
    return _gemm(a, w, s, b, scale, zero_point, relu).reshape(lead + (w.shape[0],))


def quantized_linear_dynamic(x, w, s, b=None):
    lead = x.shape[:-1]
    y = _dynamic_gemm(np.asarray(x, np.float32).reshape(-1, w.shape[1]), w, s, b)
    return y.reshape(lead + (w.shape[0],))


def quantized_conv2d(x, w, s, b=None, *, scale, zero_point, stride, padding, dilation, relu):
    bsz, c, h, wd = x.shape
    n, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(
        _quantize_u8(x, scale, zero_point),
        ((0, 0), (0, 0), (ph, ph), (pw, pw)),
        constant_values=zero_point,
    )
    win = np.lib.stride_tricks.sliding_window_view(
        xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3)
    )[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh, :ow]
    cols = win.transpose(0, 2, 3, 4, 5, 1).reshape(bsz * oh * ow, kh * kw * c)
    wk = w.transpose(0, 2, 3, 1).reshape(n, -1)  # the same (kh, kw, c) order
    y = _gemm(cols, wk, s, b, scale, zero_point, relu)
    return y.reshape(bsz, oh, ow, n).transpose(0, 3, 1, 2)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def quantized_lstm_dynamic(*args, num_layers, bidirectional, has_hx, has_bias):
    x = args[0]
    k = 3 if has_hx else 1
    per = 5 if has_bias else 4
    dirs = 2 if bidirectional else 1
    cells = []
    for _ in range(num_layers * dirs):
        c = args[k : k + per]
        cells.append((c[0], c[1], c[2] if has_bias else None, c[-2], c[-1]))
        k += per
    t_len, bsz = x.shape[0], x.shape[1]
    hsz = cells[0][3].shape[1]
    if has_hx:
        h0, c0 = args[1], args[2]
    else:
        h0 = c0 = np.zeros((num_layers * dirs, bsz, hsz), np.float32)
    hn, cn = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            i = layer * dirs + d
            w_ih, s_ih, b, w_hh, s_hh = cells[i]
            xs = x[::-1] if d else x
            gx = _dynamic_gemm(np.ascontiguousarray(xs.reshape(t_len * bsz, -1)), w_ih, s_ih, b)
            gx = gx.reshape(t_len, bsz, 4 * hsz)
            h, c = h0[i], c0[i]
            out = np.empty((t_len, bsz, hsz), np.float32)
            for t in range(t_len):
                g = gx[t] + _dynamic_gemm(h, w_hh, s_hh, None)
                ig, fg = _sigmoid(g[:, :hsz]), _sigmoid(g[:, hsz : 2 * hsz])
                gg, og = np.tanh(g[:, 2 * hsz : 3 * hsz]), _sigmoid(g[:, 3 * hsz :])
                c = fg * c + ig * gg
                h = og * np.tanh(c)
                out[t] = h
            outs.append(out[::-1] if d else out)
            hn.append(h)
            cn.append(c)
        x = outs[0] if dirs == 1 else np.concatenate(outs, axis=2)
    h_n = np.stack(hn).astype(np.float32, copy=False)
    c_n = np.stack(cn).astype(np.float32, copy=False)
    return np.ascontiguousarray(x), h_n, c_n


QUANT_PRIMS: dict[str, Callable[..., Any]] = {
    "quantized_linear": quantized_linear,
    "quantized_linear_dynamic": quantized_linear_dynamic,
    "quantized_conv2d": quantized_conv2d,
    "quantized_lstm_dynamic": quantized_lstm_dynamic,
}
