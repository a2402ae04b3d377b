"""``ember.stft`` / ``ember.istft`` against PyTorch: values and gradients (signal, spectrum and
window) over hop/window lengths, centring and padding modes, normalization, one- and
two-sided spectra, batched and single signals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_close_torch

import ember

CASES = [
    {"n_fft": 8},
    {"n_fft": 8, "hop_length": 3, "win_length": 6},
    {"n_fft": 7, "center": False, "normalized": True},
    {"n_fft": 8, "pad_mode": "constant", "onesided": False},
    {"n_fft": 8, "pad_mode": "circular", "hop_length": 5},
    {"n_fft": 8, "pad_mode": "replicate", "hop_length": 2},
    {"n_fft": 5, "hop_length": 1},
    {"n_fft": 8, "hop_length": 2, "win_length": 5, "center": False, "align_to_window": True},
    {"n_fft": 8, "hop_length": 2, "win_length": 5, "center": False, "align_to_window": False},
]


def _ids(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items())


def _windows(kw, dtype):
    wl = kw.get("win_length", kw["n_fft"])
    rng = np.random.default_rng(wl)
    w = 0.5 + rng.uniform(0, 1, wl)  # positive: the overlap-add never vanishes
    return [(None, None), (ember.tensor(w, dtype=dtype), torch.tensor(w).to(_torch(dtype)))]


def _torch(dtype):
    return getattr(torch, dtype.name)


@pytest.mark.parametrize("kw", CASES, ids=_ids)
@pytest.mark.parametrize("shape", [(40,), (2, 33)], ids=["1d", "batch"])
def test_stft_matches_torch(kw, shape):
    rng = np.random.default_rng(0)
    if kw.get("align_to_window"):
        # PyTorch 2.13's align_to_window overruns the signal for some lengths (a storage-size
        # RuntimeError, e.g. 33 samples here): a length it handles
        shape = shape[:-1] + (40,)
    a = rng.standard_normal(shape)
    for we, wt in _windows(kw, ember.float64):
        e = ember.tensor(a, requires_grad=True)
        t = torch.tensor(a, requires_grad=True)
        se = ember.stft(e, window=we, return_complex=True, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch's warning about a rectangular window
            st = torch.stft(t, window=wt, return_complex=True, **kw)
        assert_close_torch(se, st, rtol=1e-10, atol=1e-10)
        w = rng.standard_normal(tuple(st.shape) + (2,))
        (ember.view_as_real(se) * ember.tensor(w)).sum().backward()
        (torch.view_as_real(st) * torch.from_numpy(w)).sum().backward()
        assert_close_torch(e.grad, t.grad, rtol=1e-10, atol=1e-10)


def test_stft_float32_and_complex_input():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(30).astype(np.float32)
    w = np.hanning(8).astype(np.float32)
    got = ember.stft(ember.tensor(a), 8, window=ember.tensor(w), return_complex=True)
    want = torch.stft(torch.tensor(a), 8, window=torch.tensor(w), return_complex=True)
    assert_close_torch(got, want, rtol=1e-4, atol=1e-5)
    z = (rng.standard_normal(30) + 1j * rng.standard_normal(30)).astype(np.complex64)
    got = ember.stft(ember.tensor(z), 8, window=ember.tensor(w), return_complex=True)
    want = torch.stft(torch.tensor(z), 8, window=torch.tensor(w), return_complex=True)
    assert_close_torch(got, want, rtol=1e-4, atol=1e-5)
    old = ember.stft(ember.tensor(a), 8, window=ember.tensor(w), return_complex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # return_complex=False is deprecated in PyTorch
        want = torch.stft(torch.tensor(a), 8, window=torch.tensor(w), return_complex=False)
    assert_close_torch(old, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw", CASES, ids=_ids)
@pytest.mark.parametrize("length", [None, 30, 45])
def test_istft_matches_torch(kw, length):
    kw = {k: v for k, v in kw.items() if k not in ("pad_mode", "align_to_window")}
    rng = np.random.default_rng(2)
    sig = torch.tensor(rng.standard_normal((2, 33)))
    for we, wt in _windows(kw, ember.float64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec = torch.stft(sig, window=wt, return_complex=True, **kw)
        spec = spec + 0.1j * torch.tensor(rng.standard_normal(tuple(spec.shape)))  # not exact
        e = ember.tensor(spec.numpy(), requires_grad=True)
        t = spec.clone().requires_grad_()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # (rectangular window, zero-padded tail)
                yt = torch.istft(t, window=wt, length=length, **kw)
        except RuntimeError:  # the window's overlap-add vanishes in the requested span
            with pytest.raises(RuntimeError, match="NOLA"):
                ember.istft(e, window=we, length=length, **kw)
            continue
        ye = ember.istft(e, window=we, length=length, **kw)
        assert_close_torch(ye, yt, rtol=1e-10, atol=1e-10)
        v = rng.standard_normal(tuple(yt.shape))
        (ye * ember.tensor(v)).sum().backward()
        (yt * torch.from_numpy(v)).sum().backward()
        assert_close_torch(e.grad, t.grad, rtol=1e-10, atol=1e-10)


def test_istft_return_complex_and_window_gradient():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((8, 9)) + 1j * rng.standard_normal((8, 9))
    w = 0.5 + rng.uniform(0, 1, 8)
    ez, tz = ember.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    ew, tw = ember.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    ye = ember.istft(ez, 8, hop_length=2, window=ew, onesided=False, return_complex=True)
    yt = torch.istft(tz, 8, hop_length=2, window=tw, onesided=False, return_complex=True)
    assert_close_torch(ye, yt, rtol=1e-10, atol=1e-10)
    ember.view_as_real(ye).pow(2).sum().backward()
    torch.view_as_real(yt).pow(2).sum().backward()
    assert_close_torch(ez.grad, tz.grad, rtol=1e-9, atol=1e-10)
    assert_close_torch(ew.grad, tw.grad, rtol=1e-9, atol=1e-10)


def test_round_trip():
    x = ember.randn(3, 50, dtype=ember.float64)
    w = ember.hann_window(16, dtype=ember.float64)
    s = ember.stft(x, 16, hop_length=4, window=w, return_complex=True)
    y = ember.istft(s, 16, hop_length=4, window=w, length=50)
    assert np.allclose(y.numpy(), x.numpy())
    assert np.allclose(x.stft(16, 4, window=w, return_complex=True).numpy(), s.numpy())
    assert np.allclose(s.istft(16, 4, window=w, length=50).numpy(), x.numpy())


def test_bad_arguments_raise_clear_errors():
    x = ember.randn(20)
    with pytest.raises(RuntimeError, match="return_complex"):
        ember.stft(x, 8)
    with pytest.raises(ValueError, match="n_fft"):
        ember.stft(x, 0, return_complex=True)
    with pytest.raises(ValueError, match="n_fft"):
        ember.stft(x, 64, center=False, return_complex=True)
    with pytest.raises(ValueError, match="win_length"):
        ember.stft(x, 8, win_length=9, return_complex=True)
    with pytest.raises(ValueError, match="window"):
        ember.stft(x, 8, window=ember.ones(5), return_complex=True)
    with pytest.raises(ValueError, match="align_to_window"):
        ember.stft(x, 8, align_to_window=True, return_complex=True)
    with pytest.raises(ValueError, match="pad_mode"):
        ember.stft(x, 8, pad_mode="mirror", return_complex=True)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        ember.stft(ember.randn(2, 2, 20), 8, return_complex=True)
    with pytest.raises(RuntimeError, match="onesided"):
        ember.stft(x * (1 + 1j), 8, onesided=True, return_complex=True)
    s = ember.stft(x, 8, return_complex=True)
    with pytest.raises(RuntimeError, match="complex-valued"):
        ember.istft(ember.view_as_real(s), 8)
    with pytest.raises(ValueError, match="bins"):
        ember.istft(s, 10)
    with pytest.raises(RuntimeError, match="NOLA"):
        ember.istft(s, 8, window=ember.zeros(8))
    with pytest.raises(RuntimeError, match="onesided"):
        ember.istft(s, 8, return_complex=True)
