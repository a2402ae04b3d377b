"""float32 (and float16/bfloat16) results as close to PyTorch's as its accumulation gives: var/std
and var_mean (float64 statistics), logcumsumexp (float64 running sum), log_softmax on rows with a
large offset ((x - max) - log(sum)), histc on a narrow range (bins found in float64)."""

import numpy as np
import pytest
import torch

import ember

RNG = np.random.default_rng(40)


def _offset(shape, base=1000.0, noise=1e-3):
    return (base + noise * RNG.standard_normal(shape)).astype(np.float32)


def _rel(a, ref):
    a = np.asarray(a, np.float64)
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(a - ref) / np.maximum(np.abs(ref), 1e-30)))


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize(
    ("shape", "dim"),
    [((64, 10), 1), ((8, 1000), 1), ((4, 300, 5), 1), ((4, 300, 5), None), ((6, 7, 8), (0, 2))],
)
def test_var_std_offset_rows(shape, dim, correction):
    # Ember rounded the mean to float32 (off by its float32 sums): up to 20% off here
    x = _offset(shape)
    kw = {"correction": correction} if dim is None else {"dim": dim, "correction": correction}
    ref = torch.var(torch.from_numpy(x.astype(np.float64)), **kw).numpy()
    tv = torch.var(torch.from_numpy(x), **kw).numpy()
    ev = ember.var(ember.tensor(x), **kw).numpy()
    if dim is not None:  # PyTorch's full reduction runs a float32 cascade instead
        assert _rel(tv, ref) < 2e-7
    assert _rel(ev, ref) < 5e-7
    es = ember.std(ember.tensor(x), **kw).numpy()
    assert _rel(es, np.sqrt(ref)) < 5e-7


def test_var_random_and_mixed_signs_keep_float32_rounding():
    x = (RNG.standard_normal((50, 2000)) * 10.0 ** RNG.uniform(-3, 3, (50, 2000))).astype(
        np.float32
    )
    for dim in (0, 1):
        ref = np.var(x.astype(np.float64), axis=dim, ddof=1)
        assert _rel(ember.var(ember.tensor(x), dim=dim).numpy(), ref) < 5e-7


def test_var_mean_mean_is_float64_rounded():
    x = RNG.standard_normal((200, 10)).astype(np.float32)
    _, tm = torch.var_mean(torch.from_numpy(x), dim=1)
    ev, em = ember.var_mean(ember.tensor(x), dim=1)
    ref = x.astype(np.float64).mean(axis=1)
    assert _rel(tm.numpy(), ref) < 1e-7  # PyTorch: the float64 mean, rounded
    assert np.array_equal(em.numpy(), ref.astype(np.float32))
    assert em.dtype == ember.float32 and ev.dtype == ember.float32
    _, esm = ember.std_mean(ember.tensor(x), dim=1)
    assert np.array_equal(esm.numpy(), em.numpy())


def test_var_mean_gradient_matches_torch():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    et = ember.tensor(x, requires_grad=True)
    v, m = ember.var_mean(et, dim=1)
    (v * 2 + m * 3).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    a, b = torch.var_mean(tt, dim=1)
    (a * 2 + b * 3).sum().backward()
    np.testing.assert_allclose(et.grad.numpy(), tt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_var_float16_accumulates_in_float32():
    x = _offset((16, 300), base=100.0, noise=0.5).astype(np.float16)
    ref = np.var(x.astype(np.float64), axis=1, ddof=1)
    tv = torch.var(torch.from_numpy(x), dim=1).numpy()
    ev = ember.var(ember.tensor(x), dim=1).numpy()
    assert ev.dtype == np.float16
    assert _rel(ev, ref) <= max(2 * _rel(tv, ref), 1e-3)


@pytest.mark.parametrize(("n", "kind"), [(100_000, "rand"), (100_000, "offset"), (1000, "rand")])
def test_logcumsumexp_float32_long(n, kind):
    # float32 logaddexp.accumulate drifted ~1e-3 relative over 1e5..1e6 values
    x = RNG.standard_normal(n).astype(np.float32) if kind == "rand" else _offset(n)
    ref = np.logaddexp.accumulate(x.astype(np.float64))
    t = torch.logcumsumexp(torch.from_numpy(x), 0).numpy()
    e = ember.logcumsumexp(ember.tensor(x), 0).numpy()
    assert e.dtype == np.float32
    assert _rel(t, ref) < 1e-7
    assert _rel(e, ref) < 1e-7
    assert _rel(e, t) < 2e-7


def test_logcumsumexp_middle_axis_and_low_floats():
    x = RNG.standard_normal((3, 5000, 4)).astype(np.float32)
    ref = np.logaddexp.accumulate(x.astype(np.float64), axis=1)
    e = ember.logcumsumexp(ember.tensor(x), 1).numpy()
    assert _rel(e, ref) < 1e-7
    for edt, tdt in ((ember.float16, torch.float16), (ember.bfloat16, torch.bfloat16)):
        xe = ember.tensor(x[0, :2000, 0]).to(edt)
        xt = torch.from_numpy(x[0, :2000, 0]).to(tdt)
        e = ember.logcumsumexp(xe, 0)
        t = torch.logcumsumexp(xt, 0)
        assert e.dtype == edt
        np.testing.assert_array_equal(e.float().numpy(), t.float().numpy())


@pytest.mark.parametrize("dim", [-1, 1])
def test_log_softmax_offset_rows(dim):
    # x - (max + log(sum)) rounded at 1000's ulp: 1e-5 relative; PyTorch's (x - max) - log(sum)
    x = _offset((20, 10, 30))
    ref = torch.log_softmax(torch.from_numpy(x.astype(np.float64)), dim).numpy()
    t = torch.log_softmax(torch.from_numpy(x), dim).numpy()
    e = ember.log_softmax(ember.tensor(x), dim).numpy()
    assert _rel(t, ref) < 5e-7
    assert _rel(e, ref) < 5e-7
    s = ember.softmax(ember.tensor(x), dim).numpy()
    assert _rel(s, np.exp(ref)) < 1e-6


def test_log_softmax_long_row_and_gradient():
    x = RNG.standard_normal((2, 100_000)).astype(np.float32) * 5
    ref = torch.log_softmax(torch.from_numpy(x.astype(np.float64)), 1).numpy()
    et = ember.tensor(x, requires_grad=True)
    e = ember.log_softmax(et, 1)
    t = torch.log_softmax(torch.from_numpy(x), 1).numpy()
    # float32 sums of 1e5 exponentials, in vector lanes as PyTorch's: errors of one order
    assert _rel(e.detach().numpy(), ref) <= 10 * max(_rel(t, ref), 1e-7)
    e.sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    torch.log_softmax(tt, 1).sum().backward()
    np.testing.assert_allclose(et.grad.numpy(), tt.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_histc_narrow_range(n):
    # float32 bin arithmetic put values of a range a few hundred ulps wide in the next bin
    x = _offset(n)
    t = torch.histc(torch.from_numpy(x), bins=10).numpy()
    e = ember.histc(ember.tensor(x), bins=10).numpy()
    assert e.sum() == n
    assert np.abs(e - t).sum() <= max(2, n // 10_000)
