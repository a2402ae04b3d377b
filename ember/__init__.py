"""Ember: a deep learning framework with eager autograd, a PyTorch-like API and a
Keras-like API, on NumPy.

Example:
    >>> import ember
    >>> x = ember.randn(3, 4, requires_grad=True)
    >>> y = (x @ x.T).relu().sum()
    >>> y.backward()
    >>> tuple(x.grad.shape)
    (3, 4)
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import (
    _dtype,  # noqa: F401
    _tensor_methods,  # noqa: F401  (attaches the methods to Tensor)
    autograd,  # noqa: F401
    random,  # noqa: F401
)
from ._creation import (  # noqa: F401
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
from ._device import device  # noqa: F401
from ._dtype import DType as dtype  # noqa: F401
from ._dtype import (  # noqa
    bfloat16,
    bool_,
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
from ._tensor import Size, Tensor  # noqa: F401
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from .ops import *
from .ops import abs, all, any, max, min, pow, round, sum  # noqa: F401  (shadow builtins)
from .ops._parallel import get_num_threads, set_num_threads  # noqa: F401
from .ops._promote import result_type  # noqa: F401
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state  # noqa: F401

bool = bool_
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16

from . import cuda  # noqa: F401


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(x) -> int:
    return x.numel()


def clone(x):
    return x.clone()


def detach(x):
    return x.detach()


def is_floating_point(x) -> bool:
    return x.is_floating_point()


from . import (
    nn,  # noqa: F401
    optim,  # noqa: F401
)
from .serialization import load, save  # noqa: F401


def __getattr__(name):
    # NOTE: the high-level APIs load on first use (``import ember as tf; tf.keras...``)
    if name in ("keras", "train", "data", "metrics", "summary", "cli", "utils"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
