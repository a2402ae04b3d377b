"""Intel MKL's single-threaded ``cblas_sgemm``, loaded from the ``mkl`` wheel when installed.

Ember's large float32 GEMMs run as fixed blocks on numba's threads, each block one
``cblas_sgemm`` call through a function address (:func:`ember.backends.cpu.sgemm_address`).
NumPy brings OpenBLAS; on Intel CPUs MKL's kernels run the same blocks 5-20% faster (one Xeon
core, GFLOP/s, MKL / OpenBLAS: 2048x768x256 191 / 165, 256x768x2048 with A transposed
176 / 149, 128x128x64 143 / 102), and Ember's own micro-kernel is not faster than MKL either.
The ``mkl`` extra (``pip install 'ember[mkl]'``) installs it; nothing else changes.

MKL is loaded through its single dynamic library ``libmkl_rt`` with the *sequential*
threading layer: the blocks are Ember's threads, so MKL must not start its own OpenMP pool
(whose spinning threads would compete with numba's on every core). Where that layer cannot be
chosen (another library in the process initialized MKL threaded first), MKL is not used.

Example:
    >>> from ember.backends._mkl import load
    >>> found = load()
    >>> found is None or found.sgemm > 0
    True
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import dataclass

__all__ = ["Mkl", "load", "why_not"]

# MKL_THREADING_SEQUENTIAL in mkl_service.h
_SEQUENTIAL = 1


@dataclass(frozen=True)
class Mkl:
    """A loaded MKL: the library handle, the address of its ILP64 ``cblas_sgemm_64`` (the
    64-bit-integer interface, the same as NumPy's OpenBLAS ``cblas_sgemm64_``), its version
    number and the file it came from."""

    lib: ctypes.CDLL
    sgemm: int
    version: str
    path: str


_LOADED: list = []
_WHY_NOT: list[str] = []


def _candidates() -> list[str]:
    """Where ``libmkl_rt`` may be: the files of the installed ``mkl`` distribution (its
    wheel puts the libraries in the environment's ``lib``), then the prefix's ``lib``."""
    paths: list[str] = []
    from importlib import metadata

    try:
        files = metadata.distribution("mkl").files or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if os.path.basename(str(f)).startswith("libmkl_rt.so"):
            paths.append(str(f.locate()))
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        paths += sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
    return [p for p in dict.fromkeys(os.path.realpath(p) for p in paths) if os.path.isfile(p)]


def load() -> Mkl | None:
    """MKL with its sequential threading layer, loaded once per process, or None (not
    installed, no ILP64 interface, or MKL already running threaded here: :func:`why_not`
    says which)."""
    if _LOADED:
        return _LOADED[0]
    found = None
    paths = _candidates()
    if not paths:
        _WHY_NOT.append("the mkl package is not installed (pip install 'ember[mkl]')")
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            _WHY_NOT.append(f"{path} did not load: {e}")
            continue
        sgemm = getattr(lib, "cblas_sgemm_64", None)
        set_layer = getattr(lib, "MKL_Set_Threading_Layer", None)
        if sgemm is None or set_layer is None:
            _WHY_NOT.append(f"{path} has no cblas_sgemm_64 (MKL 2023 or newer is needed)")
            continue
        set_layer.restype = ctypes.c_int
        layer = set_layer(ctypes.c_int(_SEQUENTIAL))
        if layer != _SEQUENTIAL:
            _WHY_NOT.append(
                f"MKL at {path} already runs with threading layer {layer}, not sequential"
            )
            continue
        found = Mkl(lib, ctypes.cast(sgemm, ctypes.c_void_p).value or 0, _version(lib), path)
        break
    _LOADED.append(found)
    return found


def why_not() -> str:
    """Why :func:`load` found no usable MKL ('' when it did or was not asked yet)."""
    return "; ".join(_WHY_NOT)


def _version(lib: ctypes.CDLL) -> str:
    """MKL's version number ('2025.3') from its version string, or '?'."""
    import re

    buf = ctypes.create_string_buffer(256)
    get = getattr(lib, "MKL_Get_Version_String", None)
    if get is None:
        return "?"
    get(buf, ctypes.c_int(len(buf)))
    found = re.search(r"Version ([0-9][0-9.]*)", buf.value.decode(errors="replace"))
    return found.group(1) if found else "?"
