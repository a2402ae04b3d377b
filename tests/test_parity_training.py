"""Training parity with PyTorch on the five reference workloads.

Each test copies the PyTorch model's initial weights into the Ember model, trains both on
identical synthetic batches and compares the per-step losses and what training did to every
parameter and buffer (``w_final - w_init``), relative to the size of that change: a
parameter that never updates, or updates wrongly, fails even when its weights stay close to
PyTorch's. The fast suite runs shrunken variants; the full sizes and 50 steps run under
``-m slow``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import ember  # noqa: E402 - after the torch importorskip

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import workloads  # noqa: E402 - bench/ is put on the path above

# Full-size runs over 50 steps (``-m slow``): per-step loss tolerance. The recurrent and
# attention models accumulate more float32 rounding per step (long sequences, softmax).
TOL = {"mlp": 1e-4, "lenet": 1e-4, "resnet": 1e-4, "lstm": 1e-3, "gpt": 1e-3}
# Shrunken runs over 8 steps (the fast suite): all five stay within 3e-7 of PyTorch's loss.
SMALL_LOSS_TOL = 1e-5
# Per tensor, |change_ember - change_torch| / |change_torch| (L2 norms of w_final - w_init).
# Not 1e-5: the gradients of batch-norm scales and of biases are sums over the batch with
# heavy cancellation (resnet's layers.0.bn1.weight measures 1.5e-4). A parameter that never
# updates scores 1.0, and one updated with a 1% wrong gradient ~1e-2, so both fail.
CHANGE_TOL = 1e-3
# The whole model as one vector. Adam normalises each element's step, so elements with
# near-zero gradients turn their gradients' relative rounding error into full-size steps:
# gpt measures 1e-5 overall (3e-5 on qkv.weight); the other four stay under 2e-6.
SMALL_OVERALL_TOL = 1e-4


def _noise_only(name, key, shape):
    """Elements whose true gradient is exactly zero, so that their updates are rounding
    noise, normalised to full size by Adam; None when there are none."""
    if name == "gpt" and key.endswith("qkv.bias"):
        # the key bias adds q.b to every score of a query row: softmax cancels it
        d = shape[0] // 3
        mask = np.zeros(shape, bool)
        mask[d : 2 * d] = True
        return mask
    return None


def _run_pair(name, small, steps, tamper=None):
    torch.set_num_threads(2)
    tm, topt, tbatch, tloss = workloads.build(torch, name, small=small)
    em, eopt, _, eloss = workloads.build(ember, name, small=small)
    workloads.copy_weights(tm, em, ember)
    if tamper is not None:
        tamper(em, eopt)
    init = {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}
    batches = [tbatch() for _ in range(steps)]
    tl = workloads.train_steps(torch, tm, topt, tloss, batches)
    el = workloads.train_steps(ember, em, eopt, eloss, batches)
    return init, tm, em, np.array(tl), np.array(el)


def _check(name, small, steps, tamper=None, losses=True):
    init, tm, em, tl, el = _run_pair(name, small, steps, tamper)
    if losses:
        loss_tol = SMALL_LOSS_TOL if small else TOL[name]
        np.testing.assert_allclose(
            el, tl, rtol=loss_tol, atol=0, err_msg=f"{name}: per-step losses differ from PyTorch"
        )
    change_tol = CHANGE_TOL if small else max(CHANGE_TOL, 10 * TOL[name])
    tsd = tm.state_dict()
    esd = em.state_dict()
    assert set(tsd) == set(esd)
    num = den = 0.0
    for k, v in tsd.items():
        a = esd[k].detach().numpy() if hasattr(esd[k], "detach") else np.asarray(esd[k])
        b = v.detach().numpy()
        if b.dtype.kind != "f":
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: buffer {k} differs")
            continue
        # compare what training did (the change), not the weights: a frozen parameter keeps
        # weights close to PyTorch's after a few small steps, but its change is zero
        de = (a - init[k]).astype(np.float64)
        dt = (b - init[k]).astype(np.float64)
        noise = _noise_only(name, k, b.shape)
        if noise is not None:
            de, dt = de[~noise], dt[~noise]
        size = np.linalg.norm(dt)
        assert size > 0, f"{name}: PyTorch did not change {k}; nothing to compare"
        rel = np.linalg.norm(de - dt) / size
        assert rel <= change_tol, (
            f"{name}: the change of {k} differs from PyTorch's by {rel:.3g} of its size "
            f"(|change| ember {np.linalg.norm(de):.3g}, torch {size:.3g})"
        )
        num += float(((de - dt) ** 2).sum())
        den += float((dt**2).sum())
    overall = (num / den) ** 0.5
    overall_tol = SMALL_OVERALL_TOL if small else 10 * TOL[name]
    assert overall <= overall_tol, f"{name}: weight changes differ overall by {overall:.3g}"


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "lstm", "gpt"])
def test_parity_small(name):
    _check(name, small=True, steps=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "lstm", "gpt"])
def test_parity_full_50_steps(name):
    _check(name, small=False, steps=50)


def _freeze(param_name):
    def tamper(model, opt):
        dict(model.named_parameters())[param_name].requires_grad_(False)

    return tamper


def _scale_grad(param_name, factor):
    def tamper(model, opt):
        p = dict(model.named_parameters())[param_name]
        step = opt.step

        def scaled_step(*args, **kwargs):
            p.grad = p.grad * factor
            return step(*args, **kwargs)

        opt.step = scaled_step

    return tamper


@pytest.mark.parametrize(
    "name,tamper,culprit",
    [
        ("mlp", _freeze("fc2.bias"), "fc2.bias"),
        ("lenet", _freeze("0.weight"), "0.weight"),  # the first one checked
        ("lenet", _scale_grad("9.bias", 1.01), "9.bias"),
    ],
)
def test_parity_check_catches_a_parameter_that_trains_wrong(name, tamper, culprit):
    """The weight check alone (losses off) must fail when one Ember parameter never updates
    or takes a 1% wrong step, and name that parameter."""
    with pytest.raises(AssertionError, match=rf"change of {culprit} differs"):
        _check(name, small=True, steps=3, tamper=tamper, losses=False)


def test_dropout_statistics():
    """The mlp with dropout on: the mask keeps ~(1-p) of units and rescales by 1/(1-p)."""
    ember.manual_seed(0)
    drop = ember.nn.Dropout(0.2)
    x = ember.ones(200, 500)
    y = drop(x).numpy()
    kept = (y != 0).mean()
    assert abs(kept - 0.8) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.8, rtol=1e-6)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
