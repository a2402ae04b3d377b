"""The CPU backend: NumPy arrays and kernels."""

import os

import numpy as np

__all__ = [
    "FAST_FLOATS",
    "MALLOC_TUNED",
    "array_types",
    "asarray",
    "axpby",
    "axpy",
    "blas_backend",
    "dense_flat",
    "is_available",
    "name",
    "openblas",
    "openblas_avx512",
    "openblas_corename",
    "openblas_sgemm_address",
    "sgemm_address",
    "tune_malloc",
    "xp",
]

name = "cpu"
xp = np
array_types = (np.ndarray,)


def is_available() -> bool:
    return True


# The dtypes of the fast paths (BLAS-backed sums, fused kernels, compiled loops); others take
# the general NumPy code.
FAST_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# -- allocator policy ---------------------------------------------------------------------------
# Every eager op returns a fresh NumPy array. glibc serves allocations above its mmap threshold
# (128 KiB, raised dynamically up to 32 MiB) with fresh mmaps and gives freed heap tops back to
# the OS, so the activations of a training step page-fault on every step: a fresh 64 MB output
# writes at ~6 GB/s here against ~20 GB/s into reused memory. Keeping freed memory in the process
# (what PyTorch's caching allocators do) measured ResNet steps 20% and GPT steps ~10% faster.
# Memory freed by Ember stays reusable by the process rather than returned to the OS at once;
# EMBER_MALLOC_TUNING=0 leaves glibc's defaults.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 64 << 20  # allocations above this still get their own mmap
TRIM_THRESHOLD = 512 << 20  # free memory kept at the top of the heap before trimming


def tune_malloc() -> bool:
    """Apply the allocator policy above (glibc only); True when it took effect."""
    import sys

    from .._env import env_flag

    if not env_flag("EMBER_MALLOC_TUNING", True) or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False


MALLOC_TUNED = tune_malloc()


def asarray(data, dtype=None):
    return np.asarray(data, dtype=dtype)


# -- BLAS level-1 kernels -------------------------------------------------------------------------
# NumPy has no fused multiply-add: ``y += a * x`` costs two passes and a temporary. The
# OpenBLAS that NumPy ships exports ``cblas_?axpy`` / ``cblas_?axpby`` (one pass, in place);
# the optimizer updates use them on large contiguous arrays. None when no such BLAS is loaded.
_OPENBLAS: list = []


def openblas():
    """The ctypes handle of the OpenBLAS that NumPy loaded (found in /proc/self/maps), or
    None (another BLAS, or not Linux). Other OpenBLAS copies may be mapped too (SciPy's wheel
    brings its own 32-bit-integer one): NumPy's is the one in its own wheel's ``numpy.libs``
    or package directory, else the first exporting the 64-bit-integer ``cblas_sgemm`` NumPy 2
    builds use, else the first found."""
    if not _OPENBLAS:
        lib = None
        try:
            import ctypes

            paths: list[str] = []
            with open("/proc/self/maps") as f:
                for line in f:
                    path = line.split()[-1]
                    if "openblas" in path.lower() and ".so" in path and path not in paths:
                        paths.append(path)
            paths.sort(key=lambda p: not _in_numpy(p))  # NumPy's own first
            libs = [ctypes.CDLL(p) for p in paths]
            ilp64 = [
                lb
                for lb in libs
                if any(getattr(lb, n, None) for n in ("scipy_cblas_sgemm64_", "cblas_sgemm64_"))
            ]
            own = [lb for lb, p in zip(libs, paths) if _in_numpy(p)]
            lib = (own or ilp64 or libs or [None])[0]
        except OSError:  # pragma: no cover - no /proc
            lib = None
        _OPENBLAS.append(lib)
    return _OPENBLAS[0]


def _in_numpy(path: str) -> bool:
    """Whether a shared library ships with NumPy (its wheel's ``numpy.libs`` or package)."""
    npdir = os.path.dirname(np.__file__)
    return path.startswith(npdir + os.sep) or path.startswith(npdir + ".libs" + os.sep)


_SGEMM: list = []


def openblas_corename() -> str:
    """The OpenBLAS kernel family NumPy runs (e.g. 'skylakex', 'haswell'), or ''.

    Example:
        >>> from ember.backends.cpu import openblas_corename
        >>> isinstance(openblas_corename(), str)
        True
    """
    import ctypes

    lib = openblas()
    for name in (
        "scipy_openblas_get_corename64_",
        "scipy_openblas_get_corename",
        "openblas_get_corename64_",
        "openblas_get_corename",
    ):
        f = getattr(lib, name, None) if lib is not None else None
        if f is not None:
            f.restype = ctypes.c_char_p
            return (f() or b"").decode(errors="replace").lower()
    return ""


# OpenBLAS's AVX-512 kernel families; they also bring the "small matrix" GEMM kernels
# (:data:`ember.backends.kernels_blas.SMALL_GEMM_MACS`).
AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")


def openblas_avx512() -> bool:
    """True when NumPy's OpenBLAS runs one of its AVX-512 kernel families.

    Example:
        >>> from ember.backends.cpu import openblas_avx512
        >>> openblas_avx512() in (True, False)
        True
    """
    if not _AVX512:
        _AVX512.append(openblas_corename() in AVX512_KERNELS)
    return _AVX512[0]


_AVX512: list = []


def cpu_vendor() -> str:
    """The CPU's vendor string from ``/proc/cpuinfo`` (``'GenuineIntel'``,
    ``'AuthenticAMD'``), or ``''`` where it cannot be read.

    Example:
        >>> from ember.backends.cpu import cpu_vendor
        >>> isinstance(cpu_vendor(), str)
        True
    """
    if not _VENDOR:
        vendor = ""
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("vendor_id"):
                        vendor = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        _VENDOR.append(vendor)
    return _VENDOR[0]


_VENDOR: list = []


def sgemm_address():
    """The address of the ILP64 ``cblas_sgemm`` (64-bit integers) that Ember's compiled
    kernels call for their GEMM blocks (:mod:`ember.backends.kernels_blas`): MKL's where
    :func:`blas_backend` is ``'mkl'``, else the one of the OpenBLAS NumPy loaded; or None.

    Example:
        >>> from ember.backends.cpu import sgemm_address
        >>> a = sgemm_address()
        >>> a is None or a > 0
        True
    """
    if blas_backend() == "mkl":
        from . import _mkl

        found = _mkl.load()
        return found.sgemm if found is not None else None
    return openblas_sgemm_address()


def openblas_sgemm_address():
    """The address of NumPy's OpenBLAS ILP64 ``cblas_sgemm``, or None.

    Example:
        >>> from ember.backends.cpu import openblas_sgemm_address
        >>> a = openblas_sgemm_address()
        >>> a is None or a > 0
        True
    """
    if not _SGEMM:
        import ctypes

        lib, addr = openblas(), None
        for name in ("scipy_cblas_sgemm64_", "cblas_sgemm64_"):
            f = getattr(lib, name, None) if lib is not None else None
            if f is not None:
                addr = ctypes.cast(f, ctypes.c_void_p).value
                break
        _SGEMM.append(addr)
    return _SGEMM[0]


BLAS_BACKENDS = ("auto", "mkl", "openblas")


def blas_backend() -> str:
    """The BLAS that runs Ember's float32 GEMM blocks: ``'mkl'`` or ``'openblas'``.

    ``EMBER_BLAS`` chooses (``auto``, ``mkl``, ``openblas``). ``auto`` takes MKL on Intel
    CPUs where the ``mkl`` extra is installed (measured faster there: :mod:`ember.backends.
    _mkl`), OpenBLAS otherwise (on AMD CPUs MKL was not measured against OpenBLAS).
    ``EMBER_BLAS=mkl`` without a usable MKL is an ImportError saying why.

    Example:
        >>> from ember.backends.cpu import blas_backend
        >>> blas_backend() in ("mkl", "openblas")
        True
    """
    if not _BACKEND:
        from .._env import env_choice

        want = env_choice("EMBER_BLAS", "auto", BLAS_BACKENDS)
        chosen = "openblas"
        if want == "mkl" or (want == "auto" and cpu_vendor() == "GenuineIntel"):
            from . import _mkl

            if _mkl.load() is not None:
                chosen = "mkl"
            elif want == "mkl":
                raise ImportError(f"EMBER_BLAS=mkl, but MKL cannot be used: {_mkl.why_not()}")
        _BACKEND.append(chosen)
    return _BACKEND[0]


_BACKEND: list = []


def _find_blas_l1():
    lib = openblas()
    if lib is None:
        return None
    try:
        import ctypes

        for prefix in ("scipy_cblas_", "cblas_"):
            for suffix, ity in (("64_", ctypes.c_int64), ("", ctypes.c_int)):
                fns = {}
                for t, fty in (("s", ctypes.c_float), ("d", ctypes.c_double)):
                    axpy = getattr(lib, f"{prefix}{t}axpy{suffix}", None)
                    axpby = getattr(lib, f"{prefix}{t}axpby{suffix}", None)
                    if axpy is None or axpby is None:
                        break
                    vp = ctypes.c_void_p
                    axpy.argtypes = [ity, fty, vp, ity, vp, ity]
                    axpy.restype = None
                    axpby.argtypes = [ity, fty, vp, ity, fty, vp, ity]
                    axpby.restype = None
                    fns[np.dtype("f4" if t == "s" else "f8")] = (axpy, axpby)
                if len(fns) == 2:
                    return fns
    except (OSError, AttributeError):  # pragma: no cover - no OpenBLAS or /proc
        return None
    return None


_BLAS_L1 = None
_BLAS_L1_MIN = 4096  # below this the ctypes call costs more than the second NumPy pass


def _blas_l1(x, y):
    global _BLAS_L1
    if _BLAS_L1 is None:
        _BLAS_L1 = _find_blas_l1() or {}
    if (
        y.size < _BLAS_L1_MIN
        or x.dtype != y.dtype
        or x.shape != y.shape
        or not (x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable)
    ):
        return None
    return _BLAS_L1.get(y.dtype)


def axpy(a, x, y, tmp=None):
    """``y += a * x`` in place (one BLAS pass when possible; ``tmp``: scratch for the fallback)."""
    f = _blas_l1(x, y)
    if f is not None:
        # axpby with b = 1: OpenBLAS threads ?axpy above 10k elements, and waking its threads
        # measured 16 ms against 0.06 ms for a 670k-element axpby on this 2-core VM.
        f[1](y.size, a, x.ctypes.data, 1, 1.0, y.ctypes.data, 1)
        return y
    if tmp is None:
        tmp = np.empty_like(y)
    np.multiply(x, a, out=tmp)
    np.add(y, tmp, out=y)
    return y


def axpby(a, x, b, y, tmp=None):
    """``y = a * x + b * y`` in place (one BLAS pass when possible)."""
    f = _blas_l1(x, y)
    if f is not None:
        f[1](y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)
        return y
    if tmp is None:
        tmp = np.empty_like(y)
    np.multiply(y, b, out=y)
    np.multiply(x, a, out=tmp)
    np.add(y, tmp, out=y)
    return y


def dense_flat(a):
    """A 1-D view of all of ``a``'s elements in memory order when ``a`` is dense (C-, F- or
    channels-last contiguous), else None. Two arrays with equal strides give views whose
    positions correspond, so elementwise kernels can run over the flat buffers."""
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if a.ndim == 4:
        t = a.transpose(0, 2, 3, 1)
        if t.flags.c_contiguous:
            return t.reshape(-1)
    if a.flags.f_contiguous:
        return a.T.reshape(-1)
    return None
