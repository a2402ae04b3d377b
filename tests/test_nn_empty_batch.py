"""Normalization layers on empty inputs behave as in PyTorch: an empty result in training and
eval mode, running statistics untouched, zero gradients for weight and bias. Run under
Python's default warning filters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember import nn


@pytest.fixture(autouse=True)
def _default_warning_filters():
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


CASES = [
    ("BatchNorm1d", (0, 3)),
    ("BatchNorm1d", (0, 3, 5)),
    ("BatchNorm1d", (2, 3, 0)),
    ("BatchNorm2d", (0, 3, 4, 4)),
    ("BatchNorm2d", (2, 3, 0, 4)),
    ("BatchNorm3d", (0, 3, 2, 2, 2)),
]


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("cls", "shape"), CASES)
def test_batch_norm_on_an_empty_batch_matches_torch(cls, shape, training):
    em, tm = getattr(nn, cls)(3, momentum=None), getattr(torch.nn, cls)(3, momentum=None)
    for m in (em, tm):
        m.running_mean.fill_(0.5)
        m.running_var.fill_(2.0)
        m.train(training)
    x = ember.zeros(shape, requires_grad=True)
    tx = torch.zeros(shape, requires_grad=True)
    y, ty = em(x), tm(tx)
    y.sum().backward()
    ty.sum().backward()
    assert tuple(y.shape) == tuple(ty.shape) and tuple(x.grad.shape) == tuple(tx.grad.shape)
    for a, b in (
        (em.running_mean, tm.running_mean),
        (em.running_var, tm.running_var),
        (em.num_batches_tracked, tm.num_batches_tracked),
        (em.weight.grad, tm.weight.grad),
        (em.bias.grad, tm.bias.grad),
    ):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_without_stats_or_affine(training):
    y = F.batch_norm(ember.zeros(0, 3), None, None, training=training)
    ty = torch.nn.functional.batch_norm(torch.zeros(0, 3), None, None, training=training)
    assert tuple(y.shape) == tuple(ty.shape)


def test_one_value_per_channel_is_still_an_error_in_training():
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        nn.BatchNorm1d(3)(ember.zeros(1, 3))


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 4, 0)])
def test_group_and_instance_norm_on_empty_inputs(shape):
    gm, tgm = nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)
    x, tx = ember.zeros(shape, requires_grad=True), torch.zeros(shape, requires_grad=True)
    y, ty = gm(x), tgm(tx)
    y.sum().backward()
    ty.sum().backward()
    assert tuple(y.shape) == tuple(ty.shape) and tuple(x.grad.shape) == shape
    # torch's weight gradient here is NaN for an empty spatial size (a mean over nothing);
    # ember's is the sum over no elements
    np.testing.assert_array_equal(gm.weight.grad.numpy(), np.zeros(4, np.float32))
    yi = F.instance_norm(ember.zeros(shape))
    assert tuple(yi.shape) == tuple(torch.nn.functional.instance_norm(torch.zeros(shape)).shape)
