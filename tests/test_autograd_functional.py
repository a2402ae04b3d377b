"""ember.autograd.functional against torch.autograd.functional: values, the nesting of the
results (Tensor / tuple / tuple of tuples), create_graph, strict and bad arguments."""

import numpy as np
import pytest
import torch
import torch.autograd.functional as TAF

import ember
import ember.autograd.functional as EAF

RNG = np.random.default_rng(0)
X = RNG.standard_normal(3)
A = RNG.standard_normal((2, 3))
B = RNG.standard_normal(3)


def _f_single(lib):
    return lambda x: lib.sin(x) * (x * x).sum()


def _f_multi(lib):
    return lambda a, b: (lib.tanh(a) @ b, (a * a).sum(1) * b[:2])


def _scalar(lib):
    return lambda a, b: (a.exp() * b).sum() + (b**3).sum()


def _same(e, t):
    """Same nesting and values (float64: to rounding)."""
    if isinstance(t, tuple):
        assert isinstance(e, tuple) and len(e) == len(t), (type(e), len(t))
        for a, b in zip(e, t):
            _same(a, b)
        return
    assert isinstance(e, ember.Tensor) and not isinstance(e, tuple)
    assert tuple(e.shape) == tuple(t.shape)
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)


def _args(arrays, lib):
    return tuple(lib.tensor(a) for a in arrays)


# (function, inputs, a cotangent per output, a tangent per input); one array means a bare
# Tensor, a tuple of them a tuple of Tensors (the nesting of the results follows)
CASES = [
    (_f_single, X, RNG.standard_normal(3), RNG.standard_normal(3)),
    (_f_multi, (A, B), (RNG.standard_normal(2), RNG.standard_normal(2)), (A * 0.5, B)),
]


def _to(lib, a):
    return tuple(lib.tensor(x) for x in a) if isinstance(a, tuple) else lib.tensor(a)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_vjp_jvp_jacobian_match_torch(case):
    make, inputs, v_out, v_in = CASES[case]
    ie, it = _to(ember, inputs), _to(torch, inputs)
    fe, ft = make(ember), make(torch)
    _same(EAF.vjp(fe, ie, _to(ember, v_out)), TAF.vjp(ft, it, _to(torch, v_out)))
    _same(EAF.jvp(fe, ie, _to(ember, v_in)), TAF.jvp(ft, it, _to(torch, v_in)))
    want = TAF.jacobian(ft, it)
    _same(EAF.jacobian(fe, ie), want)
    _same(EAF.jacobian(fe, ie, vectorize=True), want)
    _same(EAF.jacobian(fe, ie, vectorize=True, strategy="forward-mode"), want)


@pytest.mark.parametrize("tup", [False, True])
def test_hessian_vhp_hvp_match_torch(tup):
    if tup:
        fe, ft = _scalar(ember), _scalar(torch)
        ie, it = _args((B, X), ember), _args((B, X), torch)
        v = (RNG.standard_normal(3), RNG.standard_normal(3))
    else:
        fe, ft = (lambda x: (ember.sin(x) * x.sum())[0]), (lambda x: (torch.sin(x) * x.sum())[0])
        ie, it = ember.tensor(X), torch.tensor(X)
        v = (RNG.standard_normal(3),)
    ve, vt = _args(v, ember), _args(v, torch)
    ve, vt = (ve, vt) if tup else (ve[0], vt[0])
    _same(EAF.hessian(fe, ie), TAF.hessian(ft, it))
    _same(EAF.hessian(fe, ie, vectorize=True), TAF.hessian(ft, it, vectorize=True))
    _same(EAF.vhp(fe, ie, ve), TAF.vhp(ft, it, vt))
    _same(EAF.hvp(fe, ie, ve), TAF.hvp(ft, it, vt))


def test_single_element_defaults_for_v():
    fe, ft = (lambda x: (x**3).sum()), (lambda x: (x**3).sum())
    _same(EAF.vjp(fe, ember.tensor(X)), TAF.vjp(ft, torch.tensor(X)))
    _same(
        EAF.jvp(ft and (lambda x: x * 2), ember.tensor([1.5])),
        TAF.jvp(lambda x: x * 2, torch.tensor([1.5])),
    )
    _same(EAF.vhp(fe, ember.tensor([0.7])), TAF.vhp(ft, torch.tensor([0.7])))


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp", "jacobian", "hessian"])
def test_create_graph_gives_differentiable_results(name):
    """The results differentiate back to an input that requires grad, as in PyTorch."""
    xe = ember.tensor(X, requires_grad=True)
    xt = torch.tensor(X, requires_grad=True)
    ve, vt = ember.tensor(B), torch.tensor(B)

    def run(F, lib, x, v):
        f = (
            (lambda x: (x**3).sum() * x.sum())
            if name in ("hvp", "vhp", "hessian")
            else (lambda x: lib.sin(x) * x.sum())
        )
        if name in ("jacobian", "hessian"):
            r = getattr(F, name)(f, x, create_graph=True)
        else:
            out, r = getattr(F, name)(f, x, v, create_graph=True)
            assert out.requires_grad
        assert r.requires_grad
        (r * r).sum().backward()
        return r

    _same(run(EAF, ember, xe, ve), run(TAF, torch, xt, vt))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    re = EAF.vjp(lambda x: x * 2, ember.tensor(X, requires_grad=True), ember.tensor(B))
    assert not re[0].requires_grad and not re[1].requires_grad  # detached without it


def test_strict_and_independent_outputs():
    def fe(x, y):
        return x * 2

    def ft(x, y):
        return x * 2

    ie, it = _args((X, B), ember), _args((X, B), torch)
    _same(EAF.jacobian(fe, ie), TAF.jacobian(ft, it))  # zeros for y
    _same(EAF.vjp(fe, ie, ember.tensor(B)), TAF.vjp(ft, it, torch.tensor(B)))
    for F, i, v in ((EAF, ie, ember.tensor(B)), (TAF, it, torch.tensor(B))):
        with pytest.raises(RuntimeError, match="(?i)independent of input 1"):
            F.vjp(fe if F is EAF else ft, i, v, strict=True)
        with pytest.raises(RuntimeError, match="(?i)independent of input 1"):
            F.jacobian(fe if F is EAF else ft, i, strict=True)
    with pytest.raises(RuntimeError, match="does not require"):
        EAF.vjp(lambda x: ember.ones(3), ember.tensor(X), ember.ones(3), strict=True)
    with pytest.raises(RuntimeError, match="not supported together"):
        EAF.jacobian(fe, ie, strict=True, vectorize=True)


def test_bad_arguments_are_clear_errors():
    x = ember.tensor(X)
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        EAF.jacobian(lambda x: x, [1.0, 2.0])
    with pytest.raises(TypeError, match="outputs of the user-provided function"):
        EAF.jacobian(lambda x: 3.0, x)
    with pytest.raises(RuntimeError, match="v can only be None"):
        EAF.vjp(lambda x: x * 2, x)
    with pytest.raises(RuntimeError, match=r"invalid size: should be \(3,\) but got \(2,\)"):
        EAF.vjp(lambda x: x * 2, x, ember.ones(2))
    with pytest.raises(RuntimeError, match="invalid length"):
        EAF.jvp(lambda x, y: x * y, (x, x), (ember.ones(3),))
    with pytest.raises(RuntimeError, match="single element"):
        EAF.hessian(lambda x: x * 2, x)
    with pytest.raises(RuntimeError, match="single element"):
        EAF.hvp(lambda x: x * 2, x, x)
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        EAF.jacobian(lambda x: x, x, strategy="forward-mode")
    with pytest.raises(ValueError, match="strategy"):
        EAF.jacobian(lambda x: x, x, strategy="sideways")


def test_grad_is_grads_batched_matches_torch():
    xt = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    v = np.eye(3)
    (gt,) = torch.autograd.grad(xt**3, xt, torch.tensor(v), is_grads_batched=True)
    xe = ember.tensor([1.0, -2.0, 3.0], dtype=ember.float64, requires_grad=True)
    (ge,) = ember.autograd.grad(xe**3, xe, ember.tensor(v), is_grads_batched=True)
    np.testing.assert_allclose(ge.numpy(), gt.numpy(), rtol=1e-12)


def test_backward_takes_grad_variables_and_refuses_both():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    ember.autograd.backward(x * 3, grad_variables=ember.tensor([1.0, 0.5]))
    assert x.grad.tolist() == [3.0, 1.5]
    with pytest.raises(RuntimeError, match="not both"):
        ember.autograd.backward(x * 3, ember.ones(2), grad_variables=ember.ones(2))


def test_grad_allow_unused_defaults_to_none_like_torch():
    x = ember.tensor([1.0], requires_grad=True)
    y = ember.tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        ember.autograd.grad((x * 2).sum(), [x, y])
    assert ember.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True)[1].tolist() == [0.0]


def test_set_detect_anomaly_restores_as_a_context_manager():
    assert not ember.autograd.is_anomaly_enabled()
    with ember.autograd.set_detect_anomaly(True, check_nan=True):
        assert ember.autograd.is_anomaly_enabled()
    assert not ember.autograd.is_anomaly_enabled()
    ember.autograd.set_detect_anomaly(True)
    assert ember.autograd.is_anomaly_enabled()
    ember.autograd.set_detect_anomaly(False)
    assert not ember.autograd.is_anomaly_enabled()
