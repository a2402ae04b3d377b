"""``AdaptiveLogSoftmaxWithLoss`` (Grave et al., 2016, "Efficient softmax approximation for
GPUs"), as ``torch.nn.AdaptiveLogSoftmaxWithLoss``."""

from __future__ import annotations

import itertools
import operator
from typing import NamedTuple

from ... import _creation as C
from ..._tensor import Tensor
from .. import functional as F
from . import _check
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]


class _ASMoutput(NamedTuple):
    output: Tensor
    loss: Tensor


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax: the frequent classes (below ``cutoffs[0]``) and one logit per tail
    cluster in the head; each cluster's classes in a tail ``Linear -> Linear`` whose hidden
    size shrinks by ``div_value`` per cluster.

    ``forward(input, target)`` returns ``(output, loss)``: the target log-probability of each
    row and the mean negative log-likelihood. ``log_prob(input)`` gives the full
    ``(N, n_classes)`` log-probabilities; ``predict(input)`` the most likely class.

    Args:
        in_features: size of each input row.
        n_classes: number of classes.
        cutoffs: increasing, unique ints in ``[1, n_classes - 1]`` splitting the classes into
            the shortlist and the tail clusters.
        div_value: the factor of the tail clusters' hidden sizes (default 4.0).
        head_bias: a bias in the head ``Linear`` (default False).

    Example:
        >>> import ember
        >>> m = ember.nn.AdaptiveLogSoftmaxWithLoss(16, 10, cutoffs=[4, 8])
        >>> out = m(ember.randn(5, 16), ember.tensor([0, 3, 5, 9, 7]))
        >>> tuple(out.output.shape), tuple(out.loss.shape)
        ((5,), ())
        >>> tuple(m.log_prob(ember.randn(2, 16)).shape)
        (2, 10)
        >>> [n for n, _ in m.named_parameters()]
        ['head.weight', 'tail.0.0.weight', 'tail.0.1.weight', 'tail.1.0.weight', 'tail.1.1.weight']
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs,
        div_value: float = 4.0,
        head_bias: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        who = "AdaptiveLogSoftmaxWithLoss"
        in_features = _check.size(who, "in_features", in_features)
        n_classes = _check.size(who, "n_classes", n_classes)
        div_value = _check.real(who, "div_value", div_value)
        try:
            cutoffs = list(cutoffs)
        except TypeError:
            raise TypeError(
                f"{who}: cutoffs must be a sequence of ints, got {type(cutoffs).__name__}"
            ) from None
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        try:
            as_ints = [operator.index(c) for c in cutoffs]
        except TypeError:
            as_ints = None
        if (
            as_ints is None
            or as_ints != sorted(as_ints)
            or min(as_ints) <= 0
            or max(as_ints) > n_classes - 1
            or len(set(as_ints)) != len(as_ints)
        ):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1 "
                f"(got cutoffs={cutoffs}, n_classes={n_classes})"
            )
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = as_ints + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(
                Sequential(
                    Linear(in_features, hsz, bias=False, dtype=dtype),
                    Linear(hsz, osz, bias=False, dtype=dtype),
                )
            )

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_, target_):
        who = "AdaptiveLogSoftmaxWithLoss"
        if not isinstance(input_, Tensor) or not isinstance(target_, Tensor):
            raise TypeError(f"{who}: input and target must be ember Tensors")
        targ_dim = target_.dim()
        if targ_dim == 1:
            if input_.shape[0] != target_.shape[0]:
                raise ValueError(
                    f"{who}: input and target should have the same size in the batch "
                    f"dimension (input {tuple(input_.shape)}, target {tuple(target_.shape)})"
                )
            if input_.dim() != 2:
                raise ValueError(
                    f"{who}: 1D target tensor expects 2D input tensors, but found inputs "
                    f"with size {tuple(input_.shape)}"
                )
        elif targ_dim == 0:
            if input_.dim() != 1:
                raise ValueError(
                    f"{who}: 0D target tensor expects 1D input tensors, but found inputs "
                    f"with size {tuple(input_.shape)}"
                )
        else:
            raise ValueError(f"{who}: 0D or 1D target tensor expected, multi-target not supported")
        if target_.is_floating_point() or target_.dtype.name == "bool":
            raise TypeError(f"{who}: target must be an integer tensor, got {target_.dtype}")
        batched = targ_dim > 0
        input = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        batch_size = int(target.shape[0])
        output = input.new_zeros(batch_size)
        gather_inds = C.zeros(batch_size, dtype=target.dtype)
        cutoff_values = [0, *self.cutoffs]
        used_rows = 0
        for i in range(len(cutoff_values) - 1):
            low, high = cutoff_values[i], cutoff_values[i + 1]
            mask = (target >= low) & (target < high)
            rows = mask.nonzero().reshape(-1)
            n = int(rows.shape[0])
            if n == 0:
                continue
            if i == 0:
                gather_inds = gather_inds.index_copy(0, rows, target[mask])
            else:
                relative = target[mask] - low
                cluster_output = self.tail[i - 1](input.index_select(0, rows))
                gather_inds = gather_inds.index_fill(0, rows, self.shortlist_size + i - 1)
                cluster_logprob = F.log_softmax(cluster_output, dim=1)
                local = cluster_logprob.gather(1, relative.unsqueeze(1))
                output = output.index_copy(0, rows, local.squeeze(1))
            used_rows += n
        if used_rows != batch_size:
            raise ValueError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{target.min().item()}, {target.max().item()}] were found."
            )
        head_logprob = F.log_softmax(self.head(input), dim=1)
        output = output + head_logprob.gather(1, gather_inds.unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _get_full_log_prob(self, input, head_output):
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i, _ in enumerate(itertools.pairwise(self.cutoffs)):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        from ... import cat

        return cat(parts, dim=1)

    def _check_input(self, input, what):
        if not isinstance(input, Tensor):
            raise TypeError(f"AdaptiveLogSoftmaxWithLoss.{what}: input must be an ember Tensor")
        if input.dim() not in (1, 2) or input.shape[-1] != self.in_features:
            raise ValueError(
                f"AdaptiveLogSoftmaxWithLoss.{what}: expected an input of shape "
                f"(N, {self.in_features}) or ({self.in_features},), got {tuple(input.shape)}"
            )

    def log_prob(self, input):
        """The log-probabilities of all classes: ``(N, n_classes)`` (or ``(n_classes,)``)."""
        self._check_input(input, "log_prob")
        batched = input.dim() > 1
        x = input if batched else input.unsqueeze(0)
        out = self._get_full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input):
        """The most likely class of each row (``log_prob(input).argmax(1)``, computing the
        tail clusters only for the rows whose head does not pick a shortlist class)."""
        from ... import argmax

        self._check_input(input, "predict")
        batched = input.dim() > 1
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        output = argmax(head_output, dim=1)
        not_in_shortlist = output >= self.shortlist_size
        if not bool(not_in_shortlist.any().item()):
            pass
        elif bool(not_in_shortlist.all().item()):
            output = argmax(self._get_full_log_prob(x, head_output), dim=1)
        else:
            rows = not_in_shortlist.nonzero().reshape(-1)
            log_prob = self._get_full_log_prob(
                x.index_select(0, rows), head_output.index_select(0, rows)
            )
            output = output.index_copy(0, rows, argmax(log_prob, dim=1))
        return output if batched else output.squeeze(0)
