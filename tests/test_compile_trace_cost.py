"""Dry-run traces skip heavy kernels (their values are never read), so the first compiled call
costs about one eager step; the compiled results stay equal to eager."""

import numpy as np
import pytest

import ember
from ember.compiler._abstract import fake_outputs
from ember.ops.nn import linear_p


@pytest.fixture
def count_linear(monkeypatch):
    calls = []
    impl = linear_p.impl

    def counting(*a, **k):
        calls.append(a[0].shape)
        return impl(*a, **k)

    monkeypatch.setattr(linear_p, "impl", counting)
    return calls


def _step_fn():
    ember.manual_seed(0)
    model = ember.nn.Sequential(ember.nn.Linear(64, 128), ember.nn.ReLU(), ember.nn.Linear(128, 8))
    opt = ember.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = ember.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, step


def test_first_call_runs_the_big_kernels_once(count_linear):
    _model, step = _step_fn()
    x, y = ember.randn(64, 64), ember.randint(0, 8, (64,))
    ember.compile(step)(x, y)
    first = [s for s in count_linear if s[1] == 64]  # the 64 -> 128 layer (big output)
    last = [s for s in count_linear if s[1] == 128]  # 128 -> 8: too small to skip
    # the eager call runs both; the dry-run traces (two batch sizes) skip only the big one
    assert len(first) == 1 and len(last) == 3


def test_trace_kernels_env_runs_them_in_traces(count_linear, monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE_TRACE_KERNELS", "1")
    _model, step = _step_fn()
    x, y = ember.randn(64, 64), ember.randint(0, 8, (64,))
    ember.compile(step)(x, y)
    assert len([s for s in count_linear if s[1] == 64]) == 3


def test_compiled_steps_equal_eager_with_skipped_kernels():
    m1, eager = _step_fn()
    m2, step = _step_fn()
    compiled = ember.compile(step)
    rng = np.random.default_rng(0)
    for b in (64, 64, 48, 64):
        x = ember.tensor(rng.standard_normal((b, 64)).astype(np.float32))
        y = ember.tensor(rng.integers(0, 8, b))
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p2.detach().numpy(), p1.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_fake_outputs_only_for_safe_primitives():
    from ember.ops.indexing import getitem_p
    from ember.ops.shape import reshape_p

    x = np.ones((128, 64), np.float32)
    w = np.ones((32, 64), np.float32)
    out = fake_outputs(linear_p, [x, w, None], {})
    assert out.shape == (128, 32) and not out.any()
    assert fake_outputs(linear_p, [x[:2], w[:2], None], {}) is None  # small: just run it
    assert fake_outputs(reshape_p, [x], {"shape": (64, 128)}) is None  # may alias its input
    assert getitem_p.kind in ("view", "layout", "opaque")
    # a shape error is left to the real kernel, which raises the user-facing message
    assert fake_outputs(linear_p, [x, np.ones((32, 5), np.float32), None], {}) is None


def test_slice_gradients_are_skipped_in_traces_and_compiled_equals_eager(monkeypatch):
    from ember.ops import indexing

    calls = []
    impl = indexing.index_put_zeros_p.impl

    def counting(*a, **k):
        calls.append(k.get("shape") or a[3])
        return impl(*a, **k)

    monkeypatch.setattr(indexing.index_put_zeros_p, "impl", counting)

    def make():
        ember.manual_seed(1)
        w = ember.randn(96, 3 * 64, requires_grad=True)
        opt = ember.optim.SGD([w], lr=0.1)

        def step(x):
            opt.zero_grad()
            q, k, v = (x @ w).split(64, dim=1)  # the qkv split of attention
            loss = (q * k).sum() + v.tanh().sum()
            loss.backward()
            opt.step()
            return loss

        return w, step

    w1, eager = make()
    w2, step = make()
    compiled = ember.compile(step)
    x = ember.randn(64, 96)
    calls.clear()
    np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-6)
    # the eager steps (the reference and the first compiled call's) add the three slices'
    # gradients in place in the backward engine; the dry-run traces (at least two) skip them
    assert calls == []
    for _ in range(2):
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-6)
    np.testing.assert_allclose(w1.detach().numpy(), w2.detach().numpy(), rtol=1e-6, atol=1e-6)
    monkeypatch.setenv("EMBER_COMPILE_TRACE_KERNELS", "1")
    _w3, step3 = make()
    calls.clear()
    ember.compile(step3)(x)
    assert len(calls) >= 2 * 3  # with kernels on, the traces run them too


def test_large_fake_outputs_are_untouched_zero_pages():
    """Large fake outputs are fresh anonymous mappings: zeros, writable, the right shape and
    dtype, and independent of each other (no memset of heap memory per dry-run equation)."""
    import numpy as np

    from ember.compiler._abstract import _MMAP_MIN, _zeros

    n = _MMAP_MIN // 4 + 13
    a, b = _zeros((n, 3), np.float32), _zeros((n, 3), np.float32)
    assert a.shape == (n, 3) and a.dtype == np.float32 and a.flags.writeable
    assert not a.any() and not b.any()
    a[5, 1] = 7.0
    assert a[5, 1] == 7.0 and not b.any()
    small = _zeros((2, 3), np.float64)
    assert small.dtype == np.float64 and not small.any()
