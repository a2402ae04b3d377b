"""The functional additions of ember/nn/functional/rearrange.py against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F

RNG = np.random.default_rng(0)


def _f(*shape, dtype=np.float64):
    return RNG.uniform(-1, 1, shape).astype(dtype)


def _check(efn, tfn, *arrays, grad=True, rtol=1e-6):
    es = [
        ember.tensor(a).requires_grad_() if grad and a.dtype.kind == "f" else ember.tensor(a)
        for a in arrays
    ]
    ts = [
        torch.from_numpy(a.copy()).requires_grad_()
        if grad and a.dtype.kind == "f"
        else torch.from_numpy(a.copy())
        for a in arrays
    ]
    ey, ty = efn(*es), tfn(*ts)
    assert tuple(ey.shape) == tuple(ty.shape)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=rtol, atol=1e-8)
    if grad:
        g = RNG.standard_normal(tuple(ty.shape))
        ey.backward(ember.tensor(g))
        ty.backward(torch.from_numpy(g))
        for e, t in zip(es, ts):
            if t.grad is not None:
                np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=1e-8)


@pytest.mark.parametrize("shape,r", [((1, 8, 2, 3), 2), ((9, 2, 2), 3), ((2, 3, 4, 2, 2), 2)])
def test_pixel_shuffle_and_unshuffle(shape, r):
    x = _f(*shape)
    _check(lambda a: F.pixel_shuffle(a, r), lambda a: TF.pixel_shuffle(a, r), x)
    y = TF.pixel_shuffle(torch.from_numpy(x), r).numpy()
    _check(lambda a: F.pixel_unshuffle(a, r), lambda a: TF.pixel_unshuffle(a, r), y)
    with pytest.raises(ember.ops.ShapeError, match="divisible"):
        F.pixel_shuffle(ember.zeros(1, 3, 2, 2), 2)


def test_channel_shuffle():
    x = _f(2, 6, 3, 3)
    _check(lambda a: F.channel_shuffle(a, 3), lambda a: TF.channel_shuffle(a, 3), x, grad=False)
    _check(lambda a: F.channel_shuffle(a, 2), lambda a: torch.nn.ChannelShuffle(2)(a), x)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_pdist(p):
    _check(lambda a: F.pdist(a, p), lambda a: TF.pdist(a, p), _f(5, 3))


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 2)])
def test_affine_grid(align, size):
    k = len(size) - 2
    theta = _f(size[0], k, k + 1)
    _check(lambda t: F.affine_grid(t, size, align), lambda t: TF.affine_grid(t, size, align), theta)


def test_lp_pool_and_with_indices_spellings():
    x = np.abs(_f(2, 3, 6, 6)) + 0.1
    _check(lambda a: F.lp_pool2d(a, 2, 2), lambda a: TF.lp_pool2d(a, 2, 2), x)
    _check(lambda a: F.lp_pool1d(a, 3, 3), lambda a: TF.lp_pool1d(a, 3, 3), x[:, :, 0])
    _, ei = F.max_pool2d_with_indices(ember.tensor(x), 2)
    _, ti = TF.max_pool2d_with_indices(torch.from_numpy(x), 2)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    _, ei = F.adaptive_max_pool1d_with_indices(ember.tensor(x[:, :, 0]), 3)
    _, ti = TF.adaptive_max_pool1d_with_indices(torch.from_numpy(x[:, :, 0]), 3)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())


def test_rrelu_eval_and_training_ranges():
    x = _f(4, 5)
    _check(lambda a: F.rrelu(a), lambda a: TF.rrelu(a), x)
    ember.manual_seed(0)
    y = F.rrelu(ember.tensor(x), 0.1, 0.3, training=True).numpy()
    neg = x < 0
    ratio = y[neg] / x[neg]
    assert ((ratio >= 0.1 - 1e-12) & (ratio <= 0.3 + 1e-12)).all()
    np.testing.assert_array_equal(y[~neg], x[~neg])


def test_gumbel_softmax_is_a_distribution_and_hard_is_one_hot():
    ember.manual_seed(1)
    logits = ember.tensor(_f(3, 5)).requires_grad_()
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), 1.0, rtol=1e-12)
    hard = F.gumbel_softmax(logits, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and (h.sum(-1) == 1).all()
    (hard * ember.arange(5.0)).sum().backward()
    assert logits.grad is not None and np.abs(logits.grad.numpy()).sum() > 0


def test_triplet_with_distance_and_multilabel_margin_losses():
    a, p, n = _f(4, 3), _f(4, 3), _f(4, 3)
    _check(
        lambda *t: F.triplet_margin_with_distance_loss(*t, swap=True),
        lambda *t: TF.triplet_margin_with_distance_loss(*t, swap=True),
        a,
        p,
        n,
    )
    cos = lambda x, y: 1 - F.cosine_similarity(x, y)
    tcos = lambda x, y: 1 - TF.cosine_similarity(x, y)
    _check(
        lambda *t: F.triplet_margin_with_distance_loss(*t, distance_function=cos, reduction="none"),
        lambda *t: TF.triplet_margin_with_distance_loss(
            *t, distance_function=tcos, reduction="none"
        ),
        a,
        p,
        n,
    )
    x = _f(3, 4)
    y = np.array([[3, 0, -1, 1], [0, 1, 2, 3], [-1, 2, 0, 0]])
    for red in ("mean", "sum", "none"):
        _check(
            lambda t, yy, red=red: F.multilabel_margin_loss(t, yy, reduction=red),
            lambda t, yy, red=red: TF.multilabel_margin_loss(t, yy, reduction=red),
            x,
            y,
        )
    _check(
        lambda t, yy: F.multilabel_margin_loss(t, yy),
        lambda t, yy: TF.multilabel_margin_loss(t, yy),
        x[0],
        y[0],
    )


@pytest.mark.parametrize(
    "name,args",
    [
        ("elu_", ()),
        ("celu_", (0.5,)),
        ("selu_", ()),
        ("leaky_relu_", (0.2,)),
        ("hardtanh_", ()),
        ("threshold_", (0.1, -2.0)),
    ],
)
def test_inplace_activations_modify_their_input(name, args):
    x = _f(3, 4)
    e, t = ember.tensor(x), torch.from_numpy(x.copy())
    r = getattr(F, name)(e, *args)
    getattr(TF, name)(t, *args)
    assert r is e
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "size,out", [((2, 3, 7, 5), (3, 2)), ((3, 5, 7), (4, 3)), ((1, 2, 6, 6), (4, 4))]
)
def test_adaptive_max_pool2d_indices_for_uneven_bins(size, out):
    x = _f(*size)
    _, ei = F.adaptive_max_pool2d(ember.tensor(x), out, return_indices=True)
    _, ti = TF.adaptive_max_pool2d(torch.from_numpy(x), out, return_indices=True)
    np.testing.assert_array_equal(ei.numpy(), ti.numpy())
    _check(
        lambda a: F.adaptive_max_pool2d(a, out, True)[0],
        lambda a: TF.adaptive_max_pool2d(a, out, True)[0],
        x,
    )
    x1 = _f(2, 3, 7)
    _check(
        lambda a: F.adaptive_max_pool1d(a, 3, True)[0],
        lambda a: TF.adaptive_max_pool1d(a, 3, True)[0],
        x1,
    )
    np.testing.assert_array_equal(
        F.adaptive_max_pool1d(ember.tensor(x1), 3, True)[1].numpy(),
        TF.adaptive_max_pool1d(torch.from_numpy(x1), 3, True)[1].numpy(),
    )
