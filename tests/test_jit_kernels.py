"""The compiled ([jit] extra, numba) kernels against PyTorch and against Ember's NumPy path.

Ops with a compiled kernel (batch norm, ReLU and its gradient, 2x2 max pooling) must give the
same results with numba and without: each test runs both paths (``jit.set_enabled``). When
numba is not installed only the NumPy path runs, and the test says so by its id.
"""

from functools import partial

import numpy as np
import pytest
import torch
from _f32_bounds import EPS32, assert_within, batch_norm_bound, multilinear_bound

import ember
from ember.backends import jit

PATHS = ["numpy"] + (["jit"] if jit.available() or not jit._enabled else [])


@pytest.fixture(params=PATHS)
def path(request):
    old = jit.set_enabled(request.param == "jit")
    yield request.param
    jit.set_enabled(old)


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def test_jit_is_used_when_numba_is_installed():
    pytest.importorskip("numba", reason="numba (the [jit] extra) is not installed")
    if not jit._enabled:
        pytest.skip("EMBER_JIT=0 disables the compiled kernels")
    assert jit.get("relu") is not None


def test_kernels_use_512_bit_vectors_on_avx512_machines():
    """LLVM prefers 256-bit vectors on Intel's AVX-512 targets; Ember lets numba use the
    full width there (numba's target features end with ``-prefer-256-bit``), and leaves
    numba alone with ``EMBER_JIT_AVX512=0``."""
    import os
    import subprocess
    import sys

    from llvmlite import binding as ll

    nb = jit._load_numba()
    if "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ:
        pytest.skip("the user chose numba's target: Ember leaves it")
    host = ll.get_host_cpu_features().flatten()
    if "+avx512f" in host.split(","):
        assert host + ",-prefer-256-bit" == nb.config.CPU_FEATURES
    else:
        assert nb.config.CPU_FEATURES is None
    code = "from ember.backends import jit; print(jit._load_numba().config.CPU_FEATURES)"
    env = dict(os.environ, EMBER_JIT_AVX512="0")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "None"


@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (2, 16, 6, 4), (1, 1, 3, 3)])
def test_relu_and_grad(path, shape):
    rng = np.random.default_rng(0)
    x = _channels_last(rng.standard_normal(shape).astype(np.float32))
    x[0, 0, 0, :2] = [np.nan, 0.0]
    g = _channels_last(rng.standard_normal(shape).astype(np.float32))
    xe = ember.from_numpy(x).requires_grad_()
    y = ember.relu(xe)
    y.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.relu(xt)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())


def test_relu_big_flat_blocks(path):
    x = np.random.default_rng(1).standard_normal((3, 1 << 19)).astype(np.float64)
    y = ember.relu(ember.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@pytest.mark.parametrize("shape", [(4, 6, 8, 8), (3, 5, 7, 9), (2, 3, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2x2_channels_last(path, shape, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, :2, :2] = 1.0  # ties: the first maximum wins
    x[0, 1, 0, 0] = np.nan  # NaN propagates
    x = _channels_last(x)
    g = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(dtype)
    xe = ember.from_numpy(x).requires_grad_()
    y, idx = ember.nn.functional.max_pool2d(xe, 2, return_indices=True)
    y.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, 2, return_indices=True)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), it.numpy())
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("shape", [(4, 6, 8, 8), (3, 5, 7, 9), (2, 3, 3, 2), (1, 1, 2, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2x2_planes(path, shape, dtype):
    """The tiling 2x2 average pool of NCHW planes: the NumPy path's bits on both paths
    (jit or not), PyTorch's values and gradients; odd sizes drop the last row/column."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[1] = np.inf
    x.flat[-1] = np.nan
    xe = ember.from_numpy(x).requires_grad_()
    y = ember.nn.functional.avg_pool2d(xe, 2)
    g = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(ember.from_numpy(g))
    old = jit.set_enabled(False)
    try:
        want = ember.nn.functional.avg_pool2d(ember.from_numpy(x), 2).numpy()
    finally:
        jit.set_enabled(old)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, 2)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("shape", [(8, 16, 5, 5), (3, 7, 9, 2), (2, 3, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_channels_last(path, shape, dtype):
    rng = np.random.default_rng(3)
    x = _channels_last((rng.standard_normal(shape) * 4 + 100).astype(dtype))  # offset: var
    g = _channels_last(rng.standard_normal(shape).astype(dtype))
    w = rng.standard_normal(shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    bn = ember.nn.BatchNorm2d(shape[1], dtype=ember.float64 if dtype == np.float64 else None)
    tbn = torch.nn.BatchNorm2d(shape[1], dtype=torch.float64 if dtype == np.float64 else None)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(w))
        tbn.bias.copy_(torch.tensor(b))
    bn.load_state_dict({k: ember.tensor(v.numpy()) for k, v in tbn.state_dict().items()})
    xe = ember.from_numpy(x).requires_grad_()
    ye = bn(xe)
    ye.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    yt = tbn(xt)
    yt.backward(torch.tensor(g))
    # the offset of 100 with std 4 costs |mean|/std = 25 in the centred values: in the bound
    scale = 1.0 if dtype == np.float32 else np.finfo(np.float64).eps / EPS32
    b_y, b_gx, b_gw, b_gb = (bd * scale for bd in batch_norm_bound(x, w, b, g))
    assert_within(ye.detach().numpy(), yt.detach().numpy(), b_y, "y")
    assert_within(xe.grad.numpy(), xt.grad.numpy(), b_gx, "grad x")
    assert_within(bn.weight.grad.numpy(), tbn.weight.grad.numpy(), b_gw, "grad w")
    assert_within(bn.bias.grad.numpy(), tbn.bias.grad.numpy(), b_gb, "grad b")
    # running stats: a sum over M = N*H*W elements of magnitude |mean| (+ var for the var)
    m = x.size // shape[1]
    xd = x.astype(np.float64)
    for got, ref, mag in (
        (bn.running_mean, tbn.running_mean, np.abs(xd).mean((0, 2, 3))),
        (bn.running_var, tbn.running_var, xd.var((0, 2, 3)) * (1 + np.abs(xd.mean((0, 2, 3))))),
    ):
        bound = 4 * np.sqrt(m) * scale * EPS32 * (mag + np.abs(ref.numpy()))
        assert_within(got.numpy(), ref.numpy(), bound, "running stats")


@pytest.mark.parametrize(
    "cls,kw",
    [
        ("Adam", {}),
        ("Adam", {"weight_decay": 0.1, "maximize": True}),
        ("AdamW", {"weight_decay": 0.05}),
        ("Adam", {"amsgrad": True}),  # no fused kernel: the NumPy path on both settings
    ],
)
@pytest.mark.parametrize("shape", [(40, 30), (300, 250)])  # (300, 250): the threaded blocks
def test_adam_steps_match_torch(path, cls, kw, shape):
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(shape).astype(np.float32)
    grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(6)]
    pe = ember.tensor(p0, requires_grad=True)
    pt = torch.tensor(p0, requires_grad=True)
    oe = getattr(ember.optim, cls)([pe], lr=1e-2, **kw)
    ot = getattr(torch.optim, cls)([pt], lr=1e-2, **kw)
    for g in grads:
        pe.grad = ember.tensor(g)
        pt.grad = torch.tensor(g)
        oe.step()
        ot.step()
    np.testing.assert_allclose(pe.detach().numpy(), pt.detach().numpy(), rtol=1e-5, atol=1e-6)
    st = ot.state[pt]
    se = oe.state[pe]
    np.testing.assert_allclose(se["exp_avg"].numpy(), st["exp_avg"].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        se["exp_avg_sq"].numpy(), st["exp_avg_sq"].numpy(), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_threaded_blocks_bitwise_as_serial(decoupled):
    """The blocked Adam kernel (large parameters) updates each element as the serial one
    does: the same bits on one and two threads and at any size threshold."""
    from ember.backends import jit
    from ember.ops import _parallel

    serial = jit.get("adam_step_blocks")  # the serial build: blocks one after another
    if serial is None:
        pytest.skip("numba is not installed: no compiled Adam kernel")
    rng = np.random.default_rng(7)
    n = 3 * (1 << 13) + 5  # three full blocks and a ragged one
    arrays = [rng.standard_normal(n).astype(np.float32) for _ in range(3)]
    arrays.append(rng.random(n).astype(np.float32))  # v >= 0
    f = np.float32
    scalars = (f(0.1), f(0.999), f(0.001), f(0.01), f(0.05), f(1e-8))
    tail = (f(0), f(0.999), False) if decoupled else (f(0.01), f(1), True)
    want = [a.copy() for a in arrays]
    serial(*want, *scalars, *tail)
    prev = _parallel.get_num_threads()
    try:
        for threads in (1, 2):
            _parallel.set_num_threads(threads)
            k = _parallel.parallel_kernel("adam_step_blocks", 1 << 30)
            if k is None:
                pytest.skip("numba has no threading layer here: no blocked kernel")
            got = [a.copy() for a in arrays]
            k(*got, *scalars, *tail)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
    finally:
        _parallel.set_num_threads(prev)


def test_batch_norm_large_runs_in_threaded_blocks(path):
    """Above ~2M elements the row blocks run on several threads: same result as PyTorch."""
    rng = np.random.default_rng(5)
    x = _channels_last(rng.standard_normal((8, 64, 64, 66)).astype(np.float32))
    g = _channels_last(rng.standard_normal(x.shape).astype(np.float32))
    xe = ember.from_numpy(x).requires_grad_()
    ye = ember.nn.functional.batch_norm(xe, None, None, training=True)
    ye.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, training=True)
    yt.backward(torch.tensor(g))
    b_y, b_gx, _, _ = batch_norm_bound(x, None, None, g)
    assert_within(ye.detach().numpy(), yt.detach().numpy(), b_y, "y")
    assert_within(xe.grad.numpy(), xt.grad.numpy(), b_gx, "grad x")


@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,ceil",
    [
        (3, 2, 1, 1, False),
        (3, 1, 1, 1, False),
        (2, 2, 0, 2, False),
        (3, 2, 0, 1, True),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_general_many_channels(
    path, kernel, stride, padding, dilation, ceil, channels_last
):
    """16+ channels: any window runs on the compiled channels-last kernel (NCHW inputs are
    transposed first)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 16, 9, 11)).astype(np.float32)
    x[0, 0, :3, :3] = 2.0  # ties
    x[1, 2, 4, 4] = np.nan
    if channels_last:
        x = _channels_last(x)
    kw = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "ceil_mode": ceil,
        "return_indices": True,
    }
    xe = ember.from_numpy(x).requires_grad_()
    y, idx = ember.nn.functional.max_pool2d(xe, **kw)
    g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, **kw)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.detach().numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(idx.numpy(), it.numpy())
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_conv(path, stride, padding, dilation, dtype):
    rng = np.random.default_rng(7)
    x = _channels_last(rng.standard_normal((3, 12, 9, 8)).astype(dtype))
    w = rng.standard_normal((12, 1, 3, 3)).astype(dtype)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": 12}
    xe, we = ember.from_numpy(x).requires_grad_(), ember.tensor(w, requires_grad=True)
    ye = ember.nn.functional.conv2d(xe, we, **kw)
    g = rng.standard_normal(tuple(ye.shape)).astype(dtype)
    ye.backward(ember.from_numpy(g))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, **kw)
    yt.backward(torch.tensor(g))
    bounds = multilinear_bound(partial(torch.nn.functional.conv2d, **kw), (x, w), g)
    scale = 1.0 if dtype == np.float32 else np.finfo(np.float64).eps / EPS32
    for got, ref, bound in zip((ye.detach(), xe.grad, we.grad), (yt, xt.grad, wt.grad), bounds):
        assert_within(got.numpy(), ref.detach().numpy(), bound * scale, "depthwise conv")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_cell_state", [False, True])
def test_lstm_backward(path, dtype, use_cell_state):
    """The reverse recurrence (compiled cell or NumPy) against PyTorch, including a loss on
    the final cell state (a nonzero cell-state cotangent) and a reversed direction."""
    torch.manual_seed(8)
    t = torch.nn.LSTM(
        5,
        7,
        bidirectional=True,
        batch_first=True,
        dtype=torch.float64 if dtype == np.float64 else torch.float32,
    )
    e = ember.nn.LSTM(
        5,
        7,
        bidirectional=True,
        batch_first=True,
        dtype=ember.float64 if dtype == np.float64 else ember.float32,
    )
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((3, 30, 5)).astype(dtype)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ye, (_, ce)), (yt, (_, ct)) = e(xe), t(xt)
    le = (ye * ye).sum() + ((ce * 3).sum() if use_cell_state else 0)
    lt = (yt * yt).sum() + ((ct * 3).sum() if use_cell_state else 0)
    le.backward()
    lt.backward()
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-11}
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **tol)
    for (name, pe), (_, pt) in zip(e.named_parameters(), t.named_parameters()):
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("shape", [(32, 64, 8, 8), (4, 48, 32, 32), (2, 5, 40, 41)])
def test_relu_grad_of_mixed_layouts(shape):
    """An NCHW gradient against a channels-last ReLU output (a global average pool's
    gradient reaching a conv block's ReLU) is copied into the output's layout and runs the
    flat kernel: PyTorch's gradient, laid out as the activation."""
    rng = np.random.default_rng(7)
    x = _channels_last(rng.standard_normal(shape).astype(np.float32))
    g = rng.standard_normal(shape).astype(np.float32)  # C-contiguous NCHW
    xe = ember.from_numpy(x).requires_grad_()
    ember.nn.functional.relu(xe).backward(ember.from_numpy(g))
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.tensor(g))
    np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())
