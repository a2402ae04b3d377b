"""Softmax, normalization, cross-entropy, reduction and embedding kernels against PyTorch.

Each test runs the compiled kernels of ``ember.backends.kernels_norm`` and the NumPy code
(``jit.set_enabled``); values and gradients in float32 and float64, odd sizes, negative
dims, non-contiguous inputs and -inf masks; and the threaded row blocks give bitwise the same
results on one and two threads.
"""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _norm_kernels, _parallel
from ember.ops.attention import softmax_scale_mask

PATHS = ["numpy"] + (["jit"] if jit.available() or not jit._enabled else [])
DTYPES = [np.float32, np.float64]
TF = torch.nn.functional


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


def _tol(dtype):
    # float32: the kernels' exp is within ~3 ulp and row sums run in another order than
    # PyTorch's, so a few ulp of the largest value
    return {"rtol": 1e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _close(a, b, dtype):
    np.testing.assert_allclose(a, b, equal_nan=True, **_tol(dtype))


def _pair(a, grad=True):
    return ember.tensor(a).requires_grad_(grad), torch.tensor(a, requires_grad=grad)


def _noncontig(a):
    """``a``'s values in a transposed (non-contiguous) view."""
    return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)


def test_kernels_are_compiled_when_numba_is_installed():
    pytest.importorskip("numba", reason="numba (the [jit] extra) is not installed")
    if not jit._enabled:
        pytest.skip("EMBER_JIT=0 disables the compiled kernels")
    assert jit.get("softmax_rows") is not None


@pytest.mark.parametrize(
    "dtype,lo,hi,bound", [(np.float32, -86.5, 88.5, 1.2e-7), (np.float64, -707.0, 709.0, 5e-16)]
)
def test_kernel_exp_accuracy(dtype, lo, hi, bound):
    """The vectorizable exp of the kernels, against float64 (float32) or long double."""
    numba = pytest.importorskip("numba")
    from ember.backends.kernels_norm import FASTMATH, fexp

    @numba.njit(fastmath=FASTMATH)
    def run(x, out):
        for i in range(x.size):
            out[i] = fexp(x[i])

    x = np.linspace(lo, hi, 200_001).astype(dtype)
    out = np.empty_like(x)
    run(x, out)
    ref = np.exp(x.astype(np.longdouble))
    assert np.max(np.abs(out - ref) / ref) < bound  # about one ulp
    special = np.array([np.nan, -np.inf, np.inf, -2000.0, 2000.0, 0.0], dtype)
    run(special, out[:6])
    np.testing.assert_array_equal(out[:6], [np.nan, 0.0, np.inf, 0.0, np.inf, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize(
    "shape,dim", [((7, 33), -1), ((3, 5, 17), 1), ((4, 6, 5), 0), ((2, 3, 4, 9), -2), ((5,), 0)]
)
def test_softmax_values_and_grads(path, dtype, fn, shape, dim):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for a in (x, _noncontig(x)):
        xe, xt = _pair(a)
        ye, yt = getattr(ember, fn)(xe, dim), getattr(torch, fn)(xt, dim)
        ye.backward(ember.tensor(g))
        yt.backward(torch.tensor(g))
        _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
        _close(xe.grad.numpy(), xt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_inf_masked_rows(path, dtype, fn):
    """-inf entries get 0 probability; a row of -inf gives NaN, as PyTorch."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 19)).astype(dtype)
    x[0, 3:] = -np.inf
    x[1] = -np.inf
    x[2, 5] = np.nan
    for dim in (-1, 0):
        ye = getattr(ember, fn)(ember.tensor(x), dim).numpy()
        _close(ye, getattr(torch, fn)(torch.tensor(x), dim).numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_second_order(path, dtype):
    """create_graph takes the composite VJP: the gradient of the gradient matches PyTorch."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 7)).astype(dtype)
    xe, xt = _pair(x)
    (ge,) = ember.autograd.grad((ember.softmax(xe, -1) ** 2).sum(), xe, create_graph=True)
    (gt,) = torch.autograd.grad((torch.softmax(xt, -1) ** 2).sum(), xt, create_graph=True)
    _close(ge.detach().numpy(), gt.detach().numpy(), dtype)
    (hh,) = ember.autograd.grad(ge.sum(), xe)
    (ht,) = torch.autograd.grad(gt.sum(), xt)
    _close(hh.numpy(), ht.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_shape", [(5, 7), (1, 3, 5, 7), (2, 1, 5, 7), (7,), None])
def test_softmax_scale_mask(path, dtype, mask_shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xe, xt = _pair(x)
    me = mt = None
    if mask_shape is not None:
        m = rng.standard_normal(mask_shape).astype(dtype)
        m[..., 2] = -np.inf
        me, mt = _pair(m)
    ye = softmax_scale_mask(xe, me, 0.37)
    yt = torch.softmax(xt * 0.37 + (0 if mt is None else mt), -1)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)
    if me is not None:
        _close(me.grad.numpy(), mt.grad.numpy(), dtype)


def test_softmax_scale_mask_fully_masked_row_and_errors(path):
    x = np.zeros((2, 4), np.float32)
    m = np.array([[0.0, -np.inf, 0.0, 0.0], [-np.inf] * 4], np.float32)
    ye = softmax_scale_mask(ember.tensor(x), ember.tensor(m), 2.0).numpy()
    _close(ye, torch.softmax(torch.tensor(x) * 2 + torch.tensor(m), -1).numpy(), np.float32)
    with pytest.raises(ValueError, match="does not broadcast"):
        softmax_scale_mask(ember.tensor(x), ember.zeros(3), 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,ns", [((3, 7, 33), (33,)), ((4, 5, 6), (5, 6)), ((300, 65), (65,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(path, dtype, shape, ns, affine):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    (xe, xt), (we, wt), (be, bt) = (
        _pair(a) for a in (x, rng.standard_normal(ns).astype(dtype), rng.standard_normal(ns))
    )
    be, bt = _pair(rng.standard_normal(ns).astype(dtype))
    ye = F.layer_norm(xe, ns, we if affine else None, be if affine else None)
    yt = TF.layer_norm(xt, ns, wt if affine else None, bt if affine else None)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)
    if affine:
        # weight/bias gradients sum 300 rows: PyTorch sums in float32, Ember in float64 across
        # row blocks, so allow a few ulp of the row count
        tol = {"rtol": 1e-5, "atol": 5e-5} if dtype == np.float32 else _tol(dtype)
        np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), **tol)
        np.testing.assert_allclose(be.grad.numpy(), bt.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,ns", [((3, 7, 33), (33,)), ((4, 5, 6), (5, 6)), ((300, 65), (65,))])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm(path, dtype, shape, ns, affine):
    rng = np.random.default_rng(5)
    x = _noncontig((rng.standard_normal(shape) * 2 + 1).astype(dtype))
    g = rng.standard_normal(shape).astype(dtype)
    xe, xt = _pair(x)
    we, wt = _pair(rng.standard_normal(ns).astype(dtype))
    ye = F.rms_norm(xe, ns, we if affine else None, 1e-6)
    yt = TF.rms_norm(xt, ns, wt if affine else None, 1e-6)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)
    if affine:
        tol = {"rtol": 1e-5, "atol": 5e-5} if dtype == np.float32 else _tol(dtype)
        np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), **tol)


def test_rms_norm_bad_weight():
    with pytest.raises(ValueError, match="rms_norm: weight shape"):
        F.rms_norm(ember.ones(2, 3), (3,), ember.ones(4))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,correction", [(-1, 0), (-1, 2), ((0, 2), 1), (None, 1)])
def test_var_corrections(path, dtype, dim, correction):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((4, 17, 70)) + 3).astype(dtype)
    xe, xt = _pair(x)
    ye = xe.var(dim, keepdim=True, correction=correction)
    yt = xt.var(dim, keepdim=True, correction=correction)
    ye.backward(ember.ones(ye.shape))
    yt.backward(torch.ones(yt.shape))
    _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_norm(path, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 6, 5, 7)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xe, xt = _pair(x)
    we, wt = _pair(rng.standard_normal(6).astype(dtype))
    ye, yt = F.group_norm(xe, 3, we), TF.group_norm(xt, 3, wt)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(path, dtype, reduction, weighted, smoothing):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((37, 11)) * 3).astype(dtype)
    t = rng.integers(0, 11, 37)
    t[::5] = -100
    w = rng.random(11).astype(dtype)
    xe, xt = _pair(x)
    kw = {"reduction": reduction, "label_smoothing": smoothing}
    ye = F.cross_entropy(xe, ember.tensor(t), ember.tensor(w) if weighted else None, **kw)
    yt = TF.cross_entropy(xt, torch.tensor(t), torch.tensor(w) if weighted else None, **kw)
    g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    tol = dict(_tol(dtype))
    if dtype == np.float32 and reduction == "sum":
        tol["atol"] = 3e-5  # a sum of 37 losses of ~3: a few ulp of the total
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **tol)
    _close(xe.grad.numpy(), xt.grad.numpy(), dtype)


def test_cross_entropy_bad_target(path):
    with pytest.raises((IndexError, ValueError), match="cross_entropy|out of"):
        F.cross_entropy(ember.zeros(2, 3), ember.tensor([0, 3]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["sum", "mean", "amax", "var"])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_reductions(path, dtype, fn, dim):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 17, 70)).astype(dtype)  # last-axis kernel from 4096 elements
    for a in (x, _noncontig(x)):
        xe, xt = _pair(a)
        ye, yt = getattr(xe, fn)(dim), getattr(xt, fn)(dim)
        g = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        ye.backward(ember.tensor(g))
        yt.backward(torch.tensor(g))
        _close(ye.detach().numpy(), yt.detach().numpy(), dtype)
        _close(xe.grad.numpy(), xt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_grad(path, dtype, padding_idx):
    rng = np.random.default_rng(9)
    w = rng.standard_normal((50, 130)).astype(dtype)
    idx = rng.integers(0, 50, (7, 33))  # repeated indices: the scatter adds
    g = rng.standard_normal((7, 33, 130)).astype(dtype)
    we, wt = _pair(w)
    F.embedding(ember.tensor(idx), we, padding_idx=padding_idx).backward(ember.tensor(g))
    TF.embedding(torch.tensor(idx), wt, padding_idx=padding_idx).backward(torch.tensor(g))
    _close(we.grad.numpy(), wt.grad.numpy(), dtype)


def _all_ops(rng):
    """Every kernel-backed op forward and backward on one input set: the arrays out."""
    x = rng.standard_normal((96, 130)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    outs = []
    for f in (
        lambda t: ember.softmax(t, -1),
        lambda t: ember.log_softmax(t, 0),
        lambda t: F.layer_norm(t, (130,), ember.ones(130) * 1.5, ember.zeros(130)),
        lambda t: F.rms_norm(t, (130,), ember.ones(130) * 0.5),
        lambda t: softmax_scale_mask(t, ember.tensor(x[:1]), 0.3),
        lambda t: t.sum(-1, keepdim=True).expand(96, 130) * 1.0,
        lambda t: t.var(-1, keepdim=True).expand(96, 130) * 1.0,
    ):
        xe = ember.tensor(x).requires_grad_()
        y = f(xe)
        y.backward(ember.tensor(g))
        outs += [y.detach().numpy(), xe.grad.numpy()]
    t = rng.integers(0, 130, 96)
    xe = ember.tensor(x).requires_grad_()
    loss = F.cross_entropy(xe, ember.tensor(t))
    loss.backward()
    outs += [loss.detach().numpy(), xe.grad.numpy()]
    w = ember.tensor(x[:20]).requires_grad_()
    F.embedding(ember.tensor(t % 20), w).sum().backward()
    return outs + [w.grad.numpy()]


def test_one_and_two_threads_bitwise_equal(path, monkeypatch):
    """Small blocks and no work threshold: every kernel runs in threaded blocks."""
    monkeypatch.setattr(_parallel, "PAR_MIN_WORK", 0)
    monkeypatch.setattr(_norm_kernels, "BLOCK", 1000)
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = _all_ops(np.random.default_rng(10))
        ember.set_num_threads(2)
        two = _all_ops(np.random.default_rng(10))
    finally:
        ember.set_num_threads(old)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_jit_and_numpy_paths_agree():
    if not jit.available():
        pytest.skip("numba is not installed or EMBER_JIT=0: one path only")
    old = jit.set_enabled(False)
    try:
        ref = _all_ops(np.random.default_rng(11))
    finally:
        jit.set_enabled(old)
    got = _all_ops(np.random.default_rng(11))
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sums_and_the_linear_bias_gradient(path, dtype):
    """``column_sums`` (a linear layer's bias gradient) against float64 sums, for row counts
    that do not divide into its 8 blocks, the same bits on one and two threads, NumPy for
    narrow, small or non-contiguous arrays; the bias gradient against PyTorch's."""
    from ember.ops.nn import column_sums

    rng = np.random.default_rng(11)
    for shape in [(2049, 40), (777, 129), (8, 10000), (5000, 3), (3, 4)]:
        a = rng.standard_normal(shape).astype(dtype)
        got = column_sums(a)
        assert got.dtype == dtype and got.shape == (shape[1],)
        want = a.astype(np.float64).sum(0)
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=2e-4 if dtype == np.float32 else 1e-11)  # fmt: skip
        old = ember.get_num_threads()
        try:
            ember.set_num_threads(1)
            one = column_sums(a)
        finally:
            ember.set_num_threads(old)
        np.testing.assert_array_equal(one, got)
    strided = rng.standard_normal((4000, 64)).astype(dtype)[:, ::2]
    np.testing.assert_array_equal(column_sums(strided), np.add.reduce(strided, axis=0))
    x0 = rng.standard_normal((64, 33, 48)).astype(dtype)
    w0 = rng.standard_normal((40, 48)).astype(dtype)
    b0 = rng.standard_normal(40).astype(dtype)
    xe, we, be = (ember.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    F.linear(xe, we, be).tanh().sum().backward()
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x0, w0, b0))
    TF.linear(xt, wt, bt).tanh().sum().backward()
    _close(be.grad.numpy(), bt.grad.numpy(), dtype)
