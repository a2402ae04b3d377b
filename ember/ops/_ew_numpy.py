"""The NumPy side of the elementwise kernels in ``_ew_kernels.py``: the block functions
(``_np_exp(x, out)``, ``_np_exp_grad(g, v, out)``, ...) that run where no compiled float32
kernel does (float64 always, every dtype without numba), their constants, and ``erf_numpy``
(erf without SciPy).

They are plain NumPy ufunc chains writing into block-sized buffers; the kernel selection, the
block loops and the op table (``_UNARY``) that choose between them and the compiled kernels
stay in ``_ew_kernels.py``. Kept apart because they are the part that changes with NumPy (a
new transcendental), not with the threading or numba paths.
"""

from __future__ import annotations

import math

import numpy as np

from ..backends import xp_of


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


_F32 = np.dtype(np.float32)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _c(x, v):
    """The constant ``v`` in ``x``'s dtype (keeps float32 chains in float32)."""
    return x.dtype.type(v)


# -- NumPy block implementations: (x, out, **params) and (g, v, out, **params) ------------------
def _np_exp(x, o):
    np.exp(x, out=o)


def _np_log(x, o):
    np.log(x, out=o)


def _np_tanh(x, o):
    np.tanh(x, out=o)


def _np_sigmoid(x, o):
    t = np.empty_like(o)
    np.abs(x, out=o)
    np.negative(o, out=o)
    np.exp(o, out=o)  # e = exp(-|x|) never overflows
    np.add(o, _c(x, 1), out=t)
    np.divide(o, t, out=o)  # e / (1 + e): x < 0
    np.divide(_c(x, 1), t, out=t)  # 1 / (1 + e): x >= 0
    np.copyto(o, t, where=x >= 0)


_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def _np_erf_f32(z, o):
    """float32 erf(z) into ``o`` (``o`` may be ``z``): the odd rational x P(x^2) / Q(x^2) on
    [-4, 4] that the compiled kernel uses too (NaN stays NaN through the clip)."""
    f = np.float32
    zc = np.clip(z, f(-4), f(4))
    x2 = zc * zc
    q = np.multiply(x2, f(_ERF_Q[0]))
    q += f(_ERF_Q[1])
    for b in _ERF_Q[2:]:
        q *= x2
        q += f(b)
    np.multiply(x2, f(_ERF_P[0]), out=o)
    o += f(_ERF_P[1])
    for a in _ERF_P[2:]:
        o *= x2
        o += f(a)
    o *= zc
    o /= q


def _np_erf(x, o):
    if x.dtype == _F32:
        _np_erf_f32(x, o)
        return
    try:  # SciPy is optional; double precision needs it for full accuracy
        from scipy.special import erf as sp_erf
    except ImportError:
        o[...] = erf_numpy(x)
        return
    sp_erf(x, out=o)


def _np_gelu(x, o):
    np.multiply(x, _c(x, _INV_SQRT2), out=o)
    _np_erf(o, o)
    o += _c(x, 1)
    o *= x
    o *= _c(x, 0.5)


def _np_gelu_tanh(x, o):
    """0.5 x (1 + tanh(k (x + c x^3))), evaluated in PyTorch's order (its float64 results
    agree to the last bits, even where 1 + tanh cancels)."""
    np.multiply(x, x, out=o)
    o *= x
    o *= _c(x, 0.044715)
    o += x
    o *= _c(x, _SQRT_2_OVER_PI)
    np.tanh(o, out=o)
    o += _c(x, 1)
    o *= x
    o *= _c(x, 0.5)


def _np_silu(x, o):
    _np_sigmoid(x, o)
    o *= x


def _np_softplus(x, o, beta=1.0, threshold=20.0):
    bx = x * _c(x, beta) if beta != 1.0 else x
    np.abs(bx, out=o)
    np.negative(o, out=o)
    np.exp(o, out=o)
    np.log1p(o, out=o)
    o += np.maximum(bx, _c(x, 0))
    if beta != 1.0:
        o /= _c(x, beta)
    np.copyto(o, x, where=bx > _c(x, threshold))


def _np_exp_grad(g, y, o):
    np.multiply(g, y, out=o)


def _np_log_grad(g, x, o):
    np.divide(g, x, out=o)


def _np_tanh_grad(g, y, o):
    np.multiply(y, y, out=o)
    np.subtract(_c(y, 1), o, out=o)
    o *= g


def _np_sigmoid_grad(g, y, o):
    np.subtract(_c(y, 1), y, out=o)
    o *= y
    o *= g


def _np_erf_grad(g, x, o):
    np.multiply(x, x, out=o)
    np.negative(o, out=o)
    np.exp(o, out=o)
    o *= _c(x, _TWO_OVER_SQRT_PI)
    o *= g


def _np_gelu_grad(g, x, o):
    """g * (cdf(x) + x * pdf(x))."""
    p = np.multiply(x, x)
    p *= _c(x, -0.5)
    np.exp(p, out=p)
    p *= x
    p *= _c(x, _INV_SQRT_2PI)
    np.multiply(x, _c(x, _INV_SQRT2), out=o)
    _np_erf(o, o)
    o += _c(x, 1)
    o *= _c(x, 0.5)
    o += p
    o *= g


def _np_gelu_tanh_grad(g, x, o):
    """g * (0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2)), t = tanh(k (x + c x^3))."""
    x2 = np.multiply(x, x)
    t = np.multiply(x2, x)
    t *= _c(x, 0.044715)
    t += x
    t *= _c(x, _SQRT_2_OVER_PI)
    np.tanh(t, out=t)
    x2 *= _c(x, 3 * 0.044715)
    x2 += _c(x, 1)
    x2 *= _c(x, _SQRT_2_OVER_PI)  # d inner / dx
    np.multiply(t, t, out=o)
    np.subtract(_c(x, 1), o, out=o)
    o *= x2
    o *= x
    o *= _c(x, 0.5)  # 0.5 x (1 - t^2) inner'
    t += _c(x, 1)
    t *= _c(x, 0.5)
    o += t
    o *= g


def _np_silu_grad(g, x, o):
    """g * s (1 + x (1 - s)), s = sigmoid(x)."""
    s = np.empty_like(o)
    _np_sigmoid(x, s)
    np.subtract(_c(x, 1), s, out=o)
    o *= x
    o += _c(x, 1)
    o *= s
    o *= g


def _np_softplus_grad(g, x, o, beta=1.0, threshold=20.0):
    bx = x * _c(x, beta) if beta != 1.0 else x
    _np_sigmoid(bx, o)
    o *= g
    np.copyto(o, g, where=bx > _c(x, threshold))
