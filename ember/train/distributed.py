"""The engine under data parallelism: what ``fit`` does differently on several ranks.

When the default process group is initialized with more than one rank (``distributed='auto'``,
the default of :class:`~ember.train.Engine`), or when ``distributed=True`` is passed, ``fit``:

- wraps the model in :class:`~ember.nn.parallel.DistributedDataParallel` for the duration of
  the call (rank 0's weights are broadcast; gradients are averaged during ``backward``). A
  model that already is a ``DistributedDataParallel`` is used as it is, never wrapped twice;
- gives each rank its share of the data with PyTorch's :class:`~ember.data.DistributedSampler`
  order (``set_epoch`` before every epoch): a ``DataLoader`` is rebuilt around one (unless its
  sampler already is one) and an :class:`~ember.train.ArrayLoader` is sharded in place. The
  loader's ``batch_size`` is per rank, as in PyTorch, so the global batch is
  ``batch_size * world_size``;
- averages the epoch logs over ranks (sums and sample counts are all-reduced, so a mean over
  samples stays a mean over all samples), so every rank's ``History`` and callbacks
  (EarlyStopping, ReduceLROnPlateau) see the same values and decide the same way;
- runs the callbacks that write files (those with ``rank_zero_only = True``: checkpoints,
  CSV, TensorBoard, backups) and the progress bar on rank 0 only, and silences stdout on
  the other ranks;
- holds every rank at a barrier before a checkpoint is read, so all resume from the file
  rank 0 finished writing;
- collects sharded optimizer state (``ZeroRedundancyOptimizer``) on rank 0 at the end of
  every epoch, so that epoch-end checkpoints hold all of it (a checkpoint written in the
  middle of an epoch with such an optimizer raises, naming ``consolidate_state_dict``).

``evaluate`` and ``predict`` (inside ``fit`` for validation, and on their own) split the
batches instead: rank r takes global batches r, r + N, r + 2N, ... of the unsharded loader
(nothing is padded or repeated, and each batch holds the same samples as in one process).
Rank 0's buffers (e.g. BatchNorm running statistics) are broadcast first, metric sums are
all-reduced, and ``predict`` gathers every rank's outputs back into batch order, so every
rank returns what one process would.

``distributed=False`` turns all of this off (each rank trains alone).

Example:
    >>> from ember.train.distributed import DistributedContext
    >>> DistributedContext("auto").active   # no process group here
    False
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

import ember

__all__ = ["DistributedContext"]


def _dist():
    import ember.distributed as dist

    return dist


class DistributedContext:
    """Decides whether a ``fit`` runs data-parallel and does the per-rank work."""

    def __init__(self, mode: bool | str = "auto"):
        if mode not in ("auto", True, False):
            raise ValueError(f"distributed must be 'auto', True or False, got {mode!r}")
        dist = _dist()
        initialized = dist.is_initialized()
        if mode is True and not initialized:
            raise RuntimeError(
                "distributed=True needs an initialized process group: call "
                "ember.distributed.init_process_group() first (start the ranks with mpiexec)"
            )
        self.rank = dist.get_rank() if initialized else 0
        self.world = dist.get_world_size() if initialized else 1
        self.active = bool(initialized and mode is not False and (mode is True or self.world > 1))
        self.ddp: Any = None  # the DistributedDataParallel in use during fit
        self._own_ddp = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- model ------------------------------------------------------------------------------
    def wrap(self, model: Any) -> None:
        """Use ``model`` if it is a DDP already, else wrap it (until :meth:`unwrap`)."""
        if not self.active or model is None:
            return
        from ember.nn.parallel import DistributedDataParallel

        if isinstance(model, DistributedDataParallel):
            self.ddp = model
            return
        self.ddp = DistributedDataParallel(model)
        self._own_ddp = True

    def unwrap(self) -> None:
        if self.ddp is not None and self._own_ddp:
            self.ddp.remove_hooks()
        self.ddp, self._own_ddp = None, False

    def before_step(self) -> None:
        """What DDP's forward does before the module runs (the task calls the module
        itself, not the wrapper)."""
        ddp = self.ddp
        if ddp is None:
            return
        ddp._check_previous_reduction()
        if ddp.broadcast_buffers:
            ddp._sync_state(params=False)

    def after_step(self, loss: Any, sync: bool) -> None:
        """Arm the gradient reduction for the coming ``backward`` unless the task's forward
        went through the DDP wrapper (which armed it) or this is an accumulation batch."""
        ddp = self.ddp
        if ddp is None or loss is None or not sync or ddp._armed or not ddp._buckets:
            return
        ddp._prepare(loss)

    # -- data -------------------------------------------------------------------------------
    def shard(self, data: Any, what: str = "training data") -> Any:
        """This rank's share of ``data`` (a loader that ``set_epoch`` reorders)."""
        if not self.active or data is None:
            return data
        from ember.data import DataLoader
        from ember.data.distributed import DistributedSampler
        from ember.data.sampler import RandomSampler

        if hasattr(data, "shard"):
            data.shard(self.rank, self.world)
            return data
        if isinstance(data, DataLoader):
            if isinstance(data.sampler, DistributedSampler):
                return data
            if data._is_iterable or data.batch_size is None or _custom_batches(data):
                raise ValueError(
                    f"distributed fit: cannot shard the {what} (an iterable dataset or a "
                    "custom batch_sampler); build its DataLoader with "
                    "sampler=ember.data.DistributedSampler(dataset)"
                )
            sampler = DistributedSampler(
                data.dataset,
                num_replicas=self.world,
                rank=self.rank,
                shuffle=isinstance(data.sampler, RandomSampler),
            )
            return DataLoader(
                data.dataset,
                batch_size=data.batch_size,
                sampler=sampler,
                num_workers=data.num_workers,
                collate_fn=None if data._is_default_collate else data.collate_fn,
                drop_last=data.drop_last,
                generator=data.generator,
            )
        raise ValueError(
            f"distributed fit: cannot shard the {what} ({type(data).__name__}); pass a "
            "DataLoader (its sampler is replaced by a DistributedSampler), an ArrayLoader, "
            "or a loader with a shard(rank, world_size) method"
        )

    def eval_batches(self, data: Any, steps: int | None = None):
        """``(global batch index, batch)`` of this rank's share of ``data``'s batches
        (round robin over ranks; all of them when not distributed), at most ``steps``
        global batches."""
        if not self.active:
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    return
                yield i, batch
            return
        mine = _own_batches(data, self.rank, self.world)
        if mine is not None:
            loader, index = mine
            for i, batch in zip(index, loader):
                if steps is not None and i >= steps:
                    return
                yield i, batch
            return
        # a loader we cannot subset: read every batch, keep ours (correct, but each rank
        # pays for loading all of them)
        for i, batch in enumerate(data):
            if steps is not None and i >= steps:
                return
            if i % self.world == self.rank:
                yield i, batch

    def sync_buffers(self, model: Any) -> None:
        """Give every rank rank 0's buffers (what DDP's next forward would do), so that
        evaluation on any rank sees the model one process would."""
        if not self.active or model is None or not hasattr(model, "buffers"):
            return
        from ember import Tensor

        dist = _dist()
        works = [
            dist.broadcast(b, 0, async_op=True) for b in model.buffers() if isinstance(b, Tensor)
        ]
        for w in works:
            w.wait()

    def gather_in_order(self, pairs: list) -> list:
        """Every rank's ``(index, value)`` pairs, merged and sorted by index, values only."""
        if not self.active:
            return [v for _, v in sorted(pairs, key=lambda p: p[0])]
        dist = _dist()
        every: list = [None] * self.world
        try:
            dist.all_gather_object(every, [list(p) for p in pairs])
        except TypeError as e:
            raise TypeError(f"distributed predict: cannot combine the outputs: {e}") from None
        merged = [tuple(p) for part in every for p in part]
        return [v for _, v in sorted(merged, key=lambda p: p[0])]

    def set_epoch(self, data: Any, epoch: int) -> None:
        if not self.active or data is None:
            return
        target: Any = getattr(data, "sampler", None)
        if not hasattr(target, "set_epoch"):
            target = data
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)

    # -- logs -------------------------------------------------------------------------------
    def reduce_state(self, state: Any) -> Any:
        """Sum every number of a task's ``metrics_state()`` over ranks (the running sums,
        sample counts and Keras metric states), so the logs computed from it are over all
        samples of all ranks. Names are matched, not positions: a value that only some
        ranks logged (e.g. a rank that got no evaluation batch) combines those ranks'
        samples. Other leaves (strings, None) are the first rank's that has them."""
        if not self.active:
            return state
        every: list = [None] * self.world
        _dist().all_gather_object(every, state)
        merged = every[0]
        for other in every[1:]:
            merged = _merge(merged, other)
        return merged

    def consolidate(self, optimizers: list) -> None:
        """Collect the state of sharded optimizers (``ZeroRedundancyOptimizer``) on rank 0,
        where checkpoints read it (a collective: every rank calls it)."""
        if not self.active:
            return
        for opt in optimizers:
            if hasattr(opt, "consolidate_state_dict"):
                opt.consolidate_state_dict(to=0)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on some rank."""
        if not self.active:
            return bool(flag)
        dist = _dist()
        t = ember.tensor(np.array([1.0 if flag else 0.0]))
        dist.all_reduce(t, dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.active:
            _dist().barrier()

    def callbacks_for_rank(self, callbacks: list) -> list:
        if not self.active or self.is_main:
            return callbacks
        return [cb for cb in callbacks if not getattr(cb, "rank_zero_only", False)]

    def quiet(self) -> contextlib.AbstractContextManager:
        """Silence stdout on ranks other than 0 (prints of callbacks and the loop)."""
        if not self.active or self.is_main:
            return contextlib.nullcontext()
        return contextlib.redirect_stdout(_Discard())


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _own_batches(data: Any, rank: int, world: int):
    """``(loader over this rank's batches, their global indices)`` without loading the
    other ranks' batches, for a map-style DataLoader and an ArrayLoader; None otherwise."""
    from ember.data import DataLoader

    from .engine import ArrayLoader

    if isinstance(data, DataLoader) and not data._is_iterable and data.batch_sampler is not None:
        from ember.data.sampler import BatchSampler, RandomSampler, SequentialSampler

        sampler = data.batch_sampler
        if isinstance(data.sampler, RandomSampler) and not _custom_batches(data):
            # NOTE: each rank would draw its own permutation, and the batches of different
            # ranks would overlap; the order does not change sums over all samples
            seq = SequentialSampler(data.dataset)
            sampler = BatchSampler(seq, data.batch_size, data.drop_last)
        batches = [list(b) for b in sampler]
        sub = DataLoader(
            data.dataset,
            batch_sampler=batches[rank::world],
            num_workers=data.num_workers,
            collate_fn=None if data._is_default_collate else data.collate_fn,
        )
        return sub, range(rank, len(batches), world)
    if type(data) is ArrayLoader and data._sampler is None:
        n_batches = len(data)

        def mine():
            bs = data.batch_size
            for i in range(rank, n_batches, world):
                sl = slice(i * bs, (i + 1) * bs)
                yield tuple(None if a is None else _take(a, sl) for a in data.arrays)

        return mine(), range(rank, n_batches, world)
    return None


def _take(a, sl):
    from .engine import _take as take

    return take(a, sl)


def _custom_batches(loader) -> bool:
    bs = loader.batch_sampler
    from ember.data.sampler import BatchSampler

    return bs is not None and not (
        type(bs) is BatchSampler and getattr(bs, "sampler", None) is loader.sampler
    )


def _merge(a: Any, b: Any) -> Any:
    """``a`` and ``b`` with their numbers added, dicts merged by key, lists by position."""
    if a is None or (isinstance(a, dict) and not a):
        return b
    if b is None or (isinstance(b, dict) and not b):
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            raise RuntimeError(
                f"distributed fit: ranks hold metric states of different lengths ({len(a)} and "
                f"{len(b)}); every rank must track the same metrics"
            )
        return type(a)(_merge(x, y) for x, y in zip(a, b))
    num = (int, float, np.integer, np.floating)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool):
        return a + b
    return a
