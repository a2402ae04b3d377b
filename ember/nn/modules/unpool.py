"""``MaxUnpool1d/2d/3d`` and ``FractionalMaxPool2d/3d``."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .module import Module

__all__ = [
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
]


class _MaxUnpoolNd(Module):
    _n = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        who, n = type(self).__name__, self._n
        self.kernel_size = _check.sizes(who, "kernel_size", kernel_size, n, minimum=1)
        self.stride = (
            self.kernel_size
            if stride is None
            else _check.sizes(who, "stride", stride, n, minimum=1)
        )
        self.padding = _check.sizes(who, "padding", padding, n)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input, indices, output_size=None):
        fn = (F.max_unpool1d, F.max_unpool2d, F.max_unpool3d)[self._n - 1]
        return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool1d(_MaxUnpoolNd):
    """Inverse of ``MaxPool1d(return_indices=True)``.

    Example:
        >>> import ember
        >>> pool, unpool = ember.nn.MaxPool1d(2, return_indices=True), ember.nn.MaxUnpool1d(2)
        >>> y, i = pool(ember.tensor([[[1.0, 3.0, 2.0, 0.0]]]))
        >>> unpool(y, i).tolist()
        [[[0.0, 3.0, 2.0, 0.0]]]
    """

    _n = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)


class MaxUnpool2d(_MaxUnpoolNd):
    """Inverse of ``MaxPool2d(return_indices=True)``.

    Example:
        >>> import ember
        >>> pool, unpool = ember.nn.MaxPool2d(2, return_indices=True), ember.nn.MaxUnpool2d(2)
        >>> y, i = pool(ember.randn(1, 1, 4, 4))
        >>> tuple(unpool(y, i).shape)
        (1, 1, 4, 4)
    """

    _n = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)


class MaxUnpool3d(_MaxUnpoolNd):
    """Inverse of ``max_pool3d(..., return_indices=True)``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> y, i = F.max_pool3d(ember.randn(1, 1, 4, 4, 4), 2, return_indices=True)
        >>> tuple(ember.nn.MaxUnpool3d(2)(y, i).shape)
        (1, 1, 4, 4, 4)
    """

    _n = 3

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)


class _FractionalMaxPoolNd(Module):
    _n = 2

    def __init__(
        self,
        kernel_size,
        output_size=None,
        output_ratio=None,
        return_indices: bool = False,
        _random_samples=None,
    ):
        super().__init__()
        who, n = type(self).__name__, self._n
        self.kernel_size = _check.sizes(who, "kernel_size", kernel_size, n, minimum=1)
        self.return_indices = bool(return_indices)
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ValueError(f"{who} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError(f"{who}: only one of output_size and output_ratio may be specified")
        self.output_size = (
            None if output_size is None else _check.sizes(who, "output_size", output_size, n, 1)
        )
        if output_ratio is not None:
            ratio = (
                (float(output_ratio),) * n
                if isinstance(output_ratio, (int, float))
                else tuple(float(r) for r in output_ratio)
            )
            if len(ratio) != n or not all(0.0 < r < 1.0 for r in ratio):
                raise ValueError(
                    f"{who}: output_ratio must be {n} numbers between 0 and 1 (exclusive), "
                    f"got {output_ratio!r}"
                )
            output_ratio = ratio
        self.output_ratio = output_ratio

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, output_size={self.output_size}, "
            f"output_ratio={self.output_ratio}"
        )

    def forward(self, input):
        fn = F.fractional_max_pool2d if self._n == 2 else F.fractional_max_pool3d
        return fn(
            input,
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            _random_samples=self._random_samples,
        )


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling (random window offsets; ``_random_samples`` fixes them).

    Example:
        >>> import ember
        >>> m = ember.nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))
        >>> tuple(m(ember.randn(2, 3, 10, 12)).shape)
        (2, 3, 5, 6)
    """

    _n = 2

    def __init__(
        self,
        kernel_size,
        output_size=None,
        output_ratio=None,
        return_indices: bool = False,
        _random_samples=None,
    ):
        super().__init__(kernel_size, output_size, output_ratio, return_indices, _random_samples)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling.

    Example:
        >>> import ember
        >>> m = ember.nn.FractionalMaxPool3d(2, output_size=(3, 3, 3))
        >>> tuple(m(ember.randn(1, 2, 6, 7, 8)).shape)
        (1, 2, 3, 3, 3)
    """

    _n = 3

    def __init__(
        self,
        kernel_size,
        output_size=None,
        output_ratio=None,
        return_indices: bool = False,
        _random_samples=None,
    ):
        super().__init__(kernel_size, output_size, output_ratio, return_indices, _random_samples)
