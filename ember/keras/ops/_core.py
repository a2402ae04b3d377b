"""Conversion between ember tensors, NumPy and Python values, with Keras' dtype rules."""

from __future__ import annotations

import numpy as np

import ember
from ember._dtype import DType

__all__ = [
    "cast",
    "convert_to_numpy",
    "convert_to_tensor",
    "ndim",
    "shape",
    "size",
    "stop_gradient",
]


def _dtype(dtype) -> DType | None:
    if dtype is None or isinstance(dtype, DType):
        return dtype
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"float": "float32", "int": "int32", "bool": "bool"}.get(name, name)
    dt = getattr(ember, name.replace("torch.", ""), None)
    if dt is None or not hasattr(dt, "np"):
        raise TypeError(f"keras.ops: unknown dtype {dtype!r}")
    return dt


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None) -> ember.Tensor:
    """An ember tensor of ``x`` (Python ints become int32, floats float32, as in Keras).

    Example:
        >>> from ember.keras import ops
        >>> ops.convert_to_tensor([1, 2]).dtype, ops.convert_to_tensor(1.5).dtype
        (ember.int32, ember.float32)
    """
    if sparse or ragged:
        raise NotImplementedError(
            "keras.ops.convert_to_tensor: sparse and ragged are not supported"
        )
    dt = _dtype(dtype)
    if isinstance(x, ember.Tensor):
        return x if dt is None or x.dtype == dt else x.to(dt)
    if isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
    else:
        a = np.asarray(x)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        elif a.dtype == np.int64:
            a = a.astype(np.int32)
    t = ember.tensor(np.ascontiguousarray(a))
    return t if dt is None else t.to(dt)


def convert_to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (detached).

    Example:
        >>> from ember.keras import ops
        >>> ops.convert_to_numpy(ops.ones((2,))).tolist()
        [1.0, 1.0]
    """
    if isinstance(x, ember.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def cast(x, dtype) -> ember.Tensor:
    """``x`` converted to ``dtype`` (a name such as ``'int32'`` or an ember dtype).

    Example:
        >>> from ember.keras import ops
        >>> ops.cast([1.7, -2.2], 'int32').tolist()
        [1, -2]
    """
    return convert_to_tensor(x).to(_dtype(dtype))


def shape(x) -> tuple:
    """The static shape, a tuple of ints.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.zeros((2, 3)))
        (2, 3)
    """
    return tuple(int(d) for d in convert_to_tensor(x).shape)


_t = convert_to_tensor


def _float(x) -> ember.Tensor:
    x = _t(x)
    return x if x.is_floating_point() else x.to(ember.float32)


def _axes(axis) -> int | tuple | None:
    if axis is None:
        return None
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _keep_int(out, x) -> ember.Tensor:
    """Integer reductions keep the input's integer dtype (booleans become int32), as Keras."""
    if x.dtype == ember.bool:
        return out.to(ember.int32)
    if not x.is_floating_point() and out.dtype != x.dtype:
        return out.to(x.dtype)
    return out


def _shape_arg(shape) -> tuple:
    return (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)


def stop_gradient(variable) -> ember.Tensor:
    """The value of ``variable`` without its gradient.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.stop_gradient(ember.ones(2, requires_grad=True)).requires_grad
        False
    """
    return _t(variable).detach()


def ndim(x) -> int:
    """The number of axes.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.ndim(ops.zeros((2, 3)))
        2
    """
    return _t(x).ndim


def size(x) -> int:
    """The number of entries.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.size(ops.zeros((2, 3)))
        6
    """
    return int(_t(x).numel())
