"""Symbolic sizes beyond the batch in ``ember.compile``: sequence lengths, image sizes, shape
arithmetic in Python, and the sizes that must stay specialized. Compiled results are compared
with the same code run eagerly (PyTorch equality of the eager ops is tested elsewhere)."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import ember
from ember import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from workloads import build

SIZES = [(4, 32), (4, 24), (4, 17), (3, 32), (3, 24), (3, 17), (5, 32), (5, 24), (5, 17)]


def _tokens(rng, b, t, vocab=256):
    return ember.from_numpy(rng.integers(0, vocab, (b, t)).astype(np.int64))


def test_gpt_written_train_step_over_batch_and_sequence_lengths():
    # twin models, one stepped eagerly, one compiled: 3 sequence lengths x 3 batch sizes
    m1, o1, _batch, loss_fn = build(ember, "gpt_written", small=True)
    m2, o2, _batch, _ = build(ember, "gpt_written", small=True)
    m2.load_state_dict(m1.state_dict())

    def make_step(model, opt):
        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    eager, comp = make_step(m1, o1), ember.compile(make_step(m2, o2))
    rng = np.random.default_rng(0)
    for b, t in SIZES:
        x, y = _tokens(rng, b, t), _tokens(rng, b, t)
        want, got = eager(x, y).item(), comp(x, y).item()
        assert got == pytest.approx(want, rel=1e-5), (b, t)
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-5, atol=1e-6)
    exp = comp.explain()
    assert exp.traces <= 2 and exp.eager_signatures == 0, str(exp)
    assert "argument 0 dim 1: s1" in exp.symbolic_dims and "argument 0 dim 0: B" in (
        exp.symbolic_dims
    )


def test_gpt_written_forward_graph_is_symbolic_in_batch_and_length():
    model, _opt, _batch, _loss = build(ember, "gpt_written", small=True)
    model.eval()
    f = ember.compile(model)
    rng = np.random.default_rng(1)
    with ember.no_grad():
        for b, t in [(2, 16), (2, 9), (3, 30), (1, 32), (4, 5)]:
            x = _tokens(rng, b, t)
            np.testing.assert_allclose(f(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert f.explain().traces == 2, str(f.explain())
    # the position ids are an arange of the symbolic length inside the graph
    with ember.no_grad():
        g = f.graph(_tokens(rng, 2, 11))
    assert "arange" in g.primitives()
    assert "f32[B,s1,64]" in str(g) and "slice(None, Dim('s1'), None)" in str(g)


def test_lstm_over_sequence_lengths():
    model, _opt, _batch, _loss = build(ember, "lstm", small=True)
    f = ember.compile(model)
    rng = np.random.default_rng(2)
    with ember.no_grad():
        for b, t in [(4, 16), (4, 11), (2, 7), (5, 20), (3, 3)]:
            x = _tokens(rng, b, t, vocab=96)
            np.testing.assert_allclose(f(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    exp = f.explain()
    assert exp.traces == 2, str(exp)
    assert "argument 0 dim 1: s1" in exp.symbolic_dims


def test_lstm_training_step_over_sequence_lengths():
    m1, o1, _b, loss_fn = build(ember, "lstm", small=True)
    m2, o2, _b, _ = build(ember, "lstm", small=True)
    m2.load_state_dict(m1.state_dict())

    def make(model, opt):
        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    eager, comp = make(m1, o1), ember.compile(make(m2, o2))
    rng = np.random.default_rng(3)
    for t in (12, 8, 15, 5):
        x, y = _tokens(rng, 4, t, 96), _tokens(rng, 4, t, 96)
        assert comp(x, y).item() == pytest.approx(eager(x, y).item(), rel=1e-5)
    assert comp.explain().traces == 2, str(comp.explain())


def _convnet():
    ember.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_conv_net_over_image_sizes():
    net = _convnet()
    net.eval()
    f = ember.compile(net)
    rng = np.random.default_rng(4)
    with ember.no_grad():
        for b, hw in [(2, 16), (2, 24), (3, 32), (2, 40), (4, 48)]:
            x = ember.from_numpy(rng.standard_normal((b, 3, hw, hw)).astype(np.float32))
            np.testing.assert_allclose(f(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-6)
    exp = f.explain()
    # strided layers floor-divide the size: the graph is fitted on sizes stepping by 8
    assert exp.traces == 2, str(exp)
    assert "argument 0 dim 2: s1" in exp.symbolic_dims
    assert "argument 0 dim 3: s1" in exp.symbolic_dims


def test_conv_net_each_residue_of_the_lattice_gets_one_graph():
    net = _convnet()
    net.eval()
    f = ember.compile(net)
    rng = np.random.default_rng(5)
    with ember.no_grad():
        for hw in (16, 24, 17, 25, 33, 21, 40, 29, 18, 26):
            x = ember.from_numpy(rng.standard_normal((2, 3, hw, hw)).astype(np.float32))
            np.testing.assert_allclose(f(x).numpy(), net(x).numpy(), rtol=1e-5, atol=1e-6)
    exp = f.explain()
    # 16 (first call), then sizes = 0, 1 and 1 (mod 4): one symbolic graph each (two
    # stride-2 layers: the graph holds on sizes stepping by 4)
    assert exp.traces == 4, str(exp)
    assert "s1%4==1" in exp.events[2] and "argument 0 dim 2: s1" in exp.symbolic_dims


def test_conv_net_training_over_non_square_image_sizes():
    n1, n2 = _convnet(), _convnet()
    o1 = ember.optim.SGD(n1.parameters(), lr=0.05, momentum=0.9)
    o2 = ember.optim.SGD(n2.parameters(), lr=0.05, momentum=0.9)

    def make(net, opt):
        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    eager, comp = make(n1, o1), ember.compile(make(n2, o2))
    rng = np.random.default_rng(6)
    for b, h, w in [(4, 16, 16), (4, 24, 16), (3, 24, 32), (4, 32, 24), (2, 16, 40)]:
        x = ember.from_numpy(rng.standard_normal((b, 3, h, w)).astype(np.float32))
        y = ember.from_numpy(rng.integers(0, 4, b).astype(np.int64))
        assert comp(x, y).item() == pytest.approx(eager(x, y).item(), rel=1e-5), (b, h, w)
    for p, q in zip(n1.parameters(), n2.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert comp.explain().traces <= 3, str(comp.explain())


def test_reshape_heavy_shape_arithmetic():
    ember.manual_seed(0)
    w = ember.randn(6, 4)

    def f(x):
        b, t, c = x.shape
        y = x.reshape(b * t, c) @ w  # view(b*t, c)
        y = y.view(b, t, -1).transpose(1, 2).reshape(b, -1)  # (b, 4*t)
        z = y[:, : 2 * t] - y[:, t : 3 * t]  # slices computed from t
        z = z.reshape(b, 2, t).flatten(0, 1)  # (2*b, t)
        pad = ember.zeros(2 * b, t + 1)  # a constructor with a shape from Python
        s = ember.cat([z, pad], dim=1).sum(-1) / (t * c)  # a Python float of the sizes
        return s.reshape(-1, 2), ember.arange(t).float().mean()

    cf = ember.compile(f)
    rng = np.random.default_rng(7)
    for b, t in [(2, 5), (2, 8), (3, 7), (4, 12), (3, 2), (1, 9)]:
        x = ember.from_numpy(rng.standard_normal((b, t, 6)).astype(np.float32))
        for got, want in zip(cf(x), f(x)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    exp = cf.explain()
    assert exp.traces == 2, str(exp)
    assert exp.symbolic_dims == ["argument 0 dim 0: B", "argument 0 dim 1: s1"]


def test_mark_dynamic_symbolic_from_the_first_trace():
    f = ember.compile(lambda x, y: (x.reshape(-1, x.shape[-1]) * 2).sum(0) + y)
    y = ember.ones(5)
    rng = np.random.default_rng(8)
    for b, t in [(2, 7), (2, 9), (3, 4), (6, 11)]:
        x = ember.from_numpy(rng.standard_normal((b, t, 5)).astype(np.float32))
        ember.compile.mark_dynamic(x, 1)
        want = (x.reshape(-1, 5) * 2).sum(0) + y
        np.testing.assert_allclose(f(x, y).numpy(), want.numpy(), rtol=1e-6)
    exp = f.explain()
    assert exp.traces == 1, str(exp)
    assert "argument 0 dim 1: s1" in exp.symbolic_dims


def test_mark_dynamic_bad_arguments():
    x = ember.ones(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        ember.compile.mark_dynamic(x, 2)
    with pytest.raises(TypeError, match="Tensor"):
        ember.compile.mark_dynamic(np.ones(3), 0)
    with pytest.raises(TypeError, match="int"):
        ember.compile.mark_dynamic(x, "1")


def test_size_indexing_a_python_list_is_a_guard():
    table = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]

    def f(x):
        return x * table[x.shape[1]]  # not a polynomial in the size: specialized

    cf = ember.compile(f)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for t in (5, 8, 9, 8, 13):
            x = ember.ones(2, t)
            np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    assert any("cannot be symbolic" in str(m.message) for m in w)
    exp = cf.explain()
    assert "argument 0 dim 1" in exp.static_dims
    assert "not a polynomial" in exp.static_dims["argument 0 dim 1"]
    assert exp.traces == 4  # one graph per size seen (8 twice: cached)
    assert "cannot be symbolic" in str(exp)


def test_size_branch_caught_at_a_new_size():
    # linear in t over the traced sizes, different beyond: caught by the dry run at t=12
    def f(x):
        t = x.shape[1]
        return x * (t if t < 10 else -1)

    cf = ember.compile(f)
    for t in (5, 7, 6, 12, 4):
        x = ember.ones(2, t)
        np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    exp = cf.explain()
    assert any("does not hold at sizes" in e and "s1=12" in e for e in exp.events), str(exp)


def test_dynamic_false_specializes_every_size():
    cf = ember.compile(lambda x: x.reshape(-1) + 1, dynamic=False)
    for t in (3, 4, 5):
        cf(ember.ones(2, t))
    exp = cf.explain()
    assert exp.traces == 3 and exp.symbolic_dims == []


def test_sizes_one_stay_specialized():
    # size 1 broadcasts, so it is never made symbolic (as torch.compile)
    cf = ember.compile(lambda x, y: x + y)
    for t in (1, 4, 6):
        x, y = ember.ones(2, t), ember.ones(1, t)
        np.testing.assert_array_equal(cf(x, y).numpy(), (x + y).numpy())
    assert cf.explain().traces == 2


def test_mark_dynamic_with_dynamic_false_makes_only_that_axis_symbolic():
    cf = ember.compile(lambda x: x.flatten() * 3, dynamic=False)
    for b, t in [(2, 4), (2, 7), (2, 5), (3, 5)]:
        x = ember.ones(b, t)
        ember.compile.mark_dynamic(x, 1)
        np.testing.assert_array_equal(cf(x).numpy(), (x.flatten() * 3).numpy())
    exp = cf.explain()
    assert exp.symbolic_dims == ["argument 0 dim 1: s1"], str(exp)
    assert exp.traces == 2  # the batch size 3 is specialized


def test_arange_of_the_batch_size_is_in_the_graph():
    from ember_lite._prims import PRIMS

    from ember.compiler._shapes import arange_p

    def f(x):
        return x * ember.arange(x.shape[0]).float()[:, None] + ember.arange(1.0, 2.0, 0.25)

    cf = ember.compile(f)
    for b in (3, 5, 8):
        x = ember.ones(b, 4)
        np.testing.assert_array_equal(cf(x).numpy(), f(x).numpy())
    assert cf.explain().traces == 1
    assert "arange" in cf.graph(ember.ones(2, 4)).primitives()
    # ember_lite runs the same primitive (saved graphs)
    for p in ({"start": 0, "step": 1, "n": 5, "dtype": np.int64},
              {"start": 0.5, "step": 0.25, "n": 6, "dtype": np.float32}):  # fmt: skip
        np.testing.assert_array_equal(PRIMS["arange"](**p), arange_p.impl(**p))


def test_design_fits_multilinear_polynomials_and_rejects_others():
    from fractions import Fraction

    from ember.compiler._shapes import Design, SizeMismatch
    from ember.compiler.ir import Dim

    rng = np.random.default_rng(9)
    names = ["B", "s1", "s2"]
    for steps in ([1, -1, 1], [1, 4, -8]):
        d = Design(names, [3, 12, 40], steps)
        for _ in range(20):
            c = rng.integers(-3, 4, 8)

            def f(p, c=c):
                b, t, h = p["B"], p["s1"], p["s2"]
                return int(c[0] + c[1] * b + c[2] * t + c[3] * h + c[4] * b * t + c[5] * b * h
                           + c[6] * t * h + c[7] * b * t * h)  # fmt: skip

            got = d.fit_int([f(p) for p in d.points()], "x")
            for p in ({"B": 7, "s1": 5, "s2": 9}, {"B": 1, "s1": 30, "s2": 2}):
                assert (got.eval(p) if isinstance(got, Dim) else got) == f(p)
    # a square is not multilinear: the check point rejects it
    d = Design(["s1"], [10], [-1])
    with pytest.raises(SizeMismatch, match="not a polynomial"):
        d.fit_int([p["s1"] ** 2 for p in d.points()], "x")
    # floor division on a lattice of step 4: exact there, rational coefficients
    d = Design(["s1"], [16], [4])
    got = d.fit_int([(p["s1"] - 1) // 2 + 1 for p in d.points()], "x")
    assert got == Dim("s1", Fraction(1, 2)) and got.eval({"s1": 44}) == 22
    # floats: 1 / (B*s1) and n / (n - 1) for n = B*s1*s1
    d = Design(["B", "s1"], [2, 8], [1, -1])
    r = d.fit_float([1.0 / (p["B"] * p["s1"]) for p in d.points()], "y")
    assert r.eval({"B": 5, "s1": 7}) == pytest.approx(1 / 35, rel=1e-12)
    n = [p["B"] * p["s1"] ** 2 for p in d.points()]
    r = d.fit_float([k / (k - 1) for k in n], "y")
    assert r.eval({"B": 3, "s1": 11}) == pytest.approx(363 / 362, rel=1e-12)


@pytest.mark.parametrize("batch_first", [True, False])
def test_rnn_state_with_the_batch_on_axis_1(batch_first):
    """An LSTM's (layers, batch, hidden) state beside its input: resizing axis 0 alone is
    refused by the module (no error reaches the user), and the state's axis 1 joins the
    batch symbol once both change together."""
    ember.manual_seed(0)
    lstm = ember.nn.LSTM(8, 16, num_layers=2, batch_first=batch_first).eval()

    def f(x, h, c):
        out, (hn, cn) = lstm(x, (h, c))
        return out, hn + cn

    cf = ember.compile(f)
    for b in (4, 5, 7, 9, 4):
        x = ember.randn(b, 6, 8) if batch_first else ember.randn(6, b, 8)
        h, c = ember.randn(2, b, 16), ember.randn(2, b, 16)
        with ember.no_grad():
            for got, want in zip(cf(x, h, c), f(x, h, c)):
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert cf.explain().traces <= 2
