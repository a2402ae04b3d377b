"""The conjugation primitive and the helper the VJPs of holomorphic ops use.

Gradients of complex tensors follow PyTorch: for a real loss ``L`` of ``z = x + iy`` the
gradient stored in ``z.grad`` is ``dL/dx + i dL/dy`` (the conjugate Wirtinger derivative,
times 2). With that convention the VJP of a holomorphic ``f`` is ``g * conj(f'(z))`` and the
VJP of a linear map is its adjoint, so the VJPs of ``mul``, ``div``, ``exp`` and ``matmul``
conjugate the factor they multiply by: :func:`cj` does that, and costs one dtype test on
real tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._ad import defvjp
from ._core import SAVE_BOTH, SAVE_NONE, AbstractValue, Primitive, bind
from ._samples import defsample

__all__ = ["cj", "conj_p", "csgn", "is_complex_array", "sgn_p"]


conj_p = Primitive(
    "conj",
    "elementwise",
    impl=np.conjugate,
    abstract=lambda x: AbstractValue(x.shape, x.dtype),
    save=SAVE_NONE,
)
defvjp(conj_p, lambda g, out, x: (bind(conj_p, (g,)),), save=SAVE_NONE)


def is_complex_array(a: Any) -> bool:
    """Whether ``a`` (an ndarray or a NumPy/Python scalar) holds complex numbers."""
    return getattr(a, "dtype", None) is not None and a.dtype.kind == "c"


def cj(x: Any) -> Any:
    """``conj(x)`` for a complex Tensor or Python complex; anything else unchanged.

    Example:
        >>> import ember
        >>> cj(ember.tensor([1 + 2j])).tolist()
        [(1-2j)]
    """
    # (one attribute chain on the real-tensor path: this runs in the backward of every mul)
    try:
        if x._data.dtype.kind != "c":
            return x
    except AttributeError:  # a Python scalar (or None)
        return x.conjugate() if type(x) is complex else x
    return bind(conj_p, (x,))


def _sgn_impl(x):
    r = np.abs(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r == 0, 0, x / np.where(r == 0, 1, r)).astype(x.dtype, copy=False)


sgn_p = Primitive(
    "sgn_complex",
    "elementwise",
    impl=_sgn_impl,
    abstract=lambda x: AbstractValue(x.shape, x.dtype),
    save=SAVE_BOTH,
)


@defvjp(sgn_p)
def _sgn_vjp(g, out, x):
    # s = z / |z| moves only along the circle: the component of g along s drops out
    from .complex_ops import real

    r = x.abs()
    safe = r + (r == 0).to(r.dtype)
    return ((g - real(g * cj(out)) * out) / safe * (r != 0).to(r.dtype),)


def csgn(x: Any) -> Any:
    """``x / |x|`` for a complex Tensor (0 where ``x`` is 0): PyTorch's ``sgn``."""
    return bind(sgn_p, (x,))


def _sgn_sample():
    from .._creation import tensor

    z = tensor([1 + 2j, -0.5 + 0.3j, 0j], dtype="complex128", requires_grad=True)
    return [((z,), {})]


defsample(sgn_p, _sgn_sample)


def const(arr: np.ndarray) -> Any:
    """A constant tensor made inside an op (through ``ember._creation``, so that a trace
    records it as a constructor's result rather than as data from outside the graph)."""
    from .. import _creation

    return _creation.as_tensor(arr)
