"""Import of ONNX's quantize / dequantize operators (the QDQ form of int8 models)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor
from ._import import ONNXModule, _np_dtype, imports

__all__: list[str] = []


def _per_axis(scale: Tensor, x: Tensor, axis: int, block_size: int) -> Tensor:
    """``scale`` (or a zero point) shaped to broadcast against ``x``: per tensor, per
    channel along ``axis``, or per block of ``block_size`` along it."""
    if scale.ndim == 0 or (scale.ndim == 1 and scale.shape[0] == 1 and not block_size):
        return scale.reshape(())
    axis %= x.ndim
    if block_size:
        return scale.repeat_interleave(block_size, axis).narrow(axis, 0, x.shape[axis])
    shape = [1] * x.ndim
    shape[axis] = scale.shape[0]
    return scale.reshape(*shape)


@imports("DequantizeLinear")
def _dequantize(
    m: ONNXModule, x: Tensor, scale: Tensor, zp: Tensor | None = None, axis: int = 1,
    block_size: int = 0, output_dtype: int = 0, **_: Any,
) -> Tensor:  # fmt: skip
    s = _per_axis(scale, x, axis, block_size)
    y = x.float() if scale.dtype.itemsize <= 4 else x.double()
    if zp is not None:
        y = y - _per_axis(zp, x, axis, block_size).to(y.dtype)
    y = y * s.to(y.dtype)
    if output_dtype:
        from .._dtype import from_numpy_dtype

        return y.to(from_numpy_dtype(_np_dtype(m._onnx, output_dtype)))
    return y.to(scale.dtype)


@imports("QuantizeLinear")
def _quantize(
    m: ONNXModule, x: Tensor, scale: Tensor, zp: Tensor | None = None, axis: int = 1,
    saturate: int = 1, block_size: int = 0, output_dtype: int = 0, **_: Any,
) -> Tensor:  # fmt: skip
    import ember

    from .._dtype import from_numpy_dtype

    if zp is not None:
        out = zp.dtype
    elif output_dtype:
        out = from_numpy_dtype(_np_dtype(m._onnx, output_dtype))
    else:
        out = ember.uint8
    q = (x.float() / _per_axis(scale, x, axis, block_size).float()).round()  # half to even
    if zp is not None:
        q = q + _per_axis(zp, x, axis, block_size).float()
    info = np.iinfo(out.np)
    return q.clamp(float(info.min), float(info.max)).to(out)


def _centered(x: Tensor, zp: Tensor | None, axis: int | None = None) -> Tensor:
    """``x - zero_point`` in float64 (exact for 8-bit integers, and what the conv kernels take);
    a per-row/per-channel zero point broadcasts along ``axis``."""
    y = x.double()
    if zp is None:
        return y
    z = zp.double()
    if z.ndim == 1 and z.shape[0] > 1 and axis is not None:
        shape = [1] * x.ndim
        shape[axis % x.ndim] = z.shape[0]
        z = z.reshape(*shape)
    return y - z


@imports("MatMulInteger")
def _matmul_integer(m: ONNXModule, a: Tensor, b: Tensor, azp=None, bzp=None) -> Tensor:
    import ember

    return (_centered(a, azp, -2) @ _centered(b, bzp, -1)).round().to(ember.int32)


@imports("ConvInteger")
def _conv_integer(m: ONNXModule, x: Tensor, w: Tensor, xzp=None, wzp=None, **a: Any) -> Tensor:
    import ember

    from ._import import IMPORTS

    y = IMPORTS["Conv"](m, _centered(x, xzp), _centered(w, wzp, 0), None, **a)
    return y.round().to(ember.int32)


def _requantize(y: Tensor, scale: Tensor, zp: Tensor | None, axis: int = 1) -> Tensor:
    out = zp.dtype if zp is not None else None
    q = (y / _per_axis(scale.double(), y, axis, 0)).round()
    if zp is not None:
        q = q + _per_axis(zp.double(), y, axis, 0)
    info = np.iinfo(out.np) if out is not None else np.iinfo(np.uint8)
    q = q.clamp(float(info.min), float(info.max))
    import ember

    return q.to(out if out is not None else ember.uint8)


@imports("QLinearMatMul")
def _qlinear_matmul(m, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> Tensor:
    av = _centered(a, a_zp, -2) * _per_axis(a_scale.double(), a, -2, 0)
    bv = _centered(b, b_zp, -1) * _per_axis(b_scale.double(), b, -1, 0)
    return _requantize(av @ bv, y_scale, y_zp, -1)


@imports("QLinearConv")
def _qlinear_conv(m, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B=None, **a) -> Tensor:
    from ._import import IMPORTS

    xv = _centered(x, x_zp) * x_scale.double()
    wv = _centered(w, w_zp, 0) * _per_axis(w_scale.double(), w, 0, 0)
    y = IMPORTS["Conv"](m, xv, wv, None, **a)
    if B is not None:  # int32 bias in units of x_scale * w_scale
        bias = B.double() * (x_scale.double() * w_scale.double()).reshape(-1)
        y = y + bias.reshape(1, -1, *([1] * (y.ndim - 2)))
    return _requantize(y, y_scale, y_zp)


@imports("BitShift")
def _bit_shift(m: ONNXModule, x: Tensor, y: Tensor, direction: str) -> Tensor:
    from .._creation import tensor
    from ._import import _host

    a, b = _host(x), _host(y).astype(x.dtype.np)
    return tensor(np.left_shift(a, b) if direction == "LEFT" else np.right_shift(a, b))
