"""``Flatten`` and ``Unflatten``."""

from __future__ import annotations

from . import _check
from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` (default: all but the batch dim)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = _check.dim("Flatten", "start_dim", start_dim)
        self.end_dim = _check.dim("Flatten", "end_dim", end_dim)

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = _check.dim("Unflatten", "dim", dim)
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                "Unflatten: unflattened_size must be a tuple of ints, got "
                f"{type(unflattened_size).__name__}"
            )
        # -1 (one inferred dim) is allowed, as in PyTorch
        self.unflattened_size = tuple(
            -1
            if x == -1 and not isinstance(x, bool)
            else _check.size("Unflatten", "unflattened_size", x)
            for x in unflattened_size
        )

    def forward(self, input):
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
