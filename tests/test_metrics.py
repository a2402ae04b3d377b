import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

import ember
from ember import metrics
from ember.metrics import functional as F

C = 4


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _mc(rng, n=200, c=C):
    logits = rng.normal(size=(n, c))
    target = rng.integers(0, c, size=n)
    return logits, target


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _stream(metric, preds, target, nb=5):
    for p, t in zip(np.array_split(preds, nb), np.array_split(target, nb)):
        metric.update(p, t)
    return metric.compute()


# ----- accuracy --------------------------------------------------------------------------
def test_accuracy_multiclass_matches_sklearn_and_streams(rng):
    logits, target = _mc(rng)
    ref = skm.accuracy_score(target, logits.argmax(1))
    out = metrics.Accuracy().update(logits, target) or None
    m = metrics.Accuracy()
    v = _stream(m, logits, target)
    assert isinstance(v, ember.Tensor) and v.shape == ()
    assert v.item() == pytest.approx(ref)
    assert out is None
    # from probabilities, from labels, from ember tensors
    assert F.accuracy(_softmax(logits), target).item() == pytest.approx(ref)
    assert F.accuracy(logits.argmax(1), target).item() == pytest.approx(ref)
    assert F.accuracy(
        ember.tensor(logits.astype(np.float32)), ember.tensor(target)
    ).item() == pytest.approx(ref)
    m.reset()
    assert m.compute().item() == 0.0


def test_accuracy_input_requiring_grad(rng):
    logits, target = _mc(rng, 20)
    x = ember.tensor(logits, requires_grad=True)
    assert F.accuracy(x, target).item() == pytest.approx(
        skm.accuracy_score(target, logits.argmax(1))
    )


def test_call_returns_batch_value_and_accumulates(rng):
    logits, target = _mc(rng, 100)
    m = metrics.Accuracy()
    b1 = m(logits[:30], target[:30]).item()
    b2 = m(logits[30:], target[30:]).item()
    assert b1 == pytest.approx(skm.accuracy_score(target[:30], logits[:30].argmax(1)))
    assert b2 == pytest.approx(skm.accuracy_score(target[30:], logits[30:].argmax(1)))
    assert m.compute().item() == pytest.approx(skm.accuracy_score(target, logits.argmax(1)))


def test_merge_state(rng):
    logits, target = _mc(rng)
    a, b = metrics.F1Score(num_classes=C), metrics.F1Score(num_classes=C)
    a.update(logits[:120], target[:120])
    b.update(logits[120:], target[120:])
    a.merge_state(b)
    ref = skm.f1_score(target, logits.argmax(1), average="macro")
    assert a.compute().item() == pytest.approx(ref)
    with pytest.raises(TypeError):
        a.merge_state(metrics.Accuracy())


def test_binary_accuracy(rng):
    p = rng.random(300)
    t = rng.integers(0, 2, 300)
    ref = skm.accuracy_score(t, p > 0.5)
    assert _stream(metrics.BinaryAccuracy(), p, t).item() == pytest.approx(ref)
    assert F.accuracy(p, t).item() == pytest.approx(ref)
    assert F.accuracy(p, t, task="binary", threshold=0.3).item() == pytest.approx(
        skm.accuracy_score(t, p > 0.3)
    )
    # logits go through a sigmoid
    logit = np.log(p / (1 - p))
    assert F.binary_accuracy(logit, t).item() == pytest.approx(ref)
    # (N, 1) predictions against (N,) targets
    assert F.binary_accuracy(p[:, None], t).item() == pytest.approx(ref)


def test_multilabel_accuracy_elementwise(rng):
    p = rng.random((50, 3))
    t = rng.integers(0, 2, (50, 3))
    ref = np.mean((p > 0.5) == t)
    assert F.accuracy(p, t, task="multilabel").item() == pytest.approx(ref)


def test_top_k(rng):
    logits, target = _mc(rng, 200, 6)
    for k in (1, 2, 3):
        ref = skm.top_k_accuracy_score(target, logits, k=k, labels=np.arange(6))
        assert _stream(metrics.TopKAccuracy(k=k), logits, target).item() == pytest.approx(ref)
        assert F.accuracy(logits, target, top_k=k).item() == pytest.approx(ref)
        onehot = np.eye(6)[target]
        assert F.top_k_accuracy(logits, onehot, k=k).item() == pytest.approx(ref)


def test_categorical_and_sparse(rng):
    logits, target = _mc(rng)
    ref = skm.accuracy_score(target, logits.argmax(1))
    onehot = np.eye(C)[target]
    assert _stream(metrics.CategoricalAccuracy(), logits, onehot).item() == pytest.approx(ref)
    assert _stream(metrics.SparseCategoricalAccuracy(), logits, target).item() == pytest.approx(ref)
    assert F.sparse_categorical_accuracy(logits, target[:, None]).item() == pytest.approx(ref)


# ----- precision / recall / F1 -------------------------------------------------------------
@pytest.mark.parametrize("average", ["macro", "micro", "weighted", None])
def test_prf_multiclass(rng, average):
    logits, target = _mc(rng)
    pred = logits.argmax(1)
    p, r, f, _ = skm.precision_recall_fscore_support(
        target, pred, average=average, labels=np.arange(C), zero_division=0
    )
    for cls, ref in ((metrics.Precision, p), (metrics.Recall, r), (metrics.F1Score, f)):
        v = _stream(cls(num_classes=C, average=average), logits, target)
        np.testing.assert_allclose(np.asarray(v), ref, rtol=1e-12)
        v2 = _stream(cls(average=average), pred, target)  # labels, classes inferred
        np.testing.assert_allclose(np.asarray(v2), ref, rtol=1e-12)


def test_prf_binary(rng):
    s = rng.random(300)
    t = rng.integers(0, 2, 300)
    pred = (s > 0.5).astype(int)
    p, r, f, _ = skm.precision_recall_fscore_support(t, pred, average="binary")
    assert _stream(metrics.Precision(), s, t).item() == pytest.approx(p)
    assert _stream(metrics.Recall(), s, t).item() == pytest.approx(r)
    assert _stream(metrics.F1Score(), s, t).item() == pytest.approx(f)
    assert F.f1_score(pred, t, average="macro").item() == pytest.approx(
        skm.f1_score(t, pred, average="macro")
    )
    assert F.fbeta_score(pred, t, beta=2.0).item() == pytest.approx(
        skm.fbeta_score(t, pred, beta=2.0)
    )


def test_class_never_predicted_is_zero_without_warning(rng):
    target = np.array([0, 1, 2, 2, 1, 0, 3, 3])
    pred = np.array([0, 1, 1, 1, 1, 0, 1, 0])  # classes 2 and 3 never predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = {
            a: F.precision(pred, target, num_classes=C, average=a)
            for a in ("macro", "weighted", None)
        }
        got_f1 = F.f1_score(pred, target, num_classes=C, average=None)
        none_pred = F.precision(np.zeros(4, int), np.zeros(4, int), task="binary")
    for a, v in got.items():
        ref = skm.precision_score(target, pred, average=a, labels=np.arange(C), zero_division=0)
        np.testing.assert_allclose(np.asarray(v), ref)
    np.testing.assert_allclose(
        np.asarray(got_f1), skm.f1_score(target, pred, average=None, zero_division=0)
    )
    assert none_pred.item() == 0.0


def test_prf_binary_average_with_many_classes_errors(rng):
    with pytest.raises(ValueError, match="binary"):
        F.precision(np.array([0, 1, 2]), np.array([0, 2, 1]), average="binary")


# ----- ranking ----------------------------------------------------------------------------
def test_auroc_and_ap_binary(rng):
    s = rng.random(400)
    t = (rng.random(400) < 0.3 + 0.4 * s).astype(int)
    s = np.round(s, 2)  # create ties
    assert _stream(metrics.AUROC(), s, t).item() == pytest.approx(
        skm.roc_auc_score(t, s), rel=1e-12
    )
    assert _stream(metrics.AveragePrecision(), s, t).item() == pytest.approx(
        skm.average_precision_score(t, s), rel=1e-12
    )


def test_auroc_and_ap_multiclass(rng):
    logits, target = _mc(rng, 300)
    prob = _softmax(logits + np.eye(C)[target])
    ref = skm.roc_auc_score(target, prob, multi_class="ovr", average="macro")
    assert _stream(metrics.AUROC(num_classes=C), prob, target).item() == pytest.approx(ref)
    refw = skm.roc_auc_score(target, prob, multi_class="ovr", average="weighted")
    assert F.auroc(prob, target, average="weighted").item() == pytest.approx(refw)
    ref_ap = skm.average_precision_score(target, prob, average="macro")
    assert _stream(metrics.AveragePrecision(), prob, target).item() == pytest.approx(ref_ap)
    per = F.average_precision(prob, target, average=None)
    np.testing.assert_allclose(
        np.asarray(per), skm.average_precision_score(np.eye(C)[target], prob, average=None)
    )


def test_auroc_undefined_is_nan():
    assert np.isnan(F.auroc(np.array([0.1, 0.9]), np.array([1, 1])).item())


# ----- confusion matrix -------------------------------------------------------------------
@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix(rng, normalize):
    logits, target = _mc(rng)
    target[target == 3] = 2  # class 3 never a target -> an empty row
    ref = skm.confusion_matrix(target, logits.argmax(1), labels=np.arange(C), normalize=normalize)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _stream(metrics.ConfusionMatrix(num_classes=C, normalize=normalize), logits, target)
    np.testing.assert_allclose(np.asarray(got), ref)
    if normalize is None:
        assert np.asarray(got).dtype == np.int64


def test_confusion_matrix_binary_and_growing(rng):
    s = rng.random(50)
    t = rng.integers(0, 2, 50)
    np.testing.assert_array_equal(
        np.asarray(F.confusion_matrix(s, t)), skm.confusion_matrix(t, s > 0.5)
    )
    m = metrics.ConfusionMatrix()
    m.update(np.array([0, 1]), np.array([0, 1]))
    m.update(np.array([3, 2]), np.array([2, 2]))
    np.testing.assert_array_equal(
        np.asarray(m.compute()), skm.confusion_matrix([0, 1, 2, 2], [0, 1, 3, 2])
    )


# ----- regression / aggregation -----------------------------------------------------------
def test_regression(rng):
    p, t = rng.normal(size=(60, 3)), rng.normal(size=(60, 3))
    assert _stream(metrics.MeanSquaredError(), p, t).item() == pytest.approx(
        skm.mean_squared_error(t, p)
    )
    assert _stream(metrics.MeanAbsoluteError(), p, t).item() == pytest.approx(
        skm.mean_absolute_error(t, p)
    )
    assert F.mean_squared_error(p, t, squared=False).item() == pytest.approx(
        np.sqrt(skm.mean_squared_error(t, p))
    )
    assert F.mse(ember.tensor(p), ember.tensor(t)).item() == pytest.approx(
        skm.mean_squared_error(t, p)
    )


def test_mean_and_sum(rng):
    v, w = rng.random(20), rng.random(20)
    m = metrics.Mean()
    m.update(v[:7], w[:7])
    m.update(v[7:], weight=w[7:])
    assert m.compute().item() == pytest.approx(np.average(v, weights=w))
    m2 = metrics.Mean()
    m2.update(3.0)
    m2.update(ember.tensor([1.0, 2.0]))
    assert m2.compute().item() == pytest.approx(2.0)
    s = metrics.Sum()
    s.update(v)
    s.update(2.0)
    assert s.compute().item() == pytest.approx(v.sum() + 2)


# ----- errors -----------------------------------------------------------------------------
def test_shape_errors(rng):
    logits, target = _mc(rng, 10)
    with pytest.raises(ValueError, match=r"Accuracy.*\(10, 4\).*\(9,\)"):
        F.accuracy(logits, target[:9])
    with pytest.raises(ValueError, match="MeanSquaredError"):
        F.mse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="num_classes"):
        F.f1_score(logits, target, num_classes=5)
    with pytest.raises(ValueError, match="CategoricalAccuracy"):
        F.categorical_accuracy(logits, target)
    with pytest.raises(ValueError, match="target"):
        F.accuracy(logits, target + 10)
    with pytest.raises(ValueError, match="binary target"):
        F.precision(rng.random(4), np.array([0, 1, 2, 1]), task="binary")
    with pytest.raises(ValueError, match="average"):
        metrics.Precision(average="samples")


# ----- registry ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,cls",
    [
        ("accuracy", metrics.Accuracy),
        ("acc", metrics.Accuracy),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
        ("categorical_accuracy", metrics.CategoricalAccuracy),
        ("binary_accuracy", metrics.BinaryAccuracy),
        ("top_k_categorical_accuracy", metrics.TopKAccuracy),
        ("precision", metrics.Precision),
        ("recall", metrics.Recall),
        ("auc", metrics.AUROC),
        ("mse", metrics.MeanSquaredError),
        ("mae", metrics.MeanAbsoluteError),
        ("mean_squared_error", metrics.MeanSquaredError),
        ("mean_absolute_error", metrics.MeanAbsoluteError),
    ],
)
def test_registry(name, cls):
    m = metrics.get(name)
    assert type(m) is cls and m.name == name
    assert metrics.get(name) is not m  # fresh each time
    inst = metrics.Accuracy()
    assert metrics.get(inst) is inst
    assert isinstance(metrics.get(metrics.Recall), metrics.Recall)


def test_registry_unknown():
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get("nope")


def test_keras_accuracy_auto_task(rng):
    acc = metrics.get("accuracy")
    s = rng.random(30)
    t = rng.integers(0, 2, 30)
    assert acc(s, t).item() == pytest.approx(skm.accuracy_score(t, s > 0.5))


def test_keras_style_inputs(rng):
    logits, target = _mc(rng, 40)
    ref = skm.accuracy_score(target, logits.argmax(1))
    acc = metrics.get("accuracy")
    assert acc(logits, np.eye(C)[target]).item() == pytest.approx(ref)  # one-hot
    assert F.accuracy(logits, target[:, None]).item() == pytest.approx(ref)  # (N, 1) labels
    assert F.precision(logits, target[:, None]).item() == pytest.approx(
        skm.precision_score(target, logits.argmax(1), average="macro", zero_division=0)
    )


def test_streaming_labels_switch_binary_to_multiclass():
    m = metrics.Precision()
    m.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert m.compute().item() == pytest.approx(0.5)  # binary so far
    m.update(np.array([2, 2, 0]), np.array([2, 1, 0]))
    pred, tgt = [0, 1, 1, 2, 2, 0], [0, 1, 0, 2, 1, 0]
    assert m.compute().item() == pytest.approx(skm.precision_score(tgt, pred, average="macro"))
