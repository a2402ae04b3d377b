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
