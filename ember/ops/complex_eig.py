"""The eigen-decomposition of general (non-symmetric) matrices, complex-valued:
``linalg.eig`` and ``linalg.eigvals`` (LAPACK's geev through NumPy, as PyTorch's CPU kernel).

Eigenvalues are returned in LAPACK's order and eigenvectors with unit norm; as in PyTorch,
each eigenvector is only defined up to a phase, so a loss must not depend on that phase for
its gradient to be meaningful. The VJP is PyTorch's (``linalg_eig_backward``):
``gA = V^-H (diag(gL) + (V^H gV - V^H V diag(re(V^H gV))) / conj(E)) V^H`` with
``E_ij = L_j - L_i``, its real part for a real ``A``; repeated eigenvalues make it undefined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from . import _core
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, ShapeError, bind
from ._samples import defsample
from .complex_base import cj, const

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["check_eig_input", "eig", "eigvals"]


def _cdtype(npd):
    return np.complex64 if npd in (np.float32, np.complex64) else np.complex128


def _eig_impl(a):
    w, v = np.linalg.eig(a)
    c = _cdtype(a.dtype)
    return w.astype(c, copy=False), v.astype(c, copy=False)


def _eig_abstract(a):
    c = a.dtype.to_complex()
    return AbstractValue(a.shape[:-1], c), AbstractValue(a.shape, c)


eig_p = Primitive(
    "linalg_eig_general",
    "opaque",
    impl=_eig_impl,
    abstract=_eig_abstract,
    n_out=2,
    save=SAVE_BOTH,
)


@defvjp(eig_p)
def _eig_vjp(g, out, a):
    from .complex_ops import real
    from .linalg_products import diagonal
    from .products import diag_embed

    gL, gV = g
    L, V = out
    Vh = cj(V).mT
    n = L.shape[-1]
    Lc = cj(L)
    E = Lc.unsqueeze(-2) - Lc.unsqueeze(-1)
    E = E + const(np.eye(n, dtype=E._data.dtype))  # (the diagonal is not divided)
    VhgV = Vh @ gV
    re_diag = real(diagonal(VhgV))
    gA = (VhgV - Vh @ (V * re_diag.unsqueeze(-2))) / E
    gA = gA + diag_embed(gL)
    gA = solve(Vh, gA @ Vh)
    return (gA if a._data.dtype.kind == "c" else real(gA),)


def _eig_sample():
    from .._creation import tensor

    a = tensor(np.random.default_rng(0).standard_normal((3, 3)), requires_grad=True)
    return [((a,), {})]


defsample(eig_p, _eig_sample)


# -- a solve for complex (and real) systems, with its VJP ------------------------------------
def _solve_abstract(A, B):
    if A.shape[-1] != A.shape[-2] or A.shape[-1] != B.shape[-2]:
        raise ShapeError(f"complex solve: incompatible shapes {A.shape} and {B.shape}")
    return AbstractValue(B.shape, A.dtype)


solve_p = Primitive(
    "complex_solve",
    "opaque",
    impl=lambda A, B: np.linalg.solve(A, B),
    abstract=_solve_abstract,
    save=SAVE_BOTH,
)


@defvjp(solve_p)
def _solve_vjp(g, out, A, B):
    gB = solve(cj(A).mT, g)
    return -(gB @ cj(out).mT), gB


def solve(A: Tensor, B: Tensor) -> Tensor:
    """``A^-1 B`` for square ``A`` (complex or real, same dtypes; no broadcasting of B's
    batch)."""
    return bind(solve_p, (A, B))


def _solve_sample():
    from .._creation import tensor

    rng = np.random.default_rng(1)
    A = tensor(rng.standard_normal((3, 3)) + 3 * np.eye(3), requires_grad=True)
    B = tensor(rng.standard_normal((3, 2)), requires_grad=True)
    return [((A, B), {})]


defsample(solve_p, _solve_sample)


# -- public ---------------------------------------------------------------------------------
def check_eig_input(A: Tensor, fn: str) -> Tensor:
    """``A`` as a float32/float64/complex64/complex128 stack of square matrices."""
    if not isinstance(A, _core._Tensor):
        raise TypeError(f"{fn}: expected a Tensor, got {type(A).__name__}")
    if A.dtype not in (dt.float32, dt.float64, dt.complex64, dt.complex128):
        raise TypeError(
            f"{fn}: expected a float32, float64, complex64 or complex128 tensor, got {A.dtype}"
        )
    if A._data.ndim < 2 or A._data.shape[-1] != A._data.shape[-2]:
        raise ShapeError(
            f"{fn}: A must be batches of square matrices, but they are "
            f"{'x'.join(map(str, A.shape[-2:]))} matrices (shape {tuple(A.shape)})"
        )
    return A


def eig(A: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues and unit-norm eigenvectors (columns) of square matrices, complex."""
    return bind(eig_p, (check_eig_input(A, "linalg.eig"),))


def eigvals(A: Tensor) -> Tensor:
    """Eigenvalues of square matrices, complex (gradients as through :func:`eig`)."""
    return eig(check_eig_input(A, "linalg.eigvals"))[0]
