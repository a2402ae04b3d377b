"""Learning-rate schedules against torch schedulers driving a torch optimizer, step by step."""

import math

import numpy as np
import pytest
import torch

import ember
from ember import optim
from ember.optim import lr_scheduler as S
from ember.serialization import load, save

TS = torch.optim.lr_scheduler


def _opts(kind="SGD", groups=1, **kw):
    kw.setdefault("lr", 0.1)
    e = [ember.zeros(2, requires_grad=True) for _ in range(groups)]
    t = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    eg = [{"params": [p], "lr": kw["lr"] * (i + 1)} for i, p in enumerate(e)]
    tg = [{"params": [p], "lr": kw["lr"] * (i + 1)} for i, p in enumerate(t)]
    return getattr(optim, kind)(eg, **kw), getattr(torch.optim, kind)(tg, **kw)


def _compare(eo, to, es, ts, steps, metric=None, check_betas=False):
    assert es.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12, abs=1e-15)
    for k in range(steps):
        eo.step()
        to.step()
        if metric is None:
            es.step()
            ts.step()
        else:
            es.step(metric(k))
            ts.step(metric(k))
        elr, tlr = es.get_last_lr(), ts.get_last_lr()
        assert elr == pytest.approx(tlr, rel=1e-12, abs=1e-15), (k, elr, tlr)
        for eg, tg in zip(eo.param_groups, to.param_groups):
            assert eg["lr"] == pytest.approx(tg["lr"], rel=1e-12, abs=1e-15)
            if check_betas:
                assert eg["betas"] == pytest.approx(tg["betas"], rel=1e-12)
            if "momentum" in tg:
                assert eg["momentum"] == pytest.approx(tg["momentum"], rel=1e-12)


CASES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, 20),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, 15),
    ("ExponentialLR", {"gamma": 0.9}, 15),
    ("CosineAnnealingLR", {"T_max": 10}, 35),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}, 30),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 6}, 12),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 4}, 8),
    ("ConstantLR", {"factor": 0.5, "total_iters": 3}, 6),
    ("LambdaLR", {"lr_lambda": lambda e: 0.95**e + 0.01 * e}, 12),
    ("MultiplicativeLR", {"lr_lambda": lambda e: 0.9}, 8),
]


@pytest.mark.parametrize("name,kw,steps", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
@pytest.mark.parametrize("groups", [1, 2])
def test_matches_torch(name, kw, steps, groups):
    eo, to = _opts(groups=groups)
    es, ts = getattr(S, name)(eo, **kw), getattr(TS, name)(to, **kw)
    _compare(eo, to, es, ts, steps)


@pytest.mark.parametrize(
    "kw",
    [
        {"max_lr": 0.1, "total_steps": 40},
        {"max_lr": [0.1, 0.2], "epochs": 4, "steps_per_epoch": 10, "anneal_strategy": "linear"},
        {"max_lr": 0.5, "total_steps": 30, "three_phase": True, "pct_start": 0.25},
        {
            "max_lr": 0.5,
            "total_steps": 25,
            "cycle_momentum": False,
            "div_factor": 10.0,
            "final_div_factor": 100.0,
        },
    ],
)
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_one_cycle_matches_torch(kw, kind):
    extra = {"momentum": 0.9} if kind == "SGD" else {}
    eo, to = _opts(kind, groups=2, **extra)
    es, ts = S.OneCycleLR(eo, **kw), TS.OneCycleLR(to, **kw)
    steps = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    _compare(eo, to, es, ts, steps - 1, check_betas=kind == "Adam")
    eo.step()
    with pytest.raises(ValueError, match="Tried to step"):
        es.step()
        es.step()


def test_sequential_matches_torch():
    eo, to = _opts(groups=2)
    es = S.SequentialLR(
        eo,
        [
            S.LinearLR(eo, start_factor=0.1, total_iters=4),
            S.CosineAnnealingLR(eo, T_max=10),
            S.ExponentialLR(eo, gamma=0.9),
        ],
        milestones=[4, 12],
    )
    ts = TS.SequentialLR(
        to,
        [
            TS.LinearLR(to, start_factor=0.1, total_iters=4),
            TS.CosineAnnealingLR(to, T_max=10),
            TS.ExponentialLR(to, gamma=0.9),
        ],
        milestones=[4, 12],
    )
    _compare(eo, to, es, ts, 20)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.1, "threshold_mode": "abs"},
        {"factor": 0.5, "patience": 1, "cooldown": 2, "min_lr": 0.02},
        {"factor": 0.3, "patience": 0, "min_lr": [0.001, 0.05], "threshold_mode": "rel"},
    ],
)
def test_plateau_matches_torch(kw):
    eo, to = _opts(groups=2)
    es, ts = S.ReduceLROnPlateau(eo, **kw), TS.ReduceLROnPlateau(to, **kw)
    vals = [
        1.0,
        0.9,
        0.95,
        0.95,
        0.96,
        0.89,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.9,
        0.85,
        1.2,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
        1.3,
    ]
    _compare(eo, to, es, ts, len(vals), metric=lambda k: vals[k])


def test_plateau_accepts_tensor_metric_and_validates():
    eo, _ = _opts()
    s = S.ReduceLROnPlateau(eo, patience=0)
    s.step(ember.tensor(1.0))
    s.step(ember.tensor(2.0))
    assert eo.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="Factor"):
        S.ReduceLROnPlateau(eo, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(eo, mode="avg")


def test_closed_form_epoch_argument():
    eo, to = _opts()
    es, ts = S.StepLR(eo, step_size=2, gamma=0.5), TS.StepLR(to, step_size=2, gamma=0.5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        es.step(7)
        ts.step(7)
    assert es.get_last_lr() == pytest.approx(ts.get_last_lr())


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.StepLR(o, step_size=3, gamma=0.5),
        lambda o: S.CosineAnnealingLR(o, T_max=10),
        lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=30),
        lambda o: S.MultiStepLR(o, milestones=[3, 6]),
        lambda o: S.SequentialLR(
            o,
            [S.LinearLR(o, start_factor=0.5, total_iters=3), S.ExponentialLR(o, gamma=0.9)],
            milestones=[3],
        ),
    ],
)
def test_state_dict_resume(make, tmp_path):
    eo, _ = _opts("SGD", momentum=0.9)
    s = make(eo)
    for _ in range(5):
        eo.step()
        s.step()
    save({"opt": eo.state_dict(), "sched": s.state_dict()}, tmp_path / "ck")
    ref = []
    for _ in range(8):
        eo.step()
        s.step()
        ref.append(s.get_last_lr())
    eo2, _ = _opts("SGD", momentum=0.9)
    s2 = make(eo2)
    ck = load(tmp_path / "ck")
    eo2.load_state_dict(ck["opt"])
    s2.load_state_dict(ck["sched"])
    got = []
    for _ in range(8):
        eo2.step()
        s2.step()
        got.append(s2.get_last_lr())
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_drives_training_lr():
    p = ember.ones(1, requires_grad=True)
    o = optim.SGD([p], lr=1.0)
    s = S.LambdaLR(o, lambda e: 0.5**e)
    for _ in range(3):
        p.grad = ember.ones(1)
        o.step()
        s.step()
    assert p.tolist() == [1 - 1 - 0.5 - 0.25]
    assert math.isclose(s.get_last_lr()[0], 0.125)


def test_errors():
    eo, _ = _opts()
    with pytest.raises(TypeError, match="not an Optimizer"):
        S.StepLR(object(), 1)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(eo, 1, last_epoch=3)
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(eo, max_lr=0.1)
    with pytest.raises(ValueError, match="milestones"):
        S.SequentialLR(eo, [S.StepLR(eo, 1), S.StepLR(eo, 1)], milestones=[])
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(eo, start_factor=0)
