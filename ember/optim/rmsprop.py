"""RMSprop (Hinton's lecture 6e), with momentum and the centered variant."""

from __future__ import annotations

from .. import _creation
from .. import _dtype as dt
from . import _functional as F
from .optimizer import Optimizer, _check_params_have_grad

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    Algorithm::

        g = -g if maximize;  g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga**2) + eps
        otherwise: avg = sqrt(v) + eps
        momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
        otherwise:    p = p - lr * g / avg
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not momentum >= 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not alpha >= 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _update(self):
        for group in self.param_groups:
            params, grads = _check_params_have_grad(group)
            if not params:
                continue
            momentum, centered = group["momentum"], group["centered"]
            sq, ga, bufs, steps = [], [], [], []
            for p in params:
                st = self.state[p]
                if not st:
                    st["step"] = _creation.tensor(0.0, dtype=dt.float32)
                    st["square_avg"] = _creation.zeros_like(p)
                    if momentum > 0:
                        st["momentum_buffer"] = _creation.zeros_like(p)
                    if centered:
                        st["grad_avg"] = _creation.zeros_like(p)
                if momentum > 0 and "momentum_buffer" not in st:
                    st["momentum_buffer"] = _creation.zeros_like(p)
                if centered and "grad_avg" not in st:
                    st["grad_avg"] = _creation.zeros_like(p)
                sq.append(st["square_avg"])
                ga.append(st.get("grad_avg"))
                bufs.append(st.get("momentum_buffer"))
                steps.append(st["step"])
            F.rmsprop(
                params,
                grads,
                sq,
                ga,
                bufs,
                steps,
                lr=group["lr"],
                alpha=group["alpha"],
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=momentum,
                centered=centered,
                maximize=group["maximize"],
            )
