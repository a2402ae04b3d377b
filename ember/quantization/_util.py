"""Small helpers shared by the quantization modules."""

from __future__ import annotations

import numpy as np

from .. import _dtype, _tensor
from .._creation import from_numpy


def to_numpy(x, who: str, contiguous: bool = True) -> np.ndarray:
    """A float32 NumPy view of an Ember tensor or array input; anything else is an error."""
    if isinstance(x, _tensor.Tensor):
        a = x.detach().numpy()
    elif isinstance(x, np.ndarray):
        a = x
    else:
        raise TypeError(f"{who}: expected an ember Tensor or NumPy array, got {type(x).__name__}")
    if a.dtype.kind != "f":
        raise TypeError(f"{who}: expected a floating-point input, got dtype {a.dtype}")
    if contiguous:
        return np.ascontiguousarray(a, dtype=np.float32)
    return a if a.dtype == np.float32 else a.astype(np.float32)


def as_float32(x, who: str):
    """An Ember float32 tensor of a tensor or array input (a traced cast for other floats)."""
    if isinstance(x, _tensor.Tensor) and x.dtype is _dtype.float32:  # the usual case, first
        return x
    if isinstance(x, np.ndarray):
        x = from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, _tensor.Tensor):
        raise TypeError(f"{who}: expected an ember Tensor or NumPy array, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: expected a floating-point input, got dtype {x.dtype}")
    return x if x.dtype is _dtype.float32 else x.float()


def to_tensor(a: np.ndarray):
    return from_numpy(a)


def param(t) -> np.ndarray | None:
    """A module parameter or buffer as a float32 NumPy copy (None stays None)."""
    return None if t is None else np.array(t.detach().numpy(), dtype=np.float32)
