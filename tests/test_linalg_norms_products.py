"""``ember.linalg`` against ``torch.linalg``: vector and matrix norms, condition numbers,
and the products and helpers (multi_dot, vecdot, cross, vander, matrix_power, tensorinv,
tensorsolve...): values, gradients and finite differences (the harness and the
decompositions: tests/test_linalg.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_linalg import DTYPES, _arr, check, fd_check

import ember
import ember.linalg as LA

pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:UserWarning")


# -- norms
VECTOR_ORDS = [2, 1, 0, 3.5, 0.5, -1, math.inf, -math.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_norm(ord, dtype):
    x = _arr((2, 3, 4))
    for kw in ({}, {"dim": 1}, {"dim": (0, 2), "keepdim": True}, {"dim": -1}):
        check(
            lambda t, kw=kw: LA.vector_norm(t, ord, **kw),
            lambda t, kw=kw: torch.linalg.vector_norm(t, ord, **kw),
            [x],
            dtype=dtype,
            noncontig=True,
        )
    check(
        lambda t: LA.vector_norm(t, ord),
        lambda t: torch.linalg.vector_norm(t, ord),
        [np.float64(-1.5)],
        dtype=dtype,
    )
    if ord >= 0 and ord != math.inf:
        check(
            lambda t: LA.vector_norm(t, ord, dim=1),
            lambda t: torch.linalg.vector_norm(t, ord, dim=1),
            [np.zeros((0, 3))],
            dtype=dtype,
        )


@pytest.mark.parametrize("ord", [2, 1, 3.0, math.inf, 0.5])
def test_vector_norm_subgradients_at_zero_and_ties(ord):
    x = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [0.0, 2.0, -2.0]])
    check(
        lambda t: LA.vector_norm(t, ord, dim=1),
        lambda t: torch.linalg.vector_norm(t, ord, dim=1),
        [x],
    )


def test_vector_norm_dtype_argument():
    x = _arr((3,))
    check(
        lambda t: LA.vector_norm(t, dtype=ember.float64),
        lambda t: torch.linalg.vector_norm(t, dtype=torch.float64),
        [x],
        dtype="float32",
    )


MATRIX_ORDS = ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf]


@pytest.mark.parametrize("ord", MATRIX_ORDS)
def test_matrix_norm_and_norm(ord):
    a = _arr((2, 3, 4))
    for kw in ({}, {"dim": (0, 2)}, {"keepdim": True}, {"dim": (-1, 1), "keepdim": True}):
        check(
            lambda t, kw=kw: LA.matrix_norm(t, ord, **kw),
            lambda t, kw=kw: torch.linalg.matrix_norm(t, ord, **kw),
            [a],
            noncontig=True,
        )
        check(
            lambda t, kw=kw: LA.norm(t, ord, **{"dim": (-2, -1), **kw}),
            lambda t, kw=kw: torch.linalg.norm(t, ord, **{"dim": (-2, -1), **kw}),
            [a],
            dtype="float32",
        )
    check(lambda t: LA.norm(t, ord), lambda t: torch.linalg.norm(t, ord), [a[0]])
    if ord not in ("fro", "nuc"):
        check(lambda t: LA.norm(t, ord), lambda t: torch.linalg.norm(t, ord), [a[0, 0]])
    fd_check(lambda t: LA.matrix_norm(t, ord), [a])


def test_norm_defaults():
    a = _arr((2, 3, 4))
    for kw in ({}, {"dim": 1}, {"dim": (0, 1)}, {"keepdim": True}):
        check(
            lambda t, kw=kw: LA.norm(t, **kw),
            lambda t, kw=kw: torch.linalg.norm(t, **kw),
            [a],
        )


@pytest.mark.parametrize("p", [None, "fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_cond(p):
    a = _arr((2, 3, 3), kind="wc")
    # PyTorch's own backward of cond(p in fro/nuc/1/inf) fails (an in-place op in its graph):
    # those gradients are checked against finite differences instead
    torch_grad = p in (None, 2, -2)
    check(lambda t: LA.cond(t, p), lambda t: torch.linalg.cond(t, p), [a], grad=torch_grad)
    check(
        lambda t: LA.cond(t, p), lambda t: torch.linalg.cond(t, p), [a], dtype="float32", grad=False
    )
    fd_check(lambda t: LA.cond(t, p), [a])
    if p not in (None, 2, -2):
        sing = np.zeros((3, 3))
        check(lambda t: LA.cond(t, p), lambda t: torch.linalg.cond(t, p), [sing], grad=False)


# -- products and helpers
def test_multi_dot():
    shapes = [[(3,), (3, 5), (5, 2), (2, 4), (4,)], [(2, 6), (6, 3)], [(1, 4), (4, 7), (7, 2)]]
    for ss in shapes:
        arrs = [_arr(s, seed=i) for i, s in enumerate(ss)]
        check(lambda *t: LA.multi_dot(list(t)), lambda *t: torch.linalg.multi_dot(list(t)), arrs)
        check(
            lambda *t: LA.multi_dot(t),
            lambda *t: torch.linalg.multi_dot(t),
            arrs,
            dtype="float32",
        )
    with pytest.raises(ember.ops.ShapeError, match="cannot be multiplied"):
        LA.multi_dot([ember.ones(2, 3), ember.ones(2, 3)])
    with pytest.raises(ValueError, match="at least 2"):
        LA.multi_dot([ember.ones(2, 3)])


def test_vecdot_cross_vander_diagonal():
    x, y = _arr((2, 3, 4)), _arr((3, 4), seed=1)
    for kw in ({}, {"dim": -2}):
        check(
            lambda a, b, kw=kw: LA.vecdot(a, b, **kw),
            lambda a, b, kw=kw: torch.linalg.vecdot(a, b, **kw),
            [x, y],
            noncontig=True,
        )
    u, v = _arr((2, 3)), _arr((1, 3), seed=2)
    check(LA.cross, torch.linalg.cross, [u, v])
    # PyTorch's backward of cross over a non-last dim fails (an in-place op in its graph):
    # values against PyTorch, gradients against finite differences
    u3, v3 = _arr((3, 2)), _arr((3, 2), seed=3)
    check(
        lambda a, b: LA.cross(a, b, dim=0),
        lambda a, b: torch.linalg.cross(a, b, dim=0),
        [u3, v3],
        grad=False,
    )
    check(ember.cross, torch.cross, [u3, v3], grad=False)
    fd_check(lambda a, b: LA.cross(a, b, dim=0), [u3, v3])
    fd_check(LA.cross, [u, v])
    for kw in ({}, {"N": 5}):
        check(
            lambda a, kw=kw: LA.vander(a, **kw),
            lambda a, kw=kw: torch.linalg.vander(a, **kw),
            [np.array([[0.0, 1.5, -2.0], [0.5, 0.0, 3.0]])],
        )
    xi = ember.tensor([1, 2, 3])
    np.testing.assert_array_equal(
        LA.vander(xi).numpy(), torch.linalg.vander(torch.tensor([1, 2, 3])).numpy()
    )
    for kw in ({}, {"N": 4, "increasing": True}, {"N": 1}, {"N": 0}):
        # torch.vander's own backward fails (an in-place op in its graph): FD instead
        check(
            lambda a, kw=kw: ember.vander(a, **kw),
            lambda a, kw=kw: torch.vander(a, **kw),
            [np.array([0.5, 2.0, -1.0])],
            grad=False,
        )
        fd_check(lambda a, kw=kw: ember.vander(a, **kw), [np.array([0.5, 2.0, -1.0])])
    for kw in ({}, {"offset": 1}, {"dim1": 0, "dim2": 2, "offset": -1}):
        check(
            lambda a, kw=kw: LA.diagonal(a, **kw),
            lambda a, kw=kw: torch.linalg.diagonal(a, **kw),
            [x],
        )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, -1, -3])
def test_matrix_power(n):
    a = _arr((2, 3, 3), kind="wc") * 0.6
    check(
        lambda t: LA.matrix_power(t, n),
        lambda t: torch.linalg.matrix_power(t, n),
        [a],
        noncontig=True,
        second_order=n in (3, -1),
    )
    check(lambda t: t.matrix_power(n), lambda t: t.matrix_power(n), [a], dtype="float32")
    ai = ember.tensor([[1, 1], [0, 1]])
    if n >= 0:
        assert (
            LA.matrix_power(ai, n).tolist()
            == torch.linalg.matrix_power(torch.tensor([[1, 1], [0, 1]]), n).tolist()
        )


def test_tensorinv_tensorsolve():
    a = _arr((4, 6), kind="gen") + np.eye(4, 6) * 2
    a = (a @ a.T + np.eye(4)).reshape(2, 2, 4)  # a well-conditioned 4x4 in tensor form
    check(
        lambda t: LA.tensorinv(t, ind=2),
        lambda t: torch.linalg.tensorinv(t, ind=2),
        [a],
    )
    b = (_arr((6, 6), kind="wc")).reshape(2, 3, 6)
    rhs = _arr((2, 3), seed=6)
    check(LA.tensorsolve, torch.linalg.tensorsolve, [b, rhs])
    c = np.moveaxis(b, 2, 0)  # (6, 2, 3): dims=(0,) moves the 6 back to the end
    check(
        lambda t, r: LA.tensorsolve(t, r, dims=(0,)),
        lambda t, r: torch.linalg.tensorsolve(t, r, dims=(0,)),
        [c, rhs],
    )
    with pytest.raises(ValueError, match="positive"):
        LA.tensorinv(ember.eye(2), ind=0)


def test_householder_product():
    a = _arr((2, 5, 3))
    for k in (3, 2, 1):
        tau = _arr((2, k), seed=7)
        check(LA.householder_product, torch.linalg.householder_product, [a, tau], noncontig=True)
    # no reflector: the identity columns (LAPACK's orgqr; PyTorch 2.13 returns the input)
    q = LA.householder_product(ember.tensor(a), ember.zeros(2, 0, dtype=ember.float64))
    np.testing.assert_array_equal(q.numpy(), np.broadcast_to(np.eye(5, 3), (2, 5, 3)))
    fd_check(LA.householder_product, [a, _arr((2, 2), seed=7)])


# -- top-level functions and Tensor methods
def test_toplevel_and_methods():
    a = _arr((2, 3, 3), kind="spd")
    for name in ("det", "logdet", "inverse", "pinverse"):
        check(getattr(ember, name), getattr(torch, name), [a])
        check(lambda t, n=name: getattr(t, n)(), lambda t, n=name: getattr(t, n)(), [a])
    check(ember.slogdet, torch.slogdet, [a])
    check(lambda t: t.slogdet(), lambda t: t.slogdet(), [a])
    for upper in (False, True):
        check(lambda t, u=upper: t.cholesky(u), lambda t, u=upper: t.cholesky(u), [a])
    for some in (True, False):
        check(
            lambda t, s=some: ember.qr(t, s),
            lambda t, s=some: torch.qr(t, s),
            [_arr((4, 3))],
            grad=some,
        )

    def svd_old(lib):
        def f(t, some=True):
            U, S, V = lib.svd(t, some)
            return S, U[..., : S.shape[-1]] @ V[..., : S.shape[-1]].mT

        return f

    check(svd_old(ember), svd_old(torch), [_arr((4, 3))])
    check(lambda t: svd_old(ember)(t, False), lambda t: svd_old(torch)(t, False), [_arr((4, 3))])
    e, t = (
        ember.svd(ember.tensor(_arr((4, 3))), compute_uv=False),
        torch.svd(torch.tensor(_arr((4, 3))), compute_uv=False),
    )
    np.testing.assert_allclose(e.U.numpy(), t.U.numpy())
    np.testing.assert_allclose(e.S.numpy(), t.S.numpy())


# -- a ported script: least squares and a Gaussian log-likelihood
def _ported_script(lib, X, y, K, mu):
    """The same code for torch and ember: only the module differs."""
    w = lib.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    resid = lib.linalg.vector_norm(X @ w - y)
    L = lib.linalg.cholesky(K)
    z = lib.linalg.solve_triangular(L, (y[:4] - mu).unsqueeze(-1), upper=False)
    logdet = lib.linalg.slogdet(K).logabsdet
    n = K.shape[-1]
    loglik = -0.5 * (z.squeeze(-1) ** 2).sum() - 0.5 * logdet - 0.5 * n * math.log(2 * math.pi)
    return resid + loglik + lib.linalg.matrix_norm(lib.linalg.inv(K), "fro")


def test_ported_torch_linalg_script_matches():
    X, y = _arr((6, 3)), _arr((6,), seed=8)
    K, mu = _arr((4, 4), kind="spd"), _arr((4,), seed=9)
    check(
        lambda *a: _ported_script(ember, *a),
        lambda *a: _ported_script(torch, *a),
        [X, y, K, mu],
        rtol=1e-7,
        second_order=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (0, 2, 2), (1, 1)])
def test_matrix_exp(dtype, shape):
    a = _arr(shape, lo=-2.0, hi=2.0)
    check(
        LA.matrix_exp,
        torch.linalg.matrix_exp,
        [a],
        dtype=dtype,
        noncontig=True,
        second_order=dtype == "float64" and shape == (3, 3),
    )
    check(lambda t: t.matrix_exp(), lambda t: t.matrix_exp(), [3 * a], dtype=dtype, grad=False)
    if dtype == "float64" and a.size:
        fd_check(LA.matrix_exp, [a])


def test_older_toplevel_solvers():
    a, b = _arr((2, 3, 3), kind="tri"), _arr((2, 3, 2), seed=10)
    for kw in ({}, {"upper": False}, {"transpose": True}, {"unitriangular": True}):
        check(
            lambda x, y, kw=kw: ember.triangular_solve(y, x, **kw),
            lambda x, y, kw=kw: torch.triangular_solve(y, x, **kw),
            [a, b],
        )
    low = np.tril(a)
    for upper in (False, True):
        f = np.swapaxes(low, -1, -2) if upper else low
        check(
            lambda x, y, u=upper: ember.cholesky_solve(y, x, u),
            lambda x, y, u=upper: torch.cholesky_solve(y, x, u),
            [f, b],
            second_order=True,
        )
        check(
            lambda x, u=upper: x.cholesky_inverse(u),
            lambda x, u=upper: x.cholesky_inverse(u),
            [f],
            second_order=True,
        )
        tri = {"triu": (0,)} if upper else {"tril": (0,)}
        fd_check(lambda x, y, u=upper: ember.cholesky_solve(y, x, u), [f, b], **tri)
        fd_check(lambda x, u=upper: ember.cholesky_inverse(x, u), [f], **tri)
    sq = _arr((2, 3, 3), kind="wc")

    def unpack(lib, **kw):
        def f(x):
            lu_, piv = lib.linalg.lu_factor(x)
            return lib.lu_unpack(lu_, piv, **kw)

        return f

    for kw in ({}, {"unpack_data": False}, {"unpack_pivots": False}):
        check(unpack(ember, **kw), unpack(torch, **kw), [sq], grad=not kw)

    def lus(lib):
        def f(x, y):
            lu_, piv = lib.linalg.lu_factor(x)
            return lib.lu_solve(y, lu_, piv)

        return f

    check(lus(ember), lus(torch), [sq, b])
    mats = [_arr((2, 3)), _arr((3, 4), seed=1), _arr((4, 2), seed=2)]
    check(ember.chain_matmul, torch.chain_matmul, mats)
