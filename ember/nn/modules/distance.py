"""``CosineSimilarity`` and ``PairwiseDistance``."""

from __future__ import annotations

from .. import functional as F
from . import _check
from .module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim``.

    Example:
        >>> import ember
        >>> x = ember.tensor([[1.0, 0.0], [1.0, 1.0]])
        >>> [round(v, 4) for v in ember.nn.CosineSimilarity(dim=1)(x, x[:1]).tolist()]
        [1.0, 0.7071]
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim = _check.dim("CosineSimilarity", "dim", dim)
        self.eps = _check.real("CosineSimilarity", "eps", eps, minimum=0.0)

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """The ``p``-norm of ``x1 - x2 + eps`` along the last dim."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm = _check.real("PairwiseDistance", "p", p)
        self.eps = _check.real("PairwiseDistance", "eps", eps, minimum=0.0)
        self.keepdim = bool(keepdim)

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
