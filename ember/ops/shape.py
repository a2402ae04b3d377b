"""Shape and layout primitives: views (reshape, permute, expand, squeeze) and copies
(cat, flip, roll, pad ...)."""

from __future__ import annotations

import numpy as np

from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._util import wrap_dim


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def infer_reshape(old, new, op="reshape"):
    """Resolve one ``-1`` in ``new``; a clear error when the sizes can't match."""
    size = int(np.prod(old, dtype=np.int64))
    neg = [i for i, s in enumerate(new) if s == -1]
    if len(neg) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred, got shape {tuple(new)}")
    if any(s < -1 for s in new):
        raise ShapeError(f"{op}: invalid shape dimension in {tuple(new)}")
    known = int(np.prod([s for s in new if s != -1], dtype=np.int64))
    if neg:
        if known == 0 or size % known:
            raise ShapeError(f"{op}: shape {tuple(new)} is invalid for input of size {size}")
        new = tuple(size // known if s == -1 else s for s in new)
    elif known != size:
        raise ShapeError(f"{op}: shape {tuple(new)} is invalid for input of size {size} "
                         f"(input shape {tuple(old)})")
    return tuple(new)


# -- reshape -------------------------------------------------------------------------------
def _reshape_impl(x, shape):
    return x.reshape(shape)


def _reshape_abstract(x, shape):
    return AbstractValue(infer_reshape(x.shape, shape), x.dtype)


reshape_p = Primitive("reshape", "view", impl=_reshape_impl, abstract=_reshape_abstract,
                      save=SAVE_NONE)


@reshape_p.def_vjp
def _reshape_vjp(g, out, x, shape):
    return None  # set below: needs the input shape, passed as a param


def _reshape2_impl(x, shape, in_shape):
    return x.reshape(shape)


reshape_p.impl = _reshape2_impl
reshape_p.abstract = lambda x, shape, in_shape: _reshape_abstract(x, shape)
reshape_p.vjp = lambda g, out, x, shape, in_shape: (reshape(g, in_shape),)


def reshape(x, *shape):
    """A tensor with the same data and a new shape (a view when possible)."""
    shape = infer_reshape(x._data.shape, _shape_arg(shape))
    if shape == x._data.shape:
        return x
    return bind(reshape_p, (x,), {"shape": shape, "in_shape": x._data.shape})


def view(x, *shape):
    if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int)):
        return x.to(shape[0])
    return reshape(x, *shape)


def flatten(x, start_dim=0, end_dim=-1):
    nd = x._data.ndim
    if nd == 0:
        return reshape(x, (1,))
    s = wrap_dim(start_dim, nd, "flatten")
    e = wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shp = x._data.shape
    return reshape(x, shp[:s] + (-1 if 0 not in shp[s:e + 1] else 0,) + shp[e + 1:])


def unflatten(x, dim, sizes):
    d = wrap_dim(dim, x._data.ndim, "unflatten")
    shp = x._data.shape
    sizes = tuple(sizes)
    inner = infer_reshape((shp[d],), sizes, "unflatten")
    return reshape(x, shp[:d] + inner + shp[d + 1:])


# -- permute / transpose -------------------------------------------------------------------
def _permute_impl(x, dims):
    return x.transpose(dims)


def _permute_abstract(x, dims):
    if sorted(dims) != list(range(x.ndim)):
        raise ShapeError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims of "
                         f"shape {x.shape}")
    return AbstractValue(tuple(x.shape[d] for d in dims), x.dtype)


permute_p = Primitive("permute", "view", impl=_permute_impl, abstract=_permute_abstract,
                      save=SAVE_NONE)


@permute_p.def_vjp
def _permute_vjp(g, out, x, dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (permute(g, inv),)


def permute(x, *dims):
    dims = _shape_arg(dims)
    nd = x._data.ndim
    if len(dims) != nd:
        raise ShapeError(f"permute: number of dims {len(dims)} doesn't match the tensor's "
                         f"{nd} dims (shape {tuple(x._data.shape)})")
    dims = tuple(wrap_dim(d, nd, "permute") for d in dims)
    if len(set(dims)) != nd:
        raise ShapeError(f"permute: repeated dim in {dims}")
    if dims == tuple(range(nd)):
        return x
    return bind(permute_p, (x,), {"dims": dims})


def transpose(x, dim0, dim1):
    nd = x._data.ndim
    if nd == 0:
        return x
    d0, d1 = wrap_dim(dim0, nd, "transpose"), wrap_dim(dim1, nd, "transpose")
    if d0 == d1:
        return x
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return bind(permute_p, (x,), {"dims": tuple(dims)})


swapaxes = transpose
swapdims = transpose


def t(x):
    if x._data.ndim > 2:
        raise ShapeError(f"t: expects a tensor with <= 2 dimensions, but got {x._data.ndim}D")
    return transpose(x, 0, 1) if x._data.ndim == 2 else x


def movedim(x, source, destination):
    nd = x._data.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [wrap_dim(s, nd, "movedim") for s in src]
    dst = [wrap_dim(d, nd, "movedim") for d in dst]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(x, order)


# -- expand / broadcast --------------------------------------------------------------------
def _expand_impl(x, shape):
    return np.broadcast_to(x, shape)


def _expand_abstract(x, shape):
    if len(shape) < x.ndim:
        raise ShapeError(f"expand: the number of sizes provided ({len(shape)}) must be greater "
                         f"or equal to the number of dimensions in the tensor ({x.ndim})")
    lead = len(shape) - x.ndim
    for i, s in enumerate(x.shape):
        if s != 1 and s != shape[lead + i]:
            raise ShapeError(f"expand: the expanded size of the tensor ({shape[lead + i]}) must "
                             f"match the existing size ({s}) at non-singleton dimension "
                             f"{lead + i}. Target sizes: {list(shape)}. Tensor sizes: "
                             f"{list(x.shape)}")
    return AbstractValue(shape, x.dtype)


expand_p = Primitive("expand", "view", impl=_expand_impl, abstract=_expand_abstract,
                     save=SAVE_NONE)


def _expand_vjp(g, out, x, shape, in_shape):
    from .reduction import sum_to
    return (sum_to(g, in_shape),)


expand_p.impl = lambda x, shape, in_shape: np.broadcast_to(x, shape)
expand_p.abstract = lambda x, shape, in_shape: _expand_abstract(x, shape)
expand_p.vjp = _expand_vjp


def expand(x, *shape):
    shape = _shape_arg(shape)
    lead = len(shape) - x._data.ndim
    if lead < 0:
        _expand_abstract(AbstractValue(x._data.shape, None), shape)
    shape = tuple(x._data.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(shape))
    if shape == x._data.shape:
        return x
    return bind(expand_p, (x,), {"shape": shape, "in_shape": x._data.shape})


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def expand_as(x, other):
    return expand(x, other.shape)


def broadcast_tensors(*tensors):
    from .elementwise import broadcast_shapes
    shape = broadcast_shapes(*[t.shape for t in tensors], op="broadcast_tensors")
    return tuple(expand(t, shape) for t in tensors)


# -- squeeze / unsqueeze (reshapes) ----------------------------------------------------------
def squeeze(x, dim=None):
    shp = x._data.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {wrap_dim(d, len(shp), "squeeze") for d in dims}
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(x, new) if new != shp else x


def unsqueeze(x, dim):
    shp = x._data.shape
    d = wrap_dim(dim, len(shp) + 1, "unsqueeze")
    return reshape(x, shp[:d] + (1,) + shp[d:])


# -- cat / stack ---------------------------------------------------------------------------
def _cat_impl(*xs, dim):
    return np.concatenate(xs, axis=dim)


def _cat_abstract(*xs, dim):
    ref = xs[0]
    for k, x in enumerate(xs[1:], 1):
        if x.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(x.shape, ref.shape))
                                     if i != dim):
            raise ShapeError(f"cat: sizes of tensors must match except in dimension {dim}; "
                             f"tensor 0 has shape {ref.shape}, tensor {k} has shape {x.shape}")
    shape = list(ref.shape)
    shape[dim] = int(np.sum([x.shape[dim] for x in xs]))
    return AbstractValue(shape, ref.dtype)


cat_p = Primitive("cat", "layout", impl=_cat_impl, abstract=_cat_abstract, save=SAVE_NONE)


def _cat_vjp(g, out, *xs, dim, sizes):
    outs = []
    start = 0
    for s in sizes:
        outs.append(narrow(g, dim, start, s))
        start += s
    return tuple(outs)


cat_p.impl = lambda *xs, dim, sizes: np.concatenate(xs, axis=dim)
cat_p.abstract = lambda *xs, dim, sizes: _cat_abstract(*xs, dim=dim)
cat_p.vjp = _cat_vjp


def cat(tensors, dim=0):
    """Concatenate tensors along an existing ``dim`` (dtypes are promoted)."""
    from ._promote import _cast, result_type
    tensors = list(tensors)
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
            raise ShapeError(f"cat: tensors must have the same number of dimensions: tensor 0 "
                             f"has {nd} dims (shape {tuple(tensors[0].shape)}), tensor {k} has "
                             f"{x._data.ndim} (shape {tuple(x.shape)})")
    d = wrap_dim(dim, nd, "cat")
    r = result_type(*tensors)
    tensors = [_cast(x, r) for x in tensors]
    if len(tensors) == 1:
        return tensors[0].clone()
    return bind(cat_p, tuple(tensors), {"dim": d, "sizes": tuple(x._data.shape[d]
                                                                  for x in tensors)})


concat = cat
concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of Tensors")
    shp = tensors[0].shape
    for k, x in enumerate(tensors):
        if x.shape != shp:
            raise ShapeError(f"stack: expects each tensor to be equal size, but got {tuple(shp)} "
                             f"at entry 0 and {tuple(x.shape)} at entry {k}")
    d = wrap_dim(dim, len(shp) + 1, "stack")
    return cat([unsqueeze(x, d) for x in tensors], d)


def narrow(x, dim, start, length):
    d = wrap_dim(dim, x._data.ndim, "narrow")
    idx = [slice(None)] * x._data.ndim
    idx[d] = slice(start, start + length)
    return x[tuple(idx)]


def split(x, split_size_or_sections, dim=0):
    d = wrap_dim(dim, x._data.ndim, "split")
    n = x._data.shape[d]
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
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    d = wrap_dim(dim, x._data.ndim, "chunk")
    n = x._data.shape[d]
    if chunks <= 0:
        raise ShapeError(f"chunk: chunks must be positive, got {chunks}")
    size = -(-n // chunks) if n else 1
    return split(x, size, d) if n else (x,)


def unbind(x, dim=0):
    d = wrap_dim(dim, x._data.ndim, "unbind")
    return tuple(squeeze(s, d) for s in split(x, 1, d))


_ = (_reshape_vjp,)
