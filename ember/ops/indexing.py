"""Indexing primitives: ``x[idx]``, ``x[idx] = v``, gather/scatter and friends (sorting,
``unique`` and ``nonzero`` live in ``sorting.py``; their names are importable from here too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, OpIndexError, Primitive, ShapeError, bind
from ._indexing_util import (  # noqa: F401  (argument handling, see there; all importable here)
    _as_index,
    _as_mask,
    _check_1d_index,
    _check_bounds,
    _check_range,
    _full_index,
    _gs_checks,
    _is_tensor,
    _normalize_index,
    _pad_to,
    _scalar_value,
    _slice_bound,
    _src_value,
    _static_slice,
    _sub,
    _ValuesIndices,
)
from ._records import module_ops, op
from ._samples import defsample
from ._util import wrap_dim

if TYPE_CHECKING:
    from .._tensor import Tensor


def _getitem_impl(x, idx, basic, shape):
    r = x[idx]
    if basic and not isinstance(r, np.ndarray):
        # An integer for every dim gives a NumPy scalar (a copy); x[idx + (...,)] gives the
        # 0-d view PyTorch returns, so in-place ops on it write through.
        r = x[(idx if isinstance(idx, tuple) else (idx,)) + (Ellipsis,)]
    return r


def _getitem_abstract(x, idx, basic, shape=None):
    _check_bounds(x.shape, idx)
    return AbstractValue(np.empty(x.shape, dtype=np.bool_)[idx].shape, x.dtype)


def _getitem_vjp(g, out, x, idx, basic, shape):
    return (bind(index_put_zeros_p, (g,), {"idx": idx, "basic": basic, "shape": shape}),)


# ``shape`` (the input's shape) is a param so the VJP needs nothing saved.
getitem_p = Primitive(
    "getitem",
    "view",
    impl=_getitem_impl,
    abstract=_getitem_abstract,
    save=SAVE_NONE,
)
defvjp(getitem_p, _getitem_vjp)
# Integer-array (advanced) indexing copies, so it is not a view.
getitem_adv_p = Primitive(
    "getitem_adv",
    "layout",
    impl=_getitem_impl,
    abstract=_getitem_abstract,
    save=SAVE_NONE,
)
defvjp(getitem_adv_p, _getitem_vjp)
# Boolean-mask indexing: the output shape depends on the mask's values.
getitem_mask_p = Primitive(
    "getitem_mask",
    "layout",
    impl=_getitem_impl,
    abstract=_getitem_abstract,
    save=SAVE_NONE,
    data_dependent=True,
)
defvjp(getitem_mask_p, _getitem_vjp)


def _index_put_zeros_impl(g, idx, basic, shape):
    z = np.zeros(shape, g.dtype)
    if basic:
        z[idx] = g
    else:
        np.add.at(z, idx, g)
    return z


index_put_zeros_p = Primitive(
    "index_put_zeros",
    "layout",
    impl=_index_put_zeros_impl,
    save=SAVE_NONE,
    abstract=lambda g, idx, basic, shape: AbstractValue(shape, g.dtype),
)
defvjp(
    index_put_zeros_p,
    lambda gg, out, g, idx, basic, shape: (
        bind(
            getitem_p if basic else getitem_adv_p,
            (gg,),
            {"idx": idx, "basic": basic, "shape": gg._data.shape},
        ),
    ),
)


@op(toplevel=False)
def getitem(x: Tensor, index) -> Tensor:
    """``x[index]``: basic indexing gives a view; tensor/list/mask indices copy.

    Slices follow NumPy: any nonzero step of either sign, bounds clamped to the size.

    >>> import ember
    >>> x = ember.arange(6.0)
    >>> x[4:0:-2]
    tensor([4., 2.])
    >>> x[::-1][0] = 9.0  # a view: the write reaches x
    >>> x
    tensor([0., 1., 2., 3., 4., 9.])
    """
    idx, basic = _normalize_index(index)
    _check_bounds(x._data.shape, idx)
    prim = getitem_p
    if not basic:
        prim = getitem_adv_p
        if any(isinstance(i, np.ndarray) and i.dtype == np.bool_ for i in idx):
            prim = getitem_mask_p
    return bind(prim, (x,), {"idx": idx, "basic": basic, "shape": x._data.shape})


# -- setitem: out-of-place "x with x[idx] = v", used by Tensor.__setitem__ ------------------
def _setitem_impl(x, v, idx, vshape):
    r = x.copy()
    r[idx] = v
    return r


def _setitem_abstract(x, v, idx, vshape):
    return AbstractValue(x.shape, x.dtype)


def _setitem_vjp(g, out, x, v, idx, vshape):
    from .reduction import sum_to

    gx = bind(index_fill_zero_p, (g,), {"idx": idx})
    gv = bind(getitem_adv_p, (g,), {"idx": idx, "basic": False, "shape": g._data.shape})
    if tuple(gv.shape) != tuple(vshape):
        gv = sum_to(gv, vshape)
    return gx, gv


# ``vshape`` (the value's shape) is a param so the VJP needs nothing saved.
index_put_p = Primitive(
    "index_put",
    "layout",
    impl=_setitem_impl,
    abstract=_setitem_abstract,
    save=SAVE_NONE,
)
defvjp(index_put_p, _setitem_vjp)


def _index_fill_zero_impl(g, idx):
    r = g.copy()
    r[idx] = 0
    return r


index_fill_zero_p = Primitive(
    "index_fill_zero",
    "layout",
    impl=_index_fill_zero_impl,
    save=SAVE_NONE,
    abstract=lambda g, idx: AbstractValue(g.shape, g.dtype),
)
defvjp(index_fill_zero_p, lambda gg, out, g, idx: (bind(index_fill_zero_p, (gg,), {"idx": idx}),))


@op(toplevel=False)
def index_put_value(x: Tensor, index, value) -> Tensor:
    """``x`` with ``x[index] = value`` (out of place; differentiable in x and value)."""
    from .._tensor import Tensor
    from ._promote import _cast

    idx, _ = _normalize_index(index)
    _check_bounds(x._data.shape, idx)
    if isinstance(value, Tensor):
        value = _cast(value, x.dtype)
    else:
        value = np.asarray(value, dtype=x._data.dtype)
    try:
        np.broadcast_shapes(np.empty(x._data.shape, np.bool_)[idx].shape, np.shape(value))
    except ValueError:
        raise ShapeError(
            f"setitem: shape mismatch: value tensor of shape {tuple(np.shape(value))}"
            f" cannot be broadcast to indexing result of shape "
            f"{np.empty(x._data.shape, np.bool_)[idx].shape}"
        ) from None
    return bind(index_put_p, (x, value), {"idx": idx, "vshape": tuple(np.shape(value))})


# -- dynamic_slice: a slice whose start is a value of the run ------------------------------
# ``x[start:start + length]`` along one axis, with ``start`` a 0-d integer tensor (an input:
# a traced or symbolic graph reads it at every run) and ``length`` a static param, so the
# output shape is fixed (``jax.lax.dynamic_slice`` on one axis). A start whose slice does not
# fit the axis is an IndexError: never clamped (as jax does) nor shortened (as NumPy does).


def _dynamic_start(start, n, dim, length, op="dynamic_slice"):
    s = int(start)
    if s < 0 or s + length > n:
        raise OpIndexError(
            f"{op}: the slice [{s}:{s + length}] (start {s}, length {length}) does not fit "
            f"dim {dim} of size {n}: the start must be in [0, {n - length}]"
        )
    return s


def _dynamic_slice_impl(x, start, dim, length):
    s = _dynamic_start(start, x.shape[dim], dim, length)
    return np.array(x[(slice(None),) * dim + (slice(s, s + length),)])


def _dynamic_start_check(start, op):
    dtype = getattr(start, "dtype", None)
    kind = dtype.np.kind if hasattr(dtype, "np") else np.dtype(type(start)).kind
    if getattr(start, "ndim", 0) != 0 or kind not in "iu":
        raise TypeError(
            f"{op}: the start must be a 0-d integer tensor, got shape "
            f"{tuple(getattr(start, 'shape', ()))} and dtype {dtype or type(start).__name__}"
        )


def _dynamic_slice_abstract(x, start, dim, length):
    _dynamic_start_check(start, "dynamic_slice")
    if not 0 <= dim < len(x.shape):
        raise ShapeError(f"dynamic_slice: dim {dim} is out of range for shape {tuple(x.shape)}")
    if not 0 <= length <= x.shape[dim]:
        raise ShapeError(
            f"dynamic_slice: length {length} does not fit dim {dim} of shape {tuple(x.shape)}"
        )
    shape = list(x.shape)
    shape[dim] = length
    return AbstractValue(shape, x.dtype)


def _dynamic_slice_vjp(g, out, x, start, dim, length):
    # the cotangent scattered into zeros of the input's shape at the same start
    shape = tuple(x._data.shape)
    return bind(dynamic_slice_grad_p, (g, start), {"dim": dim, "shape": shape}), None


dynamic_slice_p = Primitive(
    "dynamic_slice",
    "layout",
    impl=_dynamic_slice_impl,
    abstract=_dynamic_slice_abstract,
)
defvjp(dynamic_slice_p, _dynamic_slice_vjp)


def _dynamic_slice_grad_impl(g, start, dim, shape):
    length = g.shape[dim]
    s = _dynamic_start(start, shape[dim], dim, length, "dynamic_slice_grad")
    z = np.zeros(shape, g.dtype)
    z[(slice(None),) * dim + (slice(s, s + length),)] = g
    return z


def _dynamic_slice_grad_abstract(g, start, dim, shape):
    _dynamic_start_check(start, "dynamic_slice_grad")
    want = tuple(g.shape[:dim]) + tuple(shape[dim : dim + 1]) + tuple(g.shape[dim + 1 :])
    if len(shape) != len(g.shape) or tuple(shape) != want or g.shape[dim] > shape[dim]:
        raise ShapeError(
            f"dynamic_slice_grad: a cotangent of shape {tuple(g.shape)} does not fit shape "
            f"{tuple(shape)} along dim {dim}"
        )
    return AbstractValue(shape, g.dtype)


dynamic_slice_grad_p = Primitive(
    "dynamic_slice_grad",
    "layout",
    impl=_dynamic_slice_grad_impl,
    abstract=_dynamic_slice_grad_abstract,
)
defvjp(
    dynamic_slice_grad_p,
    lambda gg, out, g, start, dim, shape: (
        bind(dynamic_slice_p, (gg, start), {"dim": dim, "length": g._data.shape[dim]}),
        None,
    ),
)


def _dynamic_slice_sample():
    from .._creation import tensor

    x = tensor(np.random.default_rng(0).standard_normal((5, 3))).requires_grad_()
    return [
        ((x, tensor(np.int64(2))), {"dim": 0, "length": 3}),
        ((x, tensor(np.int64(0))), {"dim": 1, "length": 2}),
    ]


def _dynamic_slice_grad_sample():
    from .._creation import tensor

    g = tensor(np.random.default_rng(1).standard_normal((4, 2))).requires_grad_()
    return [((g, tensor(np.int64(1))), {"dim": 1, "shape": (4, 3)})]


defsample(dynamic_slice_p, _dynamic_slice_sample)
defsample(dynamic_slice_grad_p, _dynamic_slice_grad_sample)


@op(toplevel=False)
def dynamic_slice(input: Tensor, start, dim: int, length: int) -> Tensor:
    """``length`` entries of ``input`` along ``dim`` from ``start``, a 0-d integer tensor read
    when the op runs (``jax.lax.dynamic_slice`` on one axis): in a compiled or symbolic graph
    the start is a value of each run while the output shape stays fixed. A slice that does
    not fit the axis raises IndexError (it is neither clamped nor shortened).

    Differentiable in ``input`` (the gradient is zero outside the slice).

    >>> import ember
    >>> x = ember.arange(10.0).reshape(5, 2)
    >>> ember.ops.dynamic_slice(x, ember.tensor(3), 0, 2)
    tensor([[6., 7.],
            [8., 9.]])
    """
    from .._creation import tensor
    from .._tensor import Tensor

    if not isinstance(start, Tensor):
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
            raise TypeError(
                f"dynamic_slice: the start must be an int or a 0-d integer tensor, got "
                f"{type(start).__name__}"
            )
        start = tensor(np.int64(start))
    _dynamic_start_check(start, "dynamic_slice")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)):
        raise TypeError(f"dynamic_slice: length must be an int, got {type(length).__name__}")
    d = wrap_dim(dim, input._data.ndim, "dynamic_slice")
    return bind(dynamic_slice_p, (input, start), {"dim": d, "length": int(length)})


# ==========================================================================================
# gather / scatter / index_select / index_add / index_fill / masked_* / take / one_hot ...
# Index tensors are inputs (never params), so a traced graph keeps them as values.
# Value-dependent checks (index bounds) run inside kernels: ``bind`` turns the kernel's
# IndexError into one that names the op and the input shapes.
# ==========================================================================================


def _gather_impl(x, index, dim):
    if x.ndim == 0 or index.ndim == 0:
        _check_range(index, x.shape[dim] if x.ndim else 1, "gather", dim)
        return np.take(x.reshape(-1), index).astype(x.dtype, copy=True).reshape(index.shape)
    _check_range(index, x.shape[dim], "gather", dim)
    shp = list(index.shape)
    shp[dim] = x.shape[dim]
    return np.take_along_axis(_sub(x, shp), index.astype(np.intp, copy=False), axis=dim)


def _gather_abstract(x, index, dim):
    return AbstractValue(index.shape, x.dtype)


def _gather_vjp(g, out, x, index, dim):
    from .._creation import zeros

    z = zeros(tuple(x.shape), dtype=g.dtype)
    return (scatter_add(z, dim, index, g), None)


gather_p = Primitive(
    "gather",
    "opaque",
    impl=_gather_impl,
    abstract=_gather_abstract,
)
defvjp(gather_p, _gather_vjp)


@op(method="gather")
def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j][k] = input[i][index[i][j][k]][k]`` (for dim=1)."""
    index = _as_index(index, "gather")
    d = _gs_checks(input, dim, index, "gather")
    return bind(gather_p, (input, index), {"dim": d})


def _scatter_prep(x, index, src, dim):
    index = index.astype(np.intp, copy=False)
    if x.ndim == 0:
        return x.reshape(1), (index.reshape(-1),), (np.reshape(src, -1) if np.ndim(src) else src)
    _check_range(index, x.shape[dim], "scatter", dim)
    if index.ndim == 0:
        index = index.reshape(1)
    s = _sub(src, index.shape) if np.ndim(src) else src
    return x, _full_index(index, dim), s


def _scatter_impl(x, index, src, dim):
    out = x.copy()
    o, ix, s = _scatter_prep(out, index, src, dim)
    o[ix] = s
    return out


def _scatter_add_impl(x, index, src, dim):
    out = x.copy()
    o, ix, s = _scatter_prep(out, index, src, dim)
    np.add.at(o, ix, s)
    return out


def _scatter_mul_impl(x, index, src, dim):
    out = x.copy()
    o, ix, s = _scatter_prep(out, index, src, dim)
    np.multiply.at(o, ix, s)
    return out


def _scatter_abstract(x, index, src, dim):
    return AbstractValue(x.shape, x.dtype)


def _scatter_vjp(g, out, x, index, src, dim):
    gx = bind(scatter_p, (g, index, 0), {"dim": dim})
    gs = None
    if _is_tensor(src):
        gs = _pad_to(gather(g, dim, index), tuple(src.shape))
    return gx, None, gs


def _scatter_add_vjp(g, out, x, index, src, dim):
    gs = _pad_to(gather(g, dim, index), tuple(src.shape)) if _is_tensor(src) else None
    return g, None, gs


scatter_p = Primitive(
    "scatter",
    "opaque",
    impl=_scatter_impl,
    abstract=_scatter_abstract,
)
defvjp(scatter_p, _scatter_vjp)
scatter_add_p = Primitive(
    "scatter_add",
    "opaque",
    impl=_scatter_add_impl,
    abstract=_scatter_abstract,
)
defvjp(scatter_add_p, _scatter_add_vjp)


def _scatter_mul_vjp(g, out, x, index, src, dim):
    # out = x * M with M = scatter_mul(ones, index, src) (exact, duplicates included); the
    # src gradient gather(g * x, index) is exact when index has no duplicates along dim.
    from .._creation import ones

    m = bind(scatter_mul_p, (ones(tuple(x.shape), dtype=g.dtype), index, src), {"dim": dim})
    gs = _pad_to(gather(g * x, dim, index), tuple(src.shape)) if _is_tensor(src) else None
    return g * m, None, gs


def _scatter_mul_sample():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    return [
        (
            (
                tensor(rng.standard_normal((3, 4))),
                tensor(np.array([[2, 0, 1, 2]])),
                tensor(rng.standard_normal((1, 4))),
            ),
            {"dim": 0},
        )
    ]


scatter_mul_p = Primitive(
    "scatter_mul",
    "opaque",
    impl=_scatter_mul_impl,
    abstract=_scatter_abstract,
)
defsample(scatter_mul_p, _scatter_mul_sample)
defvjp(scatter_mul_p, _scatter_mul_vjp)


@op(method="scatter", inplace="scatter_")
def scatter(
    input: Tensor, dim: int, index: Tensor, src: Tensor | None = None, value=None, *, reduce=None
) -> Tensor:
    """Write ``src`` (a tensor, or a scalar ``value``) into ``input`` at ``index`` along
    ``dim`` (out of place). ``reduce`` may be 'add' or 'multiply'."""
    if src is None:
        if value is None:
            raise TypeError("scatter: expected a src tensor or a value")
        src = value
    index = _as_index(index, "scatter")
    d = _gs_checks(input, dim, index, "scatter", src)
    s = _src_value(input, src, "scatter")
    if reduce is None:
        return bind(scatter_p, (input, index, s), {"dim": d})
    if reduce == "add":
        return bind(scatter_add_p, (input, index, s), {"dim": d})
    if reduce == "multiply":
        return bind(scatter_mul_p, (input, index, s), {"dim": d})
    raise ValueError(f"scatter: reduce argument must be 'add' or 'multiply', got {reduce!r}")


@op(method="scatter_add", inplace="scatter_add_")
def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor | None) -> Tensor:
    """``input`` plus ``src`` accumulated at ``index`` along ``dim`` (duplicates add up)."""
    index = _as_index(index, "scatter_add")
    if not _is_tensor(src):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    d = _gs_checks(input, dim, index, "scatter_add", src)
    return bind(scatter_add_p, (input, index, _src_value(input, src, "scatter_add")), {"dim": d})


# -- index_select / index_add / index_fill ---------------------------------------------------
def _index_select_impl(x, index, dim):
    if x.ndim == 0:
        _check_range(index, 1, "index_select", 0)
        return x.reshape(1)[index.reshape(-1)].reshape(index.shape)
    _check_range(index, x.shape[dim], "index_select", dim)
    return np.take(x, index.reshape(-1), axis=dim)


def _index_select_abstract(x, index, dim):
    if x.ndim == 0:
        return AbstractValue(index.shape, x.dtype)
    shp = list(x.shape)
    shp[dim] = int(np.prod(index.shape, dtype=np.int64))
    return AbstractValue(shp, x.dtype)


def _index_select_vjp(g, out, x, index, dim):
    from .._creation import zeros

    z = zeros(tuple(x.shape), dtype=g.dtype)
    return (bind(index_add_p, (z, index, g), {"dim": dim, "alpha": 1}), None)


index_select_p = Primitive(
    "index_select",
    "opaque",
    impl=_index_select_impl,
    abstract=_index_select_abstract,
)
defvjp(index_select_p, _index_select_vjp)


@op(method="index_select")
def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Entries of ``input`` along ``dim`` at the positions in the 1-D ``index``."""
    index = _as_index(index, "index_select")
    _check_1d_index(index, "index_select")
    d = wrap_dim(dim, input._data.ndim, "index_select")
    return bind(index_select_p, (input, index), {"dim": d})


def _index_add_impl(x, index, src, dim, alpha):
    out = x.copy()
    if x.ndim == 0:
        _check_range(index, 1, "index_add", 0)
        o = out.reshape(1)
        np.add.at(o, index.reshape(-1), np.reshape(src, -1) * alpha)
        return out
    _check_range(index, x.shape[dim], "index_add", dim)
    s = src if alpha == 1 else src * np.asarray(alpha, src.dtype)
    np.add.at(np.moveaxis(out, dim, 0), index.reshape(-1), np.moveaxis(s, dim, 0))
    return out


def _index_add_vjp(g, out, x, index, src, dim, alpha):
    gs = index_select(g, dim, index)
    if alpha != 1:
        gs = gs * alpha
    return g, None, gs


index_add_p = Primitive(
    "index_add",
    "opaque",
    impl=_index_add_impl,
    abstract=lambda x, index, src, dim, alpha: AbstractValue(x.shape, x.dtype),
)
defvjp(index_add_p, _index_add_vjp)


@op(method="index_add", inplace="index_add_")
def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """``input`` with ``alpha * source`` slices added at ``index`` along ``dim``."""
    index = _as_index(index, "index_add")
    _check_1d_index(index, "index_add")
    nd = input._data.ndim
    d = wrap_dim(dim, nd, "index_add")
    exp = list(input._data.shape)
    if nd:
        exp[d] = index._data.size
    if tuple(source.shape) != tuple(exp) and not (nd == 0 and source._data.size == 1):
        raise ShapeError(
            f"index_add: source shape {tuple(source.shape)} must be {tuple(exp)} "
            f"(input shape {tuple(input.shape)}, index of {index._data.size} "
            f"entries along dim {d})"
        )
    return bind(
        index_add_p,
        (input, index, _src_value(input, source, "index_add")),
        {"dim": d, "alpha": alpha},
    )


def _index_fill_impl(x, index, value, dim):
    out = x.copy()
    if x.ndim == 0:
        _check_range(index, 1, "index_fill", 0, True)
        if index.size:
            out[...] = value
        return out
    _check_range(index, x.shape[dim], "index_fill", dim, True)
    np.moveaxis(out, dim, 0)[index.reshape(-1)] = value
    return out


def _fill_value_vjp(g, gx, value):
    from .reduction import sum

    if _is_tensor(value):
        return sum(g - gx)
    return None


def _index_fill_vjp(g, out, x, index, value, dim):
    gx = bind(index_fill_p, (g, index, 0), {"dim": dim})
    return gx, None, _fill_value_vjp(g, gx, value)


index_fill_p = Primitive(
    "index_fill",
    "opaque",
    impl=_index_fill_impl,
    abstract=lambda x, index, value, dim: AbstractValue(x.shape, x.dtype),
)
defvjp(index_fill_p, _index_fill_vjp)


@op(method="index_fill", inplace="index_fill_")
def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """``input`` with the slices at ``index`` along ``dim`` set to ``value``."""
    index = _as_index(index, "index_fill")
    _check_1d_index(index, "index_fill")
    d = wrap_dim(dim, input._data.ndim, "index_fill")
    return bind(index_fill_p, (input, index, _scalar_value(input, value, "index_fill")), {"dim": d})


# -- masked_fill / masked_select -------------------------------------------------------------
def _masked_fill_impl(x, mask, value):
    return np.where(mask, np.asarray(value, x.dtype), x)


def _masked_fill_abstract(x, mask, value):
    try:
        ok = np.broadcast_shapes(x.shape, mask.shape) == tuple(x.shape)
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(
            f"masked_fill: the mask of shape {tuple(mask.shape)} is not "
            f"broadcastable to the input of shape {tuple(x.shape)}"
        )
    return AbstractValue(x.shape, x.dtype)


def _masked_fill_vjp(g, out, x, mask, value):
    gx = bind(masked_fill_p, (g, mask, 0), {})
    return gx, None, _fill_value_vjp(g, gx, value)


masked_fill_p = Primitive(
    "masked_fill",
    "elementwise",
    impl=_masked_fill_impl,
    abstract=_masked_fill_abstract,
)
defvjp(masked_fill_p, _masked_fill_vjp)


@op(method="masked_fill")
def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """``input`` with ``value`` where ``mask`` (broadcast to input's shape) is True."""
    mask = _as_mask(mask, "masked_fill")
    _masked_fill_abstract(
        AbstractValue(input._data.shape, None), AbstractValue(mask._data.shape, None), None
    )
    return bind(masked_fill_p, (input, mask, _scalar_value(input, value, "masked_fill")))


@op(method="masked_select")
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """1-D tensor of the entries of ``input`` where ``mask`` holds (both broadcast)."""
    from .elementwise import broadcast_shapes
    from .shape import expand

    mask = _as_mask(mask, "masked_select")
    shape = broadcast_shapes(input.shape, mask.shape, op="masked_select")
    x = expand(input, shape)
    m = np.broadcast_to(mask._data, shape)
    return bind(getitem_mask_p, (x,), {"idx": (m,), "basic": False, "shape": tuple(shape)})


# -- take / take_along_dim -------------------------------------------------------------------
@op(method="take_along_dim")
def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Values of ``input`` at ``indices`` along ``dim`` (shapes broadcast except at dim)."""
    from .shape import expand, reshape

    indices = _as_index(indices, "take_along_dim", "indices")
    if dim is None:
        return gather(reshape(input, -1), 0, reshape(indices, -1))
    nd = input._data.ndim
    if indices._data.ndim != nd:
        raise ShapeError(
            f"take_along_dim: input and indices should have the same number of "
            f"dimensions, but got input shape {tuple(input.shape)} and indices "
            f"shape {tuple(indices.shape)}"
        )
    d = wrap_dim(dim, nd, "take_along_dim")
    if nd == 0:
        return gather(input, 0, indices)
    xs, ishp = list(input.shape), list(indices.shape)
    xs[d] = ishp[d] = 1
    from .elementwise import broadcast_shapes

    b = list(broadcast_shapes(tuple(xs), tuple(ishp), op="take_along_dim"))
    bx, bi = list(b), list(b)
    bx[d], bi[d] = input.shape[d], indices.shape[d]
    return gather(expand(input, tuple(bx)), d, expand(indices, tuple(bi)))


@op(method="take")
def take(input: Tensor, index: Tensor) -> Tensor:
    """``input`` treated as 1-D, read at ``index`` (negative indices count from the end)."""
    from .shape import reshape

    index = _as_index(index, "take")
    flat = reshape(input, -1)
    n = flat._data.shape[0]
    idx = bind(wrap_index_p, (index,), {"n": n, "op": "take"})
    return reshape(index_select(flat, 0, reshape(idx, -1)), tuple(index.shape))


def _wrap_index_impl(index, n, op):
    _check_range(index, n, op, 0, True)
    return np.where(index < 0, index + n, index).astype(np.int64)


wrap_index_p = Primitive(
    "wrap_index",
    "elementwise",
    impl=_wrap_index_impl,
    nondiff=True,
    save=SAVE_NONE,
    abstract=lambda index, n, op: AbstractValue(index.shape, index.dtype),
)


# -- one_hot -------------------------------------------------------------------------------
def _one_hot_impl(x, num_classes):
    if x.size and x.min() < 0:
        raise ValueError("one_hot: Class values must be non-negative.")
    if x.size and x.max() >= num_classes:
        raise ValueError(
            f"one_hot: Class values must be smaller than num_classes "
            f"({num_classes}), got {int(x.max())}."
        )
    return (x[..., None] == np.arange(num_classes)).astype(np.int64)


def _one_hot_abstract(x, num_classes):
    from .._dtype import int64

    return AbstractValue(tuple(x.shape) + (num_classes,), int64)


one_hot_p = Primitive(
    "one_hot",
    "elementwise",
    impl=_one_hot_impl,
    abstract=_one_hot_abstract,
    nondiff=True,
    save=SAVE_NONE,
)


@op(export=False)
def one_hot(input: Tensor, num_classes=-1) -> Tensor:
    """``torch.nn.functional.one_hot``: int64 one-hot encoding in a new last dim."""
    if input._data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: is only applicable to index tensors (int64), got {input.dtype}")
    if num_classes == -1:
        if input._data.size == 0:
            raise ValueError("one_hot: can not infer total number of classes from empty tensor.")
        from .reduction import amax

        num_classes = int(amax(input).item()) + 1  # reads values: not traceable
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes should be -1 or non-negative, got {num_classes}")
    return bind(one_hot_p, (input,), {"num_classes": int(num_classes)})


# sort / argsort / topk / unique / nonzero live in sorting.py, imported here where their
# section was, so the records keep their order. Every name stays importable from here.
from .sorting import (  # noqa: E402, F401
    _argsort_abstract,
    _argsort_impl,
    _nonzero_abstract,
    _nonzero_impl,
    _unique_abstract,
    _unique_impl,
    argsort,
    argsort_p,
    argwhere,
    kthvalue,
    msort,
    nonzero,
    nonzero_p,
    sort,
    topk,
    unique,
    unique_p,
)


# -- repeat_index (repeat_interleave's index) -------------------------------------------------
def _repeat_index_impl(repeats):
    if repeats.ndim != 1:
        raise ShapeError(
            f"repeat_interleave: repeats must be 0-dim or 1-dim, got shape {repeats.shape}"
        )
    if repeats.size and repeats.min() < 0:
        raise ShapeError("repeat_interleave: repeats can not be negative")
    return np.repeat(np.arange(repeats.shape[0], dtype=np.int64), repeats)


def _repeat_index_abstract(repeats):
    from .._dtype import int64

    return AbstractValue((None,), int64)


repeat_index_p = Primitive(
    "repeat_index",
    "opaque",
    impl=_repeat_index_impl,
    nondiff=True,
    abstract=_repeat_index_abstract,
    data_dependent=True,
    save=SAVE_NONE,
)


def repeat_index(repeats):
    """``torch.repeat_interleave(repeats)``: ``i`` repeated ``repeats[i]`` times."""
    repeats = _as_index(repeats, "repeat_interleave", "repeats")
    return bind(repeat_index_p, (repeats,))


__all__ = module_ops(__name__)
