"""TFRecord framing and the event-file writer (no TensorFlow, no protobufs needed here).

A record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32
masked_crc32c(data)``, little-endian. The writer buffers records and flushes when
``max_queue`` records are pending, every ``flush_secs`` seconds (a daemon thread),
on ``flush()`` and on ``close()``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time

__all__ = ["EventFileWriter", "crc32c", "frame", "masked_crc32c"]


def _make_table():
    poly = 0x82F63B78  # CRC-32C (Castagnoli), reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def _crc32c_py(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _pick_crc():
    try:  # optional accelerated implementations
        import crc32c as _c  # type: ignore

        return _c.crc32c
    except ImportError:
        pass
    try:
        import google_crc32c  # type: ignore

        return lambda data: google_crc32c.value(bytes(data))
    except ImportError:
        return _crc32c_py


crc32c = _pick_crc()


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: header, header crc, payload, payload crc."""
    header = struct.pack("<Q", len(data))
    return b"".join(
        (
            header,
            struct.pack("<I", masked_crc32c(header)),
            data,
            struct.pack("<I", masked_crc32c(data)),
        )
    )


_counter_lock = threading.Lock()
_counter = [0]


def _next_uid():
    with _counter_lock:
        _counter[0] += 1
        return _counter[0]


def event_filename(filename_suffix=""):
    return (
        f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
        f"{os.getpid()}.{_next_uid()}{filename_suffix}"
    )


class EventFileWriter:
    """Appends framed records to ``log_dir/events.out.tfevents.<time>.<host>.<pid>.<n>``."""

    def __init__(self, log_dir, max_queue=10, flush_secs=120, filename_suffix=""):
        os.makedirs(log_dir, exist_ok=True)
        self.log_dir = log_dir
        self.path = os.path.join(log_dir, event_filename(filename_suffix))
        self._file = open(self.path, "wb")  # noqa: SIM115  (closed in close())
        self._lock = threading.Lock()
        self._pending = []
        self._max_queue = max(1, int(max_queue))
        self._flush_secs = float(flush_secs)
        self._closed = False
        self._stop = threading.Event()
        self._thread = None
        if self._flush_secs > 0:
            self._thread = threading.Thread(
                target=self._flusher, name="ember-summary-flush", daemon=True
            )
            self._thread.start()

    def _flusher(self):
        while not self._stop.wait(self._flush_secs):
            try:
                self.flush()
            except (OSError, ValueError):  # file closed underneath us
                return

    def write(self, data: bytes) -> None:
        rec = frame(data)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"write to a closed event file {self.path}")
            self._pending.append(rec)
            if len(self._pending) >= self._max_queue:
                self._flush_locked()

    def _flush_locked(self):
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        self._file.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            with contextlib.suppress(OSError):
                os.fsync(self._file.fileno())
            self._file.close()
            self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    @property
    def closed(self) -> bool:
        return self._closed
