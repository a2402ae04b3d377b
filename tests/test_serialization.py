"""ember.save / ember.load: exact round trips, safetensors compatibility, corruption, atomicity."""

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
from ember import serialization as S

if not hasattr(ember, "save"):
    ember.save, ember.load = S.save, S.load
import ember.optim


def _eq(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, ember.Tensor):
        assert a.dtype is b.dtype and tuple(a.shape) == tuple(b.shape)
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(
            a._data.reshape(-1).view(np.uint8), b._data.reshape(-1).view(np.uint8)
        )
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _eq(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _eq(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def _all_dtypes():
    out = {}
    for d in (
        ember.float32,
        ember.float64,
        ember.float16,
        ember.bfloat16,
        ember.int8,
        ember.int16,
        ember.int32,
        ember.int64,
        ember.uint8,
    ):
        out[d.name] = (ember.arange(12) - 3).to(dtype=d).reshape(3, 4)
    out["bool"] = ember.tensor([True, False, True])
    out["scalar"] = ember.tensor(3.5)
    out["empty"] = ember.zeros(0, 3)
    return out


ROUND_TRIPS = [
    ember.randn(3, 4),
    ember.tensor(2.0, dtype=ember.bfloat16),
    _all_dtypes(),
    OrderedDict(
        [
            ("fc.weight", ember.randn(2, 3)),
            ("fc.bias", ember.zeros(2)),
            ("bn.num_batches_tracked", ember.tensor(5)),
        ]
    ),
    {
        "state": {0: {"step": ember.tensor(3.0), "exp_avg": ember.ones(2)}},
        "param_groups": [
            {
                "lr": 0.1,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "amsgrad": False,
                "foreach": None,
                "params": [0],
            }
        ],
    },
    {
        "epoch": 3,
        "name": "run",
        "ok": True,
        "none": None,
        "x": 1.5,
        "nan": float("nan"),
        "inf": float("-inf"),
        "nested": [[1, (2, "3")], {"a": []}],
        (1, "k"): "tuple key",
        2.5: "float key",
        None: "none key",
        True: "bool key",
    },
    [ember.ones(2), (ember.zeros(1), "s"), []],
    (),
    {},
    "just a string",
    42,
]


@pytest.mark.parametrize("obj", ROUND_TRIPS, ids=range(len(ROUND_TRIPS)))
def test_round_trip(tmp_path, obj):
    p = tmp_path / "x.safetensors"
    ember.save(obj, p)
    _eq(obj, ember.load(p))


def test_requires_grad_and_shared_tensors(tmp_path):
    w = ember.randn(3, requires_grad=True)
    obj = {"a": w, "b": [w, w]}
    ember.save(obj, tmp_path / "x")
    out = ember.load(tmp_path / "x")
    assert out["a"].requires_grad
    np.testing.assert_array_equal(out["b"][0].numpy(force=True), w.detach().numpy())
    with open(tmp_path / "x", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    assert len([k for k in header if k != "__metadata__"]) == 1


def test_file_objects(tmp_path):
    import io

    buf = io.BytesIO()
    ember.save({"w": ember.ones(3)}, buf)
    buf.seek(0)
    assert ember.load(buf)["w"].tolist() == [1.0, 1.0, 1.0]


def test_loaded_tensors_are_writable(tmp_path):
    ember.save({"w": ember.ones(3)}, tmp_path / "x")
    w = ember.load(tmp_path / "x")["w"]
    w.add_(1.0)
    assert w.tolist() == [2.0, 2.0, 2.0]


def test_unsupported_objects(tmp_path):
    with pytest.raises(TypeError, match="cannot save an object of type object"):
        ember.save({"a": object()}, tmp_path / "x")
    with pytest.raises(TypeError, match="unsupported dict key"):
        ember.save({frozenset(): 1}, tmp_path / "x")
    assert not os.listdir(tmp_path)


def test_optimizer_state_dict_round_trip(tmp_path):
    p = ember.randn(4, requires_grad=True)
    opt = ember.optim.Adam([p], lr=0.01, amsgrad=True)
    p.grad = ember.ones(4)
    opt.step()
    ember.save(opt.state_dict(), tmp_path / "opt")
    sd = ember.load(tmp_path / "opt")
    _eq(opt.state_dict(), sd)
    opt2 = ember.optim.Adam([p], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01


# -- compatibility with the safetensors package -----------------------------------------------
def test_real_safetensors_reads_ember_files(tmp_path):
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch

    d = _all_dtypes()
    ember.save(d, tmp_path / "x")
    got = load_file(str(tmp_path / "x"))
    for k, v in d.items():
        if k == "bfloat16":
            continue
        np.testing.assert_array_equal(got[k], v.numpy())
    gt = load_torch(str(tmp_path / "x"))
    assert gt["bfloat16"].dtype == torch.bfloat16
    np.testing.assert_array_equal(gt["bfloat16"].float().numpy(), d["bfloat16"].float().numpy())


def test_ember_reads_real_safetensors_files(tmp_path):
    from safetensors.numpy import save_file

    arrays = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1, 2], np.int64),
        "c": np.zeros((0,), np.float16),
        "d": np.array([True]),
    }
    save_file(arrays, str(tmp_path / "x"), metadata={"hello": "world"})
    got = ember.load(tmp_path / "x")
    assert set(got) == set(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(got[k].numpy(), v)


def test_import_pytorch_state_dict(tmp_path):
    from safetensors.torch import save_file

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["half"] = torch.randn(3).to(torch.bfloat16)
    save_file(sd, str(tmp_path / "model.safetensors"))
    got = ember.load(tmp_path / "model.safetensors")
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert isinstance(got[k], ember.Tensor)
        np.testing.assert_array_equal(got[k].float().numpy(), v.float().numpy())
    assert got["half"].dtype is ember.bfloat16
    assert got["1.num_batches_tracked"].dtype is ember.int64


# -- corruption ---------------------------------------------------------------------------------
@pytest.fixture
def good_file(tmp_path):
    p = tmp_path / "good.safetensors"
    ember.save(
        OrderedDict([("w", ember.randn(4, 5)), ("b", ember.randn(5)), ("n", ember.tensor(3))]), p
    )
    return p


def _raw(p):
    return p.read_bytes()


def test_truncated_files(tmp_path, good_file):
    data = _raw(good_file)
    n = struct.unpack("<Q", data[:8])[0]
    for cut in (0, 3, 8, 9, 8 + n // 2, 8 + n, 8 + n + 1, len(data) - 4, len(data) - 1):
        bad = tmp_path / f"cut{cut}"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}"):
            ember.load(bad)


def test_bad_header_length(tmp_path, good_file):
    data = _raw(good_file)
    for n in (0, 1, 2**40, len(data)):
        bad = tmp_path / "bad"
        bad.write_bytes(struct.pack("<Q", n) + data[8:])
        with pytest.raises(ValueError, match="header length|not valid JSON"):
            ember.load(bad)


def test_flipped_header_bytes(tmp_path, good_file):
    data = bytearray(_raw(good_file))
    n = struct.unpack("<Q", data[:8])[0]
    rng = np.random.default_rng(0)
    for pos in list(range(8, 8 + n, max(1, n // 40))) + list(rng.integers(8, 8 + n, 20)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        p = tmp_path / "flip"
        p.write_bytes(bytes(bad))
        try:
            ember.load(p)  # a flip inside a float's digits can still be a valid file
        except ValueError as e:
            assert "flip" in str(e)


def _with_header(p, header, data=b""):
    hb = json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(hb)) + hb + data)
    return p


@pytest.mark.parametrize(
    "header,data,msg",
    [
        ("garbage", b"", "not valid JSON"),
        ([1, 2], b"", "not a JSON object"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "truncated"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12"),
        ({"a": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype"),
        (
            {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            "invalid shape",
        ),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}},
            b"\0" * 8,
            "invalid data_offsets",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8, "trailing"),
        ({"__metadata__": {"ember.structure": "{not json"}}, b"", "structure metadata"),
        (
            {"__metadata__": {"ember.structure": json.dumps({"v": 1, "root": {"T": "zz"}})}},
            b"",
            "not in the file",
        ),
        (
            {"__metadata__": {"ember.structure": json.dumps({"v": 1, "root": {"Q": 1}})}},
            b"",
            "malformed",
        ),
        ({"__metadata__": {"ember.structure": json.dumps({"v": 99, "root": 1})}}, b"", "newer"),
        ({"__metadata__": {"x": 1}}, b"", "strings to strings"),
    ],
)
def test_malformed_headers(tmp_path, header, data, msg):
    p = tmp_path / "m.safetensors"
    if header == "garbage":
        hb = b"{this is not json"
        p.write_bytes(struct.pack("<Q", len(hb)) + hb)
    else:
        _with_header(p, header, data)
    with pytest.raises(ValueError, match=msg) as ei:
        ember.load(p)
    assert "m.safetensors" in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        ember.load(tmp_path / "nope")


# -- atomic writes --------------------------------------------------------------------------------
def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "ckpt.safetensors"
    ember.save({"v": ember.tensor([1.0])}, p)
    before = p.read_bytes()

    def boom(fh, head, arrays):
        fh.write(head[: len(head) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(S, "_write_all", boom)
    with pytest.raises(OSError, match="disk full"):
        ember.save({"v": ember.tensor([2.0, 3.0])}, p)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temp file left behind
    assert ember.load(p)["v"].tolist() == [1.0]


def test_failure_at_rename_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "ckpt.safetensors"
    ember.save({"v": ember.tensor([1.0])}, p)

    def bad_replace(a, b):
        raise OSError("rename failed")

    monkeypatch.setattr(S.os, "replace", bad_replace)
    with pytest.raises(OSError, match="rename failed"):
        ember.save({"v": ember.tensor([2.0])}, p)
    monkeypatch.undo()
    assert ember.load(p)["v"].tolist() == [1.0]
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_save_fsyncs(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(S.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    ember.save({"v": ember.ones(1)}, tmp_path / "x")
    assert len(calls) >= 2  # the file and its directory


def test_flipped_data_bytes_detected(tmp_path, good_file):
    data = bytearray(_raw(good_file))
    n = struct.unpack("<Q", data[:8])[0]
    for pos in (8 + n, 8 + n + 17, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        p = tmp_path / "dataflip"
        p.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match="checksum mismatch"):
            ember.load(p)


def test_dtype_values_round_trip(tmp_path):
    obj = {"dtypes": [ember.float32, ember.bfloat16, ember.int64, ember.bool]}
    ember.save(obj, tmp_path / "x")
    assert ember.load(tmp_path / "x") == obj
