"""NAdam (Dozat, 2016): Adam with Nesterov momentum."""

from __future__ import annotations

from .. import _creation
from .. import _dtype as dt
from . import _functional_adam as F
from .adam import _check_adam_args
from .optimizer import Optimizer, _check_params_have_grad

__all__ = ["NAdam"]


def _adam_state(st, p):
    st["step"] = _creation.tensor(0.0, dtype=dt.float32)
    st["exp_avg"] = _creation.zeros_like(p)
    st["exp_avg_sq"] = _creation.zeros_like(p)


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam``.

    Algorithm (step ``t``)::

        g = -g if maximize
        decoupled_weight_decay: p = p * (1 - lr * weight_decay)
        otherwise:              g = g + weight_decay * p
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay));  prod = prod * mu_t
        m, v as in Adam;  denom = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - prod) * g / denom
              - lr * mu_{t+1} / (1 - prod * mu_{t+1}) * m / denom

    Per-parameter state: ``step``, ``mu_product``, ``exp_avg`` and ``exp_avg_sq``.

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.NAdam([w], lr=0.1)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> sorted(opt.state[w])
        ['exp_avg', 'exp_avg_sq', 'mu_product', 'step']
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam_args(lr, betas, eps, weight_decay)
        if not momentum_decay >= 0.0:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            m, v, mus, steps = [], [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    _adam_state(st, p)
                    st["mu_product"] = _creation.tensor(1.0, dtype=dt.float32)
                m.append(st["exp_avg"])
                v.append(st["exp_avg_sq"])
                mus.append(st["mu_product"])
                steps.append(st["step"])
            beta1, beta2 = group["betas"]
            F.nadam(
                params,
                grads,
                m,
                v,
                mus,
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum_decay=group["momentum_decay"],
                decoupled_weight_decay=group["decoupled_weight_decay"],
                maximize=group["maximize"],
            )
