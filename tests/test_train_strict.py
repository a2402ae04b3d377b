"""ember.train refuses to fail silently: monitors that never appear, resumes that would
restore only part of the state, and gradient clipping through ember.nn.utils (checked
against torch). Run under Python's default warning filters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ember
from ember import nn
from ember.train import (
    ArrayLoader,
    EarlyStopping,
    Engine,
    ModelCheckpoint,
    ReduceLROnPlateau,
    Task,
    clip_gradients,
    load_checkpoint,
    save_checkpoint,
)


@pytest.fixture(autouse=True)
def _default_warning_filters():
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


class _Reg(Task):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def train_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.log("loss", loss)
        return loss

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("loss", nn.functional.mse_loss(self.model(x), y))


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    return ArrayLoader((x, x[:, :1] * 2), batch_size=8, seed=0)


def _engine(callbacks=(), n_opt=1, scheduler=True):
    ember.manual_seed(0)
    model = nn.Linear(3, 1)
    opts = [ember.optim.SGD(model.parameters(), lr=0.01) for _ in range(n_opt)]
    scheds = [ember.optim.lr_scheduler.StepLR(opts[0], step_size=1)] if scheduler else []
    return Engine(
        model, _Reg(model), optimizers=opts, schedulers=scheds, callbacks=callbacks, verbose=0
    )


# -- 1. monitors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda p: EarlyStopping(monitor="val_los", patience=1),
        lambda p: ReduceLROnPlateau(monitor="val_los", patience=1),
        lambda p: ModelCheckpoint(str(p / "best.ember"), monitor="val_los", save_best_only=True),
    ],
    ids=["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"],
)
def test_a_monitor_missing_from_the_logs_is_an_error_after_the_first_epoch(tmp_path, make):
    cb = make(tmp_path)
    eng = _engine([cb])
    with pytest.raises(ValueError, match=r"'val_los'.*epoch 1.*\['loss', 'val_loss'\].*val_loss"):
        eng.fit(_data(), epochs=3, val_data=_data())
    assert eng.epoch == 0  # stopped at the end of the first epoch
    assert not list(tmp_path.iterdir())


def test_a_validation_monitor_waits_for_the_epochs_that_validate(tmp_path):
    ck = ModelCheckpoint(str(tmp_path / "b{epoch}.ember"), monitor="val_loss", save_best_only=True)
    es = EarlyStopping(monitor="val_loss", patience=5)
    plateau = ReduceLROnPlateau(monitor="val_loss", patience=5)
    eng = _engine([ck, es, plateau])
    eng.fit(_data(), epochs=4, val_data=_data(), validation_freq=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b2.ember", "b4.ember"]
    # a training-value monitor that is misspelled is still caught on a non-validating epoch
    eng = _engine([EarlyStopping(monitor="los")])
    with pytest.raises(ValueError, match="'los'"):
        eng.fit(_data(), epochs=2, val_data=_data(), validation_freq=2)


def test_without_validation_data_a_validation_monitor_is_an_error():
    eng = _engine([EarlyStopping()])  # monitor='val_loss'
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_loss'.*\['loss'\]"):
        eng.fit(_data(), epochs=2)


def test_plateau_scheduler_on_step_interval_is_refused():
    model = nn.Linear(3, 1)
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    sch = ember.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="interval 'epoch'"):
        Engine(
            model,
            _Reg(model),
            optimizers=[opt],
            schedulers=[{"scheduler": sch, "interval": "step"}],
        )


# -- 2. resume ---------------------------------------------------------------------------------
def _checkpoint(tmp_path, **kw):
    eng = _engine(**kw)
    eng.fit(_data(), epochs=1)
    path = tmp_path / "ck.ember"
    save_checkpoint(path, eng, epoch=1)
    return load_checkpoint(path)


@pytest.mark.parametrize(
    ("saved", "resumed", "match"),
    [
        ({"n_opt": 2}, {"n_opt": 1}, r"2 optimizer state\(s\) \['SGD', 'SGD'\] but 1"),
        ({"n_opt": 1}, {"n_opt": 2}, r"1 optimizer state\(s\) \['SGD'\] but 2"),
        ({"scheduler": True}, {"scheduler": False}, r"1 scheduler state\(s\) \['StepLR'\] but 0"),
        ({"scheduler": False}, {"scheduler": True}, r"0 scheduler state\(s\) but 1"),
        ({}, {"callbacks": [EarlyStopping(monitor="loss")]}, r"no state for .*EarlyStopping:0"),
    ],
)
def test_resume_refuses_a_checkpoint_that_does_not_match(tmp_path, saved, resumed, match):
    state = _checkpoint(tmp_path, **saved)
    with pytest.raises(ValueError, match=match):
        _engine(**resumed).restore(state)


def test_resume_refuses_state_of_callbacks_the_run_lacks(tmp_path):
    state = _checkpoint(tmp_path, callbacks=[EarlyStopping(monitor="loss")])
    with pytest.raises(ValueError, match=r"callbacks \['EarlyStopping:0'\] that this run"):
        _engine().restore(state)
    _engine([EarlyStopping(monitor="loss")]).restore(state)  # the same callbacks resume


def test_resume_refuses_other_kinds_and_missing_parts(tmp_path):
    state = _checkpoint(tmp_path)
    eng = _engine()
    ember.manual_seed(0)
    eng.optimizers = [ember.optim.Adam(eng.model.parameters())]
    with pytest.raises(ValueError, match=r"optimizers \['SGD'\] but the run has \['Adam'\]"):
        eng.restore(state)
    for key in ("model", "optimizers", "schedulers", "rng", "callbacks"):
        broken = {k: v for k, v in state.items() if k != key}
        with pytest.raises(ValueError, match=f"no \\['{key}'\\]"):
            _engine().restore(broken)


def test_a_scheduler_without_state_cannot_be_checkpointed(tmp_path):
    class Plain:  # steps the lr but keeps no state_dict
        def step(self):
            pass

    eng = _engine(scheduler=False)
    eng.schedulers = [{"scheduler": Plain(), "interval": "epoch", "frequency": 1}]
    with pytest.raises(TypeError, match=r"scheduler #0 \(Plain\) has no state_dict"):
        save_checkpoint(tmp_path / "x.ember", eng, epoch=0)


# -- 10. clipping ------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_clip_gradients_matches_torch(algorithm):
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    ps = [ember.zeros(g.shape, requires_grad=True) for g in grads]
    tps = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, tp, g in zip(ps, tps, grads):
        p.grad, tp.grad = ember.tensor(g), torch.tensor(g)
    total = clip_gradients(ps, 1.5, algorithm)
    if algorithm == "norm":
        ref = torch.nn.utils.clip_grad_norm_(tps, 1.5)
        assert total == pytest.approx(float(ref), rel=1e-6)
    else:
        torch.nn.utils.clip_grad_value_(tps, 1.5)
        assert total is None
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-6)


def test_clip_algorithm_is_checked_when_the_engine_is_built():
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="'nrom'"):
        Engine(model, _Reg(model), gradient_clip_val=1.0, gradient_clip_algorithm="nrom")


def test_resume_refuses_data_of_another_kind(tmp_path):
    state = _checkpoint(tmp_path)  # an ArrayLoader with its own generator
    eng = _engine()
    eng.restore(state)
    x = ember.randn(16, 3)
    plain = ember.data.DataLoader(ember.data.TensorDataset(x, x[:, :1]), batch_size=8)
    with pytest.raises(ValueError, match="random state is 'loader' but this run's data has none"):
        eng.fit(plain, epochs=2)


def test_resume_refuses_a_damaged_position(tmp_path):
    state = _checkpoint(tmp_path)
    state["position"] = {"epoch": state["epoch"] + 3, "batches_done": 1}
    with pytest.raises(ValueError, match="position inside epoch 1 is damaged"):
        _engine().restore(state)


def test_plateau_scheduler_monitor_is_checked_and_waits_for_validation():
    def engine(monitor):
        model = nn.Linear(3, 1)
        opt = ember.optim.SGD(model.parameters(), lr=0.1)
        sch = ember.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0)
        return Engine(
            model,
            _Reg(model),
            optimizers=[opt],
            schedulers=[{"scheduler": sch, "monitor": monitor}],
            verbose=0,
        )

    with pytest.raises(KeyError, match=r"'val_los'.*\['loss', 'val_loss'\]"):
        engine("val_los").fit(_data(), epochs=2, val_data=_data())
    eng = engine("val_loss")
    sch = eng.schedulers[0]["scheduler"]
    start = sch.last_epoch
    eng.fit(_data(), epochs=4, val_data=_data(), validation_freq=2)
    assert sch.last_epoch - start == 2  # stepped on the two epochs that validated
