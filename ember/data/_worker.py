"""The worker process of a DataLoader, and what crosses the process boundary.

Protocol (one pair of pipes per worker, so results need no shared lock):
  main -> worker: ``(token, task_idx, index)`` tasks, ``("resume", token)`` at a new
  epoch of persistent workers, ``None`` to stop.
  worker -> main: a pickled header ``(token, task_idx, kind, payload, sizes)`` followed by
  the raw bytes of each NumPy array (pickle protocol 5 out-of-band buffers), so arrays
  are never copied into a pickle string and arrive as writable memory.
"""

from __future__ import annotations

import os
import pickle
import queue
import random
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _augment_rng
from .collate import collate_numpy, convert_numpy, pack

__all__ = ["WorkerInfo", "get_worker_info"]

# kinds of results
DATA, END, ERROR = 0, 1, 2

_worker_info: WorkerInfo | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker knows about itself (see :func:`get_worker_info`)."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """Inside a loader worker: its ``id``, ``num_workers``, ``seed`` and ``dataset`` copy.

    ``None`` in the main process. Use it to shard an ``IterableDataset`` or to open a
    file handle per worker.

    Example:
        >>> get_worker_info() is None
        True
    """
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its traceback."""

    def __init__(self, exc_info, where: str):
        exc_type = exc_info[0]
        try:
            pickle.loads(pickle.dumps(exc_type))
        except Exception:  # noqa: BLE001 - unpicklable class: keep the error anyway
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:  # noqa: BLE001 - constructors with extra required arguments
            exc = None
        if exc is None:
            raise RuntimeError(msg)
        raise exc


class _KeyErrorMessage(str):
    """KeyError repr()s its message; this keeps the traceback text readable."""

    def __repr__(self):
        return str(self)


class Fetcher:
    """Turns a task index into a collated batch (map-style or iterable dataset)."""

    def __init__(self, dataset, is_iterable, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.is_iterable = is_iterable
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.it = iter(dataset) if is_iterable else None

    def fetch(self, index):
        """``index``: a list of indices (map-style), a batch size (iterable) or None."""
        ds = self.dataset
        if self.is_iterable:
            if self.auto_collation:
                data = []
                for _ in range(index):
                    try:
                        data.append(next(self.it))
                    except StopIteration:
                        break
                if not data or (self.drop_last and len(data) < index):
                    raise StopIteration
            else:
                data = next(self.it)
        elif self.auto_collation:
            rows = _tensor_dataset_rows(ds, index, self.collate_fn)
            if rows is not None:
                return rows
            getitems = getattr(ds, "__getitems__", None)
            data = getitems(index) if getitems else [ds[i] for i in index]
        else:
            data = ds[index]
        return self.collate_fn(data)


def _tensor_dataset_rows(ds, index, collate):
    """A :class:`~ember.data.TensorDataset`'s batch under the default collate as one fancy
    index per stored array: the rows ``collate_numpy`` would stack from the items (the same
    values and dtypes, a list as for tuple samples) without a Tensor per item and back.
    20000 MNIST-sized rows in batches of 128, one AMD EPYC core: 0.20 s per epoch with a
    Tensor per item, 0.05 s with NumPy rows per item, 0.015 s here. None where that does
    not apply (a subclass, another collate, non-numeric arrays, an empty index)."""
    from .dataset import TensorDataset

    if type(ds) is not TensorDataset or collate is not collate_numpy or not len(index):
        return None
    if any(t.dtype.kind not in "biufc" for t in ds.tensors):
        return None
    idx = np.asarray(index, dtype=np.int64)
    return [np.ascontiguousarray(t[idx]) for t in ds.tensors]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's legacy global, ember and the augmentation stream of a worker."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _augment_rng.manual_seed(seed)
    try:
        import ember

        ember.manual_seed(seed)
    except (ImportError, AttributeError):
        pass


def worker_loop(
    dataset,
    is_iterable,
    index_conn,
    result_conn,
    collate_fn,
    is_default,
    auto_collation,
    drop_last,
    base_seed,
    init_fn,
    worker_id,
    num_workers,
    parent_pid,
):
    """Entry point of a worker process (runs until ``None``, EOF or parent death)."""
    global _worker_info
    # NOTE: Ctrl-C goes to the whole process group; the main process handles it and shuts
    # us down, so a worker must not print its own KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    seed = (base_seed + worker_id) & (2**63 - 1)
    seed_everything(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)

    if is_default:
        collate = collate_numpy if auto_collation else convert_numpy
    else:

        def collate(batch):
            return pack(collate_fn(batch))

    outbox: queue.Queue = queue.Queue()
    broken = threading.Event()

    def sender():
        # A thread so the worker keeps computing while the main process is busy: a pipe
        # holds only ~64 KiB, and a blocking write would serialise compute and transfer.
        while True:
            msg = outbox.get()
            if msg is None:
                return
            try:
                result_conn.send_bytes(msg[0])
                for buf in msg[1]:
                    result_conn.send_bytes(buf)
            except OSError:  # main process gone or closed our pipe
                broken.set()
                return

    threading.Thread(target=sender, daemon=True).start()

    def send(token, idx, kind, payload):
        buffers: list = []
        try:
            head = pickle.dumps(payload, protocol=5, buffer_callback=buffers.append)
        except Exception:  # noqa: BLE001 - an unpicklable batch becomes an error, not a hang
            kind, buffers = ERROR, []
            head = pickle.dumps(
                ExceptionWrapper(
                    sys.exc_info(),
                    f"in DataLoader worker process {worker_id} while pickling a batch",
                )
            )
        raws = [b.raw() for b in buffers]
        header = pickle.dumps((token, idx, kind, head, [r.nbytes for r in raws]))
        outbox.put((header, raws))

    init_error = None
    fetcher = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = Fetcher(dataset, is_iterable, auto_collation, collate, drop_last)
    except Exception:  # noqa: BLE001 - reported to the main process on first task
        init_error = ExceptionWrapper(sys.exc_info(), f"in DataLoader worker process {worker_id}")

    while not broken.is_set():
        try:
            if not index_conn.poll(1.0):
                # NOTE: orphaned workers (parent SIGKILLed) notice here and exit
                if os.getppid() != parent_pid:
                    break
                continue
            msg = index_conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        if msg[0] == "resume":
            if init_error is None and is_iterable:
                fetcher = Fetcher(dataset, is_iterable, auto_collation, collate, drop_last)
            continue
        token, idx, index = msg
        if init_error is not None:
            send(token, idx, ERROR, init_error)
            continue
        try:
            send(token, idx, DATA, fetcher.fetch(index))
        except StopIteration:
            send(token, idx, END, None)
        except Exception:  # noqa: BLE001 - any user error must reach the main process
            send(
                token,
                idx,
                ERROR,
                ExceptionWrapper(
                    sys.exc_info(),
                    f"in DataLoader worker process {worker_id}{_loading(index, is_iterable)}",
                ),
            )
    outbox.put(None)


def _loading(index, is_iterable: bool) -> str:
    """Which samples a failed task was loading, for the error message."""
    if is_iterable:
        return ""
    if hasattr(index, "__len__") and hasattr(index, "__getitem__"):  # a batch's indices
        shown = ", ".join(str(i) for i in list(index[:8])) + (", ..." if len(index) > 8 else "")
        return f" while loading the batch of indices [{shown}]"
    return f" while loading index {index}"


def recv_result(conn):
    """Read one result message written by a worker's sender thread."""
    token, idx, kind, head, sizes = pickle.loads(_recv_frame(conn, None))
    buffers = []
    for n in sizes:
        # NOTE: np.empty, not bytearray: no zero-fill of memory about to be overwritten;
        # the arrays unpickled from it share it and stay writable
        buf = np.empty(n, np.uint8)
        _recv_frame(conn, buf)
        buffers.append(buf)
    return token, idx, kind, pickle.loads(head, buffers=buffers)


def _recv_frame(conn, out):
    """One ``Connection.send_bytes`` frame, read straight into ``out`` (or new bytes).

    ``Connection.recv_bytes_into`` reads through a growing BytesIO and copies twice; on
    a 1.5 MB batch that costs more than the pipe itself.
    """
    if not hasattr(os, "readv"):  # pragma: no cover - Windows
        if out is None:
            return conn.recv_bytes()
        conn.recv_bytes_into(out)
        return out
    fd = conn.fileno()
    size = int.from_bytes(_read_exact(fd, bytearray(4)), "big", signed=True)
    if size == -1:
        size = int.from_bytes(_read_exact(fd, bytearray(8)), "big")
    if out is None:
        return _read_exact(fd, bytearray(size))
    if out.nbytes != size:
        raise RuntimeError(
            f"DataLoader: corrupt message from a worker (expected {out.nbytes}"
            f" bytes, got a frame of {size})"
        )
    _read_exact(fd, out)
    return out


def _read_exact(fd, buf):
    view = memoryview(buf).cast("B")
    while len(view):
        n = os.readv(fd, [view])
        if n == 0:
            raise EOFError("worker pipe closed")
        view = view[n:]
    return buf
