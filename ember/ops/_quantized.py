"""The int8 inference primitives behind :mod:`ember.quantization`'s modules.

Each quantized module is one primitive application, so that eager mode, ``ember.compile``,
``ember.export.save`` (and ``ember_lite``) and ONNX export (QDQ form) all see the same graph.
The int8 weight (``int8``, PyTorch's ``(out, in, ...)`` layout), its per-output-channel
``float32`` scales and the optional ``float32`` bias are ordinary inputs (captured arrays of a
traced module); the activation's per-tensor scale and zero point are params. The kernels are
:mod:`ember.quantization._kernels` (VNNI or exact NumPy/BLAS), which cache the packed weight
per weight array.

They are inference-only: there is no gradient through a rounding to integers, so
differentiating through one raises an error that says so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtype as dt

if TYPE_CHECKING:
    from .._tensor import Tensor
from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._samples import defsample

__all__ = [
    "quantized_conv2d",
    "quantized_linear",
    "quantized_linear_dynamic",
    "quantized_lstm_dynamic",
]


_K: list[Any] = []


def _kernels() -> Any:
    # imported on first use (its VNNI path needs numba), by name: the kernels belong to
    # ember.quantization, whose modules are typed apart from ember.ops
    if not _K:
        _K.append(importlib.import_module("ember.quantization._kernels"))
    return _K[0]


def _inference_only(name: str):
    def rule(*_args: Any, **_params: Any) -> Any:
        raise RuntimeError(
            f"{name} is an int8 inference primitive and has no gradient (rounding to integers "
            "is not differentiable): differentiate the float model, or quantize after training"
        )

    return rule


def _check_weight(who: str, x, w, s, b, k: Any, w_ndim: int) -> None:
    if x.dtype is not dt.float32:
        raise ShapeError(f"{who}: the input must be float32, got {x.dtype}")
    if w.dtype is not dt.int8 or w.ndim != w_ndim:
        raise ShapeError(
            f"{who}: the weight must be int8 with {w_ndim} dims, got {w.dtype}{w.shape}"
        )
    n = w.shape[0]
    if s.dtype is not dt.float32 or tuple(s.shape) != (n,):
        raise ShapeError(
            f"{who}: weight_scale must be float32 of shape ({n},), got {s.dtype}{s.shape}"
        )
    if b is not None and (b.dtype is not dt.float32 or tuple(b.shape) != (n,)):
        raise ShapeError(f"{who}: bias must be float32 of shape ({n},), got {b.dtype}{b.shape}")
    if k is not None and w.shape[1] != k:
        raise ShapeError(f"{who}: input features {k} do not match the weight {w.shape}")


def _check_act(who: str, scale: Any, zero_point: Any) -> None:
    if not (isinstance(scale, (float, int)) and np.isfinite(scale) and scale > 0):
        raise ShapeError(f"{who}: scale must be a positive finite float, got {scale!r}")
    if not (isinstance(zero_point, (int, np.integer)) and 0 <= int(zero_point) <= 255):
        raise ShapeError(f"{who}: zero_point must be an int in 0..255 (uint8), got {zero_point!r}")


# -- linear ----------------------------------------------------------------------------------


def _qlinear_abstract(x, w, s, b=None, *, scale, zero_point, relu):
    _check_act("quantized_linear", scale, zero_point)
    if x.ndim < 1:
        raise ShapeError("quantized_linear: the input must have at least 1 dim")
    _check_weight("quantized_linear", x, w, s, b, x.shape[-1], 2)
    return AbstractValue(tuple(x.shape[:-1]) + (w.shape[0],), dt.float32)


def _qlinear_impl(x, w, s, b=None, *, scale, zero_point, relu):
    K = _kernels()
    pw = K.packed(w, s, "linear")
    lead = x.shape[:-1]
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, w.shape[1])
    y = K.qgemm(x2, float(scale), int(zero_point), pw, b, bool(relu))
    return y.reshape(lead + (w.shape[0],))


def _dlinear_abstract(x, w, s, b=None):
    if x.ndim < 1:
        raise ShapeError("quantized_linear_dynamic: the input must have at least 1 dim")
    _check_weight("quantized_linear_dynamic", x, w, s, b, x.shape[-1], 2)
    return AbstractValue(tuple(x.shape[:-1]) + (w.shape[0],), dt.float32)


def _dlinear_impl(x, w, s, b=None):
    K = _kernels()
    lead = x.shape[:-1]
    x2 = np.ascontiguousarray(x, np.float32).reshape(-1, w.shape[1])
    y = K.dynamic_qgemm(x2, K.packed(w, s, "linear"), b)
    return y.reshape(lead + (w.shape[0],))


quantized_linear_p = Primitive(
    "quantized_linear", "opaque", impl=_qlinear_impl, abstract=_qlinear_abstract, save=SAVE_NONE
)
quantized_linear_dynamic_p = Primitive(
    "quantized_linear_dynamic",
    "opaque",
    impl=_dlinear_impl,
    abstract=_dlinear_abstract,
    save=SAVE_NONE,
)
defvjp(quantized_linear_p, _inference_only("quantized_linear"), save=SAVE_NONE)
defvjp(quantized_linear_dynamic_p, _inference_only("quantized_linear_dynamic"), save=SAVE_NONE)


def _args(x: Tensor, w: Tensor, s: Tensor, b: Tensor | None) -> tuple:
    return (x, w, s) if b is None else (x, w, s, b)


def quantized_linear(
    input: Tensor,
    weight_int8: Tensor,
    weight_scale: Tensor,
    bias: Tensor | None = None,
    *,
    scale: float,
    zero_point: int,
    relu: bool = False,
) -> Tensor:
    """Static int8 linear: ``input`` (float32) quantized to uint8 with ``scale``/``zero_point``,
    multiplied by the per-channel int8 ``weight_int8 (out, in)`` with exact integer
    accumulation, dequantized with ``scale * weight_scale``, plus ``bias`` (then ReLU).

    Example:
        >>> import ember
        >>> w = ember.tensor([[1, -2], [3, 4]], dtype=ember.int8)
        >>> s = ember.tensor([0.5, 0.25])
        >>> quantized_linear(ember.tensor([[1.0, 2.0]]), w, s, scale=1.0, zero_point=0).tolist()
        [[-1.5, 2.75]]
    """
    return bind(
        quantized_linear_p,
        _args(input, weight_int8, weight_scale, bias),
        {"scale": float(scale), "zero_point": int(zero_point), "relu": bool(relu)},
    )


def quantized_linear_dynamic(
    input: Tensor, weight_int8: Tensor, weight_scale: Tensor, bias: Tensor | None = None
) -> Tensor:
    """Dynamic int8 linear: as :func:`quantized_linear`, with the input's uint8 scale and zero
    point chosen on each call from its own min/max (PyTorch's dynamic quantization).

    Example:
        >>> import ember
        >>> w = ember.tensor([[1, -2], [3, 4]], dtype=ember.int8)
        >>> y = quantized_linear_dynamic(ember.tensor([[1.0, 2.0]]), w, ember.tensor([0.5, 0.25]))
        >>> [round(v, 1) for v in y[0].tolist()]
        [-1.5, 2.7]
    """
    return bind(quantized_linear_dynamic_p, _args(input, weight_int8, weight_scale, bias))


# -- conv2d ----------------------------------------------------------------------------------


def _out_size(n: Any, k: int, s: int, p: int, d: int) -> Any:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _qconv_abstract(x, w, s, b=None, *, scale, zero_point, stride, padding, dilation, relu):
    _check_act("quantized_conv2d", scale, zero_point)
    if x.ndim != 4:
        raise ShapeError(f"quantized_conv2d: expected an NCHW input, got {x.ndim} dims")
    _check_weight("quantized_conv2d", x, w, s, b, x.shape[1], 4)
    kh, kw = w.shape[2], w.shape[3]
    oh = _out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
    ow = _out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
    if (isinstance(oh, int) and oh < 1) or (isinstance(ow, int) and ow < 1):
        raise ShapeError(f"quantized_conv2d: input {x.shape} is smaller than the kernel")
    return AbstractValue((x.shape[0], w.shape[0], oh, ow), dt.float32)


def _qconv_impl(x, w, s, b=None, *, scale, zero_point, stride, padding, dilation, relu):
    K = _kernels()
    x = x if x.dtype == np.float32 else x.astype(np.float32)
    return K.qconv2d(
        x,
        float(scale),
        int(zero_point),
        K.packed(w, s, "conv2d"),
        tuple(w.shape[2:]),
        tuple(stride),
        tuple(padding),
        tuple(dilation),
        b,
        bool(relu),
    )


quantized_conv2d_p = Primitive(
    "quantized_conv2d", "opaque", impl=_qconv_impl, abstract=_qconv_abstract, save=SAVE_NONE
)
defvjp(quantized_conv2d_p, _inference_only("quantized_conv2d"), save=SAVE_NONE)


def quantized_conv2d(
    input: Tensor,
    weight_int8: Tensor,
    weight_scale: Tensor,
    bias: Tensor | None = None,
    *,
    scale: float,
    zero_point: int,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    relu: bool = False,
) -> Tensor:
    """Static int8 2-D convolution (``groups=1``, zero padding) of a float32 NCHW ``input``:
    per-tensor uint8 input (``scale``/``zero_point``), per-output-channel int8 weight
    ``(out, in, kh, kw)``, exact integer accumulation, float32 NCHW output (+ bias, ReLU).

    Example:
        >>> import ember
        >>> w = ember.ones(2, 1, 3, 3, dtype=ember.int8)
        >>> y = quantized_conv2d(ember.ones(1, 1, 4, 4), w, ember.tensor([0.5, 1.0]), scale=0.1,
        ...                      zero_point=0, padding=(1, 1))
        >>> tuple(y.shape), round(y[0, 1, 1, 1].item(), 4)
        ((1, 2, 4, 4), 9.0)
    """

    def pair(v: Any) -> tuple[int, int]:
        return (int(v[0]), int(v[1]))

    return bind(
        quantized_conv2d_p,
        _args(input, weight_int8, weight_scale, bias),
        {
            "scale": float(scale),
            "zero_point": int(zero_point),
            "stride": pair(stride),
            "padding": pair(padding),
            "dilation": pair(dilation),
            "relu": bool(relu),
        },
    )


# -- LSTM ------------------------------------------------------------------------------------


def _split_lstm(args: tuple, num_layers: int, bidirectional: bool, has_hx: bool, has_bias: bool):
    x = args[0]
    h0 = c0 = None
    k = 1
    if has_hx:
        h0, c0 = args[1], args[2]
        k = 3
    per = 5 if has_bias else 4
    cells = []
    for _ in range(num_layers * (2 if bidirectional else 1)):
        c = args[k : k + per]
        if len(c) != per:
            raise ShapeError("quantized_lstm_dynamic: too few weight inputs for the layers")
        w_ih, s_ih = c[0], c[1]
        b = c[2] if has_bias else None
        w_hh, s_hh = c[-2], c[-1]
        cells.append((w_ih, s_ih, b, w_hh, s_hh))
        k += per
    if k != len(args):
        raise ShapeError(f"quantized_lstm_dynamic: {len(args) - k} unexpected extra inputs")
    return x, h0, c0, cells


def _qlstm_abstract(*args, num_layers, bidirectional, has_hx, has_bias):
    x, h0, c0, cells = _split_lstm(args, num_layers, bidirectional, has_hx, has_bias)
    if x.ndim != 3 or x.dtype is not dt.float32:
        raise ShapeError(
            f"quantized_lstm_dynamic: expected a float32 (T, B, input) input, got "
            f"{x.dtype}{x.shape}"
        )
    hsz = cells[0][3].shape[1]
    dirs = 2 if bidirectional else 1
    state = (num_layers * dirs, x.shape[1], hsz)
    for h in (h0, c0):
        if h is not None and (tuple(h.shape) != state or h.dtype is not dt.float32):
            raise ShapeError(
                f"quantized_lstm_dynamic: expected a float32 hidden state {state}, got "
                f"{h.dtype}{h.shape}"
            )
    feat = x.shape[2]
    for i, (w_ih, s_ih, b, w_hh, s_hh) in enumerate(cells):
        if i >= dirs:
            feat = dirs * hsz
        _check_weight("quantized_lstm_dynamic", x, w_ih, s_ih, b, feat, 2)
        if tuple(w_ih.shape) != (4 * hsz, feat) or tuple(w_hh.shape) != (4 * hsz, hsz):
            raise ShapeError(
                f"quantized_lstm_dynamic: cell {i} weights {w_ih.shape}, {w_hh.shape} do not fit "
                f"hidden size {hsz}"
            )
        _check_weight("quantized_lstm_dynamic", x, w_hh, s_hh, None, hsz, 2)
    out = AbstractValue((x.shape[0], x.shape[1], dirs * hsz), dt.float32)
    return out, AbstractValue(state, dt.float32), AbstractValue(state, dt.float32)


def _qlstm_impl(*args, num_layers, bidirectional, has_hx, has_bias):
    K = _kernels()
    x, h0, c0, cells = _split_lstm(args, num_layers, bidirectional, has_hx, has_bias)
    packed = [
        (K.packed(w_ih, s_ih, "linear"), b, K.packed(w_hh, s_hh, "linear"))
        for w_ih, s_ih, b, w_hh, s_hh in cells
    ]
    return K.dynamic_lstm(np.asarray(x, np.float32), h0, c0, packed, num_layers, bidirectional)


quantized_lstm_dynamic_p = Primitive(
    "quantized_lstm_dynamic",
    "opaque",
    impl=_qlstm_impl,
    abstract=_qlstm_abstract,
    save=SAVE_NONE,
    n_out=3,
)
defvjp(quantized_lstm_dynamic_p, _inference_only("quantized_lstm_dynamic"), save=SAVE_NONE)


def quantized_lstm_dynamic(
    input: Tensor,
    hx: tuple[Tensor, Tensor] | None,
    weights: list[tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor]],
    num_layers: int,
    bidirectional: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """A dynamic int8 LSTM over a time-major float32 ``input (T, B, in)``: per layer and
    direction, ``weights`` holds ``(w_ih int8, w_ih scale, bias or None, w_hh int8, w_hh scale)``
    (bias = ``b_ih + b_hh``); both projections are dynamic int8 GEMMs, the gates float32.
    Returns ``(output (T, B, D*H), h_n, c_n)``.

    Example:
        >>> import ember
        >>> w = [(ember.ones(8, 3, dtype=ember.int8), ember.full((8,), 0.1), None,
        ...       ember.ones(8, 2, dtype=ember.int8), ember.full((8,), 0.1))]
        >>> out, h, c = quantized_lstm_dynamic(ember.ones(4, 1, 3), None, w, 1)
        >>> tuple(out.shape), tuple(h.shape)
        ((4, 1, 2), (1, 1, 2))
    """
    has_bias = weights[0][2] is not None
    if any((c[2] is not None) != has_bias for c in weights):
        raise ValueError("quantized_lstm_dynamic: either every cell has a bias or none has")
    args: list[Any] = [input]
    if hx is not None:
        args += [hx[0], hx[1]]
    for w_ih, s_ih, b, w_hh, s_hh in weights:
        args += [w_ih, s_ih] + ([b] if has_bias else []) + [w_hh, s_hh]
    params = {
        "num_layers": int(num_layers),
        "bidirectional": bool(bidirectional),
        "has_hx": hx is not None,
        "has_bias": has_bias,
    }
    return bind(quantized_lstm_dynamic_p, tuple(args), params)


# -- samples (the registry and compile tests bind each primitive on them) ---------------------


def _sample_tensors(seed: int):
    from .._creation import tensor

    rng = np.random.default_rng(seed)

    def f(*shape):
        return tensor(rng.standard_normal(shape).astype(np.float32))

    def q(*shape):
        return tensor(rng.integers(-128, 128, shape).astype(np.int8))

    def sc(n):
        return tensor(rng.uniform(0.005, 0.02, n).astype(np.float32))

    return f, q, sc


def _linear_samples():
    f, q, sc = _sample_tensors(11)
    return [
        ((f(2, 3, 5), q(4, 5), sc(4), f(4)), {"scale": 0.02, "zero_point": 120, "relu": True}),
        ((f(3, 5), q(4, 5), sc(4)), {"scale": 0.03, "zero_point": 0, "relu": False}),
    ]


def _dlinear_samples():
    f, q, sc = _sample_tensors(12)
    return [((f(2, 3, 5), q(4, 5), sc(4), f(4)), {}), ((f(3, 5), q(4, 5), sc(4)), {})]


def _conv_samples():
    f, q, sc = _sample_tensors(13)
    p = {"stride": (1, 2), "padding": (1, 0), "dilation": (1, 1), "relu": True}
    return [
        ((f(2, 3, 6, 7), q(4, 3, 3, 2), sc(4), f(4)), {"scale": 0.02, "zero_point": 128, **p}),
        ((f(1, 2, 5, 5), q(3, 2, 2, 2), sc(3)), {"scale": 0.02, "zero_point": 7, **p}),
    ]


def _lstm_samples():
    f, q, sc = _sample_tensors(14)
    h = 3
    cells = [(q(4 * h, 2), sc(4 * h), f(4 * h), q(4 * h, h), sc(4 * h)) for _ in range(2)]
    flat = [t for c in cells for t in c]
    p = {"num_layers": 1, "bidirectional": True, "has_bias": True}
    return [
        ((f(4, 2, 2), *flat), {**p, "has_hx": False}),
        ((f(4, 2, 2), f(2, 2, h), f(2, 2, h), *flat), {**p, "has_hx": True}),
    ]


defsample(quantized_linear_p, _linear_samples)
defsample(quantized_linear_dynamic_p, _dlinear_samples)
defsample(quantized_conv2d_p, _conv_samples)
defsample(quantized_lstm_dynamic_p, _lstm_samples)
