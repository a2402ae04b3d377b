"""The transforms of :mod:`ember.fft` (PyTorch's ``torch.fft`` signatures and semantics)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import _dtype as dt
from .._tensor import Tensor
from ..ops._core import ShapeError
from ..ops._util import wrap_dim
from ..ops.complex_fft import _check_norm, c2c, c2r, dual_norm, r2c, resize
from ..ops.complex_ops import conj
from ..ops.elementwise import convert, not_a_tensor

__all__ = [
    "fft",
    "fft2",
    "fftn",
    "hfft",
    "hfft2",
    "hfftn",
    "ifft",
    "ifft2",
    "ifftn",
    "ihfft",
    "ihfft2",
    "ihfftn",
    "irfft",
    "irfft2",
    "irfftn",
    "rfft",
    "rfft2",
    "rfftn",
]

Dims = int | Sequence[int] | None
Sizes = Sequence[int] | None


# -- argument handling ----------------------------------------------------------------------
def _real_float(x: Tensor, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise not_a_tensor(op, x)
    k = x._data.dtype.kind
    if k in "iub":
        return convert(x, dt.get_default_dtype())
    if x.dtype not in (dt.float32, dt.float64, dt.complex64, dt.complex128):
        return convert(x, dt.float32)  # half precision: computed in float32
    return x


def _as_complex(x: Tensor, op: str) -> Tensor:
    x = _real_float(x, op)
    if x._data.dtype.kind == "c":
        return x
    return convert(x, x.dtype.to_complex())


def _as_real(x: Tensor, op: str) -> Tensor:
    x = _real_float(x, op)
    if x._data.dtype.kind == "c":
        raise RuntimeError(f"{op} expects a real input tensor, but got {x.dtype}")
    return x


def _check_n(n: int, op: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        try:
            n = int(n.__index__())
        except AttributeError:
            raise TypeError(f"{op}: n must be an int, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"{op}: invalid number of data points ({n}) specified")
    return n


def _dim_n(x: Tensor, n: int | None, dim: int, op: str) -> tuple[int, int]:
    if x._data.ndim == 0:
        raise IndexError(f"{op}: expected a tensor with at least 1 dimension, got a 0-d tensor")
    d = wrap_dim(dim, x._data.ndim, op)
    return d, _check_n(x._data.shape[d] if n is None else n, op)


def _dims_sizes(x: Tensor, s: Sizes, dim: Dims, op: str) -> tuple[tuple[int, ...], list[int]]:
    """The transformed dims and their lengths (``-1`` in ``s``: the input's length)."""
    ndim = x._data.ndim
    if s is not None and not isinstance(s, Sequence):
        raise TypeError(f"{op}: s must be a sequence of ints, got {type(s).__name__}")
    if dim is None:
        dims = tuple(range(ndim)) if s is None else tuple(range(ndim - len(s), ndim))
        if s is not None and len(s) > ndim:
            raise ShapeError(f"{op}: got s={tuple(s)} for a {ndim}-d input")
    else:
        raw = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = tuple(wrap_dim(d, ndim, op) for d in raw)
        if len(set(dims)) != len(dims):
            raise ShapeError(f"{op}: dims must be unique, got {raw}")
        if s is not None and len(s) != len(dims):
            raise ShapeError(
                f"{op}: when given, dim and s must have the same length, got s={tuple(s)} and "
                f"dim={raw}"
            )
    if ndim == 0 and dims:
        raise IndexError(f"{op}: expected a tensor with at least 1 dimension")
    shape = x._data.shape
    if s is None:
        sizes = [shape[d] for d in dims]
    else:
        sizes = [shape[d] if n == -1 else _check_n(n, op) for d, n in zip(dims, s)]
    for n in sizes:
        _check_n(n, op)
    return dims, sizes


def _resize_all(x: Tensor, dims: Sequence[int], sizes: Sequence[int]) -> Tensor:
    for d, n in zip(dims, sizes):
        x = resize(x, d, n)
    return x


# -- complex transforms ---------------------------------------------------------------------
def fft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The 1-D discrete Fourier transform along ``dim``, of length ``n`` (the input is
    zero-padded or trimmed to it). ``norm``: ``"backward"`` (default, no scaling),
    ``"ortho"`` (``1/sqrt(n)``) or ``"forward"`` (``1/n``).

    Example:
        >>> import ember
        >>> ember.fft.fft(ember.tensor([1.0, 0.0, 0.0, 0.0])).tolist()
        [(1+0j), (1+0j), (1+0j), (1+0j)]
    """
    norm = _check_norm(norm, "fft")
    x = _as_complex(input, "fft")
    d, n = _dim_n(x, n, dim, "fft")
    return c2c(resize(x, d, n), (d,), True, norm)


def ifft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The inverse of :func:`fft` (``norm="backward"`` scales by ``1/n``).

    Example:
        >>> import ember
        >>> ember.fft.ifft(ember.tensor([4.0, 0.0, 0.0, 0.0])).tolist()
        [(1+0j), (1+0j), (1+0j), (1+0j)]
    """
    norm = _check_norm(norm, "ifft")
    x = _as_complex(input, "ifft")
    d, n = _dim_n(x, n, dim, "ifft")
    return c2c(resize(x, d, n), (d,), False, norm)


def fftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The N-D discrete Fourier transform over ``dim`` (all dims, or the last ``len(s)``),
    each padded or trimmed to its length in ``s``.

    Example:
        >>> import ember
        >>> ember.fft.fftn(ember.ones(2, 2)).tolist()
        [[(4+0j), 0j], [0j, 0j]]
    """
    norm = _check_norm(norm, "fftn")
    x = _as_complex(input, "fftn")
    dims, sizes = _dims_sizes(x, s, dim, "fftn")
    return c2c(_resize_all(x, dims, sizes), dims, True, norm)


def ifftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The inverse of :func:`fftn`.

    Example:
        >>> import ember
        >>> ember.fft.ifftn(ember.fft.fftn(ember.ones(2, 2))).real.tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    norm = _check_norm(norm, "ifftn")
    x = _as_complex(input, "ifftn")
    dims, sizes = _dims_sizes(x, s, dim, "ifftn")
    return c2c(_resize_all(x, dims, sizes), dims, False, norm)


def fft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`fftn` over the last two dims.

    Example:
        >>> import ember
        >>> tuple(ember.fft.fft2(ember.ones(3, 2, 4)).shape)
        (3, 2, 4)
    """
    return fftn(input, s, dim, norm)


def ifft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`ifftn` over the last two dims.

    Example:
        >>> import ember
        >>> ember.fft.ifft2(ember.ones(2, 2)).real.tolist()
        [[1.0, 0.0], [0.0, 0.0]]
    """
    return ifftn(input, s, dim, norm)


# -- real-input and real-output transforms --------------------------------------------------
def rfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The one-sided Fourier transform of a real signal: ``n // 2 + 1`` bins along ``dim``.

    Example:
        >>> import ember
        >>> ember.fft.rfft(ember.tensor([1.0, 2.0, 3.0, 4.0])).tolist()
        [(10+0j), (-2+2j), (-2+0j)]
    """
    norm = _check_norm(norm, "rfft")
    x = _as_real(input, "rfft")
    d, n = _dim_n(x, n, dim, "rfft")
    return r2c(resize(x, d, n), d, norm)


def irfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The inverse of :func:`rfft`: a real signal of length ``n`` (default
    ``2 * (bins - 1)``) from a one-sided spectrum. The imaginary parts of the DC bin (and of
    the Nyquist bin for even ``n``) are ignored, as in PyTorch.

    Example:
        >>> import ember
        >>> ember.fft.irfft(ember.fft.rfft(ember.tensor([1.0, 2.0, 3.0, 4.0]))).tolist()
        [1.0, 2.0, 3.0, 4.0]
    """
    norm = _check_norm(norm, "irfft")
    x = _as_complex(input, "irfft")
    if x._data.ndim == 0:
        raise IndexError("irfft: expected a tensor with at least 1 dimension, got a 0-d tensor")
    d = wrap_dim(dim, x._data.ndim, "irfft")
    n = _check_n(2 * (x._data.shape[d] - 1) if n is None else n, "irfft")
    return c2r(resize(x, d, n // 2 + 1), d, n, norm)


def rfftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The N-D transform of a real signal, one-sided along the last transformed dim.

    Example:
        >>> import ember
        >>> tuple(ember.fft.rfftn(ember.ones(4, 6)).shape)
        (4, 4)
    """
    norm = _check_norm(norm, "rfftn")
    x = _as_real(input, "rfftn")
    dims, sizes = _dims_sizes(x, s, dim, "rfftn")
    if not dims:
        return convert(x, x.dtype.to_complex())
    y = r2c(_resize_all(x, dims, sizes), dims[-1], norm)
    return c2c(y, dims[:-1], True, norm) if len(dims) > 1 else y


def irfftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The inverse of :func:`rfftn`: the last transformed dim has length ``s[-1]`` (default
    ``2 * (bins - 1)``).

    Example:
        >>> import ember
        >>> x = ember.arange(12.0).reshape(3, 4)
        >>> ember.allclose(ember.fft.irfftn(ember.fft.rfftn(x)), x, atol=1e-5)
        True
    """
    norm = _check_norm(norm, "irfftn")
    x = _as_complex(input, "irfftn")
    if s is None:
        dims, sizes = _dims_sizes(x, None, dim, "irfftn")
        if dims:
            sizes[-1] = _check_n(2 * (sizes[-1] - 1), "irfftn")
    else:
        dims, sizes = _dims_sizes(x, s, dim, "irfftn")
        if dims and s[-1] == -1:
            sizes[-1] = _check_n(2 * (x._data.shape[dims[-1]] - 1), "irfftn")
    if not dims:
        return convert(x, x.dtype.to_real())
    last, n = dims[-1], sizes[-1]
    x = _resize_all(x, dims[:-1], sizes[:-1])
    x = resize(x, last, n // 2 + 1)
    if len(dims) > 1:
        x = c2c(x, dims[:-1], False, norm)
    return c2r(x, last, n, norm)


def rfft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`rfftn` over the last two dims.

    Example:
        >>> import ember
        >>> tuple(ember.fft.rfft2(ember.ones(4, 6)).shape)
        (4, 4)
    """
    return rfftn(input, s, dim, norm)


def irfft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`irfftn` over the last two dims.

    Example:
        >>> import ember
        >>> tuple(ember.fft.irfft2(ember.fft.rfft2(ember.ones(4, 6))).shape)
        (4, 6)
    """
    return irfftn(input, s, dim, norm)


# -- Hermitian-input transforms -------------------------------------------------------------
def hfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The (real) transform of a Hermitian-symmetric signal given by its one-sided half:
    ``irfft`` of the conjugate with the dual normalization (``"backward"``: no scaling).

    Example:
        >>> import ember
        >>> ember.fft.hfft(ember.tensor([1.0, 0.0, 0.0])).tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    norm = _check_norm(norm, "hfft")
    return irfft(conj(_as_complex(input, "hfft")), n, dim, dual_norm(norm))


def ihfft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The inverse of :func:`hfft`: the one-sided half of the Hermitian spectrum of a real
    signal (``conj(rfft(...))`` with the dual normalization).

    Example:
        >>> import ember
        >>> ember.fft.ihfft(ember.tensor([1.0, 1.0, 1.0, 1.0])).real.tolist()
        [1.0, 0.0, 0.0]
    """
    norm = _check_norm(norm, "ihfft")
    return conj(rfft(_as_real(input, "ihfft"), n, dim, dual_norm(norm)))


def hfftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The N-D :func:`hfft` (one-sided along the last transformed dim).

    Example:
        >>> import ember
        >>> tuple(ember.fft.hfftn(ember.ones(4, 3)).shape)
        (4, 4)
    """
    norm = _check_norm(norm, "hfftn")
    return irfftn(conj(_as_complex(input, "hfftn")), s, dim, dual_norm(norm))


def ihfftn(input: Tensor, s: Sizes = None, dim: Dims = None, norm: str | None = None) -> Tensor:
    """The inverse of :func:`hfftn`.

    Example:
        >>> import ember
        >>> tuple(ember.fft.ihfftn(ember.ones(4, 4)).shape)
        (4, 3)
    """
    norm = _check_norm(norm, "ihfftn")
    return conj(rfftn(_as_real(input, "ihfftn"), s, dim, dual_norm(norm)))


def hfft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`hfftn` over the last two dims.

    Example:
        >>> import ember
        >>> tuple(ember.fft.hfft2(ember.ones(4, 3)).shape)
        (4, 4)
    """
    return hfftn(input, s, dim, norm)


def ihfft2(input: Tensor, s: Sizes = None, dim: Dims = (-2, -1), norm: str | None = None) -> Tensor:
    """:func:`ihfftn` over the last two dims.

    Example:
        >>> import ember
        >>> tuple(ember.fft.ihfft2(ember.ones(4, 4)).shape)
        (4, 3)
    """
    return ihfftn(input, s, dim, norm)
