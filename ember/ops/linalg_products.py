"""``ember.linalg`` products and helpers, compositions of ember ops: multi_dot, vecdot, cross,
vander, diagonal, matrix_power, tensorinv, tensorsolve; and matrix_exp (Pade scaling and
squaring, with the block-matrix VJP)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import SAVE_INPUTS, Primitive, ShapeError, bind
from ._linalg_util import check_float, check_square
from ._records import OPS, module_ops, op
from .linalg_norms import _dims

if TYPE_CHECKING:
    from .._tensor import Tensor


@op(name="linalg_multi_dot", export=False)
def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """``tensors[0] @ tensors[1] @ ...`` in the cheapest order (the first may be 1-D, a row
    vector; the last may be 1-D, a column vector; the others 2-D).

    Example:
        >>> import ember
        >>> ember.linalg.multi_dot([ember.ones(2), ember.eye(2), ember.ones(2)]).item()
        2.0
    """
    fn = "linalg.multi_dot"
    ts = list(tensors)
    if len(ts) < 2:
        raise ValueError(f"{fn}(): expected at least 2 tensors but got {len(ts)}")
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].unsqueeze(0)
    if last_vec:
        ts[-1] = ts[-1].unsqueeze(-1)
    for i, t in enumerate(ts):
        if t.ndim != 2:
            raise ShapeError(
                f"{fn}(): tensor {i} must be 2D"
                + (" or 1D" if i in (0, len(ts) - 1) else "")
                + f" but got {t.ndim}D"
            )
        if i and ts[i - 1].shape[1] != t.shape[0]:
            raise ShapeError(
                f"{fn}(): tensors {i - 1} and {i} with shapes {tuple(ts[i - 1].shape)} and "
                f"{tuple(t.shape)} cannot be multiplied"
            )
    dtypes = {t.dtype for t in ts}
    if len(dtypes) != 1:
        raise TypeError(
            f"{fn}(): all tensors must have the same dtype, got {sorted(map(str, dtypes))}"
        )
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    k = len(ts)
    cost = [[0] * k for _ in range(k)]
    split = [[0] * k for _ in range(k)]
    for length in range(1, k):
        for i in range(k - length):
            j = i + length
            cost[i][j] = -1
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if cost[i][j] < 0 or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s

    def chain(i: int, j: int) -> Tensor:
        if i == j:
            return ts[i]
        s = split[i][j]
        return chain(i, s) @ chain(s + 1, j)

    out = chain(0, k - 1)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


@op(
    ref="linalg.vecdot",
    arity=2,
    shapes=(((2, 3), (3,)), ((4,), (4,)), ((0, 3), (3,))),
    cases=({}, {"dim": 0}),
    rtol=1e-4,
    name="linalg_vecdot",
    export=False,
)
def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """Dot products along ``dim`` of broadcast ``x`` and ``y``.

    Example:
        >>> import ember
        >>> ember.linalg.vecdot(ember.tensor([1.0, 2.0]), ember.tensor([3.0, 4.0])).item()
        11.0
    """
    check_float(x, "linalg.vecdot", "x")
    if x.dtype is not y.dtype:
        raise TypeError(
            f"linalg.vecdot: expected x and y to have the same dtype, got {x.dtype} and {y.dtype}"
        )
    return (x * y).sum(dim)


@op(
    ref="linalg.cross",
    arity=2,
    shapes=(((3, 3), (3, 3)), ((2, 3, 3), (1, 3, 3)), ((0, 3, 3), (1, 3, 3))),
    cases=({}, {"dim": -2}),
    name="linalg_cross",
    export=False,
)
def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (inputs broadcast).

    Example:
        >>> import ember
        >>> ember.linalg.cross(ember.tensor([1.0, 0.0, 0.0]), ember.tensor([0.0, 1.0, 0.0]))
        tensor([0., 0., 1.])
    """
    fn = "linalg.cross"
    if input.dtype is not other.dtype:
        raise TypeError(
            f"{fn}: expected input and other to have the same dtype, got {input.dtype} and "
            f"{other.dtype}"
        )
    if input.ndim != other.ndim:
        raise ShapeError(
            f"{fn}: inputs must have the same number of dimensions, got {input.ndim} and "
            f"{other.ndim}"
        )
    from .shape import broadcast_tensors, roll

    a, b = broadcast_tensors(input, other)
    d = _dims(dim, a.ndim, fn)[0]
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise ShapeError(
            f"{fn}: inputs dimension {dim} must have length 3, got {input.shape[d]} and "
            f"{other.shape[d]}"
        )
    return roll(a, -1, d) * roll(b, -2, d) - roll(a, -2, d) * roll(b, -1, d)


@op(
    ref="linalg.vander",
    shapes=(((4,),), ((2, 3),)),
    cases=({}, {"N": 5}),
    rtol=1e-4,
    name="linalg_vander",
    export=False,
)
def vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """Vandermonde matrices ``x^0, x^1, ..., x^(N-1)`` (increasing powers) along a new last
    dim; ``N`` defaults to ``x.shape[-1]``.

    Example:
        >>> import ember
        >>> ember.linalg.vander(ember.tensor([2, 3])).tolist()
        [[1, 2], [1, 3]]
    """
    fn = "linalg.vander"
    if x.ndim == 0:
        raise ShapeError(f"{fn}: x must have at least one dimension")
    n = x.shape[-1] if N is None else int(N)
    if n <= 1:
        raise ShapeError(f"{fn}: N must be greater than 1, got {n}")
    from .scan import cumprod
    from .shape import cat

    col = x.unsqueeze(-1)
    parts = [col * 0 + 1, col.expand(*x.shape, n - 1)]
    return cumprod(cat(parts, -1), -1)


@op(name="linalg_diagonal", export=False)
def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonals of the matrices of ``A`` over ``dim1``/``dim2`` (a view), as
    ``ember.diagonal`` with matrix-style default dims.

    Example:
        >>> import ember
        >>> ember.linalg.diagonal(ember.eye(3)).tolist()
        [1.0, 1.0, 1.0]
    """
    from .shape import diagonal as _diagonal

    return _diagonal(A, offset, dim1, dim2)


def _power_sample(rng, shapes):
    return [rng.uniform(-0.8, 0.8, s) + np.eye(s[-1]) for s in shapes]


@op(
    ref="linalg.matrix_power",
    sample=_power_sample,
    shapes=(((3, 3),), ((2, 2, 2),), ((0, 2, 2),)),
    cases=({"n": 0}, {"n": 1}, {"n": 3}, {"n": -2}),
    rtol=1e-4,
    name="linalg_matrix_power",
    export=False,
)
def matrix_power(input: Tensor, n: int) -> Tensor:
    """``A`` to the integer power ``n`` by repeated squaring (``n < 0``: of the inverse;
    ``n == 0``: the identity).

    Example:
        >>> import ember
        >>> ember.linalg.matrix_power(ember.tensor([[1.0, 1.0], [0.0, 1.0]]), 3).tolist()
        [[1.0, 3.0], [0.0, 1.0]]
    """
    fn = "linalg.matrix_power"
    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise ShapeError(
            f"{fn}: input must be batches of square matrices, got shape {tuple(input.shape)}"
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{fn}: n must be an int, got {type(n).__name__}")
    if n == 0:
        from .._creation import eye
        from .elementwise import where

        e = eye(input.shape[-1], dtype=input.dtype)
        # the identity, still attached to A's graph (a zero gradient, as PyTorch's)
        return where(e >= 0, e, input)
    if n < 0:
        from .linalg_solve import inv

        input, n = inv(input), -n
    if n == 1:
        return input.clone()
    result, base = None, input
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    assert result is not None
    return result


@op(name="linalg_tensorinv", export=False)
def tensorinv(input: Tensor, ind: int = 2) -> Tensor:
    """The inverse of ``A`` for ``tensordot`` over its first ``ind`` dims: shape
    ``A.shape[ind:] + A.shape[:ind]``.

    Example:
        >>> import ember
        >>> ember.linalg.tensorinv(ember.eye(4).reshape(4, 2, 2), ind=1).shape
        ember.Size([2, 2, 4])
    """
    fn = "linalg.tensorinv"
    if ind <= 0:
        raise ValueError(f"{fn}: expected a strictly positive integer for 'ind', but got {ind}")
    from .linalg_solve import inv

    out_shape, in_shape = tuple(input.shape[:ind]), tuple(input.shape[ind:])
    rows, cols = math.prod(out_shape), math.prod(in_shape)
    if rows != cols:
        raise ShapeError(
            f"{fn}: expected prod(input.shape[:ind]) == prod(input.shape[ind:]), got {rows} "
            f"and {cols}"
        )
    return inv(input.reshape(rows, cols)).reshape(*in_shape, *out_shape)


@op(name="linalg_tensorsolve", export=False)
def tensorsolve(input: Tensor, other: Tensor, dims: Sequence[int] | None = None) -> Tensor:
    """``X`` with ``tensordot(A, X, X.ndim) == B``: shape ``A.shape[B.ndim:]`` (``dims`` of
    ``A`` are moved to the end first).

    Example:
        >>> import ember
        >>> ember.linalg.tensorsolve(2 * ember.eye(6).reshape(2, 3, 6), ember.ones(2, 3)).shape
        ember.Size([6])
    """
    fn = "linalg.tensorsolve"
    from .linalg_solve import solve
    from .shape import movedim

    if dims is not None:
        src = _dims(tuple(dims), input.ndim, fn)
        input = movedim(input, src, tuple(range(input.ndim - len(src), input.ndim)))
    res_shape = tuple(input.shape[other.ndim :])
    rows, cols = other.numel(), math.prod(res_shape)
    if tuple(input.shape[: other.ndim]) != tuple(other.shape) or rows != cols:
        raise ShapeError(
            f"{fn}: expected prod(input.shape[other.ndim:]) == other.numel() and "
            f"input.shape[:other.ndim] == other.shape, got input {tuple(input.shape)} and "
            f"other {tuple(other.shape)}"
        )
    return solve(input.reshape(rows, cols), other.reshape(rows)).reshape(res_shape)


# -- matrix_exp --------------------------------------------------------------------------------
# Higham's degree-13 Pade approximant with scaling and squaring ("The scaling and squaring
# method for the matrix exponential revisited", 2005)
_PADE13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)
_THETA13 = 5.371920351148152


def _expm_impl(a):
    if a.size == 0:
        return np.array(a, copy=True)
    dt = a.dtype
    x = a.astype(np.float64)
    n = x.shape[-1]
    norm1 = np.abs(x).sum(-2).max(-1)
    with np.errstate(divide="ignore"):
        s = np.maximum(0, np.ceil(np.log2(np.maximum(norm1, 1e-300) / _THETA13))).astype(int)
    x = x / (2.0**s)[..., None, None]
    b = _PADE13
    eye = np.eye(n)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    u = x @ (
        x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * eye
    )
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * eye
    r = np.linalg.solve(v - u, v + u)
    for i in range(int(s.max(initial=0))):
        r = np.where((s > i)[..., None, None], r @ r, r)
    return r.astype(dt)


matrix_exp_p = Primitive(
    "linalg_matrix_exp",
    "opaque",
    impl=_expm_impl,
    save=SAVE_INPUTS,
    abstract=lambda a: a,
)


@defvjp(matrix_exp_p)
def _expm_vjp(g, out, a):
    # the adjoint of the Frechet derivative: the top-right block of exp([[A^T, G], [0, A^T]])
    from .shape import cat

    n = a.shape[-1]
    at = a.mT
    big = cat([cat([at, g], -1), cat([at * 0, at], -1)], -2)
    return (bind(matrix_exp_p, (big,))[..., :n, n:],)


def _expm_sample(rng, shapes):
    return [rng.uniform(-1.5, 1.5, s) for s in shapes]


@op(
    ref="linalg.matrix_exp",
    sample=_expm_sample,
    shapes=(((3, 3),), ((2, 4, 4),), ((0, 2, 2),), ((1, 1),)),
    rtol=1e-4,
    name="linalg_matrix_exp",
    export=False,
)
def matrix_exp(input: Tensor) -> Tensor:
    """The matrix exponential of each square matrix of ``A`` (*, n, n).

    Example:
        >>> import ember
        >>> ember.linalg.matrix_exp(ember.zeros(2, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    check_square(input, "linalg.matrix_exp")
    return bind(matrix_exp_p, (input,))


__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
