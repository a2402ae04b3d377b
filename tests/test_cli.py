"""The ``ember`` command and configuration files: validation errors, end-to-end runs in a
subprocess, ``--set`` overrides, snapshot rotation, resume, and SIGKILL safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from ember.cli import config as C

pytest.importorskip("yaml")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = """\
model:
  input_shape: [1, 8, 8]
  layers:
    - Flatten
    - Linear: {out_features: 32}
    - ReLU
    - Linear: {out_features: 10}
data: {dataset: Digits, batch_size: 64, val_split: 0.1}
solver: {optimizer: {name: adam, lr: 0.01}, epochs: 3, seed: 1}
snapshot: {dir: RUN, every: 1, keep_last: 2, keep_best: {metric: val_accuracy}}
logging: {tensorboard: true, csv: true}
"""


def _write(tmp_path, text, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(text.replace("RUN", str(tmp_path / "run")))
    return str(p)


def _ember(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, key, words",
    [
        ("model: {layers: [ReLU]}\nbogus: 1\n", "bogus", "unknown section"),
        (
            "model: {layers: [ReLU]}\nsolver: {epochs: zero}\n",
            "solver.epochs",
            "expected an integer",
        ),
        ("model: {layers: [ReLU]}\nsolver: {epochs: 0}\n", "solver.epochs", ">= 1"),
        (
            "model: {layers: [ReLU]}\nsolver: {optimizer: {lr: 0.1}}\n",
            "solver.optimizer",
            "missing 'name'",
        ),
        (
            "model: {layers: [ReLU]}\nsolver: {optimizer: {name: adam, lr: -1}}\n",
            "solver.optimizer.lr",
            "> 0",
        ),
        ("model: {layers: [ReLU]}\ndata: {batch_size: 0}\n", "data.batch_size", ">= 1"),
        ("model: {layers: [ReLU]}\ndata: {val_split: 1.5}\n", "data.val_split", "[0, 1)"),
        ("model: {layers: [ReLU]}\ndata: {colour: red}\n", "data.colour", "unknown key"),
        ("model: {}\n", "model", "exactly one of"),
        (
            "model: {layers: [ReLU]}\nsnapshot: {keep_best: {mode: max}}\n",
            "snapshot.keep_best",
            "metric",
        ),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, key, words):
    p = _write(tmp_path, text)
    with pytest.raises(C.ConfigError) as e:
        C.load_config(p)
    msg = str(e.value)
    assert p in msg and f"'{key}'" in msg and words in msg


def test_config_bad_yaml_and_missing_file(tmp_path):
    p = _write(tmp_path, "model: {layers: [ReLU\n")
    with pytest.raises(C.ConfigError, match="invalid YAML.*line"):
        C.load_config(p)
    with pytest.raises(C.ConfigError, match="file not found"):
        C.load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(C.ConfigError, match="empty"):
        C.load_config(_write(tmp_path, ""))


def test_set_overrides_parse_yaml_values(tmp_path):
    p = _write(tmp_path, TINY)
    cfg = C.load_config(
        p, ["solver.epochs=7", "solver.optimizer.lr=0.5", "data.shuffle=false", "name=abc"]
    )
    assert cfg["solver"]["epochs"] == 7 and cfg["solver"]["optimizer"]["lr"] == 0.5
    assert cfg["data"]["shuffle"] is False and cfg["name"] == "abc"
    with pytest.raises(C.ConfigError, match="key=value"):
        C.load_config(p, ["solver.epochs"])
    with pytest.raises(C.ConfigError, match="solver.epochs"):
        C.load_config(p, ["solver.epochs=-2"])


def test_unknown_layer_and_shape_mismatch(tmp_path):
    from ember.cli import build

    with pytest.raises(
        C.ConfigError, match=r"unknown layer .Conv9d. \(did you mean Conv[123]d\?\); available: "
    ):
        build.build_layers([{"Conv9d": {}}], (1, 8, 8), "x.yaml")
    with pytest.raises(C.ConfigError, match=r"layers\[1\].*Linear cannot take input of shape"):
        build.build_layers(
            [
                {"Linear": {"in_features": 5, "out_features": 3}},
                {"Linear": {"in_features": 7, "out_features": 2}},
            ],
            (5,),
            "x.yaml",
        )


# -- end to end ---------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path):
    r = _ember("train", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2
    assert "error:" in r.stderr and "file not found" in r.stderr
    assert "Traceback" not in r.stderr
    bad = _write(tmp_path, "model:\n  layers: [{Nope: {}}]\n")
    r = _ember("train", bad)
    assert r.returncode == 2 and "unknown layer 'Nope'" in r.stderr
    assert "Traceback" not in r.stderr
    r = _ember("--debug", "train", bad)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_info_and_init(tmp_path):
    r = _ember("info")
    assert r.returncode == 0 and "ember" in r.stdout and "backends: cpu" in r.stdout
    r = _ember("init", "starter", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "starter.yaml").exists()
    cfg = C.load_config(str(tmp_path / "starter.yaml"))
    assert cfg["model"]["layers"][0] == {
        "Conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}
    }
    assert _ember("init", "starter", cwd=tmp_path).returncode == 2  # refuses to overwrite


def test_train_eval_predict_rotation_and_resume(tmp_path):
    p = _write(tmp_path, TINY)
    r = _ember("train", p, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    snaps = sorted(os.listdir(run / "snapshots"))
    # keep_last=2 of 3 epochs, plus the best snapshot
    assert snaps == ["best.ckpt", "epoch-0002.ckpt", "epoch-0003.ckpt"]
    assert (run / "model.ember").exists() and (run / "log.csv").exists()
    assert any(
        f.startswith("events.out.tfevents") for _, _, fs in os.walk(run / "tensorboard") for f in fs
    )
    final = dict(kv.split("=") for kv in r.stdout.splitlines()[0][len("final: ") :].split())
    # evaluate the saved model: same test accuracy as reported at the end of training
    r2 = _ember("eval", str(run / "model.ember"), cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    ev = dict(kv.split("=") for kv in r2.stdout.split())
    assert abs(float(ev["accuracy"]) - float(final["test_accuracy"])) < 1e-6
    # predict on a .npy of raw inputs (Digits pixels 0-16, as scikit-learn stores them)
    from sklearn.datasets import load_digits

    np.save(tmp_path / "x.npy", load_digits().data[:5])
    r3 = _ember("predict", str(run / "model.ember"), str(tmp_path / "x.npy"), cwd=tmp_path)
    assert r3.returncode == 0 and len(r3.stdout.splitlines()) == 5
    # resume from the epoch-2 snapshot reproduces the uninterrupted final metrics
    r4 = _ember(
        "train", p, "--quiet", "--resume", str(run / "snapshots" / "epoch-0002.ckpt"), cwd=tmp_path
    )
    assert r4.returncode == 0, r4.stderr
    resumed = dict(kv.split("=") for kv in r4.stdout.splitlines()[1][len("final: ") :].split())
    assert resumed["test_accuracy"] == final["test_accuracy"]
    assert resumed["val_loss"] == final["val_loss"]


def test_sigkill_leaves_loadable_snapshots_and_resume_continues(tmp_path):
    text = TINY.replace("epochs: 3", "epochs: 40").replace("keep_last: 2", "keep_last: 3")
    p = _write(tmp_path, text)
    snap_dir = tmp_path / "run" / "snapshots"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ember", "train", p, "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if (
            snap_dir.exists()
            and len([f for f in os.listdir(snap_dir) if f.startswith("epoch-")]) >= 2
        ):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    import ember
    from ember.train import load_checkpoint

    snaps = [f for f in os.listdir(snap_dir) if f.endswith(".ckpt")]
    assert snaps
    for f in snaps:  # every snapshot on disk is complete (a kill mid-write leaves only a temp)
        state = load_checkpoint(str(snap_dir / f))
        assert "model" in state
    r = _ember("train", p, "--quiet", "--resume", "--set", "solver.epochs=12", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout
    _ = ember
