"""Compiled training: Ember compiled vs PyTorch eager (and ``torch.compile`` when asked).

Run: python bench/bench_compile.py [--workloads mlp,gpt,...] [--repeats R] [--seconds S]
     [--torch-compile] [--threads N] [--keep-blas-env]

Each run (workload, variant, repeat) is its own fresh process (``bench/_protocol.py``). A
variant builds the workload from ``bench/workloads.py``, wraps one whole training step
(``zero_grad``, forward, loss, ``backward``, ``step``) and times:

- ``first_s``: the first call, which for a compiled step includes tracing and optimization
  (Ember: one eager run plus dry-run traces; ``torch.compile``: Dynamo + Inductor); with
  ``ember_eager`` measured too, the table adds each compiled variant's compile overhead: its
  first call minus the eager first call;
- ``steps_per_s``: the median chunk's rate after two more warm-up calls.

Variants: ``ember`` (``ember.compile`` of the step, with an empty kernel cache: its first call
is a cold compile), ``ember_cached`` (the same in a new process whose kernel cache a previous
process filled), ``ember_eager`` (Ember's eager step,
for reference), ``torch`` (PyTorch eager), ``torch_compile`` (``torch.compile`` of the
model's forward; the backward and optimizer run eagerly around it, as usual in PyTorch
training code — compiling a function that calls ``backward()`` graph-breaks there anyway).
Ratios are throughput over PyTorch eager's: above 1 means faster than PyTorch eager.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import _protocol as P
import workloads

ALL = list(workloads.SPECS)
N_BATCHES = 8


def measure_step(
    lib: Any, workload: str, variant: str, seconds: float = 1.5, cache_dir: str = ""
) -> dict:
    """First-call seconds and steady steps/s of one training step of ``workload`` (runs in a
    child process).

    Example:
        >>> import ember
        >>> r = measure_step(ember, "mlp", "ember", seconds=0.05)
        >>> r["steps_per_s"] > 0 and r["first_s"] > 0
        True
    """
    if cache_dir:  # Ember's kernel cache: empty (a cold first call) or warm
        import os

        os.environ["EMBER_CACHE_DIR"] = cache_dir
    model, opt, make, loss_fn = workloads.build(lib, workload)
    model.train()
    batches = [
        (lib.from_numpy(x), lib.from_numpy(y)) for x, y in (make() for _ in range(N_BATCHES))
    ]
    fwd = model
    if variant == "torch_compile":
        fwd = lib.compile(model)

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(fwd(x), y)
        loss.backward()
        opt.step()
        return loss

    if variant.startswith("ember") and variant != "ember_eager":
        step = lib.compile(step)
    t0 = time.perf_counter()
    step(*batches[0])
    first = time.perf_counter() - t0
    for b in batches[1:3]:
        step(*b)
    if variant.startswith("ember") and variant != "ember_eager":
        from ember.compiler import codegen

        codegen.wait_compiled()  # fused kernels compiling in the background: time them done
    t0 = time.perf_counter()
    step(*batches[3])
    per_chunk = max(1, int(seconds / 8 / max(time.perf_counter() - t0, 1e-6)))
    rates, done, start = [], 0, time.perf_counter()
    while len(rates) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for i in range(per_chunk):
            loss = step(*batches[(done + i) % N_BATCHES])
        float(loss.item())
        rates.append(per_chunk / (time.perf_counter() - t0))
        done += per_chunk
    return {"steps_per_s": statistics.median(rates), "first_s": first}


_FRAMEWORK = {
    "ember": "ember",
    "ember_cached": "ember",
    "ember_eager": "ember",
    "torch": "torch",
    "torch_compile": "torch",
}


def bench(names, variants, repeats, threads, seconds, keep_blas_env) -> list[dict]:
    cols = [v for v in variants if v != "torch"]
    # compile overhead: a compiled first call minus an eager first call (both cold processes:
    # the eager step inside the compiled first call costs what an eager first step costs)
    over = (
        [v for v in ("ember", "ember_cached") if v in variants] if "ember_eager" in variants else []
    )
    print(
        "| workload | PyTorch eager steps/s | "
        + " | ".join(f"{v} steps/s (x PyTorch eager) | {v} first call s" for v in cols)
        + "".join(f" | {v} compile overhead s" for v in over)
        + " |"
    )
    print("|---" * (2 + 2 * len(cols) + len(over)) + "|")
    rows = []
    import tempfile

    for name in names:
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        warm = tempfile.mkdtemp(prefix="ember-bench-cache-")
        if "ember_cached" in variants:  # fill the warm cache once (untimed)
            P.run_child(
                "bench_compile",
                "measure_step",
                "ember",
                {"workload": name, "variant": "ember", "seconds": 0.1, "cache_dir": warm},
                threads,
                keep_blas_env,
            )
        for r in range(repeats):
            order = list(variants) if r % 2 == 0 else list(variants)[::-1]
            for v in order:
                params = {"workload": name, "variant": v, "seconds": seconds}
                if v == "ember":  # a cold kernel cache: the first call compiles everything
                    params["cache_dir"] = tempfile.mkdtemp(prefix="ember-bench-cold-")
                elif v == "ember_cached":
                    params["cache_dir"] = warm
                runs[v].append(
                    P.run_child(
                        "bench_compile",
                        "measure_step",
                        _FRAMEWORK[v],
                        params,
                        threads,
                        keep_blas_env,
                    )
                )
        base = [x["steps_per_s"] for x in runs["torch"]]
        row: dict[str, Any] = {"workload": name, "torch": statistics.median(base)}
        cells = []
        for v in cols:
            ratios = [a["steps_per_s"] / b for a, b in zip(runs[v], base)]
            med, lo, hi = P.ratio_summary(ratios)
            sps = statistics.median(x["steps_per_s"] for x in runs[v])
            first = statistics.median(x["first_s"] for x in runs[v])
            row[v] = {"steps_per_s": sps, "ratio": med, "lo": lo, "hi": hi, "first_s": first}
            cells.append(f"{sps:.4g} ({med:.2f}, {lo:.2f}-{hi:.2f}) | {first:.2f}")
        for v in over:
            row[v]["overhead_s"] = row[v]["first_s"] - row["ember_eager"]["first_s"]
            cells.append(f"{row[v]['overhead_s']:.2f}")
        rows.append(row)
        print(f"| `{name}` | {row['torch']:.4g} | " + " | ".join(cells) + " |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(ALL), help=f"comma-separated, from {ALL}")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per run")
    p.add_argument("--torch-compile", action="store_true", help="also time torch.compile")
    p.add_argument("--no-eager", action="store_true", help="skip Ember's eager reference")
    P.add_protocol_args(p, repeats=3)
    a = p.parse_args(argv)
    names = [n for n in a.workloads.split(",") if n]
    unknown = [n for n in names if n not in workloads.SPECS]
    if unknown:
        p.error(f"unknown workload(s) {unknown}; expected some of {ALL}")
    variants = ["ember", "ember_cached", "torch"] + ([] if a.no_eager else ["ember_eager"])
    if a.torch_compile:
        variants.append("torch_compile")
    head = P.header(
        "bench_compile: compiled training steps/s", a.threads, a.keep_blas_env, P.THROUGHPUT
    )
    print(head + "\n")
    rows = bench(names, variants, a.repeats, a.threads, a.seconds, a.keep_blas_env)
    print(P.load_line())
    P.write_json(a.json, head, {"compile": rows})


if __name__ == "__main__":
    main()
