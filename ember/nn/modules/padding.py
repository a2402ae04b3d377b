"""Padding layers (PyTorch's ``nn.ReflectionPad1d`` ... ``nn.CircularPad3d``): each pads the
last 1, 2 or 3 dims of its input with :func:`ember.nn.functional.pad`."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = [
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
]


class _PadNd(Module):
    """Pads the last ``_dims`` dims: ``padding`` is an int (every side) or a tuple of
    ``2 * _dims`` ints (left, right, top, bottom, front, back), as PyTorch's."""

    _dims = 1
    _mode = "constant"

    def __init__(self, padding, value: float = 0.0):
        super().__init__()
        n = 2 * self._dims
        if isinstance(padding, bool) or not isinstance(padding, (int, tuple, list)):
            raise TypeError(
                f"{type(self).__name__}: padding must be an int or a tuple of {n} ints, "
                f"got {type(padding).__name__}"
            )
        pads = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(pads) != n or not all(isinstance(p, int) for p in pads):
            raise ValueError(
                f"{type(self).__name__}: padding must be an int or a tuple of {n} ints, "
                f"got {padding!r}"
            )
        self.padding = pads
        self.value = float(value)

    def forward(self, input):
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(
                f"{type(self).__name__}: expected a {self._dims + 1}-D (unbatched) or "
                f"{self._dims + 2}-D input, got shape {tuple(input.shape)}"
            )
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"  # (PyTorch's ZeroPad/ReflectionPad/...: the tuple alone)


class _ZeroPad(_PadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class _ConstantPad(_PadNd):
    def __init__(self, padding, value: float):
        super().__init__(padding, value)


class ReflectionPad1d(_PadNd):
    """Pads the last dim by reflection (the edge not repeated).

    Example:
        >>> import ember
        >>> ember.nn.ReflectionPad1d(2)(ember.arange(4.0).reshape(1, 1, 4)).tolist()
        [[[2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]]]
    """

    _mode = "reflect"


class ReflectionPad2d(_PadNd):
    _dims, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    _mode = "replicate"


class ReplicationPad2d(_PadNd):
    _dims, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    _dims, _mode = 3, "replicate"


class CircularPad1d(_PadNd):
    _mode = "circular"


class CircularPad2d(_PadNd):
    _dims, _mode = 2, "circular"


class CircularPad3d(_PadNd):
    _dims, _mode = 3, "circular"


class ZeroPad1d(_ZeroPad):
    pass


class ZeroPad2d(_ZeroPad):
    """Pads the last two dims with zeros.

    Example:
        >>> import ember
        >>> ember.nn.ZeroPad2d((1, 0, 0, 1))(ember.ones(1, 1, 1, 1)).tolist()
        [[[[0.0, 1.0], [0.0, 0.0]]]]
    """

    _dims = 2


class ZeroPad3d(_ZeroPad):
    _dims = 3


class ConstantPad1d(_ConstantPad):
    pass


class ConstantPad2d(_ConstantPad):
    _dims = 2


class ConstantPad3d(_ConstantPad):
    _dims = 3
