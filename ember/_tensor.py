"""The eager :class:`Tensor`.

A Tensor holds a backend array (``_data``), autograd bookkeeping (``_node``: the
graph node that produced it, ``requires_grad``, ``grad``) and a version counter shared
with its views, which in-place ops bump so that backward can detect stale saved values.
Its op methods are generated from the op records into :mod:`ember._tensor_ops`; the
operators and the other methods live in :mod:`ember._tensor_methods`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _dtype as dt
from ._device import CPU
from ._tensor_ops import TensorOps
from .ops import _core
from .ops._core import INFERENCE_THREADS as _INFERENCE_THREADS
from .ops._core import _local, _state, bind  # noqa: F401  (bind is re-exported for method modules)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from . import _device
    from .ops._core import Node

__all__ = ["Tensor"]


class Tensor(TensorOps):
    """A multi-dimensional array with automatic differentiation.

    Example:
        >>> import ember
        >>> x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad.tolist()
        [2.0, 4.0, 6.0]
    """

    __slots__ = ("__dict__", "__weakref__", "_data", "_node", "_version")

    # Rarely-set attributes live in the instance __dict__ with these class defaults, so
    # creating a tensor on the hot path sets only three slots.
    _idx = 0
    _inference = False  # made inside ember.inference_mode (set on the instance)
    requires_grad = False
    grad: Tensor | None = None
    _base: Tensor | None = None
    _hooks: list[Callable[[Tensor], Tensor | None]] | None = None
    _post_hooks: list[Callable[[Tensor], None]] | None = None

    __array_priority__ = 1000  # make ndarray + Tensor defer to Tensor.__radd__

    # the slots, declared for the type checker
    _data: np.ndarray
    _node: Node | None
    _version: list[builtins.int]

    if TYPE_CHECKING:
        # Installed on the class by ember._tensor_methods (which imports this module);
        # declared here so that type checkers and IDEs see them.
        def __add__(self, other: _Operand) -> Tensor: ...
        def __radd__(self, other: _Operand) -> Tensor: ...
        def __sub__(self, other: _Operand) -> Tensor: ...
        def __rsub__(self, other: _Operand) -> Tensor: ...
        def __mul__(self, other: _Operand) -> Tensor: ...
        def __rmul__(self, other: _Operand) -> Tensor: ...
        def __truediv__(self, other: _Operand) -> Tensor: ...
        def __rtruediv__(self, other: _Operand) -> Tensor: ...
        def __floordiv__(self, other: _Operand) -> Tensor: ...
        def __rfloordiv__(self, other: _Operand) -> Tensor: ...
        def __mod__(self, other: _Operand) -> Tensor: ...
        def __rmod__(self, other: _Operand) -> Tensor: ...
        def __pow__(self, exponent: _Operand) -> Tensor: ...
        def __rpow__(self, other: _Operand) -> Tensor: ...
        def __matmul__(self, other: Tensor) -> Tensor: ...
        def __rmatmul__(self, other: Any) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __pos__(self) -> Tensor: ...
        def __abs__(self) -> Tensor: ...
        # elementwise comparison returns a Tensor, not the bool that object's signature says
        def __eq__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: object) -> Tensor: ...  # type: ignore[override]
        def __lt__(self, other: _Operand) -> Tensor: ...
        def __le__(self, other: _Operand) -> Tensor: ...
        def __gt__(self, other: _Operand) -> Tensor: ...
        def __ge__(self, other: _Operand) -> Tensor: ...
        def __invert__(self) -> Tensor: ...
        def __and__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __rand__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __or__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __ror__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __xor__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __rxor__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __lshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __rlshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __rshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __rrshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __iadd__(self, other: _Operand) -> Tensor: ...
        def __isub__(self, other: _Operand) -> Tensor: ...
        def __imul__(self, other: _Operand) -> Tensor: ...
        def __itruediv__(self, other: _Operand) -> Tensor: ...
        def __ifloordiv__(self, other: _Operand) -> Tensor: ...
        def __imod__(self, other: _Operand) -> Tensor: ...
        def __ipow__(self, other: _Operand) -> Tensor: ...
        def __iand__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __ior__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __ixor__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __ilshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __irshift__(self, other: Tensor | builtins.int) -> Tensor: ...
        def __imatmul__(self, other: Tensor) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...
        def __setitem__(self, index: Any, value: Any) -> None: ...
        def addcmul(self, tensor1: Tensor, tensor2: Tensor, *, value: _Operand = 1) -> Tensor: ...
        def addcdiv(self, tensor1: Tensor, tensor2: Tensor, *, value: _Operand = 1) -> Tensor: ...
        def addcmul_(self, tensor1: Tensor, tensor2: Tensor, *, value: _Operand = 1) -> Tensor: ...
        def addcdiv_(self, tensor1: Tensor, tensor2: Tensor, *, value: _Operand = 1) -> Tensor: ...
        def fill_(self, value: _Operand) -> Tensor: ...
        def zero_(self) -> Tensor: ...
        def copy_(self, src: Any, non_blocking: builtins.bool = False) -> Tensor: ...
        def masked_fill_(self, mask: Tensor, value: _Operand) -> Tensor: ...
        def to(self, *args: Any, **kwargs: Any) -> Tensor: ...
        def clone(self, memory_format: Any = None) -> Tensor: ...
        def contiguous(self, memory_format: Any = None) -> Tensor: ...
        def float(self) -> Tensor: ...
        def double(self) -> Tensor: ...
        def half(self) -> Tensor: ...
        def bfloat16(self) -> Tensor: ...
        def long(self) -> Tensor: ...
        def int(self) -> Tensor: ...
        def short(self) -> Tensor: ...
        def byte(self) -> Tensor: ...
        def char(self) -> Tensor: ...
        def bool(self) -> Tensor: ...
        def type(
            self, dtype: Any = None, non_blocking: builtins.bool = False, **kwargs: Any
        ) -> str | Tensor: ...
        def type_as(self, other: Tensor) -> Tensor: ...
        def cpu(self) -> Tensor: ...
        def cuda(self, device: Any = None) -> Tensor: ...
        def new_tensor(
            self, data: Any, *, dtype: Any = None, requires_grad: builtins.bool = False
        ) -> Tensor: ...
        def new_zeros(self, *size: Any, dtype: Any = None, **kw: Any) -> Tensor: ...
        def new_ones(self, *size: Any, dtype: Any = None, **kw: Any) -> Tensor: ...
        def new_full(
            self, size: Any, fill_value: _Operand, *, dtype: Any = None, **kw: Any
        ) -> Tensor: ...
        def new_empty(self, *size: Any, dtype: Any = None, **kw: Any) -> Tensor: ...
        def uniform_(
            self, from_: builtins.float = 0.0, to: builtins.float = 1.0, *, generator: Any = None
        ) -> Tensor: ...
        def normal_(
            self, mean: builtins.float = 0.0, std: builtins.float = 1.0, generator: Any = None
        ) -> Tensor: ...
        def bernoulli_(self, p: builtins.float = 0.5, generator: Any = None) -> Tensor: ...
        def exponential_(self, lambd: builtins.float = 1.0, *, generator: Any = None) -> Tensor: ...
        def geometric_(self, p: builtins.float, *, generator: Any = None) -> Tensor: ...
        def cauchy_(
            self,
            median: builtins.float = 0.0,
            sigma: builtins.float = 1.0,
            *,
            generator: Any = None,
        ) -> Tensor: ...
        def log_normal_(
            self, mean: builtins.float = 1.0, std: builtins.float = 2.0, *, generator: Any = None
        ) -> Tensor: ...
        def random_(self, *args: Any, generator: Any = None, **kwargs: Any) -> Tensor: ...
        def allclose(
            self,
            other: Tensor,
            rtol: builtins.float = 1e-05,
            atol: builtins.float = 1e-08,
            equal_nan: builtins.bool = False,
        ) -> builtins.bool: ...
        @property
        def mT(self) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...

    def __init__(self, data=None, dtype=None, requires_grad=False):
        # ``Tensor(...)`` as a constructor mirrors ``ember.tensor``.
        if isinstance(data, Tensor):
            arr = data._data
        else:
            arr = _to_array([] if data is None else data, dtype)
        _init(self, arr)
        if requires_grad:
            self.requires_grad_(True)

    # ----- basic attributes --------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: builtins.int | None = None) -> Size | builtins.int:
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def dtype(self) -> dt.DType:
        return dt.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> _device.device:
        return CPU

    @property
    def ndim(self) -> builtins.int:
        return self._data.ndim

    def dim(self) -> builtins.int:
        return self._data.ndim

    def ndimension(self) -> builtins.int:
        """The number of dimensions, as :meth:`dim` (PyTorch's older name).

        Example:
            >>> import ember
            >>> ember.zeros(2, 3).ndimension()
            2
        """
        return self._data.ndim

    def numel(self) -> builtins.int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> builtins.int:
        return self._data.itemsize

    @property
    def is_leaf(self) -> builtins.bool:
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        return self._node

    @property
    def data(self) -> Tensor:
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)
        self._version = [0]

    @property
    def is_cuda(self) -> builtins.bool:
        return False

    def is_floating_point(self) -> builtins.bool:
        return self._data.dtype in dt.FLOAT_NP

    def is_complex(self) -> builtins.bool:
        return self._data.dtype.kind == "c"

    def is_inference(self) -> builtins.bool:
        """Whether this tensor was made inside :class:`ember.inference_mode` (views taken there
        included), as PyTorch's inference tensors.

        Example:
            >>> import ember
            >>> with ember.inference_mode():
            ...     a = ember.ones(2)
            >>> a.is_inference(), (a + 1).is_inference()
            (True, False)
        """
        return self._inference

    @property
    def real(self) -> Tensor:
        """The real part (a view; the tensor itself when it is real), as ``torch.real``."""
        from .ops.complex_ops import real

        return real(self)

    @property
    def imag(self) -> Tensor:
        """The imaginary part of a complex tensor (a view), as ``torch.imag``."""
        from .ops.complex_ops import imag

        return imag(self)

    def is_contiguous(self) -> builtins.bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: builtins.int | None = None) -> tuple[builtins.int, ...] | builtins.int:
        """The step, in elements, between neighbours along each dimension (or ``dim``), as
        ``torch.Tensor.stride``; a tensor with no elements reports PyTorch's strides.

        Example:
            >>> import ember
            >>> ember.zeros(2, 3).t().stride(), ember.zeros(0, 3).t().stride()
            ((1, 3), (1, 3))
        """
        a = self._data
        if a.size == 0 and a.ndim:
            st = _empty_strides(self)
        else:
            st = tuple(s // a.itemsize for s in a.strides)
        return st if dim is None else st[dim]

    def data_ptr(self) -> builtins.int:
        return self._data.__array_interface__["data"][0]

    def storage_offset(self) -> builtins.int:
        """The offset, in elements, of this tensor's first element from the start of the
        NumPy array whose memory it views (0 for a tensor that owns its memory), as
        :meth:`stride` counts in elements.

        Example:
            >>> import ember
            >>> x = ember.zeros(2, 3)
            >>> x.storage_offset(), x[1:, 1:].storage_offset()
            (0, 4)
        """
        root = self._data
        while isinstance(root.base, np.ndarray):
            root = root.base
        nbytes = self.data_ptr() - root.__array_interface__["data"][0]
        return nbytes // self._data.itemsize if self._data.itemsize else 0

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} elements is ambiguous"
            )
        return bool(self._data)

    def _one_element(self):
        # float()/int()/complex() of a tensor: PyTorch raises ValueError (item() RuntimeError)
        if self._data.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __float__(self):
        return float(self._one_element())

    def __complex__(self):
        return complex(self._one_element())

    def __int__(self):
        return int(self._one_element())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.reshape(()))

    # ----- conversion ---------------------------------------------------------------------
    def item(self) -> builtins.float | builtins.int | builtins.bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        v = (
            self._data.reshape(()).item()
            if self._data.dtype.kind != "V"
            else float(self._data.reshape(()).astype(np.float32))
        )
        return v

    def tolist(self) -> list | builtins.float | builtins.int | builtins.bool:
        d = self._data
        if d.dtype.kind == "V":
            d = d.astype(np.float32)
        return d.tolist()

    def numpy(self, force: builtins.bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use "
                "tensor.detach().numpy() instead."
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self._data.astype(dtype, copy=False)
        return self._data

    def __dlpack__(self, stream=None, **kwargs):
        if any(s < 0 for s in self._data.strides):
            # PyTorch aborts the whole process on a capsule with negative strides, so
            # refuse before handing one out.
            raise BufferError(
                "__dlpack__: this tensor has negative strides (a view made by a "
                f"negative-step slice, strides {self.stride()}); DLPack consumers such as "
                "PyTorch cannot import it. Call .contiguous() first."
            )
        if self._data.dtype.kind == "V":  # bfloat16: NumPy's exporter lacks it
            return _bf16_dlpack(self._data, stream, kwargs)
        return self._data.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def detach(self) -> Tensor:
        t = _new(self._data)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        self._node = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        if requires_grad and self._data.dtype not in _core._FLOAT_DTYPES:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients (got {self.dtype})"
            )
        if not requires_grad and self._node is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables.")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        if self._node is None:
            return
        import weakref

        if self._node.retained is None:
            self._node.retained = {}
        self._node.retained[self._idx] = weakref.ref(self)

    @property
    def retains_grad(self) -> builtins.bool:
        n = self._node
        return n is not None and n.retained is not None and self._idx in n.retained

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a
        replacement gradient. Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            lst = self._hooks
            _state.leaf_hooks = True
        else:
            if self._node.hooks is None:
                self._node.hooks = {}
            lst = self._node.hooks.setdefault(self._idx, [])
        lst.append(hook)
        return _RemovableHandle(lst, hook)

    def register_post_accumulate_grad_hook(
        self, hook: Callable[[Tensor], None]
    ) -> _RemovableHandle:
        if self._post_hooks is None:
            self._post_hooks = []
        _state.leaf_hooks = True
        self._post_hooks.append(hook)
        return _RemovableHandle(self._post_hooks, hook)

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: builtins.bool | None = None,
        create_graph: builtins.bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Accumulate the gradient of this tensor into the leaves' ``.grad``."""
        d = self._data
        if (
            gradient is None
            and inputs is None
            and self._node is not None
            and d.size == 1
            and _state.tracer is None  # a tracer must see the seed made by an op
        ):
            # the training step's ``loss.backward()``: straight to the engine (what
            # ember.autograd.backward does for one scalar root, minus its argument handling)
            global _run_backward
            if _run_backward is None:
                from .autograd.engine import run_backward as _run_backward
            if retain_graph is None:
                retain_graph = create_graph
            one = np.empty(d.shape, d.dtype)
            one.fill(1)  # (np.ones, minus its Python wrapper)
            _run_backward([self], [_new(one)], retain_graph, create_graph)
            return
        from .autograd import backward

        if isinstance(gradient, (list, tuple)):
            raise TypeError(
                f"backward: gradient must be a Tensor or None, got {type(gradient).__name__}"
            )
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    # ----- representation -----------------------------------------------------------------
    def __repr__(self):
        d = self._data
        if d.dtype.kind == "V":
            d = d.astype(np.float32)
        body = np.array2string(
            d, separator=", ", threshold=1000, edgeitems=3, prefix="tensor(", **_float_style(d)
        )
        extras = []
        if self._data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self._data.size == 0 and self._data.ndim != 1:
            extras.insert(0, f"size={tuple(d.shape)}")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__

    def __format__(self, spec):
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, protocol):
        # Pickling (e.g. to DataLoader workers) carries the array only, never graph state.
        return (_rebuild, (self._data, self.requires_grad))

    def __deepcopy__(self, memo):
        if self._node is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) "
                "support the deepcopy protocol"
            )
        t = type(self).__new__(type(self))
        _init(t, self._data.copy())
        t.requires_grad = self.requires_grad
        if self.grad is not None:
            t.grad = self.grad.clone().detach()
        t.__dict__.update(self.__dict__)
        memo[id(self)] = t
        return t


if TYPE_CHECKING:
    # what the arithmetic operators accept besides a Tensor (bool and int are floats to mypy)
    _Operand = Tensor | builtins.float


def _bf16_dlpack(arr, stream, kwargs):
    """Export bfloat16 through DLPack: take NumPy's capsule for the uint16 bits and retag its
    dtype as kDLBfloat (zero copy; NumPy's deleter still owns the memory)."""
    import ctypes

    cap = arr.view(np.uint16).__dlpack__(stream=stream, **kwargs)
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    name = api.PyCapsule_GetName(cap)
    ptr = api.PyCapsule_GetPointer(cap, name)
    # DLManagedTensor starts with its DLTensor; the versioned struct has 32 bytes before it.
    # In DLTensor the dtype (code: u8, bits: u8, lanes: u16) sits at byte 20.
    off = (32 if name == b"dltensor_versioned" else 0) + 20
    code = ctypes.c_uint8.from_address(ptr + off)
    bits = ctypes.c_uint8.from_address(ptr + off + 1)
    if name not in (b"dltensor", b"dltensor_versioned") or code.value != 1 or bits.value != 16:
        raise BufferError("ember: unexpected DLPack layout while exporting bfloat16")
    code.value = 4  # kDLBfloat
    return cap


def _float_style(d):
    """PyTorch's print style: ``1., 2.`` for whole numbers, 4 fixed decimals otherwise,
    scientific notation when magnitudes span too much."""
    if d.dtype.kind != "f" or d.size == 0:
        return {}
    finite = np.abs(d[np.isfinite(d)]).astype(np.float64)
    if finite.size == 0 or np.all(finite == np.round(finite)):
        if finite.size and finite.max() >= 1e8:
            return {"formatter": {"float_kind": lambda v: f"{v:.4e}"}}
        return {"precision": 0, "floatmode": "fixed"}
    nz = finite[finite > 0]
    lo, hi = (nz.min(), nz.max()) if nz.size else (0.0, 0.0)
    if hi >= 1e8 or (nz.size and (lo < 1e-4 or hi / lo > 1e3)):
        return {"formatter": {"float_kind": lambda v: f"{v:.4e}"}}
    return {"precision": 4, "floatmode": "fixed"}


def _rebuild(data, requires_grad):
    t = _new(np.array(data))
    t.requires_grad = requires_grad
    return t


class Size(tuple):
    """The shape of a tensor (a tuple, as ``torch.Size``)."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"ember.Size({list(self)})"


class _RemovableHandle:
    __slots__ = ("hook", "lst")

    def __init__(self, lst, hook):
        self.lst, self.hook = lst, hook

    def remove(self):
        if self.hook in self.lst:
            self.lst.remove(self.hook)


def _empty_strides(t) -> tuple[int, ...]:
    """PyTorch's strides of a tensor with no elements (NumPy's strides of an empty array are
    arbitrary, zeros for a new one): a view of a non-empty array keeps NumPy's (computed from
    real ones); a view of an empty tensor replays its view (``_view``) on a stand-in array
    with the source's strides; anything else gets contiguous strides, a size-0 dimension
    counting as 1 (PyTorch's rule)."""
    a = t._data
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root.size:
        return tuple(s // a.itemsize for s in a.strides)
    view = t.__dict__.get("_view")
    if view is not None and isinstance(view[0], Tensor):
        src, prim, params = view
        d = src._data
        stand_in = np.lib.stride_tricks.as_strided(
            np.empty(0, d.dtype), d.shape, [s * d.itemsize for s in src.stride()]
        )
        try:
            out = prim.impl(stand_in, **params)
        except (ValueError, TypeError, IndexError):  # not replayable: contiguous strides
            out = None
        if isinstance(out, np.ndarray) and out.shape == a.shape:
            return tuple(s // out.itemsize for s in out.strides)
    st, step = [], 1
    for n in reversed(a.shape):
        st.append(step)
        step *= max(n, 1)
    return tuple(reversed(st))


def _init(t, arr):
    t._data = arr
    t._node = None
    t._version = [0]


def _new(arr):
    """A fresh Tensor around ``arr`` with no history (the hot path: no __init__)."""
    t = _tensor_new(Tensor)
    t._data = arr
    t._node = None
    t._version = [0]
    if _INFERENCE_THREADS[0] and _local.state.inference:
        t._inference = True
    return t


_tensor_new = object.__new__
_run_backward: Any = None  # ember.autograd.engine.run_backward, once loaded


def _from_node_output(node, i):
    """Rebuild output ``i`` of ``node`` as a Tensor attached to ``node`` (for VJPs that read
    the output; rebuilding avoids a Tensor <-> Node reference cycle)."""
    t = _new(node.out_data[i])
    t._version = node.out_version[i][0]
    if _local.state.grad_enabled:
        t._node = node
        t._idx = i
        t.requires_grad = True
    return t


def _wrap_dim(dim, ndim, op="op"):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of "
            f"[{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


_core._install_tensor(Tensor, _new)


# -- building arrays from Python data (ember.tensor and the Tensor constructor) ------------
def _to_array(data, dtype=None):
    if dtype is not None:
        dtype = dt.as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data._data
        return arr.astype(dtype.np) if dtype is not None else arr.copy()
    if isinstance(data, np.ndarray):
        if dtype is None:
            dt.from_numpy_dtype(data.dtype)  # reject unsupported dtypes clearly
            if data.dtype in (np.uint16, np.uint32, np.uint64):
                return data.astype(np.int64)
            return data.copy()
        return data.astype(dtype.np)
    if isinstance(data, (list, tuple)):
        data = _unwrap_nested(data)
    try:
        arr = np.array(data)
    except ValueError as e:
        raise ValueError(
            f"tensor: could not build a tensor from the given data (ragged nested sequences?): {e}"
        ) from None
    if arr.dtype == object:
        raise TypeError(
            f"tensor: can't build a tensor from data of type "
            f"{type(data).__name__} with mixed or non-numeric elements"
        )
    if dtype is None:
        if arr.dtype.kind == "f" and not isinstance(data, np.generic):
            dtype = (
                dt.get_default_dtype()
                if arr.dtype == np.float64
                else dt.from_numpy_dtype(arr.dtype)
            )
        elif arr.dtype.kind == "f":
            dtype = dt.from_numpy_dtype(arr.dtype)
        elif arr.dtype.kind in "iu":
            dtype = dt.int64 if not isinstance(data, np.generic) else dt.from_numpy_dtype(arr.dtype)
        elif arr.dtype.kind == "b":
            dtype = dt.bool_
        elif arr.dtype.kind == "c" and not isinstance(data, np.generic):
            # Python complex numbers: the complex dtype of the default float (as PyTorch)
            c = dt.get_default_dtype().to_complex()
            dtype = c if arr.dtype == np.complex128 else dt.from_numpy_dtype(arr.dtype)
        elif arr.dtype.kind in "US":
            raise TypeError("tensor: strings can't be converted to a tensor")
        else:
            dtype = dt.from_numpy_dtype(arr.dtype)
    return np.require(arr.astype(dtype.np, copy=False), requirements="C")


def _unwrap_nested(seq):
    """Lists of tensors become lists of arrays (tensor([t1, t2]) works, as in PyTorch)."""
    out = []
    for s in seq:
        if isinstance(s, Tensor):
            out.append(s._data)
        elif isinstance(s, (list, tuple)):
            out.append(_unwrap_nested(s))
        else:
            out.append(s)
    return out
