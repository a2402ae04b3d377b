"""Training throughput on the reference workloads, Ember vs PyTorch eager.

Run: python bench/bench_train.py [--workloads mlp,gpt,...] [--repeats R] [--seconds S]
     [--threads N] [--memory] [--keep-blas-env]

Both frameworks train the same model source (``bench/workloads.py``) on the same batches.
Every (workload, framework, repeat) runs in its own fresh process (``bench/_protocol.py``):
it builds the model, takes two untimed warm-up steps, then trains for about ``--seconds``
in chunks and reports the median chunk's steps/s. The ratio is Ember / PyTorch steps/s,
the median over the repeats (the frameworks alternate their order across repeats), with
the spread.

``--memory`` also measures each workload's peak resident memory per framework, again each
in a fresh process: the peak RSS over a few training steps after the warm-up (so lazy imports
and compiled kernels count in the base) and its growth over the warmed-up process.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _protocol as P
import workloads

ALL = list(workloads.SPECS)
N_BATCHES = 8  # distinct batches, cycled: enough that no cache holds a batch's activations


def measure_train(lib: Any, workload: str, seconds: float = 1.5) -> dict:
    """Steps/s of ``workload`` in ``lib``: build, two untimed warm-up steps, then chunks of
    about ``seconds / 8`` each until ``seconds`` have passed (at least 3 chunks); the median
    chunk gives the rate (robust to the spikes other tenants of a shared machine cause,
    while a chunk still includes any periodic cost of the framework). Runs in a child
    process.

    Example:
        >>> import ember
        >>> measure_train(ember, "mlp", seconds=0.05)["steps_per_s"] > 0
        True
    """
    model, opt, make, loss_fn = workloads.build(lib, workload)
    batches = [make() for _ in range(N_BATCHES)]
    workloads.train_steps(lib, model, opt, loss_fn, batches[:2])
    t0 = time.perf_counter()
    workloads.train_steps(lib, model, opt, loss_fn, batches[2:3])
    per_chunk = max(1, int(seconds / 8 / max(time.perf_counter() - t0, 1e-6)))
    rates, done, start = [], 0, time.perf_counter()
    while len(rates) < 3 or time.perf_counter() - start < seconds:
        chunk = [batches[(done + i) % N_BATCHES] for i in range(per_chunk)]
        t0 = time.perf_counter()
        loss = workloads.train_steps(lib, model, opt, loss_fn, chunk)
        rates.append(per_chunk / (time.perf_counter() - t0))
        done += per_chunk
    return {"steps_per_s": statistics.median(rates), "steps": done, "loss": loss[-1]}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def measure_memory(lib: Any, workload: str, steps: int = 3) -> dict:
    """Peak RSS (MiB) over ``steps`` training steps after one warm-up step, and its growth
    over the warmed-up process (Linux: resets VmHWM through /proc/self/clear_refs)."""
    model, opt, make, loss_fn = workloads.build(lib, workload)
    batches = [make() for _ in range(steps + 1)]
    workloads.train_steps(lib, model, opt, loss_fn, batches[:1])
    base = _status_kib("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    workloads.train_steps(lib, model, opt, loss_fn, batches[1:])
    peak = _status_kib("VmHWM:")
    return {"base_mib": base / 1024, "peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024}


def bench(
    names: list[str], repeats: int, threads: int, seconds: float, keep_blas_env: bool
) -> list[dict]:
    """Measure each workload; prints one table row per workload as it finishes."""
    print("| workload | Ember steps/s | PyTorch steps/s | Ember/PyTorch | repeats |")
    print("|---|---|---|---|---|")
    rows = []
    for name in names:
        runs = P.compare(
            "bench_train",
            "measure_train",
            {"workload": name, "seconds": seconds},
            repeats,
            threads,
            keep_blas_env,
        )
        e = [r["ember"]["steps_per_s"] for r in runs]
        t = [r["torch"]["steps_per_s"] for r in runs]
        med, lo, hi = P.ratio_summary([a / b for a, b in zip(e, t)])
        row = {"workload": name, "ember": statistics.median(e), "torch": statistics.median(t)}
        row.update(ratio=med, lo=lo, hi=hi)
        rows.append(row)
        print(
            f"| `{name}` | {row['ember']:.4g} | {row['torch']:.4g} | {med:.2f} | "
            f"{lo:.2f}-{hi:.2f} |",
            flush=True,
        )
    return rows


def memory(names: list[str], threads: int, keep_blas_env: bool) -> list[dict]:
    """Peak RSS per workload and framework, each in a fresh process."""
    print()
    print(
        "| workload | Ember peak RSS MiB (growth) | PyTorch peak RSS MiB (growth) "
        "| Ember/PyTorch peak |"
    )
    print("|---|---|---|---|")
    rows = []
    for name in names:
        res = {
            fw: P.run_child(
                "bench_train", "measure_memory", fw, {"workload": name}, threads, keep_blas_env
            )
            for fw in P.FRAMEWORKS
        }
        e, t = res["ember"], res["torch"]
        rows.append({"workload": name, **{fw: res[fw] for fw in res}})
        print(
            f"| `{name}` | {e['peak_mib']:.0f} (+{e['growth_mib']:.0f}) | "
            f"{t['peak_mib']:.0f} (+{t['growth_mib']:.0f}) | {e['peak_mib'] / t['peak_mib']:.2f} |",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(ALL), help=f"comma-separated, from {ALL}")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per run")
    p.add_argument("--memory", action="store_true", help="also measure peak RSS")
    P.add_protocol_args(p, repeats=5)
    a = p.parse_args(argv)
    names = [n for n in a.workloads.split(",") if n]
    unknown = [n for n in names if n not in workloads.SPECS]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; expected some of {ALL}")
    head = P.header("bench_train: training steps/s", a.threads, a.keep_blas_env, P.THROUGHPUT)
    print(head + "\n")
    results = {"train": bench(names, a.repeats, a.threads, a.seconds, a.keep_blas_env)}
    if a.memory:
        results["memory"] = memory(names, a.threads, a.keep_blas_env)
    print(P.load_line())
    P.write_json(a.json, head, results)


if __name__ == "__main__":
    main()
