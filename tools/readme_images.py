"""Regenerate README's pictures: ``docs/img/report.png`` (``ember report`` of two runs, as
headless Chromium shows it) and ``docs/img/plot_model.png`` (``plot_model`` of a functional
Keras model).

Run: python tools/readme_images.py [--out docs/img] [--epochs 12]

Trains ``examples/digits_mlp.yaml`` twice (learning rates 0.01 and 0.002) into a temporary
folder, writes their report and screenshots the whole page (needs matplotlib, Chromium,
pydot and Graphviz's ``dot``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def report_png(out: str, epochs: int) -> None:
    from ember.cli.main import main as ember_main
    from ember.report import load_run, write_report
    from ember.report.chromium import Browser

    config = (ROOT / "examples" / "digits_mlp.yaml").read_text()
    with tempfile.TemporaryDirectory() as d:
        here = os.getcwd()
        os.chdir(d)  # the page names the runs as runs/NAME
        runs = []
        for lr in ("0.01", "0.002"):
            run = os.path.join(d, "runs", f"adam_lr{lr}")
            cfg = os.path.join(d, f"adam_lr{lr}.yaml")
            text = config.replace("lr: 0.001}", f"lr: {lr}}}\n  schedule: {{name: cosine}}")
            text = text.replace("epochs: 20", f"epochs: {epochs}")
            text = text.replace("snapshot:\n", f"snapshot:\n  dir: {run}\n")
            with open(cfg, "w") as f:
                f.write(text)
            if ember_main(["train", cfg, "--quiet"]):
                raise SystemExit(f"training with lr {lr} failed")
            runs.append(load_run(os.path.relpath(run)))
        os.chdir(here)
        page = write_report(runs, os.path.join(d, "report.html"))
        with Browser(width=1150, height=900) as b:
            b.open("file://" + page)
            if b.errors:
                raise SystemExit(f"the report has console errors: {b.errors}")
            b.screenshot(os.path.join(out, "report.png"))


def plot_model_png(out: str) -> None:
    from ember import keras
    from ember.utils import plot_model

    inp = keras.Input((64,), name="pixels")
    h = keras.layers.Dense(64, activation="relu", name="hidden")(inp)
    h = keras.layers.Dropout(0.1, name="dropout")(h)
    shortcut = keras.layers.Dense(64, name="shortcut")(inp)
    h = keras.layers.Add(name="add")([h, shortcut])
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="classes")(h))
    plot_model(
        model,
        os.path.join(out, "plot_model.png"),
        show_shapes=True,
        show_layer_activations=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--epochs", type=int, default=12)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    report_png(a.out, a.epochs)
    plot_model_png(a.out)
    print(f"wrote {a.out}/report.png and {a.out}/plot_model.png")


if __name__ == "__main__":
    main()
