"""Ember's packed AVX-512 float32 GEMM (ember.backends.kernels_gemm through
ember.ops._parallel.gemm): values against float64 and PyTorch, every edge of the tiling (row
tails of 1-7, partial column panels, K beyond one chunk), operand layouts, bias, outputs with
longer rows, one and two threads bitwise alike."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import packed_gemm_possible

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import _gemm as P

pytestmark = pytest.mark.skipif(
    not packed_gemm_possible(),
    reason="the packed float32 GEMM needs AVX-512 and numba's OpenMP/TBB layer",
)


@pytest.fixture(autouse=True)
def _packed(monkeypatch):
    from ember.backends import cpu

    monkeypatch.setattr(P, "_PACKED", [True])
    monkeypatch.setattr(P, "_PACKED_GEMMS", [True])  # (on AMD too: the kernel is tested)
    monkeypatch.setattr(cpu, "_BACKEND", ["openblas"])  # MKL's blocks would take the large ones


def _threads(fn):
    old = ember.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            ember.set_num_threads(t)
            out.append(fn())
        return out
    finally:
        ember.set_num_threads(old)


def _check(got, a, b, bias=None):
    ref = a.astype(np.float64) @ b.astype(np.float64)
    if bias is not None:
        ref = ref + bias
    # a K-term float32 dot product: error ~ K * eps * sum |a||b|
    bound = (a.shape[1] + 2) * 6e-8 * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) / bound)


_SHAPES = [(37, 13, 45), (8, 1, 32), (131, 600, 70), (3, 1100, 33), (64, 784, 128),
           (700, 300, 130), (9, 2, 48), (1, 64, 40), (150, 520, 600), (20, 30, 50)]  # fmt: skip


@pytest.mark.parametrize("mkn", _SHAPES)
def test_values_and_thread_invariance(mkn, monkeypatch):
    monkeypatch.setattr(P, "_PACKED_MIN_MACS", 1)  # small ones too: every edge of the tiling
    m, k, n = mkn
    rng = np.random.default_rng(m * 7 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    for B in (b, np.asfortranarray(b), np.ascontiguousarray(b.T).T):
        one, two = _threads(lambda B=B: P.gemm(a, B))
        np.testing.assert_array_equal(one, two)
        _check(two, a, B)
    # A rows that are not adjacent (a slice of a wider matrix), an output with longer rows
    wide = rng.standard_normal((m, k + 5)).astype(np.float32)[:, 2 : 2 + k]
    out = np.full((m, n + 3), 7.0, np.float32)
    assert P.gemm(wide, b, out=out[:, :n]) is not None
    np.testing.assert_array_equal(out[:, n:], 7.0)
    _check(out[:, :n], wide, b)


@pytest.mark.parametrize("mkn", [(700, 300, 130), (40, 50, 3000), (5, 7, 3)])
def test_bias_in_the_blocks(mkn, monkeypatch):
    monkeypatch.setattr(P, "_PACKED_MIN_MACS", 1)
    m, k, n = mkn
    rng = np.random.default_rng(n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    one, two = _threads(lambda: P.gemm(a, b, bias=bias))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(two, P.gemm(a, b) + bias)
    _check(two, a, b, bias)


def test_the_packed_kernels_ran(monkeypatch):
    """Each of the three ways to split a packed GEMM runs (and equals the reference):
    panel blocks that pack their own panels (a small A), row blocks and panel blocks over
    panels packed first (a large A, tall or wide output)."""
    ran = []
    real = P.parallel_kernel
    monkeypatch.setattr(P, "parallel_kernel", lambda name, w: ran.append(name) or real(name, w))
    rng = np.random.default_rng(1)
    w = rng.standard_normal((300, 256)).astype(np.float32)
    for rows in (512, 2048, 1100):  # a small A; a large one, tall output; large, wide
        a = rng.standard_normal((rows, 256)).astype(np.float32)
        wide = np.concatenate([w] * 5) if rows == 1100 else w
        _check(P.gemm(a, wide.T), a, wide.T)  # a linear layer's transposed weight, in place
    assert ran.count("sgemm_panels") == 1
    assert ran.count("sgemm_packed_rows") == 1
    assert ran.count("sgemm_packed_cols") == 1
    assert ran.count("pack_panels") == 2


def test_the_panel_scratch_is_reused_and_never_aliases_a_result():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((64, 100)).astype(np.float32)
    b = rng.standard_normal((100, 96)).astype(np.float32)
    first = P.gemm(a, b)
    second = P.gemm(2 * a, b)
    assert not np.may_share_memory(first, second)
    _check(first, a, b)
    _check(second, 2 * a, b)
    assert P._scratch("panels", (3, 100)).base is P._scratch("panels", (2, 50)).base


def test_the_tiles_read_a_with_any_column_stride():
    """The tile intrinsics have a loop for A's rows contiguous and one for any column stride
    (no caller of Ember's GEMM passes one today; the kernel stays general)."""
    rng = np.random.default_rng(9)
    wide = rng.standard_normal((37, 2 * 70)).astype(np.float32)
    b = rng.standard_normal((70, 45)).astype(np.float32)
    for a in (wide[:, ::2], np.ascontiguousarray(wide[:, ::2])):
        out = np.empty((37, 45), np.float32)
        jit.get("sgemm_packed_rows")(a, P.pack_b(b), out, np.zeros(45, np.float32), False, 37, 0)
        _check(out, np.ascontiguousarray(a), b)


def test_a_large_transposed_a_and_other_dtypes_keep_blas(monkeypatch):
    ran = []
    monkeypatch.setattr(P, "pack_b", lambda b: ran.append(1))
    monkeypatch.setattr(P, "_scratch", lambda *a: ran.append(1))
    rng = np.random.default_rng(2)
    g = rng.standard_normal((1100, 300)).astype(np.float32)
    x = rng.standard_normal((1100, 100)).astype(np.float32)
    np.testing.assert_allclose(P.gemm(g.T, x), g.T @ x, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(P.gemm(x.astype(np.float64), g.T.astype(np.float64)[:100]),
                               x.astype(np.float64) @ g.T.astype(np.float64)[:100])  # fmt: skip
    assert ran == []


def test_a_small_transposed_a_is_copied_and_packed():
    """A weight gradient's ``g.T`` of a small batch runs the packed kernel on a copy."""
    rng = np.random.default_rng(3)
    g = rng.standard_normal((128, 96)).astype(np.float32)
    x = rng.standard_normal((128, 200)).astype(np.float32)
    one, two = _threads(lambda: P.gemm(g.T, x))
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, P.gemm(np.ascontiguousarray(g.T), x))
    _check(one, g.T, x)


def test_nan_and_inf_propagate():
    a = np.ones((64, 64), np.float32)
    b = np.ones((64, 96), np.float32)
    a[3, 5] = np.nan
    b[7, 40] = np.inf
    got = P.gemm(a, b)
    want = a @ b
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


def test_linear_matches_torch_values_and_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((130, 77)).astype(np.float32)
    w = rng.standard_normal((90, 77)).astype(np.float32)
    b = rng.standard_normal(90).astype(np.float32)
    g = rng.standard_normal((130, 90)).astype(np.float32)
    xe, we, be = (ember.tensor(v, requires_grad=True) for v in (x, w, b))
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ye = F.linear(xe, we, be)
    yt = torch.nn.functional.linear(xt, wt, bt)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    for e, t in ((ye, yt), (xe.grad, xt.grad), (we.grad, wt.grad), (be.grad, bt.grad)):
        te = t.detach().numpy()
        np.testing.assert_allclose(e.detach().numpy() if hasattr(e, "detach") else e.numpy(),
                                   te, rtol=1e-4, atol=1e-4 * np.abs(te).max())  # fmt: skip


def test_switched_off_by_the_environment():
    code = (
        "from ember.ops import _parallel as P; "
        "print(P.packed_gemm_available() or P.packed_kernel_available())"
    )
    env = dict(os.environ, EMBER_PACKED_GEMM="0")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_batched_heads_of_a_split_projection():
    """Attention's per-head products read the heads of a (B, T, 3, H, D) projection in place:
    values, one and two threads alike, the packed batched kernel ran."""
    rng = np.random.default_rng(8)
    qkv = rng.standard_normal((3, 70, 3, 5, 40)).astype(np.float32)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    p = rng.standard_normal((3, 5, 70, 70)).astype(np.float32)
    for a, b in ((q, k.swapaxes(-1, -2)), (p, v)):
        one, two = _threads(lambda a=a, b=b: P.matmul(a, b))
        np.testing.assert_array_equal(one, two)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(two, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert "sgemm_packed_batched" in jit._parallel_compiled
