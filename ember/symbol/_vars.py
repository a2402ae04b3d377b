"""Graph inputs (:func:`var`) and state (:func:`shared`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor, _new
from ..compiler.ir import Dim
from ._core import SVar, Symbol, wrap
from ._sizes import probe_of

__all__ = ["shared", "var"]

_shared_ids = itertools.count()


def var(name: str, shape: Sequence[int | str | None] = (), dtype: Any = None) -> Symbol:
    """A symbolic input called ``name``.

    ``shape`` holds ints (fixed sizes), strings (named symbolic sizes: every input using the
    same name must get the same size) and ``None`` (a size of its own, named ``name.axis``).
    ``dtype`` defaults to the default float dtype.

    Example:
        >>> from ember import symbol as S
        >>> S.var("x", ("batch", None, 4))
        Symbol(x: f32[batch,x.1,4])
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"var: name must be a non-empty string, got {name!r}")
    if isinstance(shape, (int, str)) or shape is None:
        raise TypeError(f"var {name!r}: shape must be a sequence of sizes, got {shape!r}")
    dims: list[Any] = []
    for ax, d in enumerate(shape):
        if d is None:
            d = f"{name}.{ax}"
        if isinstance(d, str):
            if not d:
                raise ValueError(f"var {name!r}: axis {ax} has an empty size name")
            probe_of(d)
            dims.append(Dim(d))
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            dims.append(int(d))
        else:
            raise ValueError(
                f"var {name!r}: axis {ax} has size {d!r}; sizes are ints >= 0, names or None"
            )
    dtype = dt.get_default_dtype() if dtype is None else dt.as_dtype(dtype)
    return wrap(SVar(tuple(dims), dtype, kind="input", name=name))


def shared(value: Any, name: str | None = None, dtype: Any = None) -> Symbol:
    """A shared variable: state that graphs read and ``updates`` change between calls.

    ``value`` (a Tensor, NumPy array or nested list) is copied. Read it back with
    ``.get_value()``; replace it with ``.set_value(v)``.

    Example:
        >>> import ember
        >>> from ember import symbol as S
        >>> w = S.shared(ember.zeros(2), "w")
        >>> w, w.get_value().tolist()
        (Symbol(w: f32[2]), [0.0, 0.0])
    """
    if isinstance(value, Symbol):
        raise TypeError("shared: the value must be data (a Tensor or array), not a Symbol")
    arr = value._data if isinstance(value, Tensor) else value
    if dtype is not None:
        arr = np.array(arr, dt.as_dtype(dtype).np)
    else:
        arr = np.array(arr)
        if arr.dtype == np.float64 and not isinstance(value, (Tensor, np.ndarray)):
            arr = arr.astype(dt.get_default_dtype().np)  # Python floats: the default dtype
    if arr.dtype == object:
        raise TypeError(f"shared: cannot make a tensor from {type(value).__name__}")
    name = name if name is not None else f"shared_{next(_shared_ids)}"
    storage = _new(np.array(arr, order="C", copy=True))
    v = SVar(arr.shape, dt.from_numpy_dtype(arr.dtype), kind="shared", name=name, storage=storage)
    return wrap(v)
