"""The ``[serve]`` extra, imported only when a server is built."""

from __future__ import annotations

import importlib
from typing import Any

_DISTS = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "prometheus_client": "prometheus-client",
    "httpx": "httpx",
}


def require(module: str) -> Any:
    """Import ``module`` or raise ImportError naming the ``[serve]`` extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        dist = _DISTS.get(module, module)
        raise ImportError(
            f"ember.serve needs {dist}, which is not installed; "
            f'install the serve extra: pip install "ember[serve]"'
        ) from e
