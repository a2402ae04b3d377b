"""Ops that PyTorch computes on complex tensors and Ember used to refuse: the norms
(``linalg.vector_norm``/``norm``/``matrix_norm`` on ``|x|``, ``norm``, ``dist``,
``pairwise_distance``, ``normalize``), ``logaddexp`` and ``logcumsumexp`` (PyTorch's branch of
the imaginary part), compared in values and in gradients (``z.grad = dL/dx + i dL/dy``) with
PyTorch 2.13 on complex128, plus the dtype rules of the norms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ember


def _z(shape, seed, scale=1.0):
    r = np.random.default_rng(seed)
    return (r.standard_normal(shape) + 1j * r.standard_normal(shape)) * scale


CASES = {
    "vector_norm": lambda m, a, b: m.linalg.vector_norm(a),
    "vector_norm_1_dim": lambda m, a, b: m.linalg.vector_norm(a, 1, dim=1),
    "vector_norm_inf": lambda m, a, b: m.linalg.vector_norm(a, math.inf, dim=0, keepdim=True),
    "vector_norm_-inf": lambda m, a, b: m.linalg.vector_norm(a, -math.inf),
    "vector_norm_3": lambda m, a, b: m.linalg.vector_norm(a, 3.0, dim=(0, 1)),
    "vector_norm_half": lambda m, a, b: m.linalg.vector_norm(a, 0.5, dim=-1),
    "linalg_norm": lambda m, a, b: m.linalg.norm(a),
    "linalg_norm_dim": lambda m, a, b: m.linalg.norm(a, 2, dim=1),
    "matrix_norm_fro": lambda m, a, b: m.linalg.matrix_norm(a),
    "matrix_norm_1": lambda m, a, b: m.linalg.matrix_norm(a, 1),
    "matrix_norm_inf": lambda m, a, b: m.linalg.matrix_norm(a, -math.inf),
    "norm": lambda m, a, b: m.norm(a),
    "norm_p_dim": lambda m, a, b: m.norm(a, 1, dim=0),
    "tensor_norm": lambda m, a, b: a.norm(p=3),
    "dist": lambda m, a, b: m.dist(a, b),
    "dist_p1": lambda m, a, b: m.dist(a, b, 1),
    "pairwise_distance": lambda m, a, b: m.nn.functional.pairwise_distance(a, b),
    "normalize": lambda m, a, b: m.nn.functional.normalize(a, dim=1),
    "logaddexp": lambda m, a, b: m.logaddexp(a * 3, b * 3),
    "logcumsumexp": lambda m, a, b: m.logcumsumexp(a * 4, 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_grads(name):
    za, zb = _z((3, 4), 0), _z((3, 4), 1)
    ta, tb = torch.tensor(za, requires_grad=True), torch.tensor(zb, requires_grad=True)
    ea, eb = ember.tensor(za, requires_grad=True), ember.tensor(zb, requires_grad=True)
    tout, eout = CASES[name](torch, ta, tb), CASES[name](ember, ea, eb)
    assert str(tout.dtype) == f"torch.{eout.dtype.name}"
    np.testing.assert_allclose(eout.detach().numpy(), tout.detach().numpy(), rtol=1e-10)
    w = _z(tuple(tout.shape), 2)
    if tout.is_complex():  # a real loss of a complex output
        tl = (tout * torch.tensor(w)).real.sum()
        el = (eout * ember.tensor(w)).real.sum()
    else:
        tl = (tout * torch.tensor(w.real)).sum()
        el = (eout * ember.tensor(w.real)).sum()
    tl.backward()
    el.backward()
    for t, e in ((ta, ea), (tb, eb)):
        if t.grad is None:
            assert e.grad is None or not np.any(e.grad.numpy())
            continue
        np.testing.assert_allclose(
            e.grad.numpy(), t.grad.resolve_conj().numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )


def test_complex64_results_are_float32():
    z = ember.tensor(_z((5,), 3).astype(np.complex64))
    assert ember.linalg.vector_norm(z).dtype is ember.float32
    assert ember.norm(z).dtype is ember.float32


def test_norm_dtype_rules():
    z = ember.tensor(_z((4,), 4).astype(np.complex64))
    got = ember.linalg.vector_norm(z, dtype=ember.complex128)
    want = torch.linalg.vector_norm(torch.tensor(z.numpy()), dtype=torch.complex128)
    assert got.dtype is ember.float64 and str(want.dtype) == "torch.float64"
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="dtype should be complex"):
        ember.linalg.vector_norm(z, dtype=ember.float64)
    # the singular-value matrix norms would need a complex SVD: still refused, clearly
    with pytest.raises(TypeError, match="complex"):
        ember.linalg.matrix_norm(ember.tensor(_z((3, 3), 5)), "nuc")


def test_zero_entries_have_zero_gradient():
    z = np.array([0j, 3 + 4j, 0j])
    t, e = torch.tensor(z, requires_grad=True), ember.tensor(z, requires_grad=True)
    torch.linalg.vector_norm(t).backward()
    ember.linalg.vector_norm(e).backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy(), atol=1e-15)
