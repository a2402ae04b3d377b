"""Explicit float32 error bounds for comparing Ember with PyTorch.

Two float32 implementations of a sum of K products may each round differently (blocking,
summation order, fused multiply-add), so a fixed tolerance is either too loose for short sums
or too tight for long ones. The bounds here are computed per element from the data instead:

- ``multilinear_bound``: an op linear in each input (conv, linear, matmul) and its gradients.
  Each result is a sum of K products; its rounding error is at most ~sqrt(K) * eps times the
  sum of the absolute values of the products (the usual probabilistic bound; the worst case is
  K * eps). Both the term magnitudes and K come from the op itself, run on
  ``|inputs|`` and on all-ones inputs.
- ``batch_norm_bound``: training-mode batch norm (values and the three gradients), from the
  first-order error analysis of mean, variance and the normalised input over M = N*H*W.

``SAFETY`` covers the two implementations erring in opposite directions and the constant in
the probabilistic bound.
"""

from __future__ import annotations

import numpy as np
import torch

EPS32 = float(np.finfo(np.float32).eps)
SAFETY = 4.0


def assert_within(got, ref, bound, what=""):
    """``|got - ref| <= bound`` elementwise, with the worst offender in the message."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    bound = np.broadcast_to(np.asarray(bound, np.float64), ref.shape)
    err = np.abs(got - ref)
    bad = ~(err <= bound)  # NaN in either counts as a failure unless both are NaN
    bad &= ~(np.isnan(got) & np.isnan(ref))
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), ref.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {ref.size} elements differ beyond the float32 bound; "
            f"worst at {i}: got {got[i]!r}, ref {ref[i]!r}, |diff| {err[i]:.3g}, "
            f"bound {bound[i]:.3g}"
        )


def multilinear_bound(fn, inputs, grad_out):
    """Per-element error bounds for ``fn(*inputs)`` and its gradients w.r.t. every input.

    ``fn`` takes torch tensors and is linear in each of them (e.g. ``conv2d(x, w, b)``);
    ``grad_out`` is the output cotangent. Returns ``[bound_out, bound_grad_0, ...]``.
    """

    def run(arrays, g):
        # float32 is plenty for a bound (and counts are exact below 2**24); PyTorch's float64
        # convolutions are several times slower
        ts = [torch.tensor(np.asarray(a, np.float32), requires_grad=True) for a in arrays]
        y = fn(*ts)
        y.backward(torch.tensor(np.asarray(g, np.float32)))
        return [y.detach().numpy().astype(np.float64)] + [
            t.grad.numpy().astype(np.float64) for t in ts
        ]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: handing them to threads costs more than it saves
    try:
        mags = run([np.abs(a) for a in inputs], np.abs(grad_out))
        # terms per element: the same op on ones counts the products (padding excluded)
        counts = run([np.ones_like(a) for a in inputs], np.ones_like(grad_out))
    finally:
        torch.set_num_threads(threads)
    return [
        SAFETY * EPS32 * np.sqrt(np.maximum(k, 1.0)) * m + np.finfo(np.float32).tiny
        for m, k in zip(mags, counts)
    ]


def batch_norm_bound(x, weight, bias, grad_out, eps=1e-5):
    """Bounds for training-mode ``batch_norm(x, weight, bias)`` over axes (0, 2, 3, ...):
    returns ``(y, grad_x, grad_weight, grad_bias)`` bounds.

    Mean and variance are sums of M terms (error ~ sqrt(M) eps relative to their size); an
    offset |mean| >> std costs a further |mean|/std in the centred values. The normalised
    input inherits that relative error; the gradients add their own sums of M terms.
    """
    x = np.asarray(x, np.float64)
    g = np.asarray(grad_out, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    w = np.ones(x.shape[1]) if weight is None else np.abs(np.asarray(weight, np.float64))
    mu = x.mean(axes, keepdims=True)
    sd = np.sqrt(x.var(axes, keepdims=True) + eps)
    xhat = (x - mu) / sd
    w = w.reshape(shape)
    b = 0.0 if bias is None else np.abs(np.asarray(bias, np.float64)).reshape(shape)
    rel = EPS32 * np.sqrt(m) * (1.0 + np.abs(mu) / sd)  # relative error of xhat, per channel
    b_y = SAFETY * (
        w * rel * (1.0 + np.abs(xhat)) + EPS32 * (np.abs(w * xhat) + b)
    )  # + rounding of y
    mean_g = np.abs(g).mean(axes, keepdims=True)
    mean_gx = np.abs(g * xhat).mean(axes, keepdims=True)
    b_gx = SAFETY * rel * w / sd * (np.abs(g) + mean_g + np.abs(xhat) * mean_gx)
    sum_g = np.abs(g).sum(axes)
    b_gw = SAFETY * rel.reshape(-1) * np.abs(g * (1.0 + np.abs(xhat))).sum(axes)
    b_gb = SAFETY * EPS32 * np.sqrt(m) * sum_g
    tiny = np.finfo(np.float32).tiny
    return b_y + tiny, b_gx + tiny, b_gw + tiny, b_gb + tiny
