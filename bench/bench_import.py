"""Start-up time and install size: NumPy, Ember's core, PyTorch.

Run: python bench/bench_import.py [--repeats N] [--no-bytecode]
Each import is timed in a fresh interpreter (the median of N; the three modules alternate),
measured inside the process from just before the import statement, so interpreter start-up is
not counted. Bytecode is
cached in a temporary PYTHONPYCACHEPREFIX warmed by one untimed run (as an installed package
has its .pyc files); --no-bytecode compiles every module from source instead.
Sizes are on-disk file sizes: Ember's core as ``pip install --no-deps --target`` writes it,
plus its two dependencies (numpy, ml_dtypes) as installed here; PyTorch as installed here,
with and without its required dependencies. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("numpy", "ember", "torch")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def import_seconds(module: str, env: dict) -> float | None:
    """Seconds to import ``module`` in a fresh interpreter (None when it is not installed)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return float(r.stdout) if r.returncode == 0 else None


def import_times(repeats: int, env: dict, warm: bool) -> dict:
    """Per-module lists of import times. The modules alternate within each repeat, so load
    from other processes on the machine drifts into all of them alike."""
    if warm:  # untimed: writes the .pyc files
        for m in MODULES:
            import_seconds(m, env)
    times: dict = {m: [] for m in MODULES}
    for _ in range(repeats):
        for m in MODULES:
            times[m].append(import_seconds(m, env))
    return times


def dist_bytes(name: str) -> int:
    """Bytes on disk of an installed distribution's files."""
    total = 0
    for f in metadata.files(name) or ():
        p = Path(f.locate())
        if p.is_file():
            total += p.stat().st_size
    return total


def required_deps(name: str) -> list[str]:
    """The unconditional requirements of an installed distribution (no extras/markers)."""
    deps = []
    for req in metadata.requires(name) or ():
        if ";" in req:
            continue
        dep = req.split()[0]
        for sep in "<>=!~[(":
            dep = dep.split(sep)[0]
        deps.append(dep)
    return deps


def ember_core_bytes(tmp: Path) -> int:
    """Install Ember's core (no extras, no deps) with pip into ``tmp`` and measure it."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ember", src / "ember", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        + ["--no-compile", "--target", str(target), str(src)],
        check=True,
        capture_output=True,
    )
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--no-bytecode", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        runs = import_times(args.repeats, env, warm=not args.no_bytecode)
        core = ember_core_bytes(tmp)

    numpy_b, mld_b = dist_bytes("numpy"), dist_bytes("ml_dtypes")
    torch_b = dist_bytes("torch")
    torch_deps = required_deps("torch")
    torch_deps_b = sum(dist_bytes(dep) for dep in torch_deps if _installed(dep))

    def t(m):
        if None in runs[m]:
            return "not installed"
        return f"{statistics.median(runs[m]) * 1e3:.0f} ms"

    ember_own = statistics.median(e - n for e, n in zip(runs["ember"], runs["numpy"]))

    print(
        f"CPU: {cpu_model()}; Python {sys.version.split()[0]}; median of {args.repeats} fresh "
        f"processes each, alternating; bytecode "
        f"{'compiled from source' if args.no_bytecode else 'cached'}.\n"
    )
    print("| | import time | install size |")
    print("|---|---|---|")
    print(f"| numpy | {t('numpy')} | {mib(numpy_b)} |")
    print(
        f"| ember (core) | {t('ember')} (numpy included; ember's own {ember_own * 1e3:.0f} ms) "
        f"| {mib(core)} ember + {mib(numpy_b)} numpy + {mib(mld_b)} ml_dtypes "
        f"= {mib(core + numpy_b + mld_b)} |"
    )
    print(
        f"| torch | {t('torch')} | {mib(torch_b)} torch + {mib(torch_deps_b)} required deps "
        f"({', '.join(torch_deps)}) = {mib(torch_b + torch_deps_b)} |"
    )


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    main()
