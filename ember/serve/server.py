"""Running the app under uvicorn: one process, or ``workers`` processes sharing the port."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tempfile
from typing import Any

from ._deps import require
from .app import ServerConfig, create_app
from .batching import BatchingConfig
from .repository import ModelConfig

__all__ = ["config_from_json", "config_to_json", "serve"]

_ENV = "EMBER_SERVE_CONFIG"


def config_to_json(config: ServerConfig) -> str:
    """The config as JSON (how ``--workers`` processes receive it)."""
    return json.dumps(dataclasses.asdict(config))


def config_from_json(text: str) -> ServerConfig:
    """Inverse of :func:`config_to_json`."""
    d = json.loads(text)
    models = []
    for m in d.pop("models"):
        b = m.pop("batching")
        models.append(ModelConfig(**m, batching=BatchingConfig(**b) if b else None))
    return ServerConfig(models=models, **d)


def app_from_env() -> Any:
    """The app factory uvicorn's worker processes call."""
    _setup_logging()
    return create_app(config_from_json(os.environ[_ENV]))


def _setup_logging() -> None:
    root = logging.getLogger("ember.serve")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)
        root.propagate = False


def serve(
    config: ServerConfig,
    host: str = "127.0.0.1",
    port: int = 8501,
    workers: int = 1,
    access_log: bool = True,
    graceful_s: float = 30.0,
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish (up to ``graceful_s``) first.

    Example (not run: it blocks):
        >>> from ember.serve import serve, ServerConfig, ModelConfig
        >>> serve(ServerConfig([ModelConfig("mlp", "models/mlp")]), port=8501)  # doctest: +SKIP
    """
    uvicorn = require("uvicorn")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    _setup_logging()
    if not access_log:
        logging.getLogger("ember.serve.access").setLevel(logging.WARNING)
    common = {
        "host": host,
        "port": port,
        "access_log": False,  # ours is structured (JSON lines on ember.serve.access)
        "timeout_graceful_shutdown": graceful_s,
        "log_level": "info",
    }
    if workers == 1:
        uvicorn.run(create_app(config), **common)
        return
    os.environ[_ENV] = config_to_json(config)
    with tempfile.TemporaryDirectory(prefix="ember-serve-metrics-") as d:
        # prometheus_client reads this when imported in each worker: /metrics sums them
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", d)
        uvicorn.run("ember.serve.server:app_from_env", factory=True, workers=workers, **common)
