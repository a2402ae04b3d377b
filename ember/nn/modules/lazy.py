"""Lazy modules (``LazyLinear``, ``LazyConv*``, ``LazyConvTranspose*``, ``LazyBatchNorm*``,
``LazyInstanceNorm*``): the input size is inferred from the first forward, as PyTorch's.

Until the first call the module holds :class:`UninitializedParameter` s (and
:class:`UninitializedBuffer` s): placeholders that refuse to be used (any access to their
shape or data raises a ``ValueError``). The first call (a "dry run") infers ``in_features``,
``in_channels`` or ``num_features``, materializes the placeholders *in place* (the same
Parameter objects, so references kept earlier stay valid), initializes them as the non-lazy
class does, and turns the module into that class (``LazyLinear`` becomes ``Linear``). Create
the optimizer after the dry run, as PyTorch's documentation says. Loading a state dict into a
lazy module materializes its parameters from the loaded shapes.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import numpy as np

from ... import _creation as C
from ... import _dtype as dt
from ..._tensor import Tensor, _init
from ..parameter import Parameter
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d
from .conv_transpose3d import ConvTranspose3d
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .linear import Linear
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = [
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "LazyConvTranspose1d",
    "LazyConvTranspose2d",
    "LazyConvTranspose3d",
    "LazyInstanceNorm1d",
    "LazyInstanceNorm2d",
    "LazyInstanceNorm3d",
    "LazyLinear",
    "LazyModuleMixin",
    "UninitializedBuffer",
    "UninitializedParameter",
]

_USE_MSG = (
    "Attempted to use an uninitialized parameter or buffer. This error happens when you are "
    "using a lazy module (LazyLinear, LazyConv2d, ...) before its first forward: call the "
    "module on a dummy batch to initialize its parameters first"
)
_SHAPE_MSG = (
    "Can't access the shape of an uninitialized parameter or buffer. This error usually "
    "happens in `load_state_dict` when trying to load an uninitialized parameter into an "
    "initialized one. Call `forward` to initialize the parameters before accessing their "
    "attributes."
)


class _Unmaterialized:
    """The data of an uninitialized tensor: it knows its dtype (so ``module.double()``
    works before the dry run) and refuses everything else, NumPy conversion included."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def astype(self, dtype, *args, **kwargs):
        return _Unmaterialized(dtype)

    def copy(self):
        return self

    def __array__(self, *args, **kwargs):
        raise ValueError(_USE_MSG)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ValueError(_SHAPE_MSG if name in ("shape", "ndim", "size") else _USE_MSG)


def _np_dtype(dtype):
    return C.empty(0, dtype=dtype)._data.dtype


class _UninitializedMixin:
    """``shape``/``size()``/``numel()`` and data access raise; ``materialize(shape)`` gives
    the tensor real (uninitialized) memory and turns it into ``cls_to_become``."""

    cls_to_become: type = Tensor
    _data: Any

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the tensor memory of ``shape`` (its own dtype unless ``dtype`` is given) and
        make it a plain ``cls_to_become`` (``Parameter`` or ``Tensor``), in place."""
        if dtype is None:
            np_dtype = self._data.dtype
        else:
            np_dtype = dt.as_dtype(dtype).np
        self._data = np.empty(tuple(int(s) for s in shape), np_dtype)
        self.__class__ = self.cls_to_become

    @property
    def data(self):
        return Tensor.data.fget(self)

    @data.setter
    def data(self, value) -> None:
        # ``module.double()`` before the dry run: the placeholder only changes its dtype
        if isinstance(value, _Unmaterialized):
            self._data = value
        else:
            Tensor.data.fset(self, value)  # type: ignore[attr-defined]

    @property
    def shape(self):
        raise ValueError(_SHAPE_MSG)

    def size(self, dim=None):
        raise ValueError(_SHAPE_MSG)

    def numel(self):
        raise ValueError(_SHAPE_MSG)

    nelement = numel

    def dim(self):
        raise ValueError(_SHAPE_MSG)

    @property
    def ndim(self):
        raise ValueError(_SHAPE_MSG)

    def share_memory_(self):
        raise RuntimeError(
            "Can't share memory on an uninitialized parameter or buffer. Call `forward` to "
            "initialize the parameters before calling `module.share_memory()`."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__


class UninitializedParameter(_UninitializedMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's before its first call).

    Example:
        >>> import ember
        >>> p = ember.nn.UninitializedParameter()
        >>> p
        <UninitializedParameter>
        >>> p.materialize((2, 3))
        >>> type(p).__name__, tuple(p.shape)
        ('Parameter', (2, 3))
    """

    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        _init(self, _Unmaterialized(_np_dtype(dtype)))
        if requires_grad:
            self.requires_grad_(True)

    def __reduce_ex__(self, protocol):
        return (_rebuild_uninitialized, (type(self), self.requires_grad, self._data.dtype))

    def __deepcopy__(self, memo):
        t = _rebuild_uninitialized(type(self), self.requires_grad, self._data.dtype)
        memo[id(self)] = t
        return t


class UninitializedBuffer(_UninitializedMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy batch norm's running statistics).

    Example:
        >>> import ember
        >>> b = ember.nn.UninitializedBuffer()
        >>> b.materialize((4,))
        >>> type(b).__name__, tuple(b.shape)
        ('Tensor', (4,))
    """

    cls_to_become = Tensor

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        _init(self, _Unmaterialized(_np_dtype(dtype)))
        self.persistent = persistent
        if requires_grad:
            self.requires_grad_(True)

    def __reduce_ex__(self, protocol):
        return (_rebuild_uninitialized, (type(self), self.requires_grad, self._data.dtype))

    def __deepcopy__(self, memo):
        t = _rebuild_uninitialized(type(self), self.requires_grad, self._data.dtype)
        memo[id(self)] = t
        return t


def _rebuild_uninitialized(cls, requires_grad, np_dtype):
    t = cls(requires_grad=requires_grad)
    t._data = _Unmaterialized(np_dtype)
    return t


def is_lazy(t) -> bool:
    """Whether ``t`` is an uninitialized parameter or buffer."""
    return isinstance(t, _UninitializedMixin)


class LazyModuleMixin:
    """The machinery of the lazy modules (as ``torch.nn.modules.lazy.LazyModuleMixin``): a
    forward pre-hook calls ``initialize_parameters(*args)`` on the first call, then the
    module becomes ``cls_to_become``; a load-state-dict pre-hook materializes the
    placeholders a state dict has values for."""

    cls_to_become: type | None = None
    _parameters: dict
    _buffers: dict

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)
        self._initialize_hook = self.register_forward_pre_hook(
            self._infer_parameters, with_kwargs=True
        )

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = (
                    param if is_lazy(param) or keep_vars else param.detach()
                )
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if is_lazy(buf) or keep_vars else buf.detach()

    def _lazy_load_hook(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors
    ):
        for name, t in itertools.chain(self._parameters.items(), self._buffers.items()):
            key = prefix + name
            if key in state_dict and t is not None and is_lazy(t):
                value = state_dict[key]
                if not is_lazy(value):
                    t.materialize(tuple(value.shape))
        if not self.has_uninitialized_params():
            self._infer_from_params()

    def initialize_parameters(self, *args, **kwargs) -> None:
        """Infer the sizes from the first input and materialize the parameters."""
        raise NotImplementedError(
            f"initialize_parameters is not implemented for {type(self).__name__}"
        )

    def _infer_from_params(self) -> None:
        """Set the inferred size from materialized parameters (after a state-dict load)."""

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer of this module is still uninitialized."""
        return any(
            is_lazy(t) for t in itertools.chain(self._parameters.values(), self._buffers.values())
        )

    def _infer_parameters(self, module, args, kwargs=None):
        module.initialize_parameters(*args, **(kwargs or {}))
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {module._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        module._load_hook.remove()
        del module._initialize_hook
        del module._load_hook
        if module.cls_to_become is not None:
            init_args = module.__dict__.get("_init_args")
            if init_args is not None:
                # ember.save rebuilds a module from its class and constructor arguments: the
                # lazy class's arguments plus the inferred size are the non-lazy ones
                bound = inspect.signature(type(module).__init__).bind(
                    module, *init_args[0], **init_args[1]
                )
                named = dict(bound.arguments)
                named.pop(next(iter(named)))  # self
                module.__dict__["_init_args"] = ((module._inferred_size(),), named)
            module.__class__ = module.cls_to_become

    def _inferred_size(self) -> int:
        raise NotImplementedError


def _check_batch_input(who, input, n_spatial):
    if not isinstance(input, Tensor):
        raise TypeError(f"{who}: expected an ember Tensor input, got {type(input).__name__}")
    if input.dim() not in (n_spatial + 1, n_spatial + 2):
        raise ValueError(
            f"Expected {n_spatial + 1}D (unbatched) or {n_spatial + 2}D (batched) input to "
            f"{who}, but got input of size: {tuple(input.shape)}"
        )


# ----- Linear ------------------------------------------------------------------------------
class LazyLinear(LazyModuleMixin, Linear):
    """A :class:`Linear` whose ``in_features`` is inferred from ``input.shape[-1]`` on the
    first call (it then becomes a ``Linear``).

    Example:
        >>> import ember
        >>> m = ember.nn.LazyLinear(3)
        >>> m
        LazyLinear(in_features=0, out_features=3, bias=True)
        >>> tuple(m(ember.randn(2, 5)).shape), tuple(m.weight.shape)
        ((2, 3), (3, 5))
        >>> m
        Linear(in_features=5, out_features=3, bias=True)
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        # bias False: no tensor made only to be replaced
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            if not isinstance(input, Tensor) or input.dim() < 1:
                raise ValueError(
                    f"LazyLinear: expected a Tensor of at least 1 dim to infer in_features, "
                    f"got {getattr(input, 'shape', type(input).__name__)}"
                )
            self.in_features = int(input.shape[-1])
            self.weight.materialize((self.out_features, self.in_features))  # type: ignore[attr-defined]
            if self.bias is not None:
                self.bias.materialize((self.out_features,))  # type: ignore[attr-defined]
            self.reset_parameters()
        elif self.in_features == 0:
            self._infer_from_params()

    def _infer_from_params(self) -> None:
        self.in_features = int(self.weight.shape[-1])

    def _inferred_size(self) -> int:
        return self.in_features


# ----- convolutions ------------------------------------------------------------------------
class _LazyConvXdMixin(LazyModuleMixin):
    _n: int
    groups: int
    transposed: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            who = type(self).__name__
            _check_batch_input(who, input, self._n)
            batched = input.dim() == self._n + 2
            self.in_channels = int(input.shape[1] if batched else input.shape[0])
            if self.in_channels % self.groups != 0:
                raise ValueError(
                    f"{who}: in_channels {self.in_channels} (inferred from the input) must be "
                    f"divisible by groups {self.groups}"
                )
            g = self.groups
            if self.transposed:
                shape = (self.in_channels, self.out_channels // g, *self.kernel_size)
            else:
                shape = (self.out_channels, self.in_channels // g, *self.kernel_size)
            self.weight.materialize(shape)  # type: ignore[attr-defined]
            if self.bias is not None:  # type: ignore[attr-defined]
                self.bias.materialize((self.out_channels,))  # type: ignore[attr-defined]
            self.reset_parameters()
        elif self.in_channels == 0:
            self._infer_from_params()

    def _infer_from_params(self) -> None:
        shape = self.weight.shape  # type: ignore[attr-defined]
        self.in_channels = int(shape[0] if self.transposed else shape[1] * self.groups)

    def _inferred_size(self) -> int:
        return self.in_channels


class _LazyConv(_LazyConvXdMixin):
    """The constructor of ``LazyConv1d``/``2d``/``3d``: ``Conv*d``'s without ``in_channels``."""

    def __init__(
        self,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode)
        _lazy_params(self, out_channels, bias, dtype)


class _LazyConvTranspose(_LazyConvXdMixin):
    """The constructor of ``LazyConvTranspose1d``/``2d``/``3d``."""

    def __init__(
        self,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
            padding_mode,
        )  # fmt: skip
        _lazy_params(self, out_channels, bias, dtype)


class LazyConv1d(_LazyConv, Conv1d):
    """A :class:`Conv1d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConv1d(4, 3)
        >>> tuple(m(ember.randn(2, 6, 8)).shape), type(m).__name__
        ((2, 4, 6), 'Conv1d')
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConv, Conv2d):
    """A :class:`Conv2d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConv2d(8, 3, padding=1)
        >>> tuple(m(ember.randn(1, 3, 5, 5)).shape), tuple(m.weight.shape)
        ((1, 8, 5, 5), (8, 3, 3, 3))
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConv, Conv3d):
    """A :class:`Conv3d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConv3d(2, 2)
        >>> tuple(m(ember.randn(1, 3, 4, 4, 4)).shape)
        (1, 2, 3, 3, 3)
    """

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTranspose, ConvTranspose1d):
    """A :class:`ConvTranspose1d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConvTranspose1d(4, 3, stride=2)
        >>> tuple(m(ember.randn(2, 5, 6)).shape), tuple(m.weight.shape)
        ((2, 4, 13), (5, 4, 3))
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTranspose, ConvTranspose2d):
    """A :class:`ConvTranspose2d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConvTranspose2d(4, 3, stride=2)
        >>> tuple(m(ember.randn(1, 2, 3, 3)).shape)
        (1, 4, 7, 7)
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTranspose, ConvTranspose3d):
    """A :class:`ConvTranspose3d` whose ``in_channels`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyConvTranspose3d(2, 2)
        >>> tuple(m(ember.randn(1, 3, 2, 2, 2)).shape)
        (1, 2, 3, 3, 3)
    """

    cls_to_become = ConvTranspose3d


def _lazy_params(module, out_channels, bias, dtype):
    module.weight = UninitializedParameter(dtype=dtype)
    module.out_channels = out_channels
    if bias:
        module.bias = UninitializedParameter(dtype=dtype)


# ----- normalization -----------------------------------------------------------------------
class _LazyNormBase(LazyModuleMixin):
    num_features: int
    affine: bool
    track_running_stats: bool

    def __init__(
        self,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        device=None,
        dtype=None,
        *,
        bias=True,
    ):
        # affine and the running statistics off: no tensors made only to be replaced
        super().__init__(0, eps, momentum, False, False, device, dtype, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(dtype=dtype)
            self.running_var = UninitializedBuffer(dtype=dtype)
            self.num_batches_tracked = C.tensor(0, dtype=dt.int64)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()  # type: ignore[misc]

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            if not isinstance(input, Tensor) or input.dim() < 2:
                raise ValueError(
                    f"{type(self).__name__}: expected an input of at least 2 dims to infer "
                    f"num_features, got {getattr(input, 'shape', type(input).__name__)}"
                )
            self.num_features = int(input.shape[1])
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(self, name)
                if t is not None:
                    t.materialize((self.num_features,))
            self.reset_parameters()
        elif self.num_features == 0:
            self._infer_from_params()

    def _infer_from_params(self) -> None:
        for name in ("weight", "running_mean"):
            t = getattr(self, name)
            if t is not None:
                self.num_features = int(t.shape[0])
                return

    def _inferred_size(self) -> int:
        return self.num_features


class LazyBatchNorm1d(_LazyNormBase, BatchNorm1d):
    """A :class:`BatchNorm1d` whose ``num_features`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyBatchNorm1d()
        >>> tuple(m(ember.randn(4, 3)).shape), tuple(m.running_mean.shape)
        ((4, 3), (3,))
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormBase, BatchNorm2d):
    """A :class:`BatchNorm2d` whose ``num_features`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyBatchNorm2d()
        >>> tuple(m(ember.randn(2, 3, 4, 4)).shape), type(m).__name__
        ((2, 3, 4, 4), 'BatchNorm2d')
    """

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormBase, BatchNorm3d):
    """A :class:`BatchNorm3d` whose ``num_features`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyBatchNorm3d()
        >>> tuple(m(ember.randn(2, 3, 2, 2, 2)).shape)
        (2, 3, 2, 2, 2)
    """

    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyNormBase, InstanceNorm1d):
    """An :class:`InstanceNorm1d` whose ``num_features`` is inferred from ``input.shape[1]``.

    As PyTorch's lazy instance norms, the defaults are ``affine=True`` and
    ``track_running_stats=True`` (the non-lazy class's are False).

    Example:
        >>> import ember
        >>> m = ember.nn.LazyInstanceNorm1d(affine=True)
        >>> tuple(m(ember.randn(2, 3, 5)).shape), tuple(m.weight.shape)
        ((2, 3, 5), (3,))
    """

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyNormBase, InstanceNorm2d):
    """An :class:`InstanceNorm2d` whose ``num_features`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyInstanceNorm2d(affine=True)
        >>> tuple(m(ember.randn(2, 3, 4, 4)).shape), type(m).__name__
        ((2, 3, 4, 4), 'InstanceNorm2d')
    """

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyNormBase, InstanceNorm3d):
    """An :class:`InstanceNorm3d` whose ``num_features`` is inferred from ``input.shape[1]``.

    Example:
        >>> import ember
        >>> m = ember.nn.LazyInstanceNorm3d(affine=True)
        >>> tuple(m(ember.randn(1, 2, 2, 2, 2)).shape)
        (1, 2, 2, 2, 2)
    """

    cls_to_become = InstanceNorm3d
