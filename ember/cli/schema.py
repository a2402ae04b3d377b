"""The config schema: one checker per leaf key. A checker returns None when a value is
fine, else a phrase saying what was expected (the caller names the file and the key)."""

from __future__ import annotations

import os

__all__ = ["KEEP_BEST_ARGS", "OPTIMIZER_ARGS", "SCHEMA", "is_path_arg", "num_hint", "text"]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def num_hint(v) -> str:
    """A hint for a number YAML read as text (PyYAML reads 1e-3, without a dot, so).

    Example:
        >>> num_hint("1e-3")
        ' (YAML reads 1e-3 as text; write it with a dot, e.g. 0.001)'
    """
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return ""
        return f" (YAML reads {v} as text; write it with a dot, e.g. {float(v)!r})"
    return ""


def _int(lo=None):
    def check(v):
        if not _is_int(v) or (lo is not None and v < lo):
            return f"an integer >= {lo}" if lo is not None else "an integer"
        return None

    return check


def _num(lo=None, lo_open=False, hi=None, hi_open=False):
    def check(v):
        bad = not _is_num(v)
        if not bad and lo is not None:
            bad = v <= lo if lo_open else v < lo
        if not bad and hi is not None:
            bad = v >= hi if hi_open else v > hi
        if not bad:
            return None
        if lo is not None and hi is not None:
            return f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        if lo is not None:
            return f"a number {'>' if lo_open else '>='} {lo}"
        return "a number"

    return check


def _bool(v):
    return None if isinstance(v, bool) else "a boolean (true or false)"


def text(v):
    """Checker for a non-empty string.

    Example:
        >>> text("adam"), text("")
        (None, 'a non-empty string')
    """
    return None if isinstance(v, str) and v.strip() else "a non-empty string"


def _map(v):
    return None if isinstance(v, dict) else "a mapping"


def _list(v):
    return None if isinstance(v, list) else "a list"


def _looks_like_path(v, suffixes=()):
    return isinstance(v, str) and (
        "/" in v or os.sep in v or v.startswith((".", "~")) or v.endswith(suffixes)
    )


def _bool_or_dir(v):
    # NOTE: a bare word is refused rather than taken as a folder name, so that a typo for a
    # boolean ("yes_please", "True ") is not silently turned into a directory
    if isinstance(v, bool) or _looks_like_path(v):
        return None
    return "true, false or a directory path containing '/' (e.g. ./tensorboard)"


def _bool_or_csv(v):
    if isinstance(v, bool) or _looks_like_path(v, (".csv",)):
        return None
    return "true, false or a file path ending in .csv or containing '/' (e.g. ./log.csv)"


def _dir_or_none(v):
    return None if v is None or (isinstance(v, str) and v.strip()) else "a directory path"


def _shape_or_none(v):
    if v is None or (isinstance(v, list) and v and all(_is_int(d) and d >= 1 for d in v)):
        return None
    return "a list of positive integers (the shape of one sample)"


def _either(*checks, what):
    def check(v):
        return None if any(c(v) is None for c in checks) else what

    return check


def _none(v):
    return None if v is None else "null"


SCHEMA = {
    "data.batch_size": _int(1),
    "data.val_split": _num(0, False, 1, True),
    "data.num_workers": _int(0),
    "data.test": _bool,
    "data.shuffle": _bool,
    "data.args": _map,
    "data.transforms": _list,
    "data.dataset": text,
    "solver.epochs": _int(1),
    "solver.seed": _int(0),
    "solver.compile": _bool,
    "solver.grad_clip": _either(_none, _num(0, True), what="a number > 0 or null"),
    "solver.loss": text,
    "solver.metrics": _list,
    "solver.optimizer": _map,
    "solver.schedule": _either(_none, _map, what="a mapping with a 'name', or null"),
    "snapshot.every": _int(1),
    "snapshot.keep_last": _int(1),
    "snapshot.dir": _dir_or_none,
    "snapshot.keep_best": _either(
        _none, _map, text, what="a metric name or a mapping {metric, mode}, or null"
    ),
    "logging.tensorboard": _bool_or_dir,
    "logging.csv": _bool_or_csv,
    "model.layers": _either(_none, _list, what="a list of layers, or null"),
    "model.zoo": _either(_none, _map, text, what="a model name or a mapping with a 'name'"),
    "model.input_shape": _shape_or_none,
}


def fold_zoo_shorthand(model):
    """``model: {zoo: NAME, arg: value, ...}`` -> ``model: {zoo: {name: NAME, arg: value}}``;
    other sections and forms are returned unchanged.

    Example:
        >>> fold_zoo_shorthand({"zoo": "resnet18", "num_classes": 10})
        {'zoo': {'name': 'resnet18', 'num_classes': 10}}
    """
    if not isinstance(model, dict) or not isinstance(model.get("zoo"), str):
        return model
    # "name" stays behind, so a stray one is reported as an unknown key of the section
    args = {k: v for k, v in model.items() if k not in ("layers", "zoo", "input_shape", "name")}
    if not args:
        return model
    rest = {k: v for k, v in model.items() if k not in args}
    return {**rest, "zoo": {"name": model["zoo"], **args}}


# optional keys inside mappings; others pass through to the constructor, which reports them
OPTIMIZER_ARGS = {
    "lr": _num(0, True),
    "momentum": _num(0),
    "weight_decay": _num(0),
    "eps": _num(0, True),
    "alpha": _num(0),
    "dampening": _num(0),
    "nesterov": _bool,
    "amsgrad": _bool,
    "centered": _bool,
}
KEEP_BEST_ARGS = {"metric": text, "mode": lambda v: None if v in ("min", "max") else "min or max"}

# data.args keys that name files or folders (resolved relative to the config file)
_PATH_ARG = ("path", "root", "file", "filename", "dir", "directory")
_PATH_SUFFIX = ("_path", "_root", "_file", "_dir")


def is_path_arg(name: str) -> bool:
    """Whether a ``data.args`` key names a file or folder (resolved like other paths).

    Example:
        >>> is_path_arg("path"), is_path_arg("label_dir"), is_path_arg("seq_len")
        (True, True, False)
    """
    return name in _PATH_ARG or name.endswith(_PATH_SUFFIX)
