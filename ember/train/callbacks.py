"""Callbacks: objects the training engine calls at every stage of ``fit``/``evaluate``/``predict``.

The hooks and their names follow Keras (``on_train_begin``, ``on_epoch_end(epoch, logs)``,
``on_train_batch_end(batch, logs)``, ...). A callback sees the model (``self.model``) and the
engine running it (``self.engine``: optimizers, schedulers, ``stop_training``, ``epoch``,
``global_step``, ``get_lr``/``set_lr``).

Example:
    >>> from ember.train import LambdaCallback
    >>> seen = []
    >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    >>> cb.on_epoch_end(0, {}); seen
    [0]
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]

_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override the hooks you need. ``logs`` is a dict of floats."""

    # True for callbacks whose effects are files or output: in a data-parallel fit only
    # rank 0 runs them (see ember.train.distributed)
    rank_zero_only = False

    def __init__(self):
        self.model = None
        self.engine = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_engine(self, engine) -> None:
        self.engine = engine

    def set_params(self, params: dict) -> None:
        self.params = params

    # state carried in full checkpoints so that a resumed run behaves like the straight one
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    # Keras 2 names
    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def _stop(self) -> None:
        if self.engine is not None:
            self.engine.stop_training = True
        if self.model is not None:
            with contextlib.suppress(AttributeError, TypeError):  # a model that refuses attributes
                self.model.stop_training = True


class CallbackList:
    """Fans each hook out to a list of callbacks, in order."""

    def __init__(self, callbacks=(), model=None, engine=None, params=None):
        self.callbacks = list(callbacks or ())
        for cb in self.callbacks:
            if model is not None:
                cb.set_model(model)
            if engine is not None:
                cb.set_engine(engine)
            cb.set_params(dict(params or {}))

    def __iter__(self):
        return iter(self.callbacks)

    def append(self, cb: Callback) -> None:
        self.callbacks.append(cb)

    def __getattr__(self, name):
        if name not in _HOOKS:
            raise AttributeError(name)

        def call(*args):
            for cb in self.callbacks:
                getattr(cb, name)(*args)
                if name == "on_train_batch_begin":
                    cb.on_batch_begin(*args)
                elif name == "on_train_batch_end":
                    cb.on_batch_end(*args)

        return call


def _mode_op(mode: str, monitor: str):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = (
            "max"
            if (
                "acc" in monitor
                or monitor.endswith("auc")
                or "precision" in monitor
                or "recall" in monitor
            )
            else "min"
        )
    return mode


def _get_monitor(cb, epoch, logs, who):
    """The monitored value, or None on an epoch whose validation did not run; a monitor that
    is absent otherwise is an error (a misspelled one would silently do nothing)."""
    logs = logs or {}
    if cb.monitor in logs:
        return float(logs[cb.monitor])
    if cb.engine is not None and getattr(cb.engine, "validation_pending", False):
        return None
    import difflib

    close = difflib.get_close_matches(cb.monitor, [str(k) for k in logs], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"{who}: monitor {cb.monitor!r} is not in the logs at the end of epoch {epoch + 1}; "
        f"available keys: {sorted(logs)}{hint}"
    )


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving for ``patience`` epochs.

    Args:
        monitor: the log key to watch (``'val_loss'``).
        min_delta: a change smaller than this is no improvement.
        patience: epochs without improvement before stopping.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (max for accuracy-like names).
        restore_best_weights: at the end, load the weights of the best epoch.
        baseline: a value the monitor must beat.
        start_from_epoch: epochs to wait before watching.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.mode = _mode_op(mode, monitor)
        self.min_delta = abs(float(min_delta))
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_weights = None

    def _better(self, cur, ref):
        if self.mode == "min":
            return cur < ref - self.min_delta
        return cur > ref + self.min_delta

    def on_train_begin(self, logs=None):
        if self.engine is None or not getattr(self.engine, "resumed", False):
            self._reset()

    def on_epoch_end(self, epoch, logs=None):
        cur = _get_monitor(self, epoch, logs, "EarlyStopping")
        if cur is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _snapshot(self.model)
        self.wait += 1
        if self._better(cur, self.best):
            self.best, self.best_epoch = cur, epoch
            if self.restore_best_weights:
                self.best_weights = _snapshot(self.model)
            if self.baseline is None or self._better(cur, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self._stop()

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)

    def state_dict(self):
        return {
            "wait": self.wait,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state):
        self.wait, self.best = int(state["wait"]), float(state["best"])
        self.best_epoch, self.stopped_epoch = int(state["best_epoch"]), int(state["stopped_epoch"])


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class ModelCheckpoint(Callback):
    """Save the model (or a full training checkpoint) at the end of epochs.

    Args:
        filepath: a path, formatted with ``epoch`` (1-based, as Keras) and the logs:
            ``'ckpt-{epoch:02d}-{val_loss:.3f}.ember'``.
        monitor, mode: what "best" means for ``save_best_only``.
        save_best_only: write only when ``monitor`` improves.
        save_weights_only: write the model's weights only; otherwise a full checkpoint
            (model, optimizers, schedulers, RNG states, position) that ``fit`` can resume.
        save_freq: ``'epoch'`` or an int N: every N epochs (``every_n_epochs`` is an alias).
        save_last: also keep ``last.ember`` (or ``save_last`` if a path) up to date.
        every_n_train_steps: also write a full checkpoint every N optimizer steps, inside
            epochs (``{epoch}`` and ``{step}`` in the filepath); resuming from one continues
            from that step exactly.

    Files are written atomically (see :func:`ember.train.save_checkpoint`).
    """

    rank_zero_only = True

    def __init__(
        self,
        filepath,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        every_n_epochs: int | None = None,
        save_last=False,
        initial_value_threshold: float | None = None,
        every_n_train_steps: int | None = None,
    ):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _mode_op(mode, monitor)
        if every_n_epochs is not None:
            save_freq = every_n_epochs
        if save_freq != "epoch" and (not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.every = 1 if save_freq == "epoch" else int(save_freq)
        self.save_last = save_last
        self.every_n_train_steps = every_n_train_steps
        self.best = (
            initial_value_threshold
            if initial_value_threshold is not None
            else (math.inf if self.mode == "min" else -math.inf)
        )
        self.last_path: str | None = None
        self.best_path: str | None = None

    def on_train_batch_end(self, batch, logs=None):
        eng = self.engine
        n = self.every_n_train_steps
        if n and eng is not None and eng.batches_done is not None and eng.global_step % n == 0:
            from .checkpoint import save_checkpoint

            path = self._path(eng.epoch, logs)
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            save_checkpoint(path, eng)
            self.last_path = path

    def _path(self, epoch, logs):
        try:
            step = self.engine.global_step if self.engine is not None else 0
            return self.filepath.format(epoch=epoch + 1, step=step, **(logs or {}))
        except KeyError as e:
            raise KeyError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {e} which is "
                f"not in the logs {sorted(logs or {})}"
            ) from None

    def _write(self, path, epoch):
        """Save to ``path`` at the end of ``epoch`` (None: inside an epoch, the checkpoint
        records the position)."""
        from .checkpoint import save_checkpoint, save_weights

        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        if self.save_weights_only or self.engine is None:
            save_weights(self.model, path)
        else:
            save_checkpoint(path, self.engine, epoch=None if epoch is None else epoch + 1)
        if self.verbose and epoch is not None:
            print(f"Epoch {epoch + 1}: saved to {path}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if (epoch + 1) % self.every == 0:
            if self.save_best_only:
                cur = _get_monitor(self, epoch, logs, "ModelCheckpoint")
                if cur is not None and (
                    (cur < self.best) if self.mode == "min" else (cur > self.best)
                ):
                    self.best = cur
                    self.best_path = self._path(epoch, logs)
                    self._write(self.best_path, epoch)
            else:
                self.last_path = self._path(epoch, logs)
                self._write(self.last_path, epoch)
        if self.save_last:
            last = (
                self.save_last
                if isinstance(self.save_last, (str, os.PathLike))
                else os.path.join(os.path.dirname(self.filepath) or ".", "last.ember")
            )
            self._write(os.fspath(last), epoch)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch: ``lr = schedule(epoch, lr)``
    (or ``schedule(epoch)``)."""

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.engine.get_lr()
        try:
            new = self.schedule(epoch, lr)
        except TypeError:
            new = self.schedule(epoch)
        new = float(new)
        if not math.isfinite(new):
            raise ValueError(f"LearningRateScheduler: schedule returned {new} at epoch {epoch}")
        self.engine.set_lr(new)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.engine.get_lr()


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving for
    ``patience`` epochs (Keras semantics; ``ember.optim.lr_scheduler.ReduceLROnPlateau`` is
    the scheduler form)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        super().__init__()
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau: factor must be < 1.0")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.mode = verbose, _mode_op(mode, monitor)
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), min_lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        cur = _get_monitor(self, epoch, logs, "ReduceLROnPlateau")
        if cur is None:
            return
        if logs is not None:
            logs["learning_rate"] = self.engine.get_lr()
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = (
            (cur < self.best - self.min_delta)
            if self.mode == "min"
            else (cur > self.best + self.min_delta)
        )
        if better:
            self.best, self.wait = cur, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.engine.get_lr()
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.engine.set_lr(new)
                    if self.verbose:
                        print(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
                        )
                    self.cooldown_counter, self.wait = self.cooldown, 0

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state):
        self.best, self.wait = float(state["best"]), int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])


class CSVLogger(Callback):
    """Append one row per epoch (``epoch`` then the sorted log keys) to a CSV file."""

    rank_zero_only = True

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None
        self._file = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename)
        if exists:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.sep), None)
            self.keys = header[1:] if header else None
        else:
            self.keys = None
        self._file = open(self.filename, "a" if exists else "w", newline="")  # noqa: SIM115

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        w = csv.writer(self._file, delimiter=self.sep)
        if self.keys is None:
            self.keys = sorted(logs)
            w.writerow(["epoch"] + self.keys)
        w.writerow([epoch] + [_fmt(logs.get(k, "NA")) for k in self.keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v


class TensorBoard(Callback):
    """Write epoch (and optionally batch) logs as TensorBoard scalars through
    ``ember.summary.SummaryWriter``: training values under ``train/``, ``val_*`` under
    ``validation/``."""

    rank_zero_only = True

    def __init__(self, log_dir="logs", update_freq="epoch", write_lr: bool = True):
        super().__init__()
        self.log_dir, self.update_freq, self.write_lr = os.fspath(log_dir), update_freq, write_lr
        self._writer = None

    def on_train_begin(self, logs=None):
        from ember.summary import SummaryWriter

        self._writer = SummaryWriter(self.log_dir)

    def _scalars(self, logs, step):
        for k, v in (logs or {}).items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            tag = f"validation/{k[4:]}" if k.startswith("val_") else f"train/{k}"
            self._writer.add_scalar(tag, v, step)

    def on_train_batch_end(self, batch, logs=None):
        if (
            isinstance(self.update_freq, int)
            and self.engine is not None
            and self.engine.global_step % self.update_freq == 0
        ):
            self._scalars(
                {f"batch_{k}": v for k, v in (logs or {}).items()}, self.engine.global_step
            )

    def on_epoch_end(self, epoch, logs=None):
        self._scalars(logs, epoch)
        if self.write_lr and self.engine is not None and self.engine.optimizers:
            self._writer.add_scalar("train/learning_rate", self.engine.get_lr(), epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TerminateOnNaN(Callback):
    """Stop training as soon as the batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: invalid loss, terminating training")
            self._stop()


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``.
    Keras' ``on_batch_begin``/``on_batch_end`` names map to the train batch hooks."""

    def __init__(self, **hooks: Any):
        super().__init__()
        alias = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}
        for name, fn in hooks.items():
            name = alias.get(name, name)
            if name not in _HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; hooks: {_HOOKS}")
            setattr(self, name, _adapt(fn, name))


def _adapt(fn, name):
    takes_index = name.startswith("on_epoch") or "batch" in name

    def hook(*args):
        if takes_index:
            idx = args[0]
            logs = args[1] if len(args) > 1 else None
            return fn(idx, logs)
        return fn(args[0] if args else None)

    return hook


class BackupAndRestore(Callback):
    """Keep a full checkpoint in ``backup_dir`` at the end of every epoch; ``fit`` given the
    same callback after an interruption resumes from it."""

    rank_zero_only = True

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.path = os.path.join(self.backup_dir, "backup.ember")

    def on_epoch_end(self, epoch, logs=None):
        from .checkpoint import save_checkpoint

        os.makedirs(self.backup_dir, exist_ok=True)
        save_checkpoint(self.path, self.engine, epoch=epoch + 1)

    def on_train_end(self, logs=None):
        if self.engine is not None and not self.engine.stop_training_by_error:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)


def __getattr__(name: str):
    # the report callbacks live in ember.report, which imports this module
    if name in ("PlotCallback", "RunRecorder"):
        from ember import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
