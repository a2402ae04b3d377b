"""Order statistics, running extremes, distances and counting with PyTorch's names:
``median``/``nanmedian``, ``quantile``/``nanquantile``, ``mode``, ``aminmax``,
``cummax``/``cummin``, ``logcumsumexp``, ``cov``/``corrcoef``, ``cdist``/``dist``, ``renorm``,
``bincount``, ``histc``, ``bucketize``/``searchsorted``, ``unique_consecutive`` and
``unravel_index``.

Differentiable results are compositions (sort, gather, arithmetic), so their gradients go
where PyTorch's go: to the selected elements. Index and counting results come from
non-differentiable primitives, recorded like any other by the compiler.

Example:
    >>> import ember
    >>> x = ember.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    >>> ember.median(x, dim=1).values.tolist()
    [3.0, 4.0]
    >>> ember.quantile(x, 0.5).item()
    3.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from ._samples import defsample
from ._util import wrap_dim
from .complex_refuse import refuse_complex
from .elementwise import exp, isnan, log, where
from .indexing import _ValuesIndices, sort, take_along_dim

if TYPE_CHECKING:
    from .._tensor import Tensor


def _as_float(x: Tensor, name: str) -> Tensor:
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating point tensor, got {x.dtype}")
    return x


def _flat_or_dim(input: Tensor, dim: int | None, name: str) -> tuple[Tensor, int]:
    if dim is None:
        return input.reshape(-1), 0
    if input.ndim == 0:
        wrap_dim(dim, 1, name)
        return input.reshape(1), 0
    return input, wrap_dim(dim, input.ndim, name)


# -- median / quantile ---------------------------------------------------------------------
def _median_all_impl(x, *, ignore_nan):
    s = np.sort(x.reshape(-1))  # nan sorts last
    n = s.size
    k = (n - 1) // 2
    if s.dtype.kind in "fc":
        valid = n - int(np.count_nonzero(np.isnan(s)))
        if ignore_nan:
            k = max(valid - 1, 0) // 2
        elif valid < n:
            k = valid  # the first nan
    return np.asarray(s[k])


# The global median as one primitive: its gradient is split evenly among the elements equal
# to the median (the nan elements when it is nan), as PyTorch's evenly_distribute_backward.
median_all_p = Primitive(
    "median_all",
    "reduction",
    impl=_median_all_impl,
    abstract=lambda x, *, ignore_nan: AbstractValue((), x.dtype),
)


@defvjp(median_all_p, save=SAVE_BOTH)
def _median_all_vjp(g, out, x, *, ignore_nan):
    tied = (x == out) | (isnan(x) & isnan(out))
    w = tied.to(g.dtype)
    return (g * w / w.sum(),)


def _median(input: Tensor, dim: int | None, keepdim: bool, ignore_nan: bool, name: str):
    if dim is None and input.numel() > 0:
        return bind(median_all_p, (input,), {"ignore_nan": ignore_nan})
    x, d = _flat_or_dim(input, dim, name)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"{name}: cannot compute the median of an empty dimension {d}")
    s, idx = sort(x, dim=d)  # nan sorts last
    valid = (~isnan(x)).to(dt.int64).sum(d, keepdim=True) if x.dtype.is_floating_point else None
    if valid is None:
        k = (x * 0).to(dt.int64).sum(d, keepdim=True) + (n - 1) // 2
    elif ignore_nan:  # the lower median of the non-nan entries (nan when all are nan)
        k = ((valid - 1).clamp(min=0)) // 2
    else:  # nan anywhere in the slice gives that nan
        k = where(valid < n, valid, (n - 1) // 2)
    values = take_along_dim(s, k, d)
    indices = take_along_dim(idx, k, d)
    if dim is None:
        return values.reshape(())
    if input.ndim == 0:
        return _ValuesIndices((values.reshape(()), indices.reshape(())))
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return _ValuesIndices((values, indices))


@op(method="median", ref="median", shapes=(((5,),), ((2, 3),), ((),)))
def median(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """The lower median: of all elements (a 0-d tensor), or along ``dim`` as
    ``(values, indices)``. A nan in the reduced elements gives nan."""
    refuse_complex("median", input)
    return _median(input, dim, keepdim, False, "median")


@op(method="nanmedian", ref="nanmedian", shapes=(((5,),), ((2, 3),), ((),)))
def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):
    """:func:`median` ignoring nan (nan only where every reduced element is nan)."""
    refuse_complex("nanmedian", input)
    return _median(input, dim, keepdim, True, "nanmedian")


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    from .._tensor import Tensor

    _as_float(input, name)
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"{name}: interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}"
        )
    scalar_q = not isinstance(q, Tensor) or q.ndim == 0
    qa = np.asarray(q.detach().numpy() if isinstance(q, Tensor) else q, np.float64).reshape(-1)
    if isinstance(q, Tensor) and q.ndim > 1:
        raise ShapeError(f"{name}: q must be a scalar or a 1-D tensor, got {q.ndim}-D")
    if ((qa < 0) | (qa > 1)).any() or np.isnan(qa).any():
        raise ValueError(f"{name}: q values must be in the range [0, 1]")
    x, d = _flat_or_dim(input, dim, name)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"{name}: cannot compute a quantile of an empty dimension {d}")
    s, _ = sort(x, dim=d)
    valid = (~isnan(x)).to(input.dtype).sum(d, keepdim=True)
    cnt = valid if ignore_nan else valid * 0 + n
    outs = []
    for qv in qa:
        pos = (cnt - 1).clamp(min=0) * qv
        lo, hi = pos.floor(), pos.ceil()
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = pos.round()
        vlo = take_along_dim(s, lo.to(dt.int64), d)
        vhi = take_along_dim(s, hi.to(dt.int64), d)
        if interpolation == "midpoint":
            v = vlo + (vhi - vlo) * where(hi > lo, 0.5, 0.0).to(s.dtype)
        elif interpolation == "linear":
            v = vlo + (vhi - vlo) * (pos - lo)
        else:
            v = vlo
        if not ignore_nan:  # any nan in the slice gives nan
            v = where(valid < n, math.nan, v)
        else:
            v = where(valid == 0, math.nan, v)
        if dim is None:
            v = v.reshape([1] * input.ndim) if keepdim else v.reshape(())
        elif not keepdim or input.ndim == 0:
            v = v.squeeze(d) if input.ndim else v.reshape(())
        outs.append(v)
    if scalar_q:
        return outs[0]
    from .shape import stack

    return stack(outs, 0)


@op(
    method="quantile",
    ref="quantile",
    shapes=(((4, 5),), ((2, 3),)),
    cases=(
        {"q": 0.3},
        {"q": 0.5, "dim": 1, "keepdim": True},
        {"q": 0.75, "interpolation": "lower"},
        {"q": 0.4, "interpolation": "midpoint"},
        {"q": 0.6, "interpolation": "nearest"},
        {"q": 1.0, "interpolation": "higher"},
    ),
)
def quantile(
    input: Tensor,
    q: float | Tensor,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """The ``q``-th quantiles (``q`` a float or a 1-D tensor in [0, 1]) of all elements or
    along ``dim``; ``interpolation`` between the two nearest order statistics is one of
    'linear', 'lower', 'higher', 'midpoint', 'nearest'. A nan in the slice gives nan."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


@op(
    method="nanquantile",
    ref="nanquantile",
    shapes=(((4, 5),), ((2, 3),)),
    cases=({"q": 0.3}, {"q": 0.5, "dim": 1}),
)
def nanquantile(
    input: Tensor,
    q: float | Tensor,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """:func:`quantile` ignoring nan."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


# -- mode ----------------------------------------------------------------------------------
def _mode_impl(x, *, dim):
    xm = np.moveaxis(x, dim, -1)
    flat = xm.reshape(-1, xm.shape[-1])
    vals = np.empty(flat.shape[0], x.dtype)
    idx = np.empty(flat.shape[0], np.int64)
    for r, row in enumerate(flat):
        u, cnt = np.unique(row, return_counts=True)  # sorted: ties go to the smallest value
        v = u[np.argmax(cnt)]
        vals[r] = v
        hits = np.nonzero((row == v) | (np.isnan(row) & np.isnan(v)))[0]
        idx[r] = hits[-1]  # the last occurrence, as PyTorch's CPU kernel
    shape = xm.shape[:-1]
    return vals.reshape(shape), idx.reshape(shape)


def _mode_abstract(x, *, dim):
    shape = tuple(s for i, s in enumerate(x.shape) if i != dim)
    return AbstractValue(shape, x.dtype), AbstractValue(shape, dt.int64)


mode_p = Primitive(
    "mode", "reduction", impl=_mode_impl, abstract=_mode_abstract, nondiff=True, n_out=2
)


@op(method="mode")
def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest on ties) and the index of its last
    occurrence, as ``(values, indices)``."""
    refuse_complex("mode", input)
    x = input.reshape(1) if input.ndim == 0 else input
    d = wrap_dim(dim, x.ndim, "mode")
    if x.shape[d] == 0:
        raise IndexError(f"mode: cannot compute the mode of an empty dimension {d}")
    _, idx = bind(mode_p, (x.detach(),), {"dim": d})
    idx = idx.unsqueeze(d)
    values = take_along_dim(x, idx, d)
    if input.ndim == 0:
        return _ValuesIndices((values.reshape(()), idx.reshape(())))
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return _ValuesIndices((values, idx))


# -- aminmax / cummax / cummin / logcumsumexp ----------------------------------------------
class _MinMax(tuple):
    """``(min, max)`` result of :func:`aminmax`."""

    @property
    def min(self):
        return self[0]

    @property
    def max(self):
        return self[1]


@op(method="aminmax")
def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False):
    """The minimum and maximum, of all elements or along ``dim``: ``(min, max)``."""
    refuse_complex("aminmax", input)
    if input.numel() == 0 and dim is None:
        raise RuntimeError("aminmax: cannot compute on an empty tensor without a dim")
    return _MinMax((input.amin(dim=dim, keepdim=keepdim), input.amax(dim=dim, keepdim=keepdim)))


def _cum_arg_impl(x, *, dim, largest):
    acc = np.maximum if largest else np.minimum
    vals = acc.accumulate(x, axis=dim) if x.shape[dim] else x
    n = x.shape[dim]
    iota = np.arange(n).reshape([n if i == dim else 1 for i in range(x.ndim)])
    with np.errstate(invalid="ignore"):
        hit = (x == vals) | (np.isnan(x) if x.dtype.kind == "f" else False)
    marks = np.where(hit, iota, 0)
    return np.maximum.accumulate(marks, axis=dim).astype(np.int64) if n else marks.astype(np.int64)


cum_arg_p = Primitive(
    "cum_arg",
    "opaque",
    impl=_cum_arg_impl,
    abstract=lambda x, *, dim, largest: AbstractValue(x.shape, dt.int64),
    nondiff=True,
)


def _cum_extreme(input: Tensor, dim: int, largest: bool, name: str):
    x = input.reshape(1) if input.ndim == 0 else input
    d = wrap_dim(dim, x.ndim, name)
    idx = bind(cum_arg_p, (x.detach(),), {"dim": d, "largest": largest})
    values = take_along_dim(x, idx, d)
    if input.ndim == 0:
        return _ValuesIndices((values.reshape(()), idx.reshape(())))
    return _ValuesIndices((values, idx))


@op(method="cummax")
def cummax(input: Tensor, dim: int):
    """The running maximum along ``dim`` and where it was attained, ``(values, indices)``
    (a nan stays once met)."""
    refuse_complex("cummax", input)
    return _cum_extreme(input, dim, True, "cummax")


@op(method="cummin")
def cummin(input: Tensor, dim: int):
    """The running minimum along ``dim`` and where it was attained, ``(values, indices)``."""
    refuse_complex("cummin", input)
    return _cum_extreme(input, dim, False, "cummin")


_LCSE_ACC = {np.dtype(np.float32): np.dtype(np.float64), np.dtype(np.float16): np.dtype(np.float32)}


def _lcse_impl(x, *, dim):
    if not x.size:
        return x.copy()
    # PyTorch accumulates float32 in float64 (float16/bfloat16 in float32): in x's own dtype
    # the running log-sum drifts ~1e-3 relative over a million values
    acc = _LCSE_ACC.get(x.dtype)
    if acc is None and x.dtype.kind == "V":  # bfloat16 (ml_dtypes)
        acc = np.dtype(np.float32)
    with np.errstate(all="ignore"):  # -inf - -inf inside logaddexp: its result is right
        if acc is None:
            return np.logaddexp.accumulate(x, axis=dim)
        return np.logaddexp.accumulate(x.astype(acc), axis=dim).astype(x.dtype)


logcumsumexp_p = Primitive(
    "logcumsumexp",
    "opaque",
    impl=_lcse_impl,
    abstract=lambda x, *, dim: AbstractValue(x.shape, x.dtype),
)


def _rev_lcse(v: Tensor, d: int) -> Tensor:
    return logcumsumexp(v.flip(d), d).flip(d)


@defvjp(logcumsumexp_p, save=SAVE_BOTH)
def _logcumsumexp_vjp(g, out, x, *, dim):
    # d out_i / d x_j = exp(x_j - out_i) for i >= j. Summed over i in log space, split by the
    # sign of g so that no log of a negative number appears (stable for any magnitudes).
    from .elementwise import abs as abs_

    neg_inf = -math.inf
    with np.errstate(all="ignore"):  # -inf + inf at -inf inputs: nan there, as in PyTorch
        lg = log(abs_(g))
        pos = _rev_lcse(where(g > 0, lg - out, neg_inf), dim)
        neg = _rev_lcse(where(g < 0, lg - out, neg_inf), dim)
        return (exp(x + pos) - exp(x + neg),)


@op(
    method="logcumsumexp",
    ref="logcumsumexp",
    shapes=(((5,),), ((2, 3),)),
    cases=({"dim": 0}, {"dim": -1}),
)
def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """``log(cumsum(exp(input)))`` along ``dim``, without overflow."""
    if input.is_complex():
        return _complex_logcumsumexp(input, dim)
    x = _as_float(input, "logcumsumexp")
    if x.ndim == 0:
        wrap_dim(dim, 1, "logcumsumexp")
        return bind(logcumsumexp_p, (x.reshape(1),), {"dim": 0}).reshape(())
    return bind(logcumsumexp_p, (x,), {"dim": wrap_dim(dim, x.ndim, "logcumsumexp")})


def _complex_logcumsumexp(x: Tensor, dim: int) -> Tensor:
    # PyTorch accumulates with logaddexp, whose imaginary part follows the operand of larger
    # real part (not the principal branch of the log): the same scan, one step per element
    from .math_extra import logaddexp
    from .shape import stack

    if x.ndim == 0:
        wrap_dim(dim, 1, "logcumsumexp")
        return x * 1
    d = wrap_dim(dim, x.ndim, "logcumsumexp")
    parts = x.unbind(d)
    if not parts:
        return x * 1
    acc = parts[0] * 1
    outs = [acc]
    for v in parts[1:]:
        acc = logaddexp(acc, v)
        outs.append(acc)
    return stack(outs, d)


# -- covariance and distances --------------------------------------------------------------
@op(method="cov", ref="cov", shapes=(((3, 5),), ((6,),), ((1, 4),)), cases=({}, {"correction": 0}))
def cov(
    input: Tensor,
    *,
    correction: int = 1,
    fweights: Tensor | None = None,
    aweights: Tensor | None = None,
) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in the
    columns), with optional integer frequency weights and float observation weights."""
    if input.ndim > 2:
        raise ShapeError(f"cov: expected a tensor with 2 or fewer dimensions, got {input.ndim}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        x = x.to(dt.get_default_dtype())
    n = x.shape[1]
    w = None
    if fweights is not None:
        if fweights.dtype.is_floating_point:
            raise TypeError("cov: fweights must be integral")
        if fweights.ndim > 1 or fweights.shape[0] != n:
            raise ShapeError(f"cov: fweights must be 1-D with {n} entries")
        if bool((fweights < 0).any()):
            raise ValueError("cov: fweights cannot be negative")
        w = fweights.to(x.dtype)
    if aweights is not None:
        if aweights.ndim > 1 or aweights.shape[0] != n:
            raise ShapeError(f"cov: aweights must be 1-D with {n} entries")
        if bool((aweights < 0).any()):
            raise ValueError("cov: aweights cannot be negative")
        aw = aweights.to(x.dtype)
        w = aw if w is None else w * aw
    norm: float | Tensor
    if w is None:
        avg = x.mean(1, keepdim=True)
        norm = float(n) - correction
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        if aweights is None:
            norm = wsum - correction
        else:
            norm = wsum - correction * (w * aweights.to(x.dtype)).sum() / wsum
    xm = x - avg
    xw = xm if w is None else xm * w
    # a non-positive normalizer gives inf/nan entries, as in PyTorch
    norm = max(norm, 0.0) if isinstance(norm, float) else norm.clamp(min=0.0)
    c = (xw @ (xm.conj() if xm.is_complex() else xm).t()) / norm
    return c.reshape(()) if x.shape[0] == 1 else c  # one variable: a 0-d variance


@op(method="corrcoef", ref="corrcoef", shapes=(((3, 5),), ((2, 4),)))
def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the variables in the rows (clipped to [-1, 1])."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    if d.is_complex():
        d = d.real
    sd = d.sqrt()
    c = c / sd.reshape(-1, 1) / sd.reshape(1, -1)
    if c.is_complex():  # each part clipped, as PyTorch
        from .complex_ops import complex as _complex

        return _complex(c.real.clamp(-1.0, 1.0), c.imag.clamp(-1.0, 1.0))
    return c.clamp(-1.0, 1.0)


def _cdist_ref(x1, x2, p=2.0):
    import torch

    return torch.cdist(x1, x2, p=p, compute_mode="donot_use_mm_for_euclid_dist")


@op(
    ref=_cdist_ref,
    arity=2,
    shapes=(((3, 4), (5, 4)), ((2, 3, 2), (2, 4, 2)), ((0, 3), (2, 3))),
    cases=({}, {"p": 1.0}, {"p": 3.0}, {"p": math.inf}),
)
def cdist(
    x1: Tensor,
    x2: Tensor,
    p: float = 2.0,
    compute_mode: str = "use_mm_for_euclid_dist_if_necessary",
) -> Tensor:
    """The ``p``-norm distance between each row of ``x1`` and each row of ``x2`` (batched
    over leading dims): ``(..., P, M), (..., R, M) -> (..., P, R)``. Distances are computed
    from the differences for every ``compute_mode`` (exact, at the memory cost of the
    ``(..., P, R, M)`` differences)."""
    refuse_complex("cdist", x1, x2)
    from ..linalg import vector_norm

    if x1.ndim < 2 or x2.ndim < 2:
        raise ShapeError(f"cdist: expected at least 2-D inputs, got {x1.ndim}-D and {x2.ndim}-D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(
            f"cdist: x1 and x2 must have the same number of columns, got {x1.shape[-1]} and "
            f"{x2.shape[-1]}"
        )
    if p < 0:
        raise ValueError(f"cdist: p must be non-negative, got {p}")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return vector_norm(diff, ord=p, dim=-1)


@op(
    method="dist",
    ref="dist",
    arity=2,
    shapes=(((2, 3), (2, 3)), ((3,), (2, 3))),
    cases=({}, {"p": 1.0}, {"p": math.inf}),
)
def dist(input: Tensor, other: Tensor, p: float = 2.0) -> Tensor:
    """The ``p``-norm of ``input - other`` (broadcast), as a 0-d tensor."""
    from ..linalg import vector_norm

    return vector_norm(input - other, ord=p)


@op(
    method="renorm",
    inplace="renorm_",
    ref="renorm",
    shapes=(((3, 4),), ((2, 3, 2),)),
    cases=({"p": 2.0, "dim": 0, "maxnorm": 1.0}, {"p": 1.0, "dim": 1, "maxnorm": 0.5}),
)
def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` scaled down to it."""
    from ..linalg import vector_norm

    if p <= 0:
        raise ValueError(f"renorm: p must be positive, got {p}")
    if maxnorm < 0:
        raise ValueError(f"renorm: maxnorm must be non-negative, got {maxnorm}")
    d = wrap_dim(dim, input.ndim, "renorm")
    others = tuple(i for i in range(input.ndim) if i != d)
    norm = vector_norm(input, ord=p, dim=others, keepdim=True)
    scale = where(norm > maxnorm, maxnorm / (norm + 1e-7), 1.0).to(input.dtype)
    return input * scale


# -- counting and searching ----------------------------------------------------------------
def _bincount_impl(x, *rest, minlength):
    w = rest[0] if rest else None
    out = np.bincount(x, weights=w, minlength=minlength)
    if w is None:
        return out.astype(np.int64)
    return out.astype(w.dtype if w.dtype == np.float64 else np.float64)


bincount_p = Primitive(
    "bincount",
    "opaque",
    impl=_bincount_impl,
    abstract=lambda x, *rest, minlength: AbstractValue((None,), dt.float64 if rest else dt.int64),
    nondiff=True,
    data_dependent=True,
)


@op(method="bincount")
def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How many times each value ``0..max(input)`` occurs in a 1-D non-negative integer tensor
    (the sum of ``weights`` per value instead when given: float32 for float32 weights,
    float64 for any other weights, as PyTorch)."""
    if input.ndim != 1:
        raise ShapeError(f"bincount: expected a 1-D tensor, got {input.ndim}-D")
    if input.dtype.is_floating_point or input.dtype == dt.bool_:
        raise TypeError(f"bincount: expected an integer tensor, got {input.dtype}")
    if minlength < 0:
        raise ValueError(f"bincount: minlength must be non-negative, got {minlength}")
    if input.numel() and int(input.amin().item()) < 0:
        raise ValueError("bincount: input must contain only non-negative integers")
    if weights is None:
        return bind(bincount_p, (input,), {"minlength": int(minlength)})
    if weights.shape != input.shape:
        raise ShapeError(
            f"bincount: weights must have the shape of input, got {tuple(weights.shape)} and "
            f"{tuple(input.shape)}"
        )
    out = bind(bincount_p, (input, weights.detach()), {"minlength": int(minlength)})
    return out.to(weights.dtype) if weights.dtype == dt.float32 else out


def _histc_impl(x, *, bins, lo, hi):
    if lo == hi and x.size:
        lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    # the bin of each value found in float64: in float32 (NumPy 2 keeps the float bounds weak)
    # values a few ulps wide of a narrow range land in the neighbouring bin, PyTorch's don't
    inside = x[(x >= lo) & (x <= hi)]
    h, _ = np.histogram(inside.astype(np.float64, copy=False), bins=bins, range=(lo, hi))
    return h.astype(x.dtype)


histc_p = Primitive(
    "histc",
    "opaque",
    impl=_histc_impl,
    abstract=lambda x, *, bins, lo, hi: AbstractValue((bins,), x.dtype),
    nondiff=True,
)


@op(method="histc")
def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """A histogram of ``bins`` equal-width bins over ``[min, max]`` (the data's own range when
    both are 0); elements outside are ignored."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"histc: expected a floating point tensor, got {input.dtype}")
    if bins <= 0:
        raise ValueError(f"histc: bins must be positive, got {bins}")
    if min > max:
        raise ValueError(f"histc: max ({max}) must be larger than or equal to min ({min})")
    x = input.detach().reshape(-1)
    if x.numel() and not bool(isnan(x).logical_not().all()):
        raise ValueError("histc: the input contains nan")
    return bind(histc_p, (x,), {"bins": int(bins), "lo": float(min), "hi": float(max)})


def _searchsorted_impl(seq, vals, *, side, out_int32):
    dtype = np.int32 if out_int32 else np.int64
    if seq.ndim == 1:
        return np.searchsorted(seq, vals, side=side).astype(dtype)
    s2 = seq.reshape(-1, seq.shape[-1])
    v2 = vals.reshape(-1, vals.shape[-1])
    out = np.stack([np.searchsorted(a, b, side=side) for a, b in zip(s2, v2)])
    return out.reshape(vals.shape).astype(dtype)


searchsorted_p = Primitive(
    "searchsorted",
    "opaque",
    impl=_searchsorted_impl,
    abstract=lambda seq, vals, *, side, out_int32: AbstractValue(
        vals.shape, dt.int32 if out_int32 else dt.int64
    ),
    nondiff=True,
)


def searchsorted(
    sorted_sequence: Tensor,
    input: Tensor | float,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Tensor | None = None,
) -> Tensor:
    """Where each of ``input`` would be inserted into the sorted last dimension of
    ``sorted_sequence`` to keep it sorted (after equal entries with ``right=True`` or
    ``side='right'``).

    Example:
        >>> import ember
        >>> ember.searchsorted(ember.tensor([1, 3, 5]), ember.tensor([3, 6])).tolist()
        [1, 3]
    """
    refuse_complex("searchsorted", sorted_sequence, input)
    from .._creation import tensor
    from .._tensor import Tensor

    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side='left' contradicts right=True")
        right = side == "right"
    vals: Tensor = tensor(input) if not isinstance(input, Tensor) else input
    seq = sorted_sequence
    if sorter is not None:
        seq = take_along_dim(seq, sorter, -1) if seq.ndim > 1 else seq[sorter]
    if seq.ndim > 1 and tuple(seq.shape[:-1]) != tuple(vals.shape[:-1]):
        raise ShapeError(
            f"searchsorted: the leading dims of sorted_sequence {tuple(seq.shape)} and input "
            f"{tuple(vals.shape)} must match"
        )
    from ._promote import result_type

    r = result_type(seq, vals)
    out = bind(
        searchsorted_p,
        (seq.detach().to(r), vals.detach().to(r)),
        {"side": "right" if right else "left", "out_int32": bool(out_int32)},
    )
    return out


def bucketize(
    input: Tensor | float, boundaries: Tensor, *, out_int32: bool = False, right: bool = False
) -> Tensor:
    """The index of the bucket of each element of ``input`` given sorted 1-D ``boundaries``
    (``boundaries[i-1] < x <= boundaries[i]``; ``<=``/``<`` swapped with ``right=True``).

    Example:
        >>> import ember
        >>> ember.bucketize(ember.tensor([1, 5, 9]), ember.tensor([2, 5, 8])).tolist()
        [0, 1, 3]
    """
    refuse_complex("bucketize", input)
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-D, got {boundaries.ndim}-D")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def _unique_consecutive_impl(x, *, dim):
    if dim is None:
        flat = x.reshape(-1)
        if flat.size == 0:
            return flat, np.zeros(x.shape, np.int64), np.zeros(0, np.int64)
        change = np.concatenate([[True], flat[1:] != flat[:-1]])
        inv = (np.cumsum(change) - 1).reshape(x.shape)
    else:
        xm = np.moveaxis(x, dim, 0)
        if xm.shape[0] == 0:
            return x, np.zeros(0, np.int64), np.zeros(0, np.int64)
        neq = (xm[1:] != xm[:-1]).reshape(xm.shape[0] - 1, -1).any(1)
        change = np.concatenate([[True], neq])
        inv = np.cumsum(change) - 1
        flat = xm
    starts = np.nonzero(change)[0]
    counts = np.diff(np.append(starts, len(change)))
    u = flat[starts]
    if dim is not None:
        u = np.moveaxis(u, 0, dim)
    return u, inv.astype(np.int64), counts.astype(np.int64)


def _unique_consecutive_abstract(x, *, dim):
    if dim is None:
        u = AbstractValue((None,), x.dtype)
        inv = AbstractValue(x.shape, dt.int64)
    else:
        u = AbstractValue(tuple(None if i == dim else s for i, s in enumerate(x.shape)), x.dtype)
        inv = AbstractValue((x.shape[dim],), dt.int64)
    return u, inv, AbstractValue((None,), dt.int64)


unique_consecutive_p = Primitive(
    "unique_consecutive",
    "opaque",
    impl=_unique_consecutive_impl,
    abstract=_unique_consecutive_abstract,
    nondiff=True,
    data_dependent=True,
    n_out=3,
)


@op(method="unique_consecutive")
def unique_consecutive(
    input: Tensor, return_inverse: bool = False, return_counts: bool = False, dim: int | None = None
):
    """Each run of equal consecutive elements (or slices along ``dim``) kept once; with the
    run index of every element (``return_inverse``) and the run lengths (``return_counts``)."""
    refuse_complex("unique_consecutive", input)
    d = None if dim is None else wrap_dim(dim, max(input.ndim, 1), "unique_consecutive")
    x = input.reshape(1) if (input.ndim == 0 and d is not None) else input
    u, inv, cnt = bind(unique_consecutive_p, (x.detach(),), {"dim": d})
    out: tuple = (u,)
    if return_inverse:
        out += (inv,)
    if return_counts:
        out += (cnt,)
    return out[0] if len(out) == 1 else out


def unravel_index(indices: Tensor | int, shape: int | Sequence[int]) -> tuple[Tensor, ...]:
    """The coordinates in a tensor of ``shape`` of each flat index (negative indices count
    from the end), as a tuple of tensors shaped like ``indices``.

    Example:
        >>> import ember
        >>> [t.tolist() for t in ember.unravel_index(ember.tensor([5, 7]), (2, 4))]
        [[1, 1], [1, 3]]
    """
    from .._creation import tensor
    from .._tensor import Tensor

    idx = indices if isinstance(indices, Tensor) else tensor(indices)
    if idx.dtype.is_floating_point or idx.dtype == dt.bool_:
        raise TypeError(f"unravel_index: expected integer indices, got {idx.dtype}")
    dims = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if any(s < 0 for s in dims):
        raise ValueError(f"unravel_index: 'shape' cannot have negative values, got {dims}")
    total = int(np.prod(dims, dtype=np.int64))
    flat = idx.to(dt.int64)
    if idx.numel() and (int(flat.amin().item()) < -total or int(flat.amax().item()) >= total):
        raise IndexError(f"unravel_index: index out of bounds for shape {dims}")
    flat = where(flat < 0, flat + total, flat)
    out = []
    for s in reversed(dims):
        out.append(flat % s if s else flat * 0)
        flat = flat // s if s else flat
    return tuple(reversed(out))


__all__ = ["bucketize", "searchsorted", "unravel_index", *module_ops(__name__)]


# -- sample inputs for the registry-wide checks (tests/test_registry.py) --------------------
def _samples():
    from .._creation import tensor

    f = tensor(np.array([[1.0, 3.0, 3.0, 2.0], [2.0, 0.5, 0.5, 7.0]], np.float32))
    i = tensor(np.array([0, 2, 2, 5]))
    g = tensor(np.array([[1.5, -0.25, 3.0], [0.75, 2.5, -1.0]]), requires_grad=True)
    return {
        mode_p: [((f,), {"dim": 1})],
        median_all_p: [((g,), {"ignore_nan": False}), ((g,), {"ignore_nan": True})],
        cum_arg_p: [((f,), {"dim": 1, "largest": True}), ((f,), {"dim": 0, "largest": False})],
        bincount_p: [
            ((i,), {"minlength": 0}),
            ((i, tensor([1.0, 2.0, 3.0, 4.0])), {"minlength": 8}),
        ],
        histc_p: [((f.reshape(-1),), {"bins": 3, "lo": 0.0, "hi": 0.0})],
        searchsorted_p: [((tensor([1.0, 2.0, 3.0]), f), {"side": "left", "out_int32": False})],
        unique_consecutive_p: [((i,), {"dim": None}), ((f,), {"dim": 1})],
    }


def _sample_of(prim: Primitive):
    def sample() -> list:
        return _samples()[prim]

    return sample


for _prim in (
    mode_p,
    median_all_p,
    cum_arg_p,
    bincount_p,
    histc_p,
    searchsorted_p,
    unique_consecutive_p,
):
    defsample(_prim, _sample_of(_prim))
