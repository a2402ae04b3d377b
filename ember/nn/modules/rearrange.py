"""Layers that only move elements: ``PixelShuffle``, ``PixelUnshuffle``, ``ChannelShuffle``,
``Fold`` and ``Unfold`` (the modules of :mod:`ember.nn.functional`'s functions)."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .module import Module

__all__ = ["ChannelShuffle", "Fold", "PixelShuffle", "PixelUnshuffle", "Unfold"]


class PixelShuffle(Module):
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``.

    Example:
        >>> import ember
        >>> ember.nn.PixelShuffle(2)(ember.ones(1, 4, 3, 3)).shape
        ember.Size([1, 1, 6, 6])
    """

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = _check.size(
            "PixelShuffle", "upscale_factor", upscale_factor, minimum=1
        )

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``, the inverse of :class:`PixelShuffle`."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = _check.size(
            "PixelUnshuffle", "downscale_factor", downscale_factor, minimum=1
        )

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """Splits the channels into ``groups`` and interleaves them (ShuffleNet)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = _check.size("ChannelShuffle", "groups", groups, minimum=1)

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class Unfold(Module):
    """Sliding blocks of a batched 4-D input as columns (im2col): ``(N, C, H, W) -> (N, C *
    prod(kernel_size), L)``."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
            f"padding={self.padding}, stride={self.stride}"
        )


class Fold(Module):
    """Sums columns of sliding blocks back into an image (col2im), the adjoint of
    :class:`Unfold`."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return F.fold(
            input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )
