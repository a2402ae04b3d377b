"""Ember's CPU threading: the block-parallel loop, split GEMMs and thread-count invariance."""

from functools import partial

import numpy as np
import pytest
import torch
from _f32_bounds import assert_within, batch_norm_bound, multilinear_bound

import ember
from ember.ops import _gemm
from ember.ops import _parallel as P


@pytest.fixture
def threads():
    old = ember.get_num_threads()
    yield ember.set_num_threads
    ember.set_num_threads(old)


def test_set_num_threads_validates(threads):
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="positive int"):
            ember.set_num_threads(bad)
    threads(3)
    assert ember.get_num_threads() == 3


def test_blas_runs_on_one_thread_after_import():
    if P._get_blas_threads is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that exposes its thread count")
    assert P._get_blas_threads() == 1


_OWN_BLAS_CHECK = """
import os, numpy as np
from ember.backends.cpu import openblas, sgemm_address
from ember.ops import _parallel as P
npdir = os.path.dirname(np.__file__)
ours = openblas()._name
print(ours.startswith(npdir + os.sep) or ours.startswith(npdir + ".libs" + os.sep),
      sgemm_address() is not None, P._get_blas_threads())
"""


def test_numpys_openblas_is_found_beside_scipys():
    """SciPy's wheel maps its own (32-bit-integer) OpenBLAS, which may come first in
    /proc/self/maps: Ember still finds NumPy's (its cblas_sgemm for the compiled GEMM
    loops, its thread count set to one), whether SciPy was imported before Ember or after."""
    import subprocess
    import sys

    pytest.importorskip("scipy.linalg")
    if P._get_blas_threads is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that exposes its thread count")
    for order in ("import scipy.linalg\nimport ember\n", "import ember\nimport scipy.linalg\n"):
        out = subprocess.run(
            [sys.executable, "-c", order + _OWN_BLAS_CHECK], capture_output=True, text=True,
            check=True,
        ).stdout.split()  # fmt: skip
        assert out == ["True", "True", "1"], (order, out)


@pytest.mark.parametrize("n,block", [(0, 3), (1, 1), (10, 3), (17, 4), (64, 1)])
def test_parallel_for_covers_each_item_once(threads, n, block):
    threads(3)
    seen = np.zeros(n, int)

    def fn(a, b, slot):
        assert 0 <= slot < 3
        seen[a:b] += 1

    P.parallel_for(n, block, fn, work=1 << 40)
    assert (seen == 1).all()


def test_parallel_for_reraises_a_worker_error(threads):
    threads(2)

    def fn(a, b, slot):
        if a == 5:
            raise KeyError("block 5")

    with pytest.raises(KeyError, match="block 5"):
        P.parallel_for(8, 1, fn, work=1 << 40)


@pytest.mark.parametrize("shape", [(300, 200, 100), (20, 300, 4000), (1, 7, 5), (513, 64, 1)])
def test_gemm_matches_numpy_and_is_thread_count_invariant(threads, shape, monkeypatch):
    monkeypatch.setattr(_gemm, "_PAR_GEMM_MACS", 1)
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    threads(1)
    one = P.gemm(a, b)
    threads(3)
    three = P.gemm(a, b)
    bound = multilinear_bound(torch.matmul, (a, b), np.ones((m, n)))[0]
    assert_within(one, a.astype(np.float64) @ b, bound, f"gemm {shape}")
    np.testing.assert_array_equal(one, three)
    out = np.empty((m, n), np.float32)
    assert P.gemm(a, b, out=out) is out
    np.testing.assert_array_equal(out, one)


def test_batched_matmul_split(threads, monkeypatch):
    monkeypatch.setattr(_gemm, "_PAR_GEMM_MACS", 1)
    threads(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5, 6))
    y = rng.standard_normal((3, 4, 6, 7))
    np.testing.assert_allclose(P.matmul(x, y), np.matmul(x, y), rtol=1e-12)
    np.testing.assert_allclose(P.matmul(x, y[0, 0]), np.matmul(x, y[0, 0]), rtol=1e-12)
    np.testing.assert_allclose(P.matmul(x[:1], y), np.matmul(x[:1], y), rtol=1e-12)  # broadcast
    xi = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(
        P.matmul(xi, xi.transpose(0, 2, 1)), np.matmul(xi, xi.transpose(0, 2, 1))
    )


# (batch, in channels, size, out channels, kernel, stride, padding, groups, dilation)
CONV_CASES = [
    (5, 6, 9, 8, 3, 1, 1, 1, 1),  # fewer than 8 images: blocks of output rows
    (10, 6, 9, 8, 3, 1, 1, 1, 1),  # blocks of images
    (9, 4, 7, 6, 3, 2, 1, 2, 1),
    (3, 4, 11, 6, 3, 2, 1, 2, 1),
    (4, 6, 8, 12, 3, 1, 1, 6, 1),  # depthwise, multiplier 2
    (2, 3, 10, 5, 5, 3, 2, 1, 2),
    (7, 8, 6, 4, 1, 2, 0, 1, 1),
    # few input channels, stride 1: the channel-plane ("wide row") im2col
    (9, 1, 12, 6, 5, 1, 2, 1, 1),
    (4, 3, 7, 5, 3, 1, 0, 1, 2),
    (3, 4, 9, 6, 3, 1, 1, 2, 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("scatter_threads", [False, True])
def test_conv_training_step_is_thread_count_invariant_and_matches_torch(
    threads, case, scatter_threads, monkeypatch
):
    """Forward and both gradients: bitwise equal at 1 and 3 threads, and equal to PyTorch
    (``scatter_threads``: the scatter-add grad_input runs in blocks even for small inputs)."""
    from ember.ops import _conv_grad_input

    if scatter_threads:
        monkeypatch.setattr(_conv_grad_input, "_SCATTER_PAR_ELEMS", 0)
        monkeypatch.setattr(P, "PAR_MIN_WORK", 0)
    n, c, h, o, k, stride, padding, groups, dil = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((o, c // groups, k, k)).astype(np.float32)
    kw = {"stride": stride, "padding": padding, "groups": groups, "dilation": dil}
    g = rng.standard_normal(
        tuple(torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), **kw).shape)
    ).astype(np.float32)

    def run():
        xe = ember.tensor(x, requires_grad=True)
        we = ember.tensor(w, requires_grad=True)
        y = ember.nn.functional.conv2d(xe, we, **kw)
        y.backward(ember.tensor(g))
        return y.detach().numpy(), xe.grad.numpy(), we.grad.numpy()

    threads(1)
    one = run()
    threads(3)
    three = run()
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, **kw)
    yt.backward(torch.tensor(g))
    bounds = multilinear_bound(partial(torch.nn.functional.conv2d, **kw), (x, w), g)
    for a, b, bound in zip(one, (yt, xt.grad, wt.grad), bounds):
        assert_within(a, b.detach().numpy(), bound, f"conv {case}")


def test_batch_norm_channels_last_matches_torch():
    """The channels-last fast path (conv outputs) against PyTorch, values and gradients."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5, 6, 7)).astype(np.float32) * 3 + 1
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    g = rng.standard_normal(x.shape).astype(np.float32)
    w = rng.standard_normal(5).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True)
    yt.backward(torch.tensor(g))
    for arr in (x, x_cl):
        xe = ember.from_numpy(arr).requires_grad_()
        we, be = ember.tensor(w, requires_grad=True), ember.tensor(b, requires_grad=True)
        ye = ember.nn.functional.batch_norm(xe, None, None, we, be, training=True)
        ye.backward(ember.tensor(g))
        bounds = batch_norm_bound(x, w, b, g)
        assert_within(ye.detach().numpy(), yt.detach().numpy(), bounds[0], "batch norm")
        for e, t, bound in zip((xe, we, be), (xt, wt, bt), bounds[1:]):
            assert_within(e.grad.numpy(), t.grad.numpy(), bound, "batch norm grad")


@pytest.mark.parametrize(
    "c,k,stride,groups",
    [(16, 3, 1, 1), (16, 3, 2, 1), (1, 5, 1, 1), (8, 3, 1, 8), (8, 3, 2, 8), (8, 3, 1, 4)],
)
def test_conv_empty_batch(c, k, stride, groups):
    """Every conv path (im2col, channel planes, depthwise, grouped) takes a batch of 0."""
    x = ember.zeros(0, c, 8, 8, requires_grad=True)
    w = ember.randn(8, c // groups, k, k, requires_grad=True)
    y = ember.nn.functional.conv2d(x, w, stride=stride, padding=k // 2, groups=groups)
    ref = torch.nn.functional.conv2d(
        torch.zeros(0, c, 8, 8),
        torch.tensor(w.detach().numpy()),
        stride=stride,
        padding=k // 2,
        groups=groups,
    )
    assert tuple(y.shape) == tuple(ref.shape)
    (y.sum() + (w * 0).sum()).backward()
    assert tuple(x.grad.shape) == (0, c, 8, 8)
    assert float(w.grad.abs().sum()) == 0.0


def test_valid_convs_share_the_backward_when_both_gradients_are_implicit():
    """A 'valid' 5x5 convolution over 24x24 images (1.44 input pixels per output pixel)
    takes the shared backward where both gradients run as implicit GEMMs, and keeps the two
    separate gradients where they would be im2col products (float64)."""
    from ember.ops import _conv_gemm
    from ember.ops import conv as C

    p = {"stride": (1, 1), "padding": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}
    shapes = ((2, 16, 24, 24), (32, 16, 5, 5), (2, 32, 20, 20))
    implicit = _conv_gemm.implicit_usable(np.dtype(np.float32), 32, 5, 1, (1, 1), (4,) * 4)
    assert C._shared_backward_ok(*shapes, p, np.dtype(np.float32)) == implicit
    assert not C._shared_backward_ok(*shapes, p, np.dtype(np.float64))


@pytest.mark.parametrize(
    "n,c,h,w,o,k,pad,dil",
    [
        (2, 4, 7, 6, 5, 3, (1, 1, 1, 1), 1),
        (9, 16, 8, 8, 8, 3, (1, 1, 1, 1), 1),  # blocks of images
        (1, 17, 6, 9, 3, 5, (4, 4, 4, 4), 2),
        (3, 20, 6, 6, 4, 4, (1, 2, 1, 2), 1),  # 'same' with an even kernel: asymmetric padding
        (2, 16, 9, 9, 6, 3, (0, 0, 0, 0), 1),  # 'valid', output nearly the input's size
    ],
)
def test_shared_conv_backward_matches_separate_gradients(n, c, h, w, o, k, pad, dil):
    """conv2d_backward (one im2col for both gradients) against conv2d_grad_input and
    conv2d_grad_weight, and against PyTorch."""
    from ember.ops import conv as C

    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((o, c, k, k)).astype(np.float32)
    p = {"stride": (1, 1), "padding": pad, "dilation": (dil, dil), "groups": 1}
    g = C._conv2d_impl(x, wt, **p)
    g = rng.standard_normal(g.shape).astype(np.float32)
    assert C._shared_backward_ok(x.shape, wt.shape, g.shape, p, x.dtype) == (
        pad != (0, 0, 0, 0) and not C._plane_path(c, k, k, (1, 1))
    )
    gx, gw = C._conv2d_backward_impl(g, x, wt, **p)
    gx2 = C._conv2d_grad_input_impl(g, wt, in_hw=(h, w), **p)
    gw2 = C._conv2d_grad_weight_impl(x, g, kernel=(k, k), **p)

    def conv(x, w):
        return torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (pad[2], pad[3], pad[0], pad[1])), w, dilation=dil
        )

    _, b_gx, b_gw = multilinear_bound(conv, (x, wt), g)
    assert_within(gx, gx2, b_gx, "grad x: shared vs separate")
    assert_within(gw, gw2, b_gw, "grad w: shared vs separate")
    xt = torch.tensor(x, requires_grad=True)
    wtt = torch.tensor(wt, requires_grad=True)
    conv(xt, wtt).backward(torch.tensor(g))
    assert_within(gx, xt.grad.numpy(), b_gx, "grad x")
    assert_within(gw, wtt.grad.numpy(), b_gw, "grad w")


def test_default_thread_count_follows_the_environment():
    import os
    import subprocess
    import sys

    code = "import ember; print(ember.get_num_threads())"
    for env, want in (
        ({"EMBER_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, "3"),
        ({"OMP_NUM_THREADS": "1"}, "1"),
    ):
        e = {
            k: v for k, v in os.environ.items() if k not in ("EMBER_NUM_THREADS", "OMP_NUM_THREADS")
        }
        e.update(env)
        out = subprocess.run(
            [sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert out == want, (env, out)


def test_more_threads_than_the_first_pool(threads):
    threads(2)
    P.parallel_for(4, 1, lambda a, b, s: None, work=1 << 40)
    threads(6)
    seen = set()

    def fn(a, b, slot):
        seen.add(slot)

    P.parallel_for(64, 1, fn, work=1 << 40)
    assert seen <= set(range(6))
    assert P._POOL[2] >= 5


def test_nested_parallel_for_runs_inline_without_deadlock(threads):
    # every block of the outer loop starts an inner loop: from pool threads, waiting on the
    # pool would deadlock (all workers busy waiting), so inner loops run on their own thread
    threads(3)
    import threading

    out = np.zeros((8, 16))
    inner_threads = []

    def inner(row):
        def fn(a, b, slot):
            inner_threads.append((threading.get_ident(), slot))
            out[row, a:b] = np.arange(a, b) + 100 * row

        return P.parallel_for(16, 2, fn, work=1 << 40)

    used = []

    def outer(a, b, slot):
        for row in range(a, b):
            used.append((threading.get_ident(), inner(row)))

    result: list = []
    t = threading.Thread(target=lambda: result.append(P.parallel_for(8, 1, outer, 1 << 40)))
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "nested parallel_for deadlocked"
    assert result == [3]
    np.testing.assert_array_equal(out, np.arange(16)[None] + 100 * np.arange(8)[:, None])
    assert all(n == 1 for _, n in used)  # every inner loop ran on one thread
    assert {s for _, s in inner_threads} == {0}
    # and the pool still works afterwards at full width
    seen = set()
    P.parallel_for(64, 1, lambda a, b, s: seen.add(s), work=1 << 40)
    assert seen <= {0, 1, 2}


def test_parallel_for_from_several_caller_threads(threads):
    # two threads sharing the pool: each call still covers its items exactly once
    threads(2)
    import threading

    outs = [np.zeros(200, int) for _ in range(4)]

    def call(k):
        for _ in range(20):

            def fn(a, b, slot):
                outs[k][a:b] += 1

            P.parallel_for(200, 7, fn, work=1 << 40)

    ts = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in ts)
    for o in outs:
        assert (o == 20).all()


def test_parallel_for_error_stops_the_remaining_blocks(threads):
    threads(2)
    ran = []

    def fn(a, b, slot):
        ran.append(a)
        if a == 0:
            raise ValueError("block 0")

    with pytest.raises(ValueError, match="block 0"):
        P.parallel_for(1000, 1, fn, work=1 << 40)
    assert len(ran) < 1000
