"""Histograms with PyTorch's names and edge rules: ``histogram`` (1-D) and ``histogramdd``
(points in N dimensions).

Every bin holds its left edge; the rightmost bin also holds its right edge; values outside
the outer edges (and NaN) are not counted. With an integer bin count the outer edges are the
data's own min/max per dimension (``range`` overrides them; an empty input gets [0, 1]),
widened by 0.5 each way when they coincide, and the edges are evenly spaced in the input's
dtype. Both results are non-differentiable (as :func:`ember.histc`).

Example:
    >>> import ember
    >>> h, edges = ember.histogram(ember.tensor([1.0, 2.0, 1.0, 4.0]), bins=3)
    >>> h.tolist(), edges.tolist()
    ([2.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .._dtype import float32, float64
from ._core import AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from ._samples import defsample

if TYPE_CHECKING:
    from .._tensor import Tensor


class HistogramResult(NamedTuple):
    """``(hist, bin_edges)`` of :func:`histogram`."""

    hist: Tensor
    bin_edges: Tensor


class HistogramddResult(NamedTuple):
    """``(hist, bin_edges)`` of :func:`histogramdd`: ``bin_edges`` is one tensor per dim."""

    hist: Tensor
    bin_edges: tuple[Tensor, ...]


def _even_edges(lo: float, hi: float, n: int, dtype: np.dtype) -> np.ndarray:
    # PyTorch's linspace: the first half steps up from ``lo``, the second half down from
    # ``hi``, in the output dtype, so both outer edges are exact
    start, end = dtype.type(lo), dtype.type(hi)
    step = (end - start) / dtype.type(n - 1)
    i = np.arange(n)
    up = start + step * i.astype(dtype)
    down = end - step * (n - 1 - i).astype(dtype)
    return np.where(i < n // 2, up, down).astype(dtype)


def _outer_edges(x: np.ndarray, d: int, rng: tuple[float, ...] | None) -> tuple[float, float]:
    if rng is not None:
        lo, hi = rng[2 * d], rng[2 * d + 1]
    elif x.shape[0]:
        col = x[:, d]
        lo, hi = float(col.min()), float(col.max())
    else:
        lo, hi = 0.0, 1.0
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"histogramdd: dimension {d}'s range [{lo}, {hi}] is not finite")
    if lo > hi:
        raise ValueError(
            f"histogramdd: min should not exceed max, but got min {lo} max {hi} for dimension {d}"
        )
    if lo == hi:  # numpy's rule: an empty range widens to a unit interval
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def _edges_impl(x, *, dim, bins, rng):
    lo, hi = _outer_edges(x, dim, rng)
    return _even_edges(lo, hi, bins + 1, x.dtype)


histogram_edges_p = Primitive(
    "histogram_edges",
    "opaque",
    impl=_edges_impl,
    abstract=lambda x, *, dim, bins, rng: AbstractValue((bins + 1,), x.dtype),
    nondiff=True,
)


def _hist_impl(x, *rest, density, weighted):
    w = rest[0] if weighted else None
    edges = rest[1:] if weighted else rest
    n, D = x.shape
    shape = tuple(len(e) - 1 for e in edges)
    keep = np.ones(n, bool)
    flat = np.zeros(n, np.int64)
    with np.errstate(invalid="ignore"):
        for d, e in enumerate(edges):
            col = x[:, d]
            keep &= (col >= e[0]) & (col <= e[-1])
            # bin i holds [e[i], e[i+1]); the last bin also holds its right edge
            pos = np.clip(np.searchsorted(e, col, side="right") - 1, 0, len(e) - 2)
            flat = flat * shape[d] + pos
    size = math.prod(shape)
    wk = None if w is None else w[keep].astype(np.float64)
    hist = np.bincount(flat[keep], weights=wk, minlength=size)[:size].astype(x.dtype)
    hist = hist.reshape(shape)
    if density:
        with np.errstate(all="ignore"):
            hist = hist / hist.sum(dtype=x.dtype)
            for d, e in enumerate(edges):
                sh = [1] * D
                sh[d] = len(e) - 1
                hist = hist / np.diff(e).reshape(sh)
    return np.asarray(hist, x.dtype)


def _hist_abstract(x, *rest, density, weighted):
    edges = rest[1:] if weighted else rest
    return AbstractValue(tuple(e.shape[0] - 1 for e in edges), x.dtype)


histogramdd_p = Primitive(
    "histogramdd", "opaque", impl=_hist_impl, abstract=_hist_abstract, nondiff=True
)


def _samples():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    x = tensor(rng.standard_normal((8, 2)).astype(np.float32))
    w = tensor(rng.uniform(0, 1, 8).astype(np.float32))
    e0, e1 = tensor([-1.0, 0.0, 2.0]), tensor([-2.0, -0.5, 0.5, 2.0])
    return [
        ((x, e0, e1), {"density": False, "weighted": False}),
        ((x, w, e0, e1), {"density": True, "weighted": True}),
    ]


defsample(histogramdd_p, _samples)
defsample(
    histogram_edges_p,
    lambda: [((_samples()[0][0][0],), {"dim": 1, "bins": 3, "rng": None})],
)


def _float_input(input: Tensor, fn: str) -> None:
    from .._tensor import Tensor

    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}: expected a Tensor as input, got {type(input).__name__}")
    if input.dtype is not float32 and input.dtype is not float64:
        raise TypeError(f"{fn}: expected a float32 or float64 input, got {input.dtype}")


def _check_edges(e: Tensor, input: Tensor, d: int, fn: str) -> Tensor:
    from .._tensor import Tensor

    if not isinstance(e, Tensor):
        raise TypeError(f"{fn}: bin edges must be tensors, got {type(e).__name__}")
    if e.ndim != 1:
        raise ShapeError(
            f"{fn}: bins tensor should have one dimension, but got {e.ndim} dimensions in the "
            f"bins tensor for dimension {d}"
        )
    if e.shape[0] < 2:
        raise ShapeError(
            f"{fn}: bins tensor should have at least 2 elements (one bin), got {e.shape[0]} "
            f"for dimension {d}"
        )
    if e.dtype is not input.dtype:
        raise TypeError(
            f"{fn}: input tensor and bins tensors should have the same dtype, but got "
            f"input {input.dtype} and bins {e.dtype} for dimension {d}"
        )
    e = e.detach()
    if bool((e[1:] < e[:-1]).any()):
        raise ValueError(f"{fn}: bin edges must increase monotonically (dimension {d})")
    return e


def _histogramdd(
    points: Tensor,
    bins: Sequence[int | Tensor],
    range: Sequence[float] | None,
    weight: Tensor | None,
    density: bool,
    fn: str,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    from .._tensor import Tensor

    D = points.shape[-1]
    counts: list[int | None] = []
    given: list[Tensor] = []
    for d, b in enumerate(bins):
        if isinstance(b, Tensor):
            given.append(_check_edges(b, points, d, fn))
            counts.append(None)
        elif isinstance(b, (int, np.integer)) and not isinstance(b, bool):
            if b <= 0:
                raise ValueError(f"{fn}: bins must be > 0, but got {b} for dimension {d}")
            counts.append(int(b))
        else:
            raise TypeError(f"{fn}: bins must be ints or 1-D tensors, got {type(b).__name__}")
    rng = None
    if range is not None:
        rng = tuple(float(v) for v in range)
        if len(rng) != 2 * D:
            raise ValueError(
                f"{fn}: for a {D}-dimensional histogram range should have {2 * D} elements, "
                f"but got {len(rng)}"
            )
    flat = points.detach().reshape(-1, D)
    args: list[Tensor] = [flat]
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f"{fn}: weight must be a Tensor, got {type(weight).__name__}")
        if tuple(weight.shape) != tuple(points.shape[:-1]):
            raise ShapeError(
                f"{fn}: weight must have the shape of the input without its last dimension "
                f"{tuple(points.shape[:-1])}, got {tuple(weight.shape)}"
            )
        if weight.dtype is not points.dtype:
            raise TypeError(
                f"{fn}: input and weight should have the same dtype, got {points.dtype} and "
                f"{weight.dtype}"
            )
        args.append(weight.detach().reshape(-1))
    edges = tuple(
        given.pop(0)
        if b is None
        else bind(histogram_edges_p, (flat,), {"dim": d, "bins": b, "rng": rng})
        for d, b in enumerate(counts)
    )
    params = {"density": bool(density), "weighted": weight is not None}
    return bind(histogramdd_p, (*args, *edges), params), edges


@op(method="histogram")
def histogram(
    input: Tensor,
    bins: int | Tensor = 100,
    *,
    range: tuple[float, float] | None = None,
    weight: Tensor | None = None,
    density: bool = False,
) -> tuple[Tensor, Tensor]:
    """Histogram of all elements of ``input``: ``bins`` equal-width bins over ``range`` (the
    data's min/max by default) or the edges in a 1-D tensor; ``weight`` (input's shape) sums
    weights instead of counting; ``density`` divides by the total and the bin widths.
    Returns ``(hist, bin_edges)``.

    Example:
        >>> import ember
        >>> x = ember.tensor([0.5, 1.5, 1.7, 3.0])
        >>> ember.histogram(x, ember.tensor([0.0, 1.0, 2.0, 3.0])).hist.tolist()
        [1.0, 2.0, 1.0]
    """
    from .._tensor import Tensor

    fn = "histogram"
    _float_input(input, fn)
    if isinstance(bins, Tensor):
        if bins.ndim != 1:
            raise ShapeError(f"{fn}: bins tensor should be 1-D, got {bins.ndim}-D")
    elif not isinstance(bins, (int, np.integer)) or isinstance(bins, bool):
        raise TypeError(f"{fn}: bins must be an int or a 1-D tensor, got {type(bins).__name__}")
    if range is not None and len(range) != 2:
        raise ValueError(f"{fn}: range should have 2 elements (min, max), got {len(range)}")
    if weight is not None and isinstance(weight, Tensor) and weight.shape != input.shape:
        raise ShapeError(
            f"{fn}: weight must have the shape of input {tuple(input.shape)}, got "
            f"{tuple(weight.shape)}"
        )
    w = None if weight is None else weight.reshape(-1)
    h, edges = _histogramdd(input.reshape(-1, 1), [bins], range, w, density, fn)
    return HistogramResult(h, edges[0])


@op()
def histogramdd(
    input: Tensor,
    bins: int | Sequence[int] | Sequence[Tensor] = 10,
    range: Sequence[float] | None = None,
    weight: Tensor | None = None,
    density: bool = False,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Histogram of the points in the rows of ``input`` (shape ``(..., N)``: the last dim holds
    each point's N coordinates). ``bins``: one int for every dim, N ints, or N 1-D edge
    tensors; ``range``: ``(min_0, max_0, ..., min_{N-1}, max_{N-1})``; ``weight``: shape
    ``input.shape[:-1]``. Returns ``(hist, bin_edges)`` with ``hist`` of shape (bins_0, ...)
    and one edge tensor per dim.

    Example:
        >>> import ember
        >>> pts = ember.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
        >>> ember.histogramdd(pts, bins=2).hist.tolist()
        [[1.0, 0.0], [1.0, 1.0]]
    """
    from .._tensor import Tensor

    fn = "histogramdd"
    _float_input(input, fn)
    if input.ndim < 2:
        raise ShapeError(
            f"{fn}: input tensor should have at least 2 dimensions (points in the last one), "
            f"got shape {tuple(input.shape)}"
        )
    D = input.shape[-1]
    if isinstance(bins, Tensor):
        raise TypeError(f"{fn}: bins must be an int or a sequence of N ints or 1-D tensors")
    per_dim: list[int | Tensor]
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        per_dim = [int(bins)] * D
    elif isinstance(bins, Sequence):
        per_dim = list(bins)
    else:
        raise TypeError(f"{fn}: bins must be an int or a sequence of N ints or 1-D tensors")
    if len(per_dim) != D:
        raise ValueError(
            f"{fn}: the number of bins ({len(per_dim)}) must equal the innermost dimension of "
            f"the input ({D})"
        )
    if D == 0:
        from .._creation import zeros

        return HistogramddResult(zeros((), dtype=input.dtype), ())
    h, edges = _histogramdd(input, per_dim, range, weight, density, fn)
    return HistogramddResult(h, edges)


__all__ = module_ops(__name__)
