"""Autograd against PyTorch: backward/grad options, hooks, grad modes, custom Functions,
checkpointing, anomaly mode, in-place version checks and higher-order gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_close_torch
from hypothesis import given
from hypothesis import strategies as st

import ember

RNG = np.random.default_rng(0)


def pair(*shape, lo=-2.0, hi=2.0, dtype=np.float32):
    a = RNG.uniform(lo, hi, shape).astype(dtype)
    return ember.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


# -- backward / grad options ---------------------------------------------------------------
def test_backward_gradient_for_non_scalar_and_accumulation():
    x, tx = pair(2, 3)
    g = RNG.standard_normal((2, 3)).astype(np.float32)
    (x * x).backward(gradient=ember.tensor(g))
    (tx * tx).backward(gradient=torch.tensor(g))
    assert_close_torch(x.grad, tx.grad)
    (x * 3).sum().backward()  # accumulates
    (tx * 3).sum().backward()
    assert_close_torch(x.grad, tx.grad)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * x).backward()


def test_retain_graph():
    x, tx = pair(3)
    y, ty = (x.exp() * x).sum(), (tx.exp() * tx).sum()
    y.backward(retain_graph=True)
    y.backward()
    ty.backward(retain_graph=True)
    ty.backward()
    assert_close_torch(x.grad, tx.grad)
    z = (x.exp() * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_create_graph_and_higher_order():
    x, tx = pair(4)
    y, ty = (x**3).sum(), (tx**3).sum()
    y.backward(create_graph=True)
    ty.backward(create_graph=True)
    assert x.grad.requires_grad
    gx, tgx = x.grad, tx.grad
    x.grad, tx.grad = None, None
    gx.sum().backward()
    tgx.sum().backward()
    assert_close_torch(x.grad, tx.grad)  # 6x


@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: (m.tanh(x) * m.sin(x)).sum(),
        lambda m, x: (m.sigmoid(x) ** 2).sum(),
        lambda m, x: m.logsumexp(x, 0),
        lambda m, x: (m.softmax(x, 0) * x).sum(),
        lambda m, x: (m.exp(x) / (1 + x * x)).sum(),
        lambda m, x: m.sqrt(x * x + 1).sum(),
        lambda m, x: (m.log(x * x + 1) * m.cos(x)).sum(),
    ],
)
def test_second_and_third_order_match_torch(fn):
    x, tx = pair(5, dtype=np.float64)
    (g,) = ember.autograd.grad(fn(ember, x), x, create_graph=True)
    (tg,) = torch.autograd.grad(fn(torch, tx), tx, create_graph=True)
    assert_close_torch(g, tg, rtol=1e-10)
    v = RNG.standard_normal(5)
    (h,) = ember.autograd.grad(g, x, ember.tensor(v), create_graph=True)
    (th,) = torch.autograd.grad(tg, tx, torch.tensor(v), create_graph=True)
    assert_close_torch(h, th, rtol=1e-9)
    (h3,) = ember.autograd.grad(h.sum(), x)
    (th3,) = torch.autograd.grad(th.sum(), tx)
    assert_close_torch(h3, th3, rtol=1e-8)


def test_second_order_matmul_and_reductions():
    w, tw = pair(3, 3, dtype=np.float64)
    x, tx = pair(2, 3, dtype=np.float64)

    def f(m, w, x):
        h = m.tanh(x @ w)
        return (h * h).mean() + m.amax(h, 1).sum() + m.prod(x, 1).sum()

    gw, gx = ember.autograd.grad(f(ember, w, x), [w, x], create_graph=True)
    tgw, tgx = torch.autograd.grad(f(torch, tw, tx), [tw, tx], create_graph=True)
    hw = ember.autograd.grad((gw**2).sum() + (gx**2).sum(), [w, x])
    thw = torch.autograd.grad((tgw**2).sum() + (tgx**2).sum(), [tw, tx])
    for a, b in zip(hw, thw):
        assert_close_torch(a, b, rtol=1e-9)


def test_autograd_grad_options():
    x, tx = pair(3)
    y, _ = pair(3)
    out = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        ember.autograd.grad(out, [x, y], retain_graph=True)
    gx, gy = ember.autograd.grad(out, [x, y], allow_unused=True)
    assert gy is None and x.grad is None
    assert_close_torch(gx, torch.full((3,), 2.0))
    gm = ember.autograd.grad((x * 2).sum(), [x, y], allow_unused=True, materialize_grads=True)
    assert gm[1].tolist() == [0.0, 0.0, 0.0]
    v = RNG.standard_normal(3).astype(np.float32)
    (g,) = ember.autograd.grad(x.exp(), x, grad_outputs=ember.tensor(v))
    (tg,) = torch.autograd.grad(tx.exp(), tx, grad_outputs=torch.tensor(v))
    assert_close_torch(g, tg)
    assert not g.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.autograd.grad((x * 2).sum(), ember.ones(3))


def test_backward_inputs_argument():
    x, tx = pair(3)
    y, ty = pair(3)
    (x * y).sum().backward(inputs=[x])
    (tx * ty).sum().backward(inputs=[tx])
    assert_close_torch(x.grad, tx.grad)
    assert y.grad is None and ty.grad is None


def test_shared_subexpression_and_grad_independence():
    x, tx = pair(3)
    a, ta = x * 2, tx * 2
    (a * a + a).sum().backward()
    (ta * ta + ta).sum().backward()
    assert_close_torch(x.grad, tx.grad)
    p, q = pair(3)[0], pair(3)[0]
    (p + q).sum().backward()
    p.grad.add_(1)  # .grad buffers must not alias each other
    assert q.grad.tolist() == [1.0, 1.0, 1.0]


# -- grad modes ----------------------------------------------------------------------------
def test_grad_modes_context_and_decorator():
    x, _ = pair(2)
    with ember.no_grad():
        assert not (x * 2).requires_grad
        with ember.enable_grad():
            assert (x * 2).requires_grad
    with ember.inference_mode():
        assert not (x * 2).requires_grad
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()

    @ember.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad

    @ember.enable_grad()
    def g(t):
        return t * 2

    with ember.no_grad():
        assert g(x).requires_grad

    @ember.inference_mode()
    def h(t):
        return t * 2

    assert not h(x).requires_grad

    @ember.no_grad
    def bare(t):
        return t * 2

    assert not bare(x).requires_grad and bare.__name__ == "bare"

    @ember.set_grad_enabled(False)
    def k(t):
        return t * 2

    assert ember.is_grad_enabled()  # decorating must not switch the global mode
    assert not k(x).requires_grad and (x * 2).requires_grad
    prev = ember.set_grad_enabled(False)
    assert not ember.is_grad_enabled()
    ember.set_grad_enabled(True)
    assert ember.is_grad_enabled()
    del prev


def test_requires_grad_rules():
    t = ember.ones(2)
    assert not t.requires_grad and t.is_leaf
    assert t.requires_grad_() is t and t.requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)
    y = t * 2
    assert not y.is_leaf and y.grad_fn is not None
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    ints = (t * 2).long()
    assert not ints.requires_grad


# -- hooks / retain_grad ---------------------------------------------------------------------
def test_retain_grad_and_hooks():
    x, tx = pair(3)
    y, ty = x * 2, tx * 2
    y.retain_grad()
    ty.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.clone()) or g * 10)
    ty.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: g + 1)
    tx.register_hook(lambda g: g + 1)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close_torch(y.grad, ty.grad)
    assert_close_torch(x.grad, tx.grad)
    assert len(seen) == 1
    z, _ = pair(2)
    h = z.register_hook(lambda g: g * 0)
    h.remove()
    (z * 1).sum().backward()
    assert z.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError):
        ember.ones(2).register_hook(lambda g: g)


# -- custom Function -------------------------------------------------------------------------
class Cube(ember.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * x * x * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return g * 3 * x * x * ctx.k, None


class SplitSum(ember.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b, a * b

    @staticmethod
    def backward(ctx, gs, gp):
        a, b = ctx.saved_tensors
        return gs + gp * b, gs + gp * a


def test_custom_function_single_and_multi_output():
    x, tx = pair(3)
    Cube.apply(x, 2.0).sum().backward()
    (tx**3 * 2).sum().backward()
    assert_close_torch(x.grad, tx.grad)
    a, ta = pair(3)
    b, tb = pair(3)
    s, p = SplitSum.apply(a, b)
    (s * 2 + p).sum().backward()
    (2 * (ta + tb) + ta * tb).sum().backward()
    assert_close_torch(a.grad, ta.grad)
    assert_close_torch(b.grad, tb.grad)
    a.grad = None
    s, p = SplitSum.apply(a, b)
    p.sum().backward()  # the unused output's gradient is materialised as zeros
    assert_close_torch(a.grad, tb.detach())
    assert "SplitSum" in repr(s.grad_fn)
    with ember.no_grad():
        assert not Cube.apply(x, 1.0).requires_grad


def test_custom_function_second_order():
    x, tx = pair(3, dtype=np.float64)
    y = Cube.apply(x, 1.0).sum()
    (g,) = ember.autograd.grad(y, x, create_graph=True)
    (gg,) = ember.autograd.grad(g.sum(), x)
    assert_close_torch(gg, 6 * tx.detach())


# -- checkpoint -------------------------------------------------------------------------------
def test_checkpoint_same_grads_and_rng():
    w, _ = pair(4, 4)
    x, _ = pair(2, 4)

    def block(x, w):
        h = (x @ w).tanh()
        keep = (ember.rand(*h.shape) > 0.3).float()  # randomness must replay identically
        return h * keep

    ember.manual_seed(3)
    ref = block(x, w).sum()
    ref.backward()
    gw, gx = w.grad.clone(), x.grad.clone()
    w.grad = x.grad = None
    ember.manual_seed(3)
    out = ember.autograd.checkpoint(block, x, w)
    assert_close_torch(out.sum(), ref.detach())
    out.sum().backward()
    assert_close_torch(w.grad, gw)
    assert_close_torch(x.grad, gx)


# -- anomaly mode ----------------------------------------------------------------------------
def test_detect_anomaly_names_the_op():
    x = ember.tensor([0.0, 1.0], requires_grad=True)
    with ember.autograd.detect_anomaly():
        y = ember.sqrt(x).sum()
        with pytest.raises(RuntimeError, match="SqrtBackward"):
            y.backward()
    assert not ember.autograd.is_anomaly_enabled()
    y = ember.sqrt(x).sum()
    y.backward()  # without anomaly mode: inf, like torch
    assert np.isinf(x.grad.numpy()[0])


# -- in-place and version counters -----------------------------------------------------------
def test_inplace_on_saved_tensor_raises():
    x, _ = pair(3)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    a, _ = pair(3)
    b = a * 2
    c = b * b  # saves b
    b.mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        c.sum().backward()


def test_inplace_not_needed_works_and_matches_torch():
    w, tw = pair(3, 3)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    h, th = ember.tensor(x) @ w, torch.tensor(x) @ tw
    h.relu_()
    th.relu_()
    (h * 3).sum().backward()
    (th * 3).sum().backward()
    assert_close_torch(w.grad, tw.grad)
    assert_close_torch(h, th)


def test_inplace_on_non_leaf_rebases_history():
    x, tx = pair(3)
    y, ty = x * 2, tx * 2
    y.mul_(3)
    ty.mul_(3)
    y.add_(x)
    ty.add_(tx)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    assert_close_torch(x.grad, tx.grad)
    u, tu = pair(3)
    v, tv = u * 1, tu * 1
    v += u
    tv += tu
    v.exp_()
    tv.exp_()
    v.sum().backward()
    tv.sum().backward()
    assert_close_torch(u.grad, tu.grad)


def test_inplace_on_leaf_requiring_grad_raises():
    x, _ = pair(3)
    with pytest.raises(RuntimeError, match="leaf"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0
    with ember.no_grad():
        x.add_(1)  # allowed (an optimizer step)
    assert x.is_leaf and x.requires_grad


def test_version_counter_shared_with_views():
    x = ember.zeros(4)
    v = x[1:3]
    v0 = x._version[0]
    v.add_(1)
    assert x._version[0] == v0 + 1
    assert x.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_backward_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.ones(2).sum().backward()
    x, _ = pair(2)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).backward(ember.ones(3))


def test_multi_output_primitive_with_unused_output():
    from ember.ops._ad import defvjp
    from ember.ops._core import SAVE_NONE, AbstractValue, Primitive, bind

    p = Primitive(
        "_test_two_out",
        "opaque",
        impl=lambda x: (x * 2, x * 3),
        n_out=2,
        save=SAVE_NONE,
        abstract=lambda x: (AbstractValue(x.shape, x.dtype),) * 2,
        register=False,
    )
    defvjp(p, lambda g, out, x: (g[0] * 2 + g[1] * 3,))
    x = ember.ones(3, requires_grad=True)
    _a, b = bind(p, (x,))
    b.sum().backward()  # a's cotangent is materialised as zeros
    assert x.grad.tolist() == [3.0, 3.0, 3.0]


def _views_program(m):
    out = []
    a = m.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    b = a * 1
    b.reshape(2, 2)[0].mul_(a[2:])  # a view of a view, with a differentiable argument
    (b * b).sum().backward()
    out.append(a.grad)
    y = m.tensor([5.0, 6.0], requires_grad=True)
    buf = m.zeros(4)  # a buffer that gains history through a view
    buf[1:3].copy_(y * 2)
    (buf * buf).sum().backward()
    out.append(y.grad)
    x = m.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    h = x * 2 - 1
    h.t()[0].relu_()
    (h * h).sum().backward()
    out.append(x.grad)
    x2 = m.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h2 = x2 * 2
    row = h2[0]
    row += 1
    h2[:, 1].exp_()
    (h2 * h2).sum().backward()
    out.append(x2.grad)
    return out


def test_inplace_on_views_of_non_leaf_matches_torch():
    for e, t in zip(_views_program(ember), _views_program(torch)):
        assert_close_torch(e, t)
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        x[0:1].mul_(2)


def test_leaf_hook_sees_total_gradient_once():
    for lib in (ember, torch):
        x = lib.ones(2, requires_grad=True)
        calls = []
        x.register_hook(lambda g, calls=calls: calls.append(g.clone()) or g * 10)
        (g,) = lib.autograd.grad((x * 2).sum() + (x * 3).sum(), x)
        assert g.tolist() == [50.0, 50.0] and len(calls) == 1
        ((x * 2).sum() + (x * 3).sum()).backward()
        assert x.grad.tolist() == [50.0, 50.0] and len(calls) == 2
        assert calls[1].tolist() == [5.0, 5.0]


def test_checkpoint_closure_parameters_get_grads():
    w, tw = pair(4, 4)
    x = RNG.standard_normal((2, 4)).astype(np.float32)

    def block(m, w):
        return lambda x, scale=1.0: (x @ w).tanh() * scale

    out = ember.autograd.checkpoint(block(ember, w), ember.tensor(x), scale=2.0)
    assert out.requires_grad  # no input requires grad, but the closure's weight does
    out.sum().backward()
    (block(torch, tw)(torch.tensor(x), 2.0)).sum().backward()
    assert_close_torch(w.grad, tw.grad)
    with ember.no_grad():
        assert not ember.autograd.checkpoint(block(ember, w), ember.tensor(x)).requires_grad


def test_custom_function_set_materialize_grads_false():
    seen = []

    class Two(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen.append((g1 is None, g2 is None))
            return (g1 * 2 if g1 is not None else 0) + (g2 * 3 if g2 is not None else 0)

    x = ember.ones(2, requires_grad=True)
    _a, b = Two.apply(x)
    b.sum().backward()
    assert seen == [(True, False)] and x.grad.tolist() == [3.0, 3.0]


INF = float("inf")
SPECIAL = {
    "logsumexp_inf": (lambda m, x: m.logsumexp(x, 0), [INF, 1.0]),
    "log_softmax_-inf": (lambda m, x: m.log_softmax(x, 0), [-INF, 0.0]),
    "softmax_-inf": (lambda m, x: m.softmax(x, 0), [-INF, 0.0]),
    "std_constant": (lambda m, x: m.std(x), [1.0, 1.0]),
    "sqrt_at_0": (lambda m, x: x**0.5, [0.0, 4.0]),
    "scalar_base_pow": (lambda m, x: m.tensor([0.0, 2.0]) ** x, [0.0, 3.0]),
    "prod_two_zeros": (lambda m, x: m.prod(x), [0.0, 0.0, 2.0]),
    "prod_one_zero": (lambda m, x: m.prod(x), [0.0, 3.0, 2.0]),
    "sigmoid_saturated": (lambda m, x: m.sigmoid(x), [-100.0, 100.0]),
    "tanh_saturated": (lambda m, x: m.tanh(x), [-100.0, 100.0]),
    "clamp_at_bounds": (lambda m, x: m.clamp(x, 0.0, 1.0), [0.0, 1.0]),
    "max_dim_ties": (lambda m, x: m.max(x.reshape(1, 3), 1)[0], [2.0, 2.0, 1.0]),
    "min_all_ties": (lambda m, x: m.min(x), [1.0, 1.0, 2.0]),
    "norm_p1_at_0": (lambda m, x: m.norm(x, p=1), [0.0, -2.0]),
    "norm_inf_ties": (lambda m, x: m.norm(x, p=INF), [3.0, -3.0]),
    "log_at_0": (lambda m, x: m.log(x), [0.0, 1.0]),
    "remainder_negative": (lambda m, x: m.remainder(x, -3.0), [5.0, -5.0]),
    "fmod_negative": (lambda m, x: m.fmod(x, -3.0), [5.0, -5.0]),
    "round_half_even": (lambda m, x: m.round(x) * x, [0.5, 1.5]),
    "rsqrt_at_0": (lambda m, x: m.rsqrt(x), [0.0, 4.0]),
    "sign_at_0": (lambda m, x: m.sign(x) * x, [0.0, -4.0]),
    "abs_at_0": (lambda m, x: m.abs(x), [0.0, -4.0]),
    "relu_at_0": (lambda m, x: m.relu(x), [0.0, -4.0]),
    "maximum_ties": (lambda m, x: m.maximum(x, m.tensor([0.0, 1.0])), [0.0, -4.0]),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_gradients_at_special_points_match_torch(name):
    f, vals = SPECIAL[name]
    with np.errstate(all="ignore"):
        x, tx = ember.tensor(vals, requires_grad=True), torch.tensor(vals, requires_grad=True)
        y, ty = f(ember, x), f(torch, tx)
        y.sum().backward()
        ty.sum().backward()
    assert_close_torch(y, ty)
    assert_close_torch(x.grad, tx.grad)


def test_custom_function_saved_tensor_versions_and_non_differentiable():
    class Sq(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    a, _ = pair(3)
    b = a * 1
    y = Sq.apply(b)
    b.add_(1)
    with pytest.raises(RuntimeError, match="SqBackward.*inplace|inplace.*SqBackward"):
        y.sum().backward()

    class ArgMaxAndValue(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = (x * 0).detach()
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, _g_idx):
            return g * 2

    x, _ = pair(3)
    v, i = ArgMaxAndValue.apply(x)
    assert v.requires_grad and not i.requires_grad


@st.composite
def _basic_index(draw):
    idx = []
    for n in (4, 5):
        kind = draw(st.sampled_from(["slice", "int", "all"]))
        if kind == "int":
            idx.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            a = draw(st.integers(0, n - 1))
            idx.append(slice(a, draw(st.integers(a + 1, n)), draw(st.integers(1, 2))))
        else:
            idx.append(slice(None))
    return tuple(idx)


@given(
    idx=_basic_index(),
    op=st.sampled_from(["mul_", "add_", "relu_", "exp_", "setitem", "transpose_mul_"]),
    seed=st.integers(0, 2**16),
)
def test_inplace_on_random_views_matches_torch(idx, op, seed):
    rng = np.random.default_rng(seed)
    xv = rng.standard_normal((4, 5)).astype(np.float64)
    yv = rng.standard_normal((4, 5)).astype(np.float64)
    grads = []
    for m in (ember, torch):
        x, y = m.tensor(xv, requires_grad=True), m.tensor(yv, requires_grad=True)
        h = x * 2 + 1
        v = h[idx]
        if op == "mul_":
            v.mul_(3)
        elif op == "add_":
            v.add_(y[idx] * 2)
        elif op == "relu_":
            v.relu_()
        elif op == "exp_":
            v.exp_()
        elif op == "setitem":
            h[idx] = y[idx] * 5
        else:
            h.t()[:, 1:3].mul_(y.t()[:, 1:3])
        (h * h).sum().backward()
        grads.append((x.grad, y.grad))
    (ex, ey), (tx, ty) = grads
    assert_close_torch(ex, tx, rtol=1e-10)
    if ty is None:
        assert ey is None or not np.any(ey.numpy())
    else:
        assert_close_torch(ey, ty, rtol=1e-10)


@pytest.mark.parametrize("layer", ["LSTM", "GRU", "RNN"])
def test_double_backward_through_fused_recurrence_says_what_to_use(layer):
    m = getattr(ember.nn, layer)(2, 3).double()
    x = ember.randn(4, 1, 2, dtype=ember.float64, requires_grad=True)
    (g,) = ember.autograd.grad(m(x)[0].sum(), x, create_graph=True)
    with pytest.raises(
        RuntimeError,
        match=f"double backward through the fused {layer}.*create_graph=False.*nn.{layer}Cell",
    ):
        g.sum().backward()
