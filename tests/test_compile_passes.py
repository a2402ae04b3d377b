"""The graph passes, each on small graphs: the rewrite happens, the results stay the same."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.compiler import Eqn, Graph, Literal, Var, interpret, trace_graph
from ember.compiler.executor import Program
from ember.compiler.passes import (
    cse,
    dce,
    fold_constants,
    merge_slice_grads,
    optimize,
    simplify,
)
from ember.compiler.passes.memory import plan_buffers
from ember.ops.elementwise import add_p, exp_p, mul_p
from ember.optim._functional import sgd_update_p

X = np.arange(6, dtype=np.float32).reshape(2, 3) / 10


def _same(g1, g2, *inputs):
    a = interpret(g1, [np.array(x, copy=True) for x in inputs])
    b = Program(g2)([np.array(x, copy=True) for x in inputs])
    for u, v in zip(a, b):
        np.testing.assert_allclose(v, u, rtol=1e-6)


def test_dce_drops_dead_equations_and_keeps_effects():
    w = ember.zeros(3)

    def f(x):
        _dead = (x * 3).exp()
        with ember.no_grad():
            w.add_(x.sum(dim=0))  # an effect on captured state: stays
        return x + 1

    g = trace_graph(f, ember.tensor(X))
    assert g.primitives() == ["mul", "exp", "sum", "add", "assign", "add"]
    out = dce(g)
    assert out.primitives() == ["sum", "add", "assign", "add"]
    assert g.primitives()[:2] == ["mul", "exp"]  # the input graph is left as it was
    _same(g, out, X)


def test_cse_merges_repeats_but_not_across_writes():
    g = trace_graph(lambda x: x.exp() * x.exp() + (x * 2) + (x * 2), ember.tensor(X))
    out = cse(g)
    assert out.primitives().count("exp") == 1 and out.primitives().count("mul") == 2
    _same(g, out, X)
    # reading a value before and after an in-place write: two different results
    a = Var((3,), ember.float32)
    p = Var((3,), ember.float32)
    r1, r2, u, o = (Var((3,), ember.float32) for _ in range(4))
    params = {
        "lr": 0.5,
        "momentum": 0.0,
        "dampening": 0.0,
        "nesterov": False,
        "maximize": False,
        "weight_decay": 0.0,
        "init_buf": False,
    }
    g2 = Graph(
        inputs=[a, p],
        eqns=[
            Eqn(exp_p, [p], {}, [r1]),
            Eqn(sgd_update_p, [p, a, Literal(None)], params, [u]),
            Eqn(exp_p, [p], {}, [r2]),
            Eqn(add_p, [r1, r2], {}, [o]),
        ],
        outputs=[o],
    )
    assert cse(g2).primitives() == ["exp", "sgd_update", "exp", "add"]
    inputs = [np.ones(3, np.float32), np.zeros(3, np.float32)]
    want = np.exp(0) + np.exp(-0.5)
    np.testing.assert_allclose(Program(optimize(g2))(inputs)[0], [want] * 3, rtol=1e-6)


def test_constant_folding_evaluates_constant_subgraphs():
    def f(x):
        c = ember.arange(3).float().exp() * 2  # constant: folded
        return x + c

    g = trace_graph(f, ember.tensor(X))
    out = fold_constants(g)
    assert out.primitives() == ["add"]
    lit = out.eqns[0].inputs[1]
    assert isinstance(lit, Literal)
    np.testing.assert_allclose(lit.value, np.exp(np.arange(3)) * 2, rtol=1e-6)
    _same(g, out, X)


def test_constant_folding_leaves_outputs_and_written_values():
    def f(x):
        c = ember.zeros(2, 3)
        with ember.no_grad():
            c.add_(x)  # written in place: must be a fresh array per run
        return c, ember.ones(2)

    g = trace_graph(f, ember.tensor(X))
    out = fold_constants(g)
    assert out.primitives() == g.primitives()
    prog = Program(optimize(g))
    r1 = prog([X.copy()])
    r2 = prog([X.copy()])
    np.testing.assert_allclose(r2[0], X)  # not X + X: the zeros are fresh
    assert r1[1] is not r2[1]


def test_simplify_removes_identities():
    def f(x):
        y = x * 1
        y = 1 * y + 0
        y = (y - 0) / 1
        y = y.neg().neg()
        y = y**1
        return y.t().t().exp()

    g = trace_graph(f, ember.tensor(X))
    out = dce(simplify(g))
    assert out.primitives() == ["exp"]
    _same(g, out, X)


def test_simplify_composes_views():
    def f(x):
        y = x.reshape(3, 2).reshape(6).reshape(2, 3)  # back to x's shape: gone
        z = x.permute(1, 0).unsqueeze(0).squeeze(0).reshape(3, 2)  # reshape to same: gone
        return y.exp(), z.sum(), x.reshape(3, 2).reshape(1, 6)

    g = trace_graph(f, ember.tensor(X))
    out = dce(simplify(g))
    assert out.primitives().count("reshape") == 1  # (3,2)->(1,6) became x -> (1,6)
    assert next(e for e in out.eqns if e.prim.name == "reshape").params["shape"] == (1, 6)
    _same(g, out, X)


def test_simplify_keeps_fresh_outputs_and_type_changes():
    g = trace_graph(lambda x: (x * 1, x + 0.0 * 0 + 0), ember.tensor(X))
    out = dce(simplify(g))  # results the caller sees stay fresh arrays, as in eager code
    assert g.primitives() == ["mul", "add", "add"] and out.primitives() == ["mul", "add"]
    _same(g, out, X)
    # x * 1 where the result broadcasts to a larger shape is not the identity
    a, o = Var((3,), ember.float32), Var((2, 3), ember.float32)
    one = np.ones((2, 1), np.float32)
    gb = Graph(inputs=[a], eqns=[Eqn(mul_p, [a, Literal(one)], {}, [o])], outputs=[o])
    assert simplify(gb).primitives() == ["mul"]


def test_memory_plan_reuses_buffers_across_equations_and_calls():
    def f(x):
        a = (x * 2).exp() + 1
        b = a.tanh() * a
        return b.sum(dim=1)

    g = optimize(trace_graph(f, ember.tensor(X)))
    plan = plan_buffers(g)
    assert len(plan.var_buffer) == 5 and len(plan.buffers) == 2
    prog = Program(g)
    ref = interpret(g, [X])
    r1 = prog([X])  # checked run (no buffers)
    r2 = prog([X])
    bufs = [id(b) for b in prog.buffers]
    r3 = prog([X])
    assert [id(b) for b in prog.buffers] == bufs  # preallocated across calls
    for r in (r1, r2, r3):
        np.testing.assert_allclose(r[0], ref[0], rtol=1e-6)
    assert r2[0] is not r3[0]  # outputs are never planned buffers


def test_memory_plan_skips_values_seen_by_views_outputs_and_writes():
    def f(x):
        a = x * 2  # read by a view: not planned
        v = a.reshape(3, 2)
        b = x + 1  # an output: not planned
        return v, b

    g = optimize(trace_graph(f, ember.tensor(X)))
    assert plan_buffers(g).var_buffer == {}


def test_memory_plan_drops_values_an_impl_aliases():
    a, b, c, o = (Var((2, 3), ember.float32) for _ in range(4))
    from ember.compiler.passes.memory import UFUNCS

    # an elementwise primitive whose kernel returns its input as is
    from ember.ops._core import AbstractValue, Primitive

    ident = Primitive(
        "doc_ident",
        "elementwise",
        impl=lambda x: x,
        abstract=lambda x: AbstractValue(x.shape, x.dtype),
        register=False,
    )
    g = Graph(
        inputs=[a],
        eqns=[
            Eqn(mul_p, [a, Literal(2.0)], {}, [b]),
            Eqn(ident, [b], {}, [c]),
            Eqn(exp_p, [a], {}, [o]),
            Eqn(add_p, [c, o], {}, [Var((2, 3), ember.float32)]),
        ],
        outputs=[],
    )
    g.outputs = [g.eqns[-1].outputs[0]]
    assert "mul" in UFUNCS
    prog = Program(g)
    for _ in range(3):
        np.testing.assert_allclose(prog([X])[0], X * 2 + np.exp(X), rtol=1e-6)
    assert prog._unplan  # the aliasing was seen on the first run


def _net_and_step():
    ember.manual_seed(0)
    m = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.Tanh(), ember.nn.Linear(4, 2))
    opt = ember.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def step(x):
        opt.zero_grad()
        loss = (m(x) * 1 + 0).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    return step


def _slice_grad_graph(split, x):
    def f(x):
        loss = 0
        for k, p in enumerate(split(x)):
            loss = loss + (p * (k + 1)).exp().sum()
        loss.backward()
        return x.grad

    return trace_graph(f, ember.tensor(x, requires_grad=True))


def _put(g):
    return [e for e in g.eqns if e.prim.name == "put_slices"]


def test_merge_slice_grads_tiles_a_split_into_one_array():
    x = np.random.default_rng(0).standard_normal((3, 4, 9)).astype(np.float32)
    for split, cover in (
        (lambda t: t.split(3, dim=-1), True),  # three pieces tile the last axis
        (lambda t: t.chunk(2, dim=1), True),
        (lambda t: (t[:, :, :2], t[:, :, 5:], t[:, :, 2:5]), True),  # out of order
        (lambda t: (t[:, :, :2], t[:, :, 3:]), False),  # a gap: zeros underneath
        (lambda t: (t[:, :, :4], t[:, :, 2:]), False),  # overlapping: added
        (lambda t: (t[:, :2], t[1:, 2:]), False),  # two axes
        (lambda t: (t[:, :, ::2], t[:, :, 1::2]), False),  # strided
        (lambda t: (t[0], t[1:]), False),  # an integer index
    ):
        g = _slice_grad_graph(split, x)
        out = dce(merge_slice_grads(g))
        (put,) = _put(out)
        assert "index_put_zeros" not in out.primitives()
        assert put.params["cover"] is cover and not put.params["base"]
        _same(g, out, x)


def test_merge_slice_grads_adds_into_a_full_gradient():
    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)

    def h(t):
        a = t[:, 1:4]
        ((t * 3).exp().sum() + (a * a).sum()).backward()
        return t.grad

    g = trace_graph(h, ember.tensor(x, requires_grad=True))
    out = dce(merge_slice_grads(g))
    (put,) = _put(out)
    assert put.params["base"] and "index_put_zeros" not in out.primitives()
    _same(g, out, x)


def test_merge_slice_grads_leaves_pieces_others_read():
    a, o, s = Var((4, 6), ember.float32), Var((4, 6), ember.float32), Var((4, 3), ember.float32)
    z1, z2 = Var((4, 6), ember.float32), Var((4, 6), ember.float32)
    from ember.ops.indexing import index_put_zeros_p

    idx1, idx2 = (slice(None), slice(0, 3)), (slice(None), slice(3, 6))
    eqns = [
        Eqn(exp_p, [s], {}, [o]),
        Eqn(index_put_zeros_p, [s], {"idx": idx1, "basic": True, "shape": (4, 6)}, [z1]),
        Eqn(index_put_zeros_p, [s], {"idx": idx2, "basic": True, "shape": (4, 6)}, [z2]),
        Eqn(add_p, [z1, z2], {}, [a]),
    ]
    g = Graph(inputs=[s], eqns=eqns, outputs=[a, z1])  # z1 is seen by the caller
    out = merge_slice_grads(g)
    (put,) = _put(out)
    assert put.params["base"] and put.inputs[0] is z1  # z2 folded, z1 kept as it is
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    _same(g, dce(out), x)


def test_merged_slice_grads_train_like_eager():
    def make():
        ember.manual_seed(0)
        lin = ember.nn.Linear(6, 12)
        opt = ember.optim.SGD(lin.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            q, k, v = lin(x).split(4, dim=-1)
            loss = ((q * k).softmax(-1) * v).sum()
            loss.backward()
            opt.step()
            return loss

        return step

    eager, compiled = make(), ember.compile(make())
    xs = [ember.tensor(np.random.default_rng(i).standard_normal((b, 6)).astype(np.float32))
          for i, b in enumerate((3, 5, 3, 7))]  # fmt: skip
    for x in xs:
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-6)
    assert "put_slices" in compiled.graph(xs[0]).primitives()


def _attention_graph(scores, with_grad=True, keep_scores=False):
    rng = np.random.default_rng(7)
    s = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    m = np.triu(np.full((5, 6), -1e9, np.float32), 1)

    def f(s, m):
        z = scores(s, m)
        y = z.softmax(-1)
        if with_grad:
            (y * y.detach().exp()).sum().backward()
            out = (s.grad,)
        else:
            out = (y,)
        return out + ((z,) if keep_scores else ())

    g = trace_graph(f, ember.tensor(s, requires_grad=with_grad), ember.tensor(m))
    return g, (s, m)


@pytest.mark.parametrize(
    "scores, scale",
    [
        (lambda s, m: s * 0.125 + m, 0.125),
        (lambda s, m: m + 0.5 * s, 0.5),
        (lambda s, m: s / 8 + m, 0.125),  # a power of two: exact as a product
        (lambda s, m: s * 3.0, 3.0),  # no mask
        (lambda s, m: s + m, 1.0),  # no scale
    ],
)
def test_scaled_softmax_fuses_forward_and_backward(scores, scale):
    g, inputs = _attention_graph(scores)
    out = optimize(g)
    (sm,) = [e for e in out.eqns if e.prim.name == "softmax_scale_mask"]
    assert sm.params["scale"] == scale
    (bw,) = [e for e in out.eqns if e.prim.name == "softmax_backward"]
    assert bw.params.get("scale", 1.0) == scale  # the gradient's * scale moved in
    assert "softmax" not in out.primitives()
    _same(g, out, *inputs)


def test_scaled_softmax_left_alone_where_it_would_change_results():
    g, inputs = _attention_graph(lambda s, m: s * 0.5 + m, keep_scores=True)
    assert "softmax_scale_mask" not in optimize(g).primitives()  # the scores are returned
    # 1/3 is not exact (x / 3 != x * (1/3)): the division stays, the mask is fused
    g, inputs = _attention_graph(lambda s, m: s / 3 + m)
    out = optimize(g)
    (sm,) = [e for e in out.eqns if e.prim.name == "softmax_scale_mask"]
    assert sm.params["scale"] == 1.0 and out.primitives().count("div") == 2
    _same(g, out, *inputs)
    # softmax over another axis
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    g = trace_graph(lambda t: (t * 0.5).softmax(0), ember.tensor(x))
    assert optimize(g).primitives() == ["mul", "softmax"]


def test_scaled_softmax_forward_only():
    g, inputs = _attention_graph(lambda s, m: s * 0.25 + m, with_grad=False)
    out = optimize(g)
    assert out.primitives() == ["softmax_scale_mask"]
    _same(g, out, *inputs)


def test_written_attention_training_step_fuses_and_equals_eager():
    """nanoGPT-style attention in a compiled training step: the scores' softmax is one
    softmax_scale_mask with its gradient scale folded, the q/k/v split's gradient one
    put_slices; losses equal eager's step by step at two batch sizes."""

    def make():
        ember.manual_seed(1)
        qkv = ember.nn.Linear(8, 24)
        opt = ember.optim.SGD(qkv.parameters(), lr=0.05)
        mask = ember.tensor(np.triu(np.full((5, 5), -np.inf, np.float32), 1))

        def step(x):
            opt.zero_grad()
            b, t, _ = x.shape
            q, k, v = qkv(x).split(8, dim=-1)
            q, k, v = (z.view(b, t, 2, 4).transpose(1, 2) for z in (q, k, v))
            att = (q @ k.transpose(-2, -1) * 0.5 + mask).softmax(-1)
            loss = ((att @ v) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        return step

    eager, compiled = make(), ember.compile(make())
    rng = np.random.default_rng(2)
    xs = [ember.tensor(rng.standard_normal((b, 5, 8)).astype(np.float32)) for b in (3, 4, 3)]
    for x in xs:
        np.testing.assert_allclose(compiled(x).item(), eager(x).item(), rtol=1e-5)
    prims = compiled.graph(xs[0]).primitives()
    assert "softmax_scale_mask" in prims and "put_slices" in prims
    assert "softmax" not in prims and "index_put_zeros" not in prims


def test_optimized_training_step_equals_eager():
    eager, f = _net_and_step(), ember.compile(_net_and_step())
    x = ember.tensor(X)
    for _ in range(4):
        assert f(x).item() == eager(x).item()
    g = f.graph(x)
    warm = _net_and_step()
    warm(x)  # the first step creates the momentum buffers
    assert len(g.eqns) < len(trace_graph(warm, x).eqns)
    assert not any(
        e.prim.name == "mul" and any(isinstance(v, Literal) and v.value == 1 for v in e.inputs)
        for e in g.eqns
    )
