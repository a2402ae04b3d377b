"""``ember.linalg`` LDL: ldl_factor(_ex) and ldl_solve for real symmetric (possibly
indefinite) matrices, in LAPACK's compact ``sytrf`` format (lower triangle).

The factorization is Bunch-Kaufman diagonal pivoting (LAPACK's unblocked ``sytf2``): ``P A
P^T = L D L^T`` with ``L`` unit lower triangular and ``D`` block diagonal with 1x1 and 2x2
blocks. ``LD`` holds ``D`` on its diagonal (and first subdiagonal for 2x2 blocks) and the
multipliers of ``L`` below; ``pivots`` (int32, 1-based) are positive for a 1x1 block (row
``k`` was swapped with row ``pivots[k]``) and negative, twice, for a 2x2 block. Only the lower
triangle of ``A`` is read. As in PyTorch, neither function has a derivative: a backward pass
through their results raises.

Example:
    >>> import ember
    >>> A = ember.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> LD, pivots = ember.linalg.ldl_factor(A)
    >>> pivots.tolist()
    [-2, -2]
    >>> ember.linalg.ldl_solve(LD, pivots, ember.tensor([[2.0], [3.0]])).flatten().tolist()
    [3.0, 2.0]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .._dtype import int32, int64
from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import LinAlgError, batch_prefix, check_matrix, check_square
from ._records import OPS, module_ops, op
from ._samples import defsample

if TYPE_CHECKING:
    from .._tensor import Tensor

_ALPHA = (1.0 + math.sqrt(17.0)) / 8.0  # Bunch-Kaufman's growth bound


class LDLFactor(NamedTuple):
    LD: Tensor
    pivots: Tensor


class LDLFactorEx(NamedTuple):
    LD: Tensor
    pivots: Tensor
    info: Tensor


def _sytf2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """One n x n matrix: ``(LD, pivots, info)`` as LAPACK's ``?sytf2`` with ``uplo='L'``.

    Only lower-triangle entries are read and written; each step's update is vectorized over
    the trailing block."""
    A = np.tril(a).astype(a.dtype, copy=True)
    n = A.shape[0]
    piv = np.zeros(n, np.int32)
    info = 0
    k = 0
    with np.errstate(all="ignore"):
        while k < n:
            kstep = 1
            absakk = abs(A[k, k])
            if k < n - 1:
                imax = k + 1 + int(np.argmax(np.abs(A[k + 1 :, k])))
                colmax = abs(A[imax, k])
            else:
                imax, colmax = k, 0.0
            if max(absakk, colmax) == 0 or math.isnan(absakk):
                # a zero (or NaN) column: D(k) is exactly singular; nothing to eliminate
                if info == 0:
                    info = k + 1
                kp = k
            else:
                if absakk >= _ALPHA * colmax:
                    kp = k
                else:
                    # the largest off-diagonal magnitude in row/column imax
                    rowmax = float(np.max(np.abs(A[imax, k:imax])))
                    if imax < n - 1:
                        rowmax = max(rowmax, float(np.max(np.abs(A[imax + 1 :, imax]))))
                    if absakk >= _ALPHA * colmax * (colmax / rowmax):
                        kp = k
                    elif abs(A[imax, imax]) >= _ALPHA * rowmax:
                        kp = imax
                    else:
                        kp, kstep = imax, 2
                kk = k + kstep - 1
                if kp != kk:  # symmetric interchange of rows/columns kk and kp (lower part)
                    if kp < n - 1:
                        A[kp + 1 :, [kk, kp]] = A[kp + 1 :, [kp, kk]]
                    seg = A[kk + 1 : kp, kk].copy()
                    A[kk + 1 : kp, kk] = A[kp, kk + 1 : kp]
                    A[kp, kk + 1 : kp] = seg
                    A[kk, kk], A[kp, kp] = A[kp, kp], A[kk, kk]
                    if kstep == 2:
                        A[k + 1, k], A[kp, k] = A[kp, k], A[k + 1, k]
                if kstep == 1:
                    if k < n - 1:
                        d11 = 1.0 / A[k, k]
                        x = A[k + 1 :, k].copy()
                        A[k + 1 :, k + 1 :] -= np.tril(np.outer(x, x * d11))
                        A[k + 1 :, k] = x * d11
                elif k < n - 2:
                    d21 = A[k + 1, k]
                    d11 = A[k + 1, k + 1] / d21
                    d22 = A[k, k] / d21
                    t = 1.0 / (d11 * d22 - 1.0)
                    d21 = t / d21
                    c0, c1 = A[k + 2 :, k].copy(), A[k + 2 :, k + 1].copy()
                    wk = d21 * (d11 * c0 - c1)
                    wkp1 = d21 * (d22 * c1 - c0)
                    A[k + 2 :, k + 2 :] -= np.tril(np.outer(c0, wk) + np.outer(c1, wkp1))
                    A[k + 2 :, k] = wk
                    A[k + 2 :, k + 1] = wkp1
            if kstep == 1:
                piv[k] = kp + 1
            else:
                piv[k] = piv[k + 1] = -(kp + 1)
            k += kstep
    return A, piv, info


def _ldl_impl(a, *, check):
    *batch, n, _ = a.shape
    flat = a.reshape(math.prod(batch), n, n)
    ld = np.zeros_like(flat)
    piv = np.zeros((flat.shape[0], n), np.int32)
    info = np.zeros(flat.shape[0], np.int32)
    for i in range(flat.shape[0]):
        ld[i], piv[i], info[i] = _sytf2(flat[i])
    if check and info.any():
        j = int(np.flatnonzero(info)[0])
        raise LinAlgError(
            f"linalg.ldl_factor: {batch_prefix(j, tuple(batch))}the factorization could "
            f"not be completed: D[{info[j]}, {info[j]}] is exactly zero (a singular matrix)"
        )
    return ld.reshape(a.shape), piv.reshape(*batch, n), info.reshape(batch)


ldl_factor_p = Primitive(
    "linalg_ldl_factor",
    "opaque",
    impl=_ldl_impl,
    n_out=3,
    save=SAVE_NONE,
    abstract=lambda a, check: (
        a,
        AbstractValue(a.shape[:-1], int32),
        AbstractValue(a.shape[:-2], int32),
    ),
)


def _no_derivative(name: str):
    def rule(*_args, **_params):
        raise RuntimeError(
            f"the derivative for {name} is not implemented (as in PyTorch): detach its "
            "inputs, or use linalg.solve / linalg.cholesky, which have gradients"
        )

    return rule


defvjp(ldl_factor_p, _no_derivative("linalg.ldl_factor"))


def _sytrs(ld: np.ndarray, piv: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``A X = B`` for one system from its ``sytrf`` factors (LAPACK's ``?sytrs``)."""
    n = ld.shape[0]
    B = b.copy()
    p = piv.astype(np.int64)
    with np.errstate(all="ignore"):
        k = 0
        # (a negative pivot without its partner, which sytrf never writes, is read as a 1x1
        # block: the kernel stays in bounds whatever the pivot values)
        while k < n:  # L D Y = P B, forward
            if p[k] > 0 or k == n - 1:
                kp = abs(p[k]) - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                B[k + 1 :] -= np.outer(ld[k + 1 :, k], B[k])
                B[k] /= ld[k, k]
                k += 1
            else:
                kp = -p[k] - 1
                if kp != k + 1:
                    B[[k + 1, kp]] = B[[kp, k + 1]]
                B[k + 2 :] -= np.outer(ld[k + 2 :, k], B[k]) + np.outer(
                    ld[k + 2 :, k + 1], B[k + 1]
                )
                akm1k = ld[k + 1, k]
                akm1 = ld[k, k] / akm1k
                ak = ld[k + 1, k + 1] / akm1k
                denom = akm1 * ak - 1.0
                bkm1, bk = B[k] / akm1k, B[k + 1] / akm1k
                B[k] = (ak * bkm1 - bk) / denom
                B[k + 1] = (akm1 * bk - bkm1) / denom
                k += 2
        k = n - 1
        while k >= 0:  # L^T P X = Y, backward
            if p[k] > 0 or k == 0:
                B[k] -= ld[k + 1 :, k] @ B[k + 1 :]
                kp = abs(p[k]) - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                k -= 1
            else:
                B[k] -= ld[k + 1 :, k] @ B[k + 1 :]
                B[k - 1] -= ld[k + 1 :, k - 1] @ B[k + 1 :]
                kp = -p[k] - 1
                if kp != k:
                    B[[k, kp]] = B[[kp, k]]
                k -= 2
    return B


def _solve_impl(ld, piv, b):
    *batch, n, m = b.shape
    nb = math.prod(batch)
    ld_b = np.broadcast_to(ld, (*batch, n, n)).reshape(nb, n, n)
    piv_b = np.broadcast_to(piv, (*batch, n)).reshape(nb, n)
    b2 = b.reshape(nb, n, m)
    out = np.empty_like(b2)
    for i in range(b2.shape[0]):
        out[i] = _sytrs(ld_b[i], piv_b[i], b2[i])
    return out.reshape(b.shape)


ldl_solve_p = Primitive(
    "linalg_ldl_solve",
    "opaque",
    impl=_solve_impl,
    save=SAVE_NONE,
    abstract=lambda ld, piv, b: AbstractValue(b.shape, b.dtype),
)
defvjp(ldl_solve_p, _no_derivative("linalg.ldl_solve"))


def _factor(A: Tensor, hermitian: bool, check: bool, fn: str):
    check_square(A, fn, "A")
    if not isinstance(hermitian, bool):
        raise TypeError(f"{fn}: hermitian must be a bool, got {type(hermitian).__name__}")
    # for real matrices, hermitian and symmetric are the same thing
    return bind(ldl_factor_p, (A,), {"check": check})


@op(name="linalg_ldl_factor_ex", export=False)
def ldl_factor_ex(
    input: Tensor, *, hermitian: bool = False, check_errors: bool = False
) -> LDLFactorEx:
    """``(LD, pivots, info)`` of :func:`ldl_factor`; ``info`` is the 1-based index of the
    first exactly-zero diagonal block of ``D`` (0 if none), or an error with
    ``check_errors=True``.

    Example:
        >>> import ember
        >>> ember.linalg.ldl_factor_ex(ember.zeros(2, 2)).info.item()
        1
    """
    return LDLFactorEx(*_factor(input, hermitian, bool(check_errors), "linalg.ldl_factor_ex"))


@op(name="linalg_ldl_factor", export=False)
def ldl_factor(input: Tensor, *, hermitian: bool = False) -> LDLFactor:
    """Compact LDL^T factorization of the symmetric (possibly indefinite) matrices ``input``
    (``*, n, n``; lower triangle read): ``(LD, pivots)`` in LAPACK's ``sytrf`` format, for
    :func:`ldl_solve`. Raises :class:`LinAlgError` when ``D`` is exactly singular.

    Example:
        >>> import ember
        >>> LD, piv = ember.linalg.ldl_factor(ember.tensor([[4.0, 2.0], [2.0, 3.0]]))
        >>> LD.tolist(), piv.tolist()
        ([[4.0, 0.0], [0.5, 2.0]], [1, 2])
    """
    ld, piv, _ = _factor(input, hermitian, True, "linalg.ldl_factor")
    return LDLFactor(ld, piv)


@op(name="linalg_ldl_solve", export=False)
def ldl_solve(LD: Tensor, pivots: Tensor, B: Tensor, *, hermitian: bool = False) -> Tensor:
    """Solve ``A X = B`` from ``ldl_factor(A)``; ``B`` is ``(*, n, k)`` and the batch dims
    of ``LD``/``pivots`` and ``B`` broadcast.

    Example:
        >>> import ember
        >>> A = ember.tensor([[4.0, 2.0], [2.0, 3.0]])
        >>> LD, piv = ember.linalg.ldl_factor(A)
        >>> ember.linalg.ldl_solve(LD, piv, ember.tensor([[6.0], [5.0]])).flatten().tolist()
        [1.0, 1.0]
    """
    from .._tensor import Tensor
    from .elementwise import broadcast_shapes

    fn = "linalg.ldl_solve"
    check_square(LD, fn, "LD")
    check_matrix(B, fn, "B")
    if not isinstance(pivots, Tensor):
        raise TypeError(f"{fn}: pivots must be a Tensor, got {type(pivots).__name__}")
    if pivots.dtype is not int32 and pivots.dtype is not int64:
        raise TypeError(f"{fn}: pivots must be an int32 or int64 tensor, got {pivots.dtype}")
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise ShapeError(
            f"{fn}: expected LD.shape[:-1] and pivots.shape to be the same, but got LD "
            f"{tuple(LD.shape)} and pivots {tuple(pivots.shape)}"
        )
    if B.dtype is not LD.dtype:
        raise TypeError(
            f"{fn}: expected B and LD to have the same dtype, got B {B.dtype} and LD {LD.dtype}"
        )
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise ShapeError(
            f"{fn}: incompatible matrix sizes: each LD matrix is {n} by {n} but each B matrix "
            f"is {B.shape[-2]} by {B.shape[-1]}"
        )
    if not isinstance(hermitian, bool):
        raise TypeError(f"{fn}: hermitian must be a bool, got {type(hermitian).__name__}")
    if pivots.numel() and bool(((pivots.abs() > n) | (pivots == 0)).any()):
        raise ValueError(f"{fn}: pivots must be 1-based indices in [-{n}, -1] or [1, {n}]")
    try:
        batch = broadcast_shapes(tuple(LD.shape[:-2]), tuple(B.shape[:-2]))
    except (ValueError, RuntimeError) as e:
        raise ShapeError(
            f"{fn}: the batch dims of LD {tuple(LD.shape)} and B {tuple(B.shape)} do not broadcast"
        ) from e
    if tuple(B.shape[:-2]) != tuple(batch):
        B = B.expand(*batch, *B.shape[-2:])
    return bind(ldl_solve_p, (LD, pivots, B))


def _sym(n: int, seed: int):
    from .._creation import tensor

    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return tensor(a + a.T)


def _factor_samples():
    return [((_sym(4, 0),), {"check": False}), ((_sym(3, 1),), {"check": True})]


def _solve_samples():
    from .._creation import tensor

    A = _sym(4, 2)
    ld, piv, _ = bind(ldl_factor_p, (A,), {"check": False})
    b = tensor(np.random.default_rng(3).standard_normal((4, 2)))
    return [((ld, piv, b), {})]


defsample(ldl_factor_p, _factor_samples)
defsample(ldl_solve_p, _solve_samples)

__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
