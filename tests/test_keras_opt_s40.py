"""Keras optimizer options (``use_ema``, ``ema_overwrite_frequency``, ``loss_scale_factor``,
``gradient_accumulation_steps``) and callback options (``ModelCheckpoint(save_freq=N)``,
``TensorBoard(histogram_freq, write_steps_per_second)``) against Keras 3 on the torch backend."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator as ea

import ember
from ember import keras as ek

K = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 4)).astype("float32")
Y = RNG.standard_normal((8, 1)).astype("float32")
W0 = [(RNG.standard_normal(s) * 0.5).astype("float32") for s in [(4, 3), (3,), (3, 1), (1,)]]


def _fit(mod, opt, epochs=2, callbacks=None):
    m = mod.Sequential(
        [mod.Input((4,)), mod.layers.Dense(3, activation="tanh"), mod.layers.Dense(1)]
    )
    m.set_weights(W0)
    m.compile(optimizer=opt, loss="mse")
    h = m.fit(X, Y, batch_size=2, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return m, h.history.get("loss")


# Adam with a negligible epsilon: Keras adds it to sqrt(v) before the bias correction
ADAM = {"learning_rate": 0.01, "epsilon": 1e-12}
CASES = [
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "use_ema": True, "ema_momentum": 0.8}),
    ("Adam", {**ADAM, "use_ema": True, "ema_momentum": 0.7, "ema_overwrite_frequency": 3}),
    ("SGD", {"learning_rate": 0.1, "use_ema": True, "ema_overwrite_frequency": 1}),
    ("SGD", {"learning_rate": 0.1, "loss_scale_factor": 64.0}),
    ("Adam", {**ADAM, "loss_scale_factor": 0.5, "clipnorm": 0.05}),
    ("Adam", {**ADAM, "gradient_accumulation_steps": 3}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.5, "gradient_accumulation_steps": 2}),
    (
        "Adam",
        {
            **ADAM,
            "gradient_accumulation_steps": 2,
            "use_ema": True,
            "ema_overwrite_frequency": 2,
            "loss_scale_factor": 8.0,
        },
    ),
]


@pytest.mark.parametrize(("name", "kw"), CASES)
def test_fit_matches_keras(name, kw):
    km, kloss = _fit(K, getattr(K.optimizers, name)(**kw))
    em, eloss = _fit(ek, getattr(ek.optimizers, name)(**kw))
    for a, b in zip(km.get_weights(), em.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), atol=1e-6, rtol=0)
    np.testing.assert_allclose(eloss, kloss, rtol=1e-5)  # the logs hold the unscaled loss
    assert em.optimizer.iterations == int(km.optimizer.iterations)


def test_schedule_sees_every_call_with_accumulation():
    kopt = K.optimizers.SGD(
        K.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5), gradient_accumulation_steps=2
    )
    eopt = ek.optimizers.SGD(
        ek.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5), gradient_accumulation_steps=2
    )
    km, _ = _fit(K, kopt)
    em, _ = _fit(ek, eopt)
    for a, b in zip(km.get_weights(), em.get_weights()):
        np.testing.assert_allclose(b, np.asarray(a), atol=1e-6, rtol=0)
    assert eopt.iterations == 4 and eopt._iterations == 8


def test_ema_by_hand_and_finalize():
    w = ember.nn.Parameter(ember.tensor([1.0, 2.0]))
    opt = ek.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.9).build([w])
    ws, avg = np.array([1.0, 2.0]), None
    for g in ([1.0, -1.0], [0.5, 2.0], [-2.0, 1.0]):
        w.grad = ember.tensor(g)
        opt.step()
        ws = ws - 0.5 * np.array(g)
        avg = ws.copy() if avg is None else 0.9 * avg + 0.1 * ws
    np.testing.assert_allclose(w.tolist(), ws, atol=1e-6)
    opt.finalize_variable_values()
    np.testing.assert_allclose(w.tolist(), avg, atol=1e-6)


def test_accumulation_state_dict_round_trip():
    def make():
        w = ember.nn.Parameter(ember.tensor([1.0, -1.0]))
        kw = {"use_ema": True, "gradient_accumulation_steps": 2}
        return w, ek.optimizers.Adam(0.1, **kw).build([w])

    w1, o1 = make()
    w1.grad = ember.tensor([1.0, 2.0])
    o1.step()
    w2, o2 = make()
    o2.load_state_dict(o1.state_dict())
    for w, o in ((w1, o1), (w2, o2)):
        w.grad = ember.tensor([3.0, -1.0])
        o.step()
    assert w1.tolist() == w2.tolist() and o1.iterations == o2.iterations == 1
    assert o1._ema[0].tolist() == o2._ema[0].tolist()


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_config_round_trip(name):
    kw = {
        "use_ema": True,
        "ema_momentum": 0.95,
        "ema_overwrite_frequency": 4,
        "loss_scale_factor": 32.0,
        "gradient_accumulation_steps": 3,
    }
    cfg = getattr(ek.optimizers, name)(**kw).get_config()
    kcfg = getattr(K.optimizers, name)(**kw).get_config()
    for k, v in kw.items():
        assert cfg[k] == kcfg[k] == v
    again = getattr(ek.optimizers, name).from_config(cfg)
    assert again.get_config() == cfg
    assert ek.optimizers.get(ek.optimizers.serialize(again)).gradient_accumulation_steps == 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        ek.optimizers.SGD(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        ek.optimizers.Adam(use_ema=True, ema_momentum=-0.1)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        ek.optimizers.Adam(use_ema=True, ema_overwrite_frequency=0.5)
    with pytest.raises(TypeError, match="loss_scale_factor"):
        ek.optimizers.Adam(loss_scale_factor="big")
    with pytest.raises(ValueError, match="save_freq"):
        ek.callbacks.ModelCheckpoint("m.ember", save_freq="batch")
    with pytest.raises(ValueError, match="histogram_freq"):
        ek.callbacks.TensorBoard(histogram_freq=-1)


def test_scale_loss():
    assert ek.optimizers.Adam(loss_scale_factor=4.0).scale_loss(2.0) == 8.0
    assert ek.optimizers.Adam().scale_loss(2.0) == 2.0


def test_checkpoint_save_freq_batches_as_keras(tmp_path):
    kdir, edir = tmp_path / "k", tmp_path / "e"
    kcb = K.callbacks.ModelCheckpoint(
        str(kdir / "m-{epoch}-{batch}.weights.h5"), save_weights_only=True, save_freq=3
    )
    _fit(K, K.optimizers.SGD(0.1), epochs=3, callbacks=[kcb])
    ecb = ek.callbacks.ModelCheckpoint(
        str(edir / "m-{epoch}-{batch}.weights.h5"), save_weights_only=True, save_freq=3
    )
    em, _ = _fit(ek, ek.optimizers.SGD(0.1), epochs=3, callbacks=[ecb])
    names = sorted(os.listdir(kdir))
    assert names == ["m-1-3.weights.h5", "m-2-2.weights.h5", "m-3-1.weights.h5", "m-3-4.weights.h5"]
    assert sorted(os.listdir(edir)) == names
    # the last file holds the final weights
    m2, _ = _fit(ek, ek.optimizers.SGD(0.1), epochs=0)
    m2.load_weights(str(edir / "m-3-4.weights.h5"))
    for a, b in zip(em.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_save_freq_full_and_best(tmp_path):
    ecb = ek.callbacks.ModelCheckpoint(
        str(tmp_path / "c-{epoch}-{batch}-{loss:.3f}.ember"),
        monitor="loss",
        save_best_only=True,
        save_freq=2,
    )
    _fit(ek, ek.optimizers.SGD(0.1), epochs=2, callbacks=[ecb])
    files = os.listdir(tmp_path)
    assert files and ecb.best_path is not None and os.path.exists(ecb.best_path)
    assert round(ecb.best, 3) == min(float(f.rsplit("-", 1)[1][: -len(".ember")]) for f in files)
    state = ember.train.load_checkpoint(ecb.best_path)  # a full checkpoint inside an epoch
    assert state["position"] is not None


def _events(path):
    acc = ea.EventAccumulator(str(path), size_guidance={ea.HISTOGRAMS: 0, ea.SCALARS: 0})
    acc.Reload()
    return acc


def test_tensorboard_histograms(tmp_path):
    cb = ek.callbacks.TensorBoard(str(tmp_path), histogram_freq=2)
    m, _ = _fit(ek, ek.optimizers.SGD(0.1), epochs=3, callbacks=[cb])
    acc = _events(tmp_path)
    tags = sorted(acc.Tags()["histograms"])
    layers = [layer.name for layer in m.layers]
    assert len(tags) == 4 and all(t.endswith("/histogram") for t in tags)
    assert {t.split("/")[1] for t in tags} == set(layers)
    kernel = next(t for t in tags if t.startswith(f"train/{layers[0]}/") and "weight" in t)
    ev = acc.Histograms(kernel)
    assert [e.step for e in ev] == [0, 2]  # epochs 0 and 2, as Keras' epoch % freq == 0
    final = m.get_weights()[0]
    h = ev[-1].histogram_value
    assert h.num == final.size and sum(h.bucket) == final.size
    assert h.sum == pytest.approx(float(final.sum()), abs=1e-5)
    assert h.min == pytest.approx(float(final.min())) and h.max == pytest.approx(float(final.max()))


def test_tensorboard_steps_per_second(tmp_path):
    cb = ek.callbacks.TensorBoard(str(tmp_path), write_steps_per_second=True, update_freq=1)
    _fit(ek, ek.optimizers.SGD(0.1, gradient_accumulation_steps=2), epochs=2, callbacks=[cb])
    acc = _events(tmp_path)
    epoch = acc.Scalars("train/steps_per_second")
    assert [e.step for e in epoch] == [0, 1] and all(e.value > 0 for e in epoch)
    batch = acc.Scalars("train/batch_steps_per_second")
    assert [e.step for e in batch] == list(range(1, 9)) and all(e.value > 0 for e in batch)
    plain = ek.callbacks.TensorBoard(str(tmp_path / "plain"))
    _fit(ek, ek.optimizers.SGD(0.1), epochs=1, callbacks=[plain])
    assert "train/steps_per_second" not in _events(tmp_path / "plain").Tags()["scalars"]
