"""ember.keras: the Keras API on ember.nn — seed snippet on Digits, layers, functional graphs,
summary, weights in Keras layout, save/load, and step-by-step equality with ember.nn."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import keras, nn


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    ms = pytest.importorskip("sklearn.model_selection")
    d = datasets.load_digits()
    X = (d.data / 16.0).astype(np.float32)
    return ms.train_test_split(X, d.target, test_size=0.2, random_state=0, stratify=d.target)


def _seed_model(keras_mod):
    model = keras_mod.models.Sequential(
        [
            keras_mod.layers.Dense(128, activation="relu"),
            keras_mod.layers.Dropout(0.2),
            keras_mod.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_seed_snippet_digits(digits):
    Xtr, Xte, ytr, yte = digits
    ember.manual_seed(0)
    model = _seed_model(keras)
    h = model.fit(Xtr, ytr, epochs=20, validation_data=(Xte, yte), verbose=0)
    assert len(h.history["val_accuracy"]) == 20
    print(f"\nseed snippet Digits val_accuracy: {h.history['val_accuracy'][-1]:.4f}")
    assert h.history["val_accuracy"][-1] >= 0.95, h.history["val_accuracy"]
    loss, acc = model.evaluate(Xte, yte, verbose=0)
    assert acc >= 0.95 and np.isclose(loss, h.history["val_loss"][-1], rtol=1e-6)
    pred = model.predict(Xte, verbose=0)
    assert pred.shape == (len(Xte), 10)
    np.testing.assert_allclose(pred.sum(1), 1.0, rtol=1e-5)
    assert np.mean(pred.argmax(1) == yte) == pytest.approx(acc)


def test_seed_snippet_import_ember_as_tf(digits):
    import ember as tf

    Xtr, Xte, ytr, yte = digits
    tf.manual_seed(1)
    model = _seed_model(tf.keras)
    h = model.fit(Xtr, ytr, epochs=20, validation_data=(Xte, yte), verbose=0)
    assert h.history["val_accuracy"][-1] >= 0.95
    assert isinstance(model, tf.keras.Model) and isinstance(model, nn.Module)


def test_validation_split_and_history(digits):
    Xtr, _, ytr, _ = digits
    ember.manual_seed(0)
    model = _seed_model(keras)
    h = model.fit(Xtr[:400], ytr[:400], epochs=2, batch_size=64, validation_split=0.25, verbose=0)
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert h.epoch == [0, 1]


@pytest.mark.slow
def test_conv2d_digits(digits):
    Xtr, Xte, ytr, yte = digits
    ember.manual_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [
            L.Conv2D(32, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(64, activation="relu"),
            L.Dropout(0.2),
            L.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(Xtr.reshape(-1, 8, 8, 1), ytr, epochs=20, batch_size=32, verbose=0)
    _, acc = model.evaluate(Xte.reshape(-1, 8, 8, 1), yte, verbose=0)
    print(f"\nConv2D Digits test accuracy: {acc:.4f}")
    assert acc >= 0.97, acc


def test_keras_model_matches_nn_model_step_by_step():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 12)).astype(np.float32)
    y = rng.integers(0, 4, size=64)
    ember.manual_seed(0)
    keras_losses = []

    class Recording(keras.Sequential):
        def train_step(self, data):  # the overridable step: record each batch's loss
            loss = super().train_step(data)
            keras_losses.append(float(loss.item()))
            return loss

    km = Recording(
        [keras.layers.Dense(16, activation="relu", input_shape=(12,)), keras.layers.Dense(4)]
    )
    # Keras' Adam adds epsilon to sqrt(v) with the bias correction folded into the rate,
    # torch's to sqrt(v_hat): the two steps agree only for a negligible epsilon
    km.compile(
        keras.optimizers.Adam(1e-2, epsilon=1e-12),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tm = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    w = km.get_weights()
    with ember.no_grad():
        tm[0].weight.copy_(ember.tensor(w[0].T.copy()))
        tm[0].bias.copy_(ember.tensor(w[1]))
        tm[2].weight.copy_(ember.tensor(w[2].T.copy()))
        tm[2].bias.copy_(ember.tensor(w[3]))
    opt = ember.optim.Adam(tm.parameters(), lr=1e-2, eps=1e-12)
    km.fit(X, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    torch_losses = []
    for _ in range(2):
        for i in range(0, 64, 16):
            loss = nn.functional.cross_entropy(
                tm(ember.tensor(X[i : i + 16])), ember.tensor(y[i : i + 16])
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            torch_losses.append(float(loss.item()))
    np.testing.assert_allclose(keras_losses, torch_losses, rtol=1e-5)
    np.testing.assert_allclose(
        km.get_weights()[0], tm[0].weight.detach().numpy().T, rtol=1e-5, atol=1e-6
    )


def test_softmax_probability_loss_is_clipped_nll():
    p = ember.tensor([[1.0, 0.0], [0.3, 0.7]])
    loss = keras.losses.sparse_categorical_crossentropy(ember.tensor([1, 1]), p)
    eps = 1e-7
    np.testing.assert_allclose(loss.numpy(), [-np.log(eps), -np.log(0.7)], rtol=1e-5)
    logits = ember.randn(5, 3)
    lab = ember.tensor([0, 1, 2, 1, 0])
    a = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(lab, logits)
    b = keras.losses.SparseCategoricalCrossentropy()(lab, ember.softmax(logits, dim=-1))
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-5)
    onehot = np.eye(3, dtype=np.float32)[lab.numpy()]
    c = keras.losses.get("categorical_crossentropy")(onehot, ember.softmax(logits, dim=-1))
    np.testing.assert_allclose(a.item(), c.item(), rtol=1e-5)


def test_summary_counts_match_real_parameter_counts():
    L = keras.layers
    model = keras.Sequential(
        [
            L.Conv2D(4, 3, input_shape=(8, 8, 2)),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(5),
            L.Dropout(0.1),
            L.Dense(3),
        ]
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    bn = model.layers[1].bn
    non_trainable = bn.running_mean.numel() + bn.running_var.numel()
    assert f"Total params: {trainable + non_trainable:,}" in text
    assert f"Trainable params: {trainable:,}" in text
    assert f"Non-trainable params: {non_trainable:,}" in text
    assert "(None, 6, 6, 4)" in text and "(None, 3)" in text
    assert model.count_params() == trainable + non_trainable
    assert trainable == (3 * 3 * 2 * 4 + 4) + 8 + (144 * 5 + 5) + (5 * 3 + 3)


def test_summary_counts_recurrent_and_functional():
    inp = keras.Input(shape=(5, 3))
    h = keras.layers.LSTM(4, return_sequences=True)(inp)
    out = keras.layers.Dense(2)(keras.layers.GRU(3)(h))
    model = keras.Model(inp, out)
    lines = []
    model.summary(print_fn=lines.append)
    # Keras' counts: LSTM 4*4*(3+4+1) (one bias), GRU 3*3*(4+3+2) (two bias rows), Dense 8
    total = 128 + 81 + 8
    assert total == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert f"Total params: {total:,}" in "\n".join(lines)
    assert model.count_params() == total
    assert "(InputLayer)" in lines[4] and "(None, 5, 3)" in lines[4]


def test_summary_unbuilt_model_errors():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not yet been built"):
        model.summary()


def test_weights_in_keras_layout():
    d = keras.layers.Dense(3)
    d(ember.ones(2, 5))
    k, b = d.get_weights()
    assert k.shape == (5, 3) and b.shape == (3,)
    np.testing.assert_array_equal(k, d.linear.weight.detach().numpy().T)
    new = [np.arange(15, dtype=np.float32).reshape(5, 3), np.ones(3, np.float32)]
    d.set_weights(new)
    x = np.random.default_rng(0).normal(size=(2, 5)).astype(np.float32)
    np.testing.assert_allclose(d(ember.tensor(x)).detach().numpy(), x @ new[0] + 1, rtol=1e-5)
    with pytest.raises(ValueError):
        d.set_weights([new[0].T, new[1]])


def test_conv2d_channels_last_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(2, 7, 7, 3)).astype(np.float32)
    for padding, strides in (("valid", 1), ("same", 1), ("same", 2)):
        conv = keras.layers.Conv2D(4, 3, strides=strides, padding=padding)
        y = conv(ember.tensor(x)).detach().numpy()
        k, b = conv.get_weights()
        assert k.shape == (3, 3, 3, 4)
        xt = torch.tensor(x).permute(0, 3, 1, 2)
        if padding == "same":
            pad = 1 if strides == 1 else 0
            if strides == 2:  # TF: 7 -> 4 outputs, total pad 2 -> (1, 1)
                xt = torch.nn.functional.pad(xt, (1, 1, 1, 1))
        else:
            pad = 0
        ref = torch.nn.functional.conv2d(
            xt, torch.tensor(k).permute(3, 2, 0, 1), torch.tensor(b), stride=strides, padding=pad
        )
        np.testing.assert_allclose(y, ref.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)
    cf = keras.layers.Conv2D(2, 3, data_format="channels_first", padding="same")
    assert tuple(cf(ember.zeros(1, 3, 5, 5)).shape) == (1, 2, 5, 5)


def test_layer_output_shapes():
    L = keras.layers
    x = ember.randn(2, 6, 4)
    assert tuple(L.LSTM(5)(x).shape) == (2, 5)
    seq, h, c = L.LSTM(5, return_sequences=True, return_state=True)(x)
    assert tuple(seq.shape) == (2, 6, 5) and tuple(h.shape) == (2, 5) and tuple(c.shape) == (2, 5)
    np.testing.assert_allclose(seq[:, -1].detach().numpy(), h.detach().numpy(), rtol=1e-6)
    assert tuple(L.GRU(3, return_sequences=True)(x).shape) == (2, 6, 3)
    _out, hs = L.GRU(3, return_state=True)(x)
    assert tuple(hs.shape) == (2, 3)
    assert tuple(L.SimpleRNN(7)(x).shape) == (2, 7)
    assert tuple(L.Bidirectional(L.LSTM(5, return_sequences=True))(x).shape) == (2, 6, 10)
    assert tuple(L.Bidirectional(L.GRU(5), merge_mode="sum")(x).shape) == (2, 5)
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3)
    o, w = mha(x, x, return_attention_scores=True)
    assert tuple(o.shape) == (2, 6, 4) and tuple(w.shape) == (2, 2, 6, 6)
    assert tuple(L.Conv1D(8, 3, padding="same")(x).shape) == (2, 6, 8)
    assert tuple(L.Embedding(10, 4)(ember.tensor([[1, 2, 3]])).shape) == (1, 3, 4)
    img = ember.randn(2, 8, 8, 3)
    assert tuple(L.MaxPooling2D()(img).shape) == (2, 4, 4, 3)
    assert tuple(L.AveragePooling2D(2)(img).shape) == (2, 4, 4, 3)
    assert tuple(L.GlobalAveragePooling2D()(img).shape) == (2, 3)
    assert tuple(L.Reshape((4, 48))(img).shape) == (2, 4, 48)
    assert tuple(L.LayerNormalization()(x).shape) == (2, 6, 4)
    assert tuple(L.Activation("gelu")(x).shape) == (2, 6, 4)


def test_lstm_gru_match_torch_with_keras_weights():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    lstm = keras.layers.LSTM(4, return_sequences=True)
    y = lstm(ember.tensor(x)).detach().numpy()
    k, r, b = lstm.get_weights()
    assert k.shape == (3, 16) and r.shape == (4, 16) and b.shape == (16,)
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.tensor(k.T))
        ref.weight_hh_l0.copy_(torch.tensor(r.T))
        ref.bias_ih_l0.copy_(torch.tensor(b))
        ref.bias_hh_l0.zero_()
    np.testing.assert_allclose(y, ref(torch.tensor(x))[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    lstm.set_weights([k, r, b])
    np.testing.assert_allclose(lstm(ember.tensor(x)).detach().numpy(), y, rtol=1e-5, atol=1e-6)
    gru = keras.layers.GRU(4)
    gru(ember.tensor(x))
    w = gru.get_weights()
    assert [a.shape for a in w] == [(3, 12), (4, 12), (2, 12)]
    before = gru(ember.tensor(x)).detach().numpy()
    gru.set_weights(w)
    np.testing.assert_allclose(gru(ember.tensor(x)).detach().numpy(), before, rtol=1e-5, atol=1e-6)


def test_batchnorm_keras_momentum_semantics():
    bn = keras.layers.BatchNormalization()
    x = ember.randn(16, 3) * 2 + 5
    bn(x, training=True)
    assert bn.bn.momentum == pytest.approx(0.01) and bn.bn.eps == pytest.approx(1e-3)
    mean = x.numpy().mean(0)
    np.testing.assert_allclose(bn.get_weights()[2], 0.01 * mean, rtol=1e-5)
    y = bn(x, training=False)
    assert tuple(y.shape) == (16, 3)
    img = keras.layers.BatchNormalization()(ember.randn(2, 4, 4, 5), training=True)
    assert tuple(img.shape) == (2, 4, 4, 5)


def test_functional_multi_io_and_shared_layers():
    a = keras.Input(shape=(4,), name="a")
    b = keras.Input(shape=(4,), name="b")
    shared = keras.layers.Dense(8, activation="relu")
    ha, hb = shared(a), shared(b)
    merged = keras.layers.Concatenate()([ha, hb])
    out1 = keras.layers.Dense(3, activation="softmax", name="cls")(merged)
    out2 = keras.layers.Dense(1, name="reg")(keras.layers.Add()([ha, hb]))
    model = keras.Model(inputs=[a, b], outputs=[out1, out2])
    assert model.output_shape == [(None, 3), (None, 1)]
    assert sum(1 for lyr in model.layers if lyr is shared) == 1
    rng = np.random.default_rng(0)
    xa, xb = (
        rng.normal(size=(32, 4)).astype(np.float32),
        rng.normal(size=(32, 4)).astype(np.float32),
    )
    y1, y2 = rng.integers(0, 3, 32), rng.normal(size=(32, 1)).astype(np.float32)
    model.compile(
        "adam",
        loss=["sparse_categorical_crossentropy", "mse"],
        loss_weights=[1.0, 0.5],
        metrics={"cls": ["accuracy"]},
    )
    h = model.fit([xa, xb], [y1, y2], epochs=2, batch_size=8, verbose=0)
    assert "cls_accuracy" in h.history and len(h.history["loss"]) == 2
    p1, p2 = model.predict([xa, xb], verbose=0)
    assert p1.shape == (32, 3) and p2.shape == (32, 1)
    d1, _ = model.predict({"b": xb, "a": xa}, verbose=0)
    np.testing.assert_array_equal(d1, p1)
    # shared weights: swapping the inputs swaps the branch activations
    cfg = model.get_config()
    clone = keras.Model.from_config(cfg)
    clone.set_weights(model.get_weights())
    q1, q2 = clone.predict([xa, xb], verbose=0)
    np.testing.assert_allclose(q1, p1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q2, p2, rtol=1e-5, atol=1e-6)
    model.fit({"a": xa, "b": xb}, {"cls": y1, "reg": y2}, epochs=1, verbose=0)


def test_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = keras.layers.Dense(8, activation="relu")
            self.d2 = keras.layers.Dense(2)

        def call(self, x, training=None):
            return self.d2(self.d1(x))

    m = Net()
    m.compile(keras.optimizers.SGD(0.1), keras.losses.MeanSquaredError())
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    h = m.fit(x, x[:, :2] * 2, epochs=3, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert [w.shape for w in m.get_weights()] == [(3, 8), (8,), (8, 2), (2,)]


def test_save_load_round_trip(tmp_path):
    ember.manual_seed(0)
    L = keras.layers
    model = keras.Sequential(
        [
            L.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 1)),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(4, "softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(16, 6, 6, 1)).astype(np.float32)
    y = np.arange(16) % 4
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "m.ember"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.learning_rate == pytest.approx(1e-3)
    h1 = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    h2 = loaded.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-6)
    # functional
    inp = keras.Input(shape=(5,))
    out = L.Dense(2)(L.Dense(3, activation="tanh")(inp))
    fm = keras.Model(inp, out)
    fm.save(tmp_path / "f.ember")
    fl = keras.models.load_model(tmp_path / "f.ember", compile=False)
    xf = np.ones((2, 5), np.float32)
    np.testing.assert_array_equal(fl.predict(xf, verbose=0), fm.predict(xf, verbose=0))


def test_load_corrupted_model_file_errors(tmp_path):
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    path = tmp_path / "m.ember"
    model.save(path)
    data = bytearray(path.read_bytes())
    bad = tmp_path / "bad.ember"
    bad.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="corrupted or not an ember model file"):
        keras.models.load_model(bad)
    junk = tmp_path / "junk.ember"
    junk.write_bytes(b"\x00not a model at all" * 10)
    with pytest.raises(ValueError, match="bad.ember|junk.ember"):
        keras.models.load_model(junk)
    with pytest.raises(FileNotFoundError):
        keras.models.load_model(tmp_path / "missing.ember")


def test_layer_config_round_trip():
    L = keras.layers
    for layer in (
        L.Dense(3, activation="relu", kernel_initializer="he_normal"),
        L.Conv2D(4, (3, 3), strides=2, padding="same"),
        L.Dropout(0.3),
        L.LSTM(4, return_sequences=True),
        L.Bidirectional(L.GRU(2)),
        L.BatchNormalization(momentum=0.9),
        L.MultiHeadAttention(2, 4),
    ):
        cfg = layer.get_config()
        again = type(layer).from_config(cfg)
        assert again.get_config() == cfg


def test_compile_names_and_errors():
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    for opt in ("adam", "sgd", "rmsprop", "adamw", "adagrad"):
        model.compile(opt, "mse")
        assert isinstance(model.optimizer, keras.optimizers.Optimizer)
    for loss in ("mae", "huber", "binary_crossentropy", "mse"):
        model.compile("sgd", loss)
        model.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile("sgd", "nope")
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile("nope", "mse")
    with pytest.raises(RuntimeError, match="compile"):
        keras.Sequential([keras.layers.Dense(1)]).fit(np.ones((2, 2)), np.ones((2, 1)))


def test_fit_on_ember_data_and_class_weight():
    from ember.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = keras.Sequential([keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    ds = TensorDataset(ember.tensor(X), ember.tensor(y))
    h = model.fit(DataLoader(ds, batch_size=8, shuffle=True), epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2
    h = model.fit(ds, epochs=1, verbose=0, batch_size=10)
    h = model.fit(
        X, y, class_weight={0: 1.0, 1: 3.0}, sample_weight=np.ones(40), epochs=1, verbose=0
    )
    assert np.isfinite(h.history["loss"][0])
    assert model.evaluate(ember.tensor(X), ember.tensor(y), return_dict=True, verbose=0).keys() == {
        "loss",
        "accuracy",
    }


def test_sequential_accepts_plain_nn_modules():
    model = keras.Sequential(
        [keras.Input(shape=(4,)), nn.Linear(4, 3), nn.ReLU(), keras.layers.Dense(2)]
    )
    lines = []
    model.summary(print_fn=lines.append)
    assert f"Total params: {4 * 3 + 3 + 3 * 2 + 2:,}" in "\n".join(lines)
    assert [w.shape for w in model.get_weights()] == [(3, 4), (3,), (3, 2), (2,)]
    model.compile("sgd", "mse")
    model.fit(np.ones((4, 4), np.float32), np.zeros((4, 2), np.float32), verbose=0)


def test_keras_conv_model_matches_nn_model_step_by_step():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(24, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=24)
    losses_k = []

    class Recording(keras.Sequential):
        def train_step(self, data):
            loss = super().train_step(data)
            losses_k.append(float(loss.item()))
            return loss

    ember.manual_seed(0)
    km = Recording(
        [
            keras.layers.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    km.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    k, b, w, c = km.get_weights()
    conv, lin = nn.Conv2d(2, 4, 3), nn.Linear(64, 3)
    with ember.no_grad():
        conv.weight.copy_(ember.tensor(k.transpose(3, 2, 0, 1).copy()))
        conv.bias.copy_(ember.tensor(b))
        lin.weight.copy_(ember.tensor(w.T.copy()))
        lin.bias.copy_(ember.tensor(c))
    params = list(conv.parameters()) + list(lin.parameters())
    opt = ember.optim.SGD(params, lr=0.1, momentum=0.9)
    km.fit(X, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    losses_n = []
    for _ in range(2):
        for i in range(0, 24, 8):
            xb = ember.tensor(X[i : i + 8]).permute(0, 3, 1, 2)
            h = conv(xb).relu().permute(0, 2, 3, 1).reshape(8, -1)  # Keras flattens NHWC
            p = ember.softmax(lin(h), dim=-1)
            loss = nn.functional.nll_loss(p.clamp(1e-7, 1 - 1e-7).log(), ember.tensor(y[i : i + 8]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses_n.append(float(loss.item()))
    np.testing.assert_allclose(losses_k, losses_n, rtol=1e-5)


def test_custom_layer_with_add_weight_and_rnn_dropout():
    class Scale(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight("w", (input_shape[-1], self.units), "he_normal")
            self.b = self.add_weight("b", (self.units,), "zeros", trainable=False)

        def call(self, x):
            return x @ self.w + self.b

    layer = Scale(3)
    out = layer(ember.ones(2, 200))
    assert tuple(out.shape) == (2, 3)
    assert [w.shape for w in layer.get_weights()] == [(200, 3), (3,)]
    assert len(layer.trainable_weights) == 1 and len(layer.non_trainable_weights) == 1
    std = layer.w.detach().numpy().std()
    assert 0.7 * np.sqrt(2 / 200) < std < 1.3 * np.sqrt(2 / 200)  # fan_in from the (in, out) shape
    model = keras.Sequential([keras.layers.LSTM(4, dropout=0.5, input_shape=(5, 3)), Scale(2)])
    model.compile("adam", "mse")
    x = np.ones((8, 5, 3), np.float32)
    model.fit(x, np.zeros((8, 2), np.float32), verbose=0)
    a, b = model.predict(x, verbose=0), model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)  # no dropout at inference
    assert keras.utils.to_categorical([1, 0], 3).tolist() == [[0, 1, 0], [1, 0, 0]]


def test_variable_length_inputs_keep_unknown_dims():
    L = keras.layers
    inp = keras.Input(shape=(None,), dtype="int64")
    seq = L.LSTM(3, return_sequences=True)(L.Embedding(10, 4)(inp))
    assert seq.shape == (None, None, 3)
    model = keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling1D()(seq)))
    assert model.output_shape == (None, 2)
    for t in (5, 9):
        assert model.predict(np.ones((3, t), np.int64), verbose=0).shape == (3, 2)


def test_more_layers_shapes_and_configs():
    L = keras.layers
    x = ember.randn(2, 5, 5, 3)
    assert tuple(L.Conv2DTranspose(4, 3, strides=2, padding="same")(x).shape) == (2, 10, 10, 4)
    assert tuple(L.Conv2DTranspose(4, 3, strides=2)(x).shape) == (2, 11, 11, 4)
    assert tuple(L.UpSampling2D()(x).shape) == (2, 10, 10, 3)
    assert tuple(L.ZeroPadding2D(1)(x).shape) == (2, 7, 7, 3)
    assert tuple(L.TimeDistributed(L.Dense(7))(ember.randn(2, 4, 3)).shape) == (2, 4, 7)
    np.testing.assert_allclose(L.Rescaling(0.5, 1.0)(ember.ones(2)).numpy(), [1.5, 1.5])
    np.testing.assert_allclose(L.ReLU(max_value=1.0)(ember.tensor([-1.0, 3.0])).numpy(), [0.0, 1.0])
    for layer in (
        L.Conv2DTranspose(2, 3, strides=2, padding="same"),
        L.UpSampling2D(3),
        L.TimeDistributed(L.Dense(2)),
        L.LeakyReLU(0.1),
        L.Rescaling(1 / 255),
    ):
        cfg = layer.get_config()
        assert type(layer).from_config(cfg).get_config() == cfg


def test_regularizers_add_to_the_loss_and_serialize():
    L = keras.layers
    ember.manual_seed(0)
    model = keras.Sequential(
        [
            L.Dense(3, input_shape=(4,), kernel_regularizer=keras.regularizers.l2(0.1)),
            L.Dense(1, kernel_regularizer="l1"),
        ]
    )
    model.compile("sgd", "mse")
    x, y = np.ones((2, 4), np.float32), np.zeros((2, 1), np.float32)
    k1, _, k2, _ = model.get_weights()
    expect = 0.1 * (k1**2).sum() + 0.01 * np.abs(k2).sum()
    assert len(model.losses) == 2
    np.testing.assert_allclose(sum(t.item() for t in model.losses), expect, rtol=1e-5)
    pred = model.predict(x, verbose=0)
    base = float(((pred - y) ** 2).mean())
    loss = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, base + expect, rtol=1e-5)
    cfg = model.get_config()
    again = keras.Sequential.from_config(cfg)
    assert isinstance(again.layers[0]._regularized[0][0], keras.regularizers.L2)
