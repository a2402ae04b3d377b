"""Prometheus metrics: requests, latency, batch sizes, errors.

Each app has its own registry (several apps can live in one process, as in tests). Under
``--workers N`` the workers write to ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them.
"""

from __future__ import annotations

import os

from ._deps import require

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's counters and histograms, and their text exposition."""

    def __init__(self) -> None:
        pc = require("prometheus_client")
        self._pc = pc
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.requests = pc.Counter(
            "ember_serve_requests",
            "HTTP requests answered",
            ["model", "protocol", "code"],
            registry=r,
        )
        self.latency = pc.Histogram(
            "ember_serve_request_latency_seconds",
            "Request latency (body read to answer)",
            ["model", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = pc.Histogram(
            "ember_serve_batch_size",
            "Rows per model execution",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.errors = pc.Counter(
            "ember_serve_errors",
            "Requests answered with an error",
            ["model", "protocol", "kind"],
            registry=r,
        )

    def observe(
        self, model: str, protocol: str, code: int, seconds: float, kind: str | None
    ) -> None:
        self.requests.labels(model, protocol, str(code)).inc()
        self.latency.labels(model, protocol).observe(seconds)
        if kind is not None:
            self.errors.labels(model, protocol, kind).inc()

    def on_batch(self, model: str, rows: int) -> None:
        self.batch_size.labels(model).observe(rows)

    def exposition(self) -> tuple[bytes, str]:
        pc = self._pc
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            reg = pc.CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return pc.generate_latest(reg), pc.CONTENT_TYPE_LATEST
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST
