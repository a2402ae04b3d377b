"""``ember.fft`` against ``torch.fft``: values (float32/float64, complex64/complex128, every
``norm``, padding and trimming through ``n``/``s``, several ``dim`` choices), gradients against
torch autograd on real-valued losses, and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_torch

import ember
from ember import fft

NORMS = (None, "backward", "ortho", "forward")
rng = np.random.default_rng(0)


def _real(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _cplx(shape, dtype=np.complex128, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype)


def _both(a, grad=False):
    e = ember.tensor(a)
    t = torch.from_numpy(np.array(a))
    if grad:
        e.requires_grad_()
        t.requires_grad_()
    return e, t


def _tol(a):
    return 2e-5 if a.dtype in (np.float32, np.complex64) else 1e-10


# (name, kwargs, input kind) — 1-D transforms
ONE_D = [
    ("fft", {}, "c"),
    ("fft", {"n": 7}, "c"),
    ("fft", {"n": 3, "dim": 0}, "c"),
    ("fft", {}, "r"),
    ("ifft", {"n": 8}, "c"),
    ("ifft", {"dim": 0}, "r"),
    ("rfft", {}, "r"),
    ("rfft", {"n": 9, "dim": 0}, "r"),
    ("rfft", {"n": 3}, "r"),
    ("irfft", {}, "c"),
    ("irfft", {"n": 7}, "c"),
    ("irfft", {"n": 4, "dim": 0}, "c"),
    ("irfft", {"n": 12}, "c"),
    ("hfft", {}, "c"),
    ("hfft", {"n": 5}, "c"),
    ("ihfft", {}, "r"),
    ("ihfft", {"n": 7, "dim": 0}, "r"),
]
N_D = [
    ("fft2", {}, "c"),
    ("fft2", {"s": (3, 7)}, "r"),
    ("ifft2", {"dim": (0, 2)}, "c"),
    ("fftn", {}, "c"),
    ("fftn", {"s": (2, 6)}, "c"),
    ("fftn", {"dim": (2, 0)}, "r"),
    ("fftn", {"s": (3, -1), "dim": (0, 1)}, "c"),
    ("ifftn", {"s": (5,)}, "c"),
    ("rfft2", {}, "r"),
    ("rfft2", {"s": (5, 3)}, "r"),
    ("rfftn", {}, "r"),
    ("rfftn", {"dim": (0, 2)}, "r"),
    ("rfftn", {"dim": 1}, "r"),
    ("irfft2", {}, "c"),
    ("irfft2", {"s": (3, 7)}, "c"),
    ("irfftn", {}, "c"),
    ("irfftn", {"s": (4, 6), "dim": (0, 1)}, "c"),
    ("irfftn", {"s": (2, 3, 5)}, "c"),
    ("hfft2", {}, "c"),
    ("hfftn", {"s": (3, 4, 8)}, "c"),
    ("ihfft2", {}, "r"),
    ("ihfftn", {}, "r"),
    ("ihfftn", {"s": (5, 6), "dim": (1, 2)}, "r"),
]
SHAPE_1D = (4, 6)
SHAPE_ND = (3, 4, 5)


def _input(kind, shape, precision, seed=0):
    if kind == "c":
        return _cplx(shape, np.complex64 if precision == 32 else np.complex128, seed)
    return _real(shape, np.float32 if precision == 32 else np.float64, seed)


def _cases(table, shape):
    return [
        pytest.param(name, kw, kind, shape, id=f"{name}-{kind}-{kw}".replace(" ", ""))
        for name, kw, kind in table
    ]


ALL_CASES = _cases(ONE_D, SHAPE_1D) + _cases(N_D, SHAPE_ND)


@pytest.mark.parametrize("name,kw,kind,shape", ALL_CASES)
@pytest.mark.parametrize("precision", (32, 64))
def test_values_match_torch(name, kw, kind, shape, precision):
    a = _input(kind, shape, precision)
    for norm in NORMS:
        e, t = _both(a)
        got = getattr(fft, name)(e, **kw, norm=norm)
        want = getattr(torch.fft, name)(t, **kw, norm=norm)
        assert_close_torch(got, want.resolve_conj(), rtol=_tol(a), atol=_tol(a), msg=f"{norm}")


def _loss(lib, y, w):
    """A real-valued loss that weighs the real and imaginary parts differently."""
    if y.is_complex():
        r = lib.view_as_real(y.resolve_conj())
        return (r * w).sum() + (y.abs() ** 2).sum() * 0.1
    return (y * w[..., 0]).sum() + (y**2).sum() * 0.1


@pytest.mark.parametrize("name,kw,kind,shape", ALL_CASES)
def test_gradients_match_torch(name, kw, kind, shape):
    a = _input(kind, shape, 64, seed=1)
    for norm in NORMS:
        e, t = _both(a, grad=True)
        ye = getattr(fft, name)(e, **kw, norm=norm)
        yt = getattr(torch.fft, name)(t, **kw, norm=norm)
        w = _real(tuple(yt.shape) + (2,), seed=2)
        _loss(ember, ye, ember.tensor(w)).backward()
        _loss(torch, yt, torch.from_numpy(w)).backward()
        want = t.grad.resolve_conj()
        assert_close_torch(e.grad, want, rtol=1e-9, atol=1e-10, msg=f"{name} {kw} {norm}")


@pytest.mark.parametrize(
    "name,kw,kind,shape",
    [
        c
        for c in ALL_CASES
        if c.values[0] in ("fft", "rfft", "irfft", "hfft", "ihfft", "rfftn", "irfftn")
    ],
)
def test_gradients_match_finite_differences(name, kw, kind, shape, eps=1e-6):
    """The VJP against central differences of a real loss along real (and imaginary)
    directions of the input: d/dx and d/dy are the real and imaginary parts of the grad."""
    a = _input(kind, shape, 64, seed=3)
    f = getattr(fft, name)
    x = ember.tensor(a, requires_grad=True)
    y = f(x, **kw, norm="ortho")
    w = _real(tuple(y.shape) + (2,), seed=4)
    _loss(ember, y, ember.tensor(w)).backward()
    g = x.grad.numpy().reshape(-1)

    def loss(arr):
        with ember.no_grad():
            return float(_loss(ember, f(ember.tensor(arr), **kw, norm="ortho"), ember.tensor(w)))

    flat = a.reshape(-1)
    steps = [1.0, 1j] if kind == "c" else [1.0]
    for j in range(0, flat.size, 3):
        for step in steps:
            p, m = a.copy(), a.copy()
            p.reshape(-1)[j] += eps * step
            m.reshape(-1)[j] -= eps * step
            num = (loss(p) - loss(m)) / (2 * eps)
            ana = g[j].real if step == 1.0 else g[j].imag
            assert np.isclose(ana, num, rtol=1e-5, atol=1e-6), (name, kw, j, step, ana, num)


def test_second_order_gradient_matches_torch():
    a = _real((6,), seed=5)
    e, t = _both(a, grad=True)
    (ge,) = ember.autograd.grad((fft.rfft(e).abs() ** 3).sum(), [e], create_graph=True)
    (gt,) = torch.autograd.grad((torch.fft.rfft(t).abs() ** 3).sum(), [t], create_graph=True)
    (ge * ge).sum().backward()
    (gt * gt).sum().backward()
    assert_close_torch(ge, gt, rtol=1e-9, atol=1e-10)
    assert_close_torch(e.grad, t.grad, rtol=1e-8, atol=1e-9)


def test_fftfreq_of_zero_points_is_empty():
    assert fft.fftfreq(0).shape == (0,)
    assert tuple(torch.fft.fftfreq(0).shape) == (0,)


def test_dtypes_follow_torch():
    for a in (_real((4,), np.float32), _real((4,)), _cplx((4,), np.complex64), _cplx((4,))):
        e, t = _both(a)
        for name in ("fft", "ifft", "hfft"):
            assert getattr(fft, name)(e).dtype.name == str(getattr(torch.fft, name)(t).dtype)[6:]
        if a.dtype.kind == "f":
            for name in ("rfft", "ihfft"):
                got = getattr(fft, name)(e).dtype.name
                assert got == str(getattr(torch.fft, name)(t).dtype)[6:]
    ints = ember.tensor([1, 2, 3])
    assert fft.fft(ints).dtype is ember.complex64
    assert fft.rfft(ints).dtype is ember.complex64


@pytest.mark.parametrize("n", (1, 2, 5, 8))
@pytest.mark.parametrize("d", (1.0, 0.25))
def test_fftfreq_rfftfreq(n, d):
    assert_close_torch(fft.fftfreq(n, d), torch.fft.fftfreq(n, d))
    assert_close_torch(fft.rfftfreq(n, d), torch.fft.rfftfreq(n, d))
    got = fft.fftfreq(n, d, dtype=ember.float64)
    assert_close_torch(got, torch.fft.fftfreq(n, d, dtype=torch.float64))


@pytest.mark.parametrize("dim", (None, 0, -1, (0, 1), (1,)))
def test_fftshift_ifftshift(dim):
    a = _cplx((5, 4))
    e, t = _both(a, grad=True)
    for name in ("fftshift", "ifftshift"):
        assert_close_torch(
            getattr(fft, name)(e, dim=dim), getattr(torch.fft, name)(t, dim=dim), msg=name
        )
    fft.ifftshift(fft.fftshift(e, dim=dim), dim=dim).abs().sum().backward()
    torch.fft.ifftshift(torch.fft.fftshift(t, dim=dim), dim=dim).abs().sum().backward()
    assert_close_torch(e.grad, t.grad)


def test_round_trips():
    x = ember.tensor(_real((4, 6)))
    assert np.allclose(fft.ifft(fft.fft(x)).real.numpy(), x.numpy())
    assert np.allclose(fft.irfftn(fft.rfftn(x), s=(4, 6)).numpy(), x.numpy())
    assert np.allclose(fft.hfft(fft.ihfft(x), n=6).numpy(), x.numpy())


def test_bad_arguments_raise_clear_errors():
    x = ember.tensor(_real((4,)))
    z = ember.tensor(_cplx((4,)))
    with pytest.raises(ValueError, match="normalization"):
        fft.fft(x, norm="sideways")
    with pytest.raises(ValueError, match="number of data points"):
        fft.fft(x, n=0)
    with pytest.raises(RuntimeError, match="real input"):
        fft.rfft(z)
    with pytest.raises(RuntimeError, match="real input"):
        fft.ihfft(z)
    with pytest.raises(IndexError, match="dimension out of range"):
        fft.fft(x, dim=1)
    with pytest.raises(ValueError, match="unique"):
        fft.fftn(ember.zeros(2, 2), dim=(0, 0))
    with pytest.raises(ValueError, match="same length"):
        fft.fftn(ember.zeros(2, 2), s=(2,), dim=(0, 1))
    with pytest.raises(ValueError, match="number of data points"):
        fft.irfft(ember.tensor([1.0 + 0j]))
    with pytest.raises(TypeError, match="Tensor"):
        fft.fft([1.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        fft.fftfreq(4, dtype=ember.int64)


def test_compiled_matches_eager():
    def f(x):
        return fft.irfft(fft.rfft(x) * 2.0, n=8).sum(-1) + fft.fft(x).abs().sum(-1)

    x = ember.tensor(_real((3, 8), np.float32))
    cf = ember.compile(f)
    assert np.allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-5)


def test_default_dims_of_the_2d_and_nd_forms():
    """The 2-D forms act on the last two dims, the N-D forms on all of them by default."""
    x, z = _real((2, 3, 4)), _cplx((2, 3, 4))
    ex, tx = _both(x)
    ez, tz = _both(z)
    pairs = [
        (fft.fft2(ez), torch.fft.fft2(tz)),
        (fft.ifft2(ez), torch.fft.ifft2(tz)),
        (fft.rfft2(ex), torch.fft.rfft2(tx)),
        (fft.irfft2(ez), torch.fft.irfft2(tz)),
        (fft.hfft2(ez), torch.fft.hfft2(tz)),
        (fft.ihfft2(ex), torch.fft.ihfft2(tx)),
        (fft.ifftn(ez), torch.fft.ifftn(tz)),
        (fft.hfftn(ez), torch.fft.hfftn(tz)),
        (fft.ihfftn(ex), torch.fft.ihfftn(tx)),
    ]
    for k, (got, want) in enumerate(pairs):
        assert_close_torch(got, want.resolve_conj(), rtol=1e-10, atol=1e-10, msg=str(k))
