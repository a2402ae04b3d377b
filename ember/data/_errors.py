"""Errors raised by ember.data readers, and the lazy import of optional extras."""

from __future__ import annotations

import importlib

__all__ = ["DataFormatError", "require"]


class DataFormatError(ValueError):
    """A data file does not hold what its format promises (bad magic, truncated, corrupt).

    The message always names the file and, where there is one, the record, so that a
    bad sample is found rather than silently trained on.
    """


def require(module: str, purpose: str):
    """Import an optional dependency, or fail with a message naming the ``ember[data]`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:  # NOTE: keep the original error chained for odd install issues
        raise ImportError(
            f"{purpose} needs the '{module}' package, which is not installed. "
            f"Install the data extras with: pip install 'ember[data]'"
        ) from e
