"""Optimizers against PyTorch: identical parameters and fixed random gradients, 30 steps."""

import numpy as np
import pytest
import torch

import ember
from ember import optim

SHAPES = [(5, 4), (4,), (3, 2, 2)]
STEPS = 30


def _run(name, kwargs, groups=None, steps=STEPS, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    ep = [ember.tensor(a.copy(), requires_grad=True) for a in init]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]

    def make(mod, ps):
        if groups is None:
            return getattr(mod, name)(ps, **kwargs)
        return getattr(mod, name)(
            [dict(params=[ps[i] for i in idx], **gkw) for idx, gkw in groups], **kwargs
        )

    eo, to = make(optim, ep), make(torch.optim, tp)
    for k in range(steps):
        for i in range(len(SHAPES)):
            ep[i].grad = ember.tensor(grads[k][i])
            tp[i].grad = torch.tensor(grads[k][i])
        eo.step()
        to.step()
    return ep, tp, eo, to


def _close(ep, tp, rtol=1e-5, atol=1e-6):
    for e, t in zip(ep, tp):
        np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adam", {"lr": 1e-2, "amsgrad": True}),
    ("Adam", {"lr": 1e-2, "amsgrad": True, "maximize": True, "weight_decay": 0.05}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.3, "amsgrad": True}),
    ("AdamW", {"lr": 1e-2, "maximize": True}),
    ("RMSprop", {"lr": 1e-2}),
    ("RMSprop", {"lr": 1e-2, "alpha": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 1e-2, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-2, "momentum": 0.5, "centered": True, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    (
        "Adagrad",
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
    ),
    ("Adagrad", {"lr": 0.1, "maximize": True, "eps": 1e-6}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kwargs):
    ep, tp, _, _ = _run(name, kwargs)
    _close(ep, tp)


def test_fifty_steps_adam_float32():
    ep, tp, _, _ = _run("Adam", {"lr": 1e-3, "weight_decay": 1e-4}, steps=50)
    _close(ep, tp)


def test_float64():
    ep, tp, _, _ = _run("Adam", {"lr": 1e-2}, dtype=np.float64)
    _close(ep, tp, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_param_groups_different_lrs(name):
    kwargs = {"lr": 0.01}
    if name == "SGD":
        kwargs["momentum"] = 0.9
    groups = [([0, 2], {"lr": 0.05}), ([1], {"weight_decay": 0.1})]
    ep, tp, eo, to = _run(name, kwargs, groups=groups)
    _close(ep, tp)
    assert [g["lr"] for g in eo.param_groups] == [g["lr"] for g in to.param_groups]


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"lr": 0.05, "momentum": 0.9}),
        ("Adam", {"lr": 1e-2, "amsgrad": True}),
        ("AdamW", {"lr": 1e-2}),
        ("RMSprop", {"lr": 1e-2, "momentum": 0.9, "centered": True}),
        ("Adagrad", {"lr": 0.1}),
    ],
)
def test_state_dict_round_trip_continues_identically(name, kwargs):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(20)]
    a = [ember.tensor(x.copy(), requires_grad=True) for x in init]
    oa = getattr(optim, name)(a, **kwargs)
    for k in range(10):
        for i, p in enumerate(a):
            p.grad = ember.tensor(grads[k][i])
        oa.step()
    sd = oa.state_dict()
    # torch layout
    assert set(sd) == {"state", "param_groups"}
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    assert set(sd["state"]) == {0, 1, 2}
    b = [ember.tensor(p.detach().numpy().copy(), requires_grad=True) for p in a]
    ob = getattr(optim, name)(b, **kwargs)
    ob.load_state_dict(sd)
    for k in range(10, 20):
        for i in range(len(a)):
            a[i].grad = ember.tensor(grads[k][i])
            b[i].grad = ember.tensor(grads[k][i])
        oa.step()
        ob.step()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.detach().numpy(), y.detach().numpy())


def test_state_dict_keys_match_torch():
    _ep, _tp, eo, to = _run("Adam", {"lr": 1e-2, "amsgrad": True}, steps=2)
    es, ts = eo.state_dict(), to.state_dict()
    assert set(es["state"][0]) == set(ts["state"][0])
    assert set(es["param_groups"][0]) <= set(ts["param_groups"][0])
    assert float(es["state"][0]["step"]) == float(ts["state"][0]["step"])
    np.testing.assert_allclose(
        es["state"][1]["exp_avg"].numpy(), ts["state"][1]["exp_avg"].numpy(), rtol=1e-5, atol=1e-7
    )


def test_load_state_dict_validates_counts():
    a = [ember.zeros(2, requires_grad=True), ember.zeros(3, requires_grad=True)]
    o = optim.SGD(a, lr=0.1)
    sd = o.state_dict()
    o2 = optim.SGD([a[0]], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        o2.load_state_dict(sd)
    o3 = optim.SGD([{"params": [a[0]]}, {"params": [a[1]]}], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        o3.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state'"):
        o.load_state_dict({"foo": 1})


def test_load_state_dict_restores_hyperparameters():
    a = [ember.zeros(2, requires_grad=True)]
    o = optim.SGD(a, lr=0.1)
    o.param_groups[0]["lr"] = 0.5
    o2 = optim.SGD(a, lr=0.1)
    o2.load_state_dict(o.state_dict())
    assert o2.param_groups[0]["lr"] == 0.5
    assert o2.param_groups[0]["params"][0] is a[0]


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda p: optim.SGD(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "Invalid momentum value"),
        (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: optim.Adam(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0"),
        (lambda p: optim.Adam(p, eps=-1), "Invalid epsilon"),
        (lambda p: optim.AdamW(p, weight_decay=-1), "Invalid weight_decay"),
        (lambda p: optim.RMSprop(p, alpha=-1), "Invalid alpha"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay"),
    ],
)
def test_invalid_hyperparameters(make, msg):
    with pytest.raises(ValueError, match=msg):
        make([ember.zeros(2, requires_grad=True)])


def test_param_validation():
    p = ember.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    o = optim.SGD([p], lr=0.1)
    q = ember.zeros(3, requires_grad=True)
    o.add_param_group({"params": q, "lr": 0.5})
    assert o.param_groups[1]["lr"] == 0.5 and o.param_groups[1]["momentum"] == 0.0


def test_zero_grad_and_skip_params_without_grad():
    p = ember.ones(2, requires_grad=True)
    q = ember.ones(2, requires_grad=True)
    o = optim.SGD([p, q], lr=0.5)
    (p * 2).sum().backward()
    o.step()
    assert p.tolist() == [0.0, 0.0] and q.tolist() == [1.0, 1.0]
    o.zero_grad(set_to_none=False)
    assert p.grad.tolist() == [0.0, 0.0]
    o.zero_grad()
    assert p.grad is None


def test_closure_and_hooks():
    p = ember.ones(2, requires_grad=True)
    o = optim.Adam([p], lr=0.1)
    calls = []
    h = o.register_step_pre_hook(lambda opt, a, k: calls.append("pre"))
    o.register_step_post_hook(lambda opt, a, k: calls.append("post"))

    def closure():
        o.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = o.step(closure)
    assert float(loss) == 2.0 and calls == ["pre", "post"]
    h.remove()
    o.step(closure)
    assert calls == ["pre", "post", "post"]


def test_step_bumps_version_and_is_inplace():
    p = ember.ones(3, requires_grad=True)
    data = p._data
    v = p._version[0]
    o = optim.SGD([p], lr=0.1)
    p.grad = ember.ones(3)
    o.step()
    assert p._data is data and p._version[0] == v + 1
    assert p.requires_grad and p.is_leaf


def test_update_is_a_registered_inplace_primitive():
    from ember.ops import registry

    for name in ("sgd_update", "adam_update", "rmsprop_update", "adagrad_update"):
        assert registry()[name].kind == "inplace"


def test_training_loop_matches_torch():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((32, 5)).astype(np.float32)
    Y = rng.standard_normal((32, 1)).astype(np.float32)
    W0 = rng.standard_normal((5, 1)).astype(np.float32) * 0.3
    ew = ember.tensor(W0.copy(), requires_grad=True)
    tw = torch.tensor(W0.copy(), requires_grad=True)
    eo, to = optim.AdamW([ew], lr=1e-2), torch.optim.AdamW([tw], lr=1e-2)
    ex, ey, tx, ty = ember.tensor(X), ember.tensor(Y), torch.tensor(X), torch.tensor(Y)
    for _ in range(50):
        eo.zero_grad()
        to.zero_grad()
        ((ex @ ew - ey) ** 2).mean().backward()
        ((tx @ tw - ty) ** 2).mean().backward()
        eo.step()
        to.step()
    np.testing.assert_allclose(ew.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
