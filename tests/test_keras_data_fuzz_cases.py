"""Regression tests for Keras-behaviour differences found by fuzzing the Keras API."""

import numpy as np

import ember.data as D
from ember import keras


def _xy(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def test_batchnorm_trainable_false_keeps_moving_stats():
    x, y = _xy()
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(1)]
    )
    model.layers[0].trainable = False
    model.compile("sgd", "mse")
    model.fit(x, y.astype("float32"), epochs=1, batch_size=4, verbose=0)
    _, _, mean, var = model.layers[0].get_weights()
    np.testing.assert_array_equal(mean, np.zeros(3, np.float32))
    np.testing.assert_array_equal(var, np.ones(3, np.float32))


def test_batchnorm_trainable_updates_moving_stats():
    x, y = _xy()
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    model.fit(x, y.astype("float32"), epochs=1, batch_size=4, verbose=0)
    assert np.abs(model.layers[0].get_weights()[2]).max() > 0


def test_validation_split_with_dict_inputs():
    x, y = _xy(20)
    ia, ib = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    out = keras.layers.Dense(1, name="out")(keras.layers.Concatenate()([ia, ib]))
    model = keras.Model([ia, ib], out)
    model.compile("sgd", "mse")
    yf = y.astype("float32")[:, None]
    h = model.fit({"a": x, "b": -x}, {"out": yf}, validation_split=0.25, epochs=1, verbose=0)
    assert set(h.history) == {"loss", "val_loss"}
    # the validation set is the last 25%: evaluating it directly gives the same val_loss
    val = model.evaluate([x[15:], -x[15:]], yf[15:], verbose=0)
    assert abs(h.history["val_loss"][0] - val) < 1e-5
    h2 = model.fit(
        {"a": x[:15], "b": -x[:15]},
        yf[:15],
        validation_data=({"a": x[15:], "b": -x[15:]}, yf[15:]),
        epochs=1,
        verbose=0,
    )
    assert "val_loss" in h2.history


def test_accuracy_metric_under_mse_loss_is_binary_by_shape():
    x, y = _xy()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "mse", metrics=["accuracy"])
    p = model.predict(x, verbose=0)[:, 0]
    got = model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"]
    assert abs(got - float(((p > 0.5).astype(int) == y).mean())) < 1e-6


def test_accuracy_metric_under_custom_loss_sparse_and_onehot():
    x, _ = _xy()
    y3 = np.arange(12) % 3

    def loss(yt, yp):
        return keras.losses.categorical_crossentropy(yt, yp)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", loss, metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    want = float((p.argmax(1) == y3).mean())
    onehot = np.eye(3, dtype="float32")[y3]
    assert abs(model.evaluate(x, onehot, verbose=0, return_dict=True)["accuracy"] - want) < 1e-6
    model.compile("sgd", "mae", metrics=["accuracy"])
    model.set_weights(model.get_weights())
    got = model.evaluate(x, y3[:, None].astype("float32"), verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert abs(got["accuracy"] - float((p.argmax(1) == y3).mean())) < 1e-6


def test_class_weight_applies_to_dataloader_input():
    x, y = _xy(20)
    ds = D.TensorDataset(x, y)

    def run(**kw):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
        model.set_weights([np.ones((3, 2), "float32") * 0.1, np.zeros(2, "float32")])
        return model.fit(D.DataLoader(ds, batch_size=5), epochs=1, verbose=0, **kw).history["loss"][
            0
        ]

    base = run()
    weighted = run(class_weight={0: 3.0, 1: 3.0})
    assert abs(weighted - 3.0 * base) < 1e-4
    # arrays and loaders agree
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    model.set_weights([np.ones((3, 2), "float32") * 0.1, np.zeros(2, "float32")])
    arr = model.fit(x, y, batch_size=5, shuffle=False, class_weight={0: 2.0, 1: 0.5}, verbose=0)
    ldr = run(class_weight={0: 2.0, 1: 0.5})
    assert abs(arr.history["loss"][0] - ldr) < 1e-5
