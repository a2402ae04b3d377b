"""Load test of ``ember serve`` on loopback, beside onnxruntime in a minimal FastAPI app.

Run: python bench/bench_serve.py [--requests N] [--concurrency 1,8,64]

One MLP (64-256-256-10, ReLU) is saved with ``ember.export.save`` and exported with
``ember.onnx.export``. The servers run it in turn, each in its own process on 127.0.0.1:
``ember serve`` without batching, with dynamic batching (``--batching 64,0``: whatever is
queued when the model is free, up to 64 rows; ``--batching 64,2``: also wait up to 2 ms for
more), and onnxruntime inside a FastAPI app started by this script (``fastapi`` is needed
for the bench only). The client (this process: a minimal HTTP/1.1 client on asyncio, one
keep-alive connection per concurrent client) sends the same TF Serving row-format request
(one row) a bounded number of times at each concurrency, after a warm-up, and reports
throughput, p50 and p99 latency and the failed requests. Client and servers share the
machine's cores, so the absolute numbers are a lower bound; the comparison is like for like.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

ORT_APP = """
import sys
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import Body, FastAPI

sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
app = FastAPI()


@app.get("/v2/health/ready")
def ready():
    return {"ready": True}


@app.post("/v1/models/mlp:predict")
def predict(body: dict = Body(...)):
    x = np.asarray(body["instances"], dtype=np.float32)
    return {"predictions": sess.run(None, {name: x})[0].tolist()}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_models(tmp: str) -> tuple[str, str]:
    import ember
    import ember.export
    import ember.onnx

    ember.manual_seed(0)
    net = ember.nn.Sequential(
        ember.nn.Linear(64, 256),
        ember.nn.ReLU(),
        ember.nn.Linear(256, 256),
        ember.nn.ReLU(),
        ember.nn.Linear(256, 10),
    )
    base = os.path.join(tmp, "mlp")
    os.makedirs(base)
    ember.export.save(net, os.path.join(base, "1"), ember.randn(2, 64), input_names=["x"])
    onnx_path = os.path.join(tmp, "mlp.onnx")
    ember.onnx.export(
        net, ember.randn(2, 64), onnx_path, input_names=["x"], dynamic_axes={"x": {0: "batch"}}
    )
    return base, onnx_path


def start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen(
        [*cmd, str(port)] if cmd[1] != "-m" else [*cmd, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"server {cmd} exited with status {p.returncode}")
        try:
            if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return p, url
        except httpx.TransportError:
            time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"server {cmd} did not start")


async def _one(reader, writer, request: bytes) -> bool:
    """Send one keep-alive HTTP/1.1 request and read its answer; True on a 200 prediction."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = await reader.readexactly(length)
    return status == 200 and body.startswith(b'{"predictions"')


async def load(url: str, body: bytes, concurrency: int, requests: int) -> dict:
    """``requests`` requests from ``concurrency`` clients, each on its own connection.

    A minimal HTTP/1.1 client on asyncio streams: a general client's per-request cost
    (httpx's pool) would be measured instead of the servers' at 64 clients."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/models/mlp:predict HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    lat: list[float] = []
    failed = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, failed
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    ok = await _one(reader, writer, request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                lat.append(time.perf_counter() - t0)
                failed += not ok
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
        "failed": failed,
        "n": len(lat),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=500, help="requests per level and repeat")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    levels = [int(c) for c in a.concurrency.split(",")]
    import json

    import httpx

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 64)).astype(np.float32)
    body = json.dumps({"instances": x.tolist()}).encode()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        base, onnx_path = make_models(tmp)
        app_py = os.path.join(tmp, "ort_app.py")
        Path(app_py).write_text(ORT_APP)
        ember_cmd = [sys.executable, "-m", "ember", "serve", base, "--name", "mlp"]
        specs = [
            ("ember serve", [*ember_cmd, "--no-access-log"]),
            ("ember serve --batching 64,0", [*ember_cmd, "--no-access-log", "--batching", "64,0"]),
            ("ember serve --batching 64,2", [*ember_cmd, "--no-access-log", "--batching", "64,2"]),
            ("onnxruntime + FastAPI", [sys.executable, app_py, onnx_path]),
        ]
        # every server idles while another is measured; the order rotates between repeats
        servers = []
        try:
            for label, cmd in specs:
                servers.append((label, *start(cmd)))
            reference = None
            for _label, _, url in servers:
                pred = np.asarray(
                    httpx.post(
                        url + "/v1/models/mlp:predict",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    ).json()["predictions"]
                )
                reference = pred if reference is None else reference
                np.testing.assert_allclose(pred, reference, rtol=1e-4, atol=1e-5)
                asyncio.run(load(url, body, 8, 200))  # warm-up
            runs: dict[tuple[str, int], list[dict]] = {}
            for r in range(a.repeats):
                for c in levels:
                    k = (r + c) % len(servers)
                    for label, _, url in servers[k:] + servers[:k]:
                        res = asyncio.run(load(url, body, c, a.requests))
                        runs.setdefault((label, c), []).append(res)
                        print(
                            f"repeat {r} {label:30s} c={c:3d} {res['rps']:7.0f} req/s "
                            f"p50 {res['p50']:7.2f} ms p99 {res['p99']:7.2f} ms "
                            f"failed {res['failed']}/{res['n']}",
                            flush=True,
                        )
        finally:
            for _, p, _ in servers:
                p.terminate()
                p.wait(30)
    ort = specs[-1][0]
    print(f"\nload average after: {os.getloadavg()}")
    print(
        f"\nmedians of {a.repeats} repeats of {a.requests} requests; the ratio is the median "
        "of the per-repeat throughput ratios to onnxruntime + FastAPI"
    )
    print("\n| server | clients | req/s | p50 ms | p99 ms | failed | req/s vs ORT |")
    print("|---|---|---|---|---|---|---|")
    for c in levels:
        for label, _ in specs:
            rs = runs[(label, c)]
            ratio = statistics.median(
                x["rps"] / o["rps"] for x, o in zip(rs, runs[(ort, c)], strict=True)
            )
            failed = sum(x["failed"] for x in rs)
            total = sum(x["n"] for x in rs)
            print(
                f"| {label} | {c} | {statistics.median(x['rps'] for x in rs):.0f} | "
                f"{statistics.median(x['p50'] for x in rs):.2f} | "
                f"{statistics.median(x['p99'] for x in rs):.2f} | {failed}/{total} | "
                f"{ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
