"""Products: ``matmul``, ``dot``, ``einsum``, ``outer``."""

from __future__ import annotations

import ember

from ._core import _t

__all__ = ["dot", "einsum", "matmul", "outer"]


def matmul(x1, x2) -> ember.Tensor:
    """Matrix product with batch broadcasting (``@``).

    Example:
        >>> from ember.keras import ops
        >>> ops.matmul([[1.0, 2.0]], [[3.0], [4.0]]).tolist()
        [[11.0]]
    """
    return ember.matmul(_t(x1), _t(x2))


def dot(x1, x2) -> ember.Tensor:
    """Products of scalars, else ``matmul`` (the inner product of vectors, matrix products,
    batched products for N-D inputs), as Keras 3 computes it on its torch backend.

    Example:
        >>> from ember.keras import ops
        >>> ops.dot([1.0, 2.0], [3.0, 4.0]).item()
        11.0
    """
    a, b = _t(x1), _t(x2)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return ember.matmul(a, b)


def einsum(subscripts, *operands, **kwargs) -> ember.Tensor:
    """Einstein summation over ``operands``.

    Example:
        >>> from ember.keras import ops
        >>> ops.einsum('i,i->', [1.0, 2.0], [3.0, 4.0]).item()
        11.0
    """
    if kwargs:
        raise TypeError(f"keras.ops.einsum: unexpected arguments {sorted(kwargs)}")
    return ember.einsum(subscripts, *[_t(o) for o in operands])


def outer(x1, x2) -> ember.Tensor:
    """The outer product of the flattened inputs.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.outer([1, 2], [3, 4]).tolist()
        [[3, 4], [6, 8]]
    """
    return ember.outer(_t(x1).reshape(-1), _t(x2).reshape(-1))
