"""Sorting and selection by value: ``sort``/``argsort``/``msort``, ``topk``, ``kthvalue``,
``unique``, ``nonzero``/``argwhere`` (moved out of ``indexing.py``, which re-exports every
name here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._core import SAVE_NONE, AbstractValue, Primitive, bind
from ._indexing_util import _ValuesIndices
from ._records import module_ops, op
from ._util import wrap_dim
from .complex_refuse import refuse_complex
from .indexing import take_along_dim

if TYPE_CHECKING:
    from .._tensor import Tensor


# -- sort / argsort / topk -------------------------------------------------------------------
def _argsort_impl(x, dim, descending):
    if x.ndim == 0:
        return np.zeros((), np.int64)
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    if not descending:
        return np.argsort(x, axis=dim, kind="stable").astype(np.int64)
    # stable descending (NaN first, like PyTorch): sort the reversed array ascending, reverse
    n = x.shape[dim]
    r = np.flip(np.argsort(np.flip(x, dim), axis=dim, kind="stable"), dim)
    return (n - 1 - r).astype(np.int64)


def _argsort_abstract(x, dim, descending):
    from .._dtype import int64

    return AbstractValue(x.shape, int64)


argsort_p = Primitive(
    "argsort",
    "opaque",
    impl=_argsort_impl,
    abstract=_argsort_abstract,
    nondiff=True,
    save=SAVE_NONE,
)


@op(method="argsort")
def argsort(
    input: Tensor, dim: int | None = -1, descending: bool = False, stable: bool = False
) -> Tensor:
    """Indices that sort ``input`` along ``dim`` (always stable)."""
    refuse_complex("argsort", input)
    nd = input._data.ndim
    d = wrap_dim(dim, nd, "argsort") if nd else 0
    return bind(argsort_p, (input,), {"dim": d, "descending": bool(descending)})


@op(method="sort")
def sort(
    input: Tensor, dim: int | None = -1, descending: bool = False, stable: bool = False
) -> tuple[Tensor, Tensor]:
    """``(values, indices)`` sorted along ``dim``; ``values`` is differentiable."""
    refuse_complex("sort", input)
    idx = argsort(input, dim, descending)
    if input._data.ndim == 0:
        return _ValuesIndices((input * 1 if input.requires_grad else input.clone(), idx))
    return _ValuesIndices((take_along_dim(input, idx, dim), idx))


@op(method="msort")
def msort(input: Tensor) -> Tensor:
    refuse_complex("msort", input)
    return sort(input, 0)[0]


@op(method="topk")
def topk(
    input: Tensor, k: int, dim: int | None = -1, largest: bool = True, sorted: bool = True
) -> tuple[Tensor, Tensor]:
    """The ``k`` largest (or smallest) entries along ``dim``: ``(values, indices)``."""
    refuse_complex("topk", input)
    from .shape import narrow

    nd = input._data.ndim
    d = wrap_dim(dim, nd, "topk") if nd else 0
    n = input._data.shape[d] if nd else 1
    k = int(k)
    if not 0 <= k <= n:
        raise IndexError(
            f"topk: selected index k ({k}) out of range for dimension {d} of size "
            f"{n} (input shape {tuple(input.shape)})"
        )
    idx = argsort(input, d, descending=largest)
    if nd == 0:
        return _ValuesIndices((input * 1 if input.requires_grad else input.clone(), idx))
    idx = narrow(idx, d, 0, k)
    return _ValuesIndices((take_along_dim(input, idx, d), idx))


@op(method="kthvalue")
def kthvalue(
    input: Tensor, k: int, dim: int | None = -1, keepdim: bool = False
) -> tuple[Tensor, Tensor]:
    """The k-th smallest entry along ``dim``: ``(values, indices)``."""
    refuse_complex("kthvalue", input)
    nd = input._data.ndim
    d = wrap_dim(dim, nd, "kthvalue") if nd else 0
    n = input._data.shape[d] if nd else 1
    if not 1 <= k <= n:
        raise IndexError(f"kthvalue: k ({k}) out of range for dimension {d} of size {n}")
    v, i = topk(input, k, d, largest=False)
    if nd == 0:
        return _ValuesIndices((v, i))
    from .shape import narrow, squeeze

    v, i = narrow(v, d, k - 1, 1), narrow(i, d, k - 1, 1)
    if not keepdim:
        v, i = squeeze(v, d), squeeze(i, d)
    return _ValuesIndices((v, i))


# -- unique / nonzero / repeat_index -------------------------------------------------------------
def _unique_impl(x, dim):
    if dim is None:
        u, inv, cnt = np.unique(x.reshape(-1), return_inverse=True, return_counts=True)
        return u, inv.reshape(x.shape).astype(np.int64), cnt.astype(np.int64)
    u, inv, cnt = np.unique(x, return_inverse=True, return_counts=True, axis=dim)
    return u, inv.reshape(-1).astype(np.int64), cnt.astype(np.int64)


def _unique_abstract(x, dim):
    from .._dtype import int64

    if dim is None:
        return (
            AbstractValue((None,), x.dtype),
            AbstractValue(x.shape, int64),
            AbstractValue((None,), int64),
        )
    shp = tuple(None if i == dim else s for i, s in enumerate(x.shape))
    return (
        AbstractValue(shp, x.dtype),
        AbstractValue((x.shape[dim],), int64),
        AbstractValue((None,), int64),
    )


# Data-dependent primitives: abstract shapes carry None where the size depends on values.
unique_p = Primitive(
    "unique",
    "opaque",
    impl=_unique_impl,
    abstract=_unique_abstract,
    nondiff=True,
    data_dependent=True,
    save=SAVE_NONE,
    n_out=3,
)


@op(method="unique")
def unique(
    input: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """Sorted unique values (of the flattened input, or slices along ``dim``)."""
    refuse_complex("unique", input)
    d = None
    if dim is not None:
        d = wrap_dim(dim, input._data.ndim, "unique")
        if input._data.ndim == 0:
            d = None
    u, inv, cnt = bind(unique_p, (input,), {"dim": d})
    if not return_inverse and not return_counts:
        return u
    out: tuple[Tensor, ...] = (u,)
    if return_inverse:
        out += (inv,)
    if return_counts:
        out += (cnt,)
    return out


def _nonzero_impl(x):
    return np.argwhere(x).astype(np.int64)


def _nonzero_abstract(x):
    from .._dtype import int64

    return AbstractValue((None, x.ndim), int64)


nonzero_p = Primitive(
    "nonzero",
    "opaque",
    impl=_nonzero_impl,
    abstract=_nonzero_abstract,
    nondiff=True,
    data_dependent=True,
    save=SAVE_NONE,
)


@op(method="nonzero")
def nonzero(input: Tensor, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """Indices of the non-zero entries: ``(n, ndim)``, or a tuple of ``ndim`` 1-D tensors."""
    from .shape import reshape, unbind

    if not as_tuple:
        return bind(nonzero_p, (input,))
    x = reshape(input, 1) if input._data.ndim == 0 else input
    r = bind(nonzero_p, (x,))
    return tuple(c.contiguous() for c in unbind(r, 1))


@op(method="argwhere")
def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


__all__ = module_ops(__name__)
