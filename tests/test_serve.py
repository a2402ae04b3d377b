"""``ember.serve`` through a real HTTP client against a real server (uvicorn in a thread).

Every endpoint of TF Serving's REST API and of KServe V2, every error shape, dynamic
batching and the metrics. Models are tiny MLPs saved by ``ember.export.save``; the oracle is
PyTorch running the same weights. ``test_serve_versions.py`` covers versions, hot reload,
the command line and graceful shutdown.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import logging
import os
import socket
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

import ember  # noqa: E402
import ember.export  # noqa: E402
from ember.serve import (  # noqa: E402
    Batcher,
    BatchingConfig,
    ModelConfig,
    ServerConfig,
    codec,
    create_app,
)
from ember.serve.errors import BadRequest  # noqa: E402

# ---------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_mlp(seed: int, n_in: int = 4, n_out: int = 3) -> ember.nn.Module:
    ember.manual_seed(seed)
    return ember.nn.Sequential(ember.nn.Linear(n_in, 8), ember.nn.ReLU(), ember.nn.Linear(8, n_out))


def torch_mlp(net: ember.nn.Module) -> torch.nn.Module:
    """The same MLP in PyTorch (the oracle)."""
    w = [p.detach().numpy() for p in net.parameters()]
    t = torch.nn.Sequential(
        torch.nn.Linear(w[0].shape[1], w[0].shape[0]),
        torch.nn.ReLU(),
        torch.nn.Linear(w[2].shape[1], w[2].shape[0]),
    )
    with torch.no_grad():
        for p, a in zip(t.parameters(), w, strict=True):
            p.copy_(torch.from_numpy(a.copy()))
    return t


def oracle(net: ember.nn.Module, x) -> np.ndarray:
    with torch.no_grad():
        return torch_mlp(net)(torch.tensor(np.asarray(x, np.float32))).numpy()


def save_mlp(path: str, seed: int) -> ember.nn.Module:
    net = make_mlp(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ember.export.save(net, path, ember.randn(2, 4), input_names=["x"])
    return net


class Server:
    """uvicorn serving ``create_app(config)`` on a free loopback port, in a thread."""

    def __init__(self, config: ServerConfig, loader=None) -> None:
        import uvicorn

        self.app = create_app(config, loader)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.uv = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=10,
            )
        )
        self.thread = threading.Thread(target=self.uv.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.uv.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=20)

    def stop(self) -> None:
        self.client.close()
        self.uv.should_exit = True
        self.thread.join(20)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    mlp = save_mlp(str(root / "mlp" / "1"), seed=0)
    # two inputs, two outputs
    os.makedirs(root / "pair")
    ember.export.save(
        lambda a, b: (a + b, a * b),
        str(root / "pair" / "1"),
        (ember.randn(2, 3), ember.randn(2, 3)),
        input_names=["a", "b"],
        output_names=["sum", "prod"],
    )
    return SimpleNamespace(root=root, mlp=mlp)


@pytest.fixture(scope="module")
def server(models):
    cfg = ServerConfig(
        models=[
            ModelConfig("mlp", str(models.root / "mlp")),
            ModelConfig("pair", str(models.root / "pair")),
        ],
        max_body_bytes=64 * 1024,
        poll_s=0,
    )
    s = Server(cfg)
    yield s
    s.stop()


X = [[1.0, 2.0, 5.0, -1.0], [0.5, -0.25, 3.0, 2.0]]


def still_serving(server: Server, mlp) -> None:
    r = server.client.post("/v1/models/mlp:predict", json={"instances": X})
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], oracle(mlp, X), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- TF Serving REST


def test_tf_model_status(server):
    r = server.client.get("/v1/models/mlp")
    assert r.status_code == 200
    assert r.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    r = server.client.get("/v1/models/mlp/versions/1")
    assert r.status_code == 200 and r.json()["model_version_status"][0]["version"] == "1"


def test_tf_metadata(server):
    for path in ("/v1/models/mlp/metadata", "/v1/models/mlp/versions/1/metadata"):
        r = server.client.get(path)
        assert r.status_code == 200
        meta = r.json()
        assert meta["model_spec"] == {"name": "mlp", "signature_name": "", "version": "1"}
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        x = sig["inputs"]["x"]
        assert x["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in x["tensor_shape"]["dim"]] == ["-1", "4"]
        out = sig["outputs"]["output_0"]
        assert [d["size"] for d in out["tensor_shape"]["dim"]] == ["-1", "3"]
        assert sig["method_name"] == "tensorflow/serving/predict"


def test_tf_predict_as_documented(server, models):
    # the request exactly as TF Serving's REST API documentation writes a row-format call
    body = """{
  "signature_name": "serving_default",
  "instances": [[1.0, 2.0, 5.0, -1.0], [0.5, -0.25, 3.0, 2.0]]
}"""
    r = server.client.post(
        "/v1/models/mlp:predict", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["predictions"], oracle(models.mlp, X), rtol=1e-5, atol=1e-6)
    r = server.client.post("/v1/models/mlp/versions/1:predict", content=body)
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["predictions"], oracle(models.mlp, X), rtol=1e-5, atol=1e-6)


def test_tf_predict_formats(server, models):
    want = oracle(models.mlp, X)
    c = server.client
    # columnar, unnamed and named
    for body in ({"inputs": X}, {"inputs": {"x": X}}):
        r = c.post("/v1/models/mlp:predict", json=body)
        assert r.status_code == 200, r.text
        np.testing.assert_allclose(r.json()["outputs"], want, rtol=1e-5, atol=1e-6)
    # rows given as objects naming the input
    r = c.post("/v1/models/mlp:predict", json={"instances": [{"x": row} for row in X]})
    np.testing.assert_allclose(r.json()["predictions"], want, rtol=1e-5, atol=1e-6)
    # integers are accepted for a float input
    r = c.post("/v1/models/mlp:predict", json={"instances": [[1, 2, 3, 4]]})
    np.testing.assert_allclose(
        r.json()["predictions"], oracle(models.mlp, [[1, 2, 3, 4]]), rtol=1e-5, atol=1e-6
    )


def test_tf_multi_input_output(server):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]])
    rows = [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(2)]
    r = server.client.post("/v1/models/pair:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [sorted(p) for p in preds] == [["prod", "sum"]] * 2
    np.testing.assert_allclose([p["sum"] for p in preds], a + b, rtol=1e-6)
    np.testing.assert_allclose([p["prod"] for p in preds], a * b, rtol=1e-6)
    r = server.client.post(
        "/v1/models/pair:predict", json={"inputs": {"a": a.tolist(), "b": b.tolist()}}
    )
    out = r.json()["outputs"]
    np.testing.assert_allclose(out["sum"], a + b, rtol=1e-6)
    np.testing.assert_allclose(out["prod"], a * b, rtol=1e-6)
    # several inputs need named rows
    r = server.client.post("/v1/models/pair:predict", json={"instances": a.tolist()})
    assert r.status_code == 400 and "several inputs" in r.json()["error"]


def test_tf_b64_values():
    spec = SimpleNamespace(
        inputs=[SimpleNamespace(name="img_bytes", dtype="bytes", shape=(None,))], outputs=[]
    )
    raw = [b"\x89PNG\x00\x01", b"hello"]
    body = {"instances": [{"b64": base64.b64encode(v).decode()} for v in raw]}
    feeds, rows = codec.decode_tf(body, spec)
    assert rows and feeds["img_bytes"].tolist() == raw
    # TF Serving's rule: outputs named *_bytes are base64 objects, other strings are text
    out = codec.encode_tf({"echo_bytes": feeds["img_bytes"]}, True)
    assert out == {"predictions": [{"b64": base64.b64encode(v).decode()} for v in raw]}
    out = codec.encode_tf({"echo": feeds["img_bytes"]}, False)
    assert out == {"outputs": [{"b64": base64.b64encode(raw[0]).decode()}, "hello"]}  # not UTF-8
    with pytest.raises(BadRequest, match="invalid base64"):
        codec.decode_tf({"instances": [{"b64": "%%%"}]}, spec)


def test_tf_b64_for_numeric_input_is_refused(server, models):
    r = server.client.post("/v1/models/mlp:predict", json={"instances": [{"b64": "AAAA"}]})
    assert r.status_code == 400
    assert "input 'x'" in r.json()["error"] and "float32" in r.json()["error"]
    still_serving(server, models.mlp)


# ---------------------------------------------------------------------------- KServe V2


def test_v2_health_and_server_metadata(server):
    c = server.client
    assert c.get("/v2/health/live").json() == {"live": True}
    r = c.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    meta = c.get("/v2").json()
    assert meta["name"] == "ember" and meta["version"] == ember.__version__
    assert isinstance(meta["extensions"], list)


def test_v2_model_metadata_and_ready(server):
    c = server.client
    for path in ("/v2/models/mlp", "/v2/models/mlp/versions/1"):
        r = c.get(path)
        assert r.status_code == 200
        assert r.json() == {
            "name": "mlp",
            "versions": ["1"],
            "platform": "ember",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "output_0", "datatype": "FP32", "shape": [-1, 3]}],
        }
    for path in ("/v2/models/mlp/ready", "/v2/models/mlp/versions/1/ready"):
        r = c.get(path)
        assert r.status_code == 200 and r.json()["ready"] is True
    r = c.get("/v2/models/mlp/versions/7/ready")
    assert r.status_code == 404 and "version 7" in r.json()["error"]


def test_v2_infer_as_documented(server, models):
    # the request as the Open Inference Protocol's documentation writes it: flat row-major data
    body = """{
      "id" : "42",
      "inputs" : [
        {
          "name" : "x",
          "shape" : [ 2, 4 ],
          "datatype" : "FP32",
          "data" : [ 1.0, 2.0, 5.0, -1.0, 0.5, -0.25, 3.0, 2.0 ]
        }
      ],
      "outputs" : [
        {
          "name" : "output_0"
        }
      ]
    }"""
    r = server.client.post("/v2/models/mlp/infer", content=body)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["model_name"] == "mlp" and res["model_version"] == "1" and res["id"] == "42"
    (out,) = res["outputs"]
    assert out["name"] == "output_0" and out["datatype"] == "FP32" and out["shape"] == [2, 3]
    np.testing.assert_allclose(
        np.reshape(out["data"], (2, 3)), oracle(models.mlp, X), rtol=1e-5, atol=1e-6
    )


def test_v2_infer_variants(server, models):
    c = server.client
    # nested data, no requested outputs (all are returned), a version in the URL, parameters
    body = {
        "parameters": {"content_type": "np"},
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": X}],
    }
    r = c.post("/v2/models/mlp/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    assert "id" not in r.json()
    np.testing.assert_allclose(
        np.reshape(r.json()["outputs"][0]["data"], (2, 3)),
        oracle(models.mlp, X),
        rtol=1e-5,
        atol=1e-6,
    )
    a, b = [[1.0, 2.0, 3.0]], [[2.0, 2.0, -1.0]]
    body = {
        "inputs": [
            {"name": "b", "shape": [1, 3], "datatype": "FP32", "data": b[0]},
            {"name": "a", "shape": [1, 3], "datatype": "FP32", "data": a[0]},
        ],
        "outputs": [{"name": "prod"}],
    }
    res = c.post("/v2/models/pair/infer", json=body).json()
    assert [o["name"] for o in res["outputs"]] == ["prod"]
    assert res["outputs"][0]["data"] == [2.0, 4.0, -3.0]


@pytest.mark.parametrize(
    "datatype, values",
    [
        ("BOOL", [True, False, True, True]),
        ("UINT8", [0, 255, 7, 1]),
        ("UINT16", [0, 65535, 3, 4]),
        ("UINT32", [0, 2**32 - 1, 3, 4]),
        ("UINT64", [0, 2**63, 3, 4]),
        ("INT8", [-128, 127, 0, 1]),
        ("INT16", [-(2**15), 2**15 - 1, 0, 1]),
        ("INT32", [-(2**31), 2**31 - 1, 0, 1]),
        ("INT64", [-(2**63), 2**63 - 1, 0, 1]),
        ("FP16", [0.5, -1.5, 65504.0, 0.0]),
        ("FP32", [0.1, -2.5, 3.0e38, 0.0]),
        ("FP64", [0.1, -2.5, 1e300, 0.0]),
        ("BYTES", ["ab", "", "zürich", "x"]),
    ],
)
def test_v2_typed_tensors_round_trip(datatype, values):
    np_name = {v: k for k, v in codec.V2_DTYPES.items()}[datatype]
    spec = SimpleNamespace(name="t", dtype=np_name, shape=(None, 2))
    sig = SimpleNamespace(inputs=[spec], outputs=[spec])
    body = {"inputs": [{"name": "t", "shape": [2, 2], "datatype": datatype, "data": values}]}
    feeds, wanted, params = codec.decode_v2(body, sig)
    arr = feeds["t"]
    assert arr.shape == (2, 2) and wanted is None and params == {}
    if datatype == "BYTES":
        assert arr.reshape(-1).tolist() == [v.encode() for v in values]
    else:
        assert arr.dtype == np.dtype(np_name)
        np.testing.assert_array_equal(arr.reshape(-1), np.array(values, dtype=np_name))
    res = codec.encode_v2({"t": arr}, None, "m", 1, None, [spec])
    (out,) = res["outputs"]
    assert out["datatype"] == datatype and out["shape"] == [2, 2]
    if datatype.startswith("FP"):
        np.testing.assert_allclose(out["data"], np.array(values, dtype=np_name).astype(float))
    else:
        assert out["data"] == values


def test_v2_typed_errors():
    spec = SimpleNamespace(name="t", dtype="int8", shape=(None,))
    sig = SimpleNamespace(inputs=[spec], outputs=[spec])

    def err(data, datatype="INT8", shape=(2,)):
        body = {"inputs": [{"name": "t", "shape": list(shape), "datatype": datatype, "data": data}]}
        with pytest.raises(BadRequest) as e:
            codec.decode_v2(body, sig)
        return str(e.value)

    assert "out of range for int8" in err([1, 300])
    assert "expected integers" in err([1, 2.5])
    assert "does not match the model's INT8" in err([1, 2], "INT16")
    assert "unknown datatype 'FLOAT'" in err([1, 2], "FLOAT")
    assert "needs 3 values" in err([1, 2], shape=(3,))


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        # wrong shape
        (
            "/v1/models/mlp:predict",
            {"instances": [[1.0, 2.0, 3.0]]},
            400,
            ["input 'x'", "[?, 4]", "[1, 3]"],
        ),
        (
            "/v2/models/mlp/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            400,
            ["input 'x'", "[?, 4]", "[1, 3]"],
        ),
        # wrong dtype
        (
            "/v1/models/mlp:predict",
            {"instances": [["a", "b", "c", "d"]]},
            400,
            ["input 'x'", "float32"],
        ),
        (
            "/v2/models/mlp/infer",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]}]},
            400,
            ["INT32", "FP32"],
        ),
        # ragged rows, nulls, integers beyond 64 bits
        ("/v1/models/mlp:predict", {"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}, 400, ["ragged"]),
        ("/v1/models/mlp:predict", {"instances": [[1.0, None, 3.0, 4.0]]}, 400, ["null"]),
        ("/v1/models/mlp:predict", {"inputs": {"x": [[2**70, 1, 1, 1]]}}, 400, ["64 bits"]),
        # protocol shape errors
        ("/v1/models/mlp:predict", {"instances": X, "inputs": X}, 400, ["exactly one of"]),
        ("/v1/models/mlp:predict", {"examples": X}, 400, ["exactly one of"]),
        ("/v1/models/mlp:predict", {"instances": []}, 400, ["non-empty"]),
        ("/v1/models/mlp:predict", [1, 2], 400, ["JSON object"]),
        ("/v1/models/mlp:predict", {"instances": [{"y": X[0]}]}, 400, ["['x']"]),
        ("/v1/models/mlp:predict", {"signature_name": "nope", "instances": X}, 404, ["'nope'"]),
        ("/v2/models/mlp/infer", {"inputs": []}, 400, ["non-empty"]),
        (
            "/v2/models/mlp/infer",
            {"inputs": [{"name": "x"}]},
            400,
            ["missing shape, datatype, data"],
        ),
        (
            "/v2/models/mlp/infer",
            {"inputs": [{"name": "z", "shape": [1], "datatype": "FP32", "data": [1]}]},
            400,
            ["no such input", "'x'"],
        ),
        (
            "/v2/models/mlp/infer",
            {
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": X[0]}],
                "outputs": [{"name": "logits"}],
            },
            400,
            ["output 'logits'", "no such output"],
        ),
        # unknown model / version
        ("/v1/models/nosuch:predict", {"instances": X}, 404, ["'nosuch'", "mlp"]),
        ("/v1/models/mlp/versions/9:predict", {"instances": X}, 404, ["version 9", "[1]"]),
        (
            "/v1/models/mlp/versions/abc:predict",
            {"instances": X},
            400,
            ["positive integer", "'abc'"],
        ),
        ("/v2/models/nosuch/infer", {"inputs": []}, 404, ["'nosuch'"]),
        ("/v2/models/mlp/versions/3/infer", {"inputs": []}, 404, ["version 3"]),
    ],
)
def test_bad_requests(server, models, path, body, status, words):
    r = server.client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    msg = r.json()["error"]
    for w in words:
        assert w in msg, (w, msg)
    still_serving(server, models.mlp)


@pytest.mark.parametrize("path", ["/v1/models/mlp:predict", "/v2/models/mlp/infer"])
def test_malformed_empty_and_oversize_bodies(server, models, path):
    c = server.client
    r = c.post(path, content=b'{"instances": [[1.0, 2.0,')
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = c.post(path, content=b"")
    assert r.status_code == 400 and "empty request body" in r.json()["error"]
    r = c.post(path, content=b"\xff\xfe\x00garbage")
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    big = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 5000}).encode()
    assert len(big) > 64 * 1024
    r = c.post(path, content=big)
    assert r.status_code == 413 and "65536 bytes" in r.json()["error"]

    # the same body streamed without a Content-Length is cut off while reading
    def chunks():
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    r = c.post(path, content=chunks())
    assert r.status_code == 413 and "exceeds the limit" in r.json()["error"]
    still_serving(server, models.mlp)


def test_unknown_endpoints_and_methods(server, models):
    c = server.client
    r = c.get("/v3/whatever")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
    r = c.get("/v1/models/mlp:predict")
    assert r.status_code == 405 and "GET" in r.json()["error"]
    r = c.post("/v2/health/live")
    assert r.status_code == 405
    r = c.post("/v1/models/mlp:classify", json={"examples": []})
    assert r.status_code == 501 and ":predict" in r.json()["error"]
    r = c.get("/v1/models/nosuch")
    assert r.status_code == 404 and "not served" in r.json()["error"]
    r = c.get("/v2/models/nosuch")
    assert r.status_code == 404 and "not served" in r.json()["error"]
    r = c.get("/v1/models/mlp/versions/4/metadata")
    assert r.status_code == 404 and "version 4" in r.json()["error"]
    still_serving(server, models.mlp)


# ---------------------------------------------------------------------------- operations


def test_metrics(server, models):
    still_serving(server, models.mlp)
    server.client.post("/v1/models/mlp:predict", json={"instances": [[1.0]]})
    server.client.post("/v1/models/random-name-42:predict", json={"instances": [[1.0]]})
    text = server.client.get("/metrics").text
    # names that are not served do not become labels (no unbounded label sets)
    assert "random-name-42" not in text
    assert 'ember_serve_requests_total{code="404",model="-",protocol="tfserving"}' in text
    assert 'ember_serve_requests_total{code="200",model="mlp",protocol="tfserving"}' in text
    assert 'ember_serve_requests_total{code="400",model="mlp",protocol="tfserving"}' in text
    assert (
        'ember_serve_request_latency_seconds_bucket{le="0.5",model="mlp",protocol="tfserving"}'
        in text
    )
    assert (
        'ember_serve_errors_total{kind="invalid_argument",model="mlp",protocol="tfserving"}' in text
    )
    assert "ember_serve_batch_size" in text


def test_access_log_is_json(server, models):
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: records.append(rec.getMessage())
    lg = logging.getLogger("ember.serve.access")
    old = lg.level
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    try:
        still_serving(server, models.mlp)
        server.client.get("/v1/models/nosuch")
        mine = ("/v1/models/mlp:predict", "/v1/models/nosuch")
        deadline = time.monotonic() + 5  # the line is written once the answer has gone out
        while time.monotonic() < deadline:
            lines = [x for x in map(json.loads, records) if x["path"] in mine]
            if len(lines) == 2:
                break
            time.sleep(0.01)
    finally:
        lg.removeHandler(handler)
        lg.setLevel(old)
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/v1/models/mlp:predict", 200),
        ("GET", "/v1/models/nosuch", 404),
    ]
    assert all(
        x["duration_ms"] >= 0 and x["bytes"] > 0 and x["client"].startswith("127.0.0.1")
        for x in lines
    )


def test_timeout_answers_504(models, tmp_path):
    def slow_loader(path):
        m = ember.export.load(path)
        sig = m.signatures["serving_default"]
        run = sig.run

        def slow_run(feeds):
            time.sleep(0.6)
            return run(feeds)

        sig.run = slow_run
        return m

    cfg = ServerConfig([ModelConfig("mlp", str(models.root / "mlp"))], timeout_s=0.2, poll_s=0)
    s = Server(cfg, slow_loader)
    try:
        r = s.client.post("/v1/models/mlp:predict", json={"instances": X})
        assert r.status_code == 504 and "0.2 s" in r.json()["error"]
        r = s.client.get("/v1/models/mlp")
        assert r.status_code == 200
    finally:
        s.stop()


def test_overload_answers_503(models):
    def slow_loader(path):
        m = ember.export.load(path)
        sig = m.signatures["serving_default"]
        run = sig.run

        def slow_run(feeds):
            time.sleep(0.3)
            return run(feeds)

        sig.run = slow_run
        return m

    cfg = ServerConfig([ModelConfig("mlp", str(models.root / "mlp"))], max_queued=2, poll_s=0)
    s = Server(cfg, slow_loader)
    try:

        def call(_):
            with httpx.Client(base_url=s.url, timeout=20) as c:
                return c.post("/v1/models/mlp:predict", json={"instances": X})

        with cf.ThreadPoolExecutor(6) as ex:
            answers = list(ex.map(call, range(6)))
        codes = [r.status_code for r in answers]
        assert codes.count(200) >= 2 and codes.count(503) >= 1, codes
        assert set(codes) <= {200, 503}
        busy = next(r for r in answers if r.status_code == 503)
        assert "overloaded" in busy.json()["error"] and "limit 2" in busy.json()["error"]
        assert call(0).status_code == 200  # once the queue drains, requests are served again
    finally:
        s.stop()


# ---------------------------------------------------------------------------- dynamic batching


def test_batching_over_http(models):
    cfg = ServerConfig(
        [ModelConfig("mlp", str(models.root / "mlp"), batching=BatchingConfig(16, 100.0))],
        poll_s=0,
        threads=2,
    )
    s = Server(cfg)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(1 + i % 3, 4)).astype(np.float32) for i in range(24)]
    try:

        def call(x):
            with httpx.Client(base_url=s.url, timeout=20) as c:
                return c.post("/v1/models/mlp:predict", json={"instances": x.tolist()})

        with cf.ThreadPoolExecutor(24) as ex:
            results = list(ex.map(call, xs))
        for x, r in zip(xs, results, strict=True):
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(
                r.json()["predictions"], oracle(models.mlp, x), rtol=1e-5, atol=1e-6
            )
        text = s.client.get("/metrics").text
        count = float(
            next(
                line
                for line in text.splitlines()
                if line.startswith("ember_serve_batch_size_count")
            ).split()[-1]
        )
        total = float(
            next(
                line for line in text.splitlines() if line.startswith("ember_serve_batch_size_sum")
            ).split()[-1]
        )
        assert total == sum(len(x) for x in xs)
        assert count < len(xs)  # some executions served several requests
    finally:
        s.stop()


def test_batcher_groups_splits_and_isolates_errors():
    calls: list[tuple] = []

    def run(feeds):
        x = feeds["x"]
        calls.append(x.shape)
        if np.isnan(x).any():
            raise ValueError("input 'x' has NaN")
        return {"y": x * 2.0, "s": x.sum(axis=tuple(range(1, x.ndim)))}

    b = Batcher(run, BatchingConfig(max_batch_size=8, max_wait_ms=200.0))
    items = [
        np.ones((2, 3)),
        np.full((1, 3), 3.0),
        np.ones((1, 5)),  # another trailing shape: its own execution
        np.array([[np.nan, 1.0, 1.0]]),  # fails alone, not the others
        np.full((3, 3), 2.0),
    ]
    futs = [b.submit({"x": x}) for x in items]
    outs = []
    for f in futs:
        try:
            outs.append(f.result(10))
        except ValueError as e:
            outs.append(e)
    b.stop()
    for x, o in zip(items, outs, strict=True):
        if np.isnan(x).any():
            assert isinstance(o, ValueError) and "NaN" in str(o)
        else:
            np.testing.assert_array_equal(o["y"], x * 2.0)
            np.testing.assert_array_equal(o["s"], x.sum(axis=1))
    assert (7, 3) in calls  # the four (., 3) requests went as one batch first
    with pytest.raises(RuntimeError, match="stopped"):
        b.submit({"x": np.ones((1, 3))})


def test_batcher_respects_max_batch_size_and_drains_on_stop():
    sizes: list[int] = []
    b = Batcher(
        lambda f: {"y": f["x"] + 1},
        BatchingConfig(max_batch_size=4, max_wait_ms=50.0),
        sizes.append,
    )
    futs = [b.submit({"x": np.full((1, 2), float(i))}) for i in range(10)]
    b.stop()  # everything queued still gets its answer
    for i, f in enumerate(futs):
        np.testing.assert_array_equal(f.result(0)["y"], np.full((1, 2), i + 1.0))
    assert sum(sizes) == 10 and max(sizes) <= 4


def test_batching_config_errors():
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchingConfig(0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        BatchingConfig(4, -1)
    b = Batcher(lambda f: f, BatchingConfig())
    with pytest.raises(ValueError, match="first \\(batch\\) dimension"):
        b.submit({"a": np.ones((2, 1)), "b": np.ones((3, 1))})
    b.stop()


def test_missing_extra_message(monkeypatch):
    import sys

    from ember.serve import _deps

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails
    with pytest.raises(ImportError, match=r'needs uvicorn.*pip install "ember\[serve\]"'):
        _deps.require("uvicorn")
