"""Fused group norm (NCHW and channels-last memory) and cross entropy over (N, C, d1, ...)
logits: values and gradients against PyTorch, compiled and NumPy paths, 1 and 2 threads."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit


def _e(a, cl=False, grad=True):
    t = ember.tensor(a)
    if cl:
        t = t.contiguous(memory_format=ember.channels_last)
    return t.requires_grad_(grad)


def _gn_case(shape, groups, dtype, cl, affine=True, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) + 2.0).astype(dtype)
    w = rng.standard_normal(shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True) if affine else None
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True) if affine else None
    yt = torch.nn.functional.group_norm(xt, groups, wt, bt)
    yt.backward(torch.tensor(g, dtype=torch.float64))
    xe = _e(x, cl and len(shape) == 4)
    we, be = (_e(w), _e(b)) if affine else (None, None)
    ye = F.group_norm(xe, groups, we, be)
    ye.backward(ember.tensor(g))
    tol = 2e-5 if dtype == "float32" else 1e-10
    pairs = [(ye, yt), (xe.grad, xt.grad)]
    if affine:
        pairs += [(we.grad, wt.grad), (be.grad, bt.grad)]
    for got, ref in pairs:
        np.testing.assert_allclose(got.detach().numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    return ye


@pytest.mark.parametrize("jit_on", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "shape,groups,cl",
    [
        ((4, 8, 5, 3), 4, False),
        ((4, 8, 5, 3), 4, True),
        ((2, 64, 9, 7), 32, True),
        ((3, 6, 11), 6, False),
        ((2, 6, 7), 1, False),
        ((3, 12), 3, False),
        ((1, 4, 1, 1), 2, True),
    ],
)
def test_group_norm_matches_torch(shape, groups, cl, dtype, jit_on):
    old = jit.set_enabled(jit_on)
    try:
        _gn_case(shape, groups, dtype, cl)
        _gn_case(shape, groups, dtype, cl, affine=False, seed=1)
    finally:
        jit.set_enabled(old)


def test_group_norm_keeps_channels_last_layout():
    y = _gn_case((2, 16, 6, 5), 4, "float32", True)
    s = y.detach().numpy().strides
    assert s[1] == 4 and s[3] == 4 * 16  # (N, H, W, C) memory


def test_group_norm_non_contiguous_and_second_order():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 8, 6, 4))[:, :, ::2]
    w = rng.standard_normal(8)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    xe, we = _e(x), _e(w)
    gt = torch.autograd.grad(
        torch.nn.functional.group_norm(xt, 2, wt).pow(2).sum(), xt, create_graph=True
    )[0]
    ge = ember.autograd.grad(F.group_norm(xe, 2, we).pow(2).sum(), xe, create_graph=True)[0]
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-10)
    (ggt,) = torch.autograd.grad(gt.sum(), wt)
    (gge,) = ember.autograd.grad(ge.sum(), we)
    np.testing.assert_allclose(gge.numpy(), ggt.numpy(), rtol=1e-9, atol=1e-10)


def test_instance_norm_uses_fused_path():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    xt, xe = torch.tensor(x, requires_grad=True), _e(x)
    yt = torch.nn.functional.instance_norm(xt)
    ye = F.instance_norm(xe)
    yt.sum().backward()
    ye.sum().backward()
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cl", [False, True])
def test_group_norm_thread_counts_bitwise(cl):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 32, 40, 40)).astype(np.float32)
    w = rng.standard_normal(32).astype(np.float32)
    g = ember.tensor(rng.standard_normal(x.shape).astype(np.float32))
    res = []
    old = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            xe, we = _e(x, cl), _e(w)
            y = F.group_norm(xe, 8, we)
            y.backward(g)
            res.append((y.detach().numpy().copy(), xe.grad.numpy(), we.grad.numpy()))
    finally:
        ember.set_num_threads(old)
    for a, b in zip(res[0], res[1]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("jit_on", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_spatial_matches_torch(weighted, reduction, dtype, jit_on):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5, 4, 7)).astype(dtype)
    t = rng.integers(0, 5, (3, 4, 7))
    t[0, 0, :3] = 3  # ignore_index
    w = rng.uniform(0.5, 2.0, 5).astype(dtype)
    g = rng.standard_normal((3, 4, 7) if reduction == "none" else ()).astype(dtype)
    xt, xe = torch.tensor(x, requires_grad=True), _e(x)
    yt = torch.nn.functional.cross_entropy(
        xt, torch.tensor(t), torch.tensor(w) if weighted else None, ignore_index=3,
        reduction=reduction,
    )  # fmt: skip
    old = jit.set_enabled(jit_on)
    try:
        ye = F.cross_entropy(
            xe, ember.tensor(t), ember.tensor(w) if weighted else None, ignore_index=3,
            reduction=reduction,
        )  # fmt: skip
        ye.backward(ember.tensor(g))
    finally:
        jit.set_enabled(old)
    yt.backward(torch.tensor(g))
    tol = 1e-5 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_cross_entropy_spatial_channels_last_and_threads():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 21, 48, 48)).astype(np.float32)
    t = ember.tensor(rng.integers(0, 21, (4, 48, 48)))
    ref = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t.numpy()))
    res = []
    old = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            xe = _e(x, cl=True)
            y = F.cross_entropy(xe, t)
            y.backward()
            res.append((y.detach().numpy(), xe.grad.numpy()))
    finally:
        ember.set_num_threads(old)
    np.testing.assert_allclose(res[0][0], ref.numpy(), rtol=1e-5)
    for a, b in zip(res[0], res[1]):
        assert np.array_equal(a, b)
