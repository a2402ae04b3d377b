"""ember_lite against onnxruntime: installed size and cold start on the Digits models.

Run: python bench/bench_lite.py [--repeats 5] [--no-size]

Each model (the Digits CNN of examples/digits_cnn.yaml and the Digits MLP of
examples/digits_mlp.yaml, 8x8 images, batch 1) is saved twice: ``ember.export.save`` (the
directory ember_lite reads) and ``ember.onnx.export`` (the file onnxruntime reads). Cold start
is a fresh process: import the runtime, load the model, run the first inference, timed inside
the process from just before the import (interpreter start-up is not counted; ``process``
adds it, timed by the parent around the whole child). The runtimes alternate (ABBA) and the
median of ``--repeats`` is reported, after one untimed run of each that warms the bytecode
and the file cache. Sizes are on-disk bytes of the installed package alone (ember-lite as
``pip install --no-deps --target`` writes it; onnxruntime as installed here); NumPy, which
both need, is not counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _protocol as P
import numpy as np

CHILD = {
    "numpy": """
import time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
print(t1 - t0)
""",
    "ember_lite": """
import time
t0 = time.perf_counter()
import numpy as np
import ember_lite
m = ember_lite.load({path!r})
y = m(np.load({x!r}))
t1 = time.perf_counter()
np.save({out!r}, y)
print(t1 - t0)
""",
    "onnxruntime": """
import time
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
s = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
y = s.run(None, {{s.get_inputs()[0].name: np.load({x!r})}})[0]
t1 = time.perf_counter()
np.save({out!r}, y)
print(t1 - t0)
""",
}


def build(name: str):
    import ember

    nn = ember.nn
    ember.manual_seed(0)
    if name == "digits_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
            nn.Linear(128, 10),
        ).eval()  # fmt: skip
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10),
    ).eval()  # fmt: skip


def save_models(tmp: str) -> dict[str, dict[str, str]]:
    import ember
    import ember.export
    import ember.onnx

    out = {}
    for name in ("digits_cnn", "digits_mlp"):
        model = build(name)
        x = ember.randn(1, 1, 8, 8)
        lite_dir = os.path.join(tmp, name)
        ember.export.save(model, lite_dir, x)
        onnx_path = os.path.join(tmp, name + ".onnx")
        ember.onnx.export(model, x, onnx_path, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
        xpath = os.path.join(tmp, name + "_x.npy")
        np.save(xpath, np.random.default_rng(0).random((1, 1, 8, 8), np.float32))
        out[name] = {"ember_lite": lite_dir, "onnxruntime": onnx_path, "x": xpath}
    return out


def cold_start(runtime: str, path: str, xpath: str, tmp: str) -> tuple[float, float, str]:
    out = os.path.join(tmp, f"y_{runtime}.npy")
    code = CHILD[runtime].format(path=path, x=xpath, out=out)
    if runtime == "numpy":
        out = ""
    env = dict(os.environ, PYTHONPATH=P.REPO_DIR)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{runtime} child failed:\n{r.stderr}")
    return float(r.stdout.strip().splitlines()[-1]), wall, out


def dir_bytes(path: str) -> int:
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def lite_installed_bytes(tmp: str) -> tuple[int, int]:
    """(package with its .pyc files, sources only) of ember-lite installed from its wheel."""
    wheels, target = os.path.join(tmp, "wheels"), os.path.join(tmp, "site")
    os.environ.setdefault("PIP_ROOT_USER_ACTION", "ignore")  # quiet when run as root
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", wheels, "lite/"],
        check=True,
        cwd=P.REPO_DIR,
    )
    whl = next(os.path.join(wheels, f) for f in os.listdir(wheels) if f.endswith(".whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", target, whl], check=True)
    shutil.rmtree(os.path.join(P.REPO_DIR, "lite", "build"), ignore_errors=True)
    shutil.rmtree(os.path.join(P.REPO_DIR, "lite", "ember_lite.egg-info"), ignore_errors=True)
    pkg = os.path.join(target, "ember_lite")
    src = sum(os.path.getsize(os.path.join(pkg, f)) for f in os.listdir(pkg) if f.endswith(".py"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", pkg], check=True)
    return dir_bytes(target), src


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-size", action="store_true", help="skip building the wheel")
    args = p.parse_args()
    import onnxruntime

    cpu = P.cpu_info()
    print("# ember_lite vs onnxruntime: install size and cold start (import + load + 1st run)")
    print(f"commit {P.git_commit()}; CPU: {cpu['model']} ({os.cpu_count()} CPUs, {cpu['simd']})")
    print(
        f"Python {sys.version.split()[0]}, NumPy {np.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; {P.load_line()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_size:
            lite_all, lite_src = lite_installed_bytes(tmp)
            ort_bytes = dir_bytes(os.path.dirname(onnxruntime.__file__))
            print(
                f"\ninstalled size: ember-lite {lite_all / 1e3:.0f} kB ({lite_src / 1e3:.0f} kB "
                f"of sources, .pyc and dist-info included in the first figure); onnxruntime "
                f"{ort_bytes / 1e6:.1f} MB (NumPy, needed by both, not counted)"
            )
        models = save_models(tmp)
        print("\n| model | runtime | cold start (ms, median) | process incl. interpreter (ms) |")
        print("|---|---|---|---|")
        for name, paths in models.items():
            times: dict[str, list[tuple[float, float]]] = {"ember_lite": [], "onnxruntime": []}
            outs = {}
            for rt in times:  # untimed: bytecode and file cache
                outs[rt] = np.load(cold_start(rt, paths[rt], paths["x"], tmp)[2])
            np.testing.assert_allclose(
                outs["ember_lite"], outs["onnxruntime"], rtol=1e-4, atol=1e-5
            )
            for order in P.abba(args.repeats, tuple(times)):
                for rt in order:
                    inside, wall, _ = cold_start(rt, paths[rt], paths["x"], tmp)
                    times[rt].append((inside, wall))
            base = [cold_start("numpy", "", "", tmp)[:2] for _ in range(args.repeats)]
            times["numpy"] = base  # the import both runtimes start with
            for rt, ts in times.items():
                inside = statistics.median(t[0] for t in ts) * 1e3
                wall = statistics.median(t[1] for t in ts) * 1e3
                label = "(import numpy alone)" if rt == "numpy" else rt
                print(f"| {name} | {label} | {inside:.0f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
