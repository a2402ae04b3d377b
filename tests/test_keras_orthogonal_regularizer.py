"""keras.regularizers.OrthogonalRegularizer against Keras 3.15 (values, gradients, configs,
errors, and as a Dense kernel regularizer in a layer's losses)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np
import pytest
import torch

import ember
from ember import keras as ek


@pytest.mark.parametrize("mode", ["rows", "columns"])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (6, 6), (2, 1)])
def test_penalty_and_gradient_match_keras(shape, mode):
    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape).astype(np.float32)
    w[0] = 0.0  # a zero row: the norm floor
    tw = torch.tensor(w, requires_grad=True)
    want = keras.regularizers.OrthogonalRegularizer(0.3, mode)(tw)
    want.backward()
    ew = ember.tensor(w, requires_grad=True)
    got = ek.regularizers.OrthogonalRegularizer(0.3, mode)(ew)
    got.backward()
    np.testing.assert_allclose(got.item(), float(want), rtol=1e-5)
    if not np.isfinite(float(want)):  # one row/column: no pairs, 0/0 in Keras as here
        assert np.isnan(got.item()) and shape[0 if mode == "rows" else 1] == 1
        return
    # (Keras' gradient of a zero row is NaN in rows mode; Ember's is 0 there: compare the rest)
    want_g, got_g = tw.grad.numpy(), ew.grad.numpy()
    assert np.isfinite(got_g).all()
    ok = np.isfinite(want_g)
    np.testing.assert_allclose(got_g[ok], want_g[ok], rtol=1e-4, atol=1e-6)


def test_config_serialization_and_errors_match_keras():
    for args in [(), (0.5,), (0.25, "columns")]:
        k = keras.regularizers.OrthogonalRegularizer(*args)
        e = ek.regularizers.OrthogonalRegularizer(*args)
        assert e.get_config() == k.get_config()
        assert ek.regularizers.serialize(e) == keras.regularizers.serialize(k)
        back = ek.regularizers.get(ek.regularizers.serialize(e))
        assert isinstance(back, ek.regularizers.OrthogonalRegularizer)
        assert back.get_config() == e.get_config()
    named = ek.regularizers.get("orthogonal_regularizer")
    assert isinstance(named, ek.regularizers.OrthogonalRegularizer)
    for bad in ["a", -1, None]:
        with pytest.raises(ValueError, match="factor"):
            ek.regularizers.OrthogonalRegularizer(bad)
    with pytest.raises(ValueError, match="mode"):
        ek.regularizers.OrthogonalRegularizer(0.1, "diagonal")
    with pytest.raises(ValueError, match="rank 2"):
        ek.regularizers.OrthogonalRegularizer()(ember.ones(2, 3, 4))


def test_as_a_dense_kernel_regularizer():
    layer = ek.layers.Dense(4, kernel_regularizer=ek.regularizers.OrthogonalRegularizer(0.2))
    klayer = keras.layers.Dense(4, kernel_regularizer=keras.regularizers.OrthogonalRegularizer(0.2))
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    layer(ember.tensor(x))
    klayer(x)
    layer.set_weights(klayer.get_weights())
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(sum(layer.losses)), float(sum(klayer.losses)), rtol=1e-5)
