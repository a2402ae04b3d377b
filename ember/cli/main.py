"""The ``ember`` command: ``train``, ``eval``, ``predict``, ``info``, ``init``.

Errors (missing files, bad YAML, unknown layers, shape mismatches) print one clear line and
exit with status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["STARTER", "cmd_eval", "cmd_info", "cmd_init", "cmd_predict", "cmd_train", "main"]

STARTER = """\
# Ember run configuration. Train with:  ember train {name}.yaml
model:
  input_shape: [1, 8, 8]          # (channels, height, width) of one sample
  layers:                          # input sizes (in_channels, in_features) are inferred
    - Conv2d: {{out_channels: 32, kernel_size: 3, padding: 1}}
    - BatchNorm2d
    - ReLU
    - Conv2d: {{out_channels: 64, kernel_size: 3, padding: 1}}
    - BatchNorm2d
    - ReLU
    - MaxPool2d: {{kernel_size: 2}}
    - Flatten
    - Dropout: {{p: 0.25}}
    - Linear: {{out_features: 128}}
    - ReLU
    - Linear: {{out_features: 10}}
data:
  dataset: Digits                  # any ember.data.datasets class
  batch_size: 64
  val_split: 0.1                   # fraction of the training set held out for validation
solver:
  optimizer: {{name: adam, lr: 0.002}}
  schedule: {{name: cosine}}
  epochs: 15
  seed: 0
snapshot:
  every: 1
  keep_last: 3
  keep_best: {{metric: val_accuracy, mode: max}}
logging:
  tensorboard: true
  csv: true
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="ember", description="Ember: train and deploy models defined by configuration files."
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the model a config file describes")
    t.add_argument("config")
    t.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="SNAPSHOT",
        help="continue from SNAPSHOT (default: the run's latest snapshot)",
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set solver.epochs=5",
    )
    t.add_argument("--quiet", action="store_true", help="no progress display")
    e = sub.add_parser("eval", help="report metrics of a trained model on a data split")
    e.add_argument("target", help="a config file (its final model) or a model file")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    pr = sub.add_parser("predict", help="predict classes for a file of inputs")
    pr.add_argument("model")
    pr.add_argument("input", help=".npy, .csv, an image or a folder of images")
    pr.add_argument("--output", help="write predictions here (.npy or .csv)")
    sub.add_parser("info", help="versions, backends and installed extras")
    i = sub.add_parser("init", help="write a starter config NAME.yaml")
    i.add_argument("name")
    i.add_argument("--force", action="store_true")
    return p


def _fmt(metrics):
    return "  ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


def cmd_train(a):
    from . import run

    res = run.train(a.config, a.set, resume=a.resume, verbose=0 if a.quiet else "auto")
    paths = {k: res.pop(k) for k in ("run_dir", "model", "snapshots")}
    print("final: " + _fmt(res))
    print(f"model: {paths['model']}\nsnapshots: {paths['snapshots']}\nlogs: {paths['run_dir']}")


def cmd_eval(a):
    from . import run

    print(_fmt(run.evaluate(a.target, a.split, a.set)))


def cmd_predict(a):
    import numpy as np

    from . import run

    labels, probs = run.predict(a.model, a.input)
    if a.output:
        if a.output.endswith(".csv"):
            np.savetxt(a.output, labels, fmt="%d")
        else:
            np.save(a.output, labels)
        print(f"wrote {len(labels)} predictions to {a.output}")
    else:
        for i, (lab, p) in enumerate(zip(labels, probs)):
            print(f"{i}\t{lab}\t{p[lab]:.4f}")


def cmd_info(a):
    import importlib
    import platform

    import numpy as np

    import ember

    print(f"ember {ember.__version__}  python {platform.python_version()}  numpy {np.__version__}")
    print(f"backends: cpu (numpy){'  cuda' if ember.cuda.is_available() else ''}")
    extras = {
        "data": ["h5py", "lmdb", "PIL", "sklearn"],
        "train": ["tqdm", "yaml"],
        "tensorboard": ["tensorboard"],
        "io": ["safetensors"],
        "test": ["pytest", "torch"],
        "jit": ["numba"],
        "gpu": ["cupy"],
        "onnx": ["onnx", "onnxruntime"],
    }
    for extra, mods in extras.items():
        found = []
        for m in mods:
            try:
                mod = importlib.import_module(m)
                found.append(f"{m} {getattr(mod, '__version__', '')}".strip())
            except Exception:  # noqa: BLE001 - any import failure means "missing"
                found.append(f"{m} (missing)")
        print(f"[{extra}] " + ", ".join(found))


def cmd_init(a):
    path = a.name if a.name.endswith((".yaml", ".yml")) else f"{a.name}.yaml"
    if os.path.exists(path) and not a.force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    name = os.path.splitext(os.path.basename(path))[0]
    with open(path, "w") as f:
        f.write(STARTER.format(name=name))
    print(f"wrote {path}; train it with: ember train {path}")


def main(argv=None):
    a = _parser().parse_args(argv)
    cmd = {
        "train": cmd_train,
        "eval": cmd_eval,
        "predict": cmd_predict,
        "info": cmd_info,
        "init": cmd_init,
    }[a.command]
    try:
        cmd(a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if a.debug:
            raise
        print(f"ember {a.command}: error: {e}", file=sys.stderr)
        return 2
    return 0
