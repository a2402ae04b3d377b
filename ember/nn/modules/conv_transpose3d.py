"""``ConvTranspose3d``: the layer of :func:`ember.nn.functional.conv_transpose3d`."""

from __future__ import annotations

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
