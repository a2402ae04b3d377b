"""Helpers for comparing ember.nn layers with their PyTorch counterparts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F


def needs_F(*names):
    """Skip unless ``ember.nn.functional`` provides ``names`` (it is written separately)."""
    missing = [n for n in names if not hasattr(F, n)]
    return pytest.mark.skipif(bool(missing), reason=f"ember.nn.functional lacks {missing}")


def to_np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.detach().numpy() if t.requires_grad else t.numpy()


def _loss(outs, weights):
    return sum((o * w).sum() for o, w in zip(outs, weights))


def _flat(out):
    if isinstance(out, (tuple, list)):
        r = []
        for o in out:
            r.extend(_flat(o))
        return r
    return [] if out is None else [out]


def compare(
    tlayer, elayer, inputs, grad_inputs=None, atol=1e-5, rtol=1e-5, train=True, forward=None
):
    """Load ``tlayer``'s state dict into ``elayer`` and compare outputs, input grads and
    parameter grads. ``inputs`` are NumPy arrays."""
    tsd = tlayer.state_dict()
    esd = elayer.state_dict()
    assert list(tsd) == list(esd), (list(tsd), list(esd))
    for k in tsd:
        assert tuple(tsd[k].shape) == tuple(esd[k].shape), k
    elayer.load_state_dict(tsd)
    tlayer.train(train)
    elayer.train(train)
    if grad_inputs is None:
        grad_inputs = [np.issubdtype(np.asarray(a).dtype, np.floating) for a in inputs]
    tin = [torch.tensor(a, requires_grad=g) for a, g in zip(inputs, grad_inputs)]
    ein = [ember.tensor(a, requires_grad=g) for a, g in zip(inputs, grad_inputs)]
    call_t = forward[0] if forward else (lambda m, *a: m(*a))
    call_e = forward[1] if forward else (lambda m, *a: m(*a))
    tout = _flat(call_t(tlayer, *tin))
    eout = _flat(call_e(elayer, *ein))
    assert len(tout) == len(eout)
    for t, e in zip(tout, eout):
        np.testing.assert_allclose(to_np(e), to_np(t), atol=atol, rtol=rtol)
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in tout]
    diff = [i for i, t in enumerate(tout) if t.requires_grad]
    if not diff:
        return
    _loss([tout[i] for i in diff], [torch.tensor(ws[i]) for i in diff]).backward()
    _loss([eout[i] for i in diff], [ember.tensor(ws[i]) for i in diff]).backward()
    for t, e in zip(tin, ein):
        if t.requires_grad:
            np.testing.assert_allclose(to_np(e.grad), to_np(t.grad), atol=atol, rtol=rtol)
    eparams = dict(elayer.named_parameters())
    for name, p in tlayer.named_parameters():
        if p.grad is None:
            assert eparams[name].grad is None or not np.any(to_np(eparams[name].grad)), name
            continue
        np.testing.assert_allclose(
            to_np(eparams[name].grad), to_np(p.grad), atol=atol, rtol=rtol, err_msg=name
        )
