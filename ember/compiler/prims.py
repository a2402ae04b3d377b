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

__all__ = ["InputRef", "constant_p", "full_p", "lifted"]


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


class InputRef:
    """A param that is data: the array of input ``index`` of the equation (see
    :func:`lifted`)."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputRef) and other.index == self.index

    def __hash__(self) -> int:
        return hash(("InputRef", self.index))

    def __repr__(self) -> str:
        return f"in{self.index}"


def _fill(v, arrays):
    t = type(v)
    if t is InputRef:
        return arrays[v.index]
    if t is tuple or t is list:
        return t(_fill(x, arrays) for x in v)
    if t is dict:
        return {k: _fill(x, arrays) for k, x in v.items()}
    return v


def _first_ref(v) -> int | None:
    t = type(v)
    if t is InputRef:
        return v.index
    if t is tuple or t is list or t is dict:
        vals = v.values() if t is dict else v
        refs = [r for r in (_first_ref(x) for x in vals) if r is not None]
        return min(refs) if refs else None
    return None


_LIFTED: dict[Primitive, Primitive] = {}


class LiftedPrimitive(Primitive):
    """A primitive with some array params passed as inputs (see :func:`lifted`)."""

    __slots__ = ("base",)
    base: Primitive


def lifted(prim: Primitive) -> Primitive:
    """``prim`` with array params that are data (integer indices from tensors) passed as
    extra inputs: the equation's params hold :class:`InputRef` s in their place, so the arrays
    are graph values (inputs, state or results), not constants. Same name and kind; the
    primitive's ``base`` is the original.

    Example:
        >>> import numpy as np
        >>> from ember.ops.indexing import getitem_adv_p
        >>> p = lifted(getitem_adv_p)
        >>> x = np.arange(4.0)
        >>> p.impl(x, np.array([3, 1]), idx=(InputRef(1),), basic=False, shape=(4,)).tolist()
        [3.0, 1.0]
    """
    p = _LIFTED.get(prim)
    if p is None:
        base = prim

        def impl(*arrays, **params):
            n = _first_ref(params)
            return base.impl(*arrays[:n], **_fill(params, arrays))

        p = LiftedPrimitive(
            prim.name,
            prim.kind,
            impl=impl,
            abstract=None,  # the shape rule needs the index values
            save=prim.save,
            nondiff=prim.nondiff,
            data_dependent=prim.data_dependent,
            n_out=prim.n_out,
            register=False,
        )
        p.base = base
        _LIFTED[prim] = p
    return p
