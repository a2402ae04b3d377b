"""Errors for names a config looks up (layers, losses, optimizers, datasets ...): they list
what exists and suggest the closest spelling."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable

from .config import ConfigError

__all__ = ["check_arguments", "closest", "parse_item", "unknown_name"]


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (case-insensitive), or None when none is close.

    Example:
        >>> closest("batchnorm2d", ["BatchNorm1d", "BatchNorm2d", "Conv2d"])
        'BatchNorm2d'
    """
    by_lower = {c.lower(): c for c in choices}
    key = str(name).lower()
    if key in by_lower:
        return by_lower[key]
    hits = difflib.get_close_matches(key, list(by_lower), n=1, cutoff=0.6)
    if hits:
        return by_lower[hits[0]]
    # an abbreviation ("mom" for momentum) is far from the whole word by edit ratio
    starts = [c for low, c in by_lower.items() if len(key) >= 3 and low.startswith(key)]
    return starts[0] if len(starts) == 1 else None


def unknown_name(
    kind: str, name, choices: Iterable[str], path=None, key: str | None = None
) -> ConfigError:
    """A :class:`ConfigError` for an unknown ``kind`` name, with a suggestion.

    Example:
        >>> e = unknown_name("loss", "cross_entropi", ["mse", "cross_entropy"], "a.yaml", "loss")
        >>> print(e)
        a.yaml: key 'loss': unknown loss 'cross_entropi' (did you mean cross_entropy?); ...
    """
    choices = sorted(choices)
    guess = closest(str(name), choices)
    hint = f" (did you mean {guess}?)" if guess is not None else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}; available: {', '.join(choices)}", path, key)


def check_arguments(fn, args, what: str, path=None, key: str | None = None, skip=()) -> None:
    """Raise for a name in ``args`` that ``fn`` does not take, suggesting the closest.

    ``skip`` names parameters the command fills in itself (``params``, ``train`` ...).

    Example:
        >>> def conv(in_channels, kernel_size=3, padding=0): ...
        >>> check_arguments(conv, {"kernal_size": 3}, "Conv2d", "a.yaml", "model.layers[0]")
        Traceback (most recent call last):
        ...
        ember.cli.config.ConfigError: a.yaml: ... (did you mean kernel_size?); available: ...
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature: leave it to the call
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    allowed = [n for n, p in params.items() if p.kind in named and n != "self" and n not in skip]
    for name in args:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            raise unknown_name(f"{what} argument", name, allowed, path, where)


def parse_item(item, path=None, key=None) -> tuple[str, dict]:
    """``(name, args)`` of a list entry written ``Name`` or ``{Name: {args}}``.

    Example:
        >>> parse_item({"Conv2d": {"kernel_size": 3}}), parse_item("ReLU")
        (('Conv2d', {'kernel_size': 3}), ('ReLU', {}))
    """
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and len(item) == 1:
        ((name, args),) = item.items()
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ConfigError(f"arguments of {name} must be a mapping, got {args!r}", path, key)
        return name, dict(args)
    raise ConfigError(
        f"expected a name or a one-key mapping {{Name: {{args}}}}, got {item!r}", path, key
    )
