"""Quantized modules: static int8 ``Linear``/``Conv2d`` (calibrated activation range), dynamic
int8 ``Linear``/``LSTM`` (activation range measured per call), and the eager-mode stubs.

They are inference modules: they take and return float32 tensors (quantizing the input with
their activation parameters, running the int8 kernel and dequantizing with bias and ReLU fused
into the epilogue), so they drop into any model next to float modules. Each forward is one
primitive of :mod:`ember.ops.quantized`, so quantized models trace (``ember.compile``,
``ember.export.save``, ONNX export); differentiating through them is an error.
Weights live in buffers (``weight_int8``, ``weight_scale``, ...) so ``state_dict`` holds them.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from .._creation import from_numpy
from ..ops import _quantized as Q
from . import _kernels as K
from ._qparams import quantize_per_channel, symmetric_qparams
from ._util import as_float32, param

__all__ = [
    "DeQuantStub",
    "DynamicQuantizedLSTM",
    "DynamicQuantizedLinear",
    "QuantStub",
    "QuantizedConv2d",
    "QuantizedLinear",
]


class QuantStub(nn.Module):
    """Marks where a model's input enters the quantized region (PyTorch's eager-mode name).

    Ember's quantized modules take float tensors and quantize them with their own calibrated
    parameters, so the stub is an identity both before and after :func:`convert`.

    Example:
        >>> import ember
        >>> QuantStub()(ember.ones(2)).tolist()
        [1.0, 1.0]
    """

    def forward(self, x):
        return x


class DeQuantStub(QuantStub):
    """Marks where the quantized region ends (an identity, see :class:`QuantStub`)."""


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 of a weight ``(out, ...)``: (int8, float32 scales)."""
    flat = w.reshape(w.shape[0], -1)
    amax = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(w.shape[0])
    scale = symmetric_qparams(amax).astype(np.float32)
    q = quantize_per_channel(flat, scale, np.zeros(len(scale)), 0, "int8")
    return q.reshape(w.shape), scale


class _QBase(nn.Module):
    def _init_weight(self, w: np.ndarray, bias: np.ndarray | None) -> None:
        q, scale = quantize_weight(w)
        self.register_buffer("weight_int8", from_numpy(q))
        self.register_buffer("weight_scale", from_numpy(scale))
        self.register_buffer("bias", None if bias is None else from_numpy(bias))

    def _weights(self) -> tuple:
        # the kernels cache the packed weight per array; noting the owning tensors lets them
        # see an in-place update (load_state_dict) of the same array
        b = self._buffers
        w, s = b["weight_int8"], b["weight_scale"]
        K.note_owner(w, s)
        return w, s, b["bias"]

    def weight(self) -> np.ndarray:
        """The dequantized weight (float32), as PyTorch's quantized modules' ``weight()``."""
        q = self.weight_int8.numpy().astype(np.float32)
        return q * self.weight_scale.numpy().reshape((-1,) + (1,) * (q.ndim - 1))


class _Static(_QBase):
    def _init_act(self, scale: float, zero_point: int, relu: bool) -> None:
        # buffers, as in PyTorch's quantized modules, so that state_dict carries them
        self.register_buffer("scale", from_numpy(np.array(scale, np.float64)))
        self.register_buffer("zero_point", from_numpy(np.array(zero_point, np.int64)))
        self.relu = bool(relu)

    def act_qparams(self) -> tuple[float, int]:
        """The input's (scale, zero_point)."""
        # read from the buffers' arrays (not .numpy()): under a tracer they become the
        # primitive's params, constants of the graph, as calibration fixed them
        return float(self.scale._data), int(self.zero_point._data)


class QuantizedLinear(_Static):
    """Static int8 ``Linear``: per-channel int8 weights, per-tensor uint8 input with a
    calibrated scale and zero point; ``relu=True`` when a following ReLU was fused.

    Example:
        >>> import ember
        >>> lin = ember.nn.Linear(4, 3)
        >>> q = QuantizedLinear.from_float(lin, scale=0.01, zero_point=128)
        >>> tuple(q(ember.zeros(2, 4)).shape)
        (2, 3)
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features

    @classmethod
    def from_float(
        cls, mod: nn.Linear, scale: float, zero_point: int, relu: bool = False
    ) -> QuantizedLinear:
        """Quantize a float ``nn.Linear`` with the given input activation parameters."""
        q = cls(mod.in_features, mod.out_features)
        q._init_weight(param(mod.weight), param(mod.bias))
        q._init_act(scale, zero_point, relu)
        return q

    def forward(self, input):
        x = as_float32(input, type(self).__name__)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: expected input (..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        scale, zp = self.act_qparams()
        return Q.quantized_linear(x, *self._weights(), scale=scale, zero_point=zp, relu=self.relu)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scale={self.act_qparams()[0]:.6g}, zero_point={self.act_qparams()[1]}, "
            f"relu={self.relu}"
        )


def _explicit_padding(mod) -> tuple[int, int]:
    p = mod.padding
    if isinstance(p, str):
        if p == "valid":
            return (0, 0)
        total = [d * (k - 1) for d, k in zip(mod.dilation, mod.kernel_size)]
        if any(t % 2 for t in total):
            raise ValueError(
                "QuantizedConv2d: padding='same' with an even kernel extent pads unevenly, "
                "which is not supported; give explicit padding"
            )
        return (total[0] // 2, total[1] // 2)
    return tuple(p)


class QuantizedConv2d(_Static):
    """Static int8 ``Conv2d`` (``groups=1``, zero padding): per-output-channel int8 weights,
    per-tensor uint8 input; im2col and the VNNI GEMM, epilogue fused.

    Example:
        >>> import ember
        >>> conv = ember.nn.Conv2d(1, 4, 3, padding=1)
        >>> q = QuantizedConv2d.from_float(conv, scale=1 / 255, zero_point=0)
        >>> tuple(q(ember.zeros(2, 1, 8, 8)).shape)
        (2, 4, 8, 8)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)

    @classmethod
    def from_float(
        cls, mod: nn.Conv2d, scale: float, zero_point: int, relu: bool = False
    ) -> QuantizedConv2d:
        """Quantize a float ``nn.Conv2d`` with the given input activation parameters."""
        if mod.groups != 1:
            raise ValueError(
                f"QuantizedConv2d: grouped convolution (groups={mod.groups}) is not supported; "
                "leave that module in float"
            )
        if mod.padding_mode != "zeros":
            raise ValueError(
                f"QuantizedConv2d: padding_mode={mod.padding_mode!r} is not supported (only "
                "'zeros')"
            )
        q = cls(
            mod.in_channels,
            mod.out_channels,
            mod.kernel_size,
            mod.stride,
            _explicit_padding(mod),
            mod.dilation,
        )
        q._init_weight(param(mod.weight), param(mod.bias))
        q._init_act(scale, zero_point, relu)
        return q

    def forward(self, input):
        x = as_float32(input, type(self).__name__)
        batched = x.ndim == 4
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected input (N, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        scale, zp = self.act_qparams()
        y = Q.quantized_conv2d(
            x,
            *self._weights(),
            scale=scale,
            zero_point=zp,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            relu=self.relu,
        )
        return y if batched else y.squeeze(0)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, "
            f"scale={self.act_qparams()[0]:.6g}, zero_point={self.act_qparams()[1]}, "
            f"relu={self.relu}"
        )


class DynamicQuantizedLinear(_QBase):
    """Dynamic int8 ``Linear`` (PyTorch's ``torch.ao.nn.quantized.dynamic.Linear``): int8
    per-channel weights; each call quantizes its input per tensor from the input's own
    min/max.

    Example:
        >>> import ember
        >>> q = DynamicQuantizedLinear.from_float(ember.nn.Linear(4, 3))
        >>> tuple(q(ember.ones(5, 4)).shape)
        (5, 3)
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features

    @classmethod
    def from_float(cls, mod: nn.Linear) -> DynamicQuantizedLinear:
        """Quantize a float ``nn.Linear``'s weights."""
        q = cls(mod.in_features, mod.out_features)
        q._init_weight(param(mod.weight), param(mod.bias))
        return q

    def forward(self, input):
        x = as_float32(input, type(self).__name__)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__}: expected input (..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        return Q.quantized_linear_dynamic(x, *self._weights())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype=int8"


class DynamicQuantizedLSTM(nn.Module):
    """Dynamic int8 ``LSTM`` (PyTorch's ``torch.ao.nn.quantized.dynamic.LSTM``): the input and
    hidden projections run as dynamic int8 GEMMs (the input projection of a whole sequence in
    one call, the hidden one per step), the gates in float32.

    Example:
        >>> import ember
        >>> q = DynamicQuantizedLSTM.from_float(ember.nn.LSTM(4, 3, batch_first=True))
        >>> out, (h, c) = q(ember.ones(2, 5, 4))
        >>> tuple(out.shape), tuple(h.shape)
        ((2, 5, 3), (1, 2, 3))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        bidirectional: bool,
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.cells = nn.ModuleList()

    @classmethod
    def from_float(cls, mod: nn.LSTM) -> DynamicQuantizedLSTM:
        """Quantize a float ``nn.LSTM``'s weights (``proj_size`` must be 0)."""
        if getattr(mod, "proj_size", 0):
            raise ValueError("DynamicQuantizedLSTM: LSTM with proj_size > 0 is not supported")
        q = cls(
            mod.input_size,
            mod.hidden_size,
            mod.num_layers,
            mod.bias,
            mod.batch_first,
            mod.bidirectional,
        )
        dirs = 2 if mod.bidirectional else 1
        for layer in range(mod.num_layers):
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = mod._layer_params(layer, d)
                ih = _QBase()
                ih._init_weight(param(w_ih), None if b_ih is None else param(b_ih) + param(b_hh))
                hh = _QBase()
                hh._init_weight(param(w_hh), None)
                q.cells.append(nn.ModuleList([ih, hh]))
        return q

    def forward(self, input, hx=None):
        who = type(self).__name__
        x = as_float32(input, who)
        if x.ndim not in (2, 3):
            raise ValueError(f"{who}: expected input to be 2D or 3D, got {x.ndim}D")
        batched = x.ndim == 3
        if not batched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{who}: input.size(-1) must be {self.input_size}, got {x.shape[2]}")
        dirs = 2 if self.bidirectional else 1
        shape = (self.num_layers * dirs, x.shape[1], self.hidden_size)
        state = None
        if hx is not None:
            h0, c0 = (as_float32(t, who) for t in hx)
            if not batched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            if tuple(h0.shape) != shape or tuple(c0.shape) != shape:
                raise ValueError(f"{who}: expected hidden state {shape}, got {tuple(h0.shape)}")
            state = (h0, c0)
        weights = []
        for ih, hh in self.cells:
            w_ih, s_ih, b = ih._weights()
            w_hh, s_hh, _ = hh._weights()
            weights.append((w_ih, s_ih, b, w_hh, s_hh))
        out, h_n, c_n = Q.quantized_lstm_dynamic(
            x, state, weights, self.num_layers, self.bidirectional
        )
        if not batched:
            out, h_n, c_n = out.squeeze(1), h_n.squeeze(1), c_n.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n, c_n)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"batch_first={self.batch_first}, bidirectional={self.bidirectional}, dtype=int8"
        )
