"""``InstanceNorm1d/2d/3d`` (per-sample, per-channel normalization; running statistics only
with ``track_running_stats``) and ``LocalResponseNorm``."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .module import Module
from .normalization import _BatchNorm

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm"]


class _InstanceNorm(_BatchNorm):
    """PyTorch's defaults differ from batch norm's: no affine parameters and no running
    statistics unless asked; an unbatched input (one dim fewer) is normalized as a batch of
    one."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def forward(self, input):
        self._check_input_dim(input)
        unbatched = input.dim() == self._expected_dims[0]
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.num_features and self.affine:
            raise ValueError(
                f"{type(self).__name__}: expected input with {self.num_features} channels, "
                f"got shape {tuple(input.shape)}"
            )
        out = F.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Normalizes each (sample, channel) of an (N, C, L) or (C, L) input over L.

    Example:
        >>> import ember
        >>> y = ember.nn.InstanceNorm1d(2)(ember.arange(12.0).reshape(2, 2, 3))
        >>> [round(v, 4) for v in y[0, 0].tolist()]
        [-1.2247, 0.0, 1.2247]
    """

    _expected_dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    _expected_dims = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    _expected_dims = (4, 5)


class LocalResponseNorm(Module):
    """Normalizes each element by the summed squares of ``size`` neighbouring channels."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = _check.size("LocalResponseNorm", "size", size, minimum=1)
        self.alpha = _check.real("LocalResponseNorm", "alpha", alpha)
        self.beta = _check.real("LocalResponseNorm", "beta", beta)
        self.k = _check.real("LocalResponseNorm", "k", k)

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
