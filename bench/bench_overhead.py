"""Eager per-op overhead, Ember vs PyTorch, each framework in its own process.

Run: python bench/bench_overhead.py [--repeats R] [--threads N] [--keep-blas-env]

Tiny tensors, so that the time is the framework's own bookkeeping (dispatch, autograd
records, the backward loop), not arithmetic. Prints microseconds per op for both frameworks
and the ratio **Ember time / PyTorch time** (lower is better for Ember; the overhead target
is stated this way, e.g. "<= 1.2x PyTorch per op"), the median of the per-repeat ratios
(``bench/_protocol.py``: a fresh process per framework and repeat, order alternated).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import _protocol as P
import numpy as np


def add_case(lib: Any) -> Callable[[], Any]:
    a = lib.tensor(np.ones(4, np.float32))
    b = lib.tensor(np.ones(4, np.float32))
    return lambda: a + b


def chain_case(lib: Any) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((16, 16)).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal((16, 16)).astype(np.float32), requires_grad=True)

    def step() -> None:
        # 10 ops forward, then backward through all of them
        h = x @ w
        h = h + 1.0
        h = h.tanh()
        h = h * x
        h = h.exp()
        h = h - x
        h = h.sigmoid()
        h = h / 2.0
        h = h.relu()
        loss = h.sum()
        loss.backward()
        x.grad = None
        w.grad = None

    return step


# name -> (case builder, ops per call)
CASES = {
    "a + b (4 elements), per op": (add_case, 1),
    "10-op chain + backward (16x16), per op": (chain_case, 10),
}


def measure_overhead(lib: Any, budget: float = 0.3) -> dict:
    """Seconds per op of every case. Runs in a child process.

    Example:
        >>> import ember
        >>> sorted(measure_overhead(ember, budget=0.01)) == sorted(CASES)
        True
    """
    return {
        name: P.time_per_call(make(lib), budget, chunks=7) / ops
        for name, (make, ops) in CASES.items()
    }


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=0.3, help="seconds per timing")
    P.add_protocol_args(p, repeats=7)
    a = p.parse_args(argv)
    convention = "ratio = Ember time / PyTorch time per op; < 1: Ember has less overhead"
    head = P.header("bench_overhead: eager per-op overhead", a.threads, a.keep_blas_env, convention)
    print(head)
    runs = P.compare(
        "bench_overhead",
        "measure_overhead",
        {"budget": a.budget},
        a.repeats,
        a.threads,
        a.keep_blas_env,
    )
    print()
    print("| case | Ember µs | PyTorch µs | Ember/PyTorch time | repeats |")
    print("|---|---|---|---|---|")
    rows = []
    for name in CASES:
        e = [r["ember"][name] for r in runs]
        t = [r["torch"][name] for r in runs]
        med, lo, hi = P.ratio_summary([x / y for x, y in zip(e, t)])
        em, tm = statistics.median(e) * 1e6, statistics.median(t) * 1e6
        rows.append(
            {"case": name, "ember_us": em, "torch_us": tm, "ratio": med, "lo": lo, "hi": hi}
        )
        print(f"| {name} | {em:.2f} | {tm:.2f} | {med:.2f} | {lo:.2f}-{hi:.2f} |")
    print(P.load_line())
    P.write_json(a.json, head, rows)
    return rows


if __name__ == "__main__":
    main()
