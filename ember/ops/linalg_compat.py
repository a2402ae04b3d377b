"""PyTorch's top-level linear-algebra functions and Tensor methods (``torch.det``,
``Tensor.inverse``, ``torch.svd`` ...), as thin wrappers over ``ember.linalg``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, bind
from ._linalg_util import LU as LUTuple
from ._linalg_util import (
    QR,
    SVDOld,
    TriangularSolve,
    check_matrix,
    check_same_dtype,
    check_square,
)
from ._records import module_ops, op
from .linalg_decomp import cholesky as _cholesky
from .linalg_decomp import qr as _qr
from .linalg_decomp import svd as _svd
from .linalg_lstsq import pinv as _pinv
from .linalg_lu import lu_solve as _lu_solve
from .linalg_products import _expm_sample, _power_sample
from .linalg_products import cross as _cross
from .linalg_products import matrix_exp as _matrix_exp
from .linalg_products import matrix_power as _matrix_power
from .linalg_products import multi_dot as _multi_dot
from .linalg_products import vander as _vander
from .linalg_solve import _SQUARE_SHAPES, _logdet, _spd_sample, _trisolve_impl, solve_triangular
from .linalg_solve import det as _det
from .linalg_solve import inv as _inv
from .linalg_solve import slogdet as _slogdet

if TYPE_CHECKING:
    from .._tensor import Tensor


@op(method="det", ref="det", sample=_spd_sample, shapes=_SQUARE_SHAPES, rtol=1e-4)
def det(input: Tensor) -> Tensor:
    """Determinant (``ember.linalg.det``).

    Example:
        >>> import ember
        >>> ember.tensor([[2.0, 0.0], [0.0, 3.0]]).det().item()
        6.0
    """
    return _det(input)


@op(method="logdet", ref="logdet", sample=_spd_sample, shapes=_SQUARE_SHAPES, rtol=1e-4)
def logdet(input: Tensor) -> Tensor:
    """Log-determinant: NaN where the determinant is negative, -inf where it is 0.

    Example:
        >>> import ember
        >>> round(ember.logdet(ember.tensor([[2.0, 0.0], [0.0, 3.0]])).item(), 4)
        1.7918
    """
    return _logdet(input, "logdet")


@op(method="slogdet")
def slogdet(input: Tensor) -> tuple[Tensor, Tensor]:
    """``(sign, logabsdet)`` (``ember.linalg.slogdet``).

    Example:
        >>> import ember
        >>> ember.slogdet(ember.eye(2)).sign.item()
        1.0
    """
    return _slogdet(input)


@op(method="inverse", ref="inverse", sample=_spd_sample, shapes=_SQUARE_SHAPES, rtol=1e-4)
def inverse(input: Tensor) -> Tensor:
    """Matrix inverse (``ember.linalg.inv``).

    Example:
        >>> import ember
        >>> ember.tensor([[2.0, 0.0], [0.0, 4.0]]).inverse().tolist()
        [[0.5, 0.0], [0.0, 0.25]]
    """
    return _inv(input)


@op(method="pinverse")
def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    """Pseudo-inverse with relative cut-off ``rcond`` (``ember.linalg.pinv(rtol=rcond)``).

    Example:
        >>> import ember
        >>> ember.tensor([[2.0, 0.0], [0.0, 0.0]]).pinverse().tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    return _pinv(input, rtol=rcond)


@op(
    method="matrix_power",
    ref="matrix_power",
    sample=_power_sample,
    shapes=(((3, 3),), ((2, 2, 2),)),
    cases=({"n": 2}, {"n": -1}),
    rtol=1e-4,
)
def matrix_power(input: Tensor, n: int) -> Tensor:
    """Integer matrix power (``ember.linalg.matrix_power``).

    Example:
        >>> import ember
        >>> ember.tensor([[1.0, 1.0], [0.0, 1.0]]).matrix_power(2).tolist()
        [[1.0, 2.0], [0.0, 1.0]]
    """
    return _matrix_power(input, n)


@op(
    method="matrix_exp",
    ref="matrix_exp",
    sample=_expm_sample,
    shapes=(((3, 3),), ((2, 2, 2),)),
    rtol=1e-4,
)
def matrix_exp(input: Tensor) -> Tensor:
    """Matrix exponential (``ember.linalg.matrix_exp``).

    Example:
        >>> import ember
        >>> ember.matrix_exp(ember.zeros(1, 1)).item()
        1.0
    """
    return _matrix_exp(input)


@op(method="cholesky")
def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    """Cholesky factor (``ember.linalg.cholesky``; ``upper`` positional, as torch.cholesky).

    Example:
        >>> import ember
        >>> ember.tensor([[4.0, 0.0], [0.0, 9.0]]).cholesky().tolist()
        [[2.0, 0.0], [0.0, 3.0]]
    """
    return _cholesky(input, upper=upper)


@op(method="qr")
def qr(input: Tensor, some: bool = True) -> tuple[Tensor, Tensor]:
    """``(Q, R)``: reduced with ``some=True``, complete otherwise (``ember.linalg.qr``).

    Example:
        >>> import ember
        >>> Q, R = ember.qr(ember.eye(2))
        >>> tuple(Q.shape), tuple(R.shape)
        ((2, 2), (2, 2))
    """
    return QR(*_qr(input, "reduced" if some else "complete"))


@op(method="svd")
def svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """``(U, S, V)`` with ``input = U diag(S) V^T`` (note ``V``, not ``Vh``); ``some=False``
    gives square ``U`` and ``V``; without ``compute_uv`` they are square and zero-filled.

    Example:
        >>> import ember
        >>> ember.svd(ember.tensor([[0.0, 2.0], [1.0, 0.0]])).S.tolist()
        [2.0, 1.0]
    """
    if not compute_uv:  # PyTorch's zero-filled square U and V
        from .._creation import zeros
        from .linalg_decomp import svdvals

        m, n = input.shape[-2:]
        b = tuple(input.shape[:-2])
        z = {"dtype": input.dtype}
        return SVDOld(zeros(*b, m, m, **z), svdvals(input), zeros(*b, n, n, **z))
    u, s, vh = _svd(input, full_matrices=not some)
    return SVDOld(u, s, vh.mT)


@op(method="cross")
def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """Cross product along ``dim`` (default: the first dim of size 3, as torch.cross).

    Example:
        >>> import ember
        >>> ember.cross(ember.tensor([0.0, 1.0, 0.0]), ember.tensor([0.0, 0.0, 1.0])).tolist()
        [1.0, 0.0, 0.0]
    """
    if dim is None:
        from .shape import broadcast_tensors

        shape = broadcast_tensors(input, other)[0].shape
        dims = [i for i, s in enumerate(shape) if s == 3]
        if not dims:
            from ._core import ShapeError

            raise ShapeError(f"cross: no dimension of size 3 in input of shape {tuple(shape)}")
        dim = dims[0]
    return _cross(input, other, dim=dim)


@op()
def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """Vandermonde matrix of a 1-D ``x``: decreasing powers unless ``increasing``.

    Example:
        >>> import ember
        >>> ember.vander(ember.tensor([2, 3]), 3).tolist()
        [[4, 2, 1], [9, 3, 1]]
    """
    from ._core import ShapeError

    if x.ndim != 1:
        raise ShapeError(f"vander: x must be a one-dimensional tensor, got {x.ndim}-D")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise ShapeError(f"vander: N must be non-negative, got {n}")
    if n <= 1:
        from .._creation import ones

        return ones(x.shape[0], n, dtype=x.dtype) + x.unsqueeze(-1)[:, :n] * 0
    v = _vander(x, N=n)
    return v if increasing else v.flip(-1)


def _chol_solve_impl(b, f, *, upper):
    # LAPACK's potrs: only the triangle of the factor is read
    # (``upper`` names the triangle of ``f`` that is read; ``transpose`` solves with f^T)
    if upper:  # A = U^T U
        y = _trisolve_impl(f, b, upper=True, left=True, unit=False, transpose=True)
        return _trisolve_impl(f, y, upper=True, left=True, unit=False)
    y = _trisolve_impl(f, b, upper=False, left=True, unit=False)
    return _trisolve_impl(f, y, upper=False, left=True, unit=False, transpose=True)


def _chol_solve_abstract(b, f, *, upper):
    from .elementwise import broadcast_shapes

    batch = broadcast_shapes(b.shape[:-2], f.shape[:-2], op="cholesky_solve")
    return AbstractValue(batch + b.shape[-2:], b.dtype)


cholesky_solve_p = Primitive(
    "cholesky_solve",
    "opaque",
    impl=_chol_solve_impl,
    save=SAVE_BOTH,
    abstract=_chol_solve_abstract,
)


@defvjp(cholesky_solve_p)
def _chol_solve_vjp(g, x, b, f, *, upper):
    # PyTorch's rule: the derivative of solve(F F^T, B) (F^T F when upper) in the whole F
    gb = bind(cholesky_solve_p, (g, f), {"upper": upper})
    common = gb @ x.mT
    common = common + common.mT
    return gb, -(f @ common) if upper else -(common @ f)


def _chol_solve_sample(rng, shapes):
    b = rng.uniform(-1, 1, shapes[0])
    low = np.tril(rng.uniform(-0.5, 0.5, shapes[1])) + 2 * np.eye(shapes[1][-1])
    return [b, low]


@op(
    method="cholesky_solve",
    ref="cholesky_solve",
    arity=2,
    sample=_chol_solve_sample,
    shapes=(((3, 2), (3, 3)), ((2, 3, 1), (3, 3)), ((3, 4), (2, 3, 3))),
    cases=({}, {"upper": True}),
    rtol=1e-4,
    fd=False,  # PyTorch's gradient in the whole factor: test_linalg checks triangular FD
)
def cholesky_solve(input: Tensor, input2: Tensor, upper: bool = False) -> Tensor:
    """Solve ``A X = input`` given the Cholesky factor ``input2`` of ``A`` (lower, or upper
    with ``upper``), batched and broadcast.

    Example:
        >>> import ember
        >>> L = ember.tensor([[2.0, 0.0], [1.0, 1.0]])
        >>> ember.cholesky_solve(L @ L.mT @ ember.ones(2, 1), L).flatten().tolist()
        [1.0, 1.0]
    """
    check_square(input2, "cholesky_solve", "input2")
    check_matrix(input, "cholesky_solve", "input")
    check_same_dtype(input2, input, "cholesky_solve")
    if input.shape[-2] != input2.shape[-1]:
        from ._core import ShapeError

        raise ShapeError(
            f"cholesky_solve: incompatible shapes {tuple(input.shape)} and {tuple(input2.shape)}"
        )
    return bind(cholesky_solve_p, (input, input2), {"upper": bool(upper)})


def _chol_factor_sample(rng, shapes):
    return [np.tril(rng.uniform(-0.5, 0.5, s)) + 2 * np.eye(s[-1]) for s in shapes]


@op(
    method="cholesky_inverse",
    ref="cholesky_inverse",
    sample=_chol_factor_sample,
    shapes=(((3, 3),), ((2, 4, 4),)),
    rtol=1e-4,
    fd=False,  # PyTorch's gradient in the whole factor: test_linalg checks triangular FD
)
def cholesky_inverse(input: Tensor, upper: bool = False) -> Tensor:
    """The inverse of ``A`` from its Cholesky factor (``A = L L^T``, or ``U^T U`` with
    ``upper``).

    Example:
        >>> import ember
        >>> ember.cholesky_inverse(ember.tensor([[2.0, 0.0], [0.0, 4.0]])).tolist()
        [[0.25, 0.0], [0.0, 0.0625]]
    """
    check_square(input, "cholesky_inverse")
    from .._creation import eye

    n = input.shape[-1]
    rhs = eye(n, dtype=input.dtype).expand(*input.shape[:-2], n, n)
    return cholesky_solve(rhs, input, upper)


@op(method="triangular_solve")
def triangular_solve(
    input: Tensor,
    A: Tensor,
    upper: bool = True,
    transpose: bool = False,
    unitriangular: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(solution, cloned_coefficient)`` of ``A X = input`` (``A^T X = input`` with
    ``transpose``) for triangular ``A``: PyTorch's older form of ``solve_triangular``.

    Example:
        >>> import ember
        >>> A = ember.tensor([[2.0, 1.0], [0.0, 1.0]])
        >>> ember.triangular_solve(ember.tensor([[3.0], [1.0]]), A).solution.flatten().tolist()
        [1.0, 1.0]
    """
    coef = A.mT if transpose else A
    x = solve_triangular(coef, input, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolve(x, A.clone())


@op()
def lu_unpack(
    LU_data: Tensor,
    LU_pivots: Tensor,
    unpack_data: bool = True,
    unpack_pivots: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(P, L, U)`` from the packed ``(LU_data, LU_pivots)`` of ``ember.linalg.lu_factor``
    (empty tensors for the parts not unpacked).

    Example:
        >>> import ember
        >>> LU, piv = ember.linalg.lu_factor(ember.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> P, L, U = ember.lu_unpack(LU, piv)
        >>> (P @ L @ U).tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """
    from .._creation import zeros
    from .linalg_lu import _perm_matrix, _unpack

    check_matrix(LU_data, "lu_unpack", "LU_data")
    empty = zeros(0, dtype=LU_data.dtype)
    low, up = _unpack(LU_data) if unpack_data else (empty, empty)
    p = _perm_matrix(LU_pivots, LU_data.shape[-2], LU_data) if unpack_pivots else empty
    return LUTuple(p, low, up)


@op(method="lu_solve")
def lu_solve(input: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """Solve ``A X = input`` from ``lu_factor(A)`` (``ember.linalg.lu_solve`` with the
    right-hand side first).

    Example:
        >>> import ember
        >>> LU, piv = ember.linalg.lu_factor(ember.tensor([[2.0, 0.0], [0.0, 4.0]]))
        >>> ember.lu_solve(ember.tensor([[2.0], [4.0]]), LU, piv).flatten().tolist()
        [1.0, 1.0]
    """
    return _lu_solve(LU_data, LU_pivots, input)


@op()
def chain_matmul(*matrices: Tensor) -> Tensor:
    """The product of 2-D ``matrices`` in the cheapest order (``ember.linalg.multi_dot``).

    Example:
        >>> import ember
        >>> ember.chain_matmul(ember.eye(2), ember.ones(2, 3)).shape
        ember.Size([2, 3])
    """
    if len(matrices) == 1:
        return matrices[0].clone()
    return _multi_dot(matrices)


__all__ = module_ops(__name__)
