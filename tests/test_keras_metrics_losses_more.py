"""Keras 3 metrics and losses added to ember.keras: AUC, confusion counts, Precision/Recall
arguments, the at-constraint metrics, MeanIoU, R2Score, Poisson, sample_weight of the
existing metrics, and the focal/hinge/Dice/Tversky losses, against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.keras import losses as L
from ember.keras import metrics as KM

EPS = 1e-7
RNG = np.random.default_rng(0)
YT = (RNG.random((40, 3)) > 0.5).astype(np.float32)
YP = RNG.random((40, 3)).astype(np.float32)
SW = RNG.random(40).astype(np.float32)


def _val(m):
    return np.asarray(m.result().numpy() if hasattr(m.result(), "numpy") else m.result())


def _counts_ref(t, p, w, thresholds):
    t, p, w = t.ravel() != 0, p.ravel(), np.asarray(w, np.float64).ravel()
    out = {k: [] for k in ("tp", "fp", "tn", "fn")}
    for th in thresholds:
        pos = p > th
        out["tp"].append(np.sum(w * (pos & t)))
        out["fp"].append(np.sum(w * (pos & ~t)))
        out["tn"].append(np.sum(w * (~pos & ~t)))
        out["fn"].append(np.sum(w * (~pos & t)))
    return {k: np.array(v) for k, v in out.items()}


def _auc_thresholds(n):
    return [-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS]


def _div(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _roc_ref(t, p, w, n=200):
    c = _counts_ref(t, p, w, _auc_thresholds(n))
    tpr, fpr = _div(c["tp"], c["tp"] + c["fn"]), _div(c["fp"], c["fp"] + c["tn"])
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


# -- AUC ---------------------------------------------------------------------------------------
def test_auc_roc_matches_trapezoid_reference_and_name():
    m = KM.AUC()
    assert m.name == "auc" and m.num_thresholds == 200
    m.update_state(YT, YP)
    assert float(m.result()) == pytest.approx(_roc_ref(YT, YP, np.ones_like(YP)), abs=1e-6)


def test_auc_exact_small_case():
    # thresholds [-eps, 0.5, 1+eps]: (fpr, tpr) = (1, 1), (0, 0.5), (0, 0): trapezoids
    # 1 * (1 + 0.5) / 2 = 0.75; a perfectly separable set gives 1
    m = KM.AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert float(m.result()) == pytest.approx(0.75)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])
    assert float(m.result()) == pytest.approx(1.0)


def test_auc_streaming_equals_one_batch_and_reset():
    one = KM.AUC(curve="PR")
    one.update_state(YT, YP, sample_weight=SW)
    many = KM.AUC(curve="PR")
    for s in range(0, 40, 13):
        many.update_state(YT[s : s + 13], YP[s : s + 13], sample_weight=SW[s : s + 13])
    assert float(many.result()) == pytest.approx(float(one.result()), abs=1e-12)
    many.reset_state()
    many.update_state([0, 1], [0.2, 0.9])
    assert float(many.result()) == pytest.approx(1.0)


def test_auc_sample_weight_and_from_logits():
    w = np.broadcast_to(SW[:, None], YP.shape)
    m = KM.AUC(num_thresholds=50, from_logits=True)
    logits = np.log(YP / (1 - YP))
    m.update_state(YT, logits, sample_weight=SW)
    assert float(m.result()) == pytest.approx(_roc_ref(YT, YP, w, 50), abs=1e-6)


def test_auc_multi_label_is_the_mean_of_per_column_aucs():
    m = KM.AUC(multi_label=True)
    m.update_state(YT, YP)
    ref = np.mean([_roc_ref(YT[:, j], YP[:, j], np.ones(40)) for j in range(3)])
    assert float(m.result()) == pytest.approx(ref, abs=1e-6)


def test_auc_pr_minoring_reference():
    m = KM.AUC(num_thresholds=20, curve="PR", summation_method="minoring")
    m.update_state(YT, YP)
    c = _counts_ref(YT, YP, np.ones_like(YP), _auc_thresholds(20))
    rec, prec = _div(c["tp"], c["tp"] + c["fn"]), _div(c["tp"], c["tp"] + c["fp"])
    ref = np.sum((rec[:-1] - rec[1:]) * np.minimum(prec[:-1], prec[1:]))
    assert float(m.result()) == pytest.approx(ref, abs=1e-12)
    assert m.get_config()["curve"] == "PR" and m.get_config()["summation_method"] == "minoring"


# -- confusion counts, Precision, Recall --------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "key"),
    [
        (KM.TruePositives, "tp"),
        (KM.TrueNegatives, "tn"),
        (KM.FalsePositives, "fp"),
        (KM.FalseNegatives, "fn"),
    ],
)
def test_confusion_counts(cls, key):
    m = cls()
    m.update_state(YT, YP)
    assert float(m.result()) == _counts_ref(YT, YP, np.ones_like(YP), [0.5])[key][0]
    m2 = cls(thresholds=[0.2, 0.7])
    m2.update_state(YT[:20], YP[:20], sample_weight=SW[:20])
    m2.update_state(YT[20:], YP[20:], sample_weight=SW[20:])
    w = np.broadcast_to(SW[:, None], YP.shape)
    np.testing.assert_allclose(_val(m2), _counts_ref(YT, YP, w, [0.2, 0.7])[key], rtol=1e-6)
    assert m2.get_config()["thresholds"] == [0.2, 0.7]


def test_precision_recall_defaults_small_case():
    p, r = KM.Precision(), KM.Recall()
    assert (p.name, r.name) == ("precision", "recall")
    for m in (p, r):
        m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert float(p.result()) == pytest.approx(2 / 3) and float(r.result()) == pytest.approx(2 / 3)


def test_precision_recall_thresholds_list_and_sample_weight():
    p = KM.Precision(thresholds=[0.3, 0.6])
    p.update_state(YT, YP, sample_weight=SW)
    w = np.broadcast_to(SW[:, None], YP.shape)
    c = _counts_ref(YT, YP, w, [0.3, 0.6])
    np.testing.assert_allclose(_val(p), c["tp"] / (c["tp"] + c["fp"]), rtol=1e-9)


def test_precision_recall_top_k_and_class_id():
    yt = np.array([[0, 0, 1, 1]])
    yp = np.array([[1.0, 1.0, 1.0, 1.0]])
    m = KM.Precision(top_k=2)  # ties at the 2nd value all stay positive
    m.update_state(yt, np.array([[0.9, 0.2, 0.8, 0.1]]))
    assert float(m.result()) == pytest.approx(0.5)  # top 2: classes 0, 2
    r = KM.Recall(top_k=2)
    r.update_state(yt, np.array([[0.9, 0.2, 0.8, 0.1]]))
    assert float(r.result()) == pytest.approx(0.5)
    c = KM.Recall(class_id=2)
    c.update_state(YT, YP)
    t, q = YT[:, 2] != 0, YP[:, 2] > 0.5
    assert float(c.result()) == pytest.approx(np.sum(t & q) / np.sum(t))
    both = KM.Precision(top_k=1, class_id=3)
    both.update_state(yt, yp * np.array([0.1, 0.2, 0.3, 0.9]))
    assert float(both.result()) == pytest.approx(1.0)
    assert both.get_config()["top_k"] == 1 and both.get_config()["class_id"] == 3


def test_precision_rejects_threshold_outside_unit_interval():
    with pytest.raises(ValueError, match="thresholds"):
        KM.Precision(thresholds=1.5)


# -- at-constraint metrics ---------------------------------------------------------------------
def _constraint_ref(kind, value, n=200):
    ths = [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
    c = _counts_ref(YT, YP, np.ones_like(YP), ths)
    sens, spec = _div(c["tp"], c["tp"] + c["fn"]), _div(c["tn"], c["tn"] + c["fp"])
    prec = _div(c["tp"], c["tp"] + c["fp"])
    cons, dep = {
        "SensitivityAtSpecificity": (spec, sens),
        "SpecificityAtSensitivity": (sens, spec),
        "PrecisionAtRecall": (sens, prec),
        "RecallAtPrecision": (prec, sens),
    }[kind]
    ok = cons >= value
    return float(dep[ok].max()) if ok.any() else 0.0


@pytest.mark.parametrize(
    ("kind", "value", "name"),
    [
        ("SensitivityAtSpecificity", 0.5, "sensitivity_at_specificity"),
        ("SpecificityAtSensitivity", 0.7, "specificity_at_sensitivity"),
        ("PrecisionAtRecall", 0.6, "precision_at_recall"),
        ("RecallAtPrecision", 0.5, "recall_at_precision"),
    ],
)
def test_at_constraint_metrics(kind, value, name):
    m = getattr(KM, kind)(value)
    assert m.name == name
    m.update_state(YT[:25], YP[:25])
    m.update_state(YT[25:], YP[25:])
    assert float(m.result()) == pytest.approx(_constraint_ref(kind, value), abs=1e-12)
    with pytest.raises(ValueError):
        getattr(KM, kind)(1.5)


# -- MeanIoU, R2Score, Poisson ------------------------------------------------------------------
def test_mean_iou():
    m = KM.MeanIoU(num_classes=2)
    m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
    assert float(m.result()) == pytest.approx((1 / 3 + 1 / 3) / 2)
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 1, 0, 1], sample_weight=[0.3, 0.3, 0.4, 0.4])
    # cm = [[0.3, 0.3], [0.4, 0.4]]: iou0 = 0.3 / (0.6 + 0.7 - 0.3), iou1 = 0.4 / 1.1
    assert float(m.result()) == pytest.approx((0.3 + 0.4 / 1.1) / 2)
    s = KM.MeanIoU(num_classes=3, sparse_y_pred=False, ignore_class=0)
    s.update_state([0, 1, 2, 2], [[0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    # kept: (1->1), (2->2), (2->0): iou1 = 1, iou2 = 1/2, iou0 = 0/1 -> mean 0.5
    assert float(s.result()) == pytest.approx(0.5)


def test_r2_score_reference_and_streaming():
    y = RNG.normal(size=(30, 2))
    p = y + RNG.normal(size=(30, 2)) * 0.5
    m = KM.R2Score()
    m.update_state(y[:10], p[:10])
    m.update_state(y[10:], p[10:])
    ref = 1 - ((y - p) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert float(m.result()) == pytest.approx(ref.mean(), abs=1e-12)
    none = KM.R2Score(class_aggregation=None)
    none.update_state(y, p)
    np.testing.assert_allclose(_val(none), ref, atol=1e-12)


def test_poisson_metric_and_loss():
    y, p = YT, YP + 0.1
    ref = np.mean(p - y * np.log(p + EPS), axis=-1)
    m = KM.Poisson()
    m.update_state(y, p, sample_weight=SW)
    assert float(m.result()) == pytest.approx(np.sum(ref * SW) / np.sum(SW), rel=1e-5)
    assert L.Poisson()(y, ember.tensor(p)).item() == pytest.approx(ref.mean(), rel=1e-5)


# -- sample_weight of the existing metrics ---------------------------------------------------------
def test_sample_weight_of_existing_metrics():
    lab = RNG.integers(0, 3, 40)
    w = SW
    cases = [
        (KM.BinaryAccuracy(), YT, YP, ((YP > 0.5) == (YT != 0)).mean(-1)),
        (KM.CategoricalAccuracy(), YT, YP, (YP.argmax(-1) == YT.argmax(-1)) * 1.0),
        (KM.SparseCategoricalAccuracy(), lab, YP, (YP.argmax(-1) == lab) * 1.0),
        (KM.MeanSquaredError(), YT, YP, ((YP - YT) ** 2).mean(-1)),
        (KM.MeanAbsoluteError(), YT, YP, np.abs(YP - YT).mean(-1)),
    ]
    for m, y, p, per in cases:
        m.update_state(y[:15], p[:15], sample_weight=w[:15])
        m.update_state(y[15:], p[15:], sample_weight=w[15:])
        assert float(m.result()) == pytest.approx(np.sum(per * w) / np.sum(w), rel=1e-6), m.name
    rmse = KM.RootMeanSquaredError()
    rmse.update_state(YT, YP, sample_weight=w)
    ref = np.sqrt(np.sum(((YP - YT) ** 2).mean(-1) * w) / np.sum(w))
    assert float(rmse.result()) == pytest.approx(ref, rel=1e-6)
    bce = KM.BinaryCrossentropy()
    bce.update_state(YT, YP, sample_weight=w)
    pc = np.clip(YP, EPS, 1 - EPS)
    per = -(YT * np.log(pc) + (1 - YT) * np.log(1 - pc)).mean(-1)
    assert float(bce.result()) == pytest.approx(np.sum(per * w) / np.sum(w), rel=1e-5)


# -- losses ---------------------------------------------------------------------------------------
def _loss(name, y, p, **kw):
    return getattr(L, name)(**kw)(ember.tensor(y), ember.tensor(p)).item()


def test_binary_focal_crossentropy_reference():
    y, p = YT, YP
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    pt = y * p + (1 - y) * (1 - p)
    ref = ((1 - pt) ** 2.0 * bce).mean(-1).mean()
    assert _loss("BinaryFocalCrossentropy", y, p) == pytest.approx(ref, rel=1e-5)
    bal = (y * 0.3 + (1 - y) * 0.7) * (1 - pt) ** 1.5 * bce
    got = _loss("BinaryFocalCrossentropy", y, p, apply_class_balancing=True, alpha=0.3, gamma=1.5)
    assert got == pytest.approx(bal.mean(), rel=1e-5)
    logits = np.log(p / (1 - p))
    got = _loss("BinaryFocalCrossentropy", y, logits, from_logits=True)
    assert got == pytest.approx(ref, rel=1e-4)


def test_categorical_focal_crossentropy_reference():
    y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 40)]
    p = YP / YP.sum(-1, keepdims=True)
    q = np.clip(p, EPS, 1 - EPS)
    ref = np.sum(0.25 * (1 - q) ** 2 * -y * np.log(q), -1).mean()
    assert _loss("CategoricalFocalCrossentropy", y, p) == pytest.approx(ref, rel=1e-5)
    ys = y * 0.9 + 0.1 / 3
    ref_s = np.sum(0.5 * (1 - q) ** 3 * -ys * np.log(q), -1).mean()
    got = _loss("CategoricalFocalCrossentropy", y, p, alpha=0.5, gamma=3.0, label_smoothing=0.1)
    assert got == pytest.approx(ref_s, rel=1e-5)


def test_hinge_dice_tversky_references():
    ys = 2 * YT - 1
    assert _loss("SquaredHinge", YT, YP) == pytest.approx(
        (np.maximum(1 - ys * YP, 0) ** 2).mean(), rel=1e-5
    )
    y = np.eye(3, dtype=np.float32)[RNG.integers(0, 3, 40)]
    ch = np.maximum(((1 - y) * YP).max(-1) - (y * YP).sum(-1) + 1, 0).mean()
    assert _loss("CategoricalHinge", y, YP) == pytest.approx(ch, rel=1e-5)
    d = 1 - 2 * np.sum(YT * YP) / (YT.sum() + YP.sum() + EPS)
    assert _loss("Dice", YT, YP) == pytest.approx(d, rel=1e-5)
    inter = np.sum(YT * YP)
    tv = 1 - inter / (inter + 0.3 * np.sum((1 - YP) * YT) + 0.7 * np.sum(YP * (1 - YT)) + EPS)
    assert _loss("Tversky", YT, YP, alpha=0.3, beta=0.7) == pytest.approx(tv, rel=1e-5)
    assert _loss("Tversky", YT, YP) == pytest.approx(d, rel=1e-5)  # alpha = beta = 0.5


@pytest.mark.parametrize(
    "name",
    [
        "poisson",
        "squared_hinge",
        "categorical_hinge",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "dice",
        "tversky",
    ],
)
def test_loss_string_names(name):
    loss = L.get(name)
    assert loss.name == name
    ref = getattr(L, name)(ember.tensor(YT), ember.tensor(YP))
    assert loss(YT, ember.tensor(YP)).item() == pytest.approx(ref.mean().item(), rel=1e-6)


def test_metric_string_names():
    for key, cls in [
        ("auc", KM.AUC),
        ("precision", KM.Precision),
        ("recall", KM.Recall),
        ("true_positives", KM.TruePositives),
        ("r2_score", KM.R2Score),
        ("poisson", KM.Poisson),
    ]:
        m = KM.get(key)
        assert type(m) is cls and m.name == key
    cfg = {"class_name": "AUC", "config": KM.AUC(curve="PR", num_thresholds=10).get_config()}
    again = KM.get(cfg)
    assert again.curve == "PR" and again.num_thresholds == 10


def test_compile_auc_with_binary_focal_loss_fit_reports_metric():
    ember.manual_seed(0)
    x = RNG.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(np.float32)
    from ember import keras

    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", loss="binary_focal_crossentropy", metrics=["auc", "precision"])
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    aucs = hist.history["auc"]
    assert len(aucs) == 3 and all(0.0 <= a <= 1.0 for a in aucs)
    ref = KM.AUC()
    ref.update_state(y, model.predict(x, verbose=0))
    assert 0.0 <= float(ref.result()) <= 1.0 and "precision" in hist.history
