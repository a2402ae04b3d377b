"""``ember.linalg`` LU: lu_factor(_ex), lu, lu_solve. The factorization is our own batched
kernel (NumPy has no LU); the VJP is the standard one for ``A = P L U`` (square, wide and tall),
in ember ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._dtype import int32
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import (
    LU,
    LinAlgError,
    LUFactor,
    LUFactorEx,
    batch_prefix,
    check_matrix,
    check_same_dtype,
    check_square,
    lu_kernel,
    pivots_to_perm,
)
from ._records import OPS, module_ops, op
from ._samples import defsample
from .linalg_decomp import _eye, _t
from .linalg_solve import solve_triangular

if TYPE_CHECKING:
    from .._tensor import Tensor


def _lu_impl(a, *, check):
    lu, piv, info = lu_kernel(a)
    if check and info.any():
        j = int(np.flatnonzero(info.reshape(-1))[0])
        raise LinAlgError(
            f"torch.linalg.lu_factor_ex: {batch_prefix(j, info.shape)}U[{info.reshape(-1)[j]},"
            f"{info.reshape(-1)[j]}] is zero, singular U."
        )
    return lu, piv, info


lu_factor_p = Primitive(
    "linalg_lu_factor",
    "opaque",
    impl=_lu_impl,
    n_out=3,
    save=SAVE_BOTH,
    abstract=lambda a, check: (
        a,
        AbstractValue(a.shape[:-2] + (min(a.shape[-2:]),), int32),
        AbstractValue(a.shape[:-2], int32),
    ),
)


def _perm_impl(piv, *, m, dtype):
    perm = pivots_to_perm(piv, m)
    p = np.zeros(perm.shape + (m,), dtype)
    np.put_along_axis(p, perm[..., :, None], 1, axis=-1)  # P^T[i, perm[i]] = 1
    return np.swapaxes(p, -1, -2)


lu_perm_p = Primitive(
    "linalg_lu_perm",
    "opaque",
    impl=lambda piv, *, m, dtype: _perm_impl(piv, m=m, dtype=dtype.np),
    nondiff=True,
    abstract=lambda piv, *, m, dtype: AbstractValue(piv.shape[:-1] + (m, m), dtype),
)


def _perm_matrix(pivots: Tensor, m: int, like: Tensor) -> Tensor:
    return bind(lu_perm_p, (pivots,), {"m": m, "dtype": like.dtype})


def _unpack(lu: Tensor):
    m, n = lu.shape[-2:]
    k = min(m, n)
    low = lu[..., :, :k].tril(-1) + _eye(m, k, lu)
    up = lu[..., :k, :].triu()
    return low, up


def _lu_square_backward(gl, gu, low, up):
    x = (low.mT @ gl).tril(-1) + (gu @ up.mT).triu()
    x = solve_triangular(low.mT, x, upper=True, unitriangular=True)
    return solve_triangular(up.mT, x, upper=False, left=False)


@defvjp(lu_factor_p)
def _lu_factor_vjp(g, out, a, *, check):
    from .shape import cat

    lu, piv = out[0], out[1]
    glu = g[0]
    m, n = a.shape[-2:]
    k = min(m, n)
    low, up = _unpack(lu)
    p = _perm_matrix(piv, m, a)
    gl, gu = glu[..., :, :k].tril(-1), glu[..., :k, :].triu()
    if m == n:
        return (p @ _lu_square_backward(gl, gu, low, up),)
    if m < n:
        u1, u2, gu1, gu2 = up[..., :k], up[..., k:], gu[..., :k], gu[..., k:]
        linvt_gu2 = solve_triangular(low.mT, gu2, upper=True, unitriangular=True)
        ga1 = _lu_square_backward(gl - linvt_gu2 @ u2.mT, gu1, low, u1)
        return (p @ cat([ga1, linvt_gu2], -1),)
    l1, l2, gl1, gl2 = low[..., :k, :], low[..., k:, :], gl[..., :k, :], gl[..., k:, :]
    gl2_uinvt = solve_triangular(up.mT, gl2, upper=False, left=False)
    ga1 = _lu_square_backward(gl1, gu - l2.mT @ gl2_uinvt, l1, up)
    return (p @ cat([ga1, gl2_uinvt], -2),)


def _lu_factor(A: Tensor, pivot: bool, check: bool, fn: str):
    check_matrix(A, fn)
    if not pivot:
        raise NotImplementedError(f"{fn}: LU without pivoting is not implemented on the CPU")
    return bind(lu_factor_p, (A,), {"check": check})


@op(name="linalg_lu_factor", export=False)
def lu_factor(A: Tensor, *, pivot: bool = True) -> LUFactor:
    """LU factorization with partial pivoting, packed: ``(LU, pivots)`` as LAPACK's getrf
    (``pivots`` 1-based, int32). Raises LinAlgError when ``U`` has a zero on its diagonal.

    Example:
        >>> import ember
        >>> LU, piv = ember.linalg.lu_factor(ember.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> piv.tolist()
        [2, 2]
    """
    lu, piv, _ = _lu_factor(A, pivot, True, "linalg.lu_factor")
    return LUFactor(lu, piv)


@op(name="linalg_lu_factor_ex", export=False)
def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False) -> LUFactorEx:
    """``(LU, pivots, info)`` of :func:`lu_factor`; ``info`` is the 1-based index of the first
    zero on the diagonal of ``U`` (0 if none).

    Example:
        >>> import ember
        >>> ember.linalg.lu_factor_ex(ember.zeros(2, 2)).info.item()
        1
    """
    return LUFactorEx(*_lu_factor(A, pivot, bool(check_errors), "linalg.lu_factor_ex"))


@op(name="linalg_lu", export=False)
def lu(A: Tensor, *, pivot: bool = True) -> LU:
    """``(P, L, U)`` with ``A = P L U``: ``P`` a permutation matrix, ``L`` (m x k) unit lower
    triangular, ``U`` (k x n) upper triangular, ``k = min(m, n)``.

    Example:
        >>> import ember
        >>> P, L, U = ember.linalg.lu(ember.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> (P @ L @ U).tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """
    packed, piv, _ = _lu_factor(A, pivot, False, "linalg.lu")
    low, up = _unpack(packed)
    return LU(_perm_matrix(piv, A.shape[-2], A), low, up)


@op(name="linalg_lu_solve", export=False)
def lu_solve(
    LU: Tensor,
    pivots: Tensor,
    B: Tensor,
    *,
    left: bool = True,
    adjoint: bool = False,
) -> Tensor:
    """Solve ``A X = B`` from ``lu_factor(A)`` (``X A = B`` with ``left=False``; ``A^T``
    in place of ``A`` with ``adjoint=True``), batched and broadcast.

    Example:
        >>> import ember
        >>> A = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> X = ember.linalg.lu_solve(*ember.linalg.lu_factor(A), ember.tensor([[5.0], [11.0]]))
        >>> [round(v, 4) for v in X.flatten().tolist()]
        [1.0, 2.0]
    """
    fn = "linalg.lu_solve"
    check_square(LU, fn, "LU")
    check_matrix(B, fn, "B")
    check_same_dtype(LU, B, fn)
    n = LU.shape[-1]
    if pivots.dtype is not int32 or tuple(pivots.shape) != tuple(LU.shape[:-1]):
        raise ShapeError(
            f"{fn}: pivots must be an int32 tensor of shape {tuple(LU.shape[:-1])}, got "
            f"{pivots.dtype} {tuple(pivots.shape)}"
        )
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(
            f"{fn}: incompatible shapes of LU {tuple(LU.shape)} and B {tuple(B.shape)}"
        )
    low, up = _unpack(LU)
    p = _perm_matrix(pivots, n, LU)
    if left and not adjoint:  # X = U^-1 L^-1 P^T B
        y = solve_triangular(low, p.mT @ B, upper=False, unitriangular=True)
        return solve_triangular(up, y, upper=True)
    if left:  # A^T X = B: X = P L^-T U^-T B
        y = solve_triangular(up.mT, B, upper=False)
        return p @ solve_triangular(low.mT, y, upper=True, unitriangular=True)
    if not adjoint:  # X A = B: X = B U^-1 L^-1 P^T
        y = solve_triangular(up, B, upper=True, left=False)
        return solve_triangular(low, y, upper=False, left=False, unitriangular=True) @ p.mT
    # X A^T = B: X = B P L^-T U^-T
    y = solve_triangular(low.mT, B @ p, upper=True, left=False, unitriangular=True)
    return solve_triangular(up.mT, y, upper=False, left=False)


defsample(
    lu_factor_p, lambda: [((_t(s, spd=True),), {"check": False}) for s in ((3, 3), (4, 3), (3, 5))]
)
defsample(
    lu_perm_p,
    lambda: [((_t((2,), dtype=int32, values=[2, 2]),), {"m": 2, "dtype": _t((1,)).dtype})],
)

__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
