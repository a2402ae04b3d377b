"""The Keras layers, losses and applications rebuilt on shared helpers (``with_defaults``
with a picked argument list for SimpleRNN/LSTM/GRU and the pooling layers,
``Layer._store_weight_args``, ``Loss._init_from``, ``_plain_loss``, ``build(spec,
**locals())``): signatures, configs, weight layouts and outputs as recorded before the change,
against Keras 3 (torch backend) with copied weights."""

from __future__ import annotations

import inspect
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras as ek
from ember.keras import applications as EA

K = pytest.importorskip("keras")

RNNS = ("SimpleRNN", "LSTM", "GRU")
POOLS = (
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
)
WEIGHTED = ("Conv1D", "Conv2D", "Dense", "MultiHeadAttention")
NORMS = ("BatchNormalization", "LayerNormalization")
LOSSES = (
    "SparseCategoricalCrossentropy",
    "CategoricalCrossentropy",
    "BinaryCrossentropy",
    "Huber",
    "CosineSimilarity",
    "MeanSquaredError",
    "KLDivergence",
    "Poisson",
    "SquaredHinge",
    "CategoricalHinge",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "Dice",
    "Tversky",
)
APPS = ("ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19", "InceptionV3")


def _params(f):
    return [
        (p.name, p.default)
        for p in inspect.signature(f).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _x(*shape, seed=0):
    return np.random.RandomState(seed).randn(*shape).astype(np.float32)


@pytest.mark.parametrize("name", RNNS + POOLS + WEIGHTED + NORMS)
def test_layer_signature_matches_keras(name):
    assert _params(getattr(ek.layers, name)) == _params(getattr(K.layers, name))
    assert "kwargs" in inspect.signature(getattr(ek.layers, name)).parameters


@pytest.mark.parametrize("name", LOSSES)
def test_loss_signature_matches_keras(name):
    assert _params(getattr(ek.losses, name)) == _params(getattr(K.losses, name))


@pytest.mark.parametrize("name", APPS)
def test_application_signature_matches_keras_but_weights(name):
    want = [(n, None if n == "weights" else d) for n, d in _params(getattr(K.applications, name))]
    assert _params(getattr(EA, name)) == want


@pytest.mark.parametrize("name", RNNS + POOLS)
def test_config_keys_follow_the_signature(name):
    layer = getattr(ek.layers, name)(3) if name in RNNS else getattr(ek.layers, name)(2)
    args = [n for n, _ in _params(type(layer)) if n not in ("activity_regularizer", "name")]
    assert list(layer.get_config()) == ["name", "trainable", "activity_regularizer", *args]
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_rnn_arguments_bind_in_keras_order():
    lstm = ek.layers.LSTM(3, "tanh", "sigmoid", False)
    assert lstm.use_bias is False and lstm.unit_forget_bias is True
    rnn = ek.layers.SimpleRNN(4, "relu", False, seed=5)
    assert (rnn.activation, rnn.use_bias, rnn.seed) == ("relu", False, 5)
    gru = ek.layers.GRU(2, return_sequences=True, reset_after=True)
    assert gru.return_sequences and gru.reset_after
    # the arguments Keras' SimpleRNN lacks are refused, as Keras refuses them
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to SimpleRNN"):
        ek.layers.SimpleRNN(2, use_cudnn=False)
    assert ek.layers.LSTM(2, activation="relu").activation == "relu"
    with pytest.raises(ValueError, match="GRU: units must be a positive int"):
        ek.layers.GRU(0)
    with pytest.raises(TypeError):
        ek.layers.SimpleRNN(2, "tanh", True, "glorot_uniform", "orthogonal", "zeros", *[None] * 20)


@pytest.mark.parametrize("name", RNNS)
@pytest.mark.parametrize("return_state", [False, True])
def test_rnn_matches_keras_with_copied_weights(name, return_state):
    x = _x(2, 5, 4)
    kw = {"return_sequences": True, "return_state": return_state}
    kl = getattr(K.layers, name)(3, **kw)
    kout = kl(x)
    el = getattr(ek.layers, name)(3, **kw)
    el.build_from_shape((2, 5, 4))
    el.set_weights(kl.get_weights())
    eout = el(ember.tensor(x))
    kout = kout if return_state else [kout]
    eout = eout if return_state else [eout]
    assert len(eout) == len(kout)
    for e, k in zip(eout, kout):
        np.testing.assert_allclose(e.detach().numpy(), K.ops.convert_to_numpy(k), atol=1e-5)
    for e, k in zip(el.get_weights(), kl.get_weights()):
        np.testing.assert_allclose(e, k, atol=1e-6)


def test_rnn_weight_layout_and_count():
    shapes = {"SimpleRNN": (3, 1), "LSTM": (3, 4), "GRU": (3, 3)}
    for name, (units, gates) in shapes.items():
        layer = getattr(ek.layers, name)(units)
        layer.build_from_shape((1, 2, 4))
        got = [w.shape for w in layer.get_weights()]
        bias = (2, gates * units) if name == "GRU" else (gates * units,)
        assert got == [(4, gates * units), (units, gates * units), bias], name
        names = [n for n, _ in layer.named_parameters()]
        assert names == [f"cell.{w}_l0" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    lstm = ek.layers.LSTM(3)
    lstm.build_from_shape((1, 2, 4))
    np.testing.assert_array_equal(lstm.get_weights()[2], [0, 0, 0, 1, 1, 1] + [0] * 6)


@pytest.mark.parametrize("name", POOLS)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pooling_matches_keras(name, padding):
    rank = int(name[-2])
    x = _x(2, *[5, 6, 7][:rank], 3)
    args = () if name.startswith("Max") else ((2,) * rank,)
    kout = getattr(K.layers, name)(*args, strides=2, padding=padding)(x)
    layer = getattr(ek.layers, name)(*args, strides=2, padding=padding)
    np.testing.assert_allclose(
        layer(ember.tensor(x)).numpy(), K.ops.convert_to_numpy(kout), atol=1e-6
    )
    cfg = layer.get_config()
    assert cfg["pool_size"] == [2] * rank and cfg["strides"] == [2] * rank
    assert cfg["padding"] == padding and cfg["data_format"] == "channels_last"


def test_pooling_arguments_and_errors():
    assert ek.layers.MaxPooling2D(name="p").name == "p"
    assert ek.layers.MaxPooling1D(3, None, "same").strides == (3,)
    with pytest.raises(TypeError):
        ek.layers.AveragePooling2D()  # Keras: pool_size has no default
    with pytest.raises(ValueError):
        ek.layers.MaxPooling2D(padding="full")


@pytest.mark.parametrize("name", ("Conv1D", "Conv2D", "Dense"))
def test_weight_args_stored_and_used(name):
    args = (4, 3) if name.startswith("Conv") else (4,)
    shape = {"Conv1D": (2, 6, 3), "Conv2D": (2, 6, 6, 3), "Dense": (2, 3)}[name]
    kw = {
        "kernel_initializer": "ones",
        "bias_initializer": "ones",
        "kernel_regularizer": "l2",
        "bias_regularizer": "l1",
        "kernel_constraint": "non_neg",
        "bias_constraint": "unit_norm",
    }
    el, kl = getattr(ek.layers, name)(*args, **kw), getattr(K.layers, name)(*args, **kw)
    assert isinstance(el.kernel_initializer, ek.initializers.Ones)
    assert isinstance(el.kernel_regularizer, ek.regularizers.L2)
    assert isinstance(el.bias_regularizer, ek.regularizers.L1)
    assert isinstance(el.kernel_constraint, ek.constraints.NonNeg)
    assert isinstance(el.bias_constraint, ek.constraints.UnitNorm)
    x = _x(*shape)
    kout = kl(x)
    eout = el(ember.tensor(x))
    np.testing.assert_allclose(eout.detach().numpy(), K.ops.convert_to_numpy(kout), atol=1e-5)
    ecfg, kcfg = el.get_config(), kl.get_config()
    for key in kw:
        if key.endswith("_initializer"):
            assert ecfg[key] == kcfg[key]  # Keras' serialized form
        else:
            assert ecfg[key]["class_name"] == kcfg[key]["class_name"], key
            assert ecfg[key]["config"] == pytest.approx(kcfg[key]["config"]), key
    assert float(sum(el.losses)) == pytest.approx(float(sum(kl.losses)), rel=1e-5)


def test_attention_and_norm_weight_args():
    mha = ek.layers.MultiHeadAttention(2, 3, kernel_regularizer="l2", bias_constraint="non_neg")
    assert isinstance(mha.kernel_regularizer, ek.regularizers.L2)
    assert isinstance(mha.bias_constraint, ek.constraints.NonNeg)
    assert isinstance(mha.kernel_initializer, ek.initializers.GlorotUniform)
    assert mha.bias_regularizer is None and mha.kernel_constraint is None
    bn = ek.layers.BatchNormalization(moving_variance_initializer="zeros", gamma_regularizer="l1")
    assert isinstance(bn.moving_variance_initializer, ek.initializers.Zeros)
    assert isinstance(bn.gamma_regularizer, ek.regularizers.L1)
    assert isinstance(bn.beta_initializer, ek.initializers.Zeros)
    ln = ek.layers.LayerNormalization(beta_constraint="non_neg")
    assert isinstance(ln.beta_constraint, ek.constraints.NonNeg)
    # Embedding keeps its own 'uniform' reading
    emb = ek.layers.Embedding(5, 3)
    assert isinstance(emb.embeddings_initializer, ek.initializers.RandomUniform)
    x = ember.tensor(_x(2, 4, 6))
    mha.build_from_shape((2, 4, 6))
    assert [w.shape for w in mha.get_weights()] == [(6, 2, 3), (2, 3)] * 3 + [(2, 3, 6), (6,)]
    assert tuple(mha(x, x).shape) == (2, 4, 6)


def _loss_inputs(name):
    rs = np.random.RandomState(3)
    if name == "SparseCategoricalCrossentropy":
        return rs.randint(0, 4, size=(3,)), rs.dirichlet(np.ones(4), 3).astype(np.float32)
    if name in ("CategoricalCrossentropy", "CategoricalFocalCrossentropy", "KLDivergence"):
        return np.eye(4, dtype=np.float32)[[0, 2, 3]], rs.dirichlet(np.ones(4), 3).astype(
            np.float32
        )
    yt = (rs.rand(3, 4) > 0.5).astype(np.float32)
    return yt, (rs.rand(3, 4) * 0.8 + 0.1).astype(np.float32)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_value_and_config_match_keras(name):
    yt, yp = _loss_inputs(name)
    el, kl = getattr(ek.losses, name)(), getattr(K.losses, name)()
    want = float(K.ops.convert_to_numpy(kl(yt, yp)))
    assert float(el(yt, yp)) == pytest.approx(want, rel=1e-4, abs=1e-6)
    ecfg, kcfg = el.get_config(), kl.get_config()
    assert list(ecfg)[:3] == ["name", "reduction", "dtype"]
    for key in set(ecfg) & set(kcfg) - {"dtype"}:
        assert ecfg[key] == kcfg[key], key
    assert type(el).from_config(ecfg).get_config() == ecfg
    sw = np.array([1.0, 0.0, 2.0], np.float32)
    kl2, el2 = getattr(K.losses, name)(reduction="sum"), getattr(ek.losses, name)(reduction="sum")
    want = float(K.ops.convert_to_numpy(kl2(yt, yp, sample_weight=sw)))
    assert float(el2(yt, yp, sample_weight=sw)) == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_loss_configs_as_recorded():
    L = ek.losses
    assert L.Tversky(alpha=0.3).get_config() == {
        "name": "tversky",
        "reduction": "sum_over_batch_size",
        "dtype": None,
        "alpha": 0.3,
        "beta": 0.5,
        "axis": None,
    }
    assert L.SparseCategoricalCrossentropy(ignore_class=1).get_config() == {
        "name": "sparse_categorical_crossentropy",
        "reduction": "sum_over_batch_size",
        "dtype": None,
        "from_logits": False,
        "ignore_class": 1,
        "axis": -1,
    }
    assert L.Poisson(name="p").get_config() == {
        "name": "p",
        "reduction": "sum_over_batch_size",
        "dtype": None,
    }
    for cls in (L.Poisson, L.SquaredHinge, L.CategoricalHinge, L.Dice):
        assert cls.__module__ == "ember.keras.losses_more"
        assert issubclass(cls, L.Loss)
    assert L.get("poisson").name == "poisson"
    with pytest.raises(ValueError, match="unknown reduction"):
        L.Dice(reduction="avg")


@pytest.mark.parametrize(
    ("name", "kw"), [("VGG16", {"pooling": "max"}), ("ResNet50", {"pooling": "avg"})]
)
def test_application_matches_keras_with_copied_weights(name, kw):
    shape = (32, 32, 3)
    km = getattr(K.applications, name)(weights=None, include_top=False, input_shape=shape, **kw)
    em = getattr(EA, name)(include_top=False, input_shape=shape, **kw)
    assert em.name == km.name and len(em.layers) == len(km.layers)
    assert em.count_params() == km.count_params()
    for klayer in km.layers:
        if klayer.get_weights():  # every weighted layer is named as in Keras
            em.get_layer(klayer.name).set_weights(klayer.get_weights())
    x = np.random.RandomState(0).rand(1, *shape).astype(np.float32)
    want = K.ops.convert_to_numpy(km(x, training=False))
    np.testing.assert_allclose(em(ember.tensor(x)).detach().numpy(), want, rtol=1e-4, atol=1e-4)


def test_inception_v3_layout_matches_keras():
    shape = (75, 75, 3)
    km = K.applications.InceptionV3(weights=None, include_top=False, input_shape=shape)
    em = EA.InceptionV3(include_top=False, input_shape=shape)
    assert em.name == km.name and em.output_shape == km.output_shape
    assert sorted(w.shape for w in em.get_weights()) == sorted(w.shape for w in km.get_weights())
    named = {layer.name for layer in km.layers if layer.name.startswith("mixed")}
    assert named and named <= {layer.name for layer in em.layers}


def test_application_head_and_errors():
    m = EA.VGG19(include_top=True, input_shape=(32, 32, 3), classes=5, weights=None)
    assert m.output_shape == (None, 5) and m.name == "vgg19"
    assert [layer.name for layer in m.layers[-4:]] == ["flatten", "fc1", "fc2", "predictions"]
    with pytest.raises(ValueError):
        EA.ResNet50(weights="imagenet")


@pytest.mark.parametrize("name", ("Add", "Multiply", "Average", "Maximum", "Minimum"))
def test_merge_layers_match_keras(name):
    xs = [_x(2, 3, seed=s) for s in range(3)]
    want = K.ops.convert_to_numpy(getattr(K.layers, name)()(xs))
    got = getattr(ek.layers, name)()([ember.tensor(x) for x in xs])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    with pytest.raises(ValueError, match=f"{name} expects a list of at least 2 tensors"):
        getattr(ek.layers, name)()([ember.tensor(xs[0])])


@pytest.mark.parametrize("name", ("Conv1DTranspose", "Conv2DTranspose"))
def test_transposed_conv_penalties_match_keras(name):
    rank = int(name[4])
    x = _x(2, *[5] * rank, 3)
    kw = {"kernel_regularizer": "l2", "bias_regularizer": "l1", "strides": 2, "use_bias": True}
    kl, el = getattr(K.layers, name)(4, 3, **kw), getattr(ek.layers, name)(4, 3, **kw)
    kout = kl(x)
    el.build_from_shape(x.shape)
    el.set_weights([w + 0.5 for w in kl.get_weights()])
    kl.set_weights([w + 0.5 for w in kl.get_weights()])
    kout = kl(x)
    eout = el(ember.tensor(x))
    np.testing.assert_allclose(eout.detach().numpy(), K.ops.convert_to_numpy(kout), atol=1e-4)
    assert float(sum(el.losses)) == pytest.approx(
        float(sum(K.ops.convert_to_numpy(v) for v in kl.losses)), rel=1e-5
    )
