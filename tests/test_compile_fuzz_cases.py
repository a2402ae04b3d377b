"""ember.compile against eager code: regressions found by fuzzing user-style programs
(state changed between calls, module attribute effects, bad input values, grad modes)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import nn
from ember.compiler import CompileError


def _t(*shape, seed=0, requires_grad=False):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    t = ember.tensor(a)
    if requires_grad:
        t.requires_grad = True
    return t


def _mlp():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unfreezing_a_parameter_between_compiled_steps():
    # requires_grad of a parameter is part of the guard: a graph traced while it was frozen
    # computes no gradient for it
    me, mc = _mlp(), _mlp()
    oe = ember.optim.SGD(me.parameters(), lr=0.1)
    oc = ember.optim.SGD(mc.parameters(), lr=0.1)

    def step(m, o, x):
        o.zero_grad()
        loss = (m(x) ** 2).mean()
        loss.backward()
        o.step()
        return loss

    cstep = ember.compile(step)
    for s in range(6):
        for m in (me, mc):
            m[0].weight.requires_grad_(s not in (2, 3))
        x = _t(3, 4, seed=s)
        _close(cstep(mc, oc, x).item(), step(me, oe, x).item())
        for pe, pc in zip(me.parameters(), mc.parameters()):
            _close(pc.detach().numpy(), pe.detach().numpy())


class _Tempered(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.tau = 1.0

    def forward(self, x):
        return (self.fc(x) / self.tau).softmax(-1)


def test_python_attributes_of_modules_are_guarded():
    m = _Tempered()
    cm = ember.compile(m)
    with ember.no_grad():
        for tau in (1.0, 1.0, 0.5, 0.25, 0.5):
            m.tau = tau
            x = _t(2, 3, seed=1)
            _close(cm(x).numpy(), m(x).numpy())
    assert cm.explain().traces == 3
    assert any("Python attribute of a module changed" in e for e in cm.explain().events)


def test_dropout_rate_changed_between_calls():
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    cm = ember.compile(m)
    with ember.no_grad():
        for p in (0.5, 0.5, 0.0, 0.0):
            m[1].p = p
            x = _t(2, 3)
            ember.manual_seed(1)
            e = m(x)
            ember.manual_seed(1)
            _close(cm(x).numpy(), e.numpy())


def test_replaced_parameter_buffer_submodule_and_hook():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.bn = nn.BatchNorm1d(4)
            self.act = nn.ReLU()

        def forward(self, x):  # fc's weight is read without calling fc
            return self.act(self.bn(F.linear(x, self.fc.weight)))

    m = M().eval()
    cm = ember.compile(m)
    x = _t(5, 3)
    with ember.no_grad():
        for change in range(5):
            cm(x)
            _close(cm(x).numpy(), m(x).numpy())
            if change == 0:
                m.fc.weight = nn.Parameter(_t(4, 3, seed=5))
            elif change == 1:
                m.bn.running_var = ember.ones(4) * 4
            elif change == 2:
                m.act = nn.Tanh()
            elif change == 3:
                m.act.register_forward_hook(lambda mod, i, o: o * 0 + 7)
        assert np.all(cm(x).numpy() == 7)


def test_global_and_closure_tensors_rebound():
    w = _t(3, 2, seed=1)

    def f(x):
        return x @ w

    cf = ember.compile(f)
    for s in range(4):
        x = _t(4, 3, seed=s)
        _close(cf(x).numpy(), f(x).numpy())
        w = w * 2  # the closure cell now holds another tensor


_W = _t(3, 2, seed=1, requires_grad=True)


def _global_loss(x):
    return (x @ _W).sum()


def test_global_parameter_updated_out_of_place():
    global _W
    cf = ember.compile(_global_loss)
    for s in range(4):
        x = _t(4, 3, seed=s)
        _close(cf(x).item(), _global_loss(x).item())
        with ember.no_grad():
            _W = (_W - 0.1).detach().requires_grad_()


class _Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", ember.zeros(()))

    def forward(self, x):
        self.count = self.count + 1  # a buffer replaced, not updated in place
        return x * self.count


def test_module_buffer_reassigned_in_forward_is_a_graph_break():
    me, mc = _Counter(), _Counter()
    cm = ember.compile(mc)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for s in range(4):
            x = _t(2, 3, seed=s)
            _close(cm(x).numpy(), me(x).numpy())
    _close(mc.count.numpy(), me.count.numpy())
    assert mc.count.item() == 4
    assert any("assignment to module attribute _Counter.count" in str(x.message) for x in w)
    with pytest.raises(CompileError, match="test_compile_fuzz_cases.py.*_Counter.count"):
        ember.compile(_Counter(), fullgraph=True)(_t(2, 3))


def test_negative_class_target_raises_as_eager():
    # the graph skips the functional wrapper's check: the kernel must not wrap -1 around
    for fn in (F.cross_entropy, lambda x, t: F.nll_loss(x.log_softmax(1), t)):
        cf = ember.compile(fn)
        good = ember.tensor(np.array([0, 1, 2, 0]))
        _close(cf(_t(4, 3), good).item(), fn(_t(4, 3), good).item())
        _close(cf(_t(4, 3), good).item(), fn(_t(4, 3), good).item())
        bad = ember.tensor(np.array([0, -1, 2, 0]))
        with pytest.raises(IndexError, match="target -1 is out of bounds for 3 classes"):
            fn(_t(4, 3), bad)
        with pytest.raises(IndexError, match="target -1 is out of bounds for 3 classes"):
            cf(_t(4, 3), bad)


def test_kernel_errors_on_a_compiled_call_are_eagers():
    def f(i):
        return F.one_hot(i, 3)

    cf = ember.compile(f)
    for _ in range(2):
        cf(ember.tensor(np.array([0, 1, 2, 0])))
    bad = ember.tensor(np.array([0, 1, 5, 0]))
    errs = []
    for fn in (f, cf):
        with pytest.raises(Exception) as info:
            fn(bad)
        errs.append((type(info.value), str(info.value)))
    assert errs[0] == errs[1]
    assert "one_hot: cannot apply to" in errs[1][1]


def test_enable_grad_inside_a_call_under_no_grad():
    def f(x, w):
        with ember.enable_grad():
            return (x * w).sum()

    cf = ember.compile(f)
    with ember.no_grad():
        for s in range(3):
            w = _t(3, seed=1, requires_grad=True)
            ye, yc = f(_t(2, 3, seed=s), w), cf(_t(2, 3, seed=s), w)
            _close(yc.item(), ye.item())
            assert yc.requires_grad and ye.requires_grad
    (g,) = ember.autograd.grad(yc, [w])
    _close(g.numpy(), _t(2, 3, seed=2).numpy().sum(0))
