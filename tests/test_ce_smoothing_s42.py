"""Label smoothing fused into the cross-entropy kernels (rows and (N, C, S)), against PyTorch:
values and gradients, class weights, ignore_index, reductions, NumPy fallback, 1 vs 2 threads,
compiled graphs, ONNX refusal; and the small-tensor layer norm path."""

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.backends import jit
from ember.ops import nn as nn_ops

TF = torch.nn.functional
TOL = {np.float32: 2e-5, np.float64: 1e-10}


def _run(shape, dt, reduction, weighted, ignore, eps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dt)
    c = shape[1]
    t = rng.integers(0, c, (shape[0],) + shape[2:])
    t.flat[0] = min(1, c - 1)  # an ignored position where ignore_index is 1
    w = rng.uniform(0.1, 2.0, c).astype(dt) if weighted else None
    if weighted and c > 2:
        w[2] = 0.0  # a valid target with a zero class weight keeps its smoothing term
    kw = {"reduction": reduction, "ignore_index": ignore, "label_smoothing": eps}
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    we = None if w is None else ember.tensor(w)
    wt = None if w is None else torch.tensor(w)
    le = F.cross_entropy(xe, ember.tensor(t), weight=we, **kw)
    lt = TF.cross_entropy(xt, torch.tensor(t), weight=wt, **kw)
    g = rng.standard_normal(tuple(lt.shape)).astype(dt)
    (ge,) = ember.autograd.grad(le, [xe], ember.tensor(g))
    (gt,) = torch.autograd.grad(lt, [xt], torch.tensor(g))
    tol = TOL[dt]
    np.testing.assert_allclose(le.detach().numpy(), lt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ge.numpy(), gt.numpy(), rtol=tol, atol=tol)
    return le.detach().numpy(), ge.numpy()


@pytest.mark.parametrize("shape", [(7, 5), (5, 301), (3, 4, 5, 2), (2, 3, 7), (1, 1)])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_smoothing_matches_torch(shape, dt, reduction, weighted):
    for ignore, eps in ((-100, 0.1), (1, 0.25), (1, 1.0), (1, 0.0)):
        _run(shape, dt, reduction, weighted, ignore, eps)


@pytest.mark.parametrize("shape", [(6, 9), (2, 3, 4, 5)])
def test_numpy_fallback_same_values(shape, monkeypatch):
    want = [_run(shape, np.float64, "none", w, 1, 0.2) for w in (False, True)]
    monkeypatch.setattr(jit, "get", lambda name: None)
    monkeypatch.setattr(nn_ops, "_ce_mid_kernel", lambda *a: None)
    got = [_run(shape, np.float64, "none", w, 1, 0.2) for w in (False, True)]
    for (a, b), (c, d) in zip(want, got):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b, d, rtol=1e-12, atol=1e-12)


def test_all_ignored_is_nan_with_zero_gradient():
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    for w in (None, np.ones(4, np.float32)):
        xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        kw = {"ignore_index": 1, "label_smoothing": 0.1}
        le = F.cross_entropy(
            xe, ember.tensor([1, 1, 1]), None if w is None else ember.tensor(w), **kw
        )
        lt = TF.cross_entropy(
            xt, torch.tensor([1, 1, 1]), None if w is None else torch.tensor(w), **kw
        )
        le.backward()
        lt.backward()
        assert np.isnan(le.item()) and np.isnan(lt.item())
        np.testing.assert_array_equal(xe.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_second_order_matches_torch(weighted, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[0] = 1
    w = rng.uniform(0.1, 2, shape[1]) if weighted else None
    kw = {"ignore_index": 1, "label_smoothing": 0.3}
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    le = F.cross_entropy(xe, ember.tensor(t), None if w is None else ember.tensor(w), **kw)
    lt = TF.cross_entropy(xt, torch.tensor(t), None if w is None else torch.tensor(w), **kw)
    (ge,) = ember.autograd.grad(le, [xe], create_graph=True)
    (gt,) = torch.autograd.grad(lt, [xt], create_graph=True)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), atol=1e-12)
    (he,) = ember.autograd.grad((ge * ge).sum(), [xe])
    (ht,) = torch.autograd.grad((gt * gt).sum(), [xt])
    np.testing.assert_allclose(he.numpy(), ht.numpy(), atol=1e-12)


def test_probability_targets_with_smoothing_unchanged():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    p = rng.dirichlet(np.ones(6), 4).astype(np.float32)
    w = rng.uniform(0.5, 2, 6).astype(np.float32)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    le = F.cross_entropy(xe, ember.tensor(p), ember.tensor(w), label_smoothing=0.2)
    lt = TF.cross_entropy(xt, torch.tensor(p), torch.tensor(w), label_smoothing=0.2)
    le.backward()
    lt.backward()
    np.testing.assert_allclose(le.item(), lt.item(), rtol=1e-5)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_one_and_two_threads_bitwise():
    rng = np.random.default_rng(5)
    cases = [
        (rng.standard_normal((300, 1000)).astype(np.float32), (300,), 1000),
        (rng.standard_normal((8, 21, 32, 32)).astype(np.float32), (8, 32, 32), 21),
    ]
    old = ember.get_num_threads()
    res = []
    try:
        for nt in (1, 2):
            ember.set_num_threads(nt)
            r = []
            for x, ts, c in cases:
                t = ember.tensor(np.random.default_rng(6).integers(0, c, ts))
                for w in (None, ember.tensor(np.linspace(0.1, 2, c, dtype=np.float32))):
                    xe = ember.tensor(x, requires_grad=True)
                    loss = F.cross_entropy(xe, t, w, label_smoothing=0.1, reduction="none")
                    (g,) = ember.autograd.grad(loss.sum(), [xe])
                    r += [loss.detach().numpy(), g.numpy()]
            res.append(r)
    finally:
        ember.set_num_threads(old)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_compiled_same_values():
    def f(x, t, w):
        return F.cross_entropy(x, t, w, ignore_index=0, label_smoothing=0.15)

    cf = ember.compile(f)
    rng = np.random.default_rng(7)
    x = ember.tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
    t = ember.tensor(rng.integers(0, 5, 6))
    w = ember.tensor(rng.uniform(0.5, 2, 5).astype(np.float32))
    assert cf(x, t, w).item() == f(x, t, w).item()
    (ga,) = ember.autograd.grad(cf(x, t, w), [x])
    (gb,) = ember.autograd.grad(f(x, t, w), [x])
    np.testing.assert_array_equal(ga.numpy(), gb.numpy())


def test_onnx_export_refuses_label_smoothing(tmp_path):
    class M(ember.nn.Module):
        def forward(self, x, t):
            return F.cross_entropy(x, t, label_smoothing=0.1)

    with pytest.raises(ValueError, match="label_smoothing=0.1"):
        ember.onnx.export(
            M(), (ember.randn(4, 3), ember.tensor([0, 1, 2, 0])), str(tmp_path / "m.onnx")
        )


def test_bad_label_smoothing_raises():
    with pytest.raises(ValueError, match="label_smoothing must be between"):
        F.cross_entropy(ember.randn(2, 3), ember.tensor([0, 1]), label_smoothing=1.5)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_small_layer_norm_matches_torch(dt):
    rng = np.random.default_rng(8)
    x, w, b = (rng.standard_normal(s).astype(dt) for s in ((64, 50), (50,), (50,)))
    xe, we, be = (ember.tensor(a, requires_grad=True) for a in (x, w, b))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ye, yt = F.layer_norm(xe, (50,), we, be), TF.layer_norm(xt, (50,), wt, bt)
    tol = TOL[dt] * 5
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    ge = ember.autograd.grad(ye.sum(), [xe, we, be])
    gt = torch.autograd.grad(yt.sum(), [xt, wt, bt])
    for a, c in zip(ge, gt):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="weight shape"):
        F.layer_norm(xe, (50,), ember.randn(49), be)
