import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nnf_helpers import check, numeric_grad_check, randn, to_e, to_t

import ember
import ember.nn.functional as F


@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_updates_running_stats(shape, affine):
    x = randn(*shape) * 2 + 1
    c = shape[1]
    w, b = (randn(c, seed=1), randn(c, seed=2)) if affine else (None, None)
    erm, erv = to_e(np.zeros(c, np.float32)), to_e(np.ones(c, np.float32))
    trm, trv = torch.zeros(c), torch.ones(c)
    arrays = [x] + ([w, b] if affine else [])

    def fe(x, *wb):
        return F.batch_norm(x, erm, erv, *(wb or (None, None)), training=True, momentum=0.3)

    def ft(x, *wb):
        return TF.batch_norm(x, trm, trv, *(wb or (None, None)), training=True, momentum=0.3)

    check(fe, ft, arrays)
    np.testing.assert_allclose(erm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(erv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_eval_uses_running_stats():
    x, rm, rv, w, b = (
        randn(4, 3, 5),
        randn(3, seed=1),
        np.abs(randn(3, seed=2)) + 0.5,
        randn(3, seed=3),
        randn(3, seed=4),
    )
    check(
        lambda x, w, b: F.batch_norm(x, to_e(rm), to_e(rv), w, b, training=False),
        lambda x, w, b: TF.batch_norm(x, to_t(rm), to_t(rv), w, b, training=False),
        [x, w, b],
    )


def test_batch_norm_double_backward():
    x, w = randn(4, 3, 2, dtype=np.float64), randn(3, seed=1, dtype=np.float64)
    ex, ew = to_e(x, True), to_e(w, True)
    tx, tw = to_t(x, True), to_t(w, True)
    ge = ember.autograd.grad(
        (F.batch_norm(ex, None, None, ew, None, True) ** 3).sum(), [ex, ew], create_graph=True
    )
    gt = torch.autograd.grad(
        (TF.batch_norm(tx, None, None, tw, None, True) ** 3).sum(), [tx, tw], create_graph=True
    )
    sum((g * g).sum() for g in ge).backward()
    sum((g * g).sum() for g in gt).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ns", [(5,), (4, 5)])
def test_layer_norm(ns):
    x, w, b = randn(3, 4, 5), randn(*ns, seed=1), randn(*ns, seed=2)
    check(
        lambda x, w, b: F.layer_norm(x, ns, w, b),
        lambda x, w, b: TF.layer_norm(x, ns, w, b),
        [x, w, b],
        atol=1e-5,
    )
    check(lambda x: F.layer_norm(x, ns), lambda x: TF.layer_norm(x, ns), [x])


def test_layer_norm_finite_difference_and_double_backward():
    x, w, b = (
        randn(2, 4, dtype=np.float64),
        randn(4, seed=1, dtype=np.float64),
        randn(4, seed=2, dtype=np.float64),
    )
    numeric_grad_check(lambda x, w, b: F.layer_norm(x, (4,), w, b), [x, w, b])
    ex, ew = to_e(x, True), to_e(w, True)
    tx, tw = to_t(x, True), to_t(w, True)
    ge = ember.autograd.grad((F.layer_norm(ex, (4,), ew) ** 3).sum(), [ex, ew], create_graph=True)
    gt = torch.autograd.grad((TF.layer_norm(tx, (4,), tw) ** 3).sum(), [tx, tw], create_graph=True)
    sum((g * g).sum() for g in ge).backward()
    sum((g * g).sum() for g in gt).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ew.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_group_instance_rms_norm_and_normalize():
    x, w, b = randn(2, 6, 3, 4), randn(6, seed=1), randn(6, seed=2)
    check(
        lambda x, w, b: F.group_norm(x, 3, w, b),
        lambda x, w, b: TF.group_norm(x, 3, w, b),
        [x, w, b],
        atol=1e-5,
    )
    check(lambda x: F.instance_norm(x), lambda x: TF.instance_norm(x), [x])
    check(
        lambda x, w: F.rms_norm(x, (4,), w),
        lambda x, w: TF.rms_norm(x, (4,), w),
        [x, randn(4, seed=3)],
        atol=1e-5,
    )
    check(lambda x: F.normalize(x, dim=1), lambda x: TF.normalize(x, dim=1), [x])
    check(lambda x: F.normalize(x, p=1, dim=-1), lambda x: TF.normalize(x, p=1, dim=-1), [x])


def test_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: weight should have shape \(3,\)"):
        F.batch_norm(to_e(randn(2, 3)), None, None, to_e(randn(4)), training=True)
    with pytest.raises(ValueError, match="layer_norm: normalized_shape"):
        F.layer_norm(to_e(randn(2, 3)), (4,))
    with pytest.raises(ValueError, match="group_norm: .*divisible"):
        F.group_norm(to_e(randn(2, 6, 3)), 4)
