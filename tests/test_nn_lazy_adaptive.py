"""Lazy modules, AdaptiveLogSoftmaxWithLoss and Adafactor against PyTorch."""

import copy

import numpy as np
import pytest
import torch

import ember
from ember import nn

LAZY = [
    ("LazyLinear", (3,), {}, (4, 5)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 6, 7)),
    ("LazyConv2d", (4, 3), {"stride": 2, "groups": 2}, (2, 6, 7, 7)),
    ("LazyConv3d", (2, 2), {"bias": False}, (1, 3, 4, 4, 4)),
    ("LazyConv2d", (3, 3), {}, (2, 5, 5)),  # unbatched
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 5, 6)),
    ("LazyConvTranspose2d", (4, 3), {"stride": 2, "output_padding": 1}, (1, 2, 3, 3)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 2, 2, 2)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (2, 3, 4, 4)),
    ("LazyBatchNorm3d", (), {"affine": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {"affine": True}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {"affine": True, "track_running_stats": True}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {}, (1, 2, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {"affine": False}, (2, 3, 5)),
]


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name,args,kwargs,shape", LAZY)
def test_lazy_matches_torch(name, args, kwargs, shape):
    tm = getattr(torch.nn, name)(*args, **kwargs).double()
    em = getattr(nn, name)(*args, **kwargs).double()
    # before the dry run: the same state_dict keys, all placeholders
    assert list(em.state_dict()) == list(tm.state_dict())
    for p in em.parameters():
        assert isinstance(p, nn.UninitializedParameter)
        with pytest.raises(ValueError, match="uninitialized"):
            p.shape  # noqa: B018
    assert em.has_uninitialized_params() == tm.has_uninitialized_params()
    x = _x(shape)
    tx = torch.tensor(x, requires_grad=True)
    ex = ember.tensor(x, requires_grad=True)
    tm(tx)  # dry runs
    em(ex)
    assert type(em).__name__ == type(tm).__name__
    if "Norm" not in name:  # (ember's BatchNorm repr leaves out torch's "bias=True")
        assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert tuple(em.state_dict()[k].shape) == tuple(v.shape), k
    for p in em.parameters():
        assert type(p) is nn.Parameter and p.requires_grad
    # with torch's weights: the same outputs and gradients
    em.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    tx.grad = None
    ty, ey = tm(tx), em(ex)
    np.testing.assert_allclose(ey.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = _x(tuple(ty.shape), seed=1)
    ty.backward(torch.tensor(g))
    ey.backward(ember.tensor(g))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for n, p in tm.named_parameters():
        np.testing.assert_allclose(
            em.get_parameter(n).grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-12
        )
    for k, v in tm.state_dict().items():  # running statistics included
        np.testing.assert_allclose(em.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, atol=1e-12)


def test_lazy_linear_init_and_uninitialized_use():
    m = nn.LazyLinear(3)
    assert (
        repr(m)
        == repr(torch.nn.LazyLinear(3))
        == "LazyLinear(in_features=0, out_features=3, bias=True)"
    )
    assert repr(m.weight) == "<UninitializedParameter>"
    with pytest.raises(ValueError, match="uninitialized"):
        nn.functional.linear(ember.randn(2, 4), m.weight)
    with pytest.raises(ValueError, match="uninitialized"):
        m.weight.numel()
    w = m.weight
    m(ember.randn(2, 5))
    assert m.weight is w  # materialized in place
    assert m.in_features == 5 and tuple(w.shape) == (3, 5)
    bound = 1 / np.sqrt(5)  # PyTorch's init: U(-1/sqrt(in), 1/sqrt(in))
    assert np.abs(w.detach().numpy()).max() <= bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    assert not m._forward_pre_hooks  # the initializing hook is gone
    with pytest.raises(ValueError, match="shapes|mat|size|5"):
        m(ember.randn(2, 4))


def test_lazy_conv_groups_checked():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.LazyConv2d(4, 3, groups=2)(ember.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="Expected 3D \\(unbatched\\) or 4D"):
        nn.LazyConv2d(4, 3)(ember.randn(3, 5))


def test_lazy_load_state_dict_initializes():
    t = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.BatchNorm1d(3))
    e = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())
    e.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    assert tuple(e[0].weight.shape) == (3, 5)
    assert tuple(e[1].running_mean.shape) == (3,)
    x = _x((4, 5))
    t.eval()
    e.eval()
    np.testing.assert_allclose(
        e(ember.tensor(x, dtype=ember.float32)).detach().numpy(),
        t(torch.tensor(x, dtype=torch.float32)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    assert type(e[0]) is nn.Linear and e[0].in_features == 5
    assert type(e[1]) is nn.BatchNorm1d and e[1].num_features == 3


def test_lazy_state_dict_round_trip_between_lazy_modules():
    a = nn.LazyConv1d(2, 3)
    a(ember.randn(1, 4, 6))
    b = nn.LazyConv1d(2, 3)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.weight.detach().numpy(), a.weight.detach().numpy())
    x = ember.randn(1, 4, 6)
    np.testing.assert_array_equal(b(x).detach().numpy(), a(x).detach().numpy())
    assert b.in_channels == 4 and type(b) is nn.Conv1d


def test_lazy_dtype_copy_before_dry_run():
    m = nn.LazyLinear(2).double()
    c = copy.deepcopy(nn.LazyConv2d(2, 3))
    m(ember.randn(3, 4, dtype=ember.float64))
    assert m.weight.dtype == ember.float64
    c(ember.randn(1, 3, 4, 4))
    assert tuple(c.weight.shape) == (2, 3, 3, 3)


def test_lazy_optimizer_after_dry_run_and_compile():
    net = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = ember.randn(2, 3, 6, 6)
    y = net(x)  # dry run, then the optimizer (as PyTorch's documentation says)
    opt = ember.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().numpy().copy() for p in net.parameters()]
    net(x).sum().backward()
    opt.step()
    assert all(not np.array_equal(b, p.detach().numpy()) for b, p in zip(before, net.parameters()))
    compiled = ember.compile(net)
    np.testing.assert_allclose(
        compiled(x).detach().numpy(), net(x).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    assert tuple(compiled(ember.randn(3, 3, 6, 6)).shape) == (3, 2)
    assert tuple(y.shape) == (2, 2)


def test_lazy_saved_as_the_plain_class(tmp_path):
    m = nn.LazyLinear(2)
    m(ember.randn(1, 3))
    path = str(tmp_path / "m.ember")
    ember.save(m, path)
    r = ember.load(path)
    assert type(r) is nn.Linear and r.in_features == 3
    np.testing.assert_array_equal(r.weight.detach().numpy(), m.weight.detach().numpy())


def test_uninitialized_buffer_and_parameter_signatures():
    p = nn.UninitializedParameter(dtype=ember.float64)
    p.materialize((2,))
    assert type(p) is nn.Parameter and p.dtype == ember.float64 and p.requires_grad
    b = nn.UninitializedBuffer()
    assert repr(b) == "<UninitializedBuffer>"
    b.materialize((3, 1))
    assert type(b) is ember.Tensor and tuple(b.shape) == (3, 1)


# ----- AdaptiveLogSoftmaxWithLoss ---------------------------------------------------------------
def _asm_pair(head_bias=False, div_value=4.0):
    # (in_features 16: 16 // 4**2 = 1, no zero-width tail layer)
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(
        16, 12, [3, 7], div_value=div_value, head_bias=head_bias
    ).double()
    em = nn.AdaptiveLogSoftmaxWithLoss(16, 12, [3, 7], div_value=div_value, head_bias=head_bias)
    em = em.double()
    assert list(em.state_dict()) == list(tm.state_dict())
    em.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    return tm, em


@pytest.mark.parametrize("head_bias,div_value", [(False, 4.0), (True, 2.0)])
def test_adaptive_softmax_matches_torch(head_bias, div_value):
    tm, em = _asm_pair(head_bias, div_value)
    assert repr(em) == repr(tm)
    x = _x((6, 16))
    t = np.array([0, 2, 5, 11, 7, 3])
    tx = torch.tensor(x, requires_grad=True)
    ex = ember.tensor(x, requires_grad=True)
    to = tm(tx, torch.tensor(t))
    eo = em(ex, ember.tensor(t))
    assert eo._fields == ("output", "loss")
    np.testing.assert_allclose(eo.output.detach().numpy(), to.output.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(eo.loss.item(), to.loss.item(), rtol=1e-12)
    to.loss.backward()
    eo.loss.backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for n, p in tm.named_parameters():
        np.testing.assert_allclose(
            em.get_parameter(n).grad.numpy(), p.grad.numpy(), rtol=1e-10, atol=1e-14
        )
    np.testing.assert_allclose(
        em.log_prob(ex).detach().numpy(), tm.log_prob(tx).detach().numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(np.exp(em.log_prob(ex).detach().numpy()).sum(1), 1.0, rtol=1e-12)


def test_adaptive_softmax_predict_and_unbatched():
    tm, em = _asm_pair()
    for seed in range(6):
        x = _x((7, 16), seed=seed) * (1 + seed)
        np.testing.assert_array_equal(
            em.predict(ember.tensor(x)).numpy(), tm.predict(torch.tensor(x)).numpy()
        )
    x1 = _x((16,), seed=9)
    eo = em(ember.tensor(x1), ember.tensor(4))
    to = tm(torch.tensor(x1), torch.tensor(4))
    assert tuple(eo.output.shape) == ()
    np.testing.assert_allclose(eo.output.item(), to.output.item(), rtol=1e-12)
    # (torch's predict fails on an unbatched input: compared with its batch of one)
    assert em.predict(ember.tensor(x1)).item() == tm.predict(torch.tensor(x1[None])).item()
    assert tuple(em.log_prob(ember.tensor(x1)).shape) == (12,)


def test_adaptive_softmax_predict_all_paths():
    tm, em = _asm_pair()
    with torch.no_grad():
        for shift in (-50.0, 50.0, 0.0):
            tm.head.weight[3:].fill_(0.0)
            tm.head.weight[3:, 0] = shift
            em.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
            x = _x((9, 16), seed=3)
            x[::2, 0] = np.abs(x[::2, 0]) + 1.0  # some rows pushed to the tail clusters
            np.testing.assert_array_equal(
                em.predict(ember.tensor(x)).numpy(), tm.predict(torch.tensor(x)).numpy()
            )


def test_adaptive_softmax_bad_input():
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [])
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])
    with pytest.raises(ValueError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 10])
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4])
    with pytest.raises(ValueError, match="Target values should be in \\[0, 9\\]"):
        m(ember.randn(2, 8), ember.tensor([1, 10]))
    with pytest.raises(ValueError, match="same size in the batch"):
        m(ember.randn(3, 8), ember.tensor([1, 2]))
    with pytest.raises(ValueError, match="multi-target not supported"):
        m(ember.randn(2, 8), ember.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="integer"):
        m(ember.randn(2, 8), ember.tensor([1.0, 2.0]))


# ----- Adafactor --------------------------------------------------------------------------------
@pytest.mark.parametrize("np_dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_adafactor_20_steps_two_groups(np_dtype, rtol):
    rng = np.random.default_rng(0)
    shapes = [(4, 3), (5,), (2, 3, 4), (3,)]
    init = [rng.standard_normal(s).astype(np_dtype) for s in shapes]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    ep = [ember.tensor(a.copy(), requires_grad=True) for a in init]

    def groups(ps):
        return [
            {"params": ps[:2]},
            {"params": ps[2:], "lr": 0.05, "weight_decay": 0.1, "maximize": True, "d": 1.5},
        ]

    to = torch.optim.Adafactor(groups(tp), lr=0.02, eps=(None, 1e-3))
    eo = ember.optim.Adafactor(groups(ep), lr=0.02, eps=(None, 1e-3))
    for _ in range(20):
        for ps, opt in ((tp, to), (ep, eo)):
            opt.zero_grad()
            sum((p**3).sum() + (p * p).mean() for p in ps).backward()
            opt.step()
    for a, b in zip(tp, ep):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=rtol, atol=0)
    for a, b in zip(tp, ep):
        ts, es = to.state[a], eo.state[b]
        assert list(es) == list(ts)
        for k in ts:
            np.testing.assert_allclose(es[k].numpy(), ts[k].numpy(), rtol=max(rtol, 1e-5))
    assert eo.param_groups[1]["d"] == to.param_groups[1]["d"] == 1.5
    assert dict(eo.defaults) == {k: v for k, v in to.defaults.items() if k in eo.defaults}


def test_adafactor_eps1_and_bad_args():
    w = [torch.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)]
    v = [ember.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)]
    to = torch.optim.Adafactor(w, lr=0.1, eps=(1e-2, 1e-3), beta2_decay=-0.5)
    eo = ember.optim.Adafactor(v, lr=0.1, eps=(1e-2, 1e-3), beta2_decay=-0.5)
    for _ in range(3):
        for ps, opt in ((w, to), (v, eo)):
            opt.zero_grad()
            (ps[0].sum() * 1e-3).backward()
            opt.step()
    np.testing.assert_allclose(v[0].detach().numpy(), w[0].detach().numpy(), rtol=1e-6)
    p = [ember.zeros(2, requires_grad=True)]
    for kwargs, msg in [
        ({"lr": -1.0}, "Learning rate"),
        ({"beta2_decay": 0.5}, "beta2_decay"),
        ({"eps": (-1.0, 1e-3)}, "epsilon1"),
        ({"eps": (None, -1.0)}, "epsilon2"),
        ({"d": 0.5}, "Clipping threshold"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ]:
        with pytest.raises(ValueError, match=msg):
            ember.optim.Adafactor(p, **kwargs)
