"""Elementwise fusion (ember/compiler/passes/fuse.py) and its generated kernels
(ember/compiler/codegen.py): every scalar rule against the primitive it replaces, the grouping
rules, memory layout, symbolic batch sizes, the disk cache across processes."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ember
from ember.compiler import trace_graph
from ember.compiler.executor import Program
from ember.compiler.ir import Eqn, Graph, Literal, Var, interpret
from ember.compiler.passes.fuse import RULES, fuse_elementwise
from ember.ops._core import REGISTRY

pytest.importorskip("numba", reason="fusion generates numba kernels (the [jit] extra)")


@pytest.fixture(autouse=True)
def _compile_at_once():
    """Kernels compile on the calling thread here (the default compiles them in the
    background and runs the unfused members meanwhile), so each test runs the kernel."""
    from ember.compiler import codegen

    old = codegen.set_background(False)
    yield
    codegen.set_background(old)


SPECIAL = [0.0, -0.0, 1.0, -1.0, 100.0, -100.0, 1e-30, np.inf, -np.inf, np.nan]


def _data(rng, shape, dtype, positive=False):
    a = rng.standard_normal(shape) * 3
    flat = a.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL
    if positive:
        a = np.abs(a)
    return a.astype(dtype)


def _dt(dtype):
    return ember.float32 if dtype == np.float32 else ember.float64


def _two_member_graph(prim, n_in, dtype, shape=(64, 129), literal=None):
    """``add(prim(inputs...), c)``: a group of two members."""
    dt = _dt(dtype)
    ins = [Var(shape, dt) for _ in range(n_in)]
    c = Var(shape, dt)
    args = list(ins) + ([Literal(literal)] if literal is not None else [])
    out_dt = ember.bool if prim.name in ("gt", "lt", "ge", "le", "eq", "ne") else dt
    y = Var(shape, out_dt)
    eqns = [Eqn(prim, args, {}, [y])]
    if out_dt is ember.bool:  # a comparison feeds a selection
        z = Var(shape, dt)
        eqns.append(Eqn(REGISTRY["where"], [y, ins[0], c], {}, [z]))
    else:
        z = Var(shape, dt)
        eqns.append(Eqn(REGISTRY["add"], [y, c], {}, [z]))
    return Graph(inputs=[*ins, c], eqns=eqns, outputs=[z])


_ARITY = {"neg": 1, "abs": 1, "sqrt": 1, "relu": 1, "exp": 1, "tanh": 1, "sigmoid": 1}
_ARITY.update({"erf": 1, "silu": 1})


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_rule_matches_its_primitive(name, dtype):
    if RULES[name][1] and dtype == np.float64:
        g = _two_member_graph(REGISTRY[name], _ARITY.get(name, 2), dtype)
        assert "fused" not in fuse_elementwise(g, min_elements=0).primitives()
        return
    prim = REGISTRY[name]
    n_in = 3 if name == "where" else _ARITY.get(name, 2)
    rng = np.random.default_rng(0)
    if name == "where":
        dt = _dt(dtype)
        cond, a, b, c = Var((64, 129), ember.bool), *[Var((64, 129), dt) for _ in range(3)]
        y, z = Var((64, 129), dt), Var((64, 129), dt)
        g = Graph(
            inputs=[cond, a, b, c],
            eqns=[Eqn(prim, [cond, a, b], {}, [y]), Eqn(REGISTRY["mul"], [y, c], {}, [z])],
            outputs=[z],
        )
        args = [rng.random((64, 129)) > 0.5] + [_data(rng, (64, 129), dtype) for _ in range(3)]
    else:
        g = _two_member_graph(prim, n_in, dtype)
        args = [_data(rng, (64, 129), dtype, positive=name == "sqrt") for _ in range(n_in + 1)]
    fused = fuse_elementwise(g, min_elements=0)
    assert fused.primitives() == ["fused"]
    with np.errstate(all="ignore"):
        want = interpret(g, args)[0]
        got = interpret(fused, args)[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    if RULES[name][1] or name == "tanh_grad":
        # the kernel layer's float32 functions (eager code picks NumPy's or the kernel
        # layer's by size and layout: an ulp apart) and a polynomial tanh: a few ulp
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)
    else:  # arithmetic, comparisons, selections: rounded per member as eager code rounds
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_its_gradient_fuse(approximate):
    rng = np.random.default_rng(1)
    for name, n_in in (("gelu", 1), ("gelu_grad", 2)):
        prim = REGISTRY[name]
        shape = (64, 129)  # (eager runs the kernel layer from 4096 elements)
        ins = [Var(shape, ember.float32) for _ in range(n_in)]
        c, y, z = (Var(shape, ember.float32) for _ in range(3))
        g = Graph(
            inputs=[*ins, c],
            eqns=[
                Eqn(prim, ins, {"approximate": approximate}, [y]),
                Eqn(REGISTRY["mul"], [y, c], {}, [z]),
            ],
            outputs=[z],
        )
        args = [_data(rng, shape, np.float32) for _ in range(n_in + 1)]
        fused = fuse_elementwise(g, min_elements=0)
        assert fused.primitives() == ["fused"]
        with np.errstate(all="ignore"):
            got, want = interpret(fused, args)[0], interpret(g, args)[0]
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6, equal_nan=True)


def test_written_out_gelu_is_one_kernel_and_matches_eager():
    def f(x, b):
        y = x * 0.5 * (1.0 + ember.tanh(0.7978845608 * (x + 0.044715 * x**3)))
        return ember.nn.functional.relu(y + b) - ember.sigmoid(x).exp() / 2

    x, b = ember.randn(64, 600), ember.randn(600)
    g = trace_graph(f, x, b)
    fused = fuse_elementwise(g)
    assert fused.primitives() == ["fused"]
    got = interpret(fused, [x.numpy(), b.numpy()])[0]
    np.testing.assert_allclose(got, f(x, b).numpy(), rtol=2e-6, atol=1e-6)


def test_values_used_outside_the_group_are_not_fused_away():
    def f(x):
        y = x * 2.0
        return (y + 1.0).exp(), y.sum()  # y has two readers

    g = trace_graph(f, ember.ones(128, 300))
    fused = fuse_elementwise(g, min_elements=0)
    assert "mul" in fused.primitives()
    out = interpret(fused, [np.full((128, 300), 0.5, np.float32)])
    np.testing.assert_allclose(out[0], np.exp(2.0), rtol=1e-6)
    assert out[1] == pytest.approx(128 * 300)


def test_graph_outputs_stay_and_small_groups_are_left_alone():
    g = trace_graph(lambda x: (x * 2.0, (x * 2.0).exp() + 1.0), ember.ones(128, 300))
    assert "fused" in fuse_elementwise(g, min_elements=0).primitives()
    small = trace_graph(lambda x: (x * 2.0).exp() + 1.0, ember.ones(4, 3))
    assert fuse_elementwise(small).primitives() == small.primitives()


def test_integer_and_mixed_dtype_chains_are_not_fused():
    gi = trace_graph(lambda x: (x * 2) + 1, ember.ones(256, 256, dtype=ember.int64))
    assert "fused" not in fuse_elementwise(gi, min_elements=0).primitives()
    g64 = trace_graph(lambda x: (x * 2.0).exp() + 1.0, ember.ones(256, 256, dtype=ember.float64))
    # float64: arithmetic only (exp stays NumPy's)
    assert "exp" in fuse_elementwise(g64, min_elements=0).primitives()


def test_broadcast_operands_and_channels_last_layout():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 6, 5, 16)).astype(np.float32).transpose(0, 3, 1, 2)
    bias = rng.standard_normal((16, 1, 1)).astype(np.float32)
    g = trace_graph(lambda a, b: ((a + b) * 0.5).relu(), ember.tensor(x), ember.tensor(bias))
    fused = fuse_elementwise(g, min_elements=0)
    assert fused.primitives() == ["fused"]
    got = interpret(fused, [x, bias])[0]
    want = interpret(g, [x, bias])[0]
    np.testing.assert_array_equal(got, want)
    assert got.strides == want.strides  # eager's layout: reductions after it add alike


def _channels_last(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


@pytest.mark.parametrize("other", ["expanded", "cropped"])
def test_expanded_or_sliced_operands_keep_the_channels_last_layout(other):
    """An operand expanded to the full shape (zero strides) or sliced out of a larger array
    has no layout of its own: the result follows the dense channels-last operand (a
    C-ordered result made every later kernel over a ResNet's gradients read across planes)."""
    from ember.compiler.codegen import FusedKernel

    rng = np.random.default_rng(4)
    y = np.ascontiguousarray(rng.standard_normal((4, 6, 5, 16)).astype(np.float32))
    y = y.transpose(0, 3, 1, 2)  # channels-last (4, 16, 6, 5)
    if other == "expanded":
        g = np.broadcast_to(rng.standard_normal((4, 16, 1, 1)).astype(np.float32), y.shape)
    else:
        big = rng.standard_normal((4, 8, 7, 16)).astype(np.float32).transpose(0, 3, 1, 2)
        g = big[:, :, 1:7, 1:6]
    k = FusedKernel(
        ["a0", "a1"],
        [("t0", "(a0 * np.float32(2.0))", "float32"), ("t1", "(t0 if a1 > 0 else a1)", "float32")],
        "t1",
    )
    got = k(g, y, shape=y.shape, dtype=np.float32)
    np.testing.assert_array_equal(got, np.where(y > 0, g * np.float32(2.0), y))
    assert _channels_last(got)


def test_compiled_function_over_batch_sizes_equals_eager():
    w = ember.randn(2048)

    def f(x):
        y = x * w + 1.0
        return (y * ember.sigmoid(y)) * 0.5

    cf = ember.compile(f)
    for b in (64, 65, 80, 64):
        x = ember.randn(b, 2048)
        np.testing.assert_allclose(cf(x).numpy(), f(x).numpy(), rtol=2e-6, atol=1e-9)
    assert cf.explain().traces == 1
    import gc

    # type(), not isinstance: a dead weak proxy among the objects raises on isinstance
    progs = [o for o in gc.get_objects() if type(o) is Program and o.graph.inputs]
    assert any("fused" in p.graph.primitives() for p in progs)


def test_fusion_can_be_switched_off(monkeypatch):
    g = trace_graph(lambda x: (x * 2.0).exp() + 1.0, ember.ones(256, 256))
    monkeypatch.setenv("EMBER_COMPILE_FUSE", "0")
    assert "fused" not in Program(g).graph.primitives()
    monkeypatch.setenv("EMBER_COMPILE_FUSE", "1")
    assert "fused" in Program(g).graph.primitives()


def test_kernels_are_cached_on_disk_for_the_next_process(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np
        from ember.compiler.codegen import FusedKernel
        k = FusedKernel(["a0", "s0"], [("t0", "(a0 * s0)", "float32"),
                                        ("t1", "_sigmoid(t0)", "float32")], "t1")
        out = k(np.ones((3, 4), np.float32), 2.0, shape=(3, 4), dtype=np.float32)
        assert np.allclose(out, 1 / (1 + np.exp(-2.0)))
        (fn,) = k._fns.values()
        print(sum(fn.stats.cache_hits.values()), sum(fn.stats.cache_misses.values()))
        """
    )
    env = dict(os.environ, EMBER_CACHE_DIR=str(tmp_path))
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert list((tmp_path / "kernels").glob("fused_*.py"))
    # the first process compiles (a miss), the second loads the machine code (a hit)
    assert runs == [["0", "1"], ["1", "0"]], runs


def test_background_compile_runs_unfused_members_until_the_kernel_is_ready(tmp_path, monkeypatch):
    from ember.compiler import codegen

    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path))  # a kernel nobody compiled yet
    codegen.set_background(True)
    g = trace_graph(
        lambda x, b: (x * 1.5 + b).relu() - 0.25, ember.ones(64, 1024), ember.ones(1024)
    )
    fused = fuse_elementwise(g, min_elements=0)
    (eqn,) = fused.eqns
    rng = np.random.default_rng(3)
    x, b = rng.standard_normal((64, 1024), np.float32), rng.standard_normal(1024, np.float32)
    want = interpret(g, [x, b])[0]
    first = interpret(fused, [x, b])[0]  # the members, unfused, while the kernel compiles
    np.testing.assert_array_equal(first, want)
    codegen.wait_compiled()
    assert eqn.prim.kernel._fns, "the kernel was compiled in the background"
    np.testing.assert_array_equal(interpret(fused, [x, b])[0], want)


def test_fused_results_take_planned_buffers_but_never_over_an_operand():
    w = ember.randn(1024)

    def f(x):
        y = x * w + 1.0
        z = (y * ember.sigmoid(y)) * 0.5
        h = (z * 2.0 + 1.0).relu() * z
        return (h - 1.0).tanh() * h + (h * h).mean(-1, keepdim=True)

    x = ember.randn(256, 1024)
    g = trace_graph(f, x)
    planned, plain = Program(g, plan_memory=True), Program(g, plan_memory=False)
    fused = [e for e in planned.graph.eqns if e.prim.name == "fused"]
    assert len(fused) >= 3
    assert any(id(e.outputs[0]) in planned.plan.var_buffer for e in fused)
    a = [x.numpy()]
    want = f(x).numpy()
    for _ in range(3):  # the first run validates the plan, the next ones reuse the buffers
        got = planned(a)[0]
        np.testing.assert_array_equal(got, plain(a)[0])
        # (the fused tanh and sigmoid agree with eager's kernels within rounding)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a fused kernel given a buffer that one of its operands lives in writes a fresh array
    e = fused[1]
    k = e.prim.kernel
    buf = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
    ops = [buf if isinstance(v, Var) else v.value for v in e.inputs]
    res = k(*ops, shape=(256, 1024), dtype=np.float32, out=buf)
    assert res is not buf
    free = np.empty_like(buf)
    assert k(*ops, shape=(256, 1024), dtype=np.float32, out=free) is free
    np.testing.assert_array_equal(free, res)
