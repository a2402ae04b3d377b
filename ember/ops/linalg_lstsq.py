"""``ember.linalg`` least squares and the pseudo-inverse: lstsq, pinv (SVD through NumPy's
LAPACK; VJPs in ember ops: the pseudo-inverse's constant-rank derivative)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .._dtype import int64
from ._ad import defvjp
from ._core import SAVE_BOTH, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import Lstsq, check_float, check_matrix, check_square
from ._records import OPS, module_ops, op
from ._samples import defsample

if TYPE_CHECKING:
    from .._tensor import Tensor


def _pinv_backward(gp: Tensor, p: Tensor, a: Tensor) -> Tensor:
    """The VJP of ``P = pinv(A)`` (constant rank), in ember ops."""
    m, n = a.shape[-2], a.shape[-1]
    from .._creation import eye

    im, in_ = eye(m, dtype=a.dtype), eye(n, dtype=a.dtype)
    pt = p.mT
    return -(pt @ gp @ pt) + (im - a @ p) @ gp.mT @ (p @ pt) + (pt @ p) @ gp.mT @ (in_ - p @ a)


def _pinv_impl(a, *, atol, rtol, hermitian):
    m, n = a.shape[-2:]
    if rtol is None:
        rtol = 0.0 if (atol is not None and atol > 0) else np.finfo(a.dtype).eps * max(m, n)
    atol = 0.0 if atol is None else atol
    if a.size == 0:
        return np.zeros(a.shape[:-2] + (n, m), a.dtype)
    if hermitian:
        w, v = np.linalg.eigh(a)
        s = np.abs(w)
        tol = np.maximum(atol, rtol * s.max(-1, keepdims=True))
        with np.errstate(all="ignore"):
            winv = np.where(s > tol, 1 / w, 0)
        return (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    tol = np.maximum(atol, rtol * s[..., :1])
    with np.errstate(all="ignore"):
        sinv = np.where(s > tol, 1 / s, 0)
    return np.swapaxes(vh, -1, -2) @ (sinv[..., :, None] * np.swapaxes(u, -1, -2))


pinv_p = Primitive(
    "linalg_pinv",
    "opaque",
    impl=lambda a, **kw: np.asarray(_pinv_impl(a, **kw), a.dtype),
    save=SAVE_BOTH,
    abstract=lambda a, **kw: AbstractValue(a.shape[:-2] + (a.shape[-1], a.shape[-2]), a.dtype),
)
defvjp(pinv_p, lambda g, p, a, **kw: (_pinv_backward(g, p, a),))


def _float_param(v, name: str, fn: str):
    if v is None:
        return None
    if hasattr(v, "numel"):
        if v.numel() != 1:
            raise ShapeError(f"{fn}: {name} must be a number or a one-element tensor")
        v = v.item()
    return float(v)


def _pinv_sample(rng, shapes):
    return [rng.uniform(-1, 1, s) + (np.eye(*s[-2:]) if len(s) >= 2 else 0) for s in shapes]


@op(
    ref="linalg.pinv",
    sample=_pinv_sample,
    shapes=(((3, 3),), ((2, 4, 3),), ((3, 5),), ((0, 2, 3),)),
    cases=({}, {"hermitian": False, "rtol": 0.1}),
    rtol=1e-4,
    name="linalg_pinv",
    export=False,
)
def pinv(
    input: Tensor,
    *,
    atol: float | Tensor | None = None,
    rtol: float | Tensor | None = None,
    hermitian: bool = False,
) -> Tensor:
    """Moore-Penrose pseudo-inverse (*, m, n) -> (*, n, m), through the SVD (the eigenvalue
    decomposition with ``hermitian=True``). Singular values at or below
    ``max(atol, rtol * sigma_max)`` are treated as 0 (default ``rtol = eps * max(m, n)``).

    Example:
        >>> import ember
        >>> ember.linalg.pinv(ember.tensor([[2.0, 0.0], [0.0, 0.0]])).tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    fn = "linalg.pinv"
    check_matrix(input, fn)
    params = {
        "atol": _float_param(atol, "atol", fn),
        "rtol": _float_param(rtol, "rtol", fn),
        "hermitian": bool(hermitian),
    }
    if hermitian:
        check_square(input, fn)
    return bind(pinv_p, (input,), params)


_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def _lstsq_impl(a, b, *, rcond, driver):
    m, n = a.shape[-2:]
    k = b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    nb = math.prod(batch)
    a = np.broadcast_to(a, batch + (m, n)).reshape(nb, m, n)
    b = np.broadcast_to(b, batch + (m, k)).reshape(nb, m, k)
    rc = np.finfo(a.dtype).eps * max(m, n) if rcond is None else rcond
    x = np.zeros((a.shape[0], n, k), a.dtype)
    rank = np.zeros(a.shape[0], np.int64)
    for i in range(a.shape[0]):
        if m and n:
            x[i], _, rank[i], _ = np.linalg.lstsq(a[i], b[i], rcond=rc)
    return x.reshape(batch + (n, k)), rank.reshape(batch)


def _lstsq_abstract(a, b, *, rcond, driver):
    from .elementwise import broadcast_shapes

    m, n = a.shape[-2:]
    if b.ndim < 2 or b.shape[-2] != m:
        raise ShapeError(f"linalg.lstsq: incompatible shapes {a.shape} and {b.shape}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="linalg.lstsq")
    return AbstractValue(batch + (n, b.shape[-1]), a.dtype), AbstractValue(batch, int64)


lstsq_p = Primitive(
    "linalg_lstsq", "opaque", impl=_lstsq_impl, n_out=2, save=SAVE_BOTH, abstract=_lstsq_abstract
)


@defvjp(lstsq_p)
def _lstsq_vjp(g, out, a, b, *, rcond, driver):
    p = pinv(a)
    gx = g[0]
    return _pinv_backward(gx @ b.mT, p, a), p.mT @ gx


def _lstsq_sv_impl(a, *, driver):
    """The singular values the SVD-based drivers report (not differentiable, as PyTorch's)."""
    if driver in ("gelsd", "gelss"):
        return np.asarray(np.linalg.svd(a, compute_uv=False), a.dtype)
    return np.zeros((0,), a.dtype)


def _lstsq_sv_abstract(a, *, driver):
    sv = a.shape[:-2] + (min(a.shape[-2:]),) if driver in ("gelsd", "gelss") else (0,)
    return AbstractValue(sv, a.dtype)


lstsq_sv_p = Primitive(
    "linalg_lstsq_sv", "opaque", impl=_lstsq_sv_impl, nondiff=True, abstract=_lstsq_sv_abstract
)


@op(name="linalg_lstsq", export=False)
def lstsq(
    input: Tensor, b: Tensor, rcond: float | None = None, *, driver: str | None = None
) -> Lstsq:
    """Least-squares solution of ``A X = B`` (the minimum-norm one when ``A`` is rank
    deficient): ``(solution, residuals, rank, singular_values)``, filled per ``driver`` as
    PyTorch's CPU drivers fill them (default ``'gelsy'``: residuals and singular values
    empty). Gradients flow through ``solution`` as those of ``pinv(A) @ B``.

    Example:
        >>> import ember
        >>> A = ember.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        >>> ember.linalg.lstsq(A, ember.tensor([[1.0], [2.0], [3.0]])).solution.tolist()
        [[1.0], [2.0]]
    """
    fn = "torch.linalg.lstsq"
    check_matrix(input, fn, "input")
    check_float(b, fn, "other")
    if input.dtype is not b.dtype:
        raise TypeError(
            f"{fn}: expected input and other to have the same dtype, but got {input.dtype} "
            f"and {b.dtype}"
        )
    driver = "gelsy" if driver is None else driver
    if driver not in _DRIVERS:
        raise ValueError(f"{fn}: parameter `driver` should be one of {_DRIVERS}, got {driver!r}")
    vector = b.ndim == input.ndim - 1
    if vector:
        b = b.unsqueeze(-1)
    if b.ndim < 2 or b.shape[-2] != input.shape[-2]:
        raise ShapeError(
            f"{fn}: input.size(-2) should match other.size(-2), got shapes {tuple(input.shape)} "
            f"and {tuple(b.shape)}"
        )
    x, rank = bind(
        lstsq_p, (input, b), {"rcond": None if rcond is None else float(rcond), "driver": driver}
    )
    m, n = input.shape[-2:]
    sv = bind(lstsq_sv_p, (input.detach().expand(*x.shape[:-2], m, n),), {"driver": driver})
    # the squared residuals when every matrix has full rank (a shape that depends on data,
    # as in PyTorch); differentiable through the solution
    if driver != "gelsy" and m > n and bool((rank == min(m, n)).all().item()):
        res = ((input @ x - b) ** 2).sum(-2)
    else:
        from .._creation import zeros

        res = zeros(0, dtype=input.dtype)
    if driver == "gels":
        from .._creation import zeros

        rank = zeros(0, dtype=int64)
    if vector:
        x = x.squeeze(-1)
        if res.numel():
            res = res.squeeze(-1)
    return Lstsq(x, res, rank, sv)


def _lstsq_samples():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    a = tensor(rng.uniform(-1, 1, (2, 4, 3)), requires_grad=True)
    b = tensor(rng.uniform(-1, 1, (2, 4, 2)), requires_grad=True)
    return [((a, b), {"rcond": None, "driver": d}) for d in ("gelsy", "gelsd")]


defsample(lstsq_p, _lstsq_samples)
defsample(
    lstsq_sv_p,
    lambda: [((_lstsq_samples()[0][0][0].detach(),), {"driver": d}) for d in ("gelsd", "gelsy")],
)


__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
