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

import threading

from .._env import env_flag

__all__ = ["available", "get", "get_for", "set_enabled"]

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

            _numba = numba
        except ImportError:
            _numba = False
    return _numba


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
KERNEL_MODULES = ("cpu_kernels", "kernels_ew", "kernels_norm", "kernels_conv")


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
