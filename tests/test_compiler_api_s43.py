"""The ``torch.compiler`` namespace (``disable``, ``is_compiling``, ``reset``),
``Module.compile`` and ``ember.compile``'s argument and runtime errors, against PyTorch 2.13
(``torch.compile(backend="eager")``)."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

import ember
from ember.compiler import CompileError

X = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def test_disable_graph_break_matches_torch_and_eager():
    log_e, log_t = [], []

    @ember.compiler.disable
    def log_ember(y):
        log_e.append((ember.compiler.is_compiling(), round(y.sum().item(), 4)))
        return y

    @torch.compiler.disable
    def log_torch(y):
        log_t.append((torch.compiler.is_compiling(), round(y.sum().item(), 4)))
        return y

    def body(x, log, mod):
        y = x * 2
        y = log(y)
        return (y + 1).relu() if mod is ember else torch.relu(y + 1)

    f = ember.compile(lambda x: body(x, log_ember, ember))
    g = torch.compile(lambda x: body(x, log_torch, torch), backend="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a disabled call is a graph break without a warning
        for n in (4, 4, 3):
            got = f(ember.tensor(X[:n])).numpy()
            want = g(torch.tensor(X[:n])).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert log_e == log_t  # called once per call, with the real values, not compiling
    ex = f.explain()
    assert ex.traces == 1 and ex.eager_signatures == 1  # one signature, eager
    assert "disable" in ex.graph_breaks[0] and "log_ember" in ex.graph_breaks[0]


def test_disable_forms_and_nothing_traced_through():
    calls = []

    @ember.compiler.disable(reason="logging")
    def helper(x):
        calls.append(ember.compiler.is_compiling())
        return x.sum()

    assert helper(ember.ones(3)).item() == 3.0 and calls == [False]
    assert ember.compiler.disable(helper) is helper
    helper2 = ember.compiler.disable(recursive=False)(lambda x: x + 1)
    assert helper2(ember.ones(2)).tolist() == [2.0, 2.0]
    f = ember.compile(lambda x: helper(x) * 2)
    assert f(ember.ones(3)).item() == 6.0
    assert calls == [False, False]  # the dry-run trace stopped before the call
    assert "logging" in f.explain().graph_breaks[0]
    # ember.compile of a disabled function leaves it eager
    assert ember.compile(helper) is helper
    assert ember.compile(fullgraph=True)(helper) is helper
    with pytest.raises(TypeError, match="expects a function"):
        ember.compiler.disable(3)


def test_disable_fullgraph_raises_naming_the_line():
    @ember.compiler.disable
    def helper(x):
        return x

    def f(x):
        return helper(x) + 1  # the line named

    line = f.__code__.co_firstlineno + 1
    with pytest.raises(CompileError, match=rf"test_compiler_api_s43.py:{line}: .*disable"):
        ember.compile(f, fullgraph=True)(ember.ones(2))
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(
            lambda x: torch.compiler.disable(lambda y: y)(x) + 1,
            backend="eager",
            fullgraph=True,
        )(torch.ones(2))


def test_is_compiling():
    seen = []

    def f(x):
        seen.append(ember.compiler.is_compiling())
        if not ember.compiler.is_compiling():
            x = x * 100  # never in a compiled function
        return x + 1

    cf = ember.compile(f)
    for n in (2, 3, 5):
        np.testing.assert_array_equal(cf(ember.ones(n)).numpy(), np.full(n, 2.0, np.float32))
    assert seen and all(seen)
    assert not ember.compiler.is_compiling()
    assert f(ember.ones(1)).tolist() == [101.0]
    assert ember.compiler.is_dynamo_compiling is ember.compiler.is_compiling
    assert not torch.compiler.is_compiling()


def test_reset_retraces():
    f = ember.compile(lambda x: x * 2)
    m = ember.nn.Linear(3, 2)
    m.compile()
    x = ember.tensor(X)
    want = m(x).detach().numpy()
    f(x)
    f(x)
    assert f.explain().traces == 1 and m.forward.explain().traces == 1
    ember.compiler.reset()
    assert not f.cache
    np.testing.assert_array_equal(f(x).numpy(), X * 2)
    np.testing.assert_array_equal(m(x).detach().numpy(), want)
    ex = f.explain()
    assert ex.traces == 2
    assert "reset" in ex.events[-2] and "after ember.compiler.reset()" in ex.events[-1]
    assert m.forward.explain().traces == 2
    assert torch.compiler.reset() is None and ember.compiler.reset() is None


def test_module_compile_in_place():
    ember.manual_seed(0)
    m = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.ReLU(), ember.nn.Linear(4, 2))
    keys = list(m.state_dict())
    x = ember.tensor(X)
    want = m(x).detach().numpy()
    assert m.compile() is None
    assert list(m.state_dict()) == keys and "_orig_mod" not in "".join(keys)
    assert [n for n, _ in m.named_parameters()] == keys
    np.testing.assert_array_equal(m(x).detach().numpy(), want)
    m(ember.tensor(X[:2]))
    assert m.forward.explain().traces == 1  # runs compiled: one graph for both batches
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert tm.compile(backend="eager") is None and list(tm.state_dict()) == keys
    # a copy compiles afresh against its own parameters; a pickle round trip works
    c = copy.deepcopy(m)
    with ember.no_grad():
        c[0].weight.mul_(0)
    np.testing.assert_array_equal(m(x).detach().numpy(), want)
    assert c.forward.fn.__self__ is c and not c.forward.cache
    p = pickle.loads(pickle.dumps(m))
    np.testing.assert_allclose(p(x).detach().numpy(), want, rtol=1e-6)
    with pytest.raises(TypeError, match="fullgraph"):
        m.compile(fullgraph="yes")


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"mode": "fast"}, ValueError, "unknown mode"),
        ({"backend": "foo"}, ValueError, "unknown backend"),
        ({"options": {"trace.enabled": True}}, ValueError, "options"),
        ({"dynamic": "yes"}, TypeError, "dynamic must be a bool"),
        ({"fullgraph": "yes"}, TypeError, "fullgraph must be a bool"),
        ({"fullgraph": 1}, TypeError, "fullgraph must be a bool"),
    ],
)
def test_compile_argument_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        ember.compile(lambda x: x, **kwargs)
    with pytest.raises(err, match=match):  # the decorator form checks at once too
        ember.compile(**kwargs)


def test_compile_argument_torch_parity():
    with pytest.raises(TypeError, match="expects a function"):
        ember.compile(3)
    with pytest.raises(AssertionError):
        torch.compile(3)
    with pytest.raises(RuntimeError, match="Unrecognized mode"):
        torch.compile(lambda x: x, mode="fast")
    for mode in ("lite", "default", "max-autotune"):
        f = ember.compile(lambda x: x + 1, mode=mode)
        assert f(ember.ones(1)).tolist() == [2.0]
    assert ember.compile(lambda x: x, options={}) is not None  # empty options: accepted


def test_wrong_argument_count_same_typeerror():
    def f(x, y):
        return x @ y

    cf = ember.compile(f)
    a, b = ember.ones(2, 3), ember.ones(3, 4)
    cf(a, b)
    for args, kw in (((a,), {}), ((a, b, a), {}), ((a, b), {"z": 1})):
        with pytest.raises(TypeError) as eager:
            f(*args, **kw)
        with pytest.raises(TypeError) as comp:
            cf(*args, **kw)
        assert str(comp.value) == str(eager.value)
    m = ember.nn.Linear(3, 2)
    m.compile()
    with pytest.raises(TypeError, match="positional"):
        m(a, b)


def _user_lines(exc_info) -> list[int]:
    return [
        fr.lineno + 1  # (0-based in pytest)
        for fr in exc_info.traceback
        if fr.path.name == "test_compiler_api_s43.py" and fr.name in ("f", "g")
    ]


def test_errors_inside_first_and_graph_calls():
    def f(x, w):
        return x @ w  # shape error here

    cf = ember.compile(f)
    cf(ember.ones(2, 3), ember.ones(3, 4))
    line = f.__code__.co_firstlineno + 1
    for n in (2, 5):  # a served batch and a new one
        with pytest.raises(ValueError, match="matmul") as ei:
            cf(ember.ones(n, 3), ember.ones(4, 4))
        assert _user_lines(ei) == [line]
    with pytest.raises(RuntimeError):
        torch.compile(lambda x, w: x @ w, backend="eager")(torch.ones(2, 3), torch.ones(4, 4))

    # a value error inside a graph-served call (out-of-range indices): the eager error at
    # the user's line, as on the first call
    emb = ember.nn.Embedding(5, 3)

    def g(i):
        return emb(i).sum() * 2  # index error here

    cg = ember.compile(g)
    good = ember.tensor([0, 1, 4])
    want = g(good).item()
    cg(good)
    assert cg(good).item() == want
    gline = g.__code__.co_firstlineno + 1
    for _ in range(2):
        with pytest.raises(IndexError, match="index out of range") as ei:
            cg(ember.tensor([0, 7, 1]))
        assert _user_lines(ei) == [gline]
    assert cg.explain().traces == 1 and cg(good).item() == want
    with pytest.raises(IndexError):
        torch.nn.functional.embedding(torch.tensor([0, 7, 1]), torch.ones(5, 3))
