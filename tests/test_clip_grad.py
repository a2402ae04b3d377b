"""Gradient clipping and parameter/vector conversion against torch.nn.utils."""

import math

import numpy as np
import pytest
import torch

import ember
from ember.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def _pair(scale=1.0, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    vals = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]
    ep = [ember.tensor(v, requires_grad=True) for v in vals]
    tp = [torch.tensor(v, requires_grad=True) for v in vals]
    for e, t, g in zip(ep, tp, grads):
        e.grad = ember.tensor(g.copy())
        t.grad = torch.tensor(g.copy())
    return ep, tp


@pytest.mark.parametrize("norm_type", [2, 2.0, 1, 3.5, math.inf, "inf", 0.5])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e4])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ep, tp = _pair(scale=2.0)
    en = clip_grad_norm_(ep, max_norm, norm_type=norm_type)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    assert isinstance(en, ember.Tensor) and en.ndim == 0
    np.testing.assert_allclose(float(en), float(tn), rtol=1e-5)
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_single_tensor_and_missing_grads():
    ep, tp = _pair()
    ep[1].grad = None
    tp[1].grad = None
    en = clip_grad_norm_(ep, 0.5)
    tn = torch.nn.utils.clip_grad_norm_(tp, 0.5)
    np.testing.assert_allclose(float(en), float(tn), rtol=1e-6)
    assert ep[1].grad is None
    en = clip_grad_norm_(ep[0], 0.1)
    tn = torch.nn.utils.clip_grad_norm_(tp[0], 0.1)
    np.testing.assert_allclose(float(en), float(tn), rtol=1e-6)
    np.testing.assert_allclose(ep[0].grad.numpy(), tp[0].grad.numpy(), rtol=1e-5)
    assert float(clip_grad_norm_([ember.zeros(2, requires_grad=True)], 1.0)) == 0.0


def test_clip_grad_norm_nonfinite():
    ep, _ = _pair()
    ep[0].grad = ember.tensor(np.full((3, 4), np.inf, np.float32))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ep, 1.0, error_if_nonfinite=True)
    n = clip_grad_norm_(ep, 1.0)
    assert math.isinf(float(n))


def test_clip_grad_norm_float64():
    ep, tp = _pair(scale=5.0, dtype=np.float64)
    en = clip_grad_norm_(ep, 1.0)
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    assert en.dtype is ember.float64
    np.testing.assert_allclose(float(en), float(tn), rtol=1e-12)
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_get_total_norm():
    ep, tp = _pair()
    np.testing.assert_allclose(
        float(get_total_norm([p.grad for p in ep], 3.0)),
        float(torch.nn.utils.get_total_norm([p.grad for p in tp], 3.0)),
        rtol=1e-5,
    )


@pytest.mark.parametrize("clip", [0.1, 0.5, 10])
def test_clip_grad_value_matches_torch(clip):
    ep, tp = _pair(scale=1.0)
    clip_grad_value_(ep, clip)
    torch.nn.utils.clip_grad_value_(tp, clip)
    for e, t in zip(ep, tp):
        np.testing.assert_array_equal(e.grad.numpy(), t.grad.numpy())


def test_clip_in_training_loop_keeps_params_leaf():
    w = ember.ones(3, requires_grad=True)
    (w * 10).sum().backward()
    clip_grad_norm_([w], 1.0)
    assert w.is_leaf and not w.grad.requires_grad


def test_parameters_to_vector_round_trip():
    ep, tp = _pair()
    ev = parameters_to_vector(ep)
    tv = torch.nn.utils.parameters_to_vector(tp)
    np.testing.assert_array_equal(ev.detach().numpy(), tv.detach().numpy())
    assert ev.requires_grad
    new = ember.arange(ev.numel(), dtype=ember.float32)
    vector_to_parameters(new, ep)
    torch.nn.utils.vector_to_parameters(torch.arange(tv.numel(), dtype=torch.float32), tp)
    for e, t in zip(ep, tp):
        assert tuple(e.shape) == tuple(t.shape)
        np.testing.assert_array_equal(e.detach().numpy(), t.detach().numpy())
    with pytest.raises(TypeError):
        vector_to_parameters([1.0], ep)
    with pytest.raises(ValueError, match="expected a 1-d vector"):
        vector_to_parameters(ember.zeros(3), ep)
