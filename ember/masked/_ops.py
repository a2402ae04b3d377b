"""The masked reductions and normalizations of :mod:`ember.masked` on dense tensors.

Each op replaces the masked-out elements by the identity of its reduction (0 for sums and
norms, 1 for products, -inf/+inf for max/min and the softmaxes, NaN for the median) and runs
the ordinary op, as PyTorch's ``torch.masked`` does; so gradients are the ordinary op's, and
masked-out elements get none. Reductions without an identity (mean, var, std) divide by the
count of unmasked elements: a fully masked-out slice gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor
from ..ops import _core

__all__ = [
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cumprod",
    "cumsum",
    "log_softmax",
    "logaddexp",
    "logsumexp",
    "mean",
    "median",
    "norm",
    "normalize",
    "prod",
    "softmax",
    "softmin",
    "std",
    "sum",
    "var",
]

Dims = int | Sequence[int] | None
_SMALL_INTS = (dt.uint8, dt.bool_, dt.int8, dt.int16, dt.int32)


def _tensor(x: object, fn: str, what: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"masked.{fn}: expected a Tensor as {what}, got {type(x).__name__}")
    return x


def _dims(dim: Dims, ndim: int, fn: str) -> tuple[int, ...]:
    """``dim`` as a sorted tuple (None and () mean every dim, as PyTorch's masked ops)."""
    if dim is None or (not isinstance(dim, int) and len(tuple(dim)) == 0):
        return tuple(range(ndim))
    n = max(ndim, 1)
    out: list[int] = []
    for d in (dim,) if isinstance(dim, int) else tuple(dim):
        if not -n <= d < n:
            raise IndexError(
                f"masked.{fn}: dimension out of range (expected to be in range of "
                f"[{-n}, {n - 1}], but got {d})"
            )
        if d % n in out:
            raise ValueError(f"masked.{fn}: dim={d} appears multiple times in the list of dims")
        out.append(d % n)
    return tuple(sorted(out)) if ndim else ()


def _input_mask(input: Tensor, mask: object, fn: str, what: str = "mask") -> Tensor:
    """The mask as a bool tensor of ``input``'s shape (broadcast; never of higher rank)."""
    from ..ops.shape import broadcast_to

    m = _tensor(mask, fn, what)
    if m.ndim > input.ndim:
        raise IndexError(
            f"masked.{fn}: expected a {what} broadcastable to the input {tuple(input.shape)}, "
            f"got {what} dimensionality higher than the input's ({tuple(m.shape)})"
        )
    if tuple(m.shape) != tuple(input.shape):
        try:
            m = broadcast_to(m, tuple(input.shape))
        except (ValueError, RuntimeError) as e:
            raise _core.ShapeError(
                f"masked.{fn}: {what} of shape {tuple(m.shape)} does not broadcast to the "
                f"input's shape {tuple(input.shape)}"
            ) from e
    return m.to(dt.bool_)


def _identity(kind: str, input: Tensor) -> float:
    d = input.dtype
    if kind == "zero":
        return 0
    if kind == "one":
        return 1
    if kind == "nan":
        return math.nan
    if d.is_floating_point:
        return -math.inf if kind == "max" else math.inf
    if d is dt.bool_:
        return kind != "max"
    info = np.iinfo(d.np)
    return int(info.min) if kind == "max" else int(info.max)


def _fill(input: Tensor, mask: Tensor | None, kind: str, fn: str) -> Tensor:
    """``input`` with its masked-out elements set to the identity ``kind`` of the op."""
    from .._creation import tensor
    from ..ops.elementwise import where

    if mask is None:
        return input
    m = _input_mask(input, mask, fn)
    fill = _identity(kind, input)
    return where(m, input, tensor(fill, dtype=input.dtype))


def _sum_dtype(input: Tensor, dtype: dt.DType | None) -> dt.DType:
    if dtype is not None:
        return dtype
    return dt.int64 if input.dtype in _SMALL_INTS else input.dtype


# -- reductions ------------------------------------------------------------------------------
def sum(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Sum of the unmasked elements over ``dim`` (every dim by default); 0 where all are
    masked out. Small integer and bool inputs sum in int64.

    Example:
        >>> import ember
        >>> x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> m = ember.tensor([[True, False], [False, False]])
        >>> ember.masked.sum(x, 1, mask=m).tolist()
        [1.0, 0.0]
    """
    from ..ops.reduction import sum as _sum

    input = _tensor(input, "sum")
    dims = _dims(dim, input.ndim, "sum")
    x = _fill(input, mask, "zero", "sum")
    return _sum(x, dims, bool(keepdim), dtype=_sum_dtype(input, dtype))


def prod(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Product of the unmasked elements over ``dim``; 1 where all are masked out.

    Example:
        >>> import ember
        >>> x = ember.tensor([2.0, 3.0, 4.0])
        >>> ember.masked.prod(x, mask=ember.tensor([True, False, True])).item()
        8.0
    """
    from ..ops.reduction import prod as _prod

    input = _tensor(input, "prod")
    dims = _dims(dim, input.ndim, "prod")
    r = _fill(input, mask, "one", "prod").to(_sum_dtype(input, dtype))
    for d in reversed(dims):
        r = _prod(r, d, bool(keepdim))
    return r


def _extreme(input, dim, keepdim, dtype, mask, fn):
    from ..ops.reduction import amax as _amax
    from ..ops.reduction import amin as _amin

    input = _tensor(input, fn)
    x = _fill(input, mask, "max" if fn == "amax" else "min", fn)
    dims = _dims(dim, x.ndim, fn)
    r = (_amax if fn == "amax" else _amin)(x, dims, bool(keepdim))
    return r.to(dtype or input.dtype)


def amax(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Largest unmasked element over ``dim``; -inf (the dtype's minimum for integers) where
    all are masked out.

    Example:
        >>> import ember
        >>> x = ember.tensor([[1.0, 5.0], [3.0, 4.0]])
        >>> ember.masked.amax(x, 1, mask=ember.tensor([[True, False], [True, True]])).tolist()
        [1.0, 4.0]
    """
    return _extreme(input, dim, keepdim, dtype, mask, "amax")


def amin(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Smallest unmasked element over ``dim``; +inf (the dtype's maximum for integers) where
    all are masked out.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 5.0, 3.0])
        >>> ember.masked.amin(x, mask=ember.tensor([False, True, True])).item()
        3.0
    """
    return _extreme(input, dim, keepdim, dtype, mask, "amin")


def _arg(input, dim, keepdim, dtype, mask, fn):
    from ..ops.reduction import argmax as _argmax
    from ..ops.reduction import argmin as _argmin

    input = _tensor(input, fn)
    x = _fill(input, mask, "max" if fn == "argmax" else "min", fn)
    if dim is not None:
        dim = _dims(dim, x.ndim, fn)[0] if x.ndim else dim
    r = (_argmax if fn == "argmax" else _argmin)(x, dim, bool(keepdim))
    # PyTorch casts the index to ``dtype``, which defaults to the input's dtype
    return r.to(dtype or input.dtype)


def argmax(
    input: Tensor,
    dim: int | None = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Index of the largest unmasked element along ``dim`` (of the flattened input when
    None). As PyTorch's, the index has the input's dtype unless ``dtype`` says otherwise.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 5.0, 3.0])
        >>> ember.masked.argmax(x, 0, mask=ember.tensor([True, False, True])).item()
        2.0
    """
    return _arg(input, dim, keepdim, dtype, mask, "argmax")


def argmin(
    input: Tensor,
    dim: int | None = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Index of the smallest unmasked element along ``dim`` (input's dtype by default, as
    PyTorch's).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 5.0, 3.0])
        >>> ember.masked.argmin(x, 0, dtype=ember.int64, mask=x > 2).item()
        2
    """
    return _arg(input, dim, keepdim, dtype, mask, "argmin")


def _count(input: Tensor, mask: Tensor | None, dim: Dims, keepdim: bool, fn: str) -> Tensor:
    from ..ops.reduction import sum as _sum

    dims = _dims(dim, input.ndim, fn)
    if mask is None:
        n = 1
        for d in dims:
            n *= input.shape[d]
        shape = tuple(
            1 if i in dims else s for i, s in enumerate(input.shape) if keepdim or i not in dims
        )
        from .._creation import full

        return full(shape, n, dtype=dt.int64)
    return _sum(_input_mask(input, mask, fn).to(dt.int64), dims, keepdim)


def mean(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Mean of the unmasked elements over ``dim``; NaN where all are masked out. Needs a
    floating input or ``dtype``.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0, 6.0])
        >>> ember.masked.mean(x, mask=ember.tensor([True, False, True])).item()
        3.5
    """
    input = _tensor(input, "mean")
    out = dtype or input.dtype
    if not out.is_floating_point:
        source = "Input" if dtype is None else "Optional"
        raise ValueError(
            f"masked.mean: could not infer the output dtype: {source} dtype must be a "
            f"floating point dtype, got {out}"
        )
    total = sum(input, dim, keepdim=keepdim, dtype=out, mask=mask)
    return total / _count(input, mask, dim, bool(keepdim), "mean")


def median(
    input: Tensor,
    dim: int = -1,
    *,
    keepdim: bool = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Median of the unmasked elements along ``dim`` (the lower of the two middle values, as
    PyTorch's); NaN where all are masked out (an integer input then raises). As PyTorch's,
    NaNs in the input are skipped like masked-out elements.

    Example:
        >>> import ember
        >>> x = ember.tensor([[1.0, 9.0, 3.0, 4.0]])
        >>> ember.masked.median(x, mask=x < 5).tolist()
        [3.0]
    """
    from ..ops.statistics import nanmedian

    input = _tensor(input, "median")
    out_dtype = dtype or input.dtype
    d = _dims(dim, input.ndim, "median")
    if input.ndim and len(d) != 1:
        raise ValueError(f"masked.median: dim must be a single int, got {dim}")
    is_float = input.dtype.is_floating_point
    x = input if is_float else input.to(dt.float32)
    x = _fill(x, mask, "nan", "median")
    r = nanmedian(x, d[0] if input.ndim else 0, keepdim).values
    if is_float:
        return r
    if bool(r.isnan().any()):
        raise ValueError(
            "masked.median: an integer input cannot have fully masked-out rows (their median "
            "is NaN)"
        )
    return r.to(out_dtype)


def logsumexp(
    input: Tensor,
    dim: Dims = None,
    *,
    keepdim: bool = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """``log(sum(exp(x)))`` of the unmasked elements over ``dim``; -inf where all are masked
    out.

    Example:
        >>> import ember
        >>> x = ember.tensor([0.0, 5.0, 0.0])
        >>> round(ember.masked.logsumexp(x, mask=x < 1).item(), 4)
        0.6931
    """
    from ..ops.reduction import logsumexp as _lse

    input = _tensor(input, "logsumexp")
    dims = _dims(dim, input.ndim, "logsumexp")
    x = _fill(input, mask, "max", "logsumexp")
    return _lse(x, dims, bool(keepdim)).to(dtype or input.dtype)


def logaddexp(
    input: Tensor,
    other: Tensor,
    *,
    dtype: dt.DType | None = None,
    input_mask: Tensor | None = None,
    other_mask: Tensor | None = None,
) -> Tensor:
    """``log(exp(input) + exp(other))`` with masked-out elements of each side taken as
    -inf (so both masked out gives -inf).

    Example:
        >>> import ember
        >>> a, b = ember.tensor([-100.0, -200.0]), ember.tensor([-1.0, -2.0])
        >>> m = ember.tensor([True, False])
        >>> ember.masked.logaddexp(a, b, input_mask=m, other_mask=m).tolist()
        [-1.0, -inf]
    """
    from ..ops.math_extra import logaddexp as _lae

    input, other = _tensor(input, "logaddexp"), _tensor(other, "logaddexp", "other")
    a = _fill(input, input_mask, "max", "logaddexp")
    b = _fill(other, other_mask, "max", "logaddexp")
    return _lae(a, b).to(dtype or input.dtype)


def norm(
    input: Tensor,
    ord: float | None = 2.0,
    dim: Dims = None,
    *,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Vector ``ord``-norm of the unmasked elements over ``dim`` (masked-out elements count as
    0, or +inf for ``ord=-inf``).

    Example:
        >>> import ember
        >>> x = ember.tensor([3.0, 100.0, -4.0])
        >>> ember.masked.norm(x, mask=x < 50).item()
        5.0
    """
    from ..ops.linalg_norms import vector_norm

    input = _tensor(input, "norm")
    p = 2.0 if ord is None else ord
    x = _fill(input, mask, "min" if p == -math.inf else "zero", "norm")
    dims = _dims(dim, input.ndim, "norm")
    return vector_norm(x, p, dims or None, bool(keepdim), dtype=dtype or input.dtype)


def _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, fn):
    from ..ops.elementwise import maximum, sqrt

    input = _tensor(input, fn)
    if unbiased is not None and correction is not None:
        raise ValueError(f"masked.{fn}: give only one of unbiased and correction")
    c = 1.0
    if unbiased is not None:
        c = 1.0 if unbiased else 0.0
    if correction is not None:
        c = float(correction)
    out = dtype or input.dtype
    if not out.is_floating_point:
        out = dt.float32
    count = _count(input, mask, dim, True, fn)
    total = sum(input, dim, keepdim=True, dtype=out, mask=mask)
    centered = input - total / count
    sq = sum(centered * centered, dim, keepdim=keepdim, dtype=out, mask=mask)
    if not keepdim:
        count = count.reshape(tuple(sq.shape))
    if c != 0:
        count = maximum(count.to(out) - c, 0.0)
    r = (sq / count).to(out)
    return sqrt(r) if fn == "std" else r


def var(
    input: Tensor,
    dim: Dims = None,
    unbiased: bool | None = None,
    *,
    correction: float | None = None,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Variance of the unmasked elements over ``dim`` with Bessel's ``correction`` (1 by
    default); NaN or inf where too few elements are unmasked.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0, 3.0, 100.0])
        >>> ember.masked.var(x, mask=x < 50).item()
        1.0
    """
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, "var")


def std(
    input: Tensor,
    dim: Dims = None,
    unbiased: bool | None = None,
    *,
    correction: int | None = None,
    keepdim: bool | None = False,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """Standard deviation of the unmasked elements over ``dim`` (see :func:`var`).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 3.0, 100.0])
        >>> ember.masked.std(x, correction=0, mask=x < 50).item()
        1.0
    """
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, "std")


# -- normalizations --------------------------------------------------------------------------
def _one_dim(input: Tensor, dim: int, fn: str) -> int:
    if not isinstance(dim, int):
        raise TypeError(f"masked.{fn}: dim must be an int, got {type(dim).__name__}")
    return _dims(dim, input.ndim, fn)[0] if input.ndim else 0


def cumsum(
    input: Tensor, dim: int, *, dtype: dt.DType | None = None, mask: Tensor | None = None
) -> Tensor:
    """Cumulative sum along ``dim`` with masked-out elements counted as 0.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0, 3.0])
        >>> ember.masked.cumsum(x, 0, mask=ember.tensor([True, False, True])).tolist()
        [1.0, 1.0, 4.0]
    """
    from ..ops.scan import cumsum as _cumsum

    input = _tensor(input, "cumsum")
    d = _one_dim(input, dim, "cumsum")
    out = dtype or input.dtype
    return _cumsum(_fill(input, mask, "zero", "cumsum"), d, dtype=out).to(out)


def cumprod(
    input: Tensor, dim: int, *, dtype: dt.DType | None = None, mask: Tensor | None = None
) -> Tensor:
    """Cumulative product along ``dim`` with masked-out elements counted as 1.

    Example:
        >>> import ember
        >>> x = ember.tensor([2.0, 5.0, 3.0])
        >>> ember.masked.cumprod(x, 0, mask=ember.tensor([True, False, True])).tolist()
        [2.0, 2.0, 6.0]
    """
    from ..ops.scan import cumprod as _cumprod

    input = _tensor(input, "cumprod")
    d = _one_dim(input, dim, "cumprod")
    out = dtype or input.dtype
    return _cumprod(_fill(input, mask, "one", "cumprod"), d, dtype=out).to(out)


def softmax(
    input: Tensor, dim: int, *, dtype: dt.DType | None = None, mask: Tensor | None = None
) -> Tensor:
    """Softmax along ``dim`` over the unmasked elements (masked-out ones get 0; a fully
    masked-out slice gives NaN).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 7.0, 1.0])
        >>> ember.masked.softmax(x, 0, mask=x < 5).tolist()
        [0.5, 0.0, 0.5]
    """
    from ..ops.reduction import softmax as _softmax

    input = _tensor(input, "softmax")
    d = _one_dim(input, dim, "softmax")
    return _softmax(_fill(input, mask, "max", "softmax"), d, dtype=dtype or input.dtype)


def log_softmax(
    input: Tensor, dim: int, *, dtype: dt.DType | None = None, mask: Tensor | None = None
) -> Tensor:
    """Log-softmax along ``dim`` over the unmasked elements (masked-out ones get -inf).

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 7.0, 1.0])
        >>> [round(v, 4) for v in ember.masked.log_softmax(x, 0, mask=x < 5).tolist()]
        [-0.6931, -inf, -0.6931]
    """
    from ..ops.reduction import log_softmax as _log_softmax

    input = _tensor(input, "log_softmax")
    d = _one_dim(input, dim, "log_softmax")
    return _log_softmax(_fill(input, mask, "max", "log_softmax"), d, dtype=dtype or input.dtype)


def softmin(
    input: Tensor, dim: int, *, dtype: dt.DType | None = None, mask: Tensor | None = None
) -> Tensor:
    """Softmin (softmax of ``-input``) along ``dim`` over the unmasked elements.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, -7.0, 1.0])
        >>> ember.masked.softmin(x, 0, mask=x > -5).tolist()
        [0.5, 0.0, 0.5]
    """
    from ..ops.reduction import softmax as _softmax

    input = _tensor(input, "softmin")
    d = _one_dim(input, dim, "softmin")
    x = _fill(input, mask, "min", "softmin")
    return _softmax(-x, d, dtype=dtype or input.dtype)


def normalize(
    input: Tensor,
    ord: float,
    dim: int,
    *,
    eps: float = 1e-12,
    dtype: dt.DType | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    """``input`` divided by its masked ``ord``-norm along ``dim`` (at least ``eps``);
    masked-out elements become 0.

    Example:
        >>> import ember
        >>> x = ember.tensor([3.0, 9.0, 4.0])
        >>> [round(v, 4) for v in ember.masked.normalize(x, 2.0, 0, mask=x < 5).tolist()]
        [0.6, 0.0, 0.8]
    """
    from ..ops.elementwise import maximum

    input = _tensor(input, "normalize")
    d = _one_dim(input, dim, "normalize")
    out = dtype or input.dtype
    nrm = norm(input, ord, d, keepdim=True, dtype=out, mask=mask)
    return _fill(input, mask, "zero", "normalize") / maximum(nrm, eps)
