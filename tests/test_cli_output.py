"""What ``ember train`` shows: one plain line per epoch as each epoch ends when stdout is a
pipe, summaries that are not cut at the terminal width, each value printed once; and
``ember info`` without importing the optional packages it lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

pytest.importorskip("yaml")
pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

TINY = """\
model:
  input_shape: [1, 8, 8]
  layers: [Flatten, {Linear: {out_features: 16}}, ReLU, {Linear: {out_features: 10}}]
data: {dataset: Digits, batch_size: 64, val_split: 0.1}
solver: {optimizer: {name: adam, lr: 0.01}, epochs: EPOCHS, seed: 0}
logging: {tensorboard: false, csv: false}
"""
SUMMARY = re.compile(
    r"^Epoch (\d+)/(\d+) - loss: [0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - "
    r"val_accuracy: [0-9.]+$"
)


def _config(tmp_path, epochs):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY.replace("EPOCHS", str(epochs)))
    return str(p)


def test_piped_output_arrives_one_line_per_epoch(tmp_path):
    epochs = 12
    proc = subprocess.Popen(
        [sys.executable, "-m", "ember", "train", _config(tmp_path, epochs)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # blocks until the first epoch ends
        running_after_first = proc.poll() is None
        rest, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert running_after_first, "the first epoch's line came only when the run ended"
    lines = [first.rstrip("\n"), *rest.splitlines()]
    epoch_lines = [ln for ln in lines if ln.startswith("Epoch ")]
    assert [SUMMARY.match(ln).groups() for ln in epoch_lines] == [
        (str(i), str(epochs)) for i in range(1, epochs + 1)
    ]
    assert lines[epochs].startswith("final: ")
    assert "\r" not in first + rest and "\x1b" not in first + rest  # no bar in the pipe
    assert "%|" not in err


def test_quiet_prints_no_epoch_lines(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "ember", "train", _config(tmp_path, 2), "--quiet"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("final: ") and "Epoch" not in r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("stdout_piped", [False, True])
def test_terminal_summary_is_not_cut_at_the_width(tmp_path, stdout_piped):
    """On a 40-column terminal the bar runs on stderr and each epoch's summary is a whole
    line; with stdout piped (``| tee``) the summaries also reach the pipe."""
    import fcntl
    import struct
    import termios

    pytest.importorskip("tqdm")
    columns = 40
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ember", "train", _config(tmp_path, 2)],
        cwd=tmp_path,
        env=dict(ENV, COLUMNS=str(columns)),
        stdout=subprocess.PIPE if stdout_piped else slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not data:
            break
        chunks.append(data)
    piped = ""
    if stdout_piped:
        with proc.stdout:
            piped = proc.stdout.read().decode()
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    text = b"".join(chunks).decode(errors="replace")
    lines = [seg.strip() for seg in re.split(r"[\r\n]+", text)]
    summaries = [ln for ln in lines if SUMMARY.match(ln)]
    assert [SUMMARY.match(ln).group(1) for ln in summaries] == ["1", "2"], text
    assert "step" in text  # the bar was shown on the terminal while epochs ran
    if stdout_piped:
        assert [SUMMARY.match(ln).group(1) for ln in piped.splitlines()[:2]] == ["1", "2"]
        assert "\r" not in piped and "step" not in piped


def test_engine_lines_print_a_duplicated_value_once(capsys):
    """``train_loss`` logged next to the engine's own ``loss`` (same number) shows once; a
    ``train_`` value that differs still shows."""
    import ember
    from ember import nn
    from ember.data import DataLoader, TensorDataset
    from ember.train import Trainer

    class Reg(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def training_step(self, batch, i):
            x, y = batch
            loss = nn.functional.mse_loss(self.lin(x), y)
            self.log("train_loss", loss)
            self.log("train_mae", (self.lin(x) - y).abs().mean())
            return loss

        def configure_optimizers(self):
            return ember.optim.SGD(self.parameters(), lr=0.1)

    ember.manual_seed(0)
    ds = TensorDataset(ember.randn(32, 3), ember.randn(32, 1))
    capsys.readouterr()
    Trainer(max_epochs=2, verbose=2).fit(Reg(), DataLoader(ds, batch_size=8))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Epoch")]
    assert len(lines) == 2
    for ln in lines:
        assert ln.count("loss: ") == 1 and "train_loss" not in ln and "train_mae: " in ln


def test_info_is_fast_and_imports_no_extras():
    code = (
        "import sys, time, ember\n"
        "t = time.perf_counter()\n"
        "from ember.cli.main import main\n"
        "main(['info'])\n"
        "print(time.perf_counter() - t)\n"
        "print(' '.join(m for m in ('torch', 'sklearn', 'numba', 'tensorboard', 'h5py', 'PIL')"
        " if m in sys.modules))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    *info, seconds, imported = r.stdout.splitlines()
    assert float(seconds) < 1.0 and imported == ""
    assert any(ln.startswith("[test] pytest ") for ln in info)
    import torch

    assert f"torch {torch.__version__}" in "\n".join(info)
