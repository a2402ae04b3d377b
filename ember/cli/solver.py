"""The training setup of a run: optimizer, learning-rate schedule, loss and metrics."""

from __future__ import annotations

import ember
from ember import metrics, nn

from .config import ConfigError
from .names import check_arguments, unknown_name

__all__ = ["build_loss", "build_metrics", "build_optimizer", "build_schedule"]

_OPTIMIZERS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
}


def build_optimizer(cfg, params, path=None):
    o = dict(cfg["solver"]["optimizer"])
    name = str(o.pop("name")).lower()
    if name not in _OPTIMIZERS:
        raise unknown_name("optimizer", name, _OPTIMIZERS, path, "solver.optimizer.name")
    cls = getattr(ember.optim, _OPTIMIZERS[name])
    check_arguments(cls.__init__, o, cls.__name__, path, "solver.optimizer", skip=("params",))
    try:
        return cls(params, **o)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad optimizer arguments: {e}", path, "solver.optimizer") from None


_SCHEDULES = {
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "exponential": "ExponentialLR",
    "cosine": "CosineAnnealingLR",
    "linear": "LinearLR",
    "onecycle": "OneCycleLR",
    "plateau": "ReduceLROnPlateau",
}


def build_schedule(cfg, optimizer, steps_per_epoch, path=None):
    """An epoch-level LR schedule (``onecycle`` steps per batch)."""
    s = cfg["solver"]["schedule"]
    if s is None:
        return None
    s = dict(s)
    name = str(s.pop("name", "")).lower()
    if name not in _SCHEDULES:
        raise unknown_name("schedule", name, _SCHEDULES, path, "solver.schedule.name")
    from ember.optim import lr_scheduler

    cls = getattr(lr_scheduler, _SCHEDULES[name])
    check_arguments(cls.__init__, s, cls.__name__, path, "solver.schedule", skip=("optimizer",))
    if name == "cosine":
        s.setdefault("T_max", cfg["solver"]["epochs"])
    if name == "onecycle":
        s.setdefault("max_lr", cfg["solver"]["optimizer"].get("lr", 1e-3))
        s.setdefault("total_steps", cfg["solver"]["epochs"] * steps_per_epoch)
    try:
        return cls(optimizer, **s)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad schedule arguments: {e}", path, "solver.schedule") from None


def build_loss(cfg, path=None):
    """``loss(output, target)`` for ``solver.loss``: sequence outputs are flattened for
    classification losses; one-output regression and binary heads ``(N, 1)`` are matched
    with targets ``(N,)`` (rather than broadcast to ``(N, N)``) and binary targets are cast
    to the output's float type.

    Example:
        >>> import ember
        >>> cfg = {"solver": {"loss": "mse"}}
        >>> float(build_loss(cfg)(ember.ones(4, 1), ember.zeros(4)))
        1.0
    """
    name = cfg["solver"]["loss"]
    F = nn.functional
    fns = {
        "cross_entropy": F.cross_entropy,
        "mse": F.mse_loss,
        "l1": F.l1_loss,
        "nll": F.nll_loss,
        "bce_with_logits": F.binary_cross_entropy_with_logits,
    }
    if name not in fns:
        raise unknown_name("loss", name, fns, path, "solver.loss")
    fn = fns[name]

    def loss(out, y):
        if name in ("cross_entropy", "nll"):
            if out.ndim == 3:  # sequence models
                return fn(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            return fn(out, y)
        if out.ndim == y.ndim + 1 and out.shape[-1] == 1:
            out = out.reshape(tuple(out.shape[:-1]))
        if name == "bce_with_logits" or y.dtype != out.dtype:
            y = y.to(out.dtype)
        return fn(out, y)

    return loss


def build_metrics(cfg, path=None) -> list:
    """Fresh ``ember.metrics`` objects for the names in ``solver.metrics``.

    Example:
        >>> [m.name for m in build_metrics({"solver": {"metrics": ["f1", "mae"]}})]
        ['f1', 'mae']
    """

    names = metrics.available()
    out = []
    for i, name in enumerate(cfg["solver"].get("metrics") or ()):
        if str(name).strip().lower() not in names:
            raise unknown_name("metric", name, names, path, f"solver.metrics[{i}]")
        out.append(metrics.get(name))
    return out
