"""Run configuration files: YAML with ``model``, ``data``, ``solver``, ``snapshot`` and
``logging`` sections, validated with errors that name the file, the key and the problem.

A config fully determines a run: the seed lives in ``solver.seed``, and ``--set
key=value`` overrides are applied before validation (and saved with the run). Relative paths
in a file are read relative to that file (values given with ``--set``: to the working
directory) and are saved absolute, so a run's model can be evaluated from anywhere.
"""

from __future__ import annotations

import copy
import os

from .schema import (
    KEEP_BEST_ARGS,
    OPTIMIZER_ARGS,
    SCHEMA,
    fold_zoo_shorthand,
    is_path_arg,
    num_hint,
    text,
)

__all__ = [
    "DEFAULTS",
    "ConfigError",
    "apply_overrides",
    "load_config",
    "resolve_paths",
    "revalidate",
    "validate",
]


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
        "compile": False,
        "seed": 0,
        "loss": "cross_entropy",
        "metrics": [],
    },
    "snapshot": {"dir": None, "every": 1, "keep_last": 3, "keep_best": None},
    "logging": {"tensorboard": True, "csv": True},
}


def _check(v, check, path, key):
    want = check(v)
    if want is not None:
        raise ConfigError(f"expected {want}, got {v!r}{num_hint(v)}", path, key)


def _yaml():
    try:
        import yaml
    except ImportError:
        raise ImportError(
            "reading configuration files needs PyYAML: pip install 'ember[train]'"
        ) from None
    return yaml


def load_config(path, overrides=()) -> dict:
    """Read, override and validate a config file; returns the full config dict with every
    path in it absolute (relative paths are read relative to the config file's folder).

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> p = os.path.join(d, "run.yaml")
        >>> _ = open(p, "w").write("model: {layers: [Flatten]}\\nsnapshot: {dir: out}\\n")
        >>> cfg = load_config(p, ["solver.epochs=3"])
        >>> cfg["solver"]["epochs"], cfg["snapshot"]["dir"] == os.path.join(d, "out")
        (3, True)
    """
    yaml = _yaml()
    path = str(path)
    if not os.path.exists(path):
        raise ConfigError("file not found", path)
    if os.path.isdir(path):
        raise ConfigError("is a folder, not a config file", path)
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
    cfg = validate(cfg, path)
    keys = [item.split("=", 1)[0].strip() for item in overrides or ()]
    return resolve_paths(cfg, os.path.dirname(os.path.abspath(path)), keys)


def revalidate(cfg: dict, overrides, source=None) -> dict:
    """A saved run config with ``--set`` overrides applied and checked again (override
    paths are relative to the working directory).

    Example:
        >>> cfg = validate({"model": {"layers": ["Flatten"]}}, "a.yaml")
        >>> revalidate(cfg, ["data.batch_size=8"])["data"]["batch_size"]
        8
    """
    out = validate(apply_overrides(cfg, overrides, source), source)
    keys = [item.split("=", 1)[0].strip() for item in overrides or ()]
    return resolve_paths(out, os.getcwd(), keys)


def _parse_value(text):
    yaml = _yaml()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        # NOTE: on the command line 1e-3 means a number (PyYAML reads it as text)
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            return value
    return value


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
    """Merge defaults, reject unknown keys and wrong types or ranges, return the full config.

    Example:
        >>> cfg = validate({"model": {"layers": ["ReLU"]}, "solver": {"epochs": 2}}, "a.yaml")
        >>> cfg["solver"]["epochs"], cfg["data"]["batch_size"], cfg["name"]
        (2, 64, 'a')
    """
    from .names import unknown_name

    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        bad = min(unknown, key=str)
        raise unknown_name("section", bad, DEFAULTS, path, str(bad))
    cfg = {}
    for section, default in DEFAULTS.items():
        value = raw.get(section)
        if not isinstance(default, dict):
            cfg[section] = value if value is not None else default
            continue
        if value is None:
            value = {}
        if section == "model":
            value = fold_zoo_shorthand(value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"section must be a mapping, got {type(value).__name__}", path, section
            )
        extra = set(value) - set(default)
        if extra:
            bad = min(extra, key=str)
            raise unknown_name(f"key in {section}", bad, default, path, f"{section}.{bad}")
        merged = copy.deepcopy(default)
        merged.update(value)
        for k, v in merged.items():
            check = SCHEMA.get(f"{section}.{k}")
            if check is not None:
                _check(v, check, path, f"{section}.{k}")
        cfg[section] = merged
    if cfg["name"] is not None:
        _check(cfg["name"], text, path, "name")
    m = cfg["model"]
    if (m["layers"] is None) == (m["zoo"] is None):
        raise ConfigError(
            "give exactly one of 'layers' (a list of layers) or 'zoo' (a model "
            "name with arguments)",
            path,
            "model",
        )
    s = cfg["solver"]
    if "name" not in s["optimizer"]:
        raise ConfigError("missing 'name' (e.g. adam, sgd)", path, "solver.optimizer")
    _check(s["optimizer"]["name"], text, path, "solver.optimizer.name")
    for k, check in OPTIMIZER_ARGS.items():
        if k in s["optimizer"]:
            _check(s["optimizer"][k], check, path, f"solver.optimizer.{k}")
    if s["schedule"] is not None:
        if "name" not in s["schedule"]:
            raise ConfigError("missing 'name' (e.g. cosine, step)", path, "solver.schedule")
        _check(s["schedule"]["name"], text, path, "solver.schedule.name")
    for i, metric in enumerate(s["metrics"]):
        _check(metric, text, path, f"solver.metrics[{i}]")
    d = cfg["data"]
    for k, v in d["args"].items():
        if is_path_arg(str(k)):
            _check(v, text, path, f"data.args.{k}")
    snap = cfg["snapshot"]
    if isinstance(snap["keep_best"], str):
        snap["keep_best"] = {"metric": snap["keep_best"]}
    if snap["keep_best"] is not None:
        if "metric" not in snap["keep_best"]:
            raise ConfigError(
                "keep_best needs a 'metric' (e.g. val_accuracy)", path, "snapshot.keep_best"
            )
        for k, v in snap["keep_best"].items():
            if k not in KEEP_BEST_ARGS:
                raise ConfigError(
                    f"unknown key {k!r}; allowed: metric, mode", path, f"snapshot.keep_best.{k}"
                )
            _check(v, KEEP_BEST_ARGS[k], path, f"snapshot.keep_best.{k}")
    if cfg["name"] is None:
        cfg["name"] = os.path.splitext(os.path.basename(str(path)))[0] if path else "run"
    return cfg


def _path_keys(cfg):
    """Where the paths in ``cfg`` are: tuples of keys, e.g. ``("data", "args", "path")``."""
    out = []
    for k, v in (cfg.get("data") or {}).get("args", {}).items():
        if is_path_arg(str(k)) and isinstance(v, str):
            out.append(("data", "args", k))
    if isinstance((cfg.get("snapshot") or {}).get("dir"), str):
        out.append(("snapshot", "dir"))
    for k in ("tensorboard", "csv"):
        if isinstance((cfg.get("logging") or {}).get(k), str):
            out.append(("logging", k))
    return out


def resolve_paths(cfg, base, overridden=()):
    """Make the paths in ``cfg`` absolute, in place: relative to ``base`` (the config file's
    folder), or to the working directory for values given with ``--set``.

    Example:
        >>> cfg = {"data": {"args": {"path": "data/a.txt"}}, "snapshot": {"dir": None}}
        >>> resolve_paths(cfg, "/project")["data"]["args"]["path"]
        '/project/data/a.txt'
    """
    for loc in _path_keys(cfg):
        node = cfg
        for p in loc[:-1]:
            node = node[p]
        dotted = ".".join(loc)
        from_cli = any(dotted == o or dotted.startswith(o + ".") for o in overridden)
        value = os.path.expanduser(node[loc[-1]])
        node[loc[-1]] = os.path.abspath(os.path.join(os.getcwd() if from_cli else base, value))
    return cfg
