"""``ember.device``: where a tensor's memory lives."""

from __future__ import annotations

from .backends import get_backend

__all__ = ["as_device", "device"]


class device:
    """A device such as ``ember.device('cpu')`` or ``ember.device('cuda:0')``.

    Example:
        >>> import ember
        >>> ember.device('cpu')
        device(type='cpu')
    """

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        if ":" in spec:
            spec, idx = spec.split(":", 1)
            if not idx.isdigit():
                raise ValueError(f"device: bad device index {idx!r} in {spec}:{idx}")
            index = int(idx)
        get_backend(spec)  # clear error for an unavailable device type
        self.type, self.index = spec, index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return (
            isinstance(other, device)
            and self.type == other.type
            and (self.index == other.index or self.index is None or other.index is None)
        )

    def __hash__(self):
        return hash(self.type)

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def as_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    return device(d)
