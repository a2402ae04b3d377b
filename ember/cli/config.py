"""Run configuration files: YAML with ``model``, ``data``, ``solver``, ``snapshot`` and
``logging`` sections, validated with errors that name the file, the key and the problem.

A config fully determines a run: the seed lives in ``solver.seed``, and ``--set
key=value`` overrides are applied before validation (and saved with the run).
"""

from __future__ import annotations

import copy
import os

__all__ = ["DEFAULTS", "ConfigError", "apply_overrides", "load_config", "validate"]


class ConfigError(ValueError):
    """A configuration problem, with the file and the dotted key it concerns."""

    def __init__(self, message, path=None, key=None):
        where = []
        if path:
            where.append(str(path))
        if key:
            where.append(f"key '{key}'")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


DEFAULTS = {
    "name": None,
    "model": {"layers": None, "zoo": None, "input_shape": None},
    "data": {
        "dataset": "Digits",
        "args": {},
        "batch_size": 64,
        "val_split": 0.1,
        "test": True,
        "num_workers": 0,
        "shuffle": True,
        "transforms": [],
    },
    "solver": {
        "optimizer": {"name": "adam", "lr": 1e-3},
        "schedule": None,
        "epochs": 10,
        "grad_clip": None,
        "seed": 0,
        "loss": "cross_entropy",
    },
    "snapshot": {"dir": None, "every": 1, "keep_last": 3, "keep_best": None},
    "logging": {"tensorboard": True, "csv": True},
}

_TYPES = {
    "data.batch_size": int,
    "data.val_split": (int, float),
    "data.num_workers": int,
    "data.test": bool,
    "data.shuffle": bool,
    "data.args": dict,
    "data.transforms": list,
    "data.dataset": str,
    "solver.epochs": int,
    "solver.seed": int,
    "solver.grad_clip": (int, float, type(None)),
    "solver.loss": str,
    "solver.optimizer": dict,
    "solver.schedule": (dict, type(None)),
    "snapshot.every": int,
    "snapshot.keep_last": int,
    "snapshot.dir": (str, type(None)),
    "snapshot.keep_best": (dict, str, type(None)),
    "logging.tensorboard": (bool, str),
    "logging.csv": (bool, str),
    "model.layers": (list, type(None)),
    "model.zoo": (dict, str, type(None)),
    "model.input_shape": (list, type(None)),
}


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "reading configuration files needs PyYAML: pip install 'ember[train]'"
        ) from None
    return yaml


def load_config(path, overrides=()):
    """Read, override and validate a config file; returns the full config dict."""
    yaml = _yaml()
    if not os.path.exists(path):
        raise ConfigError("file not found", path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"invalid YAML{where}: {problem}", path) from None
    if raw is None:
        raise ConfigError("the file is empty", path)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"expected a mapping of sections at the top level, got {type(raw).__name__}", path
        )
    cfg = apply_overrides(raw, overrides, path)
    return validate(cfg, path)


def _parse_value(text):
    yaml = _yaml()
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw, overrides, path=None):
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``raw``."""
    cfg = copy.deepcopy(raw)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}", path)
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = cfg
        for p in parts[:-1]:
            if not isinstance(node.get(p, {}), dict):
                raise ConfigError(f"cannot set {key}: '{p}' is not a section", path, key)
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value)
    return cfg


def validate(raw, path=None):
    """Merge defaults, reject unknown keys and wrong types, return the full config."""
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"unknown section(s) {sorted(unknown)}; expected {sorted(DEFAULTS)}", path, min(unknown)
        )
    cfg = {}
    for section, default in DEFAULTS.items():
        value = raw.get(section)
        if not isinstance(default, dict):
            cfg[section] = value if value is not None else default
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"section must be a mapping, got {type(value).__name__}", path, section
            )
        extra = set(value) - set(default)
        if extra:
            raise ConfigError(
                f"unknown key(s) {sorted(extra)}; allowed: {sorted(default)}",
                path,
                f"{section}.{min(extra)}",
            )
        merged = copy.deepcopy(default)
        merged.update(value)
        for k, v in merged.items():
            t = _TYPES.get(f"{section}.{k}")
            if (t is not None and not isinstance(v, t)) or (
                isinstance(v, bool) and t in (int, (int, float))
            ):
                want = t.__name__ if isinstance(t, type) else " or ".join(x.__name__ for x in t)
                raise ConfigError(f"expected {want}, got {v!r}", path, f"{section}.{k}")
        cfg[section] = merged
    m = cfg["model"]
    if (m["layers"] is None) == (m["zoo"] is None):
        raise ConfigError(
            "give exactly one of 'layers' (a list of layers) or 'zoo' (a model "
            "name with arguments)",
            path,
            "model",
        )
    s = cfg["solver"]
    if s["epochs"] < 1:
        raise ConfigError(f"must be >= 1, got {s['epochs']}", path, "solver.epochs")
    if "name" not in s["optimizer"]:
        raise ConfigError("missing 'name' (e.g. adam, sgd)", path, "solver.optimizer")
    if s["optimizer"].get("lr", 1) <= 0:
        raise ConfigError(
            f"learning rate must be > 0, got {s['optimizer']['lr']}", path, "solver.optimizer.lr"
        )
    d = cfg["data"]
    if d["batch_size"] < 1:
        raise ConfigError(f"must be >= 1, got {d['batch_size']}", path, "data.batch_size")
    if not 0 <= d["val_split"] < 1:
        raise ConfigError(f"must be in [0, 1), got {d['val_split']}", path, "data.val_split")
    snap = cfg["snapshot"]
    if snap["every"] < 1 or snap["keep_last"] < 1:
        raise ConfigError("'every' and 'keep_last' must be >= 1", path, "snapshot")
    if isinstance(snap["keep_best"], str):
        snap["keep_best"] = {"metric": snap["keep_best"]}
    if snap["keep_best"] is not None and "metric" not in snap["keep_best"]:
        raise ConfigError(
            "keep_best needs a 'metric' (e.g. val_accuracy)", path, "snapshot.keep_best"
        )
    if cfg["name"] is None:
        cfg["name"] = os.path.splitext(os.path.basename(str(path)))[0] if path else "run"
    return cfg
