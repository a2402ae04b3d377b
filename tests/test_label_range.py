"""Class-index labels out of range are errors naming the label and the number of classes, in
every loss (checked against what torch does) and metric that takes them; ``ignore_index`` is
honoured where PyTorch has it. Run under Python's default warning filters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember import metrics as M
from ember import nn


@pytest.fixture(autouse=True)
def _default_warning_filters():
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


SCORES = np.random.default_rng(0).random((4, 3)).astype(np.float32)

LOSSES = [
    ("nll_loss", F.nll_loss, torch.nn.functional.nll_loss),
    ("cross_entropy", F.cross_entropy, torch.nn.functional.cross_entropy),
    ("multi_margin_loss", F.multi_margin_loss, torch.nn.functional.multi_margin_loss),
    ("nll_loss", nn.NLLLoss(), torch.nn.NLLLoss()),
    (
        "cross_entropy",
        nn.CrossEntropyLoss(label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(label_smoothing=0.1),
    ),
]


@pytest.mark.parametrize("label", [3, 7, -1, -100])
@pytest.mark.parametrize(("op", "fn", "tfn"), LOSSES, ids=[f"{i}" for i in range(len(LOSSES))])
def test_losses_refuse_out_of_range_labels(op, fn, tfn, label):
    target = [0, 1, label, 2]
    ignored = label == -100 and op != "multi_margin_loss"  # the default ignore_index
    if ignored:
        ref = tfn(torch.tensor(SCORES), torch.tensor(target))
        got = fn(ember.tensor(SCORES), ember.tensor(target))
        np.testing.assert_allclose(got.item(), ref.item(), rtol=1e-5)
        return
    with pytest.raises((IndexError, RuntimeError)):
        tfn(torch.tensor(SCORES), torch.tensor(target))
    with pytest.raises(IndexError, match=f"{op}: target {label} is out of bounds for 3 classes"):
        fn(ember.tensor(SCORES), ember.tensor(target))


@pytest.mark.parametrize("fn", [F.nll_loss, F.cross_entropy])
def test_ignore_index_is_honoured(fn):
    tfn = getattr(torch.nn.functional, fn.__name__)
    target = [0, 5, 1, 5]
    ref = tfn(torch.tensor(SCORES), torch.tensor(target), ignore_index=5)
    got = fn(ember.tensor(SCORES), ember.tensor(target), ignore_index=5)
    np.testing.assert_allclose(got.item(), ref.item(), rtol=1e-5)
    with pytest.raises(IndexError, match=r"target 5 is out of bounds for 3 classes \(ignore"):
        fn(ember.tensor(SCORES), ember.tensor(target), ignore_index=4)


def test_spatial_targets_are_checked():
    x = np.random.default_rng(1).random((2, 3, 2, 2)).astype(np.float32)
    t = np.zeros((2, 2, 2), np.int64)
    t[1, 1, 0] = 3
    with pytest.raises(IndexError):
        torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(t))
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        F.cross_entropy(ember.tensor(x), ember.tensor(t))


METRICS = [
    ("Accuracy", lambda t: M.functional.accuracy(SCORES, t)),
    ("Accuracy", lambda t: M.functional.accuracy(SCORES, t, num_classes=3)),
    ("SparseCategoricalAccuracy", lambda t: M.functional.sparse_categorical_accuracy(SCORES, t)),
    ("TopKAccuracy", lambda t: M.functional.top_k_accuracy(SCORES, t, k=2)),
    ("Precision", lambda t: M.functional.precision(SCORES, t, num_classes=3)),
    ("Recall", lambda t: M.functional.recall(SCORES, t, num_classes=3)),
    ("F1Score", lambda t: M.functional.f1_score(SCORES, t, num_classes=3)),
    ("ConfusionMatrix", lambda t: M.functional.confusion_matrix(SCORES, t, num_classes=3)),
    ("AUROC", lambda t: M.functional.auroc(SCORES, t, num_classes=3)),
    ("AveragePrecision", lambda t: M.functional.average_precision(SCORES, t, num_classes=3)),
]


@pytest.mark.parametrize("label", [3, -1])
@pytest.mark.parametrize(("name", "fn"), METRICS, ids=[f"{i}" for i in range(len(METRICS))])
def test_metrics_refuse_out_of_range_labels(name, fn, label):
    with pytest.raises(ValueError, match=f"{name}: target label {label} is out of range for 3"):
        fn(np.array([0, 1, label, 2]))


def test_metrics_refuse_out_of_range_predicted_labels():
    with pytest.raises(ValueError, match="preds label 4 is out of range for 3 classes"):
        M.functional.confusion_matrix(
            np.array([0, 4, 1]), np.array([0, 1, 2]), num_classes=3, task="multiclass"
        )
