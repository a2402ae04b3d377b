"""``ember.linalg`` decompositions: cholesky, qr, svd, eigh, lu (and what is built on them:
svdvals, eigvalsh, lu_solve, householder_product). Kernels are LAPACK through NumPy (LU is
our own, NumPy has none); VJPs are the standard formulas, written in ember ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._dtype import int32
from ._ad import ZERO_FILL_OFF, defvjp
from ._core import SAVE_BOTH, SAVE_OUTPUT, AbstractValue, Primitive, ShapeError, bind
from ._linalg_util import (
    QR,
    SVD,
    CholeskyEx,
    Eigh,
    LinAlgError,
    batch_prefix,
    check_float,
    check_matrix,
    check_same_dtype,
    check_square,
)
from ._records import OPS, module_ops, op
from ._samples import defsample
from .linalg_solve import solve_triangular

if TYPE_CHECKING:
    from .._tensor import Tensor


def _eye(n: int, m: int | None, like: Tensor) -> Tensor:
    from .._creation import eye

    return eye(n, m, dtype=like.dtype)


def _diag(v: Tensor) -> Tensor:
    """(*, n) -> (*, n, n) diagonal matrices."""
    n = v.shape[-1]
    return v.unsqueeze(-1) * _eye(n, None, v)


# -- cholesky --------------------------------------------------------------------------------
def _symmetric_from(a, upper):
    t = np.triu(a) if upper else np.tril(a)
    return t + np.swapaxes(np.triu(a, 1) if upper else np.tril(a, -1), -1, -2)


def _first_bad_minor(s):
    lo, hi = 0, s.shape[-1]  # the leading minor of order lo is PD, of order hi is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            np.linalg.cholesky(s[:mid, :mid])
            lo = mid
        except np.linalg.LinAlgError:
            hi = mid
    return hi


def _cholesky_impl(a, *, upper, check):
    s = _symmetric_from(a, upper)
    batch = a.shape[:-2]
    try:
        low = np.linalg.cholesky(s)
        info = np.zeros(batch, np.int32)
    except np.linalg.LinAlgError:
        n = a.shape[-1]
        flat = s.reshape(-1, n, n)
        low = np.zeros_like(flat)
        info = np.zeros(flat.shape[0], np.int32)
        for i, m in enumerate(flat):
            try:
                low[i] = np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                k = _first_bad_minor(m)
                info[i] = k
                if k > 1:
                    low[i, : k - 1, : k - 1] = np.linalg.cholesky(m[: k - 1, : k - 1])
        if check:
            j = int(np.flatnonzero(info)[0])
            raise LinAlgError(  # noqa: B904  (LAPACK's error has nothing to add)
                f"linalg.cholesky: {batch_prefix(j, batch)}The factorization could not be "
                "completed because the input is not positive-definite (the leading minor of "
                f"order {info[j]} is not positive-definite)."
            )
        low, info = low.reshape(a.shape), info.reshape(batch)
    return (np.swapaxes(low, -1, -2) if upper else low), info


cholesky_ex_p = Primitive(
    "linalg_cholesky_ex",
    "opaque",
    impl=_cholesky_impl,
    n_out=2,
    save=SAVE_OUTPUT,
    abstract=lambda a, **kw: (a, AbstractValue(a.shape[:-2], int32)),
)


def _cholesky_backward(gl: Tensor, low: Tensor) -> Tensor:
    x = low.mT @ gl
    phi = x.tril() - 0.5 * _diag(x.diagonal(0, -2, -1))
    ga = solve_triangular(low.mT, phi, upper=True)
    ga = solve_triangular(low, ga, upper=False, left=False)
    return 0.5 * (ga + ga.mT)


@defvjp(cholesky_ex_p)
def _cholesky_vjp(g, out, a, *, upper, check):
    f, gf = out[0], g[0]
    if upper:
        return (_cholesky_backward(gf.mT, f.mT),)
    return (_cholesky_backward(gf, f),)


@op(name="linalg_cholesky", export=False)
def cholesky(input: Tensor, *, upper: bool = False) -> Tensor:
    """Cholesky factor ``L`` (``A = L L^T``) of symmetric positive-definite matrices, reading
    the lower triangle of ``A`` (the upper one, and returning ``U = L^T``, with ``upper``).
    Raises LinAlgError when a matrix is not positive-definite.

    Example:
        >>> import ember
        >>> ember.linalg.cholesky(ember.tensor([[4.0, 2.0], [2.0, 2.0]])).tolist()
        [[2.0, 0.0], [1.0, 1.0]]
    """
    check_square(input, "linalg.cholesky")
    return bind(cholesky_ex_p, (input,), {"upper": bool(upper), "check": True})[0]


@op(name="linalg_cholesky_ex", export=False)
def cholesky_ex(input: Tensor, *, upper: bool = False, check_errors: bool = False) -> CholeskyEx:
    """``(L, info)``: ``info`` is 0, or the order of the first leading minor that is not
    positive-definite (``L`` then holds the factor of the minor before it, zeros elsewhere).

    Example:
        >>> import ember
        >>> ember.linalg.cholesky_ex(-ember.eye(2)).info.item()
        1
    """
    check_square(input, "linalg.cholesky_ex")
    return CholeskyEx(
        *bind(cholesky_ex_p, (input,), {"upper": bool(upper), "check": bool(check_errors)})
    )


# -- qr --------------------------------------------------------------------------------------
def _qr_impl(a, *, mode):
    m, n = a.shape[-2:]
    if a.size == 0:
        k = m if mode == "complete" else min(m, n)
        q = np.zeros(a.shape[:-2] + (m, k), a.dtype)
        q[..., range(min(m, k)), range(min(m, k))] = 1
        r = np.zeros(a.shape[:-2] + (k, n), a.dtype)
        return (np.zeros((0,), a.dtype) if mode == "r" else q), r
    if mode == "r":
        return np.zeros((0,), a.dtype), np.linalg.qr(a, mode="r")
    q, r = np.linalg.qr(a, mode=mode)
    return q, r


def _qr_abstract(a, *, mode):
    m, n = a.shape[-2:]
    k = m if mode == "complete" else min(m, n)
    q = (0,) if mode == "r" else a.shape[:-2] + (m, k)
    return AbstractValue(q, a.dtype), AbstractValue(a.shape[:-2] + (k, n), a.dtype)


qr_p = Primitive(
    "linalg_qr", "opaque", impl=_qr_impl, n_out=2, save=SAVE_BOTH, abstract=_qr_abstract
)


def _copyltu(m: Tensor) -> Tensor:
    return m.tril() + m.tril(-1).mT


def _qr_backward_tall(gq: Tensor, gr: Tensor, q: Tensor, r: Tensor) -> Tensor:
    m = r @ gr.mT - gq.mT @ q
    b = gq + q @ _copyltu(m)
    return solve_triangular(r.mT, b, upper=False, left=False)


@defvjp(qr_p)
def _qr_vjp(g, out, a, *, mode):
    q, r = out
    gq, gr = g
    m, n = a.shape[-2:]
    if mode == "r":
        raise RuntimeError(
            "linalg.qr: the derivative depends on Q, which is not computed when mode='r'; "
            "use mode='reduced' to differentiate through linalg.qr"
        )
    if mode == "complete" and m > n:
        raise RuntimeError(
            "linalg.qr: the QR decomposition is not differentiable when mode='complete' and "
            "nrows > ncols"
        )
    if m >= n:
        return (_qr_backward_tall(gq, gr, q, r),)
    from .shape import cat

    y = a[..., m:]
    gu, gv = gr[..., :m], gr[..., m:]
    gx = _qr_backward_tall(gq + y @ gv.mT, gu, q, r[..., :m])
    return (cat([gx, q @ gv], -1),)


@op(name="linalg_qr", export=False)
def qr(A: Tensor, mode: str = "reduced") -> QR:
    """QR decomposition ``A = Q R`` (Householder, LAPACK's signs). ``mode``: ``'reduced'``
    (Q is m x k), ``'complete'`` (Q is m x m) or ``'r'`` (R only; Q is empty).

    Example:
        >>> import ember
        >>> Q, R = ember.linalg.qr(ember.tensor([[3.0, 1.0], [4.0, 2.0]]))
        >>> [round(v, 4) for v in R.diagonal().tolist()]
        [-5.0, 0.4]
    """
    check_matrix(A, "linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    return QR(*bind(qr_p, (A,), {"mode": mode}))


# -- svd -------------------------------------------------------------------------------------
def _svd_impl(a, *, full_matrices):
    m, n = a.shape[-2:]
    if a.size == 0:
        k = min(m, n)
        um, vn = (m, n) if full_matrices else (k, k)
        u = np.zeros(a.shape[:-2] + (m, um), a.dtype)
        u[..., range(min(m, um)), range(min(m, um))] = 1
        vh = np.zeros(a.shape[:-2] + (vn, n), a.dtype)
        vh[..., range(min(n, vn)), range(min(n, vn))] = 1
        return u, np.zeros(a.shape[:-2] + (k,), a.dtype), vh
    return tuple(np.linalg.svd(a, full_matrices=full_matrices))


def _svd_abstract(a, *, full_matrices):
    m, n = a.shape[-2:]
    k = min(m, n)
    b = a.shape[:-2]
    return (
        AbstractValue(b + (m, m if full_matrices else k), a.dtype),
        AbstractValue(b + (k,), a.dtype),
        AbstractValue(b + (n if full_matrices else k, n), a.dtype),
    )


svd_p = Primitive(
    "linalg_svd", "opaque", impl=_svd_impl, n_out=3, save=SAVE_OUTPUT, abstract=_svd_abstract
)
ZERO_FILL_OFF.add(svd_p)


def _svd_backward(gu, gs, gvh, u, s, vh):
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    if gu is None and gvh is None:
        if gs is None:
            return None
        return (u * gs.unsqueeze(-2)) @ vh

    def skew(x):
        return x - x.mT

    s2 = s * s
    e = s2.unsqueeze(-2) - s2.unsqueeze(-1)
    eye = _eye(k, None, s)
    e = e + eye  # 1 on the diagonal (the skew parts are 0 there)
    if gu is not None and gvh is not None:
        uhgu, vhgv = skew(u.mT @ gu), skew(vh @ gvh.mT)
        ga = (uhgu * s.unsqueeze(-2) + s.unsqueeze(-1) * vhgv) / e
    elif gu is None:
        ga = s.unsqueeze(-1) * (skew(vh @ gvh.mT) / e)
    else:
        ga = (skew(u.mT @ gu) / e) * s.unsqueeze(-2)
    if gs is not None:
        ga = ga + _diag(gs)
    if m > k and gu is not None:
        ga = u @ ga
        gus = gu / s.unsqueeze(-2)
        ga = ga + gus - u @ (u.mT @ gus)
        return ga @ vh
    if n > k and gvh is not None:
        ga = ga @ vh
        sgv = gvh / s.unsqueeze(-1)
        ga = ga + sgv - (sgv @ vh.mT) @ vh
        return u @ ga
    return u @ ga @ vh


@defvjp(svd_p)
def _svd_vjp(g, out, a, *, full_matrices):
    u, s, vh = out
    gu, gs, gvh = g
    if full_matrices:
        k = s.shape[-1]
        u, vh = u[..., :k], vh[..., :k, :]
        gu = None if gu is None else gu[..., :k]
        gvh = None if gvh is None else gvh[..., :k, :]
    return (_svd_backward(gu, gs, gvh, u, s, vh),)


@op(name="linalg_svd", export=False)
def svd(A: Tensor, full_matrices: bool = True, *, driver: str | None = None) -> SVD:
    """Singular value decomposition ``A = U diag(S) Vh`` (LAPACK gesdd; ``S`` descending).
    ``driver`` selects a CUDA solver in PyTorch and is ignored on the CPU, as there.
    Gradients through ``U``/``Vh`` use the reduced factors (PyTorch's convention) and are
    ill-defined for repeated singular values.

    Example:
        >>> import ember
        >>> ember.linalg.svd(ember.tensor([[3.0, 0.0], [0.0, -2.0]])).S.tolist()
        [3.0, 2.0]
    """
    check_matrix(A, "linalg.svd")
    return SVD(*bind(svd_p, (A,), {"full_matrices": bool(full_matrices)}))


def _svd_sample(rng, shapes):
    return [rng.uniform(-2, 2, s) for s in shapes]


@op(
    ref="linalg.svdvals",
    sample=_svd_sample,
    shapes=(((3, 3),), ((2, 4, 3),), ((3, 5),), ((0, 2, 3),), ((2, 0),)),
    rtol=1e-4,
    name="linalg_svdvals",
    export=False,
)
def svdvals(A: Tensor, *, driver: str | None = None) -> Tensor:
    """Singular values of ``A`` (*, m, n), descending, shape (*, min(m, n)).

    Example:
        >>> import ember
        >>> ember.linalg.svdvals(ember.tensor([[0.0, 2.0], [1.0, 0.0]])).tolist()
        [2.0, 1.0]
    """
    check_matrix(A, "linalg.svdvals")
    return bind(svd_p, (A,), {"full_matrices": False})[1]


# -- eigh ------------------------------------------------------------------------------------
def _eigh_impl(a, *, uplo):
    w, v = np.linalg.eigh(a, UPLO=uplo)
    return w, v


eigh_p = Primitive(
    "linalg_eigh",
    "opaque",
    impl=_eigh_impl,
    n_out=2,
    save=SAVE_OUTPUT,
    abstract=lambda a, uplo: (AbstractValue(a.shape[:-1], a.dtype), a),
)
ZERO_FILL_OFF.add(eigh_p)


@defvjp(eigh_p)
def _eigh_vjp(g, out, a, *, uplo):
    w, v = out
    gw, gv = g
    if gv is None:
        if gw is None:
            return (None,)
        return ((v * gw.unsqueeze(-2)) @ v.mT,)
    vgv = v.mT @ gv
    vgv = 0.5 * (vgv - vgv.mT)
    e = w.unsqueeze(-2) - w.unsqueeze(-1)
    eye = _eye(w.shape[-1], None, w)
    inner = vgv / (e + eye)
    if gw is not None:
        inner = inner + _diag(gw)
    return (v @ inner @ v.mT,)


def _check_uplo(uplo: str, fn: str) -> str:
    if not isinstance(uplo, str) or uplo.upper() not in ("L", "U"):
        raise ValueError(f"{fn}: UPLO must be 'L' or 'U', got {uplo!r}")
    return uplo.upper()


@op(name="linalg_eigh", export=False)
def eigh(input: Tensor, UPLO: str = "L") -> Eigh:
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices, reading the
    ``UPLO`` triangle. Gradients are ill-defined for repeated eigenvalues.

    Example:
        >>> import ember
        >>> ember.linalg.eigh(ember.tensor([[2.0, 1.0], [1.0, 2.0]])).eigenvalues.tolist()
        [1.0, 3.0]
    """
    check_square(input, "linalg.eigh")
    return Eigh(*bind(eigh_p, (input,), {"uplo": _check_uplo(UPLO, "linalg.eigh")}))


def _sym_sample(rng, shapes):
    out = []
    for s in shapes:
        a = rng.uniform(-2, 2, s)
        out.append(a + np.swapaxes(a, -1, -2))
    return out


@op(
    ref="linalg.eigvalsh",
    sample=_sym_sample,
    shapes=(((3, 3),), ((2, 4, 4),), ((0, 2, 2),), ((1, 1),)),
    cases=({}, {"UPLO": "U"}),
    rtol=1e-4,
    fd=False,  # reads one triangle, its gradient is symmetric: test_linalg checks symmetric FD
    name="linalg_eigvalsh",
    export=False,
)
def eigvalsh(input: Tensor, UPLO: str = "L") -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices, reading the ``UPLO`` triangle.

    Example:
        >>> import ember
        >>> ember.linalg.eigvalsh(ember.tensor([[2.0, 0.0], [0.0, 1.0]])).tolist()
        [1.0, 2.0]
    """
    check_square(input, "linalg.eigvalsh")
    return bind(eigh_p, (input,), {"uplo": _check_uplo(UPLO, "linalg.eigvalsh")})[0]


@op(name="linalg_eig", export=False)
def eig(input: Tensor) -> Eigh:
    """Eigenvalues and unit-norm eigenvectors (columns) of square matrices, as complex
    tensors (LAPACK's order; each eigenvector only defined up to a phase, as in PyTorch).
    See :mod:`ember.ops.complex_eig` for the gradient.

    Example:
        >>> import ember
        >>> ember.linalg.eig(ember.tensor([[0.0, -1.0], [1.0, 0.0]])).eigenvalues.tolist()
        [1j, -1j]
    """
    from .complex_eig import eig as _eig

    return Eigh(*_eig(input))


@op(name="linalg_eigvals", export=False)
def eigvals(input: Tensor) -> Tensor:
    """Eigenvalues of square matrices, as a complex tensor (see :func:`eig`).

    Example:
        >>> import ember
        >>> ember.linalg.eigvals(ember.tensor([[2.0, 0.0], [0.0, 3.0]])).tolist()
        [(2+0j), (3+0j)]
    """
    from .complex_eig import eigvals as _eigvals

    return _eigvals(input)


# -- householder_product ---------------------------------------------------------------------
@op(name="linalg_householder_product", export=False)
def householder_product(input: Tensor, tau: Tensor) -> Tensor:
    """The first ``n`` columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^T``, where ``v_i``
    is column ``i`` of ``A`` below the diagonal with a 1 on it (LAPACK's orgqr), batched.

    Example:
        >>> import ember
        >>> A = ember.tensor([[1.0], [0.0]])
        >>> ember.linalg.householder_product(A, ember.tensor([2.0])).tolist()
        [[-1.0], [0.0]]
    """
    fn = "torch.linalg.householder_product"
    check_matrix(input, fn, "input")
    check_float(tau, fn, "tau")
    check_same_dtype(input, tau, fn)
    m, n = input.shape[-2:]
    k = tau.shape[-1] if tau.ndim else -1
    if n > m:
        raise ShapeError(f"{fn}: input.shape[-2] must be greater than or equal to input.shape[-1]")
    if (
        tau.ndim != input.ndim - 1
        or not 0 <= k <= n
        or tuple(tau.shape[:-1]) != tuple(input.shape[:-2])
    ):
        raise ShapeError(
            f"{fn}: tau must have shape (*, k) with k <= input.shape[-1] = {n} and the batch "
            f"shape of input; got input {tuple(input.shape)} and tau {tuple(tau.shape)}"
        )
    vs = input.tril(-1) + _eye(m, n, input)
    q = _eye(m, n, input).expand(*input.shape[:-2], m, n)
    if k == 0:  # the identity, attached to the inputs' graph with a zero gradient
        from .elementwise import where

        return where(q >= 0, q, input) + 0 * tau.sum(-1, keepdim=True).unsqueeze(-1)
    for i in reversed(range(k)):
        v = vs[..., :, i : i + 1]
        q = q - (tau[..., i : i + 1].unsqueeze(-1) * v) @ (v.mT @ q)
    return q


def _decomp_samples():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    spd = rng.uniform(-1, 1, (2, 3, 3))
    spd = spd @ np.swapaxes(spd, -1, -2) + 3 * np.eye(3)
    return [
        ((tensor(spd, requires_grad=True),), {"upper": False, "check": True}),
        ((tensor(spd, requires_grad=True),), {"upper": True, "check": False}),
    ]


defsample(cholesky_ex_p, _decomp_samples)
defsample(
    qr_p,
    lambda: [
        ((_t(s),), {"mode": md})
        for s, md in (((4, 3), "reduced"), ((2, 3, 3), "complete"), ((3, 5), "reduced"))
    ],
)
defsample(
    svd_p, lambda: [((_t(s),), {"full_matrices": f}) for s, f in (((4, 3), False), ((3, 5), True))]
)
defsample(eigh_p, lambda: [((_t((3, 3), sym=True),), {"uplo": u}) for u in ("L", "U")])


def _t(shape, sym=False, spd=False, dtype=None, values=None):
    from .._creation import tensor

    if values is not None:
        return tensor(values, dtype=dtype)
    a = np.random.default_rng(sum(shape)).uniform(-1, 1, shape)
    if sym:
        a = a + np.swapaxes(a, -1, -2)
    if spd:
        a = a + 2 * np.eye(*shape[-2:])
    return tensor(a, requires_grad=True)


__all__ = [OPS[n].fn.__name__ for n in module_ops(__name__)]
