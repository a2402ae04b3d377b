"""Classification metrics: accuracy family, precision/recall/F-score, ROC AUC,
average precision and the confusion matrix.

Input conventions (``preds``, ``target``):

- **binary**: ``preds`` and ``target`` have the same shape; ``preds`` are
  probabilities (thresholded at ``threshold``), logits (any value outside [0, 1]
  makes the whole batch go through a sigmoid first) or 0/1 labels; ``target`` is 0/1.
  Every element counts, so a (N, L) multi-label batch is handled element-wise.
- **multiclass**: ``preds`` are scores of shape (N, C) (logits or probabilities; the
  class axis is axis 1, PyTorch-style, for inputs with extra dimensions (N, C, ...))
  with integer ``target`` of shape (N,) / (N, ...), or integer labels of the same
  shape as ``target``.
- ``task=None`` infers: scores with one more dimension than ``target`` (or a
  Keras-style (N, 1) label column) -> multiclass; same shape -> binary when every
  value is in {0, 1} or ``preds`` are non-integral floats, else multiclass labels.
  ``Accuracy`` also treats same-shaped (..., C) scores with a one-hot ``target`` as
  Keras ``categorical_accuracy`` (pass ``task='multilabel'`` for element-wise).
- Precision/Recall/F-score without ``average``: 'binary' for thresholded scores (or
  0/1 labels with at most two classes seen), 'macro' for multiclass.

The Keras-style classes ``CategoricalAccuracy``, ``SparseCategoricalAccuracy`` and
``TopKAccuracy`` take the class axis **last** (Keras convention).

Where a ratio is 0/0 (a class never predicted, never present) the result is 0,
like scikit-learn's default ``zero_division``, and no warning is emitted.
"""

from __future__ import annotations

import numpy as np

from ..ops._core import ShapeError
from ._base import Metric, safe_div, to_numpy

__all__ = [
    "AUROC",
    "Accuracy",
    "AveragePrecision",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "ConfusionMatrix",
    "F1Score",
    "FBetaScore",
    "Precision",
    "Recall",
    "SparseCategoricalAccuracy",
    "TopKAccuracy",
]

_TASKS = (None, "binary", "multiclass", "multilabel")


# ------------------------------------------------------------------------------------------
# input formatting
# ------------------------------------------------------------------------------------------
def _arrays(preds, target, name):
    if target is None:
        raise TypeError(f"{name}: update(preds, target) needs a target")
    p, t = to_numpy(preds), to_numpy(target)
    if p.dtype.kind not in "biuf" or t.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected numeric preds/target, got dtypes {p.dtype} and {t.dtype}"
        )
    if p.ndim == 0 or t.ndim == 0:
        p, t = p.reshape(-1), t.reshape(-1)
    if p.ndim == 2 and t.shape == (p.shape[0], 1) and p.shape[1] > 1:
        t = t[:, 0]  # Keras-style (N, 1) integer labels against (N, C) scores
    return p, t


def _shape_error(name, p, t, expected):
    return ShapeError(
        f"{name}: preds of shape {tuple(p.shape)} and target of shape "
        f"{tuple(t.shape)} do not match; expected {expected}"
    )


def _same_shape(name, p, t, expected="preds and target of the same shape"):
    if p.shape == t.shape:
        return p, t
    # (N, 1) against (N,) is accepted
    if p.size == t.size and p.squeeze().shape == t.squeeze().shape and p.size > 0:
        return p.reshape(t.shape), t
    raise _shape_error(name, p, t, expected)


def _is_01(a):
    return a.size == 0 or bool(np.all((a == 0) | (a == 1)))


def _as_labels(a, name, what):
    if a.dtype.kind == "f" and (not np.all(np.isfinite(a)) or not np.all(a == np.round(a))):
        raise ValueError(f"{name}: {what} must hold integer class labels, got non-integral floats")
    return a.astype(np.int64, copy=False)


def _infer_task(p, t, task, name):
    if task not in _TASKS:
        raise ValueError(
            f"{name}: task must be one of 'binary', 'multiclass', 'multilabel', got {task!r}"
        )
    if task is not None:
        return task
    if p.ndim == t.ndim + 1:
        return "multiclass"
    if p.shape == t.shape or p.size == t.size:
        if _is_01(t) and ((p.dtype.kind == "f" and not _is_integral(p)) or _is_01(p)):
            return "binary"
        return "multiclass"
    raise _shape_error(
        name, p, t, "scores (N, C) with labels (N,), or preds and target of the same shape"
    )


def _is_integral(a):
    return a.size == 0 or bool(np.all(a == np.round(a)))


def _binary_preds(p, threshold):
    if p.dtype.kind == "b":
        return p.astype(np.int64)
    if p.dtype.kind == "f":
        if p.size and (p.min() < 0 or p.max() > 1):
            p = 1.0 / (1.0 + np.exp(-p))
        return (p > threshold).astype(np.int64)
    if not _is_01(p):
        raise ValueError("binary preds given as integers must be 0 or 1")
    return p.astype(np.int64)


def _binary_target(t, name):
    if not _is_01(t):
        raise ValueError(
            f"{name}: binary target must hold only 0 and 1, got values {np.unique(t)[:10].tolist()}"
        )
    return t.astype(np.int64)


def _class_axis_last(p, axis=1):
    """(N, C, d1, ...) -> (N * d1 * ..., C)."""
    if p.ndim > 2 and axis != -1:
        p = np.moveaxis(p, axis, -1)
    return p.reshape(-1, p.shape[-1])


def _check_range(labels, num_classes, name, what):
    if labels.size and (
        labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)
    ):
        hi = np.inf if num_classes is None else num_classes
        first = labels.reshape(-1)[(labels.reshape(-1) < 0) | (labels.reshape(-1) >= hi)][0]
        raise ValueError(
            f"{name}: {what} label {first} is out of range for {num_classes} classes "
            f"({what} labels must lie in [0, {num_classes}), got "
            f"min {labels.min()} max {labels.max()})"
        )


def _labels(preds, target, task, num_classes, threshold, name):
    """Return (pred_labels, target_labels, n_classes_seen) flattened, validated."""
    p, t = _arrays(preds, target, name)
    task = _infer_task(p, t, task, name)
    if task in ("binary", "multilabel"):
        p, t = _same_shape(name, p, t)
        return _binary_preds(p, threshold).ravel(), _binary_target(t, name).ravel(), 2
    if p.ndim == t.ndim + 1:
        if p.shape[:1] + p.shape[2:] != t.shape:
            raise _shape_error(name, p, t, "scores (N, C, ...) with target (N, ...)")
        c = p.shape[1]
        if num_classes is not None and c != num_classes:
            raise ShapeError(
                f"{name}: preds have {c} classes along axis 1 but num_classes={num_classes}"
            )
        pl = np.argmax(_class_axis_last(p), axis=-1)
        tl = _as_labels(t, name, "target").ravel()
        _check_range(tl, c, name, "target")
        return pl, tl, c
    p, t = _same_shape(
        name, p, t, "scores (N, C) with labels (N,), or labels of the same shape as target"
    )
    pl = _as_labels(p, name, "preds").ravel()
    tl = _as_labels(t, name, "target").ravel()
    _check_range(pl, num_classes, name, "preds")
    _check_range(tl, num_classes, name, "target")
    seen = int(max(pl.max(initial=-1), tl.max(initial=-1))) + 1
    return pl, tl, num_classes if num_classes is not None else seen


def _confusion(pl, tl, c):
    return np.bincount(tl * c + pl, minlength=c * c).reshape(c, c).astype(np.int64)


def _pad_cm(cm, c):
    if cm.shape[0] >= c:
        return cm
    out = np.zeros((c, c), dtype=np.int64)
    out[: cm.shape[0], : cm.shape[1]] = cm
    return out


# ------------------------------------------------------------------------------------------
# accuracy
# ------------------------------------------------------------------------------------------
class _CountMetric(Metric):
    def _empty_state(self):
        return {"correct": 0.0, "total": 0.0}

    def _value(self, state):
        return float(safe_div(state["correct"], state["total"]))


class Accuracy(_CountMetric):
    """Fraction of correct predictions.

    Args:
        task: 'binary', 'multiclass', 'multilabel' or None (inferred, see module doc).
        threshold: binary/multilabel decision threshold on probabilities.
        num_classes: optional, checks the score width / label range.
        top_k: multiclass from scores: correct when the target is among the k best.
    """

    name = "accuracy"

    def __init__(
        self, task=None, threshold=0.5, num_classes=None, top_k=1, num_labels=None, name=None
    ):
        if task not in _TASKS:
            raise ValueError(f"Accuracy: unknown task {task!r}")
        if int(top_k) < 1:
            raise ValueError(f"Accuracy: top_k must be >= 1, got {top_k}")
        self.task, self.threshold, self.num_classes = task, float(threshold), num_classes
        self.top_k, self.num_labels = int(top_k), num_labels
        super().__init__(name)

    def _batch_state(self, preds, target):
        nm = type(self).__name__
        p, t = _arrays(preds, target, nm)
        if self.task is None and _is_one_hot_pair(p, t):  # Keras categorical_accuracy
            ok = np.argmax(p, axis=-1) == np.argmax(t, axis=-1)
            if self.top_k > 1:
                ok = _in_top_k(p.reshape(-1, p.shape[-1]), np.argmax(t, -1).ravel(), self.top_k, nm)
            return {"correct": float(np.count_nonzero(ok)), "total": float(ok.size)}
        task = _infer_task(p, t, self.task, nm)
        if task == "multiclass" and self.top_k > 1:
            if p.ndim != t.ndim + 1:
                raise _shape_error(
                    nm, p, t, "scores (N, C, ...) with target (N, ...) for top_k > 1"
                )
            s = _class_axis_last(p)
            tl = _as_labels(t, nm, "target").ravel()
            if s.shape[0] != tl.shape[0]:
                raise _shape_error(nm, p, t, "scores (N, C, ...) with target (N, ...)")
            correct = _in_top_k(s, tl, self.top_k, nm)
            return {"correct": float(correct.sum()), "total": float(correct.size)}
        pl, tl, _ = _labels(p, t, task, self.num_classes, self.threshold, nm)
        return {"correct": float(np.count_nonzero(pl == tl)), "total": float(pl.size)}


def _is_one_hot_pair(p, t):
    if p.shape != t.shape or p.ndim < 2 or p.shape[-1] < 2 or not _is_01(t):
        return False
    return bool(np.all(t.sum(axis=-1) == 1))


def _in_top_k(scores, labels, k, name):
    c = scores.shape[-1]
    _check_range(labels, c, name, "target")
    tgt = np.take_along_axis(scores, labels[:, None], axis=-1)
    rank = np.count_nonzero(scores > tgt, axis=-1)
    return rank < k


class BinaryAccuracy(Accuracy):
    """Keras ``binary_accuracy``: element-wise thresholded accuracy."""

    name = "binary_accuracy"

    def __init__(self, threshold=0.5, name=None):
        super().__init__(task="binary", threshold=threshold, name=name)


class CategoricalAccuracy(_CountMetric):
    """Keras ``categorical_accuracy``: one-hot (or soft) target, class axis last."""

    name = "categorical_accuracy"

    def _batch_state(self, preds, target):
        p, t = _arrays(preds, target, "CategoricalAccuracy")
        if p.shape != t.shape:
            raise _shape_error(
                "CategoricalAccuracy", p, t, "one-hot target of the same shape as preds (..., C)"
            )
        ok = np.argmax(p, axis=-1) == np.argmax(t, axis=-1)
        return {"correct": float(np.count_nonzero(ok)), "total": float(ok.size)}


class SparseCategoricalAccuracy(_CountMetric):
    """Keras ``sparse_categorical_accuracy``: scores (..., C) against integer labels (...)."""

    name = "sparse_categorical_accuracy"

    def _batch_state(self, preds, target):
        nm = "SparseCategoricalAccuracy"
        p, t = _arrays(preds, target, nm)
        if t.ndim == p.ndim and t.shape[-1] == 1:
            t = t[..., 0]
        if p.ndim != t.ndim + 1 or p.shape[:-1] != t.shape:
            raise _shape_error(nm, p, t, "scores (..., C) with integer labels (...)")
        tl = _as_labels(t, nm, "target")
        _check_range(tl, p.shape[-1], nm, "target")
        ok = np.argmax(p, axis=-1) == tl
        return {"correct": float(np.count_nonzero(ok)), "total": float(ok.size)}


class TopKAccuracy(_CountMetric):
    """Top-k accuracy (Keras ``top_k_categorical_accuracy``), class axis last.

    ``target`` may be integer labels (...) or one-hot (..., C).
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        if int(k) < 1:
            raise ValueError(f"TopKAccuracy: k must be >= 1, got {k}")
        self.k = int(k)
        super().__init__(name)

    def _batch_state(self, preds, target):
        nm = "TopKAccuracy"
        p, t = _arrays(preds, target, nm)
        if p.ndim < 1:
            raise _shape_error(nm, p, t, "scores (..., C)")
        if t.shape == p.shape and p.ndim >= 2:
            tl = np.argmax(t, axis=-1)
        else:
            if t.ndim == p.ndim and t.shape[-1] == 1:
                t = t[..., 0]
            if p.shape[:-1] != t.shape:
                raise _shape_error(
                    nm, p, t, "scores (..., C) with labels (...) or one-hot (..., C)"
                )
            tl = _as_labels(t, nm, "target")
        s = p.reshape(-1, p.shape[-1])
        ok = _in_top_k(s, tl.reshape(-1), self.k, nm)
        return {"correct": float(np.count_nonzero(ok)), "total": float(ok.size)}


# ------------------------------------------------------------------------------------------
# confusion-matrix based metrics
# ------------------------------------------------------------------------------------------
_AVERAGES = ("binary", "micro", "macro", "weighted", None, "none")


class _Unset:
    def __repr__(self):
        return "<default>"


UNSET = _Unset()  # average not given: 'binary' for binary input, 'macro' for multiclass


class _ConfusionBased(Metric):
    def __init__(self, task=None, num_classes=None, threshold=0.5, name=None):
        if task not in _TASKS or task == "multilabel":
            raise ValueError(
                f"{type(self).__name__}: task must be 'binary', 'multiclass' or None, got {task!r}"
            )
        self.task, self.num_classes, self.threshold = task, num_classes, float(threshold)
        super().__init__(name)

    def _empty_state(self):
        c = self.num_classes if self.task == "multiclass" and self.num_classes else 0
        if self.task == "binary":
            c = 2
        # mode: 'binary' (thresholded scores), 'multiclass' (class scores) or None (labels)
        return {"cm": np.zeros((c, c), dtype=np.int64), "mode": self.task}

    def _batch_state(self, preds, target):
        nm = type(self).__name__
        p, t = _arrays(preds, target, nm)
        task = _infer_task(p, t, self.task, nm)
        if self.task is not None:
            mode = self.task
        elif p.ndim == t.ndim + 1:
            mode = "multiclass"
        elif task == "binary" and p.dtype.kind == "f" and not _is_01(p):
            mode = "binary"
        else:
            mode = None
        pl, tl, c = _labels(
            p, t, task, self.num_classes if task == "multiclass" else None, self.threshold, nm
        )
        c = max(c, self.num_classes or 0) if task == "multiclass" else 2
        return {"cm": _confusion(pl, tl, c), "mode": mode}

    def _merge(self, state, other):
        a, b = state["cm"], other["cm"]
        c = max(a.shape[0], b.shape[0])
        state["cm"] = _pad_cm(a, c) + _pad_cm(b, c)
        modes = {state["mode"], other["mode"]}
        state["mode"] = (
            "multiclass" if "multiclass" in modes else "binary" if "binary" in modes else None
        )


def _stat_scores(cm):
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return tp, fp, fn, cm.sum(axis=1).astype(np.float64)


class _PRF(_ConfusionBased):
    _kind = "f"

    def __init__(
        self, task=None, num_classes=None, average=UNSET, threshold=0.5, beta=1.0, name=None
    ):
        self._average_given = average is not UNSET
        if not self._average_given:
            average = "macro"
        if average not in _AVERAGES:
            raise ValueError(
                f"{type(self).__name__}: average must be one of 'binary', "
                f"'micro', 'macro', 'weighted', None; got {average!r}"
            )
        self.average = average
        self.beta = float(beta)
        super().__init__(task, num_classes, threshold, name)

    def _effective_average(self, state):
        if self._average_given:
            return None if self.average == "none" else self.average
        mode = state["mode"]
        if mode is None:  # labels only: binary when at most two classes were seen
            mode = (
                "binary"
                if state["cm"].shape[0] <= 2 and not (self.num_classes and self.num_classes > 2)
                else "multiclass"
            )
        return "binary" if mode == "binary" else "macro"

    def _value(self, state):
        cm = state["cm"]
        avg = self._effective_average(state)
        tp, fp, fn, support = _stat_scores(cm)
        if avg == "binary":
            if cm.shape[0] > 2:
                raise ValueError(
                    f"{type(self).__name__}: average='binary' with "
                    f"{cm.shape[0]} classes; use 'macro', 'micro' or 'weighted'"
                )
            cm = _pad_cm(cm, 2)
            tp, fp, fn, support = _stat_scores(cm)
            return float(self._score(tp[1], fp[1], fn[1]))
        if avg == "micro":
            return float(self._score(tp.sum(), fp.sum(), fn.sum()))
        per_class = self._score(tp, fp, fn)
        if avg is None:
            return per_class
        if per_class.size == 0:
            return 0.0
        if avg == "macro":
            return float(per_class.mean())
        return float(safe_div((per_class * support).sum(), support.sum()))  # weighted

    def _score(self, tp, fp, fn):
        if self._kind == "precision":
            return safe_div(tp, tp + fp)
        if self._kind == "recall":
            return safe_div(tp, tp + fn)
        b2 = self.beta * self.beta
        return safe_div((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)


class Precision(_PRF):
    """Precision tp / (tp + fp).

    ``average``: 'binary' (default for binary: the positive class), 'micro',
    'macro' (default for multiclass), 'weighted' (by support) or None (per class).
    """

    name = "precision"
    _kind = "precision"

    def __init__(self, task=None, num_classes=None, average=UNSET, threshold=0.5, name=None):
        super().__init__(task, num_classes, average, threshold, name=name)


class Recall(_PRF):
    """Recall tp / (tp + fn); ``average`` as for :class:`Precision`."""

    name = "recall"
    _kind = "recall"

    def __init__(self, task=None, num_classes=None, average=UNSET, threshold=0.5, name=None):
        super().__init__(task, num_classes, average, threshold, name=name)


class FBetaScore(_PRF):
    """F-beta score (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp); ``average`` as for Precision."""

    name = "fbeta_score"
    _kind = "f"

    def __init__(
        self, beta=1.0, task=None, num_classes=None, average=UNSET, threshold=0.5, name=None
    ):
        super().__init__(task, num_classes, average, threshold, beta=beta, name=name)


class F1Score(FBetaScore):
    """F1 score 2 tp / (2 tp + fp + fn); ``average`` as for :class:`Precision`."""

    name = "f1_score"

    def __init__(self, task=None, num_classes=None, average=UNSET, threshold=0.5, name=None):
        super().__init__(1.0, task, num_classes, average, threshold, name=name)


class ConfusionMatrix(_ConfusionBased):
    """Confusion matrix C[i, j] = number of samples of true class i predicted as j.

    ``normalize``: None (counts, int64), 'true' (rows sum to 1), 'pred' (columns sum
    to 1) or 'all'. Empty rows/columns normalise to 0 (like scikit-learn).
    """

    name = "confusion_matrix"

    def __init__(self, num_classes=None, normalize=None, task=None, threshold=0.5, name=None):
        if normalize not in (None, "true", "pred", "all"):
            raise ValueError(
                f"ConfusionMatrix: normalize must be None, 'true', 'pred' or "
                f"'all', got {normalize!r}"
            )
        self.normalize = normalize
        if task is None and num_classes is not None and num_classes > 2:
            task = "multiclass"
        super().__init__(task, num_classes, threshold, name)

    def _value(self, state):
        cm = state["cm"]
        if self.num_classes:
            cm = _pad_cm(cm, self.num_classes)
        if self.normalize is None:
            return cm.copy()
        if self.normalize == "true":
            return safe_div(cm, cm.sum(axis=1, keepdims=True))
        if self.normalize == "pred":
            return safe_div(cm, cm.sum(axis=0, keepdims=True))
        return safe_div(cm, cm.sum())


# ------------------------------------------------------------------------------------------
# ranking metrics (exact, by storing scores)
# ------------------------------------------------------------------------------------------
def _binary_curve(scores, y):
    """Cumulative (tps, fps) at each distinct threshold, highest score first."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], y[order]
    distinct = np.flatnonzero(np.diff(s))
    idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[idx]
    fps = 1.0 + idx - tps
    return tps, fps


def binary_roc_auc(scores, y) -> float:
    """Exact area under the ROC curve (ties handled like scikit-learn); nan if undefined."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(y).ravel().astype(np.float64)
    if y.size == 0:
        return float("nan")
    tps, fps = _binary_curve(scores, y)
    if tps[-1] == 0 or fps[-1] == 0:
        return float("nan")
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)


def binary_average_precision(scores, y) -> float:
    """Average precision sum_n (R_n - R_{n-1}) P_n (scikit-learn's definition); 0 with no
    positives."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(y).ravel().astype(np.float64)
    if y.size == 0:
        return float("nan")
    tps, fps = _binary_curve(scores, y)
    if tps[-1] == 0:
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


class _RankingMetric(Metric):
    _fn = None

    def __init__(self, task=None, num_classes=None, average="macro", name=None):
        if task not in (None, "binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__}: task must be 'binary', 'multiclass' or None, got {task!r}"
            )
        if average not in ("macro", "weighted", None, "none"):
            raise ValueError(
                f"{type(self).__name__}: average must be 'macro', 'weighted' or "
                f"None, got {average!r}"
            )
        self.task, self.num_classes = task, num_classes
        self.average = None if average == "none" else average
        super().__init__(name)

    def _empty_state(self):
        return {"scores": [], "target": []}

    def _batch_state(self, preds, target):
        nm = type(self).__name__
        p, t = _arrays(preds, target, nm)
        task = self.task
        if task is None:
            task = "multiclass" if p.ndim == t.ndim + 1 and p.ndim >= 2 else "binary"
        if task == "binary":
            p, t = _same_shape(nm, p, t, "scores and 0/1 target of the same shape")
            return {
                "scores": [p.astype(np.float64).ravel()],
                "target": [_binary_target(t, nm).ravel()],
            }
        if p.ndim != t.ndim + 1 or p.shape[:1] + p.shape[2:] != t.shape:
            raise _shape_error(nm, p, t, "scores (N, C, ...) with integer target (N, ...)")
        c = p.shape[1]
        if self.num_classes is not None and c != self.num_classes:
            raise ShapeError(f"{nm}: preds have {c} classes but num_classes={self.num_classes}")
        tl = _as_labels(t, nm, "target").ravel()
        _check_range(tl, c, nm, "target")
        return {"scores": [_class_axis_last(p).astype(np.float64)], "target": [tl]}

    def _value(self, state):
        if not state["scores"]:
            return float("nan")
        widths = {s.ndim for s in state["scores"]}
        if len(widths) != 1:
            raise ShapeError(f"{type(self).__name__}: batches mix binary and multiclass scores")
        s = np.concatenate(state["scores"])
        t = np.concatenate(state["target"])
        fn = type(self)._fn
        if s.ndim == 1:
            return fn(s, t)
        c = s.shape[1]
        per = np.array([fn(s[:, k], t == k) for k in range(c)])
        if self.average is None:
            return per
        if self.average == "weighted":
            w = np.bincount(t, minlength=c).astype(np.float64)
            return float(np.sum(per * w) / w.sum())
        return float(np.mean(per))


class AUROC(_RankingMetric):
    """Area under the ROC curve, computed exactly from the stored scores.

    Binary: scores (N,) and 0/1 target. Multiclass: scores (N, C) and labels (N,),
    one-vs-rest, averaged with ``average`` ('macro', 'weighted' by prevalence, None).
    A class with only positives or only negatives gives nan.
    """

    name = "auroc"
    _fn = staticmethod(binary_roc_auc)


class AveragePrecision(_RankingMetric):
    """Average precision (area under the precision-recall curve, scikit-learn's step
    definition), computed exactly from the stored scores; same inputs as :class:`AUROC`."""

    name = "average_precision"
    _fn = staticmethod(binary_average_precision)
