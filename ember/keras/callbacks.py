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
    """Save the model at the end of every epoch (``save_weights_only=False`` writes a full
    checkpoint that ``keras.models.load_model`` and ``fit(resume_from=...)`` open)."""

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
        if save_freq != "epoch":
            # Keras counts batches here where ember.train counts epochs
            raise NotImplementedError(
                f"ModelCheckpoint: save_freq={save_freq!r} is not supported (only 'epoch'); "
                "ember.train.callbacks.ModelCheckpoint(every_n_train_steps=N) saves inside "
                "epochs"
            )
        super().__init__(
            filepath,
            monitor=monitor,
            verbose=verbose,
            save_best_only=save_best_only,
            save_weights_only=save_weights_only,
            mode=mode,
            initial_value_threshold=initial_value_threshold,
        )


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
    """Scalars (losses, metrics, learning rate) for TensorBoard. ``write_graph`` is accepted
    for compatibility; no graph is written (see docs/api-differences.md)."""

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
        check_supported(
            "TensorBoard",
            histogram_freq=(histogram_freq, 0),
            write_images=(bool(write_images), False),
            write_steps_per_second=(bool(write_steps_per_second), False),
            profile_batch=(profile_batch, 0),
            embeddings_freq=(embeddings_freq, 0),
            embeddings_metadata=(embeddings_metadata, None),
        )
        super().__init__(log_dir, update_freq=update_freq)
        self.histogram_freq, self.write_graph = histogram_freq, write_graph


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
