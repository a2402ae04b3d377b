"""PyTorch-style type promotion for op arguments (tensors, 0-d tensors, Python scalars)."""

from __future__ import annotations

import numpy as np

from .. import _dtype as dt
from . import _core

_FROM_NP = dt._FROM_NP


def _dtype_of(x):
    return _FROM_NP[x._data.dtype]


def result_type(*operands):
    """The result dtype of an elementwise op over ``operands`` following PyTorch.

    Dimensioned tensors take priority over 0-d tensors, which take priority over Python
    scalars; a lower-priority operand only matters when it is of a higher category
    (bool < integer < floating).
    """
    Tensor = _core._Tensor
    dims = zeros = scalars = None
    for x in operands:
        if isinstance(x, Tensor):
            d = _FROM_NP[x._data.dtype]
            if x._data.ndim:
                dims = d if dims is None else dt.promote_types(dims, d)
            else:
                zeros = d if zeros is None else dt.promote_types(zeros, d)
        elif x is not None:
            d = dt.default_for_category(dt.scalar_category(x))
            scalars = d if scalars is None else dt.promote_types(scalars, d)
    return _combine(dims, _combine(zeros, scalars))


def _combine(higher, lower):
    if higher is None:
        return lower
    if lower is None:
        return higher
    if lower.category == 3 and higher.category == 2:
        # a complex scalar with a float tensor: the tensor's precision, made complex
        return higher.to_complex()
    if higher.category >= 2 and higher.category >= lower.category:
        return higher
    if higher.category == 0 or lower.category >= 2:
        return dt.promote_types(higher, lower)
    return higher


def promote_args(a, b):
    """Cast tensor operands of a binary op to their common dtype; scalars stay Python."""
    Tensor = _core._Tensor
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a._data.dtype is b._data.dtype or a._data.dtype == b._data.dtype:
            return a, b, a._data.dtype
        r = result_type(a, b)
        return _cast(a, r), _cast(b, r), r.np
    if isinstance(a, Tensor):
        t, s, flip = a, b, False
    elif isinstance(b, Tensor):
        t, s, flip = b, a, True
    else:
        raise TypeError(f"expected a Tensor operand, got {type(a).__name__} and {type(b).__name__}")
    if not isinstance(s, (int, float, bool, complex, np.number, np.bool_)):
        s = _coerce(s)
        if isinstance(s, Tensor):
            return promote_args(a if not flip else s, s if not flip else b)
    elif isinstance(s, np.generic):
        # A NumPy scalar is a scalar to PyTorch (float32 tensor * np.float64(2) stays
        # float32), but NumPy's kernels would let its dtype win: pass it as a Python number.
        s = s.item()
    td = t._data.dtype
    sc = dt.scalar_category(s)
    tc = _FROM_NP[td].category
    if sc > tc:
        r = _FROM_NP[td].to_complex() if sc == 3 and tc == 2 else dt.default_for_category(sc)
        t = _cast(t, r)
        td = r.np
    if td.kind == "V" or td == np.float16:  # keep low-precision dtypes: NumPy upcasts here
        s = np.asarray(s, dtype=td)
    elif sc == 1 and td.kind in "iu" and not 0 <= s <= 127:
        # PyTorch wraps an out-of-range Python int into the tensor's dtype (NumPy raises).
        s = np.array(int(s), dtype=np.int64).astype(td)[()]
    elif sc == 2 and tc < 2:
        s = float(s)
    return (s, t, td) if flip else (t, s, td)


def _coerce(v):
    """Turn a list / ndarray operand into a Tensor (as torch does for array-likes)."""
    from .._creation import tensor

    if isinstance(v, (np.ndarray, list, tuple)):
        return tensor(v)
    raise TypeError(f"unsupported operand type {type(v).__name__} for a tensor operation")


def _cast(t, d):
    if t._data.dtype == d.np:
        return t
    from .elementwise import convert

    return convert(t, d)


__all__ = ["promote_args", "result_type"]
