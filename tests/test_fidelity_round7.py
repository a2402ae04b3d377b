"""Fidelity fixes, round 7: embedding_bag's last bag under include_last_offset, the strides of
tensors with no elements, TripletMarginWithDistanceLoss's default child, the configs of the
Keras regularizers, and the weight keys of branched Keras functional models."""

import os
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F
from ember import keras

# -- embedding_bag(include_last_offset=True) with a last offset short of the input ----------

_IDX = np.array([0, 1, 2, 3, 4, 5, 1, 2])
_OFFSETS = [[0, 2, 4], [0, 3], [0, 2, 2], [0, 0], [0, 3, 8]]


def _torch_bag(wn, gn, pn, offs, mode, pad, end=None):
    """PyTorch's value and weight gradient; ``end`` cuts the input there first."""
    idx, p = (_IDX, pn) if end is None else (_IDX[:end], None if pn is None else pn[:end])
    tw = torch.tensor(wn, requires_grad=True)
    out = TF.embedding_bag(
        torch.tensor(idx),
        tw,
        torch.tensor(offs),
        mode=mode,
        padding_idx=pad,
        include_last_offset=True,
        per_sample_weights=None if p is None else torch.tensor(p),
    )
    out.backward(torch.tensor(gn))
    return out.detach().numpy(), tw.grad.numpy()


@pytest.mark.parametrize("offs", _OFFSETS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "mode,pad,psw",
    [("sum", None, False), ("sum", None, True), ("sum", 5, False), ("sum", 0, True)]
    + [("mean", None, False), ("mean", 5, False), ("max", None, False), ("max", 5, False)],
)
def test_embedding_bag_last_bag(offs, dtype, mode, pad, psw):
    rng = np.random.default_rng(len(offs) + offs[-1])
    wn = rng.standard_normal((6, 3)).astype(dtype)
    gn = rng.standard_normal((len(offs) - 1, 3)).astype(dtype)
    pn = rng.standard_normal(_IDX.size).astype(dtype) if psw else None
    want, want_g = _torch_bag(wn, gn, pn, offs, mode, pad)
    if mode == "sum" and pad is None and dtype == "float32":
        # PyTorch's fast path: the sum stops at the last offset, but its gradient of the
        # indices past it is uninitialised memory; the gradient of the cut input instead
        want_g = _torch_bag(wn, gn, pn, offs, mode, pad, end=offs[-1])[1]

    def f(w):
        return F.embedding_bag(
            ember.tensor(_IDX),
            w,
            ember.tensor(offs),
            mode=mode,
            padding_idx=pad,
            include_last_offset=True,
            per_sample_weights=None if pn is None else ember.tensor(pn),
        )

    for fn in (f, ember.compile(f, fullgraph=True)):
        w = ember.tensor(wn, requires_grad=True)
        out = fn(w)
        out.backward(ember.tensor(gn))
        np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w.grad.numpy(), want_g, rtol=1e-5, atol=1e-6)


def test_embedding_bag_module_last_bag():
    m = ember.nn.EmbeddingBag(6, 2, mode="max", include_last_offset=True)
    t = torch.nn.EmbeddingBag(6, 2, mode="max", include_last_offset=True)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(m.weight.detach().numpy()))
    got = m(ember.tensor([0, 1, 2, 3, 4]), ember.tensor([0, 2, 3]))
    want = t(torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 2, 3]))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6)


# -- stride() of tensors with no elements ---------------------------------------------------

_EMPTY = [
    lambda m: m.empty(0, 3),
    lambda m: m.zeros(2, 0, 3),
    lambda m: m.zeros(0),
    lambda m: m.zeros(0, 3).t(),
    lambda m: m.zeros(3, 0).t(),
    lambda m: m.zeros(0, 4)[:, ::2],
    lambda m: m.zeros(0, 4)[:, 1::2],
    lambda m: m.zeros(3, 4)[:0],
    lambda m: m.zeros(3, 4)[1:1, ::2],
    lambda m: m.zeros(3, 4).t()[:0],
    lambda m: m.zeros(0, 1).expand(0, 3),
    lambda m: m.zeros(0, 1).expand(2, 0, 3),
    lambda m: m.zeros(1, 3).expand(0, 3),
    lambda m: m.zeros(2, 0, 3).permute(2, 0, 1),
    lambda m: m.zeros(2, 0, 3).transpose(0, 1),
    lambda m: m.zeros(2, 0, 3).mT,
    lambda m: m.zeros(2, 0, 3)[1],
    lambda m: m.zeros(0, 3).reshape(3, 0),
    lambda m: m.zeros(0, 3).unsqueeze(1),
    lambda m: m.zeros(0, 3).t()[1:],
    lambda m: m.zeros(0, 3).t().contiguous(),
    lambda m: m.zeros(0, 3).sum(1),
    lambda m: m.view_as_real(m.zeros(0, 2, dtype=m.complex64)),
]


@pytest.mark.parametrize("i", range(len(_EMPTY)))
def test_empty_strides(i):
    t, e = _EMPTY[i](torch), _EMPTY[i](ember)
    assert tuple(e.shape) == tuple(t.shape)
    assert e.stride() == t.stride()
    assert [e.stride(d) for d in range(-e.ndim, e.ndim)] == [
        t.stride(d) for d in range(-t.ndim, t.ndim)
    ]


def test_nonempty_strides_unchanged():
    x = ember.arange(24.0).reshape(2, 3, 4)
    assert x.stride() == (12, 4, 1)
    assert x.permute(2, 0, 1)[:, ::2].stride() == (1, 24, 4)
    assert ember.tensor(1.0).stride() == ()


# -- TripletMarginWithDistanceLoss: PyTorch's default distance child -------------------------


def test_triplet_with_distance_default_child():
    e, t = ember.nn.TripletMarginWithDistanceLoss(), torch.nn.TripletMarginWithDistanceLoss()
    assert repr(e) == repr(t)
    assert isinstance(e.distance_function, ember.nn.PairwiseDistance)
    assert list(e.state_dict()) == list(t.state_dict()) == []
    custom = ember.nn.TripletMarginWithDistanceLoss(distance_function=lambda a, b: (a - b).abs())
    assert repr(custom) == "TripletMarginWithDistanceLoss()"
    rng = np.random.default_rng(0)
    a, p, n = (rng.standard_normal((4, 3)).astype("float32") for _ in range(3))
    ea, ep, en = (ember.tensor(v, requires_grad=True) for v in (a, p, n))
    ta, tp, tn = (torch.tensor(v, requires_grad=True) for v in (a, p, n))
    got, want = e(ea, ep, en), t(ta, tp, tn)
    got.backward()
    want.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)
    np.testing.assert_allclose(ea.grad.numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)


# -- Keras regularizer configs ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make,want",
    [
        (lambda r: r.L1(), {"l1": 0.009999999776482582}),
        (lambda r: r.L1(None), {"l1": 0.009999999776482582}),
        (lambda r: r.L1(0.3), {"l1": 0.30000001192092896}),
        (lambda r: r.get("l1"), {"l1": 0.009999999776482582}),
        (lambda r: r.L2(), {"l2": 0.01}),
        (lambda r: r.L2(None), {"l2": 0.01}),
        (lambda r: r.L2(0.3), {"l2": 0.3}),
        (lambda r: r.L1L2(), {"l1": 0.0, "l2": 0.0}),
        (lambda r: r.L1L2(None, None), {"l1": 0.0, "l2": 0.0}),
        (lambda r: r.L1L2(0.3, 0.3), {"l1": 0.3, "l2": 0.3}),
    ],
)
def test_regularizer_configs(make, want):
    # the values Keras 3.15 (torch backend) gives
    reg = make(keras.regularizers)
    assert reg.get_config() == want
    again = type(reg).from_config(reg.get_config())
    w = ember.tensor([1.0, -2.0])
    np.testing.assert_allclose(float(again(w)), float(reg(w)), rtol=1e-6)


# -- weights of a branched Keras functional model: save -> load round-trips ------------------


def _branched():
    inp = keras.Input((4,))
    a = keras.layers.Dense(3, name="a")(inp)
    b = keras.layers.Dense(2, name="b")(inp)
    c = keras.layers.Dense(5, name="c")(a)
    return keras.Model(inp, keras.layers.Concatenate(name="cat")([c, b]))


def test_branched_functional_weights_round_trip():
    m1, m2 = _branched(), _branched()
    # the weights are keyed by the layers' position in the order the graph first runs them
    # (here also Keras' order), not by layer name
    assert [lyr.name for lyr in m1.layers[1:]] == ["a", "c", "b", "cat"]
    assert list(m1.state_dict())[:2] == ["_layers.0.linear.weight", "_layers.0.linear.bias"]
    x = ember.tensor(np.random.default_rng(1).standard_normal((2, 4)).astype("float32"))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.ember")
        m1.save_weights(path)
        m2.load_weights(path)
        np.testing.assert_array_equal(m1(x).detach().numpy(), m2(x).detach().numpy())
        path = os.path.join(d, "m.ember")
        m1.save(path)
        m3 = keras.models.load_model(path)
        np.testing.assert_array_equal(m1(x).detach().numpy(), m3(x).detach().numpy())


@pytest.mark.parametrize(
    "shape,start,end",
    [((0, 2, 3), 1, -1), ((0, 2, 3), 0, -1), ((2, 0, 3), 0, 1), ((2, 3, 0), 1, 2), ((0,), 0, -1)],
)
def test_flatten_of_empty_tensors(shape, start, end):
    e = ember.zeros(*shape, requires_grad=True)
    got = e.flatten(start, end)
    assert tuple(got.shape) == tuple(torch.zeros(*shape).flatten(start, end).shape)
    got.sum().backward()
    assert tuple(e.grad.shape) == shape
