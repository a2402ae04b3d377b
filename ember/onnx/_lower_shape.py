"""Lowerings of the shape and indexing primitives (reshape, permute, slicing, concat, ...)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..compiler.ir import Dim, Eqn, Literal
from ..compiler.prims import InputRef
from ._context import INT64_MAX, INT64_MIN, Context, Unsupported
from .lowering import lowers, out_dtype


@lowers("reshape")
def _reshape(ctx: Context, e: Eqn) -> str:
    return ctx.node("Reshape", [ctx.inp(e.inputs[0]), ctx.shape(e.params["shape"])])


@lowers("permute")
def _permute(ctx: Context, e: Eqn) -> str:
    return ctx.node("Transpose", [ctx.inp(e.inputs[0])], perm=[int(d) for d in e.params["dims"]])


@lowers("expand")
def _expand(ctx: Context, e: Eqn) -> str:
    return ctx.node("Expand", [ctx.inp(e.inputs[0]), ctx.shape(e.params["shape"])])


@lowers("cat")
def _cat(ctx: Context, e: Eqn) -> str:
    dt = out_dtype(e)
    return ctx.node("Concat", [ctx.inp(v, dt) for v in e.inputs], axis=int(e.params["dim"]))


@lowers("flip")
def _flip(ctx: Context, e: Eqn) -> str:
    """A Slice with step -1 on each flipped axis."""
    dims = [int(d) for d in e.params["dims"]]
    if not dims:
        return ctx.node("Identity", [ctx.inp(e.inputs[0])])
    n = len(dims)
    return ctx.slice(ctx.inp(e.inputs[0]), [-1] * n, [INT64_MIN] * n, dims, [-1] * n)


@lowers("roll")
def _roll(ctx: Context, e: Eqn) -> str:
    """Per axis: the last ``shift`` entries (two Slices) concatenated before the rest."""
    x = ctx.inp(e.inputs[0])
    shape = e.inputs[0].shape
    shifts, dims = e.params["shifts"], e.params["dims"]
    shifts = list(shifts) if isinstance(shifts, (tuple, list)) else [shifts]
    if dims is None or (isinstance(dims, (tuple, list)) and not dims):
        flat = ctx.node("Reshape", [x, ctx.ints([-1])])
        size = int(np.prod([int(d) for d in shape])) if not _symbolic(shape) else None
        if size is None:
            raise Unsupported("roll without dims on a symbolic shape")
        out = _roll_axis(ctx, flat, int(shifts[0]), 0, size)
        return ctx.node("Reshape", [out, ctx.shape(shape)])
    dims = list(dims) if isinstance(dims, (tuple, list)) else [dims]
    for s, d in zip(shifts, dims):
        n = shape[int(d)]
        if isinstance(n, Dim):
            raise Unsupported("roll along the symbolic batch axis")
        x = _roll_axis(ctx, x, int(s), int(d), int(n))
    return x


def _roll_axis(ctx: Context, x: str, shift: int, axis: int, n: int) -> str:
    if n == 0 or shift % n == 0:
        return x
    k = shift % n
    tail = ctx.slice(x, [n - k], [n], [axis])
    head = ctx.slice(x, [0], [n - k], [axis])
    return ctx.node("Concat", [tail, head], axis=axis)


def _symbolic(shape: Any) -> bool:
    return any(isinstance(d, Dim) for d in shape)


@lowers("repeat")
def _repeat(ctx: Context, e: Eqn) -> str:
    """Tile, after a Reshape that adds the leading axes ``repeats`` has in excess."""
    reps = [int(r) for r in e.params["repeats"]]
    in_shape = tuple(e.params["in_shape"])
    x = ctx.inp(e.inputs[0])
    extra = len(reps) - len(in_shape)
    if extra > 0:
        x = ctx.node("Reshape", [x, ctx.shape((1,) * extra + in_shape)])
    return ctx.node("Tile", [x, ctx.ints(reps)])


@lowers("pad_constant")
def _pad_constant(ctx: Context, e: Eqn) -> str:
    """Pad (constant mode); negative pads (cropping) are Pad's negative pads too."""
    pads = [tuple(int(v) for v in p) for p in e.params["pads"]]
    onnx_pads = [p[0] for p in pads] + [p[1] for p in pads]
    dt = out_dtype(e)
    value = ctx.const(np.asarray(e.params["value"], dt))
    return ctx.node("Pad", [ctx.inp(e.inputs[0], dt), ctx.ints(onnx_pads), value], mode="constant")


@lowers("index_select")
def _index_select(ctx: Context, e: Eqn) -> str:
    x, idx = e.inputs
    return ctx.node("Gather", [ctx.inp(x), ctx.inp(idx, np.int64)], axis=int(e.params["dim"]))


@lowers("gather")
def _gather(ctx: Context, e: Eqn) -> str:
    x, idx = e.inputs
    return ctx.node(
        "GatherElements", [ctx.inp(x), ctx.inp(idx, np.int64)], axis=int(e.params["dim"])
    )


# -- basic and advanced indexing -------------------------------------------------------------


def _expand_ellipsis(idx: tuple, ndim: int) -> list:
    idx = list(idx)
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx[k : k + 1] = [slice(None)] * (ndim - n_real)
    else:
        idx += [slice(None)] * (ndim - n_real)
    return idx


def _is_full(s: slice) -> bool:
    return s.start in (None, 0) and s.stop is None and s.step in (None, 1)


def _basic(ctx: Context, x: str, idx: list, shape: tuple) -> tuple[str, list]:
    """Slices and integers of ``idx`` applied (one Slice, then a Squeeze); returns the result
    and, per remaining axis, the index entries left (None: new axis, "keep": a kept axis,
    or an advanced index)."""
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    left: list = []
    axis = 0
    out_axis = 0
    for it in idx:
        if it is None:
            left.append(None)
            continue
        n = shape[axis]
        if isinstance(it, slice):
            if not _is_full(it):
                step = 1 if it.step is None else int(it.step)
                if step == 0:
                    raise Unsupported("slice step 0")
                hi = INT64_MAX if step > 0 else INT64_MIN
                starts.append(_bound(it.start, INT64_MAX if step < 0 else 0))
                ends.append(_bound(it.stop, hi))
                axes.append(axis)
                steps.append(step)
            left.append("keep")
            out_axis += 1
        elif isinstance(it, (int, np.integer)):
            i: Any = int(it)
            if i < 0:
                i = n + i if isinstance(n, Dim) else i + int(n)
            starts.append(i)
            ends.append(i + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        else:  # an advanced index: kept for the caller
            left.append(it)
            out_axis += 1
        axis += 1
    if axes:
        x = ctx.slice(x, starts, ends, axes, steps)
    if squeeze:
        x = ctx.node("Squeeze", [x, ctx.ints(squeeze)])
    return x, left


def _bound(v: Any, default: int) -> Any:
    if v is None:
        return default
    return v if isinstance(v, Dim) else int(v)


def _new_axes(ctx: Context, x: str, left: list) -> str:
    new = [i for i, it in enumerate(left) if it is None]
    return ctx.node("Unsqueeze", [x, ctx.ints(new)]) if new else x


@lowers("getitem")
def _getitem(ctx: Context, e: Eqn) -> str:
    shape = tuple(e.params["shape"])
    idx = e.params["idx"]
    idx = idx if isinstance(idx, tuple) else (idx,)
    x, left = _basic(ctx, ctx.inp(e.inputs[0]), _expand_ellipsis(idx, len(shape)), shape)
    return _new_axes(ctx, x, left) if any(it is None for it in left) else x


@lowers("getitem_adv")
def _getitem_adv(ctx: Context, e: Eqn) -> str:
    """Basic indexing, then a Gather for one integer-array index (NumPy's rules for several
    array indices are not exported)."""
    shape = tuple(e.params["shape"])
    idx = e.params["idx"]
    idx = idx if isinstance(idx, tuple) else (idx,)
    items = _expand_ellipsis(idx, len(shape))
    arrays = [i for i, it in enumerate(items) if isinstance(it, (np.ndarray, InputRef, list))]
    if len(arrays) != 1 or any(it is None for it in items):
        raise Unsupported("advanced indexing with other than one integer-array index")
    k = arrays[0]
    it = items[k]
    if isinstance(it, InputRef):
        index = ctx.inp(e.inputs[it.index], np.int64)
    else:
        arr = np.asarray(it)
        if arr.dtype == np.bool_:
            raise Unsupported("boolean-mask indexing (data-dependent shape)")
        index = ctx.const(arr.astype(np.int64))
    items[k] = slice(None)
    x, left = _basic(ctx, ctx.inp(e.inputs[0]), items, shape)
    axis = sum(1 for j, it2 in enumerate(items[:k]) if not isinstance(it2, (int, np.integer)))
    n = shape[k]
    # negative indices count from the end, as in NumPy
    size = ctx.dim(n, scalar=True)
    neg = ctx.node("Less", [index, ctx.const(np.int64(0))])
    index = ctx.node("Where", [neg, ctx.node("Add", [index, size]), index])
    del left
    return ctx.node("Gather", [x, index], axis=axis)


@lowers("pad_gather")
def _pad_gather(ctx: Context, e: Eqn) -> str:
    """Reflect and replicate padding are Pad's ``reflect`` and ``edge`` modes; circular
    padding is, per axis, the last ``lo`` entries, the input and the first ``hi`` entries
    concatenated (Pad's ``wrap`` needs opset 19)."""
    pads = [tuple(int(v) for v in p) for p in e.params["pads"]]
    mode = e.params["mode"]
    x = ctx.inp(e.inputs[0])
    if min(min(p) for p in pads) < 0:
        raise Unsupported(f"{mode} padding with negative pads")
    if mode in ("reflect", "replicate"):
        onnx_pads = [p[0] for p in pads] + [p[1] for p in pads]
        onnx_mode = "reflect" if mode == "reflect" else "edge"
        return ctx.node("Pad", [x, ctx.ints(onnx_pads)], mode=onnx_mode)
    if mode != "circular":
        raise Unsupported(f"padding mode {mode!r}")
    shape = e.params["shape"]
    for axis, (lo, hi) in enumerate(pads):
        if not lo and not hi:
            continue
        n = shape[axis]
        if isinstance(n, Dim):
            raise Unsupported("circular padding of the symbolic batch axis")
        parts = []
        if lo:
            parts.append(ctx.slice(x, [int(n) - lo], [int(n)], [axis]))
        parts.append(x)
        if hi:
            parts.append(ctx.slice(x, [0], [hi], [axis]))
        x = ctx.node("Concat", parts, axis=axis)
    return x


@lowers("scatter", "scatter_add", "scatter_mul")
def _scatter(ctx: Context, e: Eqn) -> str:
    """ScatterElements (``reduction`` none, add or mul)."""
    dt = out_dtype(e)
    x, index, src = e.inputs
    reduction = {"scatter": "none", "scatter_add": "add", "scatter_mul": "mul"}[e.prim.name]
    ins = [ctx.inp(x, dt), ctx.inp(index, np.int64), ctx.inp(src, dt)]
    return ctx.node("ScatterElements", ins, axis=int(e.params["dim"]), reduction=reduction)


@lowers("index_fill")
def _index_fill(ctx: Context, e: Eqn) -> str:
    """``where(mask, value, x)``: the mask along ``dim`` is whether each position equals one
    of the indices (negative ones count from the end)."""
    dt = out_dtype(e)
    x, index, value = e.inputs
    dim = int(e.params["dim"]) % max(x.ndim, 1)
    n = x.shape[dim] if x.ndim else 1
    if isinstance(n, Dim):
        raise Unsupported("index_fill along the symbolic batch axis")
    n = int(n)
    idx = ctx.node("Reshape", [ctx.inp(index, np.int64), ctx.ints([1, -1])])
    neg = ctx.node("Less", [idx, ctx.const(np.int64(0))])
    idx = ctx.node("Where", [neg, ctx.node("Add", [idx, ctx.const(np.int64(n))]), idx])
    hits = ctx.node("Equal", [ctx.const(np.arange(n, dtype=np.int64).reshape(n, 1)), idx])
    mask = ctx.reduce("ReduceMax", ctx.cast(hits, np.int32), [1], False)
    shape = [1] * x.ndim
    if x.ndim:
        shape[dim] = n
    mask = ctx.node("Reshape", [ctx.cast(mask, np.bool_), ctx.ints(shape)])
    return ctx.node("Where", [mask, ctx.inp(value, dt), ctx.inp(x, dt)])


@lowers("index_add")
def _index_add(ctx: Context, e: Eqn) -> str:
    """ScatterElements (add) of ``alpha * src``, the indices broadcast to ``src``'s shape
    along ``dim``."""
    dt = out_dtype(e)
    x, index, src = e.inputs
    # x or src may be a constant folded into a Literal (no ndim): the output has x's shape
    dim = int(e.params["dim"]) % max(e.outputs[0].ndim, 1)
    src_ndim = np.ndim(src.value) if isinstance(src, Literal) else src.ndim
    s = ctx.inp(src, dt)
    alpha = e.params.get("alpha", 1)
    if alpha != 1:
        s = ctx.node("Mul", [s, ctx.const(alpha, dt)])
    shape = [1] * src_ndim
    shape[dim] = -1
    idx = ctx.node("Reshape", [ctx.inp(index, np.int64), ctx.ints(shape)])
    idx = ctx.node("Expand", [idx, ctx.node("Shape", [s])])
    return ctx.node("ScatterElements", [ctx.inp(x, dt), idx, s], axis=dim, reduction="add")


@lowers("diagonal")
def _diagonal(ctx: Context, e: Eqn) -> str:
    """The two axes moved last and merged, then a Gather of the diagonal's flat positions."""
    x = e.inputs[0]
    off, d1, d2 = (int(e.params[k]) for k in ("offset", "dim1", "dim2"))
    shape = tuple(e.params["in_shape"])
    d1, d2 = d1 % len(shape), d2 % len(shape)
    n1, n2 = shape[d1], shape[d2]
    if isinstance(n1, Dim) or isinstance(n2, Dim):
        raise Unsupported("diagonal over the symbolic batch axis")
    n1, n2 = int(n1), int(n2)
    rest = [a for a in range(len(shape)) if a not in (d1, d2)]
    t = ctx.node("Transpose", [ctx.inp(x)], perm=rest + [d1, d2])
    t = ctx.node("Reshape", [t, ctx.shape([shape[a] for a in rest] + [n1 * n2])])
    k = max(0, min(n1 + min(off, 0), n2 - max(off, 0)))
    i = np.arange(k) + max(-off, 0)
    j = np.arange(k) + max(off, 0)
    return ctx.node("Gather", [t, ctx.const((i * n2 + j).astype(np.int64))], axis=len(rest))
