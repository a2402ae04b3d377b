"""Keras 3 compatibility of weights and configs: MultiHeadAttention's weight layout, the
functional models' weight order (Keras' graph order) and the serialized form of
initializers, regularizers and constraints in ``get_config``."""

from __future__ import annotations

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras as ek

K = pytest.importorskip("keras")


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "kw", [{}, {"value_dim": 4, "output_shape": 7}, {"use_bias": False}, {"key_dim": 2}]
)
def test_mha_weights_match_keras(kw):
    kw = {"num_heads": 2, "key_dim": 3, **kw}
    q, v = _x(2, 4, 5), _x(2, 3, 6, seed=1)
    km, em = K.layers.MultiHeadAttention(**kw), ek.layers.MultiHeadAttention(**kw)
    km(q, v)
    em(ember.tensor(q), ember.tensor(v))
    kshapes = [tuple(w.shape) for w in km.weights]
    assert [tuple(w.shape) for w in em.weights] == kshapes
    assert [w.shape for w in em.get_weights()] == kshapes
    knames = [w.path.split("/", 1)[1].replace("/", ".") for w in km.weights]
    assert [n for n, _ in em.named_parameters()] == knames
    em.set_weights(km.get_weights())
    for a, b in zip(em.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
    # values and input gradients
    import torch

    tq, tv = torch.tensor(q, requires_grad=True), torch.tensor(v, requires_grad=True)
    kout = km(tq, tv)
    (kout * kout).sum().backward()
    eq, ev = ember.tensor(q, requires_grad=True), ember.tensor(v, requires_grad=True)
    eout = em(eq, ev)
    (eout * eout).sum().backward()
    np.testing.assert_allclose(eout.detach().numpy(), kout.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(eq.grad.numpy(), tq.grad.numpy(), atol=1e-4)
    np.testing.assert_allclose(ev.grad.numpy(), tv.grad.numpy(), atol=1e-4)


def test_mha_weight_gradients_match_keras():
    import torch

    q = _x(2, 4, 5)
    km, em = K.layers.MultiHeadAttention(2, 3), ek.layers.MultiHeadAttention(2, 3)
    km(q, q)
    em(ember.tensor(q), ember.tensor(q))
    em.set_weights(km.get_weights())
    kout = km(torch.tensor(q), torch.tensor(q))
    kout.sum().backward()
    em(ember.tensor(q), ember.tensor(q)).sum().backward()
    for ew, kw in zip(em.weights, km.weights):
        np.testing.assert_allclose(ew.grad.numpy(), kw.value.grad.numpy(), atol=1e-4)


def test_mha_regularizer_and_constraint_see_keras_layout():
    kw = {"kernel_regularizer": "l2", "bias_constraint": "unit_norm"}
    q = _x(2, 4, 5)
    km, em = K.layers.MultiHeadAttention(2, 3, **kw), ek.layers.MultiHeadAttention(2, 3, **kw)
    km(q, q)
    em(ember.tensor(q), ember.tensor(q))
    em.set_weights(km.get_weights())
    assert float(sum(em.losses)) == pytest.approx(float(sum(km.losses)), rel=1e-5)
    bias = em.weights[1]
    assert tuple(bias.shape) == (2, 3)
    c = em.bias_constraint
    expect = K.constraints.UnitNorm()(K.ops.convert_to_tensor(bias.detach().numpy()))
    np.testing.assert_allclose(c(bias).detach().numpy(), K.ops.convert_to_numpy(expect), atol=1e-6)


def _branched(mod):
    inp = mod.Input((6,))
    a = mod.layers.Dense(4, name="a")(inp)
    b = mod.layers.Dense(5, name="b")(inp)
    b2 = mod.layers.Dense(4, name="b2")(b)
    s = mod.layers.Add(name="add")([a, b2])
    c = mod.layers.Dense(3, name="c")(s)
    d = mod.layers.Dense(3, name="d")(a)
    out = mod.layers.Concatenate(name="cat")([d, c])
    return mod.Model(inp, out)


def _two_inputs(mod):
    x1, x2 = mod.Input((3,), name="x1"), mod.Input((4,), name="x2")
    h = mod.layers.Dense(5, name="h")(x1)
    h = mod.layers.Dense(4, name="h2")(h)
    g = mod.layers.Dense(4, name="g")(x2)
    out = mod.layers.Dense(2, name="o")(mod.layers.Add(name="add")([g, h]))
    return mod.Model([x1, x2], out)


@pytest.mark.parametrize("make", [_branched, _two_inputs])
def test_functional_layer_and_weight_order(make):
    km, em = make(K), make(ek)
    klayers = [lyr.name for lyr in km.layers if not isinstance(lyr, K.layers.InputLayer)]
    elayers = [lyr.name for lyr in em.layers if not isinstance(lyr, ek.layers.InputLayer)]
    assert elayers == klayers
    assert [w.shape for w in em.get_weights()] == [w.shape for w in km.get_weights()]
    em.set_weights(km.get_weights())
    xs = [_x(2, *t.shape[1:], seed=i) for i, t in enumerate(km.inputs)]
    kout = K.ops.convert_to_numpy(km(xs if len(xs) > 1 else xs[0]))
    eout = em([ember.tensor(x) for x in xs] if len(xs) > 1 else ember.tensor(xs[0]))
    np.testing.assert_allclose(eout.detach().numpy(), kout, atol=1e-5)


@pytest.mark.parametrize("name", ["ResNet50", "VGG16"])
def test_application_weight_order(name):
    km = getattr(K.applications, name)(weights=None)
    em = getattr(ek.applications, name)(weights=None)
    # the input layers' default names count the inputs made before in the process
    assert [lyr.name for lyr in em.layers[1:]] == [lyr.name for lyr in km.layers[1:]]
    assert [w.shape for w in em.get_weights()] == [w.shape for w in km.get_weights()]


_WEIGHT_ARGS = {
    "kernel_initializer": "ones",
    "bias_initializer": "zeros",
    "kernel_regularizer": "l2",
    "bias_regularizer": "l1",
    "kernel_constraint": "non_neg",
    "bias_constraint": "max_norm",
}


def test_config_serializes_like_keras():
    for kw in ({}, _WEIGHT_ARGS, {"kernel_initializer": K.initializers.Constant(0.5)}):
        ekw = dict(kw)
        if "kernel_initializer" in kw and not isinstance(kw["kernel_initializer"], str):
            ekw["kernel_initializer"] = ek.initializers.Constant(0.5)
        ecfg, kcfg = ek.layers.Dense(3, **ekw).get_config(), K.layers.Dense(3, **kw).get_config()
        for key in _WEIGHT_ARGS:
            if key == "bias_regularizer" and kcfg[key] is not None:
                # Keras stores L1's default in float32 (0.009999999776482582)
                assert ecfg[key]["config"]["l1"] == pytest.approx(kcfg[key]["config"]["l1"])
                assert {**ecfg[key], "config": None} == {**kcfg[key], "config": None}
            else:
                assert ecfg[key] == kcfg[key], key


@pytest.mark.parametrize(
    "name",
    [
        "zeros",
        "ones",
        "random_normal",
        "random_uniform",
        "truncated_normal",
        "variance_scaling",
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "lecun_uniform",
        "orthogonal",
    ],
)
def test_initializer_serialization(name):
    ours = ek.initializers.serialize(ek.initializers.get(name))
    theirs = K.saving.serialize_keras_object(K.initializers.get(name))
    assert ours == theirs
    # from Keras' dict and from our own
    assert type(ek.initializers.get(theirs)) is type(ek.initializers.get(name))


def test_from_config_accepts_strings_and_keras_dicts():
    kcfg = K.layers.Dense(3, **_WEIGHT_ARGS).get_config()
    layer = ek.layers.Dense.from_config(
        {k: v for k, v in kcfg.items() if k in ("units", "name", *_WEIGHT_ARGS)}
    )
    assert isinstance(layer.kernel_initializer, ek.initializers.Ones)
    assert isinstance(layer.kernel_regularizer, ek.regularizers.L2)
    assert isinstance(layer.bias_regularizer, ek.regularizers.L1)
    assert isinstance(layer.kernel_constraint, ek.constraints.NonNeg)
    assert isinstance(layer.bias_constraint, ek.constraints.MaxNorm)
    old = ek.layers.Dense.from_config({"units": 3, **_WEIGHT_ARGS})
    assert isinstance(old.bias_initializer, ek.initializers.Zeros)
    assert isinstance(old.bias_constraint, ek.constraints.MaxNorm)
    again = ek.layers.Dense.from_config(old.get_config())
    assert again.get_config() == {**old.get_config(), "name": again.name}
    # a whole model's JSON round trip keeps the serialized forms
    model = ek.Sequential([ek.Input((4,)), ek.layers.Dense(2, kernel_initializer="he_normal")])
    back = ek.models.model_from_json(json.dumps(ek.layers.serialize(model)))
    assert isinstance(back.layers[-1].kernel_initializer, ek.initializers.HeNormal)
    with pytest.raises(ValueError, match="unknown initializer"):
        ek.initializers.get({"class_name": "NoSuchInit", "config": {}})


def test_branched_model_state_dict_keys_follow_the_run_order():
    """``layers``/``get_weights()`` are in Keras' order, while the state-dict keys keep the
    order the graph first runs the layers (checkpoints saved before Keras' order keep
    loading into the right layers)."""
    import ember.keras as ek

    inp = ek.Input((4,))
    a = ek.layers.Dense(3, name="a")(inp)
    b = ek.layers.Dense(5, name="b")(inp)
    a2 = ek.layers.Dense(2, name="a2")(a)
    out = ek.layers.Concatenate(name="cat")([a2, b])
    model = ek.Model(inp, out)
    run_names = [m.name for m in model._layers]
    assert run_names == ["a", "a2", "b", "cat"]  # depth-first from the output, as before
    keys = [k for k in model.state_dict() if k.endswith("weight")]
    assert [k.split(".")[1] for k in keys] == ["0", "1", "2"]
    named = {m.name: i for i, m in enumerate(model._layers)}
    for lyr in model.layers[1:]:
        if lyr.name != "cat":
            w = model.state_dict()[f"_layers.{named[lyr.name]}.linear.weight"]
            assert tuple(w.shape) == tuple(lyr.get_weights()[0].T.shape)
    order = [lyr.name for lyr in model.layers[1:]]
    flat = [w.shape for lyr in model.layers[1:] for w in lyr.get_weights()]
    assert [w.shape for w in model.get_weights()] == flat, order
