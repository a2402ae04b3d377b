"""The compiled im2col + GEMM convolution loops (``ember.ops._conv_gemm``,
``ember.backends.kernels_convgemm``): float32 convolutions with one group take them, forward
and the fused training backward. Values and gradients agree with PyTorch over paddings,
strides, dilations, kernel shapes, batch sizes (the row-block and image-block splits) and
input layouts; one and two threads give bitwise the same results; the kernels really ran;
and without them the pool-driven NumPy blocks give the same answer.
"""

import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.backends.cpu import sgemm_address
from ember.ops import _conv_gemm
from ember.ops._parallel import packed_kernel_available

if not (jit.parallel_available() and sgemm_address()):  # pragma: no cover - machine-dependent
    pytest.skip(
        "numba's OpenMP/TBB layer or NumPy's OpenBLAS cblas_sgemm is missing: the compiled "
        "convolution loops are never used",
        allow_module_level=True,
    )

TF = torch.nn.functional

# (N, C, H, W), (O, kh, kw), stride, padding, dilation
CASES = {
    "3x3 same": ((4, 16, 9, 11), (8, 3, 3), 1, 1, 1),
    "3x3 same, batch 9": ((9, 8, 6, 7), (12, 3, 3), 1, 1, 1),
    "5x5 valid": ((3, 6, 12, 10), (16, 5, 5), 1, 0, 1),
    # 196 input pixels per 144 output pixels: the input gradient as an implicit-GEMM full conv
    "3x3 valid, input gradient a full conv": ((2, 16, 14, 14), (24, 3, 3), 1, 0, 1),
    "3x3 stride 2": ((5, 16, 13, 12), (24, 3, 3), 2, 1, 1),
    "3x3 stride 3 pad 2": ((2, 8, 11, 14), (8, 3, 3), 3, 2, 1),
    "1x3 asymmetric": ((3, 8, 7, 9), (5, 1, 3), 1, (0, 1), 1),
    "dilation 2": ((2, 8, 12, 12), (6, 3, 3), 1, 2, 2),
    "dilation (2, 1)": ((2, 8, 12, 12), (6, 3, 3), 1, (2, 1), (2, 1)),
    "batch 1, large rows": ((1, 16, 40, 37), (16, 3, 3), 1, 1, 1),
    "padding wider than kernel": ((2, 8, 5, 6), (4, 3, 3), 1, 3, 1),
    "64 channels": ((8, 64, 8, 8), (64, 3, 3), 1, 1, 1),
    # GEMM blocks run as OpenBLAS small-matrix tiles (40 and 64 rows; a short last tile)
    "80 outputs, row tiles": ((3, 32, 10, 9), (80, 3, 3), 1, 1, 1),
    "200 outputs, row tiles": ((2, 8, 11, 13), (200, 3, 3), 1, 1, 1),
    # the implicit GEMM's edges: K = kw*C beyond one chunk of 512, output rows beyond one
    # block of 256 rows (and strided), partial panels of 33 and 40 outputs
    "K beyond one chunk": ((2, 200, 6, 7), (8, 3, 3), 1, 1, 1),
    "rows beyond one block": ((1, 8, 3, 300), (16, 3, 3), 1, 1, 1),
    "wide rows, stride 2": ((1, 8, 3, 300), (40, 3, 3), 2, 1, 1),
    "33 outputs": ((2, 64, 9, 9), (33, 3, 3), 1, 1, 1),
}


def _arrays(xs, ws, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal((ws[0], xs[1]) + ws[1:]) * 0.2).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    return x, w, b


@pytest.fixture
def counted(monkeypatch):
    """Counts the compiled kernel runs (forward, fused backward, weight gradient)."""
    runs = {"fwd": 0, "bwd": 0, "gw": 0, "implicit": 0, "gw_implicit": 0}
    fwd, bwd, gw = _conv_gemm.forward, _conv_gemm.backward, _conv_gemm.grad_weight
    imp, gw_imp = _conv_gemm.forward_implicit, _conv_gemm.grad_weight_implicit

    def forward(*a, **k):
        out = fwd(*a, **k)
        runs["fwd"] += out is not None
        return out

    def forward_implicit(*a, **k):
        out = imp(*a, **k)
        runs["fwd"] += out is not None
        runs["implicit"] += out is not None
        return out

    def backward(*a, **k):
        out = bwd(*a, **k)
        runs["bwd"] += out is not None
        return out

    def grad_weight(*a, **k):
        out = gw(*a, **k)
        runs["gw"] += out is not None
        return out

    def grad_weight_implicit(*a, **k):
        out = gw_imp(*a, **k)
        runs["gw_implicit"] += out is not None
        return out

    monkeypatch.setattr(_conv_gemm, "grad_weight", grad_weight)
    monkeypatch.setattr(_conv_gemm, "grad_weight_implicit", grad_weight_implicit)
    monkeypatch.setattr(_conv_gemm, "forward", forward)
    monkeypatch.setattr(_conv_gemm, "forward_implicit", forward_implicit)
    monkeypatch.setattr(_conv_gemm, "backward", backward)
    return runs


def _ember_step(x, w, b, stride, padding, dilation, layout="nchw"):
    xa = x if layout == "nchw" else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    xt = ember.from_numpy(xa if layout == "nchw" else xa.transpose(0, 3, 1, 2))
    xt.requires_grad_(True)
    wt = ember.tensor(w, requires_grad=True)
    bt = ember.tensor(b, requires_grad=True)
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation)
    gw = np.linspace(-1, 1, y.numel(), dtype=np.float32).reshape(y.shape)
    (y * ember.tensor(gw)).sum().backward()
    return [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]


def _torch_step(x, w, b, stride, padding, dilation):
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = TF.conv2d(*ts, stride=stride, padding=padding, dilation=dilation)
    gw = torch.tensor(np.linspace(-1, 1, y.numel(), dtype=np.float32).reshape(tuple(y.shape)))
    (y * gw).sum().backward()
    return [y.detach().numpy()] + [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_gemm_matches_torch(name, layout, counted, gemm_kernel):
    xs, ws, stride, padding, dilation = CASES[name]
    x, w, b = _arrays(xs, ws)
    got = _ember_step(x, w, b, stride, padding, dilation, layout)
    want = _torch_step(x, w, b, stride, padding, dilation)
    assert counted["fwd"] >= 1, "the compiled forward did not run"
    for g, t, what in zip(got, want, ("output", "input grad", "weight grad", "bias grad")):
        assert g.shape == t.shape, what
        np.testing.assert_allclose(g, t, rtol=2e-4, atol=2e-4 * np.abs(t).max(), err_msg=what)


@pytest.mark.parametrize(
    "name", ["3x3 same", "5x5 valid", "3x3 stride 2", "3x3 stride 3 pad 2", "1x3 asymmetric",
             "padding wider than kernel", "batch 1, large rows", "200 outputs, row tiles"],
)  # fmt: skip
def test_the_implicit_gemm_forward_runs_on_the_packed_kernel(name, counted, gemm_kernel):
    """With the packed micro-kernel, undilated one-group forwards read the (padded) input in
    place as their im2col rows (:func:`ember.ops._conv_gemm.forward_implicit`); values and
    gradients as PyTorch's, on one and two threads alike."""
    xs, ws, stride, padding, dilation = CASES[name]
    x, w, b = _arrays(xs, ws, seed=11)
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = _ember_step(x, w, b, stride, padding, dilation, "channels_last")
        ember.set_num_threads(2)
        two = _ember_step(x, w, b, stride, padding, dilation, "channels_last")
    finally:
        ember.set_num_threads(old)
    # the forward of each step (an input gradient that is a convolution may take it too)
    if packed_kernel_available():  # "packed", and "mkl" (MKL keeps the conv micro-kernel)
        assert counted["implicit"] >= 2
    else:
        assert counted["implicit"] == 0
    want = _torch_step(x, w, b, stride, padding, dilation)
    for a, c, t in zip(one, two, want):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-4 * np.abs(t).max())


@pytest.mark.parametrize("size, k, o", [(9, 3, 40), (12, 5, 40), (10, 3, 8)])
def test_a_stride_1_backward_runs_as_two_implicit_gemms(size, k, o, counted, gemm_kernel):
    """A stride-1 convolution's backward on the packed micro-kernel: the input gradient is
    the implicit-GEMM convolution of the padded gradient with the flipped kernel and the
    weight gradient reads the padded input in place (no im2col matrix at all), with more and
    with fewer output than input channels; PyTorch's gradients, the same bits on one and
    two threads. On OpenBLAS the fused im2col backward runs instead."""
    from ember.ops import conv as C

    rng = np.random.default_rng(size)
    x = rng.standard_normal((3, size, size, 16)).astype(np.float32).transpose(0, 3, 1, 2)
    w = (rng.standard_normal((o, 16, k, k)) * 0.1).astype(np.float32)
    pad = k // 2
    g = rng.standard_normal((3, o, size, size)).astype(np.float32)
    p = {"stride": (1, 1), "padding": (pad,) * 4, "dilation": (1, 1), "groups": 1}
    runs = []
    for threads in (1, 2):
        old = ember.get_num_threads()
        try:
            ember.set_num_threads(threads)
            runs.append(C._conv2d_backward_impl(g, x, w, **p))
        finally:
            ember.set_num_threads(old)
    packed = packed_kernel_available()
    assert counted["implicit"] == counted["gw_implicit"] == (2 if packed else 0)
    assert counted["bwd"] == (0 if packed else 2)
    xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    TF.conv2d(xt, wt, padding=pad).backward(torch.tensor(g))
    for got in runs:
        for a, t in zip(got, (xt.grad.numpy(), wt.grad.numpy())):
            np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-4 * np.abs(t).max())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "shape, o, k, padding",
    [((2, 5, 9, 11), 20, 3, (1, 0, 2, 1)), ((3, 16, 7, 9), 48, 3, 1), ((2, 8, 6, 6), 8, 5, 4)],
)
def test_the_implicit_weight_gradient_matches_float64(shape, o, k, padding):
    """The implicit-GEMM weight gradient alone (asymmetric and wide padding, 48 outputs: a
    partial panel; 8 outputs: half-width tiles) against a float64 im2col reference."""
    if not _conv_gemm.implicit_usable(np.dtype(np.float32), shape[1], k, 1, (1, 1), (0,) * 4):
        pytest.skip("the implicit GEMM needs the packed micro-kernel (AVX-512, numba)")
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(np.float32)
    pads = padding if isinstance(padding, tuple) else (padding,) * 4
    n, c, h, w = shape
    ho, wo = h + pads[0] + pads[1] - k + 1, w + pads[2] + pads[3] - k + 1
    gm = rng.standard_normal((n, ho, wo, o)).astype(np.float32)
    with warnings.catch_warnings():  # every partial sum fully written: no garbage summed
        warnings.simplefilter("error")
        got = _conv_gemm.grad_weight_implicit(x, gm, (k, k), (1, 1), pads)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pads[:2], pads[2:]))
    want = np.zeros((k, k, c, o))
    for i in range(k):
        for j in range(k):
            win = xp[:, :, i : i + ho, j : j + wo]
            want[i, j] = np.einsum("nchw,nhwo->co", win, gm.astype(np.float64))
    np.testing.assert_allclose(got, want.reshape(-1, o), rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize(
    "xs, o, k, stride, padding",
    [
        ((8, 16, 15, 14), 24, 3, 2, 1),  # a ResNet downsampling layer
        ((9, 12, 16, 17), 40, 5, 2, (2, 1)),  # a partial last panel, a short last block
        ((8, 6, 14, 14), 16, 5, 1, 0),  # LeNet's second layer: a 'valid' scatter, stride 1
        ((10, 8, 13, 13), 8, 3, 3, 0),  # stride = kernel: no overlaps
    ],
)
def test_strided_input_gradient_runs_as_one_compiled_loop(xs, o, k, stride, padding, gemm_kernel):
    """With 8 or more images the col2im input gradient (strided convolutions, 'valid' ones
    with a large input-to-output ratio) runs its GEMM on the packed micro-kernel and its
    scatter in one loop on numba's threads: PyTorch's gradient, the same bits on one and two
    threads; on OpenBLAS the pool's blocks run instead."""
    from ember.ops import conv as C

    rng = np.random.default_rng(4)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal((o, xs[1], k, k)) * 0.2).astype(np.float32)
    pad = padding if isinstance(padding, tuple) else (padding, padding)
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.conv2d(xt, torch.tensor(w), stride=stride, padding=pad)
    g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(g))
    p = {"stride": (stride,) * 2, "padding": (pad[0], pad[0], pad[1], pad[1]), "dilation": (1, 1)}
    runs, calls = [], []
    real = _conv_gemm.grad_input_col2im

    def counting(*a, **kw):
        out = real(*a, **kw)
        calls.append(out is not None)
        return out

    old = ember.get_num_threads()
    try:
        _conv_gemm.grad_input_col2im = counting
        for threads in (1, 2):
            ember.set_num_threads(threads)
            runs.append(C._conv2d_grad_input_impl(g, w, groups=1, in_hw=xs[2:], **p))
    finally:
        _conv_gemm.grad_input_col2im = real
        ember.set_num_threads(old)
    assert calls == ([True] * 2 if packed_kernel_available() else [])
    want = xt.grad.numpy()
    np.testing.assert_allclose(runs[0], want, rtol=2e-4, atol=2e-4 * np.abs(want).max())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_fused_backward_runs_the_compiled_kernel(counted):
    """A dilated stride-1 convolution (no implicit GEMM) takes the fused im2col backward."""
    x, w, b = _arrays((4, 16, 9, 11), (8, 3, 3))
    _ember_step(x, w, b, 1, 2, 2)
    assert counted["bwd"] == 1


def test_strided_weight_gradient_runs_the_compiled_kernel(counted):
    x, w, b = _arrays((5, 16, 13, 12), (24, 3, 3))
    _ember_step(x, w, b, 2, 1, 1)
    assert counted["gw"] == 1 and counted["bwd"] == 0


@pytest.mark.parametrize("name", ["3x3 same", "3x3 stride 2", "batch 1, large rows", "5x5 valid"])
def test_conv_gemm_one_and_two_threads_bitwise_equal(name, gemm_kernel):
    xs, ws, stride, padding, dilation = CASES[name]
    x, w, b = _arrays(xs, ws, seed=3)
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = _ember_step(x, w, b, stride, padding, dilation)
        ember.set_num_threads(2)
        two = _ember_step(x, w, b, stride, padding, dilation)
    finally:
        ember.set_num_threads(old)
    for a, c in zip(one, two):
        assert np.array_equal(a, c)


def test_non_contiguous_input_matches_torch(counted):
    rng = np.random.default_rng(5)
    big = rng.standard_normal((3, 12, 14, 20)).astype(np.float32)
    x = big[:, ::2, 1:12, ::2]  # strided in channels, rows and columns
    w = (rng.standard_normal((7, 6, 3, 3)) * 0.2).astype(np.float32)
    got = F.conv2d(ember.from_numpy(x), ember.tensor(w), padding=1).numpy()
    want = TF.conv2d(torch.tensor(np.ascontiguousarray(x)), torch.tensor(w), padding=1).numpy()
    assert counted["fwd"] == 1
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_bfloat16_input_computes_in_float32(counted):
    x, w, _ = _arrays((2, 8, 6, 6), (4, 3, 3))
    xe = ember.tensor(x).to(ember.bfloat16)
    we = ember.tensor(w).to(ember.bfloat16)
    y = F.conv2d(xe, we, padding=1)
    assert y.dtype == ember.bfloat16 and counted["fwd"] == 1
    xt = torch.tensor(x).to(torch.bfloat16).float()
    wt = torch.tensor(w).to(torch.bfloat16).float()
    want = TF.conv2d(xt, wt, padding=1).to(torch.bfloat16).float().numpy()
    np.testing.assert_allclose(y.to(ember.float32).numpy(), want, rtol=2e-2, atol=2e-2)


def test_same_answer_without_the_compiled_kernels(monkeypatch):
    """The pool-driven NumPy blocks (no numba threading layer) agree with the kernels."""
    x, w, b = _arrays((9, 16, 10, 10), (8, 3, 3), seed=7)
    with_kernels = _ember_step(x, w, b, 1, 1, 1)
    monkeypatch.setattr(_conv_gemm, "blas_loop_kernel", lambda name: None)
    without = _ember_step(x, w, b, 1, 1, 1)
    for a, c in zip(with_kernels, without):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5 * np.abs(c).max())


def test_float64_and_grouped_convs_keep_their_paths(counted):
    x, w, _ = _arrays((2, 8, 6, 6), (4, 3, 3))
    y = F.conv2d(ember.tensor(x.astype(np.float64)), ember.tensor(w.astype(np.float64)), padding=1)
    want = TF.conv2d(
        torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64), padding=1
    )
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)
    wg = w[:, :4]  # groups=2
    yg = F.conv2d(ember.tensor(x), ember.tensor(wg), padding=1, groups=2)
    np.testing.assert_allclose(
        yg.numpy(),
        TF.conv2d(torch.tensor(x), torch.tensor(wg), padding=1, groups=2).numpy(),
        rtol=2e-4,
        atol=2e-4,
    )
    assert counted["fwd"] == 0


@pytest.mark.parametrize(
    "n, ho, wo, k",
    [(32, 32, 32, 144), (3, 32, 32, 144), (1, 5, 5, 9), (64, 2, 2, 4608), (8, 224, 224, 27)],
)
def test_blocks_cover_every_row_once(n, ho, wo, k):
    nbi, rpc, rows = _conv_gemm.blocks(n, ho, wo, k)
    assert rows == (nbi * ho * wo if rpc >= ho else rpc * wo)
    assert nbi == 1 or rpc == ho
    if rpc < ho:
        assert rows * k <= max(_conv_gemm.BLOCK_ELEMS, _conv_gemm.MIN_ROWS * k + wo * k)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("stride", [1, 2])
def test_dense_1x1_is_one_gemm_on_the_input(layout, stride, counted):
    """1x1 convolutions skip the im2col loops (their gather would only copy the input):
    PyTorch's values and gradients, bitwise the same on one and two threads."""
    x, w, b = _arrays((6, 24, 7, 9), (40, 1, 1))
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = _ember_step(x, w, b, stride, 0, 1, layout)
        ember.set_num_threads(2)
        two = _ember_step(x, w, b, stride, 0, 1, layout)
    finally:
        ember.set_num_threads(old)
    assert counted["fwd"] == counted["gw"] == 0
    want = _torch_step(x, w, b, stride, 0, 1)
    for a, c, t in zip(one, two, want):
        assert np.array_equal(a, c)
        np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-4 * np.abs(t).max())


def test_gemm_blocks_of_the_tile_cases_split_into_small_tiles(cpu_vendor):
    from ember.backends.kernels_blas import _small_kernels, small_gemm_tiles

    if not _small_kernels():
        pytest.skip("NumPy's OpenBLAS has no AVX-512 small-matrix kernels: blocks stay one call")
    assert small_gemm_tiles(286, 200, 72) == (64, 200)  # a short K
    assert small_gemm_tiles(512, 64, 288) == (48, 64)  # few columns
    # Intel's packed kernel wins for this one (tiles only pay for thin blocks there)
    want = (40, 80) if cpu_vendor == "AuthenticAMD" else (270, 80)
    assert small_gemm_tiles(270, 80, 288) == want


@pytest.mark.parametrize(
    "shape,o,bias",
    [((8, 64, 12, 10), 128, True), ((1, 48, 9, 13), 40, False), ((3, 5, 7, 9), 70, True)],
)
def test_nchw_1x1_conv_as_one_compiled_loop(shape, o, bias, monkeypatch):
    """A float32 1x1 convolution of an NCHW input runs ``kernels_blas.sgemm_shared_a``
    (per (image, pixel block) unit, small-matrix tiles, bias per unit): PyTorch's values and
    gradients, one and two threads bitwise alike."""
    from ember.ops import _conv_forward

    ran = []
    real = _conv_forward._conv1x1_compiled
    monkeypatch.setattr(
        _conv_forward, "_conv1x1_compiled", lambda *a: ran.append(real(*a)) or ran[-1]
    )
    rng = np.random.default_rng(o)
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((o, shape[1], 1, 1)) * 0.3).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32) if bias else None
    want = TF.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b) if bias else None)
    old = ember.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            ember.set_num_threads(threads)
            eb = ember.tensor(b) if bias else None
            got.append(F.conv2d(ember.tensor(x), ember.tensor(w), eb).numpy())
    finally:
        ember.set_num_threads(old)
    assert ran and all(ran)
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], want.numpy(), rtol=1e-4, atol=1e-4)


def test_shared_layouts_convert_each_array_once_only_inside_the_scope():
    """A convolution's VJP converts its NCHW output gradient to NHWC once for both gradient
    primitives (``_conv_util.shared_layouts``); outside the scope every call copies (a
    buffer may have been written since), and the scope keys on the array and the dtype."""
    from ember.ops._conv_util import _nhwc, shared_layouts

    g = np.random.default_rng(0).standard_normal((2, 16, 5, 6)).astype(np.float32)
    assert _nhwc(g, np.float32) is not _nhwc(g, np.float32)
    with shared_layouts():
        a = _nhwc(g, np.float32)
        assert _nhwc(g, np.float32) is a
        assert _nhwc(g, np.float64) is not a and _nhwc(g, np.float64).dtype == np.float64
        assert _nhwc(g.copy(), np.float32) is not a
    np.testing.assert_array_equal(a, g.transpose(0, 2, 3, 1))
    assert _nhwc(g, np.float32) is not a
