"""``ember export``: YAML examples trained for one short epoch, exported as saved models (with
their preprocessing), for ember_lite and to ONNX; outputs equal the trained model's; errors."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

import ember
import ember.export
from ember.cli import run
from ember.cli.main import main

pytest.importorskip("yaml")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-5, 1e-5


def _train(tmp, example, *sets):
    out = tmp / "run"
    args = ["train", os.path.join(ROOT, "examples", example), "--quiet"]
    for s in ("solver.epochs=1", f"snapshot.dir={out}", *sets):
        args += ["--set", s]
    assert main(args) == 0
    return str(out / "model.ember")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("digits"), "digits_mlp.yaml")


@pytest.fixture(scope="module")
def chars(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("chars"), "char_lstm.yaml", "model.zoo.hidden=16")


def _digits_raw(n):
    from sklearn.datasets import load_digits

    return load_digits().data[:n]  # raw pixels 0..16, as `ember predict` reads them


def _reference(model_path, x):
    model, _, _ = run.load_model(model_path)
    with ember.no_grad():
        out = model(ember.from_numpy(x))
    return out if isinstance(out, (tuple, list)) else (out,)


def test_saved_from_config_with_preprocessing(digits, tmp_path, capsys):
    cfg_path = tmp_path / "digits.yaml"
    run_dir = os.path.dirname(digits)
    # the example itself, its run folder where the fixture trained it
    text = Path(ROOT, "examples", "digits_mlp.yaml").read_text()
    cfg_path.write_text(text.replace("snapshot:\n", f"snapshot:\n  dir: {run_dir}\n"))
    out = tmp_path / "saved"
    assert main(["export", str(cfg_path), "--format", "saved", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    m = ember.export.load(out)
    sig = m.signatures["serving_default"]
    assert [s.to_json() for s in sig.inputs] == [
        {"name": "x", "dtype": "float32", "shape": [None, 1, 8, 8]}
    ]
    pre = m.preprocessing
    assert pre["kind"] == "ember.cli" and pre["dataset"] == "Digits"
    assert pre["raw"]["scale"] == 1 / 16
    raw = _digits_raw(7)
    x = m.preprocess(raw)
    np.testing.assert_allclose(x.reshape(7, 64), (raw / 16).astype(np.float32), 1e-7)
    for b in (1, 3, 7):
        got = sig.run({"x": x[:b]})["output_0"]
        np.testing.assert_allclose(got, _reference(digits, x[:b])[0].numpy(), RTOL, ATOL)
    # the predictions `ember predict` makes from the same raw file
    np.save(tmp_path / "raw.npy", raw)
    pred = run.predict(digits, str(tmp_path / "raw.npy"))
    np.testing.assert_array_equal(sig.run({"x": x})["output_0"].argmax(1), pred["labels"])


def test_saved_default_output_and_force(digits, capsys):
    out = os.path.join(os.path.dirname(digits), "model_saved")
    assert main(["export", digits, "--format", "saved"]) == 0
    assert os.path.isfile(os.path.join(out, "saved_model.json"))
    capsys.readouterr()
    assert main(["export", digits, "--format", "saved"]) == 2
    assert "exists (use --force to replace it)" in capsys.readouterr().err
    assert main(["export", digits, "--format", "saved", "--force"]) == 0
    ember.export.load(out)
    assert not [f for f in os.listdir(os.path.dirname(digits)) if f.startswith(".")]


def test_lite(digits, tmp_path, capsys):
    out = tmp_path / "lite"
    assert main(["export", digits, "--format", "lite", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    x = ember.export.load(out).preprocess(_digits_raw(5))
    if importlib.util.find_spec("ember_lite") is not None:
        import ember_lite

        assert "checked in ember_lite" in said
        got = ember_lite.load(str(out)).signatures["serving_default"].run({"x": x})["output_0"]
    else:
        assert "ember_lite is not installed here: not run" in said
        got = ember.export.load(out).signatures["serving_default"].run({"x": x})["output_0"]
    np.testing.assert_allclose(got, _reference(digits, x)[0].numpy(), 1e-4, 1e-5)


def test_lstm_token_model(chars, tmp_path):
    out = tmp_path / "saved"
    assert main(["export", chars, "--format", "saved", "-o", str(out)]) == 0
    m = ember.export.load(out)
    spec = m.signatures["serving_default"].inputs[0]
    assert spec.dtype == "int64" and spec.shape[0] is None
    assert m.preprocessing["vocab"] and m.preprocessing["level"] == "char"
    rng = np.random.default_rng(0)
    for b in (1, 2, 5):
        ids = rng.integers(0, len(m.preprocessing["vocab"]), (b, *spec.shape[1:]))
        got = m(ember.from_numpy(ids))
        got = got if isinstance(got, (tuple, list)) else (got,)
        ref = _reference(chars, ids)
        np.testing.assert_allclose(got[0].numpy(), ref[0].numpy(), RTOL, ATOL)


def test_onnx(digits, chars, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    for path, name in ((digits, "d.onnx"), (chars, "c.onnx")):
        out = tmp_path / name
        assert main(["export", path, "--format", "onnx", "-o", str(out)]) == 0
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        assert inp.name == "x" and isinstance(inp.shape[0], str)  # dynamic batch
        _, _, spec = run.load_model(path)
        rng = np.random.default_rng(1)
        for b in (1, 3, 6):
            if spec["dtype"] == "int64":
                x = rng.integers(0, spec["num_classes"], (b, *spec["shape"]))
            else:
                x = rng.random((b, *spec["shape"]), dtype=np.float32)
            got = sess.run(None, {"x": x})[0]
            np.testing.assert_allclose(got, _reference(path, x)[0].numpy(), 1e-4, 1e-5)


def test_int8(digits, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    saved = tmp_path / "f"
    assert main(["export", digits, "--format", "saved", "-o", str(saved)]) == 0
    x = np.asarray(ember.export.load(saved).preprocess(_digits_raw(200)), np.float32)
    out = tmp_path / "q.onnx"
    code = main(
        ["export", digits, "--format", "onnx", "--int8", "--calibrate", "64", "-o", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    ref = _reference(digits, x)[0].numpy()
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9
    assert "QDQ int8" in capsys.readouterr().out


@pytest.fixture(scope="module")
def digits_cnn(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("digits_cnn"), "digits_cnn.yaml")


def test_int8_saved_and_lite(digits_cnn, tmp_path, capsys):
    """`--int8 --format saved|lite`: the quantized digits CNN as a saved model, equal to the
    quantized module in ember.export and (bit for bit) in ember_lite, within 1 point of the
    float model's accuracy."""
    from sklearn.datasets import load_digits

    from ember.cli import export_cmd

    saved, lite = tmp_path / "q_saved", tmp_path / "q_lite"
    for fmt, out in (("saved", saved), ("lite", lite)):
        args = ["export", digits_cnn, "--format", fmt, "--int8", "--calibrate", "128"]
        assert main([*args, "-o", str(out)]) == 0, capsys.readouterr().err
        said = capsys.readouterr().out
        assert "int8 static, 128 calibration samples" in said
    m = ember.export.load(saved)
    data = load_digits()
    x = np.asarray(m.preprocess(data.data), np.float32)
    # the module the command quantized (the same calibration samples)
    model, cfg, _ = run.load_model(digits_cnn)
    q, _ = export_cmd._quantize(model, cfg, digits_cnn, 128)
    with ember.no_grad():
        want = q(ember.from_numpy(x)).numpy()
    got = m.signatures["serving_default"].run({"x": x})["output_0"]
    np.testing.assert_array_equal(got, want)
    float_acc = np.mean(_reference(digits_cnn, x)[0].numpy().argmax(1) == data.target)
    assert np.mean(got.argmax(1) == data.target) >= float_acc - 0.01
    if importlib.util.find_spec("ember_lite") is not None:
        import ember_lite

        got = ember_lite.load(str(lite)).signatures["serving_default"].run({"x": x})["output_0"]
        np.testing.assert_array_equal(got, want)


def test_errors(digits, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.yaml"), "--format", "saved"]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.ember"), "--format", "saved"]) == 2
    assert "nope.ember: file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", digits, "--format", "tflite"])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err
    cfg = tmp_path / "untrained.yaml"
    cfg.write_text(
        "model: {layers: [Flatten, {Linear: {out_features: 10}}]}\n"
        f"data: {{dataset: Digits}}\nsnapshot: {{dir: {tmp_path / 'none'}}}\n"
    )
    assert main(["export", str(cfg), "--format", "saved"]) == 2
    assert "no trained model" in capsys.readouterr().err
    assert main(["export", digits, "--format", "onnx", "--int8", "--calibrate", "0"]) == 2
    assert "--calibrate must be >= 1" in capsys.readouterr().err
    assert main(["export", digits, "--format", "saved", "--calibrate", "8"]) == 2
    assert "--calibrate applies to --int8 exports only" in capsys.readouterr().err
    assert main(["export", digits, "--format", "saved", "--opset", "18"]) == 2
    assert "--opset applies to --format onnx only" in capsys.readouterr().err


def test_preprocessing_keeps_deterministic_transforms():
    from ember.export._preprocess import apply, from_run

    cfg = {
        "data": {
            "transforms": [
                {"Normalize": {"mean": [0.5], "std": [0.25]}},
                {"RandomHorizontalFlip": {"p": 0.5}},  # training-only: not recorded
            ]
        }
    }
    spec = {
        "dataset": "Digits",
        "shape": [1, 8, 8],
        "dtype": "float32",
        "num_classes": 10,
        "raw": {"max": 16, "scale": 1 / 16, "shape": [1, 8, 8], "integer": True},
    }
    pre = from_run(cfg, spec, "x")
    assert pre["transforms"] == [{"Normalize": {"mean": [0.5], "std": [0.25]}}]
    raw = np.arange(128).reshape(2, 64) % 17
    x = apply(pre, raw, "model")
    assert x.shape == (2, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x.reshape(2, 64), (raw / 16 - 0.5) / 0.25, 1e-6)
    with pytest.raises(ValueError, match=r"raw Digits values are integers in 0\.\.16"):
        apply(pre, raw * 2.0, "model")


def test_int8_lstm_token_model_lite(chars, tmp_path, capsys):
    """A recurrent model gets dynamic int8 (LSTM and Linear); as a lite model it runs in
    ember_lite with the quantized module's exact outputs, as QDQ ONNX in onnxruntime."""
    from ember.cli import export_cmd

    out = tmp_path / "q_lite"
    assert main(["export", chars, "--format", "lite", "--int8", "-o", str(out)]) == 0
    assert "int8 dynamic" in capsys.readouterr().out
    model, cfg, spec = run.load_model(chars)
    q, _ = export_cmd._quantize(model, cfg, chars, 256)
    ids = np.random.default_rng(2).integers(0, spec["num_classes"], (3, *spec["shape"]))
    with ember.no_grad():
        want = q(ember.from_numpy(ids))
    want = want[0] if isinstance(want, (tuple, list)) else want
    m = ember.export.load(out)
    got = m.signatures["serving_default"].run({"x": ids})["output_0"]
    np.testing.assert_array_equal(got, want.numpy())
    if importlib.util.find_spec("ember_lite") is not None:
        import ember_lite

        got = ember_lite.load(str(out)).signatures["serving_default"].run({"x": ids})
        np.testing.assert_array_equal(got["output_0"], want.numpy())
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        path = str(tmp_path / "q.onnx")
        assert main(["export", chars, "--format", "onnx", "--int8", "-o", path]) == 0
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"x": ids})[0]
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)
