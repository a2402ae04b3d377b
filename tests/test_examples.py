"""The Python examples in ``examples/`` run and learn; the YAML configs there validate.

Each example runs as a user would run it (a subprocess, from the repository root) with few
epochs, and must print a test accuracy above a modest threshold. Training the YAML configs
is tested by the command-line tests; here they only need to load and validate.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the examples train on Digits (scikit-learn)")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ACCURACY = re.compile(r"^test accuracy: ([0-9.]+)$", re.MULTILINE)


def _run(script: str, *args: str, timeout: float = 120) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} exited with {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def _accuracy(stdout: str) -> float:
    match = ACCURACY.search(stdout)
    assert match, f"no 'test accuracy: ...' line in the output:\n{stdout}"
    return float(match.group(1))


def test_pytorch_style():
    out = _run("pytorch_style.py", "--epochs", "2")
    acc = _accuracy(out)
    assert acc > 0.8, out
    assert f"reloaded test accuracy: {acc:.4f}" in out, out


def test_keras_style():
    out = _run("keras_style.py", "--epochs", "3")
    assert _accuracy(out) > 0.7, out
    assert "Total params" in out, out
    assert "reloaded model gives the same predictions: True" in out, out
    assert "functional MLP test accuracy" in out, out


def test_trainer_style(tmp_path):
    out = _run("trainer_style.py", "--epochs", "2", "--out", str(tmp_path))
    assert _accuracy(out) > 0.8, out
    assert (tmp_path / "best.ember").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "logs").rglob("*"))


@pytest.mark.parametrize("config", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_yaml_config_validates(config):
    pytest.importorskip("yaml", reason="config files need PyYAML (ember[train])")
    from ember.cli.config import load_config

    cfg = load_config(str(EXAMPLES / config))
    assert {"model", "data", "solver"} <= set(cfg), sorted(cfg)
    # data files are named relative to the config, so they exist wherever ember runs from
    for key, value in cfg["data"]["args"].items():
        if key in ("path", "root"):
            assert os.path.isabs(value) and os.path.exists(value), (key, value)


def _train_example(config: str, tmp_path: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ember",
            "train",
            str(EXAMPLES / config),
            "--set",
            "solver.epochs=1",
        ],
        cwd=tmp_path,  # not the repository: paths in the config must not depend on it
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Epoch 1/1 - loss: "), proc.stdout
    final = dict(kv.split("=") for kv in proc.stdout.splitlines()[1][len("final: ") :].split())
    assert (tmp_path / "runs" / Path(config).stem / "model.ember").is_file()
    return final


def test_readme_main_job_trains_from_anywhere(tmp_path):
    """``ember train examples/digits_cnn.yaml`` (one epoch here) learns."""
    final = _train_example("digits_cnn.yaml", tmp_path)
    assert float(final["test_accuracy"]) > 0.8, final


@pytest.mark.slow
def test_yaml_examples_train_from_anywhere(tmp_path):
    import math

    final = _train_example("digits_mlp.yaml", tmp_path)
    assert float(final["test_accuracy"]) > 0.5, final
    final = _train_example("char_lstm.yaml", tmp_path)
    vocab = len(set((EXAMPLES / "data" / "tiny_corpus.txt").read_text()))
    assert float(final["val_loss"]) < math.log(vocab), final  # better than uniform guessing
