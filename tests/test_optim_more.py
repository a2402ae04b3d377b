"""Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop and the extra lr schedulers against PyTorch.

Each optimizer runs 20 steps on two parameter groups in ember and torch from the same initial
weights, with gradients ``G_t + 0.5 * p`` (``G_t`` drawn once, ``p`` each side's own
parameter), and the parameters and state dicts must agree; a state dict taken mid-training
(ember's own, or torch's) continues identically; and a compiled training step equals eager.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import ember
from ember import optim

SHAPES = [(4, 3), (3,), (3, 2)]
STEPS = 20

# (name, kwargs): several argument combinations per optimizer
CASES = [
    ("NAdam", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {"lr": 0.02, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.01, "betas": (0.8, 0.99)}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("RAdam", {"lr": 0.02, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.9)}),  # rho_t > 5 from step 6 on
    ("Adamax", {"lr": 0.01}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "maximize": True, "betas": (0.8, 0.95)}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1, "maximize": True}),
    ("Rprop", {"lr": 0.01}),
    ("Rprop", {"lr": 0.02, "etas": (0.4, 1.3), "step_sizes": (1e-3, 0.05), "maximize": True}),
    ("ASGD", {"lr": 0.01}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "t0": 5, "weight_decay": 0.1, "maximize": True}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def _init(dtype, seed=0):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(2 * STEPS)]
    return ws, grads


def _groups(params, kw):
    # two groups: the second with its own learning rate
    return [{"params": params[:2]}, {"params": params[2:], "lr": kw.get("lr", 0.01) * 0.5}]


class _Run:
    """One optimizer in one framework, driven by the shared gradient sequence."""

    def __init__(self, lib, name, kw, ws):
        self.lib = lib
        self.params = [lib.tensor(w.copy(), requires_grad=True) for w in ws]
        self.opt = getattr(lib.optim, name)(_groups(self.params, kw), **kw)

    def numpy(self, t):
        return t.detach().numpy().copy()

    def step(self, gs):
        for p, g in zip(self.params, gs):
            p.grad = self.lib.tensor(g + 0.5 * self.numpy(p))
        self.opt.step()


def _rtol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-12


def _check_params(e, t, dtype, msg=""):
    for i, (pe, pt) in enumerate(zip(e.params, t.params)):
        np.testing.assert_allclose(
            pe.detach().numpy(),
            pt.detach().numpy(),
            rtol=_rtol(dtype),
            atol=_rtol(dtype),
            err_msg=f"param {i} {msg}",
        )


def _check_state(e, t, dtype):
    se, st = e.opt.state_dict(), t.opt.state_dict()
    assert sorted(se["state"]) == sorted(st["state"]) == [0, 1, 2]
    for k, ste in se["state"].items():
        stt = st["state"][k]
        assert sorted(ste) == sorted(stt), (ste.keys(), stt.keys())
        for name, v in stt.items():
            ve = ste[name]
            assert str(ve.dtype).rsplit(".")[-1] == str(v.dtype).rsplit(".")[-1], name
            np.testing.assert_allclose(
                ve.numpy(), v.numpy(), rtol=10 * _rtol(dtype), atol=_rtol(dtype), err_msg=name
            )
    assert len(se["param_groups"]) == len(st["param_groups"]) == 2
    for ge, gt in zip(se["param_groups"], st["param_groups"]):
        assert ge == gt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_torch(name, kw, dtype):
    ws, grads = _init(dtype)
    e, t = _Run(ember, name, kw, ws), _Run(torch, name, kw, ws)
    assert e.opt.defaults == t.opt.defaults
    for i in range(STEPS):
        e.step(grads[i])
        t.step(grads[i])
    moved = max(np.abs(p.detach().numpy() - w).max() for p, w in zip(e.params, ws))
    assert moved > 1e-3
    _check_params(e, t, dtype)
    _check_state(e, t, dtype)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_state_dict_round_trip(name, kw):
    ws, grads = _init(np.float32, seed=1)
    a, t = _Run(ember, name, kw, ws), _Run(torch, name, kw, ws)
    for i in range(STEPS // 2):
        a.step(grads[i])
        t.step(grads[i])
    # a fresh optimizer loaded with ember's own state dict continues bit for bit
    b = _Run(ember, name, kw, [p.detach().numpy() for p in a.params])
    b.opt.load_state_dict(copy.deepcopy(a.opt.state_dict()))
    # and one loaded with torch's state dict continues like torch
    c = _Run(ember, name, kw, [p.detach().numpy() for p in t.params])
    sd = t.opt.state_dict()
    c.opt.load_state_dict(
        {
            "state": {
                k: {n: ember.tensor(v.numpy().copy()) for n, v in s.items()}
                for k, s in sd["state"].items()
            },
            "param_groups": sd["param_groups"],
        }
    )
    for i in range(STEPS // 2, STEPS):
        for r in (a, b, c, t):
            r.step(grads[i])
    for pa, pb in zip(a.params, b.params):
        np.testing.assert_array_equal(pb.detach().numpy(), pa.detach().numpy())
    for k, st in a.opt.state_dict()["state"].items():
        for n, v in st.items():
            np.testing.assert_array_equal(b.opt.state_dict()["state"][k][n].numpy(), v.numpy())
    _check_params(c, t, np.float32, "(loaded from torch)")
    _check_state(c, t, np.float32)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("NAdam", {"lr": 0.05, "weight_decay": 0.1}),
        ("RAdam", {"lr": 0.05, "betas": (0.9, 0.9), "decoupled_weight_decay": True}),
        ("Adamax", {"lr": 0.05}),
        ("Adadelta", {"lr": 0.5}),
        ("Rprop", {"lr": 0.05}),
        ("ASGD", {"lr": 0.05, "t0": 1}),
    ],
)
def test_compiled_step_equals_eager(name, kw):
    def run(compiled):
        ember.manual_seed(0)
        model = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.Tanh(), ember.nn.Linear(3, 1))
        opt = getattr(optim, name)(model.parameters(), **kw)

        def step(x, y):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        f = ember.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        losses = []
        for _ in range(3):
            x = rng.standard_normal((8, 4)).astype(np.float32)
            y = rng.standard_normal((8, 1)).astype(np.float32)
            losses.append(f(ember.tensor(x), ember.tensor(y)).item())
        return losses, model, opt, f

    l1, m1, o1, _ = run(False)
    l2, m2, o2, f = run(True)
    np.testing.assert_allclose(l2, l1, rtol=1e-6)
    assert l1[0] != l1[2]
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-6, atol=1e-7)
    s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
    for k in s1:
        assert float(s2[k]["step"]) == float(s1[k]["step"]) == 3.0
        for n in s1[k]:
            np.testing.assert_allclose(s2[k][n].numpy(), s1[k][n].numpy(), rtol=1e-6, atol=1e-7)
    assert f.explain().traces == 1


# ---------------------------------------------------------------------------------------------
# lr schedulers: the sequence of rates (and cycled momenta) over 30 steps equals torch's
def _sched_cases():
    return [
        ("SGD", {"lr": 0.1}, lambda M, o: M.PolynomialLR(o, total_iters=12)),
        (
            "SGD",
            {"lr": 0.1},
            lambda M, o: M.PolynomialLR(o, total_iters=20, power=2.5),
        ),
        ("SGD", {"lr": 0.1}, lambda M, o: M.CosineAnnealingWarmRestarts(o, 7)),
        (
            "Adam",
            {"lr": 0.1},
            lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
        ),
        (
            "SGD",
            {"lr": 0.1, "momentum": 0.9},
            lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=4),
        ),
        (
            "SGD",
            {"lr": 0.1, "momentum": 0.9},
            lambda M, o: M.CyclicLR(
                o, [0.01, 0.02], [0.1, 0.3], step_size_up=3, step_size_down=5, mode="triangular2"
            ),
        ),
        (
            "Adam",
            {"lr": 0.1},
            lambda M, o: M.CyclicLR(
                o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.97, max_momentum=0.95
            ),
        ),
        (
            "SGD",
            {"lr": 0.1},
            lambda M, o: M.CyclicLR(
                o, 0.01, 0.1, step_size_up=2, cycle_momentum=False, scale_fn=lambda x: 0.5**x
            ),
        ),
        (
            "NAdam",
            {"lr": 0.1},
            lambda M, o: M.ChainedScheduler(
                [
                    M.ConstantLR(o, factor=0.3, total_iters=4),
                    M.ExponentialLR(o, gamma=0.9),
                    M.CosineAnnealingWarmRestarts(o, 5),
                ]
            ),
        ),
    ]


SCHED_IDS = [
    "poly",
    "poly-power",
    "sgdr",
    "sgdr-mult",
    "cyclic",
    "cyclic-tri2",
    "cyclic-exp",
    "cyclic-fn",
    "chained",
]


def _sched_run(lib, case, steps=30):
    opt_name, kw, make = case
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    opt = getattr(lib.optim, opt_name)([{"params": params[:1]}, {"params": params[1:]}], **kw)
    sched = make(lib.optim.lr_scheduler, opt)
    seq = [list(sched.get_last_lr())]
    moms = []
    for _ in range(steps):
        opt.step()
        sched.step()
        seq.append(list(sched.get_last_lr()))
        assert seq[-1] == [g["lr"] for g in opt.param_groups]
        moms.append([g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups])
    return seq, moms, sched


@pytest.mark.parametrize("i", range(len(SCHED_IDS)), ids=SCHED_IDS)
def test_scheduler_matches_torch(i):
    case_e, case_t = _sched_cases()[i], _sched_cases()[i]
    (se, me, sched), (st, mt, _) = _sched_run(ember, case_e), _sched_run(torch, case_t)
    assert len(set(map(tuple, se))) > 3  # the rate really moves
    assert se == st
    assert me == mt
    # a fresh scheduler loaded with the state dict continues the same sequence
    if not isinstance(sched, optim.lr_scheduler.ChainedScheduler):
        _, _, s2 = _sched_run(ember, _sched_cases()[i], steps=0)
        s2.load_state_dict(sched.state_dict())
        s2.optimizer.param_groups[0]["lr"] = se[-1][0]
        s2.optimizer.param_groups[1]["lr"] = se[-1][1]
        s2.step()
        sched.step()
        assert s2.get_last_lr() == sched.get_last_lr()


def test_cosine_warm_restarts_fractional_epochs_match_torch():
    out = []
    for lib in (ember, torch):
        opt = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.5)
        s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4, T_mult=2)
        lrs = []
        for e in np.arange(0, 20, 0.7):
            s.step(float(e))
            lrs.append(s.get_last_lr()[0])
        out.append(lrs)
    assert out[0] == out[1]
    assert min(out[0]) < 0.05 and max(out[0]) == 0.5
