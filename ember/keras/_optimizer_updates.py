"""The updates of Keras 3's Lion, Ftrl, Adafactor and Adamax, which no ``ember.optim``
optimizer computes (Adamax: Keras adds ``epsilon`` to the running maximum, torch inside it).

As in :mod:`ember.optim._functional_more`, each algorithm is one in-place primitive whose
NumPy kernel updates the parameter and its state arrays in the order of operations of
Keras 3's ``update_step`` (``keras/src/optimizers/{lion,ftrl,adafactor,adamax}.py``), and
the step-dependent factors are computed inside the kernel from the state's ``step``. The
optimizers here are the ``ember.optim`` side that :mod:`ember.keras.optimizers` binds to the
weights; Keras' decoupled weight decay, clipping and schedules stay there.
"""

from __future__ import annotations

import numpy as np

from ember import _creation
from ember.optim._functional_more import _prim, _run, _samples, _t
from ember.optim.optimizer import Optimizer, _check_params_have_grad, _group_state

__all__: list[str] = []


def _f(x, like):
    """A Python scalar as the parameter's dtype (Keras casts its factors to the variable's)."""
    return like.dtype.type(x)


# -- Lion ------------------------------------------------------------------------------------
def _lion_impl(p, g, m, step_t, lr, beta_1, beta_2):
    step_t += 1
    upd = np.sign(m * _f(beta_1, p) + g * _f(1.0 - beta_1, p))
    np.subtract(p, _f(lr, p) * upd, out=p)
    np.add(m * _f(beta_2, p), g * _f(1.0 - beta_2, p), out=m)
    return p


# -- Ftrl ------------------------------------------------------------------------------------
def _ftrl_impl(p, g, accum, linear, step_t, lr, lr_power, l1, l2, l2_shrinkage, beta):
    step_t += 1
    lr_ = _f(lr, p)
    l2_reg = _f(l2, p) + _f(beta, p) / (_f(2.0, p) * lr_)
    grad = g + _f(2 * l2_shrinkage, p) * p
    new_accum = accum + np.square(g)
    pw = _f(-lr_power, p)
    np.add(linear, grad - (np.power(new_accum, pw) - np.power(accum, pw)) / lr_ * p, out=linear)
    quadratic = np.power(new_accum, pw) / lr_ + _f(2.0, p) * l2_reg
    clipped = np.clip(linear, _f(-l1, p), _f(l1, p))
    np.divide(clipped - linear, quadratic, out=p)
    accum[...] = new_accum
    return p


# -- Adafactor -------------------------------------------------------------------------------
def _rms(x):
    return np.sqrt(np.mean(np.square(x)))


def _adafactor_impl(
    p, g, r, c, v, step_t, lr, beta_2_decay, epsilon_1, epsilon_2, clip_threshold, relative_step
):
    step_t += 1
    t = _f(float(step_t), p)
    one = _f(1.0, p)
    lr_ = _f(lr, p)
    inv_sqrt = one / np.sqrt(t)
    if relative_step:
        lr_ = min(lr_, inv_sqrt)
    rho_t = min(lr_, inv_sqrt)
    alpha_t = max(_f(epsilon_2, p), _rms(p)) * rho_t
    reg = np.square(g) + _f(epsilon_1, p)
    beta_2_t = one - np.power(t, _f(beta_2_decay, p))
    if p.ndim >= 2:
        r[...] = beta_2_t * r + (one - beta_2_t) * reg.mean(axis=-1)
        c[...] = beta_2_t * c + (one - beta_2_t) * reg.mean(axis=-2)
        v[...] = np.expand_dims(r / r.mean(axis=-1, keepdims=True), -1) * np.expand_dims(c, -2)
    else:
        v[...] = beta_2_t * v + (one - beta_2_t) * reg
    u = g / np.sqrt(v)
    u_hat = u / max(one, _rms(u) / _f(clip_threshold, p))
    np.subtract(p, alpha_t * u_hat, out=p)
    return p


# -- Adamax ----------------------------------------------------------------------------------
def _adamax_impl(p, g, m, u, step_t, lr, beta_1, beta_2, epsilon):
    step_t += 1
    b1_power = np.power(_f(beta_1, p), _f(float(step_t), p))
    np.add(m, (g - m) * _f(1 - beta_1, p), out=m)
    np.maximum(_f(beta_2, p) * u, np.abs(g), out=u)
    denom = (_f(1.0, p) - b1_power) * (u + _f(epsilon, p))
    np.subtract(p, (_f(lr, p) * m) / denom, out=p)
    return p


lion_update_p = _prim("keras_lion_update", _lion_impl)
ftrl_update_p = _prim("keras_ftrl_update", _ftrl_impl)
adafactor_update_p = _prim("keras_adafactor_update", _adafactor_impl)
adamax_update_p = _prim("keras_adamax_update", _adamax_impl)


class _KerasUpdate(Optimizer):
    """An ``ember.optim`` optimizer running one of the primitives above: ``_prim``, the state
    (name -> initializer, in Keras' order) and the group options the kernel reads."""

    _prim = lion_update_p
    _options: tuple[str, ...] = ()

    def __init__(self, params, lr, **options):
        super().__init__(params, {"lr": lr, **options})

    def _init_state(self) -> dict:
        return {}

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            s = _group_state(self.state, params, self._init_state())
            names = list(self._init_state())
            _run(
                self._prim,
                [
                    (p, grads[i], *[s[k][i] for k in names], s["step"][i])
                    for i, p in enumerate(params)
                ],
                {"lr": group["lr"], **{k: group[k] for k in self._options}},
            )


class KerasLion(_KerasUpdate):
    _prim = lion_update_p
    _options = ("beta_1", "beta_2")

    def _init_state(self):
        return {"momentum": _creation.zeros_like}


class KerasFtrl(_KerasUpdate):
    _prim = ftrl_update_p
    _options = ("lr_power", "l1", "l2", "l2_shrinkage", "beta")

    def _init_state(self):
        init = self.defaults["initial_accumulator_value"]
        return {
            "accumulator": lambda p: _creation.full_like(p, init),
            "linear": _creation.zeros_like,
        }


def _factored(p, drop):
    if p.ndim < 2:
        return _creation.zeros((), dtype=p.dtype)
    shape = tuple(p.shape)
    return _creation.zeros(shape[:drop] + shape[drop + 1 :], dtype=p.dtype)


class KerasAdafactor(_KerasUpdate):
    _prim = adafactor_update_p
    _options = (
        "beta_2_decay",
        "epsilon_1",
        "epsilon_2",
        "clip_threshold",
        "relative_step",
    )

    def _init_state(self):
        return {
            "r": lambda p: _factored(p, p.ndim - 1),
            "c": lambda p: _factored(p, p.ndim - 2),
            "v": _creation.zeros_like,
        }


class KerasAdamax(_KerasUpdate):
    _prim = adamax_update_p
    _options = ("beta_1", "beta_2", "epsilon")

    def _init_state(self):
        return {"m": _creation.zeros_like, "u": _creation.zeros_like}


_samples(
    lion_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(fill=0.0)),
    {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.99},
)
_samples(
    ftrl_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 0.01, "lr_power": -0.5, "l1": 0.01, "l2": 0.01, "l2_shrinkage": 0.01, "beta": 0.1},
)
_samples(
    adafactor_update_p,
    lambda: (
        (_t(2, 3), _t(2, 3, seed=1), _t(2, fill=0.0), _t(3, fill=0.0), _t(2, 3, fill=0.0))
        + (_t(fill=0.0),)
    ),
    {
        "lr": 0.01,
        "beta_2_decay": -0.8,
        "epsilon_1": 1e-30,
        "epsilon_2": 1e-3,
        "clip_threshold": 1.0,
        "relative_step": True,
    },
)
_samples(
    adamax_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
)
