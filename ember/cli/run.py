"""``ember train`` / ``ember eval`` / ``ember predict``: a config-defined run on the one
training engine (``ember.train.Engine``)."""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np

import ember
from ember.train import (
    Callback,
    CSVLogger,
    Engine,
    Task,
    TensorBoard,
    load_checkpoint,
    save_checkpoint,
)

from . import build, datasets, solver
from .config import ConfigError, load_config, revalidate
from .inputs import input_spec, prepare_inputs, read_inputs
from .names import unknown_name

__all__ = [
    "MODEL_FORMAT",
    "Snapshots",
    "SupervisedTask",
    "evaluate",
    "latest_snapshot",
    "list_snapshots",
    "load_model",
    "predict",
    "read_inputs",
    "run_dir",
    "save_model",
    "train",
]

MODEL_FORMAT = "ember.cli-model/1"


class SupervisedTask(Task):
    """``loss_fn(model(x), y)`` with accuracy for classification outputs."""

    def __init__(self, model, loss_fn, metrics=()):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn
        self.metrics = list(metrics)  # streaming ember.metrics objects (solver.metrics)

    def _forward(self, batch):
        x, y = batch
        out = self.model(x)
        loss = self.loss_fn(out, y)
        n = int(y.shape[0])
        self.log("loss", loss, n)
        classes = out.ndim == y.ndim + 1 and out.shape[-1] > 1 and y.dtype == ember.int64
        self.last_outputs = None  # (predicted, true) classes, kept for the run report
        if classes:
            pred = out.argmax(-1)
            self.log("accuracy", float((pred == y).float().mean().item()), n)
            self.last_outputs = (pred.numpy(), y.numpy())
        elif y.dtype == ember.int64 and out.numel() == y.numel():  # one logit per target
            pred = (out.reshape(tuple(y.shape)) > 0).long()
            self.log("accuracy", float((pred == y).float().mean().item()), n)
            self.last_outputs = (pred.numpy(), y.numpy())
        if self.metrics:
            o, t = out.detach(), y
            if classes and out.ndim == 3:  # sequence models: one prediction per position
                o, t = o.reshape(-1, o.shape[-1]), t.reshape(-1)
            for m in self.metrics:
                m.update(o, t)
        return loss

    def reset_metrics(self):
        super().reset_metrics()
        for m in getattr(self, "metrics", ()):
            m.reset()

    def logs(self):
        out = super().logs()
        if out:  # NOTE: metrics have values only once a batch went through
            for m in self.metrics:
                v = m.compute()
                out[m.name] = float(v.item() if isinstance(v, ember.Tensor) else v)
        return out

    def train_step(self, batch, batch_idx):
        return self._forward(batch)

    def test_step(self, batch, batch_idx):
        with ember.no_grad():
            self._forward(batch)

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with ember.no_grad():
            return self.model(x)


class Snapshots(Callback):
    """Full checkpoints every ``every`` epochs, keeping the last ``keep_last`` and the best
    by a metric. Each file is written atomically, so a killed run leaves only complete
    snapshots."""

    rank_zero_only = True

    def __init__(self, directory, every=1, keep_last=3, keep_best=None, config_path=None):
        super().__init__()
        self.config_path = config_path
        self.dir, self.every, self.keep_last = directory, every, keep_last
        self.best_cfg = keep_best
        self.best = None

    def on_epoch_end(self, epoch, logs=None):

        logs = logs or {}
        done = epoch + 1
        os.makedirs(self.dir, exist_ok=True)
        if done % self.every == 0:
            save_checkpoint(
                os.path.join(self.dir, f"epoch-{done:04d}.ckpt"), self.engine, epoch=done
            )
            for old in list_snapshots(self.dir)[: -self.keep_last]:
                os.remove(old)
        if self.best_cfg:
            metric = self.best_cfg["metric"]
            mode = self.best_cfg.get("mode", "min" if "loss" in metric else "max")
            if metric not in logs:  # a misspelled metric would never keep a best snapshot
                raise unknown_name(
                    "metric", metric, logs, self.config_path, "snapshot.keep_best.metric"
                )
            v = logs.get(metric)
            if v is not None and (
                self.best is None or (v < self.best if mode == "min" else v > self.best)
            ):
                self.best = v
                save_checkpoint(os.path.join(self.dir, "best.ckpt"), self.engine, epoch=done)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = state.get("best")


def list_snapshots(directory):
    """Complete epoch snapshots in ``directory``, oldest first."""
    files = glob.glob(os.path.join(directory, "epoch-*.ckpt"))
    return sorted(files, key=lambda f: int(re.findall(r"epoch-(\d+)", f)[-1]))


def _loader(ds, cfg, shuffle):
    from ember.data import DataLoader

    d = cfg["data"]
    return DataLoader(
        ds,
        batch_size=d["batch_size"],
        shuffle=shuffle and d["shuffle"],
        num_workers=d["num_workers"],
    )


def _setup(cfg, path):
    """Seed, data and model of a run; returns ``(model, (train, val, test), input spec)``."""
    ember.manual_seed(cfg["solver"]["seed"])
    train, val, test, full = datasets.build_datasets(cfg, path)
    spec = input_spec(cfg, full)
    given = cfg["model"]["input_shape"]
    if given is not None and tuple(given) != tuple(spec["shape"]):
        raise ConfigError(
            f"{list(given)} does not match the samples of {cfg['data']['dataset']}, which "
            f"have shape {list(spec['shape'])} (after data.transforms); drop input_shape to "
            "use the data's",
            path,
            "model.input_shape",
        )
    model = _model_for(cfg, spec, path)
    return model, (train, val, test), spec


def _model_for(cfg, spec, path):
    dtype = getattr(ember, spec["dtype"], None) if spec["dtype"] != "float32" else None
    return build.build_model(cfg, tuple(spec["shape"]), spec["num_classes"], path, dtype)


def run_dir(cfg):
    """The run's folder: ``snapshot.dir``, else ``runs/NAME`` under the working directory."""
    return os.path.abspath(cfg["snapshot"]["dir"] or os.path.join("runs", cfg["name"]))


def train(config_path, overrides=(), resume=None, verbose=1, plot=False):
    """Train from a config file; returns a dict of final metrics and output paths."""
    cfg = load_config(config_path, overrides)
    model, (train_ds, val_ds, test_ds), spec = _setup(cfg, config_path)
    out_dir = run_dir(cfg)
    cfg["snapshot"]["dir"] = out_dir  # saved absolute, as every other path
    snap_dir = os.path.join(out_dir, "snapshots")
    # under ``--nproc`` every rank trains; rank 0 alone writes files and prints
    is_main = not ember.distributed.is_initialized() or ember.distributed.get_rank() == 0
    if is_main:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
    train_loader = _loader(train_ds, cfg, shuffle=True)
    val_loader = _loader(val_ds, cfg, shuffle=False) if val_ds is not None else None
    opt = solver.build_optimizer(cfg, model.parameters(), config_path)
    sched = solver.build_schedule(cfg, opt, len(train_loader), config_path)
    snap = cfg["snapshot"]
    callbacks = [
        Snapshots(snap_dir, snap["every"], snap["keep_last"], snap["keep_best"], config_path)
    ]
    logs = cfg["logging"]
    if logs["tensorboard"]:
        tb = (
            logs["tensorboard"]
            if isinstance(logs["tensorboard"], str)
            else os.path.join(out_dir, "tensorboard")
        )
        callbacks.append(TensorBoard(tb))
    if logs["csv"]:
        csv = logs["csv"] if isinstance(logs["csv"], str) else os.path.join(out_dir, "log.csv")
        callbacks.append(CSVLogger(csv, append=resume is not None))
    from ember.report import PlotCallback, RunRecorder

    callbacks.append(RunRecorder(out_dir, append=resume is not None))  # after CSVLogger
    if plot:  # the report is rewritten each epoch: keep it open in a browser
        callbacks.append(PlotCallback(os.path.join(out_dir, "report.html"), run_dir=out_dir))
    schedulers = []
    if sched is not None:
        interval = "step" if type(sched).__name__ == "OneCycleLR" else "epoch"
        entry = {"scheduler": sched, "interval": interval}
        if type(sched).__name__ == "ReduceLROnPlateau":
            entry["monitor"] = "val_loss" if val_loader is not None else "loss"
        schedulers.append(entry)
    engine = Engine(
        model,
        SupervisedTask(
            model, solver.build_loss(cfg, config_path), solver.build_metrics(cfg, config_path)
        ),
        optimizers=[opt],
        schedulers=schedulers,
        callbacks=callbacks,
        gradient_clip_val=cfg["solver"]["grad_clip"],
        verbose=verbose,
        compile=cfg["solver"]["compile"],  # the model's forward through ember.compile
    )
    if resume is not None:
        snap = resume if isinstance(resume, str) and resume else latest_snapshot(snap_dir)
        engine.restore(load_checkpoint(snap))
        if is_main:
            print(f"resuming from {snap} (epoch {engine.epoch})")
    history = engine.fit(train_loader, epochs=cfg["solver"]["epochs"], val_data=val_loader)
    result = {k: v[-1] for k, v in history.history.items() if v}
    if test_ds is not None:
        test = engine.evaluate(_loader(test_ds, cfg, shuffle=False))
        result.update({f"test_{k}": v for k, v in test.items()})
    final = os.path.join(out_dir, "model.ember")
    if is_main:
        save_model(final, model, cfg, spec)
        _write_results(out_dir, result, plot)
    result.update(run_dir=out_dir, model=final, snapshots=snap_dir)
    if not is_main:
        result["is_main"] = False
    return result


def _write_results(out_dir, result, plot):
    from ember.report import load_run, write_report
    from ember.report.recorder import atomic_write

    vals = {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
    atomic_write(os.path.join(out_dir, "results.json"), json.dumps(vals, indent=2))
    if plot:
        write_report([load_run(out_dir)], os.path.join(out_dir, "report.html"))


def latest_snapshot(snap_dir):
    snaps = list_snapshots(snap_dir)
    if not snaps:
        raise ConfigError(f"no snapshot to resume from in {snap_dir}")
    return snaps[-1]


def save_model(path, model, cfg, spec):
    """One file: the resolved config (architecture, data), the input spec and the weights."""
    ember.save(
        {
            "format": MODEL_FORMAT,
            "config": json.dumps(cfg),
            "input": json.dumps(spec),
            "state_dict": model.state_dict(),
        },
        path,
    )


def load_model(path):
    """``(model, cfg, spec)`` from a file written by :func:`save_model`; the model is built
    from the saved input spec, without reading the training data."""
    if not os.path.exists(path):
        raise ConfigError("file not found", path)
    if os.path.isdir(path):
        raise ConfigError("is a folder, not a model file", path)
    try:
        obj = ember.load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear error
        raise ConfigError(f"not an ember model file ({e})", path) from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ConfigError(f"not an ember model file (expected format {MODEL_FORMAT})", path)
    cfg = json.loads(obj["config"])
    if "input" in obj:
        spec = json.loads(obj["input"])
        model = _model_for(cfg, spec, path)
    else:  # NOTE: files written before the spec was saved: rebuild it from the data
        model, _, spec = _setup(cfg, path)
    model.load_state_dict(obj["state_dict"])
    model.eval()
    return model, cfg, spec


def final_model(config_path, overrides=()) -> str:
    """The final model file of the run a config describes."""
    cfg = load_config(config_path, overrides)
    final = os.path.join(run_dir(cfg), "model.ember")
    if not os.path.exists(final):
        raise ConfigError(
            f"no trained model at {final} (train it first; the default run folder "
            "runs/NAME is under the working directory, snapshot.dir sets another)",
            config_path,
        )
    return final


def evaluate(target, split="test", overrides=(), data_args=None):
    """Metrics of a model file (or a config's final model) on a data split."""
    if target.endswith((".yaml", ".yml")):
        model, cfg, _ = load_model(final_model(target, overrides))
    else:
        model, cfg, _ = load_model(target)
        if overrides:  # e.g. --set data.args.path=other.csv: the same model on other data
            cfg = revalidate(cfg, overrides, target)
    if data_args:
        cfg["data"]["args"].update(data_args)
    _, (train_ds, val_ds, test_ds), _ = _setup(cfg, target)
    ds = {"train": train_ds, "val": val_ds, "test": test_ds}[split]
    if ds is None:
        raise ConfigError(f"this run has no {split!r} split", target)
    task = SupervisedTask(model, solver.build_loss(cfg), solver.build_metrics(cfg))
    engine = Engine(model, task, verbose=0)
    return engine.evaluate(_loader(ds, cfg, shuffle=False))


_VALUE_LOSSES = ("mse", "l1")  # regression: the outputs are the predictions


def predict(model_path, input_path, preprocessed=False) -> dict:
    """Predictions for the inputs in ``input_path``, read and preprocessed as the run's
    training data was (see :mod:`ember.cli.inputs`). Returns ``{"kind", "labels",
    "scores", "spec"}``: ``kind`` is ``classes`` (argmax, its softmax probability),
    ``binary`` (sigmoid > 0.5, its probability) or ``values`` (regression outputs)."""
    if model_path.endswith((".yaml", ".yml")):
        model_path = final_model(model_path)
    model, cfg, spec = load_model(model_path)
    x = prepare_inputs(read_inputs(input_path, spec), spec, cfg, input_path, preprocessed)
    with ember.no_grad():
        out = model(ember.from_numpy(x)).float()
    loss = cfg["solver"].get("loss", "cross_entropy")
    if loss in _VALUE_LOSSES:
        return {"kind": "values", "labels": out.numpy(), "scores": None, "spec": spec}
    if loss == "bce_with_logits":
        p = ember.sigmoid(out).numpy()
        labels = (p > 0.5).astype(np.int64)
        return {
            "kind": "binary",
            "labels": labels,
            "scores": np.where(labels, p, 1 - p),
            "spec": spec,
        }
    probs = ember.softmax(out, -1).numpy()
    labels = probs.argmax(-1)
    scores = np.take_along_axis(probs, labels[..., None], -1)[..., 0]
    return {"kind": "classes", "labels": labels, "scores": scores, "spec": spec}
