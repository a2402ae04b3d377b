"""ember.train: the training engine behind ``keras.Model.fit`` and ``Trainer``.

- :class:`Engine` / :class:`Task` — the loop (epochs, steps, validation, callbacks, gradient
  accumulation and clipping, LR schedules, progress, history) and what a step computes;
- callbacks (Keras names): :class:`EarlyStopping`, :class:`ModelCheckpoint`,
  :class:`LearningRateScheduler`, :class:`ReduceLROnPlateau`, :class:`CSVLogger`,
  :class:`TensorBoard`, :class:`TerminateOnNaN`, :class:`LambdaCallback`, :class:`History`;
- checkpoints that resume exactly: :func:`save_checkpoint`, :func:`load_checkpoint`;
- :class:`Trainer` for ``nn.Module`` subclasses that define ``training_step``.
"""

from .callbacks import (
    BackupAndRestore,
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)
from .checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from .engine import ArrayLoader, Engine, Task, clip_gradients
from .history import History
from .progress import ProgressBar
from .trainer import Trainer

__all__ = [
    "ArrayLoader",
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "Engine",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Task",
    "TensorBoard",
    "TerminateOnNaN",
    "Trainer",
    "clip_gradients",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
]
