"""Per-op speed, Ember vs PyTorch eager, forward and forward+backward.

Run: python bench/bench_ops.py [--ops softmax,gelu,...] [--dtype float32] [--repeats R]
     [--threads N] [--budget S] [--keep-blas-env] [--list]

Each op runs at transformer-typical shapes (attention scores (16,4,128,128), activations
(16,128,1024), rows (2048,256)) or CNN-typical ones. "fwd" times the op on inputs that do
not require grad; "fwd+bwd" times the op on leaves that do (every floating input: data,
weights, biases), then ``backward`` with a fixed upstream gradient, then clears the grads.
Each framework measures every selected op in its own fresh process per repeat
(``bench/_protocol.py``); each timing autoscales its iterations to about ``--budget`` seconds.

Ratios are PyTorch time / Ember time, i.e. Ember / PyTorch throughput, as in
``bench_train.py``: above 1 means Ember is faster.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from typing import Any

import _protocol as P
import numpy as np


def _conv(stride: int = 1, padding: int = 0, groups: int = 1) -> Callable:
    def f(lib, x, w, b):
        return lib.nn.functional.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    return f


def _attention(lib, q, k, v, mask):
    # written out as nanoGPT-style code is: scores, additive causal mask, softmax, @ v
    att = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1])) + mask
    return lib.nn.functional.softmax(att, dim=-1) @ v


def _causal_mask(t: int) -> np.ndarray:
    return np.triu(np.full((t, t), -np.inf), 1)


def _f(name: str, **kw: Any) -> Callable:
    """``F.<name>(x, **kw)``."""
    return lambda lib, x: getattr(lib.nn.functional, name)(x, **kw)


def _nf(*shapes: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    return [("normal", s) for s in shapes]


def cases(small: bool = False) -> dict[str, list[tuple[str, list, Callable]]]:
    """The op table: op family -> [(label, inputs, fn(lib, *tensors))]. An input is
    ("normal", shape) (floating, requires grad in fwd+bwd), ("int", shape, high) (int64 in
    [0, high)) or ("const", array) (a floating constant that never requires grad, e.g. a
    mask). ``small=True`` shrinks batch and sequence (not the feature sizes) so that the
    tests can run every case in both frameworks cheaply.

    Example:
        >>> cases()["softmax"][0][0]
        '(16, 4, 128, 128)'
    """
    b, t = (2, 16) if small else (16, 128)  # batch, tokens
    cb = 2 if small else 8  # CNN batch
    att = (b, 4, t, t)  # attention scores: batch, 4 heads, t x t
    act = (b, t, 1024)  # MLP activations: 4 x 256 features
    rows = (b * t, 256)  # every token's 256 features (or a 256-token vocabulary)
    qkv = (b, 4, t, 64)
    c64 = (cb, 64, 32, 32)  # a ResNet stage's feature maps
    c16 = (2 * cb, 16, 32, 32)  # LeNet-like few channels, 5x5 'valid'
    g = 32 if small else 128  # depthwise channels (= groups)
    dw = (2 * cb, g, 14, 14) if small else (16, g, 28, 28)  # MobileNet-like depthwise
    one = (1, 64, 56, 56)  # a single image (inference)
    pool = (2 * cb, 64, 32, 32)
    return {
        "softmax": [
            (str(att), _nf(att), _f("softmax", dim=-1)),
            (str(rows), _nf(rows), _f("softmax", dim=-1)),
        ],
        "log_softmax": [
            (str(att), _nf(att), _f("log_softmax", dim=-1)),
            (str(rows), _nf(rows), _f("log_softmax", dim=-1)),
        ],
        "layer_norm": [
            (
                f"{(b, t, 256)} over 256",
                _nf((b, t, 256), (256,), (256,)),
                lambda lib, x, w, b: lib.nn.functional.layer_norm(x, (256,), w, b),
            ),
            (
                f"{act} over 1024",
                _nf(act, (1024,), (1024,)),
                lambda lib, x, w, b: lib.nn.functional.layer_norm(x, (1024,), w, b),
            ),
        ],
        "gelu": [(str(act), _nf(act), _f("gelu"))],
        "gelu_tanh": [(str(act), _nf(act), _f("gelu", approximate="tanh"))],
        "silu": [(str(act), _nf(act), _f("silu"))],
        "exp": [(str(act), _nf(act), lambda lib, x: lib.exp(x))],
        "tanh": [(str(act), _nf(act), lambda lib, x: lib.tanh(x))],
        "sigmoid": [(str(act), _nf(act), lambda lib, x: lib.sigmoid(x))],
        "sum": [(f"{act} last axis", _nf(act), lambda lib, x: x.sum(-1))],
        "mean": [(f"{act} last axis", _nf(act), lambda lib, x: x.mean(-1))],
        "cross_entropy": [
            (
                f"{rows} logits",
                [("normal", rows), ("int", (rows[0],), rows[1])],
                lambda lib, x, y: lib.nn.functional.cross_entropy(x, y),
            ),
            (
                f"{(b * t, 8192)} logits",
                [("normal", (b * t, 8192)), ("int", (b * t,), 8192)],
                lambda lib, x, y: lib.nn.functional.cross_entropy(x, y),
            ),
        ],
        "dropout": [(f"{act} p=0.1", _nf(act), _f("dropout", p=0.1, training=True))],
        "embedding": [
            (
                f"{(b, t)} ids into (4096, 256)",
                [("int", (b, t), 4096), ("normal", (4096, 256))],
                lambda lib, i, w: lib.nn.functional.embedding(i, w),
            )
        ],
        "attention": [
            (
                f"q, k, v {qkv}, causal",
                _nf(qkv, qkv, qkv) + [("const", _causal_mask(t))],
                _attention,
            )
        ],
        "matmul": [
            (f"{rows}@(256, 768)", _nf(rows, (256, 768)), lambda lib, a, b: a @ b),
            (
                f"{(b * t, 1024)}@(1024, 256)",
                _nf((b * t, 1024), (1024, 256)),
                lambda lib, a, b: a @ b,
            ),
        ],
        "conv2d": [
            (f"3x3 pad 1, {c64}->64", _nf(c64, (64, 64, 3, 3), (64,)), _conv(1, 1)),
            (f"5x5 valid, {c16}->32", _nf(c16, (32, 16, 5, 5), (32,)), _conv()),
            (f"1x1, {c64}->128", _nf(c64, (128, 64, 1, 1), (128,)), _conv()),
            (f"3x3 stride 2, {c64}->128", _nf(c64, (128, 64, 3, 3), (128,)), _conv(2, 1)),
            (f"depthwise 3x3, {dw}", _nf(dw, (g, 1, 3, 3), (g,)), _conv(1, 1, g)),
            (f"3x3 batch 1, {one}->64", _nf(one, (64, 64, 3, 3), (64,)), _conv(1, 1)),
        ],
        "max_pool2d": [
            (f"2x2 stride 2, {pool}", _nf(pool), _f("max_pool2d", kernel_size=2)),
            (
                f"3x3 stride 2 pad 1, {pool}",
                _nf(pool),
                _f("max_pool2d", kernel_size=3, stride=2, padding=1),
            ),
        ],
        "avg_pool2d": [(f"2x2 stride 2, {pool}", _nf(pool), _f("avg_pool2d", kernel_size=2))],
    }


CASES = cases()


def _inputs(lib: Any, specs: list, dtype: str, grad: bool, seed: int) -> tuple[list, list]:
    """Tensors for one case and the leaves among them that require grad."""
    rng = np.random.default_rng(seed)
    tensors, leaves = [], []
    for spec in specs:
        if spec[0] == "normal":
            t = lib.from_numpy(rng.standard_normal(spec[1]).astype(dtype))
            if grad:
                t.requires_grad_(True)
                leaves.append(t)
        elif spec[0] == "int":
            t = lib.from_numpy(rng.integers(0, spec[2], spec[1]).astype(np.int64))
        else:
            t = lib.from_numpy(np.ascontiguousarray(spec[1], dtype=dtype))
        tensors.append(t)
    return tensors, leaves


def _fwd_bwd(lib: Any, fn: Callable, tensors: list, leaves: list, dtype: str) -> Callable:
    out = fn(lib, *tensors)
    rng = np.random.default_rng(1)
    gout = lib.from_numpy(rng.standard_normal(tuple(out.shape)).astype(dtype))

    def step() -> None:
        fn(lib, *tensors).backward(gout)
        for t in leaves:
            t.grad = None

    return step


def measure_ops(lib: Any, ops: list[str], dtype: str = "float32", budget: float = 0.2) -> dict:
    """Seconds per call of every case of ``ops``, forward and forward+backward, keyed
    ``"op|label"``. Runs in a child process.

    Example:
        >>> import ember
        >>> list(measure_ops(ember, ["sum"], budget=0.01))
        ['sum|(16, 128, 1024) last axis']
    """
    out = {}
    for op in ops:
        for i, (label, specs, fn) in enumerate(CASES[op]):
            plain, _ = _inputs(lib, specs, dtype, False, seed=i)
            fwd = P.time_per_call(lambda fn=fn, plain=plain: fn(lib, *plain), budget)
            tensors, leaves = _inputs(lib, specs, dtype, True, seed=i)
            bwd = P.time_per_call(_fwd_bwd(lib, fn, tensors, leaves, dtype), budget)
            out[f"{op}|{label}"] = {"fwd": fwd, "fwdbwd": bwd}
    return out


def bench(
    ops: list[str], dtype: str, repeats: int, threads: int, budget: float, keep_blas_env: bool
) -> list[dict]:
    """Measure and print the table: per case and mode the median times and ratio."""
    runs = P.compare(
        "bench_ops",
        "measure_ops",
        {"ops": ops, "dtype": dtype, "budget": budget},
        repeats,
        threads,
        keep_blas_env,
        on_repeat=lambda r, _: print(f"repeat {r + 1}/{repeats} done", flush=True),
    )
    print()
    print(
        "| op | shape | fwd Ember ms | fwd PyTorch ms | fwd ratio | fwd+bwd Ember ms "
        "| fwd+bwd PyTorch ms | fwd+bwd ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for key in runs[0]["ember"]:
        op, label = key.split("|")
        row: dict[str, Any] = {"op": op, "shape": label}
        cells = []
        for mode in ("fwd", "fwdbwd"):
            e = [r["ember"][key][mode] for r in runs]
            t = [r["torch"][key][mode] for r in runs]
            med, lo, hi = P.ratio_summary([b / a for a, b in zip(e, t)])
            row[mode] = {"ember": statistics.median(e), "torch": statistics.median(t)}
            row[mode].update(ratio=med, lo=lo, hi=hi)
            spread = f" ({lo:.2f}-{hi:.2f})" if len(runs) > 1 else ""
            cells.append(
                f"{row[mode]['ember'] * 1e3:.3g} | {row[mode]['torch'] * 1e3:.3g} | "
                f"**{med:.2f}**{spread}"
            )
        rows.append(row)
        print(f"| {op} | {label} | {cells[0]} | {cells[1]} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", default=",".join(CASES), help="comma-separated op families")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--budget", type=float, default=0.2, help="seconds per timing")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    P.add_protocol_args(p, repeats=3)
    a = p.parse_args(argv)
    ops = [o for o in a.ops.split(",") if o]
    unknown = [o for o in ops if o not in CASES]
    if unknown:
        p.error(f"unknown op(s) {unknown}; expected some of {list(CASES)}")
    if a.list:
        for op in ops:
            for label, _, _ in CASES[op]:
                print(f"{op:14s} {label}")
        return
    title = f"bench_ops: per-op time, {a.dtype}, fwd and fwd+bwd"
    head = P.header(title, a.threads, a.keep_blas_env, P.THROUGHPUT)
    print(head)
    rows = bench(ops, a.dtype, a.repeats, a.threads, a.budget, a.keep_blas_env)
    print(P.load_line())
    P.write_json(a.json, head, rows)


if __name__ == "__main__":
    main()
