"""Keras recurrent layers with the arguments Keras 3 users set: any activation and
recurrent activation, ``recurrent_dropout``, ``stateful=True``, GRU ``reset_after=False`` and
time-step masks, against Keras 3 (torch backend) with copied weights."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import pytest
import torch

import ember
from ember import keras as ek

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 3)).astype(np.float32)
MASK = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], dtype=bool)


def _pair(name, units=4, **kw):
    """The Keras layer and Ember's, built, with the same (perturbed) weights."""
    kl, el = getattr(keras.layers, name)(units, **kw), getattr(ek.layers, name)(units, **kw)
    kl.build(X.shape)
    el.build_from_shape(X.shape)
    rng = np.random.default_rng(1)
    ws = [w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in kl.get_weights()]
    assert [w.shape for w in ws] == [w.shape for w in el.get_weights()]
    kl.set_weights(ws)
    el.set_weights(ws)
    return kl, el


def _np(out):
    out = out if isinstance(out, (list, tuple)) else [out]
    return [o.detach().cpu().numpy() for o in out]


def _close(a, b, tol=1e-5):
    a, b = _np(a), _np(b)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        np.testing.assert_allclose(q, p, rtol=tol, atol=tol)


CASES = [
    ("SimpleRNN", {"activation": "sigmoid"}),
    ("SimpleRNN", {"activation": "linear", "go_backwards": True}),
    ("SimpleRNN", {"activation": None}),
    ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("LSTM", {"activation": "elu", "recurrent_activation": "tanh", "go_backwards": True}),
    ("LSTM", {"activation": "tanh", "recurrent_activation": "linear", "use_bias": False}),
    ("GRU", {"activation": "relu", "recurrent_activation": "sigmoid"}),
    ("GRU", {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
    ("GRU", {"reset_after": False}),
    ("GRU", {"reset_after": False, "activation": "elu", "go_backwards": True}),
    ("GRU", {"reset_after": False, "use_bias": False}),
]


@pytest.mark.parametrize(("name", "kw"), CASES)
def test_activations_and_reset_after_match_keras(name, kw):
    kl, el = _pair(name, return_sequences=True, return_state=True, **kw)
    assert not el._fused()
    _close(kl(X), el(ember.tensor(X)))


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("SimpleRNN", {"activation": "sigmoid"}),
        ("LSTM", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
        ("GRU", {"reset_after": False, "activation": "elu"}),
    ],
)
def test_gradients_match_keras(name, kw):
    kl, el = _pair(name, return_sequences=True, **kw)
    xt = torch.tensor(X, requires_grad=True)
    kl(xt).pow(2).sum().backward()
    xe = ember.tensor(X, requires_grad=True)
    el(xe).pow(2).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    # the kernel's gradient, in Keras' layout
    kg = kl.trainable_weights[0].value.grad.cpu().numpy()
    eg = el.cell.weight_ih_l0.grad.numpy()
    if name == "GRU":  # Ember stores PyTorch's (r, z, n); Keras' kernel is (z, r, h)
        eg = np.concatenate([eg[4:8], eg[:4], eg[8:]])
    np.testing.assert_allclose(eg.T, kg, rtol=1e-4, atol=1e-5)


def test_callable_activation_and_config_round_trip():
    layer = ek.layers.LSTM(3, activation=ek.activations.relu, recurrent_activation="hard_sigmoid")
    cfg = layer.get_config()
    assert (cfg["activation"], cfg["recurrent_activation"]) == ("relu", "hard_sigmoid")
    assert ek.layers.GRU(2, activation=None).get_config()["activation"] == "linear"
    gru = ek.layers.GRU(2, reset_after=False, recurrent_dropout=0.25, stateful=True)
    again = ek.layers.GRU.from_config(gru.get_config())
    assert again.get_config() == gru.get_config()
    assert (again.reset_after, again.recurrent_dropout, again.stateful) == (False, 0.25, True)
    # Keras' config holds the same values for these arguments
    kcfg = keras.layers.GRU(2, reset_after=False, recurrent_dropout=0.25, stateful=True)
    kcfg = kcfg.get_config()
    for key in ("activation", "recurrent_activation", "reset_after", "recurrent_dropout"):
        assert gru.get_config()[key] == kcfg[key], key
    with pytest.raises(ValueError, match="unknown activation"):
        ek.layers.LSTM(2, activation="no_such_fn")


def test_gru_reset_after_false_weight_layout():
    gru = ek.layers.GRU(4, reset_after=False)
    gru.build_from_shape((2, 5, 3))
    assert [w.shape for w in gru.get_weights()] == [(3, 12), (4, 12), (12,)]
    kgru = keras.layers.GRU(4, reset_after=False)
    kgru.build((2, 5, 3))
    assert [tuple(w.shape) for w in kgru.get_weights()] == [(3, 12), (4, 12), (12,)]
    ws = [np.arange(np.prod(s), dtype=np.float32).reshape(s) for s in [(3, 12), (4, 12), (12,)]]
    gru.set_weights(ws)
    for got, want in zip(gru.get_weights(), ws):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kw", [{}, {"go_backwards": True}, {"activation": "relu"}])
def test_mask_matches_keras(name, kw):
    kl, el = _pair(name, return_sequences=True, return_state=True, **kw)
    _close(kl(X, mask=MASK), el(ember.tensor(X), mask=ember.tensor(MASK)))
    # compute_mask follows Keras': the mask for sequences, None for states
    assert el.compute_mask(None, MASK)[1:] == [None] * (2 if name == "LSTM" else 1)


def test_mask_with_initial_state_and_last_output():
    kl, el = _pair("LSTM")
    h0, c0 = RNG.standard_normal((2, 2, 4)).astype(np.float32)
    got = el(ember.tensor(X), initial_state=[ember.tensor(h0), ember.tensor(c0)], mask=MASK)
    want = kl(X, initial_state=[h0, c0], mask=MASK)
    _close(want, got)
    with pytest.raises(ValueError, match="mask of shape"):
        el(ember.tensor(X), mask=MASK[:, :3])


def test_fused_path_for_defaults_agrees_with_the_loop():
    for name in ("SimpleRNN", "LSTM", "GRU"):
        layer = getattr(ek.layers, name)(4, return_sequences=True, return_state=True)
        assert layer._fused()
        fused = layer(ember.tensor(X))
        # an all-true mask takes the written-out loop
        looped = layer(ember.tensor(X), mask=ember.ones(2, 5, dtype=ember.bool))
        _close(fused, looped)
    assert ek.layers.SimpleRNN(2, activation="relu")._fused()
    assert not ek.layers.GRU(2, reset_after=False)._fused()


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_stateful_matches_keras(name):
    kl, el = _pair(name, stateful=True, return_sequences=True)
    kl.reset_states()
    el.reset_states()
    for _ in range(3):
        _close(kl(X), el(ember.tensor(X)))
    kl.reset_states()
    el.reset_states()
    _close(kl(X), el(ember.tensor(X)))
    assert len(el.states) == (2 if name == "LSTM" else 1)
    with pytest.raises(ValueError, match="batch size"):
        el(ember.tensor(X[:1]))


def test_stateful_states_survive_symbolic_calls_and_are_detached():
    layer = ek.layers.LSTM(3, stateful=True)
    xt = ember.tensor(X, requires_grad=True)
    first = layer(xt)
    first.sum().backward()  # the kept states are detached: a second backward works
    kept = [s.numpy().copy() for s in layer.states]
    assert all(not s.requires_grad for s in layer.states)
    inp = ek.Input(shape=(5, 3))
    model = ek.Model(inp, layer(inp))  # shape inference runs on zeros: states untouched
    for a, b in zip(kept, layer.states):
        np.testing.assert_array_equal(a, b.numpy())
    second = model(ember.tensor(X))
    assert not np.allclose(first.detach().numpy(), second.detach().numpy())


def test_recurrent_dropout_masks_as_keras():
    """One mask per gate, drawn once per call (fixed over the time steps), training only,
    scaled by 1 / (1 - rate); a NumPy transcription of Keras' SimpleRNN cell with the
    masks the layer drew."""
    layer = ek.layers.SimpleRNN(4, recurrent_dropout=0.5, seed=3, return_sequences=True)
    layer.build_from_shape(X.shape)
    drawn = []
    orig = layer._dropout_mask

    def record(*shape, like, rate):
        m = orig(*shape, like=like, rate=rate)
        drawn.append(m.numpy())
        return m

    layer._dropout_mask = record
    out = layer(ember.tensor(X), training=True).detach().numpy()
    assert len(drawn) == 1 and drawn[0].shape == (2, 4)
    assert set(np.unique(drawn[0])) <= {0.0, 2.0}
    k, r, b = layer.get_weights()
    h = np.zeros((2, 4), np.float32)
    for t in range(5):
        h = np.tanh(X[:, t] @ k + b + (h * drawn[0]) @ r)
        np.testing.assert_allclose(out[:, t], h, rtol=1e-5, atol=1e-6)
    # inference: no dropout, the fused kernel's result
    plain = ek.layers.SimpleRNN(4, return_sequences=True)
    plain.build_from_shape(X.shape)
    plain.set_weights(layer.get_weights())
    _close(plain(ember.tensor(X)), layer(ember.tensor(X)))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_recurrent_dropout_is_seeded_per_gate_and_trains(name):
    def run():
        layer = getattr(ek.layers, name)(3, dropout=0.3, recurrent_dropout=0.4, seed=11)
        layer.build_from_shape(X.shape)
        layer.set_weights([np.full(w.shape, 0.1, np.float32) for w in layer.get_weights()])
        counts = []
        orig = layer._dropout_mask

        def record(*shape, like, rate):
            counts.append((shape, rate))
            return orig(*shape, like=like, rate=rate)

        layer._dropout_mask = record
        xt = ember.tensor(X, requires_grad=True)
        out = layer(xt, training=True)
        out.sum().backward()
        return out.detach().numpy(), xt.grad.numpy(), counts, layer

    a, ga, counts, layer = run()
    b, gb, _, _ = run()
    np.testing.assert_array_equal(a, b)  # the seed makes the masks reproducible
    np.testing.assert_array_equal(ga, gb)
    gates = 4 if name == "LSTM" else 3
    # Keras' implementation=1: a mask per gate for the inputs and the recurrent state
    assert counts == [((2, 1, 3), 0.3)] * gates + [((2, 3), 0.4)] * gates
    with ember.no_grad():
        inference = layer(ember.tensor(X)).numpy()
    assert not np.allclose(a, inference)


def test_simple_rnn_refuses_arguments_keras_lacks():
    for kw in ({"use_cudnn": False}, {"recurrent_activation": "sigmoid"}, {"reset_after": True}):
        with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to SimpleRNN"):
            ek.layers.SimpleRNN(2, **kw)
    with pytest.raises(ValueError, match="passed to LSTM"):
        ek.layers.LSTM(2, reset_after=True)
    with pytest.raises(ValueError, match="passed to GRU"):
        ek.layers.GRU(2, unit_forget_bias=False)
    with pytest.raises(ValueError, match="passed to SimpleRNN"):
        ek.layers.SimpleRNN(2, foo=1)


def test_stateful_sequential_predict_and_reset():
    model = ek.Sequential([ek.Input(shape=(5, 3)), ek.layers.GRU(2, stateful=True)])
    a = model.predict(X, batch_size=2, verbose=0)
    b = model.predict(X, batch_size=2, verbose=0)
    assert not np.allclose(a, b)
    model.layers[0].reset_states()
    np.testing.assert_allclose(model.predict(X, batch_size=2, verbose=0), a, rtol=1e-6)
