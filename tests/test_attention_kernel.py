"""The compiled per-head attention loops (``ember.backends.kernels_attn``): values and
gradients against PyTorch, causal and not, odd sizes, heads read in place from a fused
projection, query rows in several blocks, 1 and 2 threads bitwise alike. Float64 (and any
machine without numba) runs the batched NumPy code: the same comparisons hold there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.backends.cpu import sgemm_address
from ember.ops import attention

COMPILED = jit.parallel_available() and bool(sgemm_address())


def _run(q, k, v, g, causal, threads=2):
    old = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        eq, ek, ev = (ember.tensor(a, requires_grad=True) for a in (q, k, v))
        out = F.scaled_dot_product_attention(eq, ek, ev, is_causal=causal)
        out.backward(ember.tensor(g))
        return [out.detach().numpy(), eq.grad.numpy(), ek.grad.numpy(), ev.grad.numpy()]
    finally:
        ember.set_num_threads(old)


def _torch(q, k, v, g, causal):
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    out = TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    out.backward(torch.tensor(g))
    return [out.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()]


def _data(q_shape, k_shape, ev, dtype, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(q_shape).astype(dtype)
    k = rng.standard_normal(k_shape).astype(dtype)
    v = rng.standard_normal(k_shape[:-1] + (ev,)).astype(dtype)
    g = rng.standard_normal(q_shape[:-1] + (ev,)).astype(dtype)
    return q, k, v, g


CASES = [
    ((2, 3, 37, 5), (2, 3, 41, 5), 7),  # odd sizes, more keys than queries
    ((2, 2, 50, 16), (2, 2, 20, 16), 16),  # more queries than keys
    ((3, 33, 8), (3, 33, 8), 3),  # 3-D
    ((2, 1, 2, 9, 4), (2, 1, 2, 9, 4), 4),  # 5-D
    ((9, 6), (11, 6), 2),  # 2-D
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_matches_torch(case, causal, dtype):
    q, k, v, g = _data(*case, dtype)
    got, want = _run(q, k, v, g, causal), _torch(q, k, v, g, causal)
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for a, b in zip(got, want):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.skipif(
    not COMPILED, reason="numba's OpenMP/TBB layer or NumPy's cblas_sgemm is missing"
)
def test_compiled_loops_ran_and_threads_agree_bitwise():
    q, k, v, g = _data((2, 3, 37, 5), (2, 3, 41, 5), 7, np.float32, seed=3)
    one, two = _run(q, k, v, g, True, threads=1), _run(q, k, v, g, True, threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert {"sdpa_fwd_heads", "sdpa_bwd_heads"} <= set(jit._parallel_compiled)


@pytest.mark.parametrize("causal", [False, True])
def test_query_rows_in_several_blocks(causal, monkeypatch):
    """Long sequences: the scores of a block of query rows at a time; the key and value
    gradients add up over the blocks."""
    monkeypatch.setattr(attention, "_SCORE_ELEMS", 64)
    monkeypatch.setattr(attention, "_MIN_BLOCK", 7)  # 7 rows a block: a short last block
    q, k, v, g = _data((2, 2, 45, 6), (2, 2, 30, 6), 5, np.float32, seed=1)
    got, want = _run(q, k, v, g, causal), _torch(q, k, v, g, causal)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


def test_heads_of_a_fused_projection_are_read_in_place():
    """q, k, v sliced out of one (B, T, 3, H, D) projection and transposed to (B, H, T, D):
    strided views, no contiguous copy needed."""
    rng = np.random.default_rng(2)
    qkv = rng.standard_normal((3, 21, 3, 2, 8)).astype(np.float32)
    g = rng.standard_normal((3, 2, 21, 8)).astype(np.float32)
    views = [qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3)]
    assert all(attention._heads(a).base is not None for a in views)  # views, not copies
    for causal in (False, True):
        e = ember.tensor(qkv, requires_grad=True)
        t = torch.tensor(qkv, requires_grad=True)
        eq, ek, ev = (e[:, :, i].transpose(1, 2) for i in range(3))
        tq, tk, tv = (t[:, :, i].transpose(1, 2) for i in range(3))
        F.scaled_dot_product_attention(eq, ek, ev, is_causal=causal).backward(ember.tensor(g))
        TF.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(torch.tensor(g))
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=2e-5, atol=2e-5)


def test_extreme_scores_stay_finite():
    """Scores far apart (a large scale): the row maximum keeps exp in range, as PyTorch."""
    q, k, v, g = _data((1, 2, 16, 4), (1, 2, 16, 4), 4, np.float32, seed=4)
    q *= 60.0
    got, want = _run(q, k, v, g, False), _torch(q, k, v, g, False)
    assert all(np.isfinite(a).all() for a in got)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * max(1.0, np.abs(b).max()))
