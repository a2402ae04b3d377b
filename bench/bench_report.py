"""CPU cost and size of ``ember report`` for a 100-epoch run.

Run: python bench/bench_report.py [--epochs 100] [--steps 50] [--classes 10] [--repeats 5]

Writes a run folder as ``ember train`` does (``log.csv`` with loss/accuracy and their
validation values, ``steps.csv`` with one row per step, ``timing.csv``, ``config.json``,
``results.json`` and ``val_predictions.npz`` for a classifier), then, in a fresh process per
repeat, measures with ``time.process_time`` (CPU seconds of this process):

- cold: reading the folder and rendering the page in a process that has imported ember but
  not matplotlib (the first ``ember report`` or the first ``PlotCallback`` epoch: matplotlib's
  import and font set-up included);
- warm: the same again in that process (every later ``PlotCallback`` epoch).

Prints medians over the repeats and the page's size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time, json
import ember
from ember.report import load_run, render_html
out = {}
for what in ("cold", "warm"):
    t = time.process_time()
    page = render_html([load_run(sys.argv[1])])
    out[what] = time.process_time() - t
out["bytes"] = len(page.encode())
print(json.dumps(out))
"""


def write_run(path: str, epochs: int, steps: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "log.csv"), "w") as f:
        f.write("epoch,accuracy,loss,val_accuracy,val_loss\n")
        for e in range(epochs):
            loss = 2.0 / (e + 1) + 0.05 * rng.random()
            acc = 1 - loss / 3
            f.write(f"{e},{acc:.5f},{loss:.5f},{acc - 0.02:.5f},{loss + 0.05:.5f}\n")
    with open(os.path.join(path, "steps.csv"), "w") as f:
        f.write("step,epoch,loss,lr\n")
        for s in range(epochs * steps):
            lr = 0.001 * 0.5 * (1 + np.cos(np.pi * s / (epochs * steps)))
            f.write(
                f"{s + 1},{s // steps},{2.0 / (1 + s / steps) + 0.3 * rng.random():.6g},{lr:.6g}\n"
            )
    with open(os.path.join(path, "timing.csv"), "w") as f:
        f.write("epoch,seconds,samples,samples_per_s,lr\n")
        for e in range(epochs):
            sec = 1.5 + 0.1 * rng.random()
            f.write(f"{e},{sec:.4f},{steps * 64},{steps * 64 / sec:.1f},0.001\n")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"solver": {"epochs": epochs, "optimizer": {"name": "adam", "lr": 0.001}}}, f)
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump({"test_loss": 0.31, "test_accuracy": 0.91}, f)
    target = rng.integers(0, classes, 2000)
    pred = np.where(rng.random(2000) < 0.85, target, rng.integers(0, classes, 2000))
    np.savez_compressed(os.path.join(path, "val_predictions.npz"), target=target, pred=pred)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50, help="steps per epoch")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as d:
        run = os.path.join(d, "run")
        write_run(run, a.epochs, a.steps, a.classes)
        res = []
        for _ in range(a.repeats):
            p = subprocess.run(
                [sys.executable, "-c", CHILD, run],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            res.append(json.loads(p.stdout))
    cold = statistics.median(r["cold"] for r in res)
    warm = statistics.median(r["warm"] for r in res)
    print(
        f"{a.epochs} epochs x {a.steps} steps, {a.classes} classes: CPU cold {cold:.2f} s "
        f"(range {min(r['cold'] for r in res):.2f}-{max(r['cold'] for r in res):.2f}), "
        f"warm {warm:.2f} s (range {min(r['warm'] for r in res):.2f}-"
        f"{max(r['warm'] for r in res):.2f}), page {res[0]['bytes'] / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
