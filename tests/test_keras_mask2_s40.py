"""Keras masks where Keras 3 uses them beyond the recurrent layers: ``Softmax``,
``MultiHeadAttention`` (query/value/key masks and the causal mask), ``BatchNormalization``
(masked batch statistics in training), ``Concatenate``, ``Lambda``, and the compiled losses
of a masked sequence output (the mask as sample weights), against Keras 3 (torch backend):
the predictions and the weights after ``fit`` steps from the same initial weights."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras as ek

K = pytest.importorskip("keras")


def _ids(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 7, size=(4, 5))
    x[0, 3:] = 0
    x[1, 1:] = 0
    x[2, 0] = 0
    return x


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _both(build, x, y, loss="mse", steps=2, metrics=None):
    km, em = build(K), build(ek)
    first = [a[:1] for a in x] if isinstance(x, list) else x[:1]
    km.predict(first, verbose=0)
    em.predict(first, verbose=0)
    em.set_weights(km.get_weights())
    np.testing.assert_allclose(
        em.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    hist = []
    for m, mod in ((km, K), (em, ek)):
        m.compile(optimizer=mod.optimizers.SGD(0.5), loss=loss, metrics=metrics)
        h = m.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
        hist.append(h.history)
    for a, b in zip(em.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hist[1]["loss"], hist[0]["loss"], rtol=1e-5, atol=1e-6)
    for m in (km, em):
        hist.append(m.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True))
    np.testing.assert_allclose(hist[3]["loss"], hist[2]["loss"], rtol=1e-5, atol=1e-6)
    return km, em, hist


# -- losses on a masked output ------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["mse", "sparse_categorical_crossentropy"])
def test_seq2seq_masked_loss_and_fit(loss):
    def build(mod):
        act = "softmax" if loss.startswith("sparse") else None
        return mod.Sequential(
            [
                mod.Input((5,), dtype="int32"),
                mod.layers.Embedding(7, 3, mask_zero=True),
                mod.layers.LSTM(4, return_sequences=True),
                mod.layers.Dense(3, activation=act),
            ]
        )

    rng = np.random.default_rng(3)
    if loss == "mse":
        y = rng.standard_normal((4, 5, 3)).astype(np.float32)
    else:
        y = rng.integers(0, 3, size=(4, 5))
    _both(build, _ids(), y, loss=loss)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_loss_object_reads_the_mask(reduction):
    rng = np.random.default_rng(0)
    yp = rng.standard_normal((3, 4, 2)).astype(np.float32)
    yt = rng.standard_normal((3, 4, 2)).astype(np.float32)
    m = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)
    sw = rng.random((3, 4)).astype(np.float32)  # per step (Keras fails on (3,) with a mask)
    kp = K.ops.convert_to_tensor(yp)
    kp._keras_mask = K.ops.convert_to_tensor(m)
    ep = ember.tensor(yp)
    ep.__dict__["_keras_mask"] = ember.tensor(m)
    for w in (None, sw):
        k = K.losses.MeanSquaredError(reduction=reduction)(yt, kp, sample_weight=w)
        e = ek.losses.MeanSquaredError(reduction=reduction)(
            ember.tensor(yt), ep, sample_weight=None if w is None else ember.tensor(w)
        )
        np.testing.assert_allclose(_np(e), _np(k), rtol=1e-6, atol=1e-7)
    # everything masked: 0, not NaN
    ep.__dict__["_keras_mask"] = ember.zeros(3, 4, dtype=ember.bool)
    e = ek.losses.MeanSquaredError(reduction=reduction)(ember.tensor(yt), ep)
    assert np.all(_np(e) == 0.0)


def test_masked_loss_with_ignore_class():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 4, 3)).astype(np.float32)
    yt = np.array([[0, 1, 2, 1], [2, 1, 0, 0]])
    m = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], bool)
    kp = K.ops.convert_to_tensor(logits)
    kp._keras_mask = K.ops.convert_to_tensor(m)
    ep = ember.tensor(logits)
    ep.__dict__["_keras_mask"] = ember.tensor(m)
    kw = {"from_logits": True, "ignore_class": 1}
    k = K.losses.SparseCategoricalCrossentropy(**kw)(yt, kp)
    e = ek.losses.SparseCategoricalCrossentropy(**kw)(ember.tensor(yt), ep)
    np.testing.assert_allclose(_np(e), _np(k), rtol=1e-6)


# -- layers ---------------------------------------------------------------------------------------
def test_softmax_mask_matches_keras():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    m = rng.random((2, 3, 4)) > 0.4
    m[0, 1] = False  # a row masked throughout: zeros
    for mask in (m, m.astype(np.float32), m[:, :1, :]):
        k = K.layers.Softmax()(x, mask=mask)
        e = ek.layers.Softmax()(ember.tensor(x), mask=ember.tensor(mask))
        np.testing.assert_allclose(_np(e), _np(k), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="broadcastable"):
        ek.layers.Softmax()(ember.tensor(x), mask=ember.ones(2, 5, dtype=ember.bool))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_keras_masks(causal, cross):
    def build(mod):
        inp = mod.Input((5,), dtype="int32")
        q = mod.layers.Embedding(7, 4, mask_zero=True)(inp)
        v = q
        if cross:
            inp2 = mod.Input((5,), dtype="int32")
            v = mod.layers.Embedding(7, 4, mask_zero=True)(inp2)
        a = mod.layers.MultiHeadAttention(2, 3)(q, v, use_causal_mask=causal)
        out = mod.layers.GlobalAveragePooling1D()(a)
        return mod.Model([inp, inp2] if cross else inp, mod.layers.Dense(2)(out))

    x = _ids(5)
    x[:, 0] = np.maximum(x[:, 0], 1)  # no query row masked throughout
    x2 = _ids(6)
    x2[:, 0] = np.maximum(x2[:, 0], 1)  # no causal row masked throughout
    xs = [x, x2] if cross else x
    _both(build, xs, np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32))


def test_multi_head_attention_explicit_masks_and_output_mask():
    rng = np.random.default_rng(7)
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    v = rng.standard_normal((2, 5, 4)).astype(np.float32)
    qm = np.array([[1, 1, 0], [1, 0, 0]], bool)
    vm = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    am = rng.random((2, 3, 5)) > 0.3
    am[:, :, 0] = True
    kl, el = K.layers.MultiHeadAttention(2, 3), ek.layers.MultiHeadAttention(2, 3)
    kl(q, v)
    el(ember.tensor(q), ember.tensor(v))
    el.set_weights(kl.get_weights())
    k_out, k_sc = kl(
        q, v, query_mask=qm, value_mask=vm, attention_mask=am, return_attention_scores=True
    )
    e_out, e_sc = el(
        ember.tensor(q),
        ember.tensor(v),
        query_mask=ember.tensor(qm),
        value_mask=ember.tensor(vm),
        attention_mask=ember.tensor(am),
        return_attention_scores=True,
    )
    np.testing.assert_allclose(_np(e_sc), _np(k_sc), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(e_out), _np(k_out), rtol=1e-5, atol=1e-6)
    # the Keras mask on the query is the output's mask
    eq = ember.tensor(q)
    eq.__dict__["_keras_mask"] = ember.tensor(qm)
    assert el(eq, ember.tensor(v))._keras_mask.tolist() == qm.tolist()


def test_batch_normalization_masked_statistics():
    def build(mod):
        return mod.Sequential(
            [
                mod.Input((5,), dtype="int32"),
                mod.layers.Embedding(7, 3, mask_zero=True),
                mod.layers.BatchNormalization(momentum=0.5),
                mod.layers.LSTM(2),  # gets the mask through BatchNormalization
            ]
        )

    km, em, _ = _both(build, _ids(8), np.random.default_rng(2).standard_normal((4, 2)))
    # the moving statistics came from the masked batches
    kb, eb = km.layers[1], em.layers[1]
    np.testing.assert_allclose(_np(eb.bn.running_mean), _np(kb.moving_mean), rtol=1e-4)
    np.testing.assert_allclose(_np(eb.bn.running_var), _np(kb.moving_variance), rtol=1e-4)
    x = ember.tensor(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    with pytest.raises(ValueError, match="one dimension less"):
        eb(x, mask=ember.ones(2, 3, 4, dtype=ember.bool), training=True)


@pytest.mark.parametrize("axis", [1, -1])
def test_concatenate_masks(axis):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 2)).astype(np.float32)
    b = rng.standard_normal((2, 3, 2)).astype(np.float32)
    ma = np.array([[1, 1, 0], [1, 0, 0]], bool)
    mb = np.array([[1, 0, 1], [0, 0, 1]], bool)
    for mbi in (mb, None):
        k = K.layers.Concatenate(axis=axis).compute_mask([a, b], [ma, mbi])
        ea, eb = ember.tensor(a), ember.tensor(b)
        ea.__dict__["_keras_mask"] = ember.tensor(ma)
        if mbi is not None:
            eb.__dict__["_keras_mask"] = ember.tensor(mbi)
        e = ek.layers.Concatenate(axis=axis)([ea, eb])._keras_mask
        assert e.tolist() == _np(k).tolist()


def test_lambda_mask_argument_and_function_mask():
    x = ember.tensor(_ids())
    e = ek.layers.Embedding(7, 3, mask_zero=True)(x)
    want = (_ids() != 0).tolist()
    # a function taking mask= gets the input mask; no mask argument: the output has none
    got = ek.layers.Lambda(lambda t, mask: t * mask.unsqueeze(-1))(e)
    np.testing.assert_array_equal(
        got.detach().numpy(), (e * e._keras_mask.unsqueeze(-1)).detach().numpy()
    )
    assert got.__dict__.get("_keras_mask") is None
    # callable mask: mask(inputs, input_mask); a tensor: that mask
    flip = ek.layers.Lambda(lambda t: t, mask=lambda t, m: ~m)(e)
    assert flip._keras_mask.tolist() == (~np.array(want)).tolist()
    fixed = ember.ones(4, 5, dtype=ember.bool)
    assert ek.layers.Lambda(lambda t: t, mask=fixed)(e)._keras_mask.tolist() == fixed.tolist()


def test_masks_dropped_where_keras_drops_them():
    e = ek.layers.Embedding(7, 3, mask_zero=True)(ember.tensor(_ids()))
    for layer in (
        ek.layers.GlobalMaxPooling1D(),
        ek.layers.Reshape((15,)),
        ek.layers.Flatten(),
    ):
        assert layer(e).__dict__.get("_keras_mask") is None
    ke = K.layers.Embedding(7, 3, mask_zero=True)(_ids())
    for layer in (K.layers.GlobalMaxPooling1D(), K.layers.Reshape((15,)), K.layers.Flatten()):
        assert getattr(layer(ke), "_keras_mask", None) is None
    # Keras' GlobalMaxPooling1D ignores the mask: the maximum over every step
    np.testing.assert_allclose(
        ek.layers.GlobalMaxPooling1D()(e).detach().numpy(), e.detach().numpy().max(axis=1)
    )
