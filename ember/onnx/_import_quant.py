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
