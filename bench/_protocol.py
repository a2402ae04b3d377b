"""The measuring protocol every script in ``bench/`` shares.

Each framework is measured in its own fresh Python process: a process that imported both
frameworks would share one allocator, one set of BLAS and OpenMP thread pools and one cache
with the other framework, and whichever ran second would pay for the first. A child process
imports its framework, builds and warms up its workload outside the timed region, measures,
and prints one JSON line that the parent reads.

Within one comparison the frameworks alternate their order across repeats (ABBA: Ember first
on even repeats, PyTorch first on odd ones), so the drift of a shared machine falls on both;
the reported figure is the median of the per-repeat ratios, with their spread.

Ratios always read as **Ember / PyTorch throughput** (PyTorch time / Ember time): above 1
means Ember is faster. ``bench_overhead.py`` is the one exception, reporting the time ratio its
target is stated in, and says so in its header.

Some machines set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` to force an older OpenBLAS
kernel (a workaround for old OpenBLAS builds); with a current NumPy that only slows NumPy's
GEMMs (AVX2 kernels on an AVX-512 CPU) while PyTorch (MKL, oneDNN) is unaffected. The
variables are read when NumPy loads, so the children run without them unless
``--keep-blas-env`` is given; the header prints the kernel the children got.

Example:
    >>> from _protocol import ratio_summary
    >>> ratio_summary([1.0, 1.2, 0.9])
    (1.0, 0.9, 1.2)
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
FRAMEWORKS = ("ember", "torch")
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MARK = "@@BENCH@@ "


# ------------------------------------------------------------------ options and environment


def add_protocol_args(p: argparse.ArgumentParser, repeats: int) -> None:
    """The options every benchmark script shares: ``--repeats``, ``--threads``,
    ``--keep-blas-env``."""
    p.add_argument("--repeats", type=int, default=repeats, help="repeats per comparison")
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads for both frameworks (default: all CPUs)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the header and results as JSON")
    p.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the children (they force an "
        "older OpenBLAS kernel)",
    )


def child_env(keep_blas_env: bool = False, threads: int | None = None) -> dict[str, str]:
    """The environment of the measuring processes: the BLAS-forcing variables dropped unless
    ``keep_blas_env``, ``bench/`` and the repository on ``PYTHONPATH`` (so ``import ember``
    resolves to this checkout, as it does for the scripts), and the thread count set for
    both frameworks where they read it at import."""
    env = dict(os.environ)
    if not keep_blas_env:
        for k in BLAS_ENV:
            env.pop(k, None)
    path = [BENCH_DIR, REPO_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(path)
    if threads is not None:
        env["EMBER_NUM_THREADS"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def dropped_blas_env(keep_blas_env: bool) -> list[str]:
    """The BLAS variables set here that the children will not see."""
    return [] if keep_blas_env else [k for k in BLAS_ENV if k in os.environ]


# ------------------------------------------------------------------ the child side


def import_framework(name: str, threads: int) -> Any:
    """Import ``ember`` or ``torch`` and give it ``threads`` threads."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; expected one of {FRAMEWORKS}")
    lib = importlib.import_module(name)
    lib.set_num_threads(threads)
    return lib


def _blas_kernels() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["? (threadpoolctl not installed)"]
    out = []
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            lib = info.get("internal_api", "?")
            arch = info.get("architecture") or "?"
            out.append(f"{lib} {info.get('version') or ''} {arch}".replace("  ", " ").strip())
    return out or ["none loaded"]


def probe(lib: Any) -> dict[str, Any]:
    """What a child reports about itself: versions, threads and the BLAS kernels NumPy (and,
    in the PyTorch process, PyTorch) loaded."""
    import numpy as np

    info: dict[str, Any] = {
        "framework": lib.__name__,
        "version": str(lib.__version__),
        "threads": lib.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "blas": _blas_kernels(),
    }
    if lib.__name__ == "ember":
        from ember.backends import jit

        info["jit"] = jit.available()
        from ember.backends import _mkl
        from ember.backends.cpu import blas_backend

        found = _mkl.load() if blas_backend() == "mkl" else None
        info["gemm"] = f"MKL {found.version}" if found is not None else "NumPy's OpenBLAS"
        try:
            import numba

            info["numba"] = numba.__version__
        except ImportError:
            info["numba"] = None
    else:
        info["cpu_capability"] = lib.backends.cpu.get_cpu_capability()
        info["mkl"] = lib.backends.mkl.is_available()
        info["onednn"] = lib.backends.mkldnn.is_available()
    return info


def child_main(argv: Sequence[str]) -> None:
    """Entry point of a measuring process: ``module function framework threads params``.
    Calls ``module.function(lib, **params)`` and prints its JSON-able result on one line."""
    module, function, framework, threads, params = argv
    lib = import_framework(framework, int(threads))
    fn = getattr(importlib.import_module(module), function)
    result = fn(lib, **json.loads(params))
    loaded = [fw for fw in FRAMEWORKS if fw in sys.modules]
    print(_MARK + json.dumps({"result": result, "loaded": loaded}), flush=True)


def time_per_call(fn: Callable[[], Any], budget: float = 0.2, chunks: int = 5) -> float:
    """Seconds per call of ``fn``: two warm-up calls, then ``chunks`` timed chunks whose
    iteration count is scaled so that they take about ``budget`` seconds together; the
    fastest chunk counts (as ``timeit`` advises: on a shared machine the slower chunks measure
    the other tenants, and a framework whose worker thread loses its core waits a whole
    scheduler slice at its next barrier).

    Example:
        >>> time_per_call(lambda: sum(range(100)), budget=0.01) > 0
        True
    """
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / chunks / one))
    per = []
    for _ in range(chunks):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per.append((time.perf_counter() - t0) / n)
    return min(per)


# ------------------------------------------------------------------ the parent side


class ChildError(RuntimeError):
    """A measuring process failed; the message carries the end of its stderr."""


def run_child(
    module: str,
    function: str,
    framework: str,
    params: dict[str, Any] | None = None,
    threads: int = 1,
    keep_blas_env: bool = False,
    timeout: float | None = None,
) -> Any:
    """Run ``module.function(lib, **params)`` in a fresh process for ``framework`` and
    return what it returned (any JSON value)."""
    cmd = [
        sys.executable,
        "-c",
        "import sys, _protocol; _protocol.child_main(sys.argv[1:])",
        module,
        function,
        framework,
        str(threads),
        json.dumps(params or {}),
    ]
    r = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=child_env(keep_blas_env, threads),
        cwd=REPO_DIR,
        timeout=timeout,
    )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(_MARK)]
    if r.returncode != 0 or not lines:
        tail = "\n".join(r.stderr.strip().splitlines()[-15:])
        raise ChildError(
            f"{framework} child {module}.{function}({params}) failed (exit {r.returncode}):\n{tail}"
        )
    out = json.loads(lines[-1][len(_MARK) :])
    if out["loaded"] != [framework]:
        # the point of a process per framework: the other one's allocator, thread pools and
        # caches must not be there
        raise ChildError(
            f"{framework} child {module}.{function} loaded {out['loaded']}, not {framework} alone"
        )
    return out["result"]


def abba(repeats: int, frameworks: Sequence[str] = FRAMEWORKS) -> list[tuple[str, ...]]:
    """Framework order of each repeat: as given on even repeats, reversed on odd ones.

    Example:
        >>> abba(3)
        [('ember', 'torch'), ('torch', 'ember'), ('ember', 'torch')]
    """
    fw = tuple(frameworks)
    return [fw if r % 2 == 0 else fw[::-1] for r in range(repeats)]


def ratio_summary(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum of the per-repeat ratios."""
    if not ratios:
        raise ValueError("ratio_summary: no ratios (repeats must be >= 1)")
    return statistics.median(ratios), min(ratios), max(ratios)


def compare(
    module: str,
    function: str,
    params: dict[str, Any] | None = None,
    repeats: int = 3,
    threads: int = 1,
    keep_blas_env: bool = False,
    on_repeat: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run ``module.function`` for each framework, ``repeats`` times in ABBA order, each run
    in its own process; returns one ``{framework: result}`` dict per repeat."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    out = []
    for r, order in enumerate(abba(repeats)):
        res = {fw: run_child(module, function, fw, params, threads, keep_blas_env) for fw in order}
        out.append(res)
        if on_repeat is not None:
            on_repeat(r, res)
    return out


# ------------------------------------------------------------------ the header


def cpu_info() -> dict[str, str]:
    """CPU model, vendor and the widest SIMD level, from ``/proc/cpuinfo`` (Linux)."""
    info = {"model": platform.processor() or "?", "vendor": "?", "simd": "?"}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, val = line.partition(":")
        fields.setdefault(key.strip(), val.strip())  # the first CPU's values
    info["model"] = fields.get("model name", info["model"])
    info["vendor"] = fields.get("vendor_id", "?")
    flags = set(fields.get("flags", "").split())
    info["simd"] = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "?")
    return info


def git_commit() -> str:
    """The checkout's short commit, with ``+dirty`` when the tree has local changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=REPO_DIR,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=REPO_DIR,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def header(title: str, threads: int, keep_blas_env: bool, convention: str) -> str:
    """The lines every script prints first: what was measured, on which machine, with which
    BLAS and threads, at which commit. Probes each framework in a fresh child process, in the
    environment the measurements get."""
    cpu = cpu_info()
    lines = [
        f"# {title}",
        f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"commit {git_commit()}, {platform.system()} {platform.machine()}",
        f"CPU: {cpu['model']} (vendor {cpu['vendor']}, {os.cpu_count()} CPUs, {cpu['simd']})",
    ]
    for fw in FRAMEWORKS:
        p = run_child("_protocol", "probe", fw, threads=threads, keep_blas_env=keep_blas_env)
        extra = ""
        if fw == "ember":
            jit = "on" if p.get("jit") else "off"
            extra = f", numba {p.get('numba') or 'absent'} (jit {jit}), GEMM blocks {p['gemm']}"
        else:
            extra = (
                f", kernels {p['cpu_capability']}, MKL {'yes' if p['mkl'] else 'no'}, "
                f"oneDNN {'yes' if p['onednn'] else 'no'}"
            )
        lines.append(
            f"{fw} {p['version']}: {p['threads']} threads, NumPy {p['numpy']} BLAS "
            f"{'; '.join(p['blas'])}{extra}, Python {p['python']}"
        )
    dropped = dropped_blas_env(keep_blas_env)
    if dropped:
        lines.append(f"dropped {', '.join(dropped)} for the children (--keep-blas-env keeps them)")
    elif keep_blas_env:
        kept = [f"{k}={os.environ[k]}" for k in BLAS_ENV if k in os.environ]
        lines.append(f"--keep-blas-env: {', '.join(kept) or 'no OPENBLAS_* variable set'}")
    lines.append(
        "protocol: each framework in its own fresh process per repeat (import and warm-up "
        "untimed), order alternated across repeats (ABBA), median of per-repeat ratios "
        "[min-max]"
    )
    lines.append(f"convention: {convention}")
    lines.append(load_line())
    return "\n".join(lines)


def load_line() -> str:
    """The machine's load average: on a shared machine, runs under load are noisier (a
    framework whose worker thread loses its core waits at every barrier)."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average: ?"
    n = os.cpu_count() or 1
    line = f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {n} CPUs"
    if one > n:
        line += " -- WARNING: more runnable processes than CPUs, the ratios are unreliable"
    return line


def write_json(path: str | None, head: str, rows: Any) -> None:
    """Write ``{"header": [lines], "results": rows}`` to ``path`` (nothing when None)."""
    if path:
        with open(path, "w") as f:
            json.dump({"header": head.splitlines(), "results": rows}, f, indent=1)


THROUGHPUT = "ratio = Ember / PyTorch throughput (PyTorch time / Ember time); > 1: Ember faster"


if __name__ == "__main__":
    child_main(sys.argv[1:])
