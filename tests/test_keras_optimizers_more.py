"""Keras' Adadelta, Nadam and Adamax against NumPy transcriptions of Keras 3's updates (five
steps with changing gradients), their string names, and configs."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import keras

G = np.random.default_rng(0).standard_normal((5, 4))
W0 = np.random.default_rng(1).standard_normal(4)


def _run(opt):
    w = ember.nn.Parameter(ember.tensor(W0.copy()))
    opt.build([w])
    for g in G:
        w.grad = ember.tensor(g)
        opt.step()
    return w.detach().numpy()


def _adadelta(lr=0.001, rho=0.95, eps=1e-7):
    w, ag, ad = W0.copy(), np.zeros(4), np.zeros(4)
    for g in G:
        ag = rho * ag + (1 - rho) * g * g
        delta = np.sqrt(ad + eps) / np.sqrt(ag + eps) * g
        ad = rho * ad + (1 - rho) * delta * delta
        w = w - lr * delta
    return w


def _nadam(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    w, m, v, u_prod = W0.copy(), np.zeros(4), np.zeros(4), 1.0
    for t, g in enumerate(G, 1):
        u_t = b1 * (1 - 0.5 * 0.96**t)  # (Keras 3: no 0.004 in the exponent)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_prod_t = u_prod * u_t
        u_prod_t1 = u_prod_t * u_t1
        u_prod = u_prod_t
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t1 * m / (1 - u_prod_t1) + (1 - u_t) * g / (1 - u_prod_t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def _adamax(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    w, m, u = W0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(G, 1):
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g))
        w = w - lr / (1 - b1**t) * m / (u + eps)
    return w


@pytest.mark.parametrize(
    "make, ref, rtol",
    [
        (lambda: keras.optimizers.Adadelta(), _adadelta, 1e-9),
        (
            lambda: keras.optimizers.Adadelta(0.5, rho=0.8, epsilon=1e-4),
            lambda: _adadelta(0.5, 0.8, 1e-4),
            1e-9,
        ),
        (lambda: keras.optimizers.Nadam(), _nadam, 1e-9),
        (
            lambda: keras.optimizers.Nadam(0.01, beta_1=0.8, beta_2=0.99),
            lambda: _nadam(0.01, 0.8, 0.99),
            1e-9,
        ),
        (lambda: keras.optimizers.Adamax(), _adamax, 1e-9),
        (lambda: keras.optimizers.Adamax(0.02, beta_1=0.5), lambda: _adamax(0.02, 0.5), 1e-9),
    ],
)
def test_updates_match_keras(make, ref, rtol):
    np.testing.assert_allclose(_run(make()), ref(), rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", ["adadelta", "nadam", "adamax"])
def test_names_and_configs(name):
    opt = keras.optimizers.get(name)
    assert type(opt).__name__.lower() == name
    back = keras.optimizers.get(keras.optimizers.serialize(opt))
    assert back.get_config() == opt.get_config()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=name, loss="mse")
    x = np.random.default_rng(2).standard_normal((16, 3)).astype(np.float32)
    hist = model.fit(x, x.sum(1, keepdims=True), epochs=2, batch_size=8, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()
