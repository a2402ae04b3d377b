"""Pooling: ``max_pool1d/2d avg_pool1d/2d adaptive_avg_pool1d/2d adaptive_max_pool2d``."""

from __future__ import annotations

import numpy as np

from ... import ops
from ...ops._core import ShapeError, refuse_integral
from ...ops.complex_refuse import refuse_complex
from ...ops.pooling import avg_pool2d_op, max_pool2d_op, pool_out_size
from ._util import pair

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "max_pool1d",
    "max_pool2d",
]


def _refuse_bool(input, op):
    # max pooling takes integers (PyTorch's kernels do) but not bools
    refuse_integral(op, input, kinds="b", message="{op}: not implemented for bool tensors")


def _pool_args(input, kernel_size, stride, padding, dilation, op):
    if input.ndim not in (3, 4):
        raise ShapeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape "
            f"{tuple(input.shape)}"
        )
    k = pair(kernel_size, "kernel_size", op)
    s = (
        k
        if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
        else pair(stride, "stride", op)
    )
    p = pair(padding, "padding", op)
    d = pair(dilation, "dilation", op)
    if min(k) <= 0 or min(s) <= 0 or min(d) <= 0:
        raise ValueError(
            f"{op}: kernel_size, stride and dilation must be positive, got "
            f"kernel_size={k}, stride={s}, dilation={d}"
        )
    if min(p) < 0:
        raise ValueError(f"{op}: pad must be non-negative, but got pad={p}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(
            f"{op}: pad should be at most half of effective kernel size, but got "
            f"pad={p}, kernel_size={k}"
        )
    return k, s, p, d


def _check_out(input, k, s, p, d, ceil_mode, op):
    h, w = input.shape[-2:]
    ho = pool_out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    wo = pool_out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if ho <= 0 or wo <= 0:
        raise ShapeError(
            f"{op}: input of shape {tuple(input.shape)} is too small for "
            f"kernel_size={k}, padding={p}, dilation={d}: output would be "
            f"{ho}x{wo}"
        )


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    refuse_complex("max_pool2d", input)
    op = "max_pool2d"
    _refuse_bool(input, op)
    k, s, p, d = _pool_args(input, kernel_size, stride, padding, dilation, op)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    _check_out(x, k, s, p, d, ceil_mode, op)
    r = max_pool2d_op(x, k, s, p, d, bool(ceil_mode), bool(return_indices))
    if unbatched:
        return tuple(t.squeeze(0) for t in r) if return_indices else r.squeeze(0)
    return r


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    refuse_complex("avg_pool2d", input)
    op = "avg_pool2d"
    refuse_integral(op, input)
    k, s, p, d = _pool_args(input, kernel_size, stride, padding, 1, op)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    _check_out(x, k, s, p, d, ceil_mode, op)
    if divisor_override is not None and int(divisor_override) == 0:
        raise ValueError(f"{op}: divisor must be not zero")
    r = avg_pool2d_op(
        x,
        k,
        s,
        p,
        bool(ceil_mode),
        bool(count_include_pad),
        int(divisor_override) if divisor_override else None,
    )
    return r.squeeze(0) if unbatched else r


def _one(v, name, op):
    return pair(v, name, op, 1)[0]


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    op = "max_pool1d"
    _refuse_bool(input, op)
    k = _one(kernel_size, "kernel_size", op)
    s = k if stride is None else _one(stride, "stride", op)
    r = max_pool2d(
        input.unsqueeze(-2),
        (1, k),
        (1, s),
        (0, _one(padding, "padding", op)),
        (1, _one(dilation, "dilation", op)),
        ceil_mode,
        return_indices,
    )
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    refuse_complex("avg_pool1d", input)
    op = "avg_pool1d"
    refuse_integral(op, input)
    k = _one(kernel_size, "kernel_size", op)
    s = k if stride is None else _one(stride, "stride", op)
    return avg_pool2d(
        input.unsqueeze(-2),
        (1, k),
        (1, s),
        (0, _one(padding, "padding", op)),
        ceil_mode,
        count_include_pad,
    ).squeeze(-2)


def _adaptive_matrix(n_in, n_out, dtype):
    """(n_out, n_in) averaging matrix with PyTorch's adaptive bins."""
    m = np.zeros((n_out, n_in), dtype)
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def _out_size(output_size, in_hw, op):
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    if len(output_size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(in_hw[i] if o is None else int(o) for i, o in enumerate(output_size))
    if any(o < 0 for o in out):
        raise ValueError(f"{op}: output_size must be >= 0, got {output_size!r}")
    return out


def _empty_pool(input, oh, ow):
    """The (..., oh, ow) result of an adaptive pool with no output element (oh or ow 0, an
    empty tensor as PyTorch returns), still connected to ``input`` for autograd."""
    return input.amax((-2, -1), keepdim=True).expand(*input.shape[:-2], oh, ow)


def adaptive_avg_pool2d(input, output_size):
    refuse_complex("adaptive_avg_pool2d", input)
    refuse_integral("adaptive_avg_pool2d", input)
    return _adaptive_avg_pool2d(input, output_size)


def _adaptive_avg_pool2d(input, output_size):
    op = "adaptive_avg_pool2d"
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    h, w = input.shape[-2:]
    oh, ow = _out_size(output_size, (h, w), op)
    if (oh, ow) == (1, 1):
        return input.mean((-2, -1), keepdim=True)
    if not oh or not ow:
        return _empty_pool(input, oh, ow)
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    from ..._creation import from_numpy

    dt = input._data.dtype
    mh = from_numpy(_adaptive_matrix(h, oh, dt))
    mw = from_numpy(np.ascontiguousarray(_adaptive_matrix(w, ow, dt).T))
    return ops.matmul(ops.matmul(mh, input), mw)


def adaptive_avg_pool1d(input, output_size):
    refuse_integral("adaptive_avg_pool1d", input)
    o = output_size[0] if isinstance(output_size, (list, tuple)) else output_size
    # (PyTorch averages complex inputs in 1-D, and refuses them in 2-D)
    return _adaptive_avg_pool2d(input.unsqueeze(-2), (1, o)).squeeze(-2)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    refuse_complex("adaptive_max_pool2d", input)
    op = "adaptive_max_pool2d"
    _refuse_bool(input, op)
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    h, w = input.shape[-2:]
    oh, ow = _out_size(output_size, (h, w), op)
    if not oh or not ow:
        out = _empty_pool(input, oh, ow)
        if return_indices:
            from ..._creation import zeros
            from ..._dtype import int64

            return out, zeros(out.shape, dtype=int64)
        return out
    if h % oh == 0 and w % ow == 0:
        return max_pool2d(input, (h // oh, w // ow), return_indices=return_indices)
    if return_indices:
        return _adaptive_max_with_indices(input, h, w, oh, ow)
    rows = []
    for i in range(oh):
        a, b = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = []
        for j in range(ow):
            c, d = (j * w) // ow, -(-((j + 1) * w) // ow)
            cols.append(input[..., a:b, c:d].amax((-2, -1)))
        rows.append(ops.stack(cols, -1))
    return ops.stack(rows, -2)


def _adaptive_max_with_indices(input, h, w, oh, ow):
    """Adaptive max pooling over uneven bins with the flat ``h * w`` index of each maximum
    (the first one on ties, as PyTorch); the values are gathered at those indices, so the
    gradient goes to the chosen element only."""
    idx_rows = []
    for i in range(oh):
        a, b = (i * h) // oh, -(-((i + 1) * h) // oh)
        cols = []
        for j in range(ow):
            c, d = (j * w) // ow, -(-((j + 1) * w) // ow)
            win = input[..., a:b, c:d].detach().reshape(*input.shape[:-2], -1)
            k = win.argmax(-1)  # position inside the (b - a) x (d - c) window
            cols.append((k // (d - c) + a) * w + (k % (d - c) + c))
        idx_rows.append(ops.stack(cols, -1))
    idx = ops.stack(idx_rows, -2)
    flat = input.reshape(*input.shape[:-2], h * w)
    vals = ops.take_along_dim(flat, idx.reshape(*idx.shape[:-2], oh * ow), -1)
    return vals.reshape(*idx.shape), idx


def adaptive_max_pool1d(input, output_size, return_indices=False):
    o = output_size[0] if isinstance(output_size, (list, tuple)) else output_size
    r = adaptive_max_pool2d(input.unsqueeze(-2), (1, o), return_indices)
    if return_indices:
        return r[0].squeeze(-2), r[1].squeeze(-2)
    return r.squeeze(-2)
