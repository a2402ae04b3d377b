"""The parallel builds of the compiled kernels (``jit.get_parallel``): numba splits their
``prange`` loops over its threads. Every op that uses one gives bitwise the results of the
serial build on one thread (float32 and float64, odd sizes, non-contiguous inputs), agrees
with PyTorch, and really ran the parallel build; a forked child falls back to the serial
kernels instead of hanging in OpenMP.
"""

import multiprocessing

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _gemm, _parallel

TF = torch.nn.functional

if not jit.parallel_available():  # pragma: no cover - depends on numba's threading layers
    pytest.skip(
        "numba with a thread-safe threading layer (OpenMP or TBB) is not available: "
        "the parallel kernel builds are never used",
        allow_module_level=True,
    )


@pytest.fixture
def split_everything(monkeypatch):
    """Every kernel with a parallel build uses it, however small the array."""
    monkeypatch.setattr(_parallel, "JIT_PAR_MIN_WORK", 0)
    old = ember.get_num_threads()
    yield
    ember.set_num_threads(old)


def _run(fn, threads):
    ember.set_num_threads(threads)
    return fn()


def _grads(fn, arrays):
    """fn's output and the gradients of sum(out * weights) w.r.t. ``arrays``."""
    ts = [ember.tensor(a).requires_grad_(True) for a in arrays]
    y = fn(*ts)
    w = np.linspace(-1.0, 1.0, y.numel()).reshape(y.shape).astype(arrays[0].dtype)
    (y * ember.tensor(w)).sum().backward()
    return [y.detach().numpy()] + [t.grad.numpy() for t in ts]


def _torch_grads(fn, arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    w = torch.tensor(np.linspace(-1.0, 1.0, y.numel()).reshape(tuple(y.shape))).to(y.dtype)
    (y * w).sum().backward()
    return [y.detach().numpy()] + [t.grad.numpy() for t in ts]


def _noncontig(a):
    return np.ascontiguousarray(np.swapaxes(a, 0, -1)).swapaxes(0, -1)


CASES = {
    # name: (ember fn, torch fn, input shapes, parallel kernels it must use)
    "softmax": (
        lambda x: F.softmax(x, -1),
        lambda x: TF.softmax(x, -1),
        [(37, 53)],
        ["softmax_rows", "softmax_bwd_rows"],
    ),
    "log_softmax": (
        lambda x: F.log_softmax(x, -1),
        lambda x: TF.log_softmax(x, -1),
        [(5, 7, 31)],
        ["softmax_rows", "softmax_bwd_rows"],
    ),
    "softmax_mid": (
        lambda x: F.softmax(x, 1),
        lambda x: TF.softmax(x, 1),
        [(9, 13, 11)],
        ["softmax_mid", "softmax_bwd_mid"],
    ),
    "layer_norm": (
        lambda x, w, b: F.layer_norm(x, (29,), w, b),
        lambda x, w, b: TF.layer_norm(x, (29,), w, b),
        [(3, 41, 29), (29,), (29,)],
        ["layer_norm_rows"],
    ),
    "rms_norm": (
        lambda x, w: F.rms_norm(x, (19,), w),
        lambda x, w: TF.rms_norm(x, (19,), w),
        [(43, 19), (19,)],
        ["rms_norm_rows"],
    ),
    "relu": (F.relu, TF.relu, [(37, 301)], ["relu_blocks", "relu_grad_blocks"]),
    "sum": (lambda x: x.sum(-1), lambda x: x.sum(-1), [(33, 257)], ["row_sums"]),
    "mean": (lambda x: x.mean(-1), lambda x: x.mean(-1), [(7, 9, 100)], ["row_sums"]),
    "var": (lambda x: x.var(-1), lambda x: x.var(-1), [(21, 77)], ["row_vars"]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_parallel_build_equals_serial_and_torch(name, contiguous, dtype, split_everything):
    fn, tfn, shapes, kernels = CASES[name]
    rng = np.random.default_rng(len(name))
    arrays = [(rng.standard_normal(s) * 3).astype(dtype) for s in shapes]
    if not contiguous:
        arrays[0] = _noncontig(arrays[0])
    one = _run(lambda: _grads(fn, arrays), 1)
    two = _run(lambda: _grads(fn, arrays), 2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    for k in kernels:
        assert k in jit._parallel_compiled, f"{name} did not run the parallel build of {k}"
    ref = _torch_grads(tfn, arrays)
    # float32 sums (weight gradients over many rows) differ from PyTorch's in order: a few
    # ulp of the array's largest value
    eps = 2e-5 if dtype == np.float32 else 1e-11
    for a, r in zip(two, ref):
        np.testing.assert_allclose(a, r, rtol=eps, atol=eps * np.abs(r).max())


def test_layer_norm_backward_blocks_on_threads(split_everything, monkeypatch):
    """The weight and bias gradients sum per-block partials: several fixed blocks run on
    two threads give the one-thread bits."""
    from ember.ops import _norm_kernels

    monkeypatch.setattr(_norm_kernels, "BLOCK", 64)  # many blocks of a few rows each
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(57, 17), (17,), (17,)]]

    def f(x, w, b):
        return F.layer_norm(x, (17,), w, b)

    one = _run(lambda: _grads(f, arrays), 1)
    two = _run(lambda: _grads(f, arrays), 2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert "layer_norm_bwd_blocks" in jit._parallel_compiled
    ref = _torch_grads(lambda x, w, b: TF.layer_norm(x, (17,), w, b), arrays)
    for a, r in zip(two, ref):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_parallel(dtype, split_everything):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((67, 23)) * 4).astype(dtype)
    t = rng.integers(0, 23, 67)
    t[::7] = -100

    def run():
        xe = ember.tensor(x).requires_grad_(True)
        loss = F.cross_entropy(xe, ember.tensor(t))
        loss.backward()
        return loss.detach().numpy(), xe.grad.numpy()

    one, two = _run(run, 1), _run(run, 2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert "ce_rows" in jit._parallel_compiled
    xt = torch.tensor(x, requires_grad=True)
    lt = TF.cross_entropy(xt, torch.tensor(t))
    lt.backward()
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(two[0], lt.detach().numpy(), rtol=tol)
    np.testing.assert_allclose(two[1], xt.grad.numpy(), rtol=tol, atol=tol * 1e-2)


def test_cross_entropy_grad_kernel_parallel(split_everything):
    """The no-grad backward primitive (one fused kernel) splits its rows too."""
    from ember.ops.nn import _ce_grad_impl

    rng = np.random.default_rng(6)
    x = rng.standard_normal((45, 30)).astype(np.float32)
    t = rng.integers(0, 30, 45)
    g = np.float32(1.0)
    args = {"ignore_index": -100, "reduction": "mean"}
    one = _run(lambda: _ce_grad_impl(g, x, t, **args), 1)
    two = _run(lambda: _ce_grad_impl(g, x, t, **args), 2)
    np.testing.assert_array_equal(one, two)
    assert "ce_grad_rows" in jit._parallel_compiled
    xt = torch.tensor(x, requires_grad=True)
    TF.cross_entropy(xt, torch.tensor(t)).backward()
    np.testing.assert_allclose(two, xt.grad.numpy(), rtol=2e-5, atol=1e-7)


def test_scaled_masked_softmax_parallel(split_everything):
    from ember.ops.attention import softmax_scale_mask

    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 19, 19)).astype(np.float32)
    mask = np.triu(np.full((19, 19), -np.inf, np.float32), 1)

    def run():
        return softmax_scale_mask(ember.tensor(x), ember.tensor(mask), 0.25).numpy()

    one, two = _run(run, 1), _run(run, 2)
    np.testing.assert_array_equal(one, two)
    assert "softmax_scale_mask_rows" in jit._parallel_compiled
    ref = torch.softmax(torch.tensor(x) * 0.25 + torch.tensor(mask), -1).numpy()
    np.testing.assert_allclose(two, ref, rtol=2e-5, atol=1e-7)


UNARY = {
    "sigmoid": (torch.sigmoid, lambda x: ember.sigmoid(x)),
    "silu": (TF.silu, F.silu),
    "gelu": (TF.gelu, F.gelu),
    "gelu_tanh": (
        lambda x: TF.gelu(x, approximate="tanh"),
        lambda x: F.gelu(x, approximate="tanh"),
    ),
    "exp": (torch.exp, ember.exp),
    "softplus": (lambda x: TF.softplus(x, 2.0, 5.0), lambda x: F.softplus(x, 2.0, 5.0)),
    "erf": (torch.erf, ember.erf),
    "tanh": (torch.tanh, ember.tanh),
}


@pytest.mark.parametrize("size", [(5000,), (4099, 17)])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_parallel_build(name, size, split_everything):
    tfn, efn = UNARY[name]
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(size) * 4).astype(np.float32)
    one = _run(lambda: _grads(efn, [x]), 1)
    two = _run(lambda: _grads(efn, [x]), 2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    ref = _torch_grads(tfn, [x])
    for a, r in zip(two, ref):  # the float32 kernels: a few ulp of the largest value
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-6 * np.abs(r).max())


def test_unary_parallel_builds_are_used(split_everything):
    x = ember.tensor(np.linspace(-3, 3, 70001, dtype=np.float32)).requires_grad_(True)
    ember.set_num_threads(2)
    F.silu(x).sum().backward()
    assert {"silu_f32", "silu_grad_f32"} <= set(jit._parallel_compiled)


def test_the_build_depends_on_the_size_not_the_threads():
    """One thread runs the parallel build too (on one numba thread): a row is computed by
    the same machine code whatever the thread count."""
    import numba

    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        k1 = _parallel.parallel_kernel("row_sums", 1 << 40)
        assert k1 is not None and numba.get_num_threads() == 1
        ember.set_num_threads(2)
        assert _parallel.parallel_kernel("row_sums", 1 << 40) is k1
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        assert _parallel.parallel_kernel("row_sums", _parallel.JIT_PAR_MIN_WORK - 1) is None
    finally:
        ember.set_num_threads(old)


def _child_softmax(conn):
    try:
        ember.set_num_threads(2)
        x = ember.tensor(np.arange(64 * 33, dtype=np.float32).reshape(64, 33) / 100)
        conn.send(F.softmax(x, -1).numpy())
    finally:
        conn.close()


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform"
)
def test_forked_child_runs_serial_kernels(split_everything):
    """GNU OpenMP's threads do not survive fork(): a child of a process that ran parallel
    kernels computes with the serial builds (it would otherwise abort or hang)."""
    ember.set_num_threads(2)
    x = ember.tensor(np.arange(64 * 33, dtype=np.float32).reshape(64, 33) / 100)
    want = F.softmax(x, -1).numpy()
    assert "softmax_rows" in jit._parallel_compiled
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child_softmax, args=(send,))
    p.start()
    send.close()
    assert recv.poll(60), "the forked child produced nothing in 60 s"
    got = recv.recv()
    p.join(30)
    assert p.exitcode == 0
    np.testing.assert_array_equal(got, want)


def test_elementwise_blocks_match_the_kernels_blocks():
    """A block of the pool's path is whole blocks of the compiled kernels, and both give the
    same bits as one call over the whole array."""
    from ember.backends import jit, kernels_ew
    from ember.ops import _ew_kernels

    assert _ew_kernels.EW_BLOCK % kernels_ew.BLOCK == 0
    k = jit.get("exp_f32")
    assert k is not None  # (this module runs only with numba, see above)
    x = np.random.default_rng(0).standard_normal(3 * _ew_kernels.EW_BLOCK + 77)
    x = x.astype(np.float32)
    whole, blocks = np.empty_like(x), np.empty_like(x)
    k(x, whole)
    for a in range(0, x.size, _ew_kernels.EW_BLOCK):
        k(x[a : a + _ew_kernels.EW_BLOCK], blocks[a : a + _ew_kernels.EW_BLOCK])
    np.testing.assert_array_equal(whole.view(np.uint32), blocks.view(np.uint32))


@pytest.mark.parametrize(
    "shape,dims",
    [((16, 33, 257), (-1,)), ((300, 251), (0,)), ((7, 9, 1100), (1, 2)), ((64, 33, 40), (0, 1))],
)
@pytest.mark.parametrize("red", ["sum", "mean"])
def test_sum_and_mean_gradients_filled_by_row_kernels(shape, dims, red, split_everything):
    """The gradient of a sum/mean over trailing or leading axes is written by the fill
    kernels (split over threads); it equals PyTorch's exactly (a broadcast)."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(xt, red)(dims)
    gw = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(gw))
    for threads in (1, 2):
        ember.set_num_threads(threads)
        xe = ember.tensor(x).requires_grad_(True)
        getattr(xe, red)(dims).backward(ember.tensor(gw))
        np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())
    name = "fill_rows" if dims[0] != 0 else "repeat_rows"
    assert name in jit._parallel_compiled


@pytest.mark.parametrize(
    "shape", [(16, 64, 32, 32), (3, 24, 32, 8), (2, 9, 16, 16), (1, 40, 32, 32)]
)
def test_nchw_to_nhwc_copies(shape):
    """The compiled NCHW -> NHWC copy (any input with contiguous rows) and NumPy's (other
    strides, other dtypes) give the transposed array, into a new array, a padded interior
    view or another dtype."""
    from ember.ops._layout import nchw_to_nhwc

    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = x.transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(nchw_to_nhwc(x), want)
    n, c, h, w = shape
    padded = np.zeros((n, h + 2, w + 2, c), np.float32)
    nchw_to_nhwc(x, padded[:, 1:-1, 1:-1])
    np.testing.assert_array_equal(padded[:, 1:-1, 1:-1], want)
    assert not padded[:, 0].any() and not padded[:, :, -1].any()
    np.testing.assert_array_equal(nchw_to_nhwc(x, dtype=np.float64), want.astype(np.float64))
    for sliced in (x[:, ::2], x[..., ::2]):  # planes further apart; strided rows
        np.testing.assert_array_equal(nchw_to_nhwc(sliced), sliced.transpose(0, 2, 3, 1))


@pytest.mark.parametrize(
    "shape, padding",
    [
        ((2, 24, 20, 18), (1, 1, 1, 1)),  # planes not 4 KiB apart (NumPy's copy before)
        ((3, 16, 32, 32), (2, 0, 0, 3)),  # aliasing planes, one-sided padding
        ((1, 5, 33, 130), (0, 0, 0, 0)),
        ((2, 64, 9, 7), (4, 4, 3, 3)),  # padding wider than the image rows
    ],
)
def test_nchw_to_nhwc_padded_transposes_and_pads_in_one_pass(shape, padding):
    """The one-pass copy of an NCHW input into a zero-padded NHWC array (the implicit-GEMM
    convolution's operand) equals NumPy's transpose and pad, for contiguous and sliced
    inputs; inputs it does not take (float64, strided rows) get None."""
    from ember.ops._layout import nchw_to_nhwc_padded

    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    t, b, left, r = padding
    for src in (x, x[:, ::2], x[:, :, 1:, :-1]):
        want = np.pad(src.transpose(0, 2, 3, 1), ((0, 0), (t, b), (left, r), (0, 0)))
        got = nchw_to_nhwc_padded(src, padding)
        assert got is not None and got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)
    assert nchw_to_nhwc_padded(x.astype(np.float64), padding) is None
    assert nchw_to_nhwc_padded(x[..., ::2], padding) is None


@pytest.mark.parametrize("args", [(3, 2, 1), (2, 1, 0), (3, 3, 1)])
def test_max_pool_parallel_and_nchw_gradient(args, split_everything):
    """The general max-pool kernels on numba's threads, an NCHW input and an NCHW upstream
    gradient (read in place, NCHW input gradient): PyTorch's values, the same bits on one
    and two threads."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 24, 17, 15)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.max_pool2d(xt, *args)
    g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(g))
    got = []
    for threads in (1, 2):
        ember.set_num_threads(threads)
        xe = ember.tensor(x).requires_grad_(True)
        ye = F.max_pool2d(xe, *args)
        ye.backward(ember.tensor(g))
        got.append((ye.detach().numpy(), xe.grad.numpy()))
        np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy())
        np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[0][1], got[1][1])
    assert {"max_pool_nhwc", "max_pool_scatter_nhwc"} <= set(jit._parallel_compiled)


@pytest.mark.parametrize("mkn", [(700, 300, 130), (64, 4100, 900), (257, 512, 129)])
def test_split_gemm_on_numba_threads(mkn, monkeypatch, cpu_vendor):
    """Large float32 GEMMs run their fixed blocks as cblas_sgemm calls on numba's threads:
    every operand layout (transposed views need no copy), the pool's values, one and two
    threads bitwise alike."""
    monkeypatch.setattr(_gemm, "_PACKED", [False])  # OpenBLAS (test_packed_gemm: ours)
    from ember.ops import _parallel as P

    monkeypatch.setattr(_gemm, "_PAR_GEMM_MACS", 1)
    m, k, n = mkn
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    ref = a.astype(np.float64) @ b
    old = ember.get_num_threads()
    try:
        for A in (a, np.asfortranarray(a)):
            for B in (b, np.asfortranarray(b)):
                got = []
                for threads in (1, 2):
                    ember.set_num_threads(threads)
                    got.append(P.gemm(A, B))
                np.testing.assert_array_equal(got[0], got[1])
                np.testing.assert_allclose(got[1], ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())
        out = np.zeros((m, n + 5), np.float32)  # an output with a longer row
        P.gemm(a, b, out=out[:, :n])
        np.testing.assert_array_equal(out[:, n:], 0)
        np.testing.assert_allclose(out[:, :n], ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())
        ember.set_num_threads(2)
        compiled = P.gemm(a, b)
        monkeypatch.setattr(_gemm, "_gemm_compiled", lambda *args: False)
        # the pool's blocks agree (NumPy turns a one-row block into a gemv: not bitwise)
        np.testing.assert_allclose(P.gemm(a, b), compiled, rtol=1e-5, atol=1e-4)
    finally:
        ember.set_num_threads(old)
    assert {"sgemm_rows", "sgemm_cols"} & set(jit._parallel_compiled)


def test_split_gemm_blocks_of_those_shapes_run_as_small_tiles(cpu_vendor):
    """On AMD the blocks above run as OpenBLAS small-matrix tiles (with short last tiles)
    where the BLAS has them: untransposed operands, and a transposed B (a linear layer's
    weight). On Intel, whose packed kernel is faster, only thin blocks do."""
    from ember.backends.kernels_blas import _small_kernels, small_gemm_tiles, small_gemm_tiles_nt

    if not _small_kernels():
        pytest.skip("NumPy's OpenBLAS has no AVX-512 small-matrix kernels: blocks stay one call")
    assert small_gemm_tiles_nt(512, 256, 1024) == (512, 256)  # a long K: one call
    assert small_gemm_tiles(512, 256, 64) == (56, 256)  # a short K
    assert small_gemm_tiles_nt(32, 1024, 256) == (16, 64)  # few rows
    if cpu_vendor == "AuthenticAMD":
        assert small_gemm_tiles(192, 130, 300) == (24, 130)
        assert small_gemm_tiles_nt(192, 130, 300) == (16, 64)
        assert small_gemm_tiles_nt(128, 129, 512) == (16, 64)
        assert small_gemm_tiles(512, 768, 256) == (24, 128)
    else:
        assert small_gemm_tiles(192, 130, 300) == (192, 130)
        assert small_gemm_tiles_nt(128, 129, 512) == (128, 129)
        assert small_gemm_tiles(512, 768, 256) == (512, 768)
        assert small_gemm_tiles_nt(64, 128, 784) == (16, 64)  # an MLP's 64-row block
        assert small_gemm_tiles_nt(512, 256, 64) == (512, 256)


@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.true_divide])
def test_binary_ops_with_a_bias_mask_or_number_on_threads(ufunc):
    """``x op b`` where ``b`` is a trailing block of x's shape (a bias, an attention mask) or
    a Python number runs the compiled row kernels on numba's threads: NumPy's exact values
    and dtype, either operand order, one and two threads alike."""
    from ember.ops._ew_binary import par_binary

    f = par_binary(ufunc, True)
    rng = np.random.default_rng(3)
    cases = [
        ((16, 4, 64, 130), (64, 130)),
        ((2048, 513), (513,)),
        ((3, 1 << 19), ()),
        ((1 << 20,), ()),
    ]
    old = ember.get_num_threads()
    try:
        for xs, ys in cases:
            x = rng.standard_normal(xs).astype(np.float32)
            ys_vals = [rng.standard_normal(ys).astype(np.float32)] if ys else [0.125, 3, -2.5]
            for y in ys_vals:
                for a, b in ((x, y), (y, x)):
                    with np.errstate(all="ignore"):
                        want = ufunc(a, b)
                    for threads in (1, 2):
                        ember.set_num_threads(threads)
                        got = f(a, b)
                        assert got.dtype == want.dtype and got.shape == want.shape
                        np.testing.assert_array_equal(got, want)
    finally:
        ember.set_num_threads(old)
    assert {"bias_add", "bias_sub", "bias_mul", "bias_div"} & set(jit._parallel_compiled)


def test_gemm_split_threshold(monkeypatch):
    """With the compiled split, float32 GEMMs split from ~2M multiply-adds (an MLP's
    128x784x128); float64 (the pool's blocks) keeps the higher threshold; a product that
    would be one block anyway is one BLAS call."""
    monkeypatch.setattr(_gemm, "_PACKED", [False])  # OpenBLAS (test_packed_gemm: ours)
    from ember.backends.cpu import sgemm_address
    from ember.ops import _parallel as P

    if not (jit.parallel_available() and sgemm_address()):
        pytest.skip("numba's OpenMP/TBB layer or NumPy's cblas_sgemm is missing")
    calls = []
    real = _gemm._gemm_compiled
    monkeypatch.setattr(
        _gemm, "_gemm_compiled", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k)
    )
    rng = np.random.default_rng(3)
    cases = [((128, 784, 128), np.float32, True), ((64, 512, 64), np.float32, False),
             ((96, 128, 96), np.float32, False), ((128, 256, 128), np.float64, False),
             ((128, 256, 128), np.float32, True)]  # fmt: skip
    for (m, k, n), dtype, split in cases:
        calls.clear()
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        got = P.gemm(a, b)
        assert bool(calls) is split, ((m, k, n), dtype)
        np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mkn", [(700, 300, 130), (64, 4100, 900), (5, 7, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_adds_the_bias_in_its_blocks(mkn, dtype, monkeypatch, gemm_kernel):
    """``gemm(a, b, bias=)`` (linear layers): row blocks add the bias to their own rows
    after their GEMM, column blocks and small products after; equal to ``a @ b + bias``
    (the same GEMM bits plus one rounding), one and two threads bitwise alike, on the
    compiled kernels and on the pool."""
    from ember.ops import _parallel as P

    m, k, n = mkn
    rng = np.random.default_rng(n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    old = ember.get_num_threads()
    try:
        for compiled in (True, False):
            if not compiled:
                monkeypatch.setattr(_gemm, "_gemm_compiled", lambda *args: False)
            got = []
            for threads in (1, 2):
                ember.set_num_threads(threads)
                got.append(P.gemm(a, b, bias=bias))
                assert got[-1].dtype == dtype and got[-1].shape == (m, n)
            np.testing.assert_array_equal(got[0], got[1])
            plain = P.gemm(a, b)
            np.testing.assert_array_equal(got[1], plain + bias)
        # a bias of another dtype is cast to the product's, as ``out += bias`` does
        half = bias.astype(np.float16)
        np.testing.assert_array_equal(P.gemm(a, b, bias=half), P.gemm(a, b) + half.astype(dtype))
    finally:
        ember.set_num_threads(old)


def test_batched_matmul_on_numba_threads(gemm_kernel):
    """Per-head products (attention) run one cblas_sgemm (or one packed micro-kernel GEMM)
    per matrix on numba's threads: transposed views without copies, one and two threads
    bitwise alike."""
    from ember.ops import _parallel as P

    rng = np.random.default_rng(4)
    old = ember.get_num_threads()
    try:
        for xs, ys in [((16, 4, 128, 64), (16, 4, 64, 128)), ((3, 5, 70, 33), (3, 5, 33, 90))]:
            a = rng.standard_normal(xs).astype(np.float32)
            b = rng.standard_normal(ys).astype(np.float32)
            bt = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
            for A, B in ((a, b), (a, bt)):
                got = []
                for threads in (1, 2):
                    ember.set_num_threads(threads)
                    got.append(P.matmul(A, B))
                np.testing.assert_array_equal(got[0], got[1])
                ref = A.astype(np.float64) @ B
                np.testing.assert_allclose(got[1], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    finally:
        ember.set_num_threads(old)
    name = "sgemm_packed_batched" if gemm_kernel == "packed" else "sgemm_batched"
    assert name in jit._parallel_compiled


def test_batched_matmul_reads_strided_batches_in_place(monkeypatch):
    """Heads sliced out of a fused projection (batch strides that do not merge into one)
    are read where they are (one outer and one inner batch step per operand), one and two
    threads bitwise alike, the products equal NumPy's."""
    from ember.ops import _parallel as P

    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((6, 40, 3, 4, 16)).astype(np.float32)  # (B, T, 3, H, D)
    q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # (B, H, T, D), batch strides do not merge
    k = qkv[:, :, 1].transpose(0, 2, 1, 3)
    p = rng.standard_normal((6, 4, 40, 40)).astype(np.float32)
    w = rng.standard_normal((2, 3, 5, 40, 16)).astype(np.float32)[:, :, ::2]  # 3 batch dims
    ones = rng.standard_normal((6, 1, 4, 40, 16)).astype(np.float32)[:, 0]  # a size-1 dim
    cases = [
        (q, k.swapaxes(-1, -2)),
        (p, k),
        (p.swapaxes(-1, -2), q),
        (k.swapaxes(-1, -2), p),
        (ones, k.swapaxes(-1, -2)),
        (w, w.swapaxes(-1, -2)),
    ]
    monkeypatch.setattr(_gemm, "_PAR_GEMM_MACS", 1)  # every product takes the split path
    old = ember.get_num_threads()
    try:
        for A, B in cases:
            got = []
            for threads in (1, 2):
                ember.set_num_threads(threads)
                got.append(P.matmul(A, B))
            np.testing.assert_array_equal(got[0], got[1])
            ref = A.astype(np.float64) @ B
            np.testing.assert_allclose(got[1], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
            split = _gemm._batch_split(A.shape[:-2], A.strides[:-2], B.strides[:-2])
            if A.ndim == 4:  # two batch dims always split into outer and inner
                assert split is not None
        # three batch dims whose strides nest in neither operand: the copying fallback
        bad = rng.standard_normal((4, 3, 2, 8, 8)).astype(np.float32).transpose(1, 0, 2, 3, 4)
        assert _gemm._batch_split(bad.shape[:-2], bad.strides[:-2], bad.strides[:-2]) is None
        np.testing.assert_allclose(P.matmul(bad, bad), bad @ bad, rtol=1e-5, atol=1e-5)
    finally:
        ember.set_num_threads(old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["channels_last", "nchw"])
def test_batch_norm_blocks_on_threads(layout, dtype, split_everything, monkeypatch):
    """Training batch norm, forward and backward: the per-channel sums are per-block
    partials (fixed row blocks) added in block order, so two threads give the one-thread
    bits; the parallel block kernels ran; values and gradients match PyTorch."""
    from ember.ops import normalization

    monkeypatch.setattr(normalization, "_BN_BLOCK", 96)  # many blocks of a few rows each
    monkeypatch.setattr(normalization, "_BN_JIT_BLOCK", 96)
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, 5, 7, 6)) * 2 + 1).astype(dtype)
    if layout == "channels_last":
        x = np.ascontiguousarray(x).transpose(0, 3, 1, 2)  # (3, 6, 5, 7), channels-last
    else:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    w = rng.standard_normal(6).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)

    def run():
        xt = ember.from_numpy(x.copy() if layout == "nchw" else x).requires_grad_(True)
        wt, bt = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
        y = F.batch_norm(xt, None, None, wt, bt, training=True)
        gw = np.linspace(-1.0, 1.0, y.numel()).reshape(y.shape).astype(dtype)
        (y * ember.tensor(gw)).sum().backward()
        return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]

    one = _run(run, 1)
    two = _run(run, 2)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)
    if layout == "channels_last":  # one kernel each way: sums, coefficients, elementwise
        names = ("bn_train_rows", "bn_backward_rows")
    else:
        names = ("bn_stats_planes", "affine_planes", "bn_grad_stats_planes",
                 "bn_grad_input_planes")  # fmt: skip
    for k in names:
        assert k in jit._parallel_compiled, f"batch norm did not run {k}"
    ts = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b)]
    y = TF.batch_norm(ts[0], None, None, ts[1], ts[2], training=True)
    gw = torch.tensor(np.linspace(-1.0, 1.0, y.numel()).reshape(tuple(y.shape))).to(y.dtype)
    (y * gw).sum().backward()
    ref = [y.detach().numpy()] + [t.grad.numpy() for t in ts]
    eps = 2e-5 if dtype == np.float32 else 1e-11
    for a, r in zip(two, ref):
        np.testing.assert_allclose(a, r, rtol=eps, atol=eps * np.abs(r).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_gather_on_threads(dtype, split_everything):
    """The embedding lookup's compiled row gather: the table's rows exactly, on one and two
    threads; a gradient through it matches PyTorch; an index out of range still raises."""
    rng = np.random.default_rng(9)
    w = rng.standard_normal((37, 19)).astype(dtype)
    idx = rng.integers(0, 37, (5, 71))

    def run():
        wt = ember.tensor(w, requires_grad=True)
        y = F.embedding(ember.tensor(idx), wt)
        (
            y * ember.tensor(np.linspace(-1, 1, y.numel()).reshape(y.shape).astype(dtype))
        ).sum().backward()
        return y.detach().numpy(), wt.grad.numpy()

    one, two = _run(run, 1), _run(run, 2)
    assert "embedding_rows" in jit._parallel_compiled
    np.testing.assert_array_equal(one[0], np.take(w, idx, axis=0))
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)
    wt = torch.tensor(w, requires_grad=True)
    yt = TF.embedding(torch.tensor(idx), wt)
    (
        yt * torch.tensor(np.linspace(-1, 1, yt.numel()).reshape(tuple(yt.shape)).astype(dtype))
    ).sum().backward()
    np.testing.assert_allclose(two[1], wt.grad.numpy(), rtol=1e-6, atol=1e-6)
    # the gather checks the indices as it copies: out of range either way names the range
    for bad in ([[0, 37]], [[-1, 3]], [[5, 2, 99, 0]]):
        with pytest.raises(IndexError, match=r"index out of range in self .*\[0, 37\)"):
            F.embedding(ember.tensor(np.array(bad)), ember.tensor(w))
