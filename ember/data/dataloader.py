"""DataLoader: batches from a dataset, in the main process or in worker processes."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import multiprocessing as mp
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import wait

import numpy as np

from . import _augment_rng
from ._rng import as_generator, next_seed
from ._worker import END, ERROR, Fetcher, recv_result, worker_loop
from .collate import (
    collate_numpy,
    convert_numpy,
    default_collate,
    default_convert,
    to_tensors,
    unpack,
)
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader"]

# How often a waiting main process checks that its workers are still alive (seconds).
_POLL_INTERVAL = 0.1
# How long shutdown waits for workers to exit on their own before terminating them. An idle
# worker exits in milliseconds; a busy one is computing batches nobody will read, and a
# long grace period would stall the main process (a timeout, an abandoned epoch).
_JOIN_TIMEOUT = 0.5


class _InfiniteConstantSampler:
    """Task indices for an IterableDataset: the stream decides where it ends."""

    def __iter__(self):
        return itertools.repeat(None)


class DataLoader:
    """Iterate over a dataset in (shuffled) batches, optionally with worker processes.

    Args:
        dataset: a map-style dataset (``__getitem__``/``__len__``) or an IterableDataset.
        batch_size: samples per batch; ``None`` disables batching (samples come one by one).
        shuffle: visit samples in a new random order each epoch (seeded from ``generator``
            or ``ember.manual_seed``).
        sampler, batch_sampler: custom index order / custom batches (exclusive with
            ``shuffle``, ``batch_size``, ``drop_last`` as in PyTorch).
        num_workers: worker processes (0 loads in the main process). Batches come out in
            the same order whatever the number.
        collate_fn: merges a list of samples into a batch (default: ember Tensors).
        drop_last: drop the last incomplete batch.
        timeout: seconds to wait for a batch from the workers (0: forever).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each new worker.
        multiprocessing_context: a start method name or context (default: 'fork' on
            Linux, else 'spawn').
        generator: ember Generator / int seed for the sampler and worker seeds.
        prefetch_factor: batches in flight per worker (default 2).
        persistent_workers: keep workers alive between epochs.
        pin_memory: accepted for compatibility; a no-op on CPU.

    Example:
        >>> import numpy as np
        >>> from ember.data import TensorDataset
        >>> ds = TensorDataset(np.arange(10, dtype=np.float32), np.arange(10))
        >>> [tuple(x.shape) for x, y in DataLoader(ds, batch_size=4)]
        [(4,), (4,), (2,)]
    """

    def __init__(
        self,
        dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler=None,
        batch_sampler=None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
    ):
        if num_workers < 0:
            raise ValueError("num_workers must be non-negative")
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor is only meaningful with num_workers > 0")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor must be at least 1")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers else prefetch_factor
        self.pin_memory = pin_memory  # NOTE: CPU tensors need no pinning; kept for parity
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.persistent_workers = persistent_workers
        self.generator = as_generator(generator)
        self._is_iterable = isinstance(dataset, IterableDataset)

        if self._is_iterable:
            if shuffle:
                raise ValueError("shuffle is not supported with an IterableDataset")
            if sampler is not None or batch_sampler is not None:
                raise ValueError("sampler/batch_sampler are not supported with an IterableDataset")
            sampler = _InfiniteConstantSampler()
        else:
            if batch_sampler is not None:
                if batch_size != 1 or shuffle or sampler is not None or drop_last:
                    raise ValueError(
                        "batch_sampler is mutually exclusive with batch_size, "
                        "shuffle, sampler and drop_last"
                    )
                batch_size, drop_last = None, False
            elif batch_size is None and drop_last:
                raise ValueError("batch_size=None (no batching) is incompatible with drop_last")
            if sampler is not None and shuffle:
                raise ValueError("sampler is mutually exclusive with shuffle")
            if sampler is None:
                sampler = (
                    RandomSampler(dataset, generator=self.generator)
                    if shuffle
                    else SequentialSampler(dataset)
                )
        if batch_size is not None and batch_sampler is None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._is_default_collate = collate_fn is None
        auto = batch_sampler is not None or (self._is_iterable and batch_size is not None)
        self._auto_collation = auto
        self.collate_fn = collate_fn or (default_collate if auto else default_convert)
        self._mp_context = _resolve_context(multiprocessing_context) if num_workers else None
        self._iterator = None

    # the stream of task indices: batches of indices, single indices, or batch sizes
    def _index_iter(self):
        if self._is_iterable:
            size = self.batch_size if self._auto_collation else None
            return itertools.repeat(size)
        return iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            # NOTE: an error shuts the workers down; the next epoch then starts fresh ones
            if self._iterator is None or self._iterator._shutdown_done:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def __len__(self) -> int:
        if self._is_iterable:
            n = len(self.dataset)  # TypeError if the stream has no length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def _worker_collate(self):
        """What workers (or the main process, with 0 workers) run on a list of samples."""
        if self._is_default_collate:
            return collate_numpy if self._auto_collation else convert_numpy
        return self.collate_fn

    def _finish(self, data):
        """Main-process half of collation: NumPy batches become ember Tensors."""
        return to_tensors(data) if self._is_default_collate else unpack(data)


def _resolve_context(ctx):
    if ctx is None:
        # NOTE: fork starts workers in milliseconds and shares the dataset copy-on-write;
        # spawn re-imports everything and pickles the dataset, so it is only the fallback.
        methods = mp.get_all_start_methods()
        return mp.get_context(
            "fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn"
        )
    if isinstance(ctx, str):
        return mp.get_context(ctx)
    return ctx


class _SingleProcessIter:
    """Loads batches in the calling process."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._index_iter = loader._index_iter()
        # NOTE: same seeding scheme as a worker, so augmentation follows ember.manual_seed
        self._rng = np.random.default_rng(next_seed(loader.generator))
        collate = loader._worker_collate() if loader._is_default_collate else loader.collate_fn
        self._fetcher = Fetcher(
            loader.dataset, loader._is_iterable, loader._auto_collation, collate, loader.drop_last
        )

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def __next__(self):
        index = next(self._index_iter)
        prev = _augment_rng.install(self._rng)
        try:
            data = self._fetcher.fetch(index)
        finally:
            _augment_rng.install(prev)
        return to_tensors(data) if self._loader._is_default_collate else data


_live_iterators: weakref.WeakSet[_MultiProcessIter] = weakref.WeakSet()


@atexit.register
def _shutdown_all():
    for it in list(_live_iterators):
        it._shutdown()


class _MultiProcessIter:
    """Hands tasks to worker processes and yields their results in task order."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._workers: list = []
        self._index_conns: list = []
        self._result_conns: list = []
        self._shutdown_done = False
        self._owner_pid = os.getpid()
        nw = loader.num_workers
        self._num_workers = nw
        self._prefetch = loader.prefetch_factor * nw
        self._base_seed = next_seed(loader.generator)
        ctx = loader._mp_context
        worker_collate = (
            loader._worker_collate() if loader._is_default_collate else loader.collate_fn
        )
        _live_iterators.add(self)
        try:
            for wid in range(nw):
                idx_r, idx_w = ctx.Pipe(duplex=False)
                res_r, res_w = ctx.Pipe(duplex=False)
                _grow_pipe(res_w)
                _grow_pipe(idx_w)  # big index lists (large batches) must not block sends
                p = ctx.Process(
                    target=worker_loop,
                    name=f"ember-data-worker-{wid}",
                    daemon=True,
                    args=(
                        loader.dataset,
                        loader._is_iterable,
                        idx_r,
                        res_w,
                        worker_collate,
                        loader._is_default_collate,
                        loader._auto_collation,
                        loader.drop_last,
                        self._base_seed,
                        loader.worker_init_fn,
                        wid,
                        nw,
                        os.getpid(),
                    ),
                )
                p.start()
                # NOTE: close our copies of the worker's ends, so a dead worker reads as
                # EOF instead of a pipe that stays open forever
                idx_r.close()
                res_w.close()
                self._workers.append(p)
                self._index_conns.append(idx_w)
                self._result_conns.append(res_r)
        except BaseException:
            self._shutdown()
            raise
        self._conn_owner = {c: i for i, c in enumerate(self._result_conns)}
        self._sentinel_owner = {p.sentinel: i for i, p in enumerate(self._workers)}
        self._token = 0
        self._start_epoch()

    def _start_epoch(self):
        self._index_iter = self._loader._index_iter()
        self._active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        self._task_info: dict[int, list] = {}  # task -> [worker] or [worker, data]
        self._send_idx = 0
        self._rcvd_idx = 0
        for _ in range(self._prefetch):
            self._put_task()

    def _reset(self):
        """New epoch for persistent workers: stale results are told apart by the token."""
        self._token += 1
        for c in self._index_conns:
            c.send(("resume", self._token))
        self._start_epoch()

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _put_task(self):
        try:
            index = next(self._index_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            wid = next(self._worker_cycle)
            if self._active[wid]:
                break
        else:
            return
        self._index_conns[wid].send((self._token, self._send_idx, index))
        self._task_info[self._send_idx] = [wid]
        self._send_idx += 1

    def __next__(self):
        try:
            return self._next()
        except StopIteration:
            if not self._loader.persistent_workers:
                self._shutdown()
            raise
        except BaseException:
            self._shutdown()
            raise

    def _next(self):
        if self._shutdown_done:
            raise StopIteration
        while True:
            # skip tasks given to iterable workers that have since run dry
            while self._rcvd_idx < self._send_idx:
                info = self._task_info[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            if self._rcvd_idx >= self._send_idx:
                raise StopIteration
            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:  # arrived earlier, out of order
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
                self._put_task()
                return self._deliver(*info[1])
            token, idx, kind, payload = self._get_result()
            if token != self._token:
                continue  # from an abandoned epoch of persistent workers
            if kind == END:
                self._active[self._task_info[idx][0]] = False
                self._put_task()  # NOTE: fills the slot (a no-op once all are inactive)
                continue
            if idx == self._rcvd_idx:
                del self._task_info[idx]
                self._rcvd_idx += 1
                self._put_task()
                return self._deliver(kind, payload)
            self._task_info[idx].append((kind, payload))

    def _deliver(self, kind, payload):
        if kind == ERROR:
            payload.reraise()
        return self._loader._finish(payload)

    def _get_result(self):
        """Wait for the next result, checking worker liveness and the loader timeout."""
        timeout = self._loader.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        waitables = self._result_conns + [p.sentinel for p in self._workers]
        while True:
            wait_for = _POLL_INTERVAL
            if deadline is not None:
                wait_for = min(wait_for, max(deadline - time.monotonic(), 0))
            ready = wait(waitables, wait_for)
            for r in ready:
                wid = self._conn_owner.get(r)
                if wid is not None:
                    try:
                        return recv_result(r)
                    except (EOFError, OSError):
                        self._raise_dead(wid)
            for r in ready:  # a worker exited and left nothing to read
                if r in self._sentinel_owner:
                    self._raise_dead(self._sentinel_owner[r])
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(
                    f"DataLoader timed out after {timeout} seconds waiting "
                    f"for a batch from its workers"
                )

    def _raise_dead(self, wid):
        p = self._workers[wid]
        p.join(timeout=1.0)
        code = p.exitcode
        how = ""
        if code is not None and code < 0:
            try:
                how = f" (killed by signal {signal.Signals(-code).name})"
            except ValueError:
                how = f" (killed by signal {-code})"
        raise RuntimeError(
            f"DataLoader worker {wid} (pid {p.pid}) exited unexpectedly with "
            f"exit code {code}{how}. If it ran out of memory or crashed in "
            f"native code, try num_workers=0 to see the error directly."
        )

    def _shutdown(self):
        if self._shutdown_done or os.getpid() != self._owner_pid:
            # NOTE: a forked child holds a copy of this object; only the owner may stop workers
            return
        self._shutdown_done = True
        _live_iterators.discard(self)
        for c in self._index_conns:
            with contextlib.suppress(OSError, ValueError):
                c.send(None)
        # close the result pipes: a worker blocked writing to one gets EPIPE and exits
        for c in self._result_conns:
            c.close()
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for p in self._workers:
            p.join(timeout=max(deadline - time.monotonic(), 0))
        for p in self._workers:
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)
            if p.is_alive():
                p.kill()
                p.join()
        for c in self._index_conns:
            c.close()
        for p in self._workers:
            with contextlib.suppress(ValueError):
                p.close()

    def __del__(self):
        # A finaliser must never raise (interpreter exit).
        with contextlib.suppress(Exception):
            self._shutdown()


def _grow_pipe(conn):
    """Enlarge a pipe's kernel buffer (Linux) so a batch crosses in fewer wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass
