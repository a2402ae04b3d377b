"""Sample frequencies and spectrum shifts of :mod:`ember.fft`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _dtype as dt
from .._creation import _check_device
from .._tensor import Tensor, _new
from ..ops._util import wrap_dim
from ..ops.elementwise import not_a_tensor
from ..ops.shape import roll

__all__ = ["fftfreq", "fftshift", "ifftshift", "rfftfreq"]


def _freq(op: str, values: np.ndarray, dtype, requires_grad: bool) -> Tensor:
    d = dt.get_default_dtype() if dtype is None else dt.as_dtype(dtype)
    if not d.is_floating_point:
        raise TypeError(f"{op}: dtype must be a floating dtype, got {d}")
    t = _new(np.ascontiguousarray(values.astype(d.np)))
    return t.requires_grad_() if requires_grad else t


def _check_n(n: int, d: float, op: str) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{op}: n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"{op}: n must be non-negative, got {n}")
    if d == 0:
        raise ValueError(f"{op}: the sample spacing d must be non-zero")


def fftfreq(
    n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """The sample frequencies of an ``n``-point :func:`ember.fft.fft` with sample spacing
    ``d``: ``[0, 1, ..., ceil(n/2) - 1, -floor(n/2), ..., -1] / (d * n)``.

    Example:
        >>> import ember
        >>> ember.fft.fftfreq(4).tolist()
        [0.0, 0.25, -0.5, -0.25]
    """
    _check_device(device)
    _check_n(n, d, "fftfreq")
    return _freq("fftfreq", np.fft.fftfreq(int(n), d) if n else np.zeros(0), dtype, requires_grad)


def rfftfreq(
    n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """The sample frequencies of an ``n``-point :func:`ember.fft.rfft`:
    ``[0, 1, ..., n // 2] / (d * n)``.

    Example:
        >>> import ember
        >>> ember.fft.rfftfreq(4).tolist()
        [0.0, 0.25, 0.5]
    """
    _check_device(device)
    _check_n(n, d, "rfftfreq")
    return _freq("rfftfreq", np.fft.rfftfreq(int(n), d) if n else np.zeros(0), dtype, requires_grad)


def _shift(op: str, input: Tensor, dim, sign: int) -> Tensor:
    if not isinstance(input, Tensor):
        raise not_a_tensor(op, input)
    ndim = input._data.ndim
    if dim is None:
        dims: Sequence[int] = tuple(range(ndim))
    elif isinstance(dim, int):
        dims = (wrap_dim(dim, ndim, op),)
    else:
        dims = tuple(wrap_dim(d, ndim, op) for d in dim)
    if not dims:
        return input
    shape = input._data.shape
    return roll(input, tuple(sign * (shape[d] // 2) for d in dims), tuple(dims))


def fftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """Moves the zero-frequency bin to the centre along ``dim`` (all dims by default).

    Example:
        >>> import ember
        >>> ember.fft.fftshift(ember.fft.fftfreq(4)).tolist()
        [-0.5, -0.25, 0.0, 0.25]
    """
    return _shift("fftshift", input, dim, 1)


def ifftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """The inverse of :func:`fftshift` (they differ for odd lengths).

    Example:
        >>> import ember
        >>> ember.fft.ifftshift(ember.tensor([-0.5, -0.25, 0.0, 0.25])).tolist()
        [0.0, 0.25, -0.5, -0.25]
    """
    return _shift("ifftshift", input, dim, -1)
