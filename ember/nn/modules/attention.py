"""``MultiheadAttention`` (PyTorch's parameter names: ``in_proj_weight``, ``in_proj_bias``,
``out_proj``; or ``q_proj_weight`` / ``k_proj_weight`` / ``v_proj_weight`` when the key and
value sizes differ from ``embed_dim``)."""

from __future__ import annotations

from ... import _creation as C
from ...ops import shape as S
from .. import functional as F
from .. import init
from ..functional.mha import _mask_check, attention_core
from ..parameter import Parameter
from . import _check
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` (the name PyTorch gives ``MultiheadAttention.out_proj``)."""


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads: ``softmax(Q K^T / sqrt(d)) V`` per head.

    Inputs are ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or unbatched ``(L, E)``.
    Returns ``(attn_output, attn_weights)``; ``attn_weights`` is ``(N, L, S)`` averaged over
    heads (``(N, heads, L, S)`` with ``average_attn_weights=False``) or None when
    ``need_weights=False``.

    Example:
        >>> import ember
        >>> mha = ember.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> x = ember.randn(3, 5, 8)
        >>> out, w = mha(x, x, x)
        >>> tuple(out.shape), tuple(w.shape)
        ((3, 5, 8), (3, 5, 5))
    """

    bias_k: Parameter | None
    bias_v: Parameter | None

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim=None,
        vdim=None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        embed_dim = _check.integer("MultiheadAttention", "embed_dim", embed_dim)
        num_heads = _check.integer("MultiheadAttention", "num_heads", num_heads)
        dropout = _check.prob("MultiheadAttention", "dropout", dropout)
        if kdim is not None:
            kdim = _check.size("MultiheadAttention", "kdim", kdim, minimum=1)
        if vdim is not None:
            vdim = _check.size("MultiheadAttention", "vdim", vdim, minimum=1)
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got "
                f"embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError("embed_dim must be divisible by num_heads")
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(C.empty(embed_dim, embed_dim, dtype=dtype))
            self.k_proj_weight = Parameter(C.empty(embed_dim, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(C.empty(embed_dim, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(C.empty(3 * embed_dim, embed_dim, dtype=dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(C.empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, dtype=dtype
        )
        if add_bias_kv:
            self.bias_k = Parameter(C.empty(1, 1, embed_dim, dtype=dtype))
            self.bias_v = Parameter(C.empty(1, 1, embed_dim, dtype=dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _projections(self, query, key, value):
        E_ = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E_], b[E_ : 2 * E_], b[2 * E_ :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:
                qkv = F.linear(query, w, b)
                return qkv[..., :E_], qkv[..., E_ : 2 * E_], qkv[..., 2 * E_ :]
            wq, wk, wv = w[:E_], w[E_ : 2 * E_], w[2 * E_ :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        batched = query.dim() == 3
        if not batched:
            query, key, value = (S.unsqueeze(t, 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = S.unsqueeze(key_padding_mask, 0)
        elif not self.batch_first:
            same_kv = key is value
            same_qk = query is key
            query = S.transpose(query, 0, 1)
            key = query if same_qk else S.transpose(key, 0, 1)
            value = key if same_kv else S.transpose(value, 0, 1)
        # now (N, L, E)
        if attn_mask is not None:
            n_, l_, s_ = query.shape[0], query.shape[1], key.shape[1]
            _mask_check("attn_mask", attn_mask, ((l_, s_), (n_ * self.num_heads, l_, s_)))
        q, k, v = self._projections(query, key, value)
        out, w = attention_core(
            q,
            k,
            v,
            self.num_heads,
            self.out_proj.weight,
            self.out_proj.bias,
            bias_k=self.bias_k,
            bias_v=self.bias_v,
            add_zero_attn=self.add_zero_attn,
            dropout_p=self.dropout,
            training=self.training,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            attn_mask=attn_mask,
            average_attn_weights=average_attn_weights,
            causal=is_causal,
        )
        if not batched:
            out = S.squeeze(out, 0)
        elif not self.batch_first:
            out = S.transpose(out, 0, 1)
        if w is not None and not batched:
            w = S.squeeze(w, 0)
        return out, w

    def extra_repr(self) -> str:
        return ""
