"""Helpers for the ember.nn.functional tests: run an op in ember and in PyTorch on the same
data and compare outputs and gradients."""

from __future__ import annotations

import numpy as np
import torch

import ember


def to_e(a, requires_grad=False):
    t = ember.from_numpy(np.array(a, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def to_t(a, requires_grad=False):
    t = torch.from_numpy(np.array(a, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def check(fe, ft, arrays, grad=None, rtol=1e-5, atol=1e-5, seed=0):
    """Compare ``fe(*ember tensors)`` with ``ft(*torch tensors)``; ``grad`` lists the indices
    of arrays to differentiate (float arrays only)."""
    grad = (
        [i for i, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
        if grad is None
        else grad
    )
    ea = [to_e(a, i in grad) if isinstance(a, np.ndarray) else a for i, a in enumerate(arrays)]
    ta = [to_t(a, i in grad) if isinstance(a, np.ndarray) else a for i, a in enumerate(arrays)]
    eo, to = fe(*ea), ft(*ta)
    if isinstance(eo, tuple):
        eo, to = eo[0], to[0]
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=rtol, atol=atol)
    if grad:
        rng = np.random.default_rng(seed)
        g = rng.standard_normal(tuple(to.shape)).astype(to.detach().numpy().dtype)
        eo.backward(ember.from_numpy(g.copy()))
        to.backward(torch.from_numpy(g.copy()))
        for i in grad:
            assert ea[i].grad is not None, f"no grad for input {i}"
            np.testing.assert_allclose(
                ea[i].grad.numpy(),
                ta[i].grad.numpy(),
                rtol=rtol,
                atol=atol,
                err_msg=f"grad of input {i}",
            )
    return eo, to


def numeric_grad_check(f, arrays, eps=1e-6, rtol=1e-5, atol=1e-6, seed=0):
    """float64 finite-difference check of d(sum(f * r))/d(array) for every array."""
    rng = np.random.default_rng(seed)
    ts = [to_e(a, True) for a in arrays]
    out = f(*ts)
    r = rng.standard_normal(tuple(out.shape))
    (out * ember.from_numpy(r)).sum().backward()
    for k, a in enumerate(arrays):
        num = np.zeros_like(a)
        flat = a.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            fp = float((f(*[to_e(b) for b in arrays]).detach().numpy() * r).sum())
            flat[i] = old - eps
            fm = float((f(*[to_e(b) for b in arrays]).detach().numpy() * r).sum())
            flat[i] = old
            num.reshape(-1)[i] = (fp - fm) / (2 * eps)
        np.testing.assert_allclose(
            ts[k].grad.numpy(),
            num,
            rtol=rtol,
            atol=atol,
            err_msg=f"finite-difference grad of input {k}",
        )


def randn(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
