"""Lowerings of the int8 primitives (:mod:`ember.ops._quantized`) in QDQ form.

Each becomes the pattern that onnxruntime, TensorRT and OpenVINO recognise and fuse into
integer kernels: ``QuantizeLinear -> DequantizeLinear`` on the activation with the calibrated
scale and uint8 zero point (``DynamicQuantizeLinear`` for the dynamic primitives), the int8
weight initializer behind a per-output-channel ``DequantizeLinear`` (axis 0, zero point 0),
then the float operator, bias and ReLU.
"""

from __future__ import annotations

import numpy as np

from ..compiler.ir import Eqn, Var
from ._context import Context, Unsupported
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


def _dyn_linear(ctx: Context, x: str, w: Var, s: Var, b: Var | None) -> str:
    """``x (M, K)`` through a dynamic int8 linear in QDQ form."""
    y, sc, zp = ctx.node("DynamicQuantizeLinear", [x], n_out=3)
    xd = ctx.node("DequantizeLinear", [y, sc, zp])
    zw = ctx.const(np.zeros(int(w.shape[0]), np.int8))
    wd = ctx.node("DequantizeLinear", [ctx.inp(w), ctx.inp(s, np.float32), zw], axis=0)
    out = ctx.node("MatMul", [xd, ctx.node("Transpose", [wd], perm=[1, 0])])
    return out if b is None else ctx.node("Add", [out, ctx.inp(b, np.float32)])


def _sigmoid(ctx: Context, x: str) -> str:
    # ember's 0.5 * (tanh(0.5 x) + 1), the same float ops as its kernel
    half = ctx.const(np.float32(0.5))
    t = ctx.node("Tanh", [ctx.node("Mul", [x, half])])
    return ctx.node("Mul", [ctx.node("Add", [t, ctx.const(np.float32(1.0))]), half])


@lowers("quantized_lstm_dynamic")
def _quantized_lstm_dynamic(ctx: Context, e: Eqn) -> list:
    """Unrolled over the (fixed) sequence length, as ember runs it: per layer and direction,
    one dynamic int8 ``MatMul`` for the whole sequence's input projection
    (``DynamicQuantizeLinear`` over all steps), then per step a dynamic int8 ``MatMul`` of the
    hidden state and the float32 gates. ONNX's ``LSTM`` cannot quantize its hidden state."""
    p = e.params
    layers, dirs = int(p["num_layers"]), 2 if p["bidirectional"] else 1
    has_hx, has_bias = bool(p["has_hx"]), bool(p["has_bias"])
    x = e.inputs[0]
    t_len = x.shape[0]
    if not isinstance(t_len, int):
        raise Unsupported("quantized_lstm_dynamic over a symbolic sequence length (unrolled)")
    per = 5 if has_bias else 4
    first = 3 if has_hx else 1
    cells = [e.inputs[first + k * per : first + (k + 1) * per] for k in range(layers * dirs)]
    hsz = int(cells[0][-2].shape[1])
    seq = ctx.inp(x, np.float32)
    zero = ctx.ints([0])
    if has_hx:
        h0, c0 = ctx.inp(e.inputs[1], np.float32), ctx.inp(e.inputs[2], np.float32)
    else:
        batch = ctx.node("Slice", [ctx.node("Shape", [seq]), ctx.ints([1]), ctx.ints([2])])
        shape = ctx.node("Concat", [batch, ctx.ints([hsz])], axis=0)
        zeros = ctx.onnx.helper.make_tensor("value", ctx.onnx.TensorProto.FLOAT, [1], [0.0])
        init = ctx.node("ConstantOfShape", [shape], value=zeros)
    hn, cn = [], []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w_ih, s_ih = cells[k][0], cells[k][1]
            b = cells[k][2] if has_bias else None
            w_hh, s_hh = cells[k][-2], cells[k][-1]
            feat = ctx.node("Reshape", [seq, ctx.ints([-1, int(w_ih.shape[1])])])
            gx = _dyn_linear(ctx, feat, w_ih, s_ih, b)
            gx = ctx.node("Reshape", [gx, ctx.ints([t_len, -1, 4 * hsz])])
            if has_hx:
                idx = ctx.const(np.int64(k))
                h = ctx.node("Gather", [h0, idx], axis=0)
                c = ctx.node("Gather", [c0, idx], axis=0)
            else:
                h = c = init
            steps: list[str] = [""] * t_len
            for i in range(t_len):
                t = t_len - 1 - i if d else i
                g = ctx.node("Gather", [gx, ctx.const(np.int64(t))], axis=0)
                g = ctx.node("Add", [g, _dyn_linear(ctx, h, w_hh, s_hh, None)])
                gate = [
                    ctx.node(
                        "Slice", [g, ctx.ints([j * hsz]), ctx.ints([(j + 1) * hsz]), ctx.ints([1])]
                    )
                    for j in range(4)
                ]
                ig, fg, og = _sigmoid(ctx, gate[0]), _sigmoid(ctx, gate[1]), _sigmoid(ctx, gate[3])
                gg = ctx.node("Tanh", [gate[2]])
                c = ctx.node("Add", [ctx.node("Mul", [fg, c]), ctx.node("Mul", [ig, gg])])
                h = ctx.node("Mul", [og, ctx.node("Tanh", [c])])
                steps[t] = ctx.node("Unsqueeze", [h, zero])
            outs.append(ctx.node("Concat", steps, axis=0))
            hn.append(ctx.node("Unsqueeze", [h, zero]))
            cn.append(ctx.node("Unsqueeze", [c, zero]))
        seq = outs[0] if dirs == 1 else ctx.node("Concat", outs, axis=2)
    return [seq, ctx.node("Concat", hn, axis=0), ctx.node("Concat", cn, axis=0)]
