"""Floating-point exceptions give inf/nan silently, as in PyTorch: no NumPy RuntimeWarning
from inside an op (eager forward, backward, thread blocks), while the user's own NumPy
error state is left as it was."""

import warnings

import numpy as np
import pytest
import torch

import ember

INF = float("inf")
CASES = {
    "mul inf*0": lambda L: L.tensor([0.0, 1.0]) * L.tensor([INF, 2.0]),
    "add inf-inf": lambda L: L.tensor([INF]) + L.tensor([-INF]),
    "sub overflow": lambda L: L.tensor([-3e38]) - L.tensor([3e38]),
    "scalar overflow": lambda L: L.tensor([3e38]) * 10,
    "div 0/0": lambda L: L.tensor([0.0, 1.0]) / L.tensor([0.0, 0.0]),
    "exp": lambda L: L.exp(L.tensor([1000.0])),
    "log": lambda L: L.log(L.tensor([0.0, -1.0])),
    "pow": lambda L: L.tensor([0.0]) ** -1,
    "sum overflow": lambda L: L.tensor([3e38, 3e38]).sum(),
    "mean inf-inf": lambda L: L.mean(L.tensor([INF, -INF])),
    "cumprod": lambda L: L.cumprod(L.tensor([1e30, 1e30, 0.0]), 0),
    "matmul inf*0": lambda L: L.tensor([[INF, 0.0]]) @ L.tensor([[0.0], [1.0]]),
    "linear inf*0": lambda L: L.nn.functional.linear(
        L.tensor([[INF, 0.0]]), L.tensor([[0.0, 1.0]])
    ),
    "large mul": lambda L: L.full((300, 300), INF) * L.zeros(300, 300),
    "large matmul": lambda L: L.full((256, 256), INF) @ L.zeros(256, 256),
    "large row sum": lambda L: L.full((4, 256, 256), 3e38).sum(-1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_warning_and_torch_values(name):
    f = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        got = f(ember).numpy()
    want = f(torch).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["log", "sqrt", "reciprocal", "rsqrt"])
def test_backward_at_zero_is_silent(op):
    x = ember.zeros(3, requires_grad=True)
    tx = torch.zeros(3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (getattr(ember, op)(x) * 0).sum().backward()
    (getattr(torch, op)(tx) * 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_user_error_state_untouched():
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ember.tensor([0.0]) * ember.tensor([INF])
    assert np.geterr() == before
    # the user's own NumPy code still warns as NumPy does
    with np.errstate(invalid="warn"), pytest.warns(RuntimeWarning):
        np.multiply(np.zeros(1), np.full(1, np.inf))
    # and an error state the user set makes NumPy raise outside Ember, not inside it
    with np.errstate(all="raise"):
        assert np.isnan(ember.tensor([0.0]) * ember.tensor([INF])).item()
        with pytest.raises(FloatingPointError):
            np.multiply(np.zeros(1), np.full(1, np.inf))
