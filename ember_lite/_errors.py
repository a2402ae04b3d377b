"""The errors ember_lite raises (both are ``ValueError`` s, as ember.export's)."""

from __future__ import annotations

__all__ = ["LiteFormatError", "UnsupportedPrimitiveError"]


class LiteFormatError(ValueError):
    """A saved-model directory or one of its files is missing, tampered with or malformed."""


class UnsupportedPrimitiveError(LiteFormatError):
    """A graph uses a primitive that ember_lite does not implement."""
