"""Collectives on Tensors with PyTorch's names and semantics (``torch.distributed``).

Tensors are updated in place. A C-contiguous tensor's own buffer is handed to the backend
(no copy); other layouts go through a contiguous staging copy that is written back when the
operation completes. ``async_op=True`` returns a :class:`Work`; wait on it before reading
the result.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ._group import GroupMember, _current, _issue, _World
from .errors import DistError

__all__ = [
    "ReduceOp",
    "all_gather",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "gather",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "scatter",
]


class ReduceOp(enum.Enum):
    """How values from all ranks combine (``AVG`` is a sum divided by the world size)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


def _op_name(op, fn: str) -> str:
    if isinstance(op, ReduceOp):
        return op.value
    if isinstance(op, str) and op.lower() in {o.value for o in ReduceOp}:
        return op.lower()
    raise ValueError(f"{fn}: op must be a ReduceOp, got {op!r}")


def _check_tensor(t, fn: str, what: str = "tensor") -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: {what} must be an ember Tensor, got {type(t).__name__}")
    return t


def _check_rank(r, world: _World, fn: str, what: str, group_r=None) -> int:
    """The rank inside ``world`` of the global rank ``r``, or ``group_r`` (a rank inside
    the group, PyTorch's ``group_src``/``group_dst``)."""
    if group_r is not None:
        n = world.backend.world_size
        bad = isinstance(group_r, bool) or not isinstance(group_r, (int, np.integer))
        if bad or not 0 <= group_r < n:
            raise ValueError(f"{fn}: group_{what} must be a rank in [0, {n - 1}], got {group_r!r}")
        if r is not None and world.ranks[int(group_r)] != r:
            raise ValueError(f"{fn}: {what}={r} and group_{what}={group_r} name different ranks")
        return int(group_r)
    if r is None:
        raise ValueError(f"{fn}: pass {what} (a global rank) or group_{what}")
    n = world.root.backend.world_size
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < n:
        raise ValueError(f"{fn}: {what} must be a rank in [0, {n - 1}], got {r!r}")
    g = world.group_rank(int(r))
    if g is None:
        raise ValueError(
            f"{fn}: {what}={r} is not a member of the group (its global ranks are "
            f"{world.ranks}); {what} is a global rank, group_{what} a rank inside the group"
        )
    return g


def _skip(group, fn: str) -> bool:
    """PyTorch's behaviour on a rank outside ``group``: warn and do nothing."""
    if group is not GroupMember.NON_GROUP_MEMBER:
        return False
    warnings.warn(
        f"{fn}: running a collective on a group this rank is not part of; it does nothing",
        stacklevel=3,
    )
    return True


class _Staged:
    """A contiguous array for the backend and how to write it back into the tensor."""

    __slots__ = ("arr", "cast", "tensor")

    def __init__(self, t: Tensor, arr: np.ndarray, cast: bool):
        self.tensor, self.arr, self.cast = t, arr, cast

    def write_back(self) -> None:
        d = self.tensor._data
        if self.arr is not d:
            if not d.flags.writeable:
                raise DistError("collective: the output tensor is read-only")
            np.copyto(d, self.arr.reshape(d.shape), casting="unsafe")
        self.tensor._version[0] += 1


def _stage(t: Tensor, world: _World, op: str | None, fn: str) -> _Staged:
    """The buffer to communicate for ``t``, reduced with ``op`` (None: moved only)."""
    d = t._data
    be = world.backend
    if op is not None and op != "avg" and not be.supports(d.dtype, op):
        if d.dtype.kind == "f" or str(d.dtype) == "bfloat16":
            # NOTE: half types have no MPI reduction: reduce in float32 and round back.
            return _Staged(t, np.ascontiguousarray(d, dtype=np.float32), True)
        raise TypeError(f"{fn}: reduction {op!r} is not supported for dtype {d.dtype}")
    if op == "avg":
        if d.dtype.kind not in "fc" and str(d.dtype) != "bfloat16":
            raise TypeError(f"{fn}: ReduceOp.AVG needs a floating-point tensor, got {d.dtype}")
        if not be.supports(d.dtype, "sum"):
            return _Staged(t, np.ascontiguousarray(d, dtype=np.float32), True)
    if d.flags.c_contiguous and d.flags.writeable:
        return _Staged(t, d, False)
    return _Staged(t, np.ascontiguousarray(d), False)


def _reduce_op(op: str) -> str:
    return "sum" if op == "avg" else op


def _finish_avg(staged: _Staged, op: str, n: int):
    def finish():
        if op == "avg":
            staged.arr /= n
        staged.write_back()

    return finish


def all_reduce(tensor: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduce ``tensor`` over all ranks, in place on every rank.

    Example:
        >>> import ember, ember.distributed as dist  # doctest: +SKIP
        >>> t = ember.tensor([float(dist.get_rank())])  # doctest: +SKIP
        >>> dist.all_reduce(t, dist.ReduceOp.SUM)  # doctest: +SKIP
    """
    fn = "all_reduce"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    name = _op_name(op, fn)
    s = _stage(tensor, w, name, fn)
    req = w.backend.allreduce(s.arr, _reduce_op(name))
    return _issue(fn, [req], _finish_avg(s, name, w.backend.world_size), async_op, w)


def broadcast(
    tensor: Tensor,
    src: int | None = None,
    group=None,
    async_op: bool = False,
    group_src: int | None = None,
):
    """Copy ``tensor`` from rank ``src`` to every rank of ``group`` (in place).

    ``src`` is a global rank; ``group_src`` a rank inside ``group``.
    """
    fn = "broadcast"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    src = _check_rank(src, w, fn, "src", group_src)
    s = _stage(tensor, w, None, fn)
    req = w.backend.broadcast(s.arr, src)
    return _issue(fn, [req], s.write_back, async_op, w)


def reduce(
    tensor: Tensor,
    dst: int | None = None,
    op=ReduceOp.SUM,
    group=None,
    async_op: bool = False,
    group_dst: int | None = None,
):
    """Reduce ``tensor`` over all ranks into ``tensor`` on rank ``dst``."""
    fn = "reduce"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    dst = _check_rank(dst, w, fn, "dst", group_dst)
    name = _op_name(op, fn)
    s = _stage(tensor, w, name, fn)
    req = w.backend.reduce(s.arr, _reduce_op(name), dst)
    if w.backend.rank != dst:
        return _issue(fn, [req], None, async_op, w)
    return _issue(fn, [req], _finish_avg(s, name, w.backend.world_size), async_op, w)


def _check_list(lst, n: int, like: Tensor, fn: str, what: str) -> list[Tensor]:
    if not isinstance(lst, (list, tuple)) or len(lst) != n:
        got = len(lst) if isinstance(lst, (list, tuple)) else type(lst).__name__
        raise ValueError(f"{fn}: {what} must be a list of {n} tensors (one per rank), got {got}")
    for i, t in enumerate(lst):
        _check_tensor(t, fn, f"{what}[{i}]")
        if tuple(t.shape) != tuple(like.shape) or t._data.dtype != like._data.dtype:
            raise ValueError(
                f"{fn}: {what}[{i}] has shape {tuple(t.shape)} and dtype {t.dtype}; "
                f"expected shape {tuple(like.shape)} and dtype {like.dtype}"
            )
    return list(lst)


def _scatter_into(out: np.ndarray, tensors: Sequence[Tensor]):
    def finish():
        blocks = out.reshape(len(tensors), -1)
        for t, b in zip(tensors, blocks):
            np.copyto(t._data, b.reshape(t._data.shape), casting="unsafe")
            t._version[0] += 1

    return finish


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` with rank r's ``tensor`` on every rank."""
    fn = "all_gather"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    outs = _check_list(tensor_list, w.backend.world_size, tensor, fn, "tensor_list")
    s = _stage(tensor, w, None, fn)
    buf = np.empty((len(outs),) + s.arr.shape, s.arr.dtype)
    req = w.backend.allgather(s.arr, buf)
    return _issue(fn, [req], _scatter_into(buf, outs), async_op, w)


def _stacked_shape(big: Tensor, small: Tensor, n: int, fn: str, big_name: str) -> None:
    bs, ss = tuple(big.shape), tuple(small.shape)
    ok = bs == (n, *ss) or (len(ss) > 0 and bs == (n * ss[0], *ss[1:]))
    if len(ss) == 0:
        ok = ok or bs == (n,)
    if not ok or big._data.dtype != small._data.dtype:
        raise ValueError(
            f"{fn}: {big_name} has shape {bs} and dtype {big.dtype}; expected world_size ({n}) "
            f"times the shape {ss} (stacked or concatenated on dim 0) and dtype {small.dtype}"
        )


def all_gather_into_tensor(
    output_tensor: Tensor, input_tensor: Tensor, group=None, async_op: bool = False
):
    """Every rank's ``input_tensor`` concatenated (or stacked) on dim 0 into ``output_tensor``."""
    fn = "all_gather_into_tensor"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(output_tensor, fn, "output_tensor")
    _check_tensor(input_tensor, fn, "input_tensor")
    _stacked_shape(output_tensor, input_tensor, w.backend.world_size, fn, "output_tensor")
    s_in = _stage(input_tensor, w, None, fn)
    s_out = _stage(output_tensor, w, None, fn)
    req = w.backend.allgather(s_in.arr, s_out.arr)
    return _issue(fn, [req], s_out.write_back, async_op, w)


def reduce_scatter_tensor(
    output: Tensor, input: Tensor, op=ReduceOp.SUM, group=None, async_op: bool = False
):
    """Reduce ``input`` (world_size blocks on dim 0) over ranks; rank r gets block r."""
    fn = "reduce_scatter_tensor"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(output, fn, "output")
    _check_tensor(input, fn, "input")
    _stacked_shape(input, output, w.backend.world_size, fn, "input")
    name = _op_name(op, fn)
    s_in = _stage(input, w, name, fn)
    if s_in.arr is input._data:
        s_in = _Staged(input, input._data.copy(), False)  # the input must stay unchanged
    s_out = _stage(output, w, name, fn)
    if s_out.arr.dtype != s_in.arr.dtype:
        s_out = _Staged(output, np.empty(output._data.shape, s_in.arr.dtype), True)
    req = w.backend.reduce_scatter(s_in.arr, s_out.arr, _reduce_op(name))
    return _issue(fn, [req], _finish_avg(s_out, name, w.backend.world_size), async_op, w)


def reduce_scatter(
    output: Tensor, input_list: list[Tensor], op=ReduceOp.SUM, group=None, async_op: bool = False
):
    """Reduce ``input_list[r]`` over all ranks into ``output`` on rank r."""
    fn = "reduce_scatter"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(output, fn, "output")
    ins = _check_list(input_list, w.backend.world_size, output, fn, "input_list")
    name = _op_name(op, fn)
    staged = _stage(output, w, name, fn)
    dtype = staged.arr.dtype
    buf = np.stack([np.asarray(t._data, dtype=dtype) for t in ins])
    if staged.arr is output._data:
        staged = _Staged(output, np.empty_like(output._data), False)
    req = w.backend.reduce_scatter(buf, staged.arr, _reduce_op(name))
    return _issue(fn, [req], _finish_avg(staged, name, w.backend.world_size), async_op, w)


def gather(
    tensor: Tensor,
    gather_list: list[Tensor] | None = None,
    dst: int | None = None,
    group=None,
    async_op: bool = False,
    group_dst: int | None = None,
):
    """Collect every rank's ``tensor`` into ``gather_list`` on rank ``dst``."""
    fn = "gather"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    if dst is None and group_dst is None:
        dst = 0
    dst = _check_rank(dst, w, fn, "dst", group_dst)
    s = _stage(tensor, w, None, fn)
    if w.backend.rank == dst:
        outs = _check_list(gather_list, w.backend.world_size, tensor, fn, "gather_list")
        buf = np.empty((len(outs),) + s.arr.shape, s.arr.dtype)
        req = w.backend.gather(s.arr, buf, dst)
        return _issue(fn, [req], _scatter_into(buf, outs), async_op, w)
    if gather_list:
        raise ValueError(f"{fn}: gather_list must be None or empty on non-destination ranks")
    return _issue(fn, [w.backend.gather(s.arr, None, dst)], None, async_op, w)


def scatter(
    tensor: Tensor,
    scatter_list: list[Tensor] | None = None,
    src: int | None = None,
    group=None,
    async_op: bool = False,
    group_src: int | None = None,
):
    """Rank r receives ``scatter_list[r]`` of rank ``src`` into ``tensor``."""
    fn = "scatter"
    if _skip(group, fn):
        return None
    w = _current(group)
    _check_tensor(tensor, fn)
    if src is None and group_src is None:
        src = 0
    src = _check_rank(src, w, fn, "src", group_src)
    s = _stage(tensor, w, None, fn)
    buf = None
    if w.backend.rank == src:
        ins = _check_list(scatter_list, w.backend.world_size, tensor, fn, "scatter_list")
        buf = np.stack([t._data for t in ins])
    elif scatter_list:
        raise ValueError(f"{fn}: scatter_list must be None or empty on non-source ranks")
    req = w.backend.scatter(buf, s.arr, src)
    return _issue(fn, [req], s.write_back, async_op, w)


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None):
    """Wait until every rank has reached this call (bounded by ``timeout`` seconds or
    ``timedelta``, default the group's)."""
    if _skip(group, "barrier"):
        return None
    if device_ids not in (None, []):
        raise ValueError("barrier: device_ids are for GPU backends; leave them unset on CPU")
    w = _current(group)
    work = _issue("barrier", [w.backend.barrier()], None, True, w)
    if async_op:
        return work
    work.wait(timeout)
    return None
