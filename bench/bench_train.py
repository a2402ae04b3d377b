"""Training throughput on the five reference workloads, Ember vs PyTorch eager.

Run: python bench/bench_train.py [--workloads mlp,lenet,...] [--steps N] [--repeats R]
Both frameworks train the same model source (bench/workloads.py) on the same batches;
they alternate inside each repeat and the median steps/s is reported with the ratio
Ember/PyTorch. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where set, are dropped for the run (see
``_reexec_without_blas_env``; ``--keep-blas-env`` keeps them).
``--memory`` also reports the peak resident memory of a ``gpt`` training
run for each framework (each in a fresh subprocess).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads

STEPS = {"mlp": 30, "lenet": 10, "resnet": 5, "lstm": 5, "gpt": 4}


def _steps_per_s(lib, state, steps):
    model, opt, loss_fn, batches = state
    t0 = time.perf_counter()
    workloads.train_steps(lib, model, opt, loss_fn, batches[:steps])
    return steps / (time.perf_counter() - t0)


def blas_info():
    """Which OpenBLAS kernel NumPy runs (OPENBLAS_CORETYPE can force an older one)."""
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
        arch = info[0].get("architecture") if info else "?"
    except ImportError:
        arch = "?"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return f"NumPy OpenBLAS kernel: {arch}" + (
        f" (forced by OPENBLAS_CORETYPE={forced})" if forced else ""
    )


def bench(names, repeats, steps_override=None):
    """Median steps/s of each framework and the median of the per-repeat ratios. The two
    frameworks alternate in ABBA order (ember first on even repeats, torch first on odd
    ones), so drift of a shared machine falls on both."""
    import torch

    import ember

    torch.set_num_threads(2)
    print(blas_info(), flush=True)
    rows = []
    for name in names:
        steps = steps_override or STEPS[name]
        states = {}
        for lib in (torch, ember):
            m, o, make, lf = workloads.build(lib, name)
            batches = [make() for _ in range(steps)]
            states[lib.__name__] = (lib, (m, o, lf, batches))
            workloads.train_steps(lib, m, o, lf, batches[:1])  # warm-up
        rates = {"ember": [], "torch": []}
        for r in range(repeats):
            for key in ("ember", "torch") if r % 2 == 0 else ("torch", "ember"):
                lib, st = states[key]
                rates[key].append(_steps_per_s(lib, st, steps))
        ratios = [e / t for e, t in zip(rates["ember"], rates["torch"])]
        e, t = statistics.median(rates["ember"]), statistics.median(rates["torch"])
        ratio = statistics.median(ratios)
        rows.append((name, e, t, ratio))
        print(
            f"{name:8s} ember {e:8.2f} steps/s   torch {t:8.2f} steps/s   ratio {ratio:5.2f}"
            f"   (repeats {min(ratios):.2f}-{max(ratios):.2f})",
            flush=True,
        )
    return rows


_MEM_CHILD = r"""
import sys
sys.path.insert(0, {bench!r})
import workloads
lib = __import__({lib!r})
if {lib!r} == "torch":
    lib.set_num_threads(2)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

m, o, make, lf = workloads.build(lib, "gpt")
batches = [make() for _ in range(4)]
workloads.train_steps(lib, m, o, lf, batches[:1])  # warm-up: lazy imports, compiled kernels
base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
workloads.train_steps(lib, m, o, lf, batches[1:])
print(base, status("VmHWM:"))
"""


def peak_memory():
    """Peak RSS growth (MiB) during 3 gpt training steps after one warm-up step (so that lazy
    imports and compiled kernels, e.g. numba's ~120 MiB, count in the base, not the growth),
    per framework, each in a fresh subprocess (Linux: reads VmRSS/VmHWM from /proc after
    resetting the peak)."""
    out = {}
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    for lib in ("torch", "ember"):
        code = _MEM_CHILD.format(bench=bench_dir, lib=lib)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        base, peak = map(int, r.stdout.split()[-2:])
        out[lib] = (peak - base) / 1024, peak / 1024
    print(
        f"gpt peak memory: ember +{out['ember'][0]:.0f} MiB (peak RSS {out['ember'][1]:.0f}) "
        f"| torch +{out['torch'][0]:.0f} MiB (peak RSS {out['torch'][1]:.0f})"
    )
    return out


_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_blas_env():
    """Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) to force an older OpenBLAS
    kernel (a workaround for old OpenBLAS builds); with a current NumPy that only slows its
    GEMMs (AVX2 kernels on an AVX-512 CPU). The variables are read when NumPy loads, so the
    benchmark re-runs itself without them; --keep-blas-env measures with them."""
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_ENV}
    print(
        f"re-running without {' and '.join(k for k in _BLAS_ENV if k in os.environ)} "
        "(--keep-blas-env to keep them)",
        flush=True,
    )
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="mlp,lenet,resnet,lstm,gpt")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--memory", action="store_true")
    p.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (they force an older kernel)",
    )
    a = p.parse_args()
    if not a.keep_blas_env and any(k in os.environ for k in _BLAS_ENV):
        _reexec_without_blas_env()
    bench(a.workloads.split(","), a.repeats, a.steps)
    if a.memory:
        peak_memory()


if __name__ == "__main__":
    main()
