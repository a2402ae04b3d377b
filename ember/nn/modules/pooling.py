"""Pooling layers."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .module import Module

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
]


def _check_pool(m, kernel_size, stride, padding, dilation) -> None:
    """Types and ranges of pooling arguments; padding at most half the (dilated) kernel, as
    PyTorch requires at the first forward."""
    who, n = type(m).__name__, m._n
    k = _check.sizes(who, "kernel_size", kernel_size, n, minimum=1)
    if stride is not None:
        _check.sizes(who, "stride", stride, n, minimum=1)
    d = _check.sizes(who, "dilation", dilation, n, minimum=1)
    p = _check.sizes(who, "padding", padding, n)
    for pi, ki, di in zip(p, k, d):
        if 2 * pi > (ki - 1) * di + 1:
            raise ValueError(
                f"{who}: padding {padding} should be at most half of the effective kernel "
                f"size {kernel_size}"
            )


class _MaxPoolNd(Module):
    _n = 2

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        _check_pool(self, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
            f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )

    def forward(self, input):
        return getattr(F, f"max_pool{self._n}d")(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )


class MaxPool1d(_MaxPoolNd):
    _n = 1


class MaxPool2d(_MaxPoolNd):
    """Max over ``kernel_size`` windows of ``(N, C, H, W)``."""

    _n = 2


class MaxPool3d(_MaxPoolNd):
    """Max over ``kernel_size`` windows of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``); with
    ``return_indices`` also the flat ``D*H*W`` index of each maximum (for ``MaxUnpool3d``).

    Example:
        >>> import ember
        >>> m = ember.nn.MaxPool3d(2, stride=1)
        >>> m
        MaxPool3d(kernel_size=2, stride=1, padding=0, dilation=1, ceil_mode=False)
        >>> tuple(m(ember.randn(1, 2, 3, 4, 5)).shape)
        (1, 2, 2, 3, 4)
    """

    _n = 3


class _AvgPoolNd(Module):
    _n = 2

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override=None,
    ):
        super().__init__()
        _check_pool(self, kernel_size, stride, padding, 1)
        if divisor_override is not None:
            _check.size(type(self).__name__, "divisor_override", divisor_override, minimum=1)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input):
        args = (
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
        )
        if self._n == 1:  # F.avg_pool1d has no divisor_override (as PyTorch's)
            return F.avg_pool1d(*args)
        return getattr(F, f"avg_pool{self._n}d")(*args, self.divisor_override)


class AvgPool1d(_AvgPoolNd):
    _n = 1

    def extra_repr(self) -> str:
        # PyTorch's AvgPool1d keeps its sizes as 1-tuples
        k, s, p = (
            tuple(v) if isinstance(v, (tuple, list)) else (v,)
            for v in (self.kernel_size, self.stride, self.padding)
        )
        return f"kernel_size={k}, stride={s}, padding={p}"


class AvgPool2d(_AvgPoolNd):
    _n = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over ``kernel_size`` windows of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``).

    Example:
        >>> import ember
        >>> m = ember.nn.AvgPool3d(2)
        >>> m
        AvgPool3d(kernel_size=2, stride=2, padding=0)
        >>> m(ember.ones(1, 1, 2, 2, 2)).tolist()
        [[[[[1.0]]]]]
    """

    _n = 3


class _AdaptivePoolNd(Module):
    _n = 2

    def __init__(self, output_size):
        super().__init__()
        _check.optional_sizes(type(self).__name__, "output_size", output_size, self._n)
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input):
        return getattr(F, f"adaptive_avg_pool{self._n}d")(input, self.output_size)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return getattr(F, f"adaptive_max_pool{self._n}d")(
            input, self.output_size, self.return_indices
        )


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    _n = 1


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    _n = 2


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    _n = 2


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Adaptive average pooling of ``(N, C, D, H, W)`` to ``output_size`` (PyTorch's bins;
    ``None`` keeps that input size).

    Example:
        >>> import ember
        >>> m = ember.nn.AdaptiveAvgPool3d((1, None, 2))
        >>> tuple(m(ember.randn(2, 3, 4, 5, 6)).shape)
        (2, 3, 1, 5, 2)
    """

    _n = 3


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of ``(N, C, L)`` to ``output_size`` (``return_indices``: also
    the index along ``L`` of each maximum).

    Example:
        >>> import ember
        >>> m = ember.nn.AdaptiveMaxPool1d(2)
        >>> m(ember.tensor([[[1.0, 5.0, 2.0, 0.0, 3.0]]])).tolist()
        [[[5.0, 3.0]]]
    """

    _n = 1


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Adaptive max pooling of ``(N, C, D, H, W)`` to ``output_size`` (``return_indices``:
    also the flat ``D*H*W`` index of each maximum).

    Example:
        >>> import ember
        >>> m = ember.nn.AdaptiveMaxPool3d(1, return_indices=True)
        >>> out, idx = m(ember.arange(8.0).reshape(1, 1, 2, 2, 2))
        >>> out.tolist(), idx.tolist()
        ([[[[[7.0]]]]], [[[[[7]]]]])
    """

    _n = 3


class _LPPoolNd(Module):
    _fn = ""

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
        super().__init__()
        _check.real(type(self).__name__, "norm_type", norm_type)
        self.norm_type = norm_type  # kept as given: PyTorch's repr shows ``norm_type=2``
        self.kernel_size, self.stride, self.ceil_mode = kernel_size, stride, ceil_mode

    def forward(self, input):
        return getattr(F, self._fn)(
            input, self.norm_type, self.kernel_size, self.stride, self.ceil_mode
        )

    def extra_repr(self) -> str:
        return (
            f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, ceil_mode={self.ceil_mode}"
        )


class LPPool1d(_LPPoolNd):
    """The power-average pooling ``(sum x^p)^(1/p)`` over windows of the last dim."""

    _fn = "lp_pool1d"


class LPPool2d(_LPPoolNd):
    """The power-average pooling ``(sum x^p)^(1/p)`` over windows of the last two dims."""

    _fn = "lp_pool2d"


class LPPool3d(_LPPoolNd):
    """The power-average pooling ``(sum x^p)^(1/p)`` over windows of the last three dims.

    Example:
        >>> import ember
        >>> m = ember.nn.LPPool3d(2, 2)
        >>> m
        LPPool3d(norm_type=2, kernel_size=2, stride=None, ceil_mode=False)
        >>> m(ember.ones(1, 1, 2, 2, 2)).tolist()
        [[[[[2.8284270763397217]]]]]
    """

    _fn = "lp_pool3d"
