"""Compiled CPU kernels: the optional ``[jit]`` extra (numba).

The kernels in :mod:`ember.backends.cpu_kernels` are plain Python loops over NumPy arrays.
When numba is installed they are compiled on first use (``nogil=True`` so that Ember's own
thread pool runs them truly in parallel; ``cache=True`` so later processes load them in
milliseconds) and the ops that have one use it: batch norm, ReLU and its gradient, 2x2 max
pooling, depthwise convolution, the LSTM cell (forward gates, backward step) and the fused Adam
update. Without numba, or with ``EMBER_JIT=0``, :func:`get` returns None and the ops run their
NumPy code, which computes the same values.

Example:
    >>> from ember.backends import jit
    >>> k = jit.get("relu")  # None without numba
    >>> k is None or callable(k)
    True
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from .._env import env_flag

__all__ = ["available", "get", "get_for", "get_parallel", "parallel_available", "set_enabled"]

_compiled: dict = {}
_lock = threading.Lock()
_numba = None  # the module, False when unavailable
_enabled = env_flag("EMBER_JIT", True)
# numba writes compiled kernels next to cpu_kernels.py (__pycache__, or NUMBA_CACHE_DIR when
# set); EMBER_JIT_CACHE=0 compiles in memory only (every process then pays the compile time).
_cache = env_flag("EMBER_JIT_CACHE", True)


def _load_numba():
    global _numba
    if _numba is None:
        try:
            import numba

            _widen_vectors(numba)
            _defer_blas_check()
            _numba = numba
        except ImportError:
            _numba = False
    return _numba


def _defer_blas_check() -> None:
    """Spare each process ~0.2 s of its first kernel call: loading a cached kernel makes
    numba import its NumPy implementations (``numba.np.arraymath``), which at import asks
    whether SciPy's BLAS is there by importing ``scipy.linalg`` (0.12-0.38 s on the VMs),
    though no Ember kernel calls ``np.dot`` in numba. That one question is answered from
    whether SciPy is installed; every other call (numba compiling a function that does use
    ``np.dot``) still imports it. Skipped when numba's NumPy implementations are loaded
    already or its internals differ."""
    import importlib.util

    if "numba.np.arraymath" in sys.modules:
        return
    try:
        from numba.np import linalg
    except ImportError:  # pragma: no cover - another numba layout: its own check runs
        return
    real = linalg.ensure_blas

    def ensure_blas():
        if sys._getframe(1).f_code.co_name == "_check_blas":  # arraymath's import-time probe
            if importlib.util.find_spec("scipy") is None:
                raise ImportError("scipy 0.16+ is required for linear algebra")
            return
        real()

    linalg.ensure_blas = ensure_blas


def _widen_vectors(nb) -> None:
    """Let LLVM vectorize the kernels with 512-bit registers on AVX-512 machines.

    LLVM tunes its Intel AVX-512 targets (Skylake-X to Sapphire Rapids) to prefer 256-bit
    vectors, so numba's loops ran half-width there: the compiled float32 ``exp`` took 1.05 ms
    per 2M elements on one Xeon core, 0.77 ms with 512-bit vectors (PyTorch 0.66). numba reads
    its target features when it creates its code generator, on the first compilation, and
    keys its disk cache by them. Left alone when the user set ``NUMBA_CPU_NAME`` or
    ``NUMBA_CPU_FEATURES``, or ``EMBER_JIT_AVX512=0``."""
    if not env_flag("EMBER_JIT_AVX512", True):
        return
    if nb.config.CPU_FEATURES is not None or nb.config.CPU_NAME is not None:
        return
    try:
        from llvmlite import binding as ll

        features = ll.get_host_cpu_features().flatten()
    except Exception:  # noqa: BLE001 - a platform llvmlite cannot query: numba's defaults
        return
    if "+avx512f" in features.split(","):
        nb.config.CPU_FEATURES = features + ",-prefer-256-bit"


def inline_helpers(namespace: dict, names, **options) -> None:
    """Replace the plain-Python helpers ``names`` of a kernel module (its ``globals()``) by
    numba functions inlined into the kernels that call them (numba resolves a kernel's
    callees at compile time). Without numba they stay Python: the kernels are never compiled.

    Example:
        >>> from ember.backends import jit
        >>> ns = {"twice": lambda v: 2 * v}
        >>> jit.inline_helpers(ns, ("twice",))
        >>> ns["twice"](3)
        6
    """
    nb = _load_numba()
    if not nb:
        return
    inline = nb.njit(inline="always", **options)
    for name in names:
        namespace[name] = inline(namespace[name])


def available() -> bool:
    """True when numba is importable and the kernels are enabled."""
    return _enabled and bool(_load_numba())


def set_enabled(flag: bool) -> bool:
    """Turn the compiled kernels on or off (tests compare both paths); returns the old flag."""
    global _enabled
    old, _enabled = _enabled, bool(flag)
    return old


def get_for(name: str, dtype):
    """:func:`get`, for arrays of ``dtype``: None unless it is float32/float64 (the kernels'
    dtypes)."""
    from .cpu import FAST_FLOATS

    return get(name) if dtype in FAST_FLOATS else None


# The modules holding kernel source, searched in order (one module per family of ops keeps
# the files small and lets kernel families grow independently).
KERNEL_MODULES = (
    "cpu_kernels",
    "kernels_ew",
    "kernels_norm",
    "kernels_norm_s42",
    "kernels_bn",
    "kernels_conv",
    "kernels_convgemm",
    "kernels_attn",
    "kernels_rnn",
    "kernels_blas",
    "kernels_gemm",
    "kernels_reduce_s42",
)


def _find_source(name: str):
    import importlib

    for mod in KERNEL_MODULES:
        m = importlib.import_module(f"{__package__}.{mod}")
        if hasattr(m, name):
            return getattr(m, name)
    raise KeyError(f"no CPU kernel named {name!r} in {', '.join(KERNEL_MODULES)}")


def get(name: str):
    """The compiled kernel ``name`` (from one of :data:`KERNEL_MODULES`), or None."""
    if not _enabled:
        return None
    fn = _compiled.get(name)
    if fn is not None:
        return fn
    nb = _load_numba()
    if not nb:
        return None
    with _lock:
        fn = _compiled.get(name)
        if fn is None:
            py = _find_source(name)
            # a kernel may ask for more numba options (fastmath flags, e.g. FMA contraction)
            opts = getattr(py, "jit_options", {})
            fn = nb.njit(nogil=True, cache=_cache, error_model="numpy", **opts)(py)
            _compiled[name] = fn
    return fn


# -- parallel variants ----------------------------------------------------------------------
# A kernel whose outer loop is ``prange`` (rows, or blocks of a flat array, each written by
# one iteration only) is also compiled with ``parallel=True``: numba then splits that loop
# over its threading layer. Launching such a loop costs ~2-4 us through OpenMP (measured on
# the 2-core VM) against 10-100 us for a hand-off to Python threads, so sub-millisecond row
# ops (a (2048, 256) softmax, a (16, 128, 1024) sum) gain from two threads as PyTorch's do.
# Results are bitwise those of the serial kernel: every iteration writes only its own output.
# Only the thread-safe layers qualify (TBB or OpenMP): numba's fallback ``workqueue`` layer
# takes ~75 us per launch and aborts when two threads launch at once.
_parallel_compiled: dict = {}
_parallel_ok: bool | None = None  # None: not checked yet
_forked = False


def _after_fork_in_child() -> None:
    # GNU OpenMP's threads do not survive a fork (numba aborts the child's first parallel
    # loop): a forked child (a DataLoader worker, a server process) runs the serial kernels
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def parallel_available() -> bool:
    """True when :func:`get_parallel` can return kernels: numba with a thread-safe threading
    layer (TBB or OpenMP), kernels enabled, ``EMBER_JIT_PARALLEL`` not 0, not a forked child.
    """
    global _parallel_ok
    if _forked or not available():
        return False
    if _parallel_ok is None:
        _parallel_ok = env_flag("EMBER_JIT_PARALLEL", True) and _pick_layer()
    return _parallel_ok


def _pick_layer() -> bool:
    import importlib

    nb = _load_numba()
    layer = str(nb.config.THREADING_LAYER).lower()
    if layer in ("tbb", "omp"):
        choices: tuple[str, ...] = (layer,)
    elif layer in ("default", "threadsafe"):
        choices = ("tbb", "omp")
    else:  # the user chose workqueue or a fork-safe set: leave numba's layer to them
        return False
    for name in choices:
        try:
            with _short_openmp_spin() if name == "omp" else contextlib.nullcontext():
                importlib.import_module(f"numba.np.ufunc.{name}pool")
        except Exception:  # noqa: BLE001 - a missing libtbb/libgomp
            continue
        nb.config.THREADING_LAYER = name
        return True
    return False


# GNU OpenMP's threads spin ~300k rounds (~0.3-1 ms) after a parallel loop before they
# sleep; here they would share the cores with Ember's own pool threads, which split the
# GEMMs and convolutions that run between two row kernels: a GPT training step with
# attention written out took 536 ms against 348 ms without the parallel builds. 10k rounds
# (~10-20 us) still catch back-to-back kernels awake (a wake-up costs ~50 us on the VM) and
# the step took 318 ms. Once the GEMMs ran on numba's threads too (session 33), 100k rounds
# (~0.1-0.2 ms, which spans the Python between two kernels of a small step) measured
# equal or faster on every workload (2 Xeon cores, ms per eager step, 10k -> 100k: mlp
# 1.03-1.05 -> 0.87-0.99, resnet 69-71 -> 65, lenet 6.3-6.6 -> 5.8-6.2, lstm and
# gpt_written the same within noise). libgomp reads the variable once, when it is loaded
# (numba's omppool loads it), so it is set only around that import and only when the user
# has set neither it nor OMP_WAIT_POLICY: a libgomp loaded later (PyTorch bundles its own)
# never sees it.
_GOMP_SPINCOUNT = "100000"


class _short_openmp_spin:
    def __enter__(self):
        self.set = not ({"GOMP_SPINCOUNT", "OMP_WAIT_POLICY"} & set(os.environ))
        if self.set:
            os.environ["GOMP_SPINCOUNT"] = os.environ.get("EMBER_GOMP_SPINCOUNT", _GOMP_SPINCOUNT)
        return self

    def __exit__(self, *exc):
        if self.set:
            os.environ.pop("GOMP_SPINCOUNT", None)
        return False


def get_parallel(name: str):
    """The ``parallel=True`` compilation of kernel ``name`` (its ``prange`` loop split over
    numba's threads), or None where :func:`parallel_available` is False.

    Example:
        >>> from ember.backends import jit
        >>> k = jit.get_parallel("row_sums")  # None without numba's OpenMP or TBB layer
        >>> k is None or callable(k)
        True
    """
    fn = _parallel_compiled.get(name)
    if fn is not None and _enabled and not _forked:
        return fn
    if not parallel_available():
        return None
    with _lock:
        fn = _parallel_compiled.get(name)
        if fn is None:
            import types

            py = _find_source(name)
            # a separate function object with its own qualified name: numba's disk cache is
            # keyed by it, so the serial and parallel builds do not overwrite each other
            twin = types.FunctionType(
                py.__code__, py.__globals__, py.__name__, py.__defaults__, py.__closure__
            )
            twin.__qualname__ = f"{py.__qualname__}__parallel"
            opts = getattr(py, "jit_options", {})
            fn = _load_numba().njit(
                nogil=True, parallel=True, cache=_cache, error_model="numpy", **opts
            )(twin)
            _parallel_compiled[name] = fn
    return fn
