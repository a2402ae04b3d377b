"""Training parity with PyTorch on the five reference workloads.

Each test copies the PyTorch model's initial weights into the Ember model, trains both on
identical synthetic batches and compares the per-step losses and the final weights. The
fast suite runs shrunken variants; the full sizes and 50 steps run under ``-m slow``.
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

TOL = {"mlp": 1e-4, "lenet": 1e-4, "resnet": 1e-4, "lstm": 1e-3, "gpt": 1e-3}


def _run_pair(name, small, steps):
    torch.set_num_threads(2)
    tm, topt, tbatch, tloss = workloads.build(torch, name, small=small)
    em, eopt, _, eloss = workloads.build(ember, name, small=small)
    workloads.copy_weights(tm, em, ember)
    batches = [tbatch() for _ in range(steps)]
    tl = workloads.train_steps(torch, tm, topt, tloss, batches)
    el = workloads.train_steps(ember, em, eopt, eloss, batches)
    return tm, em, np.array(tl), np.array(el)


def _check(name, small, steps):
    tm, em, tl, el = _run_pair(name, small, steps)
    tol = TOL[name]
    np.testing.assert_allclose(
        el, tl, rtol=tol, atol=tol * 1e-2, err_msg=f"{name}: per-step losses differ from PyTorch"
    )
    tsd = tm.state_dict()
    esd = em.state_dict()
    assert set(tsd) == set(esd)
    num = den = 0.0
    for k, v in tsd.items():
        a = esd[k].detach().numpy() if hasattr(esd[k], "detach") else np.asarray(esd[k])
        b = v.detach().numpy()
        if b.dtype.kind == "f":
            # Per tensor, relative to its scale; tensors near zero (biases) are compared on an
            # absolute floor, since their gradients are sums with heavy cancellation.
            scale = max(np.abs(b).max(), 0.05)
            assert np.abs(a - b).max() <= 20 * tol * scale, f"{name}: final weight {k} differs"
            num += float(((a - b).astype(np.float64) ** 2).sum())
            den += float((b.astype(np.float64) ** 2).sum())
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: buffer {k} differs")
    # and the whole model, as one vector, within 10x the loss tolerance
    assert (num / den) ** 0.5 <= 10 * tol, f"{name}: final weights differ overall"


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "lstm", "gpt"])
def test_parity_small(name):
    _check(name, small=True, steps=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet", "lstm", "gpt"])
def test_parity_full_50_steps(name):
    _check(name, small=False, steps=50)


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
