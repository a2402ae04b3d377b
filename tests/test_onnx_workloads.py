"""The must-show list exports to ONNX: the five reference workloads (``bench/workloads.py``),
the written-out-attention GPT, the Keras examples and other ``ember.keras`` models, and the
YAML examples built by ``ember.cli``.

Each file passes ``onnx.checker.check_model(full_check=True)``; onnxruntime's outputs equal
Ember's (rel 1e-4, float32) at three batch sizes of one dynamic-batch file, and the file
imported back with ``ember.onnx.load`` gives the same outputs. Small configurations run in
the quick suite, the full-size workloads under ``slow``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import nn

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ember[onnx]')")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install 'ember[onnx]')"
)

import ember.onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "examples"))
import workloads  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
BATCHES = (2, 3, 5)


def _close(got, want):
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def check_must_show(model, make, path, batches=BATCHES):
    """Export ``model`` with a dynamic batch to ``path`` and check it against Ember."""
    model.eval()
    proto = ember.onnx.export(
        model, (ember.tensor(make(batches[0])),), path, input_names=["x"],
        output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
    )  # fmt: skip
    onnx.checker.check_model(str(path), full_check=True)
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = ember.onnx.load(path)
    for b in batches:
        x = make(b)
        with ember.no_grad():
            want = model(ember.tensor(x)).numpy()
            again = back(ember.tensor(x)).numpy()
        (got,) = sess.run(None, {"x": x})
        _close(got, want)
        _close(again, want)
    return proto


def _randomize_bn(model, seed=1):
    """Running statistics that are not 0/1, so eval-mode batch norm is really checked."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.running_mean.shape[0]
            m.running_mean.copy_(ember.tensor(rng.standard_normal(c).astype(np.float32)))
            m.running_var.copy_(ember.tensor(rng.uniform(0.5, 2, c).astype(np.float32)))


def _tiled(x):
    def make(b):
        reps = -(-b // x.shape[0])
        return np.ascontiguousarray(np.concatenate([x] * reps)[:b])

    return make


WORKLOADS = ["mlp", "lenet", "resnet", "lstm", "gpt", "gpt_written"]


@pytest.mark.parametrize("name", WORKLOADS)
def test_reference_workload_exports(name, tmp_path):
    model, _, batch, _ = workloads.build(ember, name, small=True, dropout=0.2)
    _randomize_bn(model)
    x, _ = batch()
    proto = check_must_show(model, _tiled(x), tmp_path / f"{name}.onnx")
    if name == "gpt_written":  # attention written out, not the fused op
        ops = {n.op_type for n in proto.graph.node}
        assert {"MatMul", "Softmax"} <= ops


@pytest.mark.slow
@pytest.mark.parametrize("name", WORKLOADS)
def test_reference_workload_exports_full_size(name, tmp_path):
    model, _, batch, _ = workloads.build(ember, name, small=False, dropout=0.2)
    _randomize_bn(model)
    x, _ = batch()
    check_must_show(model, _tiled(x[:5]), tmp_path / f"{name}.onnx")


# -- Keras -------------------------------------------------------------------------------------


def _keras_rnn():
    from ember import keras

    return keras.Sequential([
        keras.Input((7,), dtype="int64"), keras.layers.Embedding(30, 8),
        keras.layers.LSTM(12, return_sequences=True), keras.layers.GRU(6),
        keras.layers.Dense(4, activation="softmax"),
    ])  # fmt: skip


def _keras_convnet():
    from ember import keras

    return keras.Sequential([
        keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, padding="same"), keras.layers.LeakyReLU(),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.3), keras.layers.Dense(3),
    ])  # fmt: skip


def _keras_functional_residual():
    from ember import keras

    inp = keras.Input((10,))
    h = keras.layers.Dense(16, activation="gelu")(inp)
    h2 = keras.layers.LayerNormalization()(keras.layers.Dense(16)(h))
    out = keras.layers.Dense(5)(keras.layers.Add()([h, h2]))
    return keras.Model(inp, out)


KERAS = {
    "sequential_cnn": ((8, 8, 1), "float"),
    "functional_mlp": ((8, 8, 1), "float"),
    "rnn": ((7,), "ids"),
    "convnet_bn": ((8, 8, 2), "float"),
    "functional_residual": ((10,), "float"),
}


@pytest.mark.parametrize("which", sorted(KERAS))
def test_keras_models_export(which, tmp_path):
    import keras_style

    ember.manual_seed(0)
    builders = {
        "rnn": _keras_rnn, "convnet_bn": _keras_convnet,
        "functional_residual": _keras_functional_residual,
    }  # fmt: skip
    model = builders[which]() if which in builders else getattr(keras_style, which)()
    shape, kind = KERAS[which]
    rng = np.random.default_rng(0)
    if kind == "ids":
        x = rng.integers(0, 30, (5, *shape)).astype(np.int64)
    else:
        x = rng.uniform(0, 1, (5, *shape)).astype(np.float32)
    net = getattr(model, "module", model)
    _randomize_bn(net if isinstance(net, nn.Module) else model)
    check_must_show(model, _tiled(x), tmp_path / f"{which}.onnx")


# -- the YAML examples, built the way ``ember train`` builds them ------------------------------


@pytest.mark.parametrize("config", ["digits_cnn.yaml", "digits_mlp.yaml", "char_lstm.yaml"])
def test_yaml_examples_export(config, tmp_path):
    from ember.cli.build import build_model
    from ember.cli.config import load_config

    ember.manual_seed(0)
    path = ROOT / "examples" / config
    cfg = load_config(str(path))
    rng = np.random.default_rng(0)
    if config == "char_lstm.yaml":
        model = build_model(cfg, None, num_classes=40, path=str(path))
        x = rng.integers(0, 40, (5, 12)).astype(np.int64)
    else:
        model = build_model(cfg, (1, 8, 8), num_classes=10, path=str(path))
        x = rng.uniform(0, 16, (5, 1, 8, 8)).astype(np.float32)
    _randomize_bn(model)
    check_must_show(model, _tiled(x), tmp_path / f"{config}.onnx")
