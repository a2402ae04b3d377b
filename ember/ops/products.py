"""Matrix and tensor products built on ``matmul`` (``addmm`` and its family, ``mv``,
``inner``, ``tensordot``, ``kron``, ``vdot``) and diagonal constructions (``trace``,
``diag``, ``diag_embed``, ``diagflat``, ``block_diag``), with PyTorch's names and checks.
Each is a composition of primitives, so gradients of every order come from theirs.

Example:
    >>> import ember
    >>> a = ember.ones(2, 3)
    >>> ember.addmm(ember.zeros(2, 2), a, a.t(), alpha=2).tolist()
    [[6.0, 6.0], [6.0, 6.0]]
    >>> ember.kron(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 10.0])).tolist()
    [1.0, 10.0, 2.0, 20.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._core import ShapeError
from ._records import module_ops, op
from ._util import wrap_dim
from .elementwise import where
from .linalg import matmul
from .shape import cat, movedim, pad

if TYPE_CHECKING:
    from .._tensor import Tensor


def _need(t: Tensor, ndim: int, op_name: str, arg: str) -> None:
    if t.ndim != ndim:
        raise ShapeError(f"{op_name}: {arg} must be a {ndim}-D tensor, got {t.ndim}-D")


def _scaled_sum(input: Tensor, prod: Tensor, beta: float, alpha: float) -> Tensor:
    """``beta * input + alpha * prod``; with ``beta == 0`` input is ignored (nan and inf in it
    do not propagate), as in PyTorch."""
    from .elementwise import broadcast_shapes

    if broadcast_shapes(input.shape, prod.shape, op="add") != tuple(prod.shape):
        raise ShapeError(
            f"the input of shape {tuple(input.shape)} does not broadcast to the product's "
            f"shape {tuple(prod.shape)}"
        )
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:
        return prod
    return (input * beta if beta != 1 else input) + prod


@op(
    method="addmm",
    inplace="addmm_",
    ref="addmm",
    arity=3,
    rtol=1e-4,
    shapes=(((2, 4), (2, 3), (3, 4)), ((4,), (2, 3), (3, 4)), ((1, 1), (2, 0), (0, 3))),
    cases=({}, {"beta": 0.5, "alpha": 2.0}),
)
def addmm(
    input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: float = 1, alpha: float = 1
) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` (``input`` broadcasts to the product)."""
    _need(mat1, 2, "addmm", "mat1")
    _need(mat2, 2, "addmm", "mat2")
    return _scaled_sum(input, matmul(mat1, mat2), beta, alpha)


@op(
    method="addmv",
    inplace="addmv_",
    ref="addmv",
    arity=3,
    rtol=1e-4,
    shapes=(((2,), (2, 3), (3,)), ((1,), (4, 3), (3,))),
    cases=({}, {"beta": 0.5, "alpha": 2.0}),
)
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


@op(
    method="addr",
    inplace="addr_",
    ref="addr",
    arity=3,
    rtol=1e-4,
    shapes=(((2, 3), (2,), (3,)), ((3,), (2,), (3,))),
    cases=({}, {"beta": 0.5, "alpha": 2.0}),
)
def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``."""
    _need(vec1, 1, "addr", "vec1")
    _need(vec2, 1, "addr", "vec2")
    return _scaled_sum(input, vec1.reshape(-1, 1) * vec2.reshape(1, -1), beta, alpha)


@op(
    method="addbmm",
    inplace="addbmm_",
    ref="addbmm",
    arity=3,
    rtol=1e-4,
    shapes=(((2, 4), (3, 2, 5), (3, 5, 4)), ((4,), (2, 2, 3), (2, 3, 4))),
    cases=({}, {"beta": 0.5, "alpha": 2.0}),
)
def addbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1
) -> Tensor:
    """``beta * input + alpha * sum_i(batch1[i] @ batch2[i])``."""
    _need(batch1, 3, "addbmm", "batch1")
    _need(batch2, 3, "addbmm", "batch2")
    return _scaled_sum(input, matmul(batch1, batch2).sum(0), beta, alpha)


@op(
    method="baddbmm",
    inplace="baddbmm_",
    ref="baddbmm",
    arity=3,
    rtol=1e-4,
    shapes=(((3, 2, 4), (3, 2, 5), (3, 5, 4)), ((4,), (2, 2, 3), (2, 3, 4))),
    cases=({}, {"beta": 0.5, "alpha": 2.0}),
)
def baddbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: float = 1, alpha: float = 1
) -> Tensor:
    """``beta * input + alpha * (batch1 @ batch2)``, batch by batch."""
    _need(batch1, 3, "baddbmm", "batch1")
    _need(batch2, 3, "baddbmm", "batch2")
    return _scaled_sum(input, matmul(batch1, batch2), beta, alpha)


@op(method="mv", ref="mv", arity=2, rtol=1e-4, shapes=(((2, 3), (3,)), ((0, 3), (3,))))
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product."""
    _need(input, 2, "mv", "input")
    _need(vec, 1, "mv", "vec")
    return matmul(input, vec)


@op(
    method="inner",
    ref="inner",
    arity=2,
    rtol=1e-4,
    shapes=(((2, 3), (4, 3)), ((3,), (3,)), ((), (2, 3)), ((2, 2, 3), (3,))),
)
def inner(input: Tensor, other: Tensor) -> Tensor:
    """The sum of products over the last dimension of both (a product with a 0-d operand)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    k1, k2 = input.shape[-1], other.shape[-1]
    if k1 != k2:
        raise ShapeError(f"inner: last dimensions differ: {k1} and {k2}")
    a = input.reshape(-1, k1)
    b = other.reshape(-1, k2)
    return matmul(a, b.t()).reshape(*input.shape[:-1], *other.shape[:-1])


@op(
    method="tensordot",
    ref="tensordot",
    arity=2,
    rtol=1e-4,
    shapes=(((3, 3, 3), (3, 3, 2)), ((2, 2), (2, 2))),
    cases=({"dims": 2}, {"dims": ([1, 0], [0, 1])}, {"dims": 0}),
)
def tensordot(
    a: Tensor, b: Tensor, dims: int | Sequence[Sequence[int]] | Sequence[int] = 2
) -> Tensor:
    """Contract ``dims`` trailing axes of ``a`` with leading axes of ``b`` (or the listed
    pairs of axes ``(dims_a, dims_b)``)."""
    if isinstance(dims, int):
        if dims < 0:
            raise ValueError(f"tensordot: dims must be non-negative, got {dims}")
        if dims > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: dims {dims} is more than the dims of the operands")
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        if len(dims) != 2:
            raise ValueError("tensordot: dims must be an int or a pair of dimension lists")
        da_, db_ = dims
        da = [da_] if isinstance(da_, int) else list(da_)
        db = [db_] if isinstance(db_, int) else list(db_)
        if len(da) != len(db):
            raise ValueError(f"tensordot: both dimension lists need the same length, {da} {db}")
        da = [wrap_dim(d, a.ndim, "tensordot") for d in da]
        db = [wrap_dim(d, b.ndim, "tensordot") for d in db]
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(
                f"tensordot: contracted dimensions need the same size, got {a.shape[i]} "
                f"(dim {i} of a) and {b.shape[j]} (dim {j} of b)"
            )
    free_a = [i for i in range(a.ndim) if i not in da]
    free_b = [j for j in range(b.ndim) if j not in db]
    k = int(np.prod([a.shape[i] for i in da], dtype=np.int64))
    am = a.permute(*free_a, *da).reshape(-1, k)
    bm = b.permute(*db, *free_b).reshape(k, -1)
    out_shape = [a.shape[i] for i in free_a] + [b.shape[j] for j in free_b]
    return matmul(am, bm).reshape(*out_shape)


@op(method="kron", ref="kron", arity=2, shapes=(((2, 3), (2, 2)), ((3,), (2, 1, 2)), ((), (2,))))
def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product (operands padded with leading 1s to the same rank)."""
    n = max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + tuple(input.shape)
    sb = (1,) * (n - other.ndim) + tuple(other.shape)
    a = input.reshape(*[v for s in sa for v in (s, 1)])
    b = other.reshape(*[v for s in sb for v in (1, s)])
    return (a * b).reshape(*[x * y for x, y in zip(sa, sb)])


@op(method="vdot", ref="vdot", arity=2, shapes=(((3,), (3,)), ((0,), (0,))))
def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors (the first conjugated: a no-op for real tensors)."""
    _need(input, 1, "vdot", "input")
    _need(other, 1, "vdot", "other")
    if input.shape[0] != other.shape[0]:
        raise ShapeError(f"vdot: sizes differ: {input.shape[0]} and {other.shape[0]}")
    from .complex_base import cj

    return (cj(input) * other).sum()


@op(method="trace", ref="trace", shapes=(((3, 3),), ((2, 4),), ((0, 2),)))
def trace(input: Tensor) -> Tensor:
    """The sum of the main diagonal of a 2-D tensor."""
    _need(input, 2, "trace", "input")
    return input.diagonal().sum()


def _diag_embed_last(x: Tensor, offset: int) -> Tensor:
    """``(..., n) -> (..., n + |offset|, n + |offset|)`` with ``x`` on diagonal ``offset``."""
    k = abs(offset)
    n = x.shape[-1] + k
    if k:
        x = pad(x, (0, k))
    mask = np.eye(n, k=offset, dtype=bool)
    # row i holds x[i] (offset >= 0) or column j holds x[j] (offset < 0)
    src = x.unsqueeze(-1) if offset >= 0 else x.unsqueeze(-2)
    return where(mask, src, 0).to(x.dtype)


@op(
    method="diag_embed",
    ref="diag_embed",
    shapes=(((3,),), ((2, 3),), ((2, 0),)),
    cases=({}, {"offset": 1}, {"offset": -2, "dim1": -1, "dim2": 0}),
)
def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Square matrices (on dims ``dim1``, ``dim2`` of the result) with the last dimension of
    ``input`` on their diagonal ``offset``."""
    out_nd = input.ndim + 1
    d1, d2 = wrap_dim(dim1, out_nd, "diag_embed"), wrap_dim(dim2, out_nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 cannot be the same ({dim1}, {dim2})")
    m = _diag_embed_last(input, offset)
    if (d1, d2) == (out_nd - 2, out_nd - 1):
        return m
    # place the two new dims; diagonal offset is measured from dim1 to dim2
    if d1 > d2:
        m = m.transpose(-2, -1)
        d1, d2 = d2, d1
    return movedim(m, (out_nd - 2, out_nd - 1), (d1, d2))


@op(
    method="diag",
    ref="diag",
    shapes=(((3,),), ((3, 4),), ((0,),)),
    cases=({}, {"diagonal": 1}, {"diagonal": -1}),
)
def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """1-D: a square matrix with ``input`` on diagonal ``diagonal``; 2-D: that diagonal."""
    if input.ndim == 1:
        return _diag_embed_last(input, diagonal)
    if input.ndim == 2:
        return input.diagonal(diagonal)
    raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got {input.ndim}-D")


@op(
    method="diagflat",
    ref="diagflat",
    shapes=(((3,),), ((2, 2),), ((),)),
    cases=({}, {"offset": 1}, {"offset": -2}),
)
def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A square matrix with the flattened ``input`` on diagonal ``offset``."""
    return _diag_embed_last(input.reshape(-1), offset)


def _block_sample(rng, shapes):
    return [rng.uniform(-2, 2, s) for s in shapes]


@op(
    ref="block_diag",
    arity=3,
    shapes=(((2, 3), (1, 2), (3,)), ((), (2, 2), (0, 2))),
    sample=_block_sample,
)
def block_diag(*tensors: Tensor) -> Tensor:
    """The block-diagonal matrix of the given blocks (0-d and 1-D count as 1-row blocks)."""
    from .._creation import zeros
    from ._promote import result_type

    if not tensors:
        return zeros(1, 0)
    blocks = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise ShapeError(f"block_diag: input {i} must have 2 or fewer dims, got {t.ndim}")
        blocks.append(t.reshape(1, -1) if t.ndim < 2 else t)
    r = result_type(*blocks)
    blocks = [b.to(r) for b in blocks]
    width = sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        h, w = b.shape
        parts = [zeros(h, left, dtype=r), b, zeros(h, width - left - w, dtype=r)]
        rows.append(cat(parts, dim=1))
        left += w
    return cat(rows, dim=0)


__all__ = module_ops(__name__)
