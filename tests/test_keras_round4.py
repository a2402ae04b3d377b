"""Keras fidelity, round 4: ``compile(weighted_metrics=...)``, the Keras optimizers Lion, Ftrl
and Adafactor, Keras 3's Adamax, and nested Python lists as ``fit``/``evaluate``/``predict``
data.

The optimizer references are float32 NumPy transcriptions of Keras 3.15's ``update_step``
(``keras/src/optimizers/{lion,ftrl,adafactor,adamax}.py``), in its order of operations. Each
was checked once by hand against Keras 3.15.1 itself (``KERAS_BACKEND=torch``, six steps on
weights of shapes (3, 4), (4,), (2, 3, 2)): Ember's results differed from Keras' by at most
1.8e-7. The weighted-metric names (``weighted_<name>`` only on a clash with an unweighted
metric, after the output name) were checked the same way (Keras 3 ``CompileMetrics.result``).
Importing Keras takes over ten seconds here, so the tests do not run it.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import keras

_SHAPES = [(3, 4), (4,), (2, 3, 2)]
_RNG = np.random.default_rng(0)
W0 = [_RNG.standard_normal(s).astype(np.float32) for s in _SHAPES]
G = [[_RNG.standard_normal(s).astype(np.float32) for s in _SHAPES] for _ in range(6)]
f32 = np.float32


def _run(opt):
    ws = [ember.nn.Parameter(ember.tensor(w.copy())) for w in W0]
    opt.build(ws)
    for gs in G:
        for w, g in zip(ws, gs):
            w.grad = ember.tensor(g)
        opt.step()
    return [w.detach().numpy() for w in ws]


def _lion(lr=0.001, b1=0.9, b2=0.99, wd=None):
    out = []
    for i, w in enumerate(W0):
        w, m = w.copy(), np.zeros_like(w)
        for gs in G:
            g = gs[i]
            if wd:  # Keras' decoupled decay: w -= w * wd * lr before the update
                w = w - w * f32(wd) * f32(lr)
            w = w - f32(lr) * np.sign(m * f32(b1) + g * f32(1 - b1))
            m = m * f32(b2) + g * f32(1 - b2)
        out.append(w)
    return out


def _ftrl(lr=0.001, power=-0.5, init=0.1, l1=0.0, l2=0.0, shrink=0.0, beta=0.0):
    out = []
    lr = f32(lr)
    for i, w in enumerate(W0):
        w, acc, lin = w.copy(), np.full_like(w, init), np.zeros_like(w)
        for gs in G:
            g = gs[i]
            l2_reg = f32(l2) + f32(beta) / (f32(2) * lr)
            gu = g + f32(2 * shrink) * w
            new = acc + g * g
            lin = lin + (gu - (new ** f32(-power) - acc ** f32(-power)) / lr * w)
            quad = new ** f32(-power) / lr + f32(2) * l2_reg
            w = (np.clip(lin, f32(-l1), f32(l1)) - lin) / quad
            acc = new
        out.append(w)
    return out


def _rms(x):
    return np.sqrt(np.mean(np.square(x)))


def _adafactor(lr=0.001, decay=-0.8, eps1=1e-30, eps2=1e-3, clip=1.0, relative=True):
    out = []
    for i, w in enumerate(W0):
        w = w.copy()
        r = np.zeros(w.shape[:-1], f32) if w.ndim >= 2 else None
        c = np.zeros(w.shape[:-2] + w.shape[-1:], f32) if w.ndim >= 2 else None
        v = np.zeros_like(w)
        for t, gs in enumerate(G, 1):
            g, t32, lr_t = gs[i], f32(t), f32(lr)
            if relative:
                lr_t = min(lr_t, f32(1) / np.sqrt(t32))
            rho = min(lr_t, f32(1) / np.sqrt(t32))
            alpha = max(f32(eps2), _rms(w)) * rho
            reg = g * g + f32(eps1)
            b2 = f32(1) - t32 ** f32(decay)
            if w.ndim >= 2:
                r = b2 * r + (f32(1) - b2) * reg.mean(-1)
                c = b2 * c + (f32(1) - b2) * reg.mean(-2)
                v = (r / r.mean(-1, keepdims=True))[..., None] * c[..., None, :]
            else:
                v = b2 * v + (f32(1) - b2) * reg
            u = g / np.sqrt(v)
            w = w - alpha * (u / max(f32(1), _rms(u) / f32(clip)))
        out.append(w)
    return out


def _adamax(lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    out = []
    for i, w in enumerate(W0):
        w, m, u = w.copy(), np.zeros_like(w), np.zeros_like(w)
        for t, gs in enumerate(G, 1):
            g = gs[i]
            m = m + (g - m) * f32(1 - b1)
            u = np.maximum(f32(b2) * u, np.abs(g))
            # Keras: epsilon added to the maximum (torch adds it to |g| inside it)
            w = w - (f32(lr) * m) / ((f32(1) - f32(b1) ** f32(t)) * (u + f32(eps)))
        out.append(w)
    return out


_FTRL_ARGS = {
    "learning_rate_power": -0.3,
    "initial_accumulator_value": 0.2,
    "l1_regularization_strength": 0.01,
    "l2_regularization_strength": 0.02,
    "l2_shrinkage_regularization_strength": 0.03,
    "beta": 0.5,
}


@pytest.mark.parametrize(
    "make, ref",
    [
        (lambda: keras.optimizers.Lion(), _lion),
        (
            lambda: keras.optimizers.Lion(0.05, beta_1=0.5, beta_2=0.9),
            lambda: _lion(0.05, 0.5, 0.9),
        ),
        (lambda: keras.optimizers.Lion(0.01, weight_decay=0.1), lambda: _lion(0.01, wd=0.1)),
        (lambda: keras.optimizers.Ftrl(), _ftrl),
        (
            lambda: keras.optimizers.Ftrl(0.1, **_FTRL_ARGS),
            lambda: _ftrl(0.1, -0.3, 0.2, 0.01, 0.02, 0.03, 0.5),
        ),
        (lambda: keras.optimizers.Adafactor(), _adafactor),
        (
            lambda: keras.optimizers.Adafactor(
                0.05, beta_2_decay=-0.5, epsilon_2=1e-2, clip_threshold=0.5, relative_step=False
            ),
            lambda: _adafactor(0.05, -0.5, 1e-30, 1e-2, 0.5, False),
        ),
        (lambda: keras.optimizers.Adafactor(2.0), lambda: _adafactor(2.0)),  # capped 1/sqrt(t)
        (lambda: keras.optimizers.Adamax(), _adamax),
        (
            lambda: keras.optimizers.Adamax(0.02, beta_1=0.5, epsilon=1e-3),
            lambda: _adamax(0.02, 0.5, 0.999, 1e-3),
        ),
    ],
)
def test_updates_match_keras(make, ref):
    for got, want in zip(_run(make()), ref()):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_adafactor_schedule_is_not_capped():
    # Keras applies relative_step's min(lr, 1/sqrt(t)) only to a constant rate
    sched = keras.optimizers.schedules.PiecewiseConstantDecay([100], [2.0, 2.0])
    got = _run(keras.optimizers.Adafactor(sched))
    for a, b in zip(got, _adafactor(2.0, relative=False)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["lion", "ftrl", "adafactor"])
def test_names_configs_and_fit(name):
    opt = keras.optimizers.get(name)
    assert type(opt).__name__.lower() == name and opt.learning_rate == 0.001
    back = keras.optimizers.get(keras.optimizers.serialize(opt))
    assert type(back) is type(opt) and back.get_config() == opt.get_config()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    model.compile(optimizer=name, loss="mse")
    x = np.random.default_rng(2).standard_normal((16, 3)).astype(np.float32)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    hist = model.fit(x, x.sum(1, keepdims=True), epochs=2, batch_size=8, verbose=0)
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()
    after = [p.detach().numpy() for p in model.parameters()]
    assert any(not np.array_equal(a, b) for a, b in zip(after, before))


def test_config_keeps_arguments():
    opt = keras.optimizers.Ftrl(0.1, **_FTRL_ARGS)
    cfg = keras.optimizers.serialize(opt)["config"]
    assert {k: cfg[k] for k in _FTRL_ARGS} == _FTRL_ARGS
    ada = keras.optimizers.Adafactor(epsilon_2=0.01, relative_step=False)
    back = keras.optimizers.get(keras.optimizers.serialize(ada))
    assert (back.epsilon_2, back.relative_step, back.beta_2_decay) == (0.01, False, -0.8)
    assert (
        keras.optimizers.get(keras.optimizers.serialize(keras.optimizers.Lion(beta_2=0.5))).beta_2
        == 0.5
    )


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: keras.optimizers.Lion(beta_1=0.0), "beta_1"),
        (lambda: keras.optimizers.Ftrl(learning_rate_power=0.5), "learning_rate_power"),
        (lambda: keras.optimizers.Ftrl(l1_regularization_strength=-1.0), "l1_regularization"),
        (lambda: keras.optimizers.Ftrl(initial_accumulator_value=-0.1), "initial_accumulator"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_adafactor_state_is_factored():
    w = ember.nn.Parameter(ember.tensor(W0[0].copy()))
    opt = keras.optimizers.Adafactor().build([w])
    w.grad = ember.tensor(G[0][0])
    opt.step()
    st = opt.state[w]
    assert tuple(st["r"].shape) == (3,) and tuple(st["c"].shape) == (4,)
    assert tuple(st["v"].shape) == (3, 4)


# -- weighted_metrics ------------------------------------------------------------------------
_X = np.random.default_rng(3).standard_normal((8, 3)).astype(np.float32)
_Y = np.random.default_rng(4).standard_normal((8, 1)).astype(np.float32)
_SW = np.random.default_rng(5).uniform(0.1, 1.0, 8).astype(np.float32)


def _regressor(**compile_kw):
    ember.manual_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", **compile_kw)
    return model


def _weighted_mean(values, w):
    return float((values * w).sum() / w.sum())


def test_weighted_metrics_evaluate():
    model = _regressor(metrics=["mae"], weighted_metrics=["mae", "mse"])
    assert model.metrics_names == ["loss", "mae", "weighted_mae", "mse"]
    err = model.predict(_X, verbose=0)[:, 0] - _Y[:, 0]
    logs = model.evaluate(_X, _Y, sample_weight=_SW, return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["mae"], np.abs(err).mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["weighted_mae"], _weighted_mean(np.abs(err), _SW), rtol=1e-5)
    np.testing.assert_allclose(logs["mse"], _weighted_mean(err**2, _SW), rtol=1e-5)
    # the loss: Keras' sum-over-batch-size reduction of the weighted per-sample losses
    np.testing.assert_allclose(logs["loss"], (err**2 * _SW).mean(), rtol=1e-5)
    # without sample weights they are the plain means
    plain = model.evaluate(_X, _Y, return_dict=True, verbose=0)
    np.testing.assert_allclose(plain["weighted_mae"], np.abs(err).mean(), rtol=1e-5)


def test_weighted_metrics_fit_and_validation():
    model = _regressor(metrics=["mae"], weighted_metrics=["mae"])
    model.optimizer.learning_rate = 0.0  # weights fixed: the epoch's metrics are checkable
    err = model.predict(_X, verbose=0)[:, 0] - _Y[:, 0]
    hist = model.fit(
        _X, _Y, sample_weight=_SW, validation_data=(_X, _Y, _SW), batch_size=3, verbose=0
    )
    h = hist.history
    assert set(h) == {"loss", "mae", "weighted_mae", "val_loss", "val_mae", "val_weighted_mae"}
    want = _weighted_mean(np.abs(err), _SW)
    np.testing.assert_allclose(h["weighted_mae"][0], want, rtol=1e-5)
    np.testing.assert_allclose(h["val_weighted_mae"][0], want, rtol=1e-5)
    np.testing.assert_allclose(h["val_mae"][0], np.abs(err).mean(), rtol=1e-5)


def test_weighted_metrics_from_dataset_triples_and_class_weight():
    ember.manual_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        "sgd",
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    ok = (model.predict(_X, verbose=0).argmax(1) == y).astype(np.float64)
    ds = ember.data.TensorDataset(ember.tensor(_X), ember.tensor(y), ember.tensor(_SW))
    logs = model.evaluate(ember.data.DataLoader(ds, batch_size=4), return_dict=True, verbose=0)
    np.testing.assert_allclose(logs["accuracy"], ok.mean(), rtol=1e-6)
    np.testing.assert_allclose(logs["weighted_accuracy"], _weighted_mean(ok, _SW), rtol=1e-6)
    # class_weight is folded into the sample weights, so weighted metrics see it (Keras)
    model.optimizer.learning_rate = 0.0
    cw = {0: 2.0, 1: 0.5, 2: 1.0}
    h = model.fit(_X, y, class_weight=cw, batch_size=8, verbose=0).history
    w = np.array([cw[int(c)] for c in y])
    np.testing.assert_allclose(h["weighted_accuracy"][0], _weighted_mean(ok, w), rtol=1e-6)


def test_weighted_metrics_multi_output_names():
    inp = keras.Input((3,))
    a = keras.layers.Dense(1, name="a")(inp)
    b = keras.layers.Dense(1, name="b")(inp)
    model = keras.Model(inp, [a, b])
    model.compile(
        "sgd",
        "mse",
        metrics={"a": ["mae"]},
        weighted_metrics={"a": ["mae"], "b": ["mae"]},
    )
    assert model.metrics_names == ["loss", "a_mae", "a_weighted_mae", "b_mae"]
    pa, pb = model.predict(_X, verbose=0)
    logs = model.evaluate(_X, [_Y, 2 * _Y], sample_weight=_SW, return_dict=True, verbose=0)
    np.testing.assert_allclose(
        logs["b_mae"], _weighted_mean(np.abs(pb[:, 0] - 2 * _Y[:, 0]), _SW), rtol=1e-5
    )
    np.testing.assert_allclose(
        logs["a_weighted_mae"], _weighted_mean(np.abs(pa[:, 0] - _Y[:, 0]), _SW), rtol=1e-5
    )


def test_weighted_metrics_saved_and_bad_input(tmp_path):
    model = _regressor(weighted_metrics=["mae"])
    model.fit(_X, _Y, sample_weight=_SW, verbose=0)
    model.save(tmp_path / "m.ember")
    back = keras.models.load_model(tmp_path / "m.ember")
    assert back.metrics_names == ["loss", "mae"]
    got = back.evaluate(_X, _Y, sample_weight=_SW, return_dict=True, verbose=0)
    want = model.evaluate(_X, _Y, sample_weight=_SW, return_dict=True, verbose=0)
    np.testing.assert_allclose(got["mae"], want["mae"], rtol=1e-6)
    with pytest.raises(ValueError, match="weighted_metrics"):
        _regressor(weighted_metrics="mae")


# -- nested Python lists as data -------------------------------------------------------------
def test_nested_lists_like_arrays():
    model = _regressor(metrics=["mae"])
    xl, yl = _X.tolist(), _Y.tolist()
    np.testing.assert_array_equal(model.predict(xl, verbose=0), model.predict(_X, verbose=0))
    assert model.evaluate(xl, yl, verbose=0) == model.evaluate(_X, _Y, verbose=0)
    twin = _regressor(metrics=["mae"])
    h1 = model.fit(xl, yl, sample_weight=_SW.tolist(), batch_size=4, shuffle=False, verbose=0)
    h2 = twin.fit(_X, _Y, sample_weight=_SW, batch_size=4, shuffle=False, verbose=0)
    assert h1.history == h2.history
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    h = model.fit(xl, yl, validation_split=0.25, validation_data=None, verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    h = model.fit(_X, _Y, validation_data=(xl, yl), verbose=0)
    assert "val_loss" in h.history


def test_nested_lists_multi_input():
    a, b = keras.Input((3,)), keras.Input((1,))
    out = keras.layers.Dense(1)(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], out)
    model.compile("sgd", "mse")
    xb = _Y  # (8, 1)
    want = model.predict([_X, xb], verbose=0)
    np.testing.assert_array_equal(model.predict([_X.tolist(), xb.tolist()], verbose=0), want)
    np.testing.assert_array_equal(model.predict([_X, xb.tolist()], verbose=0), want)


def test_nested_lists_bad():
    model = _regressor()
    with pytest.raises(ValueError, match="not rectangular"):
        model.predict([[1.0, 2.0, 3.0], [1.0, 2.0]], verbose=0)
    with pytest.raises(ValueError, match="not rectangular"):
        model.evaluate(_X, [[1.0], [2.0, 3.0]] + [[0.0]] * 6, verbose=0)
