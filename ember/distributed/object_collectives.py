"""Collectives on Python objects (``all_gather_object`` and friends, PyTorch's names).

Objects travel as plain data (see :mod:`ember.distributed._objects`: numbers, strings,
containers, arrays and Tensors; no pickle). Each call first exchanges the buffer sizes,
then the buffers, both under the process group's timeout.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._group import _current, _issue
from ._objects import decode, encode
from .collectives import _check_rank, _skip

__all__ = ["all_gather_object", "broadcast_object_list", "gather_object", "scatter_object_list"]


def _sizes(w, n_bytes: int, what: str) -> np.ndarray:
    mine = np.array([n_bytes], np.int64)
    every = np.zeros(w.backend.world_size, np.int64)
    _issue(what, [w.backend.allgather(mine, every)], None, False, w)
    return every


def _padded(blob: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, np.uint8)
    out[: blob.size] = blob
    return out


def _check_out_list(lst, n: int, fn: str, what: str) -> None:
    if not isinstance(lst, list) or len(lst) != n:
        got = len(lst) if isinstance(lst, list) else type(lst).__name__
        raise ValueError(f"{fn}: {what} must be a list of {n} entries (one per rank), got {got}")


def all_gather_object(object_list: list, obj: Any, group=None) -> None:
    """Fill ``object_list[r]`` with rank r's ``obj`` on every rank.

    Example:
        >>> import ember.distributed as dist  # doctest: +SKIP
        >>> out = [None] * dist.get_world_size()  # doctest: +SKIP
        >>> dist.all_gather_object(out, {"rank": dist.get_rank()})  # doctest: +SKIP
        >>> out  # doctest: +SKIP
        [{'rank': 0}, {'rank': 1}]
    """
    fn = "all_gather_object"
    if _skip(group, fn):
        return None
    w = _current(group)
    n = w.backend.world_size
    _check_out_list(object_list, n, fn, "object_list")
    blob = encode(obj)
    sizes = _sizes(w, blob.size, fn)
    big = int(sizes.max())
    every = np.empty((n, big), np.uint8)
    _issue(fn, [w.backend.allgather(_padded(blob, big), every)], None, False, w)
    for r in range(n):
        object_list[r] = decode(every[r, : sizes[r]])
    return None


def gather_object(
    obj: Any,
    object_gather_list: list | None = None,
    dst: int | None = None,
    group=None,
    group_dst: int | None = None,
) -> None:
    """Collect every rank's ``obj`` into ``object_gather_list`` on rank ``dst`` (global
    rank; default 0). Other ranks pass None."""
    fn = "gather_object"
    if _skip(group, fn):
        return None
    w = _current(group)
    if dst is None and group_dst is None:
        dst = 0
    root = _check_rank(dst, w, fn, "dst", group_dst)
    n = w.backend.world_size
    here = w.backend.rank == root
    if here:
        _check_out_list(object_gather_list, n, fn, "object_gather_list")
    elif object_gather_list:
        raise ValueError(f"{fn}: object_gather_list must be None on ranks other than dst")
    blob = encode(obj)
    sizes = _sizes(w, blob.size, fn)
    big = int(sizes.max())
    every = np.empty((n, big), np.uint8) if here else None
    _issue(fn, [w.backend.gather(_padded(blob, big), every, root)], None, False, w)
    if here:
        assert object_gather_list is not None and every is not None
        for r in range(n):
            object_gather_list[r] = decode(every[r, : sizes[r]])
    return None


def broadcast_object_list(
    object_list: list, src: int | None = None, group=None, device=None, group_src: int | None = None
) -> None:
    """Replace ``object_list``'s entries on every rank by those of rank ``src`` (global
    rank; default 0); the lists must have the same length on every rank."""
    fn = "broadcast_object_list"
    if _skip(group, fn):
        return None
    w = _current(group)
    if not isinstance(object_list, list):
        raise TypeError(f"{fn}: object_list must be a list, got {type(object_list).__name__}")
    if src is None and group_src is None:
        src = 0
    root = _check_rank(src, w, fn, "src", group_src)
    here = w.backend.rank == root
    size = np.array([encode(object_list).size if here else 0], np.int64)
    blob = encode(object_list) if here else None
    _issue(fn, [w.backend.broadcast(size, root)], None, False, w)
    buf = blob if blob is not None else np.empty(int(size[0]), np.uint8)
    _issue(fn, [w.backend.broadcast(buf, root)], None, False, w)
    if not here:
        got = decode(buf)
        if len(got) != len(object_list):
            raise ValueError(
                f"{fn}: rank {w.ranks[root]} sent {len(got)} objects but this rank's "
                f"object_list has {len(object_list)}"
            )
        object_list[:] = got
    return None


def scatter_object_list(
    scatter_object_output_list: list,
    scatter_object_input_list: list | None = None,
    src: int | None = None,
    group=None,
    group_src: int | None = None,
) -> None:
    """Rank r receives ``scatter_object_input_list[r]`` of rank ``src`` into
    ``scatter_object_output_list[0]``."""
    fn = "scatter_object_list"
    if _skip(group, fn):
        return None
    w = _current(group)
    if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
        raise ValueError(f"{fn}: scatter_object_output_list must be a non-empty list")
    if src is None and group_src is None:
        src = 0
    root = _check_rank(src, w, fn, "src", group_src)
    n = w.backend.world_size
    here = w.backend.rank == root
    if here:
        _check_out_list(scatter_object_input_list, n, fn, "scatter_object_input_list")
        assert scatter_object_input_list is not None
        blobs = [encode(o) for o in scatter_object_input_list]
        sizes = np.array([b.size for b in blobs], np.int64)
    else:
        sizes = np.zeros(n, np.int64)
    _issue(fn, [w.backend.broadcast(sizes, root)], None, False, w)
    big = int(sizes.max())
    send = np.stack([_padded(b, big) for b in blobs]) if here else None
    mine = np.empty(big, np.uint8)
    _issue(fn, [w.backend.scatter(send, mine, root)], None, False, w)
    scatter_object_output_list[0] = decode(mine[: sizes[w.backend.rank]])
    return None
