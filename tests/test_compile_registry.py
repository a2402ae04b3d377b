"""Every registered primitive, compiled, gives its eager values and gradients.

The sample calls are the ones ``tests/test_registry.py`` collects for each primitive (its
programs, ``@op`` records and ``defsample`` samples). Each becomes a small function that
binds the primitive and takes the gradient of its float outputs with ``autograd.grad``
inside; ``ember.compile`` runs it as a graph from the second call, and the result must equal
a fresh eager run (in-place primitives: the written inputs too).
"""

from __future__ import annotations

import numpy as np
import pytest
import test_registry as R

import ember
from ember.ops import _core
from ember.ops._core import bind

_CALLS = R._all_calls()
NAMES = sorted(n for n in _core.REGISTRY if n in _CALLS)


def _fresh(args):
    out = []
    for a in args:
        if isinstance(a, ember.Tensor):
            t = ember.tensor(a._data.copy(), dtype=a.dtype)
            if getattr(a, "_snapshot_requires_grad", False) and t.is_floating_point():
                t.requires_grad_()
            out.append(t)
        else:
            out.append(a)
    return out


def _program(prim, args, params, with_grad=True):
    pos = [i for i, a in enumerate(args) if isinstance(a, ember.Tensor)]

    def f(*ts):
        full = list(args)
        for i, t in zip(pos, ts):
            full[i] = t
        out = bind(prim, tuple(full), params)
        outs = out if isinstance(out, tuple) else (out,)
        wrt = [t for t in ts if t.requires_grad]
        diff = [o for o in outs if o.requires_grad]
        grads = []
        if with_grad and wrt and diff:
            loss = None
            for k, o in enumerate(diff):
                term = (o * (1.0 + 0.5 * k)).sum()
                loss = term if loss is None else loss + term
            grads = ember.autograd.grad(loss, wrt, allow_unused=True)
        res = [o.detach() for o in outs] + [g for g in grads if g is not None]
        # in-place primitives write their inputs: compare those too
        res += [t.detach().clone() for t in ts] if prim.kind == "inplace" else []
        return res

    return f, pos


def _values(res):
    return [np.asarray(r._data, dtype=np.float64) for r in res]


@pytest.mark.parametrize("name", NAMES)
def test_compiled_equals_eager(name):
    prim, args, params, _avals, _out = _CALLS[name][0]
    f, pos = _program(prim, args, params)
    tensors = lambda: [_fresh(args)[i] for i in pos]
    try:
        want = _values(f(*tensors()))
    except RuntimeError as e:  # backward-of-backward primitives without a VJP: values only
        assert "not supported" in str(e)
        f, pos = _program(prim, args, params, with_grad=False)
        want = _values(f(*tensors()))
    cf = ember.compile(f, dynamic=False)
    first = _values(cf(*tensors()))  # traced: the eager result
    got = _values(cf(*tensors()))  # run as a graph (checking the buffer plan)
    got3 = _values(cf(*tensors()))  # with preallocated buffers
    exp = cf.explain()
    if prim.data_dependent:
        # output shapes follow the values: no single graph; runs eagerly, still correct
        assert exp.eager_signatures == 1, str(exp)
    else:
        assert exp.traces == 1 and exp.eager_signatures == 0, str(exp)
        assert not exp.graph_breaks
    for w, a, b, c in zip(want, first, got, got3):
        np.testing.assert_allclose(a, w, rtol=1e-6, atol=1e-7, equal_nan=True)
        np.testing.assert_allclose(b, w, rtol=1e-6, atol=1e-7, equal_nan=True)
        np.testing.assert_allclose(c, w, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert len(got) == len(got3) == len(want)


def _float_outputs(out):
    outs = out if isinstance(out, tuple) else (out,)
    return [o for o in outs if isinstance(o, ember.Tensor) and o.requires_grad]


@pytest.mark.parametrize("name", NAMES)
def test_compiled_forward_differentiates_like_eager(name):
    """The graph's own backward pass (autograd through the compiled call) gives eager's
    gradients, with ``backward()`` called outside the compiled function."""
    prim, args, params, _avals, _out = _CALLS[name][0]
    pos = [i for i, a in enumerate(args) if isinstance(a, ember.Tensor)]

    def f(*ts):
        full = list(args)
        for i, t in zip(pos, ts):
            full[i] = t
        return bind(prim, tuple(full), params)

    def grads(fn):
        ts = [_fresh(args)[i] for i in pos]
        outs = _float_outputs(fn(*ts))
        wrt = [t for t in ts if t.requires_grad]
        if not outs or not wrt or prim.kind == "inplace":
            return None
        loss = sum((o * (1.0 + 0.5 * k)).sum() for k, o in enumerate(outs))
        try:
            loss.backward()
        except RuntimeError as e:  # backward-of-backward primitives without a VJP
            assert "not supported" in str(e)
            return None
        return [np.zeros(1) if t.grad is None else t.grad.numpy().astype(np.float64) for t in wrt]

    want = grads(f)
    if want is None:
        return  # no gradient to compare (the value test above covers this primitive)
    cf = ember.compile(f, dynamic=False)
    for _ in range(3):
        got = grads(cf)
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    exp = cf.explain()
    assert exp.traces == 1
    assert exp.eager_signatures == (1 if prim.data_dependent else 0), str(exp)
