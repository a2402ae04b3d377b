"""``keras.callbacks``: the :mod:`ember.train` callbacks under their Keras names, with Keras 3
constructor signatures where those differ from ``ember.train``'s. Keras arguments without an
ember counterpart raise ``NotImplementedError`` when given a non-default value.

Example:
    >>> from ember.keras import callbacks
    >>> cb = callbacks.EarlyStopping(monitor="loss", patience=2)
    >>> cb.patience
    2
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ember.report import PlotCallback
from ember.train import callbacks as _cb
from ember.train.callbacks import (
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ReduceLROnPlateau,
)
from ember.train.history import History
from ember.train.progress import ProgressBar as _ProgressBar

from .layers.base import check_supported

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "PlotCallback",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]


class ModelCheckpoint(_cb.ModelCheckpoint):
    """Save the model at the end of every epoch, or with ``save_freq=N`` every N batches as
    Keras (``{epoch}`` and ``{batch}``, 1-based, and the batch logs in the file name).
    ``save_weights_only=False`` writes a full checkpoint that ``keras.models.load_model`` and
    ``fit(resume_from=...)`` open (one written inside an epoch resumes from that batch).

    Example:
        >>> from ember.keras import callbacks
        >>> cb = callbacks.ModelCheckpoint("ckpt-{epoch}-{batch}.ember", save_freq=5)
        >>> cb.save_freq
        5
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        if save_freq != "epoch" and (
            isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1
        ):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are 'epoch' or "
                "positive integer values"
            )
        # Keras counts batches here where ember.train counts epochs
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen: int | None = None
        self._current_epoch = 0
        super().__init__(
            filepath,
            monitor=monitor,
            verbose=verbose,
            save_best_only=save_best_only,
            save_weights_only=save_weights_only,
            mode=mode,
            initial_value_threshold=initial_value_threshold,
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self._should_save_on_batch(batch):
            self._save_batch(self._current_epoch, batch, logs or {})

    def _should_save_on_batch(self, batch) -> bool:
        """Keras' count of the batches since the last save."""
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add = batch + 1  # a new epoch
        else:
            add = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _save_batch(self, epoch, batch, logs) -> None:
        fields = dict(logs) if "batch" in logs else {**logs, "batch": batch + 1}
        try:
            path = self.filepath.format(epoch=epoch + 1, **fields)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}'
            ) from None
        if self.save_best_only:
            cur = logs.get(self.monitor)
            if cur is None:
                warnings.warn(
                    f"Can save best model only with {self.monitor} available.", stacklevel=2
                )
            else:
                cur = float(cur)
                if not ((cur < self.best) if self.mode == "min" else (cur > self.best)):
                    return
                self.best, self.best_path = cur, path
        self._write(path, None)  # (a full checkpoint records the position inside the epoch)
        self.last_path = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved to {path}")


class BackupAndRestore(_cb.BackupAndRestore):
    """A backup at the end of every epoch, deleted when training ends normally."""

    def __init__(
        self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True
    ):
        check_supported(
            "BackupAndRestore",
            save_freq=(save_freq, "epoch"),
            double_checkpoint=(bool(double_checkpoint), False),
            delete_checkpoint=(bool(delete_checkpoint), True),
        )
        super().__init__(backup_dir)
        self.save_freq, self.double_checkpoint = save_freq, double_checkpoint
        self.delete_checkpoint = delete_checkpoint


class TensorBoard(_cb.TensorBoard):
    """Scalars (losses, metrics, learning rate) for TensorBoard. ``histogram_freq=N`` adds a
    histogram of every layer weight every N epochs (from the first; tag
    ``train/<layer>/<weight>/histogram``, step the epoch), ``write_steps_per_second`` the
    optimizer steps per second of each epoch (``train/steps_per_second``, Keras'
    ``epoch_steps_per_second``) and, with an int ``update_freq``, of each logged batch
    (``train/batch_steps_per_second``). ``write_graph`` is accepted for compatibility; no
    graph is written (see docs/api-differences.md).

    Example:
        >>> from ember.keras import callbacks
        >>> cb = callbacks.TensorBoard("logs", histogram_freq=1, write_steps_per_second=True)
        >>> cb.histogram_freq, cb.write_steps_per_second
        (1, True)
    """

    def __init__(
        self,
        log_dir="logs",
        histogram_freq=0,
        write_graph=True,
        write_images=False,
        write_steps_per_second=False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq=0,
        embeddings_metadata=None,
    ):
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, int):
            raise TypeError(f"TensorBoard: histogram_freq must be an int, got {histogram_freq!r}")
        if histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be >= 0, got {histogram_freq}")
        check_supported(
            "TensorBoard",
            write_images=(bool(write_images), False),
            profile_batch=(profile_batch, 0),
            embeddings_freq=(embeddings_freq, 0),
            embeddings_metadata=(embeddings_metadata, None),
        )
        super().__init__(log_dir, update_freq=update_freq)
        self.histogram_freq, self.write_graph = histogram_freq, write_graph
        self.write_steps_per_second = bool(write_steps_per_second)
        self._epoch_start_time = self._batch_start_time = 0.0
        self._epoch_start_iterations = 0

    def _iterations(self) -> int:
        opt = getattr(self.model, "optimizer", None)
        it = getattr(opt, "iterations", None)
        if isinstance(it, int):
            return it
        return self.engine.global_step if self.engine is not None else 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start_iterations = self._iterations()
            self._epoch_start_time = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.write_steps_per_second and isinstance(self.update_freq, int):
            logs = {**(logs or {}), "steps_per_second": 1.0 / _elapsed(self._batch_start_time)}
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.write_steps_per_second:
            steps = self._iterations() - self._epoch_start_iterations
            rate = steps / _elapsed(self._epoch_start_time)
            self._writer.add_scalar("train/steps_per_second", rate, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        super().on_epoch_end(epoch, logs)

    def _log_weights(self, epoch) -> None:
        """A histogram of each weight of each layer (Keras' ``_log_weights``)."""
        for layer in getattr(self.model, "layers", []):
            names = {id(t): n for n, t in layer.named_parameters()}
            names.update({id(t): n for n, t in layer.named_buffers()})
            for i, w in enumerate(layer.weights):
                name = names.get(id(w), str(i))
                values = w.detach().numpy().ravel()
                if values.size and np.isfinite(values).all():
                    tag = f"train/{layer.name}/{name}/histogram"
                    self._writer.add_histogram(tag, values, epoch)


def _elapsed(start: float) -> float:
    return max(time.time() - start, 1e-9)


class TerminateOnNaN(_cb.TerminateOnNaN):
    """Stop training when the batch loss is NaN or infinite; ``raise_error=True`` raises
    ``RuntimeError`` instead."""

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.raise_error and loss is not None and not _finite(loss):
            raise RuntimeError(f"Batch {batch}: invalid loss {loss}, training terminated")
        super().on_train_batch_end(batch, logs)


def _finite(v) -> bool:
    import math

    return math.isfinite(float(v))


class LambdaCallback(_cb.LambdaCallback):
    """A callback from plain functions (``on_epoch_end=lambda epoch, logs: ...``)."""

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        super().__init__(**{k: v for k, v in hooks.items() if v is not None})


class ProgbarLogger(_ProgressBar):
    """The progress bar ``fit(verbose=1)`` shows."""

    def __init__(self):
        super().__init__()
