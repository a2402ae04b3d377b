"""The updates of Keras 3's optimizers, which differ from ``ember.optim``'s (PyTorch's):
Keras adds ``epsilon`` where torch does not (Adam: to ``sqrt(v)`` with the bias correction
folded into the rate; RMSprop, Adagrad: inside the square root), folds the rate into SGD's
momentum, and has updates torch lacks (Lion, Ftrl, Adafactor).

As in :mod:`ember.optim._functional_more`, each algorithm is one in-place primitive whose
NumPy kernel updates the parameter and its state arrays in the order of operations of
Keras 3's ``update_step`` on the torch backend (``keras/src/optimizers/*.py`` and
``keras/src/backend/torch/optimizers/*.py``), with its factors cast to the weight's dtype.
The step-dependent factors use Keras' ``iterations + 1`` (the ``t`` parameter: updates of
the optimizer, also counted for a weight without a gradient). The optimizers here are the
``ember.optim`` side that :mod:`ember.keras.optimizers` binds to the weights; Keras'
decoupled weight decay, clipping and schedules stay there.
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
    p, g, r, c, v, step_t, lr, t, beta_2_decay, epsilon_1, epsilon_2, clip_threshold, relative_step
):
    step_t += 1
    t = _f(float(t), p)
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
def _adamax_impl(p, g, m, u, step_t, lr, t, beta_1, beta_2, epsilon):
    step_t += 1
    b1_power = np.power(_f(beta_1, p), _f(float(t), p))
    np.add(m, (g - m) * _f(1 - beta_1, p), out=m)
    np.maximum(_f(beta_2, p) * u, np.abs(g), out=u)
    denom = (_f(1.0, p) - b1_power) * (u + _f(epsilon, p))
    np.subtract(p, (_f(lr, p) * m) / denom, out=p)
    return p


# -- SGD -------------------------------------------------------------------------------------
def _sgd_impl(p, g, m, step_t, lr, momentum, nesterov):
    # Keras folds the rate into the momentum: m = momentum m - lr g; w += m (nesterov:
    # w += momentum m - lr g)
    step_t += 1
    lr_ = _f(lr, p)
    if m is None:
        np.subtract(p, g * lr_, out=p)
        return p
    mom = _f(momentum, p)
    np.subtract(m * mom, g * lr_, out=m)
    if nesterov:
        np.subtract(p, g * lr_, out=p)
        np.add(p, m * mom, out=p)
    else:
        np.add(p, m, out=p)
    return p


# -- Adam ------------------------------------------------------------------------------------
def _adam_impl(p, g, m, v, v_hat, step_t, lr, t, beta_1, beta_2, epsilon):
    # w -= alpha m / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
    step_t += 1
    t_ = _f(float(t), p)
    one = _f(1.0, p)
    b1_power = np.power(_f(beta_1, p), t_)
    b2_power = np.power(_f(beta_2, p), t_)
    alpha = _f(lr, p) * np.sqrt(one - b2_power) / (one - b1_power)
    np.add(m * _f(beta_1, p), g * _f(1.0 - beta_1, p), out=m)
    np.add(v * _f(beta_2, p), (g * g) * _f(1.0 - beta_2, p), out=v)
    if v_hat is not None:  # amsgrad
        np.maximum(v_hat, v, out=v_hat)
        v = v_hat
    np.subtract(p, (m * alpha) / (np.sqrt(v) + _f(epsilon, p)), out=p)
    return p


# -- Nadam -----------------------------------------------------------------------------------
def _nadam_u(beta_1, step, like):
    """Keras' momentum schedule ``beta_1 (1 - 0.5 * 0.96^step)`` in ``like``'s dtype."""
    return _f(beta_1, like) * (
        _f(1.0, like) - _f(0.5, like) * np.power(_f(0.96, like), _f(float(step), like))
    )


def _nadam_impl(p, g, m, v, step_t, lr, t, u_product, beta_1, beta_2, epsilon):
    # ``u_product``: the product of the schedule up to ``t`` (Keras' optimizer-wide variable)
    step_t += 1
    one = _f(1.0, p)
    u_t, u_t_1 = _nadam_u(beta_1, t, p), _nadam_u(beta_1, t + 1, p)
    u_product_t = _f(u_product, p)
    u_product_t_1 = u_product_t * u_t_1
    b2_power = np.power(_f(beta_2, p), _f(float(t), p))
    np.add(m * _f(beta_1, p), g * _f(1.0 - beta_1, p), out=m)
    np.add(v * _f(beta_2, p), (g * g) * _f(1.0 - beta_2, p), out=v)
    m_hat = (m * u_t_1) / (one - u_product_t_1) + (g * (one - u_t)) / (one - u_product_t)
    v_hat = v / (one - b2_power)
    np.subtract(p, (m_hat * _f(lr, p)) / (np.sqrt(v_hat) + _f(epsilon, p)), out=p)
    return p


# -- RMSprop ---------------------------------------------------------------------------------
def _rmsprop_impl(p, g, velocity, mom_buf, avg_grad, step_t, lr, rho, momentum, epsilon):
    # w -= lr g / sqrt(velocity + epsilon) (centered: velocity - avg_grad^2 + epsilon),
    # through the momentum buffer when momentum > 0
    step_t += 1
    np.add(velocity * _f(rho, p), (g * g) * _f(1.0 - rho, p), out=velocity)
    denominator = velocity + _f(epsilon, p)
    if avg_grad is not None:  # centered
        np.add(avg_grad * _f(rho, p), g * _f(1.0 - rho, p), out=avg_grad)
        denominator = denominator - avg_grad * avg_grad
    increment = (g * _f(lr, p)) / np.sqrt(denominator)
    if mom_buf is not None:
        np.add(mom_buf * _f(momentum, p), increment, out=mom_buf)
        np.subtract(p, mom_buf, out=p)
    else:
        np.subtract(p, increment, out=p)
    return p


# -- Adagrad ---------------------------------------------------------------------------------
def _adagrad_impl(p, g, accumulator, step_t, lr, epsilon):
    # w -= lr g / sqrt(accumulator + epsilon)
    step_t += 1
    np.add(accumulator, g * g, out=accumulator)
    np.subtract(p, (g * _f(lr, p)) / np.sqrt(accumulator + _f(epsilon, p)), out=p)
    return p


# -- Adadelta --------------------------------------------------------------------------------
def _adadelta_impl(p, g, acc_grad, acc_delta, step_t, lr, rho, epsilon):
    step_t += 1
    eps = _f(epsilon, p)
    np.add(acc_grad * _f(rho, p), (g * g) * _f(1.0 - rho, p), out=acc_grad)
    delta = -((np.sqrt(acc_delta + eps) * g) / np.sqrt(acc_grad + eps))
    np.add(acc_delta * _f(rho, p), (delta * delta) * _f(1.0 - rho, p), out=acc_delta)
    np.add(p, delta * _f(lr, p), out=p)
    return p


lion_update_p = _prim("keras_lion_update", _lion_impl)
ftrl_update_p = _prim("keras_ftrl_update", _ftrl_impl)
adafactor_update_p = _prim("keras_adafactor_update", _adafactor_impl)
adamax_update_p = _prim("keras_adamax_update", _adamax_impl)
sgd_update_p = _prim("keras_sgd_update", _sgd_impl)
adam_update_p = _prim("keras_adam_update", _adam_impl)
nadam_update_p = _prim("keras_nadam_update", _nadam_impl)
rmsprop_update_p = _prim("keras_rmsprop_update", _rmsprop_impl)
adagrad_update_p = _prim("keras_adagrad_update", _adagrad_impl)
adadelta_update_p = _prim("keras_adadelta_update", _adadelta_impl)


class _KerasUpdate(Optimizer):
    """An ``ember.optim`` optimizer running one of the primitives above: ``_prim``, the state
    slots the kernel takes (``_slots``, in Keras' order; ``_init_state`` creates those this
    configuration uses, the others reach the kernel as None), the group options it reads and
    whether it reads Keras' step ``t``. :mod:`ember.keras.optimizers` sets ``iterations``
    (Keras' count) before each step; used alone, the optimizer counts its own steps."""

    _prim = lion_update_p
    _slots: tuple[str, ...] = ()
    _options: tuple[str, ...] = ()
    _uses_t = False

    def __init__(self, params, lr, **options):
        super().__init__(params, {"lr": lr, **options})
        self.iterations = 0

    def _init_state(self) -> dict:
        return {}

    def _params(self, group) -> dict:
        """The kernel's parameters for ``group`` at this step."""
        params = {"lr": group["lr"], **{k: group[k] for k in self._options}}
        if self._uses_t:
            params["t"] = self.iterations + 1
        return params

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            s = _group_state(self.state, params, self._init_state())
            _run(
                self._prim,
                [
                    (p, grads[i], *[s[k][i] if k in s else None for k in self._slots])
                    + (s["step"][i],)
                    for i, p in enumerate(params)
                ],
                self._params(group),
            )
        self.iterations += 1


class KerasLion(_KerasUpdate):
    _prim = lion_update_p
    _slots = ("momentum",)
    _options = ("beta_1", "beta_2")

    def _init_state(self):
        return {"momentum": _creation.zeros_like}


class KerasFtrl(_KerasUpdate):
    _prim = ftrl_update_p
    _slots = ("accumulator", "linear")
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
    _slots = ("r", "c", "v")
    _uses_t = True
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
    _slots = ("m", "u")
    _uses_t = True
    _options = ("beta_1", "beta_2", "epsilon")

    def _init_state(self):
        return {"m": _creation.zeros_like, "u": _creation.zeros_like}


class KerasSGD(_KerasUpdate):
    _prim = sgd_update_p
    _slots = ("momentum",)
    _options = ("momentum", "nesterov")

    def _init_state(self):
        # (Keras creates the momentum only when it is not 0)
        return {"momentum": _creation.zeros_like} if self.defaults["momentum"] != 0 else {}


class KerasAdam(_KerasUpdate):
    _prim = adam_update_p
    _slots = ("momentum", "velocity", "velocity_hat")
    _uses_t = True
    _options = ("beta_1", "beta_2", "epsilon")

    def _init_state(self):
        state = {"momentum": _creation.zeros_like, "velocity": _creation.zeros_like}
        if self.defaults["amsgrad"]:
            state["velocity_hat"] = _creation.zeros_like
        return state


class KerasNadam(_KerasUpdate):
    _prim = nadam_update_p
    _slots = ("momentum", "velocity")
    _uses_t = True
    _options = ("beta_1", "beta_2", "epsilon")

    def _init_state(self):
        return {"momentum": _creation.zeros_like, "velocity": _creation.zeros_like}

    def _params(self, group):
        # Keras' ``u_product``: one per optimizer in the first weight's dtype, multiplied by
        # the schedule's value once per update (kept in the group, so state_dict holds it)
        like = group["params"][0].detach().numpy()
        u = _f(group.get("u_product", 1.0), like) * _nadam_u(
            group["beta_1"], self.iterations + 1, like
        )
        group["u_product"] = float(u)
        return {**super()._params(group), "u_product": group["u_product"]}


class KerasRMSprop(_KerasUpdate):
    _prim = rmsprop_update_p
    _slots = ("velocity", "momentum", "average_gradient")
    _options = ("rho", "momentum", "epsilon")

    def _init_state(self):
        state = {"velocity": _creation.zeros_like}
        if self.defaults["momentum"] > 0:
            state["momentum"] = _creation.zeros_like
        if self.defaults["centered"]:
            state["average_gradient"] = _creation.zeros_like
        return state


class KerasAdagrad(_KerasUpdate):
    _prim = adagrad_update_p
    _slots = ("accumulator",)
    _options = ("epsilon",)

    def _init_state(self):
        init = self.defaults["initial_accumulator_value"]
        return {"accumulator": lambda p: _creation.full_like(p, init)}


class KerasAdadelta(_KerasUpdate):
    _prim = adadelta_update_p
    _slots = ("accumulated_grad", "accumulated_delta_var")
    _options = ("rho", "epsilon")

    def _init_state(self):
        return {
            "accumulated_grad": _creation.zeros_like,
            "accumulated_delta_var": _creation.zeros_like,
        }


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
        "t": 1,
    },
)
_samples(
    adamax_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.0), _t(3, fill=0.0), _t(fill=0.0)),
    {"lr": 0.01, "t": 1, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
)
_samples(
    sgd_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(fill=0.0)),
    {"lr": 0.01, "momentum": 0.9, "nesterov": True},
)
_samples(
    adam_update_p,
    lambda: (
        (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(3, fill=0.1), _t(3, fill=0.2)) + (_t(fill=0.0),)
    ),
    {"lr": 0.01, "t": 2, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
)
_samples(
    nadam_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(3, fill=0.1), _t(fill=0.0)),
    {"lr": 0.01, "t": 1, "u_product": 0.468, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
)
_samples(
    rmsprop_update_p,
    lambda: (
        (_t(3), _t(3, seed=1), _t(3, fill=0.5), _t(3, fill=0.1), _t(3, fill=0.1)) + (_t(fill=0.0),)
    ),
    {"lr": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-7},
)
_samples(
    adagrad_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(fill=0.0)),
    {"lr": 0.01, "epsilon": 1e-7},
)
_samples(
    adadelta_update_p,
    lambda: (_t(3), _t(3, seed=1), _t(3, fill=0.1), _t(3, fill=0.1), _t(fill=0.0)),
    {"lr": 1.0, "rho": 0.95, "epsilon": 1e-7},
)
