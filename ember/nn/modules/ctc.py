"""``CTCLoss``: the layer of :func:`ember.nn.functional.ctc_loss`."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .loss import _Loss

__all__ = ["CTCLoss"]


class CTCLoss(_Loss):
    """Connectionist Temporal Classification loss of ``(T, N, C)`` log-probabilities.

    Example:
        >>> import ember
        >>> ctc = ember.nn.CTCLoss(blank=0)
        >>> lp = ember.randn(10, 2, 5).log_softmax(2)
        >>> ctc(lp, ember.tensor([[1, 2, 3], [4, 4, 0]]), [10, 8], [3, 2]).ndim
        0
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction=reduction)
        self.blank = _check.integer("CTCLoss", "blank", blank)
        if self.blank < 0:
            raise ValueError(f"CTCLoss: blank must be non-negative, got {blank}")
        self.zero_infinity = bool(zero_infinity)

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return F.ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            self.blank,
            self.reduction,
            self.zero_infinity,
        )
