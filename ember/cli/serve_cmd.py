"""``ember serve``: put saved models behind TF Serving REST and KServe V2 endpoints."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

__all__ = ["add_parser", "build_config", "cmd_serve"]


def add_parser(sub: Any) -> None:
    """Add the ``serve`` subcommand to the ``ember`` parser's subparsers."""
    s = sub.add_parser(
        "serve",
        help="serve saved models over HTTP (TF Serving REST and KServe V2)",
        description="Serve saved models. MODEL_DIR holds numbered version directories "
        "(MODEL_DIR/1, MODEL_DIR/2, ...) or is one saved model; new versions are picked up "
        "while serving.",
    )
    s.add_argument("model_dir", nargs="?", help="the model's base directory")
    s.add_argument("--name", help="model name in URLs (default: the directory's name)")
    s.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="serve another model (repeatable)",
    )
    s.add_argument(
        "--config",
        help="a JSON (or YAML) file: {models: [{name, base_path, policy, batching: "
        "{max_batch_size, max_wait_ms}}], max_body_bytes, timeout_s, poll_s}",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    s.add_argument(
        "--policy",
        default="latest:1",
        help="versions to serve: latest:N, specific:V1,V2 or all (default latest:1)",
    )
    s.add_argument(
        "--batching",
        metavar="MAX_BATCH[,MAX_WAIT_MS]",
        help="dynamic batching for every model, e.g. 32,2 (default: off)",
    )
    s.add_argument("--max-body-mb", type=float, default=16.0, help="request size limit")
    s.add_argument("--timeout-s", type=float, default=30.0, help="per-request time limit")
    s.add_argument("--poll-s", type=float, default=1.0, help="version directory poll period")
    s.add_argument("--threads", type=int, default=4, help="inference threads per worker")
    s.add_argument(
        "--max-queued",
        type=int,
        default=1024,
        help="requests waiting for the model per worker before answering 503",
    )
    s.add_argument("--no-access-log", action="store_true")


def _batching(text: str | None) -> Any:
    from ember.serve import BatchingConfig

    if text is None:
        return None
    parts = text.split(",")
    try:
        size = int(parts[0])
        wait = float(parts[1]) if len(parts) > 1 else 2.0
        if len(parts) > 2:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--batching {text!r}: expected MAX_BATCH[,MAX_WAIT_MS], e.g. 32,2"
        ) from None
    return BatchingConfig(size, wait)


def build_config(a: argparse.Namespace) -> Any:
    """The :class:`ember.serve.ServerConfig` the arguments describe."""
    from ember.serve import BatchingConfig, ModelConfig, ServerConfig

    batching = _batching(a.batching)
    models = []
    extra: dict[str, Any] = {}
    if a.config:
        with open(a.config) as f:
            text = f.read()
        if a.config.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        base = os.path.dirname(os.path.abspath(a.config))
        for m in data.get("models", []):
            b = m.get("batching")
            models.append(
                ModelConfig(
                    m["name"],
                    os.path.join(base, m["base_path"]),
                    m.get("policy", a.policy),
                    BatchingConfig(**b) if b else batching,
                )
            )
        keys = ("max_body_bytes", "timeout_s", "poll_s", "threads", "max_queued")
        extra = {k: data[k] for k in keys if k in data}
    if a.model_dir:
        path = os.path.abspath(a.model_dir)
        name = a.name or os.path.basename(path.rstrip(os.sep))
        models.append(ModelConfig(name, path, a.policy, batching))
    for spec in a.model:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model {spec!r}: expected NAME=PATH")
        models.append(ModelConfig(name, os.path.abspath(path), a.policy, batching))
    if not models:
        raise ValueError("nothing to serve: give MODEL_DIR, --model NAME=PATH or --config")
    for m in models:
        if not os.path.isdir(m.base_path):
            raise FileNotFoundError(f"model '{m.name}': no directory {m.base_path}")
    settings = {
        "max_body_bytes": int(a.max_body_mb * 1024 * 1024),
        "timeout_s": a.timeout_s,
        "poll_s": a.poll_s,
        "threads": a.threads,
        "max_queued": a.max_queued,
    }
    settings.update(extra)  # the config file's settings win over the flags' defaults
    return ServerConfig(models=models, **settings)


def cmd_serve(a: argparse.Namespace) -> None:
    """Run the server until interrupted."""
    from ember.serve import serve

    serve(
        build_config(a),
        host=a.host,
        port=a.port,
        workers=a.workers,
        access_log=not a.no_access_log,
    )
