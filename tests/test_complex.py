"""Complex dtypes against PyTorch: construction, ``dtype``/``to``/predicates, type promotion,
the basic ops on complex tensors, the complex-specific ops, and gradients (PyTorch's
conjugate-Wirtinger convention) compared with torch autograd and float64 finite
differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_torch

import ember


def _c(shape, seed=0, dtype=np.complex128):
    r = np.random.default_rng(seed)
    return (r.uniform(-2, 2, shape) + 1j * r.uniform(-2, 2, shape)).astype(dtype)


def _r(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-2, 2, shape).astype(dtype)


def _pair(a, grad=False):
    e = ember.tensor(a, requires_grad=grad)
    t = torch.tensor(a, requires_grad=grad)
    return e, t


# -- dtypes ---------------------------------------------------------------------------------
def test_dtypes_and_predicates():
    assert ember.complex64.is_complex and not ember.complex64.is_floating_point
    assert ember.cfloat is ember.complex64 and ember.cdouble is ember.complex128
    for a in (_c(3, dtype=np.complex64), _c(3)):
        e, t = _pair(a)
        assert e.dtype.name == str(t.dtype)[6:]
        assert e.is_complex() and ember.is_complex(e)
        assert not e.is_floating_point() and not ember.is_floating_point(e)
        assert e.dtype.itemsize == t.element_size()
    assert not ember.zeros(2).is_complex()
    # Python complex numbers take the complex dtype of the default float, as in PyTorch
    assert ember.tensor([1 + 2j, 3]).dtype is ember.complex64
    assert ember.tensor(1j).dtype is ember.complex64
    assert ember.tensor([1j], dtype=ember.complex128).dtype is ember.complex128
    z = ember.tensor([1 + 2j, -3j])
    assert z.tolist() == torch.tensor([1 + 2j, -3j]).tolist()
    assert complex(z[0]) == z[0].item() == 1 + 2j


def test_to_and_casts_match_torch():
    a = _c((2, 3))
    e, t = _pair(a)
    assert_close_torch(e.to(ember.complex64), t.to(torch.complex64))
    r = _r((2, 3))
    er, tr = _pair(r)
    assert_close_torch(er.to(ember.complex128), tr.to(torch.complex128))
    assert_close_torch(er.to(ember.complex64), tr.to(torch.complex64))
    # complex -> real keeps the real part (PyTorch warns; Ember does it silently)
    with pytest.warns(UserWarning):
        want = t.to(torch.float32)
    assert_close_torch(e.to(ember.float32), want)


@pytest.mark.parametrize(
    "a,b",
    [
        ("float32", "complex64"),
        ("float64", "complex64"),
        ("float32", "complex128"),
        ("int64", "complex64"),
        ("bool", "complex128"),
        ("complex64", "complex128"),
        ("float16", "complex128"),
    ],
)
def test_promote_types_matches_torch(a, b):
    got = ember.promote_types(getattr(ember, a), getattr(ember, b))
    want = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert got.name == str(want)[6:]
    assert ember.promote_types(getattr(ember, b), getattr(ember, a)) is got


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "complex64", "complex128"])
@pytest.mark.parametrize("scalar", [2, 1.5, 2j, 1 + 0j])
def test_scalar_and_zero_dim_promotion_matches_torch(dtype, scalar):
    x = np.arange(1, 4).astype(dtype)
    e, t = ember.tensor(x), torch.tensor(x)
    for op in (lambda u, s: u * s, lambda u, s: s + u, lambda u, s: u - s):
        assert_close_torch(op(e, scalar), op(t, scalar), msg=f"{dtype} {scalar}")
    e0, t0 = ember.tensor(scalar), torch.tensor(scalar)
    assert_close_torch(e * e0, t * t0, msg=f"{dtype} 0-d {scalar}")


# -- basic ops ------------------------------------------------------------------------------
UNARY = {
    "neg": lambda lib, z: -z,
    "conj": lambda lib, z: lib.conj(z),
    "conj_physical": lambda lib, z: lib.conj_physical(z),
    "abs": lambda lib, z: z.abs(),
    "angle": lambda lib, z: lib.angle(z),
    "real": lambda lib, z: lib.real(z),
    "imag": lambda lib, z: lib.imag(z),
    "real_prop": lambda lib, z: z.real * 2,
    "imag_prop": lambda lib, z: z.imag * 2,
    "exp": lambda lib, z: lib.exp(z),
    "sum": lambda lib, z: z.sum(0),
    "mean": lambda lib, z: z.mean(-1),
    "reshape": lambda lib, z: z.reshape(3, 2) * 1j,
    "transpose": lambda lib, z: z.transpose(0, 1) * (1 - 1j),
    "index": lambda lib, z: z[1, 1:] * z[0, :2] + z[:, [2, 0]].sum() + z.flip(-1)[0, :2],
    "square": lambda lib, z: z * z,
    "pow2": lambda lib, z: z**2,
    "sgn": lambda lib, z: lib.sgn(z),
    "view_as_real": lambda lib, z: lib.view_as_real(z),
    "resolve_conj": lambda lib, z: lib.resolve_conj(z.conj()),
    "log": lambda lib, z: lib.log(z),
    "log1p": lambda lib, z: lib.log1p(z),
    "log2": lambda lib, z: lib.log2(z),
    "log10": lambda lib, z: lib.log10(z),
    "sqrt": lambda lib, z: lib.sqrt(z),
    "rsqrt": lambda lib, z: lib.rsqrt(z),
    "reciprocal": lambda lib, z: lib.reciprocal(z),
    "sin": lambda lib, z: lib.sin(z),
    "cos": lambda lib, z: lib.cos(z),
    "tan": lambda lib, z: lib.tan(z),
    "sinh": lambda lib, z: lib.sinh(z),
    "cosh": lambda lib, z: lib.cosh(z),
    "tanh": lambda lib, z: lib.tanh(z),
    "expm1": lambda lib, z: lib.expm1(z),
    "exp2": lambda lib, z: lib.exp2(z),
    "sigmoid": lambda lib, z: lib.sigmoid(z),
    "pow_scalar": lambda lib, z: z**2.5,
    "var": lambda lib, z: lib.var(z, 1),
    "std": lambda lib, z: lib.std(z),
    "vdot": lambda lib, z: lib.vdot(z[0], z[1]),
    "prod": lambda lib, z: lib.prod(z, 1),
    "cumsum": lambda lib, z: lib.cumsum(z, 1),
    "cumprod": lambda lib, z: lib.cumprod(z, 1),
    "asin": lambda lib, z: lib.asin(z),
    "acos": lambda lib, z: lib.acos(z),
    "atan": lambda lib, z: lib.atan(z),
    "asinh": lambda lib, z: lib.asinh(z),
    "acosh": lambda lib, z: lib.acosh(z),
    "atanh": lambda lib, z: lib.atanh(z),
    "logsumexp": lambda lib, z: lib.logsumexp(z, 1),
    "float_power": lambda lib, z: lib.float_power(z, 1.5),
    "einsum": lambda lib, z: lib.einsum("ij,kj->ik", z, z * (2 - 1j)),
}
BINARY = {
    "add": lambda lib, x, y: x + y,
    "sub": lambda lib, x, y: x - y,
    "mul": lambda lib, x, y: x * y,
    "div": lambda lib, x, y: x / y,
    "matmul": lambda lib, x, y: (x * (1 + 0j)) @ (y * (1 - 1j)).transpose(0, 1),
    "mixed_real": lambda lib, x, y: lib.real(x) * y + x / (lib.abs(y) + 1),
}


def _as_loss(lib, y, w):
    """A real loss of ``y`` (real or complex), weighing both parts of a complex one."""
    if y.is_complex():
        return (lib.view_as_real(y.resolve_conj()) * w).sum()
    return (y * w[..., 0]).sum()


def _check_grad(fn, arrays, seed=1):
    es = [ember.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ye, yt = fn(ember, *es), fn(torch, *ts)
    assert_close_torch(ye, yt.resolve_conj(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(seed).standard_normal(tuple(yt.shape) + (2,))
    _as_loss(ember, ye, ember.tensor(w)).backward()
    _as_loss(torch, yt, torch.from_numpy(w)).backward()
    for e, t in zip(es, ts):
        assert_close_torch(e.grad, t.grad.resolve_conj(), rtol=1e-9, atol=1e-10)
    return es, w


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values_and_grads_match_torch(name):
    _check_grad(UNARY[name], [_c((2, 3))])


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("kinds", ["cc", "cr", "rc"])
def test_binary_values_and_grads_match_torch(name, kinds):
    arrays = [_c((2, 3), seed=k) if kd == "c" else _r((2, 3), seed=k) for k, kd in enumerate(kinds)]
    _check_grad(BINARY[name], arrays)


def test_complex64_values_match_torch():
    a, b = _c((3, 4), dtype=np.complex64), _c((4, 2), seed=1, dtype=np.complex64)
    ea, ta = _pair(a)
    eb, tb = _pair(b)
    assert_close_torch(ea @ eb, ta @ tb, rtol=1e-5, atol=1e-5)
    assert_close_torch(ea.exp() / (ea.abs() + 1), ta.exp() / (ta.abs() + 1), rtol=1e-5, atol=1e-5)
    assert_close_torch(ember.angle(ea), torch.angle(ta), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name,fn",
    [
        ("complex", lambda lib, x, y: lib.complex(x, y)),
        ("polar", lambda lib, x, y: lib.polar(x.abs() + 0.1, y)),
        ("view_as_complex", lambda lib, x, y: lib.view_as_complex(lib.stack([x, y], -1))),
        ("broadcast", lambda lib, x, y: lib.complex(x, y[:1])),
    ],
)
def test_construction_values_and_grads_match_torch(name, fn):
    _check_grad(fn, [_r((2, 3)), _r((2, 3), seed=1)])


def test_angle_and_abs_of_real_and_zero_inputs():
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan])
    e, t = _pair(x)
    assert_close_torch(ember.angle(e), torch.angle(t))
    assert_close_torch(ember.angle(ember.tensor([-1, 2])), torch.angle(torch.tensor([-1, 2])))
    z = np.array([0j, 1 + 1j])
    _check_grad(lambda lib, u: lib.angle(u) + u.abs(), [z])


def test_gradients_match_finite_differences():
    """d/dx and d/dy of a real loss are the real and imaginary parts of ``z.grad``."""

    def loss(lib, z, r):
        y = (z * z.conj() * r).exp() / (z + 2) + lib.angle(z) * z.abs()
        return (lib.view_as_real(y) ** 2).sum() + (z @ z.transpose(0, 1)).abs().sum()

    z0, r0 = _c((2, 3), seed=4) * 0.5, _r((2, 3), seed=5)
    z = ember.tensor(z0, requires_grad=True)
    r = ember.tensor(r0, requires_grad=True)
    loss(ember, z, r).backward()

    def value(za, ra):
        with ember.no_grad():
            return float(loss(ember, ember.tensor(za), ember.tensor(ra)))

    eps = 1e-6
    for j in range(z0.size):
        for step, part in ((1.0, "real"), (1j, "imag")):
            p, m = z0.copy(), z0.copy()
            p.reshape(-1)[j] += eps * step
            m.reshape(-1)[j] -= eps * step
            num = (value(p, r0) - value(m, r0)) / (2 * eps)
            ana = getattr(z.grad.numpy().reshape(-1)[j], part)
            assert np.isclose(ana, num, rtol=1e-5, atol=1e-6), (j, part, ana, num)
        p, m = r0.copy(), r0.copy()
        p.reshape(-1)[j] += eps
        m.reshape(-1)[j] -= eps
        num = (value(z0, p) - value(z0, m)) / (2 * eps)
        assert np.isclose(r.grad.numpy().reshape(-1)[j], num, rtol=1e-5, atol=1e-6)


def test_second_order_matches_torch():
    a = _c(4, seed=6)
    e, t = _pair(a, grad=True)
    (ge,) = ember.autograd.grad((e * e.exp()).abs().sum(), [e], create_graph=True)
    (gt,) = torch.autograd.grad((t * t.exp()).abs().sum(), [t], create_graph=True)
    assert_close_torch(ge, gt, rtol=1e-9, atol=1e-10)
    ember.view_as_real(ge).sum().backward()
    torch.view_as_real(gt).sum().backward()
    assert_close_torch(e.grad, t.grad, rtol=1e-8, atol=1e-9)


def test_real_and_imag_are_views():
    z = ember.tensor(_c(3))
    z.real.mul_(2.0)
    z.imag.zero_()
    t = torch.tensor(_c(3))
    t.real.mul_(2.0)
    t.imag.zero_()
    assert_close_torch(z, t)
    v = ember.view_as_real(z)
    v[0, 1] = 5.0
    assert z.tolist()[0] == complex(v.tolist()[0][0], 5.0)


def test_in_place_on_a_view_keeps_the_gradient():
    a = _c(3, seed=7)
    e, t = _pair(a, grad=True)
    ye, yt = e * 1.0, t * 1.0
    ye.real.mul_(3.0)
    yt.real.mul_(3.0)
    ember.view_as_real(ye).pow(2).sum().backward()
    torch.view_as_real(yt).pow(2).sum().backward()
    assert_close_torch(e.grad, t.grad, rtol=1e-10, atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    x = ember.zeros(3)
    with pytest.raises(RuntimeError, match="non-complex"):
        ember.imag(x)
    with pytest.raises(RuntimeError, match="complex tensors"):
        ember.view_as_real(x)
    with pytest.raises(ValueError, match="size 2"):
        ember.view_as_complex(ember.zeros(3, 3))
    with pytest.raises(ValueError, match="float32 and float64"):
        ember.view_as_complex(ember.zeros(3, 2, dtype=ember.int64))
    with pytest.raises(TypeError, match="same dtype"):
        ember.complex(ember.zeros(2), ember.zeros(2, dtype=ember.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        ember.complex(ember.zeros(2, dtype=ember.int64), ember.zeros(2, dtype=ember.int64))
    with pytest.raises(TypeError, match="polar"):
        ember.polar(ember.zeros(2), ember.zeros(2, dtype=ember.float64))
    with pytest.raises(TypeError, match="Tensor"):
        ember.real([1j])
    with pytest.raises(TypeError, match="complex256|not supported"):
        ember.tensor(np.zeros(2, np.clongdouble))


# -- linalg.eig / eigvals -------------------------------------------------------------------
def _eig_inputs():
    rng = np.random.default_rng(8)
    return [
        rng.standard_normal((4, 4)),
        rng.standard_normal((2, 3, 3)).astype(np.float32),
        rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)),
    ]


@pytest.mark.parametrize("k", range(3))
def test_eig_matches_torch(k):
    a = _eig_inputs()[k]
    tol = 1e-4 if a.dtype == np.float32 else 1e-10
    e, t = _pair(a, grad=True)
    le, ve = ember.linalg.eig(e)
    lt, vt = torch.linalg.eig(t)
    # the same LAPACK routine: the same order; eigenvectors compared up to their phase
    assert_close_torch(le, lt, rtol=tol, atol=tol)
    assert_close_torch(ve.abs(), vt.abs(), rtol=tol, atol=tol)
    assert_close_torch(ember.linalg.eigvals(e), torch.linalg.eigvals(t), rtol=tol, atol=tol)
    av = e.to(le.dtype) @ ve
    assert np.allclose(av.detach().numpy(), (ve * le.unsqueeze(-2)).detach().numpy(), atol=tol)
    # gradients of phase-invariant losses: the eigenvalues' parts and |eigenvectors|
    rng = np.random.default_rng(9)
    w1 = rng.standard_normal(tuple(lt.shape) + (2,))
    w2 = rng.standard_normal(tuple(vt.shape))
    loss_e = (ember.view_as_real(le) * ember.tensor(w1)).sum() + (ve.abs() * ember.tensor(w2)).sum()
    loss_t = (torch.view_as_real(lt) * torch.tensor(w1)).sum() + (vt.abs() * torch.tensor(w2)).sum()
    loss_e.backward()
    loss_t.backward()
    assert_close_torch(e.grad, t.grad, rtol=tol * 100, atol=tol * 10)


def test_eigvals_gradient_matches_finite_differences():
    a = _eig_inputs()[0]
    x = ember.tensor(a, requires_grad=True)
    w = np.random.default_rng(10).standard_normal((4, 2))
    (ember.view_as_real(ember.linalg.eigvals(x)) * ember.tensor(w)).sum().backward()

    def value(m):
        lam = np.linalg.eigvals(m)
        # match eigenvalues to the unperturbed order (a small step keeps them apart)
        base = np.linalg.eigvals(a)
        order = [int(np.argmin(np.abs(lam - b))) for b in base]
        lam = lam[order]
        return float((np.stack([lam.real, lam.imag], -1) * w).sum())

    eps = 1e-6
    for j in range(a.size):
        p, m = a.copy(), a.copy()
        p.reshape(-1)[j] += eps
        m.reshape(-1)[j] -= eps
        num = (value(p) - value(m)) / (2 * eps)
        assert np.isclose(x.grad.numpy().reshape(-1)[j], num, rtol=1e-5, atol=1e-6)
