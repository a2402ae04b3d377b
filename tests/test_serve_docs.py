"""Requests written as the protocols' documentation writes them, sent unchanged through a real
HTTP client (httpx, and curl when installed) to a server the test starts.

TF Serving's REST API page: the ``half_plus_three`` status and predict calls (curl's form
content type included), the multi-input row and columnar examples (``tag``, ``signal``,
``sensor``) and ``{"b64": ...}`` binary values with ``signature_name``. KServe's V2 page: the
iris example and the Open Inference Protocol's own infer example (whose literal ``input1``
lists one value for shape ``[3]``: a clear 400, then the corrected request answers).
String-input models come from a loader (saved models hold numeric tensors only); numeric
ones are saved by ``ember.export.save`` and checked against PyTorch. Also: batching set per
model in one server, and a body that stops arriving (408).
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import shutil
import socket
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
torch = pytest.importorskip("torch")

from test_serve import Server, X, oracle, save_mlp  # noqa: E402

import ember  # noqa: E402
import ember.export  # noqa: E402
from ember.serve import BatchingConfig, ModelConfig, ServerConfig  # noqa: E402

# ---------------------------------------------------------------------------- string models


class Spec(SimpleNamespace):
    pass


class Sig:
    """A signature like ``ember.export``'s: ``inputs``/``outputs`` specs and ``run(feeds)``."""

    def __init__(self, inputs, outputs, fn):
        self.inputs = [Spec(name=n, dtype=d, shape=s) for n, d, s in inputs]
        self.outputs = [Spec(name=n, dtype=d, shape=s) for n, d, s in outputs]
        self.fn = fn

    def run(self, feeds):
        return self.fn(**feeds)


def _sensors(tag, signal, sensor):
    return {
        "tag_length": np.array([len(t) for t in tag], np.int64),
        "total": signal.astype(np.float64).sum(1) + sensor.astype(np.float64).sum((1, 2)),
        "tag_upper": np.array([t.upper() for t in tag], dtype=object),
    }


def _images(image, caption):
    return {
        "image_bytes": np.array([i[::-1] for i in image], dtype=object),  # binary: b64 out
        "size": np.array([len(i) for i in image], np.int32),
        "caption": caption,  # text: plain strings out
    }


def _texts(text):
    return {
        "length": np.array([len(t) for t in text], np.int64),
        "upper": np.array([t.upper() for t in text], dtype=object),
    }


def _spec_example(input0, input1):
    # the Open Inference Protocol's example answers a [3, 2] FP32 "output0"
    out = np.outer(input1.astype(np.float32), input0.astype(np.float32).sum(0))
    return {"output0": out.astype(np.float32)}


STRING_MODELS = {
    "sensors": {
        "serving_default": Sig(
            [
                ("tag", "bytes", (None,)),
                ("signal", "int64", (None, 5)),
                ("sensor", "float32", (None, 2, 2)),
            ],
            [
                ("tag_length", "int64", (None,)),
                ("total", "float64", (None,)),
                ("tag_upper", "bytes", (None,)),
            ],
            _sensors,
        ),
        "describe_image": Sig(
            [("image", "bytes", (None,)), ("caption", "bytes", (None,))],
            [
                ("image_bytes", "bytes", (None,)),
                ("size", "int32", (None,)),
                ("caption", "bytes", (None,)),
            ],
            _images,
        ),
    },
    "texts": {
        "serving_default": Sig(
            [("text", "bytes", (None,))],
            [("length", "int64", (None,)), ("upper", "bytes", (None,))],
            _texts,
        )
    },
    "mymodel": {
        "serving_default": Sig(
            [("input0", "uint32", (2, 2)), ("input1", "bool", (3,))],
            [("output0", "float32", (3, 2))],
            _spec_example,
        )
    },
}


def loader(path: str):
    for name, sigs in STRING_MODELS.items():
        if f"/{name}/" in path + "/":
            return SimpleNamespace(signatures=sigs)
    return ember.export.load(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    for name in ("half_plus_three", "sklearn-v2-iris", *STRING_MODELS):
        (root / name).mkdir()
    # TF Serving's example model: y = x / 2 + 3, served as version 123
    ember.export.save(
        lambda x: x * 0.5 + 3.0,
        str(root / "half_plus_three" / "123"),
        ember.randn(3),
        input_names=["x"],
    )
    # KServe's iris example: 4 features in, a class index "predict" out
    ember.manual_seed(3)
    iris = ember.nn.Linear(4, 3)
    ember.export.save(
        lambda x: iris(x).argmax(-1),
        str(root / "sklearn-v2-iris" / "1"),
        ember.randn(2, 4),
        input_names=["input-0"],
        output_names=["predict"],
    )
    for name in STRING_MODELS:
        (root / name / "1").mkdir()
    models = [ModelConfig(p.name, str(p)) for p in sorted(root.iterdir())]
    s = Server(ServerConfig(models, poll_s=0), loader)
    s.iris = iris
    yield s
    s.stop()


# ---------------------------------------------------------------------------- TF Serving


def test_tf_half_plus_three_as_documented(server):
    # "curl http://localhost:8501/v1/models/half_plus_three" and its documented answer
    assert server.client.get("/v1/models/half_plus_three").json() == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    # curl -d '{"instances": [1.0,2.0,5.0]}' -X POST .../v1/models/half_plus_three:predict
    body = '{"instances": [1.0,2.0,5.0]}'
    curl_headers = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
    r = server.client.post("/v1/models/half_plus_three:predict", content=body, headers=curl_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [3.5, 4.0, 5.5]}  # the documented response
    if shutil.which("curl"):
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-d",
                body,
                "-X",
                "POST",
                f"{server.url}/v1/models/half_plus_three:predict",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert json.loads(out) == {"predictions": [3.5, 4.0, 5.5]}


def test_tf_named_inputs_row_and_columnar_as_documented(server):
    row = """{
 "instances": [
   {
     "tag": "foo",
     "signal": [1, 2, 3, 4, 5],
     "sensor": [[1, 2], [3, 4]]
   },
   {
     "tag": "bar",
     "signal": [3, 4, 1, 2, 5],
     "sensor": [[4, 5], [6, 8]]
   }
 ]
}"""
    columnar = """{
 "inputs": {
   "tag": ["foo", "bar"],
   "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
   "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]
 }
}"""
    want = _sensors(
        [b"foo", b"bar"],
        np.array([[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]]),
        np.array([[[1, 2], [3, 4]], [[4, 5], [6, 8]]]),
    )
    r = server.client.post("/v1/models/sensors:predict", content=row)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["tag_length"] for p in preds] == want["tag_length"].tolist()
    assert [p["total"] for p in preds] == want["total"].tolist()
    assert [p["tag_upper"] for p in preds] == ["FOO", "BAR"]  # text outputs stay text
    r = server.client.post("/v1/models/sensors/versions/1:predict", content=columnar)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    assert out["total"] == want["total"].tolist() and out["tag_upper"] == ["FOO", "BAR"]


def test_tf_b64_values_and_signature_name_over_http(server):
    images = [b"\x89PNG\r\n\x1a\n\x00\xff image bytes", b"\xff\xd8\xff picture bytes"]
    body = json.dumps(
        {
            "signature_name": "describe_image",
            "instances": [
                {"image": {"b64": base64.b64encode(images[0]).decode()}, "caption": "seaside"},
                {"image": {"b64": base64.b64encode(images[1]).decode()}, "caption": "mountains"},
            ],
        },
        indent=2,
    )
    r = server.client.post("/v1/models/sensors:predict", content=body)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    # outputs named *_bytes come back base64-encoded, as TF Serving writes them
    assert [base64.b64decode(p["image_bytes"]["b64"]) for p in preds] == [i[::-1] for i in images]
    assert [p["size"] for p in preds] == [len(i) for i in images]
    assert [p["caption"] for p in preds] == ["seaside", "mountains"]
    # the metadata lists both signatures with DT_STRING inputs
    sigs = server.client.get("/v1/models/sensors/metadata").json()["metadata"]["signature_def"]
    assert sorted(sigs["signature_def"]) == ["describe_image", "serving_default"]
    assert sigs["signature_def"]["describe_image"]["inputs"]["image"]["dtype"] == "DT_STRING"
    # a broken b64 value is a 400 naming the input, and the server keeps serving
    bad = {
        "signature_name": "describe_image",
        "inputs": {"image": [{"b64": "%%"}], "caption": ["x"]},
    }
    r = server.client.post("/v1/models/sensors:predict", json=bad)
    assert (
        r.status_code == 400
        and "input 'image'" in r.json()["error"]
        and "base64" in r.json()["error"]
    )
    r = server.client.post("/v1/models/sensors:predict", content=body)
    assert r.status_code == 200


# ---------------------------------------------------------------------------- KServe V2


def test_v2_iris_as_kserve_documents_it(server):
    body = """{
  "inputs": [
    {
      "name": "input-0",
      "shape": [2, 4],
      "datatype": "FP32",
      "data": [
        [6.8, 2.8, 4.8, 1.4],
        [6.0, 3.4, 4.5, 1.6]
      ]
    }
  ]
}"""
    r = server.client.post(
        "/v2/models/sklearn-v2-iris/infer",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["model_name"] == "sklearn-v2-iris"
    (out,) = res["outputs"]
    assert out["name"] == "predict" and out["shape"] == [2] and out["datatype"] == "INT64"
    x = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
    w, b = (torch.from_numpy(p.detach().numpy().copy()) for p in server.iris.parameters())
    assert out["data"] == torch.nn.functional.linear(torch.tensor(x), w, b).argmax(-1).tolist()


SPEC_EXAMPLE = """{
  "id" : "42",
  "inputs" : [
    {
      "name" : "input0",
      "shape" : [ 2, 2 ],
      "datatype" : "UINT32",
      "data" : [ 1, 2, 3, 4 ]
    },
    {
      "name" : "input1",
      "shape" : [ 3 ],
      "datatype" : "BOOL",
      "data" : [ true ]
    }
  ],
  "outputs" : [
    {
      "name" : "output0"
    }
  ]
}"""


def test_v2_open_inference_protocol_example(server):
    # the specification's example, verbatim: one value for shape [3] is a clear 400
    r = server.client.post("/v2/models/mymodel/infer", content=SPEC_EXAMPLE)
    assert r.status_code == 400
    assert r.json() == {"error": "input 'input1': shape [3] needs 3 values, 'data' has 1"}
    # with its three values, the answer has the documented form
    fixed = SPEC_EXAMPLE.replace('"data" : [ true ]', '"data" : [ true, false, true ]')
    r = server.client.post("/v2/models/mymodel/infer", content=fixed)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["id"] == "42" and res["model_name"] == "mymodel"
    (out,) = res["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("output0", "FP32", [3, 2])
    want = np.outer([1.0, 0.0, 1.0], np.array([[1, 2], [3, 4]]).sum(0)).reshape(-1)
    assert out["data"] == want.tolist()
    meta = server.client.get("/v2/models/mymodel").json()
    assert meta["inputs"] == [
        {"name": "input0", "datatype": "UINT32", "shape": [2, 2]},
        {"name": "input1", "datatype": "BOOL", "shape": [3]},
    ]


def test_v2_bytes_tensors_over_http(server):
    body = {
        "id": "t1",
        "inputs": [
            {
                "name": "text",
                "shape": [3],
                "datatype": "BYTES",
                "data": ["abc", "zürich", ""],
                "parameters": {},
            }
        ],
        "outputs": [{"name": "upper", "parameters": {}}, {"name": "length"}],
    }
    r = server.client.post("/v2/models/texts/infer", json=body)
    assert r.status_code == 200, r.text
    upper, length = r.json()["outputs"]
    assert upper == {
        "name": "upper",
        "datatype": "BYTES",
        "shape": [3],
        "data": ["ABC", "ZüRICH", ""],  # bytes.upper() changes ASCII letters only
    }
    assert length["data"] == [3, len("zürich".encode()), 0] and length["datatype"] == "INT64"
    body["inputs"][0]["datatype"] = "FP32"
    r = server.client.post("/v2/models/texts/infer", json=body)
    assert r.status_code == 400 and "does not match the model's BYTES" in r.json()["error"]


# ---------------------------------------------------------------------------- operations


def _metric(text: str, name: str, model: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name) and f'model="{model}"' in line:
            return float(line.split()[-1])
    return None


def test_batching_is_configured_per_model(tmp_path):
    nets = {
        n: save_mlp(str(tmp_path / n / "1"), seed=i)
        for i, n in enumerate(("small", "big", "plain"))
    }
    cfg = ServerConfig(
        [
            ModelConfig("small", str(tmp_path / "small"), batching=BatchingConfig(2, 200.0)),
            ModelConfig("big", str(tmp_path / "big"), batching=BatchingConfig(64, 200.0)),
            ModelConfig("plain", str(tmp_path / "plain")),
        ],
        poll_s=0,
        threads=2,
    )
    s = Server(cfg)
    rng = np.random.default_rng(0)
    calls = [
        (n, rng.normal(size=(1, 4)).astype(np.float32))
        for n in ("small", "big", "plain")
        for _ in range(8)
    ]
    try:

        def call(arg):
            name, x = arg
            with httpx.Client(base_url=s.url, timeout=30) as c:
                return c.post(f"/v1/models/{name}:predict", json={"instances": x.tolist()})

        with cf.ThreadPoolExecutor(len(calls)) as ex:
            answers = list(ex.map(call, calls))
        for (name, x), r in zip(calls, answers, strict=True):
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(
                r.json()["predictions"], oracle(nets[name], x), rtol=1e-5, atol=1e-6
            )
        text = s.client.get("/metrics").text
        hist = "ember_serve_batch_size"
        # small: every execution held at most 2 rows; big: the 8 requests went in fewer runs
        assert _metric(text, f"{hist}_sum", "small") == 8.0
        assert _metric(text, f'{hist}_bucket{{le="2.0"', "small") == _metric(
            text, f"{hist}_count", "small"
        )
        assert _metric(text, f"{hist}_count", "small") >= 4
        assert (
            _metric(text, f"{hist}_sum", "big") == 8.0 and _metric(text, f"{hist}_count", "big") < 8
        )
        assert _metric(text, f"{hist}_count", "plain") is None  # not batched
    finally:
        s.stop()


def test_body_that_stops_arriving_answers_408(tmp_path):
    net = save_mlp(str(tmp_path / "m" / "1"), seed=0)
    s = Server(ServerConfig([ModelConfig("m", str(tmp_path / "m"))], timeout_s=0.5, poll_s=0))
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/models/m:predict HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
                b'{"instances": [[1.0, '
            )
            t0 = time.monotonic()
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"timed out reading the request body" in reply
        assert time.monotonic() - t0 < 25
        r = s.client.post("/v1/models/m:predict", json={"instances": X})
        assert r.status_code == 200
        np.testing.assert_allclose(r.json()["predictions"], oracle(net, X), rtol=1e-5, atol=1e-6)
    finally:
        s.stop()
