"""The elementwise and transcendental kernels (``ember/ops/_ew_kernels.py``, compiled float32
loops in ``ember/backends/kernels_ew.py``) against PyTorch: values and gradients, float32 and
float64, odd sizes, strided and broadcast inputs, inf/nan/+-0, 1 vs 2 threads bitwise, and the
compiled (numba) and NumPy paths alike. When numba is not installed only the NumPy path runs,
and the test ids say so.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _ew_binary as _ewb
from ember.ops import _parallel
from ember.ops._ew_binary import par_binary
from ember.ops._ew_dropout import dropout_apply
from ember.ops._ew_kernels import (
    EW_BLOCK,
    bias_act,
    bias_act_grad,
    ew_unary,
    ew_unary_grad,
    grad_input_of,
    unary_names,
)

PATHS = ["numpy"] + (["jit"] if jit.available() or not jit._enabled else [])


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


@pytest.fixture
def threaded(monkeypatch):
    """Threads from the first block on, so small arrays exercise the threaded path."""
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    old = ember.get_num_threads()
    yield
    ember.set_num_threads(old)


# name -> (ember function, torch function, input domain)
OPS = {
    "exp": (ember.exp, torch.exp, "all"),
    "log": (ember.log, torch.log, "positive"),
    "tanh": (ember.tanh, torch.tanh, "all"),
    "sigmoid": (ember.sigmoid, torch.sigmoid, "all"),
    "erf": (ember.erf, torch.erf, "all"),
    "gelu": (F.gelu, TF.gelu, "all"),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
        "all",
    ),
    "silu": (F.silu, TF.silu, "all"),
    "softplus": (F.softplus, TF.softplus, "all"),
    "softplus_b2": (
        lambda x: F.softplus(x, beta=2.0, threshold=3.0),
        lambda x: TF.softplus(x, beta=2.0, threshold=3.0),
        "all",
    ),
    "relu": (F.relu, TF.relu, "all"),
}
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 100.0, -100.0]
# float32: the kernels are within a few ulp of the true value; PyTorch's own approximations
# (erf, the cancellation in gelu's 1 + erf for x << 0) differ by up to a few 1e-7 absolute
# float64: ~1e-16 relative, but where 1 + tanh or 1 + erf cancels (x << 0) both frameworks
# return rounding noise of order 1e-16 * |x|
TOL = {np.float32: {"rtol": 2e-6, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _inputs(n, dtype, domain, seed=0, specials=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 3.0
    if specials and n >= len(SPECIALS):
        x[: len(SPECIALS)] = SPECIALS
    if domain == "positive":
        x = np.abs(x)
        if specials and n > 2:
            x[1] = 0.0  # log(0) = -inf
            x[2] = -1.0  # log(-1) = nan
    return x.astype(dtype)


def _grad_of(gt):
    return np.zeros(0) if gt is None else gt.numpy()


def _check(op, x, g, dtype, ex=None, tx=None):
    fe, ft, _ = OPS[op]
    xe = ember.from_numpy(x).requires_grad_() if ex is None else ex
    ye = fe(xe)
    ye.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True) if tx is None else tx
    yt = ft(xt)
    yt.backward(torch.tensor(g))
    tol = dict(TOL[dtype])
    if op == "gelu_tanh" and dtype == np.float32:
        tol["atol"] = 1e-5  # for x << 0 PyTorch's 1 + tanh cancels: its result is that noisy
    want = yt.detach().numpy().copy()
    if op == "gelu":  # PyTorch's vectorized float32 gelu gives nan at +inf (its scalar path: inf)
        want[np.isposinf(x)] = np.inf
    np.testing.assert_allclose(ye.detach().numpy(), want, equal_nan=True, **tol)
    ge = xe.grad.numpy() if ex is None else ex.grad.numpy()
    gt = xt.grad.numpy()
    np.testing.assert_allclose(ge, gt, equal_nan=True, **tol)
    return ye


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 7, 1023, 100003])
@pytest.mark.parametrize("op", list(OPS))
def test_op_matches_torch(path, op, n, dtype):
    x = _inputs(n, dtype, OPS[op][2])
    g = np.random.default_rng(1).standard_normal(n).astype(dtype)
    _check(op, x, g, dtype)


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "erf", "gelu", "gelu_tanh", "silu", "softplus"])
def test_strided_and_broadcast_inputs(path, op):
    rng = np.random.default_rng(2)
    base = (rng.standard_normal((64, 130)) * 3).astype(np.float32)
    g = rng.standard_normal((130, 32)).astype(np.float32)
    # a transposed, every-other-column view
    ex = ember.from_numpy(base).requires_grad_()
    tx = torch.tensor(base, requires_grad=True)
    fe, ft, _ = OPS[op]
    ye = fe(ex.transpose(0, 1)[:, ::2])
    yt = ft(tx.transpose(0, 1)[:, ::2])
    ye.backward(ember.from_numpy(g))
    yt.backward(torch.tensor(g))
    tol = {"rtol": 2e-6, "atol": 1e-5 if op == "gelu_tanh" else 2e-6}  # see _check
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), **tol)
    # a broadcast (stride-0) view
    row = (rng.standard_normal(EW_BLOCK // 7) * 3).astype(np.float32)
    er = ember.from_numpy(row).requires_grad_()
    tr = torch.tensor(row, requires_grad=True)
    gb = rng.standard_normal((9, row.size)).astype(np.float32)
    ye, yt = fe(er.expand(9, row.size)), ft(tr.expand(9, row.size))
    ye.backward(ember.from_numpy(gb))
    yt.backward(torch.tensor(gb))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **TOL[np.float32])
    np.testing.assert_allclose(er.grad.numpy(), tr.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_and_two_threads_bitwise_equal(path, threaded, dtype):
    n = 3 * EW_BLOCK + 1001
    x = _inputs(n, dtype, "all", seed=3)
    xl = np.abs(x) + dtype(0.5)
    g = np.random.default_rng(4).standard_normal(n).astype(dtype)
    results = []
    for threads in (1, 2):
        ember.set_num_threads(threads)
        r = []
        for name in unary_names():
            v = xl if name == "log" else x
            r.append(ew_unary(name, v))
            r.append(ew_unary_grad(name, g, v))
        r.append(bias_act("gelu", x[: n // 7 * 7].reshape(-1, 7), x[:7].copy()))
        r.append(dropout_apply(x, seed=11, p=0.3))
        results.append(r)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_signed_zeros_and_nans_keep_their_sign_and_payload_class(path):
    """tanh(-0.0) is -0.0 and exp/tanh/sigmoid of NaN are NaN on every path, in arrays large
    enough for the compiled kernels' parallel builds (as in NumPy and PyTorch)."""
    n = 3 * EW_BLOCK + 5
    x = np.full(n, -0.0, np.float32)
    x[1::3] = np.nan
    for name in ("tanh", "exp", "sigmoid"):
        y = ew_unary(name, x)
        assert np.isnan(y[1::3]).all(), name
    y = ew_unary("tanh", x)
    zeros = y[0::3]
    assert (zeros == 0).all() and np.signbit(zeros).all()


def test_compiled_and_numpy_paths_agree():
    if not jit.available():
        pytest.skip("numba (the [jit] extra) is not installed or EMBER_JIT=0")
    x = _inputs(EW_BLOCK + 17, np.float32, "all", seed=5)
    g = np.random.default_rng(6).standard_normal(x.size).astype(np.float32)
    for name in unary_names():
        v = np.abs(x) if name == "log" else x
        a, ga = ew_unary(name, v), ew_unary_grad(name, g, v)
        old = jit.set_enabled(False)
        try:
            b, gb = ew_unary(name, v), ew_unary_grad(name, g, v)
        finally:
            jit.set_enabled(old)
        tol = {"rtol": 2e-6, "atol": 1e-5 if name == "gelu_tanh" else 2e-6}  # see _check
        np.testing.assert_allclose(a, b, equal_nan=True, err_msg=name, **tol)
        np.testing.assert_allclose(ga, gb, equal_nan=True, err_msg=name, **tol)


def test_float32_accuracy_in_ulp(path):
    """Where no cancellation is involved the float32 kernels are within a few ulp of the
    float64 result (exp, tanh and sigmoid near +-1 matter: 1 - y^2 in their gradients)."""
    tiny = np.geomspace(1e-30, 1, 20001)  # (tanh's relative accuracy near 0 matters too)
    x = np.concatenate([np.linspace(-12, 12, 200001), tiny, -tiny]).astype(np.float32)
    xd = x.astype(np.float64)
    refs = {
        "exp": np.exp(xd),
        "tanh": np.tanh(xd),
        "sigmoid": 1 / (1 + np.exp(-xd)),
        "softplus": np.logaddexp(0, xd),
    }
    for name, ref in refs.items():
        got = ew_unary(name, x).astype(np.float64)
        ulp = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
        err = np.abs(got - ref) / ulp
        assert err.max() <= (2.5 if name == "tanh" else 4), (name, err.max())


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "erf", "gelu", "gelu_tanh", "silu", "softplus"])
def test_second_order_gradients(op):
    x = _inputs(33, np.float64, "all", seed=7, specials=False)
    fe, ft, _ = OPS[op]
    xe = ember.from_numpy(x).requires_grad_()
    (ge,) = ember.autograd.grad(fe(xe).sum(), xe, create_graph=True)
    (gge,) = ember.autograd.grad(ge.sum(), xe)
    xt = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad(ft(xt).sum(), xt, create_graph=True)
    (ggt,) = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gge.numpy(), ggt.numpy(), rtol=1e-9, atol=1e-11)


def test_low_precision_inputs_compute_in_float32(path):
    x = _inputs(100, np.float32, "all", seed=8).astype(np.float16)
    for name in ("gelu", "silu", "tanh"):
        got = ew_unary(name, x)
        assert got.dtype == np.float16
        want = ew_unary(name, x.astype(np.float32)).astype(np.float16)
        np.testing.assert_array_equal(got, want)


def test_out_argument_and_in_place(path):
    x = _inputs(EW_BLOCK + 14, np.float32, "all", seed=9)
    want = ew_unary("gelu", x)
    out = np.empty_like(x)
    assert ew_unary("gelu", x, out=out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    ew_unary("gelu", y, out=y)
    np.testing.assert_array_equal(y, want)
    g = np.ones_like(x)
    gw = ew_unary_grad("silu", g, x)
    np.testing.assert_array_equal(ew_unary_grad("silu", g, x, out=g), gw)
    f = np.asfortranarray(x.reshape(-1, 5))  # out of another layout
    o = np.empty(f.shape, np.float32)
    np.testing.assert_array_equal(ew_unary("gelu", f, out=o), want.reshape(-1, 5))


def test_channels_last_keeps_its_layout(path):
    x = np.random.default_rng(17).standard_normal((2, 5, 9, 8)).astype(np.float32)
    xc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for name in ("silu", "sigmoid", "gelu"):
        y = ew_unary(name, xc)
        assert y.strides == xc.strides
        np.testing.assert_array_equal(y, ew_unary(name, x))
        gy = ew_unary_grad(name, np.ones_like(xc), xc)
        np.testing.assert_array_equal(gy, ew_unary_grad(name, np.ones_like(x), x))


def test_bad_arguments_are_named():
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="unknown op 'gelu2'"):
        ew_unary("gelu2", x)
    with pytest.raises(TypeError, match="takes no parameter 'beta'"):
        ew_unary("gelu", x, beta=2.0)
    with pytest.raises(ValueError, match="out must be a NumPy array of shape"):
        ew_unary("exp", x, out=np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="out has dtype float64"):
        ew_unary("exp", x, out=np.zeros(4))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        ew_unary("exp", [1.0])
    with pytest.raises(ValueError, match="does not broadcast"):
        ew_unary_grad("exp", np.zeros(3, np.float32), x)
    with pytest.raises(ValueError, match="bias of shape"):
        bias_act("gelu", np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="probability has to be between 0 and 1"):
        dropout_apply(x, seed=0, p=1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("act", [None, "gelu", "gelu_tanh", "silu", "tanh", "sigmoid"])
def test_bias_act_matches_torch(path, act, dtype):
    rng = np.random.default_rng(10)
    x = (rng.standard_normal((3, 700, 129)) * 2).astype(dtype)
    b = rng.standard_normal(129).astype(dtype)
    tfn = {
        None: lambda h: h,
        "gelu": TF.gelu,
        "gelu_tanh": lambda h: TF.gelu(h, approximate="tanh"),
        "silu": TF.silu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
    }[act]
    xt, bt = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = tfn(xt + bt)
    g = rng.standard_normal(x.shape).astype(dtype)
    yt.backward(torch.tensor(g))
    y = bias_act(act, x, b)
    tol = dict(TOL[dtype])
    if act == "gelu_tanh" and dtype == np.float32:
        tol["atol"] = 1e-5  # see _check
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    v = y if act is None or grad_input_of(act) == "y" else x + b
    dx, db = bias_act_grad(act, g, v)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    rtol = 1e-4 if dtype == np.float32 else 1e-10  # a sum over 2100 rows
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=rtol, atol=rtol)


BINARY = {
    "add": (lambda a, b: a + b),
    "sub": (lambda a, b: a - b),
    "mul": (lambda a, b: a * b),
    "div": (lambda a, b: a / b),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", list(BINARY))
def test_large_binary_ops_with_bias_and_scalar(op, dtype, threaded, monkeypatch):
    """Big outputs run in row blocks on threads: a bias row, a column, a scalar, a full
    operand; values and gradients as PyTorch, 1 and 2 threads bitwise equal."""
    monkeypatch.setattr(_ewb, "_BIN_MIN", 1 << 14)  # "big" from 16k elements, many blocks
    monkeypatch.setattr(_ewb, "_BIN_BLOCK", 1 << 14)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((301, 1000)).astype(dtype)
    x[0, :4] = [np.inf, 1.0, np.nan, 0.0]
    x[1, 5] = -np.inf  # no row or column holds both infinities (their sums would be nan)
    others = [
        rng.standard_normal(1000).astype(dtype) + 2,  # a bias
        rng.standard_normal((301, 1)).astype(dtype) + 2,  # a column
        rng.standard_normal((301, 1000)).astype(dtype) + 2,
        0.5,
    ]
    f = BINARY[op]
    for o in others:
        results = []
        for threads in (1, 2):
            ember.set_num_threads(threads)
            xe = ember.from_numpy(x).requires_grad_()
            oe = ember.from_numpy(o).requires_grad_() if isinstance(o, np.ndarray) else o
            ye = f(xe, oe)
            ye.backward(ember.ones_like(ye))
            results.append(ye.detach().numpy())
        np.testing.assert_array_equal(results[0], results[1])
        # the compiled bias loops (when numba is installed) and NumPy's ufuncs agree bitwise
        for a, c in ((x, o), (o, x)) if isinstance(o, np.ndarray) else ():
            with np.errstate(all="ignore"):
                want = f(a, c)
            np.testing.assert_array_equal(f(ember.from_numpy(a), ember.from_numpy(c)).numpy(), want)
        xt = torch.tensor(x, requires_grad=True)
        ot = torch.tensor(o, requires_grad=True) if isinstance(o, np.ndarray) else o
        yt = f(xt, ot)
        yt.backward(torch.ones_like(yt))
        np.testing.assert_allclose(results[1], yt.detach().numpy(), rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-6, equal_nan=True)
        if isinstance(o, np.ndarray):
            # sums over rows (another kernel's summation order): float32 rounding
            np.testing.assert_allclose(
                oe.grad.numpy(), ot.grad.numpy(), rtol=1e-4, atol=1e-4, equal_nan=True
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", list(BINARY))
def test_same_shape_binary_ops_run_flat_in_the_operands_layout(op, dtype, monkeypatch):
    """Two operands of one shape and dense layout (C order, channels-last, F order) run as
    one flat compiled loop when numba's threads exist: NumPy's bits and result layout, on 1
    and 2 threads; mixed dense layouts run flat in the first operand's layout (as PyTorch),
    the second copied into it; strided views keep the ufunc."""
    calls = []
    real = _ewb._flat_binary
    monkeypatch.setattr(_ewb, "_flat_binary", lambda *a: calls.append(real(*a)) or calls[-1])
    ufunc = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide}[op]
    f = par_binary(ufunc, quiet_fp=True)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 33, 21, 19)).astype(dtype)  # 65835 elements: a partial block
    y = rng.standard_normal(x.shape).astype(dtype)
    x.flat[:4] = [np.inf, -np.inf, np.nan, 0.0]
    y.flat[:4] = [np.inf, 2.0, 1.0, 0.0]  # inf - inf, 0 / 0: nan as NumPy's
    last = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for a, b in ((x, y), (last(x), last(y)), (np.asfortranarray(x), np.asfortranarray(y))):
        with np.errstate(all="ignore"):
            want = ufunc(a, b)
        for threads in (1, 2):
            ember.set_num_threads(threads)
            got = f(a, b)
            np.testing.assert_array_equal(got, want)
            assert got.strides == want.strides
    flat_ran = jit.available() and _parallel.parallel_kernel("flat_mul", 1 << 30) is not None
    assert sum(c is not None for c in calls) == (6 if flat_ran else 0)
    calls.clear()
    wide = rng.standard_normal((5, 66, 21, 19)).astype(dtype)
    with np.errstate(all="ignore"):
        for a, b in ((x, last(y)), (last(x), y), (wide[:, ::2], wide[:, 1::2])):
            got = f(a, b)
            np.testing.assert_array_equal(got, ufunc(a, b))
            if ember.backends.cpu.dense_flat(a) is not None:  # laid out as the first
                assert got.strides == a.strides
    # mixed dense layouts ran flat (where numba's threads exist); strided views declined
    assert [c is not None for c in calls] == [flat_ran, flat_ran, False]


def test_par_binary_keeps_numpy_semantics_elsewhere(monkeypatch):
    monkeypatch.setattr(_ewb, "_BIN_MIN", 1 << 14)
    monkeypatch.setattr(_ewb, "_BIN_BLOCK", 1 << 12)
    add, div = par_binary(np.add), par_binary(np.true_divide, quiet_fp=True)
    big_i = np.arange(1 << 19)
    assert add(big_i, 1).dtype == big_i.dtype  # integers: the plain ufunc
    mixed = add(np.ones(1 << 19, np.float32), np.ones(1 << 19))
    assert mixed.dtype == np.float64  # mixed float dtypes: NumPy's promotion
    with np.errstate(all="raise"):  # quiet: x / 0 gives inf silently, in every block
        z = div(np.ones((1 << 10, 1 << 9), np.float32), np.float32(0))
    assert np.isinf(z).all()


def test_dropout_mask_is_reproducible_and_path_independent(path):
    x = np.random.default_rng(12).standard_normal((300, 1001)).astype(np.float32)
    y = dropout_apply(x, seed=7, p=0.3)
    np.testing.assert_array_equal(y, dropout_apply(x, seed=7, p=0.3))
    assert not np.array_equal(y, dropout_apply(x, seed=8, p=0.3))
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / np.float32(0.7), rtol=1e-6)
    old = jit.set_enabled(not jit._enabled)
    try:
        np.testing.assert_array_equal(y, dropout_apply(x, seed=7, p=0.3))
    finally:
        jit.set_enabled(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_dropout_forward_backward_like_torch(path, dtype):
    x = np.random.default_rng(13).standard_normal((64, 257)).astype(dtype)
    x[0, :3] = [np.inf, np.nan, 0.0]
    g = np.random.default_rng(14).standard_normal(x.shape).astype(dtype)
    ember.manual_seed(0)
    xe = ember.from_numpy(x).requires_grad_()
    ye = F.dropout(xe, 0.4)
    ye.backward(ember.from_numpy(g))
    y, gx = ye.detach().numpy(), xe.grad.numpy()
    # PyTorch's rule for its own mask m in {0, 1}: y = x * m / (1 - p), dx = g * m / (1 - p)
    m = (y != 0) | ~np.isfinite(x) | (x == 0)
    m[0, :3] = gx[0, :3] != 0
    mt = torch.tensor(m.astype(dtype))
    yt = torch.tensor(x) * mt / (1 - 0.4)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(gx, (torch.tensor(g) * mt / (1 - 0.4)).numpy(), rtol=1e-6)
    assert np.isnan(y[0, 0]) == (not m[0, 0])  # a dropped inf is inf * 0 = nan, as PyTorch
    # p = 1 drops everything; the channel variant shares the mask along the trailing axes
    np.testing.assert_array_equal(  # nan where x is inf or nan (x * 0), as PyTorch
        F.dropout(ember.from_numpy(x), 1.0).numpy(),
        TF.dropout(torch.tensor(x), 1.0).numpy(),
    )
    z = F.dropout2d(ember.ones(4, 6, 5, 5, dtype=ember.float32), 0.5).numpy()
    assert (z.reshape(24, 25).std(axis=1) == 0).all()


def test_ember_jit_0_uses_the_numpy_path():
    code = (
        "import numpy as np; from ember.backends import jit; "
        "from ember.ops._ew_kernels import ew_unary; "
        "assert jit.get('gelu_f32') is None; "
        "print(ew_unary('gelu', np.array([1.0], np.float32))[0])"
    )
    env = dict(os.environ, EMBER_JIT="0")
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert abs(float(r.stdout) - TF.gelu(torch.tensor(1.0)).item()) < 1e-6


def test_softplus_without_parameters_takes_the_defaults():
    """ew_unary / ew_unary_grad called without beta and threshold (their small-array fast
    path) use PyTorch's defaults instead of calling the kernel without them."""
    from ember.ops._ew_kernels import ew_unary, ew_unary_grad

    x = np.linspace(-30, 30, 101).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    want = torch.nn.functional.softplus(tx)
    want.backward(torch.ones_like(want))
    np.testing.assert_allclose(ew_unary("softplus", x), want.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        ew_unary_grad("softplus", np.ones_like(x), x), tx.grad.numpy(), rtol=1e-6, atol=1e-7
    )
