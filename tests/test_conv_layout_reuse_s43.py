"""A convolution's weight gradient reuses the padded channels-last copy of an NCHW input
that its forward made (one conversion per training step instead of two): the same bits as
converting again, only inside that convolution's VJP, released after it, and never handed to
a weight gradient of other data."""

import numpy as np
import pytest
import torch

import ember
import ember.ops._conv_util as CU
from ember.ops import _layout

F = ember.nn.functional


def _case(seed=0, xs=(4, 16, 11, 9), ws=(24, 16, 3, 3)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.1).astype(np.float32)
    return x, w


def _grads(x, w, stride, padding):
    X = ember.from_numpy(x.copy()).requires_grad_()
    W = ember.from_numpy(w.copy()).requires_grad_()
    y = F.conv2d(X, W, stride=stride, padding=padding)
    g = np.random.default_rng(9).standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(ember.from_numpy(g))
    return y.detach().numpy(), X.grad.numpy(), W.grad.numpy(), g


def _counting(monkeypatch):
    calls = {"n": 0}
    orig = CU.nchw_to_nhwc

    def counted(a, *rest, **k):
        calls["n"] += a.shape[1] == 16  # x's channels (the gradient g has 24)
        return orig(a, *rest, **k)

    monkeypatch.setattr(CU, "nchw_to_nhwc", counted)
    return calls


@pytest.mark.parametrize("stride,padding", [(2, 1), (1, 1), (2, 0), (1, 2)])
def test_weight_gradient_matches_torch_and_converts_x_once(monkeypatch, stride, padding):
    x, w = _case()
    calls = _counting(monkeypatch)
    y, gx, gw, g = _grads(x, w, stride, padding)
    assert calls["n"] == 0  # x's NHWC copy came from the forward
    assert getattr(CU._FWD, "entry", None) is None  # released after the VJP
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride,padding", [(2, 1), (1, 1)])
def test_reused_copy_gives_the_same_bits_as_converting_again(monkeypatch, stride, padding):
    x, w = _case(1)
    reused = _grads(x, w, stride, padding)
    monkeypatch.setattr(CU, "forward_padded", lambda x, padding=None: None)
    import ember.ops._conv_gemm as CG
    import ember.ops._conv_grad_weight as GW

    monkeypatch.setattr(GW, "forward_padded", lambda x, padding=None: None)
    monkeypatch.setattr(CU, "remember_padded", lambda *a: None)
    again = _grads(x, w, stride, padding)
    for a, b in zip(reused, again):
        np.testing.assert_array_equal(a, b)
    assert CG is not None


def test_the_copy_is_only_handed_out_inside_that_convolutions_vjp():
    x, w = _case(2)
    X = ember.from_numpy(x.copy()).requires_grad_()
    F.conv2d(X, ember.from_numpy(w), stride=2, padding=1)  # forward only: the copy is kept
    assert CU.forward_padded(X._data, (1, 1, 1, 1)) is None  # not outside a VJP
    with CU.reusing_forward_layout(np.zeros_like(x)):  # another array's VJP
        assert CU.forward_padded(X._data, (1, 1, 1, 1)) is None
    with ember.no_grad():  # an unrecorded forward keeps nothing
        CU._FWD.entry = None
        F.conv2d(ember.from_numpy(x.copy()), ember.from_numpy(w), stride=2, padding=1)
        assert getattr(CU._FWD, "entry", None) is None


def test_writing_x_between_forward_and_backward_is_refused():
    x, w = _case(3)
    X = ember.from_numpy(x.copy()).requires_grad_()
    W = ember.from_numpy(w.copy()).requires_grad_()
    Xi = X * 1.0  # a non-leaf that can be written in place
    y = F.conv2d(Xi, W, stride=2, padding=1)
    with ember.no_grad():
        Xi.mul_(2.0)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()


def test_channels_last_inputs_and_double_backward_still_match_torch():
    x, w = _case(4)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # NHWC memory
    X = ember.from_numpy(xl).requires_grad_()
    W = ember.from_numpy(w.copy()).requires_grad_()
    y = F.conv2d(X, W, stride=2, padding=1)
    (gw,) = ember.autograd.grad(y.square().sum(), (W,), create_graph=True)
    gw.sum().backward()
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, wt, stride=2, padding=1)
    (gwt,) = torch.autograd.grad(yt.square().sum(), (wt,), create_graph=True)
    gwt.sum().backward()
    np.testing.assert_allclose(gw.detach().numpy(), gwt.detach().numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-3)
    assert _layout is not None
