"""Transfer-learning helpers: freeze and unfreeze parameters by name pattern, replace a
classifier head, and build optimizer parameter groups (per-group learning rates) by name.

Patterns are shell-style globs over ``named_parameters()`` names (``"layer4.*"``,
``"*.bn*.weight"``, ``"fc.*"``); a pattern that matches nothing is an error, since it is
almost always a typo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from ember import nn

__all__ = ["freeze", "param_groups", "replace_head", "trainable_parameter_names", "unfreeze"]


def _patterns(pattern: str | Iterable[str], what: str) -> list[str]:
    pats = [pattern] if isinstance(pattern, str) else list(pattern)
    if not pats or not all(isinstance(p, str) and p for p in pats):
        raise TypeError(f"{what}: pattern must be a non-empty str or list of str, got {pattern!r}")
    return pats


def _matching(model: nn.Module, pats: list[str], what: str) -> list[tuple[str, Any]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what}: expected an ember.nn.Module, got {type(model).__name__}")
    named = list(model.named_parameters())
    for p in pats:
        if not any(fnmatchcase(n, p) for n, _ in named):
            sample = ", ".join(n for n, _ in named[:6])
            raise ValueError(
                f"{what}: pattern {p!r} matches no parameter (names look like: {sample}, ...)"
            )
    return [(n, t) for n, t in named if any(fnmatchcase(n, p) for p in pats)]


def _set_trainable(model, pattern, flag: bool, what: str) -> list[str]:
    hits = _matching(model, _patterns(pattern, what), what)
    for _, t in hits:
        t.requires_grad_(flag)
    return [n for n, _ in hits]


def freeze(model: nn.Module, pattern: str | Iterable[str] = "*") -> list[str]:
    """Stop gradients for the parameters whose names match ``pattern`` (a glob or a list of
    globs); returns the frozen names. Batch-norm running statistics still update in
    ``train()`` mode: call ``.eval()`` on those layers to fix them too.

    Example:
        >>> import ember
        >>> m = ember.models.resnet18(num_classes=3)
        >>> n = len(freeze(m, "*"))
        >>> unfreeze(m, "fc.*")
        ['fc.weight', 'fc.bias']
        >>> trainable_parameter_names(m)
        ['fc.weight', 'fc.bias']
    """
    return _set_trainable(model, pattern, False, "freeze")


def unfreeze(model: nn.Module, pattern: str | Iterable[str] = "*") -> list[str]:
    """Let gradients flow again into the parameters matching ``pattern``; returns their names.

    Example:
        >>> import ember
        >>> m = ember.nn.Sequential(ember.nn.Linear(2, 2), ember.nn.Linear(2, 1))
        >>> _ = freeze(m)
        >>> unfreeze(m, "1.*")
        ['1.weight', '1.bias']
    """
    return _set_trainable(model, pattern, True, "unfreeze")


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that currently require gradients.

    Example:
        >>> import ember
        >>> trainable_parameter_names(ember.nn.Linear(2, 1))
        ['weight', 'bias']
    """
    return [n for n, p in model.named_parameters() if p.requires_grad]


def replace_head(model: nn.Module, num_classes: int, name: str | None = None) -> nn.Linear:
    """Swap the classifier for a fresh ``nn.Linear(in_features, num_classes)``, in place;
    returns the new layer. ``name`` names the layer to replace (``"fc"``,
    ``"classifier.1"``); by default it is the last ``nn.Linear`` of the model (torchvision's
    ``fc`` / ``classifier`` heads, LeNet's last layer).

    Example:
        >>> import ember
        >>> m = ember.models.mobilenet_v2(num_classes=1000)
        >>> replace_head(m, 7).out_features
        7
        >>> m.eval()(ember.zeros(1, 3, 32, 32)).shape
        ember.Size([1, 7])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"replace_head: expected an ember.nn.Module, got {type(model).__name__}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes!r}")
    modules = dict(model.named_modules())
    if name is None:
        linears = [n for n, m in modules.items() if isinstance(m, nn.Linear) and n]
        if not linears:
            raise ValueError("replace_head: the model has no nn.Linear layer to replace")
        name = linears[-1]
    elif not isinstance(modules.get(name), nn.Linear):
        found = type(modules[name]).__name__ if name in modules else "nothing"
        raise ValueError(f"replace_head: {name!r} must name an nn.Linear layer, found {found}")
    old = modules[name]
    parent_name, _, child = name.rpartition(".")
    parent = modules[parent_name] if parent_name else model
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    parent._modules[child] = new
    return new


def param_groups(
    model: nn.Module,
    groups: Mapping[str | tuple[str, ...], Mapping[str, Any]],
    include_frozen: bool = False,
    **defaults: Any,
) -> list[dict]:
    """Optimizer parameter groups by name pattern: ``{pattern: options}``, e.g.
    ``{"fc.*": {"lr": 1e-2}, "layer4.*": {"lr": 1e-3}}``. A parameter joins the first
    pattern that matches it (in the mapping's order); the rest form a last group with
    ``defaults``. Frozen parameters are left out unless ``include_frozen``.

    Example:
        >>> import ember
        >>> m = ember.models.resnet18(num_classes=3)
        >>> gs = param_groups(m, {"fc.*": {"lr": 0.1}}, lr=0.001)
        >>> [(len(g["params"]), g["lr"]) for g in gs]
        [(2, 0.1), (60, 0.001)]
        >>> opt = ember.optim.SGD(gs, lr=0.01)
    """
    if not isinstance(groups, Mapping):
        raise TypeError(f"param_groups: groups must be a mapping, got {type(groups).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if include_frozen or p.requires_grad]
    taken: set[str] = set()
    out = []
    for pattern, options in groups.items():
        pats = _patterns(pattern, "param_groups")
        _matching(model, pats, "param_groups")  # an unknown pattern is reported
        if not isinstance(options, Mapping):
            raise TypeError(f"param_groups: options of {pattern!r} must be a mapping")
        params = [p for n, p in named if n not in taken and any(fnmatchcase(n, q) for q in pats)]
        taken.update(n for n, _ in named if any(fnmatchcase(n, q) for q in pats))
        if params:
            out.append({"params": params, **options})
    rest = [p for n, p in named if n not in taken]
    if rest:
        out.append({"params": rest, **defaults})
    if not out:
        raise ValueError("param_groups: no trainable parameters (all are frozen?)")
    return out
