"""Regression cases found by fuzzing Ember's CPU operators against PyTorch: edge values
(boundaries, nan/inf, saturated probabilities), empty tensors, ignored targets and fully
masked attention rows. Each test compares values and gradients with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F

FLOATS = [np.float32, np.float64]


def _tol(dt):
    return {"rtol": 1e-5, "atol": 1e-6} if dt == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


def _both(a, grad=True):
    return (
        ember.tensor(a.copy(), requires_grad=grad),
        torch.tensor(a.copy(), requires_grad=grad),
    )


def _backward(e_out, t_out, seed=0):
    g = np.random.default_rng(seed).standard_normal(tuple(t_out.shape))
    g = g.astype(t_out.detach().numpy().dtype)
    e_out.backward(ember.tensor(g))
    t_out.backward(torch.tensor(g))


def _close(e, t, **tol):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), equal_nan=True, **tol)


# -- activations -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_hardtanh_relu6_gradient_is_zero_on_the_bounds(dt):
    x = np.array([-0.5, 0.7, -1.0, 0.0, 0.3, 1.0, 6.0, 3.0, 7.0, -0.0], dt)
    for ef, tf in [
        (lambda v: F.hardtanh(v, -0.5, 0.7), lambda v: TF.hardtanh(v, -0.5, 0.7)),
        (F.hardtanh, TF.hardtanh),
        (F.relu6, TF.relu6),
    ]:
        e, t = _both(x)
        eo, to = ef(e), tf(t)
        _close(eo, to, **_tol(dt))
        _backward(eo, to)
        _close(e.grad, t.grad, **_tol(dt))
    e, t = _both(x)
    F.relu6(e).sum().backward()
    assert e.grad.numpy()[[3, 6]].tolist() == [0.0, 0.0]  # relu6'(0) = relu6'(6) = 0


def test_relu6_and_hardtanh_keep_integer_dtype():
    x = np.array([-3, 0, 2, 6, 9], np.int64)
    e, t = F.relu6(ember.tensor(x)), TF.relu6(torch.tensor(x))
    assert e.dtype == ember.int64
    assert e.numpy().tolist() == t.numpy().tolist() == [0, 0, 2, 6, 6]
    assert F.hardtanh(ember.tensor(x), -1.0, 1.0).numpy().tolist() == [-1, 0, 1, 1, 1]


@pytest.mark.parametrize("dt", FLOATS)
def test_hardsigmoid_propagates_nan(dt):
    x = np.array([np.nan, -np.inf, np.inf, -3.0, 3.0, 1.0, -4.0], dt)
    e, t = _both(x)
    eo, to = F.hardsigmoid(e), TF.hardsigmoid(t)
    assert np.isnan(eo.detach().numpy()[0])
    _close(eo, to, **_tol(dt))
    eo.sum().backward()
    assert np.allclose(e.grad.numpy(), [0, 0, 0, 0, 0, 1 / 6, 0])


@pytest.mark.parametrize("dt", FLOATS)
def test_hardswish_gradient_finite_at_infinity(dt):
    x = np.array([np.inf, -np.inf, 2.0, -2.0, 5.0, -5.0, 3.0, -3.0], dt)
    e, t = _both(x)
    eo, to = F.hardswish(e), TF.hardswish(t)
    _close(eo, to, **_tol(dt))
    _backward(eo, to)
    assert np.isfinite(e.grad.numpy()).all()
    _close(e.grad, t.grad, **_tol(dt))


# -- binary ops --------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_pow_tensor_exponent_zero_at_zero_base(dt):
    base = np.array([0.0, 0.0, 2.0, 0.0, 1.5], dt)
    expo = np.array([0.0, 2.0, 0.0, 1.0, -1.0], dt)
    (eb, tb), (ee, te) = _both(base), _both(expo)
    eo, to = eb**ee, tb**te
    _close(eo, to, **_tol(dt))
    _backward(eo, to)
    assert np.isfinite(eb.grad.numpy()).all()
    _close(eb.grad, tb.grad, **_tol(dt))


@pytest.mark.parametrize("dt", FLOATS)
def test_maximum_minimum_gradient_with_nan_and_ties(dt):
    a = np.array([1.0, np.nan, 3.0, 2.0, np.nan], dt)
    b = np.array([1.0, 2.0, np.nan, 5.0, np.nan], dt)
    for ef, tf in [(ember.maximum, torch.maximum), (ember.minimum, torch.minimum)]:
        (ea, ta), (eb, tb) = _both(a), _both(b)
        eo, to = ef(ea, eb), tf(ta, tb)
        _close(eo, to, **_tol(dt))
        _backward(eo, to)
        _close(ea.grad, ta.grad, **_tol(dt))
        _close(eb.grad, tb.grad, **_tol(dt))


# -- reductions --------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("dim", [1, (1, 2), (0, 1)])
def test_logsumexp_over_an_empty_dim_is_minus_inf(dt, dim):
    x = np.zeros((2, 0, 3), dt)
    e, t = ember.tensor(x).logsumexp(dim), torch.tensor(x).logsumexp(dim)
    assert tuple(e.shape) == tuple(t.shape)
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    assert e.numel() == 0 or np.isneginf(e.numpy()).all()


@pytest.mark.parametrize("dim", [0, 2, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_argmax_of_empty_tensor_over_nonempty_dim(dim, keepdim):
    x = np.zeros((2, 0, 3), np.float32)
    e, t = ember.tensor(x), torch.tensor(x)
    for name in ("max", "min"):
        ev, ei = getattr(e, name)(dim, keepdim=keepdim)
        tv, ti = getattr(t, name)(dim, keepdim=keepdim)
        assert tuple(ev.shape) == tuple(tv.shape) and tuple(ei.shape) == tuple(ti.shape)
    for name in ("argmax", "argmin"):
        er = getattr(e, name)(dim, keepdim=keepdim)
        tr = getattr(t, name)(dim, keepdim=keepdim)
        assert tuple(er.shape) == tuple(tr.shape) and er.dtype == ember.int64
    with pytest.raises(Exception):
        e.max(1)  # the reduced dim itself is empty: an error, as in PyTorch


@pytest.mark.parametrize("npdt", [np.int32, np.int8, np.uint8, np.int64, np.bool_])
def test_max_min_dim_values_keep_integer_dtype(npdt):
    x = np.array([[1, 3, 3, 0], [2, 2, 0, 1]]).astype(npdt)
    for name in ("max", "min"):
        ev, ei = getattr(ember.tensor(x), name)(1)
        tv, ti = getattr(torch.tensor(x), name)(1)
        assert ev.numpy().dtype == tv.numpy().dtype == x.dtype
        np.testing.assert_array_equal(ev.numpy(), tv.numpy())
        np.testing.assert_array_equal(ei.numpy(), ti.numpy())


# -- normalization -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 4)])
def test_instance_norm_updates_running_stats(dt, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(dt) * 2 + 1
    c = shape[1]
    erm, erv = ember.tensor(np.zeros(c, dt)), ember.tensor(np.ones(c, dt))
    trm, trv = torch.tensor(np.zeros(c, dt)), torch.tensor(np.ones(c, dt))
    e, t = _both(x)
    eo = F.instance_norm(e, erm, erv, use_input_stats=True, momentum=0.2)
    to = TF.instance_norm(t, trm, trv, use_input_stats=True, momentum=0.2)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else _tol(dt)
    _close(eo, to, **tol)
    _close(erm, trm, **tol)
    _close(erv, trv, **tol)
    _backward(eo, to)
    _close(e.grad, t.grad, **tol)
    y = np.random.default_rng(1).standard_normal(shape).astype(dt)
    eo = F.instance_norm(ember.tensor(y), erm, erv, use_input_stats=False)
    to = TF.instance_norm(torch.tensor(y), trm, trv, use_input_stats=False)
    _close(eo, to, **tol)


# -- losses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_all_targets_ignored_has_zero_gradient(dt, smoothing, weighted):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dt)
    tgt = np.full((3,), -100, np.int64)
    w = np.array([0.5, 1.0, 2.0, 1.5], dt) if weighted else None
    e, t = _both(x)
    eo = F.cross_entropy(
        e,
        ember.tensor(tgt),
        weight=None if w is None else ember.tensor(w),
        label_smoothing=smoothing,
    )
    to = TF.cross_entropy(
        t,
        torch.tensor(tgt),
        weight=None if w is None else torch.tensor(w),
        label_smoothing=smoothing,
    )
    assert np.isnan(eo.detach().numpy()) and np.isnan(to.detach().numpy())
    eo.backward()
    to.backward()
    np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())
    assert not e.grad.numpy().any()


@pytest.mark.parametrize("dt", FLOATS)
def test_nll_loss_all_targets_ignored_has_zero_gradient(dt):
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(dt)
    tgt = np.full((2, 3), 2, np.int64)
    e, t = _both(x)
    eo = F.nll_loss(e, ember.tensor(tgt), ignore_index=2)
    to = TF.nll_loss(t, torch.tensor(tgt), ignore_index=2)
    assert np.isnan(eo.detach().numpy()) and np.isnan(to.detach().numpy())
    eo.backward()
    to.backward()
    np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("dt", FLOATS)
def test_cross_entropy_partly_ignored_still_matches(dt):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2, 2)).astype(dt)
    tgt = rng.integers(0, 5, (3, 2, 2))
    tgt[0, 0, 0] = tgt[2, 1, 1] = -100
    w = np.abs(rng.standard_normal(5)).astype(dt) + 0.1
    for ls in (0.0, 0.2):
        e, t = _both(x)
        eo = F.cross_entropy(e, ember.tensor(tgt), weight=ember.tensor(w), label_smoothing=ls)
        to = TF.cross_entropy(t, torch.tensor(tgt), weight=torch.tensor(w), label_smoothing=ls)
        _close(eo, to, **_tol(dt))
        _backward(eo, to)
        _close(e.grad, t.grad, **_tol(dt))


@pytest.mark.parametrize("dt", FLOATS)
def test_binary_cross_entropy_gradient_at_saturated_probabilities(dt):
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-30, 0.5, 0.25, 0.9], dt)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.5, 1.0, 0.3], dt)
    w = np.linspace(0.5, 2.0, 8).astype(dt)
    for weight in (None, w):
        e, t = _both(p)
        kw_e = {} if weight is None else {"weight": ember.tensor(weight)}
        kw_t = {} if weight is None else {"weight": torch.tensor(weight)}
        eo = F.binary_cross_entropy(e, ember.tensor(y), reduction="none", **kw_e)
        to = TF.binary_cross_entropy(t, torch.tensor(y), reduction="none", **kw_t)
        _close(eo, to, **_tol(dt))
        _backward(eo, to)
        assert np.isfinite(e.grad.numpy()).all()
        # PyTorch's epsilon is a float32 1e-12: a relative difference of ~4e-9 at the edges
        _close(e.grad, t.grad, rtol=1e-6, atol=1e-6)
    # a sigmoid saturated to exactly 1.0 in float32 still trains
    x = ember.tensor(np.array([20.0, -20.0, 0.3], np.float32), requires_grad=True)
    F.binary_cross_entropy(
        x.sigmoid(), ember.tensor(np.array([0.0, 1.0, 1.0], np.float32))
    ).backward()
    assert np.isfinite(x.grad.numpy()).all()


# -- attention ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_sdpa_fully_masked_row_gives_zeros(dt, kind):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 2, 4, 3)).astype(dt)
    k = rng.standard_normal((2, 2, 5, 3)).astype(dt)
    v = rng.standard_normal((2, 2, 5, 6)).astype(dt)
    keep = rng.random((4, 5)) > 0.4
    keep[:, 0] = True
    keep[1] = False  # query row 1 sees no key
    if kind == "bool":
        me, mt = ember.tensor(keep), torch.tensor(keep)
    else:
        m = np.where(keep, 0.0, -np.inf).astype(dt)
        me, mt = ember.tensor(m), torch.tensor(m)
    (eq, tq), (ek, tk), (ev, tv) = _both(q), _both(k), _both(v)
    eo = F.scaled_dot_product_attention(eq, ek, ev, attn_mask=me)
    to = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=mt)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dt == np.float32 else _tol(dt)
    assert not eo.detach().numpy()[:, :, 1].any()
    _close(eo, to, **tol)
    _backward(eo, to)
    for a, b in ((eq, tq), (ek, tk), (ev, tv)):
        assert np.isfinite(a.grad.numpy()).all()
        _close(a.grad, b.grad, **tol)


def test_sdpa_without_keys_gives_zeros():
    q = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    k = np.zeros((1, 2, 0, 4), np.float32)
    eq, tq = _both(q)
    eo = F.scaled_dot_product_attention(eq, ember.tensor(k), ember.tensor(k))
    to = TF.scaled_dot_product_attention(tq, torch.tensor(k), torch.tensor(k))
    assert tuple(eo.shape) == tuple(to.shape) == (1, 2, 3, 4)
    np.testing.assert_array_equal(eo.detach().numpy(), to.detach().numpy())
    eo.sum().backward()
    assert not eq.grad.numpy().any()
