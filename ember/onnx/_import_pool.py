"""Import of ONNX pooling and convolution padding in every form the spec allows.

The common 2-d cases run on ember's pooling kernels; the others (1-d and 3-d, ``auto_pad``,
asymmetric or large pads, dilated average pools, the ``Indices`` output) on a written-out
form: the kernel's offsets become strided slices of the padded input, folded with
``maximum`` or summed, so the result stays differentiable.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .._creation import tensor
from .._tensor import Tensor
from ..nn import functional as F
from ._import import IMPORTS, ONNXModule, imports

__all__ = ["pool_pads"]


def pool_pads(
    spatial: list[int], kernel: list[int], strides: list[int], dilations: list[int],
    pads: list[int] | None, auto_pad: str,
) -> tuple[list[int], list[int]]:  # fmt: skip
    """The (begin, end) pads per spatial axis that ``pads``/``auto_pad`` ask for.

    Example:
        >>> pool_pads([5], [3], [2], [1], None, "SAME_UPPER")
        ([1], [1])
    """
    n = len(spatial)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        lo, hi = [], []
        for i in range(n):
            out = -(-spatial[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i], 0)
            small, big = total // 2, total - total // 2
            lo.append(small if auto_pad == "SAME_UPPER" else big)
            hi.append(big if auto_pad == "SAME_UPPER" else small)
        return lo, hi
    if auto_pad == "VALID" or not pads:
        return [0] * n, [0] * n
    return list(pads[:n]), list(pads[n:])


def _pad_const(x: Tensor, lo: list[int], hi: list[int], value: Any) -> Tensor:
    import ember

    first = x.ndim - len(lo)
    for i, (a, b) in enumerate(zip(lo, hi)):
        d = first + i
        parts = []
        for k, body in ((a, False), (0, True), (b, False)):
            if body:
                parts.append(x)
            elif k:
                shape = list(x.shape)
                shape[d] = k
                parts.append(ember.full(tuple(shape), value, dtype=x.dtype))
        if len(parts) > 1:
            x = ember.cat(parts, d)
    return x


def _geometry(x: Tensor, a: dict[str, Any]) -> dict[str, Any]:
    kernel = list(a["kernel_shape"])
    n = len(kernel)
    spatial = list(x.shape[2:])
    strides = list(a.get("strides") or [1] * n)
    dil = list(a.get("dilations") or [1] * n)
    lo, hi = pool_pads(spatial, kernel, strides, dil, a.get("pads"), a.get("auto_pad", "NOTSET"))
    out, extra = [], []
    for i in range(n):
        span = spatial[i] + lo[i] + hi[i] - dil[i] * (kernel[i] - 1) - 1
        o = (-(-span // strides[i]) if a.get("ceil_mode") else span // strides[i]) + 1
        if a.get("ceil_mode") and (o - 1) * strides[i] >= spatial[i] + lo[i]:
            o -= 1  # a window may not start in the right padding
        out.append(o)
        need = (o - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
        extra.append(max(need - (spatial[i] + lo[i] + hi[i]), 0))
    return {
        "kernel": kernel,
        "strides": strides,
        "dil": dil,
        "lo": lo,
        "hi": hi,
        "out": out,
        "extra": extra,
    }


def _windows(x: Tensor, g: dict[str, Any]) -> list[Tensor]:
    first = x.ndim - len(g["kernel"])
    res = []
    for offs in itertools.product(*[range(k) for k in g["kernel"]]):
        idx: list[Any] = [slice(None)] * first
        for o, d, s, n in zip(offs, g["dil"], g["strides"], g["out"]):
            idx.append(slice(o * d, o * d + (n - 1) * s + 1, s))
        res.append(x[tuple(idx)])
    return res


def _lowest(x: Tensor) -> Any:
    if x.dtype.is_floating_point:
        return float("-inf")
    return int(np.iinfo(x.dtype.np).min)


def _fast2d(x: Tensor, a: dict[str, Any]) -> bool:
    k, pads = a["kernel_shape"], a.get("pads") or [0, 0, 0, 0]
    return (
        len(k) == 2
        and a.get("auto_pad", "NOTSET") == "NOTSET"
        and pads[:2] == pads[2:]
        and all(2 * p <= kk for p, kk in zip(pads, k))
        and x.dtype.is_floating_point
    )


@imports("MaxPool")
def _max_pool(m: ONNXModule, x: Tensor, **a: Any) -> Any:
    if m._n_out == 1 and _fast2d(x, a):
        pads = a.get("pads") or [0, 0, 0, 0]
        return F.max_pool2d(
            x, tuple(a["kernel_shape"]), tuple(a.get("strides") or (1, 1)), (pads[0], pads[1]),
            dilation=tuple(a.get("dilations") or (1, 1)), ceil_mode=bool(a.get("ceil_mode", 0)),
        )  # fmt: skip
    g = _geometry(x, a)
    hi = [h + e for h, e in zip(g["hi"], g["extra"])]
    wins = _windows(_pad_const(x, g["lo"], hi, _lowest(x)), g)
    out = wins[0]
    for w in wins[1:]:
        out = out.maximum(w)
    if m._n_out == 1:
        return out
    # the flat (N, C, spatial) position of each window's first maximum; storage_order=1
    # numbers the spatial positions column-major
    sp = x.shape[2:]
    cells = np.arange(int(np.prod(sp)), dtype=np.int64)
    cells = cells.reshape(sp[::-1]).T if a.get("storage_order", 0) else cells.reshape(sp)
    lead = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(*x.shape[:2], *[1] * len(sp))
    flat = tensor(np.ascontiguousarray(lead * int(np.prod(sp)) + cells))
    pos = _windows(_pad_const(flat, g["lo"], hi, -1), g)
    best, where = wins[0], pos[0]
    for w, p in zip(wins[1:], pos[1:]):
        take = w > best
        best = best.maximum(w)
        where = IMPORTS["Where"](m, take, p, where)
    return [out, where]


@imports("AveragePool")
def _avg_pool(m: ONNXModule, x: Tensor, **a: Any) -> Any:
    if _fast2d(x, a) and not any(d != 1 for d in a.get("dilations") or []):
        pads = a.get("pads") or [0, 0, 0, 0]
        return F.avg_pool2d(
            x, tuple(a["kernel_shape"]), tuple(a.get("strides") or (1, 1)), (pads[0], pads[1]),
            ceil_mode=bool(a.get("ceil_mode", 0)),
            count_include_pad=bool(a.get("count_include_pad", 0)),
        )  # fmt: skip
    import ember

    g = _geometry(x, a)
    n = len(g["kernel"])
    xp = _pad_const(_pad_const(x, g["lo"], g["hi"], 0), [0] * n, g["extra"], 0)
    ones = ember.ones(*x.shape[2:], dtype=x.dtype)
    # the divisor counts the explicit pads when count_include_pad, never the ceil-mode overhang
    fill = 1 if a.get("count_include_pad", 0) else 0
    mask = _pad_const(_pad_const(ones, g["lo"], g["hi"], fill), [0] * n, g["extra"], 0)
    total = sum(_windows(xp, g)[1:], _windows(xp, g)[0])
    count = sum(_windows(mask, g)[1:], _windows(mask, g)[0])
    return total / count


def _global(kind: str) -> Any:
    def run(m: ONNXModule, x: Tensor) -> Tensor:
        dims = tuple(range(2, x.ndim))
        return x.mean(dims, keepdim=True) if kind == "avg" else x.amax(dims, keepdim=True)

    return run


IMPORTS["GlobalAveragePool"] = _global("avg")
IMPORTS["GlobalMaxPool"] = _global("max")


@imports("Conv")
def _conv(m: ONNXModule, x: Tensor, w: Tensor, b: Tensor | None = None, **a: Any) -> Any:
    n = x.ndim - 2
    kernel = list(a.get("kernel_shape") or w.shape[2:])
    strides = list(a.get("strides") or [1] * n)
    dil = list(a.get("dilations") or [1] * n)
    lo, hi = pool_pads(
        list(x.shape[2:]), kernel, strides, dil, a.get("pads"), a.get("auto_pad", "NOTSET")
    )
    if lo != hi:
        x = _pad_const(x, lo, hi, 0)
        lo = [0] * n
    conv = {1: F.conv1d, 2: F.conv2d}.get(n)
    if conv is None:
        raise NotImplementedError(f"Conv over {n} spatial dimensions (ember has 1-d and 2-d)")
    return conv(
        x, w, b, stride=tuple(strides), padding=tuple(lo), dilation=tuple(dil),
        groups=a.get("group", 1),
    )  # fmt: skip


@imports("LpPool")
def _lp_pool(m: ONNXModule, x: Tensor, p: int = 2, **a: Any) -> Tensor:
    g = _geometry(x, a)
    n = len(g["kernel"])
    xp = _pad_const(_pad_const(x, g["lo"], g["hi"], 0), [0] * n, g["extra"], 0)
    wins = _windows(xp.abs() ** p, g)
    return sum(wins[1:], wins[0]) ** (1.0 / p)


@imports("GlobalLpPool")
def _global_lp_pool(m: ONNXModule, x: Tensor, p: int = 2) -> Tensor:
    dims = tuple(range(2, x.ndim))
    return (x.abs() ** p).sum(dims, keepdim=True) ** (1.0 / p)


@imports("Col2Im")
def _col2im(m: ONNXModule, x: Tensor, image_shape: Any, block_shape: Any, **a: Any) -> Tensor:
    from ._import import _ints

    img, blk = _ints(image_shape), _ints(block_shape)
    if len(img) != 2:
        raise NotImplementedError(f"Col2Im over {len(img)} spatial dims (ember folds 2-d)")
    pads = list(a.get("pads") or [0] * 4)
    if pads[:2] != pads[2:]:
        raise NotImplementedError("Col2Im with asymmetric pads")
    return F.fold(
        x, tuple(img), tuple(blk), dilation=tuple(a.get("dilations") or (1, 1)),
        padding=tuple(pads[:2]), stride=tuple(a.get("strides") or (1, 1)),
    )  # fmt: skip


@imports("MaxUnpool")
def _max_unpool(m: ONNXModule, x: Tensor, idx: Tensor, output_shape: Any = None, **a: Any):
    """Each value goes back to the flat position its ``Indices`` names; the rest are 0."""
    import ember

    from ._import import _ints

    k = list(a["kernel_shape"])
    s = list(a.get("strides") or [1] * len(k))
    p = list(a.get("pads") or [0] * (2 * len(k)))
    spatial = [(x.shape[2 + i] - 1) * s[i] + k[i] - p[i] - p[i + len(k)] for i in range(len(k))]
    shape = [x.shape[0], x.shape[1], *spatial]
    out = ember.zeros(int(np.prod(shape)), dtype=x.dtype)
    out = out.scatter(0, idx.long().reshape(-1), x.reshape(-1)).reshape(*shape)
    if output_shape is None:
        return out
    # as onnx's reference: the indices address the inferred shape, padded at the end to the
    # requested one
    want = _ints(output_shape)
    return _pad_const(out, [0] * len(k), [w - g for w, g in zip(want[2:], spatial)], 0)
