"""``Upsample``, ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]


class Upsample(Module):
    """Resize 3-, 4- or 5-D inputs with :func:`F.interpolate` (every mode).

    Example:
        >>> import ember
        >>> up = ember.nn.Upsample(scale_factor=2, mode="trilinear")
        >>> tuple(up(ember.randn(1, 2, 2, 3, 4)).shape)
        (1, 2, 4, 6, 8)
    """

    def __init__(
        self,
        size=None,
        scale_factor=None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor: tuple[float, ...] | float | None = (
            tuple(float(f) for f in scale_factor)
            if isinstance(scale_factor, (tuple, list))
            else (float(scale_factor) if scale_factor else None)
        )
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(
            input,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest 2-D upsampling (PyTorch's deprecated layer; use :class:`Upsample`).

    Example:
        >>> import ember
        >>> tuple(ember.nn.UpsamplingNearest2d(scale_factor=2)(ember.ones(1, 1, 2, 3)).shape)
        (1, 1, 4, 6)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear 2-D upsampling with ``align_corners=True`` (PyTorch's deprecated layer).

    Example:
        >>> import ember
        >>> m = ember.nn.UpsamplingBilinear2d(scale_factor=2)
        >>> round(m(ember.arange(1.0, 5.0).reshape(1, 1, 2, 2))[0, 0, 0, 1].item(), 4)
        1.3333
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
