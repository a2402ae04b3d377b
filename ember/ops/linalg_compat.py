"""PyTorch's top-level linear-algebra functions and Tensor methods (``torch.det``,
``Tensor.inverse``, ``torch.svd`` ...), as thin wrappers over ``ember.linalg``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._linalg_util import QR, SVDOld
from ._records import module_ops, op
from .linalg_decomp import cholesky as _cholesky
from .linalg_decomp import qr as _qr
from .linalg_decomp import svd as _svd
from .linalg_lstsq import pinv as _pinv
from .linalg_products import _expm_sample, _power_sample
from .linalg_products import cross as _cross
from .linalg_products import matrix_exp as _matrix_exp
from .linalg_products import matrix_power as _matrix_power
from .linalg_products import vander as _vander
from .linalg_solve import _SQUARE_SHAPES, _logdet, _spd_sample
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


__all__ = module_ops(__name__)
