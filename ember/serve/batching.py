"""Dynamic batching: requests wait in a queue and run as one batch along axis 0.

A worker thread takes the first waiting request, gathers more until the batch holds
``max_batch_size`` rows or ``max_wait_ms`` has passed since that first request, concatenates
the requests whose inputs agree in dtype and trailing shape, runs the model once and splits
the outputs back by each request's row count.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Batcher", "BatchingConfig"]

log = logging.getLogger("ember.serve")

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchingConfig:
    """Per-model dynamic batching: up to ``max_batch_size`` rows per execution, waiting at
    most ``max_wait_ms`` after the first queued request (0: run whatever is queued).

    Example:
        >>> BatchingConfig(max_batch_size=16, max_wait_ms=1.0)
        BatchingConfig(max_batch_size=16, max_wait_ms=1.0)
    """

    max_batch_size: int = 32
    max_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_batch_size, int) or self.max_batch_size < 1:
            raise ValueError(
                f"max_batch_size must be a positive integer, got {self.max_batch_size!r}"
            )
        if not isinstance(self.max_wait_ms, int | float) or self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be a non-negative number, got {self.max_wait_ms!r}")


@dataclass
class _Item:
    feeds: Feeds
    rows: int
    key: tuple
    future: Future = field(default_factory=Future)


_STOP = object()


class Batcher:
    """Runs ``run(feeds) -> outputs`` on batches gathered from concurrent :meth:`submit` calls.

    Example:
        >>> import numpy as np
        >>> b = Batcher(lambda f: {"y": f["x"] * 2}, BatchingConfig(8, 1.0))
        >>> b.submit({"x": np.ones((2, 3))}).result()["y"].shape
        (2, 3)
        >>> b.stop()
    """

    def __init__(
        self,
        run: Callable[[Feeds], Feeds],
        config: BatchingConfig,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self.config = config
        self._on_batch = on_batch
        self._q: queue.Queue = queue.Queue()
        self._held: collections.deque = collections.deque()
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="ember-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, feeds: Feeds) -> Future:
        """Queue one request (every input has the batch on axis 0); its Future gives outputs."""
        rows = {a.shape[0] if a.ndim else -1 for a in feeds.values()}
        if len(rows) != 1 or -1 in rows:
            raise ValueError(
                "the inputs of one request must share their first (batch) dimension, "
                f"got {[list(a.shape) for a in feeds.values()]}"
            )
        key = tuple(sorted((n, a.dtype.str, a.shape[1:]) for n, a in feeds.items()))
        item = _Item(feeds, rows.pop(), key)
        with self._lock:
            if self._stopped:
                raise RuntimeError("batcher stopped")
            self._q.put(item)
        return item.future

    def stop(self) -> None:
        """Finish every queued request, then end the worker."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._q.put(_STOP)
        self._thread.join()

    def _next(self, timeout: float | None) -> object:
        if self._held:
            return self._held.popleft()
        if timeout is None:
            return self._q.get()
        return self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()

    def _loop(self) -> None:
        stopping = False
        while True:
            if stopping and not self._held and self._q.empty():
                return
            first = self._next(None if not stopping else 0)
            if first is _STOP:
                stopping = True
                continue
            assert isinstance(first, _Item)
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self.config.max_wait_ms / 1000
            while rows < self.config.max_batch_size:
                try:
                    nxt = self._next(0 if stopping else deadline - time.monotonic())
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    continue
                assert isinstance(nxt, _Item)
                if rows + nxt.rows > self.config.max_batch_size:
                    self._held.appendleft(nxt)  # opens the next batch
                    break
                batch.append(nxt)
                rows += nxt.rows
            groups: dict[tuple, list[_Item]] = {}
            for it in batch:
                groups.setdefault(it.key, []).append(it)
            for items in groups.values():
                self._execute(items)

    def _execute(self, items: list[_Item]) -> None:
        if len(items) == 1:
            self._single(items[0])
            return
        total = sum(it.rows for it in items)
        try:
            feeds = {n: np.concatenate([it.feeds[n] for it in items]) for n in items[0].feeds}
            out = self._run(feeds)
            if any(np.ndim(a) == 0 or np.shape(a)[0] != total for a in out.values()):
                raise _NotSplittable
        except Exception:  # noqa: BLE001 - any failure: retry each request alone
            # one bad request must not fail the others: run each on its own
            for it in items:
                self._single(it)
            return
        if self._on_batch is not None:
            self._on_batch(total)
        cuts = np.cumsum([it.rows for it in items])[:-1]
        parts = {n: np.split(a, cuts) for n, a in out.items()}
        for i, it in enumerate(items):
            it.future.set_result({n: p[i] for n, p in parts.items()})

    def _single(self, it: _Item) -> None:
        try:
            out = self._run(it.feeds)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting request
            it.future.set_exception(e)
            return
        if self._on_batch is not None:
            self._on_batch(it.rows)
        it.future.set_result(out)


class _NotSplittable(Exception):
    pass
