"""Keras ``MultiHeadAttention``: separate query/key/value projections to ``num_heads`` heads
of ``key_dim`` (``value_dim``), scaled dot-product attention, and an output projection back
to the query's feature size — four ``nn.Linear`` layers underneath.

NOTE: ``nn.MultiheadAttention`` requires ``embed_dim == num_heads * head_dim == query
features``; Keras does not, so the projections are built here from ``nn.Linear``.
"""

from __future__ import annotations

import math

import ember
from ember import nn

from .. import constraints, initializers, random, regularizers
from .base import Layer, WeightSpec, check_supported, register

__all__ = ["MultiHeadAttention"]


@register
class MultiHeadAttention(Layer):
    """``call(query, value, key=None, attention_mask=None, return_attention_scores=False)``;
    inputs are (batch, seq, features); ``attention_mask`` is boolean (batch, T, S), True
    where attention is allowed."""

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
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias, self.output_shape = float(dropout), use_bias, output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def _linear(self, i, o):
        lin = nn.Linear(i, o, bias=self.use_bias)
        self.kernel_initializer(lin.weight)
        if self.use_bias:
            self.bias_initializer(lin.bias)
        self._regularize(self.kernel_regularizer, lambda: lin.weight.T)
        self._constrain(self.kernel_constraint, lin.weight, lambda w: w.T, lambda w: w.T)
        if self.use_bias:
            self._regularize(self.bias_regularizer, lambda: lin.bias)
            self._constrain(self.bias_constraint, lin.bias)
        return lin

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out = self.output_shape if self.output_shape is not None else query_shape[-1]
        out = out if isinstance(out, int) else int(out[-1])
        self.query_dense = self._linear(int(query_shape[-1]), h * kd)
        self.key_dense = self._linear(int(key_shape[-1]), h * kd)
        self.value_dense = self._linear(int(value_shape[-1]), h * vd)
        self.output_dense = self._linear(h * vd, out)

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
    ):
        key = value if key is None else key
        q = self._heads(self.query_dense(query), self.key_dim)
        k = self._heads(self.key_dense(key), self.key_dim)
        v = self._heads(self.value_dense(value), self.value_dim)
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
        if training and self.dropout:
            if self.seed is not None and self._seed_gen is None:
                self._seed_gen = random.SeedGenerator(int(self.seed))
            weights = random.dropout(weights, self.dropout, seed=self._seed_gen)
        out = (weights @ v).permute(0, 2, 1, 3)
        out = out.reshape(out.shape[0], out.shape[1], self.num_heads * self.value_dim)
        out = self.output_dense(out)
        return (out, weights) if return_attention_scores else out

    def _weight_specs(self):
        # Keras stores (in, heads, dim) kernels; here they are flattened (in, heads*dim).
        s = []
        for lin in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            s.append(WeightSpec(lin.weight, lambda a: a.T, lambda a: a.T))
            if self.use_bias:
                s.append(WeightSpec(lin.bias))
        return s
