"""Theano's minibatch idiom ``data[index * n:(index + 1) * n]`` in ember.symbol: slices whose
bounds are 0-d integer symbols become ``dynamic_slice`` (start read at run time, length fixed
when the graph is built). Checked against eager Ember, NumPy slicing and PyTorch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember import symbol as S
from ember.ops import dynamic_slice
from ember.symbol import SymbolicError

RNG = np.random.default_rng(7)


def _close(got, want, rtol=1e-5, atol=1e-6):
    got = got.detach().numpy() if isinstance(got, ember.Tensor) else np.asarray(got)
    if isinstance(want, (torch.Tensor, ember.Tensor)):
        want = want.detach().numpy()
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_tutorial_logistic_regression_with_givens_matches_eager_ember_and_torch():
    n, d, c, batch_size, lr = 20, 4, 3, 5, 0.13
    xd = RNG.normal(size=(n, d)).astype(np.float32)
    yd = RNG.integers(0, c, n).astype(np.int64)
    train_set_x, train_set_y = S.shared(xd, "train_set_x"), S.shared(yd, "train_set_y")
    index = S.var("index", (), ember.int64)
    x, y = S.var("x", ("B", d)), S.var("y", ("B",), ember.int64)
    W = S.shared(np.zeros((d, c), np.float32), "W")
    b = S.shared(np.zeros(c, np.float32), "b")
    p_y_given_x = F.softmax(x @ W + b, -1)
    cost = -ember.log(p_y_given_x)[ember.arange(y.shape[0]), y].mean()
    g_W, g_b = S.grad(cost, [W, b])
    updates = [(W, W - lr * g_W), (b, b - lr * g_b)]
    train_model = S.function(
        [index],
        cost,
        updates=updates,
        givens={
            x: train_set_x[index * batch_size : (index + 1) * batch_size],
            y: train_set_y[index * batch_size : (index + 1) * batch_size],
        },
    )
    assert "dynamic_slice" in [e.prim.name for e in train_model.graph.eqns]
    # eager Ember and PyTorch, the same minibatches
    We = ember.zeros(d, c, requires_grad=True)
    be = ember.zeros(c, requires_grad=True)
    Wt = torch.zeros(d, c, requires_grad=True)
    bt = torch.zeros(c, requires_grad=True)
    for _epoch in range(2):
        for i in range(n // batch_size):
            got = train_model(i)
            sl = slice(i * batch_size, (i + 1) * batch_size)
            xe, ye = ember.tensor(xd[sl]), ember.tensor(yd[sl])
            le = -ember.log(F.softmax(xe @ We + be, -1))[ember.arange(batch_size), ye].mean()
            gw, gb = ember.autograd.grad(le, [We, be])
            with ember.no_grad():
                We -= lr * gw
                be -= lr * gb
            xt, yt = torch.tensor(xd[sl]), torch.tensor(yd[sl])
            lt = -torch.log(torch.softmax(xt @ Wt + bt, -1))[torch.arange(batch_size), yt].mean()
            gwt, gbt = torch.autograd.grad(lt, [Wt, bt])
            with torch.no_grad():
                Wt -= lr * gwt
                bt -= lr * gbt
            _close(got, le)
            _close(got, lt)
    _close(W.get_value(), We)
    _close(b.get_value(), be)
    _close(W.get_value(), Wt)
    _close(b.get_value(), bt)


def test_gradient_through_the_slice_wrt_the_shared_dataset_and_a_parameter():
    data = RNG.normal(size=(9, 3)).astype(np.float32)
    wd = RNG.normal(size=(3, 2)).astype(np.float32)
    ds, w = S.shared(data, "data"), S.shared(wd, "w")
    i = S.var("i", (), ember.int64)
    batch = ds[i * 2 + 1 : i * 2 + 4]
    cost = (ember.tanh(batch @ w) ** 2).sum() + (batch**3).mean()
    g_data, g_w = S.grad(cost, [ds, w])
    f = S.function([i], [cost, g_data, g_w])
    for k in range(3):
        dt_, wt = torch.tensor(data, requires_grad=True), torch.tensor(wd, requires_grad=True)
        bt = dt_[k * 2 + 1 : k * 2 + 4]
        ct = (torch.tanh(bt @ wt) ** 2).sum() + (bt**3).mean()
        gdt, gwt = torch.autograd.grad(ct, [dt_, wt])
        got_c, got_gd, got_gw = f(k)
        _close(got_c, ct)
        _close(got_gd, gdt)  # zero outside the rows taken
        _close(got_gw, gwt)


def test_second_order_gradient_through_the_slice():
    ds = S.shared(RNG.normal(size=(6, 2)), "data")
    i = S.var("i", (), ember.int64)
    (g,) = S.grad((ds[i : i + 3] ** 3).sum(), [ds])
    (gg,) = S.grad((g**2).sum(), [ds])
    f = S.function([i], [g, gg])
    dt_ = torch.tensor(ds.get_value().numpy(), requires_grad=True)
    (gt,) = torch.autograd.grad((dt_[2:5] ** 3).sum(), [dt_], create_graph=True)
    (ggt,) = torch.autograd.grad((gt**2).sum(), [dt_])
    got_g, got_gg = f(2)
    _close(got_g, gt, rtol=1e-10)
    _close(got_gg, ggt, rtol=1e-10)


def test_the_slice_forms_match_numpy():
    d = np.arange(60, dtype=np.float32).reshape(10, 6)
    ds = S.shared(d, "d")
    i, j = S.var("i", (), ember.int64), S.var("j", (), ember.int32)
    start = S.shared(np.int64(2), "start")
    bs = 3
    f = S.function(
        [i, j],
        [
            ds[i * bs : (i + 1) * bs, :],  # rows, explicit full second axis
            ds[:, j : j + 3],  # columns, int32 start
            ds[i : i + 4],  # a symbolic start, a stop with a Python int offset
            ds[start : start + 2],  # the start as a 0-d shared variable
            ds[i : i + 2, j : j + 3],  # two symbolic slices
            ds[..., j + 1 : j + 3],  # after an ellipsis
            ds[i : i + 2, 1],  # with an integer index
            ds[i : i + 2][:, None],  # indexed again
            ds[i // 2 * 2 : i // 2 * 2 + 2],  # a non-affine start, recomputed in the stop
        ],
    )
    for a in range(3):
        for b in range(4):
            got = f(a, b)
            want = [
                d[a * bs : (a + 1) * bs, :],
                d[:, b : b + 3],
                d[a : a + 4],
                d[2:4],
                d[a : a + 2, b : b + 3],
                d[..., b + 1 : b + 3],
                d[a : a + 2, 1],
                d[a : a + 2][:, None],
                d[a // 2 * 2 : a // 2 * 2 + 2],
            ]
            for g, w in zip(got, want):
                _close(g, w)
    start.set_value(np.int64(7))
    _close(f(0, 0)[3], d[7:9])


def test_dynamic_slice_of_a_symbolic_size_input():
    x = S.var("x", ("B", 5))
    j = S.var("j", (), ember.int64)
    f = S.function([x, j], [x[:, j : j + 2], x[j : j + 2]])
    for b in (3, 6):
        xd = RNG.normal(size=(b, 5)).astype(np.float32)
        cols, rows = f(xd, 1)
        _close(cols, xd[:, 1:3])
        _close(rows, xd[1:3])
    with pytest.raises(IndexError, match=r"\[2:4\].*dim 0 of size 3"):
        f(RNG.normal(size=(3, 5)).astype(np.float32), 2)


def test_a_slice_out_of_range_at_run_time_is_an_index_error():
    ds = S.shared(np.zeros((10, 2), np.float32), "d")
    i = S.var("i", (), ember.int64)
    f = S.function([i], ds[i * 4 : (i + 1) * 4])
    _close(f(1), np.zeros((4, 2), np.float32))
    with pytest.raises(IndexError, match=r"dynamic_slice: the slice \[8:12\].*dim 0 of size 10"):
        f(2)  # NumPy would return 2 rows, jax would clamp the start to 6
    with pytest.raises(IndexError, match=r"dynamic_slice: the slice \[-4:0\].*size 10"):
        f(-1)
    g = S.function([i], S.grad(ds[i : i + 3].sum(), [ds])[0])
    with pytest.raises(IndexError, match=r"the slice \[8:11\].*dim 0 of size 10"):
        g(8)


def test_a_length_that_depends_on_the_values_is_refused():
    ds = S.shared(np.zeros((10, 2), np.float32), "d")
    i, j = S.var("i", (), ember.int64), S.var("j", (), ember.int64)
    with pytest.raises(SymbolicError, match=r"slice \[i:2\*i\], stop - start = i, depends"):
        ds[i : 2 * i]
    with pytest.raises(SymbolicError, match=r"slice \[i:j\], stop - start = j - i, depends"):
        ds[i:j]
    with pytest.raises(SymbolicError, match=r"\[i:\] runs to the end of dim 1.*depends"):
        ds[:, i:]
    with pytest.raises(SymbolicError, match=r"\[:i\], stop - start = i, depends"):
        ds[:i]


def test_bad_symbolic_slices_are_clear_errors():
    ds = S.shared(np.zeros((10, 2), np.float32), "d")
    i = S.var("i", (), ember.int64)
    with pytest.raises(SymbolicError, match=r"\[i:i\] has length 0.*positive length"):
        ds[i:i]
    with pytest.raises(SymbolicError, match=r"\[i \+ 3:i \+ 1\] has length -2"):
        ds[i + 3 : i + 1]
    with pytest.raises(SymbolicError, match="step 2; only step 1"):
        ds[i : i + 4 : 2]
    with pytest.raises(SymbolicError, match=r"length 11, more than dim 0 \(size 10\)"):
        ds[i : i + 11]
    with pytest.raises(SymbolicError, match=r"start 'f' must be a 0-d integer symbol, got f32"):
        ds[S.var("f", ()) : 3]
    with pytest.raises(SymbolicError, match="must be a 0-d integer symbol, got i64"):
        ds[S.var("v", (2,), ember.int64) : 3]


def test_eager_and_compiled_dynamic_slice_match_torch_narrow():
    xd = RNG.normal(size=(5, 4))
    for dim, start, length in [(0, 1, 3), (1, 2, 2), (-1, 0, 4)]:
        x = ember.tensor(xd, requires_grad=True)
        xt = torch.tensor(xd, requires_grad=True)
        y = dynamic_slice(x, ember.tensor(start), dim, length)
        yt = xt.narrow(dim, start, length)
        _close(y, yt)
        (gx,) = ember.autograd.grad((y**2).sum(), [x])
        (gt,) = torch.autograd.grad((yt**2).sum(), [xt])
        _close(gx, gt)
    cf = ember.compile(lambda a, s: dynamic_slice(a, s, 1, 2) * 2, dynamic=False)
    for s in (0, 1, 2, 1):
        _close(cf(ember.tensor(xd), ember.tensor(s)), 2 * xd[:, s : s + 2])
    assert cf.explain().traces == 1  # the start is a value, not part of the signature
    with pytest.raises(IndexError, match=r"\[3:5\].*dim 1 of size 4"):
        cf(ember.tensor(xd), ember.tensor(3))
    with pytest.raises(IndexError, match=r"\[5:7\].*dim 0 of size 5"):
        dynamic_slice(ember.tensor(xd), 5, 0, 2)
    with pytest.raises(TypeError, match="0-d integer tensor"):
        dynamic_slice(ember.tensor(xd), ember.tensor(1.0), 0, 2)
    with pytest.raises(ValueError, match="length 6 does not fit dim 0"):
        dynamic_slice(ember.tensor(xd), 0, 0, 6)


def test_a_cursor_in_a_shared_variable_walks_the_dataset():
    data = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = S.shared(data, "data")
    pos = S.shared(np.int64(0), "pos")
    f = S.function([], ds[pos : pos + 2].sum(0), updates=[(pos, pos + 2)])
    for k in range(3):
        _close(f(), data[2 * k : 2 * k + 2].sum(0))
    assert pos.get_value().item() == 6
    with pytest.raises(IndexError, match=r"\[6:8\].*size 6"):
        f()


def test_saved_minibatch_step_loads_and_runs_in_a_fresh_process(tmp_path):
    xd = RNG.normal(size=(8, 3)).astype(np.float32)
    train_x = S.shared(xd, "train_x")
    w = S.shared(np.ones(3, np.float32), "w")
    index = S.var("index", (), ember.int64)
    x = S.var("x", ("B", 3))
    cost = ((x @ w) ** 2).mean()
    (gw,) = S.grad(cost, [w])
    step = S.function(
        [index], cost, updates=[(w, w - 0.1 * gw)], givens={x: train_x[index * 2 : (index + 1) * 2]}
    )
    path = tmp_path / "step.json"
    step.save(str(path))
    want = [step(i).item() for i in (0, 3, 1)]
    want_w = w.get_value().numpy().tolist()
    script = textwrap.dedent(
        f"""
        import ember
        from ember import symbol as S
        f = S.load({str(path)!r})
        costs = [f(i).item() for i in (0, 3, 1)]
        print(repr(costs))
        print(repr(f.shared_values()["w"].numpy().tolist()))
        try:
            f(4)
        except IndexError as e:
            print("IndexError", e)
        """
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    np.testing.assert_allclose(eval(lines[0]), want, rtol=1e-6)
    np.testing.assert_allclose(eval(lines[1]), want_w, rtol=1e-6)
    assert lines[2].startswith("IndexError dynamic_slice: the slice [8:10]"), lines[2]
