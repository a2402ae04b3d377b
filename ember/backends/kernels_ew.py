"""Loop kernels for elementwise and transcendental ops (compiled by numba through
:mod:`ember.backends.jit`; ``ember/ops/_ew_kernels.py`` runs their parallel builds on large
arrays, or blocks of them on Ember's threads).

Every kernel is a flat loop over dense arrays that writes into an array it is given
(``kernel(x, out)`` or ``kernel(g, x_or_y, out)``; ``out`` may be ``x``). The transcendental
ones (``*_f32``) are float32 only: exp, erf and log1p are written out as polynomial / rational
approximations in plain arithmetic so that LLVM vectorizes the loops (calls into libm would
stay scalar: numba has no vector math library here); sigmoid, SiLU, tanh-GELU (as
x * sigmoid(2u)) and tanh are built on that exp. Float32
accuracy, checked against float64 references in the tests: exp, sigmoid, log1p within ~3 ulp,
erf within ~8 ulp.
float64 runs NumPy's and SciPy's double-precision functions instead (they agree with PyTorch to
~1e-15). ``dropout_fwd`` takes any float dtype.
"""

import math

import numpy as np

try:  # the outer loops are prange: jit.get_parallel splits them over numba's threads (a
    # serial build runs them as range)
    from numba import prange
except ImportError:  # pragma: no cover - the kernels are then never compiled
    prange = range  # type: ignore[misc]

__all__ = [
    "bias_add",
    "bias_div",
    "bias_mul",
    "bias_sub",
    "dropout_fwd",
    "erf_f32",
    "erf_grad_f32",
    "exp_f32",
    "flat_add",
    "flat_div",
    "flat_mul",
    "flat_sub",
    "gelu_f32",
    "gelu_grad_f32",
    "gelu_tanh_f32",
    "gelu_tanh_grad_f32",
    "sigmoid_f32",
    "sigmoid_grad_f32",
    "silu_f32",
    "silu_grad_f32",
    "softplus_f32",
    "softplus_grad_f32",
    "tanh_f32",
    "tanh_grad_f32",
]

F = np.float32
_ONE = F(1.0)
_HALF = F(0.5)
_ZERO = F(0.0)

# -- exp: 2**n * e**r with |r| <= ln2/2; e**r by a degree-7 polynomial ------------------------
_LOG2E = F(1.4426950408889634)
_LN2_HI = F(0.693359375)  # ln 2 split so that n * _LN2_HI is exact
_LN2_LO = F(-2.12194440e-4)
_EXP_P = (
    F(1.9875691500e-4),
    F(1.3981999507e-3),
    F(8.3334519073e-3),
    F(4.1665795894e-2),
    F(1.6666665459e-1),
    F(5.0000001201e-1),
)
# beyond these exp is inf / rounds to 0; clamping keeps n inside the exponent range
_EXP_HI = F(88.8)
_EXP_LO = F(-104.0)

# -- erf: odd rational on [-4, 4] (erf is 1 to float32 precision beyond) ---------------------
_ERF_P = (
    F(-2.72614225801306e-10),
    F(2.77068142495902e-08),
    F(-2.10102402082508e-06),
    F(-5.69250639462346e-05),
    F(-7.34990630326855e-04),
    F(-2.95459980854025e-03),
    F(-1.60960333262415e-02),
)
_ERF_Q = (
    F(-1.45660718464996e-05),
    F(-2.13374055278905e-04),
    F(-1.68282697438203e-03),
    F(-7.37332916720468e-03),
    F(-1.42647390514189e-02),
)

_INV_SQRT2 = F(0.7071067811865476)
_INV_SQRT_2PI = F(0.3989422804014327)
_TWO_OVER_SQRT_PI = F(1.1283791670955126)
_SQRT_2_OVER_PI = F(0.7978845608028654)
_GELU_C = F(0.044715)
_GELU_C3 = F(3 * 0.044715)

# log1p(u) = 2 atanh(s), s = u / (2 + u) in [0, 1/3] for u in [0, 1]: 2 s (1 + s^2/3 + ...)
_L1P = tuple(F(1.0 / (2 * k + 1)) for k in range(8, 0, -1))


def _exp_scale(n):
    """2**n as float32 for an int32 n in [-126, 127] (built from the exponent bits)."""
    return np.array([(n + 127) << 23], np.int32).view(np.float32)[0]


def _horner(c, r):
    """c[0] r**(k-1) + c[1] r**(k-2) + ... + c[k-1] for a tuple ``c`` of k float32
    coefficients, by Horner's rule (one multiply-add per coefficient once compiled)."""
    p = c[0]
    for i in range(1, len(c)):
        p = p * r + c[i]
    return p


def _ln2_reduce(x):
    """``(n, r)`` with x = n ln 2 + r, |r| <= ln2/2 (ln 2 split in two parts so that n ln 2
    is exact): the range reduction of exp and expm1."""
    n = np.floor(x * _LOG2E + _HALF)
    return n, x - n * _LN2_HI - n * _LN2_LO


def _exp(x):
    # a clamp that keeps NaN (each comparison is false for it): NaN then flows through every
    # step to the result, with no separate NaN select (7% faster on 2M floats, same bits)
    xc = _EXP_LO if x < _EXP_LO else x
    xc = _EXP_HI if xc > _EXP_HI else xc
    n, r = _ln2_reduce(xc)
    p = _horner(_EXP_P, r) * (r * r) + r + _ONE
    ni = np.int32(n)
    n1 = ni >> 1  # two factors: 2**n alone leaves the exponent range at both ends
    return p * _exp_scale(n1) * _exp_scale(ni - n1)


def _erf(x):
    z = min(max(x, F(-4.0)), F(4.0))
    z2 = z * z
    p = _horner(_ERF_P, z2)
    q = _horner(_ERF_Q, z2)
    y = z * p / q
    return x if math.isnan(x) else y


def _sigmoid(x):
    # exp(-x) overflows to inf for x < -88.8: 1 / inf = 0, the float32 result (as PyTorch)
    return _ONE / (_ONE + _exp(-x))


# tanh(|x|) = e / (e + 2) with e = expm1(2|x|), which cancels nowhere. expm1(z) = 2**n (expm1(r)
# + 1) - 1 with n = floor(z / ln 2), so r in [0, ln 2) and both terms of 2**n expm1(r) + (2**n
# - 1) are >= 0 (no cancellation either); expm1(r) by its Taylor polynomial to r**9 (~1e-8
# relative on [0, ln 2)). One division, no branch (loops over it vectorize). Within 2.3 ulp of
# float32 over 20M samples (the worst near 0, where e + 2 rounds; the tests check against
# float64). An odd polynomial below 0.625 beside a rounded-n expm1 beyond (1.5 ulp) took 26 us
# per 64K floats on a Xeon core against 23 for this form, and 0.51 against 0.43 ms for 2M
# floats on 2 threads.
_EXPM1_C = tuple(F(1.0 / math.factorial(k)) for k in range(9, 1, -1))  # 1/9! .. 1/2!
_TANH_SAT = F(20.0)  # tanh(10) rounds to 1 in float32: 2|x| clamped here keeps 2**n finite


def _tanh(x):
    a = abs(x)
    z = a + a
    z = _TANH_SAT if z > _TANH_SAT else z  # (NaN stays NaN)
    n = np.floor(z * _LOG2E)
    r = z - n * _LN2_HI - n * _LN2_LO
    p = _horner(_EXPM1_C, r) * (r * r) + r  # expm1(r)
    s = _exp_scale(np.int32(n))
    e = s * p + (s - _ONE)  # expm1(2|x|)
    t = e / (e + F(2.0))
    return math.copysign(t, x)  # (one bit operation; tanh(-0.0) is -0.0)


def _log1p01(u):
    """log1p(u) for u in [0, 1]."""
    s = u / (F(2.0) + u)
    s2 = s * s
    p = _horner(_L1P, s2)
    p = p * s2 + _ONE
    return F(2.0) * s * p


# -- the kernels -------------------------------------------------------------------------------
# Flat kernels loop over fixed blocks of BLOCK elements (the outer prange loop; the inner one
# over a block's sub-views vectorizes). The blocks, and so the elements that fall in a
# vector loop's scalar remainder (FMA contraction may round those differently), depend on
# the size only: the parallel build gives the serial build's bits on any number of threads.
# Small blocks balance the threads: a 70k-element exp was 65536 + 4464 elements with 64K
# blocks. A block is a multiple of any vector loop's step, so only the array's last elements
# fall in a remainder, the same ones whatever the block (the bits do not depend on it).
BLOCK = 1 << 13


def exp_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = _exp(xb[i])


def sigmoid_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = _sigmoid(xb[i])


def tanh_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = _tanh(xb[i])


def erf_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = _erf(xb[i])


def erf_grad_f32(g, x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, xb, ob = g[lo:hi], x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            ob[i] = gb[i] * (_TWO_OVER_SQRT_PI * _exp(-(v * v)))


def gelu_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            ob[i] = v * _HALF * (_ONE + _erf(v * _INV_SQRT2))


def gelu_grad_f32(g, x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, xb, ob = g[lo:hi], x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            cdf = _HALF * (_ONE + _erf(v * _INV_SQRT2))
            pdf = _exp(v * v * F(-0.5)) * _INV_SQRT_2PI
            ob[i] = gb[i] * (cdf + v * pdf)


def gelu_tanh_f32(x, out):
    """0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = k (x + c x^3): one exp and one division,
    and no cancellation in 1 + tanh for x << 0 (PyTorch's formula rounds there)."""
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            u = _SQRT_2_OVER_PI * (v + _GELU_C * (v * v * v))
            ob[i] = v / (_ONE + _exp(-(u + u)))


def gelu_tanh_grad_f32(g, x, out):
    """g * (s + 2 x s (1 - s) u'), s = sigmoid(2u): the tanh form's derivative, with
    0.5 (1 + t) = s and 0.5 (1 - t^2) = 2 s (1 - s)."""
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, xb, ob = g[lo:hi], x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            v2 = v * v
            u = _SQRT_2_OVER_PI * (v + _GELU_C * (v2 * v))
            e = _exp(-(u + u))
            s = _ONE / (_ONE + e)
            oms = _ONE - s if s < _HALF else e * s  # e * s: no cancellation as s -> 1
            d_inner = _SQRT_2_OVER_PI * (_ONE + _GELU_C3 * v2)
            ob[i] = gb[i] * (s + F(2.0) * v * s * oms * d_inner)


def silu_f32(x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            ob[i] = v / (_ONE + _exp(-v))  # one division, no multiply: -inf gives nan as PyTorch


def silu_grad_f32(g, x, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, xb, ob = g[lo:hi], x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            s = _sigmoid(v)
            ob[i] = gb[i] * (s * (_ONE + v * (_ONE - s)))


def softplus_f32(x, beta, threshold, out):
    """x where beta * x > threshold, else log1p(exp(beta * x)) / beta (PyTorch's rule)."""
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = xb[i]
            bx = v * beta
            sp = (max(bx, _ZERO) + _log1p01(_exp(-abs(bx)))) / beta
            ob[i] = v if bx > threshold else sp


def softplus_grad_f32(g, x, beta, threshold, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, xb, ob = g[lo:hi], x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            bx = xb[i] * beta
            gi = gb[i]
            ob[i] = gi if bx > threshold else gi * _sigmoid(bx)


def tanh_grad_f32(g, y, out):
    n = y.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, yb, ob = g[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = yb[i]
            ob[i] = gb[i] * (_ONE - v * v)


def sigmoid_grad_f32(g, y, out):
    n = y.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        gb, yb, ob = g[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            v = yb[i]
            ob[i] = gb[i] * (v * (_ONE - v))


# -- two arrays of one shape and layout, element by element: numba's threads stream both
# operands once (NumPy's single-threaded ufunc, or its calls per block on Ember's pool, ran a
# (16, 128, 1024) float32 product 30% slower on 2 Xeon cores). IEEE arithmetic is exact per
# element, so these give the ufunc's bits.
def flat_add(x, y, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, yb, ob = x[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = xb[i] + yb[i]


def flat_sub(x, y, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, yb, ob = x[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = xb[i] - yb[i]


def flat_mul(x, y, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, yb, ob = x[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = xb[i] * yb[i]


def flat_div(x, y, out):
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, yb, ob = x[lo:hi], y[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            ob[i] = xb[i] / yb[i]


# -- a bias row against every row: NumPy's broadcast loops run ~2x slower than these --------
def bias_add(x, b, out):
    r, c = x.shape
    for i in prange(r):
        for j in range(c):
            out[i, j] = x[i, j] + b[j]


def bias_sub(x, b, out):
    r, c = x.shape
    for i in prange(r):
        for j in range(c):
            out[i, j] = x[i, j] - b[j]


def bias_mul(x, b, out):
    r, c = x.shape
    for i in prange(r):
        for j in range(c):
            out[i, j] = x[i, j] * b[j]


def bias_div(x, b, out):
    r, c = x.shape
    for i in prange(r):
        for j in range(c):
            out[i, j] = x[i, j] / b[j]


# -- dropout: a counter-based hash of (seed, element index), so any block is drawn on its own --
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(40)


def _mix64(z):
    """SplitMix64's finalizer: a bijective, well-mixed map of 64-bit integers."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


def dropout_fwd(x, key, start, thresh, scale, out):
    """out[i] = x[i] * scale where the 24-bit draw of element start + i is >= thresh, else
    x[i] * 0 (PyTorch multiplies by the mask: a dropped inf gives nan). Any float dtype."""
    zero = scale - scale
    n = x.size
    for blk in prange((n + BLOCK - 1) // BLOCK):  # fixed blocks: see BLOCK
        lo = blk * BLOCK
        hi = min(lo + BLOCK, n)
        xb, ob = x[lo:hi], out[lo:hi]
        for i in range(hi - lo):
            u = _mix64(key + np.uint64(start + lo + i) * _GOLDEN) >> _S40
            ob[i] = xb[i] * (scale if u >= thresh else zero)


# Fused multiply-adds: faster polynomials and no less accurate. Per element the same
# instructions run whichever block or thread it falls in (blocks are fixed by the size).
for _k in __all__:
    globals()[_k].jit_options = {"fastmath": {"contract"}}


def _compile_helpers():
    """With numba importable, the helpers above become inlined numba functions (the kernels
    call them; numba resolves them at compile time). Without numba the module still imports:
    its kernels are then never compiled and Ember runs the NumPy code."""
    try:
        import numba
        from numba.core import types
        from numba.core.extending import intrinsic
    except ImportError:
        return

    @intrinsic
    def _bits_to_f32(typingctx, n):
        sig = types.float32(types.int32)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float32))

        return sig, codegen

    def exp_scale(n):
        return _bits_to_f32((n + 127) << 23)

    g = globals()
    inline = numba.njit(inline="always", fastmath={"contract"})
    g["_exp_scale"] = inline(exp_scale)
    helpers = ("_horner", "_ln2_reduce", "_exp", "_erf", "_sigmoid", "_tanh", "_log1p01")
    for name in (*helpers, "_mix64"):
        g[name] = inline(g[name])


_compile_helpers()
