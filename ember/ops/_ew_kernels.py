"""CPU kernels of the elementwise ops: the transcendental functions and activations with their
fused gradients (``ew_unary`` / ``ew_unary_grad``), bias + activation (``bias_act``), and the
small NumPy helpers of ops that are more than one ufunc call (sign with PyTorch's NaN rule,
relu loops). Dropout's mask kernel is in ``_ew_dropout.py``, blocked binary arithmetic in
``_ew_binary.py``, the NumPy block functions (float64, no numba) in ``_ew_numpy.py``.

Large float32 arrays run the compiled kernel's parallel build in one call (its fixed blocks of
``EW_BLOCK`` elements split over numba's threads: ``ops/_parallel.parallel_kernel``); other
large arrays are split into the same fixed blocks that Ember's threads pull
(``ops/_parallel.parallel_for``). The block boundaries depend only on the size, so results do
not depend on the thread count. Each block runs one compiled float32 kernel from
``backends/kernels_ew.py`` (one pass over memory, vectorized) when numba is available, else a
chain of NumPy ufuncs writing into block-sized buffers that stay in cache. float64 always runs
the NumPy chain (NumPy's and SciPy's double-precision functions). The records that use them
live in ``elementwise.py`` and ``activation.py``; the kernels only see arrays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import cpu, jit, xp_of
from ._core import _QUIET, _extobj_contextvar  # (None on NumPy 1.x: the public decorator)
from ._ew_numpy import (  # the NumPy block functions (see there)
    _F32,
    _np_erf,
    _np_erf_grad,
    _np_exp,
    _np_exp_grad,
    _np_gelu,
    _np_gelu_grad,
    _np_gelu_tanh,
    _np_gelu_tanh_grad,
    _np_log,
    _np_log_grad,
    _np_sigmoid,
    _np_sigmoid_grad,
    _np_silu,
    _np_silu_grad,
    _np_softplus,
    _np_softplus_grad,
    _np_tanh,
    _np_tanh_grad,
    erf_numpy,
)
from ._parallel import get_num_threads, parallel_for, parallel_kernel
from .complex_refuse import RealZeros

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EW_BLOCK",
    "bias_act",
    "bias_act_grad",
    "ew_unary",
    "ew_unary_grad",
    "grad_input_of",
    "unary_names",
]


def sign_impl(x):
    if x.dtype == np.bool_:  # PyTorch: sign of a bool tensor is the bool tensor itself
        return x.copy()
    r = np.sign(x)
    if x.dtype.kind in "fV":  # sign(nan) is 0 in PyTorch (NumPy: nan)
        r = np.where(np.isnan(r), r.dtype.type(0), r)
    elif x.dtype.kind == "c":
        from .complex_refuse import complex_error

        raise complex_error("sign", x.dtype)
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


def run_flat(kernel, ins, out, blocks=None):
    """``kernel(*flat_ins, flat_out)`` over dense same-layout arrays, in blocks on Ember's
    threads for large arrays (the kernels release the GIL); ``blocks``: the name of the
    kernel's ``prange`` form over fixed blocks, run on numba's threads when large enough."""
    flats = [cpu.dense_flat(a) for a in ins]
    of = cpu.dense_flat(out)
    n = of.size
    if blocks is not None:  # the prange build over fixed blocks, on numba's threads
        # (the cost of an add: memory-bound loops run faster on two cores from ~64K elements)
        kb = parallel_kernel(blocks, _COST["cheap"] * n)
        if kb is not None:
            kb(*flats, of)
            return out

    def block(a, b, slot):
        kernel(*[f[a:b] for f in flats], of[a:b])

    parallel_for(n, _FLAT_BLOCK, block, 2 * n)
    return out


_RELU_ZERO = RealZeros("relu")


def relu_impl(x):
    k = jit_unary("relu", x)
    if k is not None:
        out = np.empty_like(x)
        return run_flat(k, (x,), out, "relu_blocks")
    return np.maximum(x, _RELU_ZERO[x.dtype])  # (complex dtypes raise there, as PyTorch)


def relu_grad_impl(g, out):
    if (
        type(g) is np.ndarray
        and type(out) is np.ndarray
        and g.strides != out.strides
        and g.shape == out.shape
        and g.dtype == out.dtype
        and g.size >= _FLAT_MIN
        and cpu.dense_flat(out) is not None
    ):  # one layout for the flat kernel: the gradient copied into the activation's
        from ._layout import like_layout

        g = like_layout(g, out)
    if (
        g.size <= _NP_GRAD_MAX
        and type(g) is np.ndarray
        and type(out) is np.ndarray
        and g.shape == out.shape
        and g.dtype == out.dtype
        and g.dtype in cpu.FAST_FLOATS
    ):  # the kernel's select, without a numba call's dispatch
        zero = g.dtype.type(0)
        return np.where(out <= zero, zero, g)
    k = jit_unary("relu_grad", g, out)
    if k is not None:
        return run_flat(k, (g, out), np.empty_like(g), "relu_grad_blocks")
    # NumPy multiplies by the boolean mask without a float copy of it; the mask is
    # "not out <= 0" so that a NaN output passes the gradient, as PyTorch
    return np.multiply(g, np.logical_not(out <= out.dtype.type(0)), dtype=g.dtype)


def erf_impl(x):
    try:  # SciPy is optional
        from scipy.special import erf as _sp_erf
    except ImportError:
        return erf_numpy(x)
    if x.dtype.kind == "V":
        return _sp_erf(x.astype(np.float32)).astype(x.dtype)
    return _sp_erf(x).astype(x.dtype, copy=False)


def quiet(kernel, nargs: int | None = None):
    """``kernel`` with NumPy's floating-point warnings off (log(0), x/0, inf*0, overflow give
    inf/nan silently, as in PyTorch), scoped to the call: other warnings still reach the
    user and NumPy's error state outside the kernel is untouched.

    ``nargs`` (a ufunc's ``nin`` by default) picks a fixed-arity wrapper: packing ``*args``
    would cost as much as the error-state switch itself on small tensors."""
    if _extobj_contextvar is None:
        wrapped = np.errstate(all="ignore")(kernel)
        wrapped.fp_quiet = True
        return wrapped
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
    # (read by Primitive: bind need not silence it again)
    run.fp_quiet = True  # type: ignore[union-attr]
    return run


# =============================================================================================
# Transcendental functions and activations: forward and fused backward, in blocks
# =============================================================================================
# elements per block: a float32 block and its NumPy scratch stay in L2. A multiple of the
# compiled flat kernels' own fixed blocks (ember.backends.kernels_ew.BLOCK, not imported here:
# it imports numba), so a block here is whole blocks there: the same bits either way.
EW_BLOCK = 1 << 16
# Thread hand-off costs 20-100 us here; a block of the cheapest kernel runs ~20 us, so threads
# start from about 8 blocks (the work unit of parallel_for's threshold is one element * cost).
_COST = {"cheap": 16, "mid": 32, "heavy": 64}


class _Spec:
    """One unary op: its NumPy block functions, compiled float32 kernels, the input its
    gradient reads (``"x"`` or ``"y"``) and its cost class (sets when threads start)."""

    __slots__ = ("cost", "grad_from", "jit_fwd", "jit_grad", "np_fwd", "np_grad", "np_serial")

    def __init__(self, np_fwd, np_grad, jit_fwd, jit_grad, grad_from, cost, np_serial=False):
        self.np_fwd, self.np_grad = np_fwd, np_grad
        self.jit_fwd, self.jit_grad = jit_fwd, jit_grad
        self.grad_from, self.cost = grad_from, _COST[cost]
        # NumPy's loop where the compiled forward's parallel build does not run (see tanh)
        self.np_serial = np_serial


_UNARY = {
    "exp": _Spec(_np_exp, _np_exp_grad, "exp_f32", None, "y", "cheap"),
    "log": _Spec(_np_log, _np_log_grad, None, None, "x", "cheap"),
    # np_serial: NumPy's own SIMD float32 tanh (~1.4 ulp) runs 2x faster per core than the
    # compiled one, so tanh takes the compiled kernel only where its parallel build runs
    # (from the size alone): there NumPy's blocks would run on Ember's pool, and between
    # numba kernels (a backward pass) the two thread teams contend for the cores. 2 Xeon
    # threads, 2M floats, forward then the compiled gradient in a loop: NumPy's blocks
    # 0.93-1.11 ms (the gradient after them 0.60-1.17), the compiled forward 0.75 (0.57-0.60).
    "tanh": _Spec(_np_tanh, _np_tanh_grad, "tanh_f32", "tanh_grad_f32", "y", "mid", True),
    "sigmoid": _Spec(_np_sigmoid, _np_sigmoid_grad, "sigmoid_f32", "sigmoid_grad_f32", "y", "mid"),
    "erf": _Spec(_np_erf, _np_erf_grad, "erf_f32", "erf_grad_f32", "x", "mid"),
    "gelu": _Spec(_np_gelu, _np_gelu_grad, "gelu_f32", "gelu_grad_f32", "x", "heavy"),
    "gelu_tanh": _Spec(
        _np_gelu_tanh, _np_gelu_tanh_grad, "gelu_tanh_f32", "gelu_tanh_grad_f32", "x", "heavy"
    ),
    "silu": _Spec(_np_silu, _np_silu_grad, "silu_f32", "silu_grad_f32", "x", "mid"),
    "softplus": _Spec(
        _np_softplus, _np_softplus_grad, "softplus_f32", "softplus_grad_f32", "x", "heavy"
    ),
}
_PARAMS = {"softplus": ("beta", "threshold")}
_FWD_KERNEL = {k: s.jit_fwd for k, s in _UNARY.items()}
_GRAD_KERNEL = {k: s.jit_grad for k, s in _UNARY.items()}
# Gradients whose NumPy chain does the compiled kernel's operations in its order (no FMA in
# either): small arrays take the ufuncs, ~1.5 us against ~2.6 us with a numba call's dispatch.
_NP_GRAD_MAX = 1024
_NP_GRAD_SAME = {"tanh": quiet(_np_tanh_grad, 3), "sigmoid": quiet(_np_sigmoid_grad, 3)}


def unary_names() -> tuple[str, ...]:
    """The op names :func:`ew_unary` and :func:`ew_unary_grad` accept.

    Example:
        >>> from ember.ops._ew_kernels import unary_names
        >>> "gelu_tanh" in unary_names()
        True
    """
    return tuple(_UNARY)


def _spec(name):
    try:
        return _UNARY[name]
    except KeyError:
        raise ValueError(
            f"ew_unary: unknown op {name!r}; expected one of {', '.join(_UNARY)}"
        ) from None


def _param_values(name, params):
    allowed = _PARAMS.get(name, ())
    for k in params:
        if k not in allowed:
            raise TypeError(f"ew_unary: {name} takes no parameter {k!r}")
    if name == "softplus":
        return (float(params.get("beta", 1.0)), float(params.get("threshold", 20.0)))
    return ()


def _flat_kernel(name, work, serial=True):
    """The compiled flat kernel ``name``: its parallel build when ``work`` is worth
    splitting over threads (see :func:`ember.ops._parallel.parallel_kernel`), else the
    serial one when ``serial`` (None without numba)."""
    return parallel_kernel(name, work) or (jit.get(name) if serial else None)


# The forwards that are one NumPy ufunc call (exp, log, tanh) compute each element on its
# own, so their blocks can be any size: there each pool thread gets one long call (a float32
# tanh of (16, 128, 1024) on 2 Xeon threads: 0.69 ms as 32 calls of 64K elements, the threads
# taking turns on the GIL between calls, 0.68 as 8 calls, 0.57-0.63 as 2).
_ONE_UFUNC = {"exp", "log", "tanh"}


def _run_blocks(n, cost, block_fn, any_size=False):
    """``block_fn(a, b)`` over fixed blocks of ``range(n)``, on Ember's threads when big;
    ``any_size``: the blocks may be larger than ``EW_BLOCK`` (an elementwise ufunc: one block
    per thread)."""
    if n <= EW_BLOCK:
        block_fn(0, n)
        return
    block = EW_BLOCK
    if any_size:
        block = max(EW_BLOCK, -(-n // get_num_threads()))
    parallel_for(n, block, lambda a, b, slot: block_fn(a, b), n * cost)


def _parallel_flat(name, dtype, work):
    """The parallel build of flat kernel ``name`` for a float32 array of ``work`` (elements
    times cost) when it applies, else None."""
    if not name or dtype != _F32:
        return None
    from ._parallel import parallel_kernel

    return parallel_kernel(name, work)


def _flat_out(shape_like, out, name):
    """``out``, checked, or a fresh array in ``shape_like``'s layout when it is dense (a
    channels-last activation keeps its layout), else C-contiguous."""
    if out is None:
        if cpu.dense_flat(shape_like) is not None:
            return np.empty_like(shape_like)
        out = np.empty(shape_like.shape, shape_like.dtype)
    elif not isinstance(out, np.ndarray) or out.shape != shape_like.shape:
        raise ValueError(
            f"{name}: out must be a NumPy array of shape {shape_like.shape}, "
            f"got {getattr(out, 'shape', type(out).__name__)}"
        )
    elif out.dtype != shape_like.dtype:
        raise ValueError(f"{name}: out has dtype {out.dtype}, expected {shape_like.dtype}")
    return out


def _dense(a):
    """``a`` as a dense array and its flat view (a contiguous copy when ``a`` is strided)."""
    f = cpu.dense_flat(a)
    if f is None:
        a = np.ascontiguousarray(a)
        f = a.reshape(-1)
    return a, f


def _same_layout_flats(arrays, out):
    """Flat views of ``arrays`` and ``out`` with positions that correspond: an array laid out
    otherwise is copied into ``out``'s layout (the tiled copies of
    :func:`ember.ops._layout.like_layout` for a transposed matrix or channels-last images;
    NumPy's strided copy of a transposed (1024, 1024) float32 matrix, and the copy back into a
    transposed ``out``, made tanh's gradient ~9 ms), or all C-contiguous where ``out`` is not
    dense."""
    dense = [_dense(a) for a in arrays]
    fo = cpu.dense_flat(out)
    if fo is not None:  # (the others copied into out's layout: tiled copies where they apply)
        from ._layout import like_layout

        flats = [
            f if a.strides == out.strides else cpu.dense_flat(like_layout(a, out)) for a, f in dense
        ]
        if all(f is not None for f in flats):
            return flats, fo, None
    flats = [np.ascontiguousarray(a).reshape(-1) for a, _ in dense]
    if out.flags.c_contiguous:
        return flats, out.reshape(-1), None
    tmp = np.empty(out.shape, out.dtype)
    return flats, tmp.reshape(-1), tmp


def _low_precision(name, arrays, out, fn):
    """Ops on float16/bfloat16/integer arrays: computed in float32, cast back."""
    r = fn(*[a.astype(np.float32) for a in arrays])
    dtype = arrays[-1].dtype if arrays[-1].dtype.kind in "fV" else np.dtype(np.float32)
    if out is None:
        return r.astype(dtype)
    out[...] = r
    return out


def _fwd_blocks(name, spec, pv, dtype, xf, of):
    """``block(a, b)``: the forward of ``name`` on ``xf[a:b]`` into ``of[a:b]``."""
    k = None
    if spec.jit_fwd and dtype == _F32 and not spec.np_serial:
        k = jit.get(spec.jit_fwd)
    if k is not None:
        if pv:
            pf = tuple(np.float32(v) for v in pv)
            return lambda a, b: k(xf[a:b], *pf, of[a:b])
        return lambda a, b: k(xf[a:b], of[a:b])
    fwd, kw = spec.np_fwd, dict(zip(_PARAMS.get(name, ()), pv))

    def block(a, b):
        xs, os_ = xf[a:b], of[a:b]
        if np.may_share_memory(xs, os_):  # the NumPy chains use out as scratch
            xs = xs.copy()
        with np.errstate(all="ignore"):  # inf/nan silently, as PyTorch
            fwd(xs, os_, **kw)

    return block


def ew_unary(name: str, x: np.ndarray, out: np.ndarray | None = None, **params: float) -> Any:
    """``name(x)`` elementwise into ``out`` (a new array when None; ``out`` may be ``x``).

    ``name`` is one of :func:`unary_names` (``softplus`` takes ``beta`` and ``threshold``).
    float32 runs a compiled one-pass kernel when numba is available; float64 (and float32
    without numba) runs NumPy chains in cache-sized blocks. Blocks run on Ember's threads for
    large arrays, with results independent of the thread count.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_kernels import ew_unary
        >>> [round(v, 4) for v in ew_unary("silu", np.array([0.0, 1.0], np.float32)).tolist()]
        [0.0, 0.7311]
    """
    if (  # small dense float32 without parameters: straight to the kernel (~1 us)
        out is None
        and not params
        and type(x) is np.ndarray
        and x.dtype == _F32
        and x.size <= EW_BLOCK
        and x.flags.c_contiguous
    ):
        kn = _FWD_KERNEL.get(name) if name not in _PARAMS else None  # (defaults: below)
        k = None
        if kn:  # (a known op: an unknown name gets its error below)
            sp = _UNARY[name]
            k = _flat_kernel(kn, x.size * sp.cost, not sp.np_serial)
        if k is not None:
            o = np.empty_like(x)
            k(x.ravel(), o.ravel())
            return o
    spec = _spec(name)
    pv = _param_values(name, params)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"ew_unary: x must be a NumPy array, got {type(x).__name__}")
    if x.dtype not in cpu.FAST_FLOATS:
        if x.dtype.kind == "c":
            if name == "silu":  # x * sigmoid(x), which PyTorch computes for complex x
                with np.errstate(all="ignore"):
                    return x / (1 + np.exp(-x))
            # (the others order numbers or split by sign; PyTorch refuses complex inputs)
            from .complex_refuse import complex_error

            raise complex_error(name, x.dtype)
        return _low_precision(name, (x,), out, lambda a: ew_unary(name, a, None, **params))
    out = _flat_out(x, out, "ew_unary")
    (xf,), of, tmp = _same_layout_flats((x,), out)
    kp = _parallel_flat(spec.jit_fwd, x.dtype, xf.size * spec.cost)
    if kp is not None:  # the whole array in one call, split over numba's threads
        kp(xf, *(np.float32(v) for v in pv), of)
    else:
        block = _fwd_blocks(name, spec, pv, x.dtype, xf, of)
        _run_blocks(xf.size, spec.cost, block, name in _ONE_UFUNC)
    if tmp is not None:
        out[...] = tmp
    return out


def ew_unary_grad(
    name: str, g: np.ndarray, v: np.ndarray, out: np.ndarray | None = None, **params: float
) -> Any:
    """The gradient of ``name`` at ``v`` times ``g``, elementwise, into ``out``.

    ``v`` is the op's output for ``exp``, ``tanh`` and ``sigmoid`` and its input for the
    others (``grad_input_of(name)`` says which). ``g`` broadcasts against ``v``.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_kernels import ew_unary_grad
        >>> x = np.array([0.0, 2.0])
        >>> ew_unary_grad("gelu", np.ones(2), x).round(4).tolist()
        [0.5, 1.0852]
    """
    if (
        out is None
        and not params
        and type(v) is np.ndarray
        and type(g) is np.ndarray
        and v.dtype == _F32
        and g.dtype == _F32
        and v.size <= EW_BLOCK
        and v.flags.c_contiguous
        and g.flags.c_contiguous
        and g.shape == v.shape
    ):
        if v.size <= _NP_GRAD_MAX and name in _NP_GRAD_SAME:
            o = np.empty_like(v)
            _NP_GRAD_SAME[name](g, v, o)
            return o
        kn = _GRAD_KERNEL.get(name) if name not in _PARAMS else None  # (defaults: below)
        k = _flat_kernel(kn, v.size * _UNARY[name].cost) if kn else None
        if k is not None:
            o = np.empty_like(v)
            k(g.ravel(), v.ravel(), o.ravel())
            return o
    spec = _spec(name)
    pv = _param_values(name, params)
    if not isinstance(g, np.ndarray) or not isinstance(v, np.ndarray):
        raise TypeError("ew_unary_grad: g and the input must be NumPy arrays")
    if g.shape != v.shape:
        try:
            g = np.broadcast_to(g, v.shape)
        except ValueError:
            raise ValueError(
                f"ew_unary_grad: gradient of shape {g.shape} does not broadcast to {v.shape}"
            ) from None
    if v.dtype not in cpu.FAST_FLOATS or g.dtype != v.dtype:
        return _low_precision(
            name, (g, v), out, lambda a, b: ew_unary_grad(name, a, b, None, **params)
        )
    out = _flat_out(v, out, "ew_unary_grad")
    (gf, vf), of, tmp = _same_layout_flats((g, v), out)
    kp = _parallel_flat(spec.jit_grad, v.dtype, vf.size * spec.cost)
    k = jit.get(spec.jit_grad) if spec.jit_grad and v.dtype == _F32 else None
    if kp is not None:  # the whole array in one call, split over numba's threads
        kp(gf, vf, *(np.float32(p) for p in pv), of)
        if tmp is not None:
            out[...] = tmp
        return out
    if k is not None:
        if pv:
            pv = tuple(np.float32(p) for p in pv)

            def block(a, b):
                k(gf[a:b], vf[a:b], *pv, of[a:b])
        else:

            def block(a, b):
                k(gf[a:b], vf[a:b], of[a:b])
    else:
        grad, kw = spec.np_grad, dict(zip(_PARAMS.get(name, ()), pv))

        def block(a, b):
            gs, vs, os_ = gf[a:b], vf[a:b], of[a:b]
            if np.may_share_memory(gs, os_):
                gs = gs.copy()
            if np.may_share_memory(vs, os_):
                vs = vs.copy()
            with np.errstate(all="ignore"):
                grad(gs, vs, os_, **kw)

    _run_blocks(vf.size, spec.cost, block)
    if tmp is not None:
        out[...] = tmp
    return out


def grad_input_of(name: str) -> str:
    """``"y"`` when the gradient of ``name`` reads the op's output, ``"x"`` for its input."""
    return _spec(name).grad_from


def bias_act(name: str | None, x: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> Any:
    """``name(x + b)`` with ``b`` broadcast along the last axis of ``x`` (a bias), in one
    pass per cache-sized block of rows; ``name=None`` adds the bias only.

    The fused building block of a linear layer's epilogue: the bias add writes a block, the
    activation rewrites it while it is in cache. The gradient is ``ew_unary_grad`` at the
    pre-activation (or output), summed over rows for the bias.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_kernels import bias_act
        >>> bias_act("gelu", np.zeros((2, 2)), np.array([0.0, 1.0])).round(4).tolist()
        [[0.0, 0.8413], [0.0, 0.8413]]
    """
    if not isinstance(x, np.ndarray) or not isinstance(b, np.ndarray):
        raise TypeError("bias_act: x and b must be NumPy arrays")
    if x.ndim < 1 or b.shape != (x.shape[-1],):
        raise ValueError(f"bias_act: bias of shape {b.shape} does not match x of shape {x.shape}")
    if x.dtype not in cpu.FAST_FLOATS or b.dtype != x.dtype:
        raise ValueError(
            f"bias_act: x and b must both be float32 or float64, got {x.dtype}, {b.dtype}"
        )
    spec = _spec(name) if name is not None else None
    x = np.ascontiguousarray(x)
    out = _flat_out(x, out, "bias_act")
    if not out.flags.c_contiguous:
        out[...] = bias_act(name, x, b)
        return out
    c = max(1, x.shape[-1])
    x2, o2 = x.reshape(-1, c), out.reshape(-1, c)
    rows = max(1, EW_BLOCK // c)
    of = out.reshape(-1)
    act = _fwd_blocks(name, spec, (), x.dtype, of, of) if spec is not None else None
    add = jit.get("bias_add") or np.add  # the compiled row loop: ~2x NumPy's broadcast add

    def block(a, bb):
        add(x2[a:bb], b, o2[a:bb])
        if act is not None:  # in place, while the block is in cache
            for s in range(a * c, bb * c, EW_BLOCK):
                act(s, min(s + EW_BLOCK, bb * c))

    n = x2.shape[0]
    cost = spec.cost if spec is not None else _COST["cheap"]
    if n <= rows:
        block(0, n)
    else:
        from ._parallel import parallel_for

        parallel_for(n, rows, lambda a, bb, slot: block(a, bb), n * c * cost)
    return out


def bias_act_grad(
    name: str | None, g: np.ndarray, v: np.ndarray, out: np.ndarray | None = None
) -> tuple[Any, Any]:
    """The gradients of ``bias_act(name, x, b)``: ``(dx, db)``, with ``v`` the
    pre-activation ``x + b`` or the output, as :func:`grad_input_of` says for ``name``
    (``name=None``: ``dx = g``). ``db`` sums ``dx`` over all but the last axis.

    Example:
        >>> import numpy as np
        >>> from ember.ops._ew_kernels import bias_act_grad
        >>> dx, db = bias_act_grad("silu", np.ones((3, 2)), np.zeros((3, 2)))
        >>> dx.tolist()[0], db.tolist()
        ([0.5, 0.5], [1.5, 1.5])
    """
    dx = g if name is None else ew_unary_grad(name, g, v, out=out)
    return dx, dx.reshape(-1, dx.shape[-1]).sum(axis=0)
