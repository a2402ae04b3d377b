"""ember.nn modules against torch.nn, ported the way users port models (weights copied
through ``load_state_dict``): cases found by fuzzing."""

import numpy as np
import pytest
import torch

import ember


def _copy(tm, em):
    sd = tm.state_dict()
    assert list(sd) == list(em.state_dict())
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in sd.items()})


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scale_grad_by_freq(padding_idx):
    torch.manual_seed(0)
    tm = torch.nn.Embedding(10, 3, padding_idx=padding_idx, scale_grad_by_freq=True)
    em = ember.nn.Embedding(10, 3, padding_idx=padding_idx, scale_grad_by_freq=True)
    _copy(tm, em)
    idx = np.array([[1, 2, 0, 4], [4, 3, 2, 4]])
    w = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    to = tm(torch.tensor(idx))
    eo = em(ember.tensor(idx))
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-6)
    (to * torch.tensor(w)).sum().backward()
    (eo * ember.tensor(w)).sum().backward()
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-5)
    assert abs(float(em.weight.grad.numpy()[4, 0])) > 0  # row 4 looked up 3 times


def _gaussian_nll(var, eps, reduction):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = rng.standard_normal((3, 4)).astype(np.float32)
    outs = []
    for lib in (torch, ember):
        ins = [lib.tensor(a, requires_grad=True) for a in (x, y, var)]
        loss = lib.nn.GaussianNLLLoss(eps=eps, reduction=reduction)(*ins)
        loss.sum().backward()
        outs.append([loss.detach().numpy()] + [t.grad.numpy() for t in ins])
    for e, t in zip(outs[1], outs[0]):
        np.testing.assert_allclose(e, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gaussian_nll_var_one_per_sample(reduction):
    # var of shape input.shape[:-1] is unsqueezed, as PyTorch
    var = np.abs(np.random.default_rng(2).standard_normal(3)).astype(np.float32) + 0.1
    _gaussian_nll(var, 1e-6, reduction)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gaussian_nll_eps_clamp_keeps_gradient(reduction):
    # PyTorch clamps var to eps without grad: var's gradient is not zeroed below eps
    var = np.array([[0.1, 0.6, 0.2, 1.0]] * 3, np.float32)
    _gaussian_nll(var, 0.5, reduction)


def test_gaussian_nll_rejects_bad_var():
    x = ember.zeros(3, 4)
    with pytest.raises(ValueError):
        ember.nn.GaussianNLLLoss()(x, x, ember.ones(3, 2))
    with pytest.raises(ValueError):
        ember.nn.GaussianNLLLoss()(x, x, -ember.ones(3, 4))
