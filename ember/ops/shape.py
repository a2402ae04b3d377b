"""Shape and layout primitives: views (reshape, permute, expand, squeeze) and copies
(cat, flip, roll, pad ...)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from ._shape_util import (
    _diag_len,
    _dims_arg,
    _shape_arg,
    _tensor_list,
    infer_reshape,
    keyword_vararg,
)
from ._util import wrap_dim

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._tensor import Tensor


# -- reshape -------------------------------------------------------------------------------
def _reshape_impl(x, shape, in_shape):
    return x.reshape(shape)


def _reshape_abstract(x, shape, in_shape=None):
    return AbstractValue(infer_reshape(x.shape, shape), x.dtype)


def _reshape_vjp(g, out, x, shape, in_shape):
    return (reshape(g, in_shape),)


# ``in_shape`` (the input's shape) is a param so the VJP needs nothing saved.
reshape_p = Primitive(
    "reshape",
    "view",
    impl=_reshape_impl,
    abstract=_reshape_abstract,
    save=SAVE_NONE,
)
defvjp(reshape_p, _reshape_vjp)


@op(method="reshape")
@keyword_vararg("shape")
def reshape(input: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """A tensor with the same data and a new shape (a view when possible)."""
    shape = infer_reshape(input._data.shape, _shape_arg(shape))
    if shape == input._data.shape:
        return input
    return bind(reshape_p, (input,), {"shape": shape, "in_shape": input._data.shape})


@op(method="view")
@keyword_vararg("size")
def view(x: Tensor, *shape: int | Sequence[int]) -> Tensor:
    """The same data seen with a new shape, or, given a dtype, the same bytes read as that
    dtype (as PyTorch: a bit reinterpretation, not a conversion; the result shares memory
    and is not differentiable).

    Example:
        >>> import ember
        >>> ember.tensor([1.0]).view(ember.int32).tolist()
        [1065353216]
        >>> ember.arange(6).view(2, 3).shape
        ember.Size([2, 3])
    """
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return _view_dtype(x, shape[0])
    return reshape(x, *shape)


def _view_dtype(x: Tensor, dtype) -> Tensor:
    from .. import _creation
    from .. import _dtype as dt
    from ._core import _state

    want = dt.as_dtype(dtype)
    if _state.tracer is not None:  # the result is made outside bind: a graph break
        _state.tracer.value_read("Tensor.view(dtype)")
    a = x._data
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    new = np.dtype(want.np)
    if new.itemsize != a.dtype.itemsize:
        what = f"view {x.dtype} as {want} (different element sizes)"
        if a.ndim == 0:
            raise ShapeError(f"view: a 0-d tensor cannot {what}")
        if a.shape[-1] != 1 and a.strides[-1] != a.dtype.itemsize:
            raise ShapeError(f"view: the last dimension must be contiguous to {what}")
        if (a.shape[-1] * a.dtype.itemsize) % new.itemsize:
            raise ShapeError(
                f"view: the last dimension ({a.shape[-1]}) must hold a whole number of "
                f"{new.itemsize}-byte elements to {what}"
            )
    try:
        return _creation.from_numpy(a.view(new))
    except ValueError as e:  # (NumPy's own layout rule)
        raise ShapeError(f"view: cannot view {x.dtype} as {want}: {e}") from None


@op(method="flatten")
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, (1,))
    s = wrap_dim(start_dim, nd, "flatten")
    e = wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shp = input._data.shape
    # (-1 keeps a traced graph valid for other batch sizes; an empty tensor cannot infer it)
    mid = -1 if 0 not in shp else math.prod(shp[s : e + 1])
    return reshape(input, shp[:s] + (mid,) + shp[e + 1 :])


@op(method="unflatten")
def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = wrap_dim(dim, input._data.ndim, "unflatten")
    shp = input._data.shape
    sizes = tuple(sizes)
    inner = infer_reshape((shp[d],), sizes, "unflatten")
    return reshape(input, shp[:d] + inner + shp[d + 1 :])


# -- permute / transpose -------------------------------------------------------------------
def _permute_impl(x, dims):
    return x.transpose(dims)


def _permute_abstract(x, dims):
    if sorted(dims) != list(range(x.ndim)):
        raise ShapeError(
            f"permute: dims {dims} are not a permutation of the {x.ndim} dims of shape {x.shape}"
        )
    return AbstractValue(tuple(x.shape[d] for d in dims), x.dtype)


permute_p = Primitive(
    "permute", "view", impl=_permute_impl, abstract=_permute_abstract, save=SAVE_NONE
)


@defvjp(permute_p)
def _permute_vjp(g, out, x, dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (permute(g, inv),)


@op(method="permute")
@keyword_vararg("dims")
def permute(input: Tensor, *dims: int | Sequence[int]) -> Tensor:
    dims = _shape_arg(dims)
    nd = input._data.ndim
    if len(dims) != nd:
        raise ShapeError(
            f"permute: number of dims {len(dims)} doesn't match the tensor's "
            f"{nd} dims (shape {tuple(input._data.shape)})"
        )
    dims = tuple(wrap_dim(d, nd, "permute") for d in dims)
    if len(set(dims)) != nd:
        raise ShapeError(f"permute: repeated dim in {dims}")
    if dims == tuple(range(nd)):
        return input
    return bind(permute_p, (input,), {"dims": dims})


@op(method=("transpose", "swapdims"))
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    nd = input._data.ndim
    if nd == 0:
        return input
    d0, d1 = wrap_dim(dim0, nd, "transpose"), wrap_dim(dim1, nd, "transpose")
    if d0 == d1:
        return input
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return bind(permute_p, (input,), {"dims": tuple(dims)})


swapdims = transpose


@op(method="swapaxes")
def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """:func:`transpose` under NumPy's parameter names, as ``torch.swapaxes``.

    Example:
        >>> import ember
        >>> tuple(ember.swapaxes(ember.zeros(2, 3), axis0=0, axis1=1).shape)
        (3, 2)
    """
    return transpose(input, axis0, axis1)


@op(method="t")
def t(input: Tensor) -> Tensor:
    if input._data.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dimensions, but got {input._data.ndim}D")
    return transpose(input, 0, 1) if input._data.ndim == 2 else input


@op(method=("movedim", "moveaxis"))
def movedim(input: Tensor, source: Tensor, destination) -> Tensor:
    nd = input._data.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [wrap_dim(s, nd, "movedim") for s in src]
    dst = [wrap_dim(d, nd, "movedim") for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, order)


# -- expand / broadcast --------------------------------------------------------------------
def _expand_impl(x, shape, in_shape):
    return np.broadcast_to(x, shape)


def _expand_abstract(x, shape, in_shape=None):
    if len(shape) < x.ndim:
        raise ShapeError(
            f"expand: the number of sizes provided ({len(shape)}) must be greater "
            f"or equal to the number of dimensions in the tensor ({x.ndim})"
        )
    lead = len(shape) - x.ndim
    for i, s in enumerate(x.shape):
        if s != 1 and s != shape[lead + i]:
            raise ShapeError(
                f"expand: the expanded size of the tensor ({shape[lead + i]}) must "
                f"match the existing size ({s}) at non-singleton dimension "
                f"{lead + i}. Target sizes: {list(shape)}. Tensor sizes: "
                f"{list(x.shape)}"
            )
    return AbstractValue(shape, x.dtype)


def _expand_vjp(g, out, x, shape, in_shape):
    from .reduction import sum_to

    return (sum_to(g, in_shape),)


expand_p = Primitive("expand", "view", impl=_expand_impl, abstract=_expand_abstract, save=SAVE_NONE)
defvjp(expand_p, _expand_vjp)


@op(method="expand")
@keyword_vararg("size")
def expand(x: Tensor, *shape: int | Sequence[int]) -> Tensor:
    shape = _shape_arg(shape)
    lead = len(shape) - x._data.ndim
    if lead < 0:
        _expand_abstract(AbstractValue(x._data.shape, None), shape)
    shape = tuple(
        x._data.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape)
    )
    if shape == x._data.shape:
        return x
    return bind(expand_p, (x,), {"shape": shape, "in_shape": x._data.shape})


@op(method="broadcast_to")
def broadcast_to(input: Tensor, size) -> Tensor:
    return expand(input, tuple(size))


@op(method="expand_as", export=False)
def expand_as(x: Tensor, other: Tensor) -> Tensor:
    return expand(x, other.shape)


@op(method="view_as", export=False)
def view_as(x: Tensor, other: Tensor) -> Tensor:
    """``Tensor.view_as``: ``x`` viewed with ``other``'s shape.

    Example:
        >>> import ember
        >>> ember.arange(6).view_as(ember.zeros(2, 3)).shape
        ember.Size([2, 3])
    """
    return reshape(x, other.shape)


@op(method="unfold", export=False)
def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: the windows of ``size`` elements, ``step`` apart, along
    ``dimension`` (which becomes the window count; the window is a new last dim).

    Example:
        >>> import ember
        >>> ember.arange(5.0).unfold(0, 2, 2).tolist()
        [[0.0, 1.0], [2.0, 3.0]]
    """
    from .indexing import index_select

    nd = input._data.ndim
    d = wrap_dim(dimension, max(nd, 1), "unfold")
    length = input._data.shape[d] if nd else 1
    if not isinstance(size, int) or size < 0 or size > length:
        raise RuntimeError(
            f"maximum size for tensor at dimension {d} is {length} but size is {size}"
        )
    if not isinstance(step, int) or step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if nd == 0:
        return reshape(input, (size,))
    n = (length - size) // step + 1
    from .._creation import tensor as _tensor

    idx = (np.arange(n)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    out = index_select(input, d, _tensor(idx))
    shp = input._data.shape
    out = reshape(out, shp[:d] + (n, size) + shp[d + 1 :])
    return movedim(out, d + 1, -1)


@op(inplace="fill_diagonal_", export=False)
def fill_diagonal(input: Tensor, fill_value: float, wrap: bool = False) -> Tensor:
    """``input`` with its main diagonal set to ``fill_value`` (``Tensor.fill_diagonal_``,
    PyTorch's rules: all dims equal beyond 2-D; ``wrap`` restarts a tall matrix's diagonal
    below the square part).

    Example:
        >>> import ember
        >>> ember.zeros(2, 3).fill_diagonal_(1.0).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    from .._creation import tensor as _tensor
    from .elementwise import where

    shp = input._data.shape
    if len(shp) < 2:
        raise RuntimeError("dimensions must larger than 1")
    if len(shp) > 2 and len(set(shp)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    total = int(np.prod(shp))
    if len(shp) == 2:
        rows, cols = shp
        step = cols + 1
        end = total if wrap and rows > cols + 1 else min(rows, cols) * cols
    else:
        step = sum(int(np.prod(shp[i + 1 :])) for i in range(len(shp)))
        end = total
    mask = np.zeros(total, np.bool_)
    mask[0:end:step] = True
    value = _tensor(fill_value, dtype=input.dtype)
    return where(_tensor(mask.reshape(shp)), value, input)


@op()
def broadcast_tensors(*tensors) -> tuple[Tensor, ...]:
    from .elementwise import broadcast_shapes

    shape = broadcast_shapes(*[t.shape for t in tensors], op="broadcast_tensors")
    return tuple(expand(t, shape) for t in tensors)


# -- squeeze / unsqueeze (reshapes) ----------------------------------------------------------
@op(method="squeeze")
def squeeze(input: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
    shp = input._data.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        wrapped = {wrap_dim(d, len(shp), "squeeze") for d in dims}
        new = tuple(s for i, s in enumerate(shp) if not (i in wrapped and s == 1))
    return reshape(input, new) if new != shp else input


@op(method="unsqueeze")
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    shp = input._data.shape
    d = wrap_dim(dim, len(shp) + 1, "unsqueeze")
    return reshape(input, shp[:d] + (1,) + shp[d:])


# -- cat / stack ---------------------------------------------------------------------------


def _cat_impl(*xs, dim, sizes):
    return np.concatenate(xs, axis=dim)


def _cat_abstract(*xs, dim, sizes=None):
    ref = xs[0]
    for k, x in enumerate(xs[1:], 1):
        if x.ndim != ref.ndim or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, ref.shape)) if i != dim
        ):
            raise ShapeError(
                f"cat: sizes of tensors must match except in dimension {dim}; "
                f"tensor 0 has shape {ref.shape}, tensor {k} has shape {x.shape}"
            )
    shape = list(ref.shape)
    shape[dim] = int(np.sum([x.shape[dim] for x in xs]))
    return AbstractValue(shape, ref.dtype)


def _cat_vjp(g, out, *xs, dim, sizes):
    outs = []
    start = 0
    for s in sizes:
        outs.append(narrow(g, dim, start, s))
        start += s
    return tuple(outs)


cat_p = Primitive("cat", "layout", impl=_cat_impl, abstract=_cat_abstract, save=SAVE_NONE)
defvjp(cat_p, _cat_vjp)


@op()
def cat(tensors: Sequence[Tensor], dim: int | None = 0) -> Tensor:
    """Concatenate tensors along an existing ``dim`` (dtypes are promoted)."""
    from ._promote import _cast, result_type

    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of Tensors")
    # PyTorch skips legacy empty 1-D tensors of shape (0,)
    nonempty = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)]
    if nonempty and len(nonempty) != len(tensors):
        tensors = nonempty
    nd = tensors[0]._data.ndim
    if nd == 0:
        raise ShapeError("cat: zero-dimensional tensor cannot be concatenated")
    for k, x in enumerate(tensors):
        if x._data.ndim != nd:
            raise ShapeError(
                f"cat: tensors must have the same number of dimensions: tensor 0 "
                f"has {nd} dims (shape {tuple(tensors[0].shape)}), tensor {k} has "
                f"{x._data.ndim} (shape {tuple(x.shape)})"
            )
    d = wrap_dim(dim, nd, "cat")
    r = result_type(*tensors)
    tensors = [_cast(x, r) for x in tensors]
    if len(tensors) == 1:
        return tensors[0].clone()
    return bind(
        cat_p, tuple(tensors), {"dim": d, "sizes": tuple(x._data.shape[d] for x in tensors)}
    )


concat = cat


def concatenate(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """``torch.concatenate``: :func:`cat`, with NumPy's ``axis`` as another name of ``dim``
    (PyTorch takes both).

    Example:
        >>> import ember
        >>> ember.concatenate([ember.ones(2, 1), ember.zeros(2, 2)], axis=1).shape
        ember.Size([2, 3])
    """
    return cat(tensors, dim if axis is None else axis)


@op()
def stack(tensors: Sequence[Tensor], dim: int | None = 0) -> Tensor:
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of Tensors")
    shp = tensors[0].shape
    for k, x in enumerate(tensors):
        if x.shape != shp:
            raise ShapeError(
                f"stack: expects each tensor to be equal size, but got {tuple(shp)} "
                f"at entry 0 and {tuple(x.shape)} at entry {k}"
            )
    d = wrap_dim(dim, len(shp) + 1, "stack")
    return cat([unsqueeze(x, d) for x in tensors], d)


@op(method="narrow")
def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = wrap_dim(dim, input._data.ndim, "narrow")
    size = input._data.shape[d]
    if start < -size or start > size:
        raise IndexError(f"narrow: start ({start}) out of range for dimension {dim} of size {size}")
    if start < 0:
        start += size
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start + length > size:
        raise ShapeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size}) "
            f"of dimension {dim} (input shape {tuple(input.shape)})"
        )
    idx = [slice(None)] * input._data.ndim
    idx[d] = slice(start, start + length)
    return input[tuple(idx)]


@op(method="split")
def split(tensor: Tensor, split_size_or_sections, dim: int | None = 0) -> tuple[Tensor, ...]:
    d = wrap_dim(dim, tensor._data.ndim, "split")
    n = tensor._data.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and n:
            raise ShapeError(f"split: split_size must be positive, got {s}")
        sizes = [min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ShapeError(f"split: split_sizes {sizes} don't sum to the size {n} of dim {d}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, d, start, s))
        start += s
    return tuple(out)


@op(method="chunk")
def chunk(input: Tensor, chunks: int, dim: int | None = 0) -> tuple[Tensor, ...]:
    d = wrap_dim(dim, input._data.ndim, "chunk")
    n = input._data.shape[d]
    if chunks <= 0:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    size = -(-n // chunks) if n else 1
    return split(input, size, d) if n else (input,)


@op(method="unbind")
def unbind(input: Tensor, dim: int | None = 0) -> tuple[Tensor, ...]:
    d = wrap_dim(dim, input._data.ndim, "unbind")
    return tuple(squeeze(s, d) for s in split(input, 1, d))


def _same_abstract(x, *rest, **params):
    return AbstractValue(x.shape, x.dtype)


# -- flip ----------------------------------------------------------------------------------
def _flip_impl(x, dims):
    return np.flip(x, dims).copy() if dims else x.copy()


def _flip_vjp(g, out, x, dims):
    return (bind(flip_p, (g,), {"dims": dims}),)


flip_p = Primitive("flip", "layout", impl=_flip_impl, abstract=_same_abstract, save=SAVE_NONE)
defvjp(flip_p, _flip_vjp)


@op(method="flip")
@keyword_vararg("dims")
def flip(input: Tensor, *dims: int | Sequence[int]) -> Tensor:
    """Reverse the order of elements along ``dims`` (given as ints, a sequence, or by keyword
    as PyTorch's ``torch.flip(x, dims=[0])``).

    Example:
        >>> import ember
        >>> ember.flip(ember.tensor([[1, 2], [3, 4]]), dims=[1]).tolist()
        [[2, 1], [4, 3]]
    """
    dims = (
        _shape_arg(dims)
        if not (len(dims) == 1 and isinstance(dims[0], (int, np.integer)))
        else (int(dims[0]),)
    )
    dims = _dims_arg(dims, input._data.ndim, "flip")
    return bind(flip_p, (input,), {"dims": dims})


@op(method="fliplr")
def fliplr(input: Tensor) -> Tensor:
    if input._data.ndim < 2:
        raise ShapeError(f"fliplr: input must be >= 2-d, got shape {tuple(input._data.shape)}")
    return flip(input, 1)


@op(method="flipud")
def flipud(input: Tensor) -> Tensor:
    if input._data.ndim < 1:
        raise ShapeError("flipud: input must be >= 1-d")
    return flip(input, 0)


# -- roll ----------------------------------------------------------------------------------
def _roll_impl(x, shifts, dims):
    return np.roll(x, shifts, dims)


def _roll_vjp(g, out, x, shifts, dims):
    return (bind(roll_p, (g,), {"shifts": tuple(-s for s in shifts), "dims": dims}),)


roll_p = Primitive("roll", "layout", impl=_roll_impl, abstract=_same_abstract, save=SAVE_NONE)
defvjp(roll_p, _roll_vjp)


@op(method="roll")
def roll(input: Tensor, shifts, dims: int | tuple[int, ...] | None = None) -> Tensor:
    """Roll elements along ``dims`` (or over the flattened tensor when ``dims`` is None)."""
    if isinstance(shifts, (int, np.integer)):
        shifts = (int(shifts),)
    shifts = tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ShapeError(f"roll: shifts {shifts} must be a single int when dims is None")
        shp = input._data.shape
        return reshape(roll(reshape(input, -1), shifts, 0), shp)
    if isinstance(dims, (int, np.integer)):
        dims = (int(dims),)
    if len(dims) != len(shifts):
        raise ShapeError(
            f"roll: shifts and dimensions must align, got shifts={shifts}, dims={tuple(dims)}"
        )
    nd = input._data.ndim
    dims = tuple(wrap_dim(d, nd, "roll") for d in dims)
    return bind(roll_p, (input,), {"shifts": shifts, "dims": dims})


# -- repeat / tile -------------------------------------------------------------------------
def _repeat_impl(x, repeats):
    lead = len(repeats) - x.ndim
    return np.tile(x.reshape((1,) * lead + x.shape), repeats)


def _repeat_abstract(x, repeats):
    if len(repeats) < x.ndim:
        raise ShapeError(
            f"repeat: number of repeat dims ({len(repeats)}) can not be smaller than "
            f"number of dimensions of tensor ({x.ndim}, shape {x.shape})"
        )
    lead = len(repeats) - x.ndim
    shp = (1,) * lead + tuple(x.shape)
    return AbstractValue(tuple(s * r for s, r in zip(shp, repeats)), x.dtype)


def _repeat_vjp(g, out, x, repeats, in_shape):
    from .reduction import sum

    lead = len(repeats) - len(in_shape)
    shp = (1,) * lead + tuple(in_shape)
    split = []
    for s, r in zip(shp, repeats):
        split += [r, s]
    gs = reshape(g, split)
    gs = sum(gs, tuple(range(0, 2 * len(shp), 2)))
    return (reshape(gs, in_shape),)


repeat_p = Primitive(
    "repeat",
    "layout",
    save=SAVE_NONE,
    impl=lambda x, repeats, in_shape: _repeat_impl(x, repeats),
    abstract=lambda x, repeats, in_shape: _repeat_abstract(x, repeats),
)
defvjp(repeat_p, _repeat_vjp)


@op(method="repeat", export=False)
@keyword_vararg("repeats")
def repeat(x: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """``Tensor.repeat``: tile ``x`` ``sizes[i]`` times along dim ``i`` (leading dims added)."""
    reps = _shape_arg(sizes)
    if any(s < 0 for s in reps):
        raise ShapeError(f"repeat: repeats can not be negative, got {reps}")
    _repeat_abstract(AbstractValue(x._data.shape, None), reps)
    return bind(repeat_p, (x,), {"repeats": reps, "in_shape": x._data.shape})


@op(method="tile")
def tile(input: Tensor, dims: int | Sequence[int]) -> Tensor:
    """``torch.tile``: like ``repeat``, but ``dims`` shorter than ``input.ndim`` is padded with
    1s."""
    reps = _shape_arg((dims,)) if not isinstance(dims, (int, np.integer)) else (int(dims),)
    nd = input._data.ndim
    if len(reps) < nd:
        reps = (1,) * (nd - len(reps)) + reps
    return repeat(input, reps)


# -- tril / triu ---------------------------------------------------------------------------
def _tri_abstract(name):
    def abstract(x, diagonal):
        if x.ndim < 2:
            raise ShapeError(
                f"{name}: input tensor must have at least 2 dimensions, got shape {tuple(x.shape)}"
            )
        return AbstractValue(x.shape, x.dtype)

    return abstract


def _tril_impl(x, diagonal):
    n, m = x.shape[-2:]
    mask = np.tri(n, m, diagonal, dtype=np.bool_)
    return np.where(mask, x, np.zeros((), x.dtype))


def _triu_impl(x, diagonal):
    n, m = x.shape[-2:]
    mask = ~np.tri(n, m, diagonal - 1, dtype=np.bool_)
    return np.where(mask, x, np.zeros((), x.dtype))


tril_p = Primitive(
    "tril",
    "elementwise",
    impl=_tril_impl,
    abstract=_tri_abstract("tril"),
    save=SAVE_NONE,
)
defvjp(tril_p, lambda g, out, x, diagonal: (tril(g, diagonal),))
triu_p = Primitive(
    "triu",
    "elementwise",
    impl=_triu_impl,
    abstract=_tri_abstract("triu"),
    save=SAVE_NONE,
)
defvjp(triu_p, lambda g, out, x, diagonal: (triu(g, diagonal),))


@op(method="tril", inplace="tril_")
def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """Lower triangle of the last two dims (elements above ``diagonal`` zeroed)."""
    _tri_abstract("tril")(AbstractValue(input._data.shape, None), 0)
    return bind(tril_p, (input,), {"diagonal": int(diagonal)})


@op(method="triu", inplace="triu_")
def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """Upper triangle of the last two dims (elements below ``diagonal`` zeroed)."""
    _tri_abstract("triu")(AbstractValue(input._data.shape, None), 0)
    return bind(triu_p, (input,), {"diagonal": int(diagonal)})


# -- diagonal ------------------------------------------------------------------------------


def _diagonal_impl(x, offset, dim1, dim2):
    return np.diagonal(x, offset, dim1, dim2).copy()


def _diagonal_abstract(x, offset, dim1, dim2):
    shp = [s for i, s in enumerate(x.shape) if i not in (dim1, dim2)]
    shp.append(_diag_len(x.shape[dim1], x.shape[dim2], offset))
    return AbstractValue(shp, x.dtype)


def _diagonal_vjp(g, out, x, offset, dim1, dim2, in_shape=None):
    return (
        bind(
            diagonal_scatter_zeros_p,
            (g,),
            {"offset": offset, "dim1": dim1, "dim2": dim2, "shape": in_shape},
        ),
    )


diagonal_p = Primitive(
    "diagonal",
    "layout",
    save=SAVE_NONE,
    impl=lambda x, offset, dim1, dim2, in_shape: _diagonal_impl(x, offset, dim1, dim2),
    abstract=lambda x, offset, dim1, dim2, in_shape: _diagonal_abstract(x, offset, dim1, dim2),
)
defvjp(diagonal_p, _diagonal_vjp)


def _diag_scatter_impl(g, offset, dim1, dim2, shape):
    z = np.zeros(shape, g.dtype)
    zt = np.moveaxis(z, (dim1, dim2), (-2, -1))
    k = g.shape[-1]
    rows = np.arange(k) + (0 if offset >= 0 else -offset)
    cols = np.arange(k) + (max(offset, 0))
    zt[..., rows, cols] = g
    return z


diagonal_scatter_zeros_p = Primitive(
    "diagonal_scatter_zeros",
    "layout",
    impl=_diag_scatter_impl,
    save=SAVE_NONE,
    abstract=lambda g, offset, dim1, dim2, shape: AbstractValue(shape, g.dtype),
)
defvjp(
    diagonal_scatter_zeros_p,
    lambda gg, out, g, offset, dim1, dim2, shape: (
        bind(diagonal_p, (gg,), {"offset": offset, "dim1": dim1, "dim2": dim2, "in_shape": shape}),
    ),
)


@op(method="diagonal")
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2=1) -> Tensor:
    """The diagonal at ``offset`` of the (dim1, dim2) planes, appended as the last dim."""
    nd = input._data.ndim
    if nd < 2:
        raise ShapeError(
            f"diagonal: input must have at least 2 dimensions, got shape {tuple(input._data.shape)}"
        )
    d1, d2 = wrap_dim(dim1, nd, "diagonal"), wrap_dim(dim2, nd, "diagonal")
    if d1 == d2:
        raise ShapeError(f"diagonal: dimensions cannot be identical {dim1}, {dim2}")
    return bind(
        diagonal_p,
        (input,),
        {"offset": int(offset), "dim1": d1, "dim2": d2, "in_shape": input._data.shape},
    )


# pad / repeat_interleave / meshgrid live in shape_grow.py, imported here at the end, where
# their section was, so the records keep their order. Every name stays importable from here.
from .shape_grow import (  # noqa: E402, F401
    _pad_abstract,
    _pad_const_impl,
    _pad_gather_impl,
    _pad_scatter_impl,
    meshgrid,
    pad,
    pad_constant_p,
    pad_gather_p,
    pad_scatter_p,
    repeat_interleave,
)

__all__ = [*module_ops(__name__), "concat", "concatenate", "swapaxes", "swapdims"]
