"""Keras masking end to end (``Embedding(mask_zero=True)``, ``Masking``, the masks passed
from layer to layer in Sequential and functional models, ``Bidirectional`` with a mask) and
the single trainable bias of the recurrent layers, against Keras 3 (torch backend): the
predictions and the weights after a few ``fit`` steps from the same initial weights."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras as ek

K = pytest.importorskip("keras")


def _ids(seed=0):
    # padded index sequences: trailing zeros (and one leading zero) are masked
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 7, size=(4, 5))
    x[0, 3:] = 0
    x[1, 1:] = 0
    x[2, 0] = 0
    return x


def _feats(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    x[0, 3:] = 0.0
    x[1, :2] = 0.0
    x[3, 2] = 0.0
    return x


def _target(n, units, seed=1):
    return np.random.default_rng(seed).standard_normal((n, units)).astype(np.float32)


def _both(build, x, y, opt="sgd", steps=2):
    """Build the model with each API, copy Keras' weights into Ember's, compare predict,
    train ``steps`` full-batch steps and compare the weights."""
    km, em = build(K), build(ek)
    km.predict(x[:1], verbose=0)
    em.predict(x[:1], verbose=0)
    em.set_weights(km.get_weights())
    assert em.count_params() == km.count_params()
    assert [w.shape for w in em.get_weights()] == [tuple(w.shape) for w in km.weights]
    assert len(em.trainable_weights) == len(km.trainable_weights)
    np.testing.assert_allclose(
        em.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    for m, mod in ((km, K), (em, ek)):
        o = mod.optimizers.SGD(0.5) if opt == "sgd" else mod.optimizers.Adam(0.05)
        m.compile(optimizer=o, loss="mse")
        m.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    for a, b in zip(em.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        em.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )
    return em


# -- one bias per recurrent layer ---------------------------------------------------------------
@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize(
    "cls, kw",
    [
        ("LSTM", {}),
        ("SimpleRNN", {}),
        ("GRU", {"reset_after": False}),
        ("GRU", {}),
        ("LSTM", {"return_sequences": True}),
    ],
)
def test_rnn_bias_trains_as_keras(cls, kw, opt):
    x = _feats()
    x[:] += 0.1  # no all-zero steps: this test has no mask

    def build(mod):
        return mod.Sequential([mod.Input((5, 3)), getattr(mod.layers, cls)(4, **kw)])

    y = _target(4, 4)
    if kw.get("return_sequences"):
        y = np.random.default_rng(2).standard_normal((4, 5, 4)).astype(np.float32)
    em = _both(build, x, y, opt=opt, steps=3)
    rnn = em.layers[0]
    if cls == "GRU" and kw.get("reset_after", True):
        assert rnn.cell.bias_hh_l0.requires_grad  # Keras' (2, 3*units) bias: both rows train
    else:
        assert not rnn.cell.bias_hh_l0.requires_grad
        assert float(rnn.cell.bias_hh_l0.abs().sum()) == 0.0


def test_rnn_single_bias_stays_frozen_and_checkpoints_load():
    lyr = ek.layers.LSTM(3)
    lyr(ember.ones(2, 4, 3))
    assert lyr.count_params() == 4 * 3 * (3 + 3 + 1)
    lyr.trainable = False
    lyr.trainable = True
    assert not lyr.cell.bias_hh_l0.requires_grad
    assert len(lyr.trainable_weights) == 3 and len(lyr.non_trainable_weights) == 0
    # an older checkpoint with both biases nonzero still loads: the sum is the Keras bias
    sd = {k: v.clone() for k, v in lyr.state_dict().items()}
    sd["cell.bias_hh_l0"] = ember.full((12,), 0.25)
    other = ek.layers.LSTM(3)
    other(ember.ones(2, 4, 3))
    other.load_state_dict(sd)
    np.testing.assert_allclose(other.get_weights()[2], lyr.get_weights()[2] + 0.25, rtol=1e-6)
    x = ember.tensor(_feats())
    lyr.set_weights(other.get_weights())
    np.testing.assert_allclose(
        other(x).detach().numpy(), lyr(x).detach().numpy(), rtol=1e-5, atol=1e-6
    )


# -- masks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_embedding_mask_zero_lstm(opt):
    def build(mod):
        return mod.Sequential(
            [mod.Input((5,), dtype="int32"), mod.layers.Embedding(7, 3, mask_zero=True),
             mod.layers.LSTM(4)]
        )  # fmt: skip

    _both(build, _ids(), _target(4, 4), opt=opt)


def test_embedding_lstm_sequences_global_average_dense():
    def build(mod):
        return mod.Sequential(
            [
                mod.Input((5,), dtype="int32"),
                mod.layers.Embedding(7, 3, mask_zero=True),
                mod.layers.LSTM(4, return_sequences=True),
                mod.layers.Dropout(0.0),
                mod.layers.GlobalAveragePooling1D(),
                mod.layers.Dense(2),
            ]
        )

    _both(build, _ids(1), _target(4, 2))


def test_masking_gru():
    def build(mod):
        return mod.Sequential(
            [mod.Input((5, 3)), mod.layers.Masking(0.0), mod.layers.GRU(4, reset_after=False)]
        )

    _both(build, _feats(), _target(4, 4))
    em = ek.layers.Masking(mask_value=0.0)
    out = em(ember.tensor(_feats()))
    np.testing.assert_array_equal(out._keras_mask.numpy(), np.any(_feats() != 0, axis=-1))


@pytest.mark.parametrize("merge_mode", ["concat", "sum"])
@pytest.mark.parametrize("seq", [False, True])
def test_bidirectional_lstm_with_mask(merge_mode, seq):
    def build(mod):
        layers = [
            mod.Input((5,), dtype="int32"),
            mod.layers.Embedding(7, 3, mask_zero=True),
            mod.layers.Bidirectional(
                mod.layers.LSTM(3, return_sequences=seq), merge_mode=merge_mode
            ),
        ]
        if seq:
            layers.append(mod.layers.GlobalAveragePooling1D())
        return mod.Sequential(layers)

    units = 6 if merge_mode == "concat" else 3
    _both(build, _ids(2), _target(4, units))


def test_bidirectional_initial_state_and_mask():
    x = _feats(3)
    m = np.any(x != 0, axis=-1)
    h = [_target(4, 2, seed=s) for s in range(4)]
    kb = K.layers.Bidirectional(K.layers.LSTM(2, return_sequences=True))
    eb = ek.layers.Bidirectional(ek.layers.LSTM(2, return_sequences=True))
    kout = kb(x, initial_state=h, mask=m)
    eb(ember.tensor(x))
    eb.set_weights(kb.get_weights())
    eout = eb(ember.tensor(x), initial_state=[ember.tensor(a) for a in h], mask=ember.tensor(m))
    np.testing.assert_allclose(eout.detach().numpy(), kout.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert eb.compute_mask(None, ember.tensor(m)).tolist() == m.tolist()
    with pytest.raises(ValueError, match="initial_state"):
        eb(ember.tensor(x), initial_state=[ember.tensor(h[0])])


def test_functional_model_with_mask():
    def build(mod):
        inp = mod.Input((5,), dtype="int32")
        e = mod.layers.Embedding(7, 3, mask_zero=True)(inp)
        d = mod.layers.Dense(3, activation="tanh")(e)  # passes the mask on
        s = mod.layers.SimpleRNN(4, return_sequences=True)(d)
        g = mod.layers.GRU(3)(s)
        return mod.Model(inp, mod.layers.Dense(2)(g))

    _both(build, _ids(4), _target(4, 2))


def test_mask_propagation_rules():
    x = ember.tensor(_ids())
    emb = ek.layers.Embedding(7, 3, mask_zero=True)
    e = emb(x)
    want = (_ids() != 0).tolist()
    assert e._keras_mask.tolist() == want
    assert ek.layers.Dense(2)(e)._keras_mask.tolist() == want
    assert ek.layers.TimeDistributed(ek.layers.Dense(2))(e)._keras_mask.tolist() == want
    assert ek.layers.Activation("relu")(e)._keras_mask.tolist() == want
    assert ek.layers.LSTM(2, return_sequences=True)(e)._keras_mask.tolist() == want
    assert getattr(ek.layers.LSTM(2)(e), "_keras_mask", None) is None
    assert getattr(ek.layers.Flatten()(e), "_keras_mask", None) is None
    assert getattr(ek.layers.GlobalAveragePooling1D()(e), "_keras_mask", None) is None
    m2 = ember.tensor([[True, True, True, False, True]] * 4)
    added = ek.layers.Add()([e, ek.layers.Masking(0.0)(e * m2.unsqueeze(-1))])
    assert added._keras_mask.tolist() == (np.array(want) & m2.numpy()).tolist()
    assert ek.layers.Embedding(7, 3)(x).__dict__.get("_keras_mask") is None
    # an explicit mask= wins over the attached one
    explicit = ember.ones(4, 5, dtype=ember.bool)
    lstm = ek.layers.LSTM(2)
    lstm(e)
    np.testing.assert_allclose(
        lstm(e, mask=explicit).detach().numpy(),
        lstm(e.detach()).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_global_average_pooling_mask_matches_keras():
    x = _feats(5)
    m = np.any(x != 0, axis=-1)
    k = K.layers.GlobalAveragePooling1D()(x, mask=m)
    e = ek.layers.GlobalAveragePooling1D()(ember.tensor(x), mask=ember.tensor(m))
    np.testing.assert_allclose(e.numpy(), k.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_masking_config_and_bad_value():
    layer = ek.layers.Masking(mask_value=-1.0)
    assert layer.get_config()["mask_value"] == -1.0
    assert isinstance(ek.layers.deserialize(ek.layers.serialize(layer)), ek.layers.Masking)
    with pytest.raises(TypeError, match="mask_value"):
        ek.layers.Masking(mask_value="x")
