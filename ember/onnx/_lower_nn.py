"""Lowerings of the neural-network primitives: convolution, pooling, normalization,
embedding, attention and the fused recurrences (LSTM, GRU, Elman RNN)."""

from __future__ import annotations

import numpy as np

from ..compiler.ir import Eqn, Literal, Var
from ._context import Context, Unsupported
from .lowering import lowers, out_dtype


def _given(v: Var | Literal | None) -> bool:
    return v is not None and not (isinstance(v, Literal) and v.value is None)


@lowers("conv2d")
def _conv2d(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    p = e.params
    t, b, l, r = (int(v) for v in p["padding"])
    if min(t, b, l, r) < 0:
        raise Unsupported("conv2d with negative padding (cropping)")
    ins = [ctx.inp(v, dt) for v in e.inputs[:2]]
    if len(e.inputs) > 2 and _given(e.inputs[2]):
        ins.append(ctx.inp(e.inputs[2], dt))
    return ctx.node(
        "Conv",
        ins,
        strides=[int(s) for s in p["stride"]],
        pads=[t, l, b, r],
        dilations=[int(d) for d in p["dilation"]],
        group=int(p["groups"]),
        kernel_shape=[int(k) for k in e.inputs[1].shape[2:]],
    )


@lowers("conv2d_grad_input")
def _conv2d_grad_input(ctx: Context, e: Eqn) -> str:
    """The adjoint of conv2d, which is what ``ConvTranspose1d/2d/3d`` run: ONNX ConvTranspose
    with the conv's weight, stride, dilation and groups. The conv's padding ``(t, b, l, r)``
    crops the start (``pads`` begin); the output size ``in_hw`` fixes the end: the rows the
    scatter does not reach are ``output_padding`` (zeros), the ones beyond ``in_hw`` are
    cropped as ``pads`` end."""
    dt = out_dtype(e)
    p = e.params
    t, _b, l, _r = (int(v) for v in p["padding"])  # the end follows from in_hw
    if min(t, l) < 0:
        raise Unsupported("conv2d_grad_input with a negative leading padding")
    g, w = e.inputs[0], e.inputs[1]
    kernel = [int(k) for k in w.shape[2:]]
    stride = [int(s) for s in p["stride"]]
    dil = [int(d) for d in p["dilation"]]
    begin, end, extra = [t, l], [], []
    for ax in range(2):
        n_in = g.shape[2 + ax]
        if not isinstance(n_in, int):
            raise Unsupported("conv2d_grad_input with a symbolic spatial size")
        full = stride[ax] * (n_in - 1) + dil[ax] * (kernel[ax] - 1) + 1
        more = int(p["in_hw"][ax]) + begin[ax] - full
        extra.append(max(more, 0))
        end.append(max(-more, 0))
    return ctx.node(
        "ConvTranspose",
        [ctx.inp(g, dt), ctx.inp(w, dt)],
        strides=stride,
        pads=begin + end,
        dilations=dil,
        group=int(p["groups"]),
        kernel_shape=kernel,
        output_padding=extra,
    )


@lowers("max_pool2d")
def _max_pool2d(ctx: Context, e: Eqn) -> list:
    """MaxPool; its Indices output stands for the window indices, which only
    ``max_pool2d_indices`` (``return_indices=True``) may read: it turns them into PyTorch's."""
    p = e.params
    want_idx = ctx.used(e.outputs[1])
    if want_idx:
        readers = {q.prim.name for q in ctx.graph.eqns if any(v is e.outputs[1] for v in q.inputs)}
        if readers != {"max_pool2d_indices"} or any(v is e.outputs[1] for v in ctx.graph.outputs):
            raise Unsupported("max_pool2d's raw window indices (read by other than return_indices)")
    ph, pw = (int(v) for v in p["padding"])
    outs = ctx.node(
        "MaxPool",
        [ctx.inp(e.inputs[0])],
        n_out=2 if want_idx else 1,
        kernel_shape=[int(k) for k in p["kernel"]],
        strides=[int(s) for s in p["stride"]],
        pads=[ph, pw, ph, pw],
        dilations=[int(d) for d in p["dilation"]],
        ceil_mode=int(bool(p["ceil_mode"])),
    )
    return list(outs) if want_idx else [outs, None]


@lowers("max_pool2d_indices")
def _max_pool2d_indices(ctx: Context, e: Eqn) -> str:
    """MaxPool's Indices count over the whole (unpadded) input; PyTorch's within each
    ``H x W`` plane: ``Mod(indices, H * W)``."""
    h, w = (int(d) for d in e.params["in_shape"][2:])
    return ctx.node("Mod", [ctx.inp(e.inputs[0]), ctx.const(np.int64(h * w))], fmod=0)


@lowers("avg_pool2d")
def _avg_pool2d(ctx: Context, e: Eqn) -> str:
    """AveragePool; a ``divisor_override`` d: the count-including-pad mean times
    ``kh*kw / d`` (without ceil_mode, where every window has kh*kw cells)."""
    p = e.params
    ph, pw = (int(v) for v in p["padding"])
    kh, kw = (int(k) for k in p["kernel"])
    div = p.get("divisor_override")
    if div is not None and p["ceil_mode"]:
        raise Unsupported("avg_pool2d with both divisor_override and ceil_mode")
    dt = out_dtype(e)
    y = ctx.node(
        "AveragePool",
        [ctx.inp(e.inputs[0], dt)],
        kernel_shape=[kh, kw],
        strides=[int(s) for s in p["stride"]],
        pads=[ph, pw, ph, pw],
        ceil_mode=int(bool(p["ceil_mode"])),
        count_include_pad=int(bool(p["count_include_pad"]) or div is not None),
    )
    if div is not None:
        y = ctx.node("Mul", [y, ctx.const(kh * kw / float(div), dt)])
    return y


@lowers("layer_norm")
def _layer_norm(ctx: Context, e: Eqn) -> str:
    """LayerNormalization over the last ``k`` axes (ones and zeros when affine is off)."""
    dt = out_dtype(e)
    x = e.inputs[0]
    k = int(e.params["k"])
    norm_shape = tuple(int(d) for d in x.shape[x.ndim - k :])
    w = e.inputs[1] if len(e.inputs) > 1 else None
    b = e.inputs[2] if len(e.inputs) > 2 else None
    scale = ctx.inp(w, dt) if _given(w) else ctx.const(np.ones(norm_shape, dt))
    ins = [ctx.inp(x, dt), scale]
    if _given(b):
        ins.append(ctx.inp(b, dt))
    return ctx.node("LayerNormalization", ins, axis=-k, epsilon=float(e.params["eps"]))


@lowers("embedding")
def _embedding(ctx: Context, e: Eqn) -> str:
    """Gather of the weight's rows (``padding_idx`` only matters for gradients)."""
    w, idx = e.inputs
    return ctx.node("Gather", [ctx.inp(w), ctx.inp(idx, np.int64)], axis=0)


@lowers("sdpa")
def _sdpa(ctx: Context, e: Eqn) -> list:
    """Attention written out: ``softmax(q k^T * scale, masked) v``; the causal mask is a
    constant Where (the upper triangle gets -inf); the log-sum-exp output, when read, is a
    ReduceLogSumExp of the same scores."""
    dt = out_dtype(e)
    q, k, v = e.inputs
    nd = q.ndim
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    kt = ctx.node("Transpose", [ctx.inp(k, dt)], perm=perm)
    s = ctx.node("MatMul", [ctx.inp(q, dt), kt])
    s = ctx.node("Mul", [s, ctx.const(float(e.params["scale"]), dt)])
    if e.params["causal"]:
        L, S = int(q.shape[-2]), int(k.shape[-2])
        mask = ctx.const(np.triu(np.ones((L, S), np.bool_), 1))
        s = ctx.node("Where", [mask, ctx.const(-np.inf, dt), s])
    y = ctx.node("MatMul", [ctx.node("Softmax", [s], axis=-1), ctx.inp(v, dt)])
    lse = None
    if ctx.used(e.outputs[1]):
        lse = ctx.reduce("ReduceLogSumExp", s, [-1], False)
    return [y, lse]


# -- recurrences -----------------------------------------------------------------------------


def _rows(ctx: Context, w: str, order: list[int], h: int) -> str:
    """Reorder the gate blocks (of ``h`` rows each) of a stacked weight or bias."""
    idx = np.concatenate([np.arange(g * h, (g + 1) * h) for g in order]).astype(np.int64)
    return ctx.node("Gather", [w, ctx.const(idx)], axis=0)


def _recurrence(
    ctx: Context,
    op: str,
    e: Eqn,
    x: str,
    w_ih: str,
    w_hh: str,
    b_ih: str,
    b_hh: str,
    states: list[str],
    order: list[int],
    hidden: int,
    **attrs,
) -> list:
    """One ONNX recurrence node (one direction); returns Y squeezed to (T, B, H) and the
    final states squeezed to (B, H)."""
    zero = ctx.ints([0])
    W = ctx.node("Unsqueeze", [_rows(ctx, w_ih, order, hidden), zero])
    R = ctx.node("Unsqueeze", [_rows(ctx, w_hh, order, hidden), zero])
    Bias = ctx.node(
        "Concat", [_rows(ctx, b_ih, order, hidden), _rows(ctx, b_hh, order, hidden)], axis=0
    )
    Bias = ctx.node("Unsqueeze", [Bias, zero])
    init = [ctx.node("Unsqueeze", [s, zero]) for s in states]
    direction = "reverse" if e.params.get("reverse") else "forward"
    ins = [x, W, R, Bias, "", *init]
    outs = ctx.node(
        op, ins, n_out=1 + len(states), hidden_size=hidden, direction=direction, **attrs
    )
    y = ctx.node("Squeeze", [outs[0], ctx.ints([1])])
    return [y] + [ctx.node("Squeeze", [o, zero]) for o in outs[1:]]


@lowers("lstm_seq")
def _lstm_seq(ctx: Context, e: Eqn) -> list:
    """ONNX LSTM (gates reordered from i,f,g,o to i,o,f,c; the bias is ``b`` and zeros).
    The cell states of every step are not an LSTM output: when they are read, the recurrence
    is unrolled instead."""
    dt = out_dtype(e)
    x, w_ih, b, h0, c0, w_hh = (ctx.inp(v, dt) for v in e.inputs)
    if ctx.used(e.outputs[2]):
        raise Unsupported("lstm_seq's gate activations (a training-only output)")
    hidden = int(e.inputs[5].shape[1])
    if ctx.used(e.outputs[1]):
        return _lstm_unrolled(ctx, e, x, w_ih, b, h0, c0, w_hh, hidden) + [None]
    zeros = ctx.const(np.zeros(4 * hidden, dt))
    y, _, _ = _recurrence(ctx, "LSTM", e, x, w_ih, w_hh, b, zeros, [h0, c0], [0, 3, 1, 2], hidden)
    return [y, None, None]


def _lstm_unrolled(ctx, e, x, w_ih, b, h0, c0, w_hh, hidden) -> list:
    """The LSTM recurrence step by step (T is static): gates = x_t W^T + b + h W_hh^T."""
    T = int(e.inputs[0].shape[0])
    wt = ctx.node("Transpose", [w_ih], perm=[1, 0])
    rt = ctx.node("Transpose", [w_hh], perm=[1, 0])
    xw = ctx.node("Add", [ctx.node("MatMul", [x, wt]), b])  # (T, B, 4H)
    h, c = h0, c0
    hs: list = [None] * T
    cs: list = [None] * T
    steps = range(T - 1, -1, -1) if e.params.get("reverse") else range(T)
    for t in steps:
        xt = ctx.node("Gather", [xw, ctx.const(np.int64(t))], axis=0)
        g = ctx.node("Add", [xt, ctx.node("MatMul", [h, rt])])
        i, f, gg, o = ctx.node("Split", [g, ctx.ints([hidden] * 4)], n_out=4, axis=1)
        i, f, o = (ctx.node("Sigmoid", [a]) for a in (i, f, o))
        c = ctx.node("Add", [ctx.node("Mul", [f, c]), ctx.node("Mul", [i, ctx.node("Tanh", [gg])])])
        h = ctx.node("Mul", [o, ctx.node("Tanh", [c])])
        hs[t], cs[t] = h, c
    zero = ctx.ints([0])

    def stack(vals):
        return ctx.node("Concat", [ctx.node("Unsqueeze", [v, zero]) for v in vals], axis=0)

    return [stack(hs), stack(cs)]


@lowers("gru_seq")
def _gru_seq(ctx: Context, e: Eqn) -> list:
    """ONNX GRU with ``linear_before_reset=1`` (PyTorch's form), gates r,z,n -> z,r,h."""
    dt = out_dtype(e)
    x, w_ih, b_ih, h0, w_hh, b_hh = (ctx.inp(v, dt) for v in e.inputs)
    if ctx.used(e.outputs[1]):
        raise Unsupported("gru_seq's gate activations (a training-only output)")
    hidden = int(e.inputs[4].shape[1])
    y, _ = _recurrence(
        ctx, "GRU", e, x, w_ih, w_hh, b_ih, b_hh, [h0], [1, 0, 2], hidden, linear_before_reset=1
    )
    return [y, None]


@lowers("rnn_seq")
def _rnn_seq(ctx: Context, e: Eqn) -> str:
    """ONNX RNN with a Tanh (or Relu) activation; the bias is ``b`` and zeros."""
    dt = out_dtype(e)
    x, w_ih, b, h0, w_hh = (ctx.inp(v, dt) for v in e.inputs)
    hidden = int(e.inputs[4].shape[1])
    zeros = ctx.const(np.zeros(hidden, dt))
    act = "Relu" if e.params.get("relu") else "Tanh"
    y, _ = _recurrence(ctx, "RNN", e, x, w_ih, w_hh, b, zeros, [h0], [0], hidden, activations=[act])
    return y
