"""``ember serve`` versions, hot reload, several models, the command line, workers and
graceful shutdown; the server runs in a thread (uvicorn) or a subprocess (``python -m ember
serve``), the client is httpx, models are saved by ``ember.export.save``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
pytest.importorskip("torch")

from test_serve import Server, X, free_port, oracle, save_mlp  # noqa: E402

from ember.cli import serve_cmd  # noqa: E402
from ember.serve import BatchingConfig, ModelConfig, ServerConfig, parse_policy  # noqa: E402


def wait_for(cond, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def versions(server, name="m"):
    r = server.client.get(f"/v1/models/{name}")
    return [(int(s["version"]), s["state"]) for s in r.json()["model_version_status"]]


def predict(client, name="m", version=None):
    path = f"/v1/models/{name}" + (f"/versions/{version}" if version else "") + ":predict"
    r = client.post(path, json={"instances": X})
    assert r.status_code == 200, r.text
    return np.asarray(r.json()["predictions"])


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        lg = logging.getLogger("ember.serve")
        self._old = lg.level
        lg.setLevel(logging.INFO)
        lg.addHandler(self)
        return self

    def __exit__(self, *exc):
        lg = logging.getLogger("ember.serve")
        lg.removeHandler(self)
        lg.setLevel(self._old)


def test_parse_policy():
    assert parse_policy("latest:3") == ("latest", 3)
    assert parse_policy("latest") == ("latest", 1)
    assert parse_policy("specific:2, 5") == ("specific", {2, 5})
    assert parse_policy("all") == ("all", None)
    for bad in ("latest:0", "latest:x", "specific:", "newest:1", "all:2"):
        with pytest.raises(ValueError, match="version policy"):
            parse_policy(bad)


def test_new_version_is_served_and_old_unloaded(tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    nets = {1: save_mlp(str(base / "1"), seed=1)}
    s = Server(ServerConfig([ModelConfig("m", str(base))], poll_s=0.05))
    try:
        np.testing.assert_allclose(predict(s.client), oracle(nets[1], X), rtol=1e-5, atol=1e-6)
        with LogCapture() as log:
            nets[2] = save_mlp(str(base / "2"), seed=2)
            wait_for(lambda: versions(s) == [(2, "AVAILABLE")], what="version 2")
        assert any("loaded version 2" in line for line in log.lines)
        assert any("version 1 unloaded" in line for line in log.lines)
        np.testing.assert_allclose(predict(s.client), oracle(nets[2], X), rtol=1e-5, atol=1e-6)
        r = s.client.post("/v1/models/m/versions/1:predict", json={"instances": X})
        assert r.status_code == 404 and "available versions: [2]" in r.json()["error"]
        # a version directory removed from disk is unloaded once its successor serves
        nets[3] = save_mlp(str(base / "3"), seed=3)
        wait_for(lambda: versions(s) == [(3, "AVAILABLE")], what="version 3")
        shutil.rmtree(base / "3")
        wait_for(lambda: versions(s) == [(2, "AVAILABLE")], what="back to version 2")
        np.testing.assert_allclose(predict(s.client), oracle(nets[2], X), rtol=1e-5, atol=1e-6)
    finally:
        s.stop()


@pytest.mark.parametrize(
    "policy, served",
    [("latest:2", [3, 2]), ("specific:1,3", [3, 1]), ("all", [3, 2, 1]), ("latest:1", [3])],
)
def test_version_policies(tmp_path, policy, served):
    base = tmp_path / "m"
    base.mkdir()
    nets = {v: save_mlp(str(base / str(v)), seed=v) for v in (1, 2, 3)}
    (base / "notes").mkdir()  # not a version: ignored
    s = Server(ServerConfig([ModelConfig("m", str(base), policy=policy)], poll_s=0))
    try:
        assert versions(s) == [(v, "AVAILABLE") for v in served]
        for v in served:
            np.testing.assert_allclose(
                predict(s.client, version=v), oracle(nets[v], X), rtol=1e-5, atol=1e-6
            )
            r = s.client.post(
                f"/v2/models/m/versions/{v}/infer",
                json={"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X}]},
            )
            assert r.json()["model_version"] == str(v)
        np.testing.assert_allclose(predict(s.client), oracle(nets[3], X), rtol=1e-5, atol=1e-6)
        assert s.client.get("/v2/models/m").json()["versions"] == [str(v) for v in sorted(served)]
        for v in {1, 2, 3} - set(served):
            r = s.client.post(f"/v1/models/m/versions/{v}:predict", json={"instances": X})
            assert r.status_code == 404
    finally:
        s.stop()


def test_broken_new_version_is_refused_and_old_keeps_serving(tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    net1 = save_mlp(str(base / "1"), seed=1)
    s = Server(ServerConfig([ModelConfig("m", str(base))], poll_s=0.05))
    try:
        with LogCapture() as log:
            # a complete version whose weights were damaged afterwards
            shutil.copytree(base / "1", tmp_path / "staging")
            w = tmp_path / "staging" / "weights.safetensors"
            w.write_bytes(w.read_bytes()[:-16])
            os.rename(tmp_path / "staging", base / "2")
            wait_for(lambda: (2, "END") in versions(s), what="version 2 refused")
        refused = [line for line in log.lines if "version 2" in line and "refused" in line]
        assert refused and "weights.safetensors" in refused[0] and "keeps serving [1]" in refused[0]
        st = s.client.get("/v1/models/m").json()["model_version_status"]
        assert st[0]["version"] == "1" and st[0]["state"] == "AVAILABLE"
        assert st[1]["status"]["error_code"] == "UNKNOWN"
        assert "weights.safetensors" in st[1]["status"]["error_message"]
        np.testing.assert_allclose(predict(s.client), oracle(net1, X), rtol=1e-5, atol=1e-6)
        r = s.client.get("/v2/models/m/versions/2/ready")
        assert r.status_code == 400 and r.json()["ready"] is False
        assert s.client.get("/v2/health/ready").json() == {"ready": True}
        # the same version, repaired, is picked up
        shutil.rmtree(base / "2")
        net2 = save_mlp(str(base / "2"), seed=2)
        wait_for(lambda: versions(s) == [(2, "AVAILABLE")], what="repaired version 2")
        np.testing.assert_allclose(predict(s.client), oracle(net2, X), rtol=1e-5, atol=1e-6)
    finally:
        s.stop()


def test_version_that_loads_but_cannot_run_is_refused(tmp_path):
    import ember.export

    base = tmp_path / "m"
    base.mkdir()
    net1 = save_mlp(str(base / "1"), seed=1)
    warmed: list[tuple] = []

    def loader(path):
        m = ember.export.load(path)
        sig = m.signatures["serving_default"]
        run = sig.run

        def checked_run(feeds):
            warmed.append((os.path.basename(path), feeds["x"].shape))
            if path.endswith("2"):
                raise RuntimeError("kernel failed")
            return run(feeds)

        sig.run = checked_run
        return m

    cfg = ServerConfig([ModelConfig("m", str(base), batching=BatchingConfig(16, 1.0))], poll_s=0.05)
    s = Server(cfg, loader)
    try:
        # warmed up at batch sizes 1, 8 and the maximum before serving
        assert warmed == [("1", (1, 4)), ("1", (8, 4)), ("1", (16, 4))]
        with LogCapture() as log:
            save_mlp(str(base / "2"), seed=2)
            wait_for(lambda: (2, "END") in versions(s), what="version 2 refused")
        assert any("version 2" in line and "kernel failed" in line for line in log.lines)
        np.testing.assert_allclose(predict(s.client), oracle(net1, X), rtol=1e-5, atol=1e-6)
    finally:
        s.stop()


def test_no_loadable_version(tmp_path):
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.json").write_text("{not json")
    s = Server(ServerConfig([ModelConfig("m", str(base))], poll_s=0))
    try:
        r = s.client.post("/v1/models/m:predict", json={"instances": X})
        assert r.status_code == 404 and "no version available" in r.json()["error"]
        r = s.client.get("/v2/health/ready")
        assert r.status_code == 400 and r.json() == {"ready": False}
        assert s.client.get("/v2/health/live").status_code == 200
        assert s.client.get("/v2/models/m/ready").status_code == 400
    finally:
        s.stop()


@pytest.mark.parametrize("batching", [None, BatchingConfig(8, 2.0)])
def test_hot_switch_under_load_loses_no_request(tmp_path, batching):
    base = tmp_path / "m"
    base.mkdir()
    nets = {1: save_mlp(str(base / "1"), seed=1)}
    s = Server(ServerConfig([ModelConfig("m", str(base), batching=batching)], poll_s=0.02))
    results: list[tuple[int, int, list]] = []
    stop = threading.Event()
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X}]}

    def client():
        with httpx.Client(base_url=s.url, timeout=20) as c:
            while not stop.is_set():
                r = c.post("/v2/models/m/infer", json=body)
                j = r.json()
                results.append((r.status_code, int(j.get("model_version", 0)), j))

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for v in (2, 3, None):
            # the clients get answers from the serving version before the next one arrives
            wait_for(
                lambda v=v: sum(r[1] == (v or 4) - 1 for r in results) >= 5,
                what=f"answers from version {(v or 4) - 1}",
            )
            if v is not None:
                nets[v] = save_mlp(str(base / str(v)), seed=v)
                wait_for(lambda v=v: versions(s) == [(v, "AVAILABLE")], what=f"version {v}")
    finally:
        stop.set()
        for t in threads:
            t.join()
        s.stop()
    assert len(results) > 20
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:3]
    seen = set()
    for _, v, j in results:
        seen.add(v)
        got = np.reshape(j["outputs"][0]["data"], (2, 3))
        np.testing.assert_allclose(got, oracle(nets[v], X), rtol=1e-5, atol=1e-6)
    assert seen == {1, 2, 3}


def test_several_models_and_single_saved_model_dir(tmp_path):
    (tmp_path / "a").mkdir()
    net_a = save_mlp(str(tmp_path / "a" / "1"), seed=1)
    net_b = save_mlp(str(tmp_path / "b"), seed=2)  # a bare saved model: served as version 1
    cfg = ServerConfig(
        [ModelConfig("a", str(tmp_path / "a")), ModelConfig("b", str(tmp_path / "b"))], poll_s=0
    )
    s = Server(cfg)
    try:
        np.testing.assert_allclose(predict(s.client, "a"), oracle(net_a, X), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(predict(s.client, "b"), oracle(net_b, X), rtol=1e-5, atol=1e-6)
        assert versions(s, "b") == [(1, "AVAILABLE")]
    finally:
        s.stop()
    with pytest.raises(ValueError, match="unique"):
        Server(ServerConfig([ModelConfig("a", "x"), ModelConfig("a", "y")]))
    with pytest.raises(ValueError, match="model name"):
        ModelConfig("a/b", "x")


def _args(*argv):
    p = argparse.ArgumentParser()
    serve_cmd.add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["serve", *argv])


def test_cli_config(tmp_path):
    for d in ("a", "b", "c"):
        (tmp_path / d).mkdir()
    cfg = serve_cmd.build_config(
        _args(str(tmp_path / "a"), "--model", f"bee={tmp_path / 'b'}", "--batching", "16,3")
    )
    assert [(m.name, m.base_path) for m in cfg.models] == [
        ("a", str(tmp_path / "a")),
        ("bee", str(tmp_path / "b")),
    ]
    assert cfg.models[0].batching == BatchingConfig(16, 3.0)
    conf = tmp_path / "serve.json"
    conf.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "c",
                        "base_path": "c",
                        "policy": "latest:2",
                        "batching": {"max_batch_size": 4, "max_wait_ms": 1},
                    },
                ],
                "timeout_s": 5,
            }
        )
    )
    cfg = serve_cmd.build_config(_args("--config", str(conf)))
    (m,) = cfg.models
    assert (m.name, m.base_path, m.policy) == ("c", str(tmp_path / "c"), "latest:2")
    assert m.batching == BatchingConfig(4, 1) and cfg.timeout_s == 5
    for argv, msg in [
        ((), "nothing to serve"),
        (("--model", "oops"), "NAME=PATH"),
        ((str(tmp_path / "zzz"),), "no directory"),
        ((str(tmp_path / "a"), "--batching", "x"), "MAX_BATCH"),
        ((str(tmp_path / "a"), "--batching", "0,1"), "max_batch_size"),
        ((str(tmp_path / "a"), "--policy", "newest"), "version policy"),
    ]:
        with pytest.raises((ValueError, FileNotFoundError), match=msg):
            serve_cmd.build_config(_args(*argv))


def _start(argv, port):
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    p = subprocess.Popen(
        [sys.executable, "-m", "ember", "serve", *argv, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        if p.poll() is not None:
            raise AssertionError(f"the server exited: {p.stdout.read()}")
        try:
            return httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=60, what="the server to start")
    return p, url


def test_cli_serves_and_shuts_down_gracefully(tmp_path):
    base = tmp_path / "mlp"
    base.mkdir()
    net = save_mlp(str(base / "1"), seed=4)
    # batching with a long wait keeps a lone request in flight for ~2 s
    p, url = _start([str(base), "--batching", "64,2000"], free_port())
    try:
        box = {}
        client = httpx.Client(base_url=url, timeout=30)
        assert client.get("/v2/health/live").status_code == 200  # the connection is open

        def slow():
            box["r"] = client.post("/v1/models/mlp:predict", json={"instances": X})

        t = threading.Thread(target=slow)
        t0 = time.monotonic()
        t.start()
        time.sleep(0.7)
        p.send_signal(signal.SIGTERM)
        t.join(30)
        client.close()
        assert time.monotonic() - t0 > 1.5
        r = box["r"]
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["predictions"], oracle(net, X), rtol=1e-5, atol=1e-6)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode in (0, -signal.SIGTERM), out
    assert "http://127.0.0.1:" in out  # loopback unless told otherwise
    access = [json.loads(line) for line in out.splitlines() if line.startswith('{"ts"')]
    assert any(a["path"] == "/v1/models/mlp:predict" and a["status"] == 200 for a in access)
    assert "loaded version 1" in out


@pytest.mark.slow  # two worker processes each import ember: ~10 s on the shared VM
def test_cli_workers(tmp_path):
    base = tmp_path / "mlp"
    base.mkdir()
    net = save_mlp(str(base / "1"), seed=5)
    p, url = _start([str(base), "--workers", "2", "--no-access-log"], free_port())
    try:
        with httpx.Client(base_url=url, timeout=20) as c:
            for _ in range(6):
                r = c.post("/v1/models/mlp:predict", json={"instances": X})
                assert r.status_code == 200
                np.testing.assert_allclose(
                    r.json()["predictions"], oracle(net, X), rtol=1e-5, atol=1e-6
                )
            text = c.get("/metrics").text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("ember_serve_requests_total") and 'code="200"' in x and "mlp" in x
        )
        assert float(line.split()[-1]) == 6.0  # summed over the workers
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()


def test_shutdown_finishes_an_in_flight_inference_without_batching(tmp_path):
    import ember.export

    base = tmp_path / "m"
    base.mkdir()
    net = save_mlp(str(base / "1"), seed=6)
    started = threading.Event()

    def slow_loader(path):
        m = ember.export.load(path)
        sig = m.signatures["serving_default"]
        run = sig.run

        def slow_run(feeds):
            if feeds["x"].shape[0] == len(X):  # the request (warm-up runs one row)
                started.set()
                time.sleep(1.5)
            return run(feeds)

        sig.run = slow_run
        return m

    s = Server(ServerConfig([ModelConfig("m", str(base))], poll_s=0), slow_loader)
    box = {}

    def call():
        box["r"] = s.client.post("/v1/models/m:predict", json={"instances": X})

    t = threading.Thread(target=call)
    t.start()
    assert started.wait(30)
    s.uv.should_exit = True  # what SIGTERM does: stop accepting, let in-flight requests end
    t.join(30)
    s.thread.join(30)
    assert not s.thread.is_alive()
    r = box["r"]
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], oracle(net, X), rtol=1e-5, atol=1e-6)
    with pytest.raises(httpx.TransportError):  # and it has stopped
        httpx.get(s.url + "/v2/health/live", timeout=2)
    s.client.close()
