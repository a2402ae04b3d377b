"""The layer classes that wrap existing functions (padding, pixel/channel shuffle, fold,
instance and local response norm, distances, shrink activations, RReLU, Softmax2d, LP
pooling, margin losses, 3-D and feature alpha dropout) against ``torch.nn``: the same
constructor arguments, state_dict keys, outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember import nn


def _pair(name, *args, **kw):
    return getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)


def _check(name, args, kw, shapes, train=False, rtol=1e-5, atol=1e-6, ints=None):
    """Outputs and input gradients of ``name(*args, **kw)`` on random inputs of ``shapes``
    (``ints``: an integer target replacing the last input)."""
    m, t = _pair(name, *args, **kw)
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    m.train(train)
    t.train(train)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    es = [ember.tensor(x, requires_grad=True) for x in xs]
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    if ints is not None:
        es[-1], ts[-1] = ember.tensor(ints), torch.tensor(ints)
    got, want = m(*es), t(*ts)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol, atol)
    g = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    got.backward(ember.tensor(g))
    want.backward(torch.tensor(g))
    for e, x in zip(es, ts):
        if x.grad is not None:
            np.testing.assert_allclose(e.grad.numpy(), x.grad.numpy(), rtol, atol)
    return m, t


@pytest.mark.parametrize(
    "name, padding, shape",
    [
        ("ReflectionPad1d", 2, (2, 3, 5)),
        ("ReflectionPad2d", (1, 0, 2, 1), (2, 3, 4, 5)),
        ("ReflectionPad3d", 1, (1, 2, 3, 4, 3)),
        ("ReplicationPad1d", (0, 3), (3, 4)),
        ("ReplicationPad2d", 2, (1, 2, 3, 3)),
        ("ReplicationPad3d", (1, 0, 0, 1, 2, 0), (1, 1, 2, 3, 2)),
        ("CircularPad1d", 1, (2, 2, 4)),
        ("CircularPad2d", (1, 2, 0, 1), (1, 2, 3, 4)),
        ("CircularPad3d", 1, (1, 1, 2, 3, 4)),
        ("ZeroPad1d", (2, 1), (2, 3, 4)),
        ("ZeroPad2d", 1, (2, 3, 3)),
        ("ZeroPad3d", (0, 1, 1, 0, 2, 2), (1, 1, 2, 2, 2)),
    ],
)
def test_padding_layers(name, padding, shape):
    m, t = _check(name, (padding,), {}, [shape])
    assert m.padding == t.padding


@pytest.mark.parametrize("name", ["ConstantPad1d", "ConstantPad2d", "ConstantPad3d"])
def test_constant_padding(name):
    dims = int(name[-2])
    _check(name, (1, -2.5), {}, [(2, 2) + (3,) * dims])


def test_padding_bad_arguments():
    with pytest.raises(ValueError, match="ReflectionPad2d: padding must be an int or a tuple of 4"):
        nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="ZeroPad1d: expected a 2-D .* or 3-D input"):
        nn.ZeroPad1d(1)(ember.ones(1, 2, 3, 4))


@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("PixelShuffle", (2,), (2, 8, 3, 3)),
        ("PixelUnshuffle", (3,), (1, 2, 6, 3)),
        ("ChannelShuffle", (2,), (2, 6, 2, 2)),
        ("Unfold", ((2, 3),), (2, 3, 5, 6)),
        ("Fold", ((4, 5), 2), (2, 3 * 4, 12)),
    ],
)
def test_rearranging_layers(name, args, shape):
    _check(name, args, {}, [shape])


def test_unfold_fold_with_every_argument():
    kw = {"kernel_size": (2, 2), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}
    _check("Unfold", (), kw, [(1, 2, 5, 6)])
    _check("Fold", ((5, 6),), kw, [(1, 8, 18)])


@pytest.mark.parametrize("name", ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"])
@pytest.mark.parametrize("affine, track", [(False, False), (True, False), (True, True)])
def test_instance_norm(name, affine, track):
    dims = int(name[-2])
    shape = (3, 4) + (5,) * dims
    kw = {"affine": affine, "track_running_stats": track, "momentum": 0.3}
    m, t = _check(name, (4,), kw, [shape], train=True, atol=1e-5)
    if track:  # the running statistics moved alike; evaluation uses them
        for k in ("running_mean", "running_var"):
            np.testing.assert_allclose(
                getattr(m, k).numpy(), getattr(t, k).numpy(), rtol=1e-5, atol=1e-6
            )
        _check(name, (4,), kw, [shape], train=False, atol=1e-5)
    # an unbatched input
    _check(name, (4,), kw, [shape[1:]], train=True, atol=1e-5)


def test_local_response_norm():
    _check("LocalResponseNorm", (3,), {"alpha": 0.1, "beta": 0.5, "k": 2.0}, [(2, 5, 3, 3)])


@pytest.mark.parametrize(
    "name, kw, shapes",
    [
        ("CosineSimilarity", {"dim": 2, "eps": 1e-6}, [(2, 3, 4), (2, 3, 4)]),
        ("CosineSimilarity", {}, [(3, 5), (1, 5)]),
        ("PairwiseDistance", {"p": 3.0, "keepdim": True}, [(4, 6), (4, 6)]),
        ("PairwiseDistance", {}, [(5,), (5,)]),
    ],
)
def test_distances(name, kw, shapes):
    _check(name, (), kw, shapes)


@pytest.mark.parametrize(
    "name, args", [("Hardshrink", ()), ("Hardshrink", (1.2,)), ("Softshrink", (0.3,))]
)
def test_shrink_activations(name, args):
    _check(name, args, {}, [(4, 7)])


def test_softmax2d_and_rrelu_in_eval():
    _check("Softmax2d", (), {}, [(2, 3, 4, 5)])
    _check("Softmax2d", (), {}, [(3, 4, 5)])
    _check("RReLU", (0.1, 0.4), {}, [(3, 8)])
    with pytest.raises(ValueError, match="Softmax2d: expected a 3-D or 4-D input"):
        nn.Softmax2d()(ember.ones(2, 3))


def test_rrelu_in_training_draws_slopes_in_range():
    ember.manual_seed(0)
    x = -ember.ones(1000)
    y = nn.RReLU(0.2, 0.3).train()(x).numpy()
    assert y.min() >= -0.3 - 1e-7 and y.max() <= -0.2 + 1e-7 and np.std(y) > 0.01


@pytest.mark.parametrize(
    "name, args, shape",
    [
        ("LPPool1d", (2, 3), (2, 3, 7)),
        ("LPPool2d", (3, (2, 3)), (1, 2, 5, 7)),
        ("LPPool2d", (1.5, 2), (2, 2, 4, 4)),
    ],
)
def test_lp_pooling(name, args, shape):
    _check(name, args, {}, [shape], rtol=1e-4, atol=1e-5)


def test_lp_pooling_options():
    _check("LPPool2d", (2, 3), {"stride": 2, "ceil_mode": True}, [(1, 2, 6, 7)], rtol=1e-4)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_losses(reduction):
    tgt = np.array([1, 0, 3, 2], np.int64)
    _check("MultiMarginLoss", (), {"reduction": reduction}, [(4, 5), (4,)], ints=tgt)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5, 1.0])
    m, t = nn.MultiMarginLoss(p=2, margin=0.7, weight=ember.tensor(w.numpy())), None
    t = torch.nn.MultiMarginLoss(p=2, margin=0.7, weight=w, reduction=reduction)
    m.reduction = reduction
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(
        m(ember.tensor(x), ember.tensor(tgt)).numpy(),
        t(torch.tensor(x), torch.tensor(tgt)).numpy(),
        rtol=1e-5,
    )
    labels = np.array([[3, 0, -1, 1], [1, 2, 3, -1]], np.int64)
    _check("MultiLabelMarginLoss", (), {"reduction": reduction}, [(2, 4), (2, 4)], ints=labels)


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss(swap):
    _check("TripletMarginWithDistanceLoss", (), {"swap": swap}, [(3, 4)] * 3)
    m = nn.TripletMarginWithDistanceLoss(
        distance_function=lambda a, b: 1.0 - nn.functional.cosine_similarity(a, b), margin=0.5
    )
    t = torch.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda a, b: 1.0 - torch.nn.functional.cosine_similarity(a, b),
        margin=0.5,
    )
    xs = [np.random.default_rng(i).standard_normal((3, 4)).astype(np.float32) for i in range(3)]
    np.testing.assert_allclose(
        m(*map(ember.tensor, xs)).numpy(), t(*map(torch.tensor, xs)).numpy(), rtol=1e-5
    )


def test_dropout3d_and_feature_alpha_dropout():
    for name in ("Dropout3d", "FeatureAlphaDropout"):
        _check(name, (0.3,), {}, [(2, 3, 2, 2, 2)])  # evaluation: the identity
    ember.manual_seed(0)
    y = nn.Dropout3d(0.5).train()(ember.ones(4, 8, 2, 2, 2)).numpy()
    per_channel = y.reshape(4, 8, -1)
    assert set(np.unique(per_channel.std(-1))) == {0.0}  # whole channels kept or dropped
    assert set(np.unique(y)) == {0.0, 2.0}
