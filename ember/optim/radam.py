"""RAdam (Liu et al., 2019): Adam with a rectified adaptive learning rate."""

from __future__ import annotations

from . import _functional_adam as F
from .adam import _check_adam_args
from .nadam import _adam_state
from .optimizer import Optimizer, _check_params_have_grad

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam (rectified Adam), as ``torch.optim.RAdam``.

    Algorithm (step ``t``, ``rho_inf = 2 / (1 - beta2) - 1``)::

        g = -g if maximize
        decoupled_weight_decay: p = p * (1 - lr * weight_decay)
        otherwise:              g = g + weight_decay * p
        m, v as in Adam;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        rho_t > 5: r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                   p = p - lr * m / (1 - beta1**t) * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t
        otherwise: p = p - lr * m / (1 - beta1**t)

    Per-parameter state: ``step``, ``exp_avg`` and ``exp_avg_sq``.

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.RAdam([w], lr=0.1)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.tolist()]  # un-rectified first steps: lr * m_hat
        [0.8, -1.6]
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "decoupled_weight_decay": decoupled_weight_decay,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            m, v, steps = [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    _adam_state(st, p)
                m.append(st["exp_avg"])
                v.append(st["exp_avg_sq"])
                steps.append(st["step"])
            beta1, beta2 = group["betas"]
            F.radam(
                params,
                grads,
                m,
                v,
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                maximize=group["maximize"],
            )
