"""ember_lite runs saved models with NumPy alone and gives the same outputs as Ember.

Each model is saved with ``ember.export.save`` (eval mode, symbolic batch) and run by
``ember_lite.load`` at several batch sizes; the oracle is the Ember model itself (which the
rest of the suite checks against PyTorch). Bad directories give clear errors; importing and
running ember_lite never imports ember.
"""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import ember_lite
import numpy as np
import pytest

import ember
import ember.export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import workloads  # noqa: E402  (bench/ is not a package)

BATCHES = (1, 2, 5)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _workload(name: str):
    model, _, make_batch, _ = workloads.build(ember, name, small=True)
    x, _ = make_batch()
    return model, lambda b: (np.resize(x, (b,) + x.shape[1:]),)


def _images(c: int, hw: int):
    return lambda b: (_rng(b).standard_normal((b, c, hw, hw)).astype(np.float32),)


def _tokens(vocab: int, t: int):
    return lambda b: (_rng(b).integers(0, vocab, (b, t)),)


def _bert():
    m = ember.models.bert(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
    )
    m.eval()

    def fn(ids, mask):
        out = m(ids, attention_mask=mask)
        return out.last_hidden_state, out.pooler_output

    def make(b):
        mask = np.ones((b, 7), np.int64)
        mask[0, 5:] = 0  # padding: the attention mask path
        return _rng(b).integers(0, 40, (b, 7)), mask

    return fn, make


def _minilm():
    m = ember.models.all_minilm_l6_v2()
    m.eval()
    return m, None


def _keras(kind: str):
    from ember import keras

    if kind == "cnn":
        m = keras.Sequential(
            [
                keras.layers.Conv2D(8, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
    else:
        inputs = keras.Input(shape=(8, 8, 1))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(32, activation="relu")(x)
        m = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    m(ember.zeros(1, 8, 8, 1))
    return m, lambda b: (_rng(b).random((b, 8, 8, 1)).astype(np.float32),)


def _digits_cnn():
    nn = ember.nn
    m = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(16 * 16, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    for mod in m.modules():  # non-trivial running statistics, as after training
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(ember.randn(mod.num_features) * 0.1)
            mod.running_var.copy_(ember.rand(mod.num_features) + 0.5)
    return m, _images(1, 8)


class _Recurrent(ember.nn.Module):
    """GRU, Elman RNN (relu) and LSTM, two layers, bidirectional."""

    def __init__(self) -> None:
        super().__init__()
        nn = ember.nn
        self.gru = nn.GRU(6, 5, num_layers=2, batch_first=True, bidirectional=True)
        self.rnn = nn.RNN(10, 4, num_layers=2, nonlinearity="relu", batch_first=True)
        self.lstm = nn.LSTM(4, 3, batch_first=True, bidirectional=True)

    def forward(self, x):
        y, h = self.gru(x)
        z, hr = self.rnn(y)
        w, (hl, cl) = self.lstm(z)
        return w, h, hr, hl, cl


def _recurrent():
    return _Recurrent(), lambda b: (_rng(b).standard_normal((b, 5, 6)).astype(np.float32),)


def _sentence_encoder():
    bert = ember.models.bert(
        vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=32, add_pooling_layer=False,
    )  # fmt: skip
    m = ember.models.SentenceEncoder(bert)

    def make(b):
        mask = np.ones((b, 6), np.int64)
        mask[-1, 3:] = 0
        return _rng(b).integers(0, 40, (b, 6)), mask

    return m, make


MODELS = {
    "recurrent": _recurrent,
    "sentence_encoder": _sentence_encoder,
    "mlp": lambda: _workload("mlp"),
    "lenet": lambda: _workload("lenet"),
    "resnet": lambda: _workload("resnet"),
    "lstm": lambda: _workload("lstm"),
    "gpt": lambda: _workload("gpt"),
    "gpt_written": lambda: _workload("gpt_written"),
    "digits_cnn": _digits_cnn,
    "resnet18": lambda: (ember.models.resnet18(num_classes=10), _images(3, 32)),
    "mobilenet_v2": lambda: (
        ember.models.mobilenet_v2(num_classes=10, width_mult=0.25),
        _images(3, 32),
    ),
    # VGG-11 with batch norm: the plain vgg11's primitives and BatchNorm's
    "vgg11_bn": lambda: (ember.models.vgg11_bn(num_classes=10, hidden=32), _images(3, 32)),
    "bert": _bert,
    "gpt2": lambda: (
        ember.models.gpt2(n_layer=2, n_embd=16, n_head=2, vocab_size=50, n_positions=16),
        _tokens(50, 7),
    ),
    "lstm_lm": lambda: (
        ember.models.lstm_lm(vocab_size=50, embed_dim=16, hidden_size=16),
        _tokens(50, 7),
    ),
    "keras_cnn": lambda: _keras("cnn"),
    "keras_mlp": lambda: _keras("mlp"),
}


def _as_list(out) -> list[np.ndarray]:
    """The flat list of a (nested) result, as the saved signature's outputs."""
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _as_list(o)]
    return [out.numpy() if isinstance(out, ember.Tensor) else np.asarray(out)]


def _structure(out) -> object:
    if isinstance(out, dict):
        return {k: _structure(v) for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return [_structure(o) for o in out]
    return "leaf"


def _assert_close(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype)
        scale = float(np.max(np.abs(w))) if w.size else 1.0
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            ember.manual_seed(0)
            fn, make = MODELS[name]()
            if isinstance(fn, ember.nn.Module):
                fn.eval()
            d = str(tmp_path_factory.mktemp("lite") / name)
            ember.export.save(fn, d, tuple(ember.from_numpy(a) for a in make(3)))
            cache[name] = (fn, make, d)
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_equal_ember(saved, name):
    fn, make, d = saved(name)
    model = ember_lite.load(d)
    sig = model.signatures["serving_default"]
    for b in BATCHES:
        arrays = make(b)
        with ember.no_grad():
            want = _as_list(fn(*(ember.from_numpy(a) for a in arrays)))
        got = sig.run({s.name: a for s, a in zip(sig.inputs, arrays)})
        assert list(got) == [s.name for s in sig.outputs]
        _assert_close(list(got.values()), want, f"{name} batch {b}")
        called = model(*arrays)
        _assert_close(_as_list(called), want, f"{name} batch {b} (Model call)")
        if b == BATCHES[0]:  # the nesting of the original result
            with ember.no_grad():
                assert _structure(called) == _structure(fn(*(ember.from_numpy(a) for a in arrays)))


def test_specs_mirror_ember_export(saved):
    _, _, d = saved("bert")
    lite, full = ember_lite.load(d), ember.export.load(d)
    for name, sig in full.signatures.items():
        ls = lite.signatures[name]
        for mine, theirs in ((ls.inputs, sig.inputs), (ls.outputs, sig.outputs)):
            assert [(s.name, s.dtype, s.shape) for s in mine] == [
                (s.name, s.dtype, tuple(s.shape)) for s in theirs
            ]
    assert lite.preprocessing == full.preprocessing


def test_bad_feeds_raise_value_error_naming_the_input(saved):
    _, _, d = saved("mlp")
    sig = ember_lite.load(d).signatures["serving_default"]
    (spec,) = sig.inputs
    good = np.zeros((2, 784), np.float32)
    with pytest.raises(ValueError, match="unknown input 'nope'"):
        sig.run({"nope": good})
    with pytest.raises(ValueError, match=f"missing input '{spec.name}'"):
        sig.run({})
    with pytest.raises(ValueError, match=f"input '{spec.name}' expects dtype float32, got int64"):
        sig.run({spec.name: np.zeros((2, 784), np.int64)})
    with pytest.raises(ValueError, match=r"expects shape \[None, 784\], got \[2, 783\]"):
        sig.run({spec.name: np.zeros((2, 783), np.float32)})


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _write(path: str, data: bytes | str) -> None:
    with open(path, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def test_inputs_sharing_the_batch_must_agree(saved):
    _, make, d = saved("bert")
    sig = ember_lite.load(d).signatures["serving_default"]
    ids, _ = make(3)
    _, mask = make(2)
    with pytest.raises(ValueError, match=r"input 'mask' has shape \[2, 7\], the graph expects"):
        sig.run({"ids": ids, "mask": mask})


def _copy(src: str, dst: str) -> str:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _manifest(d: str) -> dict:
    with open(os.path.join(d, "saved_model.json")) as fh:
        return json.load(fh)


def _write_manifest(d: str, m: dict) -> None:
    with open(os.path.join(d, "saved_model.json"), "w") as fh:
        json.dump(m, fh)


def test_bad_directories(saved, tmp_path):
    _, _, d = saved("mlp")
    err = ember_lite.LiteFormatError
    assert issubclass(err, ValueError)
    with pytest.raises(err, match="no such directory"):
        ember_lite.load(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(err, match="saved_model.json is missing"):
        ember_lite.load(tmp_path / "empty")

    t = _copy(d, str(tmp_path / "tampered"))
    w = os.path.join(t, "weights.safetensors")
    blob = bytearray(_read(w))
    blob[-1] ^= 1
    _write(w, bytes(blob))
    with pytest.raises(err, match="weights.safetensors is damaged or was modified"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "truncated"))
    g = os.path.join(t, "graph.serving_default.json")
    _write(g, _read(g)[:-10])
    with pytest.raises(err, match="graph.serving_default.json is truncated"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "missing"))
    os.remove(os.path.join(t, "graph.serving_default.json.bin"))
    with pytest.raises(err, match="graph.serving_default.json.bin is missing"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "extra"))
    _write(os.path.join(t, "stray.txt"), "x")
    with pytest.raises(err, match="unexpected file stray.txt"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "notjson"))
    _write(os.path.join(t, "saved_model.json"), "{")
    with pytest.raises(err, match="not JSON"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "version"))
    m = _manifest(t)
    m["version"] = 99
    _write_manifest(t, m)
    with pytest.raises(err, match="version 99"):
        ember_lite.load(t)

    t = _copy(d, str(tmp_path / "escape"))
    m = _manifest(t)
    m["files"]["../x"] = {"sha256": "0", "bytes": 1}
    _write_manifest(t, m)
    with pytest.raises(err, match="not a plain path"):
        ember_lite.load(t)


def _rehash(d: str, rel: str) -> None:
    m = _manifest(d)
    data = _read(os.path.join(d, rel))
    m["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    _write_manifest(d, m)


def test_unknown_primitive_named_at_load(saved, tmp_path):
    _, _, d = saved("mlp")
    t = _copy(d, str(tmp_path / "prim"))
    g = os.path.join(t, "graph.serving_default.json")
    doc = json.loads(_read(g))
    k = next(i for i, e in enumerate(doc["eqns"]) if e["prim"] == "relu")
    doc["eqns"][k]["prim"] = "frobnicate"
    _write(g, json.dumps(doc))
    _rehash(t, "graph.serving_default.json")
    with pytest.raises(
        ember_lite.UnsupportedPrimitiveError,
        match=rf"ember_lite does not implement primitive 'frobnicate' \(used by equation {k}\)",
    ):
        ember_lite.load(t)


def test_bad_safetensors(saved, tmp_path):
    _, _, d = saved("mlp")
    err = ember_lite.LiteFormatError
    for label, data, msg in [
        ("short", b"\x01\x00", "not a safetensors file"),
        ("huge", (1 << 40).to_bytes(8, "little") + b"{}", "exceeds the file size"),
        ("notjson", (3).to_bytes(8, "little") + b"{{{", "header is not JSON"),
    ]:
        t = _copy(d, str(tmp_path / label))
        _write(os.path.join(t, "weights.safetensors"), data)
        _rehash(t, "weights.safetensors")
        with pytest.raises(err, match=msg):
            ember_lite.load(t)
    # a weight of the wrong shape is named
    t = _copy(d, str(tmp_path / "shape"))
    w = os.path.join(t, "weights.safetensors")
    raw = _read(w)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    name = next(k for k in header if k != "__metadata__" and len(header[k]["shape"]) == 2)
    header[name]["shape"] = header[name]["shape"][::-1]
    h = json.dumps(header).encode()
    _write(w, len(h).to_bytes(8, "little") + h + raw[8 + n :])
    _rehash(t, "weights.safetensors")
    with pytest.raises(err, match=f"captured array '{name}'"):
        ember_lite.load(t)


def test_safetensors_dtypes_match_torch():
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    from ember_lite._safetensors import read_safetensors

    tensors = {
        "f32": torch.randn(2, 3),
        "f64": torch.randn(3, dtype=torch.float64),
        "f16": torch.randn(4).half(),
        "bf16": torch.randn(5).bfloat16(),
        "i64": torch.arange(6),
        "i32": torch.arange(3, dtype=torch.int32),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "u8": torch.tensor([250, 1], dtype=torch.uint8),
        "b": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
    }
    got = read_safetensors(st.save(tensors))
    for k, t in tensors.items():
        want = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        assert got[k].dtype == want.dtype and got[k].shape == want.shape, k
        np.testing.assert_array_equal(got[k], want, err_msg=k)


_NO_EMBER = textwrap.dedent(
    """
    import sys, importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "ember" or name.startswith("ember."):
                raise ImportError("ember is blocked in this process")

    sys.meta_path.insert(0, Block())
    before = set(sys.modules)  # what site start-up imported (.pth hooks)
    import numpy as np
    import ember_lite
    m = ember_lite.load(sys.argv[1])
    out = m(np.zeros((3, 784), np.float32))
    bad = sorted(k for k in sys.modules if k == "ember" or k.startswith("ember."))
    allowed = ("numpy", "ember_lite")
    third = sorted({k.split(".")[0] for k in set(sys.modules) - before}
                   - set(sys.stdlib_module_names)
                   - set(sys.builtin_module_names) - set(allowed))
    import json
    print(json.dumps({"shape": out.shape, "ember": bad, "third_party": third}))
    """
)


def test_runs_without_ember(saved):
    _, _, d = saved("mlp")
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run(
        [sys.executable, "-c", _NO_EMBER, d], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == {"shape": [3, 10], "ember": [], "third_party": []}, got


def test_docstrings():
    import ember_lite._graph
    import ember_lite._model
    import ember_lite._nn
    import ember_lite._safetensors

    for mod in (ember_lite, ember_lite._graph, ember_lite._model, ember_lite._nn,
                ember_lite._safetensors):  # fmt: skip
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, extraglobs={"np": np})
        assert res.failed == 0, mod.__name__


# -- primitives one by one -----------------------------------------------------------------
F = ember.nn.functional


def _x(*shape: int, seed: int = 1) -> np.ndarray:
    return _rng(seed).standard_normal(shape).astype(np.float32)


OPS = {
    "unary": (
        lambda x: (
            x.exp() + x.abs().log1p() + x.abs().sqrt() + x.sin() * x.cos() + x.tanh(),
            x.sigmoid() + F.silu(x) + F.elu(x) + F.leaky_relu(x, 0.1) + F.softplus(x),
            F.gelu(x, approximate="tanh") + x.erf() + F.gelu(x) + x.clamp(-0.5, 0.5),
            (x.abs() + 1).rsqrt() + (x.abs() + 1).reciprocal() + x.floor() + x.sign(),
        ),
        (_x(4, 6),),
    ),
    "binary": (
        lambda x, y: (x / (y.abs() + 1), x**2, ember.maximum(x, y), ember.where(x > y, x, y)),
        (_x(3, 5), _x(3, 5, seed=2)),
    ),
    "reductions": (
        lambda x: (
            x.sum(1),
            x.amax((1, 2)),
            x.var(2),
            x.argmax(1),
            ember.logsumexp(x, 2),
            F.log_softmax(x, 1),
            F.softmax(x, 0),
            x.mean(),
            x.prod(2),
        ),
        (_x(3, 4, 5),),
    ),
    "shape": (
        lambda x: (
            ember.cat([x, x * 2], 1),
            ember.stack([x, x], 0),
            x.transpose(0, 2).flip(1),
            x[:, 1:3, ::2],
            x.unsqueeze(1).expand(-1, 2, -1, -1),
            x.tril(),
            x.triu(1),
            F.pad(x, (1, 2, 0, 1)),
            x.roll(1, 2),
            x.repeat(1, 2, 1),
        ),
        (_x(3, 4, 5),),
    ),
    "conv_pool": (
        lambda x: (
            F.conv2d(
                x,
                ember.ones(4, 2, 3, 3) * 0.1,
                ember.ones(4),
                stride=2,
                padding=2,
                dilation=2,
                groups=2,
            ),
            F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
            F.avg_pool2d(x, 2),
            F.max_pool2d(x, 3, 2, 1, dilation=1, ceil_mode=True),
            F.adaptive_avg_pool2d(x, 1),
        ),
        (_x(2, 4, 9, 9),),
    ),
    "norms": (
        lambda x: (
            F.layer_norm(x, (4, 5)),
            F.rms_norm(x, (5,), ember.ones(5) * 2, eps=1e-6),
            F.normalize(x, dim=2),
            F.batch_norm(
                x.reshape(3, 4, 5, 1), ember.ones(4) * 0.3, ember.ones(4) * 2, training=False
            ),
        ),
        (_x(3, 4, 5),),
    ),
    "attention_mask": (
        lambda q, m: F.scaled_dot_product_attention(q, q * 0.5, q, attn_mask=m[0]),
        (_x(2, 2, 5, 4), np.tril(np.ones((1, 5, 5), bool))),
    ),
    "math": (
        lambda x, y: (
            x.clamp(-0.9, 0.9).acos() + x.clamp(-0.9, 0.9).asin() + x.atan() + x.ceil(),
            x.cosh() + x.sinh() + x.tan() + x.trunc() + x.frac() + x.expm1() + x.exp2(),
            x.abs().log() + x.abs().log2() + x.abs().log10() + x.round() + ember.minimum(x, y),
            x - y,
            x // y,
            x % y,
            ember.fmod(x, y),
            x.cumprod(1),
            x.diagonal(),
            x.amin(1),
            x.argmin(0),
            (x > 0).any(1),
            (x > 0).all(0),
            ember.einsum("ij,kj->ik", x, y),
            ember.linalg.vector_norm(x, 3, dim=1),
            (x.log()).nan_to_num(0.5),
            (x < y).logical_and(x >= 0).logical_or(x <= y).logical_xor(x.isnan()).logical_not(),
            x.isinf().to(ember.float32) + x.isfinite().to(ember.float32),
        ),
        (_x(4, 4), _x(4, 4, seed=3) + 2),
    ),
    "integers": (
        lambda i, j: (i & j, i | j, i ^ j, ~i, i.clone(), ember.tensor([1, 2]) + i[:2]),
        (np.arange(6), np.arange(6)[::-1].copy()),
    ),
    "indexing": (
        lambda x, i: (
            x[i],
            x.index_select(1, i.clamp(0, 3)),
            x.gather(1, i.clamp(0, 3).expand(3, -1)),
            F.one_hot(i.clamp(0, 3), 4),
            F.embedding(i, x.T),
            x.masked_fill(x > 0, -1.0),
            x.cumsum(1),
        ),
        (_x(3, 4), np.array([2, 0, 1, 2])),
    ),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_primitives_equal_ember(tmp_path, name):
    fn, arrays = OPS[name]
    tensors = tuple(ember.from_numpy(a) for a in arrays)
    d = str(tmp_path / name)
    ember.export.save(fn, d, tensors, dynamic_batch=False)
    with ember.no_grad():
        want = _as_list(fn(*tensors))
    _assert_close(_as_list(ember_lite.load(d)(*arrays)), want, name)


def test_primitive_names_are_embers():
    from ember.compiler.ir import lookup_primitive

    for name in ember_lite.PRIMS:
        lookup_primitive(name)  # raises KeyError for a name ember does not have


# -- a directory written by hand: symbolic params, safetensors from another writer ----------
def _hand_written_model(d: str):
    """A saved model built without ember.export: a graph with a symbolic reshape target and
    a Ratio literal (1/B), weights written by the ``safetensors`` package."""
    st = pytest.importorskip("safetensors.numpy")
    from ember.compiler import interpret
    from ember.compiler.ir import Dim, Eqn, Graph, Literal, Ratio, Var
    from ember.compiler.serialize import save
    from ember.ops._core import REGISTRY

    B = Dim("B")
    x = Var((B, 3), ember.float32)
    w = Var((3,), ember.float32)
    scaled, biased = Var((B, 3), ember.float32), Var((B, 3), ember.float32)
    flat = Var((B * 3,), ember.float32)
    g = Graph(
        inputs=[x],
        captured=[w],
        captured_tensors=[ember.from_numpy(np.array([1.0, -2.0, 0.5], np.float32))],
        captured_names=["w"],
        eqns=[
            Eqn(REGISTRY["mul"], [x, Literal(Ratio("B", 0.0, 1.0, 1.0, 0.0))], {}, [scaled]),
            Eqn(REGISTRY["add"], [scaled, w], {}, [biased]),
            Eqn(REGISTRY["reshape"], [biased], {"shape": (B * 3,), "in_shape": (B, 3)}, [flat]),
        ],
        outputs=[flat],
        symbols={"B": (0, 0)},
    )
    os.makedirs(d)
    save(g, os.path.join(d, "graph.serving_default.json"), external_weights=True)
    st.save_file({"w": g.captured_tensors[0].numpy()}, os.path.join(d, "weights.safetensors"))
    files = {}
    for f in sorted(os.listdir(d)):
        data = _read(os.path.join(d, f))
        files[f] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest = {
        "format": "ember-saved-model",
        "version": 1,
        "ember_version": ember.__version__,
        "signatures": {
            "serving_default": {
                "graph": "graph.serving_default.json",
                "inputs": [{"name": "x", "dtype": "float32", "shape": [None, 3]}],
                "outputs": [{"name": "y", "dtype": "float32", "shape": [None]}],
            }
        },
        "weights": "weights.safetensors",
        "preprocessing": {"scale": 0.5},
        "files": files,
    }
    _write_manifest(d, manifest)
    return lambda a: interpret(g, [a])[0]


def test_hand_written_directory_with_symbolic_params(tmp_path):
    d = str(tmp_path / "hand")
    reference = _hand_written_model(d)
    m = ember_lite.load(d)
    assert m.preprocessing == {"scale": 0.5}
    (spec,) = m.signatures["serving_default"].inputs
    assert (spec.name, spec.dtype, spec.shape) == ("x", "float32", (None, 3))
    for b in (1, 4, 9):
        a = _x(b, 3, seed=b)
        got = m.signatures["serving_default"].run({"x": a})["y"]
        assert got.shape == (3 * b,)
        np.testing.assert_allclose(got, reference(a), rtol=1e-6)
        np.testing.assert_allclose(got, (a / b + [1.0, -2.0, 0.5]).reshape(-1), rtol=1e-6)


def test_bench_runtimes_agree(tmp_path):
    pytest.importorskip("onnxruntime")
    import bench_lite

    paths = bench_lite.save_models(str(tmp_path))["digits_cnn"]
    outs = {}
    for rt in ("ember_lite", "onnxruntime"):
        seconds, _, out = bench_lite.cold_start(rt, paths[rt], paths["x"], str(tmp_path))
        assert seconds > 0
        outs[rt] = np.load(out)
    np.testing.assert_allclose(outs["ember_lite"], outs["onnxruntime"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "args", "params"),
    [
        ("softmax_scale_mask", (_x(2, 3, 4), np.tril(np.ones((3, 4), np.float32))), {}),
        ("softmax_scale_mask", (_x(2, 3, 4),), {}),
        ("constant", (), {"value": _x(2, 2)}),
        ("getitem_mask", (_x(3, 4),), {"idx": (_x(3, 4) > 0,), "basic": False, "shape": (3, 4)}),
        ("dynamic_slice", (_x(5, 3), np.array(2)), {"dim": 0, "length": 3}),
        ("dynamic_slice", (_x(2, 6), np.array(0)), {"dim": 1, "length": 4}),
    ],
)
def test_primitives_no_export_emits_match_ember_kernels(name, args, params):
    """Primitives that exported graphs rarely hold (compiler fusions, data-dependent shapes),
    against ember's own kernel."""
    from ember.compiler.ir import lookup_primitive
    from ember.ops._core import REGISTRY

    if name == "softmax_scale_mask":
        params = {"scale": 0.7, "masked": len(args) > 1}
    prim = REGISTRY.get(name) or lookup_primitive(name)
    want = prim.impl(*args, **params)
    got = ember_lite.PRIMS[name](*args, **params)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_dynamic_slice_out_of_range_raises_as_ember():
    with pytest.raises(IndexError, match="does not fit dim 0 of size 5"):
        ember_lite.PRIMS["dynamic_slice"](_x(5, 3), np.array(3), dim=0, length=3)


def test_graph_array_file_must_lie_beside_the_graph(saved, tmp_path):
    _, _, d = saved("mlp")
    t = _copy(d, str(tmp_path / "elsewhere"))
    g = os.path.join(t, "graph.serving_default.json")
    doc = json.loads(_read(g))
    doc["data_file"] = "../secret.bin"
    _write(g, json.dumps(doc))
    _rehash(t, "graph.serving_default.json")
    with pytest.raises(ember_lite.LiteFormatError, match="must lie beside it"):
        ember_lite.load(t)


@pytest.mark.parametrize(
    "name",
    ["quantized_linear", "quantized_linear_dynamic", "quantized_conv2d", "quantized_lstm_dynamic"],
)
def test_int8_primitives_equal_ember_bitwise(name):
    """ember_lite's NumPy int8 path gives ember's integers and floats exactly, whichever int8
    backend (VNNI or NumPy/BLAS) ember uses; K beyond one exact float32 chunk (512) too."""
    from ember.ops._core import REGISTRY
    from ember.ops._samples import SAMPLES
    from ember.quantization import _kernels as K

    prim = REGISTRY[name]
    calls = list(SAMPLES[prim]())
    if name == "quantized_linear":
        g = np.random.default_rng(0)
        big = (
            ember.from_numpy(g.standard_normal((6, 1100)).astype(np.float32)),
            ember.from_numpy(g.integers(-128, 128, (3, 1100)).astype(np.int8)),
            ember.from_numpy(g.uniform(0.01, 0.02, 3).astype(np.float32)),
        )
        calls.append((big, {"scale": 0.03, "zero_point": 128, "relu": False}))
    backends = ["blas"] + (["vnni"] if K.backend() == "vnni" else [])
    for args, params in calls:
        arrays = [a._data for a in args]
        got = ember_lite.PRIMS[name](*arrays, **params)
        for b in backends:
            old = K.set_backend(b)
            try:
                want = prim.impl(*arrays, **params)
            finally:
                K.set_backend(old)
            for g_, w_ in zip(*(o if isinstance(o, tuple) else (o,) for o in (got, want))):
                np.testing.assert_array_equal(g_, w_, err_msg=f"{name} ({b})")


class _Tokens(ember.nn.Module):
    """Flattens (batch, seq) into one axis: its size in the graph is the product B*S."""

    def __init__(self):
        super().__init__()
        self.emb = ember.nn.Embedding(20, 8)
        self.lin = ember.nn.Linear(8, 5)

    def forward(self, ids):
        flat = self.emb(ids).reshape(-1, 8)
        scores = self.lin(flat).softmax(-1)
        return scores.reshape(ids.shape[0], -1).mean(1), flat[: ids.shape[0] * 2 - 1]


def test_multi_symbol_sizes(tmp_path):
    """A model saved with a dynamic batch and sequence length (``batch*seq`` sizes, stored as
    polynomials in several symbols) runs in ember_lite at other batch and sequence sizes."""
    ember.manual_seed(0)
    m = _Tokens().eval()
    ids = ember.from_numpy(np.random.default_rng(0).integers(0, 20, (2, 7)))
    ember.compile.mark_dynamic(ids, 1)
    d = ember.export.save(m, str(tmp_path / "tokens"), ids)
    with open(os.path.join(d, "graph.serving_default.json")) as fh:
        assert '"dimpoly"' in fh.read()
    lite = ember_lite.load(d)
    assert lite.signatures["serving_default"].inputs[0].shape == (None, None)
    for b, s in ((1, 3), (4, 9), (3, 2)):
        x = np.random.default_rng(b).integers(0, 20, (b, s))
        with ember.no_grad():
            want = [w.numpy() for w in m(ember.from_numpy(x))]
        got = lite(x)
        assert got[1].shape == (2 * b - 1, 8)
        _assert_close(list(got), want, "tokens")
