"""Out-of-place writes into a copy of a tensor, with PyTorch's names: ``select_scatter``,
``slice_scatter``, ``diagonal_scatter``, ``index_copy``, ``index_put``, ``masked_scatter`` and
``put``. Each is differentiable in both the tensor written into and the values written
(through the same indexed-write primitive as ``x[i] = v``).

Example:
    >>> import ember
    >>> ember.slice_scatter(ember.zeros(4), ember.ones(2), start=1, end=3).tolist()
    [0.0, 1.0, 1.0, 0.0]
    >>> ember.diagonal_scatter(ember.zeros(2, 2), ember.tensor([1.0, 2.0])).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ._core import ShapeError
from ._records import module_ops, op
from ._util import wrap_dim
from .indexing import index_add, index_put_value
from .shape import movedim

if TYPE_CHECKING:
    from .._tensor import Tensor


def _expect_shape(src: Tensor, want: tuple, name: str) -> None:
    if tuple(src.shape) != tuple(want):
        raise ShapeError(f"{name}: src must have shape {tuple(want)}, got {tuple(src.shape)}")


@op(method="select_scatter")
def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """``input`` with ``src`` written at ``index`` of dimension ``dim``."""
    if input.ndim == 0:
        raise IndexError("select_scatter: cannot be applied to a 0-dim tensor")
    d = wrap_dim(dim, input.ndim, "select_scatter")
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select_scatter: index {index} out of range for dim {dim} of size {n}")
    _expect_shape(src, input.shape[:d] + input.shape[d + 1 :], "select_scatter")
    return index_put_value(input, (slice(None),) * d + (index % n,), src)


@op(method="slice_scatter")
def slice_scatter(
    input: Tensor,
    src: Tensor,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> Tensor:
    """``input`` with ``src`` written into ``input[start:end:step]`` along ``dim``."""
    if step <= 0:
        raise ValueError(f"slice_scatter: step must be positive, got {step}")
    d = wrap_dim(dim, max(input.ndim, 1), "slice_scatter")
    sl = (slice(None),) * d + (slice(start, end, step),)
    want = np.empty(input.shape, np.bool_)[sl].shape
    _expect_shape(src, want, "slice_scatter")
    return index_put_value(input, sl, src)


@op(method="diagonal_scatter")
def diagonal_scatter(
    input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1
) -> Tensor:
    """``input`` with ``src`` written onto its diagonal ``offset`` of dims ``dim1``, ``dim2``
    (``src`` shaped like ``input.diagonal(offset, dim1, dim2)``)."""
    from .._creation import tensor

    if input.ndim < 2:
        raise ShapeError(f"diagonal_scatter: expected at least 2 dims, got {input.ndim}")
    d1, d2 = (
        wrap_dim(dim1, input.ndim, "diagonal_scatter"),
        wrap_dim(dim2, input.ndim, "diagonal_scatter"),
    )
    if d1 == d2:
        raise ValueError(f"diagonal_scatter: dim1 and dim2 cannot be equal ({dim1}, {dim2})")
    _expect_shape(src, input.diagonal(offset, d1, d2).shape, "diagonal_scatter")
    x = movedim(input, (d1, d2), (-2, -1))
    r, c = x.shape[-2], x.shape[-1]
    rows = np.arange(max(0, -offset), min(r, c - offset) if c - offset > 0 else 0)
    idx = (Ellipsis, tensor(rows), tensor(rows + offset))
    return movedim(index_put_value(x, idx, src), (-2, -1), (d1, d2))


@op(method="index_copy")
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """``input`` with the slices of ``source`` copied to positions ``index`` along ``dim``."""
    if index.ndim > 1 or index.dtype.is_floating_point:
        raise TypeError("index_copy: index must be a 0-d or 1-D integer tensor")
    d = wrap_dim(dim, max(input.ndim, 1), "index_copy")
    want = list(input.shape)
    if input.ndim:
        want[d] = index.numel()
    _expect_shape(source, tuple(want), "index_copy")
    if input.ndim == 0:
        return source.reshape(()) * 1
    return index_put_value(input, (slice(None),) * d + (index.reshape(-1),), source)


def _linear(indices: Sequence[Tensor], shape: tuple, name: str) -> Tensor:
    """The flat index into ``shape[:len(indices)]`` of broadcast integer index tensors."""
    from .elementwise import broadcast_shapes

    k = len(indices)
    bshape = broadcast_shapes(*[tuple(i.shape) for i in indices], op=name)
    lin = None
    for j, ix in enumerate(indices):
        n = shape[j]
        ix = ix.to(dt.int64).expand(*bshape)
        if ix.numel() and (int(ix.amin().item()) < -n or int(ix.amax().item()) >= n):
            raise IndexError(f"{name}: index out of bounds for dim {j} of size {n}")
        ix = ix % n if n else ix
        lin = ix if lin is None else lin * n + ix
    assert lin is not None and k > 0
    return lin


@op(method="index_put", inplace="index_put_")
def index_put(
    input: Tensor, indices: Sequence[Tensor], values: Tensor, accumulate: bool = False
) -> Tensor:
    """``input`` with ``input[indices] = values`` (``+=`` with ``accumulate``, where repeated
    indices add up). ``values`` must have ``input``'s dtype, as in PyTorch.

    Example:
        >>> import ember
        >>> x = ember.zeros(2, 3)
        >>> _ = x.index_put_((ember.tensor([1, 1]),), ember.tensor(1.0), accumulate=True)
        >>> x.tolist()
        [[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]]
    """
    from .._tensor import Tensor as _T

    indices = tuple(indices)
    if not indices:
        raise ValueError("index_put: indices must not be empty")
    if isinstance(values, _T) and values.dtype != input.dtype:
        raise TypeError(
            "index_put: the source and destination dtypes must match, got "
            f"{input.dtype.name} for the destination and {values.dtype.name} for the source"
        )
    if not accumulate or any(i.dtype == dt.bool_ for i in indices):
        if accumulate:
            indices = tuple(j for i in indices for j in i.nonzero(as_tuple=True))
        else:
            return index_put_value(input, indices, values)
    k = len(indices)
    if k > input.ndim:
        raise IndexError(f"index_put: too many indices ({k}) for a {input.ndim}-D tensor")
    lin = _linear(indices, tuple(input.shape), "index_put")
    rest = tuple(input.shape[k:])
    flat = input.reshape(-1, *rest) if k else input
    v = values if isinstance(values, _T) else flat.new_tensor(values)
    v = v.to(input.dtype).expand(*lin.shape, *rest).reshape(-1, *rest)
    return index_add(flat, 0, lin.reshape(-1), v).reshape(*input.shape)


@op(method="masked_scatter")
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """``input`` with the positions where ``mask`` (broadcast) holds filled, in order, from
    the leading elements of ``source``."""
    if mask.dtype != dt.bool_:
        raise TypeError(f"masked_scatter: mask must be a bool tensor, got {mask.dtype}")
    m = mask.expand(*input.shape).reshape(-1)
    pos = m.nonzero(as_tuple=True)[0]
    n = pos.numel()
    if source.numel() < n:
        raise ShapeError(
            f"masked_scatter: source has {source.numel()} elements, the mask selects {n}"
        )
    vals = source.reshape(-1)[:n].to(input.dtype)
    return index_put_value(input.reshape(-1), (pos,), vals).reshape(*input.shape)


@op(method="put", inplace="put_")
def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """``input`` (seen as 1-D) with ``source`` written at the flat positions ``index``
    (added there with ``accumulate``). As in PyTorch, ``index`` is an int64 tensor and
    ``source`` has ``input``'s dtype.

    Example:
        >>> import ember
        >>> x = ember.zeros(2, 2)
        >>> _ = x.put_(ember.tensor([0, 3]), ember.tensor([1.0, 2.0]))
        >>> x.tolist()
        [[1.0, 0.0], [0.0, 2.0]]
    """
    if index.dtype != dt.int64:
        raise TypeError(f"put: index must be an int64 tensor, got {index.dtype.name}")
    if source.dtype != input.dtype:
        raise TypeError(
            "put: input and source must have the same dtype, got "
            f"{input.dtype.name} and {source.dtype.name}"
        )
    if index.numel() != source.numel():
        raise ShapeError(
            f"put: index and source need the same number of elements, got {index.numel()} "
            f"and {source.numel()}"
        )
    flat = input.reshape(-1)
    return index_put(flat, (index.reshape(-1),), source.reshape(-1), accumulate).reshape(
        *input.shape
    )


__all__ = module_ops(__name__)
