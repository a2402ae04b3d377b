"""Network-layer primitives in NumPy: linear, convolution, pooling, normalization, attention,
recurrence, and the activations that need care (a stable sigmoid, erf-based GELU)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["NN_PRIMS", "erf", "gelu", "log_softmax", "sigmoid", "softmax", "vector_norm"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0: relative error below 1.2e-7
# everywhere (the classic Chebyshev fit), so results stay within float32 rounding.
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _erfc64(z: np.ndarray) -> np.ndarray:
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = np.zeros_like(t)
    for c in reversed(_ERFC):
        poly = poly * t + c
    r = t * np.exp(-a * a + poly)
    return np.where(z >= 0, r, 2.0 - r)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function (float64 inside; a series near 0, where 1 - erfc loses digits).

    Example:
        >>> round(float(erf(np.array(0.5))), 6)
        0.5205
    """
    z = np.asarray(x, np.float64)
    small = np.abs(z) < 0.5
    z2 = z * z
    term = z.copy()
    series = z.copy()
    for n in range(1, 12):  # |z| < 0.5: 11 terms reach double precision
        term = term * -z2 / n
        series = series + term / (2 * n + 1)
    series *= 2.0 / math.sqrt(math.pi)
    r = np.where(small, series, 1.0 - _erfc64(z))
    return r.astype(x.dtype, copy=False) if x.dtype.kind == "f" else r


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU: ``x * Phi(x)`` (exact, through erfc) or its tanh approximation."""
    z = np.asarray(x, np.float64)
    if approximate == "tanh":
        r = 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)))
    else:
        r = 0.5 * z * _erfc64(-z * _INV_SQRT2)
    return r.astype(x.dtype, copy=False)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow (through tanh)."""
    h = x.dtype.type(0.5) if x.dtype.kind == "f" else 0.5
    return np.tanh(x * h) * h + h


def softmax(x: np.ndarray, dim: int) -> np.ndarray:
    if x.ndim == 0:
        return np.ones_like(x)
    m = np.amax(x, axis=dim, keepdims=True)
    e = np.exp(x - np.where(np.isfinite(m), m, 0))
    return e / np.sum(e, axis=dim, keepdims=True)


def log_softmax(x: np.ndarray, dim: int) -> np.ndarray:
    if x.ndim == 0:
        return np.zeros_like(x)
    m = np.amax(x, axis=dim, keepdims=True)
    s = x - np.where(np.isfinite(m), m, 0)
    return s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))


def vector_norm(x: np.ndarray, ord: Any, dims: Any, keepdim: bool) -> np.ndarray:
    ax = None if dims is None else tuple(dims)
    a = np.abs(x)
    if ord == math.inf:
        return np.amax(a, axis=ax, keepdims=keepdim)
    if ord == -math.inf:
        return np.amin(a, axis=ax, keepdims=keepdim)
    if ord == 0:
        return np.sum(a != 0, axis=ax, keepdims=keepdim).astype(x.dtype)
    p = x.dtype.type(ord)
    return np.sum(a**p, axis=ax, keepdims=keepdim) ** (1 / p)


# -- linear and convolution ----------------------------------------------------------------
def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    out = x @ w.T
    return out if b is None else out + b


def _conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    *,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """Convolution; ``padding`` is (top, bottom, left, right). Depthwise: one multiply-add
    per kernel tap; otherwise im2col columns laid out (channels*taps, images*pixels) so that
    each group is one large GEMM (not one small GEMM per image)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ho = (h + padding[0] + padding[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + padding[2] + padding[3] - dw * (kw - 1) - 1) // sw + 1
    hspan, wspan = (ho - 1) * sh + 1, (wo - 1) * sw + 1
    if any(padding):
        x = np.pad(x, ((0, 0), (0, 0), padding[:2], padding[2:]))
    taps = [
        x[:, :, i * dh : i * dh + hspan : sh, j * dw : j * dw + wspan : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    if cg == 1 and groups == c == o:  # depthwise
        wt = w.reshape(o, kh * kw)
        out = taps[0] * wt[:, 0].reshape(1, o, 1, 1)
        for k, v in enumerate(taps[1:], 1):
            out += v * wt[:, k].reshape(1, o, 1, 1)
    else:
        cols = np.empty((c, kh * kw, n, ho, wo), x.dtype)
        for k, v in enumerate(taps):
            cols[:, k] = v.transpose(1, 0, 2, 3)
        cols = cols.reshape(groups, cg * kh * kw, n * ho * wo)
        res = np.matmul(w.reshape(groups, o // groups, cg * kh * kw), cols)
        out = res.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
    if b is not None:
        out = out + b.reshape(1, o, 1, 1)
    return out.astype(x.dtype, copy=False)


def _conv2d_grad_input(
    g: np.ndarray,
    w: np.ndarray,
    *,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    in_hw: tuple[int, int],
) -> np.ndarray:
    """The adjoint of :func:`_conv2d` (what ``ConvTranspose1d/2d/3d`` and ``fold`` run): the
    gradient of a convolution's (N, C, *in_hw) input for its output ``g`` (N, O, Ho, Wo).
    One GEMM per group makes the columns (channels*taps, images*pixels), which are then
    added, one kernel tap at a time, into a strided view of the (padded) result; the
    padding (top, bottom, left, right) is cropped off (a negative bottom/right padding is
    the transposed convolution's ``output_padding``: rows no tap reaches, left zero).

    Example:
        >>> g = np.ones((1, 1, 2, 2), np.float32)
        >>> _conv2d_grad_input(g, np.ones((1, 1, 2, 2), np.float32), stride=(1, 1),
        ...     padding=(0, 0, 0, 0), dilation=(1, 1), groups=1, in_hw=(3, 3))[0, 0].tolist()
        [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    n, o, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    h, wd = in_hw
    og, c = o // groups, cg * groups
    hspan, wspan = (ho - 1) * sh + 1, (wo - 1) * sw + 1
    # the result, padded: row r of the convolution's padded input is row r - top of the result
    top, left = padding[0], padding[2]
    front_h, front_w = max(-top, 0), max(-left, 0)  # a negative leading padding: a margin
    hp = front_h + max(dh * (kh - 1) + hspan, top + h)
    wp = front_w + max(dw * (kw - 1) + wspan, left + wd)
    wt = w.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1)
    gm = g.transpose(1, 0, 2, 3).reshape(groups, og, n * ho * wo)
    cols = np.matmul(wt, gm).reshape(c, kh, kw, n, ho, wo)
    out = np.zeros((c, n, hp, wp), np.result_type(g.dtype, w.dtype))
    for i in range(kh):
        for j in range(kw):
            a, b = front_h + i * dh, front_w + j * dw
            out[:, :, a : a + hspan : sh, b : b + wspan : sw] += cols[:, i, j]
    a, b = front_h + top, front_w + left
    return np.ascontiguousarray(out[:, :, a : a + h, b : b + wd].transpose(1, 0, 2, 3))


# -- pooling -------------------------------------------------------------------------------
def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    num = n + 2 * p - (d * (k - 1) + 1)
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:  # the last window must start inside the input
        o -= 1
    return o


def _windows(
    x: np.ndarray, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool, fill: Any
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The padded input and one strided view per kernel offset (row-major order)."""
    h, w = x.shape[2:]
    ho = _pool_out(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    wo = _pool_out(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    hp = max(h + 2 * padding[0], (ho - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1)
    wp = max(w + 2 * padding[1], (wo - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1)
    xp = np.pad(
        x,
        ((0, 0), (0, 0), (padding[0], hp - h - padding[0]), (padding[1], wp - w - padding[1])),
        constant_values=fill,
    )
    hspan, wspan = (ho - 1) * stride[0] + 1, (wo - 1) * stride[1] + 1
    views = []
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            a, b = i * dilation[0], j * dilation[1]
            views.append(xp[:, :, a : a + hspan : stride[0], b : b + wspan : stride[1]])
    return xp, views


def _max_pool2d(
    x: np.ndarray, *, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling; the second output is the offset of the maximum inside its window (what
    ember's kernel returns for its backward), the last NaN winning as in PyTorch."""
    fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    _, views = _windows(x, kernel, stride, padding, dilation, ceil_mode, fill)
    best = views[0].copy()
    idx = np.zeros(best.shape, np.int8 if len(views) < 127 else np.int32)
    for k, v in enumerate(views[1:], 1):
        m = v > best
        if v.dtype.kind == "f":
            m |= np.isnan(v)
        best = np.where(m, v, best)
        idx[m] = k
    return best, idx


def _avg_pool2d(
    x: np.ndarray,
    *,
    kernel: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Any,
    in_hw: Any = None,
) -> np.ndarray:
    h, w = x.shape[2:]
    _, views = _windows(x, kernel, stride, padding, (1, 1), ceil_mode, 0)
    acc = views[0].copy()
    for v in views[1:]:
        acc += v
    if divisor_override:
        return acc / x.dtype.type(divisor_override)
    sizes = []
    for n, o, k, s, p in zip((h, w), acc.shape[2:], kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        sizes.append(
            end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0)
        )
    return acc / np.multiply.outer(sizes[0], sizes[1]).astype(x.dtype)


# -- normalization -------------------------------------------------------------------------
def _layer_norm(
    x: np.ndarray, w: np.ndarray | None = None, b: np.ndarray | None = None, *, k: int, eps: float
) -> np.ndarray:
    ax = tuple(range(x.ndim - k, x.ndim))
    mu = np.mean(x, axis=ax, keepdims=True)
    d = x - mu
    var = np.mean(d * d, axis=ax, keepdims=True)
    y = d / np.sqrt(var + x.dtype.type(eps))
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y.astype(x.dtype, copy=False)


def _rms_norm(x: np.ndarray, w: np.ndarray | None = None, *, k: int, eps: Any) -> np.ndarray:
    ax = tuple(range(x.ndim - k, x.ndim))
    if eps is None:
        eps = np.finfo(x.dtype).eps
    y = x / np.sqrt(np.mean(x * x, axis=ax, keepdims=True) + x.dtype.type(eps))
    return (y if w is None else y * w).astype(x.dtype, copy=False)


# -- attention -----------------------------------------------------------------------------
def _sdpa(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, *, scale: float, causal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention; also the log-sum-exp per row (ember's second output)."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)
    if causal:
        s = np.where(np.triu(np.ones(s.shape[-2:], bool), 1), q.dtype.type(-np.inf), s)
    m = np.amax(s, axis=-1, keepdims=True)
    e = np.exp(s - m)
    total = np.sum(e, axis=-1, keepdims=True)
    out = np.matmul(e / total, v)
    return out, (np.log(total) + m)[..., 0]


def _softmax_scale_mask(
    x: np.ndarray, mask: np.ndarray | None = None, *, scale: float, masked: Any = None
) -> np.ndarray:
    z = x * x.dtype.type(scale)
    if mask is not None:
        z = z + mask.astype(x.dtype)
    return softmax(z, x.ndim - 1)


# -- embedding and recurrence --------------------------------------------------------------
def _embedding(w: np.ndarray, idx: np.ndarray, *, padding_idx: Any = None) -> np.ndarray:
    return w[idx]


def _lstm_seq(
    x: np.ndarray,
    w_ih: np.ndarray,
    b: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    w_hh: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM layer over a (T, B, In) sequence (gates i, f, g, o as PyTorch): the hidden and
    cell states of every step, and the gate activations (ember's backward reads them, in the
    order i, f, o, g, shape (T, 4H, B))."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    pre = (x.reshape(T * B, -1) @ w_ih.T + b).reshape(T, B, 4 * H)
    hs = np.empty((T, B, H), x.dtype)
    cs = np.empty((T, B, H), x.dtype)
    acts = np.empty((T, 4 * H, B), x.dtype)
    h, c = h0, c0
    for t in range(T - 1, -1, -1) if reverse else range(T):
        g = pre[t] + h @ w_hh.T
        i, f, gg, o = (g[:, k * H : (k + 1) * H] for k in range(4))
        i, f, o, gg = sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(gg)
        c = f * c + i * gg
        h = o * np.tanh(c)
        hs[t], cs[t] = h, c
        acts[t] = np.concatenate([i, f, o, gg], axis=1).T
    return hs, cs, acts


def _gru_seq(
    x: np.ndarray,
    w_ih: np.ndarray,
    b_ih: np.ndarray,
    h0: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One GRU layer (gates r, z, n as PyTorch): the hidden states, and the activations
    ember's backward reads (r, z, n and W_hn h + b_hn per step, shape (T, 4H, B))."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    pre = (x.reshape(T * B, -1) @ w_ih.T + b_ih).reshape(T, B, 3 * H)
    hs = np.empty((T, B, H), x.dtype)
    acts = np.empty((T, 4 * H, B), x.dtype)
    h = h0
    for t in range(T - 1, -1, -1) if reverse else range(T):
        gh = h @ w_hh.T + b_hh
        r = sigmoid(pre[t, :, :H] + gh[:, :H])
        z = sigmoid(pre[t, :, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(pre[t, :, 2 * H :] + r * gh[:, 2 * H :])
        h = n + z * (h - n)
        hs[t] = h
        acts[t] = np.concatenate([r, z, n, gh[:, 2 * H :]], axis=1).T
    return hs, acts


def _rnn_seq(
    x: np.ndarray,
    w_ih: np.ndarray,
    b: np.ndarray,
    h0: np.ndarray,
    w_hh: np.ndarray,
    reverse: bool = False,
    relu: bool = False,
) -> np.ndarray:
    """One Elman RNN layer: ``h' = act(W_ih x + b + W_hh h)``, act tanh or relu."""
    T, B, _ = x.shape
    pre = (x.reshape(T * B, -1) @ w_ih.T + b).reshape(T, B, -1)
    hs = np.empty(pre.shape, x.dtype)
    h = h0
    for t in range(T - 1, -1, -1) if reverse else range(T):
        v = pre[t] + h @ w_hh.T
        h = np.maximum(v, x.dtype.type(0)) if relu else np.tanh(v)
        hs[t] = h
    return hs


NN_PRIMS: dict[str, Callable[..., Any]] = {
    "gru_seq": _gru_seq,
    "rnn_seq": _rnn_seq,
    "linear": _linear,
    "conv2d": _conv2d,
    "conv2d_grad_input": _conv2d_grad_input,
    "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d,
    "layer_norm": _layer_norm,
    "rms_norm": _rms_norm,
    "sdpa": _sdpa,
    "softmax_scale_mask": _softmax_scale_mask,
    "embedding": _embedding,
    "lstm_seq": _lstm_seq,
}
