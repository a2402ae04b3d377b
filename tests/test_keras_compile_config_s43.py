"""Keras' ``get_compile_config`` / ``compile_from_config`` and the compile flags
(``jit_compile``, ``run_eagerly``, ``steps_per_execution``) kept in the compile config and in
saved models, compared with Keras 3 (torch backend)."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras_ref = pytest.importorskip("keras")

from ember import keras  # noqa: E402


def _model(lib):
    return lib.Sequential([lib.Input((3,)), lib.layers.Dense(2)])


@pytest.mark.parametrize("jit", [True, False])
def test_compile_config_has_the_same_keys_and_flags_as_keras(jit):
    ours, ref = _model(keras), _model(keras_ref)
    for m in (ours, ref):
        m.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=jit)
    a, b = ours.get_compile_config(), ref.get_compile_config()
    for key in ("loss", "loss_weights", "run_eagerly", "steps_per_execution", "jit_compile"):
        assert a[key] == b[key], key
    assert a["optimizer"]["class_name"] == b["optimizer"]["class_name"] == "Adam"
    assert set(b) - set(a) <= {"weighted_metrics"}


def test_not_compiled_gives_an_empty_config_like_keras():
    assert _model(keras).get_compile_config() == {}
    assert _model(keras_ref).get_compile_config() == {}


def test_run_eagerly_turns_jit_off_in_the_config():
    m = _model(keras)
    with pytest.warns(UserWarning, match="jit_compile"):
        m.compile("sgd", "mse", run_eagerly=True, jit_compile=True)
    cfg = m.get_compile_config()
    assert cfg["run_eagerly"] is True and cfg["jit_compile"] is False


def test_compile_from_config_round_trip_trains_the_same():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    a = _model(keras)
    a.compile(keras.optimizers.Adam(0.05), "mae", metrics=["mse"], jit_compile=True)
    b = _model(keras)
    b.set_weights(a.get_weights())
    b.compile_from_config(a.get_compile_config())
    assert b.jit_compile is True and type(b.optimizer).__name__ == "Adam"
    assert float(b.optimizer.learning_rate) == pytest.approx(0.05)
    ha = a.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False).history
    hb = b.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False).history
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6)
    np.testing.assert_allclose(ha["mse"], hb["mse"], rtol=1e-6)


def test_config_is_a_copy():
    m = _model(keras)
    m.compile("sgd", "mse")
    m.get_compile_config()["loss"] = "mae"
    assert m.get_compile_config()["loss"] == "mse"


def test_saved_model_keeps_jit_compile(tmp_path):
    m = _model(keras)
    m.compile("sgd", "mse", jit_compile=True)
    path = str(tmp_path / "m.keras")
    m.save(path)
    back = keras.models.load_model(path)
    assert back.jit_compile is True
    assert back.get_compile_config()["jit_compile"] is True


def test_bad_config_is_a_clear_error():
    with pytest.raises(TypeError, match="get_compile_config"):
        _model(keras).compile_from_config("adam")


def test_one_optimizer_in_two_models_is_an_error_like_keras():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    for lib in (keras, keras_ref):
        opt = lib.optimizers.SGD(0.1)
        a, b = _model(lib), _model(lib)
        a.compile(opt, "mse")
        b.compile(opt, "mse")
        a.fit(x, y, epochs=1, verbose=0)
        with pytest.raises(ValueError, match="Unknown variable"):
            b.fit(x, y, epochs=1, verbose=0)
    # a fresh optimizer for the second model trains it
    b = _model(keras)
    b.compile(keras.optimizers.SGD(0.1), "mse")
    w0 = [w.copy() for w in b.get_weights()]
    b.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(w0[0], b.get_weights()[0])


def test_unbuilt_layers_have_no_weights_like_keras():
    for lib in (keras, keras_ref):

        class Sub(lib.Model):
            def __init__(self, layers=lib.layers):
                super().__init__()
                self.d = layers.Dense(2)

            def call(self, x):
                return self.d(x)

        m = Sub()
        assert m.get_weights() == [] and len(m.weights) == 0 and len(m.trainable_weights) == 0
        assert lib.layers.Dense(3).get_weights() == []
        m(np.ones((1, 4), np.float32))
        assert [w.shape for w in m.get_weights()] == [(4, 2), (2,)]
    with pytest.raises(ValueError, match="0 weights"):
        keras.layers.Dense(3).set_weights([np.ones((2, 3))])


def test_train_on_batch_class_weight_matches_keras():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0, 2])
    cw = {0: 1.0, 1: 2.0, 2: 0.5}
    ref = keras_ref.Sequential([keras_ref.Input((2,)), keras_ref.layers.Dense(3)])
    ours = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    ours.set_weights(ref.get_weights())
    got, want = [], []
    for m, lib, out in ((ref, keras_ref, want), (ours, keras, got)):
        m.compile(lib.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        out += [float(m.train_on_batch(x, y, class_weight=cw)) for _ in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-5)
