"""Every ``ember.keras.optimizers`` optimizer against Keras 3 on the torch backend: the same
float32 weights and gradients, six updates, the weights equal within 1e-6 relative (defaults
and two other configurations each; weight decay, the three clippings, schedules, a weight
without a gradient, and ``fit`` on a small Dense model)."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras as ek

K = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
W0 = [RNG.standard_normal(s).astype("float32") for s in [(3, 4), (4,)]]
# six steps of gradients of changing size (the clippings act on some of them)
GRADS = [
    [(RNG.standard_normal(w.shape) * s).astype("float32") for w in W0]
    for s in (1.0, 0.1, 3.0, 0.5, 2.0, 0.01)
]

FTRL = {
    "learning_rate_power": -0.3,
    "initial_accumulator_value": 0.2,
    "l1_regularization_strength": 0.01,
    "l2_regularization_strength": 0.02,
    "l2_shrinkage_regularization_strength": 0.03,
    "beta": 0.5,
}
CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.05, "momentum": 0.5, "nesterov": True}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.01, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.95, "amsgrad": True}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "epsilon": 1e-3}),
    ("AdamW", {"learning_rate": 0.02, "weight_decay": 0.05, "amsgrad": True}),
    ("Adamax", {}),
    ("Adamax", {"learning_rate": 0.02, "beta_1": 0.5, "epsilon": 1e-3}),
    ("Adamax", {"learning_rate": 0.01, "beta_2": 0.9}),
    ("Nadam", {}),
    ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99}),
    ("Nadam", {"learning_rate": 0.02, "epsilon": 1e-3}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.9}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "epsilon": 1e-3}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.0, "epsilon": 1e-3}),
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.8, "epsilon": 1e-4}),
    ("Adadelta", {"learning_rate": 0.5, "rho": 0.9}),
    ("Ftrl", {}),
    ("Ftrl", {"learning_rate": 0.1, **FTRL}),
    ("Ftrl", {"learning_rate": 0.05, "initial_accumulator_value": 0.5}),
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.9}),
    ("Lion", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("Adafactor", {}),
    (
        "Adafactor",
        {
            "learning_rate": 0.05,
            "beta_2_decay": -0.5,
            "epsilon_2": 1e-2,
            "clip_threshold": 0.5,
            "relative_step": False,
        },
    ),
    ("Adafactor", {"learning_rate": 2.0}),  # capped at 1 / sqrt(t)
    # Keras' options shared by every optimizer
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.05}),
    ("Adam", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.01, "global_clipnorm": 1.0, "epsilon": 1e-3}),
    ("Nadam", {"learning_rate": 0.01, "clipvalue": 0.3}),
    ("SGD", {"momentum": 0.9, "clipnorm": 1.0, "weight_decay": 0.1}),
]


def _keras_run(make, grads=GRADS):
    vs = [K.Variable(w.copy()) for w in W0]
    opt = make(K)
    for gs in grads:
        kept = [(K.ops.convert_to_tensor(g), v) for g, v in zip(gs, vs) if g is not None]
        opt.apply([g for g, _ in kept], [v for _, v in kept])
    return [np.asarray(K.ops.convert_to_numpy(v)) for v in vs]


def _ember_run(make, grads=GRADS):
    ps = [ember.nn.Parameter(ember.tensor(w.copy())) for w in W0]
    opt = make(ek).build(ps)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = None if g is None else ember.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in ps]


def _check(make, grads=GRADS):
    # 1e-6 relative to each element and to the weight's scale (a weight that ends near 0
    # after steps of size ~1 carries float32 rounding of ~1e-7 from Keras' torch reductions)
    want, got = _keras_run(make, grads), _ember_run(make, grads)
    for a, b in zip(got, want):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * np.abs(b).max())


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_updates_match_keras(name, kw):
    _check(lambda mod: getattr(mod.optimizers, name)(**kw))


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("SGD", {"momentum": 0.9, "nesterov": True}),
        ("Adam", {"amsgrad": True}),
        ("RMSprop", {"momentum": 0.5}),
    ],
)
def test_schedules_see_keras_iterations(name, kw):
    # the rate at each step is the schedule at Keras' iteration count (SGD folds it into m)
    def make(mod):
        sched = mod.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
        return getattr(mod.optimizers, name)(sched, **kw)

    _check(make)


@pytest.mark.parametrize("name", ["Adam", "Nadam", "Adamax", "Adafactor"])
def test_bias_correction_counts_updates_without_a_gradient(name):
    # Keras' step is the optimizer's iteration count, not the number of updates of the
    # weight: a weight without a gradient in steps 2-3 still sees t = 4 at step 4
    grads = [list(gs) for gs in GRADS]
    grads[1][1] = grads[2][1] = None
    _check(lambda mod: getattr(mod.optimizers, name)(learning_rate=0.01), grads)


def test_only_one_clipping():
    for mod in (K, ek):
        with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue`"):
            mod.optimizers.SGD(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="momentum"):
        ek.optimizers.SGD(momentum=1.5)


def test_global_clipnorm_of_a_non_finite_norm_is_nan():
    w = ember.nn.Parameter(ember.tensor([1.0, 2.0]))
    opt = ek.optimizers.SGD(0.1, global_clipnorm=1.0).build([w])
    w.grad = ember.tensor([float("inf"), 1.0])
    opt.step()
    assert np.isnan(w.detach().numpy()).all()


X = RNG.standard_normal((8, 4)).astype("float32")
Y = RNG.standard_normal((8, 1)).astype("float32")
MW0 = [(RNG.standard_normal(s) * 0.5).astype("float32") for s in [(4, 3), (3,), (3, 1), (1,)]]


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("Adam", {"learning_rate": 0.01, "epsilon": 1e-3}),
        ("RMSprop", {}),
        ("RMSprop", {"centered": True, "momentum": 0.9}),
        ("Adagrad", {"learning_rate": 0.1}),
        ("Nadam", {"learning_rate": 0.01}),
        ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ],
)
def test_fit_on_a_dense_model_matches_keras(name, kw):
    def fit(mod):
        m = mod.Sequential(
            [mod.Input((4,)), mod.layers.Dense(3, activation="tanh"), mod.layers.Dense(1)]
        )
        m.set_weights(MW0)
        m.compile(optimizer=getattr(mod.optimizers, name)(**kw), loss="mse")
        m.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0)
        return m.get_weights()

    for a, b in zip(fit(ek), fit(K)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, atol=1e-6)


def test_state_dict_round_trip_keeps_nadam_product_and_step():
    def run(split):
        ps = [ember.nn.Parameter(ember.tensor(w.copy())) for w in W0]
        opt = ek.optimizers.Nadam(0.01).build(ps)
        for i, gs in enumerate(GRADS):
            if i == split:
                state = opt.state_dict()
                opt = ek.optimizers.Nadam(0.01).build(ps)
                opt.load_state_dict(state)
            for p, g in zip(ps, gs):
                p.grad = ember.tensor(g)
            opt.step()
        return [p.detach().numpy() for p in ps]

    for a, b in zip(run(3), run(-1)):
        np.testing.assert_array_equal(a, b)
