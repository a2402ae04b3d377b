"""ember.symbol: symbolic vars, ops on symbols, grad, shared variables and updates, givens.

Every compiled result is compared with the same code run eagerly on Tensors (and gradients
with PyTorch); each function is called at several batch sizes without being rebuilt.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember import symbol as S
from ember.symbol import SymbolicError

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
W = ember.tensor(RNG.normal(size=(4, 3)).astype(np.float32))


def _close(got, want, rtol=1e-5, atol=1e-6):
    got = got.detach().numpy() if isinstance(got, ember.Tensor) else np.asarray(got)
    want = want.detach().numpy() if isinstance(want, ember.Tensor) else np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- vars ------------------------------------------------------------------------------------


def test_var_shapes_and_names():
    x = S.var("x", ("batch", None, 4), ember.float64)
    assert repr(x) == "Symbol(x: f64[batch,x.1,4])"
    assert x.dtype is ember.float64 and x.ndim == 3 and x.name == "x"
    assert str(x.shape[0]) == "batch" and x.shape[2] == 4
    assert S.var("s").shape == ()


@pytest.mark.parametrize(
    "args, match",
    [
        (("", (2,)), "non-empty string"),
        (("x", 3), "sequence of sizes"),
        (("x", (2, -1)), "axis 1 has size -1"),
        (("x", (2.5,)), "axis 0 has size 2.5"),
        (("x", ("",)), "empty size name"),
    ],
)
def test_var_rejects_bad_arguments(args, match):
    with pytest.raises((TypeError, ValueError), match=match):
        S.var(*args)


# -- every kind of op on symbols equals eager ------------------------------------------------

_LIN = ember.nn.Linear(4, 3)
_SEQ = ember.nn.Sequential(ember.nn.Linear(4, 5), ember.nn.Tanh(), ember.nn.Linear(5, 2))

OPS = {
    "arith": lambda x: (x * 2 + 1) / 3 - x**2,
    "rsub": lambda x: 1 - x,
    "matmul": lambda x: x @ W,
    "reshape_infer": lambda x: x.reshape(-1),
    "reshape_size": lambda x: x.reshape(x.shape[0], 2, 2),
    "view": lambda x: x.view(-1, 2),
    "flatten": lambda x: x.unsqueeze(1).flatten(1),
    "T": lambda x: x.T,
    "slice": lambda x: x[1:, ::2],
    "index_int": lambda x: x[:, 0],
    "neg_index": lambda x: x[-1],
    "softmax": lambda x: F.softmax(x, -1),
    "log_softmax_batch": lambda x: F.log_softmax(x, 0),
    "gelu": lambda x: F.gelu(x),
    "relu": lambda x: ember.relu(x),
    "layer_norm": lambda x: F.layer_norm(x, (4,)),
    "mean_batch": lambda x: x.mean(0),
    "mean_all": lambda x: x.mean(),
    "var": lambda x: x.var(0),
    "std": lambda x: x.std(),
    "sum_keepdim": lambda x: x.sum(0, keepdim=True),
    "cumsum": lambda x: x.cumsum(0),
    "max_dim": lambda x: x.max(0),
    "argmax": lambda x: x.argmax(1),
    "sort": lambda x: ember.sort(x, 0),
    "topk": lambda x: x.topk(2, 1),
    "where": lambda x: ember.where(x > 0, x, ember.zeros(())),
    "clamp": lambda x: x.clamp(-0.5, 0.5),
    "cat": lambda x: ember.cat([x, x * 2], 0),
    "stack": lambda x: ember.stack([x, x], 1),
    "expand": lambda x: x.unsqueeze(0).expand(3, -1, -1),
    "module_linear": lambda x: _LIN(x),
    "module_sequential": lambda x: _SEQ(x),
    "dropout_eval": lambda x: F.dropout(x, 0.5, training=False),
    "zeros_like": lambda x: ember.zeros_like(x) + x,
    "to_float64": lambda x: x.to(ember.float64),
    "pad": lambda x: F.pad(x, (1, 1)),
    "split": lambda x: ember.split(x, 2, 1),
    "mse_loss": lambda x: F.mse_loss(x, ember.zeros_like(x)),
    "transpose_contiguous": lambda x: x.transpose(0, 1).contiguous(),
    "repeat": lambda x: x.repeat(2, 1),
    "flip_roll": lambda x: x.flip(0).roll(1, 0),
    "einsum": lambda x: ember.einsum("bi,ij->bj", x, W),
    "logsumexp": lambda x: x.logsumexp(1),
    "gather": lambda x: x.gather(1, ember.zeros(x.shape, dtype=ember.int64)),
    "times_size": lambda x: x * x.shape[0],
    "div_size": lambda x: x / x.size(0),
    "div_numel": lambda x: x.sum() / x.numel(),
    "outer_batch": lambda x: (x.unsqueeze(2) @ x.unsqueeze(1)).sum(0),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_ops_on_symbols_equal_eager(name):
    fn = OPS[name]
    x = S.var("x", ("B", 4))
    out = fn(x)
    multi = isinstance(out, (tuple, list))
    f = S.function([x], list(out) if multi else out)
    for b in (2, 5, 1):
        xd = RNG.normal(size=(b, 4)).astype(np.float32)
        got = f(xd)
        with ember.no_grad():
            want = fn(ember.tensor(xd))
        if multi:
            assert len(got) == len(want)
            for g, w in zip(got, want):
                _close(g, w)
        else:
            _close(got, want)


def test_results_are_not_overwritten_by_later_calls():
    x = S.var("x", ("B", 3))
    f = S.function([x], [(x * 2).exp(), x.sum(0)])
    a = f(np.zeros((2, 3), np.float32))
    want = [t.tolist() for t in a]
    f(np.ones((2, 3), np.float32))
    f(np.ones((4, 3), np.float32))
    assert [t.tolist() for t in a] == want


def test_two_symbolic_sizes_and_named_size_shared_between_inputs():
    x = S.var("x", ("B", "T", 3))
    m = S.var("m", ("B", "T"))
    y = (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
    f = S.function([x, m], [y, x.reshape(x.shape[0], -1)])
    for b, t in ((2, 3), (4, 1)):
        xd = RNG.normal(size=(b, t, 3)).astype(np.float32)
        md = (RNG.random((b, t)) + 0.5).astype(np.float32)
        got, flat = f(xd, md)
        X, M = ember.tensor(xd), ember.tensor(md)
        _close(got, (X * M.unsqueeze(-1)).sum(1) / M.sum(1, keepdim=True))
        assert flat.shape == (b, t * 3)
    with pytest.raises(ValueError, match=r"input 'm' axis 0 has size 3, but 'B' is 2"):
        f(np.zeros((2, 3, 3), np.float32), np.zeros((3, 3), np.float32))


def test_floor_division_of_a_size_is_a_clear_error():
    x = S.var("x", ("B", "T"))
    # B // 2 is not kept symbolic (products such as B*T are: tests/test_symbol_products_s43.py)
    with pytest.raises(SymbolicError, match=r"B // 2 reaches this op as a plain int.*fixed size"):
        x[: x.shape[0] // 2]


# -- grad ------------------------------------------------------------------------------------


def _torch_grads(fn_t, xd, params):
    xt = torch.tensor(xd, requires_grad=True)
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    loss = fn_t(xt, *ps)
    return torch.autograd.grad(loss, [xt, *ps])


GRAD_CASES = {
    "mlp_mean": (
        lambda x, w, b: ember.tanh(x @ w + b).mean(),
        lambda x, w, b: torch.tanh(x @ w + b).mean(),
    ),
    "softmax_xent": (
        lambda x, w, b: -F.log_softmax(x @ w + b, -1)[:, 0].mean(),
        lambda x, w, b: -torch.log_softmax(x @ w + b, -1)[:, 0].mean(),
    ),
    "layernorm_var": (
        lambda x, w, b: (F.layer_norm(x @ w, (3,)) * b).var(),
        lambda x, w, b: (torch.nn.functional.layer_norm(x @ w, (3,)) * b).var(),
    ),
    "max_sort": (
        lambda x, w, b: (x @ w).max(0)[0].sum() + ember.sort(x @ w + b, 1)[0][:, 0].sum(),
        lambda x, w, b: (x @ w).max(0)[0].sum() + torch.sort(x @ w + b, 1)[0][:, 0].sum(),
    ),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grad_equals_torch(name):
    fe, ft = GRAD_CASES[name]
    wd = RNG.normal(size=(4, 3)).astype(np.float32)
    bd = RNG.normal(size=(3,)).astype(np.float32)
    x = S.var("x", ("B", 4))
    w, b = S.shared(wd, "w"), S.shared(bd, "b")
    cost = fe(x, w, b)
    f = S.function([x], [cost, *S.grad(cost, [x, w, b])])
    for n in (3, 6):
        xd = RNG.normal(size=(n, 4)).astype(np.float32)
        _c, *grads = f(xd)
        want = _torch_grads(ft, xd, [wd, bd])
        for g, t in zip(grads, want):
            _close(g, t.numpy(), rtol=1e-4, atol=1e-5)  # float32 sums in different orders


def test_grad_of_intermediate_and_second_order():
    x = S.var("x", (3,))
    h = x * x
    y = (h * x).sum()
    gh = S.grad(y, h)  # = x
    gx = S.grad(y, x)  # = 3 x^2
    ggx = S.grad(gx.sum(), x)  # = 6 x
    f = S.function([x], [gh, gx, ggx])
    a, b, c = f(np.array([1.0, 2.0, 3.0], np.float32))
    assert a.tolist() == [1.0, 2.0, 3.0]
    assert b.tolist() == [3.0, 12.0, 27.0]
    assert c.tolist() == [6.0, 12.0, 18.0]


def test_grad_errors():
    x = S.var("x", (3,))
    y = S.var("y", (3,))
    with pytest.raises(SymbolicError, match=r"scalar.*f32\[3\]"):
        S.grad(x * 2, x)
    with pytest.raises(SymbolicError, match=r"does not depend on wrt\[0\] \('y'\)"):
        S.grad(x.sum(), [y])
    g = S.grad(x.sum(), y, allow_unused=True)
    assert (
        S.function([x, y], g)(np.ones(3, np.float32), np.ones(3, np.float32)).tolist() == [0.0] * 3
    )
    with pytest.raises(TypeError, match="wrt"):
        S.grad(x.sum(), [ember.ones(3)])


# -- shared variables, updates, givens -------------------------------------------------------


def test_updates_are_simultaneous_and_outputs_see_old_values():
    a = S.shared(np.array([1.0, 2.0], np.float32), "a")
    b = S.shared(np.array([10.0, 20.0], np.float32), "b")
    f = S.function([], [a, b], updates=[(a, b), (b, a)])  # a swap
    old_a, old_b = f()
    assert old_a.tolist() == [1.0, 2.0] and old_b.tolist() == [10.0, 20.0]
    assert a.get_value().tolist() == [10.0, 20.0] and b.get_value().tolist() == [1.0, 2.0]
    # the returned values are not views of the state
    f()
    assert old_a.tolist() == [1.0, 2.0]


def test_shared_set_value_and_counter():
    n = S.shared(np.array(0, np.int64), "n")
    inc = S.function([], n, updates={n: n + 1})
    assert [inc().item() for _ in range(3)] == [0, 1, 2]
    n.set_value(np.array(10))
    assert inc().item() == 10 and n.get_value().item() == 11
    with pytest.raises(SymbolicError, match=r"set_value of shared variable 'n': shape \(2,\)"):
        n.set_value(np.zeros(2))


def test_module_parameters_are_read_by_reference():
    lin = ember.nn.Linear(2, 1)
    x = S.var("x", ("B", 2))
    f = S.function([x], lin(x))
    xd = np.ones((1, 2), np.float32)
    before = f(xd).item()
    with ember.no_grad():
        lin.bias += 1.0
    assert f(xd).item() == pytest.approx(before + 1.0)


def test_givens_substitute_before_compiling():
    x = S.var("x", ("B", 2))
    data = S.shared(np.arange(6, dtype=np.float32).reshape(3, 2), "data")
    y = (x * 2).sum()
    assert S.function([], y, givens={x: data})().item() == 30.0
    z = S.var("z", ("B", 2))
    g = S.function([z], y, givens=[(x, z + 1)])
    assert g(np.zeros((2, 2), np.float32)).item() == 8.0
    with pytest.raises(SymbolicError, match=r"givens replaces 'x' \(f32\[B,2\]\) with a value"):
        S.function([], y, givens={x: S.shared(np.zeros(3, np.float32))})


def test_constants_are_captured_at_build_time():
    c = ember.tensor([1.0, 2.0])
    x = S.var("x", (2,))
    f = S.function([x], x + c)
    c += 5  # later changes to a non-parameter tensor do not reach the graph
    assert f(np.zeros(2, np.float32)).tolist() == [1.0, 2.0]
    g = S.function([x], x + c)  # a graph built after the change sees the new value
    assert g(np.zeros(2, np.float32)).tolist() == [6.0, 7.0]


# -- errors ----------------------------------------------------------------------------------


def test_call_errors_name_the_input():
    x = S.var("x", ("B", 3))
    y = S.var("y", ("B",), ember.int64)
    f = S.function([x, y], x.sum(1) + y)
    with pytest.raises(TypeError, match=r"takes 2 inputs \(x, y\), got 1"):
        f(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"input 'x' has shape \(2, 4\), expected f32\[B,3\]"):
        f(np.zeros((2, 4), np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"input 'y' has shape \(2, 1\) \(2-d\)"):
        f(np.zeros((2, 3), np.float32), np.zeros((2, 1), np.int64))
    with pytest.raises(TypeError, match=r"input 'x' has dtype float64, expected float32"):
        f(np.zeros((2, 3)), np.zeros(2, np.int64))
    with pytest.raises(TypeError, match=r"no input named 'z'"):
        f(z=1)
    out = f(y=[1, 2], x=np.zeros((2, 3), np.float32))  # by name; lists are converted
    assert out.tolist() == [1.0, 2.0]


def test_build_errors_are_clear():
    x = S.var("x", ("B", 3))
    y = S.var("y", ("B", 3))
    w = S.shared(np.zeros(3, np.float32), "w")
    with pytest.raises(SymbolicError, match=r"depend on input 'y', which is not among"):
        S.function([x], x + y)
    with pytest.raises(SymbolicError, match="not a shared variable"):
        S.function([x], x, updates=[(x, x + 1)])
    with pytest.raises(SymbolicError, match=r"update of shared variable 'w' \(f32\[3\]\) has type"):
        S.function([x], x, updates=[(w, x)])
    with pytest.raises(SymbolicError, match="is not a var"):
        S.function([w], w)
    with pytest.raises(SymbolicError, match="no data"):
        bool(x.sum() > 0)
    with pytest.raises(SymbolicError, match="no data"):
        x.sum().item()
    with pytest.raises(SymbolicError, match="in-place ops cannot change symbolic values"):
        x.add_(1)
    with pytest.raises(SymbolicError, match="depends on the values"):
        ember.nonzero(x)
    bn = ember.nn.BatchNorm1d(3)
    with pytest.raises(SymbolicError, match=r"eager tensor of shape \(3,\).*eval\(\) mode"):
        bn(x)
    with pytest.raises(SymbolicError, match=r"ember.symbol.grad\(cost, wrt\)"):
        x.sum().backward()


def test_detach_stops_the_gradient():
    x = S.var("x", (3,))
    y = (x * x.detach()).sum()  # d/dx = x (not 2x)
    f = S.function([x], [y, S.grad(y, x)])
    v, g = f(np.array([1.0, 2.0, 3.0], np.float32))
    assert v.item() == 14.0 and g.tolist() == [1.0, 2.0, 3.0]


def test_eager_code_is_unaffected_once_symbols_are_gone():
    from ember.ops._core import _state

    def build():
        x = S.var("x", (2,))
        return S.function([x], x * 2)

    f = build()
    import gc

    gc.collect()
    assert _state.tracer is None  # no symbol alive: bind is back to its eager fast path
    t = ember.ones(2, requires_grad=True)
    (t * 3).sum().backward()
    assert t.grad.tolist() == [3.0, 3.0]
    assert f(np.ones(2, np.float32)).tolist() == [2.0, 2.0]


# -- the Theano-style example ----------------------------------------------------------------


def _example():
    spec = importlib.util.spec_from_file_location(
        "symbolic_logreg", ROOT / "examples" / "symbolic_logreg.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_logreg_example_matches_eager_ember_and_torch():
    ex = _example()
    x, y = ex.make_data(120)
    steps = 25
    ws, bs = ex.train_symbolic(x, y, steps)
    we, be = ex.train_eager(x, y, steps)
    np.testing.assert_allclose(ws, we, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bs, be, rtol=1e-5, atol=1e-6)
    wt = torch.zeros(ex.N_FEATURES, requires_grad=True)
    bt = torch.zeros((), requires_grad=True)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(steps):
        p = torch.sigmoid(xt @ wt + bt)
        cost = (-yt * torch.log(p) - (1 - yt) * torch.log(1 - p)).mean() + ex.L2 * (wt**2).sum()
        gw, gb = torch.autograd.grad(cost, [wt, bt])
        with torch.no_grad():
            wt -= ex.LR * gw
            bt -= ex.LR * gb
    np.testing.assert_allclose(
        ws, wt.detach().numpy(), rtol=1e-4, atol=1e-6
    )  # float32 reductions differ in order
    np.testing.assert_allclose(bs, bt.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_symbolic_index_arrays_are_graph_inputs():
    x = S.var("x", ("B", 4))
    i = S.var("i", ("K",), ember.int64)
    w = S.shared(RNG.normal(size=(5, 3)).astype(np.float32), "w")
    cost = (x[i] ** 2).sum() + (w[i, 1:] * 3).sum()
    f = S.function([x, i], [x[i], *S.grad(cost, [x, w])])
    for k in ([2, 0, 2], [1]):
        xd = RNG.normal(size=(3, 4)).astype(np.float32)
        xt = torch.tensor(xd, requires_grad=True)
        wt = torch.tensor(w.get_value().numpy(), requires_grad=True)
        it = torch.tensor(k)
        gx, gw = torch.autograd.grad((xt[it] ** 2).sum() + (wt[it, 1:] * 3).sum(), [xt, wt])
        got, ggx, ggw = f(xd, np.array(k))
        _close(got, xd[k])
        _close(ggx, gx.numpy())
        _close(ggw, gw.numpy())


def test_random_ops_draw_a_new_seed_per_call_like_eager():
    x = S.var("x", ("B", 6))
    y = F.dropout(x, 0.5, training=True)
    f = S.function([x], [y, S.grad((y * y).sum(), x)])
    ones = np.ones((3, 6), np.float32)
    ember.manual_seed(3)
    a, ga = f(ones)
    b, _gb = f(ones)
    assert a.tolist() != b.tolist()  # a fresh mask per call
    ember.manual_seed(3)
    e1 = F.dropout(ember.ones(3, 6), 0.5, training=True)
    e2 = F.dropout(ember.ones(3, 6), 0.5, training=True)
    assert a.tolist() == e1.tolist() and b.tolist() == e2.tolist()
    _close(ga, 2 * a * a)  # the backward uses the forward's mask


def test_training_a_module_symbolically_matches_eager_sgd():
    def make():
        ember.manual_seed(7)
        return ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.Tanh(), ember.nn.Linear(8, 3))

    xd = RNG.normal(size=(10, 4)).astype(np.float32)
    yd = RNG.integers(0, 3, 10)
    net = make()
    x = S.var("x", ("B", 4))
    y = S.var("y", ("B",), ember.int64)
    loss = F.cross_entropy(net(x), y)
    params = list(net.parameters())
    grads = S.grad(loss, params)
    step = S.function([x, y], loss, updates=[(p, p - 0.1 * g) for p, g in zip(params, grads)])
    ref = make()
    opt = ember.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(4):
        got = step(xd, yd)
        opt.zero_grad()
        want = F.cross_entropy(ref(ember.tensor(xd)), ember.tensor(yd))
        want.backward()
        opt.step()
        _close(got, want.detach())
    for p, q in zip(net.parameters(), ref.parameters()):
        _close(p, q)


_CONV = ember.nn.Conv2d(2, 3, 3, padding=1)
_BN = ember.nn.BatchNorm2d(3).eval()
_LSTM = ember.nn.LSTM(4, 5, batch_first=True)
_MHA = ember.nn.MultiheadAttention(4, 2, batch_first=True)
LAYERS = {
    "conv_pool": (("B", 2, 6, 6), lambda x: F.max_pool2d(_CONV(x), 2)),
    "conv_bn_eval": (("B", 2, 6, 6), lambda x: _BN(_CONV(x))),
    "adaptive_pool": (("B", 2, 6, 6), lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1)),
    "lstm_batch_and_time": (("B", "T", 4), lambda x: _LSTM(x)[0]),
    "attention_module": (("B", "T", 4), lambda x: _MHA(x, x, x)[0]),
    "causal_sdpa": (
        ("B", "T", 4),
        lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
    ),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_on_symbolic_batch_and_time(name):
    shape, fn = LAYERS[name]
    x = S.var("x", shape)
    f = S.function([x], fn(x))
    for b, t in ((2, 3), (3, 5)):
        xd = RNG.normal(size=[b if d == "B" else t if d == "T" else d for d in shape])
        xd = xd.astype(np.float32)
        with ember.no_grad():
            want = fn(ember.tensor(xd))
        _close(f(xd), want, rtol=1e-4, atol=1e-5)  # float32 reductions in another order
