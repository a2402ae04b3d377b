"""Refusing complex inputs where PyTorch refuses them.

NumPy orders complex numbers lexicographically, so comparisons, ``max``, ``sort``, ``clamp``
and the activations built on them would silently compute on complex tensors; PyTorch raises.
The checks sit where the float path pays nothing, or one set lookup: :func:`real_input` replaces
``float_input`` (the same one test of the dtype kind on float tensors), binary ops test the
common dtype :func:`~ember.ops._promote.promote_args` already returns (a set lookup), kernels
that need a zero get it from :class:`RealZeros`, and heavier ops test their inputs once in the
public function (:func:`refuse_complex`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtype as dt

__all__ = [
    "COMPLEX_NP",
    "ComplexTypeError",
    "RealZeros",
    "complex_error",
    "real_input",
    "refuse_complex",
]

# (a set lookup is the cheapest dtype test: about half of ``dtype.kind == "c"``)
COMPLEX_NP = frozenset((np.dtype(np.complex64), np.dtype(np.complex128)))


class ComplexTypeError(TypeError, NotImplementedError):
    """An op that takes no complex tensors got one: a ``TypeError``, and also a
    ``NotImplementedError`` (a ``RuntimeError``) as PyTorch raises."""


# PyTorch's wording where it says more than "not supported"
_HINTS = {
    "sign": "Unlike NumPy, sign is not intended to support complex numbers; use sgn instead",
    "clamp": "clamp is not supported for complex types",
    "clip": "clamp is not supported for complex types",
}


def complex_error(op: str, dtype: Any = None) -> ComplexTypeError:
    """The error for complex input ``dtype`` given to ``op``.

    Example:
        >>> str(complex_error("sort", "complex64"))
        'sort: complex tensors are not supported (got complex64)'
    """
    name = getattr(dtype, "name", dtype)
    got = f" (got {name})" if name is not None else ""
    hint = _HINTS.get(op)
    if hint is not None:
        return ComplexTypeError(f"{op}: {hint}{got}")
    return ComplexTypeError(f"{op}: complex tensors are not supported{got}")


class RealZeros(dict):
    """``zeros[dtype]``: the zero scalar of a real NumPy dtype, raising :func:`complex_error`
    for complex ones. A kernel that needs the zero anyway (``maximum(x, 0)``) gets the test
    for free: the lookup is no slower than ``dtype.type(0)``.

    Example:
        >>> import numpy as np
        >>> RealZeros("relu")[np.dtype(np.float32)]
        np.float32(0.0)
    """

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def __missing__(self, d: np.dtype) -> Any:
        if d.kind == "c":
            raise complex_error(self.op, dt.from_numpy_dtype(d))
        z = d.type(0)
        self[d] = z
        return z


def refuse_complex(op: str, *xs: Any) -> None:
    """Raise :func:`complex_error` when any tensor (or array) in ``xs`` is complex.

    Example:
        >>> import ember
        >>> refuse_complex("sort", ember.ones(2))  # real: nothing happens
    """
    for x in xs:
        d = getattr(x, "_data", x)
        kind = getattr(getattr(d, "dtype", None), "kind", None)
        if kind == "c":
            raise complex_error(op, dt.from_numpy_dtype(d.dtype))


def real_input(x: Any, op: str) -> Any:
    """``float_input`` for ops that take no complex tensors: integers and bools become the
    default float dtype, complex tensors raise; float tensors pass after one test of the
    dtype kind (as in ``float_input``).

    Example:
        >>> import ember
        >>> real_input(ember.tensor([1, 2]), "erf").dtype
        ember.float32
    """
    try:
        kind = x._data.dtype.kind
    except AttributeError:
        from .elementwise import not_a_tensor

        raise not_a_tensor(op, x) from None
    if kind in "iubc":
        if kind == "c":
            raise complex_error(op, dt.from_numpy_dtype(x._data.dtype))
        from .elementwise import convert

        return convert(x, dt.get_default_dtype())
    return x
