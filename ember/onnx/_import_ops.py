"""More ONNX operators for :func:`ember.onnx.load`: constants and shapes, activations,
reductions, normalizations, losses, index ops.

Each is written with ember ops so an imported graph stays differentiable; index
computations that only depend on integer inputs (``NonZero``, ``GatherND``'s positions) run
in NumPy, as they carry no gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._creation import tensor
from .._tensor import Tensor
from ..nn import functional as F
from ._import import IMPORTS, ONNXModule, _host, _np_dtype, _reduce, _where, imports

__all__: list[str] = []


def _ember() -> Any:
    import ember

    return ember


def _unary(name: str, fn: Any) -> None:
    IMPORTS[name] = lambda m, x, **a: fn(x, **a)


# -- constants, shapes, casts ------------------------------------------------------------------


@imports("Constant")
def _constant(m: ONNXModule, **a: Any) -> np.ndarray:
    # a host value: becomes a constant tensor where it meets a tensor
    if "value" in a:
        return np.asarray(a["value"])
    if "sparse_value" in a or "value_string" in a or "value_strings" in a:
        raise NotImplementedError("Constant holding a sparse tensor or strings")
    if "value_float" in a:
        return np.asarray(a["value_float"], np.float32)
    if "value_floats" in a:
        return np.asarray(a["value_floats"], np.float32)
    if "value_int" in a:
        return np.asarray(a["value_int"], np.int64)
    return np.asarray(a["value_ints"], np.int64)


IMPORTS["CastLike"] = lambda m, x, like, **_: x.to(like.dtype)
IMPORTS["Size"] = lambda m, x: np.asarray(int(np.prod(x.shape)), np.int64)


@imports("Range")
def _range(m: ONNXModule, start: Tensor, limit: Tensor, delta: Tensor) -> Tensor:
    s, lim, d = (_host(t).reshape(()) for t in (start, limit, delta))
    n = max(math.ceil((float(lim) - float(s)) / float(d)), 0)
    return tensor((s + np.arange(n).astype(s.dtype) * d).astype(s.dtype))


@imports("Flatten")
def _flatten(m: ONNXModule, x: Tensor, axis: int = 1) -> Tensor:
    axis = axis % x.ndim if x.ndim else 0
    lead = int(np.prod(x.shape[:axis]))
    return x.reshape(lead, int(np.prod(x.shape[axis:])))


@imports("EyeLike")
def _eye_like(m: ONNXModule, x: Tensor, dtype: int | None = None, k: int = 0) -> Tensor:
    dt = _np_dtype(m._onnx, dtype) if dtype is not None else x.dtype.np
    return tensor(np.eye(x.shape[0], x.shape[1], k, dtype=dt))


@imports("NonZero")
def _nonzero(m: ONNXModule, x: Tensor) -> Tensor:
    return tensor(np.asarray(np.nonzero(np.asarray(x.numpy())), np.int64).reshape(x.ndim, -1))


@imports("Dropout")
def _dropout(m, x, ratio=None, training_mode=None, seed=None, is_test=1, **_: Any) -> Any:
    if isinstance(ratio, (Tensor, np.ndarray)) or ratio is None:
        train = training_mode is not None and bool(training_mode.item())
        r = float(ratio.item()) if ratio is not None else 0.5
    else:  # before opset 12: ratio (and, before 7, is_test) are attributes
        train, r = not is_test and m.opset < 7, float(ratio)
    if train and r > 0:
        raise NotImplementedError(
            "Dropout in training mode: its mask would come from ember's generator, not "
            "the exporter's"
        )
    return [x, _ember().ones(*x.shape, dtype=_ember().bool)]


# -- elementwise -------------------------------------------------------------------------------


def _variadic(kind: str) -> Any:
    def run(m: ONNXModule, *xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / len(xs) if kind == "mean" else out

    return run


IMPORTS["Sum"] = _variadic("sum")
IMPORTS["Mean"] = _variadic("mean")


@imports("Clip")
def _clip(m: ONNXModule, x: Tensor, lo: Any = None, hi: Any = None, **a: Any) -> Tensor:
    lo = a.get("min", lo)  # opset 6 passes the bounds as attributes
    hi = a.get("max", hi)
    if lo is not None:
        x = x.maximum(lo if isinstance(lo, Tensor) else tensor(np.asarray(lo, x.dtype.np)))
    if hi is not None:
        x = x.minimum(hi if isinstance(hi, Tensor) else tensor(np.asarray(hi, x.dtype.np)))
    return x


_unary("Asinh", lambda x: (x + (x * x + 1).sqrt()).log())
_unary("Acosh", lambda x: (x + (x * x - 1).sqrt()).log())
_unary("Atanh", lambda x: ((1 + x) / (1 - x)).log() * 0.5)
_unary("Softsign", lambda x: x / (1 + x.abs()))
_unary("Mish", lambda x: x * F.softplus(x).tanh())
_unary("Celu", lambda x, alpha=1.0: F.celu(x, alpha))
_unary("HardSigmoid", lambda x, alpha=0.2, beta=0.5: (x * alpha + beta).clamp(0, 1))
_unary("HardSwish", lambda x: x * (x / 6 + 0.5).clamp(0, 1))
_unary("Swish", lambda x, alpha=1.0: x * (x * alpha).sigmoid())
_unary("ThresholdedRelu", lambda x, alpha=1.0: _where(x > alpha, x, x * 0))
_unary(
    "Selu",
    lambda x, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875: (
        _where(x > 0, x, (x.exp() - 1) * alpha) * gamma
    ),
)


@imports("Shrink")
def _shrink(m: ONNXModule, x: Tensor, bias: float = 0.0, lambd: float = 0.5) -> Tensor:
    y = _where(x < -lambd, x + bias, _where(x > lambd, x - bias, x * 0))
    return y.to(x.dtype)


IMPORTS["PRelu"] = lambda m, x, slope: _where(x < 0, x * slope, x)


def _softmax_like(kind: str) -> Any:
    def run(m: ONNXModule, x: Tensor, axis: int | None = None) -> Tensor:
        if m.opset >= 13:
            ax = -1 if axis is None else axis
            return getattr(x, kind)(ax)
        # before opset 13 the input is coerced to 2-d at ``axis`` (default 1)
        ax = (1 if axis is None else axis) % max(x.ndim, 1)
        lead = int(np.prod(x.shape[:ax]))
        return getattr(x.reshape(lead, -1), kind)(1).reshape(*x.shape)

    return run


IMPORTS["Softmax"] = _softmax_like("softmax")
IMPORTS["LogSoftmax"] = _softmax_like("log_softmax")


@imports("Hardmax")
def _hardmax(m: ONNXModule, x: Tensor, axis: int = -1) -> Tensor:
    ax = axis % x.ndim
    i = x.argmax(ax, keepdim=True)
    shape = [1] * x.ndim
    shape[ax] = x.shape[ax]
    return (_ember().arange(x.shape[ax]).reshape(*shape) == i).to(x.dtype)


# -- reductions --------------------------------------------------------------------------------


def _pre_reduce(pre: Any, post: Any = None) -> Any:
    run_sum = _reduce("sum")

    def run(m: ONNXModule, x: Tensor, *args: Any, **kw: Any) -> Tensor:
        y = run_sum(m, pre(x), *args, **kw)
        return (post(y) if post else y).to(x.dtype)

    return run


IMPORTS["ReduceL1"] = _pre_reduce(lambda x: x.abs())
IMPORTS["ReduceL2"] = _pre_reduce(lambda x: x.double() * x.double(), lambda y: y.sqrt())
IMPORTS["ReduceSumSquare"] = _pre_reduce(lambda x: x * x)
IMPORTS["ReduceLogSum"] = _pre_reduce(lambda x: x, lambda y: y.log())


@imports("CumProd")
def _cumprod(m: ONNXModule, x: Tensor, axis: Tensor, exclusive: int = 0, reverse: int = 0) -> Any:
    a = int(axis.item()) % x.ndim
    y = x.flip(a) if reverse else x
    out = y.cumprod(a)
    if exclusive:
        ones = _ember().ones(*[1 if d == a else s for d, s in enumerate(y.shape)], dtype=x.dtype)
        out = _ember().cat([ones, out.narrow(a, 0, y.shape[a] - 1)], a)
    return (out.flip(a) if reverse else out).to(x.dtype)


@imports("TopK")
def _topk(m: ONNXModule, x: Tensor, k: Tensor, axis: int = -1, largest: int = 1, sorted: int = 1):
    ax = axis % x.ndim
    v = np.asarray(x.detach().numpy())
    # a stable sort keeps the lower index first among equal values, as ONNX requires
    order = np.argsort(-v if largest else v, axis=ax, kind="stable")
    idx = tensor(np.take(order, np.arange(int(k.item())), axis=ax).astype(np.int64))
    return [x.gather(ax, idx), idx]


# -- normalizations ----------------------------------------------------------------------------


def _channel(t: Tensor, nd: int) -> Tensor:
    return t.reshape(-1, *([1] * (nd - 2)))


@imports("BatchNormalization")
def _batch_norm(
    m: ONNXModule, x: Tensor, scale: Tensor, bias: Tensor, mean: Tensor, var: Tensor,
    epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0, **_: Any,
) -> Any:  # fmt: skip
    nd = x.ndim
    if not training_mode:
        inv = (var + epsilon).rsqrt() * scale
        return x * _channel(inv, nd) + _channel(bias - mean * inv, nd)
    dims = (0, *range(2, nd))
    bm = x.mean(dims)
    bv = ((x - _channel(bm, nd)) ** 2).mean(dims)
    y = (x - _channel(bm, nd)) * _channel((bv + epsilon).rsqrt() * scale, nd) + _channel(bias, nd)
    return [y, mean * momentum + bm * (1 - momentum), var * momentum + bv * (1 - momentum)]


@imports("InstanceNormalization")
def _instance_norm(m: ONNXModule, x: Tensor, scale: Tensor, b: Tensor, epsilon: float = 1e-5):
    dims = tuple(range(2, x.ndim))
    mu = x.mean(dims, keepdim=True)
    var = ((x - mu) ** 2).mean(dims, keepdim=True)
    return (x - mu) * (var + epsilon).rsqrt() * _channel(scale, x.ndim) + _channel(b, x.ndim)


@imports("GroupNormalization")
def _group_norm(m, x, scale, bias, num_groups: int, epsilon: float = 1e-5, stash_type: int = 1):
    n, c = x.shape[0], x.shape[1]
    g = x.reshape(n, num_groups, -1)
    gf = g.float() if stash_type == 1 else g
    mu = gf.mean(2, keepdim=True)
    var = ((gf - mu) ** 2).mean(2, keepdim=True)
    y = ((gf - mu) * (var + epsilon).rsqrt()).to(x.dtype).reshape(*x.shape)
    if m.opset < 21:  # opset 18 gave scale and bias per group
        scale = scale.repeat_interleave(c // num_groups)
        bias = bias.repeat_interleave(c // num_groups)
    return y * _channel(scale, x.ndim) + _channel(bias, x.ndim)


@imports("RMSNormalization")
def _rms_norm(m, x, scale, axis: int = -1, epsilon: float = 1e-5, stash_type: int = 1):
    dims = tuple(range(axis % x.ndim, x.ndim))
    xf = x.float() if stash_type == 1 else x
    y = (xf * ((xf * xf).mean(dims, keepdim=True) + epsilon).rsqrt()).to(x.dtype)
    return y * scale


@imports("LpNormalization")
def _lp_norm(m: ONNXModule, x: Tensor, axis: int = -1, p: int = 2) -> Tensor:
    norm = x.abs().sum(axis, keepdim=True) if p == 1 else (x * x).sum(axis, keepdim=True).sqrt()
    return x / _where(norm == 0, norm * 0 + 1, norm)  # an all-zero slice stays zero


@imports("MeanVarianceNormalization")
def _mvn(m: ONNXModule, x: Tensor, axes: Any = (0, 2, 3)) -> Tensor:
    dims = tuple(a % x.ndim for a in axes)
    mu = x.mean(dims, keepdim=True)
    sd = ((x - mu) ** 2).mean(dims, keepdim=True).sqrt()
    return (x - mu) / (sd + 1e-9)


@imports("LRN")
def _lrn(m, x, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0):
    sq = x * x
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    zeros = [_ember().zeros(x.shape[0], k, *x.shape[2:], dtype=x.dtype) for k in (lo, hi)]
    padded = _ember().cat([zeros[0], sq, zeros[1]], 1)
    total = sum(padded.narrow(1, i, c) for i in range(1, size))
    total = total + padded.narrow(1, 0, c)
    return x / (bias + total * (alpha / size)) ** beta


# -- losses ------------------------------------------------------------------------------------


def _nll(logp: Tensor, target: Tensor, weight: Any, ignore_index: Any, reduction: str) -> Tensor:
    t = target.long()
    keep = t != ignore_index if ignore_index is not None else None
    safe = _where(keep, t, t * 0) if keep is not None else t
    picked = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    w = (
        weight.index_select(0, safe.reshape(-1)).reshape(*safe.shape)
        if weight is not None
        else None
    )
    if keep is not None:
        k = keep.to(logp.dtype)
        w = w * k if w is not None else k
    loss = picked * w if w is not None else picked
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum() if w is not None else loss.mean()


@imports("NegativeLogLikelihoodLoss")
def _nll_loss(m, x, target, weight=None, ignore_index=None, reduction="mean"):
    return _nll(x, target, weight, ignore_index, reduction)


@imports("SoftmaxCrossEntropyLoss")
def _sce_loss(m, scores, labels, weights=None, ignore_index=None, reduction="mean"):
    logp = scores.log_softmax(1)
    loss = _nll(logp, labels, weights, ignore_index, reduction)
    return [loss, logp] if m._n_out > 1 else loss


# -- layout and indexing -----------------------------------------------------------------------


@imports("SpaceToDepth")
def _space_to_depth(m: ONNXModule, x: Tensor, blocksize: int, mode: str = "DCR") -> Tensor:
    n, c, h, w = x.shape
    b = blocksize
    y = x.reshape(n, c, h // b, b, w // b, b)
    y = y.permute(0, 3, 5, 1, 2, 4) if mode == "DCR" else y.permute(0, 1, 3, 5, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@imports("DepthToSpace")
def _depth_to_space(m: ONNXModule, x: Tensor, blocksize: int, mode: str = "DCR") -> Tensor:
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    else:
        y = x.reshape(n, c // (b * b), b, b, h, w).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _nd_positions(shape: tuple, idx: np.ndarray, batch_dims: int) -> np.ndarray:
    """Flat row numbers into ``data`` viewed as (prod(indexed dims), rest) for GatherND/
    ScatterND index tuples (with ``batch_dims`` leading dims shared by data and indices)."""
    k = idx.shape[-1]
    lead = shape[batch_dims : batch_dims + k]
    idx = np.where(idx < 0, idx + np.asarray(lead), idx)
    flat = (
        np.ravel_multi_index(tuple(np.moveaxis(idx, -1, 0)), lead)
        if k
        else np.zeros(idx.shape[:-1], np.int64)
    )
    if batch_dims:
        nb = int(np.prod(shape[:batch_dims]))
        per = int(np.prod(lead))
        flat = flat.reshape(nb, -1) + (np.arange(nb) * per)[:, None]
    return np.asarray(flat, np.int64).reshape(-1)


@imports("GatherND")
def _gather_nd(m: ONNXModule, x: Tensor, indices: Tensor, batch_dims: int = 0) -> Tensor:
    idx = _host(indices).astype(np.int64)
    k = idx.shape[-1]
    rest = tuple(x.shape[batch_dims + k :])
    rows = x.reshape(-1, *rest) if rest else x.reshape(-1)
    out = rows.index_select(0, tensor(_nd_positions(tuple(x.shape), idx, batch_dims)))
    return out.reshape(*idx.shape[:-1], *rest)


@imports("ScatterND")
def _scatter_nd(m, x: Tensor, indices: Tensor, updates: Tensor, reduction: str = "none"):
    idx = _host(indices).astype(np.int64)
    k = idx.shape[-1]
    rest = tuple(x.shape[k:])
    width = int(np.prod(rest))
    rows = x.reshape(-1, width)
    pos = _nd_positions(tuple(x.shape), idx, 0)
    upd = updates.reshape(-1, width)
    where = tensor(np.repeat(pos[:, None], width, 1))
    if reduction == "none":
        out = rows.scatter(0, where, upd)
    elif reduction == "add":
        out = rows.scatter_add(0, where, upd)
    else:
        out = rows  # duplicates are allowed: fold one update row at a time
        for r in range(len(pos)):
            i = where[r : r + 1]
            cur = out.gather(0, i)
            u = upd[r : r + 1]
            new = {"mul": cur * u, "max": cur.maximum(u), "min": cur.minimum(u)}[reduction]
            out = out.scatter(0, i, new)
    return out.reshape(*x.shape)


@imports("Compress")
def _compress(m: ONNXModule, x: Tensor, cond: Tensor, axis: int | None = None) -> Tensor:
    keep = np.nonzero(_host(cond).reshape(-1))[0].astype(np.int64)
    if axis is None:
        return x.reshape(-1).index_select(0, tensor(keep))
    return x.index_select(axis % x.ndim, tensor(keep))


@imports("ReverseSequence")
def _reverse_sequence(m, x: Tensor, lens: Tensor, batch_axis: int = 1, time_axis: int = 0):
    n = _host(lens).astype(np.int64)
    t = x.shape[time_axis]
    steps = np.arange(t)[:, None]
    src = np.where(steps < n[None, :], n[None, :] - 1 - steps, steps)  # (time, batch)
    if batch_axis < time_axis:
        src = src.T
    shape = [1] * x.ndim
    shape[time_axis], shape[batch_axis] = t, len(n)
    idx = np.broadcast_to(src.reshape(shape), x.shape).astype(np.int64)
    return x.gather(time_axis, tensor(np.ascontiguousarray(idx)))


@imports("Det")
def _det(m: ONNXModule, x: Tensor) -> Tensor:
    return _ember().linalg.det(x)


@imports("ConvTranspose")
def _conv_transpose(m: ONNXModule, x: Tensor, w: Tensor, b: Tensor | None = None, **a: Any):
    n = x.ndim - 2
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d}.get(n)
    if fn is None:
        raise NotImplementedError(f"ConvTranspose over {n} spatial dims (ember has 1-d and 2-d)")
    k = list(a.get("kernel_shape") or w.shape[2:])
    s = list(a.get("strides") or [1] * n)
    d = list(a.get("dilations") or [1] * n)
    op = list(a.get("output_padding") or [0] * n)
    pads = list(a.get("pads") or [0] * (2 * n))
    auto = a.get("auto_pad", "NOTSET")
    if a.get("output_shape") is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        want = (
            list(a["output_shape"])[-n:]
            if a.get("output_shape")
            else [x.shape[2 + i] * s[i] for i in range(n)]
        )
        for i in range(n):
            total = s[i] * (x.shape[2 + i] - 1) + op[i] + (k[i] - 1) * d[i] + 1 - want[i]
            small, big = total // 2, total - total // 2
            lower = auto != "SAME_UPPER"  # as onnx's reference: the extra pad goes first
            pads[i], pads[n + i] = (big, small) if lower else (small, big)
    y = fn(x, w, None, stride=tuple(s), padding=0, output_padding=tuple(op),
           groups=a.get("group", 1), dilation=tuple(d))  # fmt: skip
    idx = [slice(None), slice(None)]
    idx += [slice(max(pads[i], 0), y.shape[2 + i] - max(pads[n + i], 0)) for i in range(n)]
    y = y[tuple(idx)]
    if any(p < 0 for p in pads):  # an output_shape larger than the full result: zeros
        from ._import_pool import _pad_const

        y = _pad_const(y, [max(-p, 0) for p in pads[:n]], [max(-p, 0) for p in pads[n:]], 0)
    return y + _channel(b, y.ndim) if b is not None else y


@imports("Unique")
def _unique(m: ONNXModule, x: Tensor, axis: int | None = None, sorted: int = 1) -> list[Tensor]:
    v = _host(x)
    ax = None if axis is None else axis % v.ndim
    flat = v.reshape(-1) if ax is None else v
    _, first, inverse, counts = np.unique(
        flat, return_index=True, return_inverse=True, return_counts=True, axis=ax
    )
    order = np.arange(len(first)) if sorted else np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    # the values are gathered from x, so Y stays connected to the input's graph
    src = x.reshape(-1) if ax is None else x
    y = src.index_select(0 if ax is None else ax, tensor(first[order].astype(np.int64)))
    as64 = lambda a: tensor(np.asarray(a, np.int64).reshape(-1))
    return [y, as64(first[order]), as64(rank[inverse.reshape(-1)]), as64(counts[order])]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes given as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2."""
    h = min(a[2], b[2]) - max(a[0], b[0])
    w = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(h, 0.0) * max(w, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@imports("NonMaxSuppression")
def _nms(m, boxes, scores, max_out=None, iou_threshold=None, score_threshold=None,
         center_point_box: int = 0) -> Tensor:  # fmt: skip
    """Greedy per-class suppression; the selection is data dependent (no gradient)."""
    bx, sc = _host(boxes).astype(np.float64), _host(scores).astype(np.float64)
    limit = int(_host(max_out).reshape(-1)[0]) if max_out is not None else 0
    iou_t = float(_host(iou_threshold).reshape(-1)[0]) if iou_threshold is not None else 0.0
    score_t = float(_host(score_threshold).reshape(-1)[0]) if score_threshold is not None else None
    if center_point_box:
        xc, yc, w, h = (bx[..., k] for k in range(4))
        bx = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], -1)
    else:  # corners may come in either order
        bx = np.concatenate([np.minimum(bx[..., :2], bx[..., 2:]),
                             np.maximum(bx[..., :2], bx[..., 2:])], -1)  # fmt: skip
    picked = []
    for b in range(sc.shape[0]):
        for c in range(sc.shape[1]):
            s = sc[b, c]
            order = np.argsort(-s, kind="stable")
            if score_t is not None:
                order = order[s[order] > score_t]
            keep: list[int] = []
            for i in order:
                if len(keep) >= limit:
                    break
                if all(_iou(bx[b, i], bx[b, j]) <= iou_t for j in keep):
                    keep.append(int(i))
            picked += [(b, c, i) for i in keep]
    return tensor(np.asarray(picked, np.int64).reshape(-1, 3))


# optionals: an empty optional is None, a full one its value
IMPORTS["Optional"] = lambda m, x=None, **_: [x]
IMPORTS["OptionalHasElement"] = lambda m, x=None: np.asarray(x is not None)


@imports("OptionalGetElement")
def _optional_get(m: ONNXModule, x: Any) -> Any:
    if x is None:
        raise ValueError("OptionalGetElement on an empty optional")
    return [x]
