"""Eager per-op overhead, Ember vs PyTorch, side by side in one process.

Run: python bench/bench_overhead.py
Prints microseconds per op for both frameworks and the ratio Ember/PyTorch (lower is
better for Ember). Frameworks alternate inside each repeat, medians are reported.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def _time(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def add_case(lib):
    a = lib.tensor(np.ones(4, np.float32))
    b = lib.tensor(np.ones(4, np.float32))
    return lambda: a + b


def chain_case(lib):
    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((16, 16)).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal((16, 16)).astype(np.float32), requires_grad=True)

    def step():
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


def main(repeats: int = 7):
    import torch

    import ember

    torch.set_num_threads(2)
    cases = [
        ("a + b (4 elems), per op", add_case, 20000, 1),
        ("10-op chain + backward (16x16), per op", chain_case, 2000, 10),
    ]
    rows = []
    for name, make, n, ops in cases:
        fe, ft = make(ember), make(torch)
        _time(fe, n // 10), _time(ft, n // 10)  # warm up
        te, tt = [], []
        for _ in range(repeats):
            te.append(_time(fe, n) / ops)
            tt.append(_time(ft, n) / ops)
        e, t = statistics.median(te) * 1e6, statistics.median(tt) * 1e6
        rows.append((name, e, t, e / t))
    print(f"{'case':44s} {'ember us':>9s} {'torch us':>9s} {'ember/torch':>12s}")
    for name, e, t, r in rows:
        print(f"{name:44s} {e:9.2f} {t:9.2f} {r:12.2f}")
    return rows


if __name__ == "__main__":
    main()
