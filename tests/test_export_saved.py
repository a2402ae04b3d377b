"""``ember.export``: saved-model round trips (against the original model and PyTorch), dynamic
batch, a fresh process without the defining code, integrity errors, ``sig.run`` input checks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import ember
import ember.export
from ember import nn
from ember.export import SavedModelError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL, ATOL = 1e-5, 1e-5


def _np(t):
    return t.detach().numpy()


def _eager(model, *xs):
    model.eval()
    with ember.no_grad():
        return model(*xs)


def _cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(8 * 4 * 4, 10),
    )


def _torch_cnn(model):
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.25),
        torch.nn.Linear(8 * 4 * 4, 10),
    )
    tm.load_state_dict(
        {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
    )
    return tm.eval()


def _trained_bn(model, shape):
    """Non-trivial BatchNorm running statistics (a few training-mode passes)."""
    model.train()
    with ember.no_grad():
        for _ in range(3):
            model(ember.randn(*shape) * 2 + 0.5)
    return model.eval()


# -- round trips -----------------------------------------------------------------------------


def test_mlp_round_trip_matches_original_and_torch(tmp_path):
    ember.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 4))
    d = ember.export.save(net, tmp_path / "mlp", ember.randn(2, 16))
    m = ember.export.load(d)
    tm = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in net.state_dict().items()})
    for b in (1, 5, 17):  # dynamic batch: three sizes, none the traced one
        x = np.random.default_rng(b).standard_normal((b, 16)).astype(np.float32)
        got = m(ember.tensor(x))
        np.testing.assert_allclose(_np(got), _np(_eager(net, ember.tensor(x))), RTOL, ATOL)
        np.testing.assert_allclose(_np(got), tm(torch.from_numpy(x)).detach().numpy(), 1e-5, 1e-5)


def test_cnn_round_trip_dynamic_batch_and_torch(tmp_path):
    ember.manual_seed(1)
    net = _trained_bn(_cnn(), (16, 1, 8, 8))
    d = ember.export.save(net, tmp_path / "cnn", ember.randn(4, 1, 8, 8))
    m = ember.export.load(d)
    sig = m.signatures["serving_default"]
    assert sig.inputs == [ember.export.TensorSpec("input", "float32", (None, 1, 8, 8))]
    assert sig.outputs == [ember.export.TensorSpec("output_0", "float32", (None, 10))]
    tm = _torch_cnn(net)
    for b in (1, 3, 9):
        x = np.random.default_rng(b).standard_normal((b, 1, 8, 8)).astype(np.float32)
        out = sig.run({"input": x})["output_0"]
        assert out.shape == (b, 10) and out.dtype == np.float32
        np.testing.assert_allclose(out, _np(_eager(net, ember.tensor(x))), RTOL, ATOL)
        np.testing.assert_allclose(out, tm(torch.from_numpy(x)).detach().numpy(), 1e-4, 1e-5)


def test_lstm_keeps_result_structure(tmp_path):
    ember.manual_seed(2)
    lstm = nn.LSTM(6, 5, num_layers=2, batch_first=True)
    d = ember.export.save(lstm, tmp_path / "lstm", ember.randn(2, 7, 6))
    m = ember.export.load(d)
    assert [s.name for s in m.signatures["serving_default"].outputs] == [
        "output_0",
        "output_1",
        "output_2",
    ]
    for b in (1, 4, 6):
        x = ember.randn(b, 7, 6)
        out, (h, c) = m(x)
        ref_out, (ref_h, ref_c) = _eager(lstm, x)
        for a, r in ((out, ref_out), (h, ref_h), (c, ref_c)):
            np.testing.assert_allclose(_np(a), _np(r), RTOL, ATOL)


def test_keras_sequential_round_trip(tmp_path):
    from ember import keras

    ember.manual_seed(3)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    d = ember.export.save(model, tmp_path / "keras", ember.randn(2, 8, 8, 1))
    m = ember.export.load(d)
    for b in (1, 3, 8):
        x = np.random.default_rng(b).random((b, 8, 8, 1), dtype=np.float32)
        ref = model.predict(x, verbose=0)
        got = m.signatures["serving_default"].run({"input_0": x})["output_0"]
        np.testing.assert_allclose(got, ref, RTOL, ATOL)


def test_function_and_several_signatures_share_weights(tmp_path):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(6, 4)
            self.head = nn.Linear(4, 3)

        def embed(self, x):
            return self.proj(x).tanh()

        def forward(self, x):
            return self.head(self.embed(x))

    ember.manual_seed(4)
    enc = Encoder()
    x = ember.randn(2, 6)
    d = ember.export.save(
        enc,
        tmp_path / "enc",
        x,
        signatures={
            "embed": "embed",
            "pair": {
                "fn": lambda a, b: (enc.embed(a) * enc.embed(b)).sum(-1),
                "example_inputs": (x, x),
                "input_names": ["a", "b"],
                "output_names": ["score"],
            },
        },
    )
    m = ember.export.load(d)
    assert list(m.signatures) == ["serving_default", "embed", "pair"]
    assert sorted(m.weights) == ["head.bias", "head.weight", "proj.bias", "proj.weight"]
    # one tensor per weight, used by every signature that reads it
    g1, g2 = m.signatures["serving_default"].graph, m.signatures["embed"].graph
    w1 = dict(zip(g1.captured_names, g1.captured_tensors))["proj.weight"]
    assert w1 is dict(zip(g2.captured_names, g2.captured_tensors))["proj.weight"]
    a, b = ember.randn(3, 6), ember.randn(3, 6)
    np.testing.assert_allclose(_np(m.signatures["embed"](a)), _np(enc.embed(a)), RTOL, ATOL)
    score = m.signatures["pair"].run({"a": a.numpy(), "b": b.numpy()})["score"]
    np.testing.assert_allclose(score, _np((enc.embed(a) * enc.embed(b)).sum(-1)), RTOL, ATOL)


def test_same_name_different_tensors_get_distinct_weights(tmp_path):
    w1, w2 = ember.randn(3, 3), ember.randn(3, 3)
    d = ember.export.save(
        lambda x: x @ w1,
        tmp_path / "f",
        ember.randn(2, 3),
        signatures={"other": lambda x: x @ w2},
    )
    m = ember.export.load(d)
    x = ember.randn(4, 3)
    np.testing.assert_allclose(_np(m(x)), _np(x @ w1), RTOL, ATOL)
    np.testing.assert_allclose(_np(m.signatures["other"](x)), _np(x @ w2), RTOL, ATOL)
    assert len(m.weights) == 2


def test_loaded_model_is_differentiable(tmp_path):
    ember.manual_seed(5)
    net = _trained_bn(_cnn(), (8, 1, 8, 8))
    d = ember.export.save(net, tmp_path / "cnn", ember.randn(2, 1, 8, 8))
    m = ember.export.load(d)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    xa, xb = ember.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
    (m(xa) ** 2).sum().backward()
    (net(xb) ** 2).sum().backward()
    np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), 1e-4, 1e-5)
    # the weights can be fine-tuned
    w = m.weights["6.weight"]
    w.requires_grad_(True)
    (m(ember.tensor(x)) ** 2).sum().backward()
    ref = net[6].weight
    ref.grad = None
    (net(ember.tensor(x)) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), ref.grad.numpy(), 1e-4, 1e-5)


def test_static_batch(tmp_path):
    net = nn.Linear(3, 2)
    d = ember.export.save(net, tmp_path / "s", ember.randn(4, 3), dynamic_batch=False)
    sig = ember.export.load(d).signatures["serving_default"]
    assert sig.inputs[0].shape == (4, 3)
    sig.run({"input": np.zeros((4, 3), np.float32)})
    with pytest.raises(ValueError, match=r"input 'input' has shape \(5, 3\), expected \(4, 3\)"):
        sig.run({"input": np.zeros((5, 3), np.float32)})


def test_batch_dependent_code_needs_static_batch(tmp_path):
    def fn(x):
        return x.reshape(2, -1).sum(1)  # only works at the example's batch size

    with pytest.raises(SavedModelError, match="pass dynamic_batch=False"):
        ember.export.save(fn, tmp_path / "d", ember.randn(2, 3))
    d = ember.export.save(fn, tmp_path / "s", ember.randn(2, 3), dynamic_batch=False)
    x = ember.randn(2, 3)
    np.testing.assert_allclose(_np(ember.export.load(d)(x)), _np(fn(x)), RTOL, ATOL)


def test_manifest_contents(tmp_path):
    net = nn.Sequential(nn.Linear(64, 10))
    d = ember.export.save(
        net,
        tmp_path / "m",
        ember.randn(2, 64),
        input_names=["x"],
        preprocessing={"mean": [0.5], "std": [0.25]},
    )
    doc = json.loads((tmp_path / "m" / "saved_model.json").read_text())
    assert doc["format"] == "ember-saved-model" and doc["version"] == 1
    assert doc["ember_version"] == ember.__version__
    assert doc["weights"] == "weights.safetensors"
    assert doc["signatures"]["serving_default"] == {
        "graph": "graph.serving_default.json",
        "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 64]}],
        "outputs": [{"name": "output_0", "dtype": "float32", "shape": [None, 10]}],
    }
    assert sorted(doc["files"]) == sorted(f for f in os.listdir(d) if f != "saved_model.json")
    graph = json.loads((tmp_path / "m" / "graph.serving_default.json").read_text())
    assert all(c["value"] is None for c in graph["captured"]) and graph["captured"]
    m = ember.export.load(d)
    assert m.preprocessing == {"mean": [0.5], "std": [0.25]}
    with pytest.raises(ValueError, match="metadata only"):
        m.preprocess(np.zeros((1, 64)))


def test_weights_file_is_standard_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    net = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3))
    d = ember.export.save(net, tmp_path / "m", ember.randn(2, 5))
    got = st.load_file(os.path.join(d, "weights.safetensors"))
    want = {k: v.numpy() for k, v in net.state_dict().items() if v.dtype == ember.float32}
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v)


def test_fresh_process_without_defining_code(tmp_path):
    mod = tmp_path / "mymodels_for_export.py"
    mod.write_text(
        textwrap.dedent(
            """
            import ember
            from ember import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = nn.Conv2d(1, 4, 3)
                    self.fc = nn.Linear(4 * 6 * 6, 5)

                def forward(self, image):
                    return self.fc(self.conv(image).relu().flatten(1)).softmax(-1)
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import mymodels_for_export

        ember.manual_seed(6)
        net = mymodels_for_export.Net()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mymodels_for_export", None)
    d = ember.export.save(net, tmp_path / "net", ember.randn(2, 1, 8, 8))
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import ember.export
        m = ember.export.load({str(d)!r})
        out = m.signatures["serving_default"].run({{"image": np.load({str(tmp_path / "x.npy")!r})}})
        assert "mymodels_for_export" not in sys.modules
        np.save({str(tmp_path / "y.npy")!r}, out["output_0"])
        """
    )
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,  # not tmp_path: the defining module must not be importable
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), _np(_eager(net, ember.tensor(x))), RTOL, ATOL
    )


# -- integrity -------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    ember.manual_seed(7)
    net = _trained_bn(_cnn(), (8, 1, 8, 8))
    return ember.export.save(net, tmp_path / "model", ember.randn(2, 1, 8, 8))


def _edit_manifest(d, fn):
    p = os.path.join(d, "saved_model.json")
    with open(p) as f:
        doc = json.load(f)
    fn(doc)
    with open(p, "w") as f:
        json.dump(doc, f)


def test_tampered_weight_byte(saved):
    p = os.path.join(saved, "weights.safetensors")
    data = bytearray(Path(p).read_bytes())
    data[-5] ^= 0x01
    Path(p).write_bytes(bytes(data))
    with pytest.raises(SavedModelError, match=r"weights\.safetensors is damaged or was modified"):
        ember.export.load(saved)


def test_tampered_graph(saved):
    p = os.path.join(saved, "graph.serving_default.json")
    text = Path(p).read_text().replace('"relu"', '"tanh"', 1)
    Path(p).write_text(text)
    with pytest.raises(SavedModelError, match=r"graph\.serving_default\.json is damaged"):
        ember.export.load(saved)


@pytest.mark.parametrize("name", ["weights.safetensors", "graph.serving_default.json"])
def test_truncated_file(saved, name):
    p = os.path.join(saved, name)
    data = Path(p).read_bytes()
    Path(p).write_bytes(data[: len(data) // 2])
    with pytest.raises(SavedModelError, match=re.escape(name) + " is truncated"):
        ember.export.load(saved)


@pytest.mark.parametrize(
    "name", ["weights.safetensors", "graph.serving_default.json", "graph.serving_default.json.bin"]
)
def test_missing_file(saved, name):
    os.remove(os.path.join(saved, name))
    with pytest.raises(SavedModelError, match=re.escape(name) + " is missing"):
        ember.export.load(saved)


def test_missing_manifest(saved):
    os.remove(os.path.join(saved, "saved_model.json"))
    with pytest.raises(SavedModelError, match="no saved_model.json"):
        ember.export.load(saved)


def test_not_a_directory(tmp_path):
    with pytest.raises(SavedModelError, match="no such directory"):
        ember.export.load(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SavedModelError, match="not a directory"):
        ember.export.load(tmp_path / "f")


def test_extra_unknown_file(saved):
    with open(os.path.join(saved, "notes.txt"), "w") as f:
        f.write("hello")
    with pytest.raises(SavedModelError, match=r"unexpected file notes\.txt"):
        ember.export.load(saved)


def test_wrong_format_and_version(saved):
    _edit_manifest(saved, lambda d: d.update(format="tf-saved-model"))
    with pytest.raises(SavedModelError, match="format is 'tf-saved-model', expected"):
        ember.export.load(saved)
    _edit_manifest(saved, lambda d: d.update(format="ember-saved-model", version=2))
    with pytest.raises(SavedModelError, match="format version 2; this ember reads version 1"):
        ember.export.load(saved)


def test_malformed_manifest(saved):
    p = os.path.join(saved, "saved_model.json")
    text = Path(p).read_text()
    Path(p).write_text(text[: len(text) // 2])
    with pytest.raises(SavedModelError, match=r"saved_model\.json: not valid JSON"):
        ember.export.load(saved)


def test_manifest_path_outside_directory(saved):
    _edit_manifest(saved, lambda d: d["files"].update({"../x": {"sha256": "0", "bytes": 1}}))
    with pytest.raises(SavedModelError, match="not a plain path"):
        ember.export.load(saved)


def test_graph_pointing_outside_directory(saved):
    """A crafted graph file (hashes consistent) cannot make load read a file elsewhere."""
    from ember.export import _format as F

    p = Path(saved, "graph.serving_default.json")
    doc = json.loads(p.read_text())
    doc["data_file"] = "../../elsewhere.bin"
    p.write_text(json.dumps(doc))
    digest, size = F.file_digest(str(p))
    _edit_manifest(
        saved,
        lambda d: d["files"].update(
            {"graph.serving_default.json": {"sha256": digest, "bytes": size}}
        ),
    )
    with pytest.raises(SavedModelError, match="data_file must name a file beside it"):
        ember.export.load(saved)


def test_weights_missing_a_captured_name(saved):
    """Consistent hashes but a weights file without one parameter: named, no model."""
    from ember.export import _format as F

    p = os.path.join(saved, "weights.safetensors")
    arrays = F.read_weights(saved, "weights.safetensors")
    del arrays["6.weight"]
    F.write_weights(p, arrays)
    digest, size = F.file_digest(p)
    _edit_manifest(
        saved,
        lambda d: d["files"].update({"weights.safetensors": {"sha256": digest, "bytes": size}}),
    )
    with pytest.raises(SavedModelError, match=r"no weight named '6\.weight'"):
        ember.export.load(saved)


def test_weight_of_wrong_shape(saved):
    from ember.export import _format as F

    p = os.path.join(saved, "weights.safetensors")
    arrays = F.read_weights(saved, "weights.safetensors")
    arrays["6.bias"] = np.zeros(11, np.float32)
    F.write_weights(p, arrays)
    digest, size = F.file_digest(p)
    _edit_manifest(
        saved,
        lambda d: d["files"].update({"weights.safetensors": {"sha256": digest, "bytes": size}}),
    )
    with pytest.raises(SavedModelError, match=r"'6\.bias' is float32\[11\], the graph expects"):
        ember.export.load(saved)


def test_overwrite_refused_then_allowed(tmp_path):
    net = nn.Linear(2, 2)
    d = ember.export.save(net, tmp_path / "m", ember.randn(1, 2))
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        ember.export.save(nn.Linear(2, 3), d, ember.randn(1, 2))
    assert ember.export.load(d)(ember.ones(1, 2)).shape == (1, 2)
    ember.export.save(nn.Linear(2, 3), d, ember.randn(1, 2), overwrite=True)
    assert ember.export.load(d)(ember.ones(1, 2)).shape == (1, 3)
    assert sorted(os.listdir(tmp_path)) == ["m"]  # no temporary or old directories left
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a saved model"):
        ember.export.save(net, other, ember.randn(1, 2), overwrite=True)
    assert (other / "keep.txt").read_text() == "precious"


def test_failed_save_leaves_nothing(tmp_path):
    def bad(x):
        return x * float(x.sum())  # reads a value: no single graph

    with pytest.raises(SavedModelError, match="does not trace"):
        ember.export.save(bad, tmp_path / "m", ember.randn(2, 2))
    with pytest.raises(TypeError, match="preprocessing must be plain JSON"):
        ember.export.save(
            nn.Linear(2, 2), tmp_path / "m", ember.randn(2, 2), preprocessing={"f": print}
        )
    assert os.listdir(tmp_path) == []


def test_crash_while_writing_leaves_old_model(tmp_path, monkeypatch):
    from ember.export import _format as F

    d = ember.export.save(nn.Linear(2, 2), tmp_path / "m", ember.randn(1, 2))

    def boom(path, arrays):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(F, "write_weights", boom)
    with pytest.raises(OSError, match="disk full"):
        ember.export.save(nn.Linear(2, 3), d, ember.randn(1, 2), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        ember.export.save(nn.Linear(2, 3), tmp_path / "new", ember.randn(1, 2))
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert ember.export.load(d)(ember.ones(1, 2)).shape == (1, 2)  # the old model, intact


def test_save_argument_errors(tmp_path):
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="has no example_inputs"):
        ember.export.save(net, tmp_path / "a")
    with pytest.raises(TypeError, match="example input 0 is a list"):
        ember.export.save(net, tmp_path / "a", ([1.0, 2.0],))
    with pytest.raises(ValueError, match="input_names must be 1 distinct"):
        ember.export.save(net, tmp_path / "a", ember.randn(1, 2), input_names=["a", "b"])
    with pytest.raises(ValueError, match="signature name 'a b'"):
        ember.export.save(net, tmp_path / "a", ember.randn(1, 2), signatures={"a b": net})
    with pytest.raises(ValueError, match="names method 'nope'"):
        ember.export.save(net, tmp_path / "a", ember.randn(1, 2), signatures={"x": "nope"})
    with pytest.raises(FileNotFoundError, match="parent folder"):
        ember.export.save(net, tmp_path / "no" / "a", ember.randn(1, 2))
    assert os.listdir(tmp_path) == []


# -- sig.run input checks --------------------------------------------------------------------


@pytest.fixture
def two_inputs(tmp_path):
    w = ember.randn(4, 3)
    d = ember.export.save(
        lambda x, y: x @ w + y, tmp_path / "two", (ember.randn(2, 4), ember.randn(2, 3))
    )
    return ember.export.load(d).signatures["serving_default"]


def test_run_errors(two_inputs):
    sig = two_inputs
    x, y = np.zeros((3, 4), np.float32), np.zeros((3, 3), np.float32)
    assert sig.run({"x": x, "y": y})["output_0"].shape == (3, 3)
    with pytest.raises(ValueError, match="missing input 'y'; its inputs are x, y"):
        sig.run({"x": x})
    with pytest.raises(ValueError, match="unknown input 'z'"):
        sig.run({"x": x, "y": y, "z": y})
    with pytest.raises(ValueError, match="input 'x' has dtype float64, expected float32"):
        sig.run({"x": x.astype(np.float64), "y": y})
    with pytest.raises(ValueError, match=r"input 'x' has shape \(4,\), expected \(None, 4\)"):
        sig.run({"x": x[0], "y": y})
    with pytest.raises(
        ValueError, match=r"input 'y' has shape \(3, 5\), expected \(None, 3\) \(axis 1 must be 3\)"
    ):
        sig.run({"x": x, "y": np.zeros((3, 5), np.float32)})
    with pytest.raises(ValueError, match="input 'y' axis 0 has size 2, but input 'x' axis 0"):
        sig.run({"x": x, "y": y[:2]})
    with pytest.raises(TypeError, match="run takes a dict"):
        sig.run([x, y])
    # lists take the input's dtype
    out = sig.run({"x": [[1.0, 2.0, 3.0, 4.0]], "y": [[0.0, 0.0, 0.0]]})["output_0"]
    assert out.shape == (1, 3) and out.dtype == np.float32


def test_call_errors(two_inputs):
    with pytest.raises(TypeError, match=r"takes 2 input\(s\) \(x, y\), got 1"):
        two_inputs(ember.zeros(2, 4))
    with pytest.raises(ValueError, match="input 'x' has dtype int64"):
        two_inputs(ember.zeros(2, 4, dtype=ember.int64), ember.zeros(2, 3))


# -- the reference workloads -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "lstm", "gpt", "gpt_written"])
def test_workload_round_trip(name, tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import workloads
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    model, _, batch, _ = workloads.build(ember, name, small=True, dropout=0.2)
    if name == "resnet":
        _trained_bn(model, (8, 3, 16, 16))
    x, _ = batch()
    d = ember.export.save(model, tmp_path / name, ember.from_numpy(x))
    m = ember.export.load(d)
    spec = m.signatures["serving_default"].inputs[0]
    assert spec.shape[0] is None and spec.dtype == x.dtype.name
    for b in (1, 3, 2 * x.shape[0] + 1):
        xb = np.concatenate([x] * (b // x.shape[0] + 1))[:b]
        got = m.signatures["serving_default"].run({spec.name: xb})["output_0"]
        ref = _np(_eager(model, ember.from_numpy(xb)))
        np.testing.assert_allclose(got, ref, 1e-5, 1e-5)
