"""Gradients accumulated into an existing ``.grad`` (several backward calls without zeroing,
as gradient accumulation does): added in place into the same buffer, as PyTorch's
AccumulateGrad, with PyTorch's values, on one and two threads."""

import numpy as np
import pytest
import torch

import ember


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (300, 257), (4, 8, 33, 35)])
def test_three_backward_calls_accumulate_as_torch(dtype, shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(dtype)
    xe, xt = ember.tensor(a).requires_grad_(), torch.tensor(a, requires_grad=True)
    held = None
    for k in range(3):
        (xe.tanh() * (k + 1)).sum().backward()
        (xt.tanh() * (k + 1)).sum().backward()
        if held is None:
            held = xe.grad
    assert held is xe.grad  # one buffer, updated in place
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12}
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **tol)
    assert xe.grad._version[0] == 2


def test_a_channels_last_gradient_into_an_nchw_grad():
    rng = np.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((2, 8, 9, 10)).astype(np.float32), requires_grad=True)
    w = ember.tensor(rng.standard_normal((8, 8, 1, 1)).astype(np.float32))
    xt, wt = torch.tensor(x.detach().numpy(), requires_grad=True), torch.tensor(w.numpy())
    for _ in range(2):
        ember.nn.functional.conv2d(x, w).square().sum().backward()
        torch.nn.functional.conv2d(xt, wt).square().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_one_and_two_threads_give_the_same_bits():
    a = np.random.default_rng(2).standard_normal((512, 300)).astype(np.float32)
    outs = []
    before = ember.get_num_threads()
    try:
        for n in (1, 2):
            ember.set_num_threads(n)
            x = ember.tensor(a).requires_grad_()
            for k in range(3):
                (x.sigmoid() * (k + 0.5)).sum().backward()
            outs.append(x.grad.numpy().copy())
    finally:
        ember.set_num_threads(before)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_a_grad_set_by_hand_is_added_into_and_a_read_only_one_replaced():
    x = ember.ones(3, requires_grad=True)
    buf = ember.full((3,), 10.0)
    x.grad = buf
    (x * 2).sum().backward()
    assert x.grad is buf and x.grad.tolist() == [12.0, 12.0, 12.0]
    ro = np.full(3, 1.0, np.float32)
    ro.flags.writeable = False
    x.grad = ember.from_numpy(ro)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(ro, [1.0, 1.0, 1.0])  # never written
