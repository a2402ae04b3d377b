"""interpolate / upsample on 3-, 4- and 5-D inputs: every mode, size or scale factor,
align_corners, recompute_scale_factor and antialias combination PyTorch accepts, against
PyTorch (values and gradients, float32 and float64), plus the ones it rejects, finite
differences, empty batches, non-contiguous inputs and the Upsample layers."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn

import ember
import ember.nn.functional as F

MODES = {
    3: ("nearest", "nearest-exact", "linear", "area", "bilinear", "bicubic", "trilinear"),
    4: ("nearest", "nearest-exact", "bilinear", "bicubic", "area", "lanczos", "linear"),
    5: ("nearest", "nearest-exact", "trilinear", "area", "bicubic", "bilinear"),
}
SPATIAL = {3: (7,), 4: (5, 7), 5: (3, 4, 5)}
HOW = ("size_up", "size_down", "size_int", "sf_up", "sf_down", "sf_frac", "sf_tuple")


def _kwargs(nd, how):
    sp = SPATIAL[nd]
    return {
        "size_up": {"size": tuple(s * 2 + 1 for s in sp)},
        "size_down": {"size": tuple(max(1, s // 2) for s in sp)},
        "size_int": {"size": 3},
        "sf_up": {"scale_factor": 2.0},
        "sf_down": {"scale_factor": 0.5},
        "sf_frac": {"scale_factor": 1.7},
        "sf_tuple": {"scale_factor": (0.6, 2.3, 1.5)[: nd - 2]},
    }[how]


def _cases(nd):
    yield from itertools.product(
        MODES[nd], HOW, (None, False, True), (None, False, True), (False, True)
    )


def _torch_accepts(x, kw):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TF.interpolate(torch.tensor(x), **kw)
        return True
    except (ValueError, NotImplementedError, RuntimeError, TypeError):
        return False


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd", [3, 4, 5])
def test_interpolate_every_combination(nd, dtype):
    rng = np.random.default_rng(nd)
    accepted = rejected = 0
    for mode, how, align, rec, aa in _cases(nd):
        kw = dict(_kwargs(nd, how), mode=mode, align_corners=align,
                  recompute_scale_factor=rec, antialias=aa)  # fmt: skip
        x = rng.standard_normal((2, 3) + SPATIAL[nd]).astype(dtype)
        if not _torch_accepts(x, kw):
            with pytest.raises((ValueError, NotImplementedError, TypeError)):
                F.interpolate(ember.tensor(x), **kw)
            rejected += 1
            continue
        accepted += 1
        check(
            lambda a, k=kw: F.interpolate(a, **k),
            lambda a, k=kw: TF.interpolate(a, **k),
            [x],
            rtol=1e-5 if dtype == np.float32 else 1e-10,
            atol=1e-5 if dtype == np.float32 else 1e-10,
        )
    assert accepted > 100 and rejected > 100


def test_interpolate_index_arithmetic_edge_sizes():
    # sizes where float32 and float64 source indices differ: PyTorch's float32 rule wins
    # (a wrong pick is off by O(1); the 1e-6 is the gradients' scatter-add order)
    for n_in, n_out in [(3, 9), (7, 3), (10, 7), (13, 37), (5, 10), (6, 6), (33, 100)]:
        x = randn(1, 2, n_in)
        for mode in ("nearest", "nearest-exact"):
            check(
                lambda a, m=mode, o=n_out: F.interpolate(a, size=o, mode=m),
                lambda a, m=mode, o=n_out: TF.interpolate(a, size=o, mode=m),
                [x],
                rtol=1e-6,
                atol=1e-6,
            )
    for sf in (1 / 3, 0.7, 2.5, 3.0001):
        check(
            lambda a, s=sf: F.interpolate(a, scale_factor=s, mode="nearest"),
            lambda a, s=sf: TF.interpolate(a, scale_factor=s, mode="nearest"),
            [randn(1, 1, 9, 11)],
            rtol=1e-6,
            atol=1e-6,
        )


def test_interpolate_fd_noncontiguous_and_empty():
    for mode, kw in [("linear", {"align_corners": False}), ("bicubic", {"align_corners": True}),
                     ("trilinear", {"align_corners": False}), ("area", {}),
                     ("bilinear", {"antialias": True})]:  # fmt: skip
        shape = {"linear": (1, 1, 4), "trilinear": (1, 1, 2, 3, 2), "area": (1, 1, 3, 4, 3)}
        x = randn(*shape.get(mode, (1, 1, 3, 4)), dtype=np.float64)
        numeric_grad_check(
            lambda a, m=mode, k=kw: F.interpolate(a, scale_factor=0.7 if m != "area" else 0.6,
                                                  mode=m, **k),
            [x],
        )  # fmt: skip
    x = randn(2, 5, 4, 3, 3)  # (N, W, D, H, C) memory, read as (N, C, D, H, W)
    for mode in ("trilinear", "nearest", "area"):
        check(
            lambda a, m=mode: F.interpolate(a.permute(0, 4, 2, 3, 1), (5, 4, 6), mode=m),
            lambda a, m=mode: TF.interpolate(a.permute(0, 4, 2, 3, 1), (5, 4, 6), mode=m),
            [x],
        )
    e = F.interpolate(ember.zeros(0, 2, 2, 3, 4), scale_factor=2, mode="trilinear")
    assert tuple(e.shape) == (0, 2, 4, 6, 8)


def test_interpolate_errors_name_the_problem():
    x = ember.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, size=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="trilinear mode needs 5D"):
        F.interpolate(x, size=2, mode="trilinear")
    with pytest.raises(ValueError, match="anti-alias"):
        F.interpolate(ember.zeros(1, 1, 4), size=2, mode="linear", antialias=True)
    with pytest.raises(ValueError, match="Lanczos mode requires antialias"):
        F.interpolate(x, size=2, mode="lanczos")
    with pytest.raises(ValueError, match="recompute_scale_factor"):
        F.interpolate(x, size=2, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x, size=(2, 2, 2))
    with pytest.raises(NotImplementedError, match="mode 'cubic'"):
        F.interpolate(x, size=2, mode="cubic")


@pytest.mark.parametrize(
    ("name", "kw", "shape"),
    [("Upsample", {"scale_factor": 2, "mode": "trilinear", "align_corners": True},
      (1, 2, 2, 3, 2)),
     ("Upsample", {"size": (5, 3), "mode": "bicubic"}, (1, 2, 4, 4)),
     ("Upsample", {"scale_factor": (1.5, 0.5), "mode": "nearest-exact",
                   "recompute_scale_factor": True}, (1, 1, 4, 6)),
     ("UpsamplingNearest2d", {"scale_factor": 3}, (1, 2, 2, 3)),
     ("UpsamplingBilinear2d", {"size": (5, 4)}, (2, 1, 3, 2))],
)  # fmt: skip
def test_upsample_layers(name, kw, shape):
    x = randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch's deprecation warnings
        tm = getattr(torch.nn, name)(**kw)
        yt = tm(torch.tensor(x))
    em = getattr(ember.nn, name)(**kw)
    np.testing.assert_allclose(em(ember.tensor(x)).numpy(), yt.numpy(), rtol=1e-5, atol=1e-6)
    assert repr(em).split("(", 1)[1] == repr(tm).split("(", 1)[1]


def test_deprecated_functional_upsamples():
    x = randn(1, 2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = [
            (F.upsample(ember.tensor(x), scale_factor=2, mode="bilinear"),
             TF.upsample(torch.tensor(x), scale_factor=2, mode="bilinear")),
            (F.upsample_nearest(ember.tensor(x), (5, 7)),
             TF.upsample_nearest(torch.tensor(x), (5, 7))),
            (F.upsample_bilinear(ember.tensor(x), scale_factor=2),
             TF.upsample_bilinear(torch.tensor(x), scale_factor=2)),
        ]  # fmt: skip
    for ye, yt in pairs:
        np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-5, atol=1e-6)
