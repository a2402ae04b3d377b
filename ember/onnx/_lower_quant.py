"""Lowerings of the int8 primitives (:mod:`ember.ops._quantized`) in QDQ form.

Each becomes the pattern that onnxruntime, TensorRT and OpenVINO recognise and fuse into
integer kernels: ``QuantizeLinear -> DequantizeLinear`` on the activation with the calibrated
scale and uint8 zero point (``DynamicQuantizeLinear`` for the dynamic primitives), the int8
weight initializer behind a per-output-channel ``DequantizeLinear`` (axis 0, zero point 0),
then the float operator, bias and ReLU.
"""

from __future__ import annotations

import numpy as np

from ..compiler.ir import Eqn
from ._context import Context
from .lowering import lowers


class _Named:
    """An operand that is already an ONNX name (a reshaped input)."""

    def __init__(self, name: str) -> None:
        self.name = name


def _act(ctx: Context, e: Eqn) -> str:
    v = e.inputs[0]
    x = v.name if isinstance(v, _Named) else ctx.inp(v, np.float32)
    if "scale" not in e.params:  # dynamic: the range of this call's input
        y, s, z = ctx.node("DynamicQuantizeLinear", [x], n_out=3)
        return ctx.node("DequantizeLinear", [y, s, z])
    s = ctx.const(np.float32(e.params["scale"]))
    z = ctx.const(np.uint8(e.params["zero_point"]))
    return ctx.node("DequantizeLinear", [ctx.node("QuantizeLinear", [x, s, z]), s, z])


def _weight(ctx: Context, e: Eqn) -> str:
    w, s = e.inputs[1], e.inputs[2]
    n = int(w.shape[0])
    zp = ctx.const(np.zeros(n, np.int8))
    return ctx.node("DequantizeLinear", [ctx.inp(w), ctx.inp(s, np.float32), zp], axis=0)


def _epilogue(ctx: Context, e: Eqn, y: str) -> str:
    if e.params.get("relu"):
        return ctx.node("Relu", [y])
    return y


@lowers("quantized_linear", "quantized_linear_dynamic")
def _quantized_linear(ctx: Context, e: Eqn) -> str:
    """``MatMul(DQ(Q(x)), Transpose(DQ(w_int8)))`` (+ bias, ReLU). An input of more than two
    dims is flattened to ``(-1, in)`` around it, the 2-D form that onnxruntime fuses into
    its exact integer kernels (its fused N-D path rounds differently)."""
    x = e.inputs[0]
    lead = None
    if len(x.shape) != 2:
        name = ctx.inp(x, np.float32)
        lead = ctx.node("Slice", [ctx.node("Shape", [name]), ctx.ints([0]), ctx.ints([-1])])
        flat = ctx.node("Reshape", [name, ctx.ints([-1, int(x.shape[-1])])])
        e = Eqn(e.prim, [_Named(flat), *e.inputs[1:]], e.params, e.outputs)
    a = _act(ctx, e)
    y = ctx.node("MatMul", [a, ctx.node("Transpose", [_weight(ctx, e)], perm=[1, 0])])
    if len(e.inputs) > 3:
        y = ctx.node("Add", [y, ctx.inp(e.inputs[3], np.float32)])
    y = _epilogue(ctx, e, y)
    if lead is not None:
        n = ctx.ints([int(e.inputs[1].shape[0])])
        y = ctx.node("Reshape", [y, ctx.node("Concat", [lead, n], axis=0)])
    return y


@lowers("quantized_conv2d")
def _quantized_conv2d(ctx: Context, e: Eqn) -> str:
    """``Conv(DQ(Q(x)), DQ(w_int8), bias)`` (+ ReLU)."""
    p = e.params
    ins = [_act(ctx, e), _weight(ctx, e)]
    if len(e.inputs) > 3:
        ins.append(ctx.inp(e.inputs[3], np.float32))
    ph, pw = (int(v) for v in p["padding"])
    y = ctx.node(
        "Conv",
        ins,
        strides=[int(v) for v in p["stride"]],
        pads=[ph, pw, ph, pw],
        dilations=[int(v) for v in p["dilation"]],
        kernel_shape=[int(k) for k in e.inputs[1].shape[2:]],
    )
    return _epilogue(ctx, e, y)
