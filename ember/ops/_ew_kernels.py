"""NumPy kernels of the elementwise ops that are more than one ufunc call (sign with
PyTorch's NaN rule, an overflow-free sigmoid, erf without SciPy, compiled relu loops).

The records that use them live in ``elementwise.py``; the kernels only see arrays.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import cpu, jit, xp_of

if TYPE_CHECKING:
    from collections.abc import Callable

__all__: list[str] = []  # kernels only: no public names


def sign_impl(x):
    r = np.sign(x)
    if x.dtype.kind in "fV":  # sign(nan) is 0 in PyTorch (NumPy: nan)
        r = np.where(np.isnan(r), r.dtype.type(0), r)
    return r


def sigmoid_impl(x):
    # NOTE: split by sign so exp never overflows (exp(-x) for x << 0 would be inf).
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    one = x.dtype.type(1)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def tanh_grad_impl(g, y):
    return g * (y.dtype.type(1) - y * y)


def sigmoid_grad_impl(g, y):
    return g * (y * (y.dtype.type(1) - y))


_FLAT_MIN = 4096  # below: NumPy's call is as cheap as the compiled one
_FLAT_BLOCK = 1 << 19


def jit_unary(name, *arrays):
    """The compiled flat kernel ``name`` when all ``arrays`` are dense float32/float64
    arrays of one layout (NumPy arrays of at least _FLAT_MIN elements), else None."""
    a0 = arrays[0]
    if type(a0) is not np.ndarray or a0.size < _FLAT_MIN or a0.dtype not in cpu.FAST_FLOATS:
        return None
    for a in arrays[1:]:
        if (
            type(a) is not np.ndarray
            or a.dtype != a0.dtype
            or a.strides != a0.strides
            or a.shape != a0.shape
        ):
            return None

    k = jit.get(name)
    if k is None or cpu.dense_flat(a0) is None:
        return None
    return k


def run_flat(kernel, ins, out):
    """``kernel(*flat_ins, flat_out)`` over dense same-layout arrays, in blocks on Ember's
    threads for large arrays (the kernels release the GIL)."""
    from ._parallel import parallel_for  # the thread pool starts on first use

    flats = [cpu.dense_flat(a) for a in ins]
    of = cpu.dense_flat(out)
    n = of.size

    def block(a, b, slot):
        kernel(*[f[a:b] for f in flats], of[a:b])

    parallel_for(n, _FLAT_BLOCK, block, 2 * n)
    return out


def relu_impl(x):
    k = jit_unary("relu", x)
    if k is not None:
        out = np.empty_like(x)
        return run_flat(k, (x,), out)
    return np.maximum(x, x.dtype.type(0))


def relu_grad_impl(g, out):
    k = jit_unary("relu_grad", g, out)
    if k is not None:
        return run_flat(k, (g, out), np.empty_like(g))
    # NumPy multiplies by the boolean mask without a float copy of it; the mask is
    # "not out <= 0" so that a NaN output passes the gradient, as PyTorch
    return np.multiply(g, np.logical_not(out <= out.dtype.type(0)), dtype=g.dtype)


def erf_numpy(x):
    """erf without SciPy: a series near 0 and a Chebyshev-fitted erfc elsewhere
    (relative error < 1.2e-7), enough for float32 parity."""
    xp = xp_of(x)
    z = xp.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t
                            * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * xp.exp(poly)
    big = 1.0 - erfc
    z2 = z * z
    small = (
        z
        * (
            1.0
            + z2
            * (
                -1 / 3
                + z2
                * (
                    1 / 10
                    + z2
                    * (-1 / 42 + z2 * (1 / 216 + z2 * (-1 / 1320 + z2 * (1 / 9360 - z2 / 75600))))
                )
            )
        )
        * (2.0 / math.sqrt(math.pi))
    )
    r = xp.where(z < 0.5, small, big)
    return (xp.sign(x) * r).astype(x.dtype)


def erf_impl(x):
    try:  # SciPy is optional
        from scipy.special import erf as _sp_erf
    except ImportError:
        return erf_numpy(x)
    if x.dtype.kind == "V":
        return _sp_erf(x.astype(np.float32)).astype(x.dtype)
    return _sp_erf(x).astype(x.dtype, copy=False)


try:  # NumPy >= 2 keeps the error state in a context variable: set it directly (cheap)
    # private NumPy names, absent from its type stubs
    from numpy._core._ufunc_config import (  # type: ignore[attr-defined]
        _extobj_contextvar,
        _make_extobj,
    )

    _QUIET = _make_extobj(all="ignore")
except ImportError:  # pragma: no cover  (other NumPy versions: the public decorator)
    _extobj_contextvar = None


def quiet(kernel, nargs: int | None = None):
    """``kernel`` with NumPy's floating-point warnings off (log(0), x/0, inf*0, overflow give
    inf/nan silently, as in PyTorch), scoped to the call: other warnings still reach the
    user and NumPy's error state outside the kernel is untouched.

    ``nargs`` (a ufunc's ``nin`` by default) picks a fixed-arity wrapper: packing ``*args``
    would cost as much as the error-state switch itself on small tensors."""
    if _extobj_contextvar is None:
        return np.errstate(all="ignore")(kernel)
    cv_set, cv_reset, state = _extobj_contextvar.set, _extobj_contextvar.reset, _QUIET
    if nargs is None and isinstance(kernel, np.ufunc):
        nargs = kernel.nin
    run: Callable[..., Any]
    if nargs == 1:

        def run1(x):
            token = cv_set(state)
            try:
                return kernel(x)
            finally:
                cv_reset(token)

        run = run1
    elif nargs == 2:

        def run2(x, y):
            token = cv_set(state)
            try:
                return kernel(x, y)
            finally:
                cv_reset(token)

        run = run2
    else:

        def run_n(*args, **params):
            token = cv_set(state)
            try:
                return kernel(*args, **params)
            finally:
                cv_reset(token)

        run = run_n

    run.__name__ = getattr(kernel, "__name__", "kernel")
    return run
