"""``ember.serve``: a model server for saved models (``ember serve``).

It speaks TF Serving's REST API (``/v1/models/...``) and KServe's V2 / Open Inference
Protocol (``/v2/...``), serves numbered versions with a policy and hot reload, batches
requests dynamically, and exposes Prometheus ``/metrics``. Needs the ``[serve]`` extra
(starlette, uvicorn, prometheus-client).

Example:
    >>> from ember.serve import ModelConfig, BatchingConfig
    >>> ModelConfig("mlp", "models/mlp", policy="latest:2", batching=BatchingConfig(16, 2.0)).policy
    'latest:2'
"""

from __future__ import annotations

from .app import ServerConfig, create_app
from .batching import Batcher, BatchingConfig
from .errors import ServeError
from .repository import ModelConfig, Repository, parse_policy
from .server import serve

__all__ = [
    "Batcher",
    "BatchingConfig",
    "ModelConfig",
    "Repository",
    "ServeError",
    "ServerConfig",
    "create_app",
    "parse_policy",
    "serve",
]
