"""Keras ``MultiHeadAttention``: separate query/key/value projections to ``num_heads`` heads
of ``key_dim`` (``value_dim``), scaled dot-product attention, and an output projection back
to the query's feature size. The weights are stored in Keras' layout (``query/kernel`` of
shape ``(d, num_heads, key_dim)``, ``attention_output/kernel`` ``(num_heads, value_dim, d)``)
and flattened to matrices (views) for the projections.

NOTE: ``nn.MultiheadAttention`` requires ``embed_dim == num_heads * head_dim == query
features``; Keras does not, so the projections are built here.
"""

from __future__ import annotations

import math

import ember
from ember import nn

from .. import random
from .base import Layer, WeightSpec, check_supported, register

__all__ = ["MultiHeadAttention"]


@register
class MultiHeadAttention(Layer):
    """``call(query, value, key=None, attention_mask=None, return_attention_scores=False)``;
    inputs are (batch, seq, features); ``attention_mask`` is boolean (batch, T, S), True
    where attention is allowed. The Keras masks of ``query``, ``value`` and ``key`` (or
    ``value_mask``/``key_mask``; as Keras 3.15, ``query_mask`` is always the query's Keras
    mask) join it, as Keras' ``_compute_attention_mask``; the output carries the query's
    mask."""

    supports_masking = True

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape=None,
        attention_axes=None,
        sliding_window=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        use_gate: bool = False,
        seed=None,
        **kwargs,
    ):
        check_supported(
            "MultiHeadAttention",
            attention_axes=(attention_axes, None),
            sliding_window=(sliding_window, None),
            use_gate=(use_gate, False),
        )
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.attention_axes, self.sliding_window = attention_axes, sliding_window
        self.flash_attention, self.use_gate, self.seed = flash_attention, use_gate, seed
        self._seed_gen = None  # the seeded dropout masks, made on first use
        self._store_weight_args(locals())
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias, self.output_shape = float(dropout), use_bias, output_shape

    def _projection(self, fan_in: int, heads: tuple, fan_out_dims: tuple, bias_shape: tuple):
        """A projection stored in Keras' layout: ``kernel`` of shape ``(*heads_in, *out)``
        (``(d, heads, key_dim)`` for query/key/value, ``(heads, value_dim, d)`` for the
        output) and ``bias`` of ``bias_shape``. The kernel is initialized as the
        ``(fan_out, fan_in)`` matrix ``nn.Linear`` would hold, so its fans are the flat
        in/out sizes."""
        mod = nn.Module()
        fan_out = math.prod(fan_out_dims)
        w = ember.empty(fan_out, fan_in)
        self.kernel_initializer(w)
        mod.kernel = nn.Parameter(w.T.reshape(*heads, *fan_out_dims).contiguous())
        self._regularize(self.kernel_regularizer, lambda: mod.kernel)
        self._constrain(self.kernel_constraint, mod.kernel)
        if self.use_bias:
            mod.bias = nn.Parameter(ember.empty(*bias_shape))
            self.bias_initializer(mod.bias)
            self._regularize(self.bias_regularizer, lambda: mod.bias)
            self._constrain(self.bias_constraint, mod.bias)
        else:
            mod.bias = None
        return mod

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out = self.output_shape if self.output_shape is not None else query_shape[-1]
        out = out if isinstance(out, int) else int(out[-1])
        dq, dk, dv = int(query_shape[-1]), int(key_shape[-1]), int(value_shape[-1])
        # Keras' weights (names, shapes and order): query, key, value, attention_output
        self.query = self._projection(dq, (dq,), (h, kd), (h, kd))
        self.key = self._projection(dk, (dk,), (h, kd), (h, kd))
        self.value = self._projection(dv, (dv,), (h, vd), (h, vd))
        self.attention_output = self._projection(h * vd, (h, vd), (out,), (out,))

    def _maybe_build(self, args):
        if self.built:
            return
        shapes = [tuple(a.shape) for a in args[:3] if a is not None]
        self.build(*shapes)
        self._build_shape = [[None] + list(s[1:]) for s in shapes]
        self._finish_build()

    def _heads(self, x, d):
        b, t = x.shape[0], x.shape[1]
        return x.reshape(b, t, self.num_heads, d).permute(0, 2, 1, 3)

    def call(
        self,
        query,
        value,
        key=None,
        attention_mask=None,
        return_attention_scores: bool = False,
        training=None,
        use_causal_mask=False,
        query_mask=None,
        value_mask=None,
        key_mask=None,
    ):
        from .base import get_mask

        # Keras' _compute_attention_mask: the Keras masks of query (B, T, 1), value and key
        # (B, 1, S), the causal mask and attention_mask, combined with AND
        # NOTE: as Keras 3.15, the query's mask is its Keras mask: a query_mask argument
        # is overridden (by None where the query carries no mask)
        query_mask = get_mask(query)
        value_mask = get_mask(value) if value_mask is None else value_mask
        if key_mask is None and key is not None:
            key_mask = get_mask(key)
        auto = None
        for m, axis in ((query_mask, -1), (value_mask, -2), (key_mask, -2)):
            if m is not None:
                m = ember.as_tensor(m).to(ember.bool).unsqueeze(axis)
                auto = m if auto is None else (auto & m)
        if auto is not None:
            attention_mask = (
                auto if attention_mask is None else (ember.as_tensor(attention_mask).bool() & auto)
            )
        key = value if key is None else key
        q = self._heads(_project(self.query, query), self.key_dim)
        k = self._heads(_project(self.key, key), self.key_dim)
        v = self._heads(_project(self.value, value), self.value_dim)
        scores = (q * (1.0 / math.sqrt(self.key_dim))) @ k.transpose(-1, -2)
        mask = attention_mask
        if use_causal_mask:
            t, s = scores.shape[-2], scores.shape[-1]
            causal = ember.ones(t, s, dtype=ember.bool).tril()
            mask = causal if mask is None else (mask.bool() & causal)
        if mask is not None:
            m = mask.bool()
            if m.ndim == 3:
                m = m.unsqueeze(1)
            scores = ember.where(m, scores, ember.full_like(scores, -1e9))
        weights = ember.softmax(scores, dim=-1)
        if mask is not None and (return_attention_scores or self.dropout > 0):
            # Keras' masked Softmax zeroes the masked entries (a row masked throughout gets
            # no weight); its fused path, taken otherwise, leaves such a row uniform
            weights = ember.where(m, weights, ember.zeros_like(weights))
        if training and self.dropout:
            if self.seed is not None and self._seed_gen is None:
                self._seed_gen = random.SeedGenerator(int(self.seed))
            weights = random.dropout(weights, self.dropout, seed=self._seed_gen)
        out = (weights @ v).permute(0, 2, 1, 3)
        out = out.reshape(out.shape[0], out.shape[1], self.num_heads * self.value_dim)
        out = _project(self.attention_output, out)
        return (out, weights) if return_attention_scores else out

    def _weight_specs(self):
        # stored in Keras' layout: query, key, value, attention_output (kernel, bias each)
        s = []
        for proj in (self.query, self.key, self.value, self.attention_output):
            s.append(WeightSpec(proj.kernel))
            if proj.bias is not None:
                s.append(WeightSpec(proj.bias))
        return s


def _project(proj, x):
    """``x @ kernel + bias`` with the kernel and bias flattened to a matrix and a vector
    (reshapes of contiguous parameters: views, no copies)."""
    kernel, fan_in = proj.kernel, x.shape[-1]
    w = kernel.reshape(fan_in, kernel.numel() // fan_in)
    b = proj.bias.reshape(w.shape[1]) if proj.bias is not None else None
    return nn.functional.linear(x, w.T, b)
