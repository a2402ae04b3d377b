"""``ember.linalg`` against ``torch.linalg``: values, gradients (first and second order),
float64 finite differences, batching, empty inputs, non-contiguous inputs and errors.

Decompositions whose factors are not unique (svd, eigh) are compared through invariants
that PyTorch's documentation names (``U @ Vh``, squared entries of the singular vectors /
eigenvectors): losses built from those are what gradients are defined for.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch

import ember
import ember.linalg as LA

# the reference calls PyTorch's deprecated top-level forms (torch.qr, torch.cholesky...)
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:UserWarning")
F64 = np.float64
RNG = np.random.default_rng


# -- helpers -------------------------------------------------------------------------------------
def _arr(shape, seed=0, kind="gen", lo=-1.0, hi=1.0):
    rng = RNG(seed + 31 * len(shape) + sum(shape))
    a = rng.uniform(lo, hi, shape)
    if kind == "wc" and len(shape) >= 2:  # well conditioned (square)
        a = 0.3 * a + 2.0 * np.eye(shape[-1])
    elif kind == "spd":
        a = a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])
    elif kind == "sym":
        a = a + np.swapaxes(a, -1, -2)
    elif kind == "tri":
        a = 0.4 * a + 2.0 * np.eye(shape[-1])
    return a


def _to_e(a, dtype, grad, noncontig):
    if noncontig and a.ndim >= 2:  # the same values through a transposed view
        t = ember.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=dtype).mT
    else:
        t = ember.tensor(a, dtype=dtype)
    return t.requires_grad_() if grad else t


def _flat(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _np(t):
    return t.detach().numpy()


def check(
    fn_e,
    fn_t,
    arrays,
    *,
    dtype="float64",
    grad=True,
    noncontig=False,
    rtol=None,
    atol=None,
    second_order=False,
):
    """Run ``fn_e`` on ember tensors and ``fn_t`` on torch tensors made from ``arrays``;
    compare every output, then the gradients of a random weighting of the float outputs."""
    edt, tdt = getattr(ember, dtype), getattr(torch, dtype)
    rtol = rtol if rtol is not None else (1e-4 if dtype == "float32" else 1e-7)
    atol = atol if atol is not None else (1e-4 if dtype == "float32" else 1e-9)
    es = [_to_e(np.asarray(a), edt, grad, noncontig) for a in arrays]
    ts = [torch.tensor(np.asarray(a), dtype=tdt, requires_grad=grad) for a in arrays]
    eo, to = _flat(fn_e(*es)), _flat(fn_t(*ts))
    assert len(eo) == len(to)
    for i, (e, t) in enumerate(zip(eo, to)):
        assert tuple(e.shape) == tuple(t.shape), f"output {i}: {tuple(e.shape)} vs {tuple(t.shape)}"
        assert e.dtype.name == str(t.dtype).replace("torch.", ""), f"output {i} dtype"
        np.testing.assert_allclose(_np(e), _np(t), rtol=rtol, atol=atol, err_msg=f"output {i}")
    if not grad:
        return
    pairs = [(e, t) for e, t in zip(eo, to) if t.requires_grad and t.dtype.is_floating_point]
    ws = [RNG(k).standard_normal(tuple(t.shape)) for k, (_, t) in enumerate(pairs)]
    el = sum((e * ember.tensor(w, dtype=edt)).sum() for (e, _), w in zip(pairs, ws))
    tl = sum((t * torch.tensor(w, dtype=tdt)).sum() for (_, t), w in zip(pairs, ws))
    eg = ember.autograd.grad(el, es, create_graph=second_order, allow_unused=True)
    tg = torch.autograd.grad(tl, ts, create_graph=second_order, allow_unused=True)
    for i, (a, b) in enumerate(zip(eg, tg)):
        if b is None:
            assert a is None or not np.any(_np(a)), f"grad {i}: torch has none"
            continue
        np.testing.assert_allclose(
            _np(a), _np(b), rtol=rtol * 10, atol=atol * 10, err_msg=f"grad of input {i}"
        )
    if second_order:
        ew = [RNG(9 + k).standard_normal(tuple(x.shape)) for k, x in enumerate(ts)]
        el2 = sum((g * ember.tensor(w)).sum() for g, w in zip(eg, ew) if g is not None)
        tl2 = sum((g * torch.tensor(w)).sum() for g, w in zip(tg, ew) if g is not None)
        eg2 = ember.autograd.grad(el2, es, allow_unused=True)
        tg2 = torch.autograd.grad(tl2, ts, allow_unused=True)
        for i, (a, b) in enumerate(zip(eg2, tg2)):
            if b is not None:
                np.testing.assert_allclose(
                    _np(a), _np(b), rtol=1e-6, atol=1e-8, err_msg=f"second-order grad {i}"
                )


def fd_check(fn, arrays, *, sym=(), tril=(), triu=(), n_dirs=3, eps=1e-6):
    """Directional float64 finite differences of ``sum(w * fn(...))`` against the VJP;
    inputs listed in ``sym`` are perturbed along symmetric directions only, those in
    ``tril``/``triu`` along lower/upper triangular ones."""
    xs = [ember.tensor(np.asarray(a, F64), requires_grad=True) for a in arrays]
    out = _flat(fn(*xs))
    keep = [i for i, o in enumerate(out) if o.requires_grad]
    outs = [out[i] for i in keep]
    ws = [RNG(k).standard_normal(tuple(o.shape)) for k, o in enumerate(outs)]

    def loss(vals):
        with ember.no_grad():
            r = _flat(fn(*[ember.tensor(v) for v in vals]))
            return sum(float((r[i].numpy() * w).sum()) for i, w in zip(keep, ws))

    total = sum((o * ember.tensor(w)).sum() for o, w in zip(outs, ws))
    grads = ember.autograd.grad(total, xs, allow_unused=True)
    for i, (a, g) in enumerate(zip(arrays, grads)):
        a = np.asarray(a, F64)
        for k in range(n_dirs):
            d = RNG(100 + k).standard_normal(a.shape)
            if i in sym:
                d = d + np.swapaxes(d, -1, -2)
            if i in tril:
                d = np.tril(d)
            if i in triu:
                d = np.triu(d)
            vp = [np.asarray(v, F64) for v in arrays]
            vm = [np.asarray(v, F64) for v in arrays]
            vp[i], vm[i] = a + eps * d, a - eps * d
            num = (loss(vp) - loss(vm)) / (2 * eps)
            ana = 0.0 if g is None else float((g.numpy() * d).sum())
            assert math.isclose(ana, num, rel_tol=1e-5, abs_tol=1e-6), (
                f"input {i} direction {k}: VJP {ana} vs finite difference {num}"
            )


DTYPES = ["float32", "float64"]
BATCHES = [(), (2,), (2, 3), (0,)]


# -- signatures --------------------------------------------------------------------------------
def test_signatures_match_torch_linalg():
    # against the ATen schemas (aten::linalg_NAME): what PyTorch's binding parses. Their
    # parameter names are the real keywords (torch.linalg.cholesky(input=...)), which the
    # docs sometimes spell differently (``A``)
    from test_torch_signatures import compare

    # what the schema reader cannot see: vector_norm's binding also takes the documented
    # keyword x; solve_triangular's `upper` is a required keyword (read as an out= overload)
    own = {
        "vector_norm": ["x", "ord", "dim", "keepdim", "dtype"],
        "solve_triangular": ["input", "B", "upper", "left", "unitriangular"],
    }
    checked, problems = 0, {}
    for name in LA.__all__:
        e, t = getattr(LA, name), getattr(torch.linalg, name)
        if isinstance(e, type):
            continue
        checked += 1
        if name in own:
            assert list(inspect.signature(e).parameters) == own[name], name
            continue
        p = compare(e, t, "matmul" if name == "matmul" else "linalg_" + name)
        if p:
            problems[name] = p
    assert not problems, problems
    assert checked == len(LA.__all__) - 1  # all but LinAlgError


def test_namespace_and_results_are_named_tuples():
    assert issubclass(LA.LinAlgError, RuntimeError)
    A = ember.tensor(_arr((3, 3), kind="wc"))
    Q, R = LA.qr(A)
    assert LA.qr(A).Q is not None and LA.qr(A).R is not None
    np.testing.assert_allclose((Q @ R).numpy(), A.numpy(), atol=1e-5)
    assert set(LA.svd(A)._fields) == {"U", "S", "Vh"}
    assert LA.slogdet(A)._fields == ("sign", "logabsdet")
    assert LA.eigh(A)._fields == ("eigenvalues", "eigenvectors")
    assert LA.lu(A)._fields == ("P", "L", "U")
    assert LA.lu_factor(A)._fields == ("LU", "pivots")
    assert LA.lu_factor_ex(A)._fields == ("LU", "pivots", "info")
    assert LA.lstsq(A, A)._fields == ("solution", "residuals", "rank", "singular_values")
    assert LA.inv_ex(A)._fields == ("inverse", "info")
    assert LA.solve_ex(A, A)._fields == ("result", "info")
    assert LA.cholesky_ex(A @ A.mT)._fields == ("L", "info")
    assert ember.linalg is LA and LA.matmul is ember.matmul


# -- inverses and solvers --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_inv_det_slogdet_logdet(dtype, batch):
    a = _arr((*batch, 3, 3), kind="wc")
    so = dtype == "float64" and batch == (2,)
    for nc in (False, True):
        check(LA.inv, torch.linalg.inv, [a], dtype=dtype, noncontig=nc, second_order=so)
        check(LA.det, torch.linalg.det, [a], dtype=dtype, noncontig=nc, second_order=so)
        check(LA.slogdet, torch.linalg.slogdet, [a], dtype=dtype, noncontig=nc, second_order=so)
        check(ember.logdet, torch.logdet, [a], dtype=dtype, noncontig=nc)
        check(LA.inv_ex, torch.linalg.inv_ex, [a], dtype=dtype, noncontig=nc)


def test_zero_by_zero_and_signs():
    z = np.zeros((2, 0, 0))
    for f, g in ((LA.inv, torch.linalg.inv), (LA.det, torch.linalg.det)):
        check(f, g, [z], grad=False)
    check(LA.slogdet, torch.linalg.slogdet, [z], grad=False)
    neg = np.diag([-2.0, 3.0])
    check(ember.logdet, torch.logdet, [neg], grad=False)  # NaN for a negative determinant
    check(LA.slogdet, torch.linalg.slogdet, [neg])


def test_det_gradient_of_singular_matrix():
    # rank n-1: the gradient is the (non-zero) cofactor matrix. PyTorch 2.13 returns zeros
    # for this input, so the reference is the cofactor matrix itself and finite differences.
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    x = ember.tensor(np.stack([a, _arr((3, 3), kind="wc")]), requires_grad=True)
    LA.det(x).sum().backward()
    cof = np.array([[4.0, 4.0, -4.0], [-2.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(x.grad.numpy()[0], cof, atol=1e-9)
    b = x.detach().numpy()[1]
    np.testing.assert_allclose(x.grad.numpy()[1], np.linalg.det(b) * np.linalg.inv(b).T)
    fd_check(LA.det, [a])


@pytest.mark.parametrize("dtype", DTYPES)
def test_solve_variants(dtype):
    a = _arr((2, 3, 3), kind="wc")
    for b_shape in ((2, 3, 4), (3, 4), (3,), (2, 3), (1, 3, 2)):
        b = _arr(b_shape, seed=1)
        check(LA.solve, torch.linalg.solve, [a, b], dtype=dtype, second_order=dtype == "float64")
        check(LA.solve_ex, torch.linalg.solve_ex, [a, b], dtype=dtype)
    b = _arr((2, 4, 3), seed=2)
    check(
        lambda x, y: LA.solve(x, y, left=False),
        lambda x, y: torch.linalg.solve(x, y, left=False),
        [a, b],
        dtype=dtype,
        noncontig=True,
    )
    check(LA.solve, torch.linalg.solve, [np.zeros((0, 3, 3)), np.zeros((0, 3, 1))], grad=False)


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("unit", [True, False])
def test_solve_triangular(upper, left, unit):
    a = _arr((2, 3, 3), kind="tri")
    b = _arr((2, 3, 4) if left else (2, 4, 3), seed=3)
    kw = {"upper": upper, "left": left, "unitriangular": unit}
    check(
        lambda x, y: LA.solve_triangular(x, y, **kw),
        lambda x, y: torch.linalg.solve_triangular(x, y, **kw),
        [a, b],
        noncontig=True,
        second_order=True,
    )
    fd_check(lambda x, y: LA.solve_triangular(x, y, **kw), [a, b])


def test_solve_triangular_zero_diagonal_gives_inf_like_lapack():
    a = np.array([[0.0, 1.0], [0.0, 1.0]])
    b = np.array([[1.0], [1.0]])
    e = LA.solve_triangular(ember.tensor(a), ember.tensor(b), upper=True).numpy()
    t = torch.linalg.solve_triangular(torch.tensor(a), torch.tensor(b), upper=True).numpy()
    np.testing.assert_array_equal(np.isfinite(e), np.isfinite(t))


def test_singular_errors_and_ex_info():
    sing = np.stack([np.eye(3), np.diag([1.0, 0.0, 2.0])])
    for f in (LA.inv, lambda x: LA.solve(x, ember.ones(2, 3, 1, dtype=x.dtype))):
        with pytest.raises(LA.LinAlgError, match=r"Batch element 1.*diagonal element 2"):
            f(ember.tensor(sing))
    with pytest.raises(RuntimeError, match="singular"):
        LA.inv(ember.zeros(3, 3))
    e_info = LA.inv_ex(ember.tensor(sing)).info
    t_info = torch.linalg.inv_ex(torch.tensor(sing)).info
    np.testing.assert_array_equal(e_info.numpy(), t_info.numpy())
    assert e_info.dtype is ember.int32
    with pytest.raises(LA.LinAlgError):
        LA.inv_ex(ember.tensor(sing), check_errors=True)
    r = LA.solve_ex(ember.tensor(sing), ember.ones(2, 3, dtype=ember.float64))
    np.testing.assert_array_equal(r.info.numpy(), [0, 2])
    np.testing.assert_allclose(r.result[0].numpy(), np.ones(3))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ember.ops.ShapeError, match="square"):
        LA.inv(ember.ones(2, 3))
    with pytest.raises(ember.ops.ShapeError, match="at least 2 dimensions"):
        LA.det(ember.ones(3))
    with pytest.raises(TypeError, match="floating point.*int64"):
        LA.inv(ember.ones(2, 2, dtype=ember.int64))
    with pytest.raises(TypeError, match="low precision"):
        LA.cholesky(ember.eye(2).half())
    with pytest.raises(TypeError, match="same dtype"):
        LA.solve(ember.eye(2), ember.ones(2, dtype=ember.float64))
    with pytest.raises(ember.ops.ShapeError, match="incompatible shapes"):
        LA.solve(ember.eye(3), ember.ones(2, 4))
    with pytest.raises(ValueError, match="unrecognized mode"):
        LA.qr(ember.eye(2), mode="full")
    with pytest.raises(ValueError, match="UPLO"):
        LA.eigh(ember.eye(2), UPLO="X")
    with pytest.raises(TypeError, match="linalg.eig.*int64"):
        LA.eig(ember.ones(2, 2, dtype=ember.int64))
    with pytest.raises(ember.ops.ShapeError, match="square"):
        LA.eigvals(ember.ones(2, 3))
    with pytest.raises(NotImplementedError, match="without pivoting"):
        LA.lu_factor(ember.eye(2), pivot=False)
    with pytest.raises(ValueError, match="driver"):
        LA.lstsq(ember.eye(2), ember.eye(2), driver="nope")
    with pytest.raises(ember.ops.ShapeError, match="length 3"):
        LA.cross(ember.ones(2), ember.ones(2))
    with pytest.raises(TypeError, match="same dtype"):
        LA.cross(ember.ones(3), ember.ones(3, dtype=ember.float64))
    with pytest.raises(TypeError, match="floating point"):
        LA.vecdot(ember.ones(3, dtype=ember.int64), ember.ones(3, dtype=ember.int64))
    ints = ember.tensor([[1, 2, 3], [4, 5, 6]])
    assert (
        LA.cross(ints, ints.flip(0)).tolist()
        == torch.linalg.cross(
            torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([[4, 5, 6], [1, 2, 3]])
        ).tolist()
    )
    with pytest.raises(ValueError, match="order"):
        LA.matrix_norm(ember.eye(2), ord=3)
    with pytest.raises(ember.ops.ShapeError, match="empty tensor"):
        LA.vector_norm(ember.zeros(0), float("inf"))
    with pytest.raises(ember.ops.ShapeError, match="N must be greater than 1"):
        LA.vander(ember.ones(3), N=1)


# -- cholesky ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky(dtype, batch, upper):
    a = _arr((*batch, 3, 3), kind="spd")
    check(
        lambda x: LA.cholesky(x, upper=upper),
        lambda x: torch.linalg.cholesky(x, upper=upper),
        [a],
        dtype=dtype,
        noncontig=True,
        second_order=dtype == "float64" and batch == (2,),
    )
    # only one triangle is read: garbage in the other one changes nothing
    junk = (
        a
        + np.triu(np.ones(a.shape), 1) * (-5 if upper else 0)
        + np.tril(np.ones(a.shape), -1) * (0 if upper else 7)
    )
    check(
        lambda x: LA.cholesky_ex(x, upper=not upper),
        lambda x: torch.linalg.cholesky_ex(x, upper=not upper),
        [junk],
        dtype=dtype,
        grad=dtype == "float64",
    )
    fd_check(lambda x: LA.cholesky(x, upper=upper), [_arr((2, 3, 3), kind="spd")], sym=(0,))


def test_cholesky_not_positive_definite():
    bad = np.stack([np.eye(3), np.diag([1.0, 2.0, -1.0])])
    with pytest.raises(LA.LinAlgError, match=r"Batch element 1.*minor of order 3"):
        LA.cholesky(ember.tensor(bad))
    e, t = LA.cholesky_ex(ember.tensor(bad)), torch.linalg.cholesky_ex(torch.tensor(bad))
    np.testing.assert_array_equal(e.info.numpy(), t.info.numpy())
    np.testing.assert_allclose(e.L[0].numpy(), np.eye(3))


# -- qr / svd / eigh
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 3, 5), (0, 3, 2), (2, 0)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr(dtype, shape, mode):
    a = _arr(shape)
    m, n = shape[-2:]
    grad = mode == "reduced" or (mode == "complete" and m <= n)
    check(
        lambda x: LA.qr(x, mode=mode),
        lambda x: torch.linalg.qr(x, mode=mode),
        [a],
        dtype=dtype,
        grad=grad and dtype == "float64" and a.size > 0,
        noncontig=True,
        second_order=grad and shape == (4, 3) and dtype == "float64",
    )
    if grad and a.size and dtype == "float64":
        fd_check(lambda x: LA.qr(x, mode=mode), [a])


def test_qr_mode_r_is_not_differentiable():
    x = ember.tensor(_arr((3, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="mode='r'"):
        LA.qr(x, mode="r").R.sum().backward()


def _svd_invariants(lib):
    def f(x, full=False):
        U, S, Vh = lib.linalg.svd(x, full_matrices=full)
        k = S.shape[-1]
        # the columns of U / rows of Vh past k span a null space (not unique): left out
        return S, U[..., :k] @ Vh[..., :k, :], U[..., :k] ** 2, Vh[..., :k, :] ** 2

    return f


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 3, 5), (0, 2, 2)])
@pytest.mark.parametrize("full", [False, True])
def test_svd(dtype, shape, full):
    a = _arr(shape)
    check(
        lambda x: _svd_invariants(ember)(x, full),
        lambda x: _svd_invariants(torch)(x, full),
        [a],
        dtype=dtype,
        grad=dtype == "float64" and a.size > 0,
        noncontig=True,
        second_order=dtype == "float64" and shape == (4, 3) and not full,
    )
    check(LA.svdvals, torch.linalg.svdvals, [a], dtype=dtype, noncontig=True)
    if dtype == "float64" and a.size:
        fd_check(lambda x: _svd_invariants(ember)(x, full)[:2], [a])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigh(dtype, batch, uplo):
    a = _arr((*batch, 4, 4), kind="sym")
    junk = a + (np.triu(np.ones(a.shape), 1) if uplo == "L" else np.tril(np.ones(a.shape), -1))

    def inv(lib):
        return lambda x: (lib.linalg.eigh(x, uplo)[0], lib.linalg.eigh(x, uplo)[1] ** 2)

    check(inv(ember), inv(torch), [junk], dtype=dtype, noncontig=True)
    check(
        lambda x: LA.eigvalsh(x, uplo),
        lambda x: torch.linalg.eigvalsh(x, uplo),
        [junk],
        dtype=dtype,
        second_order=dtype == "float64" and batch == (2,),
    )
    fd_check(inv(ember), [a], sym=(0,))


# -- lu --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 3), (3, 5), (0, 2, 2)])
def test_lu_and_lu_factor(dtype, shape):
    a = _arr(shape, kind="wc" if shape[-1] == shape[-2] else "gen")
    grad = dtype == "float64" and a.size > 0
    so = grad and len(shape) == 2
    check(LA.lu, torch.linalg.lu, [a], dtype=dtype, grad=grad, noncontig=True, second_order=so)
    check(LA.lu_factor, torch.linalg.lu_factor, [a], dtype=dtype, grad=grad)
    check(LA.lu_factor_ex, torch.linalg.lu_factor_ex, [a], dtype=dtype, grad=grad)
    if grad:
        fd_check(LA.lu, [a])
        fd_check(lambda x: LA.lu_factor(x).LU, [a])


def test_lu_pivots_and_singular():
    a = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1.0, 2.0, 3.0]])
    check(LA.lu_factor_ex, torch.linalg.lu_factor_ex, [a], grad=False)
    with pytest.raises(LA.LinAlgError, match="singular"):
        LA.lu_factor(ember.tensor(a))


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve(left, adjoint):
    a = _arr((2, 3, 3), kind="wc")
    b = _arr((2, 3, 2) if left else (2, 2, 3), seed=4)

    def run(lib):
        def f(x, y):
            lu_, piv = lib.linalg.lu_factor(x)
            return lib.linalg.lu_solve(lu_, piv, y, left=left, adjoint=adjoint)

        return f

    check(run(ember), run(torch), [a, b], noncontig=True)
    check(run(ember), run(torch), [a, b], dtype="float32")


# -- least squares and pseudo-inverse
@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("shape", [((5, 3), (5, 2)), ((2, 4, 3), (2, 4, 1)), ((3, 3), (3, 2))])
def test_lstsq(driver, shape):
    a, b = _arr(shape[0]), _arr(shape[1], seed=5)
    check(
        lambda x, y: LA.lstsq(x, y, driver=driver),
        lambda x, y: torch.linalg.lstsq(x, y, driver=driver),
        [a, b],
        rtol=1e-6,
        atol=1e-9,
        second_order=driver is None,
    )
    check(
        lambda x, y: LA.lstsq(x, y, driver=driver).solution,
        lambda x, y: torch.linalg.lstsq(x, y, driver=driver).solution,
        [a, b],
        dtype="float32",
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 3), (3, 5), (0, 2, 3)])
def test_pinv(dtype, shape):
    a = _arr(shape, kind="gen") + (np.eye(*shape[-2:]) if shape[-1] <= 5 else 0)
    check(
        LA.pinv,
        torch.linalg.pinv,
        [a],
        dtype=dtype,
        noncontig=True,
        rtol=1e-4 if dtype == "float32" else 1e-6,
    )
    if dtype == "float64" and a.size:
        fd_check(LA.pinv, [a])
        check(ember.pinverse, torch.pinverse, [a], second_order=True, rtol=1e-6)
    low_rank = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])
    check(LA.pinv, torch.linalg.pinv, [low_rank], grad=False)
    s = _arr((3, 3), kind="sym")
    check(
        lambda x: LA.pinv(x, hermitian=True),
        lambda x: torch.linalg.pinv(x, hermitian=True),
        [s],
        grad=False,
    )
    check(
        lambda x: LA.pinv(x, atol=0.5, rtol=0.1),
        lambda x: torch.linalg.pinv(x, atol=0.5, rtol=0.1),
        [a],
        grad=False,
    )


def test_matrix_rank():
    mats = [np.outer([1.0, 2.0, 3.0], [1.0, -1.0, 2.0]), _arr((2, 4, 3)), np.zeros((3, 3))]
    for m in mats:
        for kw in ({}, {"atol": 0.5}, {"rtol": 0.3}, {"atol": 0.1, "rtol": 0.0}):
            check(
                lambda x, kw=kw: LA.matrix_rank(x, **kw),
                lambda x, kw=kw: torch.linalg.matrix_rank(x, **kw),
                [m],
                grad=False,
            )
    s = _arr((3, 3), kind="sym")
    check(
        lambda x: LA.matrix_rank(x, hermitian=True),
        lambda x: torch.linalg.matrix_rank(x, hermitian=True),
        [s],
        grad=False,
    )
