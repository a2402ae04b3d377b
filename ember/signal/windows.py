"""Window functions with ``torch.signal.windows``' names and arguments: symmetric by default
(``sym=False`` gives the periodic window used for spectral analysis: one more point, the last
dropped). Values are computed in float64 with NumPy and returned in ``dtype`` (the default
float dtype when not given).

Example:
    >>> import ember
    >>> ember.signal.windows.bartlett(5).tolist()
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> [round(v, 4) for v in ember.signal.windows.gaussian(3, std=1.0).tolist()]
    [0.6065, 1.0, 0.6065]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _dtype as dt
from .._creation import tensor
from .._tensor import Tensor

__all__ = [
    "bartlett",
    "blackman",
    "cosine",
    "exponential",
    "gaussian",
    "general_cosine",
    "general_hamming",
    "hamming",
    "hann",
    "kaiser",
    "nuttall",
]


def window(name: str, M: int, sym: bool, dtype: Any, fn: Callable[[np.ndarray, int], np.ndarray]):
    if not isinstance(M, (int, np.integer)) or M < 0:
        raise ValueError(f"{name}: the window length must be a non-negative int, got {M!r}")
    d = dt.get_default_dtype() if dtype is None else dt.as_dtype(dtype)
    if not d.is_floating_point:
        raise TypeError(f"{name}: expected a floating point dtype, got {d}")
    if M == 0:
        return tensor(np.zeros(0), dtype=d)
    if M == 1:
        return tensor(np.ones(1), dtype=d)
    n = M if sym else M + 1
    w = fn(np.arange(n, dtype=np.float64), n)
    return tensor(w[:M], dtype=d)


def cosine_sum(name: str, M: int, a: Sequence[float], sym: bool, dtype: Any) -> Tensor:
    """``sum_k (-1)**k a[k] cos(2 pi k n / (M - 1))`` (shared with the top-level
    ``ember.hann_window`` family, which names itself in errors)."""
    if not isinstance(a, (list, tuple)) or not a:
        raise TypeError(f"{name}: a must be a non-empty list or tuple of coefficients")

    def fn(n, N):
        k = 2 * math.pi * n / (N - 1)
        return sum(((-1) ** i) * c * np.cos(i * k) for i, c in enumerate(a))

    return window(name, M, sym, dtype, fn)


def bartlett_values(n: np.ndarray, N: int) -> np.ndarray:
    """The Bartlett window's values at ``n`` for a window of ``N`` points."""
    return 1 - np.abs(2 * n / (N - 1) - 1)


def general_cosine(M: int, *, a: Sequence[float], sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """``sum_k (-1)**k a[k] cos(2 pi k n / (M - 1))``."""
    return cosine_sum("general_cosine", M, a, sym, dtype)


def general_hamming(
    M: int, *, alpha: float = 0.54, sym: bool = True, dtype=None, **_: Any
) -> Tensor:
    """``alpha - (1 - alpha) cos(2 pi n / (M - 1))``."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype)


def hann(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The Hann window."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype)


def hamming(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The Hamming window (``alpha = 0.54``)."""
    return general_hamming(M, alpha=0.54, sym=sym, dtype=dtype)


def blackman(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The Blackman window."""
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype)


def nuttall(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The minimum 4-term Blackman-Harris window of Nuttall."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype)


def bartlett(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The Bartlett (triangular, zero at the ends) window."""
    return window("bartlett", M, sym, dtype, bartlett_values)


def cosine(M: int, *, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The cosine (sine) window ``sin(pi (n + 0.5) / M)``."""
    return window("cosine", M, sym, dtype, lambda n, N: np.sin(math.pi * (n + 0.5) / N))


def exponential(
    M: int,
    *,
    center: float | None = None,
    tau: float = 1.0,
    sym: bool = True,
    dtype=None,
    **_: Any,
) -> Tensor:
    """``exp(-|n - center| / tau)``, centred by default (``center`` only with ``sym=False``)."""
    if tau <= 0:
        raise ValueError(f"exponential: tau must be positive, got {tau}")
    if center is not None and sym:
        raise ValueError("exponential: center must be None for symmetric windows")

    def fn(n, N):
        c = (N - 1) / 2 if center is None else center
        return np.exp(-np.abs(n - c) / tau)

    return window("exponential", M, sym, dtype, fn)


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """``exp(-((n - (M - 1) / 2) / std)**2 / 2)``."""
    if std <= 0:
        raise ValueError(f"gaussian: std must be positive, got {std}")
    return window(
        "gaussian", M, sym, dtype, lambda n, N: np.exp(-0.5 * ((n - (N - 1) / 2) / std) ** 2)
    )


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, **_: Any) -> Tensor:
    """The Kaiser window with shape parameter ``beta``."""
    if beta < 0:
        raise ValueError(f"kaiser: beta must be non-negative, got {beta}")
    return window("kaiser", M, sym, dtype, lambda n, N: np.kaiser(N, beta))
