"""``multi_head_attention_forward`` (PyTorch's functional form of ``nn.MultiheadAttention``)
and the attention core both it and the module run: projected queries, keys and values in
``(N, L, E)`` layout in, the output projection and the attention weights out."""

from __future__ import annotations

import math
from typing import Any

from ... import _creation as C
from ... import _dtype as dt
from ...ops import elementwise as E
from ...ops import shape as S
from ...ops._core import ShapeError
from ...ops.linalg import matmul
from .activation import softmax
from .conv import linear
from .dropout import dropout as _dropout

__all__ = ["multi_head_attention_forward"]


def _additive(mask: Any, dtype: Any) -> Any:
    """A float mask to add to attention scores (bool masks: True means "masked")."""
    if mask is None:
        return None
    if mask.dtype is dt.bool_:
        zero = C.zeros((), dtype=dtype)
        return E.where(mask, C.full((), float("-inf"), dtype=dtype), zero)
    return mask


def _pad_last(mask: Any) -> Any:
    if mask is None:
        return None
    pad = C.zeros(*mask.shape[:-1], 1, dtype=mask.dtype)
    return S.cat([mask, pad], -1)


def _tril(L: int, S_: int) -> Any:
    rows = S.reshape(C.arange(L), (L, 1))
    cols = S.reshape(C.arange(S_), (1, S_))
    return E.ge(rows, cols)


def attention_core(
    q: Any,
    k: Any,
    v: Any,
    num_heads: int,
    out_proj_weight: Any,
    out_proj_bias: Any,
    *,
    bias_k: Any = None,
    bias_v: Any = None,
    add_zero_attn: bool = False,
    dropout_p: float = 0.0,
    training: bool = True,
    key_padding_mask: Any = None,
    need_weights: bool = True,
    attn_mask: Any = None,
    average_attn_weights: bool = True,
    causal: bool = False,
    static_k: Any = None,
    static_v: Any = None,
) -> tuple[Any, Any]:
    """Attention of projected ``q`` ``(N, L, E)`` over ``k``/``v`` ``(N, S, E)``: returns the
    output ``(N, L, E)`` after the output projection and the weights ``(N, L, S)`` averaged
    over heads (``(N, heads, L, S)`` unaveraged, None without ``need_weights``). ``causal``
    masks future positions when no ``attn_mask`` is given."""
    N, L, embed = q.shape
    h = num_heads
    d = embed // h
    if bias_k is not None and bias_v is not None:
        k = S.cat([k, S.expand(S.reshape(bias_k, (1, 1, embed)), (N, 1, embed))], 1)
        v = S.cat([v, S.expand(S.reshape(bias_v, (1, 1, embed)), (N, 1, embed))], 1)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    q = S.permute(S.reshape(q, (N, L, h, d)), (0, 2, 1, 3))
    if static_k is not None:  # (N * heads, S, head_dim), used as given
        k = S.permute(S.reshape(static_k, (N, h, static_k.shape[1], d)), (0, 1, 3, 2))
    else:
        k = S.permute(S.reshape(k, (N, k.shape[1], h, d)), (0, 2, 3, 1))
    if static_v is not None:
        v = S.reshape(static_v, (N, h, static_v.shape[1], d))
    else:
        v = S.permute(S.reshape(v, (N, v.shape[1], h, d)), (0, 2, 1, 3))
    if add_zero_attn:
        k = S.cat([k, C.zeros(N, h, d, 1, dtype=k.dtype)], 3)
        v = S.cat([v, C.zeros(N, h, 1, d, dtype=v.dtype)], 2)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    Skv = k.shape[3]
    scores = matmul(q * (1.0 / math.sqrt(d)), k)  # (N, h, L, S)
    if attn_mask is None and causal:
        attn_mask = E.logical_not(_tril(L, Skv))
    mask = _additive(attn_mask, scores.dtype)
    if mask is not None:
        if mask.dim() == 3:  # (N * h, L, S)
            mask = S.reshape(mask, (N, h, L, Skv))
        scores = scores + mask
    kpm = _additive(key_padding_mask, scores.dtype)
    if kpm is not None:
        scores = scores + S.reshape(kpm, (N, 1, 1, Skv))
    attn = softmax(scores, dim=-1)
    if dropout_p > 0.0 and training:
        attn = _dropout(attn, dropout_p, True)
    out = matmul(attn, v)  # (N, h, L, d)
    out = S.reshape(S.permute(out, (0, 2, 1, 3)), (N, L, embed))
    out = linear(out, out_proj_weight, out_proj_bias)
    if not need_weights:
        return out, None
    return out, (attn.mean(dim=1) if average_attn_weights else attn)


def _mask_check(name: str, mask: Any, shapes: tuple[tuple[int, ...], ...]) -> None:
    if mask is not None and tuple(mask.shape) not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ShapeError(
            f"multi_head_attention_forward: {name} should have shape {want}, "
            f"got {tuple(mask.shape)}"
        )


def multi_head_attention_forward(
    query: Any,
    key: Any,
    value: Any,
    embed_dim_to_check: int,
    num_heads: int,
    in_proj_weight: Any,
    in_proj_bias: Any,
    bias_k: Any,
    bias_v: Any,
    add_zero_attn: bool,
    dropout_p: float,
    out_proj_weight: Any,
    out_proj_bias: Any,
    training: bool = True,
    key_padding_mask: Any = None,
    need_weights: bool = True,
    attn_mask: Any = None,
    use_separate_proj_weight: bool = False,
    q_proj_weight: Any = None,
    k_proj_weight: Any = None,
    v_proj_weight: Any = None,
    static_k: Any = None,
    static_v: Any = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Any, Any]:
    """Multi-head attention with explicit weights, as ``nn.MultiheadAttention`` computes it.

    ``query`` is ``(L, N, E)`` (or unbatched ``(L, E)``), ``key``/``value`` ``(S, N, kdim)``;
    returns ``(attn_output (L, N, E), attn_weights)`` with the weights ``(N, L, S)`` averaged
    over heads, ``(N, heads, L, S)`` with ``average_attn_weights=False``, or None without
    ``need_weights``. ``is_causal`` is a hint that ``attn_mask`` is causal (it needs the mask,
    as in PyTorch).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> x = ember.randn(4, 2, 6)
        >>> w_in, w_out = ember.randn(18, 6), ember.randn(6, 6)
        >>> out, w = F.multi_head_attention_forward(
        ...     x, x, x, 6, 2, w_in, None, None, None, False, 0.0, w_out, None)
        >>> tuple(out.shape), tuple(w.shape)
        ((4, 2, 6), (2, 4, 4))
    """
    fn = "multi_head_attention_forward"
    if query.dim() not in (2, 3):
        raise ShapeError(f"{fn}: query should be 2-D or 3-D, got shape {tuple(query.shape)}")
    batched = query.dim() == 3
    if key.dim() != query.dim() or value.dim() != query.dim():
        raise ShapeError(
            f"{fn}: query, key and value must all be {'3' if batched else '2'}-D, got shapes "
            f"{tuple(query.shape)}, {tuple(key.shape)} and {tuple(value.shape)}"
        )
    embed = query.shape[-1]
    if embed != embed_dim_to_check:
        raise ShapeError(
            f"{fn}: was expecting embedding dimension of {embed_dim_to_check}, but got {embed}"
        )
    if embed % num_heads:
        raise ShapeError(f"{fn}: embed_dim {embed} not divisible by num_heads {num_heads}")
    if bias_k is not None and (static_k is not None or static_v is not None):
        raise ValueError(f"{fn}: bias_k/bias_v cannot be added to a static key or value")
    if is_causal and attn_mask is None:
        raise RuntimeError(
            f"{fn}: need attn_mask if specifying the is_causal hint (PyTorch's contract)"
        )
    if not batched:
        query, key, value = (S.unsqueeze(t, 1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = S.unsqueeze(key_padding_mask, 0)
    L, N = query.shape[0], query.shape[1]
    Skv = key.shape[0]
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(
                f"{fn}: use_separate_proj_weight is True but q_proj_weight, k_proj_weight "
                "or v_proj_weight is None"
            )
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        if in_proj_weight is None:
            raise ValueError(f"{fn}: use_separate_proj_weight is False but in_proj_weight is None")
        wq, wk, wv = (
            in_proj_weight[:embed],
            in_proj_weight[embed : 2 * embed],
            in_proj_weight[2 * embed :],
        )
    b = in_proj_bias
    bq, bk, bv = (
        (None, None, None) if b is None else (b[:embed], b[embed : 2 * embed], b[2 * embed :])
    )
    # (N, L, E) layout for the core
    q = linear(S.transpose(query, 0, 1), wq, bq)
    k = linear(S.transpose(key, 0, 1), wk, bk) if static_k is None else None
    v = linear(S.transpose(value, 0, 1), wv, bv) if static_v is None else None
    src = Skv if static_k is None else static_k.shape[1]  # (before bias_k's column)
    _mask_check("attn_mask", attn_mask, ((L, src), (N * num_heads, L, src)))
    _mask_check("key_padding_mask", key_padding_mask, ((N, src),))
    if k is None:
        k = C.zeros(N, Skv, embed, dtype=q.dtype)  # (replaced by static_k in the core)
    if v is None:
        v = C.zeros(N, Skv, embed, dtype=q.dtype)
    out, w = attention_core(
        q,
        k,
        v,
        num_heads,
        out_proj_weight,
        out_proj_bias,
        bias_k=bias_k,
        bias_v=bias_v,
        add_zero_attn=add_zero_attn,
        dropout_p=dropout_p,
        training=training,
        key_padding_mask=key_padding_mask,
        need_weights=need_weights,
        attn_mask=attn_mask,
        average_attn_weights=average_attn_weights,
        static_k=static_k,
        static_v=static_v,
    )
    out = S.transpose(out, 0, 1)  # (L, N, E)
    if not batched:
        out = S.squeeze(out, 1)
        if w is not None:
            w = S.squeeze(w, 0)
    return out, w
