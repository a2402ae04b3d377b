"""Symbolic values: :class:`Symbol` (a Tensor without data) and its graph value :class:`SVar`.

A symbol's ``_data`` is a zero-strided placeholder whose ``shape`` holds
:class:`~ember.symbol._sizes.SymInt` s, so the library's Python code (checks, reshape
targets) runs unchanged on it. While any symbol is alive the tracer of
:mod:`ember.symbol._trace` sits on the dispatch hook of :func:`ember.ops.bind` and turns every
op on symbols into a graph equation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtype as dt
from .._tensor import Tensor
from ..compiler.ir import Eqn, Var
from ..ops._core import _state
from ._sizes import opaque as _OPAQUE
from ._sizes import sym_size

__all__ = ["SVar", "Symbol", "SymbolicError"]


class SymbolicError(ValueError):
    """A symbolic graph cannot be built or run as asked (the message names the value)."""


class SVar(Var):
    """A graph value built by :mod:`ember.symbol`: an input (``kind="input"``), a shared
    variable (``"shared"``, its value in ``storage``) or an op result (``"op"``, made by
    ``producer``)."""

    __slots__ = ("kind", "name", "producer", "storage")

    def __init__(
        self,
        shape: Any,
        dtype: dt.DType,
        kind: str = "op",
        name: str | None = None,
        producer: Eqn | None = None,
        storage: Tensor | None = None,
    ):
        super().__init__(shape, dtype)
        self.kind, self.name, self.producer, self.storage = kind, name, producer, storage

    def label(self) -> str:
        if self.name:
            return repr(self.name)
        if self.producer is not None:
            return f"the result of {self.producer.prim.name} ({self.type_str()})"
        return f"a {self.kind} value ({self.type_str()})"


class _Placeholder(np.ndarray):
    """The ``_data`` of a symbol: zero strides (no memory), symbolic ``shape``, C-contiguous."""

    _sym_shape: tuple | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self._sym_shape = None

    @property  # type: ignore[override]
    def shape(self) -> Any:
        s = self._sym_shape
        return np.ndarray.shape.__get__(self) if s is None else s  # type: ignore[attr-defined]

    @property  # type: ignore[override]
    def size(self) -> Any:
        s = self._sym_shape
        if s is None:
            return np.ndarray.size.__get__(self)  # type: ignore[attr-defined]
        n = 1
        for d in s:
            n = d * n  # SymInt arithmetic: a product of symbolic sizes stays symbolic
        return n

    @property  # type: ignore[override]
    def flags(self) -> Any:
        return _CFlags if self._sym_shape is not None else np.ndarray.flags.__get__(self)  # type: ignore[attr-defined]

    @property  # type: ignore[override]
    def strides(self) -> Any:
        if self._sym_shape is None:
            return np.ndarray.strides.__get__(self)  # type: ignore[attr-defined]
        st, acc = [], self.itemsize
        for d in reversed(self._sym_shape):
            st.append(acc)
            acc *= int(d)
        return tuple(reversed(st))


class _CFlagsType:
    c_contiguous = True
    f_contiguous = False
    writeable = False
    owndata = False

    def __getitem__(self, k: str) -> bool:
        return {"C_CONTIGUOUS": True, "C": True, "WRITEABLE": False}.get(k, False)


_CFlags = _CFlagsType()


def _placeholder(shape: tuple, dtype: dt.DType) -> _Placeholder:
    concrete = tuple(int(d) for d in shape)
    a = np.broadcast_to(np.zeros((), dtype.np), concrete).view(_Placeholder)
    a._sym_shape = tuple(shape)
    return a


_live = 0  # symbols alive (the tracer stays installed while there are any)


class Symbol(Tensor):
    """A symbolic tensor: every Tensor op on it builds the graph instead of computing.

    Make them with :func:`ember.symbol.var` and :func:`ember.symbol.shared`.

    Example:
        >>> from ember import symbol as S
        >>> x = S.var("x", (None, 3))
        >>> (x * 2).sum(1)
        Symbol(sum: f32[x.0])
    """

    _svar: SVar

    def __del__(self) -> None:
        global _live
        if not self.__dict__.get("_counted"):  # a copy made outside wrap()
            return
        _live -= 1
        if _live == 0:
            _OPAQUE.clear()
            if _state.tracer is _TRACER and _TRACER is not None:
                _state.tracer = None

    def __repr__(self) -> str:
        v = self._svar
        what = v.name if v.name else (v.producer.prim.name if v.producer else v.kind)
        return f"Symbol({what}: {v.type_str()})"

    __str__ = __repr__

    @property
    def name(self) -> str | None:
        return self._svar.name

    def _no_value(self, what: str) -> Any:
        raise SymbolicError(
            f"{what} of {self._svar.label()}: a symbolic value has no data until the graph "
            "runs (compile it with ember.symbol.function); use tensor ops such as "
            "ember.where instead of Python control flow on values"
        )

    def __bool__(self) -> bool:
        return self._no_value("bool()")

    def __float__(self) -> float:
        return self._no_value("float()")

    def __int__(self) -> int:
        return self._no_value("int()")

    def __index__(self) -> int:
        return self._no_value("use as an index")

    def item(self) -> Any:
        return self._no_value("item()")

    def tolist(self) -> Any:
        return self._no_value("tolist()")

    def numpy(self, force: bool = False) -> np.ndarray:
        return self._no_value("numpy()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._no_value("conversion to a NumPy array")

    def __iter__(self) -> Any:
        return self._no_value("iteration")

    def __hash__(self) -> int:
        return id(self)

    def __getitem__(self, index: Any) -> Any:
        items = index if isinstance(index, tuple) else (index,)
        if any(
            isinstance(i, slice) and (type(i.start) is Symbol or type(i.stop) is Symbol)
            for i in items
        ):
            # Theano's minibatch x[i * n:(i + 1) * n]: dynamic_slice (see _slices.py)
            from ._slices import dynamic_slices

            x, rest = dynamic_slices(self, items)
            full = all(
                isinstance(i, slice) and i.start is None and i.stop is None and i.step is None
                for i in rest
            )
            return x if full else x[rest]
        from ..ops.indexing import getitem

        scalars = [type(i) is Symbol and i.ndim == 0 and i.dtype.np.kind in "iu" for i in items]
        if not any(scalars):
            return getitem(self, index)
        # a 0-d integer symbol (Theano's ``data[i]``): indexed as a 1-element index array,
        # then the axis that array adds (when nothing else broadcasts with it) is removed
        as_arr = tuple(i.reshape(1) if s else i for i, s in zip(items, scalars))
        out = getitem(self, as_arr)
        dummy = np.broadcast_to(np.zeros((), np.int8), tuple(int(d) for d in self._data.shape))
        one = dummy[
            tuple(np.zeros(1, np.int64) if s else _probe(i) for i, s in zip(items, scalars))
        ]
        want = dummy[tuple(0 if s else _probe(i) for i, s in zip(items, scalars))]
        if one.ndim == want.ndim:
            return out
        ax = next(k for k in range(one.ndim) if one.shape[:k] + one.shape[k + 1 :] == want.shape)
        return out.squeeze(ax)

    def numel(self) -> Any:
        """The number of elements (symbolic: a product of the symbolic sizes)."""
        return self._data.size

    nelement = numel

    def backward(self, *args: Any, **kwargs: Any) -> None:
        raise SymbolicError(
            f"backward() of {self._svar.label()}: symbolic graphs take gradients with "
            "ember.symbol.grad(cost, wrt)"
        )

    def detach(self) -> Symbol:
        """The same value with no gradient flowing back through it (``stop_gradient``)."""
        from ._prims import stop_gradient_p
        from ._trace import record

        return record(stop_gradient_p, (self,), {})

    def detach_(self) -> Symbol:
        raise SymbolicError("detach_(): symbolic values are immutable; use detach()")

    # Theano's names for a shared variable's value
    def get_value(self) -> Tensor:
        """The current value of a shared variable (a copy)."""
        return _storage(self, "get_value").clone()

    def set_value(self, value: Any) -> None:
        """Replace the value of a shared variable (same shape and dtype)."""
        st = _storage(self, "set_value")
        arr = np.asarray(value._data if isinstance(value, Tensor) else value)
        if arr.shape != st._data.shape:
            raise SymbolicError(
                f"set_value of shared variable {self._svar.label()}: shape {arr.shape}, "
                f"expected {st._data.shape}"
            )
        if not np.can_cast(arr.dtype, st._data.dtype, casting="same_kind"):
            raise SymbolicError(
                f"set_value of shared variable {self._svar.label()}: dtype {arr.dtype} "
                f"cannot be stored in its dtype {st._data.dtype}"
            )
        np.copyto(st._data, arr, casting="same_kind")

    @property
    def value(self) -> Tensor:
        """The storage tensor of a shared variable (the graph reads and updates it)."""
        return _storage(self, "value")


def _probe(i: Any) -> Any:
    """An index item as NumPy takes it (for working out the shape of an indexing result)."""
    if isinstance(i, Tensor):
        return np.zeros(tuple(int(d) for d in i._data.shape), i._data.dtype)
    if isinstance(i, list):
        return np.asarray(i)
    return i


class _SymbolicNode:
    """The ``_node`` of every symbol (symbols are results, never autograd leaves)."""

    prim = None
    edges = ()

    def name(self) -> str:
        return "SymbolicResult"

    def __repr__(self) -> str:
        return "<symbolic>"


_SYMBOLIC_NODE = _SymbolicNode()


def _storage(s: Symbol, what: str) -> Tensor:
    st = s._svar.storage
    if st is None:
        raise SymbolicError(f"{what}: {s._svar.label()} is not a shared variable")
    return st


def wrap(v: SVar) -> Symbol:
    """A Symbol for ``v`` (symbols are thin: one can be rebuilt for any graph value)."""
    global _live
    s = object.__new__(Symbol)
    s._data = _placeholder(tuple(sym_size(d) for d in v.shape), v.dtype)
    s._node = _SYMBOLIC_NODE  # not a leaf: in-place ops reach bind and its clear error
    s._version = [0]
    s._svar = v
    s._counted = True
    if v.dtype.is_floating_point:  # differentiable: rules then compute every cotangent
        s.requires_grad = True
    s._data._svar = v  # type: ignore[attr-defined]  (a symbol used as an index array)
    _live += 1
    if _state.tracer is None:
        _install()
    return s


_TRACER: Any = None


def _install() -> None:
    global _TRACER
    from ._trace import TRACER, hook_seeds

    _TRACER = TRACER
    hook_seeds()
    _state.tracer = TRACER
