"""Products of symbolic sizes in ember.symbol: ``x.reshape((T * B, H))``, ``reshape(-1)`` over
several symbolic axes, ``T * B`` as a divisor, shapes that depend on several symbols, saving and
loading such graphs, and the errors for what stays unsupported (``B // 2``, ``B * B``).
Values and gradients are checked against PyTorch / NumPy at several sizes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import ember
from ember import symbol as S
from ember.compiler.ir import Dim
from ember.symbol import SymbolicError
from ember.symbol._sizes import SymInt

RNG = np.random.default_rng(43)
SIZES = [(3, 4), (1, 1), (5, 2), (2, 7)]


def _rnn_lm():
    """The Theano RNN language-model reshape: (T, B, H) -> (T*B, H) @ W -> (T, B, V)."""
    wd = RNG.normal(size=(8, 5)).astype(np.float32)
    x = S.var("x", ("T", "B", 8))
    w = S.shared(wd, "w")
    T, B = x.shape[0], x.shape[1]
    h = x.reshape((T * B, 8)) @ w
    y = h.reshape((T, B, 5)).tanh()
    cost = (y * y).sum()
    (gw,) = S.grad(cost, [w])
    return x, w, wd, y, cost, gw


def _torch_rnn_lm(xd, wd):
    t, b, _ = xd.shape
    w = torch.tensor(wd, requires_grad=True)
    y = (torch.tensor(xd).reshape(t * b, 8) @ w).reshape(t, b, 5).tanh()
    cost = (y * y).sum()
    (gw,) = torch.autograd.grad(cost, [w])
    return y.detach().numpy(), cost.item(), gw.numpy()


def test_rnn_lm_reshape_round_trip_values_and_grad_at_several_sizes():
    x, _w, wd, y, cost, gw = _rnn_lm()
    f = S.function([x], [y, cost, gw])
    g = f.graph
    assert any(v.type_str() == "f32[B*T,5]" for e in g.eqns for v in e.outputs)
    assert g.outputs[0].type_str() == "f32[T,B,5]"
    for t, b in SIZES:
        xd = RNG.normal(size=(t, b, 8)).astype(np.float32)
        yv, cv, gv = f(xd)
        ty, tc, tg = _torch_rnn_lm(xd, wd)
        np.testing.assert_allclose(yv.numpy(), ty, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cv.item(), tc, rtol=1e-5)
        np.testing.assert_allclose(gv.numpy(), tg, rtol=1e-4, atol=1e-5)


def test_infer_shape_of_products():
    x, _w, _wd, y, _cost, _gw = _rnn_lm()
    h = x.reshape((x.shape[0] * x.shape[1], 8))
    f = S.function([x], [h, y, x.reshape(-1)])
    ins, outs, shared = f.infer_shape(x=(6, 7, 8))
    assert ins == [(6, 7, 8)] and shared == [(8, 5)]
    assert outs == [(42, 8), (6, 7, 5), (336,)]
    with pytest.raises(ValueError, match="axis 2 must be 8"):
        f.infer_shape(x=(6, 7, 9))


def test_reshape_minus_one_and_flatten_over_several_symbolic_axes():
    b = S.var("b", ("n", "k"))
    f = S.function([b], [b.reshape(-1), b.flatten(), (b * 2).view(-1)])
    assert [o.type_str() for o in f.graph.outputs] == ["f32[k*n]"] * 3
    for n, k in SIZES:
        bd = RNG.normal(size=(n, k)).astype(np.float32)
        r, fl, v = f(bd)
        t = torch.tensor(bd)
        np.testing.assert_array_equal(r.numpy(), t.reshape(-1).numpy())
        np.testing.assert_array_equal(fl.numpy(), t.flatten().numpy())
        np.testing.assert_array_equal(v.numpy(), (t * 2).view(-1).numpy())


def test_reshape_product_with_minus_one_view_and_flatten_range():
    x = S.var("x", ("T", "B", 6))
    T, B = x.shape[0], x.shape[1]
    outs = [
        x.reshape((T * B, -1)),
        x.view(-1, 6),
        x.flatten(0, 1),
        x.reshape(T * B * 2, 3),
        x.reshape(-1, B, 6),
        x.flatten(1),
    ]
    f = S.function([x], outs)
    assert [o.type_str() for o in f.graph.outputs] == [
        "f32[B*T,6]",
        "f32[B*T,6]",
        "f32[B*T,6]",
        "f32[2*B*T,3]",
        "f32[T,B,6]",
        "f32[T,6*B]",
    ]
    for t, b in SIZES:
        xd = RNG.normal(size=(t, b, 6)).astype(np.float32)
        xt = torch.tensor(xd)
        want = [
            xt.reshape((t * b, -1)),
            xt.view(-1, 6),
            xt.flatten(0, 1),
            xt.reshape(t * b * 2, 3),
            xt.reshape(-1, b, 6),
            xt.flatten(1),
        ]
        for got, w in zip(f(xd), want):
            np.testing.assert_array_equal(got.numpy(), w.numpy())


def test_product_as_a_mean_divisor():
    x = S.var("x", ("T", "B"))
    T, B = x.shape[0], x.shape[1]
    w = S.shared(np.float32(1.5), "w")
    cost = (x * w).sum() / (T * B)
    mean = (x * w).mean()
    by_float = (x * w).sum() / float(T * B)
    (g1,) = S.grad(cost, [w])
    (g2,) = S.grad(mean, [w])
    f = S.function([x], [cost, mean, by_float, g1, g2])
    for t, b in SIZES:
        xd = RNG.normal(size=(t, b)).astype(np.float32)
        c, m, fl, ga, gb = f(xd)
        wt = torch.tensor(1.5, requires_grad=True)
        tm = (torch.tensor(xd) * wt).mean()
        (tg,) = torch.autograd.grad(tm, [wt])
        for v in (c, m, fl):
            np.testing.assert_allclose(v.item(), tm.item(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ga.item(), tg.item(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gb.item(), tg.item(), rtol=1e-5, atol=1e-6)


def test_output_sizes_that_depend_on_several_symbols_are_fitted():
    # the shape rules (not a reshape target) make n*m and n*m + n
    a, b = S.var("a", ("n",)), S.var("b", ("m",))
    k = ember.kron(a, b)
    c = ember.cat([ember.outer(a, b).reshape(-1), a * 3])
    z = ember.zeros(a.shape[0] * b.shape[0]) + k  # an eager tensor sized n*m
    f = S.function([a, b], [k, c, z])
    assert [o.type_str() for o in f.graph.outputs] == ["f32[m*n]", "f32[m*n+n]", "f32[m*n]"]
    for n, m in SIZES:
        ad = RNG.normal(size=n).astype(np.float32)
        bd = RNG.normal(size=m).astype(np.float32)
        kv, cv, zv = f(ad, bd)
        at, bt = torch.tensor(ad), torch.tensor(bd)
        np.testing.assert_allclose(kv.numpy(), torch.kron(at, bt).numpy(), rtol=1e-6)
        want = torch.cat([torch.outer(at, bt).reshape(-1), at * 3])
        np.testing.assert_allclose(cv.numpy(), want.numpy(), rtol=1e-6)
        np.testing.assert_allclose(zv.numpy(), torch.kron(at, bt).numpy(), rtol=1e-6)
    assert f.infer_shape(a=(5,), b=(7,))[1] == [(35,), (40,), (35,)]


def test_symint_products_keep_a_polynomial():
    t, b = SymInt(1013, Dim("T")), SymInt(1009, Dim("B"))
    assert repr(t * b) == "B*T" and (t * b).expr == Dim.poly({("B", "T"): 1})
    assert repr(t * b * 2 + b - 1) == "B+2*B*T-1"
    assert repr((2 * t * b) // 2) == "B*T" and int((2 * t * b) // 2) == 1013 * 1009
    assert t * b - b * t == 0 and type(t * b - b * t) is int
    assert (4 * t * b + 2) % 2 == 0
    # what is not kept: floor division that does not divide, a size squared
    assert (t * b // 2).expr is None and (b * b).expr is None and "squared" in repr(b * b)


def test_givens_fix_one_symbol_of_a_product():
    x = S.var("x", ("T", "B", 2))
    h = x.reshape((x.shape[0] * x.shape[1], 2)) * 2
    data = RNG.normal(size=(3, 4, 2)).astype(np.float32)
    y = S.var("y", ("B", 2))
    f = S.function([y], h.sum(1), givens={x: ember.tensor(data[:, :1]).expand(3, 1, 2) + y})
    assert f.graph.outputs[0].type_str() == "f32[3*B]"
    yd = RNG.normal(size=(4, 2)).astype(np.float32)
    want = ((data[:, :1] + yd) * 2).reshape(12, 2).sum(1)
    np.testing.assert_allclose(f(yd).numpy(), want, rtol=1e-6)


def test_saved_product_graph_loads_and_runs_in_a_fresh_process_at_new_sizes(tmp_path):
    x, _w, wd, y, cost, gw = _rnn_lm()
    f = S.function([x], [y.reshape(-1, 5), cost, gw])
    path = tmp_path / "rnn_lm.json"
    f.save(str(path))
    assert '"dimpoly"' in path.read_text()
    xd = RNG.normal(size=(4, 3, 8)).astype(np.float32)  # a (T, B) never called before
    np.save(tmp_path / "x.npy", xd)
    script = textwrap.dedent(
        f"""
        import numpy as np
        from ember import symbol as S
        f = S.load({str(path)!r})
        assert f.graph.outputs[0].type_str() == "f32[B*T,5]", f.graph.outputs[0].type_str()
        y, c, g = f(np.load({str(tmp_path / "x.npy")!r}))
        np.savez({str(tmp_path / "out.npz")!r}, y=y.numpy(), c=c.numpy(), g=g.numpy())
        print(f.infer_shape(x=(6, 7, 8))[1])
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[(42, 5), (), (8, 5)]"
    out = np.load(tmp_path / "out.npz")
    ty, tc, tg = _torch_rnn_lm(xd, wd)
    np.testing.assert_allclose(out["y"], ty.reshape(-1, 5), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["c"], tc, rtol=1e-5)
    np.testing.assert_allclose(out["g"], tg, rtol=1e-4, atol=1e-5)


def test_what_cannot_be_expressed_stays_a_clear_error():
    x = S.var("x", ("T", "B", 4))
    T, B = x.shape[0], x.shape[1]
    with pytest.raises(SymbolicError, match=r"B // 2 reaches this op as a plain int.*fixed size"):
        x[:, : B // 2]
    with pytest.raises(SymbolicError, match=r"B // 2 reaches this op as a plain int"):
        ember.zeros(B // 2) + x.sum()
    with pytest.raises(ValueError, match=r"B\*T // 2"):
        x.reshape(T * B // 2, 8)
    sq = S.var("sq", ("n", "n"))
    with pytest.raises(ValueError, match=r"n \* n \(a size squared\) is not kept symbolic"):
        sq.reshape(sq.shape[0] * sq.shape[1])
    v = S.var("v", ("n",))
    with pytest.raises(ValueError, match=r"n \* n \(a size squared\) is not kept symbolic"):
        ember.kron(v, v)
    # a size the shape rule computes by rounding (ceil(n*m / 2)): the fit names the symbols
    a, b = S.var("a", ("n",)), S.var("b", ("m",))
    with pytest.raises(SymbolicError, match=r"dimension 0 is not multilinear in 'm' and 'n'"):
        ember.outer(a, b).reshape(-1)[::2]
