"""``EmbeddingBag``: sums, means or maxima of bags of embeddings."""

from __future__ import annotations

from ... import _creation as C
from ...autograd import no_grad
from .. import functional as F
from .. import init
from ..parameter import Parameter
from . import _check
from .module import Module

__all__ = ["EmbeddingBag"]


class EmbeddingBag(Module):
    """A table of ``num_embeddings`` vectors reduced per bag (:func:`F.embedding_bag`).

    Example:
        >>> import ember
        >>> bag = ember.nn.EmbeddingBag(10, 3, mode="sum")
        >>> bag(ember.tensor([1, 2, 4, 5, 4]), ember.tensor([0, 2])).shape
        ember.Size([2, 3])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight=None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        who = "EmbeddingBag"
        self.num_embeddings = _check.size(who, "num_embeddings", num_embeddings)
        self.embedding_dim = _check.size(who, "embedding_dim", embedding_dim)
        self.max_norm = _check.optional_real(who, "max_norm", max_norm)
        self.norm_type = _check.real(who, "norm_type", norm_type)
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        if padding_idx is not None:
            padding_idx = _check.integer(who, "padding_idx", padding_idx)
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"{who}: padding_idx must be within num_embeddings")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        self.mode = _check.choice(who, "mode", mode, ("sum", "mean", "max"))
        self.sparse = bool(sparse)
        self.include_last_offset = bool(include_last_offset)
        if _weight is None:
            self.weight = Parameter(C.empty(self.num_embeddings, self.embedding_dim, dtype=dtype))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (self.num_embeddings, self.embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(
            input,
            self.weight,
            offsets,
            self.max_norm,
            self.norm_type,
            self.scale_grad_by_freq,
            self.mode,
            self.sparse,
            per_sample_weights,
            self.include_last_offset,
            self.padding_idx,
        )

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(
        cls,
        embeddings,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An ``EmbeddingBag`` on the given ``(num_embeddings, dim)`` table (frozen by
        default).

        Example:
            >>> import ember
            >>> bag = ember.nn.EmbeddingBag.from_pretrained(ember.eye(3), mode="sum")
            >>> bag(ember.tensor([[0, 2]])).tolist()
            [[1.0, 0.0, 1.0]]
        """
        if embeddings.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        bag = cls(
            rows,
            cols,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            mode,
            sparse,
            embeddings,
            include_last_offset,
            padding_idx,
        )
        bag.weight.requires_grad = not freeze
        return bag
