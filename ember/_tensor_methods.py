"""Tensor methods and operators, defined once in terms of ember ops.

The methods of the op records (``exp``, ``exp_``, ``sum``, ...) are generated into
:mod:`ember._tensor_ops`, which ``Tensor`` inherits; this module holds the operators and the
methods that are not ops. In-place methods (``add_``, ``__setitem__``, ...) compute the new
value with the same ops and write it through the ``assign`` primitive, which declares its
effect on the target: the version counter is bumped so a backward pass that saved the old
value fails loudly, and under autograd the tensor's history is rebased onto the new node.
"""

from __future__ import annotations

import numpy as np

from . import _dtype as dt
from . import _tensor_ops
from ._creation import empty, full, ones, tensor, zeros
from ._memory_format import (
    _CHANNELS_LAST,
    _MEMORY_FORMATS,
    _clone_strides,
    _dense_like_strides,
    _memory_format_name,
    _suggested_format,
    copy_with_strides,
)
from ._tensor import Tensor, _new
from .backends.cpu import FAST_FLOATS as _FAST
from .ops import elementwise as E
from .ops import indexing as I
from .ops import linalg as L
from .ops import math_extra as MX
from .ops import shape as S
from .ops._ad import defvjp
from .ops._core import SAVE_NONE, AbstractValue, Primitive, _state, bind
from .ops._ew_binary import binary_into
from .ops.indexing import masked_fill

__all__: list[str] = []


# -- the in-place write primitive ----------------------------------------------------------
def _assign_impl(target, value):
    np.copyto(target, value, casting="unsafe")
    return target


assign_p = Primitive(
    "assign",
    "inplace",
    impl=_assign_impl,
    save=SAVE_NONE,
    nondiff=True,
    abstract=lambda t, v: AbstractValue(t.shape, t.dtype),
)


def _check_cast(self, r, op):
    sd, rd = self._data.dtype, r._data.dtype
    if sd != rd:
        sdt, rdt = dt.from_numpy_dtype(sd), dt.from_numpy_dtype(rd)
        if op == "float_power_":  # PyTorch computes it in the result dtype only
            raise RuntimeError(
                f"float_power_: the base given to float_power_ has dtype {sdt.name} but the "
                f"operation's result requires dtype {rdt.name}"
            )
        if sd.kind == "c" and rd.kind == "f":  # abs_: |z| would be stored as z's real part
            raise RuntimeError(f"{op}: in-place {op[:-1]} is not supported for complex tensors")
        if rdt.category > sdt.category:
            raise RuntimeError(
                f"{op}: result type {rdt.name} can't be cast to the desired output type {sdt.name}"
            )
    if tuple(r.shape) != tuple(self.shape):
        raise RuntimeError(
            f"{op}: output with shape {list(self.shape)} doesn't match the "
            f"broadcast shape {list(r.shape)}"
        )


def _inplace(self, fn, op, *args):
    """Run ``fn(self, *args)`` and store the result in ``self``."""
    if _state.grad_enabled and self.requires_grad and self._node is None:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an "
            "in-place operation. Wrap it in `with ember.no_grad():` or use the "
            "out-of-place form."
        )
    need_graph = _state.grad_enabled and (
        self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
    )
    if not need_graph:
        if _state.tracer is None and _write_into(self, fn, args):
            self._version[0] += 1
            return self
        r = fn(self, *args)
        _check_cast(self, r, op)
        bind(assign_p, (self, r))
        self._version[0] += 1
        return self
    base = self._base
    if base is not None:
        if base.requires_grad and base._node is None:
            raise RuntimeError(
                f"{op}: a view of a leaf Variable that requires grad is being "
                "used in an in-place operation"
            )
        chain = _view_chain(self, base)
        if chain is not None:
            return _inplace_view(self, base, chain, fn, op, args)
        if base.requires_grad:
            raise RuntimeError(
                f"{op}: in-place modification of this view of a tensor that "
                "requires grad is not supported; use the out-of-place op"
            )
    # the pre-update value, for VJPs that read it (an op the tracer sees when compiling)
    if _state.tracer is None:
        old = _new(self._data.copy())
    else:  # a clone the tracer sees reading ``self`` itself (a fresh ``zeros`` stays one)
        with _NoGrad():
            old = self.clone()
    old._node, old._idx, old.requires_grad = self._node, self._idx, self.requires_grad
    r = fn(old, *args)
    _check_cast(self, r, op)
    with _NoGrad():
        bind(assign_p, (self, r))
    self._version[0] += 1
    if r._node is not None and self._data.dtype == r._data.dtype:
        self._node, self._idx, self.requires_grad = r._node, r._idx, True
    elif r.requires_grad:
        r2 = E.convert(r, self.dtype)
        self._node, self._idx, self.requires_grad = r2._node, r2._idx, True
    return self


# the in-place arithmetic computed straight into the tensor's buffer (no result array to copy
# in): x.add_(y) of (2048, 1024) float32 661 -> ~130 us, x.mul_(0.9) 465 -> ~90 us
_UFUNC_OF = {E.add: np.add, E.sub: np.subtract, E.mul: np.multiply, E.div: np.true_divide}


def _write_into(self, fn, args):
    """``self op= other`` written straight into ``self``'s buffer for add/sub/mul/div of a
    float32/float64 tensor by a tensor of its dtype that broadcasts to its shape or by a
    Python number (alpha 1, no rounding mode); False where another case applies (promotion,
    casts, alpha, ...: computed out of place and assigned). The same bits either way."""
    ufunc = _UFUNC_OF.get(fn)
    if ufunc is None or not args or (len(args) > 1 and args[1] not in (1, None)):
        return False
    a = self._data
    if type(a) is not np.ndarray or a.dtype not in _FAST or not a.flags.writeable:
        return False
    other = args[0]
    if type(other) in (float, int):
        b = other
    elif isinstance(other, Tensor) and type(other._data) is np.ndarray:
        b = other._data
        if b.dtype != a.dtype or b.ndim > a.ndim:
            return False
        if b.shape != a.shape and np.broadcast_shapes(a.shape, b.shape) != a.shape:
            return False
        if b is not a and np.may_share_memory(a, b):  # (overlap: the out-of-place path)
            return False
    else:
        return False
    binary_into(ufunc, a, b)
    return True


def _view_chain(view, base):
    """The (prim, params) steps that turn ``base`` into ``view``, or None if unknown."""
    chain = []
    t = view
    while t is not base:
        step = t.__dict__.get("_view")
        if step is None:
            return None
        src, prim, params = step
        chain.append((prim, params))
        t = src
    chain.reverse()
    return chain


def _replay(z, chain):
    for prim, params in chain:
        z = bind(prim, (z,), params)
    return z


def _inplace_view(self, base, chain, fn, op, args):
    """In-place update of a view under autograd: the base's history is rebased to
    ``base + V^T(new - old)`` (V: the view, a selection) and the view is re-derived from it."""
    from .autograd import grad as _grad

    old = _new(self._data.copy())
    old._node, old._idx, old.requires_grad = self._node, self._idx, self.requires_grad
    r = fn(old, *args)
    _check_cast(self, r, op)
    if r._data.dtype != self._data.dtype:
        r = E.convert(r, self.dtype)
    if tuple(r.shape) != tuple(self.shape):
        r = S.expand(r, self.shape)
    b_old = _new(base._data.copy())
    b_old._node, b_old._idx, b_old.requires_grad = base._node, base._idx, base.requires_grad
    z = _new(np.zeros_like(base._data)).requires_grad_()
    (scatter,) = _grad(_replay(z, chain), z, r - old, create_graph=True)
    b_new = b_old + scatter
    with _NoGrad():
        bind(assign_p, (self, r))
    self._version[0] += 1
    if b_new._node is not None:
        base._node, base._idx, base.requires_grad = b_new._node, b_new._idx, True
        v_new = _replay(b_new, chain)
        self._node, self._idx, self.requires_grad = v_new._node, v_new._idx, True
    return self


class _NoGrad:
    def __enter__(self):
        self.prev = _state.grad_enabled
        _state.grad_enabled = False

    def __exit__(self, *a):
        _state.grad_enabled = self.prev


def _inplace_method(fn, op):
    def method(self, *args, **kwargs):
        if kwargs:
            return _inplace(self, lambda s, *a: fn(s, *a, **kwargs), op, *args)
        return _inplace(self, fn, op, *args)

    method.__name__ = op
    return method


def _install(**methods):
    """Set ``methods`` on Tensor. ``setattr`` rather than ``Tensor.name = ...``: Tensor declares
    these methods for type checkers (``ember/_tensor.py``), which reject assigning to them."""
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


# -- operators -----------------------------------------------------------------------------
# NOTE: the arithmetic operators are the eager hot path of model code (``h * x``, ``h + 1.0``,
# ``h / 2.0``): the usual cases (two tensors of one dtype; a float32/float64 tensor and a
# Python float or int, which keeps the tensor's dtype under PyTorch's promotion) go straight
# to bind. Everything else takes the op function, which promotes and checks.
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _fast_binary(prim, slow):
    def op(self, other):
        t = type(other)
        if t is float or t is int:
            d = self._data.dtype
            if d is _F32 or d is _F64:
                return bind(prim, (self, other))
        elif (t is Tensor or isinstance(other, Tensor)) and self._data.dtype is other._data.dtype:
            return bind(prim, (self, other))
        return slow(self, other)

    op.__name__ = f"{prim.name}_operator"
    return op


def _fast_div(self, other):
    d = self._data.dtype
    if d is _F32 or d is _F64:
        t = type(other)
        if t is float or t is int or (isinstance(other, Tensor) and other._data.dtype is d):
            return bind(E.div_p, (self, other))
    return E.div(self, other)


def _fast_matmul(self, other):
    if isinstance(other, Tensor):
        a, b = self._data, other._data
        d = a.dtype
        if (
            (d is _F32 or d is _F64)
            and b.dtype is d
            and a.ndim >= 2
            and b.ndim >= 2
            and a.shape[-1] == b.shape[-2]
        ):
            return bind(L.matmul_p, (self, other))
    return L.matmul(self, other)


def _rsub(self, other):
    t = type(other)
    if t is float or t is int:  # ``1.0 - p``: the fast path of the other operators
        d = self._data.dtype
        if d is _F32 or d is _F64:
            return bind(E.sub_p, (other, self))
    return E.sub(other, self)


def _rdiv(self, other):
    t = type(other)
    if t is float or t is int:
        d = self._data.dtype
        if d is _F32 or d is _F64:
            return bind(E.div_p, (other, self))
    return E.div(other, self)


def _rpow(self, other):
    return E.pow(other, self)


def _rfloordiv(self, other):
    return E.floor_divide(other, self)


def _rmod(self, other):
    return E.remainder(other, self)


def _rmatmul(self, other):
    return L.matmul(other if isinstance(other, Tensor) else tensor(other, dtype=self.dtype), self)


def _eq(self, other):
    if other is None:
        return False
    return E.eq(self, other)


def _ne(self, other):
    if other is None:
        return True
    return E.ne(self, other)


def _invert(self):
    if self._data.dtype == np.bool_:
        return E.logical_not(self)
    return E.bitwise_not(self)


def _and(self, other):
    return E.bitwise_and(self, other)


def _or(self, other):
    return E.bitwise_or(self, other)


def _xor(self, other):
    return E.bitwise_xor(self, other)


def _lshift(self, other):
    return MX.bitwise_left_shift(self, other)


def _rlshift(self, other):
    return MX.bitwise_left_shift(other, self)


def _rshift(self, other):
    return MX.bitwise_right_shift(self, other)


def _rrshift(self, other):
    return MX.bitwise_right_shift(other, self)


def _pow_method(self, exponent):
    return E.pow(self, exponent)


_OPS = {
    "__add__": _fast_binary(E.add_p, E.add),
    "__radd__": _fast_binary(E.add_p, E.add),  # (commutative: the same kernel call)
    "__sub__": _fast_binary(E.sub_p, E.sub),
    "__rsub__": _rsub,
    "__mul__": _fast_binary(E.mul_p, E.mul),
    "__rmul__": _fast_binary(E.mul_p, E.mul),
    "__truediv__": _fast_div,
    "__rtruediv__": _rdiv,
    "__floordiv__": E.floor_divide,
    "__rfloordiv__": _rfloordiv,
    "__mod__": E.remainder,
    "__rmod__": _rmod,
    "__pow__": _pow_method,
    "__rpow__": _rpow,
    "__matmul__": _fast_matmul,
    "__rmatmul__": _rmatmul,
    "__neg__": E.neg,
    "__pos__": lambda self: self,
    "__abs__": E.abs,
    "__eq__": _eq,
    "__ne__": _ne,
    "__lt__": E.lt,
    "__le__": E.le,
    "__gt__": E.gt,
    "__ge__": E.ge,
    "__invert__": _invert,
    "__and__": _and,
    "__rand__": _and,
    "__or__": _or,
    "__ror__": _or,
    "__xor__": _xor,
    "__rxor__": _xor,
    "__lshift__": _lshift,
    "__rlshift__": _rlshift,
    "__rshift__": _rshift,
    "__rrshift__": _rrshift,
}
for _name, _fn in _OPS.items():
    setattr(Tensor, _name, _fn)

_INPLACE_OPS = {
    "__iadd__": (E.add, "add_"),
    "__isub__": (E.sub, "sub_"),
    "__imul__": (E.mul, "mul_"),
    "__itruediv__": (E.div, "div_"),
    "__ifloordiv__": (E.floor_divide, "floor_divide_"),
    "__imod__": (E.remainder, "remainder_"),
    "__ipow__": (E.pow, "pow_"),
    "__iand__": (_and, "bitwise_and_"),
    "__ior__": (_or, "bitwise_or_"),
    "__ixor__": (_xor, "bitwise_xor_"),
    "__ilshift__": (_lshift, "bitwise_left_shift_"),
    "__irshift__": (_rshift, "bitwise_right_shift_"),
    "__imatmul__": (L.matmul, "matmul_"),
}
for _name, (_fn, _op) in _INPLACE_OPS.items():
    setattr(Tensor, _name, _inplace_method(_fn, _op))


# -- named methods: generated from the op records into ember/_tensor_ops.py -----------------
_tensor_ops._inplace = _inplace


def _addcmul(self, tensor1, tensor2, *, value=1):
    return self + tensor1 * tensor2 * value if value != 1 else self + tensor1 * tensor2


def _addcdiv(self, tensor1, tensor2, *, value=1):
    return self + tensor1 / tensor2 * value if value != 1 else self + tensor1 / tensor2


_install(
    addcmul=_addcmul,
    addcdiv=_addcdiv,
    addcmul_=_inplace_method(_addcmul, "addcmul_"),
    addcdiv_=_inplace_method(_addcdiv, "addcdiv_"),
)


def _fill(self, value):
    v = value._data if isinstance(value, Tensor) else value
    t = _new(np.full(self._data.shape, v, dtype=self._data.dtype))
    made = getattr(_state.tracer, "constructed", None)
    if made is not None:  # compiled mode: a constant the graph re-creates (a `full`)
        made(t)
    return t


def _fill_method(self, value):
    if isinstance(value, Tensor) and value._data.ndim != 0:
        raise RuntimeError(
            "fill_ only supports 0-dimension value tensor but got tensor with "
            f"{value._data.ndim} dimensions."
        )
    if isinstance(value, Tensor) and value.requires_grad:
        return _inplace(self, lambda s, v: E.mul(s, 0) + v, "fill_", value)
    return _inplace(
        self, lambda s: _fill(s, value) if not s.requires_grad else s * 0 + value, "fill_"
    )


_install(
    fill_=_fill_method,
    zero_=lambda self: _fill_method(self, 0),
)


def _copy_(self, src, non_blocking=False):
    if not isinstance(src, Tensor):
        src = _new(np.asarray(src))
    ss, vs = self._data.shape, src._data.shape
    if len(vs) > len(ss) or any(b not in (1, a) for a, b in zip(ss[::-1], vs[::-1])):
        raise RuntimeError(
            f"copy_: src of shape {tuple(vs)} cannot be broadcast to the destination's "
            f"shape {tuple(ss)}"
        )
    # (the raw NumPy broadcast skips two ops in eager mode; a trace records the ops, since
    # the source's values are the traced function's own)
    return _inplace(
        self,
        lambda s, v: (
            S.expand(E.convert(v, s.dtype), s.shape) * 1
            if v.requires_grad or _state.tracer is not None
            else _new(np.broadcast_to(v._data.astype(s._data.dtype), s._data.shape))
        ),
        "copy_",
        src,
    )


_install(copy_=_copy_)


def _setitem_dispatch(self, index, value):
    if isinstance(value, Tensor):
        return _inplace(self, lambda s, v: I.index_put_value(s, index, v), "__setitem__", value)
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    return _inplace(self, lambda s: I.index_put_value(s, index, value), "__setitem__")


_install(
    __getitem__=I.getitem,
    __setitem__=_setitem_dispatch,
)


def _masked_fill_(self, mask, value):

    if isinstance(value, Tensor):  # an input, so a value that requires grad gets one
        return _inplace(self, lambda s, v: masked_fill(s, mask, v), "masked_fill_", value)
    return _inplace(self, lambda s: masked_fill(s, mask, value), "masked_fill_")


# -- conversion ----------------------------------------------------------------------------
def _is_dtype_arg(a):
    if isinstance(a, dt.DType) or a in (float, int, bool):
        return True
    if isinstance(a, str):
        return (a.startswith("ember.") or a in dt._BY_NAME) and a not in ("cpu", "cuda")
    return type(a).__module__.startswith("torch") and hasattr(a, "is_floating_point")


def _to(self, *args, **kwargs):
    """``to(dtype)``, ``to(device)``, ``to(other)``, ``to(device, dtype)``."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    fmt = _memory_format_name(kwargs.pop("memory_format", None), "to")
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif _is_dtype_arg(a):
            dtype = a
        else:
            device = a
    if device is not None:
        from ._device import as_device

        d = as_device(device)
        if d.type != "cpu":
            from .backends import get_backend

            get_backend(d.type)
    r = self if dtype is None else E.convert(self, dtype)
    if fmt != "preserve_format":
        # as PyTorch: a copy in that layout unless the tensor's suggested layout is already
        # it (a transposed matrix stays as it is under ``contiguous_format``)
        if copy or _suggested_format(r._data) != fmt:
            return r.clone(memory_format=_MEMORY_FORMATS[fmt])
        return r
    if copy and r is self:
        r = self.clone()
    return r


def _clone(self, memory_format=None):
    fmt = _memory_format_name(memory_format, "clone")
    rank = {"channels_last": 4, "channels_last_3d": 5}.get(fmt)
    if rank is not None and self.ndim != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt} format")
    return _clone_op(self, fmt)


def _clone_impl(x, memory_format="preserve_format"):
    # the usual case: C strides stay C strides (size-1 and empty dimensions may carry other
    # strides NumPy still calls contiguous, which PyTorch keeps)
    if memory_format not in _CHANNELS_LAST and x.flags.c_contiguous and x.size and 1 not in x.shape:
        return x.copy()
    strides = _clone_strides(x, memory_format) if isinstance(x, np.ndarray) else None
    if strides is None or strides == _dense_like_strides(x.shape, (0,) * x.ndim):
        if x.ndim == 2 and isinstance(x, np.ndarray):  # (a transposed matrix: a tiled copy)
            from .ops._layout import c_order

            return c_order(x) if not x.flags.c_contiguous else x.copy()
        return x.copy()  # C order
    return copy_with_strides(x, strides)


clone_p = Primitive(
    "clone",
    "layout",
    impl=_clone_impl,
    save=SAVE_NONE,
    abstract=lambda x: AbstractValue(x.shape, x.dtype),
)
defvjp(clone_p, lambda g, out, x, memory_format="preserve_format": (g,))


def _clone_op(x, memory_format="preserve_format"):
    if memory_format == "preserve_format":
        return bind(clone_p, (x,))
    return bind(clone_p, (x,), {"memory_format": memory_format})


def _contiguous(self, memory_format=None):
    fmt = _memory_format_name(memory_format, "contiguous")
    if fmt in ("channels_last", "channels_last_3d"):
        if self.stride() == _clone_strides(self._data, fmt):
            return self
        return _clone(self, memory_format)
    if self._data.flags.c_contiguous:
        return self
    return bind(clone_p, (self,), {"memory_format": "contiguous_format"})


_install(
    to=_to,
    clone=_clone,
    contiguous=_contiguous,
    float=lambda self: E.convert(self, dt.float32),
    double=lambda self: E.convert(self, dt.float64),
    half=lambda self: E.convert(self, dt.float16),
    bfloat16=lambda self: E.convert(self, dt.bfloat16),
    long=lambda self: E.convert(self, dt.int64),
    int=lambda self: E.convert(self, dt.int32),
    short=lambda self: E.convert(self, dt.int16),
    byte=lambda self: E.convert(self, dt.uint8),
    char=lambda self: E.convert(self, dt.int8),
    bool=lambda self: E.convert(self, dt.bool_),
)
# PyTorch's legacy tensor-type names (``torch.FloatTensor``); Ember's carry the ``ember.`` prefix
_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "float16": "HalfTensor",
    "bfloat16": "BFloat16Tensor",
    "int8": "CharTensor",
    "int16": "ShortTensor",
    "int32": "IntTensor",
    "int64": "LongTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
    "complex64": "ComplexFloatTensor",
    "complex128": "ComplexDoubleTensor",
}
_TYPE_DTYPES = {v: k for k, v in _TYPE_NAMES.items()}


def _type(self, dtype=None, non_blocking=False, **kwargs):
    """``Tensor.type``: with no argument the type name (``'ember.FloatTensor'``, PyTorch's
    names with Ember's prefix); given a dtype or a type name (``'ember.IntTensor'`` or
    ``'torch.IntTensor'``) the tensor converted to it (``self`` when it already has it).

    Example:
        >>> import ember
        >>> x = ember.zeros(2)
        >>> x.type(), x.type(ember.int64).type(), x.type("torch.DoubleTensor").dtype
        ('ember.FloatTensor', 'ember.LongTensor', ember.float64)
    """
    if dtype is None:
        return f"ember.{_TYPE_NAMES[self.dtype.name]}"
    if isinstance(dtype, str):
        prefix, _, name = dtype.rpartition(".")
        if prefix not in ("ember", "torch") or name not in _TYPE_DTYPES:
            raise ValueError(f"type: invalid type: {dtype!r}")
        dtype = getattr(dt, _TYPE_DTYPES[name].replace("bool", "bool_"))
    d = dt.as_dtype(dtype) if not isinstance(dtype, dt.DType) else dtype
    return self if d == self.dtype else E.convert(self, d)


_install(type=_type)
_install(
    type_as=lambda self, other: E.convert(self, other.dtype),
    cpu=lambda self: self,
    cuda=lambda self, device=None: _to(self, "cuda"),
)
_install(
    new_tensor=lambda self, data, *, dtype=None, requires_grad=False: _new_tensor(
        data, dtype or self.dtype, requires_grad
    )
)
_install(
    mT=property(lambda self: S.transpose(self, -2, -1)),
    T=property(lambda self: S.permute(self, tuple(reversed(range(self.ndim))))),
)


def _new_tensor(data, dtype, requires_grad=False):
    return tensor(data, dtype=dtype, requires_grad=requires_grad)


def _new_zeros(self, *size, dtype=None, **kw):
    return zeros(*size, dtype=dtype or self.dtype)


def _new_ones(self, *size, dtype=None, **kw):
    return ones(*size, dtype=dtype or self.dtype)


def _new_full(self, size, fill_value, *, dtype=None, **kw):
    return full(size, fill_value, dtype=dtype or self.dtype)


def _new_empty(self, *size, dtype=None, **kw):
    return empty(*size, dtype=dtype or self.dtype)


_install(
    new_zeros=_new_zeros,
    new_ones=_new_ones,
    new_full=_new_full,
    new_empty=_new_empty,
)


def _allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``Tensor.allclose``: :func:`ember.allclose` as a method (a Python bool).

    Example:
        >>> import ember
        >>> ember.tensor([1.0, 2.0]).allclose(ember.tensor([1.0, 2.0 + 1e-9]))
        True
    """
    return MX.allclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)


_install(allclose=_allclose, masked_fill_=_masked_fill_)

# the random in-place fills (uniform_, normal_, ...) live in their own module; it needs
# _inplace and _install from here, so it is imported last
from . import _tensor_random  # noqa: E402, F401
