"""Weight import: PyTorch checkpoints through the restricted reader (compared with
``torch.load(weights_only=True)``), refusal of malicious pickles, ONNX initializers, the local
registry with SHA-256 checks, and ``load_pretrained`` into zoo models (outputs equal PyTorch)."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from ember.models import weights as W
from tests import _zoo_torch_ref as R


def _same_tree(ours, ref):
    """Structure and values of a tree read by Ember equal torch.load's."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, ember.Tensor)
        assert tuple(ours.shape) == tuple(ref.shape)
        ours, ref = ours.detach(), ref.detach()
        if ref.dtype == torch.bfloat16:
            assert ours.dtype == ember.bfloat16
            np.testing.assert_array_equal(ours.float().numpy(), ref.float().numpy())
        else:
            assert ours.numpy().dtype == ref.numpy().dtype
            np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    elif isinstance(ref, dict):
        assert type(ours) is type(ref) and list(ours) == list(ref)
        for k in ref:
            _same_tree(ours[k], ref[k])
    elif isinstance(ref, (list, tuple)):
        assert len(ours) == len(ref) and isinstance(ours, (list, tuple))
        for a, b in zip(ours, ref):
            _same_tree(a, b)
    else:
        assert ours == ref


def _torch_to_ember_out(em, tm, x):
    em.eval(), tm.eval()
    with ember.no_grad():
        out = em(ember.tensor(x)).numpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize(
    "name, make_em, make_t",
    [
        ("resnet18", lambda: M.resnet18(num_classes=6), lambda: R.TResNet(R.TBasic, [2] * 4, 6)),
        ("mobilenet_v2", lambda: M.mobilenet_v2(num_classes=6), lambda: R.TMobileNetV2(6)),
        ("googlenet", lambda: M.googlenet(num_classes=6), lambda: R.TGoogLeNet(6)),
    ],
)
def test_torch_save_state_dict_loads_into_zoo_model(tmp_path, name, make_em, make_t):
    torch.manual_seed(0)
    tm = make_t().train()
    with torch.no_grad():  # non-trivial running statistics
        tm(torch.randn(4, 3, 40, 40))
    p = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), p)
    em = make_em()
    res = W.load_pretrained(em, p, sha256=W.sha256_file(p))
    assert not res.missing_keys and not res.unexpected_keys
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
    _torch_to_ember_out(em, tm, x)


def test_checkpoint_tree_equals_torch_load(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(5, 3)).sum().backward()
    opt.step()
    base = torch.arange(12.0)
    ck = {
        "model": m.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 7,
        "nested": {"a": [torch.ones(2, dtype=torch.int64), (1.5, "x", None)], "b": {"c": True}},
        "dtypes": [torch.zeros(2, dtype=d) for d in (torch.float16, torch.bfloat16, torch.bool)],
        "views": [base[2:8].view(2, 3), base.view(3, 4).t(), torch.empty(0, 3)],
        "size": torch.Size([2, 3]),
        "scalar": torch.tensor(3.5),
        "param": torch.nn.Parameter(torch.ones(3)),
    }
    p = tmp_path / "ck.pt"
    torch.save(ck, p)
    ours, ref = W.load_torch_checkpoint(p), torch.load(p, weights_only=True)
    _same_tree(ours, ref)
    assert ours["param"].requires_grad and ours["size"] == (2, 3)
    # a training checkpoint: load_pretrained finds the state dict under "model"
    em = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.BatchNorm1d(4), ember.nn.Linear(4, 2))
    assert not W.load_pretrained(em, p).missing_keys
    np.testing.assert_array_equal(em[1].running_mean.numpy(), m[1].running_mean.numpy())


def test_state_dict_wrapped_and_prefixed(tmp_path):
    lin = torch.nn.Linear(3, 2)
    p = tmp_path / "ddp.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in lin.state_dict().items()}}, p)
    em = ember.nn.Linear(3, 2)
    W.load_pretrained(em, p)
    np.testing.assert_array_equal(em.weight.detach().numpy(), lin.weight.detach().numpy())
    torch.save({"weights": lin.state_dict(), "note": "x"}, p)
    with pytest.raises(ValueError, match="no state dict found.*key="):
        W.load_pretrained(em, p)
    W.load_pretrained(em, p, key="weights")
    with pytest.raises(KeyError, match="no entry 'nope'"):
        W.load_pretrained(em, p, key="nope")


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _zip_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ck/data.pkl", payload)
        z.writestr("ck/byteorder", "little")


@pytest.mark.parametrize(
    "payload",
    [
        "os.system",
        "eval",
        "torch.load_with_evil_state",  # an unknown torch global is refused too
    ],
)
def test_malicious_pickle_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        evil = _Evil()
        evil.marker = marker
        data = pickle.dumps({"w": evil}, protocol=2)
    elif payload == "eval":
        data = b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x00print('hi')\x85R."
    else:
        data = b"\x80\x02ctorch\nload_with_evil_state\n)R."
    p = tmp_path / "evil.pt"
    _zip_with_pickle(p, data)
    with pytest.raises(W.UnsafeCheckpointError, match="refusing to load global"):
        W.load_torch_checkpoint(p)
    with pytest.raises(W.UnsafeCheckpointError):
        W.load_pretrained(ember.nn.Linear(2, 2), p)
    assert not marker.exists()


def test_damaged_checkpoints_are_reported(tmp_path):
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a PyTorch zip checkpoint"):
        W.load_torch_checkpoint(raw)
    with pytest.raises(FileNotFoundError, match="no such file"):
        W.load_torch_checkpoint(tmp_path / "none.pt")
    # a stride that reaches past the storage (would read other memory if trusted)
    p = tmp_path / "t.pt"
    torch.save({"w": torch.zeros(4, 3)}, p)
    with zipfile.ZipFile(p) as z:
        items = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in items if n.endswith("data.pkl"))
    assert items[pkl].count(b"K\x03K\x01\x86") == 1  # the stride tuple (3, 1)
    items[pkl] = items[pkl].replace(b"K\x03K\x01\x86", b"K\xc8K\x01\x86")
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    with pytest.raises(pickle.UnpicklingError, match="reaches past its storage"):
        W.load_torch_checkpoint(bad)
    # a truncated storage
    stor = next(n for n in items if n.endswith("data/0"))
    items[pkl] = items[pkl].replace(b"K\xc8K\x01\x86", b"K\x03K\x01\x86")
    items[stor] = items[stor][:8]
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    with pytest.raises(pickle.UnpicklingError, match="fewer than its 12 elements"):
        W.load_torch_checkpoint(bad)


def test_onnx_initializers_by_name(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten())
    inits = [numpy_helper.from_array(v.numpy(), k) for k, v in tm.state_dict().items()]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "0.weight", "0.bias"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 5, 5])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        initializer=inits,
    )
    p = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), p)
    got = W.load_onnx_initializers(p)
    assert sorted(got) == ["0.bias", "0.weight"]
    em = ember.nn.Sequential(ember.nn.Conv2d(1, 2, 3), ember.nn.ReLU(), ember.nn.Flatten())
    W.load_pretrained(em, p)
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    _torch_to_ember_out(em, tm, x)
    (tmp_path / "junk.onnx").write_bytes(b"\x01\x02not onnx")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        W.load_onnx_initializers(tmp_path / "junk.onnx")


def test_registry_and_hash_checks(tmp_path):
    torch.manual_seed(0)
    tm = R.TLeNet5(10)
    d = tmp_path / "zoo"
    d.mkdir()
    p = d / "lenet5.pt"
    torch.save(tm.state_dict(), p)
    reg = W.WeightsRegistry(d / "index.json")
    reg.register("lenet5-demo", p, model="lenet5")
    index = json.loads((d / "index.json").read_text())
    entry = index["weights"]["lenet5-demo"]
    assert entry["path"] == "lenet5.pt" and entry["sha256"] == W.sha256_file(p)
    assert entry["sha256"] == __import__("hashlib").sha256(p.read_bytes()).hexdigest()
    em = M.lenet5()
    W.load_pretrained(em, "lenet5-demo", registry=reg)
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    _torch_to_ember_out(em, tm, x)
    # the default registry is found through the environment variable
    os.environ[W.INDEX_ENV] = str(d / "index.json")
    try:
        assert W.default_registry().names() == ["lenet5-demo"]
        W.load_pretrained(M.lenet5(), "lenet5-demo")
    finally:
        del os.environ[W.INDEX_ENV]
    with pytest.raises(ValueError, match="differs from the registered"):
        W.load_pretrained(em, "lenet5-demo", sha256="0" * 64, registry=reg)
    with pytest.raises(ValueError, match="64 hex digits"):
        W.load_pretrained(em, p, sha256="abc")
    with pytest.raises(ValueError, match="SHA-256 mismatch"):
        W.load_pretrained(em, p, sha256="0" * 64)
    with pytest.raises(ValueError, match="not " + "1" * 64):
        reg.register("x", p, sha256="1" * 64)
    # a changed file no longer matches its registered hash
    data = bytearray(p.read_bytes())
    data[-30] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256 mismatch.*damaged or not the one registered"):
        W.load_pretrained(em, "lenet5-demo", registry=reg)
    p.unlink()
    with pytest.raises(FileNotFoundError, match="is missing.*never downloaded"):
        W.load_pretrained(em, "lenet5-demo", registry=reg)
    with pytest.raises(FileNotFoundError, match="neither a registered name.*lenet5-demo"):
        W.load_pretrained(em, "resnet18-imagenet", registry=reg)
    with pytest.raises(KeyError, match="no weights named 'x'"):
        reg.path("x")
    (d / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        reg.names()


def test_read_weights_formats(tmp_path):
    p = tmp_path / "w.safetensors"
    ember.save({"a": ember.ones(2)}, p)
    assert W.read_weights(p)["a"].tolist() == [1.0, 1.0]
    (tmp_path / "w.xyz").write_text("?")
    with pytest.raises(ValueError, match="unknown weight format"):
        W.read_weights(tmp_path / "w.xyz")
    buf = io.BytesIO()
    torch.save({"b": torch.zeros(1)}, buf)
    (tmp_path / "w.bin").write_bytes(buf.getvalue())
    assert W.read_weights(tmp_path / "w.bin")["b"].tolist() == [0.0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras 3 on NumPy 2
def test_keras_weights_h5_sequential_and_errors(tmp_path):
    """A Keras 3 Sequential's .weights.h5 (Keras as the oracle) loads into the same
    ember.keras model; mismatched files are reported by layer."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    from ember import keras as ek

    ref = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(5),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    ref.layers[1].set_weights(
        [
            rng.uniform(0.5, 1.5, 5),
            rng.normal(0, 0.1, 5),
            rng.normal(0, 0.1, 5),
            rng.uniform(0.5, 1.5, 5),
        ]
    )
    p = str(tmp_path / "seq.weights.h5")
    ref.save_weights(p)
    ours = ek.Sequential(
        [
            ek.Input((6,)),
            ek.layers.Dense(5),
            ek.layers.BatchNormalization(),
            ek.layers.Dense(3, activation="softmax"),
        ]
    )
    assert W.load_pretrained(ours, p, sha256=W.sha256_file(p)) is None
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), np.asarray(ref.predict(x, verbose=0)), rtol=1e-5, atol=1e-6
    )
    small = ek.Sequential([ek.Input((6,)), ek.layers.Dense(5)])
    with pytest.raises(
        ValueError, match=r"layers \['batch_normalization', 'dense_1'\] in the file"
    ):
        W.load_keras_weights(small, p)
    wrong = ek.Sequential(
        [
            ek.Input((6,)),
            ek.layers.Dense(5, use_bias=False),
            ek.layers.BatchNormalization(),
            ek.layers.Dense(3),
        ]
    )
    with pytest.raises(ValueError, match="layer 'dense' .* has 1 weights in the model and 2"):
        W.load_keras_weights(wrong, p)
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(ValueError, match="not a Keras 3 .weights.h5 file"):
        W.load_keras_weights(ours, tmp_path / "other.h5")
