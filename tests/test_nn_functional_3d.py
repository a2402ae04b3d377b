"""3-D convolution and pooling (ember/nn/functional/volumetric.py) against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from test_nn_functional_extra import _check, _f

import ember
import ember.nn.functional as F


@pytest.mark.parametrize(
    "kw",
    [{}, {"stride": 2}, {"padding": 1}, {"dilation": (1, 2, 1), "padding": (0, 2, 1)},
     {"groups": 2}, {"padding": "same"}, {"stride": (2, 1, 1), "padding": (1, 0, 1)}],
)  # fmt: skip
def test_conv3d_matches_torch(kw):
    x = _f(2, 4, 5, 6, 5)
    w = _f(6, 4 // kw.get("groups", 1), 3, 2, 3)
    b = _f(6)
    _check(
        lambda a, ww, bb: F.conv3d(a, ww, bb, **kw),
        lambda a, ww, bb: TF.conv3d(a, ww, bb, **kw),
        x,
        w,
        b,
        rtol=1e-5,
    )


def test_conv3d_unbatched_and_errors():
    x, w = _f(2, 3, 3, 3), _f(1, 2, 2, 2, 2)
    _check(lambda a, ww: F.conv3d(a, ww), lambda a, ww: TF.conv3d(a, ww), x, w)
    with pytest.raises(Exception, match="channels"):
        F.conv3d(
            ember.zeros(1, 3, 2, 2, 2),
            ember.zeros(1, 2, 1, 1, 1),
        )


@pytest.mark.parametrize(
    "kw",
    [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
     {"kernel_size": (2, 3, 2), "stride": (1, 2, 2), "ceil_mode": True},
     {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
     {"kernel_size": 2, "divisor_override": 3}],
)  # fmt: skip
def test_avg_pool3d_matches_torch(kw):
    _check(lambda a: F.avg_pool3d(a, **kw), lambda a: TF.avg_pool3d(a, **kw), _f(2, 2, 5, 6, 7))


@pytest.mark.parametrize(
    "kw",
    [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
     {"kernel_size": 2, "dilation": 2}, {"kernel_size": (2, 3, 2), "stride": 2, "ceil_mode": True}],
)  # fmt: skip
def test_max_pool3d_values_indices_and_grads(kw):
    x = _f(2, 2, 5, 6, 7)
    _check(lambda a: F.max_pool3d(a, **kw), lambda a: TF.max_pool3d(a, **kw), x)
    _, ei = F.max_pool3d_with_indices(ember.tensor(x), **kw)
    _, ti = TF.max_pool3d_with_indices(torch.from_numpy(x), **kw)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())


@pytest.mark.parametrize("out", [(2, 3, 2), 1, (3, None, 4)])
def test_adaptive_pool3d_matches_torch(out):
    x = _f(2, 3, 5, 6, 7)
    _check(lambda a: F.adaptive_avg_pool3d(a, out), lambda a: TF.adaptive_avg_pool3d(a, out), x)
    _check(lambda a: F.adaptive_max_pool3d(a, out), lambda a: TF.adaptive_max_pool3d(a, out), x)
    _, ei = F.adaptive_max_pool3d_with_indices(ember.tensor(x), out)
    _, ti = TF.adaptive_max_pool3d_with_indices(torch.from_numpy(x), out)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())


def test_lp_pool3d_matches_torch():
    x = np.abs(_f(1, 2, 4, 4, 4)) + 0.1
    _check(lambda a: F.lp_pool3d(a, 2, 2), lambda a: TF.lp_pool3d(a, 2, 2), x)
