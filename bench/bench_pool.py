"""Ember's thread pool: hand-off latency and sub-millisecond row kernels on 1 vs 2 threads.

Run: python bench/bench_pool.py [--repeats R]

Prints the load average first: wall-clock gains on two threads can only be judged on an idle
machine (on a loaded one the second thread waits for a core). Each figure is the median over
repeats of the mean wall time per call, in microseconds, Ember only (``bench_ops.py`` compares
with PyTorch):

- ``handoff``: an empty 2-block ``parallel_for`` forced onto two threads, i.e. the cost of
  waking a worker, running nothing and collecting it;
- ``sum`` (16,128,1024) last axis, ``softmax`` / ``log_softmax`` / ``layer_norm`` /
  ``cross_entropy`` on (2048,256) float32, at one and at two threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wall_us(f: Callable[[], object], n: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean wall time of ``n`` calls of ``f``, in us."""
    for _ in range(max(3, n // 10)):
        f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        ts.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    import numpy as np

    import ember
    import ember.nn.functional as F
    from ember.ops._parallel import parallel_for

    print(f"load average {os.getloadavg()}, CPUs {os.cpu_count()}")
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal((16, 128, 1024), dtype=np.float32))
    s = ember.tensor(rng.standard_normal((2048, 256), dtype=np.float32))
    t = ember.tensor(rng.integers(0, 256, 2048))
    w, b = ember.ones(256), ember.zeros(256)
    ops: dict[str, Callable[[], object]] = {
        "sum": lambda: x.sum(-1),
        "softmax": lambda: F.softmax(s, -1),
        "log_softmax": lambda: F.log_softmax(s, -1),
        "layer_norm": lambda: F.layer_norm(s, (256,), w, b),
        "cross_entropy": lambda: F.cross_entropy(s, t),
    }
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(2)
        noop = lambda a, b, slot: None
        h = wall_us(lambda: parallel_for(2, 1, noop, 1 << 62), 2000, args.repeats)
        print(f"handoff (empty 2-block parallel_for): {h:.1f} us")
        for name, f in ops.items():
            res = []
            for n in (1, 2):
                ember.set_num_threads(n)
                res.append(wall_us(f, 200, args.repeats))
            print(f"{name:14s} 1 thread {res[0]:7.1f} us   2 threads {res[1]:7.1f} us")
    finally:
        ember.set_num_threads(old)


if __name__ == "__main__":
    main()
