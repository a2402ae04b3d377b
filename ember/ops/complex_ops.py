"""Complex numbers: parts, construction and conjugation (``real``, ``imag``,
``view_as_real``, ``view_as_complex``, ``complex``, ``polar``, ``conj``, ``angle``).

``real``, ``imag``, ``view_as_real`` and ``view_as_complex`` are views, as in PyTorch: they
share memory with their input, and an in-place update of the view updates the input (and
its gradient history). ``conj`` and ``conj_physical`` return a conjugated copy (PyTorch's
``conj`` is a lazy view with a conjugate bit; Ember has no such bit, so ``is_conj`` would
always be False and ``resolve_conj`` returns its input).

Gradients follow PyTorch's convention (see :mod:`ember.ops.complex_base`): ``z.grad`` of a
complex leaf is ``dL/dx + i dL/dy``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _dtype as dt
from . import _core
from ._ad import defvjp
from ._core import SAVE_INPUTS, SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from .complex_base import conj_p
from .elementwise import broadcast_shapes, convert, cos, not_a_tensor, sin, where

if TYPE_CHECKING:
    from .._tensor import Tensor


def _complex_sample(rng, shapes):
    """Complex64 draws with both parts in [-2, 2] (away from 0, where angle/sgn jump)."""
    out = []
    for s in shapes:
        re = rng.uniform(-2, 2, s)
        im = rng.uniform(-2, 2, s)
        re = np.where(np.abs(re) < 0.1, 0.5, re)
        out.append(np.asarray(re + 1j * im, np.complex64))
    return out


def _check_tensor(x, op_name):
    if not isinstance(x, _core._Tensor):
        raise not_a_tensor(op_name, x)


def _is_c(x) -> bool:
    return x._data.dtype.kind == "c"


# -- parts ----------------------------------------------------------------------------------
def _part_abstract(x, *, part):
    return AbstractValue(x.shape, x.dtype.to_real())


def _part_impl(x, *, part):
    return x.real if part == 0 else x.imag


part_p = Primitive("complex_part", "view", impl=_part_impl, abstract=_part_abstract)


@defvjp(part_p, save=SAVE_NONE)
def _part_vjp(g, out, x, *, part):
    gc = convert(g, g.dtype.to_complex())
    return (gc if part == 0 else gc * 1j,)


@op(ref="real", dtypes=("complex64",), sample=_complex_sample)
def real(input: Tensor) -> Tensor:
    """The real part of a complex tensor, as a view (a real tensor is returned as it is).

    Example:
        >>> import ember
        >>> ember.real(ember.tensor([1 + 2j, 3 - 1j])).tolist()
        [1.0, 3.0]
    """
    _check_tensor(input, "real")
    if not _is_c(input):
        return input
    return bind(part_p, (input,), {"part": 0})


@op(ref="imag", dtypes=("complex64",), sample=_complex_sample)
def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor, as a view.

    Example:
        >>> import ember
        >>> ember.imag(ember.tensor([1 + 2j, 3 - 1j])).tolist()
        [2.0, -1.0]
    """
    _check_tensor(input, "imag")
    if not _is_c(input):
        raise RuntimeError(
            f"imag is not implemented for tensors with non-complex dtypes (got {input.dtype})"
        )
    return bind(part_p, (input,), {"part": 1})


def _as_real_impl(x):
    r = x.real  # a view with the strides of ``x`` (in bytes), of the real dtype
    return np.lib.stride_tricks.as_strided(r, x.shape + (2,), r.strides + (r.itemsize,))


view_as_real_p = Primitive(
    "view_as_real",
    "view",
    impl=_as_real_impl,
    abstract=lambda x: AbstractValue(x.shape + (2,), x.dtype.to_real()),
    save=SAVE_NONE,
)
defvjp(view_as_real_p, lambda g, out, x: (view_as_complex(g.contiguous()),), save=SAVE_NONE)


@op(ref="view_as_real", dtypes=("complex64",), sample=_complex_sample)
def view_as_real(input: Tensor) -> Tensor:
    """The complex ``input`` as a real view with a last dimension of size 2 (real, imag).

    Example:
        >>> import ember
        >>> ember.view_as_real(ember.tensor([1 + 2j])).tolist()
        [[1.0, 2.0]]
    """
    _check_tensor(input, "view_as_real")
    if not _is_c(input):
        raise RuntimeError(
            f"view_as_real is only supported for complex tensors (got {input.dtype})"
        )
    return bind(view_as_real_p, (input,))


def _as_complex_impl(x):
    c = np.complex64 if x.dtype == np.float32 else np.complex128
    if x.strides[-1] != x.itemsize or any(s % (2 * x.itemsize) for s in x.strides[:-1]):
        x = np.ascontiguousarray(x)  # no complex view of this layout (PyTorch raises): a copy
    return x.view(c)[..., 0]  # the (real, imag) pair of the last axis becomes one item


def _as_complex_abstract(x):
    if not x.shape or x.shape[-1] != 2:
        raise ShapeError(
            f"view_as_complex: the tensor must have a last dimension of size 2, got shape {x.shape}"
        )
    if x.dtype not in (dt.float32, dt.float64):
        raise ShapeError(
            f"view_as_complex: only float32 and float64 tensors are supported, got {x.dtype}"
        )
    return AbstractValue(x.shape[:-1], x.dtype.to_complex())


view_as_complex_p = Primitive(
    "view_as_complex", "view", impl=_as_complex_impl, abstract=_as_complex_abstract, save=SAVE_NONE
)
defvjp(view_as_complex_p, lambda g, out, x: (view_as_real(g),), save=SAVE_NONE)


def _pairs(rng, shapes):
    return [np.asarray(rng.uniform(-2, 2, s), np.float32) for s in shapes]


@op(ref="view_as_complex", shapes=(((3, 2),), ((2, 4, 2),), ((2,),)), sample=_pairs, grad=False)
def view_as_complex(input: Tensor) -> Tensor:
    """A float tensor with a last dimension of size 2 as a complex view (a copy when the
    strides allow no view, where PyTorch raises). Its gradient is compared with PyTorch in
    ``tests/test_complex.py`` (the records' gradient checks take real outputs).

    Example:
        >>> import ember
        >>> ember.view_as_complex(ember.tensor([[1.0, 2.0]])).tolist()
        [(1+2j)]
    """
    _check_tensor(input, "view_as_complex")
    _as_complex_abstract(AbstractValue(input._data.shape, input.dtype))
    return bind(view_as_complex_p, (input,))


# -- construction ---------------------------------------------------------------------------
def _complex_impl(re, im):
    shape = np.broadcast_shapes(re.shape, im.shape)
    out = np.empty(shape, np.complex64 if re.dtype == np.float32 else np.complex128)
    out.real = re
    out.imag = im
    return out


def _complex_abstract(re, im):
    return AbstractValue(broadcast_shapes(re.shape, im.shape, op="complex"), re.dtype.to_complex())


complex_p = Primitive(
    "complex", "elementwise", impl=_complex_impl, abstract=_complex_abstract, save=SAVE_NONE
)
defvjp(complex_p, lambda g, out, re, im: (real(g), imag(g)), save=SAVE_NONE)


@op(ref="complex", arity=2, grad=False)  # gradients: tests/test_complex.py (complex output)
def complex(real: Tensor, imag: Tensor) -> Tensor:
    """The complex tensor ``real + i imag`` (both float32 or both float64; broadcast).

    Example:
        >>> import ember
        >>> ember.complex(ember.tensor([1.0]), ember.tensor([2.0])).tolist()
        [(1+2j)]
    """
    _check_tensor(real, "complex")
    _check_tensor(imag, "complex")
    for name, t in (("real", real), ("imag", imag)):
        if t.dtype not in (dt.float32, dt.float64):
            raise TypeError(f"complex: expected {name} to be float32 or float64, got {t.dtype}")
    if real.dtype is not imag.dtype:
        raise TypeError(
            f"complex: expected real and imag to have the same dtype, got {real.dtype} and "
            f"{imag.dtype}"
        )
    return bind(complex_p, (real, imag))


@op(ref="polar", arity=2, grad=False)  # gradients: tests/test_complex.py (complex output)
def polar(abs: Tensor, angle: Tensor) -> Tensor:
    """The complex tensor ``abs * (cos(angle) + i sin(angle))``.

    Example:
        >>> import ember
        >>> ember.polar(ember.tensor([2.0]), ember.tensor([0.0])).tolist()
        [(2+0j)]
    """
    _check_tensor(abs, "polar")
    _check_tensor(angle, "polar")
    if abs.dtype is not angle.dtype or abs.dtype not in (dt.float32, dt.float64):
        raise TypeError(
            f"polar: expected abs and angle to be both float32 or both float64, got "
            f"{abs.dtype} and {angle.dtype}"
        )
    return complex(abs * cos(angle), abs * sin(angle))


# -- conjugation ----------------------------------------------------------------------------
def _torch_conj(x):
    return x.conj().resolve_conj()  # (PyTorch's lazy conjugate, materialized for comparison)


@op(method="conj", ref=_torch_conj, dtypes=("complex64",), sample=_complex_sample)
def conj(input: Tensor) -> Tensor:
    """The complex conjugate, as a copy (PyTorch returns a lazily conjugated view with the same
    values); a real tensor is returned as it is.

    Example:
        >>> import ember
        >>> ember.conj(ember.tensor([1 + 2j])).tolist()
        [(1-2j)]
    """
    _check_tensor(input, "conj")
    if not _is_c(input):
        return input
    return bind(conj_p, (input,))


@op(method="conj_physical", ref="conj_physical", dtypes=("complex64",), sample=_complex_sample)
def conj_physical(input: Tensor) -> Tensor:
    """The complex conjugate, computed (the same as :func:`conj` in Ember).

    Example:
        >>> import ember
        >>> ember.conj_physical(ember.tensor([1 - 1j])).tolist()
        [(1+1j)]
    """
    return conj(input)


@op(method="resolve_conj", ref="resolve_conj", dtypes=("complex64",), sample=_complex_sample)
def resolve_conj(input: Tensor) -> Tensor:
    """``input`` itself: Ember's :func:`conj` already computes the conjugate, so there is no
    pending conjugation to resolve.

    Example:
        >>> import ember
        >>> ember.resolve_conj(ember.tensor([1 + 1j])).tolist()
        [(1+1j)]
    """
    _check_tensor(input, "resolve_conj")
    return input


# -- angle ----------------------------------------------------------------------------------
def _angle_impl(x):
    if x.dtype.kind == "c":
        return np.angle(x)
    # real input: pi for negative numbers, 0 otherwise, nan stays nan (as PyTorch)
    with np.errstate(invalid="ignore"):
        out = np.where(x < 0, x.dtype.type(math.pi), x.dtype.type(0))
    return np.where(np.isnan(x), x, out).astype(x.dtype, copy=False)


angle_p = Primitive(
    "angle",
    "elementwise",
    impl=_angle_impl,
    abstract=lambda x: AbstractValue(x.shape, x.dtype.to_real()),
    save=SAVE_INPUTS,
)


@defvjp(angle_p)
def _angle_vjp(g, out, x):
    if not _is_c(x):
        return (g * 0.0,)
    # d angle = (x dy - y dx) / |z|^2, so the gradient is g * i z / |z|^2 (0 at z = 0)
    r2 = real(x) * real(x) + imag(x) * imag(x)
    safe = where(r2 == 0, 1.0, r2)
    coef = where(r2 == 0, 0.0, g / safe)
    return (complex(-imag(x) * coef, real(x) * coef),)


def _angle_sample(rng, shapes):
    return _complex_sample(rng, shapes)


@op(method="angle", ref="angle", dtypes=("complex64",), sample=_angle_sample)
def angle(input: Tensor) -> Tensor:
    """The argument of each complex element, in ``(-pi, pi]`` (``0`` or ``pi`` for real ones).

    Example:
        >>> import ember
        >>> round(ember.angle(ember.tensor([1j])).item(), 4)
        1.5708
    """
    _check_tensor(input, "angle")
    if input._data.dtype.kind in "iub":
        input = convert(input, dt.get_default_dtype())
    return bind(angle_p, (input,))


__all__ = module_ops(__name__)

# the Fourier-transform primitives register with the rest (ember.fft itself loads lazily)
from . import complex_eig, complex_fft, complex_stft  # noqa: E402, F401
