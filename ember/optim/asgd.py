"""Averaged SGD (Polyak & Juditsky, 1992) and Rprop (Riedmiller & Braun, 1993)."""

from __future__ import annotations

from .. import _creation
from .. import _dtype as dt
from . import _functional_more as F
from .optimizer import Optimizer, _check_params_have_grad, _group_state

__all__ = ["ASGD", "Rprop"]


def _check_lr(lr):
    if not lr >= 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")


class ASGD(Optimizer):
    """Averaged stochastic gradient descent, as ``torch.optim.ASGD``.

    Algorithm (step ``t``; ``eta`` starts at ``lr``, ``mu`` at 1)::

        g = -g if maximize;  g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)   (ax = p while mu == 1)
        eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)

    Per-parameter state: ``step``, ``eta``, ``mu`` and ``ax`` (the averaged parameter).

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.ASGD([w], lr=0.1, lambd=0.0)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.8, -1.6]
        >>> sorted(opt.state[w])
        ['ax', 'eta', 'mu', 'step']
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        lambd=1e-4,
        alpha=0.75,
        t0=1e6,
        weight_decay=0,
        foreach=None,
        maximize=False,
        differentiable=False,
        capturable=False,
    ):
        _check_lr(lr)
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "lambd": lambd,
            "alpha": alpha,
            "t0": t0,
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
            lr = float(group["lr"])
            init = {
                "eta": lambda p, lr=lr: _creation.tensor(lr, dtype=dt.float32),
                "mu": lambda p: _creation.tensor(1.0, dtype=dt.float32),
                "ax": _creation.zeros_like,
            }
            s = _group_state(self.state, params, init)
            axs, mus, etas, steps = s["ax"], s["mu"], s["eta"], s["step"]
            F.asgd(
                params,
                grads,
                axs,
                mus,
                etas,
                steps,
                lr=group["lr"],
                lambd=group["lambd"],
                alpha=group["alpha"],
                t0=group["t0"],
                weight_decay=group["weight_decay"],
                maximize=group["maximize"],
            )


class Rprop(Optimizer):
    """Resilient backpropagation, as ``torch.optim.Rprop``.

    Algorithm (``step_size`` starts at ``lr``)::

        g = -g if maximize
        s = sign(g * prev), then etaplus where > 0, etaminus where < 0, 1 where 0
        step_size = clamp(step_size * s, *step_sizes)
        g = 0 where s == etaminus;  p = p - sign(g) * step_size;  prev = g

    Per-parameter state: ``step``, ``prev`` and ``step_size``.

    Example:
        >>> import ember
        >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = ember.optim.Rprop([w], lr=0.1)
        >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
        >>> [round(v, 4) for v in w.tolist()]
        [0.9, -1.9]
    """

    def __init__(
        self,
        params,
        lr=1e-2,
        etas=(0.5, 1.2),
        step_sizes=(1e-6, 50),
        *,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {
            "lr": lr,
            "etas": tuple(etas),
            "step_sizes": tuple(step_sizes),
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
            lr = float(group["lr"])
            init = {
                "prev": _creation.zeros_like,
                "step_size": lambda p, lr=lr: _creation.full_like(p, lr),
            }
            s = _group_state(self.state, params, init)
            prevs, sizes, steps = s["prev"], s["step_size"], s["step"]
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            F.rprop(
                params,
                grads,
                prevs,
                sizes,
                steps,
                step_size_min=step_size_min,
                step_size_max=step_size_max,
                etaminus=etaminus,
                etaplus=etaplus,
                maximize=group["maximize"],
            )
