"""CPU threading for kernels: BLAS thread control and a block-parallel loop.

Ember runs its heavy kernels (convolution, batched GEMMs) on its own small thread pool,
splitting the work into blocks (a few images each) that threads pull from a shared queue,
with every BLAS call inside on one thread. Two reasons, both measured on a 2-core VM:

- OpenBLAS wakes all of its threads for every GEMM; for the small GEMMs of convnets and
  attention (up to ~100M multiply-adds) that wake-up costs more than it gains, and on a
  loaded machine threaded small GEMMs were 5-40x slower than single-threaded ones.
- Blocks sized to stay in L2 (im2col gathered a few images at a time and multiplied at
  once) beat one whole-batch GEMM, and blocks pulled dynamically keep both cores busy even
  when one of them is shared with another process.

``ember.set_num_threads(n)`` sets how many threads the pool uses (default: the CPUs this
process may run on, at most 4).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["gemm", "get_num_threads", "one_blas_thread", "parallel_for", "set_num_threads"]


def _find_blas_threads():
    try:
        import ctypes
        path = None
        with open("/proc/self/maps") as f:
            for line in f:
                if "openblas" in line.lower():
                    path = line.split()[-1]
                    break
        if path is None:
            return None, None
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                s = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                g = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if s is not None and g is not None:
                    s.argtypes = [ctypes.c_int]
                    s.restype = None
                    g.restype = ctypes.c_int
                    return s, g
    except (OSError, AttributeError):  # pragma: no cover - no OpenBLAS or /proc: leave it
        return None, None
    return None, None


_set_blas_threads, _get_blas_threads = _find_blas_threads()


def _default_threads():
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


_num_threads = _default_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads Ember's CPU kernels use (like ``torch.set_num_threads``).

    Example:
        >>> import ember
        >>> old = ember.get_num_threads()
        >>> ember.set_num_threads(1)
        >>> ember.get_num_threads()
        1
        >>> ember.set_num_threads(old)
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _num_threads = n


def get_num_threads() -> int:
    """The number of threads Ember's CPU kernels use (see :func:`set_num_threads`)."""
    return _num_threads


class one_blas_thread:
    """Context manager: BLAS calls inside run on one thread (restored on exit; re-entrant)."""

    __slots__ = ("n",)

    def __enter__(self):
        self.n = _get_blas_threads() if _set_blas_threads is not None else 1
        if self.n > 1:
            _set_blas_threads(1)
        return self

    def __exit__(self, *exc):
        if self.n > 1:
            _set_blas_threads(self.n)


# GEMMs under this many multiply-adds run on one BLAS thread (EMBER_GEMM_SMALL_MACS overrides):
# a threaded 4096x150x16 GEMM measured 10 ms against 0.25 ms on one thread on a busy 2-core VM.
_SMALL_GEMM_MACS = int(os.environ.get("EMBER_GEMM_SMALL_MACS", str(1 << 27)))


def gemm(a, b, out=None):
    """``a @ b`` (2-D) on BLAS; products under ~134M multiply-adds run on one thread."""
    if _set_blas_threads is not None and a.shape[0] * a.shape[1] * b.shape[-1] < _SMALL_GEMM_MACS:
        with one_blas_thread():
            return np.matmul(a, b, out=out)
    return np.matmul(a, b, out=out)


_POOL = None
# Below this much work (multiply-adds, or element operations) a block loop stays on the calling
# thread: handing blocks to the pool costs ~20-50 us.
PAR_MIN_WORK = int(os.environ.get("EMBER_PAR_MIN_WORK", str(1 << 21)))


def _pool():
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has no pool threads
        from concurrent.futures import ThreadPoolExecutor
        _POOL = (os.getpid(), ThreadPoolExecutor(7, thread_name_prefix="ember-kernel"))
    return _POOL[1]


def parallel_for(n: int, block: int, fn, work: int = 1 << 62) -> int:
    """Call ``fn(a, b, slot)`` for the blocks ``[a, b)`` of ``range(n)`` (``block`` items each),
    on up to :func:`get_num_threads` threads pulling blocks from one queue; ``slot`` (0 ..
    threads-1) names the thread, so callers can keep one accumulator per slot. BLAS runs on
    one thread throughout. Work under ``PAR_MIN_WORK`` stays on the calling thread. Returns
    the number of slots used. ``fn`` must write only to its own block's part of any output.
    """
    block = max(1, int(block))
    ranges = [(a, min(a + block, n)) for a in range(0, n, block)]
    nthreads = min(_num_threads, len(ranges)) if work >= PAR_MIN_WORK else 1
    with one_blas_thread():
        if nthreads <= 1:
            for a, b in ranges:
                fn(a, b, 0)
            return 1
        queue = iter(ranges)  # a list iterator: next() is atomic under the GIL

        def run(slot):
            for a, b in queue:
                fn(a, b, slot)

        futures = [_pool().submit(run, s) for s in range(1, nthreads)]
        try:
            run(0)
        finally:
            errors = []
            for f in futures:  # wait for every worker before buffers go out of scope
                try:
                    f.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    errors.append(exc)
        if errors:
            raise errors[0]
    return nthreads
