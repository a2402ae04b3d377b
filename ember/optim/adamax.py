"""Adamax (Kingma & Ba, 2014, section 7): Adam with the infinity norm."""

from __future__ import annotations

from .. import _creation
from . import _functional_adam as F
from .adam import _check_adam_args
from .optimizer import Optimizer, _check_params_have_grad, _group_state

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, as ``torch.optim.Adamax``.

    Algorithm (step ``t``)::

        g = -g if maximize;  g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;  u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    Per-parameter state: ``step``, ``exp_avg`` (``m``) and ``exp_inf`` (``u``).

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.Adamax([w], lr=0.1)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.9, -1.9]
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        capturable=False,
    ):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            zeros = _creation.zeros_like
            s = _group_state(self.state, params, {"exp_avg": zeros, "exp_inf": zeros})
            m, u, steps = s["exp_avg"], s["exp_inf"], s["step"]
            beta1, beta2 = group["betas"]
            F.adamax(
                params,
                grads,
                m,
                u,
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )
