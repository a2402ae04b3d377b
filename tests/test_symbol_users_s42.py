"""ember.symbol as Theano tutorial users write it: minibatch SGD through ``givens``, MLPs with
momentum, autoencoders with tied weights, unrolled RNNs, hand-written losses, saving and
loading in a fresh process, and the errors of bad input. Each program is checked against
the same computation in eager Ember and in PyTorch.
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
from ember.symbol import SymbolicError

RNG = np.random.default_rng(42)


def _close(got, want, rtol=1e-5, atol=1e-6):
    got = got.detach().numpy() if isinstance(got, ember.Tensor) else np.asarray(got)
    if isinstance(want, (torch.Tensor, ember.Tensor)):
        want = want.detach().numpy()
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _data(n=20, d=4, c=3, dtype=np.float32):
    return RNG.normal(size=(n, d)).astype(dtype), RNG.integers(0, c, n).astype(np.int64)


# -- the deeplearning.net logistic regression: minibatches through givens -------------------


def test_logreg_minibatch_sgd_by_index_through_givens_matches_torch():
    n, d, c, bs, lr = 20, 4, 3, 5, 0.13
    xd, yd = _data(n, d, c)
    train_x, train_y = S.shared(xd, "train_x"), S.shared(yd, "train_y")
    index = S.var("index", (), ember.int64)
    x, y = S.var("x", ("B", d)), S.var("y", ("B",), ember.int64)
    W = S.shared(np.zeros((d, c), np.float32), "W")
    b = S.shared(np.zeros(c, np.float32), "b")
    p_y = F.softmax(x @ W + b, -1)
    # negative log likelihood written by hand: log of softmax indexed by arange and label
    nll = -ember.log(p_y)[ember.arange(y.shape[0]), y].mean()
    errors = (p_y.argmax(1) != y).to(ember.float32).mean()
    gW, gb = S.grad(nll, [W, b])
    rows = index * bs + ember.arange(bs)
    train = S.function(
        [index],
        nll,
        updates=[(W, W - lr * gW), (b, b - lr * gb)],
        givens={x: train_x[rows], y: train_y[rows]},
    )
    validate = S.function([index], errors, givens={x: train_x[rows], y: train_y[rows]})
    Wt = torch.zeros(d, c, requires_grad=True)
    bt = torch.zeros(c, requires_grad=True)
    for _epoch in range(2):
        for i in range(n // bs):
            got = train(i)
            xb, yb = (
                torch.tensor(xd[i * bs : (i + 1) * bs]),
                torch.tensor(yd[i * bs : (i + 1) * bs]),
            )
            loss = -torch.log(torch.softmax(xb @ Wt + bt, -1))[torch.arange(bs), yb].mean()
            gw, gbt = torch.autograd.grad(loss, [Wt, bt])
            with torch.no_grad():
                Wt -= lr * gw
                bt -= lr * gbt
            _close(got, loss)
    _close(W.get_value(), Wt)
    _close(b.get_value(), bt)
    # validate shares W and b with train: it sees the trained values
    for i in range(n // bs):
        xb, yb = torch.tensor(xd[i * bs : (i + 1) * bs]), torch.tensor(yd[i * bs : (i + 1) * bs])
        want = ((xb @ Wt + bt).argmax(1) != yb).float().mean()
        _close(validate(i), want)


def test_slice_with_a_value_dependent_length_is_a_clear_error():
    # data[i * 2:(i + 1) * 2] works (tests/test_symbol_dynamic_slice_s42.py); a length that
    # changes with the values cannot be part of a graph
    data = S.shared(np.zeros((10, 2), np.float32), "data")
    i = S.var("i", (), ember.int64)
    assert tuple(data[i * 2 : (i + 1) * 2].shape) == (2, 2)
    with pytest.raises(SymbolicError, match=r"\[i:2\*i\], stop - start = i, depends on the values"):
        data[i : 2 * i]
    with pytest.raises(SymbolicError, match=r"\[i:\] runs to the end of dim 1"):
        data[:, i:]


def test_arange_of_a_symbolic_size_as_an_index_array():
    x = S.var("x", ("B", 3))
    y = S.var("y", ("B",), ember.int64)
    picked = x[ember.arange(x.shape[0]), y]
    f = S.function([x, y], [picked, S.grad(picked.sum(), x)])
    for b in (2, 5):
        xd = RNG.normal(size=(b, 3)).astype(np.float32)
        yd = RNG.integers(0, 3, b)
        xt = torch.tensor(xd, requires_grad=True)
        pt = xt[torch.arange(b), torch.tensor(yd)]
        (gt,) = torch.autograd.grad(pt.sum(), [xt])
        got, g = f(xd, yd)
        _close(got, pt)
        _close(g, gt)


# -- the MLP tutorial: tanh hidden layer, L1 + L2, momentum ----------------------------------


def _mlp_init(d, h, c, dtype):
    rng = np.random.default_rng(1)
    bound = np.sqrt(6.0 / (d + h))
    return [
        rng.uniform(-bound, bound, (d, h)).astype(dtype),
        np.zeros(h, dtype),
        rng.normal(size=(h, c)).astype(dtype) * 0.1,
        np.zeros(c, dtype),
    ]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_mlp_tanh_l1_l2_momentum_matches_eager_ember_and_torch(dtype, rtol):
    d, h, c, lr, mom, l1, l2, steps = 4, 6, 3, 0.1, 0.9, 1e-3, 1e-4, 5
    xd, yd = _data(12, d, c, dtype)
    init = _mlp_init(d, h, c, dtype)
    params = [S.shared(v, n) for v, n in zip(init, ["W1", "b1", "W2", "b2"])]
    vel = [S.shared(np.zeros_like(v), "v_" + p.name) for v, p in zip(init, params)]
    edt = ember.float64 if dtype == np.float64 else ember.float32
    x, y = S.var("x", ("B", d), edt), S.var("y", ("B",), ember.int64)

    def cost_of(x, y, W1, b1, W2, b2, lib):
        hid = lib.tanh(x @ W1 + b1)
        logits = hid @ W2 + b2
        nll = -lib.log_softmax(logits, -1)[lib.arange(y.shape[0]), y].mean()
        return nll + l1 * (abs(W1).sum() + abs(W2).sum()) + l2 * ((W1**2).sum() + (W2**2).sum())

    class _E:
        tanh, arange = staticmethod(ember.tanh), staticmethod(ember.arange)
        log_softmax = staticmethod(F.log_softmax)

    cost = cost_of(x, y, *params, _E)
    grads = S.grad(cost, params)
    updates = []
    for p, v, g in zip(params, vel, grads):
        updates.append((v, mom * v - lr * g))
        updates.append((p, p + mom * v - lr * g))
    train = S.function([x, y], cost, updates=updates)
    eager = [ember.tensor(v, requires_grad=True) for v in init]
    evel = [ember.zeros_like(p) for p in eager]
    tp = [torch.tensor(v, requires_grad=True) for v in init]
    tvel = [torch.zeros_like(p) for p in tp]
    for _ in range(steps):
        got = train(xd, yd)
        ec = cost_of(ember.tensor(xd), ember.tensor(yd), *eager, _E)
        eg = ember.autograd.grad(ec, eager)
        tc = cost_of(torch.tensor(xd), torch.tensor(yd), *tp, torch)
        tg = torch.autograd.grad(tc, tp)
        _close(got, ec, rtol=rtol)
        _close(got, tc, rtol=rtol)
        with ember.no_grad(), torch.no_grad():
            for k in range(4):
                evel[k] = mom * evel[k] - lr * eg[k]
                eager[k] += evel[k]
                tvel[k] = mom * tvel[k] - lr * tg[k]
                tp[k] += tvel[k]
    for p, e, t in zip(params, eager, tp):
        _close(p.get_value(), e, rtol=rtol)
        _close(p.get_value(), t, rtol=rtol)


# -- denoising autoencoder with tied weights ------------------------------------------------


def test_denoising_autoencoder_tied_weights_fixed_mask_matches_torch():
    nv, nh, lr = 6, 4, 0.1
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(nv, nh)).astype(np.float32) * 0.3
    W = S.shared(w0, "W")
    bh = S.shared(np.zeros(nh, np.float32), "bh")
    bv = S.shared(np.zeros(nv, np.float32), "bv")
    x, mask = S.var("x", ("B", nv)), S.var("mask", ("B", nv))
    z = ember.sigmoid(ember.sigmoid((x * mask) @ W + bh) @ W.T + bv)
    cost = -(x * ember.log(z) + (1 - x) * ember.log(1 - z)).sum(1).mean()
    grads = S.grad(cost, [W, bh, bv])
    train = S.function(
        [x, mask], [cost, z], updates=[(p, p - lr * g) for p, g in zip([W, bh, bv], grads)]
    )
    Wt = torch.tensor(w0, requires_grad=True)
    bht = torch.zeros(nh, requires_grad=True)
    bvt = torch.zeros(nv, requires_grad=True)
    for _ in range(4):
        xd = rng.random((5, nv)).astype(np.float32)
        md = (rng.random((5, nv)) > 0.3).astype(np.float32)
        c, zz = train(xd, md)
        xt, mt = torch.tensor(xd), torch.tensor(md)
        zt = torch.sigmoid(torch.sigmoid((xt * mt) @ Wt + bht) @ Wt.T + bvt)
        ct = -(xt * torch.log(zt) + (1 - xt) * torch.log(1 - zt)).sum(1).mean()
        gs = torch.autograd.grad(ct, [Wt, bht, bvt])
        _close(c, ct, rtol=1e-5)
        _close(zz, zt, rtol=1e-5)
        with torch.no_grad():
            for p, g in zip([Wt, bht, bvt], gs):
                p -= lr * g
    _close(W.get_value(), Wt, rtol=1e-5)
    _close(bv.get_value(), bvt, rtol=1e-5)


# -- an RNN unrolled in Python ---------------------------------------------------------------


def test_rnn_unrolled_over_fixed_steps_grads_match_torch():
    T, d, h = 4, 3, 5
    rng = np.random.default_rng(4)
    wx0, wh0 = (
        rng.normal(size=(d, h)).astype(np.float32),
        rng.normal(size=(h, h)).astype(np.float32) * 0.3,
    )
    Wx, Wh = S.shared(wx0, "Wx"), S.shared(wh0, "Wh")
    xs = S.var("xs", ("B", T, d))
    h0 = S.var("h0", ("B", h))
    hs, hcur = [], h0
    for t in range(T):
        hcur = ember.tanh(xs[:, t] @ Wx + hcur @ Wh)
        hs.append(hcur.unsqueeze(1))
    seq = ember.cat(hs, 1)  # (B, T, h)
    cost = (seq.max(2)[0] + seq.transpose(1, 2).mean(1)).sum()
    f = S.function([xs, h0], [seq, *S.grad(cost, [Wx, Wh, xs, h0])])
    for b in (2, 3):
        xd = rng.normal(size=(b, T, d)).astype(np.float32)
        hd = rng.normal(size=(b, h)).astype(np.float32)
        xt, ht = torch.tensor(xd, requires_grad=True), torch.tensor(hd, requires_grad=True)
        Wxt, Wht = torch.tensor(wx0, requires_grad=True), torch.tensor(wh0, requires_grad=True)
        hc, outs = ht, []
        for t in range(T):
            hc = torch.tanh(xt[:, t] @ Wxt + hc @ Wht)
            outs.append(hc.unsqueeze(1))
        seqt = torch.cat(outs, 1)
        ct = (seqt.max(2)[0] + seqt.transpose(1, 2).mean(1)).sum()
        want = torch.autograd.grad(ct, [Wxt, Wht, xt, ht])
        got_seq, *got = f(xd, hd)
        _close(got_seq, seqt)
        for g, w in zip(got, want):
            _close(g, w, rtol=1e-4, atol=1e-5)  # float32 sums over batch and time in another order


# -- hand-written ops: where/switch, comparisons, casts, dimshuffle, concat, symbolic slices --


def test_elementwise_toolkit_values_and_grads_match_torch():
    def prog(x, lib):
        sw = lib.where(x > 0, x * 2, x.exp() - 1)  # Theano's switch
        cmp = ((x >= 0.5) | (x < -1.0)).to(x.dtype)  # comparisons cast to float
        half = x.shape[0] // 2 if lib is torch else x.shape[0]
        dims = x.permute(1, 0).reshape(3, -1)  # dimshuffle(1, 0) then flatten
        cat = lib.cat([sw, cmp * x, x.max(1, keepdim=True)[0].expand(-1, 3)], 1)
        cost = (cat**2).mean() + dims.sum(0).max() + x[1:, :-1].sum() + half * 0
        return cat, cost

    x = S.var("x", ("B", 3))
    cat, cost = prog(x, ember)
    f = S.function([x], [cat, cost, S.grad(cost, x)])
    for b in (3, 5):
        xd = RNG.normal(size=(b, 3)).astype(np.float32)
        xt = torch.tensor(xd, requires_grad=True)
        ct, cst = prog(xt, torch)
        (gt,) = torch.autograd.grad(cst, [xt])
        got_cat, got_cost, got_g = f(xd)
        _close(got_cat, ct)
        _close(got_cost, cst)
        _close(got_g, gt)


def test_grad_with_respect_to_non_shared_inputs_and_shared_together():
    x, t = S.var("x", ("B", 2)), S.var("t", ("B", 2))
    w = S.shared(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32), "w")
    cost = ((x @ w - t) ** 2).mean()
    gx, gt, gw = S.grad(cost, [x, t, w])
    f = S.function([x, t], [gx, gt, gw])
    xd, td = RNG.normal(size=(4, 2)).astype(np.float32), RNG.normal(size=(4, 2)).astype(np.float32)
    xt, tt = torch.tensor(xd, requires_grad=True), torch.tensor(td, requires_grad=True)
    wt = torch.tensor(w.get_value().numpy(), requires_grad=True)
    want = torch.autograd.grad(((xt @ wt - tt) ** 2).mean(), [xt, tt, wt])
    for g, wv in zip(f(xd, td), want):
        _close(g, wv)


def test_grad_with_respect_to_an_integer_input_is_a_clear_error():
    x = S.var("x", (3,))
    i = S.var("i", (), ember.int64)
    with pytest.raises(SymbolicError, match=r"wrt\[1\] \('i'\) has dtype int64.*floating-point"):
        S.grad((x * i).sum(), [x, i])


def test_scalar_index_symbol_reads_a_row_like_theano():
    data = S.shared(np.arange(12, dtype=np.float32).reshape(4, 3), "data")
    i, j = S.var("i", (), ember.int64), S.var("j", (), ember.int64)
    row, elem, col = data[i], data[i, j], data[:, j]
    f = S.function([i, j], [row, elem, col, S.grad((row * elem).sum(), data)])
    for a, b in ((1, 2), (3, 0), (-1, -2)):
        dt_ = torch.tensor(data.get_value().numpy(), requires_grad=True)
        r, e, c = dt_[a], dt_[a, b], dt_[:, b]
        (g,) = torch.autograd.grad((r * e).sum(), [dt_])
        got = f(a, b)
        for x, w in zip(got, (r, e, c, g)):
            _close(x, w)


def test_unused_input_is_accepted_and_still_checked():
    # Theano raises for an unused input; Ember accepts it (its shape is still checked)
    x, u = S.var("x", ("B", 3)), S.var("u", ("B", 2))
    f = S.function([x, u], x * 2)
    ones = np.ones((2, 3), np.float32)
    assert f(ones, np.zeros((2, 2), np.float32)).tolist() == [[2.0] * 3] * 2
    with pytest.raises(ValueError, match=r"input 'u' axis 0 has size 5, but 'B' is 2"):
        f(ones, np.zeros((5, 2), np.float32))


def test_updates_only_function_and_shared_outputs():
    n = S.shared(np.array(0, np.int64), "n")
    total = S.shared(np.zeros(2, np.float32), "total")
    tick = S.function([], None, updates={n: n + 1, total: total + n.to(ember.float32)})
    for _ in range(4):
        assert tick() == []
    assert n.get_value().item() == 4 and total.get_value().tolist() == [6.0, 6.0]
    read = S.function([], [n, total])
    a, b = read()
    tick()
    assert a.item() == 4 and b.tolist() == [6.0, 6.0]  # results are copies, not the state


# -- bad input -------------------------------------------------------------------------------


def test_bad_call_inputs_name_the_input():
    data = S.shared(np.arange(12, dtype=np.float32).reshape(4, 3), "data")
    i = S.var("i", (), ember.int64)
    x = S.var("x", ("B", 3))
    f = S.function([i, x], data[i] + x)
    xd = np.ones((2, 3), np.float32)
    for bad in (1.5, np.float32(1.0), 2.0):  # a float where an int index is expected
        with pytest.raises(TypeError, match=r"input 'i' has dtype int64; got a float value"):
            f(bad, xd)
    with pytest.raises(TypeError, match=r"input 'i' has dtype int64, expected|has dtype float32"):
        f(ember.tensor(1.0), xd)
    with pytest.raises(TypeError, match=r"missing inputs \['x'\]"):
        f(i=1)
    with pytest.raises(TypeError, match=r"got input 'i' twice"):
        f(1, i=1)
    with pytest.raises(ValueError, match=r"input 'x' has shape \(3,\) \(1-d\)"):
        f(1, np.ones(3, np.float32))
    with pytest.raises(TypeError, match=r"input 'x' has dtype int64, expected float32"):
        f(1, np.ones((2, 3), np.int64))
    assert f(np.int64(1), [[0.0, 0.0, 0.0]]).tolist() == [[3.0, 4.0, 5.0]]


def test_set_value_with_a_wrong_dtype_names_the_variable():
    n = S.shared(np.array(0, np.int64), "n")
    with pytest.raises(SymbolicError, match=r"shared variable 'n': dtype float64 cannot be stored"):
        n.set_value(1.5)
    w = S.shared(np.zeros(3, np.float32), "w")
    w.set_value([1, 2, 3])  # ints into a float variable: converted
    assert w.get_value().tolist() == [1.0, 2.0, 3.0]


def test_expand_to_an_offset_symbolic_size_stays_symbolic():
    # sizes went through int.__index__ (losing B-1) in expand: the grad of x[1:].sum() broke
    x = S.var("x", ("B", 3))
    e = S.var("c", ()).expand(x.shape[0] - 1, 3)
    assert repr(e) == "Symbol(expand: f32[B-1,3])"
    f = S.function([x], S.grad((x[1:] ** 2).mean(), x))
    xd = RNG.normal(size=(4, 3)).astype(np.float32)
    xt = torch.tensor(xd, requires_grad=True)
    (gt,) = torch.autograd.grad((xt[1:] ** 2).mean(), [xt])
    _close(f(xd), gt)


# -- save a trained step, continue in a fresh process ----------------------------------------


def test_saved_training_step_continues_in_a_fresh_process(tmp_path):
    d, c, lr = 3, 2, 0.2
    xd, yd = _data(8, d, c)
    W = S.shared(np.zeros((d, c), np.float32), "W")
    b = S.shared(np.zeros(c, np.float32), "b")
    x, y = S.var("x", ("B", d)), S.var("y", ("B",), ember.int64)
    cost = F.cross_entropy(x @ W + b, y)
    gW, gb = S.grad(cost, [W, b])
    step = S.function([x, y], cost, updates=[(W, W - lr * gW), (b, b - lr * gb)])
    for _ in range(3):
        step(xd, yd)
    path = tmp_path / "step.json"
    step.save(str(path))
    np.save(tmp_path / "x.npy", xd)
    np.save(tmp_path / "y.npy", yd)
    script = textwrap.dedent(
        f"""
        import numpy as np
        from ember import symbol as S
        f = S.load({str(path)!r})
        x, y = np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / "y.npy")!r})
        costs = [f(x=x, y=y).item() for _ in range(3)]
        sv = f.shared_values()
        np.save({str(tmp_path / "W.npy")!r}, sv["W"].numpy())
        np.save({str(tmp_path / "b.npy")!r}, sv["b"].numpy())
        np.save({str(tmp_path / "c.npy")!r}, np.array(costs, np.float32))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    costs = [step(xd, yd).item() for _ in range(3)]  # the same 3 steps in this process
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.array(costs, np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / "W.npy"), W.get_value().numpy())
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), b.get_value().numpy())
    # and both equal six torch SGD steps
    Wt = torch.zeros(d, c, requires_grad=True)
    bt = torch.zeros(c, requires_grad=True)
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(torch.tensor(xd) @ Wt + bt, torch.tensor(yd))
        gw, gbt = torch.autograd.grad(loss, [Wt, bt])
        with torch.no_grad():
            Wt -= lr * gw
            bt -= lr * gbt
    _close(W.get_value(), Wt)
    _close(b.get_value(), bt)
