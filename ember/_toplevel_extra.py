"""Top-level functions PyTorch users reach for that are not ops on tensor values: window
functions, dtype and value predicates, and the ``torch.<name>`` spellings of functional
layers (``torch.conv2d`` is ``torch.nn.functional.conv2d``).

Example:
    >>> import ember
    >>> ember.hann_window(4).tolist()
    [0.0, 0.5, 1.0, 0.5]
    >>> ember.can_cast(ember.float32, ember.int32), ember.is_signed(ember.tensor([1]))
    (False, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _dtype as dt
from ._tensor import Tensor
from .nn import functional as _F
from .nn.functional import (
    adaptive_avg_pool1d,
    avg_pool1d,
    bilinear,
    celu,
    channel_shuffle,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    cosine_similarity,
    hardshrink,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    pairwise_distance,
    pdist,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    rrelu,
    selu,
    threshold,
)
from .signal import windows as W

FUNCTIONAL_ALIASES = [
    "adaptive_avg_pool1d", "avg_pool1d", "bilinear", "celu", "conv1d", "conv2d", "conv3d",
    "channel_shuffle", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "cosine_similarity", "hardshrink",
    "max_pool1d", "max_pool2d", "max_pool3d", "pairwise_distance", "pdist", "pixel_shuffle",
    "pixel_unshuffle", "prelu", "rrelu", "selu", "threshold",
]  # fmt: skip


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.dropout``: :func:`ember.nn.functional.dropout` with PyTorch's top-level
    signature (``train`` is required).

    Example:
        >>> import ember
        >>> ember.dropout(ember.ones(3), 0.5, False).tolist()
        [1.0, 1.0, 1.0]
    """
    return _F.dropout(input, p, train)


def layer_norm(
    input: Tensor,
    normalized_shape: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-05,
    cudnn_enable: bool = True,
) -> Tensor:
    """``torch.layer_norm``: :func:`ember.nn.functional.layer_norm` (``cudnn_enable`` is
    accepted and ignored: CPU only).

    Example:
        >>> import ember
        >>> ember.layer_norm(ember.tensor([[1.0, 3.0]]), (2,)).tolist()
        [[-0.9999949932098389, 0.9999949932098389]]
    """
    return _F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-05,
    cudnn_enabled: bool = True,
) -> Tensor:
    """``torch.group_norm``: :func:`ember.nn.functional.group_norm` (``cudnn_enabled`` is
    accepted and ignored: CPU only).

    Example:
        >>> import ember
        >>> tuple(ember.group_norm(ember.ones(1, 4, 2), 2).shape)
        (1, 4, 2)
    """
    return _F.group_norm(input, num_groups, weight, bias, eps)


# -- window functions: ember.signal.windows' kernels under PyTorch's top-level names, where
# ``periodic=True`` is ``sym=False``
def hann_window(window_length: int, periodic: bool = True, *, dtype=None, **_: Any) -> Tensor:
    """The Hann window (``periodic`` for spectral analysis: one sample of the next period
    dropped).

    Example:
        >>> import ember
        >>> ember.hann_window(3, periodic=False).tolist()
        [0.0, 1.0, 0.0]
    """
    return W.cosine_sum("hann_window", window_length, [0.5, 0.5], not periodic, dtype)


def hamming_window(
    window_length: int,
    periodic: bool = True,
    alpha: float = 0.54,
    beta: float = 0.46,
    *,
    dtype=None,
    **_: Any,
) -> Tensor:
    """The generalized Hamming window ``alpha - beta * cos(2 pi n / (N - 1))``.

    Example:
        >>> import ember
        >>> [round(v, 2) for v in ember.hamming_window(3, periodic=False).tolist()]
        [0.08, 1.0, 0.08]
    """
    return W.cosine_sum("hamming_window", window_length, [alpha, beta], not periodic, dtype)


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, **_: Any) -> Tensor:
    """The Blackman window.

    Example:
        >>> import ember
        >>> [round(v, 2) for v in ember.blackman_window(3, periodic=False).tolist()]
        [-0.0, 1.0, -0.0]
    """
    return W.cosine_sum("blackman_window", window_length, [0.42, 0.5, 0.08], not periodic, dtype)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, **_: Any) -> Tensor:
    """The Bartlett (triangular) window.

    Example:
        >>> import ember
        >>> ember.bartlett_window(5, periodic=False).tolist()
        [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    return W.window("bartlett_window", window_length, not periodic, dtype, W.bartlett_values)


def kaiser_window(
    window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, **_: Any
) -> Tensor:
    """The Kaiser window with shape parameter ``beta``.

    Example:
        >>> import ember
        >>> ember.kaiser_window(1).tolist()
        [1.0]
    """
    return W.window(
        "kaiser_window", window_length, not periodic, dtype, lambda n, N: np.kaiser(N, beta)
    )


# -- predicates ----------------------------------------------------------------------------
def is_complex(input: Tensor) -> bool:
    """Whether ``input`` holds complex numbers (``complex64`` or ``complex128``).

    Example:
        >>> import ember
        >>> ember.is_complex(ember.zeros(2)), ember.is_complex(ember.tensor([1j]))
        (False, True)
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"is_complex: expected a Tensor, got {type(input).__name__}")
    return input.is_complex()


def is_inference(input: Tensor) -> bool:
    """Whether ``input`` was made inside :class:`ember.inference_mode`.

    Example:
        >>> import ember
        >>> with ember.inference_mode():
        ...     x = ember.zeros(2)
        >>> ember.is_inference(x), ember.is_inference(ember.zeros(2))
        (True, False)
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"is_inference: expected a Tensor, got {type(input).__name__}")
    return input.is_inference()


def is_signed(input: Tensor) -> bool:
    """Whether the dtype of ``input`` is signed (not bool or uint8).

    Example:
        >>> import ember
        >>> ember.is_signed(ember.tensor([1], dtype=ember.uint8))
        False
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"is_signed: expected a Tensor, got {type(input).__name__}")
    return input.dtype not in (dt.bool_, dt.uint8)


def is_nonzero(input: Tensor) -> bool:
    """Whether a one-element tensor is non-zero (an error for any other size).

    Example:
        >>> import ember
        >>> ember.is_nonzero(ember.tensor([0.5]))
        True
    """
    if input.numel() != 1:
        raise RuntimeError(
            f"is_nonzero: a tensor with {input.numel()} elements cannot be converted to a bool"
        )
    return bool(input.reshape(()).item() != 0)


def is_anomaly_enabled() -> bool:
    """Whether autograd anomaly detection is on (``ember.autograd.set_detect_anomaly``).

    Example:
        >>> import ember
        >>> ember.is_anomaly_enabled()
        False
    """
    from .autograd import is_anomaly_enabled as enabled

    return enabled()


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Turn autograd anomaly detection on or off for the rest of the program (``check_nan``
    is accepted for PyTorch compatibility: anomaly mode always checks for NaN/Inf).

    Example:
        >>> import ember
        >>> ember.set_anomaly_enabled(True); ember.is_anomaly_enabled()
        True
        >>> ember.set_anomaly_enabled(False)
    """
    from .ops._core import _state

    _state.anomaly = bool(enabled)


_DETERMINISTIC = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Ask for deterministic algorithms, as ``torch.use_deterministic_algorithms``. Ember's
    kernels are deterministic whatever this says (their results do not depend on the thread
    count or the run), so the setting is recorded and read back, and changes nothing else.

    Example:
        >>> import ember
        >>> ember.use_deterministic_algorithms(True)
        >>> ember.are_deterministic_algorithms_enabled()
        True
        >>> ember.use_deterministic_algorithms(False)
    """
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(
            f"use_deterministic_algorithms: mode must be a bool, got {type(mode).__name__}"
        )
    _DETERMINISTIC["mode"] = bool(mode)
    _DETERMINISTIC["warn_only"] = bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` was last called with True.

    Example:
        >>> import ember
        >>> ember.are_deterministic_algorithms_enabled()
        False
    """
    return _DETERMINISTIC["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether :func:`use_deterministic_algorithms` was last called with ``warn_only=True``.

    Example:
        >>> import ember
        >>> ember.is_deterministic_algorithms_warn_only_enabled()
        False
    """
    return _DETERMINISTIC["warn_only"]


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def can_cast(from_: Any, to: Any) -> bool:
    """Whether PyTorch's type promotion allows casting ``from_`` to ``to`` (never to a lower
    category: float to integer or integer to bool is refused; within a category any size).

    Example:
        >>> import ember
        >>> ember.can_cast(ember.int64, ember.int8), ember.can_cast(ember.float64, ember.int64)
        (True, False)
    """
    a, b = dt.as_dtype(from_), dt.as_dtype(to)
    return _CATEGORY[np.dtype(a.np).kind] <= _CATEGORY[np.dtype(b.np).kind]


class finfo:
    """The limits of a floating-point dtype (default: the default dtype), as ``torch.finfo``:
    ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``), ``resolution``,
    ``dtype``. Attention masks use ``finfo(dtype).min`` as "hidden".

    Example:
        >>> import ember
        >>> f = ember.finfo(ember.float32)
        >>> f.bits, f.eps, f.min == -f.max, f.dtype
        (32, 1.1920928955078125e-07, True, 'float32')
    """

    def __init__(self, type: Any = None) -> None:
        d = dt.get_default_dtype() if type is None else dt.as_dtype(type)
        if not (d.is_floating_point or d.category == 3):
            raise TypeError(f"finfo: {d.name} is not a floating point dtype")
        f = np.finfo(d.np)
        self.bits = int(f.bits)
        self.eps, self.max, self.min = float(f.eps), float(f.max), float(f.min)
        self.tiny = self.smallest_normal = float(f.smallest_normal)
        self.resolution = 10.0 ** -int(f.precision)
        self.dtype = np.dtype(f.dtype).name if d.category != 2 else d.name

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
            f"eps={self.eps:g}, smallest_normal={self.tiny:g}, tiny={self.tiny:g}, "
            f"dtype={self.dtype})"
        )


class iinfo:
    """The limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max``,
    ``dtype``.

    Example:
        >>> import ember
        >>> i = ember.iinfo(ember.int8)
        >>> i.bits, i.min, i.max, i.dtype
        (8, -128, 127, 'int8')
    """

    def __init__(self, type: Any) -> None:
        d = dt.as_dtype(type)
        if d.category != 1:
            raise TypeError(f"iinfo: {d.name} is not an integer dtype")
        i = np.iinfo(d.np)
        self.bits, self.min, self.max, self.dtype = int(i.bits), int(i.min), int(i.max), d.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


__all__ = [
    "adaptive_avg_pool1d",
    "are_deterministic_algorithms_enabled",
    "avg_pool1d",
    "bartlett_window",
    "bilinear",
    "blackman_window",
    "can_cast",
    "celu",
    "channel_shuffle",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "cosine_similarity",
    "dropout",
    "finfo",
    "group_norm",
    "hamming_window",
    "hann_window",
    "hardshrink",
    "iinfo",
    "is_anomaly_enabled",
    "is_complex",
    "is_deterministic_algorithms_warn_only_enabled",
    "is_inference",
    "is_nonzero",
    "is_signed",
    "kaiser_window",
    "layer_norm",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "pairwise_distance",
    "pdist",
    "pixel_shuffle",
    "pixel_unshuffle",
    "prelu",
    "rrelu",
    "selu",
    "set_anomaly_enabled",
    "threshold",
    "use_deterministic_algorithms",
]  # fmt: skip
