"""Run reports: reading run folders (damaged ones included), the HTML page and PNG files,
``ember report`` on the command line, ``PlotCallback`` in Keras and engine fits, and the
cost of a 100-epoch report. The page as a browser shows it: ``test_report_browser.py``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import ember
from ember.cli.main import main as ember_main
from ember.report import PlotCallback, Run, RunError, load_run, render_html, write_report
from ember.report.html import class_report, config_rows, report_figures
from ember.report.plots import confusion_matrix


def _run_dir(path, epochs=5, steps_per_epoch=4, metrics=("loss", "accuracy"), classes=3, seed=0):
    """A run folder as ``ember train`` writes it, with made-up but consistent values."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    cols = [*metrics, *(f"val_{m}" for m in metrics)]
    with open(os.path.join(path, "log.csv"), "w") as f:
        f.write(",".join(["epoch", *sorted(cols)]) + "\n")
        for e in range(epochs):
            f.write(",".join([str(e), *(f"{rng.random():.4f}" for _ in cols)]) + "\n")
    with open(os.path.join(path, "steps.csv"), "w") as f:
        f.write("step,epoch,loss,lr\n")
        for s in range(epochs * steps_per_epoch):
            f.write(f"{s + 1},{s // steps_per_epoch},{2.0 / (s + 1):.5g},{0.01 * 0.99**s:.5g}\n")
    with open(os.path.join(path, "timing.csv"), "w") as f:
        f.write("epoch,seconds,samples,samples_per_s,lr\n")
        for e in range(epochs):
            f.write(f"{e},0.5,1000,2000,0.01\n")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"name": os.path.basename(path), "solver": {"lr": 0.01 * (seed + 1)}}, f)
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump({"test_loss": 0.3, "test_accuracy": 0.9}, f)
    target = rng.integers(0, classes, 200)
    pred = np.where(rng.random(200) < 0.8, target, rng.integers(0, classes, 200))
    np.savez(os.path.join(path, "val_predictions.npz"), target=target, pred=pred)
    return str(path)


# -- reading run folders ---------------------------------------------------------------------
def test_load_run_reads_every_file(tmp_path):
    run = load_run(_run_dir(tmp_path / "a", epochs=4, steps_per_epoch=3))
    assert run.epoch == [0, 1, 2, 3] and set(run.epochs) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
    }
    assert run.step == list(range(1, 13)) and len(run.steps["lr"]) == 12
    assert run.timing["samples_per_s"] == [2000.0] * 4
    assert run.results == {"test_loss": 0.3, "test_accuracy": 0.9}
    assert run.target.shape == run.pred.shape == (200,) and not run.problems


def test_resumed_log_keeps_the_last_row_of_each_epoch(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss\n0,3\n1,2\n1,1.5\n2,1\n")
    run = load_run(str(tmp_path))
    assert run.epoch == [0, 1, 2] and run.epochs["loss"] == [3.0, 1.5, 1.0]


def test_not_a_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RunError, match="no such run folder"):
        load_run(str(tmp_path / "missing"))
    (tmp_path / "f.csv").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        load_run(str(tmp_path / "f.csv"))


def test_folder_without_logs_says_what_is_missing(tmp_path):
    run = load_run(str(tmp_path))
    assert run.empty and "no training logs" in run.problems[0] and "log.csv" in run.problems[0]
    page = render_html([run])
    assert "no training logs" in page and "no curves" in page


def test_corrupted_csv_keeps_the_good_rows_and_names_the_bad(tmp_path):
    (tmp_path / "log.csv").write_text(
        "epoch,loss,val_loss\n0,1.0,1.1\n1,0.8\n\x00garbage,,\n2,0.5,0.6\n"
    )
    (tmp_path / "steps.csv").write_bytes(b"\xff\xfe\x00\x01 not a csv at all")
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "val_predictions.npz").write_bytes(b"PK broken")
    run = load_run(str(tmp_path))
    assert run.epoch == [0, 2] and run.epochs["loss"] == [1.0, 0.5]
    text = " | ".join(run.problems)
    assert "log.csv: skipped 2 unreadable rows" in text
    assert "steps.csv" in text and "config.json: not readable JSON" in text
    assert "val_predictions.npz: not readable" in text
    page = render_html([run])
    assert "skipped 2 unreadable rows" in page and "loss per epoch" in page


def test_unnumbered_rows_and_non_finite_values(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss\n,1\n0,nan\n1,inf\n2,0.5\n")
    (tmp_path / "steps.csv").write_text("step,epoch,loss,lr\n1,0,0.5,0.1\n,0,0.4,0.1\n3,0,inf,0\n")
    run = load_run(str(tmp_path))
    assert run.epoch == [0, 1, 2] and run.step == [1, 3] and run.steps["lr"] == [0.1, 0.0]
    assert "log.csv: skipped 1 row without an epoch number" in run.problems
    assert "steps.csv: skipped 1 row without a step number" in run.problems
    page = render_html([run])  # NaN and infinite values are drawn around, not fatal
    assert "fig-epoch-loss" in page and "fig-step-loss" in page and "without a step" in page


def test_bad_predictions_file_is_named(tmp_path):
    _run_dir(tmp_path)
    np.savez(tmp_path / "val_predictions.npz", target=np.zeros(3, np.int64), pred=np.zeros(4))
    run = load_run(str(tmp_path))
    assert run.target is None and any("integer arrays of one shape" in p for p in run.problems)


def test_runs_with_different_metrics_say_which_is_missing(tmp_path):
    a = load_run(_run_dir(tmp_path / "a", metrics=("loss", "accuracy")))
    b = load_run(_run_dir(tmp_path / "b", metrics=("loss", "f1")))
    page = render_html([a, b])
    assert "a: has no f1 (other runs do)" in page and "b: has no accuracy (other runs do)" in page
    for fig in ("fig-epoch-loss", "fig-epoch-accuracy", "fig-epoch-f1"):
        assert fig in page


# -- the page ------------------------------------------------------------------------------------
def test_report_is_one_offline_file_with_every_section(tmp_path):
    runs = [load_run(_run_dir(tmp_path / n, seed=i)) for i, n in enumerate("ab")]
    page = render_html(runs)
    for fid in ("epoch-loss", "epoch-accuracy", "step-loss", "lr", "timing", "confusion-0"):
        assert f"id='fig-{fid}'" in page
    assert page.count("<svg") == 7
    # self-contained: no script, no stylesheet or image fetched from anywhere
    assert "<script" not in page and not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert "test_accuracy" in page and "per-class" in page
    # the config diff: solver.lr differs and is highlighted, name differs too
    rows = {k: (vals, diff) for k, vals, diff in config_rows(runs)}
    assert rows["solver.lr"] == (["0.01", "0.02"], True)
    assert "2 settings differ" in page


def test_per_class_precision_recall_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    rep = class_report(t, p)
    prec, rec, _, sup = metrics.precision_recall_fscore_support(t, p, zero_division=0)
    np.testing.assert_allclose([r[1] for r in rep], prec)
    np.testing.assert_allclose([r[2] for r in rep], rec)
    assert [r[3] for r in rep] == sup.tolist()
    np.testing.assert_array_equal(confusion_matrix(t, p), metrics.confusion_matrix(t, p))


def test_hundred_epoch_report_stays_small(tmp_path):
    # its CPU time is measured by bench/bench_report.py (README), never asserted in a test
    run = load_run(_run_dir(tmp_path / "long", epochs=100, steps_per_epoch=200, classes=10))
    page = render_html([run])
    assert len(page.encode()) < 1_000_000, f"{len(page.encode()) / 1e6:.1f} MB"
    # every step is drawn up to MAX_POINTS per curve, so 20,000 steps cost what 1,500 do
    assert page.count("id='fig-") == 6 and "fig-confusion-0" in page


def test_write_report_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "r.html"
    out.write_text("old")
    import ember.report.html as H

    monkeypatch.setattr(H, "render_html", lambda runs, title=None: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report([Run("x")], str(out))
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["r.html"]


# -- command line ---------------------------------------------------------------------------------
def test_cli_report_html_and_pngs(tmp_path, capsys):
    a, b = _run_dir(tmp_path / "a"), _run_dir(tmp_path / "b", seed=1)
    out, png = tmp_path / "rep.html", tmp_path / "png"
    assert ember_main(["report", a, b, "-o", str(out), "--png", str(png)]) == 0
    assert "<svg" in out.read_text()
    files = sorted(os.listdir(png))
    assert "epoch-loss.png" in files and "confusion-1.png" in files
    assert all((png / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)


def test_cli_report_bad_inputs_are_one_line(tmp_path, capsys):
    assert ember_main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such run folder" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert ember_main(["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "no training logs" in err and not (tmp_path / "r.html").exists()
    # one good run and one empty: a report, with a warning naming the empty one
    good = _run_dir(tmp_path / "good")
    out = tmp_path / "r.html"
    assert ember_main(["report", good, str(tmp_path / "empty"), "-o", str(out)]) == 0
    assert "empty: no training logs" in capsys.readouterr().err
    assert "empty: no training logs" in out.read_text()


TINY = """\
model:
  input_shape: [1, 8, 8]
  layers: [Flatten, {Linear: {out_features: 16}}, ReLU, {Linear: {out_features: 10}}]
data: {dataset: Digits, batch_size: 128, val_split: 0.2, test: true}
solver: {optimizer: {name: adam, lr: 0.01}, schedule: {name: cosine}, epochs: 2, seed: 1}
snapshot: {dir: RUN, every: 1, keep_last: 1}
logging: {tensorboard: false, csv: true}
"""


def test_ember_train_plot_writes_a_report_each_epoch(tmp_path, monkeypatch, capsys):
    pytest.importorskip("yaml")
    pytest.importorskip("sklearn")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("RUN", str(tmp_path / "run")))
    import ember.report.callback as C

    writes = []
    real = C.PlotCallback.on_epoch_end
    monkeypatch.setattr(
        C.PlotCallback, "on_epoch_end", lambda s, e, logs=None: (real(s, e, logs), writes.append(e))
    )
    assert ember_main(["train", str(cfg), "--quiet", "--plot"]) == 0
    assert writes == [0, 1]
    run_dir = tmp_path / "run"
    run = load_run(str(run_dir))
    assert run.epoch == [0, 1] and not run.problems
    assert len(run.step) == len(run.steps["loss"]) > 2 and run.steps["lr"][0] == 0.01
    assert "test_accuracy" in run.results and run.timing["samples"][0] > 0
    # the validation predictions are those of the last epoch: their accuracy is val_accuracy
    acc = float(np.mean(run.target == run.pred))
    assert abs(acc - run.epochs["val_accuracy"][-1]) < 1e-6
    page = (run_dir / "report.html").read_text()
    assert "fig-confusion-0" in page and "test_accuracy" in page
    # ember summary reads the trained model file as well as the config
    capsys.readouterr()
    assert ember_main(["summary", str(run_dir / "model.ember")]) == 0
    assert "Total params: 1,210" in capsys.readouterr().out


def test_ember_summary_prints_the_table_and_plots(tmp_path, capsys):
    pytest.importorskip("yaml")
    pytest.importorskip("sklearn")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("RUN", str(tmp_path / "run")))
    dot = tmp_path / "m.dot"
    assert ember_main(["summary", str(cfg), "--plot", str(dot)]) == 0
    out = capsys.readouterr().out
    assert "(Linear)" in out and "(1, 16)" in out and "Total params: 1,210" in out
    assert "Linear" in dot.read_text()


# -- PlotCallback in fits ----------------------------------------------------------------------
def test_keras_fit_with_plot_callback(tmp_path):
    from ember import keras
    from ember.keras.callbacks import PlotCallback as KerasPlot

    assert KerasPlot is PlotCallback
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(3)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    path = tmp_path / "fit.html"
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(os.path.getmtime(path))

    cb = PlotCallback(str(path), validation_data=(x[:32], y[:32]), class_names=["a", "b", "c"])
    hist = model.fit(
        x, y, epochs=3, batch_size=32, validation_split=0.25, callbacks=[cb, Spy()], verbose=0
    )
    assert len(seen) == 3  # rewritten at every epoch end
    assert cb.run.epochs["loss"] == pytest.approx(hist.history["loss"])
    assert len(cb.run.step) == 3 * 3 and all(v > 0 for v in cb.run.steps["lr"])
    page = path.read_text()
    assert "fig-confusion-0" in page and "fig-epoch-accuracy" in page and ">c<" in page


def test_engine_fit_plot_callback_and_recorder_files(tmp_path):
    from ember.train import Engine, Task
    from ember.train.callbacks import PlotCallback as TrainPlot
    from ember.train.callbacks import RunRecorder

    assert TrainPlot is PlotCallback
    lin = ember.nn.Linear(3, 1)

    class Reg(Task):
        def train_step(self, batch, i):
            x, y = batch
            loss = ember.nn.functional.mse_loss(lin(x), y)
            self.log("loss", loss, x.shape[0])
            return loss

    x = ember.randn(40, 3)
    y = x.sum(1, keepdim=True)
    opt = ember.optim.SGD(lin.parameters(), lr=0.1)
    rec = RunRecorder(str(tmp_path))
    plot = PlotCallback(str(tmp_path / "r.html"))
    Engine(lin, Reg(), optimizers=[opt], callbacks=[rec, plot], verbose=0).fit(
        ember.train.ArrayLoader((x, y), batch_size=10), epochs=2
    )
    steps = load_run(str(tmp_path))
    assert steps.step == list(range(1, 9)) and steps.timing["samples"] == [40.0, 40.0]
    # the per-step losses average (weighted by batch size) to the epoch's logged loss
    assert np.mean(steps.steps["loss"][:4]) == pytest.approx(plot.run.epochs["loss"][0], rel=1e-4)
    assert "fig-step-loss" in (tmp_path / "r.html").read_text()


def test_report_command_in_a_subprocess(tmp_path):
    a = _run_dir(tmp_path / "a")
    r = subprocess.run(
        [sys.executable, "-m", "ember", "report", a, "-o", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and (tmp_path / "x.html").stat().st_size > 10_000


def test_header_only_log_and_ignored_targets(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,loss\n")  # a run still in its first epoch
    run = load_run(str(tmp_path))
    assert "log.csv: no rows yet" in run.problems
    # sequence models mark padding with -100: not a class, left out of the matrix
    t, p = np.array([0, 1, -100, 1]), np.array([0, 1, 0, 0])
    np.testing.assert_array_equal(confusion_matrix(t, p), [[1, 0], [1, 1]])


def test_bench_report_writes_a_clean_run_folder(tmp_path):
    # bench/bench_report.py times a report of the folder it writes: it must read cleanly
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "bench", "bench_report.py")
    spec = importlib.util.spec_from_file_location("bench_report", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_run(str(tmp_path / "run"), epochs=4, steps=3, classes=5)
    run = load_run(str(tmp_path / "run"))
    assert not run.problems and run.epoch == [0, 1, 2, 3] and len(run.step) == 12
    assert run.target is not None and run.results and run.config
    assert len(report_figures([run])) == 6
