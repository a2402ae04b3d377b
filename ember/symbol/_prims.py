"""The primitives that :mod:`ember.symbol` adds: ``iota`` (0, 1, 2, ... along an axis of a
symbolic size; what ``ember.arange(n)`` becomes when ``n`` is symbolic) and
``stop_gradient`` (``Symbol.detach()``: the value, with no gradient through it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._dtype import from_numpy_dtype
from ..compiler.ir import EXTRA_PRIMITIVES
from ..ops._core import SAVE_NONE, AbstractValue, Primitive

__all__ = ["iota_p", "stop_gradient_p"]


def _iota_impl(*, shape: Any, axis: int, dtype: Any) -> np.ndarray:
    s = [1] * len(shape)
    s[axis] = shape[axis]
    r = np.arange(shape[axis], dtype=dtype).reshape(s)
    return np.ascontiguousarray(np.broadcast_to(r, tuple(shape)))


iota_p = Primitive(
    "iota",
    "creation",
    impl=_iota_impl,
    abstract=lambda *, shape, axis, dtype: AbstractValue(shape, from_numpy_dtype(dtype)),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)
EXTRA_PRIMITIVES[iota_p.name] = iota_p

stop_gradient_p = Primitive(
    "stop_gradient",
    "view",
    impl=lambda x: x,
    abstract=lambda x: AbstractValue(x.shape, x.dtype),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)
EXTRA_PRIMITIVES[stop_gradient_p.name] = stop_gradient_p
