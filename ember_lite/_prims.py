"""The primitive table: ``name -> function(*inputs, **params)`` on NumPy arrays, one entry per
primitive of ember that inference graphs use (same names, inputs, params and outputs as
ember's kernels; see ``ember/ops``). Elementwise, shape and reduction primitives are here;
the network layers (convolution, pooling, normalization, attention, recurrence) are in
:mod:`ember_lite._nn`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _nn, _quant

__all__ = ["PRIMS"]

PRIMS: dict[str, Callable[..., Any]] = {}


def _cast_like(x: np.ndarray, v: Any) -> Any:
    return x.dtype.type(v) if isinstance(v, float) and x.dtype.kind == "f" else v


# -- elementwise ---------------------------------------------------------------------------
PRIMS.update(
    add=np.add,
    sub=np.subtract,
    mul=np.multiply,
    div=np.true_divide,
    floor_divide=np.floor_divide,
    remainder=np.remainder,
    fmod=np.fmod,
    pow=np.power,
    maximum=np.maximum,
    minimum=np.minimum,
    clamp_min=np.maximum,
    clamp_max=np.minimum,
    neg=np.negative,
    abs=np.abs,
    sign=np.sign,
    exp=np.exp,
    exp2=np.exp2,
    expm1=np.expm1,
    log=np.log,
    log2=np.log2,
    log10=np.log10,
    log1p=np.log1p,
    sqrt=np.sqrt,
    sin=np.sin,
    cos=np.cos,
    tan=np.tan,
    asin=np.arcsin,
    acos=np.arccos,
    atan=np.arctan,
    sinh=np.sinh,
    cosh=np.cosh,
    tanh=np.tanh,
    floor=np.floor,
    ceil=np.ceil,
    trunc=np.trunc,
    eq=np.equal,
    ne=np.not_equal,
    lt=np.less,
    le=np.less_equal,
    gt=np.greater,
    ge=np.greater_equal,
    logical_and=np.logical_and,
    logical_or=np.logical_or,
    logical_xor=np.logical_xor,
    logical_not=np.logical_not,
    bitwise_and=np.bitwise_and,
    bitwise_or=np.bitwise_or,
    bitwise_xor=np.bitwise_xor,
    bitwise_not=np.bitwise_not,
    isnan=np.isnan,
    isinf=np.isinf,
    isfinite=np.isfinite,
    where=np.where,
)


def _one(x: np.ndarray) -> Any:
    return x.dtype.type(1) if x.dtype.kind == "f" else 1


PRIMS["rsqrt"] = lambda x: _one(x) / np.sqrt(x)
PRIMS["reciprocal"] = lambda x: _one(x) / x
PRIMS["frac"] = lambda x: x - np.trunc(x)
PRIMS["round"] = lambda x, decimals=0: np.round(x, decimals)
PRIMS["relu"] = lambda x: np.maximum(x, x.dtype.type(0))
PRIMS["sigmoid"] = lambda x: _nn.sigmoid(x)
PRIMS["silu"] = lambda x: x * _nn.sigmoid(x)
PRIMS["gelu"] = _nn.gelu
PRIMS["erf"] = _nn.erf
PRIMS["elu"] = lambda x, alpha=1.0: np.where(
    x > 0, x, np.expm1(np.minimum(x, 0)) * _cast_like(x, float(alpha))
)
PRIMS["leaky_relu"] = lambda x, negative_slope=0.01: np.where(
    x > 0, x, x * _cast_like(x, float(negative_slope))
)


def _softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    bx = x * _cast_like(x, float(beta))
    soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / _cast_like(x, float(beta))
    return np.where(bx > threshold, x, soft).astype(x.dtype, copy=False)


PRIMS["softplus"] = _softplus
PRIMS["nan_to_num"] = lambda x, nan=0.0, posinf=None, neginf=None: np.nan_to_num(
    x, nan=nan, posinf=posinf, neginf=neginf
)
PRIMS["masked_fill"] = lambda x, mask, value: np.where(mask, np.asarray(value, x.dtype), x)
PRIMS["convert"] = lambda x, dtype: np.asarray(x).astype(dtype, copy=False)
PRIMS["tril"] = lambda x, diagonal: np.where(
    np.tri(*x.shape[-2:], diagonal, dtype=bool), x, np.zeros((), x.dtype)
)
PRIMS["triu"] = lambda x, diagonal: np.where(
    np.tri(*x.shape[-2:], diagonal - 1, dtype=bool), np.zeros((), x.dtype), x
)


def _one_hot(x: np.ndarray, num_classes: int) -> np.ndarray:
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got {x}")
    return (x[..., None] == np.arange(num_classes)).astype(np.int64)


PRIMS["one_hot"] = _one_hot


# -- creation ------------------------------------------------------------------------------
PRIMS["full"] = lambda *, shape, value, dtype: np.full(shape, value, dtype=dtype)
PRIMS["constant"] = lambda *, value: value.copy()  # a copy per run, as ember's


def _arange(*, start: Any, step: Any, n: int, dtype: Any) -> np.ndarray:
    # ember.arange(x.shape[0]) inside a graph (as ember.compiler._shapes.arange_p)
    dt = np.dtype(dtype)
    wt = np.float64 if dt.kind == "f" else np.int64
    return (start + np.arange(n, dtype=wt) * step).astype(dt)


PRIMS["arange"] = _arange
PRIMS["clone"] = lambda x, memory_format="preserve_format": x.copy()


# -- shape and indexing --------------------------------------------------------------------
def _getitem(x: np.ndarray, idx: Any, basic: bool = True, shape: Any = None) -> np.ndarray:
    r = x[idx]
    if not isinstance(r, np.ndarray):  # an integer per dim: the 0-d array, not a scalar
        r = x[(idx if isinstance(idx, tuple) else (idx,)) + (Ellipsis,)]
    return r


PRIMS["getitem"] = _getitem


def _dynamic_slice(x: np.ndarray, start: Any, dim: int, length: int) -> np.ndarray:
    """``length`` entries along ``dim`` from the run-time ``start`` (ember's dynamic_slice):
    a slice that does not fit the axis raises IndexError, as in ember."""
    s = int(np.asarray(start))
    if s < 0 or s + length > x.shape[dim]:
        raise IndexError(
            f"dynamic_slice: the slice [{s}:{s + length}] (start {s}, length {length}) does "
            f"not fit dim {dim} of size {x.shape[dim]}"
        )
    return np.array(x[(slice(None),) * dim + (slice(s, s + length),)])


PRIMS["dynamic_slice"] = _dynamic_slice
PRIMS["getitem_adv"] = _getitem
PRIMS["getitem_mask"] = _getitem
PRIMS["reshape"] = lambda x, shape, in_shape=None: x.reshape(shape)
PRIMS["permute"] = lambda x, dims: x.transpose(dims)
PRIMS["expand"] = lambda x, shape, in_shape=None: np.broadcast_to(x, shape)
PRIMS["cat"] = lambda *xs, dim, sizes=None: np.concatenate(xs, axis=dim)
PRIMS["flip"] = lambda x, dims: np.flip(x, axis=dims)
PRIMS["roll"] = lambda x, shifts, dims: np.roll(x, shifts, axis=dims)
PRIMS["repeat"] = lambda x, repeats, in_shape=None: np.tile(
    x.reshape((1,) * (len(repeats) - x.ndim) + x.shape), repeats
)
PRIMS["diagonal"] = lambda x, offset, dim1, dim2, in_shape=None: np.diagonal(x, offset, dim1, dim2)
PRIMS["cumsum"] = lambda x, dim: x.copy() if x.ndim == 0 else np.cumsum(x, dim, dtype=x.dtype)
PRIMS["cumprod"] = lambda x, dim: x.copy() if x.ndim == 0 else np.cumprod(x, dim, dtype=x.dtype)
PRIMS["index_select"] = lambda x, index, dim: np.take(x, index, axis=dim)
PRIMS["gather"] = lambda x, index, dim: np.take_along_axis(x, index, axis=dim)


def _pad_constant(x: np.ndarray, pads: Any, value: Any) -> np.ndarray:
    # pads: one (before, after) pair per dim; negative widths crop
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, pads))
    widths = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
    return np.pad(x[crop], widths, constant_values=np.asarray(value, x.dtype))


PRIMS["pad_constant"] = _pad_constant


# -- reductions ----------------------------------------------------------------------------
def _axes(dims: Any) -> Any:
    return None if dims is None else tuple(dims) if isinstance(dims, (tuple, list)) else dims


PRIMS["sum"] = lambda x, dims, keepdim, shape=None: np.sum(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["mean"] = lambda x, dims, keepdim, shape=None: np.mean(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["prod"] = lambda x, dims, keepdim=False: np.prod(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["amax"] = lambda x, dims, keepdim=False: np.amax(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["amin"] = lambda x, dims, keepdim=False: np.amin(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["all"] = lambda x, dims, keepdim=False: np.all(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["any"] = lambda x, dims, keepdim=False: np.any(x, axis=_axes(dims), keepdims=keepdim)
PRIMS["var"] = lambda x, dims, keepdim, correction: np.var(
    x, axis=_axes(dims), keepdims=keepdim, ddof=correction
)


def _arg(fn: Callable) -> Callable:
    def run(x: np.ndarray, dim: Any = None, keepdim: bool = False) -> np.ndarray:
        r = fn(x, axis=dim, keepdims=keepdim)
        return np.asarray(r, np.int64)

    return run


PRIMS["argmax"] = _arg(np.argmax)
PRIMS["argmin"] = _arg(np.argmin)


def _logsumexp(x: np.ndarray, dims: Any, keepdim: bool = False) -> np.ndarray:
    ax = _axes(dims)
    m = np.amax(x, axis=ax, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    r = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axis=ax)


PRIMS["logsumexp"] = _logsumexp
PRIMS["softmax"] = _nn.softmax
PRIMS["log_softmax"] = _nn.log_softmax
PRIMS["linalg_vector_norm"] = _nn.vector_norm


# -- contractions and network layers -------------------------------------------------------
PRIMS["matmul"] = np.matmul
PRIMS["einsum"] = lambda *xs, eq: np.einsum(eq, *xs)
PRIMS.update(_nn.NN_PRIMS)
PRIMS.update(_quant.QUANT_PRIMS)
