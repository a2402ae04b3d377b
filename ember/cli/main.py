"""The ``ember`` command: ``train``, ``eval``, ``predict``, ``info``, ``init``.

Paths in a config are relative to the config file and are saved absolute with the run, so
``eval`` and ``predict`` work from any directory. ``predict`` reads raw inputs (as the
dataset's source stores them) and applies the run's preprocessing. Errors (missing files,
bad YAML, unknown names, shape mismatches) print one clear line and exit with status 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import export_cmd, report_cmd, serve_cmd

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
  dataset: Digits                  # any ember.data.datasets class; paths in args are
                                   # relative to this file
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
    t.add_argument("--plot", action="store_true", help="rewrite RUN/report.html each epoch")
    t.add_argument(
        "--compile",
        action="store_true",
        help="run the model's forward through ember.compile (as --set solver.compile=true)",
    )
    t.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train data-parallel on N processes of this machine (mpiexec, the [dist] "
        "extra); data.batch_size is per process",
    )
    t.add_argument("--hostfile", help="with --nproc: start the ranks on this MPI hostfile's hosts")
    e = sub.add_parser("eval", help="report metrics of a trained model on a data split")
    e.add_argument("target", help="a config file (its final model) or a model file")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    pr = sub.add_parser("predict", help="predict classes for a file of inputs")
    pr.add_argument("model", help="a model file, or a config file (its run's final model)")
    pr.add_argument(
        "input",
        help="raw inputs as the dataset stores them: .npy, .csv, an image, a folder of "
        "images, or a text file for token models",
    )
    pr.add_argument("--output", help="write predictions here (.npy or .csv)")
    pr.add_argument(
        "--preprocessed",
        action="store_true",
        help="the inputs are already in the model's input form (skip the dataset's scaling "
        "and the config's transforms)",
    )
    sub.add_parser("info", help="versions, backends and installed extras")
    i = sub.add_parser("init", help="write a starter config NAME.yaml")
    i.add_argument("name")
    i.add_argument("--force", action="store_true")
    report_cmd.add_parsers(sub)
    export_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    return p


def _fmt(metrics):
    return "  ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
    )


def cmd_train(a):
    from . import launch, run

    if a.nproc is not None:
        code = launch.launch(a.argv, a.nproc, a.hostfile)
        if code:
            raise RuntimeError(f"training on {a.nproc} processes failed (exit status {code})")
        return
    if a.hostfile is not None:
        raise ValueError("--hostfile needs --nproc N (the number of ranks to start)")
    launch.join_if_launched()
    sets = [*a.set, "solver.compile=true"] if a.compile else a.set
    res = run.train(a.config, sets, resume=a.resume, verbose=0 if a.quiet else "auto", plot=a.plot)
    if not res.pop("is_main", True):
        return
    paths = {k: res.pop(k) for k in ("run_dir", "model", "snapshots")}
    print("final: " + _fmt(res))
    print(f"model: {paths['model']}\nsnapshots: {paths['snapshots']}\nlogs: {paths['run_dir']}")


def cmd_eval(a):
    from . import run

    print(_fmt(run.evaluate(a.target, a.split, a.set)))


def cmd_predict(a):
    import numpy as np

    from . import run

    res = run.predict(a.model, a.input, a.preprocessed)
    labels, scores, vocab = res["labels"], res["scores"], res["spec"].get("vocab")
    values = res["kind"] == "values"
    if a.output:
        if a.output.endswith(".csv"):
            fmt = "%.6g" if values else "%d"
            np.savetxt(a.output, labels.reshape(len(labels), -1), fmt=fmt, delimiter=",")
        else:
            np.save(a.output, labels)
        print(f"wrote {len(labels)} predictions to {a.output}")
        return
    for i, lab in enumerate(labels):
        if values:
            print(f"{i}\t" + " ".join(f"{v:.6g}" for v in np.ravel(lab)))
        elif lab.ndim and vocab:  # a sequence model: the predicted next token at each position
            print(f"{i}\t{''.join(vocab[t] for t in lab)!r}")
        elif lab.ndim:  # several labels per sample (sequences, multi-label)
            print(f"{i}\t" + " ".join(map(str, np.ravel(lab))))
        else:
            print(f"{i}\t{lab}\t{scores[i]:.4f}")


# extra -> (module to look for, distribution that carries its version)
EXTRAS = {
    "data": [("h5py", "h5py"), ("lmdb", "lmdb"), ("PIL", "Pillow"), ("sklearn", "scikit-learn")],
    "train": [("tqdm", "tqdm"), ("yaml", "PyYAML")],
    "tensorboard": [("tensorboard", "tensorboard")],
    "io": [("safetensors", "safetensors")],
    "test": [("pytest", "pytest"), ("torch", "torch")],
    "jit": [("numba", "numba")],
    "gpu": [("cupy", "cupy")],
    "onnx": [("onnx", "onnx"), ("onnxruntime", "onnxruntime")],
    "report": [("matplotlib", "matplotlib"), ("pydot", "pydot")],
}


def _installed(module: str, dist: str) -> str:
    """``"name version"`` or ``"name (missing)"`` without importing the module (importing
    torch, numba or scikit-learn takes seconds)."""
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"{module} (missing)"
    try:
        return f"{module} {importlib.metadata.version(dist)}"
    except importlib.metadata.PackageNotFoundError:
        return module


def cmd_info(a):
    import platform

    import numpy as np

    import ember

    print(f"ember {ember.__version__}  python {platform.python_version()}  numpy {np.__version__}")
    print(f"backends: cpu (numpy){'  cuda' if ember.cuda.is_available() else ''}")
    for extra, mods in EXTRAS.items():
        print(f"[{extra}] " + ", ".join(_installed(m, d) for m, d in mods))


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
    a.argv = list(sys.argv[1:] if argv is None else argv)
    cmd = (
        getattr(a, "func", None)
        or {
            "train": cmd_train,
            "eval": cmd_eval,
            "predict": cmd_predict,
            "info": cmd_info,
            "init": cmd_init,
            "export": export_cmd.cmd_export,
            "serve": serve_cmd.cmd_serve,
        }[a.command]
    )
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
