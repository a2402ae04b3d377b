"""Adam (Kingma & Ba, 2014), with the AMSGrad variant."""

from __future__ import annotations

from .. import _creation
from .. import _dtype as dt
from . import _functional as F
from .optimizer import Optimizer, _check_params_have_grad

__all__ = ["Adam"]


def _check_adam_args(lr, betas, eps, weight_decay):
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not eps >= 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not weight_decay >= 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``.

    Algorithm (step ``t``, gradient ``g``)::

        g = -g if maximize;  g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v) (amsgrad, used instead of v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Per-parameter state: ``step`` (a float32 scalar tensor), ``exp_avg``, ``exp_avg_sq`` and
    ``max_exp_avg_sq`` (amsgrad).

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.Adam([w], lr=0.1)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.tolist()]  # the first step moves each weight by ~lr
        [0.9, -1.9]
        >>> sorted(opt.state[w])
        ['exp_avg', 'exp_avg_sq', 'step']
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay or self._decoupled,
        }
        super().__init__(params, defaults)

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            amsgrad = group["amsgrad"]
            m, v, vmax, steps = [], [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    st["step"] = _creation.tensor(0.0, dtype=dt.float32)
                    st["exp_avg"] = _creation.zeros_like(p)
                    st["exp_avg_sq"] = _creation.zeros_like(p)
                    if amsgrad:
                        st["max_exp_avg_sq"] = _creation.zeros_like(p)
                elif amsgrad and "max_exp_avg_sq" not in st:
                    st["max_exp_avg_sq"] = _creation.zeros_like(p)
                m.append(st["exp_avg"])
                v.append(st["exp_avg_sq"])
                vmax.append(st.get("max_exp_avg_sq"))
                steps.append(st["step"])
            beta1, beta2 = group["betas"]
            F.adam(
                params,
                grads,
                m,
                v,
                vmax,
                steps,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                amsgrad=amsgrad,
                maximize=group["maximize"],
                decoupled_weight_decay=group.get("decoupled_weight_decay", False),
            )
