"""``ember.save``/``ember.load`` of complex tensors: complex64 as safetensors' ``C64``,
complex128 as float64 pairs listed in the metadata; round trips of tensors, NumPy arrays and
scalars, Python complex numbers, modules and state dicts with complex parameters, and files
read and written by the ``safetensors`` package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember import nn


def _z(shape, dtype, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_tensor_round_trip(tmp_path, dtype):
    a = _z((2, 3, 4), dtype)
    t = ember.tensor(a, requires_grad=True)
    view = ember.tensor(_z((4, 5), dtype, 1)).t()  # non-contiguous
    empty = ember.tensor(np.zeros((0, 3), dtype))
    scalar = ember.tensor(_z((), dtype, 2))
    p = tmp_path / "z.ember"
    ember.save({"t": t, "view": view, "empty": empty, "scalar": scalar, "arr": a}, p)
    out = ember.load(p)
    for k, want in (("t", t), ("view", view), ("empty", empty), ("scalar", scalar)):
        got = out[k]
        assert got.dtype is want.dtype, k
        assert tuple(got.shape) == tuple(want.shape), k
        np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy(), err_msg=k)
    assert out["t"].requires_grad
    assert isinstance(out["arr"], np.ndarray) and out["arr"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out["arr"], a)


def test_scalars_and_special_values(tmp_path):
    p = tmp_path / "s.ember"
    nanz = complex(float("nan"), -np.inf)
    obj = {"py": 1.5 - 2j, "nan": nanz, "np64": np.complex64(1 + 1j), "np128": np.complex128(-2j)}
    zt = ember.tensor([complex(np.inf, 1), complex(0, np.nan)], dtype=ember.complex128)
    obj["inf"] = zt
    ember.save(obj, p)
    out = ember.load(p)
    assert out["py"] == 1.5 - 2j and type(out["py"]) is complex
    assert np.isnan(out["nan"].real) and out["nan"].imag == -np.inf
    assert out["np64"] == np.complex64(1 + 1j) and out["np64"].dtype == np.complex64
    assert out["np128"] == -2j and out["np128"].dtype == np.complex128
    np.testing.assert_array_equal(out["inf"].numpy(), zt.numpy())


class _ComplexLayer(nn.Module):
    def __init__(self, n: int = 3):
        super().__init__()
        self.w = nn.Parameter(ember.tensor(_z((n,), np.complex64)))
        self.register_buffer("phase", ember.tensor(_z((n,), np.complex128, 1)))

    def forward(self, x):
        return (x * self.w).abs() + self.phase.real.to(ember.float32)


def test_module_and_state_dict(tmp_path):
    m = _ComplexLayer()
    p = tmp_path / "m.ember"
    ember.save(m.state_dict(), p)
    sd = ember.load(p)
    assert sd["w"].dtype is ember.complex64 and sd["phase"].dtype is ember.complex128
    m2 = _ComplexLayer()
    m2.w.data = ember.zeros(3, dtype=ember.complex64)
    m2.load_state_dict(sd)
    x = ember.tensor(_z((3,), np.complex64, 5))
    np.testing.assert_array_equal(m2(x).detach().numpy(), m(x).detach().numpy())
    # a whole module
    ember.save(m, tmp_path / "whole.ember")
    m3 = ember.load(tmp_path / "whole.ember")
    assert isinstance(m3.w, nn.Parameter) and m3.w.dtype is ember.complex64
    np.testing.assert_array_equal(m3(x).detach().numpy(), m(x).detach().numpy())
    # gradients flow to the loaded complex parameter (PyTorch's convention, as any leaf)
    m3(x).sum().backward()
    assert m3.w.grad is not None and m3.w.grad.dtype is ember.complex64


def test_files_of_the_safetensors_package(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    st_numpy = pytest.importorskip("safetensors.numpy")
    # written by safetensors (C64), read by ember
    w = torch.tensor(_z((2, 2), np.complex64))
    st_torch.save_file({"w": w}, str(tmp_path / "t.safetensors"))
    got = ember.load(tmp_path / "t.safetensors")["w"]
    assert got.dtype is ember.complex64
    np.testing.assert_array_equal(got.numpy(), w.numpy())
    # written by ember, read by safetensors: complex64 as C64, complex128 as float64 pairs
    z64, z128 = _z((3,), np.complex64), _z((2, 2), np.complex128)
    ember.save({"a": ember.tensor(z64), "b": ember.tensor(z128)}, tmp_path / "e.ember")
    raw = st_numpy.load_file(str(tmp_path / "e.ember"))
    np.testing.assert_array_equal(raw["a"], z64)
    assert raw["b"].dtype == np.float64 and raw["b"].shape == (2, 2, 2)
    np.testing.assert_array_equal(raw["b"][..., 0] + 1j * raw["b"][..., 1], z128)


def test_damaged_complex128_listing_is_an_error(tmp_path):
    from ember import _save_format as sf

    head, arrays = sf.pack({"x": np.ones(3)}, {sf.C128_KEY: '["x"]'})
    p = tmp_path / "bad.ember"
    p.write_bytes(head + b"".join(a.tobytes() for a in arrays))
    with pytest.raises(ValueError, match="float64 tensor of pairs"):
        ember.load(p)
