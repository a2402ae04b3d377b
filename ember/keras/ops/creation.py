"""Tensors from shapes and values (float32 / int32 defaults, as Keras)."""

from __future__ import annotations

import builtins

import numpy as np

import ember

from ._core import _dtype, _shape_arg, _t

__all__ = ["arange", "eye", "full", "full_like", "ones", "ones_like", "zeros", "zeros_like"]


def ones(shape, dtype=None) -> ember.Tensor:
    """A tensor of ones (float32 by default).

    Example:
        >>> from ember.keras import ops
        >>> ops.ones((2,)).tolist()
        [1.0, 1.0]
    """
    return ember.ones(*_shape_arg(shape), dtype=_dtype(dtype) or ember.float32)


def zeros(shape, dtype=None) -> ember.Tensor:
    """A tensor of zeros (float32 by default).

    Example:
        >>> from ember.keras import ops
        >>> ops.zeros((2,), dtype='int32').tolist()
        [0, 0]
    """
    return ember.zeros(*_shape_arg(shape), dtype=_dtype(dtype) or ember.float32)


def ones_like(x, dtype=None) -> ember.Tensor:
    """Ones of the shape (and dtype, unless given) of ``x``.

    Example:
        >>> from ember.keras import ops
        >>> ops.ones_like([1, 2]).tolist()
        [1, 1]
    """
    return ember.ones_like(_t(x), dtype=_dtype(dtype))


def zeros_like(x, dtype=None) -> ember.Tensor:
    """Zeros of the shape (and dtype, unless given) of ``x``.

    Example:
        >>> from ember.keras import ops
        >>> ops.zeros_like([1.5]).tolist()
        [0.0]
    """
    return ember.zeros_like(_t(x), dtype=_dtype(dtype))


def arange(start, stop=None, step=None, dtype=None) -> ember.Tensor:
    """``[start, stop)`` by ``step``: int32 for integer arguments, float32 otherwise.

    Example:
        >>> from ember.keras import ops
        >>> ops.arange(1, 7, 2).tolist()
        [1, 3, 5]
    """
    step = 1 if step is None else step
    args = (start, stop, step)
    is_int = builtins.all(isinstance(a, (int, np.integer)) for a in args if a is not None)
    dt = _dtype(dtype) or (ember.int32 if is_int else ember.float32)
    if stop is None:
        start, stop = 0, start
    return ember.arange(start, stop, step).to(dt)


def full(shape, fill_value, dtype=None) -> ember.Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (float32 by default).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.full((2,), 7).tolist()
        [7.0, 7.0]
    """
    dt = _dtype(dtype) or ember.float32
    return ember.full(_shape_arg(shape), fill_value, dtype=dt)


def full_like(x, fill_value, dtype=None) -> ember.Tensor:
    """``fill_value`` in the shape (and dtype, unless given) of ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.full_like([1.0, 2.0], 0.5).tolist()
        [0.5, 0.5]
    """
    return ember.full_like(_t(x), fill_value, dtype=_dtype(dtype))


def eye(N, M=None, k=0, dtype=None) -> ember.Tensor:
    """An ``N x M`` matrix with ones on the ``k``-th diagonal (float32 by default).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.eye(2, 3, k=1).tolist()
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    m = N if M is None else M
    out = ember.ones(int(N), int(m)).triu(int(k)).tril(int(k))
    return out.to(_dtype(dtype) or ember.float32)
