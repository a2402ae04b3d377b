"""The math of Adamax, NAdam and RAdam (see :mod:`._functional_more` and :mod:`._functional`).

One in-place primitive each, in the order of floating-point operations of PyTorch's
single-tensor implementations (``torch/optim/{adamax,nadam,radam}.py``); the step-dependent
factors are computed inside the kernels from the state arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ._functional import _grad_in, _scratch
from ._functional_more import _addcdiv, _common, _lerp_sq, _prim, _run, _samples, _t

__all__ = ["adamax", "nadam", "radam"]


# ---------------------------------------------------------------------------------------------
# Adamax
def _adamax_impl(p, g, exp_avg, exp_inf, step_t, lr, beta1, beta2, eps, weight_decay, maximize):
    step_t += 1
    g = _grad_in(g, p, maximize, weight_decay)
    tmp = _scratch(p, 0)
    _lerp_sq(g, exp_avg, None, beta1, beta2, tmp)
    np.multiply(exp_inf, beta2, out=exp_inf)
    np.abs(g, out=tmp)
    np.add(tmp, eps, out=tmp)
    np.maximum(exp_inf, tmp, out=exp_inf)
    clr = lr / (1 - beta1 ** float(step_t))
    _addcdiv(p, exp_avg, exp_inf, -clr, tmp)
    return p


adamax_update_p = _prim("adamax_update", _adamax_impl)


def adamax(
    params, grads, exp_avgs, exp_infs, state_steps, *, lr, beta1, beta2, eps, weight_decay, maximize
):
    """Adamax::

    g = (-grad if maximize else grad) + weight_decay * p
    m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
    p -= lr / (1 - beta1**t) * m / u
    """
    _run(
        adamax_update_p,
        [(p, grads[i], exp_avgs[i], exp_infs[i], state_steps[i]) for i, p in enumerate(params)],
        {
            "lr": lr,
            "beta1": beta1,
            "beta2": beta2,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
        },
    )


# ---------------------------------------------------------------------------------------------
# NAdam
def _nadam_impl(
    p,
    g,
    exp_avg,
    exp_avg_sq,
    mu_product,
    step_t,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    momentum_decay,
    decoupled,
    maximize,
):
    step_t += 1
    step = float(step_t)
    bias_correction2 = 1 - beta2**step
    if weight_decay != 0 and decoupled:
        np.multiply(p, 1 - lr * weight_decay, out=p)
        g = _grad_in(g, p, maximize, 0)
    else:
        g = _grad_in(g, p, maximize, weight_decay)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    np.multiply(mu_product, mu, out=mu_product)
    tmp, denom = _scratch(p, 0), _scratch(p, 3)
    _lerp_sq(g, exp_avg, exp_avg_sq, beta1, beta2, tmp)
    np.divide(exp_avg_sq, bias_correction2, out=denom)
    np.sqrt(denom, out=denom)
    np.add(denom, eps, out=denom)
    mu_prod = float(mu_product)
    _addcdiv(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_prod), tmp)
    _addcdiv(p, exp_avg, denom, (-lr * mu_next) / (1.0 - mu_prod * mu_next), tmp)
    return p


nadam_update_p = _prim("nadam_update", _nadam_impl)


def nadam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    mu_products,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    momentum_decay,
    decoupled_weight_decay=False,
    maximize=False,
):
    """NAdam (Dozat, 2016), with the momentum schedule ``mu_t``::

    mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay));  prod *= mu_t
    m, v as in Adam;  denom = sqrt(v / (1 - beta2**t)) + eps
    p -= lr * (1 - mu_t) / (1 - prod) * g / denom
    p -= lr * mu_{t+1} / (1 - prod * mu_{t+1}) * m / denom
    """
    _run(
        nadam_update_p,
        [
            (p, grads[i], exp_avgs[i], exp_avg_sqs[i], mu_products[i], state_steps[i])
            for i, p in enumerate(params)
        ],
        {
            "lr": lr,
            "beta1": beta1,
            "beta2": beta2,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled": decoupled_weight_decay,
            "maximize": maximize,
        },
    )


# ---------------------------------------------------------------------------------------------
# RAdam
def _radam_impl(
    p, g, exp_avg, exp_avg_sq, step_t, lr, beta1, beta2, eps, weight_decay, decoupled, maximize
):
    step_t += 1
    step = float(step_t)
    if weight_decay != 0 and decoupled:
        np.multiply(p, 1 - lr * weight_decay, out=p)
        g = _grad_in(g, p, maximize, 0)
    else:
        g = _grad_in(g, p, maximize, weight_decay)
    tmp, upd = _scratch(p, 0), _scratch(p, 3)
    _lerp_sq(g, exp_avg, exp_avg_sq, beta1, beta2, tmp)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    np.divide(exp_avg, bias_correction1, out=upd)
    np.multiply(upd, lr, out=upd)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect = math.sqrt(
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        )
        np.sqrt(exp_avg_sq, out=tmp)
        np.add(tmp, eps, out=tmp)
        np.divide(bias_correction2**0.5, tmp, out=tmp)
        np.multiply(upd, tmp, out=upd)
        np.multiply(upd, rect, out=upd)
    np.subtract(p, upd, out=p)
    return p


radam_update_p = _prim("radam_update", _radam_impl)


def radam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    state_steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled_weight_decay=False,
    maximize=False,
):
    """RAdam (Liu et al., 2019)::

    m, v as in Adam;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
    rho_t > 5: p -= lr * m / (1 - beta1**t) * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t
    otherwise: p -= lr * m / (1 - beta1**t)
    """
    _run(
        radam_update_p,
        [(p, grads[i], exp_avgs[i], exp_avg_sqs[i], state_steps[i]) for i, p in enumerate(params)],
        {
            "lr": lr,
            "beta1": beta1,
            "beta2": beta2,
            "eps": eps,
            "weight_decay": weight_decay,
            "decoupled": decoupled_weight_decay,
            "maximize": maximize,
        },
    )


# ---------------------------------------------------------------------------------------------
# Sample inputs for the registry tests.
_samples(
    adamax_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, **_common},
)
_samples(
    nadam_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=1.0), _t(fill=0.0)),
    {
        "lr": 0.1,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "momentum_decay": 4e-3,
        "decoupled": False,
        **_common,
    },
)
_samples(
    radam_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "decoupled": True, **_common},
)
