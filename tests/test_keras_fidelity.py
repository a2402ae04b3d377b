"""Silent failures of the Keras API: compile configurations and checkpoints that cannot be
saved warn; sparse labels out of range raise in every loss and metric that takes them.
Keras 3 (torch backend) is the oracle for the values."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

import ember
from ember import keras

K = pytest.importorskip("keras")


def _model():
    return keras.Sequential([keras.layers.Dense(3, activation="softmax", input_shape=(4,))])


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


# -- compile configuration and checkpoint extras ---------------------------------------------
def test_custom_loss_function_warns_on_save_and_load_gives_uncompiled_loss(tmp_path):
    def my_loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    model = _model()
    model.compile("adam", my_loss, metrics=["accuracy"])
    assert model._compile_config["optimizer"]["class_name"] == "Adam"  # the rest is kept
    with pytest.warns(UserWarning, match=r"loss .*my_loss"):
        model.save(tmp_path / "m.ember")
    loaded = keras.models.load_model(tmp_path / "m.ember")
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert loaded.metrics_names == ["loss", "accuracy"]


def test_metric_object_without_config_warns_on_save(tmp_path):
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[ember.metrics.AUROC()])
    with pytest.warns(UserWarning, match=r"metrics .*AUROC"):
        model.save(tmp_path / "m.ember")


def test_keras_metric_objects_are_saved(tmp_path):
    model = _model()
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseTopKCategoricalAccuracy(k=2)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.save(tmp_path / "m.ember")
    loaded = keras.models.load_model(tmp_path / "m.ember")
    (m,) = loaded._metrics
    assert isinstance(m, keras.metrics.SparseTopKCategoricalAccuracy) and m.k == 2


def test_unserializable_schedule_warns_and_load_says_so(tmp_path):
    model = _model()
    model.compile(keras.optimizers.SGD(lambda step: 0.1), "sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, verbose=0)
    with pytest.warns(UserWarning, match=r"optimizer .*schedule"):
        model.save(tmp_path / "m.ember")
    with pytest.warns(UserWarning, match="no optimizer configuration"):
        loaded = keras.models.load_model(tmp_path / "m.ember")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-7
    )


def test_checkpoint_of_a_model_without_config_warns(tmp_path):
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3)

        def call(self, x, training=None):
            return self.d(x)

    model = Sub()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data()
    cb = keras.callbacks.ModelCheckpoint(str(tmp_path / "ck.ember"), save_weights_only=False)
    with pytest.warns(UserWarning, match="load_model cannot open it"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    with pytest.raises(ValueError, match="without a Keras architecture"):
        keras.models.load_model(tmp_path / "ck.ember")


def test_checkpoint_with_lost_compile_parts_warns(tmp_path):
    model = _model()
    model.compile("sgd", lambda yt, yp: keras.losses.sparse_categorical_crossentropy(yt, yp))
    x, y = _data()
    cb = keras.callbacks.ModelCheckpoint(str(tmp_path / "ck.ember"), save_weights_only=False)
    with pytest.warns(UserWarning, match="the checkpoint does not hold the compile arguments"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])


# -- sparse labels ---------------------------------------------------------------------------
P = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]], np.float32)


@pytest.mark.parametrize("bad", [3, 7, -1])
@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.losses.SparseCategoricalCrossentropy(),
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        lambda: keras.losses.get("sparse_categorical_crossentropy"),
        lambda: keras.losses.sparse_categorical_crossentropy,
    ],
)
def test_sparse_losses_reject_out_of_range_labels(make, bad):
    loss = make()
    y = np.array([0, bad, 1])
    with pytest.raises(ValueError, match=rf"label {bad} is out of range for 3 classes"):
        loss(ember.tensor(y), ember.tensor(P))


@pytest.mark.parametrize("bad", [3, -2])
@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.metrics.SparseCategoricalAccuracy(),
        lambda: keras.metrics.SparseTopKCategoricalAccuracy(k=2),
        lambda: keras.metrics.get("accuracy", "sparse_categorical_crossentropy"),
        lambda: keras.metrics.get("sparse_categorical_accuracy"),
    ],
)
def test_sparse_metrics_reject_out_of_range_labels(make, bad):
    m = make()
    with pytest.raises(ValueError, match=rf"{bad}.*out of range"):
        m.update_state(np.array([0, bad, 1]), P)


def test_fit_with_out_of_range_labels_fails():
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, _ = _data(4)
    with pytest.raises(ValueError, match="label 5 is out of range for 3 classes"):
        model.fit(x, np.array([0, 1, 5, 2]), verbose=0)


def test_non_integer_labels_are_an_error():
    with pytest.raises(ValueError, match="integers"):
        keras.losses.sparse_categorical_crossentropy(ember.tensor([0.0, 1.5, 2.0]), ember.tensor(P))


@pytest.mark.parametrize("ignore", [-1, 1, 7])
@pytest.mark.parametrize("from_logits", [False, True])
def test_ignore_class_matches_keras(ignore, from_logits):
    y = np.array([0, ignore, 2])
    kw = {"ignore_class": ignore, "from_logits": from_logits}
    ours = keras.losses.SparseCategoricalCrossentropy(**kw)(ember.tensor(y), ember.tensor(P))
    ref = K.losses.SparseCategoricalCrossentropy(**kw)(y, P)
    np.testing.assert_allclose(ours.item(), float(ref), rtol=1e-5)
    # other out-of-range labels still fail with ignore_class set
    with pytest.raises(ValueError, match="ignore_class"):
        keras.losses.SparseCategoricalCrossentropy(**kw)(
            ember.tensor(np.array([0, 9 if ignore != 9 else 8, 2])), ember.tensor(P)
        )


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
def test_sparse_loss_values_match_keras(reduction):
    y = np.array([0, 2, 1])
    ours = keras.losses.SparseCategoricalCrossentropy(reduction=reduction)(
        ember.tensor(y), ember.tensor(P)
    )
    ref = K.losses.SparseCategoricalCrossentropy(reduction=reduction)(y, P)
    np.testing.assert_allclose(ours.numpy(), np.asarray(ref), rtol=1e-5)


def test_sparse_metrics_match_keras():
    y = np.array([0, 2, 1])
    for name in ("SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy"):
        kw = {"k": 1} if "TopK" in name else {}
        ours, ref = getattr(keras.metrics, name)(**kw), getattr(K.metrics, name)(**kw)
        ours.update_state(y, P)
        ref.update_state(y, P)
        np.testing.assert_allclose(float(ours.result()), float(ref.result()), rtol=1e-6)


# -- optimizers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("Adam", {"weight_decay": 0.1}),
        ("AdamW", {}),
        ("SGD", {"weight_decay": 0.1, "momentum": 0.9}),
        ("Adagrad", {"weight_decay": 0.05}),
        ("RMSprop", {"weight_decay": 0.05}),
    ],
)
def test_optimizer_steps_with_weight_decay_match_keras(name, kw):
    import torch

    w0 = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    g = np.array([[0.1, 0.2], [-0.3, 0.4]], np.float32)
    kv = K.Variable(w0.copy())
    kopt = getattr(K.optimizers, name)(learning_rate=0.1, **kw)
    p = ember.nn.Parameter(ember.tensor(w0.copy()))
    opt = getattr(keras.optimizers, name)(learning_rate=0.1, **kw)
    opt.build([p])
    for _ in range(3):
        kopt.apply_gradients([(torch.tensor(g), kv)])
        p.grad = ember.tensor(g.copy())
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), np.asarray(kv.numpy()), atol=5e-5)


# -- layer dtype and initializer seeds ----------------------------------------------------------
def test_layer_dtype_float64_computes_and_saves_in_float64(tmp_path):
    L = keras.layers
    model = keras.Sequential(
        [L.Dense(3, activation="relu", dtype="float64", input_shape=(4,)), L.Dense(1)]
    )
    first = model.layers[0]
    assert first.get_weights()[0].dtype == np.float64
    assert first(ember.ones(2, 4)).dtype == ember.float64  # float32 inputs are cast (autocast)
    model.compile("sgd", "mse")
    x = np.ones((4, 4), np.float32)
    model.fit(x, np.ones((4, 1), np.float32), verbose=0)
    model.save(tmp_path / "m.ember")
    loaded = keras.models.load_model(tmp_path / "m.ember")
    assert loaded.layers[0].get_config()["dtype"] == "float64"
    assert loaded.layers[0].get_weights()[0].dtype == np.float64
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(NotImplementedError, match="mixed_float16"):
        L.Dense(2, dtype="mixed_float16")


@pytest.mark.parametrize(
    "name",
    [
        "GlorotUniform",
        "GlorotNormal",
        "HeNormal",
        "HeUniform",
        "LecunNormal",
        "LecunUniform",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "Orthogonal",
    ],
)
def test_seeded_initializers_repeat(name):
    init = getattr(keras.initializers, name)(seed=5)
    a, b = init(ember.empty(6, 4)).numpy(), init(ember.empty(6, 4)).numpy()
    np.testing.assert_array_equal(a, b)
    c = getattr(keras.initializers, name)(seed=6)(ember.empty(6, 4)).numpy()
    assert not np.array_equal(a, c)
    unseeded = getattr(keras.initializers, name)()
    assert not np.array_equal(
        unseeded(ember.empty(6, 4)).numpy(), unseeded(ember.empty(6, 4)).numpy()
    )


def test_ember_optimizer_in_compile_warns_on_save(tmp_path):
    model = _model()
    model.compile(ember.optim.SGD(model.parameters(), lr=0.1), "sparse_categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, verbose=0)
    with pytest.warns(UserWarning, match=r"optimizer \(SGD is not a keras optimizer\)"):
        model.save(tmp_path / "m.ember")


def test_compile_rejects_what_it_would_ignore():
    model = _model()
    with pytest.raises(ValueError, match="weighted_metrics"):  # (a list, tuple or dict)
        model.compile("sgd", "mse", weighted_metrics="mae")
    with pytest.raises(TypeError):
        model.compile("sgd", "mse", not_an_argument=1)


# -- loss-named metrics ------------------------------------------------------------------------
_T1 = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float32)
_B = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]], np.float32)


@pytest.mark.parametrize(
    ("name", "kw", "y", "p"),
    [
        ("SparseCategoricalCrossentropy", {}, np.array([1, 2, 0]), P),
        ("SparseCategoricalCrossentropy", {"from_logits": True}, np.array([1, 2, 0]), P),
        ("SparseCategoricalCrossentropy", {"ignore_class": 2}, np.array([1, 2, 0]), P),
        ("CategoricalCrossentropy", {}, _T1, P),
        ("CategoricalCrossentropy", {"label_smoothing": 0.1}, _T1, P),
        ("BinaryCrossentropy", {}, _B, P),
        ("BinaryCrossentropy", {"from_logits": True}, _B, P),
        ("KLDivergence", {}, _T1 * 0.8 + 0.05, P),
        ("Hinge", {}, _B, P - 0.4),
        ("MeanAbsolutePercentageError", {}, P + 0.3, P),
        ("LogCoshError", {}, _B, P),
        ("CosineSimilarity", {}, _B, P),
        ("RootMeanSquaredError", {}, _B, P),
    ],
)
def test_loss_named_metrics_match_keras(name, kw, y, p):
    ours, ref = getattr(keras.metrics, name)(**kw), getattr(K.metrics, name)(**kw)
    for _ in range(2):  # streaming over two batches
        ours.update_state(y, p)
        ref.update_state(y, p)
    np.testing.assert_allclose(float(ours.result()), float(ref.result()), rtol=1e-5)
    assert type(ours).from_config(ours.get_config()).get_config() == ours.get_config()


def test_sparse_crossentropy_metric_rejects_out_of_range_labels():
    m = keras.metrics.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="label 4 is out of range for 3 classes"):
        m.update_state(np.array([0, 4, 1]), P)
    model = _model()
    model.compile(
        "sgd", "sparse_categorical_crossentropy", metrics=["sparse_categorical_crossentropy"]
    )
    x, y = _data()
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["sparse_categorical_crossentropy"], logs["loss"], rtol=1e-5)


def test_dropout_seed_and_noise_shape():
    x = ember.ones(64, 8)
    a, b = keras.layers.Dropout(0.5, seed=3), keras.layers.Dropout(0.5, seed=3)
    a1, a2 = a(x, training=True).numpy(), a(x, training=True).numpy()
    b1, b2 = b(x, training=True).numpy(), b(x, training=True).numpy()
    np.testing.assert_array_equal(a1, b1)  # the same seed: the same sequence of masks
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)
    assert set(np.unique(a1)) <= {0.0, 2.0}
    shared = keras.layers.Dropout(0.5, noise_shape=(None, 1))(x, training=True).numpy()
    assert np.all(shared == shared[:, :1])  # one draw per row
    np.testing.assert_array_equal(keras.layers.Dropout(0.5, seed=3)(x).numpy(), x.numpy())


def test_training_flag_follows_keras_call_context():
    L = keras.layers
    x = ember.ones(32, 6)
    drop = L.Dropout(0.5)
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())  # direct call: inference
    assert (drop(x, training=True).numpy() == 0).any()
    bn = L.BatchNormalization()
    bn(ember.randn(8, 6) + 3.0)  # inference: the moving statistics stay put
    np.testing.assert_array_equal(bn.get_weights()[2], np.zeros(6, np.float32))
    # an enclosing layer's training= reaches layers called without it (wrapper, subclass)
    td = L.TimeDistributed(L.Dropout(0.5))
    assert (td(ember.ones(4, 3, 8), training=True).numpy() == 0).any()
    np.testing.assert_array_equal(td(ember.ones(4, 3, 8)).numpy(), np.ones((4, 3, 8)))

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.drop = L.Dropout(0.9)

        def call(self, x):
            return self.drop(x)

    net = Net()
    assert (net(x, training=True).numpy() == 0).any()
    np.testing.assert_array_equal(net(x).numpy(), x.numpy())
    ref = K.layers.Dropout(0.9)
    assert np.array_equal(np.asarray(K.ops.convert_to_numpy(ref(x.numpy()))), x.numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.layers.LSTM(4, dropout=0.5, seed=9, return_sequences=True),
        lambda: keras.layers.GRU(4, dropout=0.5, seed=9),
        lambda: keras.layers.MultiHeadAttention(2, 3, dropout=0.5, seed=9),
    ],
)
def test_seeded_layer_dropout_repeats(make):
    x = ember.randn(4, 5, 6)
    outs = []
    for _ in range(2):
        ember.manual_seed(0)  # the same weights
        layer = make()
        args = (x, x) if isinstance(layer, keras.layers.MultiHeadAttention) else (x,)
        outs.append([layer(*args, training=True).detach().numpy() for _ in range(2)])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert not np.array_equal(outs[0][0], outs[0][1])


# -- constraints -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("NonNeg", {}),
        ("MaxNorm", {"max_value": 1.5}),
        ("MaxNorm", {"max_value": 1.0, "axis": 1}),
        ("MinMaxNorm", {"min_value": 1.0, "max_value": 2.0, "rate": 0.5}),
        ("UnitNorm", {"axis": [0, 1]}),
    ],
)
def test_constraints_match_keras(name, kw):
    w = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    ours = getattr(keras.constraints, name)(**kw)
    ref = getattr(K.constraints, name)(**kw)
    np.testing.assert_allclose(
        ours(ember.tensor(w)).numpy(), np.asarray(K.ops.convert_to_numpy(ref(w))), rtol=1e-5
    )
    assert (
        keras.constraints.get(keras.constraints.serialize(ours)).get_config() == ours.get_config()
    )


def test_constraints_hold_after_training_in_keras_layout():
    L, C = keras.layers, keras.constraints
    ember.manual_seed(0)
    model = keras.Sequential(
        [
            L.Conv1D(4, 3, kernel_constraint=C.MaxNorm(0.5, axis=[0, 1]), input_shape=(8, 2)),
            L.LSTM(3, recurrent_constraint=C.UnitNorm(), bias_constraint=C.NonNeg()),
            L.Dense(2, kernel_constraint=C.NonNeg(), bias_constraint=C.MaxNorm(0.1)),
        ]
    )
    model.compile(keras.optimizers.SGD(0.5), "mse")
    rng = np.random.default_rng(0)
    model.fit(
        rng.standard_normal((16, 8, 2)).astype(np.float32),
        rng.standard_normal((16, 2)).astype(np.float32),
        epochs=2,
        batch_size=8,
        verbose=0,
    )
    conv_k, _, _, lstm_r, lstm_b, dense_k, dense_b = model.get_weights()
    assert np.all(np.sqrt((conv_k**2).sum(axis=(0, 1))) <= 0.5 + 1e-5)  # per output filter
    np.testing.assert_allclose(np.sqrt((lstm_r**2).sum(axis=0)), 1.0, rtol=1e-4)
    assert np.all(lstm_b >= 0) and np.all(dense_k >= 0)
    assert np.sqrt((dense_b**2).sum()) <= 0.1 + 1e-6
    again = keras.Sequential.from_config(model.get_config())
    assert isinstance(again.layers[2].kernel_constraint, C.NonNeg)


def test_multi_output_metric_objects_keep_their_names_through_save(tmp_path):
    L = keras.layers
    inp = keras.Input(shape=(4,))
    a = L.Dense(3, activation="softmax", name="a")(inp)
    b = L.Dense(3, activation="softmax", name="b")(inp)
    model = keras.Model(inp, [a, b])
    model.compile(
        "sgd",
        ["sparse_categorical_crossentropy", "sparse_categorical_crossentropy"],
        metrics=[[keras.metrics.SparseCategoricalAccuracy(name="acc")], ["accuracy"]],
    )
    assert model.metrics_names == ["loss", "a_acc", "b_accuracy"]
    model.save(tmp_path / "m.ember")
    assert keras.models.load_model(tmp_path / "m.ember").metrics_names == model.metrics_names


LOSS_FUNCTIONS = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "hinge",
    "kl_divergence",
    "binary_crossentropy",
    "categorical_crossentropy",
]


@pytest.mark.parametrize("name", LOSS_FUNCTIONS)
@pytest.mark.parametrize("shape", [(5,), (3, 4)], ids=["1d", "2d"])
def test_loss_functions_take_numpy_like_keras(name, shape):
    # Keras' loss functions take NumPy arrays and reduce the last axis, 1-D inputs included
    rng = np.random.default_rng(0)
    y_true = rng.uniform(0.1, 1.0, shape)
    y_pred = rng.uniform(0.1, 1.0, shape)
    want = np.asarray(getattr(K.losses, name)(y_true, y_pred))
    got = getattr(keras.losses, name)(y_true, y_pred)
    assert isinstance(got, ember.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)


def test_sparse_crossentropy_function_takes_numpy_like_keras():
    y_true = np.array([3, 0, 9])
    y_pred = np.full((3, 10), 0.1)
    want = np.asarray(K.losses.sparse_categorical_crossentropy(y_true, y_pred))
    got = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    with pytest.raises(ValueError, match="label 10 is out of range for 10 classes"):
        keras.losses.sparse_categorical_crossentropy(np.array([10]), y_pred[:1])


def _accuracy_inputs():
    rng = np.random.default_rng(1)
    y_pred = rng.uniform(0, 1, (8, 6))
    labels = rng.integers(0, 6, 8)
    return labels, np.eye(6)[labels], y_pred


@pytest.mark.parametrize(
    ("name", "kwargs", "sparse"),
    [
        ("sparse_categorical_accuracy", {}, True),
        ("categorical_accuracy", {}, False),
        ("top_k_categorical_accuracy", {"k": 2}, False),
        ("sparse_top_k_categorical_accuracy", {"k": 2}, True),
        ("sparse_top_k_categorical_accuracy", {}, True),
    ],
)
def test_accuracy_functions_match_keras(name, kwargs, sparse):
    labels, onehot, y_pred = _accuracy_inputs()
    y_true = labels if sparse else onehot
    want = np.asarray(getattr(K.metrics, name)(y_true, y_pred, **kwargs))
    got = getattr(keras.metrics, name)(y_true, y_pred, **kwargs)
    np.testing.assert_array_equal(got.numpy(), want)


def test_binary_accuracy_function_matches_keras():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 2, (5, 3)).astype(np.float64)
    y_pred = rng.uniform(0, 1, (5, 3))
    for threshold in (0.5, 0.3):
        want = np.asarray(K.metrics.binary_accuracy(y_true, y_pred, threshold=threshold))
        got = keras.metrics.binary_accuracy(y_true, y_pred, threshold=threshold)
        np.testing.assert_array_equal(got.numpy(), want)


def test_sparse_accuracy_functions_refuse_out_of_range_labels():
    with pytest.raises(ValueError, match="out of range"):
        keras.metrics.sparse_categorical_accuracy([3], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="out of range"):
        keras.metrics.sparse_top_k_categorical_accuracy([-1], [[0.5, 0.5]], k=1)
