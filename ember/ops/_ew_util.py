"""The shared machinery of the elementwise primitives in ``elementwise.py`` (and of
``activation.py``, ``math_extra.py``, ``special_fns.py``): the broadcast shape rule
(``broadcast_shapes``, ``_ew_abstract``), the one-input primitive factories
(``unary_primitive``, ``_grad_prim``), the impls that route float32/float64 arrays to the
blocked kernels of ``_ew_kernels`` (``fast_unary``, ``fast_unary_grad``) and the VJP helpers
built on them (``_fused_grad``, ``_zero_grad_vjp``).

Nothing here declares an op: the primitives these factories build are created, and their
records declared, in the op modules (one op, one record). ``elementwise`` imports every name
back, so ``from .elementwise import broadcast_shapes`` keeps working.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype as dt
from ..backends import cpu
from . import _core
from ._core import SAVE_INPUTS, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._ew_kernels import ew_unary, ew_unary_grad


def _shape_of(a):
    return a.shape if isinstance(a, AbstractValue) else ()


def broadcast_shapes(*shapes, op="broadcast"):
    """The broadcast of ``shapes``; a clear error naming the op when they don't match."""
    out = []
    for dims in _zip_right(shapes):
        size = 1
        for d in dims:
            if d != 1:
                if size != 1 and d != size:
                    raise ShapeError(
                        f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)}"
                        f" cannot be broadcast together (size {size} vs {d})"
                    )
                size = d
        out.append(size)
    return tuple(reversed(out))


def _zip_right(shapes):
    n = max((len(s) for s in shapes), default=0)
    for i in range(1, n + 1):
        yield [s[-i] if len(s) >= i else 1 for s in shapes]


def _ew_abstract(name, out_dtype=None):
    def rule(*avals, **params):
        shapes = [_shape_of(a) for a in avals]
        shape = broadcast_shapes(*shapes, op=name)
        ts = [a for a in avals if isinstance(a, AbstractValue)]
        d = out_dtype or (ts[0].dtype if ts else dt.get_default_dtype())
        return AbstractValue(shape, d)

    return rule


def not_a_tensor(op, x):
    """The TypeError for a non-Tensor where a Tensor is required (as PyTorch words it)."""
    return TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(x).__name__}")


def unary_primitive(name, kernel, *, save=SAVE_INPUTS, nondiff=False, out_dtype=None):
    """An elementwise one-input primitive: ``kernel`` plus the broadcast shape rule."""
    return Primitive(
        name,
        "elementwise",
        impl=kernel,
        abstract=_ew_abstract(name, out_dtype),
        save=save,
        nondiff=nondiff,
    )


def _zero_grad_vjp(g, out, x, **params):
    return (g * 0.0,)


def _fused_grad(prim, composite):
    """A VJP ``g, out -> cotangent`` that runs the one-kernel primitive ``prim`` when no
    backward graph is being recorded (same dtypes, float32/float64), else the ``composite``
    of ember ops (differentiable: higher-order gradients stay exact)."""

    def vjp(g, out, x):
        if (
            not _core._state.grad_enabled
            and g._data.dtype == out._data.dtype
            and g._data.dtype in cpu.FAST_FLOATS
        ):
            return (bind(prim, (g, out)),)
        return (composite(g, out),)

    return vjp


def fast_unary(name: str, fallback, small: int = 0):
    """The impl of a unary op with a kernel in ``_ew_kernels.ew_unary``: float32/float64
    NumPy arrays run it (blocked, threaded, compiled when numba is available), anything else
    (or arrays of at most ``small`` elements, where one NumPy ufunc is cheaper) runs
    ``fallback``."""
    fast = cpu.FAST_FLOATS

    def impl(x):
        if type(x) is np.ndarray and x.dtype in fast and x.size > small:
            return ew_unary(name, x)
        return fallback(x)

    def into(x, out):
        # the same choice of path as impl, writing into ``out`` (the compiler's memory plan
        # calls it; a ufunc fallback takes out=, any other fallback result is copied in)
        if type(x) is np.ndarray and x.dtype in fast and x.size > small:
            return ew_unary(name, x, out=out)
        if isinstance(fallback, np.ufunc):
            return fallback(x, out=out)
        if out is None:
            return fallback(x)
        np.copyto(out, fallback(x))
        return out

    impl.__name__ = f"{name}_impl"
    impl.into = into  # type: ignore[attr-defined]
    return impl


def fast_unary_grad(name: str, fallback):
    """The impl of a fused gradient ``(g, v) -> g * name'(v)`` (see :func:`fast_unary`)."""
    fast = cpu.FAST_FLOATS

    def impl(g, v):
        if (
            type(v) is np.ndarray
            and type(g) is np.ndarray
            and v.dtype in fast
            and g.dtype == v.dtype
            and g.shape == v.shape
        ):
            return ew_unary_grad(name, g, v)
        return fallback(g, v)

    impl.__name__ = f"{name}_grad_impl"
    return impl


def _grad_prim(name, kernel):
    return Primitive(
        name,
        "elementwise",
        impl=kernel,
        nondiff=True,
        save=SAVE_NONE,
        abstract=lambda g, out: AbstractValue(g.shape, g.dtype),
    )
