"""``ember eval`` / ``ember predict`` on a finished run: from any working directory, with the
training run's preprocessing and dtypes (raw Digits pixels, LSTM token ids, text), and clear
errors for empty or unsuitable inputs. PyTorch models loaded with the run's weights are the
oracle for the predictions."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("yaml")
pytest.importorskip("sklearn")
torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MLP = """\
model:
  input_shape: [1, 8, 8]
  layers: [Flatten, {Linear: {out_features: 32}}, ReLU, {Linear: {out_features: 10}}]
data: {dataset: Digits, batch_size: 64, val_split: 0.1}
solver: {optimizer: {name: adam, lr: 0.01}, epochs: 3, seed: 1}
logging: {tensorboard: false, csv: false}
"""

LSTM = """\
model: {zoo: {name: char_lstm, embed: 8, hidden: 16}}
data:
  dataset: TextDataset
  args: {path: corpus.txt, seq_len: 16, stride: 16}
  batch_size: 16
  val_split: 0.2
  test: false
solver: {optimizer: {name: adam, lr: 0.01}, epochs: 1, seed: 0}
logging: {tensorboard: false, csv: false}
"""


def _ember(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


class _Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the command in this process (seconds faster than a subprocess) from ``cwd``."""
    from ember.cli.main import main

    def run(*args, cwd):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return _Result(code, out, err)

    return run


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _state(model_file):
    import ember

    return {k: torch.from_numpy(v.numpy()) for k, v in ember.load(model_file)["state_dict"].items()}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A Digits MLP trained with the working directory ``a/`` (default run folder)."""
    base = tmp_path_factory.mktemp("digits")
    (base / "a").mkdir()
    (base / "b").mkdir()
    (base / "a" / "mlp.yaml").write_text(MLP)
    out = _ok(_ember("train", "mlp.yaml", "--quiet", cwd=base / "a"))
    model = base / "a" / "runs" / "mlp" / "model.ember"
    assert model.exists()
    final = dict(kv.split("=") for kv in out.splitlines()[0][len("final: ") :].split())
    ref = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    ref.load_state_dict(_state(str(model)))
    return base, model, final, ref


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:60].astype(np.int64), d.images[:60]


def _reference_labels(ref, raw):
    with torch.no_grad():  # the dataset's documented preprocessing: pixels / 16
        x = torch.from_numpy((raw.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32))
        return ref(x).argmax(-1).numpy()


def _labels(stdout):
    return np.array([int(line.split("\t")[1]) for line in stdout.splitlines()])


def test_eval_and_predict_from_another_working_directory(digits_run, raw_digits):
    """A real subprocess started elsewhere (the other tests run the command in-process)."""
    base, model, final, ref = digits_run
    ev = dict(kv.split("=") for kv in _ok(_ember("eval", str(model), cwd=base / "b")).split())
    assert ev["accuracy"] == final["test_accuracy"]
    np.save(base / "b" / "raw.npy", raw_digits[0])
    out = _ok(_ember("predict", str(model), "raw.npy", cwd=base / "b"))
    np.testing.assert_array_equal(_labels(out), _reference_labels(ref, raw_digits[0]))


def test_predict_and_eval_take_the_config_too(cli, digits_run, raw_digits, tmp_path):
    base, model, final, _ = digits_run
    np.save(tmp_path / "raw.npy", raw_digits[0])
    raw = str(tmp_path / "raw.npy")
    by_config = _ok(cli("predict", "mlp.yaml", raw, cwd=base / "a"))
    assert by_config == _ok(cli("predict", str(model), raw, cwd=base / "a"))
    ev = dict(kv.split("=") for kv in _ok(cli("eval", "mlp.yaml", cwd=base / "a")).split())
    assert ev["accuracy"] == final["test_accuracy"]
    # the default run folder is under the working directory: elsewhere it is not found
    r = cli("predict", str(base / "a" / "mlp.yaml"), raw, cwd=base / "b")
    assert r.returncode == 2 and "no trained model at" in r.stderr
    assert str(base / "b" / "runs" / "mlp" / "model.ember") in r.stderr


def test_run_config_is_saved_with_absolute_paths(digits_run):
    import json

    _, model, _, _ = digits_run
    cfg = json.loads((model.parent / "config.json").read_text())
    assert cfg["snapshot"]["dir"] == str(model.parent)


def test_predict_applies_the_dataset_preprocessing(cli, digits_run, raw_digits, tmp_path):
    _, model, _, ref = digits_run
    raw, images = raw_digits
    want = _reference_labels(ref, raw)
    assert len(set(want.tolist())) > 3  # a model that learned something
    # raw 0-16 pixels as .npy (flat 64-vectors and 8x8 images) and as .csv
    np.save(tmp_path / "flat.npy", raw)
    np.save(tmp_path / "img.npy", images)
    np.savetxt(tmp_path / "raw.csv", raw, delimiter=",", fmt="%d")
    for name in ("flat.npy", "img.npy", "raw.csv"):
        out = _ok(cli("predict", str(model), str(tmp_path / name), cwd=tmp_path))
        np.testing.assert_array_equal(_labels(out), want, err_msg=name)
    # a folder of 8-bit images: 0-255 maps onto the 0-16 source range
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    for i, im in enumerate(images[:12]):
        Image.fromarray(np.rint(im * 255 / 16).astype(np.uint8)).save(tmp_path / f"imgs/{i:02}.png")
    out = _ok(cli("predict", str(model), str(tmp_path / "imgs"), cwd=tmp_path))
    np.testing.assert_array_equal(_labels(out), want[:12])
    # --output writes the same labels
    _ok(cli("predict", str(model), "flat.npy", "--output", "p.csv", cwd=tmp_path))
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p.csv", dtype=np.int64), want)


def test_predict_refuses_preprocessed_or_out_of_range_inputs(cli, digits_run, raw_digits, tmp_path):
    _, model, _, ref = digits_run
    raw = raw_digits[0]
    np.save(tmp_path / "scaled.npy", (raw / 16.0).astype(np.float32))
    r = cli("predict", str(model), "scaled.npy", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "scaled.npy" in r.stderr and "integers in 0..16" in r.stderr
    assert "--preprocessed" in r.stderr
    out = _ok(cli("predict", str(model), "scaled.npy", "--preprocessed", cwd=tmp_path))
    np.testing.assert_array_equal(_labels(out), _reference_labels(ref, raw))
    np.save(tmp_path / "big.npy", raw * 16)
    r = cli("predict", str(model), "big.npy", cwd=tmp_path)
    assert r.returncode == 2 and "big.npy" in r.stderr and "got values in [0, 256]" in r.stderr
    np.save(tmp_path / "shape.npy", raw[:, :10])
    r = cli("predict", str(model), "shape.npy", cwd=tmp_path)
    assert r.returncode == 2 and "shape.npy" in r.stderr and "(10,)" in r.stderr


@pytest.mark.parametrize(
    "name, content",
    [("e.npy", b""), ("e.csv", b""), ("blank.csv", b"\n"), ("e.txt", b""), ("none.npy", None)],
)
def test_empty_or_missing_input_is_named(cli, digits_run, tmp_path, name, content):
    _, model, _, _ = digits_run
    if content is not None:
        (tmp_path / name).write_bytes(content)
    r = cli("predict", str(model), name, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{name}:" in r.stderr
    if content is None:
        assert "not found" in r.stderr
    else:
        assert "empty" in r.stderr or "no samples" in r.stderr


def test_folder_without_images_is_named(cli, digits_run, tmp_path):
    _, model, _, _ = digits_run
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    r = cli("predict", str(model), "notes", cwd=tmp_path)
    assert r.returncode == 2 and "notes:" in r.stderr and "no image files" in r.stderr


def test_data_paths_resolve_relative_to_the_config(cli, tmp_path):
    """A CSV dataset named relative to its config: train from one directory, eval (config
    and model file) and predict from another."""
    from sklearn.datasets import load_digits

    d = load_digits()
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "configs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    table = np.column_stack([d.target[:400], d.data[:400] / 16.0])
    np.savetxt(proj / "data" / "digits.csv", table, delimiter=",", fmt="%.6f")
    (proj / "configs" / "csv.yaml").write_text(
        "model: {layers: [{Linear: {out_features: 10}}]}\n"
        "data: {dataset: CSVDataset, args: {path: ../data/digits.csv, label_column: 0},\n"
        "       batch_size: 32, val_split: 0.25}\n"
        "solver: {optimizer: {name: adam, lr: 0.05}, epochs: 2, seed: 0}\n"
        "snapshot: {dir: ../runs/csv}\n"
        "logging: {tensorboard: false, csv: false}\n"
    )
    _ok(_ember("train", "proj/configs/csv.yaml", "--quiet", cwd=tmp_path))
    model = proj / "runs" / "csv" / "model.ember"
    assert model.exists()
    away = tmp_path / "elsewhere"
    by_model = _ok(cli("eval", str(model), "--split", "val", cwd=away))
    by_config = _ok(cli("eval", str(proj / "configs" / "csv.yaml"), "--split", "val", cwd=away))
    assert by_model == by_config and "accuracy=" in by_model
    # --set on a model file: the same model on other data (a path relative to the cwd)
    other = np.column_stack([d.target[1000:1400], d.data[1000:1400] / 16.0])
    np.savetxt(away / "other.csv", other, delimiter=",", fmt="%.6f")
    on_other = _ok(
        cli("eval", str(model), "--split", "val", "--set", "data.args.path=other.csv", cwd=away)
    )
    assert on_other != by_model and "accuracy=" in on_other
    r = cli("eval", str(model), "--set", "data.args.path=missing.csv", "--split", "val", cwd=away)
    assert r.returncode == 2 and str(away / "missing.csv") in r.stderr
    np.savetxt(away / "x.csv", d.data[400:420] / 16.0, delimiter=",")
    out = _ok(cli("predict", str(model), "x.csv", cwd=away))
    ref = torch.nn.Linear(64, 10)
    ref.load_state_dict({k.split(".", 1)[1]: v for k, v in _state(str(model)).items()})
    with torch.no_grad():
        want = ref(torch.from_numpy(d.data[400:420] / 16.0).float()).argmax(-1).numpy()
    np.testing.assert_array_equal(_labels(out), want)


class _CharLSTM(torch.nn.Module):
    def __init__(self, vocab, embed, hidden):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, idx):
        return self.head(self.lstm(self.emb(idx))[0])


def test_predict_token_ids_and_text_on_an_lstm(cli, tmp_path):
    text = "the quick brown fox jumps over the lazy dog. " * 12
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "corpus.txt").write_text(text)
    (tmp_path / "run" / "lm.yaml").write_text(LSTM)
    _ok(_ember("train", "run/lm.yaml", "--quiet", cwd=tmp_path))
    model = tmp_path / "runs" / "lm" / "model.ember"
    vocab = sorted(set(text))
    ref = _CharLSTM(len(vocab), 8, 16)
    ref.load_state_dict(_state(str(model)))
    away = tmp_path / "away"
    away.mkdir()
    ids = np.array([[vocab.index(c) for c in "the lazy fox"]], np.int64)
    with torch.no_grad():
        want = ref(torch.from_numpy(ids)).argmax(-1).numpy()[0]
    want_text = "".join(vocab[i] for i in want)
    np.save(away / "ids.npy", ids)
    out = _ok(cli("predict", str(model), "ids.npy", cwd=away))
    assert out.strip() == f"0\t{want_text!r}"
    (away / "prompt.txt").write_text("the lazy fox\n")
    assert _ok(cli("predict", str(model), "prompt.txt", cwd=away)) == out
    _ok(cli("predict", str(model), "ids.npy", "--output", "p.npy", cwd=away))
    np.testing.assert_array_equal(np.load(away / "p.npy")[0], want)
    np.save(away / "bad.npy", ids + len(vocab))
    r = cli("predict", str(model), "bad.npy", cwd=away)
    assert r.returncode == 2 and "bad.npy" in r.stderr and "token ids must be in" in r.stderr
    (away / "odd.txt").write_text("QZ")
    r = cli("predict", str(model), "odd.txt", cwd=away)
    assert (
        r.returncode == 2 and "odd.txt" in r.stderr and "not in the model's vocabulary" in r.stderr
    )


def test_misspelled_keep_best_metric_is_an_error(cli, tmp_path):
    cfg = MLP.replace("epochs: 3", "epochs: 2") + "snapshot: {keep_best: {metric: val_acc}}\n"
    (tmp_path / "kb.yaml").write_text(cfg)
    r = cli("train", "kb.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "kb.yaml: key 'snapshot.keep_best.metric': unknown metric 'val_acc'" in r.stderr
    assert "(did you mean val_accuracy?)" in r.stderr


@pytest.mark.parametrize("loss", ["mse", "bce_with_logits"])
def test_predict_regression_values_and_binary_labels(cli, tmp_path, loss):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    score = x @ np.array([1.0, -2.0, 0.5, 1.5])
    target = score if loss == "mse" else (score > 0).astype(np.int64)
    np.savetxt(tmp_path / "t.csv", np.column_stack([x, target]), delimiter=",", fmt="%.6f")
    (tmp_path / "r.yaml").write_text(
        "model: {layers: [{Linear: {out_features: 1}}]}\n"
        "data: {dataset: CSVDataset, args: {path: t.csv}, batch_size: 20, val_split: 0.2}\n"
        f"solver: {{optimizer: {{name: adam, lr: 0.05}}, epochs: 6, seed: 0, loss: {loss}}}\n"
        "logging: {tensorboard: false, csv: false}\n"
    )
    out = _ok(cli("train", "r.yaml", "--quiet", cwd=tmp_path))
    final = dict(kv.split("=") for kv in out.splitlines()[0][len("final: ") :].split())
    if loss == "mse":
        assert float(final["val_loss"]) < float(np.var(score))  # it learned
    else:
        assert float(final["val_accuracy"]) > 0.8, final  # binary accuracy from the logit
    model = tmp_path / "runs" / "r" / "model.ember"
    np.savetxt(tmp_path / "new.csv", x[:10], delimiter=",")
    lines = _ok(cli("predict", str(model), "new.csv", cwd=tmp_path)).splitlines()
    ref = torch.nn.Linear(4, 1)
    ref.load_state_dict({k.split(".", 1)[1]: v for k, v in _state(str(model)).items()})
    with torch.no_grad():
        logits = ref(torch.from_numpy(x[:10]).float()).numpy()[:, 0]
    if loss == "mse":
        got = np.array([float(ln.split("\t")[1]) for ln in lines])
        np.testing.assert_allclose(got, logits, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(_labels("\n".join(lines)), (logits > 0).astype(int))


def test_predict_applies_the_config_transforms_to_uint8_images(cli, tmp_path):
    """8-bit images in an .npz with ``ToTensor`` + ``Normalize`` (and an augmentation that
    only training uses): predict reads raw 0-255 pixels like the training samples."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.rint(d.images / 16 * 255).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=imgs[:600], y=d.target[:600])
    (tmp_path / "t.yaml").write_text(
        "model: {layers: [Flatten, {Linear: {out_features: 32}}, ReLU, "
        "{Linear: {out_features: 10}}]}\n"
        "data:\n"
        "  dataset: NPZDataset\n"
        "  args: {path: d.npz}\n"
        "  transforms: [ToTensor, {Normalize: {mean: [0.5], std: [0.25]}},"
        " {RandomHorizontalFlip: {p: 0.5}}]\n"
        "solver: {optimizer: {name: adam, lr: 0.01}, epochs: 2, seed: 0}\n"
        "logging: {tensorboard: false, csv: false}\n"
    )
    _ok(cli("train", "t.yaml", "--quiet", cwd=tmp_path))
    model = tmp_path / "runs" / "t" / "model.ember"
    ref = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    ref.load_state_dict(_state(str(model)))
    new = imgs[600:640]
    with torch.no_grad():
        x = (torch.from_numpy(new).float()[:, None] / 255 - 0.5) / 0.25
        want = ref(x).argmax(-1).numpy()
    np.save(tmp_path / "new.npy", new)
    np.testing.assert_array_equal(
        _labels(_ok(cli("predict", str(model), "new.npy", cwd=tmp_path))), want
    )
    (tmp_path / "png").mkdir()
    for i, im in enumerate(new[:8]):
        Image.fromarray(im).save(tmp_path / "png" / f"{i}.png")
    out = _ok(cli("predict", str(model), "png", cwd=tmp_path))
    np.testing.assert_array_equal(_labels(out), want[:8])
    np.save(tmp_path / "neg.npy", new.astype(np.int64) - 1)
    r = cli("predict", str(model), "neg.npy", cwd=tmp_path)
    assert r.returncode == 2 and "integers in 0..255" in r.stderr


def test_input_shape_must_match_the_data(cli, tmp_path):
    (tmp_path / "s.yaml").write_text(MLP.replace("input_shape: [1, 8, 8]", "input_shape: [64]"))
    r = cli("train", "s.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "s.yaml: key 'model.input_shape': [64] does not match" in r.stderr
    assert "shape [1, 8, 8]" in r.stderr
