"""int8 vs float32 inference of the Digits CNN in Ember (``ember.quantization``).

Run: python bench/bench_int8.py [--batches 1,64,256] [--epochs E] [--repeats R]
     [--seconds S] [--threads N] [--keep-blas-env] [--json PATH]

The model is ``examples/digits_cnn.yaml``'s (conv 32 + BN + ReLU, conv 64 + BN + ReLU, 2x2 max
pool, dropout, linear 128 + ReLU, linear 10), trained for ``--epochs`` on the bundled Digits
in a child process that also reports accuracy: float, static int8 (histogram calibration on
512 training images, conv + BN + ReLU fused) and the int8 model's QDQ ONNX export in
onnxruntime. Its weights go to a temporary safetensors file.

Speed: each (variant, repeat) is a fresh process (``bench/_protocol.py``): it loads the
weights, builds the float model or calibrates and converts the int8 one, warms up, then times
inference (``no_grad``) on test images at each batch size. Variants alternate order across
repeats (ABBA); the reported figure is the median of the per-repeat ratios
int8 samples/s / float samples/s (> 1: int8 faster), with their spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from typing import Any

import _protocol as P

CONVENTION = "ratio = int8 / float32 Ember throughput (float time / int8 time); > 1: int8 faster"
CALIBRATION = 512


def build(lib: Any) -> Any:
    """The Digits CNN of ``examples/digits_cnn.yaml``, as ``nn`` modules."""
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(1024, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def _data():
    from ember.data.datasets import Digits

    return Digits(train=True), Digits(train=False)


def _accuracy(model: Any, x, y) -> float:
    import ember

    with ember.no_grad():
        return float((model(ember.from_numpy(x)).numpy().argmax(1) == y).mean())


def train(lib: Any, path: str, epochs: int = 15) -> dict:
    """Train the model (Adam 2e-3, cosine-free, batch 64, seed 0), save it to ``path`` and
    return float / int8 / ONNX QDQ test accuracies (runs in a child process)."""
    import numpy as np

    from ember import quantization as Q

    tr, te = _data()
    lib.manual_seed(0)
    model = build(lib)
    opt = lib.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(tr.data))
        for s in range(0, len(order), 64):
            i = order[s : s + 64]
            out = model(lib.from_numpy(tr.data[i]))
            loss = lib.nn.functional.cross_entropy(out, lib.from_numpy(tr.targets[i]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    lib.save(model.state_dict(), path)
    q = Q.quantize_static(model, tr.data[:CALIBRATION])
    res = {
        "float": _accuracy(model, te.data, te.targets),
        "int8": _accuracy(q, te.data, te.targets),
        "n_test": len(te.targets),
    }
    try:
        import onnxruntime as ort

        onnx_path = path + ".int8.onnx"
        Q.export_onnx(q, lib.from_numpy(te.data[:1]), onnx_path)
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        pred = sess.run(None, {"input": te.data})[0].argmax(1)
        res["onnx_qdq_ort"] = float((pred == te.targets).mean())
    except ImportError:
        res["onnx_qdq_ort"] = None
    return res


def measure(lib: Any, path: str, variant: str, batches: list[int], seconds: float = 0.5) -> dict:
    """Samples/s of ``variant`` (``float`` or ``int8``) at each batch size (child process).

    Example:
        >>> import ember, os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> ember.save(build(ember).state_dict(), p)
        >>> r = measure(ember, p, "int8", [2], seconds=0.02)
        >>> r["2"] > 0
        True
    """
    from ember import quantization as Q

    tr, te = _data()
    model = build(lib)
    model.load_state_dict(lib.load(path))
    model.eval()
    if variant == "int8":
        model = Q.quantize_static(model, tr.data[:CALIBRATION])
    elif variant != "float":
        raise ValueError(f"variant must be 'float' or 'int8', got {variant!r}")
    out = {"backend": Q.backend()}
    with lib.no_grad():
        for b in batches:
            x = lib.from_numpy(te.data[:b].copy())
            out[str(b)] = b / P.time_per_call(lambda x=x: model(x), budget=seconds)
    return out


def _fmt(v: float | None) -> str:
    return "n/a (onnxruntime not installed)" if v is None else f"{v:.4f}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,64,256", help="comma-separated batch sizes")
    p.add_argument("--epochs", type=int, default=15, help="training epochs (the YAML's 15)")
    p.add_argument("--seconds", type=float, default=0.5, help="timed seconds per measurement")
    P.add_protocol_args(p, repeats=5)
    a = p.parse_args(argv)
    batches = [int(b) for b in a.batches.split(",") if b]
    head = P.header(
        "bench_int8: Digits CNN inference, static int8 vs float32 Ember",
        a.threads,
        a.keep_blas_env,
        CONVENTION,
    )
    print(head + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "digits_cnn.safetensors")
        acc = P.run_child(
            "bench_int8",
            "train",
            "ember",
            {"path": path, "epochs": a.epochs},
            a.threads,
            a.keep_blas_env,
        )
        print(
            f"accuracy on the {acc['n_test']} Digits test images after {a.epochs} epochs: "
            f"float32 {acc['float']:.4f}, int8 {acc['int8']:.4f}, "
            f"int8 QDQ ONNX in onnxruntime {_fmt(acc['onnx_qdq_ort'])}\n"
        )
        runs: dict[str, list[dict]] = {"float": [], "int8": []}
        for order in P.abba(a.repeats, ("float", "int8")):
            for v in order:
                params = {"path": path, "variant": v, "batches": batches, "seconds": a.seconds}
                runs[v].append(
                    P.run_child(
                        "bench_int8", "measure", "ember", params, a.threads, a.keep_blas_env
                    )
                )
    print(f"int8 kernels: {runs['int8'][0]['backend']}\n")
    print("| batch | float32 samples/s | int8 samples/s | int8 / float32 (min-max) |")
    print("|---|---|---|---|")
    rows = []
    for b in batches:
        k = str(b)
        f = [r[k] for r in runs["float"]]
        q = [r[k] for r in runs["int8"]]
        med, lo, hi = P.ratio_summary([y / x for x, y in zip(f, q)])
        rows.append(
            {
                "batch": b,
                "float": statistics.median(f),
                "int8": statistics.median(q),
                "ratio": med,
                "lo": lo,
                "hi": hi,
            }
        )
        print(
            f"| {b} | {statistics.median(f):.4g} | {statistics.median(q):.4g} | "
            f"{med:.2f} ({lo:.2f}-{hi:.2f}) |",
            flush=True,
        )
    print(P.load_line())
    P.write_json(a.json, head, {"accuracy": acc, "speed": rows})


if __name__ == "__main__":
    main()
