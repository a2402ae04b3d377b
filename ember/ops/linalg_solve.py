"""``ember.linalg`` inverses and solvers: inv, solve, solve_triangular, det, slogdet, lstsq,
pinv (and the ``_ex`` variants). Each primitive has a LAPACK kernel (through NumPy) and a VJP
written in ember ops, so second derivatives work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._dtype import int32
from ._ad import ZERO_FILL_OFF, defvjp
from ._core import SAVE_BOTH, SAVE_OUTPUT, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import (
    InvEx,
    LinAlgError,
    Slogdet,
    SolveEx,
    batch_prefix,
    check_float,
    check_matrix,
    check_same_dtype,
    check_square,
    lu_kernel,
)
from ._records import OPS, module_ops, op

if TYPE_CHECKING:
    from .._tensor import Tensor


def _sq_abstract(fn):
    def rule(a, **_):
        if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
            raise ShapeError(f"{fn}: expected (*, n, n) matrices, got shape {a.shape}")
        return a

    return rule


def _singular_message(fn: str, info: np.ndarray) -> str:
    flat = info.reshape(-1)
    i = int(np.flatnonzero(flat)[0])
    return (
        f"{fn}: {batch_prefix(i, info.shape)}The diagonal element {int(flat[i])} is zero, "
        "the inversion could not be completed because the input matrix is singular."
    )


# -- inv / inv_ex ------------------------------------------------------------------------
def _inv_impl(a, *, check):
    try:
        inv = np.linalg.inv(a)
        return inv, np.zeros(a.shape[:-2], np.int32)
    except np.linalg.LinAlgError:
        _, _, info = lu_kernel(a)
    if check:
        raise LinAlgError(_singular_message("linalg.inv", info))
    out = np.full(a.shape, np.nan, a.dtype)
    ok = info == 0
    if ok.any():
        out[ok] = np.linalg.inv(a[ok])
    return out, info


inv_ex_p = Primitive(
    "linalg_inv_ex",
    "opaque",
    impl=_inv_impl,
    n_out=2,
    save=SAVE_OUTPUT,
    abstract=lambda a, check: (
        _sq_abstract("linalg.inv")(a),
        AbstractValue(a.shape[:-2], int32),
    ),
)


@defvjp(inv_ex_p)
def _inv_vjp(g, out, a, *, check):
    inv = out[0]
    return (-(inv.mT @ g[0] @ inv.mT),)


def _spd_sample(rng, shapes):
    """Well-conditioned square matrices (identity plus a small perturbation)."""
    out = []
    for s in shapes:
        a = rng.uniform(-0.4, 0.4, s)
        if len(s) >= 2 and s[-1] == s[-2]:
            a = a + 2.0 * np.eye(s[-1])
        out.append(a)
    return out


_SQUARE_SHAPES = (((3, 3),), ((2, 4, 4),), ((0, 2, 2),), ((0, 0),), ((1, 1),))


@op(
    ref="linalg.inv",
    sample=_spd_sample,
    shapes=_SQUARE_SHAPES,
    rtol=1e-4,
    name="linalg_inv",
    export=False,
)
def inv(A: Tensor) -> Tensor:
    """Inverse of each square matrix of ``A`` (*, n, n); raises LinAlgError when singular.

    Example:
        >>> import ember
        >>> ember.linalg.inv(ember.tensor([[2.0, 0.0], [0.0, 4.0]])).tolist()
        [[0.5, 0.0], [0.0, 0.25]]
    """
    check_square(A, "linalg.inv")
    return bind(inv_ex_p, (A,), {"check": True})[0]


@op(name="linalg_inv_ex", export=False)
def inv_ex(A: Tensor, *, check_errors: bool = False) -> InvEx:
    """``(inverse, info)``: ``info`` is 0, or the 1-based index of the zero pivot (the
    inverse of such a matrix is NaN); ``check_errors=True`` raises instead.

    Example:
        >>> import ember
        >>> ember.linalg.inv_ex(ember.zeros(2, 2)).info.item()
        1
    """
    check_square(A, "linalg.inv_ex")
    return InvEx(*bind(inv_ex_p, (A,), {"check": bool(check_errors)}))


# -- solve / solve_ex ---------------------------------------------------------------------
def _solve_impl(a, b, *, check):
    try:
        x = np.linalg.solve(a, b)
        return x, np.zeros(x.shape[:-2], np.int32)
    except np.linalg.LinAlgError:
        _, _, info = lu_kernel(a)
    if check:
        raise LinAlgError(_singular_message("linalg.solve", info).replace("inversion", "solve"))
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, shape + a.shape[-2:])
    b = np.broadcast_to(b, shape + b.shape[-2:])
    info = np.broadcast_to(info, shape).copy()
    out = np.full(shape + b.shape[-2:], np.nan, a.dtype)
    ok = info == 0
    if ok.any():
        out[ok] = np.linalg.solve(a[ok], b[ok])
    return out, info


def _solve_abstract(a, b, *, check):
    from .elementwise import broadcast_shapes

    if a.shape[-1] != a.shape[-2] or b.ndim < 2 or b.shape[-2] != a.shape[-1]:
        raise ShapeError(f"linalg.solve: incompatible shapes {a.shape} and {b.shape}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="linalg.solve")
    return AbstractValue(batch + b.shape[-2:], a.dtype), AbstractValue(batch, int32)


solve_ex_p = Primitive(
    "linalg_solve_ex", "opaque", impl=_solve_impl, n_out=2, save=SAVE_BOTH, abstract=_solve_abstract
)


@defvjp(solve_ex_p)
def _solve_vjp(g, out, a, b, *, check):
    x = out[0]
    gb = solve(a.mT, g[0])
    return -(gb @ x.mT), gb


def _prepare_solve(A: Tensor, B: Tensor, fn: str, left: bool):
    check_square(A, fn)
    check_float(B, fn, "B")
    check_same_dtype(A, B, fn)
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        B = B.unsqueeze(-1 if left else -2)
    if B.ndim < 2:
        raise ShapeError(f"{fn}: B must have at least 1 dimension, got a 0-d tensor")
    n = A.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(
            f"{fn}: incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({'x'.join(map(str, A.shape))} and "
            f"{'x'.join(map(str, B.shape))})"
        )
    return B, vector


def _solve_ex(A, B, left, check, fn):
    B, vector = _prepare_solve(A, B, fn, left)
    if left:
        x, info = bind(solve_ex_p, (A, B), {"check": check})
    else:
        x, info = bind(solve_ex_p, (A.mT, B.mT), {"check": check})
        x = x.mT
    if vector:
        x = x.squeeze(-1 if left else -2)
    return x, info


def _solve_sample(rng, shapes):
    a = _spd_sample(rng, shapes[:1])[0]
    return [a, rng.uniform(-2, 2, shapes[1])]


@op(
    ref="linalg.solve",
    arity=2,
    sample=_solve_sample,
    shapes=(((3, 3), (3, 2)), ((2, 3, 3), (3,)), ((2, 3, 3), (2, 3)), ((4, 1, 2, 2), (3, 2, 1))),
    rtol=1e-4,
    name="linalg_solve",
    export=False,
)
def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """Solve ``A X = B`` (or ``X A = B`` with ``left=False``), batched and broadcast; ``B``
    may be a vector (or a batch of vectors). Raises LinAlgError when ``A`` is singular.

    Example:
        >>> import ember
        >>> ember.linalg.solve(ember.tensor([[2.0, 0.0], [0.0, 4.0]]), ember.tensor([2.0, 2.0]))
        tensor([1.0000, 0.5000])
    """
    return _solve_ex(A, B, left, True, "linalg.solve")[0]


@op(name="linalg_solve_ex", export=False)
def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False) -> SolveEx:
    """``(result, info)`` of :func:`solve`; singular systems give NaN and ``info > 0``.

    Example:
        >>> import ember
        >>> ember.linalg.solve_ex(ember.eye(2), ember.ones(2)).info.item()
        0
    """
    return SolveEx(*_solve_ex(A, B, left, bool(check_errors), "linalg.solve_ex"))


# -- solve_triangular ----------------------------------------------------------------------
def _trisolve_kernel(a, b, upper, unit):
    """Forward/back substitution (vectorized over the batch and the columns of ``b``)."""
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, shape + a.shape[-2:])
    x = np.array(np.broadcast_to(b, shape + b.shape[-2:]), dtype=np.result_type(a, b))
    n = a.shape[-1]
    order = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(all="ignore"):
        for i in order:
            if upper:
                acc = np.einsum("...j,...jk->...k", a[..., i, i + 1 :], x[..., i + 1 :, :])
            else:
                acc = np.einsum("...j,...jk->...k", a[..., i, :i], x[..., :i, :])
            r = x[..., i, :] - acc
            x[..., i, :] = r if unit else r / a[..., i, i, None]
    return x


def _trisolve_impl(a, b, *, upper, left, unit, transpose=False):
    if transpose:  # solve with A^T: the other triangle of the transposed view
        a, upper = np.swapaxes(a, -1, -2), not upper
    if left:
        return _trisolve_kernel(a, b, upper, unit)
    return np.swapaxes(
        _trisolve_kernel(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2), not upper, unit), -1, -2
    )


def _trisolve_abstract(a, b, *, upper, left, unit):
    from .elementwise import broadcast_shapes

    n = a.shape[-1]
    if a.ndim < 2 or a.shape[-2] != n or b.ndim < 2 or (b.shape[-2] if left else b.shape[-1]) != n:
        raise ShapeError(f"linalg.solve_triangular: incompatible shapes {a.shape} and {b.shape}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="linalg.solve_triangular")
    return AbstractValue(batch + b.shape[-2:], a.dtype)


solve_triangular_p = Primitive(
    "linalg_solve_triangular",
    "opaque",
    impl=_trisolve_impl,
    save=SAVE_BOTH,
    abstract=_trisolve_abstract,
)


@defvjp(solve_triangular_p)
def _trisolve_vjp(g, x, a, b, *, upper, left, unit):
    gb = solve_triangular(a.mT, g, upper=not upper, left=left, unitriangular=unit)
    ga = -(gb @ x.mT) if left else -(x.mT @ gb)
    if upper:
        ga = ga.triu(1 if unit else 0)
    else:
        ga = ga.tril(-1 if unit else 0)
    return ga, gb


def _tri_sample(rng, shapes):
    a = rng.uniform(-0.5, 0.5, shapes[0]) + 2.0 * np.eye(shapes[0][-1])
    return [a, rng.uniform(-2, 2, shapes[1])]


@op(
    ref="linalg.solve_triangular",
    arity=2,
    sample=_tri_sample,
    shapes=(((3, 3), (3, 2)), ((2, 3, 3), (1, 3, 4)), ((0, 2, 2), (2, 1))),
    cases=(
        {"upper": True},
        {"upper": False},
        {"upper": False, "unitriangular": True},
    ),
    rtol=1e-4,
    name="linalg_solve_triangular",
    export=False,
)
def solve_triangular(
    input: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False
) -> Tensor:
    """Solve ``A X = B`` for triangular ``A`` (only its ``upper`` or lower triangle is read;
    ``unitriangular`` takes its diagonal as ones). A zero diagonal gives inf/NaN, as LAPACK.

    Example:
        >>> import ember
        >>> A = ember.tensor([[2.0, 1.0], [0.0, 4.0]])
        >>> ember.linalg.solve_triangular(A, ember.tensor([[3.0], [4.0]]), upper=True).tolist()
        [[1.0], [1.0]]
    """
    fn = "linalg.solve_triangular"
    check_square(input, fn)
    check_matrix(B, fn, "B")
    check_same_dtype(input, B, fn)
    n = input.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ShapeError(
            f"{fn}: incompatible shapes of input and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({'x'.join(map(str, input.shape))} and "
            f"{'x'.join(map(str, B.shape))})"
        )
    return bind(
        solve_triangular_p,
        (input, B),
        {"upper": bool(upper), "left": bool(left), "unit": bool(unitriangular)},
    )


# -- det / slogdet / logdet ------------------------------------------------------------------
def _det_impl(a):
    return np.asarray(np.linalg.det(a), a.dtype)


det_p = Primitive(
    "linalg_det", "opaque", impl=_det_impl, save=SAVE_BOTH,
    abstract=lambda a: AbstractValue(_sq_abstract("linalg.det")(a).shape[:-2], a.dtype),
)  # fmt: skip


def _adjugate_t(a: Tensor) -> Tensor:
    """The cofactor matrix ``det(A) A^{-T}``, through the SVD so that it also holds for a
    singular ``A``: ``U diag(prod_{j != i} s_j) V^T det(U) det(V)``."""
    from .linalg_decomp import svd

    u, s, vh = svd(a, full_matrices=False)
    n = s.shape[-1]
    if n == 0:
        return a
    # prod over j != i without dividing by s_i (which may be 0)
    others = s.unsqueeze(-2).expand(*s.shape[:-1], n, n)
    from .._creation import eye
    from .reduction import prod

    mask = eye(n, dtype=a.dtype)
    prods = prod(others * (1 - mask) + mask, -1)
    sign = det(u) * det(vh)
    return (u * (prods * sign.unsqueeze(-1)).unsqueeze(-2)) @ vh


@defvjp(det_p)
def _det_vjp(g, d, a):
    from .elementwise import where

    gd = (g * d).unsqueeze(-1).unsqueeze(-1)
    inv_, info = inv_ex(a)
    regular = gd * inv_.mT
    if bool((info._data != 0).any()):  # singular members: the cofactors through the SVD
        singular = g.unsqueeze(-1).unsqueeze(-1) * _adjugate_t(a)
        return (where((info == 0).unsqueeze(-1).unsqueeze(-1), regular, singular),)
    return (regular,)


@op(
    ref="linalg.det",
    sample=_spd_sample,
    shapes=_SQUARE_SHAPES,
    rtol=1e-4,
    name="linalg_det",
    export=False,
)
def det(A: Tensor) -> Tensor:
    """Determinant of each square matrix of ``A`` (*, n, n); a 0x0 matrix has determinant 1.

    Example:
        >>> import ember
        >>> ember.linalg.det(ember.tensor([[2.0, 1.0], [1.0, 3.0]])).item()
        5.0
    """
    check_square(A, "linalg.det")
    return bind(det_p, (A,))


def _slogdet_impl(a):
    s, l = np.linalg.slogdet(a)
    return np.asarray(s, a.dtype), np.asarray(l, a.dtype)


slogdet_p = Primitive(
    "linalg_slogdet",
    "opaque",
    impl=_slogdet_impl,
    n_out=2,
    save=SAVE_BOTH,
    abstract=lambda a: (
        AbstractValue(_sq_abstract("linalg.slogdet")(a).shape[:-2], a.dtype),
        AbstractValue(a.shape[:-2], a.dtype),
    ),
)
ZERO_FILL_OFF.add(slogdet_p)


@defvjp(slogdet_p)
def _slogdet_vjp(g, out, a):
    gl = g[1]
    if gl is None:  # the sign is piecewise constant
        return (None,)
    return (gl.unsqueeze(-1).unsqueeze(-1) * inv(a).mT,)


@op(name="linalg_slogdet", export=False)
def slogdet(A: Tensor) -> Slogdet:
    """``(sign, logabsdet)`` of each square matrix: ``det = sign * exp(logabsdet)``, without
    overflow. A singular matrix gives ``(0, -inf)``.

    Example:
        >>> import ember
        >>> s, l = ember.linalg.slogdet(ember.tensor([[-2.0, 0.0], [0.0, 3.0]]))
        >>> s.item(), round(l.item(), 4)
        (-1.0, 1.7918)
    """
    check_square(A, "linalg.slogdet")
    return Slogdet(*bind(slogdet_p, (A,)))


def _logdet(A: Tensor, fn: str) -> Tensor:
    from .elementwise import where

    check_square(A, fn)
    sign, logabs = bind(slogdet_p, (A,))
    return where(sign < 0, float("nan"), logabs)


__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
