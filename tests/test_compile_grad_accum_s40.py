"""``ember.compile`` on training steps whose ``backward()`` accumulates into an existing ``.grad``
(gradient accumulation, ``zero_grad(set_to_none=False)``, two backward calls in one step).

The existing gradient is a graph input read through its parameter at run time (a ``GradOf``
slot) and the graph writes ``old + new``, as eager code does; a ``.grad`` of None and a tensor
are two signatures (one retrace, explained). Each program runs compiled and eagerly on a copy
of the model, compared step by step (outputs, ``.grad`` and parameters, rtol 1e-6), with
warnings as errors (no eager fallback), and the accumulation loop against PyTorch.
"""

from __future__ import annotations

import copy
import itertools
import warnings

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember.compiler._grad_slots import GradOf, grad_key, grad_of

RTOL, ATOL = 1e-6, 1e-7


def _close(a, b, msg=""):
    np.testing.assert_allclose(
        a.detach().numpy(), b.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=msg
    )


def _same_state(m1, m2, where):
    for (n, p), q in zip(m1.named_parameters(), m2.parameters()):
        _close(p, q, f"{where}: {n}")
        assert (p.grad is None) == (q.grad is None), (where, n)
        if p.grad is not None:
            _close(p.grad, q.grad, f"{where}: {n}.grad")


def _model():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _batches(n, sizes=(4,)):
    g = np.random.default_rng(1)
    return [
        (
            ember.tensor(g.standard_normal((sizes[i % len(sizes)], 3)).astype(np.float32)),
            ember.tensor(g.standard_normal((sizes[i % len(sizes)], 2)).astype(np.float32)),
        )
        for i in range(n)
    ]


def test_brief_repro_compiles():
    m = nn.Linear(3, 2)
    e = copy.deepcopy(m)
    c = ember.compile(lambda x: m(x).pow(2).mean().backward())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in (ember.randn(2, 3), ember.randn(3, 3), ember.randn(5, 3)):
            c(x)
            e(x).pow(2).mean().backward()
            _same_state(m, e, "call")
    ex = ember.compile.explain(c)
    assert ex.traces == 1 and ex.eager_signatures == 0, str(ex)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_accumulation_four_micro_batches_step_outside(opt_name):
    accum = 4
    m = _model()
    e = copy.deepcopy(m)
    make = getattr(ember.optim, opt_name)
    opt, eopt = make(m.parameters(), lr=0.05), make(e.parameters(), lr=0.05)

    def micro(model):
        def f(x, y):
            loss = ((model(x) - y) ** 2).mean() / accum
            loss.backward()
            return loss.detach()

        return f

    c, ef = ember.compile(micro(m)), micro(e)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(12, sizes=(4, 5, 3))):
            _close(c(x, y), ef(x, y), f"loss {i}")
            _same_state(m, e, f"micro-batch {i}")
            if (i + 1) % accum == 0:
                opt.step()
                opt.zero_grad()
                eopt.step()
                eopt.zero_grad()
                _same_state(m, e, f"step {i}")
    ex = ember.compile.explain(c)
    assert ex.traces == 2 and ex.eager_signatures == 0, str(ex)
    assert "guard failed: .grad of " in ex.events[1]
    assert "'0.weight': tensor (4, 3) float32 -> None" in ex.events[1]


def test_accumulation_matches_torch():
    accum = 3
    m = _model()
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p, q in zip(tm.parameters(), m.parameters()):
            p.copy_(torch.from_numpy(q.detach().numpy()))
    opt = ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)

    @ember.compile
    def micro(x, y):
        (((m(x) - y) ** 2).mean() / accum).backward()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(9)):
            micro(x, y)
            tx, ty = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())
            (((tm(tx) - ty) ** 2).mean() / accum).backward()
            for p, q in zip(m.parameters(), tm.parameters()):
                np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)
            if (i + 1) % accum == 0:
                opt.step()
                opt.zero_grad()
                topt.step()
                topt.zero_grad()
    for p, q in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ember.compile.explain(micro).traces == 2


def test_zero_grad_keep_tensors_inside_full_step():
    m = _model()
    e = copy.deepcopy(m)
    opt = ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    eopt = ember.optim.SGD(e.parameters(), lr=0.1, momentum=0.9)

    def step(model, o):
        def f(x, y):
            o.zero_grad(set_to_none=False)
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            o.step()
            return loss.detach()

        return f

    c, ef = ember.compile(step(m, opt)), step(e, eopt)
    grads = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(6, sizes=(4, 6))):
            _close(c(x, y), ef(x, y), f"loss {i}")
            _same_state(m, e, f"step {i}")
            grads.append(m[0].weight.grad)
    # each call gives .grad a new tensor, as eagerly (zeroed in place, then old + new)
    assert all(a is not b for a, b in itertools.pairwise(grads))
    ex = ember.compile.explain(c)
    assert ex.traces <= 2 and ex.eager_signatures == 0, str(ex)
    g = c.graph(*_batches(1)[0])
    assert "0.weight.grad" in g.captured_names


def test_full_step_twice_without_zero_grad_accumulates():
    m = _model()
    e = copy.deepcopy(m)
    opt = ember.optim.Adam(m.parameters(), lr=0.01)
    eopt = ember.optim.Adam(e.parameters(), lr=0.01)

    def step(model, o):
        def f(x, y):
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            o.step()
            return loss.detach()

        return f

    c, ef = ember.compile(step(m, opt)), step(e, eopt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(5)):
            _close(c(x, y), ef(x, y), f"loss {i}")
            _same_state(m, e, f"step {i}")
    ex = ember.compile.explain(c)
    assert ex.traces <= 2 and ex.eager_signatures == 0, str(ex)


def test_two_backward_calls_in_one_step():
    m = _model()
    e = copy.deepcopy(m)

    def step(model):
        def f(x, y):
            out = model(x)
            ((out - y) ** 2).mean().backward(retain_graph=True)
            out.abs().sum().backward()

        return f

    c, ef = ember.compile(step(m)), step(e)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(4)):
            c(x, y)
            ef(x, y)
            _same_state(m, e, f"call {i}")
        for p in m.parameters():
            p.grad = None
        for p in e.parameters():
            p.grad = None
        for i, (x, y) in enumerate(_batches(2)):
            c(x, y)
            ef(x, y)
            _same_state(m, e, f"after reset {i}")
    assert ember.compile.explain(c).traces == 2


def test_two_losses_two_forward_passes():
    m = _model()
    e = copy.deepcopy(m)

    def step(model):
        def f(x, y):
            ((model(x) - y) ** 2).mean().backward()
            model(y[:, :1].expand(-1, 3)).sum().backward()

        return f

    c, ef = ember.compile(step(m)), step(e)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(4, sizes=(3, 4))):
            c(x, y)
            ef(x, y)
            _same_state(m, e, f"call {i}")
    assert ember.compile.explain(c).traces == 1


def test_compiled_optimizer_step_reads_the_current_grad():
    # the optimizer step alone compiled, the backward eager: .grad is a new tensor each time
    m = _model()
    e = copy.deepcopy(m)
    opt = ember.optim.SGD(m.parameters(), lr=0.1)
    eopt = ember.optim.SGD(e.parameters(), lr=0.1)
    c = ember.compile(opt.step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i, (x, y) in enumerate(_batches(4)):
            for model, o in ((m, opt), (e, eopt)):
                o.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
            c()
            eopt.step()
            _same_state(m, e, f"step {i}")


def test_grad_slot_and_key():
    w = ember.ones(2, requires_grad=True)
    assert grad_key([w]) == (None,)
    (w * 2).sum().backward()
    s = grad_of(w)
    assert type(s) is GradOf and s is grad_of(w)
    assert s._data.tolist() == [2.0, 2.0] and s.requires_grad is False
    assert grad_key([w]) == (((2,), "float32"),)
    w.grad = None
    with pytest.raises(RuntimeError, match="reads a parameter's .grad, which is None"):
        _ = s._data
