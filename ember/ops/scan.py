"""Scans: cumulative sums and products along a dim."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ._ad import defvjp
from ._core import SAVE_BOTH, SAVE_NONE, AbstractValue, Primitive, bind
from ._records import module_ops, op
from ._util import wrap_dim

if TYPE_CHECKING:
    from .._dtype import DType
    from .._tensor import Tensor


def _scan_abstract(x, dim):
    return AbstractValue(x.shape, x.dtype)


# PyTorch's CPU scans run in a wider accumulator (float32 in float64, float16/bfloat16 in
# float32, complex64 in complex128), each partial result rounded to the input's dtype: a
# float32 cumsum of 1M values is then exact to the last bit of the float64 one (a float32
# running sum drifts ~3e-5 away), and 1e30 * 1e30 * 0 is 0, not nan
_SCAN_ACC = {
    np.dtype(np.float32): np.dtype(np.float64),
    np.dtype(np.float16): np.dtype(np.float32),
    np.dtype(np.complex64): np.dtype(np.complex128),
}


def _scan(fn, x, dim):
    if x.ndim == 0:
        return x.copy()
    acc = _SCAN_ACC.get(x.dtype)
    if acc is None and x.dtype.kind == "V":  # bfloat16 (ml_dtypes)
        acc = np.dtype(np.float32)
    if acc is None:
        return fn(x, axis=dim, dtype=x.dtype)
    return fn(x.astype(acc), axis=dim).astype(x.dtype)


# -- cumsum --------------------------------------------------------------------------------
def _cumsum_impl(x, dim):
    return _scan(np.cumsum, x, dim)


def _cumsum_vjp(g, out, x, dim):
    from .shape import flip

    if g.ndim == 0:
        return (g,)
    return (flip(bind(cumsum_p, (flip(g, dim),), {"dim": dim}), dim),)


cumsum_p = Primitive("cumsum", "opaque", impl=_cumsum_impl, abstract=_scan_abstract, save=SAVE_NONE)
defvjp(cumsum_p, _cumsum_vjp)


def _scan_input(x, dim, dtype, op):
    from .elementwise import convert

    if dtype is not None:
        x = convert(x, dtype)
    elif x._data.dtype.kind in "bu" or (x._data.dtype.kind == "i" and x._data.itemsize < 8):
        x = convert(x, dt.int64)  # PyTorch promotes integer scans to int64
    return x, wrap_dim(dim, x._data.ndim, op)


@op(
    method="cumsum",
    inplace="cumsum_",
    ref="cumsum",
    shapes=(((2, 3),),),
    cases=({"dim": 1}, {"dim": 0}),
)
def cumsum(input: Tensor, dim: int, *, dtype: DType | None = None) -> Tensor:
    """Cumulative sum along ``dim`` (integer inputs accumulate in int64, like PyTorch)."""
    x, d = _scan_input(input, dim, dtype, "cumsum")
    return bind(cumsum_p, (x,), {"dim": d})


# -- cumprod -------------------------------------------------------------------------------
def _cumprod_impl(x, dim):
    return _scan(np.cumprod, x, dim)


def _cumprod_vjp(g, out, x, dim):
    """d out_i / d x_k = prod_{j<=i, j!=k} x_j for k <= i. Computed exactly (zeros included)
    as the cumprod of x with x_k replaced by 1, for every k: O(n^2) along ``dim``."""
    from .elementwise import where
    from .reduction import sum
    from .shape import movedim, unsqueeze

    if x.ndim == 0:
        return (g,)
    n = x.shape[dim]
    xm = movedim(x, dim, -1)  # (..., n)  index j
    gm = movedim(g, dim, -1)  # (..., n)  index i
    from .._creation import tensor

    eye = tensor(np.eye(n, dtype=np.bool_))  # [k, j]
    xk = where(eye, tensor(np.ones((), x._data.dtype)), unsqueeze(xm, -2))  # (..., k, j)
    p = bind(cumprod_p, (xk,), {"dim": xk.ndim - 1})  # (..., k, i)
    upper = tensor(np.triu(np.ones((n, n), dtype=x._data.dtype)))  # i >= k
    from .complex_base import cj

    gk = sum(cj(p) * upper * unsqueeze(gm, -2), -1)  # (..., k)
    return (movedim(gk, -1, dim),)


cumprod_p = Primitive(
    "cumprod",
    "opaque",
    impl=_cumprod_impl,
    abstract=_scan_abstract,
    save=SAVE_BOTH,
)
defvjp(cumprod_p, _cumprod_vjp)


@op(method="cumprod", inplace="cumprod_", ref="cumprod", shapes=(((2, 3),),), cases=({"dim": 1},))
def cumprod(input: Tensor, dim: int, *, dtype: DType | None = None) -> Tensor:
    """Cumulative product along ``dim``; its gradient is exact when the input has zeros."""
    x, d = _scan_input(input, dim, dtype, "cumprod")
    return bind(cumprod_p, (x,), {"dim": d})


__all__ = module_ops(__name__)
