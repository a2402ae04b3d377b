"""``SyncBatchNorm``: BatchNorm whose batch statistics span every rank of the process group."""

from __future__ import annotations

from ... import _creation as C
from ... import distributed as dist
from ...autograd import Function, no_grad
from .module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class _AllReduceSum(Function):
    """Sum over ranks; the gradient of a sum over ranks is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, t, group=None):
        ctx.group = group
        out = t.clone()
        dist.all_reduce(out, dist.ReduceOp.SUM, group)
        return out

    @staticmethod
    def backward(ctx, g):
        g = g.clone()
        dist.all_reduce(g, dist.ReduceOp.SUM, ctx.group)
        return g, None


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over ``(N, C, *)`` with mean and variance computed over the
    whole global batch (all ranks) in training; in evaluation, or without an initialized
    process group, it is plain BatchNorm. Gradients flow through the global statistics.

    Example:
        >>> import ember
        >>> net = ember.nn.Sequential(ember.nn.Conv2d(3, 4, 3), ember.nn.BatchNorm2d(4))
        >>> net = ember.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        >>> type(net[1]).__name__
        'SyncBatchNorm'
    """

    _expected_dims = (2, 3, 4, 5)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(
                f"SyncBatchNorm: expected at least 2D input (got {input.dim()}D input)"
            )

    def forward(self, input):
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"SyncBatchNorm: expected {self.num_features} channels in dim 1, got shape "
                f"{tuple(input.shape)}"
            )
        synced = (
            self.training and dist.is_initialized() and dist.get_world_size(self.process_group) > 1
        )
        if not synced:
            return super().forward(input)
        return self._sync_forward(input)

    def _sync_forward(self, x):
        c = self.num_features
        dims = [0] + list(range(2, x.dim()))
        view = [1, c] + [1] * (x.dim() - 2)
        local = C.tensor([x.numel() // c], dtype=x.dtype)
        # pass 1: global count and mean; pass 2: the mean squared deviation from it
        # (two passes keep the variance as accurate as single-process BatchNorm's)
        s1 = _AllReduceSum.apply(_cat(x.sum(dims), local), self.process_group)
        n = s1[c:].detach()
        count = float(n.item())
        if count <= 1:
            raise ValueError(
                f"SyncBatchNorm: expected more than 1 value per channel when training, got "
                f"input shape {tuple(x.shape)} on this rank and {int(count)} in total"
            )
        mean = s1[:c] / count
        xc = x - mean.reshape(view)
        var = _AllReduceSum.apply((xc * xc).sum(dims), self.process_group) / count
        y = xc * (var + self.eps).rsqrt().reshape(view)
        if self.affine:
            y = y * self.weight.reshape(view) + self.bias.reshape(view)
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    m = 1.0 / float(self.num_batches_tracked.item())
                else:
                    m = float(self.momentum)
                unbiased = var.detach() * (count / (count - 1))
                self.running_mean.mul_(1 - m).add_(mean.detach() * m)
                self.running_var.mul_(1 - m).add_(unbiased * m)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """Replace every BatchNorm*d in ``module`` by a SyncBatchNorm sharing its parameters
        and buffers; returns the converted module (``module`` itself when it is not one)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            new = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                process_group,
            )
            if module.affine:
                new.weight = module.weight
                new.bias = module.bias
            new.running_mean = module.running_mean
            new.running_var = module.running_var
            new.num_batches_tracked = module.num_batches_tracked
            new.train(module.training)
            return new
        for name, child in list(module.named_children()):
            module.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return module


def _cat(a, b):
    from ...ops.shape import cat

    return cat([a, b])
