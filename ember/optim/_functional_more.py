"""The math of Adadelta, ASGD and Rprop (Adamax, NAdam, RAdam: :mod:`._functional_adam`; see
:mod:`._functional`).

As there, each algorithm is one in-place :class:`~ember.ops.Primitive` whose NumPy kernel
updates the parameter and its state arrays with ``out=`` arguments, in the order of
floating-point operations of PyTorch's single-tensor implementations
(``torch/optim/{adadelta,asgd,rprop}.py``). Everything that depends on the
step count is computed inside the kernel from the state arrays, so that compiled training
steps read it at run time.
"""

from __future__ import annotations

import numpy as np

from ..ops._core import SAVE_NONE, Primitive, _state, bind
from ..ops._samples import defsample
from ._functional import _grad_in, _same_aval, _scratch

__all__ = ["adadelta", "asgd", "rprop"]


def _prim(name, impl):
    return Primitive(name, "inplace", impl=impl, abstract=_same_aval, save=SAVE_NONE, nondiff=True)


def _run(prim, per_param, params):
    """Bind ``prim`` once per parameter: ``per_param`` is a list of input tuples (the
    parameter first); every Tensor input is updated in place (its version is bumped)."""
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for args in per_param:
            bind(prim, args, params)
            for i, t in enumerate(args):
                if t is not None and i != 1:  # (input 1 is the gradient, left as it is)
                    t._version[0] += 1
    finally:
        _state.grad_enabled = prev


def _addcdiv(p, t1, t2, value, tmp):
    # p.addcdiv_(t1, t2, value=value): p + value * t1 / t2
    np.multiply(t1, value, out=tmp)
    np.divide(tmp, t2, out=tmp)
    np.add(p, tmp, out=p)


def _lerp_sq(g, exp_avg, exp_avg_sq, beta1, beta2, tmp):
    # exp_avg.lerp_(g, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    np.subtract(g, exp_avg, out=tmp)
    np.multiply(tmp, 1 - beta1, out=tmp)
    np.add(exp_avg, tmp, out=exp_avg)
    if exp_avg_sq is not None:
        np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
        np.multiply(g, 1 - beta2, out=tmp)
        np.multiply(tmp, g, out=tmp)
        np.add(exp_avg_sq, tmp, out=exp_avg_sq)


# ---------------------------------------------------------------------------------------------
# Adadelta
def _adadelta_impl(p, g, square_avg, acc_delta, step_t, lr, rho, eps, weight_decay, maximize):
    step_t += 1
    g = _grad_in(g, p, maximize, weight_decay)
    tmp, delta = _scratch(p, 0), _scratch(p, 3)
    np.multiply(square_avg, rho, out=square_avg)
    np.multiply(g, 1 - rho, out=tmp)
    np.multiply(tmp, g, out=tmp)
    np.add(square_avg, tmp, out=square_avg)
    np.add(square_avg, eps, out=tmp)
    np.sqrt(tmp, out=tmp)  # std
    np.add(acc_delta, eps, out=delta)
    np.sqrt(delta, out=delta)
    np.divide(delta, tmp, out=delta)
    np.multiply(delta, g, out=delta)
    np.multiply(acc_delta, rho, out=acc_delta)
    np.multiply(delta, 1 - rho, out=tmp)
    np.multiply(tmp, delta, out=tmp)
    np.add(acc_delta, tmp, out=acc_delta)
    np.multiply(delta, -lr, out=tmp)
    np.add(p, tmp, out=p)
    return p


adadelta_update_p = _prim("adadelta_update", _adadelta_impl)


def adadelta(
    params, grads, square_avgs, acc_deltas, state_steps, *, lr, rho, eps, weight_decay, maximize
):
    """Adadelta::

    g = (-grad if maximize else grad) + weight_decay * p
    v = rho * v + (1 - rho) * g * g
    d = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho * u + (1 - rho) * d * d
    p -= lr * d
    """
    _run(
        adadelta_update_p,
        [
            (p, grads[i], square_avgs[i], acc_deltas[i], state_steps[i])
            for i, p in enumerate(params)
        ],
        {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize},
    )


# ---------------------------------------------------------------------------------------------
# ASGD
def _asgd_impl(p, g, ax, mu, eta, step_t, lr, lambd, alpha, t0, weight_decay, maximize):
    step_t += 1
    g = _grad_in(g, p, maximize, weight_decay)
    tmp = _scratch(p, 0)
    eta_value = float(eta)
    np.multiply(p, 1 - lambd * eta_value, out=p)
    np.multiply(g, -eta_value, out=tmp)
    np.add(p, tmp, out=p)
    if float(mu) != 1:
        np.subtract(p, ax, out=tmp)
        np.multiply(tmp, mu, out=tmp)
        np.add(ax, tmp, out=ax)
    else:
        np.copyto(ax, p)
    step = float(step_t)
    eta[...] = lr / ((1 + lambd * lr * step) ** alpha)
    mu[...] = 1 / max(1, step - t0)
    return p


asgd_update_p = _prim("asgd_update", _asgd_impl)


def asgd(
    params, grads, axs, mus, etas, state_steps, *, lr, lambd, alpha, t0, weight_decay, maximize
):
    """Averaged SGD (Polyak & Juditsky, 1992)::

    g = (-grad if maximize else grad) + weight_decay * p
    p = p * (1 - lambd * eta) - eta * g;  ax += mu * (p - ax)  (ax = p while mu == 1)
    eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)
    """
    _run(
        asgd_update_p,
        [(p, grads[i], axs[i], mus[i], etas[i], state_steps[i]) for i, p in enumerate(params)],
        {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
            "weight_decay": weight_decay,
            "maximize": maximize,
        },
    )


# ---------------------------------------------------------------------------------------------
# Rprop
def _rprop_impl(
    p, g, prev, step_size, step_t, step_size_min, step_size_max, etaminus, etaplus, maximize
):
    step_t += 1
    g = _grad_in(g, p, maximize, 0)
    sign = _scratch(p, 0)
    np.multiply(g, prev, out=sign)
    np.sign(sign, out=sign)
    pos, neg = sign > 0, sign < 0
    sign[pos] = etaplus
    sign[neg] = etaminus
    sign[sign == 0] = 1
    np.multiply(step_size, sign, out=step_size)
    np.clip(step_size, step_size_min, step_size_max, out=step_size)
    np.copyto(prev, g)
    prev[sign == etaminus] = 0
    np.sign(prev, out=sign)
    np.multiply(sign, step_size, out=sign)
    np.subtract(p, sign, out=p)
    return p


rprop_update_p = _prim("rprop_update", _rprop_impl)


def rprop(
    params,
    grads,
    prevs,
    step_sizes,
    state_steps,
    *,
    step_size_min,
    step_size_max,
    etaminus,
    etaplus,
    maximize,
):
    """Rprop (Riedmiller & Braun, 1993)::

    s = sign(g * prev) -> etaplus (> 0), etaminus (< 0), 1 (0)
    step_size = clamp(step_size * s, step_size_min, step_size_max)
    g = 0 where s == etaminus;  p -= sign(g) * step_size;  prev = g
    """
    _run(
        rprop_update_p,
        [(p, grads[i], prevs[i], step_sizes[i], state_steps[i]) for i, p in enumerate(params)],
        {
            "step_size_min": step_size_min,
            "step_size_max": step_size_max,
            "etaminus": etaminus,
            "etaplus": etaplus,
            "maximize": maximize,
        },
    )


# ---------------------------------------------------------------------------------------------
# Sample inputs for the registry tests (each primitive bound on small float64 tensors).
def _t(*shape, fill=None, seed=0):
    from .._creation import tensor

    if fill is not None:
        return tensor(np.full(shape, fill, dtype=np.float64))
    return tensor(np.random.default_rng(seed).standard_normal(shape))


def _samples(prim, make, params):
    defsample(prim, lambda: [(make(), params)])


_common = {"weight_decay": 0.1, "maximize": False}
_samples(
    adadelta_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 1.0, "rho": 0.9, "eps": 1e-6, **_common},
)
_samples(
    asgd_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(fill=1.0), _t(fill=0.01), _t(fill=0.0)),
    {"lr": 0.01, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, **_common},
)
_samples(
    rprop_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.01), _t(fill=0.0)),
    {"step_size_min": 1e-6, "step_size_max": 50, "etaminus": 0.5, "etaplus": 1.2, "maximize": True},
)
