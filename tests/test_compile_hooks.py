"""Module hooks under ``ember.compile``: a hooked module is a graph break (its hooks' Python
runs on every call, exactly once, as in eager mode), ``fullgraph=True`` names the hook and the
line, and removing the hook compiles the signature again."""

import warnings

import numpy as np
import pytest

import ember
from ember import nn
from ember.compiler.trace import CompileError


def _model():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def _x(seed=0):
    return ember.tensor(np.random.default_rng(seed).standard_normal((5, 4)).astype(np.float32))


def test_forward_hook_side_effects_run_once_per_call():
    m = _model()
    feats = []
    m[1].register_forward_hook(lambda mod, inp, out: feats.append(out.detach().clone()))
    cm = ember.compile(m)
    hook_re = r"graph break: forward hook .*<lambda> \(.*test_compile_hooks.py:\d+\) of ReLU"
    with ember.no_grad(), pytest.warns(UserWarning, match=hook_re):
        outs = [cm(_x(i)) for i in range(4)]
    assert len(feats) == 4  # one per call: none from the dry-run traces
    for i, (o, f) in enumerate(zip(outs, feats, strict=True)):
        with ember.no_grad():
            eager_feat, eager_out = ember.relu(m[0](_x(i))), m[2](ember.relu(m[0](_x(i))))
        np.testing.assert_allclose(f.numpy(), eager_feat.numpy(), rtol=1e-6)
        np.testing.assert_allclose(o.numpy(), eager_out.numpy(), rtol=1e-6)


def test_hook_that_changes_the_output_and_pre_hook():
    m = _model()
    m[1].register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    m[2].register_forward_hook(lambda mod, inp, out: out + 1)
    cm = ember.compile(m)
    with warnings.catch_warnings(), ember.no_grad():
        warnings.simplefilter("ignore")
        got = [cm(_x(i)).numpy() for i in range(3)]
        for i, g in enumerate(got):
            np.testing.assert_allclose(g, m(_x(i)).numpy(), rtol=1e-6)


def test_backward_hook_in_a_compiled_training_step_runs_every_step():
    m = _model()
    opt = ember.optim.SGD(m.parameters(), lr=0.1)
    seen = []
    m[2].register_full_backward_hook(lambda mod, gin, gout: seen.append(gout[0].shape))

    def step(x):
        opt.zero_grad()
        loss = m(x).square().mean()
        loss.backward()
        opt.step()
        return loss

    cstep = ember.compile(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3):
            cstep(_x(i))
    assert seen == [(5, 2)] * 3


def test_fullgraph_names_the_hook_and_the_line():
    m = _model()

    def log_it(mod, args):
        return None

    m[1].register_forward_pre_hook(log_it)
    with pytest.raises(CompileError) as err:
        ember.compile(m, fullgraph=True)(_x())
    msg = str(err.value)
    assert "forward pre-hook" in msg and "log_it" in msg and "test_compile_hooks.py:" in msg


def test_removing_the_hook_compiles_again():
    m = _model()
    calls = []
    handle = m[1].register_forward_hook(lambda mod, inp, out: calls.append(1))
    cm = ember.compile(m)
    with warnings.catch_warnings(), ember.no_grad():
        warnings.simplefilter("ignore")
        cm(_x())
        cm(_x())
    assert len(calls) == 2
    handle.remove()
    with warnings.catch_warnings(), ember.no_grad():
        warnings.simplefilter("error")  # no graph break any more
        for i in range(3):
            np.testing.assert_allclose(cm(_x(i)).numpy(), m(_x(i)).numpy(), rtol=1e-6)
    assert len(calls) == 2
