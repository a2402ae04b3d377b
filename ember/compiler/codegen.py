"""Code generation for fused elementwise groups: one numba kernel per group, cached on disk.

:mod:`ember.compiler.passes.fuse` turns a chain of elementwise equations (``x * 0.5 *
(1 + tanh(...))``) into one ``fused`` equation; this module writes the group's kernel as
Python source (a loop over the output with one scalar expression per member, each rounded to
its member's dtype as eager code rounds each op's result), compiles it with numba
(``nogil``; ``error_model="numpy"``: division by zero gives inf/nan as in NumPy) and runs it
on the group's operands broadcast to the output shape, in blocks on Ember's threads as the
eager kernels run. One pass over memory replaces one pass per member.

The source goes to ``$EMBER_CACHE_DIR/kernels/fused_<hash>.py`` (default
``~/.cache/ember``) and numba caches the compiled machine code beside it, so a second process
loads the kernel in milliseconds instead of compiling it; the hash covers the source, so
different groups never collide and identical groups (every transformer layer's) share one
kernel. Without numba, with ``EMBER_JIT=0`` or ``EMBER_COMPILE_FUSE=0``, groups are not fused.

Example:
    >>> import numpy as np
    >>> from ember.compiler.codegen import FusedKernel, available
    >>> body = [("t0", "(a0 * s0)", "float32")]
    >>> k = FusedKernel(["a0", "s0"], body, "t0")
    >>> k.source_key() == FusedKernel(["a0", "s0"], list(body), "t0").source_key()
    True
    >>> out = k(np.ones((2, 3), np.float32), 2.0, shape=(2, 3), dtype=np.float32)
    >>> out.tolist() if available() else [[2.0] * 3] * 2
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._env import env_flag
from ..ops._parallel import parallel_for

__all__ = ["FusedKernel", "available", "cache_dir", "set_background", "wait_compiled"]

# Per-element functions the member expressions call (numba inlines them). The float32 ones
# are built on the kernel layer's vectorizable exp / erf / sigmoid (so fused results equal the
# eager kernels' and LLVM vectorizes the loop: libm calls would stay scalar); float64 groups
# hold no transcendental members (see passes/fuse.py).
_HELPERS = """
from ember.backends import kernels_ew as _k

_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_K = np.float32(0.7978845608028654)
_C = np.float32(0.044715)
_C3 = np.float32(3 * 0.044715)
_INV_SQRT2 = np.float32(0.7071067811865476)
_INV_SQRT_2PI = np.float32(0.3989422804014327)
_T = (
    np.float32(-5.70498872745e-3),
    np.float32(2.06390887954e-2),
    np.float32(-5.37397155531e-2),
    np.float32(1.33314422036e-1),
    np.float32(-3.33332819422e-1),
)
# Helpers keep fused multiply-adds (as the eager kernels' polynomials do); the kernel's own
# arithmetic does not, so that a * s + b rounds after the product as eager code does. The
# flags stay with each helper's instructions when LLVM inlines it into the kernel.
_inline = numba.njit(fastmath={"contract"}, error_model="numpy")
_exp = _inline(_k._exp.py_func)
_erf = _inline(_k._erf.py_func)
_sigmoid = _inline(_k._sigmoid.py_func)


@_inline
def _maximum(a, b):
    return a if (a >= b or a != a) else b


@_inline
def _minimum(a, b):
    return a if (a <= b or a != a) else b


@_inline
def _tanh(x):
    # odd polynomial near 0 (no cancellation), 1 - 2 / (e^2|x| + 1) beyond
    a = abs(x)
    z = x * x
    p = (((_T[0] * z + _T[1]) * z + _T[2]) * z + _T[3]) * z + _T[4]
    small = x + x * z * p
    big = _ONE - np.float32(2.0) / (_exp(a + a) + _ONE)
    return small if a < np.float32(0.625) else (big if x > 0 else -big)


@_inline
def _gelu(v):
    return v * _HALF * (_ONE + _erf(v * _INV_SQRT2))


@_inline
def _gelu_grad(g, v):
    cdf = _HALF * (_ONE + _erf(v * _INV_SQRT2))
    return g * (cdf + v * (_exp(v * v * np.float32(-0.5)) * _INV_SQRT_2PI))


@_inline
def _gelu_tanh(v):
    u = _K * (v + _C * (v * v * v))
    return v / (_ONE + _exp(-(u + u)))


@_inline
def _gelu_tanh_grad(g, v):
    v2 = v * v
    u = _K * (v + _C * (v2 * v))
    e = _exp(-(u + u))
    s = _ONE / (_ONE + e)
    oms = _ONE - s if s < _HALF else e * s
    return g * (s + np.float32(2.0) * v * s * oms * (_K * (_ONE + _C3 * v2)))


@_inline
def _tanh_grad(g, y):
    return g * (_ONE - y * y)


@_inline
def _silu_grad(g, v):
    s = _sigmoid(v)
    return g * (s * (_ONE + v * (_ONE - s)))
"""

_background = env_flag("EMBER_COMPILE_FUSE_BACKGROUND", True)
_BLOCK = 1 << 19  # elements per block handed to a thread (as the eager kernels' blocks)
_lock = threading.Lock()
_modules: dict[str, Any] = {}


def available() -> bool:
    """Whether fused kernels can be built here (numba installed, kernels and fusion on)."""
    from ..backends import jit

    return jit.available() and env_flag("EMBER_COMPILE_FUSE", True)


def cache_dir() -> str:
    """Where generated kernel sources (and numba's cache of them) live."""
    base = os.environ.get("EMBER_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "ember"
    )
    return os.path.join(base, "kernels")


class FusedKernel:
    """A fused elementwise kernel: ``params`` are the operand names (arrays ``aK`` broadcast
    to the output shape, scalars ``sK``), ``body`` is ``(name, expression, dtype)`` per
    member in order, ``result`` the name of the value written out."""

    def __init__(
        self,
        params: list[str],
        body: list[tuple[str, str, str]],
        result: str,
        reduce: float | None = None,
    ):
        self.params = params
        self.body = body
        self.result = result
        # a reduction kernel: ``reduce`` times the sum of the result over the last axis
        # (1.0: sum, 1/n: mean), written per row
        self.reduce = reduce
        self._fns: dict[tuple, Any] = {}
        self._pending: set[tuple] = set()

    def source_key(self) -> str:
        return hashlib.sha256(self._source(2, (1,) * self._n_arrays()).encode()).hexdigest()[:24]

    def out_shape(self, shape: tuple[int, ...], keepdim: bool = False) -> tuple[int, ...]:
        """The result's shape for operands broadcast to ``shape``."""
        if self.reduce is None:
            return shape
        return tuple(shape[:-1]) + ((1,) if keepdim else ())

    def _n_arrays(self) -> int:
        return sum(p[0] == "a" for p in self.params)

    def _source(self, rank: int, inner: tuple[int, ...]) -> str:
        """The kernel for ``rank`` merged dims, array operands flat and C-contiguous with
        element strides for the outer dims and inner stride ``inner[k]`` (0 or 1, known here
        so that LLVM vectorizes the inner loop)."""
        if self.reduce is not None:
            return self._reduction_source(rank, inner)
        L, arrays, env = self._prologue("elementwise", rank)
        # (inner loops index 1-d slices with the loop counter, and broadcast operands are
        # read once outside it: numba's a[base + j] form does not vectorize)
        if rank == 1:  # a flat run of elements [lo, hi)
            for k, a in enumerate(arrays):
                if not inner[k]:
                    L.append(f"    v{a} = {a}[0]")
            for k, a in enumerate(arrays):
                if inner[k]:
                    L.append(f"    r{a} = {a}[lo:hi]")
            L.append("    ro = out[lo:hi]")
            L.append("    for j in range(hi - lo):")
            pad = "        "
        else:
            _row_reads(L, arrays, inner, rank - 1)
            L.append("        ro = out[f * n : f * n + n]")
            L.append("        for j in range(n):")
            pad = "            "
        for k, a in enumerate(arrays):
            if inner[k]:
                L.append(f"{pad}v{a} = r{a}[j]")
        self._members(L, pad, env)
        L.append(f"{pad}ro[j] = {self.result}")
        return "\n".join(L) + "\n"

    def _reduction_source(self, rank: int, inner: tuple[int, ...]) -> str:
        """The reduction kernel: per row of the outer dims (``rank - 1`` of them after
        merging; the last dim is the reduced one), the members' result for the row goes to a
        row buffer, which the eager row-sum kernel's own ``rowsum`` adds (so a fused sum adds
        in the order an eager ``sum`` over the last axis does)."""
        L, arrays, env = self._prologue("reduction", rank)
        L.append(f"    buf = np.empty(n, np.{self.body[-1][2]})")
        _row_reads(L, arrays, inner, rank - 1)
        L.append("        for j in range(n):")
        pad = "            "
        for k, a in enumerate(arrays):
            if inner[k]:
                L.append(f"{pad}v{a} = r{a}[j]")
        self._members(L, pad, env)
        L.append(f"{pad}buf[j] = {self.result}")
        scale = float(self.reduce) if self.reduce is not None else 1.0
        L.append(f"        out[f] = _rowsum(buf) * np.float64({scale!r})")
        return "\n".join(L) + "\n"

    def _prologue(self, kind: str, rank: int) -> tuple[list[str], list[str], dict[str, str]]:
        """The module header and the kernel's signature line (and ``n``, the inner length);
        the array operand names; their per-element value names."""
        arrays = [p for p in self.params if p[0] == "a"]
        scalars = [p for p in self.params if p[0] == "s"]
        sig = ", ".join(["out", "dims", "lo", "hi", *[f"{a}, st_{a}" for a in arrays], *scalars])
        L = [
            f"# generated by ember.compiler.codegen: a fused {kind} kernel",
            f"# kernel layer {_kernel_layer_stamp()}",
            "import math",
            "import numba",
            "import numpy as np",
            _HELPERS,
        ]
        if kind == "reduction":
            L += ["from ember.backends.kernels_norm import rowsum as _rowsum", ""]
        L += [
            '@numba.njit(nogil=True, cache=True, error_model="numpy")',
            f"def kernel({sig}):",
            f"    n = dims[{rank - 1}]",
        ]
        return L, arrays, {a: f"v{a}" for a in arrays}

    def _members(self, L: list[str], pad: str, env: dict[str, str]) -> None:
        for name, expr, dt in self.body:
            L.append(f"{pad}{name} = np.{dt}({_subst(expr, env)})")

    def __call__(
        self,
        *operands: Any,
        shape: tuple[int, ...],
        dtype: Any,
        fallback: Callable[[], np.ndarray] | None = None,
        keepdim: bool = False,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The group's result; with ``fallback`` (the unfused computation), a kernel not
        compiled yet compiles on a background thread while ``fallback`` gives this result.
        A reduction kernel's result drops the last axis (keeps it as 1 with ``keepdim``).
        ``out`` (a C-contiguous buffer of the result's shape and dtype, from the memory
        plan) receives the result unless eager code would lay it out otherwise; the result
        is returned either way."""
        if self.reduce is not None:
            return self._reduce(operands, shape, dtype, fallback, keepdim, out)
        out, perm = _output_like(operands, self.params, shape, dtype, out)
        if out.size == 0:
            return out
        args, dims, inner = _operands(out.shape, out.dtype, perm, operands, self.params)
        key = (len(dims), inner)
        fn = self._fns.get(key)
        if fn is None:
            src = self._source(len(dims), inner)
            if fallback is not None and _background:
                self._compile_later(key, src, args, dims)
                return fallback()
            fn = self._fns[key] = _module(src).kernel
        flat = _flat(out)
        # blocks on Ember's threads (the kernel releases the GIL), as the eager kernels run
        n_inner = dims[-1] if len(dims) > 1 else 1
        rows = out.size // n_inner
        block = max(1, _BLOCK // n_inner)

        def run(lo: int, hi: int, slot: int) -> None:
            fn(flat, dims, lo, hi, *args)

        parallel_for(rows, block, run, out.size * len(self.body))
        return out

    def _reduce(self, operands, shape, dtype, fallback, keepdim, buf=None) -> np.ndarray:
        n = shape[-1] if shape else 1
        rows = int(np.prod(shape[:-1])) if shape else 1
        want = self.out_shape(tuple(shape), keepdim)
        if _fits(buf, want, dtype):
            out = buf.reshape(rows)
        else:
            out = np.empty(rows, dtype)
        if n == 0 or rows == 0:
            out[...] = 0
            return out.reshape(self.out_shape(tuple(shape), keepdim))
        from ..ops.reduction import _ROW_SUM_MIN

        if fallback is not None and rows * n < _ROW_SUM_MIN:
            # eager sums this few elements with NumPy's pairwise sum: so does the group
            return fallback()
        full = tuple(shape) if shape else (1,)
        args, dims, inner = _operands(full, dtype, None, operands, self.params, keep_last=True)
        key = (len(dims), inner)
        fn = self._fns.get(key)
        if fn is None:
            src = self._source(len(dims), inner)
            if fallback is not None and _background:
                self._compile_later(key, src, args, dims)
                return fallback()
            fn = self._fns[key] = _module(src).kernel
        block = max(1, _BLOCK // max(n, 1))

        def run(lo: int, hi: int, slot: int) -> None:
            fn(out, dims, lo, hi, *args)

        parallel_for(rows, block, run, rows * n * (len(self.body) + 1))
        return out.reshape(self.out_shape(tuple(shape), keepdim))

    def _compile_later(self, key: tuple, src: str, args: list[Any], dims: tuple) -> None:
        """Compile (or load from the disk cache) the kernel for ``key`` on a thread; calls
        until it is ready run the unfused members, so the first steps of a compiled function
        do not wait for numba. A kernel that fails to compile stays unfused (with a warning)."""
        if key in self._pending:
            return
        self._pending.add(key)
        # tiny arguments of the same numba types make it compile this specialization
        dummy = [_like(a) for a in args]

        def work() -> None:
            try:
                fn = _module(src).kernel
                fn(np.zeros(1, _out_dtype(self)), tuple(1 for _ in dims), 0, 1, *dummy)
                self._fns[key] = fn
            except Exception as exc:  # noqa: BLE001  (reported; the group stays unfused)
                warnings.warn(
                    f"ember.compile: a fused kernel failed to compile ({exc})", stacklevel=1
                )

        threading.Thread(target=work, name="ember-fuse-compile", daemon=True).start()


def _row_reads(L: list[str], arrays: list[str], inner: tuple[int, ...], outer: int) -> None:
    """Source lines of the loop over rows ``f`` in ``[lo, hi)`` of the ``outer`` merged dims:
    each row's index per dim, each array operand's base offset, and the operand's row slice
    (inner stride 1) or its one broadcast value (inner stride 0)."""
    for d in range(outer):
        after = " * ".join(f"dims[{e}]" for e in range(d + 1, outer)) or "1"
        L.append(f"    step{d} = {after}")
    L.append("    for f in range(lo, hi):")
    for d in range(outer):
        L.append(f"        i{d} = (f // step{d}) % dims[{d}]")
    for k, a in enumerate(arrays):
        base = " + ".join(f"i{d} * st_{a}[{d}]" for d in range(outer)) or "0"
        L.append(f"        b_{a} = {base}")
        if inner[k]:
            L.append(f"        r{a} = {a}[b_{a} : b_{a} + n]")
        else:
            L.append(f"        v{a} = {a}[b_{a}]")


def _like(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        d = np.zeros(1, a.dtype)
        d.flags.writeable = a.flags.writeable
        return d
    if isinstance(a, tuple):
        return tuple(0 for _ in a)
    return a


def _out_dtype(k: FusedKernel) -> np.dtype:
    return np.dtype(k.body[-1][2])


def set_background(flag: bool) -> bool:
    """Compile new fused kernels on a background thread (the default) or at once (tests);
    returns the old setting."""
    global _background
    old, _background = _background, bool(flag)
    return old


def wait_compiled(timeout: float = 120.0) -> None:
    """Wait for the kernels compiling in the background (tests, benchmarks)."""
    for t in threading.enumerate():
        if t.name == "ember-fuse-compile":
            t.join(timeout)


def _module(src: str) -> Any:
    key = hashlib.sha256(src.encode()).hexdigest()[:24]
    mod = _modules.get(key)
    if mod is None:
        with _lock:
            mod = _modules.get(key)
            if mod is None:
                mod = _modules[key] = _load(key, src)
    return mod


def _fits(buf: Any, shape: tuple, dtype: Any) -> bool:
    return (
        isinstance(buf, np.ndarray)
        and buf.shape == tuple(shape)
        and buf.dtype == np.dtype(dtype)
        and buf.flags.c_contiguous
        and buf.flags.writeable
    )


def _output_like(operands, params, shape, dtype, buf=None) -> tuple[np.ndarray, list[int]]:
    """The output array in the memory layout eager code would give it (a ufunc's result
    follows its inputs' layout: a channels-last operand gives a channels-last result, and
    reductions over it then add in the same order as eagerly), and the axis order that makes
    it C-contiguous. A C-contiguous result goes to ``buf`` when it fits."""
    # The layout of the dense full-shape operands: a broadcast operand (expanded with zero
    # strides) or a sliced one (a cropped gradient) has none of its own and is read in the
    # result's order (a C-ordered result there made every later fused kernel of a ResNet's
    # channels-last gradients read across planes: 5x slower)
    full = [a for p, a in zip(params, operands) if p[0] == "a" and a.shape == shape and _dense(a)]
    a = full[0] if full else None
    # (NumPy keeps an input layout only when the full-shape inputs agree on it)
    if (
        a is not None
        and a.ndim > 1
        and not a.flags.c_contiguous
        and all(b.strides == a.strides for b in full)
    ):
        perm = sorted(range(a.ndim), key=lambda d: -a.strides[d])
        out = np.empty([shape[d] for d in perm], dtype).transpose(np.argsort(perm))
        return out, perm
    # (not over an operand: a loop whose output may alias an input does not vectorize, and
    # measured 10x slower with the transcendental helpers)
    if _fits(buf, shape, dtype) and not any(
        isinstance(a, np.ndarray) and np.may_share_memory(a, buf) for a in operands
    ):
        return buf, list(range(len(shape)))
    return np.empty(shape, dtype), list(range(len(shape)))


def _dense(a: np.ndarray) -> bool:
    """Whether ``a`` fills one block of memory in some axis order, with positive strides."""
    dims = sorted((st, n) for st, n in zip(a.strides, a.shape) if n != 1)
    expect = a.itemsize
    for st, n in dims:
        if st != expect:
            return False
        expect *= n
    return True


def _flat(a: np.ndarray) -> np.ndarray:
    """The memory block of a dense array as a 1-d array (element k at offset k)."""
    return np.lib.stride_tricks.as_strided(a, (a.size,), (a.itemsize,))


def _operands(
    shape: tuple[int, ...],
    dtype: np.dtype,
    perm: list[int] | None,
    operands,
    params,
    keep_last: bool = False,
):
    """Flat array operands with their element strides over the output's dims in memory order
    (``perm``; broadcast dims stride 0), adjacent dims merged wherever every operand allows it
    (as NumPy's iterator does); scalars cast to the output's dtype (NumPy's rule for Python
    scalars). An operand whose innermost stride is neither 0 nor 1 is copied into the
    output's layout first. ``keep_last`` keeps the last dim apart (a reduction's). Returns
    ``(args, dims, inner strides)``."""
    ndim = len(shape)
    perm = list(range(ndim)) if perm is None else perm
    shape = shape if ndim else (1,)
    pshape = [shape[d] for d in perm] if ndim else [1]
    flat, strides = [], []
    for p, a in zip(params, operands):
        if p[0] != "a":
            continue
        a = np.asarray(a)
        b = np.broadcast_to(a, shape)
        if ndim:
            b = b.transpose(perm)
        st = [x // a.itemsize for x in b.strides]
        if not _dense(a) or (st and st[-1] not in (0, 1)):
            b = np.ascontiguousarray(b)  # (a transposed or sliced operand: rare)
            a, st = b, [x // b.itemsize for x in b.strides]
        flat.append(_flat(a))
        strides.append(st)
    dims = list(pshape)
    out_st = [int(np.prod(pshape[d + 1 :])) for d in range(len(pshape))]
    for k in range(len(dims) - (2 if keep_last else 1), 0, -1):
        if all(st[k - 1] == st[k] * dims[k] for st in (*strides, out_st)):
            dims[k - 1] *= dims[k]
            del dims[k]
            for st in (*strides, out_st):
                st[k - 1] = st[k]
                del st[k]
    inner = tuple(int(st[-1]) for st in strides)
    dtype = np.dtype(dtype)
    cast = dtype.type if dtype.kind == "f" else (lambda v: v)
    args: list[Any] = []  # the kernel's order: arrays (with strides), then scalars
    for arr, st in zip(flat, strides):
        args += [arr, tuple(int(x) for x in st[:-1]) or (0,)]
    for p, v in zip(params, operands):
        if p[0] != "a":
            args.append(cast(v) if isinstance(v, (int, float)) else v)
    return args, tuple(int(d) for d in dims), inner


def _kernel_layer_stamp() -> str:
    """A hash of the kernel layer's helpers: a changed helper must not reuse numba's cached
    machine code of a kernel that inlined the old one (numba checks only this file's stamp)."""
    global _STAMP
    if _STAMP is None:
        from ..backends import kernels_ew

        with open(kernels_ew.__file__, "rb") as f:
            _STAMP = hashlib.sha256(f.read()).hexdigest()[:16]
    return _STAMP


_STAMP: str | None = None


def _subst(expr: str, env: dict[str, str]) -> str:
    import re

    return re.sub(r"\b(a\d+)\b", lambda m: env.get(m.group(1), m.group(1)), expr)


def _load(key: str, src: str) -> Any:
    """Import the kernel module from the cache directory (written once, atomically), or from
    memory when the directory cannot be written (numba then compiles in memory only)."""
    name = f"ember_fused_{key}"
    d = cache_dir()
    path = os.path.join(d, f"fused_{key}.py")
    try:
        os.makedirs(d, exist_ok=True)
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(src)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    except OSError:
        src = src.replace("cache=True", "cache=False")
        mod = type(sys)(name)
        exec(compile(src, f"<{name}>", "exec"), mod.__dict__)  # noqa: S102  (our own source)
        return mod
