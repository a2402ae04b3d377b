"""``keras.ops``: Keras 3's backend-neutral operations (NumPy names and arguments: ``axis``,
``keepdims``, ``x1``/``x2``) on ember tensors, for custom layers written as Keras 3 code.

Inputs may be ember tensors, NumPy arrays or Python numbers/lists; they are converted as
Keras converts them (Python ints to int32, Python floats to float32, NumPy arrays keep their
dtype). Everything is written with ember ops, so gradients flow through.

Example:
    >>> from ember.keras import ops
    >>> x = ops.convert_to_tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> ops.convert_to_numpy(ops.sum(ops.relu(x), axis=1)).tolist()
    [1.0, 7.0]
"""

from __future__ import annotations

import builtins
import itertools
import math

import numpy as np

import ember
from ember._dtype import DType

__all__ = [
    "abs",
    "absolute",
    "add",
    "all",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "broadcast_to",
    "cast",
    "ceil",
    "clip",
    "concatenate",
    "convert_to_numpy",
    "convert_to_tensor",
    "cos",
    "cumsum",
    "divide",
    "dot",
    "einsum",
    "elu",
    "equal",
    "erf",
    "exp",
    "expand_dims",
    "expm1",
    "eye",
    "flip",
    "floor",
    "floor_divide",
    "full",
    "full_like",
    "gelu",
    "greater",
    "greater_equal",
    "hard_sigmoid",
    "isfinite",
    "isnan",
    "leaky_relu",
    "less",
    "less_equal",
    "log",
    "log1p",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mod",
    "moveaxis",
    "multiply",
    "ndim",
    "negative",
    "norm",
    "not_equal",
    "one_hot",
    "ones",
    "ones_like",
    "outer",
    "pad",
    "power",
    "prod",
    "reciprocal",
    "relu",
    "repeat",
    "reshape",
    "round",
    "rsqrt",
    "selu",
    "shape",
    "sigmoid",
    "sign",
    "silu",
    "sin",
    "size",
    "softmax",
    "softplus",
    "softsign",
    "sort",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "stop_gradient",
    "subtract",
    "sum",
    "swapaxes",
    "take",
    "take_along_axis",
    "tanh",
    "tile",
    "top_k",
    "transpose",
    "tril",
    "triu",
    "true_divide",
    "var",
    "where",
    "zeros",
    "zeros_like",
]


# -- conversion ------------------------------------------------------------------------------
def _dtype(dtype) -> DType | None:
    if dtype is None or isinstance(dtype, DType):
        return dtype
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"float": "float32", "int": "int32", "bool": "bool"}.get(name, name)
    dt = getattr(ember, name.replace("torch.", ""), None)
    if dt is None or not hasattr(dt, "np"):
        raise TypeError(f"keras.ops: unknown dtype {dtype!r}")
    return dt


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None) -> ember.Tensor:
    """An ember tensor of ``x`` (Python ints become int32, floats float32, as in Keras).

    Example:
        >>> from ember.keras import ops
        >>> ops.convert_to_tensor([1, 2]).dtype, ops.convert_to_tensor(1.5).dtype
        (ember.int32, ember.float32)
    """
    if sparse or ragged:
        raise NotImplementedError(
            "keras.ops.convert_to_tensor: sparse and ragged are not supported"
        )
    dt = _dtype(dtype)
    if isinstance(x, ember.Tensor):
        return x if dt is None or x.dtype == dt else x.to(dt)
    if isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
    else:
        a = np.asarray(x)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        elif a.dtype == np.int64:
            a = a.astype(np.int32)
    t = ember.tensor(np.ascontiguousarray(a))
    return t if dt is None else t.to(dt)


def convert_to_numpy(x) -> np.ndarray:
    """A NumPy array of ``x`` (detached).

    Example:
        >>> from ember.keras import ops
        >>> ops.convert_to_numpy(ops.ones((2,))).tolist()
        [1.0, 1.0]
    """
    if isinstance(x, ember.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def cast(x, dtype) -> ember.Tensor:
    """``x`` converted to ``dtype`` (a name such as ``'int32'`` or an ember dtype).

    Example:
        >>> from ember.keras import ops
        >>> ops.cast([1.7, -2.2], 'int32').tolist()
        [1, -2]
    """
    return convert_to_tensor(x).to(_dtype(dtype))


def shape(x) -> tuple:
    """The static shape, a tuple of ints.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.zeros((2, 3)))
        (2, 3)
    """
    return tuple(int(d) for d in convert_to_tensor(x).shape)


_t = convert_to_tensor


def _float(x) -> ember.Tensor:
    x = _t(x)
    return x if x.is_floating_point() else x.to(ember.float32)


def _axes(axis) -> int | tuple | None:
    if axis is None:
        return None
    return tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)


def _keep_int(out, x) -> ember.Tensor:
    """Integer reductions keep the input's integer dtype (booleans become int32), as Keras."""
    if x.dtype == ember.bool:
        return out.to(ember.int32)
    if not x.is_floating_point() and out.dtype != x.dtype:
        return out.to(x.dtype)
    return out


# -- activations -------------------------------------------------------------------------------
def relu(x) -> ember.Tensor:
    """``max(x, 0)``.

    Example:
        >>> from ember.keras import ops
        >>> ops.relu([-1.0, 2.0]).tolist()
        [0.0, 2.0]
    """
    return ember.relu(_t(x))


def sigmoid(x) -> ember.Tensor:
    """``1 / (1 + exp(-x))``.

    Example:
        >>> from ember.keras import ops
        >>> ops.sigmoid([0.0]).tolist()
        [0.5]
    """
    return ember.sigmoid(_float(x))


def tanh(x) -> ember.Tensor:
    """Hyperbolic tangent.

    Example:
        >>> from ember.keras import ops
        >>> ops.tanh([0.0]).tolist()
        [0.0]
    """
    return ember.tanh(_float(x))


def silu(x) -> ember.Tensor:
    """``x * sigmoid(x)``.

    Example:
        >>> from ember.keras import ops
        >>> ops.silu([0.0]).tolist()
        [0.0]
    """
    return ember.silu(_float(x))


def gelu(x, approximate=True) -> ember.Tensor:
    """GELU; Keras' default is the tanh approximation.

    Example:
        >>> from ember.keras import ops
        >>> f"{ops.gelu([1.0]).item():.4f}"
        '0.8412'
    """
    return ember.gelu(_float(x), approximate="tanh" if approximate else "none")


def softmax(x, axis=-1) -> ember.Tensor:
    """Softmax over ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.softmax([[0.0, 0.0]]).tolist()
        [[0.5, 0.5]]
    """
    return ember.softmax(_float(x), dim=int(axis))


def log_softmax(x, axis=-1) -> ember.Tensor:
    """Log-softmax over ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> f"{ops.log_softmax([[0.0, 0.0]])[0, 0].item():.4f}"
        '-0.6931'
    """
    return ember.log_softmax(_float(x), dim=int(axis))


# -- elementwise -----------------------------------------------------------------------------
def exp(x) -> ember.Tensor:
    """Elementwise ``e**x`` (integers become float32).

    Example:
        >>> from ember.keras import ops
        >>> ops.exp([0, 0]).tolist()
        [1.0, 1.0]
    """
    return ember.exp(_float(x))


def log(x) -> ember.Tensor:
    """Natural logarithm.

    Example:
        >>> from ember.keras import ops
        >>> ops.log([1.0]).tolist()
        [0.0]
    """
    return ember.log(_float(x))


def sqrt(x) -> ember.Tensor:
    """Square root (integers become float32).

    Example:
        >>> from ember.keras import ops
        >>> ops.sqrt([4, 9]).tolist()
        [2.0, 3.0]
    """
    return ember.sqrt(_float(x))


def erf(x) -> ember.Tensor:
    """The error function.

    Example:
        >>> from ember.keras import ops
        >>> ops.erf([0.0]).tolist()
        [0.0]
    """
    return ember.erf(_float(x))


def square(x) -> ember.Tensor:
    """``x * x`` (keeps integer dtypes).

    Example:
        >>> from ember.keras import ops
        >>> ops.square([-3, 2]).tolist()
        [9, 4]
    """
    x = _t(x)
    return x * x


def abs(x) -> ember.Tensor:
    """Absolute value (``absolute`` is the same op).

    Example:
        >>> from ember.keras import ops
        >>> ops.abs([-3, 2]).tolist()
        [3, 2]
    """
    return _t(x).abs()


absolute = abs


def clip(x, x_min, x_max) -> ember.Tensor:
    """``x`` limited to ``[x_min, x_max]``.

    Example:
        >>> from ember.keras import ops
        >>> ops.clip([-2.0, 0.5, 3.0], -1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    return ember.clamp(_t(x), min=x_min, max=x_max)


def maximum(x1, x2) -> ember.Tensor:
    """Elementwise maximum (broadcasting).

    Example:
        >>> from ember.keras import ops
        >>> ops.maximum([1.0, 5.0], 3.0).tolist()
        [3.0, 5.0]
    """
    return ember.maximum(_t(x1), _t(x2))


def minimum(x1, x2) -> ember.Tensor:
    """Elementwise minimum (broadcasting).

    Example:
        >>> from ember.keras import ops
        >>> ops.minimum([1.0, 5.0], 3.0).tolist()
        [1.0, 3.0]
    """
    return ember.minimum(_t(x1), _t(x2))


def where(condition, x1=None, x2=None) -> ember.Tensor | tuple:
    """``x1`` where ``condition`` else ``x2``; with neither, the indices of the true entries
    (a tuple of index tensors per axis, as NumPy).

    Example:
        >>> from ember.keras import ops
        >>> ops.where([True, False], [1.0, 2.0], [9.0, 9.0]).tolist()
        [1.0, 9.0]
    """
    c = _t(condition)
    if x1 is None and x2 is None:
        return tuple(ember.nonzero(c, as_tuple=True))
    if x1 is None or x2 is None:
        raise ValueError("keras.ops.where: give both x1 and x2, or neither")
    return ember.where(c.bool(), _t(x1), _t(x2))


# -- reductions ------------------------------------------------------------------------------
def mean(x, axis=None, keepdims=False) -> ember.Tensor:
    """Mean over ``axis`` (all axes when None); integers become float32.

    Example:
        >>> from ember.keras import ops
        >>> ops.mean([[1, 2], [3, 4]], axis=0).tolist()
        [2.0, 3.0]
    """
    return ember.mean(_float(x), dim=_axes(axis), keepdim=keepdims)


def sum(x, axis=None, keepdims=False) -> ember.Tensor:
    """Sum over ``axis`` (all axes when None); integer dtypes are kept.

    Example:
        >>> from ember.keras import ops
        >>> ops.sum([[1, 2], [3, 4]], axis=1).tolist()
        [3, 7]
    """
    x = _t(x)
    return _keep_int(ember.sum(x, dim=_axes(axis), keepdim=keepdims), x)


def var(x, axis=None, keepdims=False) -> ember.Tensor:
    """Population variance (``ddof=0``, as NumPy and Keras).

    Example:
        >>> from ember.keras import ops
        >>> ops.var([1.0, 2.0, 3.0, 4.0]).item()
        1.25
    """
    return ember.var(_float(x), dim=_axes(axis), keepdim=keepdims, correction=0)


def std(x, axis=None, keepdims=False) -> ember.Tensor:
    """Population standard deviation (``ddof=0``).

    Example:
        >>> from ember.keras import ops
        >>> ops.std([1.0, 3.0]).item()
        1.0
    """
    return ember.std(_float(x), dim=_axes(axis), keepdim=keepdims, correction=0)


def _extreme(fn, x, axis, keepdims, initial, pick) -> ember.Tensor:
    x = _t(x)
    if x.numel() == 0 and initial is None:
        raise ValueError("keras.ops.max/min: empty input needs initial=")
    out = fn(x, dim=_axes(axis), keepdim=keepdims)
    if initial is not None:
        out = pick(out, ember.full_like(out, initial))
    return out


def max(x, axis=None, keepdims=False, initial=None) -> ember.Tensor:
    """Maximum over ``axis``; ``initial`` is a lower bound, as in NumPy.

    Example:
        >>> from ember.keras import ops
        >>> ops.max([[1.0, 5.0], [3.0, 2.0]], axis=1).tolist()
        [5.0, 3.0]
    """
    return _extreme(ember.amax, x, axis, keepdims, initial, ember.maximum)


def min(x, axis=None, keepdims=False, initial=None) -> ember.Tensor:
    """Minimum over ``axis``; ``initial`` is an upper bound, as in NumPy.

    Example:
        >>> from ember.keras import ops
        >>> ops.min([[1.0, 5.0], [3.0, 2.0]], axis=0).tolist()
        [1.0, 2.0]
    """
    return _extreme(ember.amin, x, axis, keepdims, initial, ember.minimum)


def _arg(fn, x, axis, keepdims) -> ember.Tensor:
    x = _t(x)
    if axis is None:
        out = fn(x.reshape(-1), dim=0)
        if keepdims:
            out = out.reshape((1,) * x.ndim)
    else:
        out = fn(x, dim=int(axis), keepdim=keepdims)
    return out.to(ember.int32)


def argmax(x, axis=None, keepdims=False) -> ember.Tensor:
    """Indices of the maxima (int32, as Keras); ``axis=None`` looks at the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.argmax([[1.0, 5.0], [3.0, 2.0]], axis=1).tolist()
        [1, 0]
    """
    return _arg(ember.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False) -> ember.Tensor:
    """Indices of the minima (int32); ``axis=None`` looks at the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.argmin([3.0, 1.0, 2.0]).item()
        1
    """
    return _arg(ember.argmin, x, axis, keepdims)


def cumsum(x, axis=None, dtype=None) -> ember.Tensor:
    """Cumulative sum; ``axis=None`` sums the flattened input.

    Example:
        >>> from ember.keras import ops
        >>> ops.cumsum([[1, 2], [3, 4]]).tolist()
        [1, 3, 6, 10]
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    out = _keep_int(ember.cumsum(x, dim=int(axis)), x)
    return out if dtype is None else out.to(_dtype(dtype))


def norm(x, ord=None, axis=None, keepdims=False) -> ember.Tensor:
    """Vector norms (``axis`` an int, or ``None`` on a vector) and matrix norms (``axis`` a
    pair, or ``None`` on a matrix): ``ord`` as ``numpy.linalg.norm``; ``None`` is the 2-norm
    of vectors and the Frobenius norm of matrices.

    Example:
        >>> from ember.keras import ops
        >>> ops.norm([3.0, 4.0]).item()
        5.0
    """
    x = _float(x)
    if axis is None:
        axis = tuple(range(x.ndim)) if x.ndim <= 2 else None
        if axis is None:
            return ember.sqrt((x * x).sum()) if ord is None else _bad_norm(ord, x.ndim)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    axes = tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    if len(axes) == 1:
        a = x.abs()
        if ord is None or ord == 2:
            return ember.sqrt((x * x).sum(dim=axes[0], keepdim=keepdims))
        if ord == math.inf or ord == "inf":
            return ember.amax(a, dim=axes[0], keepdim=keepdims)
        if ord == -math.inf:
            return ember.amin(a, dim=axes[0], keepdim=keepdims)
        if ord == 0:
            return (a != 0).to(x.dtype).sum(dim=axes[0], keepdim=keepdims)
        if isinstance(ord, (int, float)):
            return (a**ord).sum(dim=axes[0], keepdim=keepdims) ** (1.0 / ord)
        return _bad_norm(ord, 1)
    if len(axes) == 2:
        r, c = axes
        a = x.abs()
        if ord is None or ord == "fro":
            return ember.sqrt((x * x).sum(dim=axes, keepdim=keepdims))
        if ord in (1, -1, math.inf, -math.inf):
            red, keep = (r, c) if ord in (1, -1) else (c, r)
            s = a.sum(dim=red, keepdim=True)
            pick = ember.amax if ord in (1, math.inf) else ember.amin
            out = pick(s, dim=keep, keepdim=True)
            return out if keepdims else out.squeeze(builtins.max(r, c)).squeeze(builtins.min(r, c))
        return _bad_norm(ord, 2)
    raise ValueError(f"keras.ops.norm: axis must be an int or a pair, got {axis!r}")


def _bad_norm(ord, n):
    raise NotImplementedError(f"keras.ops.norm: ord={ord!r} is not supported for {n}-D norms")


# -- linear algebra ----------------------------------------------------------------------------
def matmul(x1, x2) -> ember.Tensor:
    """Matrix product with batch broadcasting (``@``).

    Example:
        >>> from ember.keras import ops
        >>> ops.matmul([[1.0, 2.0]], [[3.0], [4.0]]).tolist()
        [[11.0]]
    """
    return ember.matmul(_t(x1), _t(x2))


def dot(x1, x2) -> ember.Tensor:
    """Products of scalars, else ``matmul`` (the inner product of vectors, matrix products,
    batched products for N-D inputs), as Keras 3 computes it on its torch backend.

    Example:
        >>> from ember.keras import ops
        >>> ops.dot([1.0, 2.0], [3.0, 4.0]).item()
        11.0
    """
    a, b = _t(x1), _t(x2)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return ember.matmul(a, b)


def einsum(subscripts, *operands, **kwargs) -> ember.Tensor:
    """Einstein summation over ``operands``.

    Example:
        >>> from ember.keras import ops
        >>> ops.einsum('i,i->', [1.0, 2.0], [3.0, 4.0]).item()
        11.0
    """
    if kwargs:
        raise TypeError(f"keras.ops.einsum: unexpected arguments {sorted(kwargs)}")
    return ember.einsum(subscripts, *[_t(o) for o in operands])


# -- shapes ------------------------------------------------------------------------------------
def reshape(x, newshape) -> ember.Tensor:
    """``x`` with shape ``newshape`` (one entry may be -1).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.reshape(ops.zeros((2, 3)), (3, -1)))
        (3, 2)
    """
    newshape = (newshape,) if isinstance(newshape, int) else tuple(int(d) for d in newshape)
    return _t(x).reshape(newshape)


def transpose(x, axes=None) -> ember.Tensor:
    """Permute axes (reversed when ``axes`` is None, as NumPy).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.transpose(ops.zeros((2, 3, 4))))
        (4, 3, 2)
    """
    x = _t(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes)
    return x.permute(*axes)


def expand_dims(x, axis) -> ember.Tensor:
    """Insert size-1 axes at ``axis`` (an int or a tuple), positions in the output.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.expand_dims(ops.zeros((2, 3)), (0, -1)))
        (1, 2, 3, 1)
    """
    x = _t(x)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    n = x.ndim + len(axes)
    for a in sorted(int(a) % n for a in axes):
        x = x.unsqueeze(a)
    return x


def squeeze(x, axis=None) -> ember.Tensor:
    """Remove size-1 axes (all of them, or those in ``axis``; another size raises).

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.squeeze(ops.zeros((1, 3, 1)), axis=0))
        (3, 1)
    """
    x = _t(x)
    if axis is None:
        return x.squeeze()
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    axes = sorted((int(a) % x.ndim for a in axes), reverse=True)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(
                f"keras.ops.squeeze: axis {a} of shape {tuple(x.shape)} has size {x.shape[a]}"
            )
        x = x.squeeze(a)
    return x


def stack(x, axis=0) -> ember.Tensor:
    """Stack tensors along a new ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.shape(ops.stack([ops.zeros((2,)), ops.ones((2,))], axis=1))
        (2, 2)
    """
    return ember.stack([_t(v) for v in x], dim=int(axis))


def concatenate(xs, axis=0) -> ember.Tensor:
    """Join tensors along an existing ``axis``.

    Example:
        >>> from ember.keras import ops
        >>> ops.concatenate([[1, 2], [3]]).tolist()
        [1, 2, 3]
    """
    return ember.cat([_t(v) for v in xs], dim=int(axis))


def split(x, indices_or_sections, axis=0) -> list:
    """NumPy's ``split``: an int gives that many equal parts (it must divide the axis); a
    list gives the indices where the parts start.

    Example:
        >>> from ember.keras import ops
        >>> [t.tolist() for t in ops.split([1, 2, 3, 4, 5], [2, 3])]
        [[1, 2], [3], [4, 5]]
    """
    x = _t(x)
    n = x.shape[int(axis)]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k < 1 or n % k:
            raise ValueError(
                f"keras.ops.split: {k} equal sections do not divide an axis of size {n}"
            )
        return list(ember.split(x, n // k, dim=int(axis)))
    bounds = [0] + [builtins.min(builtins.max(int(i), 0), n) for i in indices_or_sections] + [n]
    sizes = [builtins.max(b - a, 0) for a, b in itertools.pairwise(bounds)]
    return list(ember.split(x, sizes, dim=int(axis)))


def take(x, indices, axis=None) -> ember.Tensor:
    """Entries at ``indices`` along ``axis`` (of the flattened input when None).

    Example:
        >>> from ember.keras import ops
        >>> ops.take([[1, 2], [3, 4]], [3, 0]).tolist()
        [4, 1]
    """
    x, idx = _t(x), _t(indices).long()
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = int(axis) % x.ndim
    n = x.shape[axis]
    idx = ember.where(idx < 0, idx + n, idx)
    out = ember.index_select(x, axis, idx.reshape(-1))
    return out.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1 :]))


def take_along_axis(x, indices, axis=None) -> ember.Tensor:
    """Entries of ``x`` at ``indices`` along ``axis`` (``numpy.take_along_axis``).

    Example:
        >>> from ember.keras import ops
        >>> ops.take_along_axis([[1.0, 2.0], [3.0, 4.0]], [[1], [0]], axis=1).tolist()
        [[2.0], [3.0]]
    """
    x, idx = _t(x), _t(indices).long()
    if axis is None:
        return ember.take_along_dim(x.reshape(-1), idx.reshape(-1), dim=0)
    return ember.take_along_dim(x, idx, dim=int(axis))


def top_k(x, k, sorted=True) -> tuple:
    """The ``k`` largest entries of the last axis and their indices (``(values, indices)``).

    Example:
        >>> from ember.keras import ops
        >>> [t.tolist() for t in ops.top_k([1.0, 9.0, 5.0], 2)]
        [[9.0, 5.0], [1, 2]]
    """
    values, indices = ember.topk(_t(x), int(k), dim=-1, largest=True, sorted=sorted)
    return values, indices.to(ember.int32)


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False) -> ember.Tensor:
    """One-hot rows (float32 by default) of integer labels; a label outside
    ``[0, num_classes)`` is a ``ValueError`` (Keras' torch backend raises too).

    Example:
        >>> from ember.keras import ops
        >>> ops.one_hot([0, 2], 3).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    if sparse:
        raise NotImplementedError("keras.ops.one_hot: sparse=True is not supported")
    from .losses import check_sparse_labels

    x = _t(x)
    check_sparse_labels(x, int(num_classes), "keras.ops.one_hot")
    x = x.long()
    classes = ember.arange(int(num_classes))
    out = (x.unsqueeze(-1) == classes).to(_dtype(dtype) or ember.float32)
    if axis != -1:
        out = ember.movedim(out, -1, int(axis))
    return out


# -- creation ----------------------------------------------------------------------------------
def _shape_arg(shape) -> tuple:
    return (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)


def ones(shape, dtype=None) -> ember.Tensor:
    """A tensor of ones (float32 by default).

    Example:
        >>> from ember.keras import ops
        >>> ops.ones((2,)).tolist()
        [1.0, 1.0]
    """
    return ember.ones(*_shape_arg(shape), dtype=_dtype(dtype) or ember.float32)


def zeros(shape, dtype=None) -> ember.Tensor:
    """A tensor of zeros (float32 by default).

    Example:
        >>> from ember.keras import ops
        >>> ops.zeros((2,), dtype='int32').tolist()
        [0, 0]
    """
    return ember.zeros(*_shape_arg(shape), dtype=_dtype(dtype) or ember.float32)


def ones_like(x, dtype=None) -> ember.Tensor:
    """Ones of the shape (and dtype, unless given) of ``x``.

    Example:
        >>> from ember.keras import ops
        >>> ops.ones_like([1, 2]).tolist()
        [1, 1]
    """
    return ember.ones_like(_t(x), dtype=_dtype(dtype))


def zeros_like(x, dtype=None) -> ember.Tensor:
    """Zeros of the shape (and dtype, unless given) of ``x``.

    Example:
        >>> from ember.keras import ops
        >>> ops.zeros_like([1.5]).tolist()
        [0.0]
    """
    return ember.zeros_like(_t(x), dtype=_dtype(dtype))


def arange(start, stop=None, step=None, dtype=None) -> ember.Tensor:
    """``[start, stop)`` by ``step``: int32 for integer arguments, float32 otherwise.

    Example:
        >>> from ember.keras import ops
        >>> ops.arange(1, 7, 2).tolist()
        [1, 3, 5]
    """
    step = 1 if step is None else step
    args = (start, stop, step)
    is_int = builtins.all(isinstance(a, (int, np.integer)) for a in args if a is not None)
    dt = _dtype(dtype) or (ember.int32 if is_int else ember.float32)
    if stop is None:
        start, stop = 0, start
    return ember.arange(start, stop, step).to(dt)


# -- more elementwise, comparison and shape ops --------------------------------------------------
def add(x1, x2) -> ember.Tensor:
    """``x1 + x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.add([1, 2], 3).tolist()
        [4, 5]
    """
    return _t(x1) + _t(x2)


def subtract(x1, x2) -> ember.Tensor:
    """``x1 - x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.subtract([1.0, 2.0], 0.5).tolist()
        [0.5, 1.5]
    """
    return _t(x1) - _t(x2)


def multiply(x1, x2) -> ember.Tensor:
    """``x1 * x2`` (broadcasting).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.multiply([1, 2], 3).tolist()
        [3, 6]
    """
    return _t(x1) * _t(x2)


def divide(x1, x2) -> ember.Tensor:
    """True division (integers give float32).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.divide([1, 3], ops.convert_to_tensor(2)).tolist()
        [0.5, 1.5]
    """
    return _float(x1) / _t(x2)


true_divide = divide


def floor_divide(x1, x2) -> ember.Tensor:
    """``x1 // x2``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.floor_divide([7, -7], ops.convert_to_tensor(2)).tolist()
        [3, -4]
    """
    return ember.floor_divide(_t(x1), _t(x2))


def mod(x1, x2) -> ember.Tensor:
    """Remainder with the sign of the divisor, as NumPy.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.mod([7, -7], ops.convert_to_tensor(3)).tolist()
        [1, 2]
    """
    return ember.remainder(_t(x1), _t(x2))


def power(x1, x2) -> ember.Tensor:
    """``x1 ** x2``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.power([2.0, 3.0], 2.0).tolist()
        [4.0, 9.0]
    """
    return ember.pow(_t(x1), _t(x2))


def negative(x) -> ember.Tensor:
    """``-x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.negative([1, -2]).tolist()
        [-1, 2]
    """
    return -_t(x)


def sign(x) -> ember.Tensor:
    """-1, 0 or 1 by the sign of each entry.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sign([-2.0, 0.0, 3.0]).tolist()
        [-1.0, 0.0, 1.0]
    """
    return ember.sign(_t(x))


def floor(x) -> ember.Tensor:
    """Round down.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.floor([1.5, -1.5]).tolist()
        [1.0, -2.0]
    """
    return ember.floor(_float(x))


def ceil(x) -> ember.Tensor:
    """Round up.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.ceil([1.5, -1.5]).tolist()
        [2.0, -1.0]
    """
    return ember.ceil(_float(x))


def round(x, decimals=0) -> ember.Tensor:
    """Round half to even, as NumPy.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.round([0.5, 1.5, 2.25], decimals=0).tolist()
        [0.0, 2.0, 2.0]
    """
    return ember.round(_t(x), decimals=int(decimals))


def sin(x) -> ember.Tensor:
    """Sine.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sin([0.0]).tolist()
        [0.0]
    """
    return ember.sin(_float(x))


def cos(x) -> ember.Tensor:
    """Cosine.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.cos([0.0]).tolist()
        [1.0]
    """
    return ember.cos(_float(x))


def log1p(x) -> ember.Tensor:
    """``log(1 + x)``, accurate for small ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.log1p([0.0]).tolist()
        [0.0]
    """
    return ember.log1p(_float(x))


def expm1(x) -> ember.Tensor:
    """``exp(x) - 1``, accurate for small ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.expm1([0.0]).tolist()
        [0.0]
    """
    return ember.expm1(_float(x))


def rsqrt(x) -> ember.Tensor:
    """``1 / sqrt(x)``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.rsqrt([4.0]).tolist()
        [0.5]
    """
    return ember.rsqrt(_float(x))


def reciprocal(x) -> ember.Tensor:
    """``1 / x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.reciprocal([4.0]).tolist()
        [0.25]
    """
    return ember.reciprocal(_float(x))


def softplus(x) -> ember.Tensor:
    """``log(1 + exp(x))``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> f"{ops.softplus([0.0]).item():.4f}"
        '0.6931'
    """
    return ember.softplus(_float(x))


def softsign(x) -> ember.Tensor:
    """``x / (1 + |x|)``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.softsign([1.0, -3.0]).tolist()
        [0.5, -0.75]
    """
    x = _float(x)
    return x / (1.0 + x.abs())


def leaky_relu(x, negative_slope=0.2) -> ember.Tensor:
    """``x`` for positive entries, ``negative_slope * x`` otherwise.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.leaky_relu([-1.0, 2.0]).tolist()
        [-0.20000000298023224, 2.0]
    """
    return ember.leaky_relu(_float(x), float(negative_slope))


def elu(x, alpha=1.0) -> ember.Tensor:
    """``x`` for positive entries, ``alpha * (exp(x) - 1)`` otherwise.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.elu([0.0, 2.0]).tolist()
        [0.0, 2.0]
    """
    return ember.elu(_float(x), float(alpha))


def selu(x) -> ember.Tensor:
    """Scaled ELU (self-normalizing).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.selu([0.0]).tolist()
        [0.0]
    """
    from ember.nn import functional as F

    return F.selu(_float(x))


def hard_sigmoid(x) -> ember.Tensor:
    """``relu6(x + 3) / 6``, Keras 3's hard sigmoid.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.hard_sigmoid([-4.0, 0.0, 4.0]).tolist()
        [0.0, 0.5, 1.0]
    """
    return ember.clamp(_float(x) / 6.0 + 0.5, min=0.0, max=1.0)


def equal(x1, x2) -> ember.Tensor:
    """``x1 == x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.equal([1, 2], ops.convert_to_tensor(2)).tolist()
        [False, True]
    """
    return ember.eq(_t(x1), _t(x2))


def not_equal(x1, x2) -> ember.Tensor:
    """``x1 != x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.not_equal([1, 2], ops.convert_to_tensor(2)).tolist()
        [True, False]
    """
    return ember.ne(_t(x1), _t(x2))


def greater(x1, x2) -> ember.Tensor:
    """``x1 > x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.greater([1.0, 3.0], 2.0).tolist()
        [False, True]
    """
    return ember.gt(_t(x1), _t(x2))


def greater_equal(x1, x2) -> ember.Tensor:
    """``x1 >= x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.greater_equal([1.0, 2.0], 2.0).tolist()
        [False, True]
    """
    return ember.ge(_t(x1), _t(x2))


def less(x1, x2) -> ember.Tensor:
    """``x1 < x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.less([1.0, 3.0], 2.0).tolist()
        [True, False]
    """
    return ember.lt(_t(x1), _t(x2))


def less_equal(x1, x2) -> ember.Tensor:
    """``x1 <= x2`` (boolean).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.less_equal([1.0, 3.0], 1.0).tolist()
        [True, False]
    """
    return ember.le(_t(x1), _t(x2))


def logical_and(x1, x2) -> ember.Tensor:
    """Elementwise AND of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_and([True, True], [True, False]).tolist()
        [True, False]
    """
    return ember.logical_and(_t(x1).bool(), _t(x2).bool())


def logical_or(x1, x2) -> ember.Tensor:
    """Elementwise OR of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_or([True, False], [False, False]).tolist()
        [True, False]
    """
    return ember.logical_or(_t(x1).bool(), _t(x2).bool())


def logical_not(x) -> ember.Tensor:
    """Elementwise NOT of truth values.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.logical_not([True, False]).tolist()
        [False, True]
    """
    return ember.logical_not(_t(x).bool())


def isnan(x) -> ember.Tensor:
    """True where ``x`` is NaN.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.isnan([1.0, float('nan')]).tolist()
        [False, True]
    """
    return ember.isnan(_t(x))


def isfinite(x) -> ember.Tensor:
    """True where ``x`` is neither infinite nor NaN.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.isfinite([1.0, float('inf')]).tolist()
        [True, False]
    """
    return ember.isfinite(_t(x))


def any(x, axis=None, keepdims=False) -> ember.Tensor:
    """Whether any entry is true, over ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.any([[True, False], [False, False]], axis=1).tolist()
        [True, False]
    """
    return ember.any(_t(x).bool(), dim=_axes(axis), keepdim=keepdims)


def all(x, axis=None, keepdims=False) -> ember.Tensor:
    """Whether every entry is true, over ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.all([[True, False], [True, True]], axis=1).tolist()
        [False, True]
    """
    return ember.all(_t(x).bool(), dim=_axes(axis), keepdim=keepdims)


def prod(x, axis=None, keepdims=False, dtype=None) -> ember.Tensor:
    """Product over ``axis`` (all axes when None).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.prod([[1, 2], [3, 4]], axis=1).tolist()
        [2, 12]
    """
    x = _t(x)
    out = _keep_int(ember.prod(x, dim=_axes(axis), keepdim=keepdims), x)
    return out if dtype is None else out.to(_dtype(dtype))


def logsumexp(x, axis=None, keepdims=False) -> ember.Tensor:
    """``log(sum(exp(x)))`` over ``axis``, computed stably.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> f"{ops.logsumexp([0.0, 0.0]).item():.4f}"
        '0.6931'
    """
    x = _float(x)
    if axis is None:
        out = ember.logsumexp(x.reshape(-1), 0)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return ember.logsumexp(x, _axes(axis), keepdim=keepdims)


def tile(x, repeats) -> ember.Tensor:
    """``x`` repeated ``repeats`` times along each axis.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.tile([1, 2], 2).tolist()
        [1, 2, 1, 2]
    """
    repeats = (int(repeats),) if isinstance(repeats, int) else tuple(int(r) for r in repeats)
    return ember.tile(_t(x), repeats)


def repeat(x, repeats, axis=None) -> ember.Tensor:
    """Repeat each entry ``repeats`` times along ``axis`` (of the flattened input when
    None), as ``numpy.repeat``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.repeat([1, 2], 2).tolist()
        [1, 1, 2, 2]
    """
    x = _t(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    if not isinstance(repeats, int):
        repeats = _t(repeats).long()
    return ember.repeat_interleave(x, repeats, dim=int(axis))


def flip(x, axis=None) -> ember.Tensor:
    """Reverse the order along ``axis`` (every axis when None).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.flip([[1, 2], [3, 4]], axis=1).tolist()
        [[2, 1], [4, 3]]
    """
    x = _t(x)
    axes = range(x.ndim) if axis is None else (axis if isinstance(axis, (list, tuple)) else (axis,))
    return ember.flip(x, *[int(a) for a in axes])


def sort(x, axis=-1) -> ember.Tensor:
    """Sorted along ``axis``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.sort([3, 1, 2]).tolist()
        [1, 2, 3]
    """
    return ember.sort(_t(x), dim=int(axis))[0]


def argsort(x, axis=-1) -> ember.Tensor:
    """Indices that sort ``x`` along ``axis`` (stable, int32).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.argsort([3.0, 1.0, 2.0]).tolist()
        [1, 2, 0]
    """
    return ember.argsort(_t(x), dim=int(axis), stable=True).to(ember.int32)


def full(shape, fill_value, dtype=None) -> ember.Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (float32 by default).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.full((2,), 7).tolist()
        [7.0, 7.0]
    """
    dt = _dtype(dtype) or ember.float32
    return ember.full(_shape_arg(shape), fill_value, dtype=dt)


def full_like(x, fill_value, dtype=None) -> ember.Tensor:
    """``fill_value`` in the shape (and dtype, unless given) of ``x``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.full_like([1.0, 2.0], 0.5).tolist()
        [0.5, 0.5]
    """
    return ember.full_like(_t(x), fill_value, dtype=_dtype(dtype))


def eye(N, M=None, k=0, dtype=None) -> ember.Tensor:
    """An ``N x M`` matrix with ones on the ``k``-th diagonal (float32 by default).

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.eye(2, 3, k=1).tolist()
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    m = N if M is None else M
    out = ember.ones(int(N), int(m)).triu(int(k)).tril(int(k))
    return out.to(_dtype(dtype) or ember.float32)


def tril(x, k=0) -> ember.Tensor:
    """The lower triangle (on and below diagonal ``k``), zeros above.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.tril([[1, 2], [3, 4]]).tolist()
        [[1, 0], [3, 4]]
    """
    return ember.tril(_t(x), int(k))


def triu(x, k=0) -> ember.Tensor:
    """The upper triangle (on and above diagonal ``k``), zeros below.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.triu([[1, 2], [3, 4]]).tolist()
        [[1, 2], [0, 4]]
    """
    return ember.triu(_t(x), int(k))


def broadcast_to(x, shape) -> ember.Tensor:
    """``x`` broadcast to ``shape``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.broadcast_to([1, 2], (2, 2)).tolist()
        [[1, 2], [1, 2]]
    """
    return ember.broadcast_to(_t(x), _shape_arg(shape))


def moveaxis(x, source, destination) -> ember.Tensor:
    """Move axis ``source`` to position ``destination``.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.shape(ops.moveaxis(ops.zeros((2, 3, 4)), 0, -1))
        (3, 4, 2)
    """
    return ember.movedim(_t(x), source, destination)


def swapaxes(x, axis1, axis2) -> ember.Tensor:
    """Exchange two axes.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.shape(ops.swapaxes(ops.zeros((2, 3, 4)), 0, 2))
        (4, 3, 2)
    """
    return ember.swapaxes(_t(x), int(axis1), int(axis2))


def outer(x1, x2) -> ember.Tensor:
    """The outer product of the flattened inputs.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.outer([1, 2], [3, 4]).tolist()
        [[3, 4], [6, 8]]
    """
    return ember.outer(_t(x1).reshape(-1), _t(x2).reshape(-1))


def stop_gradient(variable) -> ember.Tensor:
    """The value of ``variable`` without its gradient.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.stop_gradient(ember.ones(2, requires_grad=True)).requires_grad
        False
    """
    return _t(variable).detach()


def ndim(x) -> int:
    """The number of axes.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.ndim(ops.zeros((2, 3)))
        2
    """
    return _t(x).ndim


def size(x) -> int:
    """The number of entries.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.size(ops.zeros((2, 3)))
        6
    """
    return int(_t(x).numel())


def pad(x, pad_width, mode="constant", constant_values=None) -> ember.Tensor:
    """Pad with ``pad_width`` ((before, after) per axis, or one pair for all), as
    ``numpy.pad``; ``mode`` is 'constant', 'reflect', 'edge' or 'wrap'.

    Example:
        >>> import ember
        >>> from ember.keras import ops
        >>> ops.pad([[1, 2]], ((1, 0), (0, 1))).tolist()
        [[0, 0, 0], [1, 2, 0]]
    """
    x = _t(x)
    pw = pad_width
    if isinstance(pw, int):
        pw = [(pw, pw)] * x.ndim
    pw = [tuple(int(v) for v in p) for p in pw]
    if len(pw) == 1:
        pw = pw * x.ndim
    if len(pw) != x.ndim:
        raise ValueError(
            f"keras.ops.pad: pad_width has {len(pw)} pairs for an input of rank {x.ndim}"
        )
    if mode != "constant" and constant_values is not None:
        raise ValueError("keras.ops.pad: constant_values needs mode='constant'")
    flat = []
    for before, after in reversed(pw):
        flat += [before, after]
    from ember.nn import functional as F

    if mode == "constant":
        return F.pad(x, tuple(flat), value=constant_values or 0)
    modes = {"reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    if mode not in modes:
        raise NotImplementedError(
            f"keras.ops.pad: mode={mode!r} is not supported (constant, reflect, edge, wrap)"
        )
    return F.pad(x, tuple(flat), mode=modes[mode])
