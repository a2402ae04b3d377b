"""Reductions over ``axis`` with ``keepdims``, sorting and ``top_k``."""

from __future__ import annotations

import builtins
import math

import ember

from ._core import _axes, _dtype, _float, _keep_int, _t

__all__ = [
    "all",
    "any",
    "argmax",
    "argmin",
    "argsort",
    "cumsum",
    "logsumexp",
    "max",
    "mean",
    "min",
    "norm",
    "prod",
    "sort",
    "std",
    "sum",
    "top_k",
    "var",
]


def mean(x, axis=None, keepdims=False) -> ember.Tensor:
    """Mean over ``axis`` (all axes when None); integers become float32.

    Example:
        >>> from ember.keras import ops
        >>> ops.mean([[1, 2], [3, 4]], axis=0).tolist()
        [2.0, 3.0]
    """
    return ember.mean(_float(x), dim=_axes(axis), keepdim=keepdims)


def sum(x, axis=None, keepdims=False) -> ember.Tensor:
    """Sum over ``axis`` (all axes when None); integer dtypes are kept.

    Example:
        >>> from ember.keras import ops
        >>> ops.sum([[1, 2], [3, 4]], axis=1).tolist()
        [3, 7]
    """
    x = _t(x)
    return _keep_int(ember.sum(x, dim=_axes(axis), keepdim=keepdims), x)


def var(x, axis=None, keepdims=False) -> ember.Tensor:
    """Population variance (``ddof=0``, as NumPy and Keras).

    Example:
        >>> from ember.keras import ops
        >>> ops.var([1.0, 2.0, 3.0, 4.0]).item()
        1.25
    """
    return ember.var(_float(x), dim=_axes(axis), keepdim=keepdims, correction=0)


def std(x, axis=None, keepdims=False) -> ember.Tensor:
    """Population standard deviation (``ddof=0``).

    Example:
        >>> from ember.keras import ops
        >>> ops.std([1.0, 3.0]).item()
        1.0
    """
    return ember.std(_float(x), dim=_axes(axis), keepdim=keepdims, correction=0)


def _extreme(fn, x, axis, keepdims, initial, pick) -> ember.Tensor:
    x = _t(x)
    if x.numel() == 0 and initial is None:
        raise ValueError("keras.ops.max/min: empty input needs initial=")
    out = fn(x, dim=_axes(axis), keepdim=keepdims)
    if initial is not None:
        out = pick(out, ember.full_like(out, initial))
    return out


def max(x, axis=None, keepdims=False, initial=None) -> ember.Tensor:
    """Maximum over ``axis``; ``initial`` is a lower bound, as in NumPy.

    Example:
        >>> from ember.keras import ops
        >>> ops.max([[1.0, 5.0], [3.0, 2.0]], axis=1).tolist()
        [5.0, 3.0]
    """
    return _extreme(ember.amax, x, axis, keepdims, initial, ember.maximum)


def min(x, axis=None, keepdims=False, initial=None) -> ember.Tensor:
    """Minimum over ``axis``; ``initial`` is an upper bound, as in NumPy.

    Example:
        >>> from ember.keras import ops
        >>> ops.min([[1.0, 5.0], [3.0, 2.0]], axis=0).tolist()
        [1.0, 2.0]
    """
    return _extreme(ember.amin, x, axis, keepdims, initial, ember.minimum)


def _arg(fn, x, axis, keepdims) -> ember.Tensor:
    x = _t(x)
    if axis is None:
        out = fn(x.reshape(-1), dim=0)
        if keepdims:
            out = out.reshape((1,) * x.ndim)
    else:
        out = fn(x, dim=int(axis), keepdim=keepdims)
    return out.to(ember.int32)


def argmax(x, axis=None, keepdims=False) -> ember.Tensor:
    """Indices of the maxima (int32, as Keras); ``axis=None`` looks at the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.argmax([[1.0, 5.0], [3.0, 2.0]], axis=1).tolist()
        [1, 0]
    """
    return _arg(ember.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False) -> ember.Tensor:
    """Indices of the minima (int32); ``axis=None`` looks at the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.argmin([3.0, 1.0, 2.0]).item()
        1
    """
    return _arg(ember.argmin, x, axis, keepdims)


def cumsum(x, axis=None, dtype=None) -> ember.Tensor:
    """Cumulative sum; ``axis=None`` sums the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.cumsum([[1, 2], [3, 4]]).tolist()
        [1, 3, 6, 10]
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    out = _keep_int(ember.cumsum(x, dim=int(axis)), x)
    return out if dtype is None else out.to(_dtype(dtype))


def norm(x, ord=None, axis=None, keepdims=False) -> ember.Tensor:
    """Vector norms (``axis`` an int, or ``None`` on a vector) and matrix norms (``axis`` a
    pair, or ``None`` on a matrix): ``ord`` as ``numpy.linalg.norm``; ``None`` is the 2-norm
    of vectors and the Frobenius norm of matrices.

    Example:
        >>> from ember.keras import ops
        >>> ops.norm([3.0, 4.0]).item()
        5.0
    """
    x = _float(x)
    if axis is None:
        axis = tuple(range(x.ndim)) if x.ndim <= 2 else None
        if axis is None:
            return ember.sqrt((x * x).sum()) if ord is None else _bad_norm(ord, x.ndim)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    axes = tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    if len(axes) == 1:
        a = x.abs()
        if ord is None or ord == 2:
            return ember.sqrt((x * x).sum(dim=axes[0], keepdim=keepdims))
        if ord == math.inf or ord == "inf":
            return ember.amax(a, dim=axes[0], keepdim=keepdims)
        if ord == -math.inf:
            return ember.amin(a, dim=axes[0], keepdim=keepdims)
        if ord == 0:
            return (a != 0).to(x.dtype).sum(dim=axes[0], keepdim=keepdims)
        if isinstance(ord, (int, float)):
            return (a**ord).sum(dim=axes[0], keepdim=keepdims) ** (1.0 / ord)
        return _bad_norm(ord, 1)
    if len(axes) == 2:
        r, c = axes
        a = x.abs()
        if ord is None or ord == "fro":
            return ember.sqrt((x * x).sum(dim=axes, keepdim=keepdims))
        if ord in (1, -1, math.inf, -math.inf):
            red, keep = (r, c) if ord in (1, -1) else (c, r)
            s = a.sum(dim=red, keepdim=True)
            pick = ember.amax if ord in (1, math.inf) else ember.amin
            out = pick(s, dim=keep, keepdim=True)
            return out if keepdims else out.squeeze(builtins.max(r, c)).squeeze(builtins.min(r, c))
        return _bad_norm(ord, 2)
    raise ValueError(f"keras.ops.norm: axis must be an int or a pair, got {axis!r}")


def _bad_norm(ord, n):
    raise NotImplementedError(f"keras.ops.norm: ord={ord!r} is not supported for {n}-D norms")


def top_k(x, k, sorted=True) -> tuple:
    """The ``k`` largest entries of the last axis and their indices (``(values, indices)``).

    Example:
        >>> from ember.keras import ops
        >>> [t.tolist() for t in ops.top_k([1.0, 9.0, 5.0], 2)]
        [[9.0, 5.0], [1, 2]]
    """
    values, indices = ember.topk(_t(x), int(k), dim=-1, largest=True, sorted=sorted)
    return values, indices.to(ember.int32)


def any(x, axis=None, keepdims=False) -> ember.Tensor:
    """Whether any entry is true, over ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.any([[True, False], [False, False]], axis=1).tolist()
        [True, False]
    """
    return ember.any(_t(x).bool(), dim=_axes(axis), keepdim=keepdims)


def all(x, axis=None, keepdims=False) -> ember.Tensor:
    """Whether every entry is true, over ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.all([[True, False], [True, True]], axis=1).tolist()
        [False, True]
    """
    return ember.all(_t(x).bool(), dim=_axes(axis), keepdim=keepdims)


def prod(x, axis=None, keepdims=False, dtype=None) -> ember.Tensor:
    """Product over ``axis`` (all axes when None).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.prod([[1, 2], [3, 4]], axis=1).tolist()
        [2, 12]
    """
    x = _t(x)
    out = _keep_int(ember.prod(x, dim=_axes(axis), keepdim=keepdims), x)
    return out if dtype is None else out.to(_dtype(dtype))


def logsumexp(x, axis=None, keepdims=False) -> ember.Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed stably.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> f"{ops.logsumexp([0.0, 0.0]).item():.4f}"
        '0.6931'
    """
    x = _float(x)
    if axis is None:
        out = ember.logsumexp(x.reshape(-1), 0)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return ember.logsumexp(x, _axes(axis), keepdim=keepdims)


def sort(x, axis=-1) -> ember.Tensor:
    """Sorted along ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sort([3, 1, 2]).tolist()
        [1, 2, 3]
    """
    return ember.sort(_t(x), dim=int(axis))[0]


def argsort(x, axis=-1) -> ember.Tensor:
    """Indices that sort ``x`` along ``axis`` (stable, int32).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.argsort([3.0, 1.0, 2.0]).tolist()
        [1, 2, 0]
    """
    return ember.argsort(_t(x), dim=int(axis), stable=True).to(ember.int32)
