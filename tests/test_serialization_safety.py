"""ember.save / ember.load never fail silently: every damaged byte is an error, files get the
umask's permissions, PyTorch pickles are recognised, and whole modules, NumPy arrays and
scalars round trip without pickle (PyTorch's torch.save/torch.load is the oracle for types).
Run under Python's default warning filters."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember import serialization as S


@pytest.fixture(autouse=True)
def _default_warning_filters():
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    ember.save(obj, buf)
    return buf.getvalue()


def _load_bytes(data: bytes, **kw):
    f = io.BytesIO(data)
    f.name = "damaged.ember"
    return ember.load(f, **kw)


# -- 3. every byte is checked ---------------------------------------------------------------
def test_every_flipped_byte_is_an_error():
    opt_like = {
        "w": ember.arange(6, dtype=ember.float32).reshape(2, 3),
        "param_groups": [{"lr": 0.1, "weight_decay": 0.01, "params": [0]}],
        "name": "run",
    }
    data = _bytes(opt_like)
    n = struct.unpack("<Q", data[:8])[0]
    assert _load_bytes(data)["param_groups"][0]["weight_decay"] == 0.01
    classes = {"length": range(8), "header": range(8, 8 + n), "data": range(8 + n, len(data))}
    meta_at = data.index(b"ember.structure")
    assert 8 < meta_at < 8 + n
    for where, positions in classes.items():
        for pos in positions:
            for mask in (0x01, 0x80, 0xFF):
                bad = bytearray(data)
                bad[pos] ^= mask
                with pytest.raises(ValueError, match="damaged.ember") as ei:
                    _load_bytes(bytes(bad))
                if where == "data":
                    assert "checksum mismatch" in str(ei.value)


def test_a_renamed_key_or_changed_value_is_caught():
    data = _bytes({"weight_decay": 0.01, "w": ember.ones(2)})
    for old, new in ((b"weight_decay", b"weight_decaz"), (b"0.01", b"0.02")):
        assert data.count(old) == 1
        with pytest.raises(ValueError, match="header checksum mismatch"):
            _load_bytes(data.replace(old, new))


def test_files_stay_readable_by_safetensors(tmp_path):
    from safetensors import safe_open

    p = tmp_path / "x.safetensors"
    ember.save({"a": ember.ones(2, 3), "b": np.arange(4, dtype=np.int32)}, p)
    with safe_open(str(p), "np") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == ["a", "b"]
        np.testing.assert_array_equal(f.get_tensor("b"), np.arange(4, dtype=np.int32))
    assert set(meta) >= {"ember.header_crc32", "ember.crc32", "ember.structure"}


def _handmade(header: dict) -> bytes:
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb


def test_version_1_files_load_and_version_2_requires_the_header_checksum():
    def meta(v):
        return {"__metadata__": {"ember.structure": json.dumps({"v": v, "root": {"D": {"a": 1}}})}}

    assert _load_bytes(_handmade(meta(1))) == {"a": 1}  # written before the header checksum
    with pytest.raises(ValueError, match="header checksum .* is missing"):
        _load_bytes(_handmade(meta(2)))
    moved = meta(2)
    moved["__metadata__"]["ember.header_crc32"] = "00000000"
    with pytest.raises(ValueError, match="not where ember writes it"):
        _load_bytes(_handmade(moved))


# -- 4. permissions -------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = tmp_path / "w.ember"
        ember.save({"w": ember.ones(2)}, p)
        ref = tmp_path / "plain"
        ref.write_bytes(b"x")  # any new file
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == (ref.stat().st_mode & 0o777) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["plain", "w.ember"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_overwriting_keeps_the_permissions_of_the_file(tmp_path):
    p = tmp_path / "w.ember"
    ember.save({"w": ember.ones(2)}, p)
    os.chmod(p, 0o640)
    ember.save({"w": ember.zeros(2)}, p)
    assert (p.stat().st_mode & 0o777) == 0o640
    assert ember.load(p)["w"].tolist() == [0.0, 0.0]


# -- 5. PyTorch files -----------------------------------------------------------------------
@pytest.mark.parametrize("zipfile", [True, False])
def test_loading_a_pytorch_pickle_says_what_it_is(tmp_path, zipfile):
    p = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 1).state_dict(), p, _use_new_zipfile_serialization=zipfile)
    what = "zip archive: a PyTorch checkpoint" if zipfile else "Python pickle"
    with pytest.raises(ValueError, match=what) as ei:
        ember.load(p)
    assert "model.pt" in str(ei.value) and "safetensors.torch.save_file" in str(ei.value)


def test_loading_a_numpy_file_says_what_it_is(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.ones(3))
    with pytest.raises(ValueError, match="NumPy .npy file"):
        ember.load(p)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".PT"])
def test_saving_under_a_pickle_suffix_warns(tmp_path, suffix):
    with pytest.warns(UserWarning, match=r"'\.ember' or '\.safetensors'"):
        ember.save({"w": ember.ones(1)}, tmp_path / f"w{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ember.save({"w": ember.ones(1)}, tmp_path / "w.ember")


def test_state_dict_shape_errors_print_ember_shapes():
    with pytest.raises(RuntimeError, match=r"shape \(5, 4\) from checkpoint.* is \(3, 4\)") as ei:
        nn.Linear(4, 3).load_state_dict({"weight": ember.zeros(5, 4), "bias": ember.zeros(3)})
    assert "torch.Size" not in str(ei.value)


# -- 6. torch.save(model) / NumPy patterns without pickle -------------------------------------
def _torch_round_trip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_numpy_arrays_and_scalars_round_trip_like_torch(tmp_path):
    obj = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i": np.array([1, 2], dtype=np.int16),
        "z": np.array(3.5),
        "f32": np.float32(1.25),
        "nan": np.float64("nan"),
        "i8": np.int8(-3),
        "b": np.bool_(True),
        "py": [1, 2.5, True],
    }
    obj["same"] = obj["a"]
    got = ember.load(_save(tmp_path, obj))
    ref = _torch_round_trip(obj)
    for k in obj:
        assert type(got[k]) is type(ref[k]), k
        if isinstance(ref[k], (np.ndarray, np.generic)):
            assert got[k].dtype == ref[k].dtype and np.shape(got[k]) == np.shape(ref[k])
            np.testing.assert_array_equal(got[k], ref[k])
        else:
            assert got[k] == ref[k]
    assert got["same"] is got["a"]
    with pytest.raises(TypeError, match="unsupported dtype"):
        ember.save({"c": np.zeros(2, dtype="datetime64[s]")}, io.BytesIO())


def _save(tmp_path, obj, name="m.ember"):
    p = tmp_path / name
    ember.save(obj, p)
    return p


class Block(nn.Module):
    """A user-defined module with positional, keyword and structured arguments."""

    def __init__(self, width, depth=2, *, act="relu", dims=(3, 4), dtype=ember.float32):
        super().__init__()
        self.cfg = (width, depth, act, dims)
        self.layers = nn.ModuleList([nn.Linear(width, width, dtype=dtype) for _ in range(depth)])
        self.norm = nn.BatchNorm1d(width)
        self.heads = nn.ModuleDict({"a": nn.Sequential(nn.Linear(width, 2), nn.Tanh())})
        self.register_buffer("steps", ember.zeros((), dtype=ember.int64))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return self.heads["a"](self.norm(x))


def _same_outputs(a, b, x):
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_a_whole_user_module_round_trips(tmp_path):
    ember.manual_seed(0)
    m = Block(5, depth=3, act="gelu", dims=(1, 2))
    m.train()
    m(ember.randn(8, 5))  # running stats move
    m.steps.add_(7)
    m.heads["b"] = nn.Linear(5, 1)  # added after construction: the saved tree has it
    m.eval()
    got = ember.load(_save(tmp_path, m))
    assert type(got) is Block and got.cfg == (5, 3, "gelu", (1, 2))
    assert list(got.heads) == ["a", "b"] and len(got.layers) == 3
    assert not got.training and not got.norm.training
    for (k, v), (k2, v2) in zip(m.state_dict().items(), got.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in got.parameters())
    _same_outputs(m, got, ember.randn(4, 5))


def test_sequential_with_batchnorm_buffers_and_nesting(tmp_path):
    ember.manual_seed(1)
    m = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(3 * 4 * 4, 2)),
    )
    m(ember.randn(4, 2, 4, 4))
    got = ember.load(_save(tmp_path, m))
    bn, gbn = m[1], got[1]
    np.testing.assert_array_equal(gbn.running_var.numpy(), bn.running_var.numpy())
    assert int(gbn.num_batches_tracked) == 1
    assert gbn.training  # saved in training mode
    _same_outputs(m, got, ember.randn(2, 2, 4, 4))


def test_tied_and_frozen_parameters(tmp_path):
    m = nn.Sequential(nn.Embedding(6, 4), nn.Linear(4, 6, bias=False))
    m[1].weight = m[0].weight  # tied after construction
    m[0].weight.requires_grad_(False)
    got = ember.load(_save(tmp_path, {"model": m, "step": 3}))["model"]
    assert got[1].weight is got[0].weight and not got[0].weight.requires_grad
    assert got[1].bias is None


def _write_module(tmp_path, modname):
    (tmp_path / f"{modname}.py").write_text(
        textwrap.dedent(
            """
            import ember

            class Secret(ember.nn.Module):
                def __init__(self, n):
                    super().__init__()
                    self.fc = ember.nn.Linear(n, 1)
            """
        )
    )


def test_classes_that_are_not_allowed_are_refused(tmp_path, monkeypatch):
    modname = "ember_test_secret_mod"
    _write_module(tmp_path, modname)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = __import__(modname)
    p = _save(tmp_path, mod.Secret(3))
    monkeypatch.delitem(sys.modules, modname)  # a fresh process has not imported it
    with pytest.raises(ValueError, match=f"'{modname}.Secret', which is not allowed") as ei:
        ember.load(p)
    assert "add_safe_globals" in str(ei.value)
    assert modname not in sys.modules  # refusing imported nothing
    got = ember.load(p, safe_globals=[f"{modname}.Secret"])
    assert type(got).__name__ == "Secret" and got.fc.in_features == 3
    monkeypatch.delitem(sys.modules, modname)
    try:
        S.add_safe_globals([f"{modname}.Secret"])
        assert type(ember.load(p)).__name__ == "Secret"
    finally:
        S.clear_safe_globals()
    monkeypatch.delitem(sys.modules, modname)
    with S.safe_globals([f"{modname}.Secret"]):
        ember.load(p)
    assert S.get_safe_globals() == []


def test_classes_defined_in_functions_cannot_be_saved(tmp_path):
    class Local(nn.Module):
        pass

    with pytest.raises(TypeError, match="defined inside a function"):
        ember.save(Local(), io.BytesIO())


def test_constructor_arguments_are_captured_cheaply():
    lin = nn.Linear(4, 3, bias=False)
    assert lin._init_args == ((4, 3), {"bias": False})
    assert nn.Sequential(lin)._init_args is None  # containers rebuild from their children


def test_attributes_changed_after_construction_are_kept(tmp_path):
    m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    m[1].momentum = None  # cumulative average from now on
    m[2].p = 0.1
    got = ember.load(_save(tmp_path, m))
    assert got[1].momentum is None and got[2].p == 0.1


def test_a_keras_model_round_trips_like_torch_save(tmp_path):
    from ember import keras

    ember.manual_seed(0)
    m = keras.Sequential(
        [keras.layers.Dense(4, activation="relu", input_shape=(3,)), keras.layers.Dense(2)]
    )
    got = ember.load(_save(tmp_path, m))
    x = ember.randn(5, 3)
    np.testing.assert_array_equal(got(x).detach().numpy(), m(x).detach().numpy())
    assert [layer.name for layer in got.layers] == [layer.name for layer in m.layers]


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2),
        lambda: nn.LSTM(4, 8, num_layers=2, bidirectional=True),
        lambda: nn.GRU(8, 3, batch_first=True),
    ],
    ids=["TransformerEncoder", "LSTM", "GRU"],
)
def test_layers_holding_references_to_their_weights_round_trip(tmp_path, make):
    ember.manual_seed(0)
    m = make().eval()
    got = ember.load(_save(tmp_path, m))
    x = ember.randn(3, 2, m.layers[0].linear1.in_features if hasattr(m, "layers") else m.input_size)
    a, b = m(x), got(x)
    a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


class Routed(nn.Module):
    """Keeps a plain list of references to its children, as some models do."""

    def __init__(self, n):
        super().__init__()
        self.a, self.b = nn.Linear(n, n), nn.Linear(n, 2)
        self.route = [self.a, self.b]

    def forward(self, x):
        for layer in self.route:
            x = layer(x)
        return x


def test_children_the_constructor_made_are_loaded_in_place(tmp_path):
    ember.manual_seed(0)
    m = Routed(3)
    m.b = nn.Linear(3, 2, bias=False)  # replaced after construction: rebuilt from its own args
    m.route[1] = m.b
    got = ember.load(_save(tmp_path, m))
    assert got.route[0] is got.a  # the constructor's child received the saved weights
    assert got.b.bias is None and got.route[1] is got.b  # references within the tree hold
    x = ember.randn(2, 3)
    np.testing.assert_array_equal(got.a(x).detach().numpy(), m.a(x).detach().numpy())
    np.testing.assert_array_equal(got.b(x).detach().numpy(), m.b(x).detach().numpy())
