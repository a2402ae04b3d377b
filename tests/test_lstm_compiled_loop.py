"""The compiled float32 LSTM recurrence (``ember.backends.kernels_rnn``): values and
gradients against PyTorch for both directions, several layers, odd sizes, given initial
states and a loss on the final cell state; bitwise the same on one and two threads; its tanh
within a few ulp of float64; and the NumPy loop it replaces still agrees with PyTorch.
"""

import numpy as np
import pytest
import torch

import ember
from ember.backends import jit
from ember.ops import _parallel as P
from ember.ops import rnn

pytestmark = pytest.mark.skipif(
    rnn._compiled_loop("lstm_fwd_loop", np.float32) is None,
    reason="needs numba and NumPy's OpenBLAS ILP64 cblas_sgemm (the compiled loop's GEMM)",
)


def _pair(inp, hid, layers, bidir, seed=0):
    torch.manual_seed(seed)
    t = torch.nn.LSTM(inp, hid, num_layers=layers, bidirectional=bidir, batch_first=True)
    e = ember.nn.LSTM(inp, hid, num_layers=layers, bidirectional=bidir, batch_first=True)
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return e, t


def _run(lib, model, x, h0, c0, w, between=None):
    """Outputs and gradients of a loss on every output; ``between()`` runs after the
    forward, before the backward."""
    xt = lib.tensor(x, requires_grad=True)
    y, (h, c) = model(xt, (lib.tensor(h0), lib.tensor(c0)))
    loss = (y * lib.tensor(w)).sum() + (c * c).sum() + h.sum()
    if between is not None:
        between()
    loss.backward()
    grads = [p.grad.numpy() for p in model.parameters()]
    return [y.detach().numpy(), h.detach().numpy(), c.detach().numpy(), xt.grad.numpy(), *grads]


@pytest.mark.parametrize(
    "inp,hid,T,B,layers,bidir",
    [(7, 33, 5, 3, 1, False), (5, 100, 9, 4, 2, True), (16, 64, 12, 1, 1, True)],
)
def test_compiled_loop_matches_torch(inp, hid, T, B, layers, bidir, gemm_kernel):
    e, t = _pair(inp, hid, layers, bidir)
    rng = np.random.default_rng(hid)
    nd = 2 if bidir else 1
    x = rng.standard_normal((B, T, inp)).astype(np.float32)
    h0 = rng.standard_normal((layers * nd, B, hid)).astype(np.float32) * 0.5
    c0 = rng.standard_normal((layers * nd, B, hid)).astype(np.float32) * 0.5
    w = rng.standard_normal((B, T, nd * hid)).astype(np.float32)
    got = _run(ember, e, x, h0, c0, w)
    want = _run(torch, t, x, h0, c0, w)
    assert "lstm_fwd_loop" in jit._parallel_compiled or jit.get("lstm_fwd_loop") is not None
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(b).max()))


def test_compiled_loop_is_bitwise_independent_of_threads(gemm_kernel):
    e, _ = _pair(9, 96, 1, True, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 11, 9)).astype(np.float32)
    h0 = np.zeros((2, 6, 96), np.float32)
    w = rng.standard_normal((6, 11, 192)).astype(np.float32)
    old = ember.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            ember.set_num_threads(n)
            for p in e.parameters():
                p.grad = None
            results.append(_run(ember, e, x, h0, h0, w))
    finally:
        ember.set_num_threads(old)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_numpy_loop_still_matches_torch():
    """Without the compiled kernels (``jit`` off) the per-step NumPy loop runs."""
    e, t = _pair(6, 40, 1, True, seed=5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 7, 6)).astype(np.float32)
    h0 = rng.standard_normal((2, 3, 40)).astype(np.float32)
    w = rng.standard_normal((3, 7, 80)).astype(np.float32)
    old = jit.set_enabled(False)
    try:
        assert rnn._compiled_loop("lstm_fwd_loop", np.float32) is None
        got = _run(ember, e, x, h0, h0, w)
    finally:
        jit.set_enabled(old)
    want = _run(torch, t, x, h0, h0, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(b).max()))


@pytest.mark.parametrize("compiled_forward", [True, False])
def test_saved_activations_are_one_format_for_both_loops(compiled_forward):
    """The forward's saved gate values (block order) read the same whichever loop, compiled
    or NumPy, runs the backward: switch the kernels off (or on) between the two."""
    e, t = _pair(5, 96, 1, False, seed=8)  # 96 units: three blocks of 32
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    h0 = rng.standard_normal((1, 4, 96)).astype(np.float32)
    w = rng.standard_normal((4, 6, 96)).astype(np.float32)
    old = jit.set_enabled(compiled_forward)
    try:
        got = _run(ember, e, x, h0, h0, w, between=lambda: jit.set_enabled(not compiled_forward))
    finally:
        jit.set_enabled(old)
    want = _run(torch, t, x, h0, h0, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(b).max()))


def test_block_rows_group_each_blocks_gates():
    rows = rnn.block_rows(96, wide=False)  # blocks of units 0:32, 32:64, 64:96
    assert sorted(rows.tolist()) == list(range(384))
    assert rows[:3].tolist() == [0, 1, 2] and rows[32:35].tolist() == [96, 97, 98]
    assert rows[128:131].tolist() == [32, 33, 34]  # block 1 starts with its i rows
    assert rnn.block_rows(2, (0, 1, 3, 2)).tolist() == [0, 1, 2, 3, 6, 7, 4, 5]
    wide = rnn.block_rows(96, wide=True)  # MKL's blocks: units 0:48, 48:96
    assert sorted(wide.tolist()) == list(range(384))
    assert wide[48:51].tolist() == [96, 97, 98] and wide[192:195].tolist() == [48, 49, 50]


def test_kernel_tanh_accuracy():
    """The loop's float32 tanh (polynomial near 0, exp-based beyond) within 3 ulp."""
    import numba

    from ember.backends import kernels_rnn

    tanh = kernels_rnn._tanh  # (kernels_ew._tanh, imported there)

    @numba.njit
    def f(v, o):
        for i in range(v.size):
            o[i] = tanh(v[i])

    x = np.concatenate(
        [np.linspace(-12, 12, 200001), np.geomspace(1e-30, 1, 2000), -np.geomspace(1e-30, 1, 2000)]
    ).astype(np.float32)
    out = np.empty_like(x)
    f(x, out)
    ref = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out - ref) / ulp) <= 3.0


def test_unit_blocks_depend_on_the_hidden_size_and_the_blas_only():
    assert rnn.unit_blocks(256, wide=False).tolist() == [0, 64, 128, 192, 256]
    assert rnn.unit_blocks(20, wide=False).tolist() == [0, 20]
    assert rnn.unit_blocks(100, wide=False).tolist() == [0, 33, 66, 100]
    # MKL's blocks: at least 128 units, two where H has 64, at most 4
    assert rnn.unit_blocks(256, wide=True).tolist() == [0, 128, 256]
    assert rnn.unit_blocks(1024, wide=True).tolist() == [0, 256, 512, 768, 1024]
    assert rnn.unit_blocks(100, wide=True).tolist() == [0, 50, 100]
    assert rnn.unit_blocks(20, wide=True).tolist() == [0, 20]
    assert rnn.unit_blocks(96, wide=None).tolist() == rnn.unit_blocks(96, P.mkl_blocks()).tolist()


def test_step_gemms_split_into_small_tiles_match_torch(monkeypatch):
    # H = 200, B = 40: a block's (40, 200) @ (200, 200) step product runs as 40 x 64 tiles
    # (the last 8 columns wide), its (40, 800) @ (800, 50) dh product as 24 x 50 (the last
    # 16 rows): each call <= SMALL_GEMM_MACS multiply-adds, OpenBLAS's unpacked kernels
    from ember.backends.kernels_blas import _small_kernels, step_tiles
    from ember.ops import _gemm

    monkeypatch.setattr(_gemm, "_PACKED", [False])  # the OpenBLAS tiles, not ours

    if _small_kernels():
        assert step_tiles(40, 200, 200) == (40, 64)
        assert step_tiles(40, 50, 800) == (24, 50)
    e, t = _pair(12, 200, 1, False, seed=5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((40, 4, 12)).astype(np.float32)
    h0 = rng.standard_normal((1, 40, 200)).astype(np.float32) * 0.5
    c0 = rng.standard_normal((1, 40, 200)).astype(np.float32) * 0.5
    w = rng.standard_normal((40, 4, 200)).astype(np.float32)
    for a, b in zip(_run(ember, e, x, h0, c0, w), _run(torch, t, x, h0, c0, w)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(b).max()))


def test_step_tiles_keep_each_call_small():
    from ember.backends.kernels_blas import SMALL_GEMM_MACS, _small_kernels, step_tiles

    for m, n, k in [(32, 256, 256), (32, 64, 1024), (1000, 7, 33), (24, 16, 64), (5, 3, 2)]:
        tm, tn = step_tiles(m, n, k)
        assert 1 <= tm <= m and 1 <= tn <= n
        assert (tm, tn) == (m, n) or tm * tn * k <= SMALL_GEMM_MACS
    assert step_tiles(32, 128, 4096) == (32, 128)  # 8 rows of 64 columns are too many: one call
    if not _small_kernels():  # other BLAS kernels: always one call
        assert step_tiles(32, 256, 256) == (32, 256)
