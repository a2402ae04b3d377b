"""``ember.linalg`` norms and products: vector_norm (a primitive with PyTorch's subgradients),
matrix_norm, norm, cond, matrix_rank, and the compositions multi_dot, vecdot, cross, vander,
diagonal, matrix_power, tensorinv, tensorsolve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .._dtype import DType, int64
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import check_float, check_matrix, check_square
from ._records import OPS, module_ops, op

if TYPE_CHECKING:
    from .._tensor import Tensor

INF = math.inf


def _dims(dim, ndim: int, fn: str) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    ds = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in ds:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"{fn}: dimension out of range (expected to be in range of "
                f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})"
            )
        out.append(d % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ShapeError(f"{fn}: dim {dim} appears multiple times in the list of dims")
    return tuple(out) if ndim else ()


# -- vector_norm -------------------------------------------------------------------------------
def _vnorm_impl(x, *, ord, dims, keepdim):
    ax = dims if x.ndim else None
    if x.size == 0 and (ord < 0 or ord == INF) and (not dims or any(x.shape[d] == 0 for d in dims)):
        raise ShapeError(
            f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the "
            "operation does not have an identity"
        )
    a = np.abs(x)
    with np.errstate(all="ignore"):
        if ord == 2:
            r = np.sqrt(np.sum(a * a, axis=ax, keepdims=keepdim))
        elif ord == INF:
            r = np.max(a, axis=ax, keepdims=keepdim)
        elif ord == -INF:
            r = np.min(a, axis=ax, keepdims=keepdim)
        elif ord == 0:
            r = np.sum(a != 0, axis=ax, keepdims=keepdim)
        elif ord == 1:
            r = np.sum(a, axis=ax, keepdims=keepdim)
        else:
            r = np.sum(a**ord, axis=ax, keepdims=keepdim) ** (1.0 / ord)
    return np.asarray(r, x.dtype)


def _vnorm_abstract(x, *, ord, dims, keepdim):
    if keepdim:
        shape = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
    else:
        shape = tuple(s for i, s in enumerate(x.shape) if i not in dims)
    return AbstractValue(shape, x.dtype)


vector_norm_p = Primitive(
    "linalg_vector_norm",
    "reduction",
    impl=_vnorm_impl,
    save=SAVE_BOTH,
    abstract=_vnorm_abstract,
)


@defvjp(vector_norm_p)
def _vnorm_vjp(g, norm, x, *, ord, dims, keepdim):
    # PyTorch's subgradients: 0 where the norm is 0; ties of the inf-norms share evenly
    from .elementwise import where
    from .reduction import sum as rsum

    if not keepdim and x.ndim:
        kshape = tuple(1 if i in dims else s for i, s in enumerate(x.shape))
        g, norm = g.reshape(kshape), norm.reshape(kshape)
    if ord == 0:
        return (x * 0.0 * g,)
    if ord == 1:
        return (x.sign() * g,)
    if ord == 2:
        return (g * where(norm == 0, 0.0, x / where(norm == 0, 1.0, norm)),)
    a = x.abs()
    if ord in (INF, -INF):
        mask = ((a == norm) | a.isnan()).to(x.dtype)
        return (x.sign() * ((g / rsum(mask, dims, True)) * mask),)
    if ord < 1:
        scaled = x.sign() * where(x == 0, 0.0, where(x == 0, 1.0, a) ** (ord - 1))
        return (scaled * g * norm ** (1 - ord),)
    scaled = x.sign() * a ** (ord - 1) if ord < 2 else x * a ** (ord - 2)
    scale = where(norm == 0, 0.0, g / where(norm == 0, 1.0, norm) ** (ord - 1))
    return (scaled * scale,)


def _norm_dtype(x: Tensor, dtype: DType | None, fn: str, complex_ok: bool = False) -> Tensor:
    if complex_ok and getattr(x, "dtype", None) is not None and x.dtype.is_complex:
        # norms built on |x| take complex tensors (a complex dtype= casts first, as PyTorch)
        if dtype is not None:
            if not dtype.is_complex:
                raise TypeError(
                    f"{fn}: dtype should be complex for complex inputs, but got {dtype.name}"
                )
            x = x.to(dtype)
        return x
    check_float(x, fn)
    if dtype is not None:
        if not dtype.is_floating_point:
            raise TypeError(f"{fn}: dtype should be a floating point type, got {dtype}")
        x = x.to(dtype)
    return x


@op(
    ref="linalg.vector_norm",
    shapes=(((2, 3),), ((3, 4),)),
    cases=(
        {},
        {"ord": 1, "dim": 1},
        {"ord": INF},
        {"ord": -INF, "dim": -1},
        {"ord": 3.0, "keepdim": True},
        {"ord": 0.5},
        {"ord": 0},
    ),
    rtol=1e-4,
    name="linalg_vector_norm",
    export=False,
)
def vector_norm(
    x: Tensor,
    ord: float = 2,
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    *,
    dtype: DType | None = None,
) -> Tensor:
    """Vector ``ord``-norm over ``dim`` (all elements by default): ``inf``/``-inf`` are the
    largest/smallest magnitude, 0 counts non-zeros. Gradients follow PyTorch at kinks (0 at
    a zero norm, ties of the inf-norms shared evenly).

    Example:
        >>> import ember
        >>> ember.linalg.vector_norm(ember.tensor([3.0, -4.0])).item()
        5.0
    """
    fn = "linalg.vector_norm"
    x = _norm_dtype(x, dtype, fn, complex_ok=True)
    if x.dtype.is_complex:  # the norm of |x|; abs's VJP gives PyTorch's complex gradient
        x = x.abs()
    if isinstance(ord, (str, bool)):
        raise TypeError(f"{fn}: ord must be a number, got {ord!r}")
    if dim is not None and not isinstance(dim, int) and len(tuple(dim)) == 0:
        dim = None  # an empty dim list reduces every dim, as in PyTorch
    dims = _dims(dim, x.ndim, fn)
    return bind(vector_norm_p, (x,), {"ord": float(ord), "dims": dims, "keepdim": bool(keepdim)})


# -- matrix_norm / norm / cond / matrix_rank ---------------------------------------------------
_MATRIX_ORDS = ("fro", "nuc", INF, -INF, 1, -1, 2, -2)


def _svdvals_last(A: Tensor, d0: int, d1: int) -> Tensor:
    from .linalg_decomp import svdvals
    from .shape import movedim

    return svdvals(movedim(A, (d0, d1), (-2, -1)))


def _restore(r: Tensor, d0: int, d1: int, keepdim: bool) -> Tensor:
    if keepdim:
        for d in sorted((d0, d1)):
            r = r.unsqueeze(d)
    return r


@op(
    ref="linalg.matrix_norm",
    shapes=(((3, 3),), ((2, 3, 4),)),
    cases=(
        {},
        {"ord": "nuc"},
        {"ord": 2},
        {"ord": -2},
        {"ord": 1, "keepdim": True},
        {"ord": -INF, "dim": (0, -1)},
    ),
    rtol=1e-4,
    name="linalg_matrix_norm",
    export=False,
)
def matrix_norm(
    input: Tensor,
    ord: str | float = "fro",
    dim: tuple[int, int] = (-2, -1),
    keepdim: bool = False,
    *,
    dtype: DType | None = None,
) -> Tensor:
    """Matrix norm over the two dims ``dim``: ``'fro'``, ``'nuc'`` (sum of singular values),
    ``2``/``-2`` (largest/smallest singular value), ``1``/``-1`` (max/min column abs-sum),
    ``inf``/``-inf`` (max/min row abs-sum).

    Example:
        >>> import ember
        >>> ember.linalg.matrix_norm(ember.tensor([[1.0, -2.0], [3.0, 4.0]]), 1).item()
        6.0
    """
    fn = "linalg.matrix_norm"
    # (the singular-value norms of complex matrices would need a complex SVD)
    input = _norm_dtype(input, dtype, fn, complex_ok=ord not in ("nuc", 2, -2))
    if input.ndim < 2:
        raise ShapeError(
            f"{fn}: the input tensor input must have at least 2 dimensions, got {input.ndim}"
        )
    dims = _dims(dim, input.ndim, fn)
    if len(dims) != 2:
        raise ShapeError(f"{fn}: dim must be a 2-tuple, got {dim}")
    if ord not in _MATRIX_ORDS:
        raise ValueError(f"{fn}: order {ord!r} not supported; expected one of {_MATRIX_ORDS}")
    d0, d1 = dims
    if ord == "fro":
        return vector_norm(input, 2, dims, keepdim)
    if ord in ("nuc", 2, -2):
        s = _svdvals_last(input, d0, d1)
        if ord == "nuc":
            return _restore(s.sum(-1), d0, d1, keepdim)
        if ord == -2 and s.shape[-1] == 0:
            raise ShapeError(f"{fn}: cannot compute the -2 norm of an empty matrix")
        r = _amax_or_zero(s, -1) if ord == 2 else s.amin(-1)
        return _restore(r, d0, d1, keepdim)
    inner, outer = (d0, d1) if ord in (1, -1) else (d1, d0)
    sums = input.abs().sum(inner, keepdim=True)
    if ord in (1, INF):
        r = _amax_or_zero(sums, outer, keepdim=True)
    else:
        if sums.shape[outer] == 0:
            raise ShapeError(f"{fn}: cannot compute the {ord} norm: dim {outer} is empty")
        r = sums.amin(outer, keepdim=True)
    return r if keepdim else r.squeeze(max(d0, d1)).squeeze(min(d0, d1))


def _amax_or_zero(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    # a norm is non-negative, so the largest of no values is 0 (PyTorch's result)
    if t.shape[dim] == 0:
        return t.sum(dim, keepdim=keepdim)
    return t.amax(dim, keepdim=keepdim)


@op(
    ref="linalg.norm",
    shapes=(((2, 3),), ((2, 3, 2),)),
    cases=({}, {"dim": 1}),
    rtol=1e-4,
    name="linalg_norm",
    export=False,
)
def norm(
    input: Tensor,
    ord: str | float | None = None,
    dim: int | Sequence[int] | None = None,
    keepdim: bool = False,
    *,
    dtype: DType | None = None,
) -> Tensor:
    """A vector norm (``dim`` an int, or a 1-D input) or a matrix norm (``dim`` a 2-tuple,
    or a 2-D input with ``ord`` given); with neither ``ord`` nor ``dim``, the 2-norm of the
    flattened input.

    Example:
        >>> import ember
        >>> ember.linalg.norm(ember.tensor([[3.0, 0.0], [0.0, 4.0]])).item()
        5.0
    """
    fn = "linalg.norm"
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None and len(dim) == 2:
        return matrix_norm(input, "fro" if ord is None else ord, tuple(dim), keepdim, dtype=dtype)
    if dim is None and ord is not None:
        if input.ndim == 2:
            return matrix_norm(input, ord, (-2, -1), keepdim, dtype=dtype)
        if input.ndim != 1:
            raise ShapeError(
                f"{fn}: if dim=None and ord is given, the input must be 1-D or 2-D, got "
                f"{input.ndim}-D"
            )
    if isinstance(ord, str):
        if ord not in ("fro", "nuc"):
            raise ValueError(
                f"{fn}: order {ord!r} not supported; expected a number, 'fro' or 'nuc'"
            )
        raise ValueError(  # noqa: TRY004  (a bad value of ord: PyTorch raises here too)
            f"{fn}: ord={ord!r} is a matrix norm; it needs a 2-D input or dim"
        )
    if dim is not None and len(dim) != 1:
        raise ShapeError(f"{fn}: dim must be an int or a tuple of 1 or 2 ints, got {dim}")
    return vector_norm(input, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def _cond_sample(rng, shapes):
    return [rng.uniform(-0.4, 0.4, s) + 2 * np.eye(s[-1]) for s in shapes]


@op(
    ref="linalg.cond",
    sample=_cond_sample,
    shapes=(((3, 3),), ((2, 4, 4),)),
    cases=({}, {"p": -2}),  # PyTorch's own backward fails for p='fro'/1 (test_linalg: FD)
    rtol=1e-4,
    name="linalg_cond",
    export=False,
)
def cond(input: Tensor, p: str | float | None = None) -> Tensor:
    """Condition number ``||A||_p ||A^{-1}||_p`` (ratio of extreme singular values for
    ``p`` None/2/-2); a singular matrix gives inf for the other norms.

    Example:
        >>> import ember
        >>> ember.linalg.cond(ember.tensor([[4.0, 0.0], [0.0, 0.5]])).item()
        8.0
    """
    fn = "linalg.cond"
    check_matrix(input, fn)
    if p is None or p in (2, -2):
        s = _svdvals_last(input, input.ndim - 2, input.ndim - 1)
        if input.numel() == 0:
            return s.sum(-1)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    if p not in _MATRIX_ORDS:
        raise ValueError(f"{fn}: order {p!r} not supported")
    check_square(input, fn)
    if p == "nuc":  # through the singular values, as PyTorch (0 * inf = nan for A = 0)
        from .elementwise import where

        s = _svdvals_last(input, input.ndim - 2, input.ndim - 1)
        total = s.sum(-1)
        zero = total == 0
        return where(zero, float("nan"), where(zero, 1.0, total) * (1 / s).sum(-1))
    from .elementwise import where
    from .linalg_solve import inv_ex

    inverse, info = inv_ex(input)
    r = matrix_norm(input, p) * matrix_norm(
        where(info.reshape(*info.shape, 1, 1) > 0, 0.0, inverse), p
    )
    return where(info > 0, INF, r)


@op(name="linalg_matrix_rank", export=False)
def matrix_rank(
    input: Tensor,
    *,
    atol: float | Tensor | None = None,
    rtol: float | Tensor | None = None,
    hermitian: bool = False,
) -> Tensor:
    """Numerical rank: the number of singular values above ``max(atol, rtol * sigma_max)``
    (default ``rtol = eps * max(m, n)``, or 0 when only ``atol`` is given). int64.

    Example:
        >>> import ember
        >>> ember.linalg.matrix_rank(ember.tensor([[1.0, 2.0], [2.0, 4.0]])).item()
        1
    """
    fn = "linalg.matrix_rank"
    check_matrix(input, fn)
    from .linalg_decomp import eigvalsh, svdvals
    from .linalg_lstsq import _float_param

    atol_, rtol_ = _float_param(atol, "atol", fn), _float_param(rtol, "rtol", fn)
    m, n = input.shape[-2:]
    if rtol_ is None:
        rtol_ = (
            0.0
            if (atol_ is not None and atol_ > 0)
            else float(np.finfo(input.dtype.np).eps) * max(m, n)
        )
    input = input.detach()
    s = eigvalsh(input).abs() if hermitian else svdvals(input)
    if s.shape[-1] == 0:
        return s.sum(-1).to(int64)
    top = s.amax(-1, keepdim=True)
    from .elementwise import maximum

    tol = maximum(top * rtol_, atol_ or 0.0)
    return (s > tol).sum(-1).to(int64)


__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
