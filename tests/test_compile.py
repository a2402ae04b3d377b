"""ember.compile: guards and cache, the symbolic batch, graph breaks, explain, debug mode."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
from ember import nn
from ember.compiler import CompileError, Dim, trace_graph
from ember.compiler.executor import CompileDebugError


def _mlp():
    ember.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _x(b, seed=0):
    return ember.tensor(np.random.default_rng(seed).standard_normal((b, 6)).astype(np.float32))


def test_one_trace_serves_five_batch_sizes():
    m = _mlp()
    f = ember.compile(m)
    with ember.no_grad():
        for b in (8, 3, 17, 1, 64):
            x = _x(b, b)
            np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6, atol=1e-6)
        exp = f.explain()
        assert exp.traces == 1, str(exp)
        assert exp.validations == 4  # sizes other than the two traced: checked by a dry run
        g = f.graph(_x(4))
    assert g.inputs[0].shape == (Dim("B"), 6)
    assert "f32[B,6]" in str(g) and "f32[B,3]" in str(g)


def test_batch_dependent_params_become_symbolic():
    # reshape targets computed from x.shape and a constructor-made tensor of batch shape
    def f(x):
        b = x.shape[0]
        h = x.reshape(b, 2, 3).sum(dim=2)
        return h + ember.zeros(b, 2) + 1

    cf = ember.compile(f)
    for b in (2, 5, 9, 4, 7):
        x = _x(b)
        np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)
        np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)
    assert cf.explain().traces == 1
    text = str(cf.graph(_x(3)))
    assert "shape=(B,2,3)" in text and "full" in text


def test_dynamic_false_specializes_and_explains():
    f = ember.compile(lambda x: x * 2, dynamic=False)
    f(_x(2))
    f(_x(3))
    exp = f.explain()
    assert exp.traces == 2
    assert "guard failed: argument 0: shape (2, 6) float32 -> shape (3, 6) float32" in str(exp)


def test_guards_dtype_value_training_grad_mode():
    m = _mlp()
    cf = ember.compile(lambda x, k: m(x) * k)
    x = _x(4)
    with ember.no_grad():
        cf(x, 2.0)
        cf(x, 2.0)
        assert cf.explain().traces == 1
        out = cf(x, 3.0)  # a Python value is part of the signature
        np.testing.assert_allclose(out.numpy(), (m(x) * 3.0).numpy(), rtol=1e-6)
        m.eval()
        cf(x, 3.0)
    events = cf.explain().events
    assert "argument 1: 2.0 -> 3.0" in events[1]
    assert "module training flags" in events[2]
    assert cf.explain().traces == 3


def test_captured_tensors_are_read_by_reference():
    w = ember.ones(3)
    f = ember.compile(lambda x: x * w)
    x = ember.ones(2, 3)
    f(x)
    f(x)
    with ember.no_grad():
        w.mul_(5.0)
    assert f(x).tolist() == [[5.0] * 3] * 2
    assert f.explain().traces == 1


def test_graph_break_warns_with_user_line_and_runs_eagerly():
    def f(x):
        if x.sum() > 0:  # data-dependent: a graph break
            return x * 2
        return x * 3

    cf = ember.compile(f)
    line = f.__code__.co_firstlineno + 1
    with pytest.warns(UserWarning, match=rf"test_compile.py:{line}: graph break"):
        assert cf(ember.ones(2)).tolist() == [2.0, 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cf(-ember.ones(2)).tolist() == [-3.0, -3.0]  # eager: both branches right
    exp = cf.explain()
    assert exp.graph_breaks and f"test_compile.py:{line}" in exp.graph_breaks[0]
    assert exp.eager_signatures == 1


@pytest.mark.parametrize("read", ["item", "bool", "tolist", "float", "int", "numpy", "index"])
def test_fullgraph_raises_naming_the_line(read):
    def f(x):
        s = x.sum()
        v = {
            "item": lambda: s.item(),
            "bool": lambda: bool(s),
            "tolist": lambda: s.tolist(),
            "float": lambda: float(s),
            "int": lambda: int(s),
            "numpy": lambda: s.numpy(),
            "index": lambda: [0, 1, 2, 3][s.long()],
        }[read]()
        return x + 1, v

    cf = ember.compile(f, fullgraph=True)
    with pytest.raises(CompileError, match=r"test_compile.py:\d+: .*fullgraph=True"):
        cf(ember.ones(2))


def test_nonzero_is_a_graph_break():
    cf = ember.compile(lambda x: ember.nonzero(x > 0), fullgraph=True)
    with pytest.raises(CompileError, match="nonzero"):
        cf(ember.tensor([1.0, -1.0, 2.0]))


def test_module_compile_in_place_and_wrapper_share_parameters():
    m = _mlp()
    wrapped = ember.compile(m)
    assert next(iter(wrapped.parameters())) is next(iter(m.parameters()))
    m2 = _mlp()
    m2.compile()
    x = _x(5)
    with ember.no_grad():
        for _ in range(3):
            np.testing.assert_allclose(m2(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert m2.forward.explain().traces == 1


def test_compiled_module_trains_through_autograd_like_eager():
    # the graph holds the forward and the backward pass; loss.backward() outside runs it
    def run(compiled):
        ember.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        opt = ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        if compiled:
            m.compile()
        losses = []
        for b in (4, 4, 7, 2, 5):
            opt.zero_grad()
            y = ember.tensor(np.arange(b) % 3)
            loss = nn.functional.cross_entropy(m(_x(b, b)), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, m

    (l1, m1), (l2, m2) = run(False), run(True)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert m2.forward.explain().traces == 1


def test_gradients_reach_inputs_of_a_compiled_function():
    m = _mlp()
    f = ember.compile(lambda x: m(x).tanh())
    x = ember.tensor(_x(3).numpy(), requires_grad=True)
    for _ in range(3):
        x.grad = None
        f(x).pow(2).sum().backward()
    got = x.grad.numpy().copy()
    x.grad = None
    m(x).tanh().pow(2).sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert f.explain().traces == 1 and f.explain().eager_signatures == 0


def test_dropout_reproduces_eager_with_the_same_seed():
    def run(compiled):
        ember.manual_seed(3)
        d = nn.Dropout(0.5)
        f = ember.compile(d) if compiled else d
        with ember.no_grad():
            return [f(ember.ones(4, 8)).numpy().copy() for _ in range(4)]

    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a, b)
    ember.manual_seed(3)
    g = ember.compile(nn.Dropout(0.5)).graph(ember.ones(4, 8))
    assert "seed=seed0" in str(g)


def test_trace_graph_prints_like_a_jaxpr():
    g = trace_graph(lambda x, y: (x @ y).relu().sum(), ember.ones(2, 3), ember.ones(3, 4))
    text = str(g)
    assert text.startswith("{ lambda ; a:f32[2,3] b:f32[3,4]. let")
    assert g.primitives() == ["matmul", "relu", "sum"]
    assert text.rstrip().endswith("in (e) }")


def test_debug_mode_compares_every_equation(monkeypatch):
    monkeypatch.setenv("EMBER_COMPILE_DEBUG", "1")
    f = ember.compile(lambda x: (x * 2).exp().sum(dim=1))
    x = _x(3)
    f(x)
    np.testing.assert_allclose(f(x).numpy(), (x * 2).exp().sum(dim=1).numpy(), rtol=1e-6)
    entry = next(iter(f.cache.values()))
    prog = entry.program
    assert prog.debug
    # corrupt the kernel of the exp equation: the debug run names it
    k = entry.graph.primitives().index("exp")
    step = list(prog.steps[k])
    step[0] = lambda a: np.exp(a) + 1.0
    step[8] = -1  # no output buffer
    prog.steps[k] = tuple(step)
    with pytest.raises(CompileDebugError, match=r"equation 1 \(exp\)"):
        f(x)


def test_compile_rejects_non_callables_and_explain_needs_compiled():
    with pytest.raises(TypeError, match="function or a Module"):
        ember.compile(3)
    with pytest.raises(TypeError, match="ember.compile"):
        ember.compile.explain(lambda x: x)


def test_decorator_forms():
    @ember.compile
    def f(x):
        return x + 1

    @ember.compile(dynamic=False, fullgraph=True)
    def g(x):
        return x - 1

    assert f(ember.ones(2)).tolist() == [2.0, 2.0]
    assert g(ember.ones(2)).tolist() == [0.0, 0.0]
    assert f.__name__ == "f"


def test_replacing_a_parameter_retraces():
    m = _mlp()
    f = ember.compile(m)
    x = _x(3)
    with ember.no_grad():
        f(x)
        f(x)
        m[0].weight = nn.Parameter(m[0].weight.detach() * 2)
        np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6)
    exp = f.explain()
    assert exp.traces == 2 and "parameter was replaced" in exp.events[1]


def test_batch_norm_floats_of_the_batch_size_stay_symbolic():
    # BatchNorm's running variance uses n / (n - 1): a Python float of the batch size
    def run(compiled):
        ember.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        opt = ember.optim.SGD(m.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = m(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss

        f = ember.compile(step) if compiled else step
        losses = [f(_x(b, b)).item() for b in (4, 9, 3, 12, 6, 4)]
        return losses, m, f

    (l1, m1, _), (l2, m2, f) = run(False), run(True)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    np.testing.assert_allclose(m2[1].running_var.numpy(), m1[1].running_var.numpy(), rtol=1e-6)
    assert f.explain().traces == 1
    g = next(iter(f.cache.values())).graph
    assert "/(" in str(g)  # a Ratio of B printed in the graph


@pytest.mark.parametrize(
    "scale",
    [
        lambda b: 1.0 / b,
        lambda b: 3.0 / (2 * b),
        lambda b: b / (b - 1.0),
        lambda b: (1.0 / b) * 0.5,
        lambda b: 2.0 * b + 1.0,
    ],
)
def test_python_floats_of_the_batch_size_are_symbolic_and_exact(scale):
    def f(x):
        return scale(x.shape[0]) * x.sum(0)

    cf = ember.compile(f)
    for b in (4, 5, 8, 13, 1000, 2, 4):
        x = ember.randn(b, 3)
        np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    assert cf.explain().traces == 1


def test_index_tensors_are_graph_inputs_not_constants():
    x = ember.tensor(np.arange(12.0, dtype=np.float32).reshape(4, 3), requires_grad=True)
    w = ember.ones(4, 3)

    def f(x, i):
        y = x[i] * 2
        with ember.no_grad():
            w[i] = 0.0  # index_put with the same data-dependent index
        return y.sum(dim=0)

    cf = ember.compile(f)
    for j in ([0, 2], [1, 3], [3, 3]):
        i = ember.tensor(j)
        x.grad = None
        cf(x, i).sum().backward()
        np.testing.assert_allclose(cf(x, i).detach().numpy(), f(x, i).detach().numpy())
        g = np.zeros((4, 3), np.float32)
        np.add.at(g, j, 2.0)
        np.testing.assert_allclose(x.grad.numpy(), g)
    assert cf.explain().traces == 1
    assert "idx=(in1,)" in str(cf.graph(x, ember.tensor([0, 1])))


def test_retraces_are_logged(caplog):
    f = ember.compile(lambda x: x + 1)
    with caplog.at_level("INFO", logger="ember.compile"):
        f(ember.ones(2, 3))
        f(ember.ones(2, 3, dtype=ember.float64))
    msgs = [r.getMessage() for r in caplog.records if r.name == "ember.compile"]
    assert len(msgs) == 2 and "float32 -> shape ('B', 3) float64" in msgs[1]


def test_pytrees_kwargs_and_python_values():
    @ember.compile
    def f(x, *, scale, opts):
        return {"y": x * scale, "parts": (x.sum(), opts["k"])}

    for b in (2, 3, 4):
        out = f(ember.ones(b, 2), scale=2.0, opts={"k": 7})
        assert out["y"].tolist() == [[2.0, 2.0]] * b
        assert out["parts"][0].item() == 2.0 * b and out["parts"][1] == 7
    assert f.explain().traces == 1


def test_slices_of_the_batch_size_are_symbolic():
    f = ember.compile(lambda x: x[: x.shape[0] - 1].sum(dim=0) + x[1:, :2].sum())
    for b in (3, 5, 8, 4):
        x = _x(b, b)
        want = x[: b - 1].sum(dim=0) + x[1:, :2].sum()
        np.testing.assert_allclose(f(x).numpy(), want.numpy(), rtol=1e-6)
        np.testing.assert_allclose(f(x).numpy(), want.numpy(), rtol=1e-6)
    assert f.explain().traces == 1
    assert "(slice(None, Dim('B-1'), None),)" in repr(f.graph(_x(3)).eqns[0].params)


def test_torch_compile_options():
    f = lambda x: x + 1
    assert ember.compile(f, disable=True) is f
    assert ember.compile(f, backend="eager") is f
    assert isinstance(ember.compile(f, mode="max-autotune"), ember.compiler.CompiledFunction)
    with pytest.raises(ValueError, match="unknown backend 'tvm'"):
        ember.compile(f, backend="tvm")
    with pytest.raises(ValueError, match="unknown mode 'fastest'"):
        ember.compile(f, mode="fastest")
    with pytest.raises(ValueError, match="no backend options"):
        ember.compile(f, options={"trace.enabled": True})
    with pytest.raises(ValueError, match="recompile_limit"):
        ember.compile(f, recompile_limit=0)
    with pytest.raises(ValueError, match="shapes_spec"):
        ember.compile(f, shapes_spec={"x": (None, 3)})


def test_recompile_limit_then_eager(caplog):
    f = ember.compile(lambda x: x * 2, dynamic=False, recompile_limit=2, name="double")
    with pytest.warns(UserWarning, match="recompile_limit"):
        for n in (1, 2, 3, 4):
            assert f(ember.ones(n)).tolist() == [2.0] * n
    exp = f.explain()
    assert exp.traces == 2 and exp.eager_signatures == 2
    m = ember.nn.Linear(2, 2)
    m.compile(dynamic=False, fullgraph=True)
    assert m.forward.fullgraph and not m.forward.dynamic


def test_python_branches_on_the_batch_size_are_caught():
    # traced at 2 and 3 the graph is x * 2; at 8 Python takes the other branch: each new batch
    # size is checked by a dry run against the symbolic graph, and specialized when it differs
    def f(x):
        if x.shape[0] > 6:
            return x.reshape(2, -1).sum(dim=0)
        return x * 2

    cf = ember.compile(f)
    for b in (2, 3, 8, 8, 4, 8, 5, 9, 9):
        x = _x(b, b)
        np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=1e-6)
    exp = cf.explain()
    assert exp.traces == 3 and exp.validations == 4, str(exp)
    assert "does not hold at batch size 8" in str(exp)


def test_zero_d_integer_tensor_index_is_a_graph_break_not_a_constant():
    # the index's value decides which element is read: baking the first call's value into
    # the graph would return x[1] * 2 for every later index
    def f(x, i):
        return x[i] * 2

    x = ember.arange(10.0)
    c = ember.compile(f)
    with pytest.warns(UserWarning, match="graph break"):
        got = [c(x, ember.tensor(k)).item() for k in (1, 2, 3, 7)]
    assert got == [2.0, 4.0, 6.0, 14.0]
    exp = c.explain()
    line = f.__code__.co_firstlineno + 1
    assert len(exp.graph_breaks) == 1 and f"test_compile.py:{line}" in exp.graph_breaks[0]
    with pytest.raises(Exception, match=f"test_compile.py:{line}"):
        ember.compile(f, fullgraph=True)(x, ember.tensor(3))
