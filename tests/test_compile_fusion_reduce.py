"""Reduction fusion (ember/compiler/passes/fuse.py, ember/compiler/codegen.py): an elementwise
chain whose result only a sum or mean over the last axis reads is computed row by row into the
reduction, adding in the order the eager row-sum kernel adds (bitwise equal for arithmetic
chains), without the full-size intermediate."""

import numpy as np
import pytest

import ember
from ember.compiler import trace_graph
from ember.compiler.executor import Program
from ember.compiler.ir import Var, interpret
from ember.compiler.passes.fuse import fuse_elementwise

pytest.importorskip("numba", reason="fusion generates numba kernels (the [jit] extra)")


@pytest.fixture(autouse=True)
def _compile_at_once():
    from ember.compiler import codegen

    old = codegen.set_background(False)
    yield
    codegen.set_background(old)


CHAINS = {
    "square_mean": lambda x, w: (x * x).mean(-1),
    "square_mean_keepdim": lambda x, w: (x * x).mean(-1, keepdim=True),
    "affine_sum": lambda x, w: (x * w + 1.0).sum(-1),
    "centred_square_mean": lambda x, w: ((x - w) ** 2).mean(dim=-1, keepdim=True),
    "relu_sum": lambda x, w: (x * w).relu().sum(-1, keepdim=True),
    "select_sum": lambda x, w: ember.where(x > w, x, w * 0.5).sum(-1),
}


def _fused_only(g):
    fused = fuse_elementwise(g, min_elements=0)
    prims = fused.primitives()
    # (operands of the row's shape, such as ``w * 0.5``, are computed before the group)
    assert prims[-1] == "fused" and not {"sum", "mean"} & set(prims), prims
    eqn = fused.eqns[-1]
    assert eqn.prim.kind == "reduction" and eqn.prim.members[-1] in ("sum", "mean")
    return fused


@pytest.mark.parametrize("name", sorted(CHAINS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 1024), (3, 7, 333), (4096,), (5, 2, 3, 129)])
def test_arithmetic_chains_into_last_axis_reductions_equal_eager_bitwise(name, dtype, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[-1]).astype(dtype)
    f = CHAINS[name]
    g = trace_graph(f, ember.tensor(x), ember.tensor(w))
    fused = _fused_only(g)
    got = interpret(fused, [x, w])[0]
    want = f(ember.tensor(x), ember.tensor(w)).numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_transcendental_members_agree_within_rounding():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((48, 700)).astype(np.float32)

    def f(a):
        return (a * 0.5).tanh().exp().sum(-1) + ember.sigmoid(a).mean(-1)

    g = trace_graph(f, ember.tensor(x))
    prims = fuse_elementwise(g, min_elements=0).primitives()
    assert prims.count("fused") == 2, prims
    got = interpret(fuse_elementwise(g, min_elements=0), [x])[0]
    np.testing.assert_allclose(got, f(ember.tensor(x)).numpy(), rtol=2e-6)


def test_non_contiguous_and_broadcast_operands():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 3, 200)).astype(np.float32).transpose(1, 0, 2)[:, ::2]
    col = rng.standard_normal((3, 1, 1)).astype(np.float32)
    row = rng.standard_normal((200,)).astype(np.float32)
    f = lambda a, c, r: ((a - c) * r).mean(-1)
    g = trace_graph(f, ember.tensor(x), ember.tensor(col), ember.tensor(row))
    fused = _fused_only(g)
    got = interpret(fused, [x, col, row])[0]
    want = f(ember.tensor(x), ember.tensor(col), ember.tensor(row)).numpy()
    np.testing.assert_array_equal(got, want)


def test_what_must_not_fuse_into_a_reduction():
    x, w = ember.randn(64, 1024), ember.randn(1024)

    # the squared values are also an output: they must exist in full
    def both(a):
        sq = a * a
        return sq.sum(-1), sq

    assert "sum" in fuse_elementwise(trace_graph(both, x), min_elements=0).primitives()

    def twice(a):  # read by two reductions
        sq = a * w
        return sq.sum(-1) + sq.mean(-1)

    prims = fuse_elementwise(trace_graph(twice, x), min_elements=0).primitives()
    assert {"sum", "mean"} <= set(prims), prims
    # not the last axis / several axes / all axes: not a row reduction
    for f in (
        lambda a: (a * w).sum(0),
        lambda a: (a * w).sum((0, 1)),
        lambda a: (a * w).sum(),
    ):
        prims = fuse_elementwise(trace_graph(f, x), min_elements=0).primitives()
        assert "sum" in prims, prims
    # short rows are summed by NumPy's pairwise sum eagerly: left alone
    g = trace_graph(lambda a: (a * 2.0).sum(-1), ember.randn(4096, 8))
    assert "sum" in fuse_elementwise(g, min_elements=0).primitives()
    # an integer chain
    g = trace_graph(lambda a: (a * 3).sum(-1), ember.ones(64, 1024, dtype=ember.int64))
    assert "fused" not in fuse_elementwise(g, min_elements=0).primitives()


def test_empty_rows_and_small_sizes_follow_eager():
    f = lambda a: (a * a + 1.0).sum(-1)
    g = fuse_elementwise(trace_graph(f, ember.ones(64, 1024)), min_elements=0)
    (eqn,) = g.eqns
    for shape in [(0, 1024), (1, 1024), (2, 1024), (300, 1024)]:
        x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
        got = eqn.prim.impl(*[x if isinstance(v, Var) else v.value for v in eqn.inputs])
        want = f(ember.tensor(x)).numpy()
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_rms_norm_written_out_trains_compiled_equal_to_eager():
    """RMSNorm as users write it: the forward's mean of squares and the backward's row sums
    of products fuse; 5 training steps equal eager."""

    def make():
        ember.manual_seed(0)
        lin = ember.nn.Linear(1024, 1024)
        scale = ember.nn.Parameter(ember.ones(1024))
        opt = ember.optim.SGD([*lin.parameters(), scale], lr=0.05)

        def step(x):
            opt.zero_grad()
            h = lin(x)
            h = h * ember.rsqrt((h * h).mean(-1, keepdim=True) + 1e-6) * scale
            loss = (h * h).mean()
            loss.backward()
            opt.step()
            return loss

        return lin, scale, step

    lin1, s1, eager = make()
    lin2, s2, step = make()
    compiled = ember.compile(step)
    for b in (64, 64, 72, 64, 90):
        x = ember.randn(b, 1024)
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-5)
    np.testing.assert_allclose(
        lin2.weight.detach().numpy(), lin1.weight.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(s2.detach().numpy(), s1.detach().numpy(), rtol=1e-5, atol=1e-6)
    import gc

    # type(), not isinstance: a dead weak proxy among the objects raises on isinstance
    progs = [o for o in gc.get_objects() if type(o) is Program and o.graph.inputs]
    kinds = [e.prim.kind for p in progs for e in p.graph.eqns if e.prim.name == "fused"]
    assert "reduction" in kinds


def test_background_compile_runs_the_unfused_reduction_until_ready(tmp_path, monkeypatch):
    from ember.compiler import codegen

    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path))
    codegen.set_background(True)
    f = lambda a, b: ((a - b) * (a - b)).mean(-1)
    g = trace_graph(f, ember.ones(64, 1024), ember.ones(1024))
    fused = fuse_elementwise(g, min_elements=0)
    rng = np.random.default_rng(4)
    x, b = rng.standard_normal((64, 1024), np.float32), rng.standard_normal(1024, np.float32)
    want = interpret(g, [x, b])[0]
    np.testing.assert_array_equal(interpret(fused, [x, b])[0], want)
    codegen.wait_compiled()
    assert fused.eqns[0].prim.kernel._fns
    np.testing.assert_array_equal(interpret(fused, [x, b])[0], want)
