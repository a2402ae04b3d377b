"""Recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) on ``nn.RNN/LSTM/GRU``
(``batch_first=True``), with Keras outputs (``return_sequences``, ``return_state``) and
Keras initialisation (glorot-uniform kernel, orthogonal recurrent kernel, zero bias with the
LSTM forget-gate bias at 1).

Gate orders: Keras LSTM (i, f, c, o) equals PyTorch's (i, f, g, o); Keras GRU (z, r, h)
is PyTorch's (r, z, n) with the first two blocks swapped, and Keras' default
``reset_after=True`` is PyTorch's GRU formula.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

import ember
from ember import nn

from .. import activations, initializers, random
from .base import Layer, WeightSpec, in_dummy_run, register, with_defaults

__all__ = ["GRU", "LSTM", "Bidirectional", "SimpleRNN"]


class _RNN(Layer):
    gates = 1
    kind = "rnn"

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed=None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        reset_after: bool = True,
        use_cudnn="auto",
        **kwargs,
    ):
        nm = type(self).__name__
        # resolved now so that a bad name fails at construction, as in Keras
        self._act = activations.get(activation)
        self._rec_act = activations.get(recurrent_activation)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if isinstance(units, (str, bytes)) or int(units) < 1:
            raise ValueError(f"{nm}: units must be a positive int, got {units!r}")
        self.units, self.use_bias = int(units), bool(use_bias)
        # (None is Keras' linear activation, which get_config names)
        self.activation = "linear" if activation is None else activation
        self.recurrent_activation = (
            "linear" if recurrent_activation is None else recurrent_activation
        )
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.dropout = bool(go_backwards), float(dropout)
        self.recurrent_dropout, self.seed = float(recurrent_dropout), seed
        self._seed_gen = None  # the seeded dropout masks, made on first use
        self.stateful, self.unroll, self.use_cudnn = bool(stateful), bool(unroll), use_cudnn
        self.unit_forget_bias, self.reset_after = bool(unit_forget_bias), bool(reset_after)
        self._states: list | None = None  # stateful=True: the final states of the last call
        self._store_weight_args(locals())

    supports_masking = True
    _zero_masked_output = False  # Bidirectional(return_sequences=True): zeros at masked steps

    def _split_bias(self) -> bool:
        """Whether Keras keeps two bias rows (GRU ``reset_after=True``): both are trained."""
        return self.kind == "gru" and self.reset_after

    def _hidden_weights(self):
        # the frozen bias_hh of a single-bias cell is no Keras weight (count_params)
        if self.built and self.use_bias and not self._split_bias():
            return [self.cell.bias_hh_l0]
        return []

    def _fused(self) -> bool:
        """Whether the cell is the one ``nn.RNN/LSTM/GRU`` computes (the fused kernels)."""
        if self.kind == "rnn":
            return self._act in (activations.tanh, activations.relu)
        ok = self._act is activations.tanh and self._rec_act is activations.sigmoid
        return ok and (self.kind == "lstm" or self.reset_after)

    def _make(self, input_size):
        if self.kind == "rnn":
            return nn.RNN(
                input_size,
                self.units,
                nonlinearity="relu" if self._act is activations.relu else "tanh",
                bias=self.use_bias,
                batch_first=True,
            )
        return getattr(nn, self.kind.upper())(
            input_size, self.units, bias=self.use_bias, batch_first=True
        )

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__}: expected (batch, timesteps, features), "
                f"got shape {tuple(input_shape)}"
            )
        self.cell = self._make(int(input_shape[-1]))
        u, g = self.units, self.gates
        if self.use_bias and not self._split_bias():
            # Keras has one bias variable: it is bias_ih; bias_hh stays a frozen zero (kept
            # as a parameter so the state-dict keys of older checkpoints still load)
            self.cell.bias_hh_l0.requires_grad_(False)
        self.kernel_initializer(self.cell.weight_ih_l0)
        with ember.no_grad():
            # NOTE: Keras draws one orthogonal (units, gates*units) matrix; init per gate block
            w = self.cell.weight_hh_l0
            for i in range(g):
                blk = ember.empty(u, u)
                self.recurrent_initializer(blk)
                w[i * u : (i + 1) * u].copy_(blk)
        if self.use_bias:
            self.bias_initializer(self.cell.bias_ih_l0)
            initializers.Zeros()(self.cell.bias_hh_l0)
            if self.kind == "lstm" and self.unit_forget_bias:
                with ember.no_grad():
                    self.cell.bias_ih_l0[u : 2 * u].fill_(1.0)
        c = self.cell
        # penalties see Keras' layout: (in, gates*units) kernels and one bias vector
        self._regularize(self.kernel_regularizer, lambda: c.weight_ih_l0.T)
        self._regularize(self.recurrent_regularizer, lambda: c.weight_hh_l0.T)
        if self.use_bias:
            if self.kind == "gru" and self.reset_after:
                self._regularize(
                    self.bias_regularizer, lambda: ember.stack([c.bias_ih_l0, c.bias_hh_l0])
                )
            else:
                self._regularize(self.bias_regularizer, lambda: c.bias_ih_l0 + c.bias_hh_l0)
        self._constrain(self.kernel_constraint, c.weight_ih_l0, _T, _T)
        self._constrain(self.recurrent_constraint, c.weight_hh_l0, _T, _T)
        if self.use_bias:
            # Keras' bias is bias_ih + bias_hh (a (2, 3*units) stack for GRU): the
            # projected value goes back into bias_ih (bias_hh is zeroed; GRU keeps both rows)
            hh = c.bias_hh_l0
            if self.kind == "gru" and self.reset_after:
                self._constrain(
                    self.bias_constraint,
                    c.bias_ih_l0,
                    lambda w: ember.stack([w, hh]),
                    lambda v: _set_then(hh, v[1].detach().numpy(), v[0]),
                )
            else:
                self._constrain(
                    self.bias_constraint,
                    c.bias_ih_l0,
                    lambda w: w + hh,
                    lambda v: _zero_then(hh, v),
                )

    def call(self, inputs, initial_state=None, mask=None, training=None):
        x = inputs.flip(1) if self.go_backwards else inputs
        if mask is not None:
            mask = ember.as_tensor(mask).to(ember.bool)
            if tuple(mask.shape) != tuple(x.shape[:2]):
                raise ValueError(
                    f"{type(self).__name__}: mask of shape {tuple(mask.shape)} does not match "
                    f"the inputs' (batch, timesteps) {tuple(x.shape[:2])}"
                )
            mask = mask.flip(1) if self.go_backwards else mask
        rec_drop = bool(training) and 0.0 < self.recurrent_dropout < 1.0
        drop = bool(training) and 0.0 < self.dropout < 1.0
        # Keras' implementation=1 (any recurrent_dropout): one input mask per gate
        per_gate = drop and self.recurrent_dropout != 0.0 and self.kind != "rnn"
        if drop and not per_gate:
            # NOTE: Keras drops the same input features at every time step
            x = x * self._dropout_mask(x.shape[0], 1, x.shape[2], like=x, rate=self.dropout)
        states = self._initial_states(x, initial_state)
        if self._fused() and not rec_drop and mask is None:
            h0 = None
            if states is not None:
                st = [s.unsqueeze(0) for s in states]
                h0 = tuple(st) if self.kind == "lstm" else st[0]
            out, state = self.cell(x, h0) if h0 is not None else self.cell(x)
            final = [state[0][0], state[1][0]] if self.kind == "lstm" else [state[0]]
        else:
            in_masks = None
            if per_gate:
                in_masks = [
                    self._dropout_mask(x.shape[0], 1, x.shape[2], like=x, rate=self.dropout)
                    for _ in range(self.gates)
                ]
            rec_masks = None
            if rec_drop:
                rec_masks = [
                    self._dropout_mask(x.shape[0], self.units, like=x, rate=self.recurrent_dropout)
                    for _ in range(self.gates)
                ]
            out, final = self._loop(x, states, mask, in_masks, rec_masks)
        if self.stateful and not in_dummy_run():
            self._states = [s.detach() for s in final]
        seq = out if self.return_sequences else out[:, -1]
        if not self.return_state:
            return seq
        return [seq, *final]

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs: the input mask for ``return_sequences``, else None (and
        None for each state with ``return_state``), as Keras' ``RNN.compute_mask``."""
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * (2 if self.kind == "lstm" else 1)
        return out

    def _dropout_mask(self, *shape, like, rate):
        if self.seed is not None and self._seed_gen is None:
            self._seed_gen = random.SeedGenerator(int(self.seed))
        ones = ember.ones(*shape, dtype=like.dtype)
        return random.dropout(ones, rate, seed=self._seed_gen)

    def _initial_states(self, x, initial_state):
        """The states the recurrence starts from (a list, or None for zeros)."""
        if initial_state is not None:
            st = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            return [ember.as_tensor(s).to(x.dtype) for s in st]
        if not self.stateful or in_dummy_run():
            return None
        batch = int(x.shape[0])
        if self._states is None:
            self._states = [
                ember.zeros(batch, self.units, dtype=x.dtype)
                for _ in range(2 if self.kind == "lstm" else 1)
            ]
        elif int(self._states[0].shape[0]) != batch:
            raise ValueError(
                "If an RNN is stateful, the batch size of the input sequences must be the "
                f"same as the batch size of the initial state. Expected batch size: "
                f"{int(self._states[0].shape[0])}, received batch size: {batch}"
            )
        return list(self._states)

    def reset_state(self) -> None:
        """Zero the states a ``stateful=True`` layer carries from call to call.

        Example:
            >>> import ember
            >>> from ember import keras
            >>> rnn = keras.layers.SimpleRNN(2, stateful=True)
            >>> x = ember.ones(1, 3, 2)
            >>> first = rnn(x)
            >>> bool((rnn(x) == first).all())  # the second call starts from the first's state
            False
            >>> rnn.reset_state()
            >>> bool((rnn(x) == first).all())
            True
        """
        if self._states is not None:
            self._states = [ember.zeros_like(s) for s in self._states]

    def reset_states(self) -> None:
        """Alias of :meth:`reset_state` (Keras' compatibility name)."""
        self.reset_state()

    @property
    def states(self):
        """A stateful layer's current states (None before its first call)."""
        return None if self._states is None else list(self._states)

    def _loop(self, x, states, mask, in_masks, rec_masks):
        """The recurrence step by step in Keras' formulas, with any activations, recurrent
        dropout masks (one per gate, fixed over the sequence), ``reset_after=False`` and a
        time-step mask (a masked step keeps the previous states; its output repeats the
        previous output, zeros before the first)."""
        c, u = self.cell, self.units
        act, ract = self._act, self._rec_act
        batch, steps = int(x.shape[0]), int(x.shape[1])
        w_ih, w_hh = c.weight_ih_l0, c.weight_hh_l0
        split_bias = self.kind == "gru" and self.reset_after
        b_in = b_rec = None
        if self.use_bias:
            b_in = c.bias_ih_l0 if split_bias else c.bias_ih_l0 + c.bias_hh_l0
            b_rec = c.bias_hh_l0 if split_bias else None
        if in_masks is not None:
            xp = ember.cat(
                [(x * m) @ w_ih[k * u : (k + 1) * u].T for k, m in enumerate(in_masks)], dim=-1
            )
        else:
            xp = x @ w_ih.T
        if b_in is not None:
            xp = xp + b_in

        def rec(h, k0, k1):
            # h @ U for the gate blocks k0..k1-1, each block's h under its dropout mask
            if rec_masks is None:
                return h @ w_hh[k0 * u : k1 * u].T
            return ember.cat(
                [(h * rec_masks[k]) @ w_hh[k * u : (k + 1) * u].T for k in range(k0, k1)], dim=-1
            )

        zeros = ember.zeros(batch, u, dtype=x.dtype)
        h = states[0] if states is not None else zeros
        cs = (states[1] if states is not None else zeros) if self.kind == "lstm" else None
        prev, outs = zeros, []
        for t in range(steps):
            xt = xp[:, t]
            new_c = None
            if self.kind == "rnn":
                new_h = act(xt + rec(h, 0, 1))
            elif self.kind == "lstm":
                i, f, cc, o = (xt + rec(h, 0, 4)).chunk(4, dim=-1)
                new_c = ract(f) * cs + ract(i) * act(cc)
                new_h = ract(o) * act(new_c)
            else:  # GRU, PyTorch's block order (r, z, n)
                xr, xz, xn = xt.chunk(3, dim=-1)
                if self.reset_after:
                    hp = rec(h, 0, 3)
                    if b_rec is not None:
                        hp = hp + b_rec
                    hr, hz, hn = hp.chunk(3, dim=-1)
                    r, z = ract(xr + hr), ract(xz + hz)
                    n = act(xn + r * hn)
                else:
                    hr, hz = rec(h, 0, 2).chunk(2, dim=-1)
                    r, z = ract(xr + hr), ract(xz + hz)
                    hn_in = h if rec_masks is None else h * rec_masks[2]
                    n = act(xn + (r * hn_in) @ w_hh[2 * u :].T)
                new_h = z * h + (1 - z) * n
            if mask is not None:
                m = mask[:, t].unsqueeze(1)
                out_t = ember.where(m, new_h, zeros if self._zero_masked_output else prev)
                h = ember.where(m, new_h, h)
                if new_c is not None:
                    cs = ember.where(m, new_c, cs)
            else:
                out_t, h = new_h, new_h
                if new_c is not None:
                    cs = new_c
            prev = out_t
            outs.append(out_t)
        out = ember.stack(outs, dim=1) if outs else x.new_zeros(batch, 0, u)
        return out, ([h, cs] if self.kind == "lstm" else [h])

    def _block_perm(self):
        return None

    def _weight_specs(self):
        if self.kind == "lstm" or self.kind == "rnn":
            return self._specs_sum_bias()
        return self._specs_gru()

    def get_config(self) -> dict:
        cfg = super().get_config()
        for key in ("dropout", "recurrent_dropout"):
            if key in cfg:  # Keras stores the rates clipped to [0, 1]
                cfg[key] = min(1.0, max(0.0, cfg[key]))
        return cfg

    def _specs_sum_bias(self):
        c = self.cell
        s = [
            WeightSpec(c.weight_ih_l0, lambda a: a.T, lambda a: a.T),
            WeightSpec(c.weight_hh_l0, lambda a: a.T, lambda a: a.T),
        ]
        if self.use_bias:
            hh = c.bias_hh_l0
            # NOTE: Keras has one bias; PyTorch two. Reading sums them; writing puts the bias
            # in bias_ih and zeroes bias_hh (same function).
            s.append(
                WeightSpec(
                    c.bias_ih_l0, lambda a: a + hh.detach().numpy(), lambda a: _zero_then(hh, a)
                )
            )
        return s

    def _specs_gru(self):
        c, u = self.cell, self.units

        def swap(a, axis):
            a = np.asarray(a)
            idx = np.concatenate([np.arange(u, 2 * u), np.arange(0, u), np.arange(2 * u, 3 * u)])
            return np.take(a, idx, axis=axis)

        s = [
            WeightSpec(c.weight_ih_l0, lambda a: swap(a, 0).T, lambda a: swap(a.T, 0)),
            WeightSpec(c.weight_hh_l0, lambda a: swap(a, 0).T, lambda a: swap(a.T, 0)),
        ]
        if self.use_bias and not self.reset_after:
            # Keras' reset_after=False GRU has one bias: bias_ih + bias_hh, as the LSTM's
            hh = c.bias_hh_l0
            s.append(
                WeightSpec(
                    c.bias_ih_l0,
                    lambda a: swap(a + hh.detach().numpy(), 0),
                    lambda a: _zero_then(hh, swap(a, 0)),
                )
            )
        elif self.use_bias:
            hh = c.bias_hh_l0
            s.append(
                WeightSpec(
                    c.bias_ih_l0,
                    lambda a: np.stack([swap(a, 0), swap(hh.detach().numpy(), 0)]),
                    lambda a: _set_then(hh, swap(a[1], 0), swap(a[0], 0)),
                )
            )
        return s


def _T(w):
    return w.T


def _zero_then(t, a):
    with ember.no_grad():
        t.zero_()
    return a


def _set_then(t, value, a):
    with ember.no_grad():
        t.copy_(ember.tensor(np.asarray(value, dtype=t.dtype.np)))
    return a


# Keras' argument lists: the shared runs, in the order each public class states them
_INITS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")
_PENALTIES = (
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
)
_OUTPUTS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll")
_GATED = ("units", "activation", "recurrent_activation", "use_bias", *_INITS)


@register
@with_defaults("units", "activation", "use_bias", *_INITS, *_PENALTIES, *_OUTPUTS, "seed")
class SimpleRNN(_RNN):
    """Fully connected RNN: ``h = activation(x W + h U + b)``."""

    gates, kind = 1, "rnn"


@register
@with_defaults(*_GATED, "unit_forget_bias", *_PENALTIES, "seed", *_OUTPUTS, "use_cudnn")
class LSTM(_RNN):
    """Long short-term memory (Keras gate order i, f, c, o = PyTorch's)."""

    gates, kind = 4, "lstm"


@register
@with_defaults(*_GATED, *_PENALTIES, "seed", *_OUTPUTS, "reset_after", "use_cudnn")
class GRU(_RNN):
    """Gated recurrent unit, Keras' default ``reset_after=True`` form."""

    gates, kind = 3, "gru"


@register
class Bidirectional(Layer):
    """Run ``layer`` forwards and a copy backwards in time; merge with ``merge_mode``
    (``'concat'``, ``'sum'``, ``'mul'``, ``'ave'`` or None for a list)."""

    _config_attrs: ClassVar[dict] = {"layer": "forward_layer"}

    def __init__(
        self, layer, merge_mode: str | None = "concat", weights=None, backward_layer=None, **kwargs
    ):
        super().__init__(**kwargs)
        self._initial_weights = weights
        if isinstance(layer, dict):
            from . import deserialize

            layer = deserialize(layer)
        if not isinstance(layer, _RNN):
            raise TypeError("Bidirectional wraps a SimpleRNN, LSTM or GRU layer")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"Bidirectional: bad merge_mode {merge_mode!r}")
        self.merge_mode = merge_mode
        self.forward_layer = layer
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.update(go_backwards=not layer.go_backwards, name=f"backward_{layer.name}")
            backward_layer = type(layer).from_config(cfg)
        elif isinstance(backward_layer, dict):
            from . import deserialize

            backward_layer = deserialize(backward_layer)
        self.backward_layer = backward_layer

    def build(self, input_shape):
        # the wrapped layers get their weights now, so that initial weights can be set
        self.forward_layer.build_from_shape(input_shape)
        self.backward_layer.build_from_shape(input_shape)

    supports_masking = True

    def call(self, inputs, initial_state=None, mask=None, training=None):
        fwd_state = bwd_state = None
        if initial_state is not None:
            st = list(initial_state) if isinstance(initial_state, (list, tuple)) else []
            if not st or len(st) % 2:
                raise ValueError(
                    "Bidirectional: initial_state must be a list of the forward layer's "
                    f"states then the backward layer's, got {len(st)} tensors"
                )
            fwd_state, bwd_state = st[: len(st) // 2], st[len(st) // 2 :]
        for lyr in (self.forward_layer, self.backward_layer):
            # as Keras: masked steps of the sequences returned are zeros
            lyr._zero_masked_output = lyr.return_sequences
        f = self.forward_layer(inputs, initial_state=fwd_state, mask=mask, training=training)
        b = self.backward_layer(inputs, initial_state=bwd_state, mask=mask, training=training)
        states = []
        if self.forward_layer.return_state:
            f, states = f[0], f[1:] + b[1:]
            b = b[0]
        if self.backward_layer.return_sequences:
            b = b.flip(1)
        if self.merge_mode == "concat":
            out = ember.cat([f, b], dim=-1)
        elif self.merge_mode == "sum":
            out = f + b
        elif self.merge_mode == "mul":
            out = f * b
        elif self.merge_mode == "ave":
            out = (f + b) * 0.5
        else:
            out = [f, b]
        if states:
            return ([out] if not isinstance(out, list) else out) + states
        return out

    def compute_mask(self, inputs, mask=None):
        """The output mask as Keras': the input mask for ``return_sequences`` (one per
        direction when ``merge_mode`` is None), else None; None for each state."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        seq = self.forward_layer.return_sequences
        out = mask if seq else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.forward_layer.return_state:
            n = 2 if self.forward_layer.kind == "lstm" else 1
            return outs + [None] * (2 * n)
        return outs if self.merge_mode is None else out
