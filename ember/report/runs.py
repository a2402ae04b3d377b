"""A training run as the report sees it, read from a run folder without ever raising on
damaged files: what cannot be read is listed in ``Run.problems`` and left out.

A run folder (``ember train`` writes one; ``RunRecorder`` writes the same files from any
``fit``) holds any of:

- ``log.csv``: one row per epoch (``CSVLogger``), train and ``val_`` metrics;
- ``steps.csv``: ``step,epoch,loss,lr`` per optimizer step;
- ``timing.csv``: ``epoch,seconds,samples,samples_per_s,lr`` per epoch;
- ``config.json``: the resolved config; ``results.json``: the final (test) metrics;
- ``val_predictions.npz``: ``target`` and ``pred`` class indices on the validation set.

Example:
    >>> import tempfile, os
    >>> from ember.report import load_run
    >>> d = tempfile.mkdtemp()
    >>> _ = open(os.path.join(d, "log.csv"), "w").write("epoch,loss\\n0,1.5\\n1,0.5\\n")
    >>> load_run(d).epochs["loss"]
    [1.5, 0.5]
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LOG_FILES", "Run", "RunError", "load_run"]

LOG_FILES = ("log.csv", "steps.csv", "timing.csv")


class RunError(ValueError):
    """A path that is not a run folder at all (missing, a file, no logs in it)."""


@dataclass
class Run:
    """Curves and facts of one run. Lists are aligned with ``epoch`` / ``step``."""

    name: str
    path: str | None = None
    epoch: list[int] = field(default_factory=list)
    epochs: dict[str, list[float]] = field(default_factory=dict)  # metric -> per epoch
    step: list[int] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)  # loss, lr, epoch per step
    timing: dict[str, list[float]] = field(default_factory=dict)  # epoch, seconds, ...
    config: dict = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)
    target: np.ndarray | None = None  # validation labels and predictions (classifiers)
    pred: np.ndarray | None = None
    class_names: list[str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.epoch or self.step or self.timing.get("epoch"))


def _num(s: str) -> float:
    s = s.strip()
    if s in ("", "NA", "nan", "None"):
        return math.nan
    return float(s)


def read_table(path: str, problems: list[str]) -> tuple[list[str], list[list[float]]]:
    """Header and numeric rows of a CSV file; unreadable rows are skipped and counted."""
    name = os.path.basename(path)
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        problems.append(f"{name}: cannot read ({e.strerror})")
        return [], []
    if not rows or not rows[0]:
        problems.append(f"{name}: empty file")
        return [], []
    header = [h.strip() for h in rows[0]]
    good, bad = [], 0
    for r in rows[1:]:
        if not r:
            continue
        try:
            vals = [_num(v) for v in r]
        except ValueError:
            bad += 1
            continue
        if len(vals) != len(header):
            bad += 1
            continue
        good.append(vals)
    if bad:
        problems.append(
            f"{name}: skipped {bad} unreadable row{'s' * (bad > 1)} (not {len(header)} numbers)"
        )
    if not any(header) or (len(header) == 1 and not good):
        problems.append(f"{name}: no header row of column names")
        return [], []
    if not good:
        problems.append(f"{name}: no rows yet")
    return header, good


def _columns(header, rows) -> dict[str, list[float]]:
    return {h: [r[i] for r in rows] for i, h in enumerate(header)}


def _note_unnumbered(name: str, what: str, column: list[float], problems: list[str]) -> None:
    bad = sum(not math.isfinite(v) for v in column)
    if bad:
        problems.append(f"{name}: skipped {bad} row{'s' * (bad > 1)} without {what} number")


def _read_json(path: str, problems: list[str]) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{os.path.basename(path)}: not readable JSON ({e})")
        return {}
    if not isinstance(obj, dict):
        problems.append(f"{os.path.basename(path)}: expected a JSON object")
        return {}
    return obj


def load_run(path: str, name: str | None = None) -> Run:
    """Read a run folder. Raises :class:`RunError` only when ``path`` is not a folder;
    a folder without logs gives an empty run whose ``problems`` say so.

    Example:
        >>> from ember.report import load_run
        >>> load_run("/nonexistent")
        Traceback (most recent call last):
        ...
        ember.report.runs.RunError: /nonexistent: no such run folder
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RunError(f"{path}: no such run folder")
    if not os.path.isdir(path):
        raise RunError(f"{path}: is a file; give the run folder (the one holding log.csv)")
    run = Run(name=name or os.path.basename(os.path.normpath(path)) or path, path=path)
    p = run.problems
    f = os.path.join(path, "log.csv")
    if os.path.exists(f):
        header, rows = read_table(f, p)
        cols = _columns(header, rows)
        if header and "epoch" not in cols:
            p.append("log.csv: no 'epoch' column")
        elif header:
            _note_unnumbered("log.csv", "an epoch", cols["epoch"], p)
            # a resumed run appends: the last row of an epoch wins
            last = {int(e): i for i, e in enumerate(cols["epoch"]) if math.isfinite(e)}
            order = sorted(last)
            run.epoch = order
            run.epochs = {k: [v[last[e]] for e in order] for k, v in cols.items() if k != "epoch"}
    f = os.path.join(path, "steps.csv")
    if os.path.exists(f):
        header, rows = read_table(f, p)
        cols = _columns(header, rows)
        if header and "step" not in cols:
            p.append("steps.csv: no 'step' column")
        elif header:
            steps = cols.pop("step")
            _note_unnumbered("steps.csv", "a step", steps, p)
            keep = [i for i, s in enumerate(steps) if math.isfinite(s)]
            run.step = [int(steps[i]) for i in keep]
            run.steps = {k: [v[i] for i in keep] for k, v in cols.items()}
    f = os.path.join(path, "timing.csv")
    if os.path.exists(f):
        header, rows = read_table(f, p)
        cols = _columns(header, rows)
        if header and "epoch" in cols:
            run.timing = cols
        elif header:
            p.append("timing.csv: no 'epoch' column")
    f = os.path.join(path, "config.json")
    if os.path.exists(f):
        run.config = _read_json(f, p)
    f = os.path.join(path, "results.json")
    if os.path.exists(f):
        res = _read_json(f, p)
        run.results = {k: v for k, v in res.items() if isinstance(v, (int, float))}
    f = os.path.join(path, "val_predictions.npz")
    if os.path.exists(f):
        _load_predictions(run, f)
    if run.empty:
        p.insert(0, f"no training logs ({', '.join(LOG_FILES)}) in {path}")
    return run


def _load_predictions(run: Run, f: str) -> None:
    try:
        with np.load(f, allow_pickle=False) as z:
            target, pred = np.asarray(z["target"]), np.asarray(z["pred"])
            names = [str(s) for s in z["class_names"]] if "class_names" in z.files else None
    except (OSError, ValueError, KeyError) as e:
        run.problems.append(f"val_predictions.npz: not readable ({e})")
        return
    if target.shape != pred.shape or target.dtype.kind not in "iub" or pred.dtype.kind not in "iub":
        run.problems.append(
            "val_predictions.npz: 'target' and 'pred' must be integer arrays of one shape"
        )
        return
    run.target, run.pred, run.class_names = target.ravel(), pred.ravel(), names


def from_history(name: str, history: dict[str, list[Any]]) -> Run:
    """A run from a Keras-style ``History.history`` dict (one list per metric)."""
    n = max((len(v) for v in history.values()), default=0)
    return Run(
        name=name,
        epoch=list(range(n)),
        epochs={k: [float(x) for x in v] for k, v in history.items() if len(v) == n},
    )
