"""Adafactor (Shazeer & Stern, 2018), as ``torch.optim.Adafactor``: the second moment of a
matrix parameter kept as a row and a column factor.

As the other optimizers (:mod:`._functional_more`), each update is one in-place primitive per
parameter (``adafactor_update`` for vectors, ``adafactor_factored_update`` for parameters of
two or more dims) whose NumPy kernel follows the floating-point order of PyTorch's
single-tensor implementation (``torch/optim/_adafactor.py``); the step count is read from the
state tensor inside the kernel, so compiled training steps see it at run time.
"""

from __future__ import annotations

import numpy as np

from .. import _creation
from ._functional import _grad_in, _scratch
from ._functional_more import _prim, _run, _samples, _t
from .optimizer import Optimizer, _check_params_have_grad

__all__ = ["Adafactor"]


def _lerp(a, b, w, tmp):
    # a.lerp_(b, w) with PyTorch's formula (exact at w == 1)
    np.subtract(b, a, out=tmp)
    if abs(w) < 0.5:
        np.multiply(tmp, w, out=tmp)
        np.add(a, tmp, out=a)
    else:
        np.multiply(tmp, 1 - w, out=tmp)
        np.subtract(b, tmp, out=a)


def _scalars(p, step_t, lr, beta2_decay, eps1, eps2, weight_decay):
    """Bump the step; return (1 - beta2_t, alpha, eps1) and apply the decoupled weight decay."""
    step_t += 1
    step = float(step_t)
    one_minus_beta2_t = step**beta2_decay
    rho_t = min(lr, 1 / (step**0.5))
    norm = float(np.sqrt(np.sum(np.square(p))))
    alpha = max(eps2, norm / (p.size**0.5)) * rho_t
    if eps1 is None:
        eps1 = float(np.finfo(p.dtype).eps)
    if weight_decay != 0:
        np.multiply(p, 1 - lr * weight_decay, out=p)
    return one_minus_beta2_t, alpha, eps1


def _apply_update(p, g, var_estimate, eps1, alpha, d):
    # update = rsqrt(clamp(var_estimate, eps1**2)) * g;  p -= alpha / max(1, rms(update) / d)
    np.maximum(var_estimate, eps1 * eps1, out=var_estimate)
    np.sqrt(var_estimate, out=var_estimate)
    np.divide(1, var_estimate, out=var_estimate)
    np.multiply(var_estimate, g, out=var_estimate)
    unorm = float(np.sqrt(np.sum(np.square(var_estimate))))
    denom = max(1.0, unorm / ((var_estimate.size**0.5) * d))
    np.multiply(var_estimate, -alpha / denom, out=var_estimate)
    np.add(p, var_estimate, out=p)


def _adafactor_impl(p, g, variance, step_t, lr, beta2_decay, eps1, eps2, d, weight_decay, maximize):
    g = _grad_in(g, p, maximize, 0)
    w, alpha, eps1 = _scalars(p, step_t, lr, beta2_decay, eps1, eps2, weight_decay)
    tmp = _scratch(p, 0)
    np.multiply(g, g, out=tmp)
    _lerp(variance, tmp, w, _scratch(p, 3))
    var_estimate = _scratch(p, 0)
    np.copyto(var_estimate, variance)
    _apply_update(p, g, var_estimate, eps1, alpha, d)
    return p


def _adafactor_factored_impl(
    p, g, row_var, col_var, step_t, lr, beta2_decay, eps1, eps2, d, weight_decay, maximize
):
    g = _grad_in(g, p, maximize, 0)
    w, alpha, eps1 = _scalars(p, step_t, lr, beta2_decay, eps1, eps2, weight_decay)
    sq = _scratch(p, 0)
    np.multiply(g, g, out=sq)
    # (g * g).mean(-1) as PyTorch computes it: norm(g, dim=-1) ** 2 / size(-1)
    row_mean = np.sqrt(np.sum(sq, axis=-1, keepdims=True))
    np.multiply(row_mean, row_mean, out=row_mean)
    np.divide(row_mean, g.shape[-1], out=row_mean)
    _lerp(row_var, row_mean, w, np.empty_like(row_mean))
    col_mean = np.sqrt(np.sum(sq, axis=-2, keepdims=True))
    np.multiply(col_mean, col_mean, out=col_mean)
    np.divide(col_mean, g.shape[-2], out=col_mean)
    _lerp(col_var, col_mean, w, np.empty_like(col_mean))
    var_estimate = _scratch(p, 0)
    np.matmul(row_var, col_var, out=var_estimate)
    r = np.mean(row_var, axis=-2, keepdims=True)
    np.maximum(r, eps1, out=r)
    np.divide(var_estimate, r, out=var_estimate)
    _apply_update(p, g, var_estimate, eps1, alpha, d)
    return p


adafactor_update_p = _prim("adafactor_update", _adafactor_impl)
adafactor_factored_update_p = _prim("adafactor_factored_update", _adafactor_factored_impl)


def adafactor(
    params,
    grads,
    row_vars,
    col_vars,
    variances,
    state_steps,
    *,
    lr,
    beta2_decay,
    eps1,
    eps2,
    d,
    weight_decay,
    maximize,
):
    """Adafactor's update of each parameter (see :class:`Adafactor`)."""
    hyper = {
        "lr": lr,
        "beta2_decay": beta2_decay,
        "eps1": eps1,
        "eps2": eps2,
        "d": d,
        "weight_decay": weight_decay,
        "maximize": maximize,
    }
    vec = [
        (p, grads[i], variances[i], state_steps[i])
        for i, p in enumerate(params)
        if variances[i] is not None
    ]
    mat = [
        (p, grads[i], row_vars[i], col_vars[i], state_steps[i])
        for i, p in enumerate(params)
        if variances[i] is None
    ]
    _run(adafactor_update_p, vec, hyper)
    _run(adafactor_factored_update_p, mat, hyper)


class Adafactor(Optimizer):
    """Adafactor, as ``torch.optim.Adafactor``.

    Algorithm (step ``t``; ``beta2_t = 1 - t ** beta2_decay``; ``eps1`` defaults to the
    dtype's machine epsilon)::

        g = -g if maximize;  rho = min(lr, 1 / sqrt(t));  alpha = max(eps2, rms(p)) * rho
        p = p * (1 - lr * weight_decay)
        matrices (last two dims): R = beta2_t R + (1 - beta2_t) mean(g*g, -1)
                                  C = beta2_t C + (1 - beta2_t) mean(g*g, -2)
                                  v = R @ C / max(mean(R, -2), eps1)
        vectors:                  v = beta2_t v + (1 - beta2_t) g*g
        u = g / sqrt(max(v, eps1**2));  p = p - alpha / max(1, rms(u) / d) * u

    Per-parameter state: ``step`` and ``row_var``/``col_var`` (two or more dims) or
    ``variance`` (one dim).

    Example:
        >>> import ember
        >>> w = ember.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
        >>> opt = ember.optim.Adafactor([w], lr=0.01)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> sorted(opt.state[w])
        ['col_var', 'row_var', 'step']
        >>> [round(v, 4) for v in w.flatten().tolist()]
        [0.9904, -1.9707, 2.9789, 0.4946]
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        beta2_decay=-0.8,
        eps=(None, 1e-3),
        d=1.0,
        weight_decay=0.0,
        *,
        foreach=None,
        maximize=False,
    ):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            raise TypeError(f"Adafactor: lr must be a float, got {type(lr).__name__}")
        if not lr >= 0.0:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not beta2_decay <= 0.0:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise ValueError(f"eps should be a pair (eps1 or None, eps2), got {eps!r}")
        if eps[0] is not None and not eps[0] >= 0.0:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not eps[1] >= 0.0:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not d >= 1.0:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr,
            "beta2_decay": beta2_decay,
            "eps": tuple(eps),
            "d": d,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _update(self):
        from .. import _dtype as dt

        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            row_vars, col_vars, variances, steps = [], [], [], []
            for p, g in zip(params, grads):
                if p.is_complex():
                    raise RuntimeError("Adafactor does not support complex parameters")
                st = self.state[p]
                if not st:
                    st["step"] = _creation.tensor(0.0, dtype=dt.float32)
                    if g.dim() > 1:
                        st["row_var"] = g.new_zeros((*g.shape[:-1], 1))
                        st["col_var"] = g.new_zeros((*g.shape[:-2], 1, g.shape[-1]))
                    else:
                        st["variance"] = _creation.zeros_like(g)
                row_vars.append(st.get("row_var"))
                col_vars.append(st.get("col_var"))
                variances.append(st.get("variance"))
                steps.append(st["step"])
            eps1, eps2 = group["eps"]
            adafactor(
                params,
                grads,
                row_vars,
                col_vars,
                variances,
                steps,
                lr=group["lr"],
                beta2_decay=group["beta2_decay"],
                eps1=eps1,
                eps2=eps2,
                d=group["d"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )


_samples(
    adafactor_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(fill=0.0)),
    {
        "lr": 0.01,
        "beta2_decay": -0.8,
        "eps1": None,
        "eps2": 1e-3,
        "d": 1.0,
        "weight_decay": 0.1,
        "maximize": True,
    },
)
_samples(
    adafactor_factored_update_p,
    lambda: (_t(2, 3), _t(2, 3, seed=1), _t(2, 1, fill=0.0), _t(1, 3, fill=0.0), _t(fill=0.0)),
    {
        "lr": 0.01,
        "beta2_decay": -0.8,
        "eps1": 1e-30,
        "eps2": 1e-3,
        "d": 1.0,
        "weight_decay": 0.0,
        "maximize": False,
    },
)
