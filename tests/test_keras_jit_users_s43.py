"""Keras programs as users write them, trained with ``jit_compile=True`` and with
``jit_compile=False`` from the same initial weights: the histories, final weights,
``evaluate`` and ``predict`` agree, no graph break is warned about, and the compiled forward is
traced once per mode (train / inference), not per batch (the last smaller batch included).
Keras 3 (torch backend) checks the history keys and the shapes of ``predict``."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras_ref = pytest.importorskip("keras")

import ember  # noqa: E402
from ember import keras  # noqa: E402

RTOL = 1e-5
RNG = np.random.default_rng(0)


def _close(a, b, what):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=1e-6, err_msg=what)


def _same_tree(a, b, what):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), what
        for k in a:
            _same_tree(a[k], b[k], f"{what}[{k}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), what
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            _same_tree(u, v, f"{what}[{i}]")
    else:
        _close(a, b, what)


def _traces(model):
    """explain() of the model's compiled forward (shared by fit/evaluate/predict)."""
    fn = model._jit_forward.fn
    assert fn is not None, "the compiled forward never ran"
    return ember.compile.explain(fn)


def _both(make, compile_kw, run):
    """Build once, then for jit in (False, True): the same initial weights, compile with
    ``compile_kw()`` (a fresh optimizer per model) and ``run(model)`` under the same seed;
    the results and final weights agree and no run warns of a graph break. Returns the eager
    results and the compiled model."""
    w0, out = None, []
    for jit in (False, True):
        ember.manual_seed(0)
        m = make()
        m.compile(**compile_kw(), jit_compile=jit)
        if w0 is None:
            w0 = m.get_weights()
        else:
            m.set_weights(w0)
        ember.manual_seed(1)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            res = run(m)
        breaks = [str(w.message) for w in rec if "graph break" in str(w.message)]
        assert not breaks, breaks
        out.append((res, m))
    (re, me), (rc, mc) = out
    assert mc.jit_compile is True and me.jit_compile is False
    _same_tree(re, rc, "results")
    _same_tree(me.get_weights(), mc.get_weights(), "weights")
    assert me._jit_forward.fn is None
    return re, mc


def _fit_eval_predict(x, y, epochs=2, batch_size=8, **fit_kw):
    def run(m):
        h = m.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, **fit_kw)
        ev = m.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        pred = m.predict(x, batch_size=batch_size, verbose=0)
        return {"history": h.history, "evaluate": ev, "predict": pred}

    return run


def _check_traces(mc, traces=2):
    ex = _traces(mc)
    assert ex.traces == traces and not ex.graph_breaks, str(ex)
    return ex


# -- 1. functional: two inputs, two outputs ------------------------------------------------------
def _two_in_two_out(lib):
    a = lib.Input((5,), name="num")
    b = lib.Input((3,), name="cat")
    h = lib.layers.Concatenate()([lib.layers.Dense(8, activation="relu")(a), b])
    h = lib.layers.Dense(8, activation="tanh")(h)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = lib.layers.Dense(1, name="reg")(h)
    return lib.Model(inputs=[a, b], outputs=[cls, reg])


def _two_in_two_out_compile(lib):
    return {
        "optimizer": lib.optimizers.Adam(0.01),
        "loss": {"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        "loss_weights": {"cls": 1.0, "reg": 0.5},
        "metrics": {"cls": ["accuracy"], "reg": ["mae"]},
    }


def test_functional_two_inputs_two_outputs():
    n = 21  # batches of 8, 8 and 5
    x = {"num": RNG.normal(size=(n, 5)).astype("f4"), "cat": RNG.normal(size=(n, 3)).astype("f4")}
    y = {"cls": RNG.integers(0, 3, n), "reg": RNG.normal(size=(n, 1)).astype("f4")}
    res, mc = _both(
        lambda: _two_in_two_out(keras),
        lambda: _two_in_two_out_compile(keras),
        _fit_eval_predict(x, y),
    )
    _check_traces(mc)
    ref = _two_in_two_out(keras_ref)
    ref.compile(**_two_in_two_out_compile(keras_ref))
    h = ref.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert sorted(res["history"]) == sorted(h.history)
    pr = ref.predict(x, batch_size=8, verbose=0)
    assert [p.shape for p in res["predict"]] == [p.shape for p in pr]


# -- 2. subclassed model, training flag ------------------------------------------------------------
class _Sub(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = keras.layers.Dense(12, activation="relu")
        self.drop = keras.layers.Dropout(0.4)
        self.bn = keras.layers.BatchNormalization()
        self.out = keras.layers.Dense(2)

    def call(self, x, training=False):
        h = self.d1(x)
        h = self.drop(h, training=training)
        h = self.bn(h, training=training)
        return self.out(h)


def test_subclassed_model_training_flag_switches_graphs():
    n = 19
    x = RNG.normal(size=(n, 6)).astype("f4")
    y = RNG.normal(size=(n, 2)).astype("f4")

    def make():
        m = _Sub()
        m.build((None, 6))
        return m

    res, mc = _both(
        make,
        lambda: {"optimizer": "adam", "loss": "mse", "metrics": ["mae"]},
        _fit_eval_predict(x, y, validation_data=(x[:7], y[:7])),
    )
    # the training graph (dropout on, batch statistics) differs from the inference one
    _check_traces(mc)
    _close(res["predict"], mc.predict_on_batch(x), "predict_on_batch")
    assert sorted(res["history"]) == ["loss", "mae", "val_loss", "val_mae"]


# -- 3. Sequential CNN, validation_split --------------------------------------------------------
def _cnn(lib):
    return lib.Sequential(
        [
            lib.Input((8, 8, 2)),
            lib.layers.Conv2D(4, 3, padding="same", activation="relu"),
            lib.layers.MaxPooling2D(),
            lib.layers.Conv2D(6, 3, activation="relu"),
            lib.layers.GlobalAveragePooling2D(),
            lib.layers.Dense(3, activation="softmax"),
        ]
    )


def test_sequential_cnn_validation_split():
    n = 25  # 20 to train (8 + 8 + 4), 5 to validate
    x = RNG.normal(size=(n, 8, 8, 2)).astype("f4")
    y = RNG.integers(0, 3, n)
    kw = {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    res, mc = _both(lambda: _cnn(keras), lambda: kw, _fit_eval_predict(x, y, validation_split=0.2))
    _check_traces(mc)
    ref = _cnn(keras_ref)
    ref.compile(**kw)
    h = ref.fit(x, y, batch_size=8, epochs=1, validation_split=0.2, verbose=0)
    assert sorted(res["history"]) == sorted(h.history)
    assert res["predict"].shape == ref.predict(x, verbose=0).shape == (n, 3)


# -- 4. text classifier: Embedding(mask_zero) + LSTM / GRU ---------------------------------------
def _text(lib, rnn):
    return lib.Sequential(
        [
            lib.Input((7,), dtype="int32"),
            lib.layers.Embedding(20, 6, mask_zero=True),
            getattr(lib.layers, rnn)(5),
            lib.layers.Dense(1, activation="sigmoid"),
        ]
    )


@pytest.mark.parametrize("rnn", ["LSTM", "GRU"])
def test_text_classifier_masked_rnn(rnn):
    n = 13
    lens = RNG.integers(1, 8, n)
    x = np.zeros((n, 7), np.int32)
    for i, k in enumerate(lens):  # post-padded with zeros
        x[i, :k] = RNG.integers(1, 20, k)
    y = RNG.integers(0, 2, (n, 1)).astype("f4")
    kw = {"optimizer": "rmsprop", "loss": "binary_crossentropy", "metrics": ["accuracy"]}
    res, mc = _both(lambda: _text(keras, rnn), lambda: kw, _fit_eval_predict(x, y, batch_size=4))
    _check_traces(mc)
    assert res["predict"].shape == (n, 1)


# -- 5. custom layer, loss and metric ---------------------------------------------------------
class _Scale(keras.layers.Layer):
    def __init__(self, units, **kw):
        super().__init__(**kw)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w"
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")

    def call(self, x):
        return keras.ops.tanh(keras.ops.matmul(x, self.w) + self.b) * self.gain


def _huberish(y_true, y_pred):
    d = keras.ops.abs(y_true - y_pred)
    return keras.ops.mean(keras.ops.where(d < 0.5, 0.5 * d * d, 0.5 * d - 0.125), axis=-1)


def _max_err(y_true, y_pred):
    return keras.ops.max(keras.ops.abs(y_true - y_pred), axis=-1)


def test_custom_layer_loss_and_metric():
    n = 18
    x = RNG.normal(size=(n, 4)).astype("f4")
    y = RNG.normal(size=(n, 3)).astype("f4")
    res, mc = _both(
        lambda: keras.Sequential([keras.Input((4,)), _Scale(6), keras.layers.Dense(3)]),
        lambda: {
            "optimizer": keras.optimizers.SGD(0.1, momentum=0.9),
            "loss": _huberish,
            "metrics": [_max_err],
        },
        _fit_eval_predict(x, y, batch_size=5),
    )
    _check_traces(mc)
    assert sorted(res["history"]) == ["_max_err", "loss"]


# -- 6. callbacks ----------------------------------------------------------------------------------
def test_callbacks_early_stopping_reduce_lr_checkpoint(tmp_path):
    n = 22
    x = RNG.normal(size=(n, 4)).astype("f4")
    y = (x[:, :1] * 2 - x[:, 1:2]).astype("f4")
    runs = []

    def run(m):
        path = str(tmp_path / f"best{len(runs)}.weights.h5")
        runs.append(path)
        cbs = [
            keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True, min_delta=0.5),
            keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.5),
            keras.callbacks.ModelCheckpoint(path, save_best_only=True, save_weights_only=True),
        ]
        h = m.fit(
            x,
            y,
            batch_size=8,
            epochs=6,
            validation_data=(x[:9], y[:9]),
            shuffle=False,
            verbose=0,
            callbacks=cbs,
        )
        return {"history": h.history, "epochs": h.epoch, "lr": float(m.optimizer.learning_rate)}

    res, mc = _both(
        lambda: keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
        ),
        lambda: {"optimizer": keras.optimizers.Adam(0.05), "loss": "mse"},
        run,
    )
    _check_traces(mc)
    assert len(res["epochs"]) < 6  # stopped early
    # the best epoch's checkpoints agree too
    files = []
    for path in runs:
        back = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
        )
        back.load_weights(path)
        files.append(back.get_weights())
    _same_tree(*files, "checkpoints")


# -- 7. predict on a ragged last batch; *_on_batch ----------------------------------------------
def test_predict_ragged_and_on_batch():
    n = 23
    x = RNG.normal(size=(n, 5)).astype("f4")
    y = RNG.integers(0, 4, n)

    def make():
        return keras.Sequential(
            [
                keras.Input((5,)),
                keras.layers.Dense(7, activation="gelu"),
                keras.layers.Dropout(0.2),
                keras.layers.BatchNormalization(),
                keras.layers.Dense(4),
            ]
        )

    def run(m):
        out = {
            "predict": m.predict(ember.data.TensorDataset(ember.tensor(x)), batch_size=6, verbose=0)
        }
        out["train"] = [m.train_on_batch(x[:6], y[:6], return_dict=True) for _ in range(2)]
        out["train_small"] = m.train_on_batch(x[:3], y[:3])
        out["test"] = m.test_on_batch(x[6:12], y[6:12], return_dict=True)
        out["test_small"] = m.test_on_batch(x[:2], y[:2])
        out["on_batch"] = m.predict_on_batch(x[:4])
        out["after"] = m.predict(x, batch_size=6, verbose=0)
        return out

    kw = {
        "optimizer": "adam",
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": ["accuracy"],
    }
    res, mc = _both(make, lambda: kw, run)
    ex = _check_traces(mc)
    # predict 4 batches (6, 6, 6, 5), train 3, test 2, predict_on_batch 1, predict 4
    assert ex.calls == 4 + 3 + 2 + 1 + 4, str(ex)
    assert res["predict"].shape == (n, 4)
    ref = keras_ref.Sequential([keras_ref.Input((5,)), keras_ref.layers.Dense(4)])
    ref.compile(**{**kw, "loss": "sparse_categorical_crossentropy"})
    assert sorted(res["train"][0]) == sorted(ref.train_on_batch(x[:6], y[:6], return_dict=True))
    assert sorted(res["test"]) == sorted(ref.test_on_batch(x[:6], y[:6], return_dict=True))
    # one result alone is returned as is (Keras 3), not as a list
    for lib in (keras, keras_ref):
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(1)])
        m.compile("sgd", "mse", jit_compile=lib is keras)
        got = (m.train_on_batch(x[:4], y[:4, None]), m.test_on_batch(x[:4], y[:4, None]))
        assert all(np.ndim(v) == 0 for v in got), (lib.__name__, got)
