"""3-D (volumetric) convolution and pooling with PyTorch's signatures: ``conv3d``,
``avg_pool3d``, ``max_pool3d`` (``return_indices`` too), ``lp_pool3d``, ``adaptive_avg_pool3d``
and ``adaptive_max_pool3d``.

They are compositions of the 2-D kernels and strided slices (a 3-D convolution is a sum of
2-D convolutions over the kernel's depth), so every gradient comes from existing primitives.
They are exact and meant for correctness and portability; the 2-D kernels are the fast path.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> x = ember.ones(1, 2, 4, 4, 4)
    >>> tuple(F.conv3d(x, ember.ones(3, 2, 2, 2, 2)).shape)
    (1, 3, 3, 3, 3)
    >>> F.avg_pool3d(x, 2).shape[-1]
    2
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._core import ShapeError
from ...ops.complex_refuse import refuse_complex

__all__ = [
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "adaptive_max_pool3d_with_indices",
    "avg_pool3d",
    "conv3d",
    "lp_pool3d",
    "max_pool3d",
    "max_pool3d_with_indices",
]


def _triple(v, name: str, op: str) -> tuple[int, int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 3
    t = tuple(int(a) for a in v)
    if len(t) == 1:
        return t * 3
    if len(t) != 3:
        raise ValueError(f"{op}: {name} must be an int or 3 ints, got {v!r}")
    return (t[0], t[1], t[2])


def _batched(input, op: str):
    if input.ndim == 4:
        return input.unsqueeze(0), True
    if input.ndim != 5:
        raise ShapeError(f"{op}: expected a 4-D or 5-D input, got shape {tuple(input.shape)}")
    return input, False


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of ``(N, C_in, D, H, W)`` (or unbatched) with
    ``(C_out, C_in / groups, kD, kH, kW)`` weights; ``padding`` an int, 3 ints, 'valid' or
    'same' (stride 1)."""
    from .conv import conv2d
    from .sampling import pad as pad_

    op = "conv3d"
    x, unbatched = _batched(input, op)
    if weight.ndim != 5:
        raise ShapeError(f"{op}: weight must be 5-D, got shape {tuple(weight.shape)}")
    s = _triple(stride, "stride", op)
    dl = _triple(dilation, "dilation", op)
    k = tuple(weight.shape[2:])
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0, 0)
        elif padding == "same":
            if s != (1, 1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            total = [dl[i] * (k[i] - 1) for i in range(3)]
            lo = [t // 2 for t in total]
            x = pad_(x, (lo[2], total[2] - lo[2], lo[1], total[1] - lo[1], lo[0], total[0] - lo[0]))
            p = (0, 0, 0)
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same' or ints, got {padding!r}")
    else:
        p = _triple(padding, "padding", op)
    if x.shape[1] != weight.shape[1] * groups:
        raise ShapeError(
            f"{op}: expected input with {weight.shape[1] * groups} channels, got {x.shape[1]}"
        )
    if p[0]:
        x = pad_(x, (0, 0, 0, 0, p[0], p[0]))
    d_in = x.shape[2]
    d_out = (d_in - dl[0] * (k[0] - 1) - 1) // s[0] + 1
    if d_out <= 0:
        raise ShapeError(f"{op}: the kernel is larger than the (padded) input depth")
    slices = []
    for o in range(d_out):
        acc = None
        for kd in range(k[0]):
            y = conv2d(
                x[:, :, o * s[0] + kd * dl[0]],
                weight[:, :, kd],
                None,
                s[1:],
                p[1:],
                dl[1:],
                groups,
            )
            acc = y if acc is None else acc + y
        slices.append(acc)
    out = ops.stack(slices, 2)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op):
    k = _triple(kernel_size, "kernel_size", op)
    s = (
        k
        if stride is None or (not isinstance(stride, int) and len(stride) == 0)
        else _triple(stride, "stride", op)
    )
    p = _triple(padding, "padding", op)
    dl = _triple(dilation, "dilation", op)
    for i in range(3):
        if p[i] * 2 > k[i]:
            raise ValueError(f"{op}: padding should be at most half of the kernel size, got {p}")
    outs = []
    for i in range(3):
        n = x.shape[2 + i] + 2 * p[i] - dl[i] * (k[i] - 1) - 1
        o = (-(-n // s[i]) if ceil_mode else n // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= x.shape[2 + i] + p[i]:
            o -= 1  # the last window must start inside the input or its left padding
        if o <= 0:
            raise ShapeError(f"{op}: the output would be empty for input {tuple(x.shape)}")
        outs.append(o)
    return k, s, p, dl, tuple(outs)


def _windows(xp, k, s, dl, outs):
    """``(offset, view)`` for every kernel offset: the strided slice of the padded input that
    offset touches in each output window."""
    for off in itertools.product(*[range(n) for n in k]):
        sl = tuple(
            slice(off[i] * dl[i], off[i] * dl[i] + (outs[i] - 1) * s[i] + 1, s[i]) for i in range(3)
        )
        index = (slice(None), slice(None)) + sl
        yield off, xp[index]


def _pad_to(x, p, outs, k, s, dl, value):
    from .sampling import pad as pad_

    extra = [
        max(0, (outs[i] - 1) * s[i] + dl[i] * (k[i] - 1) + 1 - (x.shape[2 + i] + 2 * p[i]))
        for i in range(3)
    ]
    if not any(p) and not any(extra):
        return x
    return pad_(
        x, (p[2], p[2] + extra[2], p[1], p[1] + extra[1], p[0], p[0] + extra[0]), value=value
    )


def avg_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """3-D average pooling (``count_include_pad``: zero padding counts in the divisor)."""
    refuse_complex("avg_pool3d", input)
    op = "avg_pool3d"
    x, unbatched = _batched(input, op)
    k, s, p, dl, outs = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, op)
    xp = _pad_to(x, p, outs, k, s, dl, 0.0)
    total = None
    for _, v in _windows(xp, k, s, dl, outs):
        total = v if total is None else total + v
    if divisor_override:
        out = total / float(divisor_override)
    else:
        # the divisor: window cells inside the input, and with count_include_pad also those
        # in the zero padding (never the ceil-mode overhang past it)
        if count_include_pad:
            inner = C.ones(1, 1, *[x.shape[2 + i] + 2 * p[i] for i in range(3)], dtype=x.dtype)
            ones = _pad_to(inner, (0, 0, 0), outs, k, s, dl, 0.0)
        else:
            ones = _pad_to(C.ones(1, 1, *x.shape[2:], dtype=x.dtype), p, outs, k, s, dl, 0.0)
        count = None
        for _, v in _windows(ones, k, s, dl, outs):
            count = v if count is None else count + v
        out = total / count
    return out.squeeze(0) if unbatched else out


def max_pool3d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """3-D max pooling; with ``return_indices`` also the flat ``D*H*W`` index of each
    maximum (the first on ties), the gradient going to that element only."""
    refuse_complex("max_pool3d", input)
    op = "max_pool3d"
    x, unbatched = _batched(input, op)
    k, s, p, dl, outs = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op)
    xp = _pad_to(x.detach(), p, outs, k, s, dl, -math.inf)
    best = None
    best_idx = None
    H, W = x.shape[3:]
    grids = np.meshgrid(*[np.arange(o) * s[i] - p[i] for i, o in enumerate(outs)], indexing="ij")
    for off, v in _windows(xp, k, s, dl, outs):
        pos = [grids[i] + off[i] * dl[i] for i in range(3)]
        flat = C.tensor((pos[0] * H + pos[1]) * W + pos[2])
        if best is None:
            best, best_idx = v, flat.expand(*v.shape)
        else:
            better = v > best
            best = ops.where(better, v, best)
            best_idx = ops.where(better, flat, best_idx)
    idx = best_idx.contiguous()
    vals = ops.take_along_dim(
        x.reshape(*x.shape[:2], -1), idx.reshape(*idx.shape[:2], -1), -1
    ).reshape(*idx.shape)
    if unbatched:
        vals, idx = vals.squeeze(0), idx.squeeze(0)
    return (vals, idx) if return_indices else vals


def max_pool3d_with_indices(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """:func:`max_pool3d` returning ``(values, indices)``."""
    refuse_complex("max_pool3d_with_indices", input)
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling over the last three dimensions."""
    k = _triple(kernel_size, "kernel_size", "lp_pool3d")
    out = avg_pool3d(input.pow(norm_type), k, stride, 0, ceil_mode)
    return (out.sign() * out.abs().relu()).mul(k[0] * k[1] * k[2]).pow(1.0 / norm_type)


def _adaptive_sizes(output_size, x, op):
    if isinstance(output_size, int):
        output_size = (output_size,) * 3
    if len(output_size) != 3:
        raise ValueError(f"{op}: output_size must be an int or 3 values, got {output_size!r}")
    return tuple(x.shape[2 + i] if o is None else int(o) for i, o in enumerate(output_size))


def adaptive_avg_pool3d(input, output_size):
    """3-D adaptive average pooling with PyTorch's bins."""
    refuse_complex("adaptive_avg_pool3d", input)
    from .pooling import _adaptive_matrix

    x, unbatched = _batched(input, "adaptive_avg_pool3d")
    od, oh, ow = _adaptive_sizes(output_size, x, "adaptive_avg_pool3d")
    D, H, W = x.shape[2:]
    dt_ = x._data.dtype
    md = C.from_numpy(_adaptive_matrix(D, od, dt_))
    mh = C.from_numpy(_adaptive_matrix(H, oh, dt_))
    mw = C.from_numpy(_adaptive_matrix(W, ow, dt_))
    out = ops.einsum("ncdhw,pd,qh,rw->ncpqr", x, md, mh, mw)
    return out.squeeze(0) if unbatched else out


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """3-D adaptive max pooling with PyTorch's bins (``return_indices``: flat ``D*H*W``
    index of each maximum)."""
    refuse_complex("adaptive_max_pool3d", input)
    x, unbatched = _batched(input, "adaptive_max_pool3d")
    od, oh, ow = _adaptive_sizes(output_size, x, "adaptive_max_pool3d")
    D, H, W = x.shape[2:]

    def bins(n, o):
        return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]

    idx = np.zeros((*x.shape[:2], od, oh, ow), np.int64)
    xd = x.detach().numpy()
    for i, (a, b) in enumerate(bins(D, od)):
        for j, (c, d) in enumerate(bins(H, oh)):
            for m, (e, f) in enumerate(bins(W, ow)):
                win = xd[:, :, a:b, c:d, e:f].reshape(*x.shape[:2], -1)
                kk = np.argmax(win, -1)
                hh, ww = d - c, f - e
                z, r = kk // (hh * ww), kk % (hh * ww)
                idx[:, :, i, j, m] = ((z + a) * H + (r // ww + c)) * W + (r % ww + e)
    it = C.tensor(idx)
    vals = ops.take_along_dim(x.reshape(*x.shape[:2], -1), it.reshape(*x.shape[:2], -1), -1)
    vals = vals.reshape(*it.shape)
    if unbatched:
        vals, it = vals.squeeze(0), it.squeeze(0)
    return (vals, it) if return_indices else vals


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=False):
    """:func:`adaptive_max_pool3d` returning ``(values, indices)``."""
    refuse_complex("adaptive_max_pool3d_with_indices", input)
    return adaptive_max_pool3d(input, output_size, True)
