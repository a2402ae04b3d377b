"""The compiler's own primitives: constants created inside a graph.

A tensor that user code creates with NumPy-level constructors (``ember.zeros``,
``ember.tensor``, the zero cotangents of the autograd engine) never passes through
:func:`~ember.ops.bind`; the tracer sees it appear from nowhere. When such a tensor is fresh on
every call it becomes one of these equations, so each run gets its own array (and ``full``
shapes may carry the symbolic batch size). They are not in ``REGISTRY`` (they are not ops of
the library); :func:`ember.compiler.ir.lookup_primitive` finds them by name.
"""

from __future__ import annotations

import numpy as np

from .._dtype import from_numpy_dtype
from ..ops._core import SAVE_NONE, AbstractValue, Primitive
from .ir import EXTRA_PRIMITIVES

__all__ = ["constant_p", "full_p"]


def _full_impl(*, shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


full_p = Primitive(
    "full",
    "creation",
    impl=_full_impl,
    abstract=lambda *, shape, value, dtype: AbstractValue(shape, from_numpy_dtype(dtype)),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)


def _constant_impl(*, value):
    # a copy per run: the graph may write into it in place
    return value.copy()


constant_p = Primitive(
    "constant",
    "creation",
    impl=_constant_impl,
    abstract=lambda *, value: AbstractValue(value.shape, from_numpy_dtype(value.dtype)),
    save=SAVE_NONE,
    nondiff=True,
    register=False,
)

for _p in (full_p, constant_p):
    EXTRA_PRIMITIVES[_p.name] = _p
