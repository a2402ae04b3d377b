"""Skipping kernels in dry-run traces.

``ember.compile`` traces a function two to four times (at the batch size and at neighbouring
sizes, to find the symbolic batch dimension) after the real eager call, and every trace is
rolled back. Only the *structure* of a trace matters: which primitives run, on which shapes,
with which params. Python code that reads a tensor's value is a graph break anyway, so the
values of a trace are never observed and the kernels need not run: their outputs are zeros of
the shape and dtype their shape rule gives. GEMMs, convolutions and recurrent kernels dominate
a training step; skipping them makes a trace cost a fraction of a step, so the first compiled
call costs about one eager step plus the passes instead of three or four steps.

Only primitives that are safe to fake are skipped: ones with a shape rule, not views, layout
changes, creations or in-place writes, not data-dependent, with floating outputs only (an
index output could feed a gather, whose bounds matter even in a dry run) of at least
``_MIN_SIZE`` elements (below that the kernel costs less than the shape rule).
``EMBER_COMPILE_TRACE_KERNELS=1`` runs every kernel in traces (for debugging a trace).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._dtype import from_numpy_dtype
from .._env import env_flag
from .._tensor import Tensor
from ..ops._core import AbstractValue, Primitive

__all__ = ["fake_outputs", "is_fake"]

_KINDS = frozenset({"elementwise", "reduction", "contraction", "opaque"})
# layout primitives that build a fresh array from their input (no view, no in-place write):
# a slice's gradient scattered into zeros of the sliced tensor's shape is as costly as a
# kernel (three full-size arrays per ``qkv.split(...)`` in attention)
_FRESH_LAYOUT = frozenset({"index_put_zeros"})
_MIN_SIZE = 4096  # smaller outputs cost less to compute than to reason about


def _skippable(prim: Primitive) -> bool:
    return (
        (prim.kind in _KINDS or prim.name in _FRESH_LAYOUT)
        and prim.abstract is not None
        and not prim.data_dependent
    )


def _aval(a: Any) -> Any:
    if isinstance(a, Tensor):
        a = a._data
    if isinstance(a, np.ndarray):
        return AbstractValue(a.shape, from_numpy_dtype(a.dtype))
    return a


def fake_outputs(prim: Primitive, args: Sequence[Any], params: dict) -> Any | None:
    """Zeros in place of ``prim``'s outputs on ``args`` (tensors, arrays or constants), or
    None when it must really run.

    Example:
        >>> import numpy as np
        >>> from ember.ops.nn import linear_p
        >>> x, w = np.ones((64, 128), np.float32), np.ones((256, 128), np.float32)
        >>> fake_outputs(linear_p, [x, w, None], {}).shape
        (64, 256)
    """
    if not _skippable(prim) or env_flag("EMBER_COMPILE_TRACE_KERNELS", False):
        return None
    try:
        out = prim.abstract(*[_aval(a) for a in args], **params)
    except Exception:  # noqa: BLE001  (the real kernel raises the user-facing error)
        return None
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if len(outs) != prim.n_out or not all(isinstance(o, AbstractValue) for o in outs):
        return None
    if not all(o.dtype.is_floating_point and o.dtype.np is not None for o in outs):
        return None
    if sum(int(np.prod(o.shape)) for o in outs) < _MIN_SIZE:
        return None
    arrs = [_zeros(o.shape, o.dtype.np) for o in outs]
    return arrs[0] if prim.n_out == 1 else tuple(arrs)


# Fake outputs from this many bytes are fresh anonymous mappings: their pages are zero until
# touched and most never are (the next equations are skipped too). np.zeros would memset them:
# Ember keeps glibc from mmap-ing arrays under 64 MiB (ember/backends/cpu.py), so calloc clears
# heap memory, and a GPT step's dry-run traces spent 0.73 s doing that.
_MMAP_MIN = 1 << 18


def _zeros(shape: tuple, dtype: np.dtype) -> np.ndarray:
    n = 1
    for s in shape:
        n *= s
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes < _MMAP_MIN:
        return np.zeros(shape, dtype)
    # the array holds the mapping (its buffer's owner): unmapped when the array is freed
    return np.frombuffer(_FakePages(-1, nbytes), dtype).reshape(shape)


class _FakePages(mmap.mmap):
    """The anonymous mapping under a large fake output (a type of its own, so that
    :func:`is_fake` can tell a fake's memory from any other buffer)."""


def is_fake(a: np.ndarray) -> bool:
    """Whether ``a`` is (a view of) a large fake output of a dry-run trace: the real kernel
    returns a fresh array there, so ``a.base`` says nothing about aliasing.

    Example:
        >>> import numpy as np
        >>> from ember.compiler._abstract import _zeros, is_fake
        >>> is_fake(_zeros((512, 512), np.float32)), is_fake(np.ones((512, 512))[1:])
        (True, False)
    """
    b = a.base
    while isinstance(b, np.ndarray):
        b = b.base
    if isinstance(b, memoryview):  # (np.frombuffer keeps a memoryview of the mapping)
        b = b.obj
    return isinstance(b, _FakePages)
