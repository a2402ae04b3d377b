"""The ASGI app: TF Serving REST (``/v1``), KServe V2 (``/v2``), ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ember

from . import codec
from ._deps import require
from .errors import BadRequest, NotFound, ServeError, Timeout, TooLarge, Unavailable
from .metrics import Metrics
from .repository import ModelConfig, Repository

__all__ = ["ServerConfig", "create_app"]

log = logging.getLogger("ember.serve")
access_log = logging.getLogger("ember.serve.access")

_V1 = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/([^/:]+))?(/metadata|:predict|:classify|:regress)?$"
)
_V2 = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?$")


@dataclass
class ServerConfig:
    """Everything one server process needs (JSON-able, so workers can rebuild it)."""

    models: list[ModelConfig] = field(default_factory=list)
    max_body_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 30.0
    poll_s: float = 1.0
    threads: int = 4
    max_queued: int = 1024


class _Json:
    """A JSON response that, like TF Serving, writes non-finite floats as NaN/Infinity."""

    def __init__(self, starlette: Any) -> None:
        self._resp = starlette.responses.Response

    def __call__(self, obj: Any, status: int = 200) -> Any:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return self._resp(body, status_code=status, media_type="application/json")


def _version(v: str | None) -> int | None:
    if v is None:
        return None
    if not v.isdigit() or int(v) < 1:
        raise BadRequest(f"model version must be a positive integer, got {v!r}")
    return int(v)


async def _body(request: Any, limit: int, timeout: float) -> Any:
    """The request's JSON, refusing oversize, empty or malformed bodies."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")

    async def read() -> bytes:
        chunks, size = [], 0
        async for c in request.stream():
            size += len(c)
            if size > limit:
                raise TooLarge(f"request body exceeds the limit of {limit} bytes")
            chunks.append(c)
        return b"".join(chunks)

    try:
        raw = await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise ServeError("timed out reading the request body", 408) from None
    if not raw.strip():
        raise BadRequest("empty request body; expected a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON in the request body: {e}") from None


def _tf_spec(s: Any) -> dict[str, Any]:
    return {
        "dtype": codec.tf_datatype(s.dtype),
        "tensor_shape": {
            "dim": [{"size": str(-1 if d is None else d), "name": ""} for d in s.shape],
            "unknown_rank": False,
        },
        "name": s.name,
    }


def _v2_spec(s: Any) -> dict[str, Any]:
    return {
        "name": s.name,
        "datatype": codec.v2_datatype(s.dtype),
        "shape": [-1 if d is None else d for d in s.shape],
    }


def create_app(config: ServerConfig, loader: Any = None) -> Any:
    """A Starlette app serving ``config.models`` (``loader`` defaults to ``ember.export.load``).

    Example:
        >>> from ember.serve import create_app, ServerConfig
        >>> app = create_app(ServerConfig(models=[]))
        >>> type(app).__name__
        'Starlette'
    """
    require("starlette")
    import starlette.responses
    from starlette.applications import Starlette
    from starlette.routing import Route

    reply = _Json(starlette)
    metrics = Metrics()
    repo = Repository(config.models, loader, metrics.on_batch)
    executor = ThreadPoolExecutor(
        max_workers=max(1, config.threads), thread_name_prefix="ember-serve"
    )

    backlog = [0]  # executions submitted and not finished (timed-out ones included)
    backlog_lock = threading.Lock()

    def _done(_: Any) -> None:
        with backlog_lock:
            backlog[0] -= 1

    async def infer(lv: Any, sig_name: str | None, feeds: dict) -> dict:
        with backlog_lock:
            if backlog[0] >= config.max_queued:
                raise Unavailable(
                    f"the server is overloaded: {backlog[0]} requests are queued "
                    f"(limit {config.max_queued}); retry later"
                )
            backlog[0] += 1
        try:
            fut = lv.submit(sig_name, feeds, executor)
        except BaseException:
            _done(None)
            raise
        fut.add_done_callback(_done)
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(fut)), config.timeout_s
            )
        except TimeoutError:
            raise Timeout(f"inference did not finish within {config.timeout_s} s") from None
        except ValueError as e:  # the signature refused the feeds (name, dtype, shape)
            raise BadRequest(str(e)) from None

    async def handle(request: Any, protocol: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        request.state.model = "-"
        try:
            resp = await fn(request)
            kind = None
        except ServeError as e:
            resp, kind = reply({"error": str(e)}, e.status), e.kind
        except Exception as e:
            log.exception("unexpected error answering %s", request.url.path)
            resp, kind = (
                reply({"error": f"internal error: {type(e).__name__}: {e}"}, 500),
                "internal",
            )
        metrics.observe(
            request.state.model, protocol, resp.status_code, time.perf_counter() - t0, kind
        )
        return resp

    # ---- TF Serving REST -------------------------------------------------------------
    async def v1(request: Any) -> Any:
        m = _V1.match(request.url.path)
        if m is None:
            raise NotFound(f"no such endpoint: {request.url.path}")
        name, ver, tail = m.group(1), _version(m.group(2)), m.group(3)
        model = repo.get(name)
        request.state.model = name  # only served names become metric labels
        if request.method == "GET" and tail is None:
            versions = model.versions
            if ver is not None:
                model.get(ver)
            listed = [ver] if ver is not None else sorted(versions, reverse=True)
            status = [
                {
                    "version": str(v),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v in listed
            ]
            if ver is None:
                for v, (_, err) in sorted(model.failed.items(), reverse=True):
                    if v not in versions:
                        status.append(
                            {
                                "version": str(v),
                                "state": "END",
                                "status": {"error_code": "UNKNOWN", "error_message": err},
                            }
                        )
            return reply({"model_version_status": status})
        if request.method == "GET" and tail == "/metadata":
            lv = model.get(ver)
            sigs = {
                n: {
                    "inputs": {s.name: _tf_spec(s) for s in sig.inputs},
                    "outputs": {s.name: _tf_spec(s) for s in sig.outputs},
                    "method_name": "tensorflow/serving/predict",
                }
                for n, sig in lv.model.signatures.items()
            }
            return reply(
                {
                    "model_spec": {"name": name, "signature_name": "", "version": str(lv.version)},
                    "metadata": {"signature_def": {"signature_def": sigs}},
                }
            )
        if request.method == "POST" and tail == ":predict":
            body = await _body(request, config.max_body_bytes, config.timeout_s)
            lv = model.get(ver)
            sig_name = body.get("signature_name") if isinstance(body, dict) else None
            if sig_name is not None and not isinstance(sig_name, str):
                raise BadRequest("'signature_name' must be a string")
            sig = lv.signature(sig_name)
            feeds, rows = codec.decode_tf(body, sig)
            out = await infer(lv, sig_name, feeds)
            return reply(codec.encode_tf(out, rows))
        if request.method == "POST" and tail in (":classify", ":regress"):
            raise ServeError(f"{tail[1:]} is not supported; use :predict", 501)
        raise ServeError(f"method {request.method} not allowed on {request.url.path}", 405)

    # ---- KServe V2 ---------------------------------------------------------------------
    async def v2_live(request: Any) -> Any:
        return reply({"live": True})

    async def v2_ready(request: Any) -> Any:
        ready = all(m.versions for m in repo.models.values())
        return reply({"ready": ready}, 200 if ready else 400)

    async def v2_server(request: Any) -> Any:
        return reply({"name": "ember", "version": ember.__version__, "extensions": []})

    async def v2(request: Any) -> Any:
        m = _V2.match(request.url.path)
        if m is None:
            raise NotFound(f"no such endpoint: {request.url.path}")
        name, ver, tail = m.group(1), _version(m.group(2)), m.group(3)
        model = repo.get(name)
        request.state.model = name  # only served names become metric labels
        if request.method == "GET" and tail == "/ready":
            try:
                lv = model.get(ver)
            except NotFound:
                if ver is not None and ver not in model.on_disk() and ver not in model.failed:
                    raise
                return reply({"name": name, "ready": False}, 400)
            return reply({"name": name, "version": str(lv.version), "ready": True})
        if request.method == "GET" and tail is None:
            lv = model.get(ver)
            sig = lv.signature(None)
            return reply(
                {
                    "name": name,
                    "versions": [str(v) for v in sorted(model.versions)],
                    "platform": "ember",
                    "inputs": [_v2_spec(s) for s in sig.inputs],
                    "outputs": [_v2_spec(s) for s in sig.outputs],
                }
            )
        if request.method == "POST" and tail == "/infer":
            body = await _body(request, config.max_body_bytes, config.timeout_s)
            lv = model.get(ver)
            sig = lv.signature(None)
            feeds, wanted, _params = codec.decode_v2(body, sig)
            out = await infer(lv, None, feeds)
            rid = body.get("id")
            return reply(codec.encode_v2(out, wanted, name, lv.version, rid, sig.outputs))
        raise ServeError(f"method {request.method} not allowed on {request.url.path}", 405)

    async def metrics_endpoint(request: Any) -> Any:
        data, ctype = metrics.exposition()
        return starlette.responses.Response(data, media_type=ctype)

    def wrap(protocol: str, fn: Any) -> Any:
        async def endpoint(request: Any) -> Any:
            return await handle(request, protocol, fn)

        return endpoint

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await asyncio.get_running_loop().run_in_executor(None, repo.start, config.poll_s)
        yield
        # uvicorn has already let the in-flight requests finish; drain the batch queues
        await asyncio.get_running_loop().run_in_executor(None, repo.stop)
        executor.shutdown(wait=True)

    both = ["GET", "POST", "PUT", "DELETE"]
    routes = [
        Route("/v1/models/{rest:path}", wrap("tfserving", v1), methods=both),
        Route("/v2/health/live", wrap("v2", v2_live), methods=["GET"]),
        Route("/v2/health/ready", wrap("v2", v2_ready), methods=["GET"]),
        Route("/v2", wrap("v2", v2_server), methods=["GET"]),
        Route("/v2/models/{rest:path}", wrap("v2", v2), methods=both),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)

    async def not_found(request: Any, exc: Any) -> Any:
        code = getattr(exc, "status_code", 404)
        msg = f"no such endpoint: {request.method} {request.url.path}"
        return reply({"error": msg if code in (404, 405) else str(exc)}, code)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_found)
    app.state.repository = repo
    app.state.metrics = metrics
    app.add_middleware(_AccessLog)
    return app


class _AccessLog:
    """ASGI middleware writing one JSON line per request to ``ember.serve.access``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        info: dict[str, Any] = {"status": 500, "bytes": 0}

        async def send_wrapper(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                info["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                info["bytes"] += len(msg.get("body", b""))
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client") or ("-", 0)
                access_log.info(
                    json.dumps(
                        {
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                            + f".{int(time.time() * 1000) % 1000:03d}Z",
                            "client": f"{client[0]}:{client[1]}",
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": info["status"],
                            "bytes": info["bytes"],
                            "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
                        }
                    )
                )
