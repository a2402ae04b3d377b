"""Indexing primitives: ``x[idx]``, ``x[idx] = v``, gather/scatter and friends."""

from __future__ import annotations

import numpy as np

from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind


def _normalize_index(idx):
    """Turn a user index into a tuple NumPy accepts: Tensors become arrays; bool lists
    become masks. Returns (index, is_basic)."""
    from .._tensor import Tensor
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    basic = True
    for i in idx:
        if isinstance(i, Tensor):
            a = i._data
            if a.dtype.kind not in "iub":
                raise IndexError(f"tensors used as indices must be long, int, byte or bool "
                                 f"tensors, got {i.dtype}")
            if a.ndim == 0 and a.dtype.kind in "iu":
                out.append(int(a))
                continue
            out.append(a)
            basic = False
        elif isinstance(i, (list, np.ndarray)):
            a = np.asarray(i)
            if a.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors, got a float list/array")
            out.append(a)
            basic = False
        elif i is None or i is Ellipsis or isinstance(i, slice):
            if isinstance(i, slice) and i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
            out.append(i)
        elif isinstance(i, (bool, np.bool_)):
            out.append(np.asarray(i))
            basic = False
        elif isinstance(i, (int, np.integer)):
            out.append(int(i))
        else:
            raise IndexError(f"unsupported index type {type(i).__name__}: only integers, slices "
                             "(`:`), ellipsis (`...`), None and long or bool tensors are valid "
                             "indices")
    return tuple(out), basic


def _check_bounds(x_shape, idx):
    """Out-of-range integer indices raise IndexError with the dim and size (NumPy's message
    does not say which tensor)."""
    dim = 0
    n_ell = sum(1 for i in idx if i is Ellipsis)
    consumed = sum(1 for i in idx if i is not None and i is not Ellipsis and not (
        isinstance(i, np.ndarray) and i.dtype == np.bool_)) + sum(
            i.ndim for i in idx if isinstance(i, np.ndarray) and i.dtype == np.bool_)
    if consumed > len(x_shape):
        raise IndexError(f"too many indices for tensor of dimension {len(x_shape)}")
    for i in idx:
        if i is None:
            continue
        if i is Ellipsis:
            dim += len(x_shape) - consumed
            continue
        if isinstance(i, int):
            n = x_shape[dim]
            if not -n <= i < n:
                raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {n}")
        elif isinstance(i, np.ndarray) and i.dtype == np.bool_:
            if i.shape != tuple(x_shape[dim:dim + i.ndim]):
                raise IndexError(f"The shape of the mask {i.shape} at index {dim} does not match "
                                 f"the shape of the indexed tensor {tuple(x_shape)}")
            dim += i.ndim
            continue
        elif isinstance(i, np.ndarray) and i.size:
            n = x_shape[dim]
            if i.max() >= n or i.min() < -n:
                bad = i.max() if i.max() >= n else i.min()
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size {n}")
        dim += 1
    _ = n_ell


def _getitem_impl(x, idx, basic):
    return x[idx]


def _getitem_abstract(x, idx, basic):
    _check_bounds(x.shape, idx)
    shape = np.empty(x.shape, dtype=np.bool_)[idx].shape if 0 not in x.shape else np.zeros(
        x.shape, np.bool_)[idx].shape
    return AbstractValue(shape, x.dtype)


getitem_p = Primitive("getitem", "view", impl=_getitem_impl, abstract=_getitem_abstract,
                      save=SAVE_NONE, data_dependent=False)


def _getitem_vjp(g, out, x, idx, basic, shape):
    return (bind(index_put_zeros_p, (g,), {"idx": idx, "basic": basic, "shape": shape}),)


getitem_p.impl = lambda x, idx, basic, shape: x[idx]
getitem_p.abstract = lambda x, idx, basic, shape: _getitem_abstract(x, idx, basic)
getitem_p.vjp = _getitem_vjp


def _index_put_zeros_impl(g, idx, basic, shape):
    z = np.zeros(shape, g.dtype)
    if basic:
        z[idx] = g
    else:
        np.add.at(z, idx, g)
    return z


index_put_zeros_p = Primitive(
    "index_put_zeros", "layout", impl=_index_put_zeros_impl, save=SAVE_NONE,
    abstract=lambda g, idx, basic, shape: AbstractValue(shape, g.dtype),
    vjp=lambda gg, out, g, idx, basic, shape: (bind(getitem_p, (gg,), {
        "idx": idx, "basic": basic, "shape": gg._data.shape}),))


def getitem(x, index):
    """``x[index]``: basic indexing gives a view; tensor/list/mask indices copy."""
    idx, basic = _normalize_index(index)
    try:
        _check_bounds(x._data.shape, idx)
    except IndexError:
        raise
    return bind(getitem_p, (x,), {"idx": idx, "basic": basic, "shape": x._data.shape})


# -- setitem: out-of-place "x with x[idx] = v", used by Tensor.__setitem__ ------------------
def _setitem_impl(x, v, idx):
    r = x.copy()
    r[idx] = v
    return r


def _setitem_abstract(x, v, idx):
    return AbstractValue(x.shape, x.dtype)


index_put_p = Primitive("index_put", "layout", impl=_setitem_impl, abstract=_setitem_abstract,
                        save=SAVE_NONE)


@index_put_p.def_vjp
def _setitem_vjp(g, out, x, v, idx):
    from .reduction import sum_to
    gx = bind(index_fill_zero_p, (g,), {"idx": idx})
    gv = None
    if hasattr(v, "_data"):
        gv = bind(getitem_p, (g,), {"idx": idx, "basic": True, "shape": g._data.shape})
        gv = sum_to(gv, v.shape) if gv.shape != v.shape else gv
    return gx, gv


def _index_fill_zero_impl(g, idx):
    r = g.copy()
    r[idx] = 0
    return r


index_fill_zero_p = Primitive(
    "index_fill_zero", "layout", impl=_index_fill_zero_impl, save=SAVE_NONE,
    abstract=lambda g, idx: AbstractValue(g.shape, g.dtype),
    vjp=lambda gg, out, g, idx: (bind(index_fill_zero_p, (gg,), {"idx": idx}),))


def index_put_value(x, index, value):
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
        raise ShapeError(f"setitem: shape mismatch: value tensor of shape {tuple(np.shape(value))}"
                         f" cannot be broadcast to indexing result of shape "
                         f"{np.empty(x._data.shape, np.bool_)[idx].shape}") from None
    return bind(index_put_p, (x, value), {"idx": idx})


_ = (_getitem_impl,)
