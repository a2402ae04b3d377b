"""CPU threading for kernels: BLAS thread control and a block-parallel loop.

Ember owns its intra-op threads, like PyTorch: heavy kernels (convolution, large GEMMs,
batched matmuls) split their work into blocks that Ember's own thread pool pulls from a
shared queue, and every BLAS call inside runs on one thread. So on import Ember sets
NumPy's OpenBLAS to one thread for the process (``ember.set_num_threads`` sets the pool
size instead; default: ``EMBER_NUM_THREADS``, else ``OMP_NUM_THREADS``, else the CPUs this
process may run on, at most 4). Measured on a 2-core VM, all three reasons:

- An OpenBLAS call on several threads leaves its worker threads spinning for a while
  afterwards; Ember's pool threads then share the cores with spinning threads (a ResNet
  step's convolutions ran 1.7x slower right after a threaded matrix-vector product).
- OpenBLAS wakes all of its threads for every GEMM; for the small GEMMs of convnets and
  attention that costs more than it gains, and on a loaded machine threaded small GEMMs
  were 5-40x slower than single-threaded ones.
- Blocks sized to stay in L2 (im2col gathered a few images at a time and multiplied at
  once) beat one whole-batch GEMM, and blocks pulled dynamically keep both cores busy even
  when one of them is shared with another process.

Set ``EMBER_KEEP_BLAS_THREADS=1`` to leave NumPy's BLAS threading untouched: Ember's block
loops and large GEMMs then still run their BLAS calls on one thread (:func:`one_blas_thread`
sets and restores the count around them), other BLAS calls follow the process's setting.
"""

from __future__ import annotations

import _thread
import os
import queue
import threading

from .._env import env_flag, env_int
from ..backends import jit

__all__ = [
    "blas_threads",
    "gemm",
    "get_num_threads",
    "matmul",
    "one_blas_thread",
    "ones_vector",
    "parallel_for",
    "parallel_kernel",
    "row_sums",
    "set_num_threads",
]


def _find_blas_threads():
    from ..backends.cpu import openblas

    lib = openblas()
    if lib is None:
        return None, None
    import ctypes

    for prefix in ("scipy_openblas_", "openblas_"):
        for suffix in ("64_", ""):
            s = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            g = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if s is not None and g is not None:
                s.argtypes = [ctypes.c_int]
                s.restype = None
                g.restype = ctypes.c_int
                return s, g
    return None, None


_set_blas_threads, _get_blas_threads = _find_blas_threads()
# The one process-wide BLAS change (README: "What import ember changes in your process").
# Scoping it to Ember's own calls
# instead would cost a get+set+restore per op (1-3 us through ctypes, 9-400 us through
# threadpoolctl) and would still race with other Python threads: OpenBLAS has one global count.
KEEP_BLAS_THREADS = env_flag("EMBER_KEEP_BLAS_THREADS", False)
if _set_blas_threads is not None and not KEEP_BLAS_THREADS:
    _set_blas_threads(1)


def _default_threads():
    """EMBER_NUM_THREADS, else OMP_NUM_THREADS (what PyTorch's pool follows), else the CPUs
    this process may run on, at most 4."""
    n = env_int("EMBER_NUM_THREADS", 0)
    if n:
        return n
    # OpenMP's own variable may hold a nested list ("4,2"): use it only when it is one count
    v = os.environ.get("OMP_NUM_THREADS", "").strip()
    if v.isdigit() and int(v) > 0:
        return int(v)
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


class blas_threads:
    """Context manager: BLAS calls inside run on ``n`` threads (default: one; restored on
    exit; re-entrant). A no-op where the BLAS is not an OpenBLAS Ember can find."""

    __slots__ = ("n", "saved")

    def __init__(self, n=1):
        self.n = n

    def __enter__(self):
        if _set_blas_threads is None:
            self.saved = None
            return self
        self.saved = _get_blas_threads()
        if self.saved != self.n:
            _set_blas_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.saved is not None and self.saved != self.n:
            _set_blas_threads(self.saved)


class _Unchanged:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_UNCHANGED = _Unchanged()


def one_blas_thread():
    """Context manager: BLAS calls inside run on one thread (free when they already do, as
    after Ember's import)."""
    if _get_blas_threads is None or _get_blas_threads() == 1:
        return _UNCHANGED
    return blas_threads(1)


_POOL = None
# Below this much work (in multiply-adds; ~100-200 us on one core) a block loop stays on the
# calling thread: handing blocks to the pool and waiting for them costs 20-100 us on a VM
# (thread wake-ups), and two threads trading the GIL around small NumPy calls lose more.
PAR_MIN_WORK = env_int("EMBER_PAR_MIN_WORK", 1 << 23, minimum=0)
_local = threading.local()  # .depth: parallel_for calls running on this thread


class _Job:
    """One parallel_for call as the workers see it: the shared block queue and, per worker
    slot, a claim (a worker runs its slot only if the caller has not taken it back) and a
    lock the worker releases when done."""

    __slots__ = ("claims", "done", "errors", "fn", "queue")

    def __init__(self, fn, queue, nworkers):
        self.fn = fn
        self.queue = queue
        self.claims: dict = {}
        self.errors: list = []
        self.done = [_thread.allocate_lock() for _ in range(nworkers)]
        for lock in self.done:
            lock.acquire()

    def run(self, slot):
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            for a, b in self.queue:  # a list iterator: next() is atomic under the GIL
                self.fn(a, b, slot)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
            self.errors.append(exc)
            for _ in self.queue:  # drain: the other threads stop after their block
                pass
        finally:
            _local.depth -= 1


class _Pool:
    """Worker threads, each waiting on its own queue (a C ``SimpleQueue``: one put and one
    wake-up per block loop, no futures). The caller runs blocks itself and, when the blocks
    are gone, takes back the slots of workers that have not started yet instead of waiting
    for them to wake up. Measured on the loaded 2-core VM, an empty 2-block loop: 25-50 us
    through a ThreadPoolExecutor (a future and a condition per call), 10-20 us here. Workers
    do not spin before sleeping: a Python thread spinning holds the GIL, which the caller
    then waits for (up to the 5 ms switch interval), and a spin outside the GIL (a compiled
    loop) would still end in a GIL wake-up before the block can run."""

    def __init__(self, workers):
        self.queues = [queue.SimpleQueue() for _ in range(workers)]
        for i, q in enumerate(self.queues):
            t = threading.Thread(target=self._work, args=(q, i + 1), daemon=True)
            t.name = f"ember-kernel-{i + 1}"
            t.start()

    @staticmethod
    def _work(q, slot):
        while True:
            job = q.get()
            if job is None:
                return
            # setdefault is atomic: the first of the worker and the caller owns the slot
            if job.claims.setdefault(slot, "worker") == "worker":
                try:
                    job.run(slot)
                finally:
                    job.done[slot - 1].release()

    def close(self):
        for q in self.queues:
            q.put(None)


def _pool():
    global _POOL
    workers = max(3, _num_threads - 1)
    # a forked child has no pool threads; a larger set_num_threads needs more workers
    if _POOL is None or _POOL[0] != os.getpid() or _POOL[2] < workers:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[1].close()
        _POOL = (os.getpid(), _Pool(workers), workers)
    return _POOL[1]


# Work (in parallel_for's units) from which a kernel with a parallel build (see
# ember.backends.jit.get_parallel) runs on numba's threads: ~30 us of one core. Launching an
# OpenMP loop costs ~2-4 us when its threads are awake, so even a (2048, 256) softmax
# (~280 us on one core) gains from two threads, where parallel_for's hand-off does not pay.
JIT_PAR_MIN_WORK = env_int("EMBER_JIT_PAR_MIN_WORK", 1 << 20, minimum=0)


def parallel_kernel(name: str, work: int):
    """The parallel build of the compiled kernel ``name`` when ``work`` (elements times
    cost) is worth splitting; else None (call the serial kernel). Its ``prange`` loop runs
    on :func:`get_num_threads` threads (one inside a parallel_for block).

    The choice depends on the size only, never on the thread count: LLVM may vectorize a
    row's sum differently in the two builds (a last-ulp difference in float64 softmax), so
    one thread runs the parallel build too, on one numba thread (~1 us more per call), and
    every thread count computes each row with the same machine code.

    Example:
        >>> import numpy as np
        >>> from ember.ops._parallel import parallel_kernel
        >>> k = parallel_kernel("row_sums", 1 << 30)  # None without numba's OpenMP or TBB
        >>> out = np.empty(2)
        >>> if k is not None:
        ...     k(np.ones((2, 3)), out, 1.0)
        ...     print(out.tolist())
        ... else:
        ...     print([3.0, 3.0])
        [3.0, 3.0]
    """
    if work < JIT_PAR_MIN_WORK:
        return None
    k = jit.get_parallel(name)
    if k is None:
        return None
    # numba's thread count is per calling thread: set it for this one when Ember's changed
    # (a block of an outer parallel_for runs it on its own thread only)
    n = 1 if getattr(_local, "depth", 0) else _num_threads
    if getattr(_local, "numba_threads", 0) != n:
        nb = jit._load_numba()
        nb.set_num_threads(max(1, min(n, nb.config.NUMBA_NUM_THREADS)))
        _local.numba_threads = n
    return k


def parallel_for(n: int, block: int, fn, work: int = 1 << 62) -> int:
    """Call ``fn(a, b, slot)`` for the blocks ``[a, b)`` of ``range(n)`` (``block`` items each),
    on up to :func:`get_num_threads` threads pulling blocks from one queue; ``slot`` (0 ..
    threads-1) names the thread running the block. ``fn`` must write only to its own block's
    part of any output, and results must not depend on the slot or on which thread ran a
    block: reductions keep one partial result per block and add them in block order. BLAS
    runs on one thread throughout. Work under ``PAR_MIN_WORK`` stays on the calling thread,
    and so does a loop started from inside a block (a nested call; waiting on the pool from
    a pool thread could deadlock). Returns the number of threads used.

    Example:
        >>> import numpy as np
        >>> from ember.ops._parallel import parallel_for
        >>> out = np.zeros(10)
        >>> def fill(a, b, slot):
        ...     out[a:b] = np.arange(a, b)
        >>> _ = parallel_for(10, 4, fill, work=1 << 30)
        >>> out.tolist()[:4]
        [0.0, 1.0, 2.0, 3.0]
    """
    block = max(1, int(block))
    ranges = [(a, min(a + block, n)) for a in range(0, n, block)]
    nthreads = min(_num_threads, len(ranges)) if work >= PAR_MIN_WORK else 1
    if nthreads > 1 and getattr(_local, "depth", 0):
        nthreads = 1  # nested: this thread's outer loop already occupies the pool
    with one_blas_thread():
        if nthreads <= 1:
            for a, b in ranges:
                fn(a, b, 0)
            return 1
        pool = _pool()
        job = _Job(fn, iter(ranges), nthreads - 1)
        for q in pool.queues[: nthreads - 1]:
            q.put(job)
        try:
            job.run(0)
        finally:
            # workers that have not started get nothing left to do: take their slots back;
            # wait for the others before buffers go out of scope
            for slot in range(1, nthreads):
                if job.claims.setdefault(slot, "caller") == "worker":
                    job.done[slot - 1].acquire()
        if job.errors:
            raise job.errors[0]
    return nthreads


# the GEMMs built on the pool (see _gemm.py), importable from here as before; at the end: _gemm
# imports this module's names
from ._gemm import (  # noqa: E402, F401
    blas_loop_kernel,
    gemm,
    matmul,
    mkl_blocks,
    ones_vector,
    pack_b,
    packed_gemm_available,
    packed_gemm_preferred,
    packed_kernel_available,
    row_sums,
)
