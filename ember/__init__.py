"""Ember: a deep learning framework with eager autograd, a PyTorch-like API and a
Keras-like API, on NumPy.

The names below are the whole public surface (pinned by ``tests/test_public_api.py``):
PyTorch-named tensor functions, dtypes, ``Tensor`` and the subpackages. The primitives and
their machinery stay in :mod:`ember.ops` (``ember.ops.registry()``). The high-level
subpackages (``keras``, ``train``, ``data``, ``metrics``, ``summary``, ``cli``, ``onnx``,
``export``) load on first attribute access, so ``import ember`` stays fast.

Example:
    >>> import ember
    >>> x = ember.randn(3, 4, requires_grad=True)
    >>> y = (x @ x.T).relu().sum()
    >>> y.backward()
    >>> tuple(x.grad.shape)
    (3, 4)
"""

import builtins as _builtins
import importlib as _importlib
import types as _types

from . import (
    _ops_public,
    _tensor_methods,  # noqa: F401  (attaches the methods to Tensor)
    _toplevel_extra,
    autograd,
    backends,
    cuda,
    linalg,
    nn,
    ops,
    optim,
    random,
    serialization,
)
from ._creation import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from ._device import device
from ._dtype import DType as dtype
from ._dtype import (
    bfloat16,
    bool_,
    complex64,
    complex128,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    set_default_dtype,
    uint8,
)
from ._memory_format import (
    channels_last,
    channels_last_3d,
    contiguous_format,
    memory_format,
    preserve_format,
)

# The op functions: generated from the op records (tools/gen_tensor_methods.py), so a new op
# reaches ``ember.<name>`` without an edit here.
from ._ops_public import *  # noqa: F403
from ._tensor import Size, Tensor
from ._toplevel_extra import *  # noqa: F403
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .compiler import compile
from .ops._parallel import get_num_threads, set_num_threads
from .ops._promote import result_type
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .serialization import load, save

__version__ = "0.1.0"

# PyTorch's dtype aliases (they shadow builtins inside this module only).
bool = bool_
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16
cfloat = complex64
cdouble = complex128


def is_tensor(obj: object) -> _builtins.bool:
    """True for an ember Tensor (``torch.is_tensor``).

    Example:
        >>> import ember
        >>> ember.is_tensor(ember.zeros(2)), ember.is_tensor([0.0])
        (True, False)
    """
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> _builtins.int:
    """The number of elements of ``input``.

    Example:
        >>> import ember
        >>> ember.numel(ember.zeros(2, 3))
        6
    """
    return input.numel()


def clone(input: Tensor, *, memory_format: memory_format | None = None) -> Tensor:
    """A copy of ``input`` that stays in the autograd graph. With the default
    ``memory_format`` (``ember.preserve_format``) a dense tensor keeps its strides, as in
    PyTorch; ``ember.contiguous_format`` and ``ember.channels_last`` ask for a layout.

    Example:
        >>> import ember
        >>> ember.clone(ember.ones(2)).tolist()
        [1.0, 1.0]
        >>> ember.clone(ember.ones(2, 3).t()).is_contiguous()
        False
    """
    return input.clone(memory_format=memory_format)


def detach(input: Tensor) -> Tensor:
    """``input`` cut from the autograd graph (shares memory).

    Example:
        >>> import ember
        >>> ember.detach(ember.ones(2, requires_grad=True)).requires_grad
        False
    """
    return input.detach()


def is_floating_point(input: Tensor) -> _builtins.bool:
    """True when ``input`` has a floating dtype.

    Example:
        >>> import ember
        >>> ember.is_floating_point(ember.zeros(2)), ember.is_floating_point(ember.arange(2))
        (True, False)
    """
    return input.is_floating_point()


_LAZY_SUBPACKAGES = (
    "cli",
    "data",
    "distributed",
    "export",
    "fft",
    "keras",
    "masked",
    "metrics",
    "models",
    "onnx",
    "quantization",
    "signal",
    "special",
    "summary",
    "symbol",
    "train",
    "utils",
)

__all__ = [
    "Generator",
    "Size",
    "Tensor",
    "__version__",
    "arange",
    "as_tensor",
    "autograd",
    "backends",
    "bernoulli",
    "bfloat16",
    "bool",
    "bool_",
    "cdouble",
    "cfloat",
    "channels_last",
    "channels_last_3d",
    "clone",
    "compile",
    "complex64",
    "complex128",
    "contiguous_format",
    "cuda",
    "detach",
    "device",
    "double",
    "dtype",
    "empty",
    "empty_like",
    "enable_grad",
    "eye",
    "float",
    "float16",
    "float32",
    "float64",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "get_default_dtype",
    "get_num_threads",
    "get_rng_state",
    "half",
    "inference_mode",
    "initial_seed",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_floating_point",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "is_tensor",
    "linalg",
    "linspace",
    "load",
    "logspace",
    "long",
    "manual_seed",
    "memory_format",
    "multinomial",
    "nn",
    "no_grad",
    "normal",
    "numel",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "preserve_format",
    "promote_types",
    "rand",
    "rand_like",
    "randint",
    "randint_like",
    "randn",
    "randn_like",
    "random",
    "randperm",
    "result_type",
    "save",
    "seed",
    "serialization",
    "set_default_dtype",
    "set_grad_enabled",
    "set_num_threads",
    "set_rng_state",
    "short",
    "tensor",
    "uint8",
    "zeros",
    "zeros_like",
]
__all__ += _ops_public.__all__
__all__ += _toplevel_extra.__all__


def __getattr__(name: str) -> _types.ModuleType:
    # PEP 562: the high-level APIs load on first use (``import ember as tf; tf.keras...``)
    if name in _LAZY_SUBPACKAGES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_LAZY_SUBPACKAGES))
