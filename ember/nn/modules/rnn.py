"""Recurrent layers: ``RNN`` (tanh / relu), ``LSTM``, ``GRU`` and their cells.

Parameter names, shapes and gate order match PyTorch (``weight_ih_l0``,
``weight_hh_l0_reverse``, ...; LSTM gates ``i, f, g, o``, GRU gates ``r, z, n``), so
state dicts move between the two. For every layer the input projection of all time
steps is one matmul. The LSTM layer (input projection and recurrence) runs in the fused
``lstm_seq`` primitive, the GRU and Elman RNN layers in ``gru_seq`` / ``rnn_seq``
(``ember/ops/recurrence.py``).
"""

from __future__ import annotations

import math
import numbers

from ... import _creation as C
from ...ops import elementwise as E
from ...ops import shape as S
from ...ops.linalg import matmul
from ...ops.recurrence import gru_seq, rnn_seq
from ...ops.rnn import lstm_seq
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence, run_packed
from . import _check
from .module import Module

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell"]


class RNNBase(Module):
    """Shared constructor, parameters and layer/direction loop of RNN, LSTM and GRU."""

    _gates = 1
    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        who = type(self).__name__
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"{who}: dropout must be a number, got {type(dropout).__name__}")
        if not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the "
                "probability of an element being zeroed"
            )
        input_size = _check.size(who, "input_size", input_size)
        hidden_size = _check.size(who, "hidden_size", hidden_size, minimum=1)
        num_layers = _check.size(who, "num_layers", num_layers, minimum=1)
        proj_size = _check.size(who, "proj_size", proj_size)
        if proj_size != 0:
            if mode != "LSTM":
                raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
            if proj_size >= hidden_size:
                raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = self._gates * hidden_size
        num_directions = 2 if bidirectional else 1
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input = input_size if layer == 0 else real_hidden * num_directions
                suffix = "_reverse" if direction == 1 else ""
                params = [
                    ("weight_ih", (gate_size, layer_input)),
                    ("weight_hh", (gate_size, real_hidden)),
                ]
                if bias:
                    params += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    params.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in params:
                    full = f"{name}_l{layer}{suffix}"
                    setattr(self, full, Parameter(C.empty(*shape, dtype=dtype)))
                    self._flat_weights_names.append(full)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """A no-op (kept for PyTorch scripts that call it)."""

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        per = (4 if self.bias else 2) + (1 if self.proj_size > 0 else 0)
        w = self._flat_weights
        return [w[i : i + per] for i in range(0, len(w), per)]

    def _layer_params(self, layer, direction):
        suffix = "_reverse" if direction == 1 else ""
        w_ih = getattr(self, f"weight_ih_l{layer}{suffix}")
        w_hh = getattr(self, f"weight_hh_l{layer}{suffix}")
        if self.bias:
            return (
                w_ih,
                w_hh,
                getattr(self, f"bias_ih_l{layer}{suffix}"),
                getattr(self, f"bias_hh_l{layer}{suffix}"),
            )
        return w_ih, w_hh, None, None

    def _prepare(self, input, hx):
        """Time-major batched input and the initial state(s) as lists per layer/direction."""
        batched = input.dim() == 3
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead"
            )
        if not batched:
            input = S.unsqueeze(input, 1)
        elif self.batch_first:
            input = S.transpose(input, 0, 1)
        if input.shape[0] == 0:
            raise RuntimeError(
                f"{type(self).__name__}: Expected sequence length to be larger than 0 in RNN, "
                f"got input of shape {tuple(input.shape)}"
            )
        if input.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input.size(-1) must be equal to "
                f"input_size. Expected {self.input_size}, got {input.shape[2]}"
            )
        return input, batched

    def _initial(self, hx, batch, input, batched, name="hx", size=None):
        n = self.num_layers * (2 if self.bidirectional else 1)
        size = self.hidden_size if size is None else size
        shape = (n, batch, size)
        if hx is None:  # one zero state per layer and direction (no unbind of a stacked one)
            return [C.zeros(batch, size, dtype=input.dtype) for _ in range(n)]
        if not batched:
            if hx.dim() != 2:
                raise RuntimeError(
                    f"For unbatched 2-D input, {name} should also be 2-D but "
                    f"got {hx.dim()}-D tensor"
                )
            hx = S.unsqueeze(hx, 1)
        if tuple(hx.shape) != shape:
            raise RuntimeError(f"Expected hidden size {shape}, got {tuple(hx.shape)}")
        return list(S.unbind(hx, 0))

    def _run(self, input, states, step_fn):
        """Run every layer and direction; ``step_fn(x, params, state, reverse)`` returns
        ``(outputs (T, B, H), final state tuple)``."""
        num_directions = 2 if self.bidirectional else 1
        x = input
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                k = layer * num_directions + direction
                params = self._layer_params(layer, direction)
                out, final = step_fn(x, params, tuple(s[k] for s in states), direction == 1)
                outs.append(out)
                finals.append(final)
            x = outs[0] if num_directions == 1 else S.cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def _finish(self, output, batched):
        if not batched:
            return S.squeeze(output, 1)
        if self.batch_first:
            return S.transpose(output, 0, 1)
        return output

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Example:
        >>> import ember
        >>> rnn = ember.nn.RNN(10, 20, 2)
        >>> out, h = rnn(ember.randn(5, 3, 10))
        >>> tuple(out.shape), tuple(h.shape)
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )

    def forward(self, input, hx=None):
        relu = self.nonlinearity == "relu"

        def step(x, params, state, reverse):
            w_ih, w_hh, b_ih, b_hh = params
            b = C.zeros(w_ih.shape[0], dtype=x.dtype) if b_ih is None else b_ih + b_hh
            hs = rnn_seq(x, w_ih, b, state[0], w_hh, reverse, relu)
            return hs, hs[0 if reverse else -1]

        return _forward_h(self, input, hx, step)


class LSTM(RNNBase):
    """Long short-term memory (gate order ``i, f, g, o`` as PyTorch).

    Returns ``output, (h_n, c_n)``.

    Example:
        >>> import ember
        >>> lstm = ember.nn.LSTM(10, 20, batch_first=True)
        >>> out, (h, c) = lstm(ember.randn(3, 5, 10))
        >>> tuple(out.shape), tuple(h.shape)
        ((3, 5, 20), (1, 3, 20))
    """

    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
        )

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return run_packed(self, input, hx)
        input, batched = self._prepare(input, hx)
        B = input.shape[1]
        P = self.proj_size
        h_size = P if P > 0 else self.hidden_size
        if hx is None:
            h0 = self._initial(None, B, input, batched, size=h_size)
            c0 = self._initial(None, B, input, batched)
        else:
            h0 = self._initial(hx[0], B, input, batched, size=h_size)
            c0 = self._initial(hx[1], B, input, batched)

        w_hr_of = {}  # the projection of each layer/direction, by its weight_ih
        if P > 0:
            for layer in range(self.num_layers):
                for suffix in ("", "_reverse") if self.bidirectional else ("",):
                    w_ih = getattr(self, f"weight_ih_l{layer}{suffix}")
                    w_hr_of[id(w_ih)] = getattr(self, f"weight_hr_l{layer}{suffix}")

        def step(x, params, state, reverse):
            w_ih, w_hh, b_ih, b_hh = params
            if P > 0:
                return _lstm_proj_layer(x, params, w_hr_of[id(w_ih)], state, reverse)
            if b_ih is None:
                b = C.zeros(w_ih.shape[0], dtype=x.dtype)
            else:
                b = b_ih + b_hh
            hs, cs = lstm_seq(x, w_ih, b, state[0], state[1], w_hh, reverse)
            last = 0 if reverse else -1
            return hs, (hs[last], cs[last])

        out, finals = self._run(input, (h0, c0), step)
        h_n = _stacked([f[0] for f in finals])
        c_n = _stacked([f[1] for f in finals])
        if not batched:
            h_n, c_n = S.squeeze(h_n, 1), S.squeeze(c_n, 1)
        return self._finish(out, batched), (h_n, c_n)


def _lstm_proj_layer(x, params, w_hr, state, reverse):
    """One LSTM layer/direction with a projection of h (``proj_size > 0``): a loop over
    the time steps with ember ops (differentiable by autograd), as PyTorch computes it."""
    w_ih, w_hh, b_ih, b_hh = params
    H = w_hr.shape[1]
    xg = F.linear(x, w_ih, b_ih)  # (T, B, 4H): all time steps in one matmul
    if b_hh is not None:
        xg = xg + b_hh
    w_hh_t, w_hr_t = S.transpose(w_hh, 0, 1), S.transpose(w_hr, 0, 1)
    h, c = state
    T = x.shape[0]
    hs = [None] * T
    for t in range(T - 1, -1, -1) if reverse else range(T):
        g = xg[t] + matmul(h, w_hh_t)
        i, f = E.sigmoid(g[:, :H]), E.sigmoid(g[:, H : 2 * H])
        gg, o = E.tanh(g[:, 2 * H : 3 * H]), E.sigmoid(g[:, 3 * H :])
        c = f * c + i * gg
        h = matmul(o * E.tanh(c), w_hr_t)
        hs[t] = h
    return S.stack(hs, 0), (h, c)


def _stacked(states):
    """The final states of the layers stacked on a new axis 0 (one layer: a view)."""
    return S.unsqueeze(states[0], 0) if len(states) == 1 else S.stack(states, 0)


def _gru_step(xg_t, h, w_hh_t, b_hh, H):
    gh = matmul(h, w_hh_t)
    if b_hh is not None:
        gh = gh + b_hh
    rz = E.sigmoid(xg_t[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = E.tanh(xg_t[:, 2 * H :] + r * gh[:, 2 * H :])
    return n + z * (h - n)


def _forward_h(module, input, hx, step):
    """The forward of ``RNN`` and ``GRU`` (one state ``h``) around their layer ``step``."""
    if isinstance(input, PackedSequence):
        return run_packed(module, input, hx)
    input, batched = module._prepare(input, hx)
    h0 = module._initial(hx, input.shape[1], input, batched)
    out, finals = module._run(input, (h0,), step)
    h_n = _stacked(finals)
    if not batched:
        h_n = S.squeeze(h_n, 1)
    return module._finish(out, batched), h_n


class GRU(RNNBase):
    """Gated recurrent unit (gate order ``r, z, n`` as PyTorch):
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``."""

    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
        )

    def forward(self, input, hx=None):
        def step(x, params, state, reverse):
            w_ih, w_hh, b_ih, b_hh = params
            if b_ih is None:
                b_ih = b_hh = C.zeros(w_ih.shape[0], dtype=x.dtype)
            hs = gru_seq(x, w_ih, b_ih, state[0], w_hh, b_hh, reverse)
            return hs, hs[0 if reverse else -1]

        return _forward_h(self, input, hx, step)


class RNNCellBase(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device=None, dtype=None):
        super().__init__()
        input_size = _check.size(type(self).__name__, "input_size", input_size)
        hidden_size = _check.size(type(self).__name__, "hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = self._gates * hidden_size
        self.weight_ih = Parameter(C.empty(g, input_size, dtype=dtype))
        self.weight_hh = Parameter(C.empty(g, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(C.empty(g, dtype=dtype))
            self.bias_hh = Parameter(C.empty(g, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _batch(self, input, hx):
        batched = input.dim() == 2
        if not batched:
            input = S.unsqueeze(input, 0)
        if hx is None:
            hx = C.zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
        elif not batched:
            hx = S.unsqueeze(hx, 0)
        return input, hx, batched


class RNNCell(RNNCellBase):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ):
        super().__init__(input_size, hidden_size, bias, device, dtype)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        input, hx, batched = self._batch(input, hx)
        y = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(
            hx, self.weight_hh, self.bias_hh
        )
        h = E.tanh(y) if self.nonlinearity == "tanh" else E.relu(y)
        return h if batched else S.squeeze(h, 0)


class LSTMCell(RNNCellBase):
    _gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        batched = input.dim() == 2
        if hx is None:
            input, h, batched = self._batch(input, None)
            c = h
        else:
            input, h, batched = self._batch(input, hx[0])
            c = hx[1] if batched else S.unsqueeze(hx[1], 0)
        H = self.hidden_size
        g = F.linear(input, self.weight_ih, self.bias_ih) + F.linear(
            h, self.weight_hh, self.bias_hh
        )
        i, f = E.sigmoid(g[:, :H]), E.sigmoid(g[:, H : 2 * H])
        gg, o = E.tanh(g[:, 2 * H : 3 * H]), E.sigmoid(g[:, 3 * H :])
        c = f * c + i * gg
        h = o * E.tanh(c)
        if not batched:
            return S.squeeze(h, 0), S.squeeze(c, 0)
        return h, c


class GRUCell(RNNCellBase):
    _gates = 3

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        input, hx, batched = self._batch(input, hx)
        xg = F.linear(input, self.weight_ih, self.bias_ih)
        h = _gru_step(xg, hx, S.t(self.weight_hh), self.bias_hh, self.hidden_size)
        return h if batched else S.squeeze(h, 0)
