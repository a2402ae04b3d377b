"""Errors for names a config looks up (layers, losses, optimizers, datasets ...): they list
what exists and suggest the closest spelling."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from .config import ConfigError

__all__ = ["closest", "unknown_name"]


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
    return by_lower[hits[0]] if hits else None


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
