"""``ember train`` / ``ember eval`` / ``ember predict``: a config-defined run on the one
training engine (``ember.train.Engine``)."""

from __future__ import annotations

import glob
import json
import os
import re

import numpy as np

import ember
from ember.train import Callback, Engine, Task

from . import build
from .config import ConfigError, load_config

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

    def __init__(self, model, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def _forward(self, batch):
        x, y = batch
        out = self.model(x)
        loss = self.loss_fn(out, y)
        n = int(y.shape[0])
        self.log("loss", loss, n)
        if out.ndim >= 2 and y.dtype == ember.int64:
            pred = out.argmax(-1)
            self.log("accuracy", float((pred == y).float().mean().item()), n)
        return loss

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

    def __init__(self, directory, every=1, keep_last=3, keep_best=None):
        super().__init__()
        self.dir, self.every, self.keep_last = directory, every, keep_last
        self.best_cfg = keep_best
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        from ember.train import save_checkpoint

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
    ember.manual_seed(cfg["solver"]["seed"])
    train, val, test, full = build.build_datasets(cfg, path)
    shape = build.sample_shape(full)
    model = build.build_model(cfg, shape, build.num_classes_of(full), path)
    return model, (train, val, test)


def run_dir(cfg):
    return cfg["snapshot"]["dir"] or os.path.join("runs", cfg["name"])


def train(config_path, overrides=(), resume=None, verbose=1):
    """Train from a config file; returns a dict of final metrics and output paths."""
    cfg = load_config(config_path, overrides)
    model, (train_ds, val_ds, test_ds) = _setup(cfg, config_path)
    out_dir = run_dir(cfg)
    snap_dir = os.path.join(out_dir, "snapshots")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    train_loader = _loader(train_ds, cfg, shuffle=True)
    val_loader = _loader(val_ds, cfg, shuffle=False) if val_ds is not None else None
    opt = build.build_optimizer(cfg, model.parameters(), config_path)
    sched = build.build_schedule(cfg, opt, len(train_loader), config_path)
    snap = cfg["snapshot"]
    callbacks = [Snapshots(snap_dir, snap["every"], snap["keep_last"], snap["keep_best"])]
    logs = cfg["logging"]
    if logs["tensorboard"]:
        from ember.train import TensorBoard

        tb = (
            logs["tensorboard"]
            if isinstance(logs["tensorboard"], str)
            else os.path.join(out_dir, "tensorboard")
        )
        callbacks.append(TensorBoard(tb))
    if logs["csv"]:
        from ember.train import CSVLogger

        csv = logs["csv"] if isinstance(logs["csv"], str) else os.path.join(out_dir, "log.csv")
        callbacks.append(CSVLogger(csv, append=resume is not None))
    schedulers = []
    if sched is not None:
        interval = "step" if type(sched).__name__ == "OneCycleLR" else "epoch"
        entry = {"scheduler": sched, "interval": interval}
        if type(sched).__name__ == "ReduceLROnPlateau":
            entry["monitor"] = "val_loss" if val_loader is not None else "loss"
        schedulers.append(entry)
    engine = Engine(
        model,
        SupervisedTask(model, build.build_loss(cfg, config_path)),
        optimizers=[opt],
        schedulers=schedulers,
        callbacks=callbacks,
        gradient_clip_val=cfg["solver"]["grad_clip"],
        verbose=verbose,
    )
    if resume is not None:
        from ember.train import load_checkpoint

        snap = resume if isinstance(resume, str) and resume else latest_snapshot(snap_dir)
        engine.restore(load_checkpoint(snap))
        print(f"resuming from {snap} (epoch {engine.epoch})")
    history = engine.fit(train_loader, epochs=cfg["solver"]["epochs"], val_data=val_loader)
    result = {k: v[-1] for k, v in history.history.items() if v}
    if test_ds is not None:
        test = engine.evaluate(_loader(test_ds, cfg, shuffle=False))
        result.update({f"test_{k}": v for k, v in test.items()})
    final = os.path.join(out_dir, "model.ember")
    save_model(final, model, cfg)
    result.update(run_dir=out_dir, model=final, snapshots=snap_dir)
    return result


def latest_snapshot(snap_dir):
    snaps = list_snapshots(snap_dir)
    if not snaps:
        raise ConfigError(f"no snapshot to resume from in {snap_dir}")
    return snaps[-1]


def save_model(path, model, cfg):
    """One file: the resolved config (architecture, data) and the weights."""
    ember.save(
        {"format": MODEL_FORMAT, "config": json.dumps(cfg), "state_dict": model.state_dict()}, path
    )


def load_model(path):
    """``(model, cfg)`` from a file written by :func:`save_model`."""
    if not os.path.exists(path):
        raise ConfigError("file not found", path)
    obj = ember.load(path)
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ConfigError(f"not an ember model file (expected format {MODEL_FORMAT})", path)
    cfg = json.loads(obj["config"])
    model, _ = _setup(cfg, path)
    model.load_state_dict(obj["state_dict"])
    model.eval()
    return model, cfg


def evaluate(target, split="test", overrides=(), data_args=None):
    """Metrics of a model file (or a config's final model) on a data split."""
    if target.endswith((".yaml", ".yml")):
        cfg = load_config(target, overrides)
        model, cfg = load_model(os.path.join(run_dir(cfg), "model.ember"))
    else:
        model, cfg = load_model(target)
    if data_args:
        cfg["data"]["args"].update(data_args)
    _, (train_ds, val_ds, test_ds) = _setup(cfg, target)
    ds = {"train": train_ds, "val": val_ds, "test": test_ds}[split]
    if ds is None:
        raise ConfigError(f"this config has no {split!r} split")
    engine = Engine(model, SupervisedTask(model, build.build_loss(cfg)), verbose=0)
    return engine.evaluate(_loader(ds, cfg, shuffle=False))


def read_inputs(path):
    """Inputs for ``ember predict``: a .npy array, a numeric .csv, or image files."""
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False).astype(np.float32)
    if path.endswith(".csv"):
        return np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    files = sorted(glob.glob(os.path.join(path, "*"))) if os.path.isdir(path) else [path]
    from PIL import Image

    arrs = []
    for f in files:
        with Image.open(f) as im:
            arrs.append(np.asarray(im.convert("L"), np.float32) / 255.0)
    return np.stack(arrs)[:, None]


def predict(model_path, input_path):
    model, cfg = load_model(model_path)
    x = read_inputs(input_path)
    shape = cfg["model"].get("input_shape")
    if shape is None:
        from . import build as b

        _, _, _, full = b.build_datasets(cfg)
        shape = b.sample_shape(full)
    if tuple(x.shape[1:]) != tuple(shape):
        if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
            raise ConfigError(
                f"inputs have shape {tuple(x.shape[1:])} per sample; the model "
                f"expects {tuple(shape)}",
                input_path,
            )
        x = x.reshape((len(x),) + tuple(shape))
    with ember.no_grad():
        out = model(ember.from_numpy(np.ascontiguousarray(x)))
    probs = ember.softmax(out, -1).numpy()
    return probs.argmax(-1), probs
