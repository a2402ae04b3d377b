"""``ConvTranspose3d``: the layer of :func:`ember.nn.functional.conv_transpose3d`."""

from __future__ import annotations

from .. import functional as F
from .conv import _ConvTransposeNd

__all__ = ["ConvTranspose3d"]


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution over ``(N, C_in, D, H, W)``; weight ``(C_in, C_out /
    groups, kD, kH, kW)``. ``forward(input, output_size)`` picks the output padding that
    gives ``output_size``.

    Example:
        >>> import ember
        >>> m = ember.nn.ConvTranspose3d(2, 4, 3, stride=2)
        >>> tuple(m(ember.randn(1, 2, 3, 3, 3)).shape)
        (1, 4, 7, 7, 7)
    """

    _n = 3

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            output_padding,
            groups,
            bias,
            dilation,
            padding_mode,
            dtype,
        )

    def forward(self, input, output_size=None):
        return F.conv_transpose3d(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )
