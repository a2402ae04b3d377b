"""Running the row kernels of :mod:`ember.backends.kernels_norm` (softmax, normalization,
cross entropy, last-axis reductions) on several threads.

A kernel sees a C-contiguous ``(rows, n)`` block and writes its own rows of the output. From
``JIT_PAR_MIN_WORK`` the kernel's parallel build runs the whole array, its row loop split over
numba's threads (:func:`run_rows`' ``par``); otherwise blocks fixed by the shape (about
:data:`BLOCK` elements each, never by the thread count) run on Ember's pool. Either way
results are bitwise the same on any number of threads.
"""

from __future__ import annotations

import weakref

import numpy as np

from .._env import env_int
from ..backends import jit
from ..backends.cpu import FAST_FLOATS
from . import _parallel
from ._parallel import get_num_threads, parallel_for, parallel_kernel

__all__: list[str] = []  # helpers only

# Elements per block of the kernels that keep per-block partial sums (layer/RMS norm weight
# gradients): fixed by the shape, so their sums are added in the same order on any number of
# threads. Each block costs a Python call and a kernel dispatch (~2-3 us).
BLOCK = env_int("EMBER_NORM_BLOCK", 1 << 18, minimum=1)
# Work per element as parallel_for counts it (about 30 ps of one core per unit: a float32
# last-axis sum costs 2, a softmax 16).
_COST = 4
# Row kernels split from parallel_for's general threshold (about 250 us on one core), in
# blocks of at least ~30 us each, at most _PAR_BLOCKS (few calls) and at least two per
# thread: a worker descheduled by another process then holds up at most a small block. A
# lower threshold (2M units, ~60 us) was tried: on the idle 2-core VM two threads then took
# longer than one for a (16, 128, 1024) last-axis sum (122 vs 106 us), a (2048, 256) layer
# norm (177 vs 119 us) and cross-entropy (279 vs 259 us), while softmax, which splits at
# either threshold, gained (302 -> 220 us): the hand-off (~10 us) is not the only cost.
ROW_PAR_MIN = env_int("EMBER_ROW_PAR_MIN", 1 << 23, minimum=0)
_ROW_BLOCK_WORK = 1 << 20
_PAR_BLOCKS = 8


def kernel(name: str, *arrays):
    """The compiled kernel ``name`` when every array is a NumPy float32/float64 array of one
    dtype, else None (the op then runs its NumPy code)."""
    d = arrays[0].dtype
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != d or d not in FAST_FLOATS:
            return None
    return jit.get(name)


def rows(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` as a C-contiguous (rows, n) matrix (a copy only when ``x`` is not contiguous)."""
    if x.ndim == 2 and not x.flags.c_contiguous:  # (a transposed matrix: the tiled copy)
        from ._layout import c_order

        return c_order(x)
    return np.ascontiguousarray(x).reshape(-1, n)


def block_rows(n: int) -> int:
    """Rows per fixed block for rows of ``n`` elements (see :data:`BLOCK`)."""
    return max(1, BLOCK // max(n, 1))


def serial(work: int) -> bool:
    """Whether :func:`run_rows` with ``par`` would run that kernel's serial build once on the
    whole arrays (small work): callers of tiny arrays then call it themselves, skipping the
    block closure and the argument tuple (~1-2 us of a 10 us layer norm)."""
    return work < _parallel.JIT_PAR_MIN_WORK and work < ROW_PAR_MIN


def run_rows(
    fn, nrows: int, n: int, cost: int = _COST, fixed: bool = False, par: tuple | None = None
) -> None:
    """``fn(r0, r1)`` over row blocks, on Ember's threads when the array is large.

    ``fixed``: the blocks are those of :func:`block_rows` whatever the threads (for kernels
    with per-block partial results); otherwise each row's result must depend on that row
    only, and the split is free: one call on one thread, a few blocks on several.
    ``par``: ``(kernel_name, args)`` for the whole array; when that kernel's parallel build
    applies (see :func:`ember.ops._parallel.parallel_kernel`) it runs instead of ``fn``,
    splitting the rows over numba's threads (a smaller threshold than the pool's), and
    where one serial call does, the serial build runs on these arrays (``fn`` must then be
    that kernel on row slices of them)."""
    work = cost * nrows * n
    if par is not None:
        k = parallel_kernel(par[0], work)
        if k is not None:
            k(*par[1])
            return
    threads = get_num_threads()
    if fixed:
        per = block_rows(n)
    elif work < ROW_PAR_MIN or threads < 2 or nrows < 2:
        if par is not None:
            # the serial build on the whole arrays: ``fn(0, nrows)`` would compute the same
            # through slices, whose new array objects cost numba's dispatcher ~0.3 us each
            # (a (4, 1024) last-axis sum: 2.6 -> 1.9 us in the kernel path)
            jit.get(par[0])(*par[1])
        else:
            fn(0, nrows)
        return
    else:
        per = -(-nrows // min(_PAR_BLOCKS, max(2 * threads, work // _ROW_BLOCK_WORK)))
    if nrows <= per:
        fn(0, nrows)
        return
    # parallel_for's own threshold is for loops of many small calls: these blocks pass it
    parallel_for(nrows, per, lambda a, b, slot: fn(a, b), 1 << 62 if work >= ROW_PAR_MIN else 0)


# -- layer norm statistics kept for the backward --------------------------------------------
# (id(x), k, eps) -> (weak reference to x, (2, rows) float64 mean and rstd). The primitive's
# record saves its inputs only (its output stays free for in-place use, as in PyTorch), so the
# forward's statistics ride beside it: an entry lives as long as its input array (removed by
# the weak reference's callback), every forward on that array replaces or drops it, and the
# backward checks that the array is the very object the forward saw.
_STATS: dict = {}


def save_stats(x: np.ndarray, k: int, eps: float, stats: np.ndarray | None) -> None:
    """Keep ``stats`` (mean and rstd per row, from a layer norm forward over ``x``'s last
    ``k`` axes) for the backward; ``None`` drops any kept for ``x``."""
    key = (id(x), k, eps)
    if stats is None:
        if _STATS:
            _STATS.pop(key, None)
        return

    def forget(_ref: weakref.ref, key: tuple = key) -> None:
        _STATS.pop(key, None)

    try:
        ref = weakref.ref(x, forget)
    except TypeError:  # pragma: no cover - an array type without weak references
        return
    _STATS[key] = (ref, stats)


def saved_stats(x: np.ndarray, k: int, eps: float) -> np.ndarray | None:
    """The statistics :func:`save_stats` kept for this very array ``x``, or None."""
    e = _STATS.get((id(x), k, eps))
    if e is None or e[0]() is not x:
        return None
    return e[1]
