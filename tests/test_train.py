"""ember.train: the engine (accumulation, clipping, schedules), callbacks, exact resume from
checkpoints, and Trainer."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import ember
from ember import keras, nn
from ember.data import DataLoader, TensorDataset
from ember.train import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
    Trainer,
)


def _data(n=96, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, c))
    y = (X @ W).argmax(1)
    return X, y


def _keras_model(seed=0):
    ember.manual_seed(seed)
    m = keras.Sequential(
        [
            keras.layers.Dense(16, activation="relu", input_shape=(6,)),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


# -- exact resume ------------------------------------------------------------------------------
def test_keras_resume_reproduces_straight_run_bitwise(tmp_path):
    X, y = _data()
    straight = _keras_model()
    h = straight.fit(X, y, epochs=5, batch_size=16, validation_split=0.25, verbose=0)

    first = _keras_model()
    ck = ModelCheckpoint(str(tmp_path / "ck-{epoch}.ember"))
    h1 = first.fit(X, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[ck])
    assert (tmp_path / "ck-2.ember").exists()

    ember.manual_seed(1234)  # a fresh process would start from some other state
    resumed = _keras_model(seed=99)
    h2 = resumed.fit(
        X,
        y,
        epochs=5,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "ck-{epoch}.ember"))],  # same callbacks
        resume_from=tmp_path / "ck-2.ember",
    )
    assert h1.history["loss"] == h.history["loss"][:2]
    assert h2.history["loss"] == h.history["loss"], (h2.history["loss"], h.history["loss"])
    assert h2.history["val_loss"] == h.history["val_loss"]
    assert h2.epoch == [0, 1, 2, 3, 4]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        assert np.array_equal(a, b)


class LitNet(nn.Module):
    def __init__(self, lr=0.05):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        opt = ember.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        sch = ember.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return [opt], [sch]


def _loaders(seed_shuffle=True):
    X, y = _data()
    ds = TensorDataset(ember.tensor(X[:72]), ember.tensor(y[:72]))
    vs = TensorDataset(ember.tensor(X[72:]), ember.tensor(y[72:]))
    return DataLoader(ds, batch_size=16, shuffle=seed_shuffle), DataLoader(vs, batch_size=16)


def test_trainer_resume_reproduces_straight_run_bitwise(tmp_path):
    ember.manual_seed(0)
    m0 = LitNet()
    tr, va = _loaders()
    t0 = Trainer(max_epochs=4, verbose=0)
    t0.fit(m0, tr, va)

    ember.manual_seed(0)
    m1 = LitNet()
    tr, va = _loaders()
    t1 = Trainer(max_epochs=2, verbose=0)
    t1.fit(m1, tr, va)
    t1.save_checkpoint(tmp_path / "t.ember")

    ember.manual_seed(7)
    m2 = LitNet()
    tr, va = _loaders()
    t2 = Trainer(max_epochs=4, verbose=0)
    t2.fit(m2, tr, va, ckpt_path=tmp_path / "t.ember")
    assert t2.history.history["train_loss"] == t0.history.history["train_loss"]
    assert t2.history.history["val_loss"] == t0.history.history["val_loss"]
    for (k, a), b in zip(m2.state_dict().items(), m0.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy()), k
    assert t2.optimizers[0].param_groups[0]["lr"] == t0.optimizers[0].param_groups[0]["lr"]
    assert t2.global_step == t0.global_step == 4 * 5


# -- Trainer -----------------------------------------------------------------------------------
def test_trainer_logs_validation_and_callbacks():
    ember.manual_seed(0)
    m = LitNet()
    tr, va = _loaders()
    seen = []
    t = Trainer(
        max_epochs=3,
        verbose=0,
        callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: seen.append(sorted(logs)))],
    )
    t.fit(m, tr, va)
    assert seen[0] == ["loss", "train_loss", "val_acc", "val_loss"]
    assert t.current_epoch == 3
    # StepLR(step_size=2): lr halves after epoch 2
    assert t.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.025)
    res = t.validate(m, va)
    assert set(res[0]) == {"val_loss", "val_acc"}
    preds = t.predict(m, va)
    assert len(preds) == 2 and tuple(preds[0].shape) == (16, 3)


def test_trainer_configure_optimizers_forms_and_plateau():
    class Net(LitNet):
        def configure_optimizers(self):
            opt = ember.optim.Adam(self.parameters(), lr=0.01)
            sch = ember.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sch, "monitor": "val_loss"}}

    ember.manual_seed(0)
    tr, va = _loaders()
    t = Trainer(max_epochs=3, verbose=0)
    t.fit(Net(), tr, va)
    assert t.optimizers[0].param_groups[0]["lr"] <= 0.01

    class Plain(LitNet):
        def configure_optimizers(self):
            return ember.optim.SGD(self.parameters(), lr=0.1)

    t = Trainer(max_epochs=1, verbose=0, limit_train_batches=2)
    t.fit(Plain(), tr)
    assert t.global_step == 2


def test_gradient_accumulation_equals_big_batch():
    X, y = _data(n=32)

    class Net(LitNet):
        def configure_optimizers(self):
            return ember.optim.SGD(self.parameters(), lr=0.1)

    ember.manual_seed(0)
    a = Net()
    a.net[2].p = 0.0
    b = Net()
    b.load_state_dict(a.state_dict())
    b.net[2].p = 0.0
    ds = TensorDataset(ember.tensor(X), ember.tensor(y))
    Trainer(max_epochs=1, verbose=0, accumulate_grad_batches=4).fit(a, DataLoader(ds, batch_size=8))
    Trainer(max_epochs=1, verbose=0).fit(b, DataLoader(ds, batch_size=32))
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_gradient_clipping_limits_the_update():
    X, y = _data(n=16)

    class Net(LitNet):
        def configure_optimizers(self):
            return ember.optim.SGD(self.parameters(), lr=1.0)

    ember.manual_seed(0)
    m = Net()
    m.net[2].p = 0.0
    before = [p.detach().numpy().copy() for p in m.parameters()]
    ds = TensorDataset(ember.tensor(X * 100), ember.tensor(y))
    Trainer(max_epochs=1, verbose=0, gradient_clip_val=0.01).fit(m, DataLoader(ds, 16))
    delta = np.sqrt(
        sum(((p.detach().numpy() - b) ** 2).sum() for p, b in zip(m.parameters(), before))
    )
    assert delta == pytest.approx(0.01, rel=1e-3)


# -- callbacks ---------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_best_weights():
    X, y = _data()
    m = _keras_model()
    snapshots = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights())

    # a monitor that improves until epoch 2 and then gets worse
    vals = iter([1.0, 0.5, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])

    class Fake(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_metric"] = next(vals)

    es = EarlyStopping(monitor="val_metric", patience=2, restore_best_weights=True, mode="min")
    h = m.fit(X, y, epochs=10, batch_size=32, verbose=0, callbacks=[Fake(), Spy(), es])
    assert len(h.history["loss"]) == 5
    assert es.stopped_epoch == 4 and es.best_epoch == 2
    for a, b in zip(m.get_weights(), snapshots[2]):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_and_reduce_on_plateau():
    X, y = _data()
    m = _keras_model()
    lrs = []
    cb = LambdaCallback(on_epoch_begin=lambda e, logs: lrs.append(m.optimizer.learning_rate))
    h = m.fit(
        X,
        y,
        epochs=3,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 * (0.5**epoch)), cb],
    )
    assert lrs == pytest.approx([0.1, 0.05, 0.025])  # the scheduler runs first
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025])
    m2 = _keras_model()
    vals = iter([1.0, 1.0, 1.0, 1.0])

    class Fake(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(vals)

    m2.fit(
        X,
        y,
        epochs=4,
        verbose=0,
        callbacks=[Fake(), ReduceLROnPlateau(factor=0.5, patience=1, min_lr=1e-4)],
    )
    assert m2.optimizer.learning_rate == pytest.approx(1e-3 * 0.125)  # epochs 2, 3, 4


def test_model_checkpoint_best_only_freq_and_format(tmp_path):
    X, y = _data()
    m = _keras_model()
    best = ModelCheckpoint(
        str(tmp_path / "best-{epoch:02d}-{val_loss:.3f}.ember"),
        save_best_only=True,
        save_weights_only=True,
    )
    every = ModelCheckpoint(str(tmp_path / "e{epoch}.ember"), save_freq=2, save_last=True)
    m.fit(X, y, epochs=4, verbose=0, validation_split=0.2, callbacks=[best, every])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "e2.ember" in names and "e4.ember" in names and "e1.ember" not in names
    assert "last.ember" in names
    assert any(n.startswith("best-") for n in names)
    m2 = _keras_model(seed=5)
    m2.load_weights(best.best_path)
    assert best.best_path.endswith(".ember") and f"{best.best:.3f}" in best.best_path
    ckpt = ember.train.load_checkpoint(tmp_path / "e4.ember")
    assert ckpt["epoch"] == 4 and "rng" in ckpt and ckpt["optimizers"]
    with pytest.raises(ValueError, match="not an ember training checkpoint"):
        ember.train.load_checkpoint(best.best_path)
    # a full checkpoint of a Keras model opens with load_model too
    again = keras.models.load_model(tmp_path / "e4.ember")
    np.testing.assert_array_equal(again.predict(X, verbose=0), m.predict(X, verbose=0))


def test_csv_logger_terminate_on_nan_and_hook_order(tmp_path):
    X, y = _data()
    m = _keras_model()
    order = []

    def recorder(name):
        return lambda *a: order.append(name)

    hooks = {
        h: recorder(h)
        for h in (
            "on_train_begin",
            "on_epoch_begin",
            "on_train_batch_begin",
            "on_train_batch_end",
            "on_test_begin",
            "on_test_end",
            "on_epoch_end",
            "on_train_end",
        )
    }
    m.fit(
        X,
        y,
        epochs=2,
        batch_size=48,
        verbose=0,
        validation_split=0.5,
        callbacks=[CSVLogger(tmp_path / "log.csv"), LambdaCallback(**hooks)],
    )
    assert order[:4] == [
        "on_train_begin",
        "on_epoch_begin",
        "on_train_batch_begin",
        "on_train_batch_end",
    ]
    assert order[-3:] == ["on_test_end", "on_epoch_end", "on_train_end"]
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and "val_loss" in rows[0]

    bad = X.copy()
    bad[0, 0] = np.nan
    m2 = _keras_model()
    h = m2.fit(
        bad, y, epochs=3, batch_size=96, verbose=0, shuffle=False, callbacks=[TerminateOnNaN()]
    )
    assert len(h.history["loss"]) == 1


def test_progress_is_quiet_when_not_a_tty(capsys):
    X, y = _data()
    m = _keras_model()
    m.fit(X, y, epochs=1, verbose=1)
    m.fit(X, y, epochs=1, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and "Epoch" not in out.err
    m.fit(X, y, epochs=1, verbose=2)
    assert "Epoch 1/1" in capsys.readouterr().out


def test_tensorboard_callback_writes_events(tmp_path):
    pytest.importorskip("ember.summary")
    X, y = _data()
    m = _keras_model()
    m.fit(
        X,
        y,
        epochs=2,
        verbose=0,
        validation_split=0.2,
        callbacks=[keras.callbacks.TensorBoard(tmp_path / "tb")],
    )
    files = list((tmp_path / "tb").rglob("*tfevents*"))
    assert files and files[0].stat().st_size > 0


def test_progress_bar_on_a_terminal(monkeypatch):
    import io
    import sys

    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    X, y = _data()
    m = _keras_model()
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    m.fit(X, y, epochs=2, batch_size=32, validation_split=0.25)  # verbose='auto'
    text = err.getvalue()
    assert "Epoch 2/2" in text and "val_accuracy" in text and "3/3" in text
    err.seek(0)
    err.truncate()
    m.fit(X, y, epochs=1, verbose=0)
    assert err.getvalue() == ""


def test_backup_and_restore_resumes_an_interrupted_fit(tmp_path):
    X, y = _data()
    straight = _keras_model()
    h = straight.fit(X, y, epochs=4, batch_size=16, verbose=0)

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    m = _keras_model()
    with pytest.raises(KeyboardInterrupt):
        m.fit(X, y, epochs=4, batch_size=16, verbose=0, callbacks=[backup, Crash()])
    assert (tmp_path / "backup" / "backup.ember").exists()
    m2 = _keras_model(seed=3)
    h2 = m2.fit(
        X,
        y,
        epochs=4,
        batch_size=16,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(tmp_path / "backup")],
    )
    assert h2.history["loss"] == h.history["loss"]
    for a, b in zip(m2.get_weights(), straight.get_weights()):
        assert np.array_equal(a, b)
    assert not (tmp_path / "backup" / "backup.ember").exists()


def test_trainer_with_early_stopping_and_checkpoint(tmp_path):
    ember.manual_seed(0)
    tr, va = _loaders()
    vals = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])

    class Fake(ember.train.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(vals)

    ck = ModelCheckpoint(str(tmp_path / "best.ember"), monitor="val_loss", save_best_only=True)
    t = Trainer(
        max_epochs=6,
        verbose=0,
        callbacks=[Fake(), EarlyStopping(monitor="val_loss", patience=2), ck],
    )
    t.fit(LitNet(), tr, va)
    assert t.current_epoch == 4 and ck.best == 0.5
    assert ember.train.load_checkpoint(tmp_path / "best.ember")["epoch"] == 2


def test_mid_epoch_checkpoint_resumes_exactly(tmp_path):
    X, y = _data()
    straight = _keras_model()
    h = straight.fit(X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)

    first = _keras_model()
    ck = ModelCheckpoint(str(tmp_path / "s{step}.ember"), every_n_train_steps=7, save_freq=100)
    first.fit(X, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, callbacks=[ck])
    state = ember.train.load_checkpoint(tmp_path / "s7.ember")  # epoch 2 (0-based 1), batch 2
    assert state["epoch"] == 1 and state["position"]["batches_done"] == 2

    resumed = _keras_model(seed=5)
    h2 = resumed.fit(
        X,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "r{step}.ember"), every_n_train_steps=7)],
        resume_from=tmp_path / "s7.ember",
    )
    assert h2.history["loss"] == h.history["loss"]
    assert h2.history["accuracy"] == h.history["accuracy"]
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        assert np.array_equal(a, b)


def test_trainer_mid_epoch_save_checkpoint_resumes_exactly(tmp_path):
    ember.manual_seed(0)
    m0 = LitNet()
    tr, va = _loaders()
    t0 = Trainer(max_epochs=3, verbose=0)
    t0.fit(m0, tr, va)

    class SaveAt(ember.train.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.engine.global_step == 8:
                t1.save_checkpoint(tmp_path / "mid.ember")

    ember.manual_seed(0)
    m1 = LitNet()
    tr, va = _loaders()
    t1 = Trainer(max_epochs=2, verbose=0, callbacks=[SaveAt()])
    t1.fit(m1, tr, va)

    ember.manual_seed(3)
    m2 = LitNet()
    tr, va = _loaders()
    t2 = Trainer(max_epochs=3, verbose=0)
    t2.fit(m2, tr, va, ckpt_path=tmp_path / "mid.ember")
    assert t2.history.history["train_loss"] == t0.history.history["train_loss"]
    for a, b in zip(m2.parameters(), m0.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
