"""``DistributedDataParallel``: one model replica per process, gradients averaged.

Each rank runs forward/backward on its own share of the batch. As backward produces a
parameter's gradient (its post-accumulate hook), the gradient is copied into a flat bucket;
a full bucket is all-reduced with a non-blocking collective, launched in bucket order so
that every rank issues the same collectives. When the last bucket has been launched the
reductions are waited on and the averaged gradients written back, so ``optimizer.step()``
sees the same gradients on every rank.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from ... import distributed as dist
from ..._tensor import Tensor, _new
from ...autograd import no_grad
from ..modules.module import Module
from ._structure import check_same_structure

__all__ = ["DistributedDataParallel"]


class _Bucket:
    __slots__ = ("flat", "index", "n_ready", "offsets", "params", "ready", "used", "work")

    def __init__(self, index: int, params: list, dtype, with_flags: bool):
        self.index = index
        self.params = params  # [(name, param)]
        sizes = [p.numel() for _, p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        total = int(self.offsets[-1])
        # NOTE: one trailing slot per parameter counts the ranks that used it.
        self.flat = np.zeros(total + (len(params) if with_flags else 0), dtype)
        self.used = self.flat[total:]
        self.ready = [False] * len(params)
        self.n_ready = 0
        self.work: dist.Work | None = None

    def reset(self) -> None:
        self.ready = [False] * len(self.params)
        self.n_ready = 0
        self.work = None
        self.used[:] = 0


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training; call it like the module.

    At construction the model structure is checked across ranks and rank 0's parameters
    and buffers are broadcast. Gradients are averaged over ranks during ``backward``;
    ``no_sync()`` skips that for gradient accumulation. With ``find_unused_parameters``
    parameters that the forward pass did not use take part with zero gradient (and keep
    ``grad=None`` if no rank used them). ``broadcast_buffers`` copies rank 0's buffers
    (e.g. BatchNorm running statistics) before each forward.

    Example:
        >>> import ember, ember.distributed as dist  # doctest: +SKIP
        >>> dist.init_process_group("mpi")  # doctest: +SKIP
        >>> from ember.nn.parallel import DistributedDataParallel as DDP
        >>> model = DDP(ember.nn.Linear(4, 2))  # doctest: +SKIP
        >>> model(ember.randn(8, 4)).sum().backward()  # grads now averaged  # doctest: +SKIP
    """

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group=None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
    ):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: module must be an ember.nn.Module, got "
                f"{type(module).__name__}"
            )
        if device_ids not in (None, [], ["cpu"]) or output_device not in (None, "cpu"):
            raise ValueError(
                "DistributedDataParallel: device_ids/output_device are for GPU replicas; "
                "leave them unset on CPU"
            )
        if not dist.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel: the default process group has not been initialized;"
                " call ember.distributed.init_process_group() first"
            )
        cap = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if cap <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got {cap}")
        self.module = module
        self.dim = dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        if process_group is dist.GroupMember.NON_GROUP_MEMBER:
            raise ValueError(
                "DistributedDataParallel: this rank is not a member of process_group (new_group "
                "returned GroupMember.NON_GROUP_MEMBER here); wrap the model only on its members"
            )
        self.process_group = process_group
        self._world = dist.get_world_size(process_group)
        check_same_structure(module, dist, group=process_group)
        self._sync_state(params=True)
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._buckets = self._make_buckets(params, int(cap * 1024 * 1024))
        self._where: dict[int, tuple[_Bucket, int]] = {}
        for b in self._buckets:
            for i, (_, p) in enumerate(b.params):
                self._where[id(p)] = (b, i)
        self._armed = False  # a synced forward happened; its backward will reduce
        self._next = 0  # the next bucket to launch (buckets go out in order on every rank)
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for _, p in params]

    # ----- construction -------------------------------------------------------------------
    def _make_buckets(self, params, cap_bytes: int) -> list[_Bucket]:
        # Reverse registration order approximates the order backward produces gradients.
        groups: list[tuple[np.dtype, list]] = []
        size = 0
        for name, p in reversed(params):
            dtype = p._data.dtype
            nbytes = p._data.nbytes
            if not groups or groups[-1][0] != dtype or (size + nbytes > cap_bytes and size):
                groups.append((dtype, []))
                size = 0
            groups[-1][1].append((name, p))
            size += nbytes
        return [
            _Bucket(i, ps, dt, self.find_unused_parameters) for i, (dt, ps) in enumerate(groups)
        ]

    def _sync_state(self, params: bool) -> None:
        """Broadcast rank 0's parameters (at start) and buffers (each forward)."""
        tensors: list[Tensor] = list(self.module.parameters()) if params else []
        tensors += [b for b in self.module.buffers() if isinstance(b, Tensor)]
        if self._world == 1 or not tensors:
            return
        # the group's first member is the source, whatever its global rank
        pg = self.process_group
        works = [dist.broadcast(t, group=pg, async_op=True, group_src=0) for t in tensors]
        for w in works:
            w.wait()

    # ----- forward ------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers:
            self._sync_state(params=False)
        out = self.module(*args, **kwargs)
        from ...ops._core import _state

        if _state.grad_enabled and self.require_backward_grad_sync and self._buckets:
            self._prepare(out)
        return out

    def _check_previous_reduction(self) -> None:
        if not self._armed:
            return
        started = any(b.n_ready for b in self._buckets)
        if started:
            missing = [n for b in self._buckets for (n, _), r in zip(b.params, b.ready) if not r]
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior "
                "iteration before starting a new one: these parameters received no gradient "
                f"in the last backward: {shown}. Pass find_unused_parameters=True when the "
                "forward pass does not use every parameter, and make sure every rank's "
                "loss depends on the outputs of the forward pass."
            )
        self._armed = False  # a forward without backward (e.g. evaluation): start over

    def _prepare(self, out) -> None:
        for b in self._buckets:
            b.reset()
        self._next = 0
        self._armed = True
        if self.find_unused_parameters:
            reached = _reachable_leaves(out)
            for b in self._buckets:
                for i, (_, p) in enumerate(b.params):
                    if id(p) not in reached:
                        b.flat[b.offsets[i] : b.offsets[i + 1]] = 0
                        self._mark_ready(b, i)
            self._launch_ready()

    # ----- backward -----------------------------------------------------------------------
    def _grad_ready(self, p: Tensor) -> None:
        if not self._armed:
            return  # under no_sync(), or a backward not preceded by our forward
        b, i = self._where[id(p)]
        if b.ready[i]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {b.params[i][0]!r} received its gradient "
                "twice in one iteration (a second backward through the same forward); "
                "use no_sync() for all but the last backward"
            )
        grad = p.grad
        assert grad is not None  # the hook runs right after accumulation
        g = grad._data
        b.flat[b.offsets[i] : b.offsets[i + 1]] = g.reshape(-1)
        if self.find_unused_parameters:
            b.used[i] = 1
        self._mark_ready(b, i)
        self._launch_ready()

    def _mark_ready(self, b: _Bucket, i: int) -> None:
        b.ready[i] = True
        b.n_ready += 1

    def _launch_ready(self) -> None:
        bs = self._buckets
        while self._next < len(bs) and bs[self._next].n_ready == len(bs[self._next].params):
            b = bs[self._next]
            b.work = dist.all_reduce(
                _new(b.flat), dist.ReduceOp.SUM, self.process_group, async_op=True
            )
            self._next += 1
        if self._next == len(bs):
            self._finish()
        elif self._next:
            # MPI advances non-blocking collectives only inside MPI calls: poke the oldest
            # one still in flight each time backward hands us a gradient.
            for b in bs[: self._next]:
                if b.work is not None and not b.work.is_completed():
                    break

    def _finish(self) -> None:
        """Wait for every bucket and write the averaged gradients back."""
        self._armed = False
        n = self._world
        with no_grad():
            for b in self._buckets:
                if b.work is not None:
                    b.work.wait()
                    b.work = None
                for i, (_, p) in enumerate(b.params):
                    if self.find_unused_parameters and b.used[i] == 0:
                        continue  # no rank used it: leave its gradient alone
                    g = b.flat[b.offsets[i] : b.offsets[i + 1]].reshape(p._data.shape) / n
                    p.grad = _new(g.astype(p._data.dtype, copy=False))

    # ----- user API -----------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Accumulate gradients locally (no communication) inside the block; the first
        synced backward after it averages the accumulated gradients.

        Example:
            >>> with ddp.no_sync():  # doctest: +SKIP
            ...     ddp(x1).sum().backward()
            >>> ddp(x2).sum().backward()  # reduces the sum of both  # doctest: +SKIP
        """
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    def remove_hooks(self) -> None:
        """Detach from the module's parameters (the module can be wrapped again)."""
        for h in self._handles:
            h.remove()
        self._handles = []


def _reachable_leaves(out) -> set[int]:
    """ids of the leaf tensors the autograd graph of ``out`` reaches."""
    stack = []

    def collect(o):
        if isinstance(o, Tensor):
            stack.append(o._node if o._node is not None else o)
        elif isinstance(o, dict):
            for v in o.values():
                collect(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                collect(v)

    collect(out)
    seen: set[int] = set()
    leaves: set[int] = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, Tensor):
            leaves.add(id(x))
            continue
        for e in x.edges or ():
            if e is not None:
                stack.append(e)
    return leaves
