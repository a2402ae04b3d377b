"""Fractional max pooling (Graham, 2014): ``fractional_max_pool2d/3d``.

Windows of ``kernel_size`` start at pseudo-random positions that advance by a fractional
stride ``alpha = (in - k) / (out - 1)``; one uniform sample per plane and axis (PyTorch's
``_random_samples``, drawn when not given) fixes them. The start positions follow PyTorch's
formula in the input's own floating type, so the same samples give the same windows.

Every candidate of every window is gathered at once, ``argmax`` picks the first maximum
(row-major, as PyTorch's loop), and the values are gathered again at the winners: the
gradient goes to the winning element only.

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> x = ember.arange(25.0).reshape(1, 1, 5, 5)
    >>> u = ember.full((1, 1, 2), 0.5)
    >>> F.fractional_max_pool2d(x, 2, output_size=2, _random_samples=u).tolist()
    [[[[6.0, 9.0], [21.0, 24.0]]]]
"""

from __future__ import annotations

import itertools

import numpy as np

from ... import _creation as C
from ... import ops
from ...ops._core import ShapeError

__all__ = [
    "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
]


def _starts(sample: np.ndarray, n_in: int, n_out: int, k: int) -> np.ndarray:
    """Window starts ``(..., n_out)`` for samples ``(...)``, computed in the samples' dtype
    exactly as PyTorch does (integer truncation of the scaled positions)."""
    dt = sample.dtype.type
    seq = np.empty(sample.shape + (n_out,), np.int64)
    if n_out > 1:
        alpha = dt(n_in - k) / dt(n_out - 1)
        i = np.arange(n_out - 1).astype(sample.dtype)
        u = sample[..., None]
        seq[..., :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    if n_out > 0:
        seq[..., -1] = n_in - k
    return seq


def _sizes(v, n: int, name: str, op: str, cast):
    if v is None:
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return (cast(v),) * n
    t = tuple(cast(a) for a in v)
    if len(t) == 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"{op}: {name} must be a number or {n} numbers, got {v!r}")
    return t


def _fractional(input, kernel_size, output_size, output_ratio, samples, n: int, op: str):
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(
            f"{op}: expected a {n + 1}-D (unbatched) or {n + 2}-D (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    k = _sizes(kernel_size, n, "kernel_size", op, int)
    if min(k) <= 0:
        raise ValueError(f"{op}: kernel_size must be positive, got {kernel_size!r}")
    spatial = tuple(input.shape[-n:])
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is not None:
        out = _sizes(output_size, n, "output_size", op, int)
    else:
        ratio = _sizes(output_ratio, n, "output_ratio", op, float)
        if not all(0.0 < r < 1.0 for r in ratio):
            raise ValueError(f"{op}: output_ratio must be between 0 and 1 (exclusive), got {ratio}")
        out = tuple(int(spatial[i] * ratio[i]) for i in range(n))
    for i in range(n):
        if out[i] + k[i] - 1 > spatial[i]:
            raise ValueError(
                f"{op}: pool size {k[i]} too large relative to input size {spatial[i]} for an "
                f"output of size {out[i]} (dim {i})"
            )
    unbatched = input.ndim == n + 1
    x = input.unsqueeze(0) if unbatched else input
    lead = tuple(x.shape[:2])
    if samples is None:
        samples = C.rand(*lead, n, dtype=x.dtype)
    if tuple(samples.shape) != lead + (n,):
        raise ShapeError(
            f"{op}: _random_samples must have shape {lead + (n,)}, got {tuple(samples.shape)}"
        )
    u = samples.detach().numpy().astype(x._data.dtype)
    # PyTorch's sample order: (W, H) for 2-D, (T, H, W) for 3-D
    axis_sample = (1, 0) if n == 2 else (0, 1, 2)
    starts = [
        _starts(u[..., axis_sample[i]], spatial[i], out[i], k[i]) for i in range(n)
    ]  # (N, C, out_i)
    strides = [int(np.prod(spatial[i + 1 :])) for i in range(n)]
    flat = np.zeros(lead + tuple(out), np.int64)
    for i in range(n):
        shape = lead + tuple(out[j] if j == i else 1 for j in range(n))
        flat = flat + starts[i].reshape(shape) * strides[i]
    offs = [
        sum(o[i] * strides[i] for i in range(n)) for o in itertools.product(*[range(v) for v in k])
    ]
    cand = flat[..., None] + np.asarray(offs, np.int64)  # (N, C, *out, K)
    # explicit sizes: -1 cannot be inferred for an empty batch
    xf = x.reshape(*lead, int(np.prod(spatial)))
    cand_t = C.from_numpy(cand.reshape(*lead, int(np.prod(cand.shape[2:]))))
    vals = ops.take_along_dim(xf.detach(), cand_t, 2).reshape(*cand.shape)
    if vals.numel() == 0:  # an empty batch: nothing to compare (argmax rejects empty input)
        idx = C.from_numpy(cand[..., 0].copy())
    else:
        win = ops.argmax(vals, -1, keepdim=True)
        idx = ops.take_along_dim(C.from_numpy(cand), win, -1).squeeze(-1)
    res = ops.take_along_dim(xf, idx.reshape(*lead, int(np.prod(out))), 2).reshape(*idx.shape)
    if unbatched:
        res, idx = res.squeeze(0), idx.squeeze(0)
    return res, idx


def fractional_max_pool2d_with_indices(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices: bool = False,
    _random_samples=None,
):
    """:func:`fractional_max_pool2d` returning ``(values, indices)`` (flat ``H*W``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> v, i = F.fractional_max_pool2d_with_indices(ember.randn(1, 2, 7, 7), 2, 3)
        >>> tuple(v.shape), i.dtype
        ((1, 2, 3, 3), ember.int64)
    """
    return _fractional(
        input, kernel_size, output_size, output_ratio, _random_samples, 2, "fractional_max_pool2d"
    )


def fractional_max_pool2d(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices: bool = False,
    _random_samples=None,
):
    """2-D fractional max pooling of ``(N, C, H, W)`` or ``(C, H, W)``: give ``output_size``
    or ``output_ratio``; ``_random_samples`` ``(N, C, 2)`` in [0, 1) fixes the windows.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> tuple(F.fractional_max_pool2d(ember.randn(2, 3, 9, 9), 3, output_ratio=0.5).shape)
        (2, 3, 4, 4)
    """
    v, i = fractional_max_pool2d_with_indices(
        input, kernel_size, output_size, output_ratio, True, _random_samples
    )
    return (v, i) if return_indices else v


def fractional_max_pool3d_with_indices(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices: bool = False,
    _random_samples=None,
):
    """:func:`fractional_max_pool3d` returning ``(values, indices)`` (flat ``D*H*W``).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> v, i = F.fractional_max_pool3d_with_indices(ember.randn(1, 1, 5, 5, 5), 2, 2)
        >>> tuple(i.shape)
        (1, 1, 2, 2, 2)
    """
    return _fractional(
        input, kernel_size, output_size, output_ratio, _random_samples, 3, "fractional_max_pool3d"
    )


def fractional_max_pool3d(
    input,
    kernel_size,
    output_size=None,
    output_ratio=None,
    return_indices: bool = False,
    _random_samples=None,
):
    """3-D fractional max pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)``;
    ``_random_samples`` has shape ``(N, C, 3)``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> tuple(F.fractional_max_pool3d(ember.randn(1, 2, 6, 6, 6), 2, (3, 4, 5)).shape)
        (1, 2, 3, 4, 5)
    """
    v, i = fractional_max_pool3d_with_indices(
        input, kernel_size, output_size, output_ratio, True, _random_samples
    )
    return (v, i) if return_indices else v
