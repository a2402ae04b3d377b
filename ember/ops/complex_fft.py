"""Discrete Fourier transforms: the primitives behind :mod:`ember.fft`.

Three primitives carry every transform (NumPy's pocketfft kernels, which keep float32 and
complex64 in single precision):

* ``fft_c2c``: complex to complex over several dims, forward or inverse;
* ``fft_r2c``: real to the one-sided (``n // 2 + 1`` bins) spectrum along one dim;
* ``fft_c2r``: a one-sided spectrum to the real signal of length ``n`` along one dim.

A multi-dimensional real transform is ``r2c`` on the last dim then ``c2c`` on the others
(``c2c`` then ``c2r`` for the inverse); the normalization of a transform over several dims is
the product of its per-dim factors, so each step uses the caller's ``norm``. Padding and
trimming to ``n``/``s`` are ``narrow``/``cat`` ops, so their gradients come for free.

Gradients (PyTorch's convention for complex tensors, see :mod:`ember.ops.complex_base`) are
the adjoint transforms: the adjoint of a transform normalized by ``norm`` is the opposite
direction with the dual normalization (``backward`` <-> ``forward``, ``ortho`` stays). The
adjoint of ``r2c`` is the real part of the inverse of the zero-padded spectrum; the adjoint of
``c2r`` is ``r2c`` with the bins that stand for two conjugate bins (all but DC and, for even
``n``, Nyquist) doubled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._samples import defsample
from .complex_base import const

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["c2c", "c2r", "dual_norm", "r2c"]

_NORMS = ("backward", "ortho", "forward")
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def dual_norm(norm: str) -> str:
    """The normalization of the adjoint (and of the hfft/ihfft pair's underlying transform)."""
    return _DUAL[norm]


def _check_norm(norm: str | None, op: str) -> str:
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ValueError(f"{op}: invalid normalization mode {norm!r}; expected one of {_NORMS}")
    return norm


# -- primitives -----------------------------------------------------------------------------
def _c2c_impl(x, *, dims, forward, norm):
    f = np.fft.fftn if forward else np.fft.ifftn
    return f(x, axes=dims, norm=norm).astype(x.dtype, copy=False)


def _c2c_abstract(x, *, dims, forward, norm):
    if not x.dtype.is_complex:
        raise ShapeError(f"fft_c2c: expected a complex input, got {x.dtype}")
    return AbstractValue(x.shape, x.dtype)


fft_c2c_p = Primitive("fft_c2c", "opaque", impl=_c2c_impl, abstract=_c2c_abstract, save=SAVE_NONE)


@defvjp(fft_c2c_p, save=SAVE_NONE)
def _c2c_vjp(g, out, x, *, dims, forward, norm):
    return (c2c(g, dims, not forward, _DUAL[norm]),)


def _r2c_impl(x, *, dim, n, norm):
    c = np.complex64 if x.dtype == np.float32 else np.complex128
    return np.fft.rfft(x, axis=dim, norm=norm).astype(c, copy=False)


def _r2c_abstract(x, *, dim, n, norm):
    if x.dtype not in (dt.float32, dt.float64):
        raise ShapeError(f"fft_r2c: expected a float32 or float64 input, got {x.dtype}")
    if x.shape[dim] != n:
        raise ShapeError(f"fft_r2c: expected size {n} along dim {dim}, got shape {x.shape}")
    shape = list(x.shape)
    shape[dim] = n // 2 + 1
    return AbstractValue(tuple(shape), x.dtype.to_complex())


# (``n``, the input's length along ``dim``, is a param so that the VJP needs no saved input)
fft_r2c_p = Primitive("fft_r2c", "opaque", impl=_r2c_impl, abstract=_r2c_abstract, save=SAVE_NONE)


@defvjp(fft_r2c_p, save=SAVE_NONE)
def _r2c_vjp(g, out, x, *, dim, n, norm):
    from .complex_ops import real

    return (real(c2c(resize(g, dim, n), (dim,), False, _DUAL[norm])),)


def _c2r_impl(x, *, dim, n, norm):
    r = np.float32 if x.dtype == np.complex64 else np.float64
    return np.fft.irfft(x, n=n, axis=dim, norm=norm).astype(r, copy=False)


def _c2r_abstract(x, *, dim, n, norm):
    if not x.dtype.is_complex:
        raise ShapeError(f"fft_c2r: expected a complex input, got {x.dtype}")
    if x.shape[dim] != n // 2 + 1:
        raise ShapeError(
            f"fft_c2r: expected {n // 2 + 1} bins along dim {dim} for n={n}, got {x.shape[dim]}"
        )
    shape = list(x.shape)
    shape[dim] = n
    return AbstractValue(tuple(shape), x.dtype.to_real())


fft_c2r_p = Primitive("fft_c2r", "opaque", impl=_c2r_impl, abstract=_c2r_abstract, save=SAVE_NONE)


@defvjp(fft_c2r_p, save=SAVE_NONE)
def _c2r_vjp(g, out, x, *, dim, n, norm):
    m = n // 2 + 1
    w = np.full(m, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    shape = [1] * g._data.ndim
    shape[dim] = m
    dtype = g._data.dtype
    return (r2c(g, dim, _DUAL[norm]) * const(w.reshape(shape).astype(dtype)),)


# -- building blocks (dims already normalized, inputs already of the right kind) ---------------
def c2c(x: Tensor, dims: tuple[int, ...], forward: bool, norm: str) -> Tensor:
    """Complex transform of ``x`` over ``dims`` (no padding; ``x`` complex)."""
    return bind(fft_c2c_p, (x,), {"dims": tuple(dims), "forward": bool(forward), "norm": norm})


def r2c(x: Tensor, dim: int, norm: str) -> Tensor:
    """One-sided spectrum of the real ``x`` along ``dim``."""
    return bind(fft_r2c_p, (x,), {"dim": dim, "n": x._data.shape[dim], "norm": norm})


def c2r(x: Tensor, dim: int, n: int, norm: str) -> Tensor:
    """Real signal of length ``n`` from the one-sided spectrum ``x`` (``n // 2 + 1`` bins)."""
    return bind(fft_c2r_p, (x,), {"dim": dim, "n": n, "norm": norm})


def resize(x: Tensor, dim: int, n: int) -> Tensor:
    """``x`` trimmed or zero-padded (at the end) to length ``n`` along ``dim``."""
    from .shape import cat, narrow

    size = x._data.shape[dim]
    if n == size:
        return x
    if n < size:
        return narrow(x, dim, 0, n)
    shape = list(x._data.shape)
    shape[dim] = n - size
    return cat([x, const(np.zeros(shape, x._data.dtype))], dim)


def _samples_c2c():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    z = tensor(rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4)))
    return [
        ((z,), {"dims": (1,), "forward": True, "norm": "backward"}),
        ((z,), {"dims": (0, 1), "forward": False, "norm": "ortho"}),
    ]


def _samples_r2c():
    from .._creation import tensor

    x = tensor(np.random.default_rng(0).standard_normal((3, 5)), requires_grad=True)
    return [((x,), {"dim": 1, "n": 5, "norm": "backward"})]


def _samples_c2r():
    from .._creation import tensor

    rng = np.random.default_rng(0)
    z = tensor(rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)))
    return [
        ((z,), {"dim": 1, "n": 4, "norm": "forward"}),
        ((z,), {"dim": 1, "n": 5, "norm": "backward"}),
    ]


defsample(fft_c2c_p, _samples_c2c)
defsample(fft_r2c_p, _samples_r2c)
defsample(fft_c2r_p, _samples_c2r)
