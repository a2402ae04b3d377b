"""``RunRecorder``: the callback that keeps what a report draws beyond the epoch logs: the
loss and learning rate of every step, wall time and throughput of every epoch, the validation
predictions of classifiers, in memory and (given a folder) in the run folder's files."""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time

import numpy as np

from ember.train.callbacks import Callback

from .runs import Run

__all__ = ["RunRecorder", "atomic_write"]


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a whole file or nothing: a reader never sees a half-written one.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
        >>> atomic_write(p, "hi"); open(p).read()
        'hi'
    """
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class RunRecorder(Callback):
    """Record per-step loss and learning rate, per-epoch time and samples/s, the epoch logs
    and (when the task exposes ``last_outputs``) the validation predictions.

    With ``directory``, appends ``steps.csv`` and ``timing.csv`` there and rewrites
    ``val_predictions.npz`` each epoch (``append=False`` starts the files afresh).

    Example:
        >>> from ember.report import RunRecorder
        >>> rec = RunRecorder()
        >>> rec.on_epoch_end(0, {"loss": 0.5}); rec.run.epochs
        {'loss': [0.5]}
    """

    rank_zero_only = True

    def __init__(self, directory: str | None = None, append: bool = False, name: str = "run"):
        super().__init__()
        self.directory = os.fspath(directory) if directory is not None else None
        self.append = append
        self.run = Run(name=name, path=self.directory)
        self._fitting = False
        self._t0 = 0.0
        self._seen = 0.0
        self._prev = (0.0, 0.0)
        self._val: list[tuple[np.ndarray, np.ndarray]] = []
        self._steps: list[list] = []
        self._t1 = 0.0

    # -- files ----------------------------------------------------------------------------
    def _append_rows(self, name: str, header: list[str], rows: list[list]) -> None:
        if self.directory is None:
            return
        path = os.path.join(self.directory, name)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(header)
            w.writerows([["" if _nan(v) else v for v in r] for r in rows])

    def on_train_begin(self, logs=None):
        self._fitting = True
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
            if not self.append:
                for name in ("steps.csv", "timing.csv", "val_predictions.npz"):
                    p = os.path.join(self.directory, name)
                    if os.path.exists(p):
                        os.remove(p)

    def on_train_end(self, logs=None):
        self._fitting = False

    def _lr(self) -> float:
        eng = self.engine
        try:
            return float(eng.get_lr()) if eng is not None and eng.optimizers else math.nan
        except (RuntimeError, KeyError, IndexError):
            return math.nan

    def _sums(self) -> tuple[float, float] | None:
        task = getattr(self.engine, "task", None)
        s = getattr(task, "_sums", None)
        if isinstance(s, dict) and "loss" in s:
            return float(s["loss"][0]), float(s["loss"][1])
        return None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._t1 = 0.0  # when training and validation of the epoch ended
        self._epoch_lr = self._lr()
        self._seen = 0.0
        self._prev = (0.0, 0.0)
        self._steps: list[list] = []

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        sums = self._sums()
        if sums is not None and sums[1] > self._prev[1]:
            # the task logs running means: the step's own loss is the change of the sums
            loss = (sums[0] - self._prev[0]) / (sums[1] - self._prev[1])
            self._seen = sums[1]
            self._prev = sums
        else:
            loss = float(logs.get("loss", math.nan))
        eng = self.engine
        step = int(getattr(eng, "global_step", len(self.run.step) + 1))
        epoch = int(getattr(eng, "epoch", 0))
        lr = self._lr()
        r = self.run
        r.step.append(step)
        for k, v in (("epoch", epoch), ("loss", loss), ("lr", lr)):
            r.steps.setdefault(k, []).append(v)
        self._steps.append([step, epoch, _round(loss), _round(lr)])
        self._t1 = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._val = []

    def on_test_end(self, logs=None):
        if self._fitting:
            self._t1 = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        out = getattr(getattr(self.engine, "task", None), "last_outputs", None)
        if self._fitting and out is not None:
            self._val.append(out)

    def on_epoch_end(self, epoch, logs=None):
        # the epoch's own time: the callbacks before this one (snapshots...) not counted
        end = self._t1 or time.perf_counter()
        secs = end - self._t0 if self._t0 else math.nan
        r = self.run
        r.epoch.append(int(epoch))
        n = len(r.epoch)
        for k, v in (logs or {}).items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                continue
            col = r.epochs.setdefault(k, [math.nan] * (n - 1))
            col.append(v)
        for col in r.epochs.values():  # a metric missing this epoch
            col.extend([math.nan] * (n - len(col)))
        seen = self._seen or math.nan
        lr = getattr(self, "_epoch_lr", math.nan)
        row = [int(epoch), secs, seen, seen / secs if secs else math.nan, lr]
        for k, v in zip(("epoch", "seconds", "samples", "samples_per_s", "lr"), row):
            r.timing.setdefault(k, []).append(v)
        self._append_rows("steps.csv", ["step", "epoch", "loss", "lr"], self._steps)
        self._steps = []
        self._append_rows(
            "timing.csv",
            ["epoch", "seconds", "samples", "samples_per_s", "lr"],
            [[row[0], *(_round(v) for v in row[1:])]],
        )
        if self._val:
            target = np.concatenate([np.ravel(t) for _, t in self._val]).astype(np.int32)
            pred = np.concatenate([np.ravel(p) for p, _ in self._val]).astype(np.int32)
            keep = target >= 0  # ignore_index positions (-100) are not samples
            target, pred = target[keep], pred[keep]
            r.target, r.pred = target, pred
            if self.directory is not None:
                import io

                buf = io.BytesIO()
                np.savez_compressed(buf, target=target, pred=pred)
                atomic_write(os.path.join(self.directory, "val_predictions.npz"), buf.getvalue())
            self._val = []


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _round(v: float) -> float:
    return v if _nan(v) else float(f"{v:.6g}")
