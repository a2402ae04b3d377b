"""ember.symbol as Theano and MXNet-Symbol users write it (more programs): the LeNet of the
Theano tutorial trained by SGD updates, Theano-style random streams (dropout masks from a
seeded generator inside the graph), softmax regression with symbolic batch AND feature
sizes, MXNet-style composition with the graph's arguments and inferred shapes and a JSON
round trip run in a fresh process, gradients of intermediates and Hessian-vector products,
and the errors of bad input and damaged graph files. Each program is checked against the
same model in PyTorch (or eager Ember).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember import symbol as S
from ember.compiler.ir import Dim
from ember.compiler.serialize import GraphFormatError
from ember.symbol import SymbolicError

RNG = np.random.default_rng(43)
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-10, 1e-12)}


def _close(got, want, dtype=np.float32):
    got = got.detach().numpy() if isinstance(got, ember.Tensor) else np.asarray(got)
    if isinstance(want, (torch.Tensor, ember.Tensor)):
        want = want.detach().numpy()
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _nll(p_y, y):
    """The tutorials' negative log likelihood: ``-mean(log(p_y)[arange(n), y])``."""
    return -ember.log(p_y)[ember.arange(y.shape[0]), y].mean()


# -- 1. LeNet (conv + max pool + tanh, hidden tanh, softmax) from the Theano tutorial ---------


def _lenet_params(dtype):
    def u(*shape, fan):
        b = np.sqrt(6.0 / fan)
        return RNG.uniform(-b, b, size=shape).astype(dtype)

    return {
        "W0": u(2, 1, 5, 5, fan=25 + 2 * 25 // 4),
        "b0": np.zeros(2, dtype),
        "W1": u(3, 2, 3, 3, fan=18 + 3 * 9 // 4),
        "b1": np.zeros(3, dtype),
        "W2": u(3, 5, fan=8),
        "b2": np.zeros(5, dtype),
        "W3": u(5, 3, fan=8),
        "b3": np.zeros(3, dtype),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lenet_conv_pool_trained_by_sgd_updates_matches_torch(dtype):
    lr = 0.1
    p0 = _lenet_params(dtype)
    params = {k: S.shared(v, k) for k, v in p0.items()}
    edt = ember.float32 if dtype == np.float32 else ember.float64
    x = S.var("x", ("B", 144), edt)  # the tutorial's flattened images
    y = S.var("y", ("B",), ember.int64)

    def conv_pool(inp, W, b):  # LeNetConvPoolLayer: conv2d, pool_2d (ignore_border), tanh
        pooled = F.max_pool2d(F.conv2d(inp, W), 2)
        return ember.tanh(pooled + b.reshape(1, -1, 1, 1))  # b.dimshuffle('x', 0, 'x', 'x')

    P = params
    layer0 = conv_pool(x.reshape(x.shape[0], 1, 12, 12), P["W0"], P["b0"])  # (B, 2, 4, 4)
    layer1 = conv_pool(layer0, P["W1"], P["b1"])  # (B, 3, 1, 1)
    layer2 = ember.tanh(layer1.flatten(1) @ P["W2"] + P["b2"])  # HiddenLayer
    p_y = F.softmax(layer2 @ P["W3"] + P["b3"], -1)  # LogisticRegression
    cost = _nll(p_y, y)
    errors = (p_y.argmax(1) != y).to(edt).mean()
    order = ["W3", "b3", "W2", "b2", "W1", "b1", "W0", "b0"]  # the tutorial's params list
    grads = S.grad(cost, [P[k] for k in order])
    train = S.function([x, y], cost, updates=[(P[k], P[k] - lr * g) for k, g in zip(order, grads)])
    test = S.function([x, y], errors)
    assert train.graph.inputs[0].shape == (Dim("B"), 144)

    T = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}

    def torch_cost(xb, yb):
        def cp(inp, W, b):
            return torch.tanh(
                torch.nn.functional.max_pool2d(torch.conv2d(inp, W), 2) + b[:, None, None]
            )

        h = cp(cp(xb.reshape(-1, 1, 12, 12), T["W0"], T["b0"]), T["W1"], T["b1"])
        h = torch.tanh(h.flatten(1) @ T["W2"] + T["b2"])
        p = torch.softmax(h @ T["W3"] + T["b3"], -1)
        return -torch.log(p)[torch.arange(len(yb)), yb].mean(), p

    for bs in (4, 3, 4, 2):  # the batch size is symbolic: one graph for all of them
        xd = RNG.normal(size=(bs, 144)).astype(dtype)
        yd = RNG.integers(0, 3, bs).astype(np.int64)
        got = train(xd, yd)
        loss, _ = torch_cost(torch.tensor(xd), torch.tensor(yd))
        gs = torch.autograd.grad(loss, [T[k] for k in order])
        with torch.no_grad():
            for k, g in zip(order, gs):
                T[k] -= lr * g
        _close(got, loss, dtype)
    for k in order:
        _close(params[k].get_value(), T[k], dtype)
    xd = RNG.normal(size=(5, 144)).astype(dtype)
    yd = RNG.integers(0, 3, 5).astype(np.int64)
    _, p = torch_cost(torch.tensor(xd), torch.tensor(yd))
    want = (p.argmax(1).numpy() != yd).mean().astype(dtype)
    _close(test(xd, yd), np.asarray(want), dtype)


# -- 2. Theano's RandomStreams: dropout masks from a seeded generator in the graph ----------


def _dropout_mlp(srng, keep):
    x = S.var("x", ("B", 4))
    y = S.var("y", ("B",), ember.int64)
    W1 = S.shared(RNG.normal(size=(4, 6)).astype(np.float32) * 0.5, "W1")
    W2 = S.shared(RNG.normal(size=(6, 3)).astype(np.float32) * 0.5, "W2")
    # srng.binomial(n=1, p=keep, size=h.shape): a Bernoulli mask of the symbolic shape
    m1 = ember.bernoulli(ember.full_like(x, keep), generator=srng)
    h = ember.tanh((x * m1 / keep) @ W1)
    # srng.uniform(size=h.shape) < keep: the other way the tutorials write it
    m2 = (ember.rand(h.shape, generator=srng) < keep).to(ember.float32)
    cost = F.cross_entropy((h * m2 / keep) @ W2, y)
    gW1, gW2 = S.grad(cost, [W1, W2])
    step = S.function([x, y], [cost, m1, m2], updates=[(W1, W1 - 0.2 * gW1), (W2, W2 - 0.2 * gW2)])
    return step, W1, W2


def test_random_streams_dropout_is_reproducible_and_trains_like_torch_with_its_masks():
    keep = 0.6
    srng = ember.Generator().manual_seed(234)  # RandomStreams(seed=234)
    step, W1, W2 = _dropout_mlp(srng, keep)
    w10, w20 = W1.get_value().numpy(), W2.get_value().numpy()
    batches = [
        (RNG.normal(size=(n, 4)).astype(np.float32), RNG.integers(0, 3, n).astype(np.int64))
        for n in (5, 3, 5)
    ]
    srng.manual_seed(235)
    other = step(*batches[0])[1].numpy()  # (the loop below resets the weights)
    default_state = ember.random.get_rng_state()
    runs = []
    for _rerun in range(2):
        srng.manual_seed(234)
        W1.set_value(w10)
        W2.set_value(w20)
        runs.append([[t.numpy() for t in step(xd, yd)] for xd, yd in batches])
    # the same seed gives the same masks and costs, call after call
    for a, b in zip(*runs):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    masks = [m for _c, m, _m2 in runs[0]]
    assert masks[0].shape == (5, 4) and masks[1].shape == (3, 4)
    assert set(np.unique(np.concatenate([m.ravel() for m in masks]))) == {0.0, 1.0}
    assert not np.array_equal(masks[0], masks[2])  # a fresh mask per call
    assert not np.array_equal(other, masks[0])  # a different seed, different masks
    # the stream is the generator's own: the default generator did not move
    assert ember.random.get_rng_state() == default_state
    # the same draws as eager Ember with the same generator state
    srng.manual_seed(234)
    e1 = ember.bernoulli(ember.full((5, 4), keep), generator=srng)
    e2 = ember.rand(5, 6, generator=srng) < keep
    np.testing.assert_array_equal(e1.numpy(), runs[0][0][1])
    np.testing.assert_array_equal(e2.numpy().astype(np.float32), runs[0][0][2])
    # training with those masks equals PyTorch's SGD with the same masks
    t1 = torch.tensor(w10, requires_grad=True)
    t2 = torch.tensor(w20, requires_grad=True)
    for (xd, yd), (c, m1, m2) in zip(batches, runs[1]):
        h = torch.tanh((torch.tensor(xd) * torch.tensor(m1) / keep) @ t1)
        loss = torch.nn.functional.cross_entropy(
            (h * torch.tensor(m2) / keep) @ t2, torch.tensor(yd)
        )
        g1, g2 = torch.autograd.grad(loss, [t1, t2])
        with torch.no_grad():
            t1 -= 0.2 * g1
            t2 -= 0.2 * g2
        _close(c, loss.detach().numpy())
    _close(W1.get_value().numpy(), t1)
    _close(W2.get_value().numpy(), t2)


def test_gaussian_corruption_from_a_stream_matches_eager_draws():
    srng = ember.Generator().manual_seed(7)
    x = S.var("x", (None, None), ember.float64)
    noisy = x + 0.1 * ember.randn(x.shape, generator=srng, dtype=ember.float64)
    f = S.function([x], noisy)
    xd = RNG.normal(size=(3, 5))
    srng.manual_seed(7)
    a, b = f(xd).numpy(), f(xd).numpy()
    srng.manual_seed(7)
    ea = xd + 0.1 * ember.randn(3, 5, generator=srng, dtype=ember.float64).numpy()
    eb = xd + 0.1 * ember.randn(3, 5, generator=srng, dtype=ember.float64).numpy()
    _close(a, ea, np.float64)
    _close(b, eb, np.float64)
    assert f(RNG.normal(size=(2, 7))).shape == (2, 7)


# -- 3. softmax regression with a symbolic batch size and a symbolic feature count -----------


def test_softmax_regression_with_symbolic_batch_and_feature_sizes_matches_torch():
    lam = 0.01
    x = S.var("x", ("n", "d"), ember.float64)
    W = S.var("W", ("d", "k"), ember.float64)
    b = S.var("b", ("k",), ember.float64)
    y = S.var("y", ("n",), ember.int64)
    # standardize each feature over the batch (std's divisor n - 1 is symbolic)
    xs = (x - x.mean(0)) / x.std(0)
    p_y = F.softmax(xs @ W + b, -1)
    cost = _nll(p_y, y) + lam * (W * W).sum()
    gW, gb = S.grad(cost, [W, b])
    f = S.function([x, W, b, y], [cost, gW, gb, p_y.argmax(1)])
    prog = f.program
    for n, d, k in ((5, 3, 2), (8, 6, 4), (3, 1, 3), (6, 2, 5)):
        xd, Wd, bd = RNG.normal(size=(n, d)), RNG.normal(size=(d, k)), RNG.normal(size=k)
        yd = RNG.integers(0, k, n).astype(np.int64)
        c, gw, gbb, pred = f(xd, Wd, bd, yd)
        xt = torch.tensor(xd)
        Wt, bt = torch.tensor(Wd, requires_grad=True), torch.tensor(bd, requires_grad=True)
        xst = (xt - xt.mean(0)) / xt.std(0)
        pt = torch.softmax(xst @ Wt + bt, -1)
        ct = -torch.log(pt)[torch.arange(n), torch.tensor(yd)].mean() + lam * (Wt * Wt).sum()
        gwt, gbt = torch.autograd.grad(ct, [Wt, bt])
        _close(c, ct, np.float64)
        _close(gw, gwt, np.float64)
        _close(gbb, gbt, np.float64)
        np.testing.assert_array_equal(pred.numpy(), pt.argmax(1).numpy())
    assert f.program is prog  # evaluated at every size without rebuilding


def test_none_sizes_of_two_inputs_are_different_symbols_and_a_clear_error():
    x = S.var("x", (None, None))
    W = S.var("W", (None, None))
    with pytest.raises(Exception, match=r"cannot be multiplied \(x\.0xx\.1 and W\.0xW\.1\)"):
        x @ W
    # (None, None) alone: per-row softmax and a feature mean of symbolic width
    f = S.function([x], F.softmax(x - x.mean(1, keepdim=True), -1))
    for shape in ((2, 3), (4, 7)):
        xd = RNG.normal(size=shape).astype(np.float32)
        xt = torch.tensor(xd)
        _close(f(xd), torch.softmax(xt - xt.mean(1, keepdim=True), -1))


# -- 4. MXNet Symbol style: composition, arguments, inferred shapes, JSON in a fresh process --


def _fully_connected(data, name, num_hidden, num_in):
    """mx.sym.FullyConnected: its weight and bias are arguments of the graph."""
    w = S.var(f"{name}_weight", (num_hidden, num_in))
    b = S.var(f"{name}_bias", (num_hidden,))
    return F.linear(data, w, b), [w, b]


def test_mxnet_style_composition_arguments_shapes_and_json_in_a_fresh_process(tmp_path):
    data = S.var("data", ("batch", 6))
    fc1, a1 = _fully_connected(data, "fc1", 8, 6)
    act1 = F.relu(fc1)  # Activation(act_type="relu")
    fc2, a2 = _fully_connected(act1, "fc2", 3, 8)
    net = F.softmax(fc2, -1)  # SoftmaxOutput's forward
    args = [data, *a1, *a2]
    f = S.function(args, net)
    # list_arguments() / infer_shape(data=(10, 6)) read from the graph
    assert f.input_names == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    g = f.graph
    env = {"batch": 10}
    arg_shapes = [tuple(v.aval(env).shape) for v in g.inputs]
    out_shapes = [tuple(v.aval(env).shape) for v in g.outputs]
    assert arg_shapes == [(10, 6), (8, 6), (8,), (3, 8), (3,)]
    assert out_shapes == [(10, 3)]
    assert "fc1_weight" in g.to_dot()
    # composition: net(data=other) as a givens substitution of another symbol
    raw = S.var("raw", ("batch", 3))
    composed = S.function([raw, *a1, *a2], net, givens={data: ember.cat([raw, raw * raw], 1)})
    vals = [RNG.normal(size=tuple(v.aval(env).shape)).astype(np.float32) for v in g.inputs[1:]]
    rd = RNG.normal(size=(4, 3)).astype(np.float32)
    ts = [torch.tensor(v) for v in vals]

    def torch_net(xt):
        h = torch.relu(torch.nn.functional.linear(xt, ts[0], ts[1]))
        return torch.softmax(torch.nn.functional.linear(h, ts[2], ts[3]), -1)

    rt = torch.tensor(rd)
    _close(composed(rd, *vals), torch_net(torch.cat([rt, rt * rt], 1)))
    # tojson / load_json: the graph file, loaded and run by a process that never built it
    path = tmp_path / "net.json"
    f.save(str(path))
    doc = json.loads(path.read_text())
    assert doc["meta"]["input_names"] == f.input_names
    xd = RNG.normal(size=(7, 6)).astype(np.float32)
    np.savez(tmp_path / "in.npz", xd, *vals)
    script = textwrap.dedent(
        f"""
        import numpy as np
        from ember import symbol as S
        f = S.load({str(path)!r})
        z = np.load({str(tmp_path / "in.npz")!r})
        arrays = [z["arr_%d" % i] for i in range(5)]
        np.save({str(tmp_path / "out.npy")!r}, f(*arrays).numpy())
        np.save({str(tmp_path / "out2.npy")!r}, f(*([arrays[0][:2]] + arrays[1:])).numpy())
        print(" ".join(f.input_names))
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=120, capture_output=True, text=True
    )
    assert r.stdout.split() == f.input_names
    here = f(xd, *vals)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), here.numpy())
    np.testing.assert_array_equal(np.load(tmp_path / "out2.npy"), here.numpy()[:2])
    _close(here, torch_net(torch.tensor(xd)))


# -- 5. gradients of intermediates and of a shared variable used twice; Hessian-vector -------


def test_grad_of_intermediate_and_twice_used_shared_and_hessian_vector_product():
    dt64 = ember.float64
    Wd, bd = RNG.normal(size=(4, 3)), RNG.normal(size=3)
    x = S.var("x", ("B", 4), dt64)
    v = S.var("v", (4, 3), dt64)
    W, b = S.shared(Wd, "W"), S.shared(bd, "b")
    h = ember.tanh(x @ W + b)
    out = h @ W.T  # W used twice (tied)
    cost = ((out - x) ** 2).sum() / x.shape[0] + 0.1 * (h**2).mean()  # h used twice too
    gh = S.grad(cost, h)
    gW = S.grad(cost, W)
    Hv = S.grad((gW * v).sum(), W)  # the Hessian-vector product (Theano's grad of grad)
    gb = S.grad(cost, b)
    Hb = ember.stack([S.grad(gb[i], b) for i in range(3)])  # theano.gradient.hessian
    f = S.function([x, v], [cost, gh, gW, Hv, Hb])
    for n in (5, 2):
        xd, vd = RNG.normal(size=(n, 4)), RNG.normal(size=(4, 3))
        c, ghd, gWd, Hvd, Hbd = f(xd, vd)
        xt = torch.tensor(xd)
        Wt, bt = torch.tensor(Wd, requires_grad=True), torch.tensor(bd, requires_grad=True)

        def tcost(Wt, bt, hook=None, xt=xt, n=n):
            ht = torch.tanh(xt @ Wt + bt)
            if hook is not None:
                hook.append(ht)
            return ((ht @ Wt.T - xt) ** 2).sum() / n + 0.1 * (ht**2).mean()

        hs: list = []
        ct = tcost(Wt, bt, hs)
        ght, gWt = torch.autograd.grad(ct, [hs[0], Wt], create_graph=True)
        (Hvt,) = torch.autograd.grad((gWt * torch.tensor(vd)).sum(), Wt)
        Wd_ = Wt.detach()
        Hbt = torch.autograd.functional.hessian(lambda b_, W_=Wd_: tcost(W_, b_), bt.detach())
        _close(c, ct, np.float64)
        _close(ghd, ght, np.float64)
        _close(gWd, gWt, np.float64)
        _close(Hvd, Hvt, np.float64)
        _close(Hbd, Hbt, np.float64)


# -- 6. bad input: clear errors naming the problem -------------------------------------------


def _small_function():
    x = S.var("x", ("n", 3))
    y = S.var("y", ("n",), ember.int64)
    W = S.shared(np.zeros((3, 2), np.float32), "W")
    cost = F.cross_entropy(x @ W, y)
    return x, y, W, cost, S.function([x, y], cost, updates=[(W, W - 0.1 * S.grad(cost, W))])


def test_call_time_errors_name_the_input_and_the_problem():
    _x, _y, _W, _cost, f = _small_function()
    xd, yd = np.zeros((2, 3), np.float32), np.zeros(2, np.int64)
    with pytest.raises(TypeError, match=r"input 'x' has dtype int64, expected float32"):
        f(np.zeros((2, 3), np.int64), yd)
    with pytest.raises(TypeError, match=r"input 'y' has dtype int64; got a float value"):
        f(xd, [0.5, 1.0])
    with pytest.raises(
        ValueError, match=r"input 'x' has shape \(3,\) \(1-d\), expected f32\[n,3\]"
    ):
        f(np.zeros(3, np.float32), yd)
    with pytest.raises(ValueError, match=r"input 'y' axis 0 has size 3, but 'n' is 2"):
        f(xd, np.zeros(3, np.int64))
    with pytest.raises(TypeError, match=r"missing inputs \['y'\]"):
        f(x=xd)
    with pytest.raises(TypeError, match=r"takes 2 inputs \(x, y\), got 3"):
        f(xd, yd, yd)
    with pytest.raises(TypeError, match=r"input 'x': got a Symbol"):
        f(S.var("z", (2, 3)), yd)
    f(xd, yd)  # and a good call still runs


def test_build_time_errors_for_updates_and_grads():
    x, _y, W, cost, _f = _small_function()
    with pytest.raises(
        SymbolicError, match=r"update of shared variable 'W' \(f32\[3,2\]\) has type f32\[2,3\]"
    ):
        S.function([x], cost, updates=[(W, W.T)])
    with pytest.raises(
        SymbolicError, match=r"update of shared variable 'W' \(f32\[3,2\]\) has type f32\[1,3,2\]"
    ):
        S.function([x], cost, updates=[(W, W.unsqueeze(0))])
    with pytest.raises(
        SymbolicError, match=r"update of shared variable 'W' \(f32\[3,2\]\) has type f64\[3,2\]"
    ):
        S.function([x], cost, updates=[(W, W.to(ember.float64))])
    with pytest.raises(SymbolicError, match=r"'W' is updated twice"):
        S.function([x], cost, updates=[(W, W + 1), (W, W - 1)])
    with pytest.raises(SymbolicError, match=r"scalar \(0-d\), got shape f32\[1\]"):
        S.grad(cost.reshape(1), W)
    with pytest.raises(SymbolicError, match=r"scalar \(0-d\), got shape f32\[n\]"):
        S.grad((x @ W).sum(1), W)
    with pytest.raises(SymbolicError, match=r"cost must be floating point"):
        S.grad(x.shape[0] * 0 + (x > 0).sum(), W)


def _saved(tmp_path):
    *_, f = _small_function()
    path = tmp_path / "f.json"
    f.save(str(path))
    return path, json.loads(path.read_text())


def _damage(tmp_path, change):
    path, doc = _saved(tmp_path)
    change(doc)
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.pop("eqns"), r"the field 'eqns' is missing"),
        (lambda d: d.pop("symbols"), r"the field 'symbols' is missing"),
        (lambda d: d["eqns"][0]["in"].__setitem__(0, 999), r"equation 0, index 999 is not one"),
        (lambda d: d["inputs"].__setitem__(0, -1), r"index -1 is not one"),
        (lambda d: d["outputs"].__setitem__(0, 10**6), r"index 1000000 is not one"),
        (lambda d: d["vars"][0].__setitem__("dtype", "float99"), r"value 0, unknown dtype"),
        (lambda d: d["vars"][0].__setitem__("shape", "n3"), r"value 0, its shape is 'n3'"),
        (lambda d: d["eqns"].__setitem__(0, 5), r"in equation 0,"),
        (lambda d: d["eqns"][0].pop("prim"), r"equation 0, the field 'prim' is missing"),
        (lambda d: d["vars"][0]["shape"].__setitem__(0, {"$t": "nope"}), r"value 0, unknown enc"),
        (lambda d: d["eqns"][0].__setitem__("prim", "no_such_op"), r"'no_such_op'"),
        (lambda d: d["eqns"].reverse(), r"reads value \d+ before any equation computes it"),
        (lambda d: d.__setitem__("symbols", {"n": [5, 0]}), r"size 'n' is read from input 5"),
        (
            lambda d: d["vars"][d["captured"][0]["var"]].__setitem__("shape", [4, 2]),
            r"captured 'W' holds float32\[3, 2\], the graph expects float32\[4, 2\]",
        ),
    ],
)
def test_a_damaged_graph_file_is_a_clear_error(tmp_path, change, match):
    path = _damage(tmp_path, change)
    with pytest.raises(GraphFormatError, match=match) as info:
        S.load(str(path))
    assert str(path) in str(info.value)


def test_a_cut_short_or_foreign_graph_file_is_a_clear_error(tmp_path):
    path, doc = _saved(tmp_path)
    text = json.dumps(doc)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(GraphFormatError, match="not a graph file"):
        S.load(str(path))
    path.write_text(text)
    bin_path = tmp_path / "f.json.bin"
    bin_path.write_bytes(bin_path.read_bytes()[:-4])
    with pytest.raises(GraphFormatError, match="does not belong to this graph file"):
        S.load(str(path))
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(GraphFormatError, match="not an ember graph file"):
        S.load(str(path))
