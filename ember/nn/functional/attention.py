"""``scaled_dot_product_attention``: the fused ``sdpa`` primitive for the common case (no mask
or dropout, one batch shape), else a composite of matmul, softmax, dropout, matmul."""

from __future__ import annotations

import math

import numpy as np

from ... import _dtype as ember_dtype
from ... import ops
from ...ops._core import ShapeError
from ...ops.attention import sdpa_op
from ...ops.complex_refuse import refuse_complex
from .dropout import dropout

__all__ = ["scaled_dot_product_attention"]


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p=0.0,
    is_causal=False,
    *,
    scale=None,
    enable_gqa=False,
):
    refuse_complex("scaled_dot_product_attention", query, key, value)
    op = "scaled_dot_product_attention"
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(
            f"{op}: incompatible shapes query {tuple(query.shape)}, key "
            f"{tuple(key.shape)}, value {tuple(value.shape)}"
        )
    L, S = query.shape[-2], key.shape[-2]
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key = (
            key.unsqueeze(-3)
            .expand(tuple(key.shape[:-2]) + (rep,) + tuple(key.shape[-2:]))
            .reshape(tuple(key.shape[:-3]) + (-1,) + tuple(key.shape[-2:]))
        )
        value = (
            value.unsqueeze(-3)
            .expand(tuple(value.shape[:-2]) + (rep,) + tuple(value.shape[-2:]))
            .reshape(tuple(value.shape[:-3]) + (-1,) + tuple(value.shape[-2:]))
        )
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    if S == 0:  # no keys: every query attends to nothing, zeros (as PyTorch)
        return ops.matmul(ops.matmul(query, key.mT), value)
    if (
        attn_mask is None
        and dropout_p == 0.0
        and query.ndim >= 2
        and query.ndim == key.ndim == value.ndim
        and tuple(query.shape[:-2]) == tuple(key.shape[:-2]) == tuple(value.shape[:-2])
        and query.dtype == key.dtype == value.dtype
        and query.dtype in (ember_dtype.float32, ember_dtype.float64)
    ):
        return sdpa_op(query, key, value, s, is_causal)  # one fused kernel
    scores = ops.matmul(query, key.mT) * s
    from ..._creation import from_numpy

    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: attn_mask and is_causal cannot both be set")
        allowed = from_numpy(np.tril(np.ones((L, S), np.bool_)))
        scores = ops.where(allowed, scores, float("-inf"))
    if attn_mask is not None:
        ms, ss = tuple(attn_mask.shape), tuple(scores.shape)
        if len(ms) > len(ss) or any(m not in (1, t) for m, t in zip(ms[::-1], ss[::-1])):
            raise ShapeError(
                f"{op}: attn_mask of shape {ms} cannot be broadcast to the attention "
                f"scores of shape {ss} (..., L={L}, S={S})"
            )
        # a query row the mask leaves no key (all False, or all -inf) attends to nothing:
        # zeros, as PyTorch's safe softmax, not softmax's nan. The rows are found on the mask
        # (usually far smaller than the scores), relaxed there so that the softmax stays
        # finite, and zeroed after it (which zeroes their gradient too)
        if attn_mask._data.dtype == np.bool_:
            full = ~attn_mask.any(-1, keepdim=True)
            scores = ops.where(attn_mask | full, scores, float("-inf"))
        else:
            full = (attn_mask.detach() == float("-inf")).all(-1, keepdim=True)
            scores = scores + ops.where(full, 0.0, attn_mask)
    else:
        full = None
    attn = ops.softmax(scores, -1)
    if full is not None:
        attn = ops.where(full, 0.0, attn)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, True)
    return ops.matmul(attn, value)
