import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn, to_e, to_t

import ember
import ember.nn.functional as F

RED = ["mean", "sum", "none"]


def _targets(shape, c, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, c, shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("kind", ["plain", "weight", "ignore", "smooth", "smooth_w_ignore"])
def test_cross_entropy_indices(reduction, kind):
    x = randn(6, 5)
    kw = {"reduction": reduction}
    ignore = None
    if "w" in kind.split("_") or kind == "weight":
        kw["weight"] = np.abs(randn(5, seed=3)) + 0.1
    if "ignore" in kind:
        kw["ignore_index"] = ignore = 2 if kind == "ignore" else -100
    if "smooth" in kind:
        kw["label_smoothing"] = 0.2
    t = _targets((6,), 5, ignore=ignore)
    ek = {k: (to_e(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tk = {k: (to_t(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    check(
        lambda x: F.cross_entropy(x, to_e(t), **ek),
        lambda x: TF.cross_entropy(x, to_t(t), **tk),
        [x],
    )


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_kdim_and_probs(reduction):
    x, t = randn(2, 4, 3, 5), _targets((2, 3, 5), 4, ignore=1)
    w = np.abs(randn(4, seed=2)) + 0.1
    check(
        lambda x: F.cross_entropy(x, to_e(t), to_e(w), ignore_index=1, reduction=reduction),
        lambda x: TF.cross_entropy(x, to_t(t), to_t(w), ignore_index=1, reduction=reduction),
        [x],
    )
    p = np.abs(randn(2, 4, 3, 5, seed=5))
    p /= p.sum(1, keepdims=True)
    check(
        lambda x, p: F.cross_entropy(x, p, reduction=reduction, label_smoothing=0.1),
        lambda x, p: TF.cross_entropy(x, p, reduction=reduction, label_smoothing=0.1),
        [x, p],
    )
    check(
        lambda x, p: F.cross_entropy(x, p, to_e(w), reduction=reduction),
        lambda x, p: TF.cross_entropy(x, p, to_t(w), reduction=reduction),
        [x, p],
    )


def test_cross_entropy_unbatched_and_nll():
    check(
        lambda x: F.cross_entropy(x, to_e(np.array(2))),
        lambda x: TF.cross_entropy(x, torch.tensor(2)),
        [randn(5)],
    )
    x, t = randn(6, 5), _targets((6,), 5, ignore=0)
    for red in RED:
        check(
            lambda x, red=red: F.nll_loss(x, to_e(t), ignore_index=0, reduction=red),
            lambda x, red=red: TF.nll_loss(x, to_t(t), ignore_index=0, reduction=red),
            [x],
        )


def test_cross_entropy_finite_difference_and_double_backward():
    x, t = randn(4, 3, dtype=np.float64), _targets((4,), 3)
    w = np.abs(randn(3, seed=1, dtype=np.float64))
    numeric_grad_check(lambda x: F.cross_entropy(x, to_e(t), to_e(w)), [x])
    ex, tx = to_e(x, True), to_t(x, True)
    (g,) = ember.autograd.grad(F.cross_entropy(ex, to_e(t)), [ex], create_graph=True)
    (g * g).sum().backward()
    (tg,) = torch.autograd.grad(TF.cross_entropy(tx, to_t(t)), [tx], create_graph=True)
    (tg * tg).sum().backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8)


@pytest.mark.parametrize("reduction", RED)
def test_regression_losses(reduction):
    x, y = randn(3, 4), randn(3, 4, seed=1)
    r = {"reduction": reduction}
    check(lambda a, b: F.mse_loss(a, b, **r), lambda a, b: TF.mse_loss(a, b, **r), [x, y])
    check(lambda a, b: F.l1_loss(a, b, **r), lambda a, b: TF.l1_loss(a, b, **r), [x, y])
    for beta in (1.0, 0.5):
        check(
            lambda a, b, beta=beta: F.smooth_l1_loss(a, b, beta=beta, **r),
            lambda a, b, beta=beta: TF.smooth_l1_loss(a, b, beta=beta, **r),
            [x, y],
        )
        check(
            lambda a, b, beta=beta: F.huber_loss(a, b, delta=beta * 2, **r),
            lambda a, b, beta=beta: TF.huber_loss(a, b, delta=beta * 2, **r),
            [x, y],
        )


@pytest.mark.parametrize("reduction", RED)
def test_bce(reduction):
    p = 1 / (1 + np.exp(-randn(3, 4)))
    y = (randn(3, 4, seed=1) > 0).astype(np.float32)
    w = np.abs(randn(4, seed=2))
    check(
        lambda p: F.binary_cross_entropy(p, to_e(y), to_e(w), reduction=reduction),
        lambda p: TF.binary_cross_entropy(p, to_t(y), to_t(w), reduction=reduction),
        [p],
    )
    x = randn(3, 4) * 3
    pw = np.abs(randn(4, seed=3)) + 0.5
    check(
        lambda x: F.binary_cross_entropy_with_logits(x, to_e(y), reduction=reduction),
        lambda x: TF.binary_cross_entropy_with_logits(x, to_t(y), reduction=reduction),
        [x],
    )
    check(
        lambda x, y: F.binary_cross_entropy_with_logits(
            x, y, to_e(w), reduction=reduction, pos_weight=to_e(pw)
        ),
        lambda x, y: TF.binary_cross_entropy_with_logits(
            x, y, to_t(w), reduction=reduction, pos_weight=to_t(pw)
        ),
        [x, y],
    )


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
def test_kl_div(reduction):
    inp = np.log(np.abs(randn(3, 4)) + 0.1).astype(np.float32)
    tgt = np.abs(randn(3, 4, seed=1))
    tgt[0, 0] = 0
    check(
        lambda a, b: F.kl_div(a, b, reduction=reduction),
        lambda a, b: TF.kl_div(a, b, reduction=reduction),
        [inp, tgt],
        grad=[0],
    )
    tgt[0, 0] = 0.5
    check(
        lambda a, b: F.kl_div(a, b, reduction=reduction),
        lambda a, b: TF.kl_div(a, b, reduction=reduction),
        [inp, tgt],
    )
    lt = np.log(np.abs(randn(3, 4, seed=2)) + 0.1).astype(np.float32)
    check(
        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=True),
        lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=True),
        [inp, lt],
    )


def test_cosine_similarity():
    check(F.cosine_similarity, TF.cosine_similarity, [randn(4, 5), randn(4, 5, seed=1)])
    check(
        lambda a, b: F.cosine_similarity(a, b, dim=-1),
        lambda a, b: TF.cosine_similarity(a, b, dim=-1),
        [randn(4, 5), randn(1, 5, seed=1)],
    )


def test_loss_errors():
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(6,\)"):
        F.cross_entropy(to_e(randn(6, 5)), to_e(np.zeros(5, np.int64)))
    with pytest.raises(IndexError, match="cross_entropy: target 7 is out of bounds"):
        F.cross_entropy(to_e(randn(2, 5)), to_e(np.array([1, 7])))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(to_e(randn(2)), to_e(randn(2)), reduction="avg")
    with pytest.raises(ValueError, match="binary_cross_entropy: target size"):
        F.binary_cross_entropy(to_e(np.full(3, 0.5, np.float32)), to_e(np.ones(2, np.float32)))
