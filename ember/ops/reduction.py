"""Reductions (``sum mean prod amax amin argmax var logsumexp ...``) and softmax."""

from __future__ import annotations

import builtins
import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ..backends.cpu import FAST_FLOATS
from ._ad import defvjp
from ._core import (
    SAVE_BOTH,
    SAVE_INPUTS,
    SAVE_NONE,
    SAVE_OUTPUT,
    AbstractValue,
    DTypeNotImplementedError,
    Primitive,
    ShapeError,
    _state,
    bind,
    refuse_integral,
)
from ._ew_kernels import quiet
from ._records import distinct_values, module_ops, op
from ._reduce_kernels import (  # noqa: F401  (re-exported: moved to _reduce_kernels)
    _FILL_MIN,
    _ROW_SUM_MIN,
    _axes,
    _channels_last_channel_sums,
    _expand_back,
    _fill_back,
    _fill_kernel,
    _last_axis_sums,
    _nchw_channel_sums,
    _red_abstract,
    _split3,
    amax_grad,
    blocked_sum,
    full_sum,
    row_arg_extrema,
    row_extrema,
    softmax_grad_kernel,
    softmax_kernel,
    trailing_sums,
)
from ._samples import defsample
from ._util import reduced_shape, wrap_dim, wrap_dims
from .complex_refuse import COMPLEX_NP, complex_error
from .elementwise import convert, exp, log, maximum, minimum, not_a_tensor, sqrt, where

if TYPE_CHECKING:
    from .._dtype import DType
    from .._tensor import Tensor


# -- sum -----------------------------------------------------------------------------------
# The input shape is a static param, so backward needs no saved array at all.
_LOW = dt.LOW_FLOATS  # float16, bfloat16


def _sum_impl(x, dims, keepdim, shape):
    if x.dtype.kind in "biu" and x.dtype != np.int64:  # `dtype=` asked for it: keep it (NumPy
        # would widen to int64); bool sums are logical or, narrow ints wrap, as PyTorch
        return np.add.reduce(x, axis=_axes(dims, x.ndim), keepdims=keepdim, dtype=x.dtype)
    if type(x) is np.ndarray and x.ndim >= 1 and len(dims) == 1 and dims[0] == x.ndim - 1:
        r = _last_axis_sums(x, keepdim)
        if r is not None:
            return r
    if len(dims) == x.ndim and x.ndim:  # everything: fixed blocks on numba's threads
        r = full_sum(x)
        if r is not None:
            return r.reshape((1,) * x.ndim) if keepdim else r
    if type(x) is np.ndarray and x.ndim >= 3:
        r = trailing_sums(x, dims, keepdim)
        if r is not None:
            return r
        axes = _axes(dims, x.ndim)
        r = _channels_last_channel_sums(x, axes)
        if r is None:
            r = _nchw_channel_sums(x, axes)
        if r is not None:
            return r.reshape((1, -1) + (1,) * (x.ndim - 2)) if keepdim else r
    if x.dtype in _LOW:  # accumulate in float32, as PyTorch does (bf16 sums drift badly)
        return np.add.reduce(
            x, axis=_axes(dims, x.ndim), keepdims=keepdim, dtype=np.float32
        ).astype(x.dtype)
    if type(x) is np.ndarray:
        r = blocked_sum(x, dims, keepdim)
        if r is not None:
            return r
    return np.add.reduce(x, axis=_axes(dims, x.ndim), keepdims=keepdim)


sum_p = Primitive(
    "sum",
    "reduction",
    impl=_sum_impl,
    abstract=_red_abstract("sum"),
    save=SAVE_NONE,
)
defvjp(
    sum_p,
    lambda g, out, x, dims, keepdim, shape: (_expand_back(g, shape, dims, keepdim, fill=True),),
)


@op(
    method="sum",
    ref="sum",
    shapes=(((2, 3),),),
    cases=({}, {"dim": 1}, {"dim": (0, 1), "keepdim": True}),
)
def sum(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    keepdim: bool = False,
    dtype: DType | None = None,
) -> Tensor:
    """Sum over ``dim`` (int, tuple or None for all)."""
    if not hasattr(input, "_data"):
        raise not_a_tensor("sum", input)
    if dtype is not None:
        input = convert(input, dtype)
    elif input._data.dtype.kind in "bu" or (
        input._data.dtype.kind == "i" and input._data.itemsize < 8
    ):
        input = convert(input, dt.int64)  # integer sums accumulate in int64, as PyTorch
    dims = wrap_dims(None if dim == () or dim == [] else dim, input._data.ndim, "sum")
    return bind(sum_p, (input,), {"dims": dims, "keepdim": keepdim, "shape": input._data.shape})


@op(method="sum_to_size", export=False)
def sum_to_size(input: Tensor, *size: int | tuple[int, ...]) -> Tensor:
    """``Tensor.sum_to_size``: ``input`` summed down to ``size``, which must broadcast
    (expand) to ``input``'s shape; returns ``input`` itself when the shapes are equal.

    Example:
        >>> import ember
        >>> ember.ones(2, 3).sum_to_size(1, 3).tolist()
        [[2.0, 2.0, 2.0]]
    """
    if not size:
        raise TypeError("sum_to_size: missing the size to sum to")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    want = tuple(builtins.int(n) for n in size)  # type: ignore[arg-type]
    shape = tuple(input.shape)
    lead = len(shape) - len(want)
    if lead < 0 or builtins.any(w != 1 and w != n for w, n in zip(want, shape[lead:])):
        raise ShapeError(
            f"sum_to_size: size {list(want)} is not expandable to the tensor's size {list(shape)}"
        )
    if want == shape:
        return input
    out = sum(input, tuple(range(lead))) if lead else input
    keep = tuple(i for i, (w, n) in enumerate(zip(want, shape[lead:])) if w == 1 and n != 1)
    if keep:
        out = sum(out, keep, keepdim=True)
    elif not lead:
        return input
    return out


def _mean_impl(x, dims, keepdim, shape):
    n = 1
    for d in dims:
        n *= x.shape[d]
    if len(dims) == 1 and dims[0] == x.ndim - 1:
        r = _last_axis_sums(x, keepdim, 1.0 / n)
        if r is not None:
            return r
    if len(dims) == x.ndim and n:
        r = full_sum(x, 1.0 / n)
        if r is not None:
            return r.reshape((1,) * x.ndim) if keepdim else r
    r = trailing_sums(x, dims, keepdim, 1.0 / n if n else None)
    if r is not None:
        return r
    if type(x) is np.ndarray:
        r = blocked_sum(x, dims, keepdim, 1.0 / n if n else None)
        if r is not None:
            return r
    return np.mean(x, axis=dims, keepdims=keepdim)


mean_p = Primitive(
    "mean",
    "reduction",
    impl=_mean_impl,
    abstract=_red_abstract("mean"),
    save=SAVE_NONE,
)


@defvjp(mean_p)
def _mean_vjp(g, out, x, dims, keepdim, shape):
    n = 1
    for d in dims:
        n *= shape[d]
    return (_expand_back(g, shape, dims, keepdim, n, fill=True),)


@op(
    method="mean",
    ref="mean",
    shapes=(((2, 3),),),
    cases=({}, {"dim": 1}, {"dim": 0, "keepdim": True}),
)
def mean(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    keepdim: bool = False,
    *,
    dtype: DType | None = None,
) -> Tensor:
    """Mean over ``dim``; integer tensors need an explicit floating ``dtype``."""
    if not hasattr(input, "_data"):
        raise not_a_tensor("mean", input)
    if dtype is not None:
        input = convert(input, dtype)
    if input._data.dtype.kind in "iub":
        raise DTypeNotImplementedError(  # a TypeError, and PyTorch's RuntimeError
            f"mean(): could not infer output dtype. Input dtype must be either a "
            f"floating point or complex dtype. Got: {input.dtype}"
        )
    dims = wrap_dims(None if dim == () or dim == [] else dim, input._data.ndim, "mean")
    n = 1
    for d in dims:
        n *= input._data.shape[d] if input._data.ndim else 1
    if input._data.dtype in FAST_FLOATS and input._data.ndim and n:
        return bind(
            mean_p, (input,), {"dims": dims, "keepdim": keepdim, "shape": input._data.shape}
        )
    if input._data.dtype in _LOW:  # divide in float32: n may not even fit in float16
        s = sum(input, dims, keepdim, dtype=dt.float32)
        return convert(s / n if n else s * float("nan"), dt.from_numpy_dtype(input._data.dtype))
    s = sum(input, dims, keepdim)
    return s / n if n else s * float("nan")


@op(toplevel=False)
def sum_to(x: Tensor, shape) -> Tensor:
    """Sum ``x`` down to ``shape`` (undoing broadcasting); used by the autograd engine."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1
    )
    r = bind(sum_p, (x,), {"dims": dims, "keepdim": True, "shape": x._data.shape})
    return r.reshape(shape) if r.shape != shape else r


# -- prod ----------------------------------------------------------------------------------
def _prod_impl(x, dims, keepdim=False):
    if x.dtype in _LOW:
        return np.prod(x, axis=_axes(dims, x.ndim), keepdims=keepdim, dtype=np.float32).astype(
            x.dtype
        )
    if x.dtype.kind in "biu":  # keep `dtype=`'s integer/bool type (NumPy widens to int64)
        return np.multiply.reduce(x, axis=_axes(dims, x.ndim), keepdims=keepdim, dtype=x.dtype)
    return np.prod(x, axis=_axes(dims, x.ndim), keepdims=keepdim)


prod_p = Primitive(
    "prod", "reduction", impl=_prod_impl, abstract=_red_abstract("prod"), save=SAVE_BOTH
)


@defvjp(prod_p)
def _prod_vjp(g, out, x, dims, keepdim=False):
    # d prod / d x_i = product of the other elements. With no zero in a slice that is
    # out / x_i; with exactly one zero, only the zero's position gets the product of the
    # non-zeros; with two or more zeros, every gradient is 0. Written in ember ops (so it is
    # differentiable again) without dividing by zero.
    if len(dims) == 0 or x.ndim == 0:
        return (g,)
    is_zero = x == 0
    safe = where(is_zero, 1.0, x)
    nz_prod = prod_p_bind(safe, dims)
    n_zero = sum(is_zero.to(dt.int64), dims, keepdim=True)
    others = where(
        n_zero == 0, nz_prod / safe, where((n_zero == 1).logical_and(is_zero), nz_prod, 0.0)
    )
    from .complex_base import cj

    return (_expand_back(g, x.shape, dims, keepdim) * cj(others),)


def prod_p_bind(x, dims):
    return bind(prod_p, (x,), {"dims": dims, "keepdim": True})


@op(method="prod", ref="prod", shapes=(((2, 3),),), cases=({}, {"dim": 1}))
def prod(
    input: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: DType | None = None
) -> Tensor:
    if not hasattr(input, "_data"):
        raise not_a_tensor("prod", input)
    if dtype is not None:
        input = convert(input, dtype)
    elif input._data.dtype.kind in "bu" or (
        input._data.dtype.kind == "i" and input._data.itemsize < 8
    ):
        input = convert(input, dt.int64)
    dims = (
        (wrap_dim(dim, input._data.ndim, "prod"),)
        if dim is not None
        else wrap_dims(None, input._data.ndim, "prod")
    )
    return bind(prod_p, (input,), {"dims": dims, "keepdim": keepdim})


# -- amax / amin ---------------------------------------------------------------------------
def _amax_impl(x, dims, keepdim=False):
    if x.dtype in COMPLEX_NP:
        raise complex_error("amax", x.dtype)
    if x.size == 0 and builtins.any(x.shape[d] == 0 for d in dims):
        raise ShapeError(f"amax: cannot reduce over a zero-size dimension of shape {x.shape}")
    r = row_extrema(x, dims, keepdim, False)
    if r is not None:
        return r
    return np.amax(x, axis=_axes(dims, x.ndim), keepdims=keepdim)


def _amin_impl(x, dims, keepdim=False):
    if x.dtype in COMPLEX_NP:
        raise complex_error("amin", x.dtype)
    if x.size == 0 and builtins.any(x.shape[d] == 0 for d in dims):
        raise ShapeError(f"amin: cannot reduce over a zero-size dimension of shape {x.shape}")
    r = row_extrema(x, dims, keepdim, True)
    if r is not None:
        return r
    return np.amin(x, axis=_axes(dims, x.ndim), keepdims=keepdim)


def _amax_vjp(g, out, x, dims, keepdim=False):
    # Ties share the gradient evenly (PyTorch's amax/amin rule).
    if not _state.grad_enabled and x.dtype == g.dtype:
        return (bind(amax_backward_p, (g, out, x), {"dims": dims, "keepdim": keepdim}),)
    o = _expand_back(out, x.shape, dims, keepdim)
    mask = (x == o).to(g.dtype)
    count = sum(mask, dims, True)
    return (_expand_back(g, x.shape, dims, keepdim) * mask / count,)


amax_p = Primitive(
    "amax",
    "reduction",
    impl=_amax_impl,
    abstract=_red_abstract("amax"),
    save=SAVE_BOTH,
)
defvjp(amax_p, _amax_vjp)
amin_p = Primitive(
    "amin",
    "reduction",
    impl=_amin_impl,
    abstract=_red_abstract("amin"),
    save=SAVE_BOTH,
)
defvjp(amin_p, _amax_vjp)


def _amax_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5))
    x[1, 3] = x[1].max()  # a tie
    g = rng.standard_normal(3)
    return [
        ((tensor(g), tensor(x.max(1)), tensor(x)), {"dims": (1,), "keepdim": False}),
        ((tensor(g[None]), tensor(x.min(1)[None]), tensor(x.T)), {"dims": (0,), "keepdim": True}),
    ]


amax_backward_p = Primitive(
    "amax_backward",
    "opaque",
    impl=quiet(lambda g, o, x, *, dims, keepdim: amax_grad(g, x, o, dims, keepdim)),
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, o, x, **kw: AbstractValue(x.shape, x.dtype),
)
defsample(amax_backward_p, _amax_backward_sample)


@op(
    method="amax",
    ref="amax",
    shapes=(((2, 3),),),
    cases=({"dim": 1}, {"dim": (0, 1)}),
    sample=distinct_values,
)
def amax(input: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
    dims = wrap_dims(dim if dim != () else None, input._data.ndim, "amax")
    return bind(amax_p, (input,), {"dims": dims, "keepdim": keepdim})


@op(
    method="amin",
    ref="amin",
    shapes=(((2, 3),),),
    cases=({"dim": 0}, {"dim": (0, 1)}),
    sample=distinct_values,
)
def amin(input: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
    dims = wrap_dims(dim if dim != () else None, input._data.ndim, "amin")
    return bind(amin_p, (input,), {"dims": dims, "keepdim": keepdim})


# -- argmax / argmin -----------------------------------------------------------------------
def _arg_impl(fn):
    def impl(x, dim=None, keepdim=False):
        if x.dtype in COMPLEX_NP:
            raise complex_error(fn.__name__, x.dtype)
        if x.size == 0 and (dim is None or x.ndim == 0 or x.shape[dim] == 0):
            # an empty tensor reduced over a non-empty dim gives an empty result (as PyTorch)
            raise ShapeError(f"{fn.__name__}: expected a non-empty tensor, got shape {x.shape}")
        if dim is None:
            r = fn(x.reshape(-1))
            return np.asarray(r, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ())
        if x.ndim == 0:
            return np.zeros((), np.int64)
        r = row_arg_extrema(x, dim if dim == x.ndim - 1 else None, keepdim, fn is np.argmin)
        if r is not None:
            return r
        r = fn(x, axis=dim, keepdims=keepdim)
        return r.astype(np.int64, copy=False)

    return impl


def _arg_abstract(name):
    def rule(x, dim=None, keepdim=False):
        if dim is None:
            return AbstractValue((1,) * x.ndim if keepdim else (), dt.int64)
        return AbstractValue(reduced_shape(x.shape, (dim,), keepdim) if x.ndim else (), dt.int64)

    return rule


argmax_p = Primitive(
    "argmax", "reduction", impl=_arg_impl(np.argmax), abstract=_arg_abstract("argmax"), nondiff=True
)
argmin_p = Primitive(
    "argmin", "reduction", impl=_arg_impl(np.argmin), abstract=_arg_abstract("argmin"), nondiff=True
)


@op(method="argmax")
def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    d = None if dim is None else wrap_dim(dim, input._data.ndim, "argmax")
    return bind(argmax_p, (input,), {"dim": d, "keepdim": keepdim})


@op(method="argmin")
def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    d = None if dim is None else wrap_dim(dim, input._data.ndim, "argmin")
    return bind(argmin_p, (input,), {"dim": d, "keepdim": keepdim})


class _MinMax(tuple):
    """``(values, indices)`` named tuple returned by ``max(dim)`` / ``min(dim)``."""

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


@op(method="max")
def max(
    input: Tensor, dim: int | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``max(input)`` reduces everything; ``max(input, dim)`` returns (values, indices);
    ``max(input, other)`` is the elementwise maximum."""
    from .._tensor import Tensor

    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        return amax(input)
    return _minmax_dim(input, dim, keepdim, argmax)


@op(method="min")
def min(
    input: Tensor, dim: int | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    from .._tensor import Tensor

    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        return amin(input)
    return _minmax_dim(input, dim, keepdim, argmin)


def _minmax_dim(x, dim, keepdim, argfn):
    # The gradient goes to the selected index only (as PyTorch), so select with a one-hot
    # mask of the argmax/argmin instead of using amax's tie-splitting rule.
    from .._creation import arange

    d = wrap_dim(dim, x._data.ndim, "max")
    idx = argfn(x, d, keepdim=True)
    if x._data.ndim == 0:
        return _MinMax((x * 1, idx))
    if x._data.dtype.kind == "f" and x._data.size != 0:
        from .indexing import gather

        vals = gather(x, d, idx)  # (the gradient goes to the index: a scatter)
    else:
        n = x._data.shape[d]
        iota = arange(n).reshape([n if i == d else 1 for i in range(x._data.ndim)])
        vals = sum(where(idx == iota, x, 0), d, keepdim=True)
        if vals.dtype != x.dtype:  # sum promotes integer/bool values to int64
            vals = convert(vals, x.dtype)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return _MinMax((vals, idx))


# -- var / std -----------------------------------------------------------------------------
def _var_impl(x, dims, keepdim, correction):
    """Two-pass variance (the mean first, then squared deviations): the compiled row kernel
    for the last axis of float32/float64 arrays, NumPy's otherwise."""
    from . import _norm_kernels as nk

    n = 1
    for d in dims:
        n *= x.shape[d]
    denom = float(builtins.max(n - correction, 0))
    if len(dims) == 1 and dims[0] == x.ndim - 1 and x.size and denom > 0:
        k = nk.kernel("row_vars", x)
        if k is not None:
            x2 = nk.rows(x, x.shape[-1])
            out = np.empty(x2.shape[0], x.dtype)
            s = 1.0 / denom
            par = ("row_vars", (x2, out, s))
            nk.run_rows(lambda a, b: k(x2[a:b], out[a:b], s), x2.shape[0], n, 4, par=par)
            return out.reshape(x.shape[:-1] + ((1,) if keepdim else ()))
    # PyTorch accumulates float32 statistics in float64 (float16/bfloat16 in float32): the
    # mean rounded to x's dtype, or float32 sums along a strided axis, lose the variance of
    # data with a large offset
    acc = np.float32 if x.dtype in _LOW else np.float64
    xa = x.astype(acc, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: nan, silently (PyTorch)
        dev = xa - np.mean(xa, axis=dims, keepdims=True)
        r = np.add.reduce(dev * dev, axis=dims, keepdims=keepdim) / denom
    return r.astype(x.dtype, copy=False)


var_p = Primitive(
    "var",
    "reduction",
    impl=_var_impl,
    abstract=lambda x, dims, keepdim, correction: AbstractValue(
        reduced_shape(x.shape, dims, keepdim), x.dtype
    ),
    save=SAVE_INPUTS,
)


@defvjp(var_p)
def _var_vjp(g, out, x, dims, keepdim, correction):
    n = 1
    for d in dims:
        n *= x.shape[d]
    dev = x - mean(x, dims, keepdim=True)
    if n == correction:  # PyTorch's 2 / (n - correction) * g * dev: inf * 0 = nan, to all orders
        return (_expand_back(g, x.shape, dims, keepdim) * math.inf * dev,)
    # divide by float(n - correction) rather than multiply by its reciprocal: a graph built on
    # symbolic sizes (ember.symbol) recognizes a float size as a divisor and keeps it symbolic
    return ((_expand_back(g, x.shape, dims, keepdim) * dev * 2.0) / float(n - correction),)


@op(method="var", ref="var", shapes=(((2, 3),),), cases=({}, {"dim": 1}))
def var(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    """Variance with Bessel's ``correction`` (default 1, like PyTorch)."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    if input._data.dtype.kind == "c":  # E|z - mu|^2: the variances of the two parts, summed
        from .complex_ops import imag, real

        kw = {"keepdim": keepdim, "correction": correction}
        return var(real(input), dim, **kw) + var(imag(input), dim, **kw)
    dims = wrap_dims(None if dim == () or dim == [] else dim, input._data.ndim, "var")
    n = 1
    for d in dims:
        n *= input._data.shape[d] if input._data.ndim else 1
    if input._data.ndim and n > 0 and input._data.dtype.kind == "f":
        # (n - correction <= 0 included: PyTorch's value divides by max(0, n - correction),
        # inf or nan, and its gradient is 2 (x - mean) / (n - correction), as var_p's)
        return bind(var_p, (input,), {"dims": dims, "keepdim": keepdim, "correction": correction})
    mu = mean(input, dims, keepdim=True)
    denom = n - correction
    dev = input - mu
    s = sum(dev * dev, dims, keepdim)
    if denom <= 0:
        return s * float("nan")
    return s / float(denom)


@op(method="std", ref="std", shapes=(((2, 3),),), cases=({}, {"dim": 1, "keepdim": True}))
def std(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> Tensor:
    v = var(input, dim, unbiased, keepdim, correction=correction)
    # PyTorch defines the gradient of std at 0 (a constant slice) as 0, not nan.
    zero = v == 0
    return where(zero, 0.0, sqrt(where(zero, 1.0, v)))


def _wide_mean(input: Tensor, dim, keepdim: bool) -> Tensor:
    """The mean of ``var_mean``/``std_mean``: PyTorch takes it from the float64 (float32 for
    float16/bfloat16) accumulation of the variance, so float32 means round the exact one."""
    acc = {dt.float32: dt.float64, dt.float16: dt.float32, dt.bfloat16: dt.float32}
    wide = acc.get(input.dtype)
    if wide is None:
        return mean(input, dim, keepdim)
    return convert(mean(convert(input, wide), dim, keepdim), input.dtype)


@op()
def var_mean(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    v = var(input, dim, unbiased, keepdim, correction=correction)
    return v, _wide_mean(input, dim, keepdim)


@op()
def std_mean(
    input: Tensor,
    dim: int | tuple[int, ...] | None = None,
    unbiased: bool = True,
    keepdim: bool = False,
    *,
    correction: float | None = None,
) -> tuple[Tensor, Tensor]:
    v = std(input, dim, unbiased, keepdim, correction=correction)
    return v, _wide_mean(input, dim, keepdim)


# -- logsumexp / softmax -------------------------------------------------------------------
def _lse_impl(x, dims, keepdim=False):
    ax = _axes(dims, x.ndim)
    # an empty reduced slice has no max: its logsumexp is log(0) = -inf (as PyTorch)
    if x.size == 0:
        m = np.amax(x, axis=ax, keepdims=True, initial=-np.inf)
    else:
        m = np.amax(x, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    r = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    if not keepdim and x.ndim:
        r = np.squeeze(r, axis=dims)
    elif x.ndim == 0:
        r = r.reshape(())
    return r


logsumexp_p = Primitive(
    "logsumexp",
    "reduction",
    impl=quiet(_lse_impl),  # log(0) = -inf for an all -inf slice, silently as PyTorch
    abstract=_red_abstract("logsumexp"),
    save=SAVE_BOTH,
)


@defvjp(logsumexp_p)
def _lse_vjp(g, out, x, dims, keepdim=False):
    o = _expand_back(out, x.shape, dims, keepdim)
    from .complex_base import cj

    return (_expand_back(g, x.shape, dims, keepdim) * cj(exp(x - o)),)


@op(method="logsumexp", ref="logsumexp", shapes=(((2, 3),),), cases=({"dim": 1},))
def logsumexp(input: Tensor, dim: int | tuple[int, ...], keepdim: bool = False) -> Tensor:
    if input._data.dtype.kind in "iub":
        input = convert(input, dt.get_default_dtype())
    dims = wrap_dims(dim, input._data.ndim, "logsumexp")
    return bind(logsumexp_p, (input,), {"dims": dims, "keepdim": keepdim})


def _softmax_impl(x, dim):
    if x.ndim == 0:  # exp(x - x): 1, or NaN for a non-finite x (as PyTorch)
        return np.where(np.isfinite(x), 1, np.nan).astype(x.dtype)
    if x.size == 0:
        return x.copy()
    r = softmax_kernel(x, dim, False)
    if r is not None:
        return r
    if x.dtype.kind == "c":
        raise complex_error("softmax", x.dtype)
    m = np.amax(x, axis=dim, keepdims=True)
    e = np.exp(x - m)
    e /= np.sum(e, axis=dim, keepdims=True)
    return e


def _softmax_abstract(x, dim):
    return AbstractValue(x.shape, x.dtype)


softmax_p = Primitive(
    "softmax", "reduction", impl=quiet(_softmax_impl), abstract=_softmax_abstract, save=SAVE_OUTPUT
)


@defvjp(softmax_p)
def _softmax_vjp(g, out, x, dim):
    if not _state.grad_enabled:
        return (bind(softmax_backward_p, (g, out), {"dim": dim, "log": False}),)
    gy = g * out
    return (gy - out * sum(gy, dim, keepdim=True),)


def _log_softmax_impl(x, dim):
    if x.ndim == 0:
        return np.where(np.isfinite(x), 0, np.nan).astype(x.dtype)
    if x.size == 0:
        return x.copy()
    r = softmax_kernel(x, dim, True)
    if r is not None:
        return r
    if x.dtype.kind == "c":
        raise complex_error("log_softmax", x.dtype)
    m = np.amax(x, axis=dim, keepdims=True)
    s = x - m
    s -= np.log(np.sum(np.exp(s), axis=dim, keepdims=True))
    return s


log_softmax_p = Primitive(
    "log_softmax",
    "reduction",
    impl=quiet(_log_softmax_impl),
    abstract=_softmax_abstract,
    save=SAVE_OUTPUT,
)


@defvjp(log_softmax_p)
def _log_softmax_vjp(g, out, x, dim):
    if not _state.grad_enabled:
        return (bind(softmax_backward_p, (g, out), {"dim": dim, "log": True}),)
    return (g - exp(out) * sum(g, dim, keepdim=True),)


def _softmax_backward_impl(g, y, *, dim, log, scale=1.0):
    """The softmax (``log``: log_softmax) input gradient from the output ``y``, times
    ``scale`` (the compiler folds the scale of ``softmax(x * scale)`` into it)."""
    g = g.astype(y.dtype, copy=False)
    if y.ndim == 0:
        r = np.zeros_like(y) if not log else g - np.exp(y) * g
    else:
        r = softmax_grad_kernel(np.broadcast_to(g, y.shape), y, dim, log, scale)
        if r is not None:
            return r
        if log:
            r = g - np.exp(y) * np.add.reduce(g, axis=dim, keepdims=True)
        else:
            gy = g * y
            r = gy - y * np.add.reduce(gy, axis=dim, keepdims=True)
    if scale != 1:
        r = r * r.dtype.type(scale)
    return r


def _softmax_backward_sample():
    from .._creation import tensor

    rng = np.random.default_rng(3)
    y = np.exp(rng.standard_normal((3, 5)))
    y /= y.sum(1, keepdims=True)
    g = tensor(rng.standard_normal((3, 5)))
    return [
        ((g, tensor(y)), {"dim": 1, "log": False}),
        ((g, tensor(np.log(y))), {"dim": 0, "log": True}),
        ((g, tensor(y)), {"dim": 1, "log": False, "scale": 0.125}),
    ]


softmax_backward_p = Primitive(
    "softmax_backward",
    "opaque",
    impl=quiet(_softmax_backward_impl),
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda g, y, **kw: AbstractValue(y.shape, y.dtype),
)
defsample(softmax_backward_p, _softmax_backward_sample)


def _prep_softmax(x, dim, dtype, op):
    if not hasattr(x, "_data"):
        raise not_a_tensor(op, x)
    if dtype is not None:
        x = convert(x, dtype)
    refuse_integral(op, x)
    if dim is None:
        raise TypeError(f"{op}() missing required argument 'dim'")
    return x, wrap_dim(dim, x._data.ndim, op)


@op(
    method="softmax", ref="softmax", shapes=(((2, 3),),), cases=({"dim": -1}, {"dim": 0}), rtol=1e-4
)
def softmax(input: Tensor, dim: int | None = None, dtype: DType | None = None) -> Tensor:
    """Softmax along ``dim``."""
    input, d = _prep_softmax(input, dim, dtype, "softmax")
    return bind(softmax_p, (input,), {"dim": d})


@op(method="log_softmax", ref="log_softmax", shapes=(((2, 3),),), cases=({"dim": -1},), rtol=1e-4)
def log_softmax(input: Tensor, dim: int | None = None, dtype: DType | None = None) -> Tensor:
    """Log of softmax along ``dim``, computed stably."""
    input, d = _prep_softmax(input, dim, dtype, "log_softmax")
    return bind(log_softmax_p, (input,), {"dim": d})


# -- all, any ---------------------------------------------------------------------------------
def _bool_red(fn, name):
    def impl(x, dims, keepdim=False):
        return fn(x, axis=_axes(dims, x.ndim), keepdims=keepdim)

    return Primitive(
        name, "reduction", impl=impl, abstract=_red_abstract(name, dt.bool_), nondiff=True
    )


all_p = _bool_red(np.all, "all")
any_p = _bool_red(np.any, "any")


@op(method="all")
def all(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return bind(
        all_p, (input,), {"dims": wrap_dims(dim, input._data.ndim, "all"), "keepdim": keepdim}
    )


@op(method="any")
def any(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return bind(
        any_p, (input,), {"dims": wrap_dims(dim, input._data.ndim, "any"), "keepdim": keepdim}
    )


@op(method="count_nonzero")
def count_nonzero(input: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    return sum((input != 0).to(dt.int64), dim)


_ = (SAVE_INPUTS, log)


__all__ = module_ops(__name__)
