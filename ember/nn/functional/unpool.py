"""``max_unpool1d/2d/3d``: the partial inverse of max pooling.

Each pooled value goes back to the flat spatial position its index names (the indices of
``max_pool*d(..., return_indices=True)``), every other position is zero. It is one
``scatter`` along the flattened spatial axis, so the gradient gathers the output gradient at
the indices (PyTorch's backward).

Example:
    >>> import ember
    >>> import ember.nn.functional as F
    >>> x = ember.tensor([[[1.0, 3.0, 2.0, 0.0]]])
    >>> y, i = F.max_pool1d(x, 2, return_indices=True)
    >>> F.max_unpool1d(y, i, 2).tolist()
    [[[0.0, 3.0, 2.0, 0.0]]]
"""

from __future__ import annotations

import math

import numpy as np

from ... import _creation as C
from ...ops._core import ShapeError

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]


def _tuple(v, n: int, name: str, op: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    t = tuple(int(a) for a in v)
    if len(t) == 1:
        t = t * n
    if len(t) != n:
        raise ValueError(f"{op}: {name} must be an int or {n} ints, got {v!r}")
    return t


def _output_size(x, k, s, p, output_size, n: int, op: str) -> tuple[int, ...]:
    """PyTorch's rule: the pooling's inverse size, or ``output_size`` (its last ``n``
    entries) when it lies strictly within one stride of that."""
    default = tuple((x.shape[-n + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(n))
    if output_size is None:
        return default
    size = (output_size,) * n if isinstance(output_size, int) else tuple(output_size)
    if len(size) == n + 2:
        size = size[2:]
    if len(size) != n:
        raise ValueError(
            f"{op}: output_size must have {n} or {n + 2} elements, got {len(size)} "
            f"({output_size!r})"
        )
    size = tuple(int(v) for v in size)
    for i in range(n):
        lo, hi = default[i] - s[i], default[i] + s[i]
        if not lo < size[i] < hi:
            raise ValueError(
                f"{op}: invalid output_size {size} (dim {i} must be between {lo} and {hi}, "
                "exclusive)"
            )
    return size


def _unpool(input, indices, kernel_size, stride, padding, output_size, n: int, op: str):
    from ..._tensor import Tensor

    if not isinstance(input, Tensor) or not isinstance(indices, Tensor):
        raise TypeError(f"{op}: input and indices must be Tensors")
    if input.ndim not in (n + 1, n + 2):
        raise ShapeError(
            f"{op}: expected a {n + 1}-D (unbatched) or {n + 2}-D (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(
            f"{op}: expected indices of the input's shape {tuple(input.shape)}, got "
            f"{tuple(indices.shape)}"
        )
    if indices.dtype.is_floating_point or indices.dtype.name == "bool":
        raise TypeError(f"{op}: expected indices of integer dtype, got {indices.dtype}")
    k = _tuple(kernel_size, n, "kernel_size", op)
    s = k if stride is None else _tuple(stride, n, "stride", op)
    p = _tuple(padding, n, "padding", op)
    size = _output_size(input, k, s, p, output_size, n, op)
    unbatched = input.ndim == n + 1
    x = input.unsqueeze(0) if unbatched else input
    idx = indices.unsqueeze(0) if unbatched else indices
    total = math.prod(size)
    raw = idx.detach().numpy()
    if raw.size and (raw.min() < 0 or raw.max() >= total):
        bad = int(raw.max() if raw.max() >= total else raw.min())
        raise IndexError(
            f"{op}: found an invalid max index {bad} (the output has {total} positions per "
            f"plane, size {size})"
        )
    lead = tuple(x.shape[:2])
    flat = C.zeros(*lead, total, dtype=x.dtype)
    m = math.prod(x.shape[2:])  # explicit sizes: -1 cannot be inferred for an empty batch
    out = flat.scatter(2, idx.reshape(*lead, m).long(), x.reshape(*lead, m))
    out = out.reshape(*lead, *size)
    return out.squeeze(0) if unbatched else out


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of :func:`max_pool1d`: ``(N, C, L_in)`` values and indices to ``(N, C,
    L_out)`` with zeros off the indexed positions.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.max_unpool1d(ember.tensor([[[5.0]]]), ember.tensor([[[1]]]), 2).tolist()
        [[[0.0, 5.0]]]
    """
    return _unpool(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of :func:`max_pool2d` (flat ``H*W`` indices).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> y = F.max_unpool2d(ember.ones(1, 1, 1, 1), ember.tensor([[[[3]]]]), 2)
        >>> y.reshape(-1).tolist()
        [0.0, 0.0, 0.0, 1.0]
    """
    return _unpool(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of :func:`max_pool3d` (flat ``D*H*W`` indices).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> y = F.max_unpool3d(ember.ones(1, 1, 1, 1, 1), ember.tensor([[[[[7]]]]]), 2)
        >>> float(y.sum()), float(y[0, 0, 1, 1, 1])
        (1.0, 1.0)
    """
    return _unpool(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")
