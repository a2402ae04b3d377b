"""Shared pieces of ``ember.linalg``: the error type, input checks, result tuples and the
batched LU kernel (NumPy exposes no LU, and ``lu_factor``/``inv`` errors need its pivots).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .._dtype import float32, float64
from ._core import ShapeError

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = [
    "LinAlgError",
    "batch_prefix",
    "check_float",
    "check_matrix",
    "check_same_dtype",
    "check_square",
    "lu_kernel",
    "pivots_to_perm",
]


class LinAlgError(ShapeError, RuntimeError):
    """A linear-algebra routine met an input it cannot factor (a singular matrix, one that is
    not positive-definite): PyTorch's ``torch.linalg.LinAlgError``.

    It is a ``RuntimeError`` as PyTorch's is, and a :class:`~ember.ops.ShapeError` so that
    ``bind`` passes it through unchanged.

    Example:
        >>> import ember
        >>> try:
        ...     ember.linalg.inv(ember.zeros(2, 2))
        ... except ember.linalg.LinAlgError as e:
        ...     print(str(e).split(":")[0])
        linalg.inv
    """


def _dtype_name(t) -> str:
    return getattr(t.dtype, "name", str(t.dtype))


def check_float(A: Tensor, fn: str, what: str = "input") -> None:
    """Raise TypeError unless ``A`` is a float32/float64 tensor (PyTorch's LAPACK dtypes)."""
    from .._tensor import Tensor

    if not isinstance(A, Tensor):
        raise TypeError(f"{fn}: expected a Tensor as {what}, got {type(A).__name__}")
    if A.dtype is float32 or A.dtype is float64:
        return
    if A.dtype.is_floating_point:
        raise TypeError(
            f"{fn}: low precision dtypes are not supported (got {_dtype_name(A)} {what}); "
            "convert to float32 or float64"
        )
    raise TypeError(
        f"{fn}: expected a floating point tensor as {what}, got {_dtype_name(A)} "
        "(complex matrices: only linalg.eig and linalg.eigvals take them)"
    )


def check_matrix(A: Tensor, fn: str, what: str = "A") -> None:
    """A float tensor of shape (*, m, n)."""
    check_float(A, fn, what)
    if A.ndim < 2:
        raise ShapeError(
            f"{fn}: {what} must have at least 2 dimensions, got shape {tuple(A.shape)}"
        )


def check_square(A: Tensor, fn: str, what: str = "A") -> None:
    """A float tensor of shape (*, n, n)."""
    check_matrix(A, fn, what)
    if A.shape[-1] != A.shape[-2]:
        raise ShapeError(
            f"{fn}: {what} must be batches of square matrices, but they are "
            f"{A.shape[-2]} by {A.shape[-1]} matrices"
        )


def check_same_dtype(A: Tensor, B: Tensor, fn: str) -> None:
    if A.dtype is not B.dtype:
        raise TypeError(
            f"{fn}: expected A and B to have the same dtype, but got A of dtype "
            f"{_dtype_name(A)} and B of dtype {_dtype_name(B)}"
        )


def batch_prefix(flat_index: int, batch_shape: tuple) -> str:
    """``"(Batch element i): "`` for batched inputs, as PyTorch words its errors."""
    return f"(Batch element {flat_index}): " if len(batch_shape) else ""


def lu_kernel(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LU with partial pivoting of (*, m, n): ``(LU, pivots, info)`` as LAPACK's getrf.

    ``pivots`` are 1-based (row ``i`` was swapped with row ``pivots[i] - 1``); ``info`` is
    0, or the 1-based index of the first exactly-zero pivot. The loop runs over columns and
    is vectorized over the batch.
    """
    *batch, m, n = a.shape
    k = min(m, n)
    nb = math.prod(batch)
    lu = np.array(a, copy=True).reshape(nb, m, n)
    piv = np.zeros((nb, k), np.int32)
    info = np.zeros(nb, np.int32)
    rows = np.arange(nb)
    with np.errstate(all="ignore"):
        for j in range(k):
            p = j + np.argmax(np.abs(lu[:, j:, j]), axis=1)
            piv[:, j] = p + 1
            top = lu[rows, j, :].copy()
            lu[rows, j, :] = lu[rows, p, :]
            lu[rows, p, :] = top
            d = lu[:, j, j]
            zero = d == 0
            info[(info == 0) & zero] = j + 1
            if j + 1 < m:
                col = lu[:, j + 1 :, j] / np.where(zero, 1, d)[:, None]
                lu[:, j + 1 :, j] = col
                lu[:, j + 1 :, j + 1 :] -= col[:, :, None] * lu[:, j, None, j + 1 :]
    return lu.reshape(a.shape), piv.reshape(*batch, k), info.reshape(batch)


def pivots_to_perm(piv: np.ndarray, m: int) -> np.ndarray:
    """Row permutations ``perm`` (with ``A[perm] = L @ U``) from 1-based LAPACK pivots."""
    batch = piv.shape[:-1]
    flat = piv.reshape(math.prod(batch), piv.shape[-1]).astype(np.int64) - 1
    perm = np.broadcast_to(np.arange(m), (flat.shape[0], m)).copy()
    rows = np.arange(flat.shape[0])
    for i in range(flat.shape[1]):
        p = flat[:, i]
        a, b = perm[rows, i].copy(), perm[rows, p].copy()
        perm[rows, i], perm[rows, p] = b, a
    return perm.reshape(*batch, m)


# -- result tuples (PyTorch's torch.return_types: positional and by name) -----------------
class InvEx(NamedTuple):
    inverse: Tensor
    info: Tensor


class SolveEx(NamedTuple):
    result: Tensor
    info: Tensor


class CholeskyEx(NamedTuple):
    L: Tensor
    info: Tensor


class Slogdet(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


class QR(NamedTuple):
    Q: Tensor
    R: Tensor


class SVD(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


class SVDOld(NamedTuple):
    U: Tensor
    S: Tensor
    V: Tensor


class Eigh(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


class Lstsq(NamedTuple):
    solution: Tensor
    residuals: Tensor
    rank: Tensor
    singular_values: Tensor


class LU(NamedTuple):
    P: Tensor
    L: Tensor
    U: Tensor


class LUFactor(NamedTuple):
    LU: Tensor
    pivots: Tensor


class LUFactorEx(NamedTuple):
    LU: Tensor
    pivots: Tensor
    info: Tensor


class TriangularSolve(NamedTuple):
    solution: Tensor
    cloned_coefficient: Tensor
