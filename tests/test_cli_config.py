"""Config schema of the ``ember`` command: booleans, bool-or-path fields, numbers and ranges,
paths resolved relative to the config file, and "did you mean" for every name a config
looks up (layers, losses, optimizers, schedules, datasets, metrics, activations, transforms,
models). Every error names the file, the key and what was expected."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("yaml")

from ember.cli import build, solver
from ember.cli import config as C
from ember.cli import datasets as cli_data

BASE = "model: {layers: [Flatten]}\n"


def _load(tmp_path, text, overrides=()):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return str(p), C.load_config(str(p), overrides)


def _error(tmp_path, text, overrides=()):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    with pytest.raises(C.ConfigError) as e:
        C.load_config(str(p), overrides)
    msg = str(e.value)
    assert msg.startswith(str(p) + ": "), msg  # the file comes first
    return msg


# -- booleans and bool-or-path fields ---------------------------------------------------------
@pytest.mark.parametrize("key", ["data.test", "data.shuffle"])
@pytest.mark.parametrize("value", ["yes_please", "'true'", "1", "0", "[]"])
def test_booleans_accept_only_yaml_booleans(tmp_path, key, value):
    section, name = key.split(".")
    msg = _error(tmp_path, f"{BASE}{section}: {{{name}: {value}}}\n")
    assert f"key '{key}'" in msg and "expected a boolean (true or false)" in msg


@pytest.mark.parametrize("value, expected", [("yes", True), ("false", False), ("on", True)])
def test_yaml_boolean_words_are_booleans(tmp_path, value, expected):
    _, cfg = _load(tmp_path, f"{BASE}data: {{shuffle: {value}}}\n")
    assert cfg["data"]["shuffle"] is expected


@pytest.mark.parametrize(
    "key, want", [("tensorboard", "directory path"), ("csv", "file path ending in .csv")]
)
@pytest.mark.parametrize("value", ["yes_please", "True_", "1", "3.5", "{a: 1}"])
def test_bool_or_path_fields_say_so(tmp_path, key, want, value):
    msg = _error(tmp_path, f"{BASE}logging: {{{key}: {value}}}\n")
    assert f"key 'logging.{key}'" in msg
    assert "expected true, false or a" in msg and want in msg


def test_bool_or_path_fields_take_paths_relative_to_the_config(tmp_path):
    _, cfg = _load(tmp_path, f"{BASE}logging: {{tensorboard: ./tb, csv: out/log.csv}}\n")
    assert cfg["logging"]["tensorboard"] == str(tmp_path / "tb")
    assert cfg["logging"]["csv"] == str(tmp_path / "out" / "log.csv")
    _, cfg = _load(tmp_path, f"{BASE}logging: {{tensorboard: false, csv: log.csv}}\n")
    assert cfg["logging"]["tensorboard"] is False
    assert cfg["logging"]["csv"] == str(tmp_path / "log.csv")


# -- numbers: type and range ------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, key, want",
    [
        ("solver: {epochs: 2.5}", "solver.epochs", "an integer >= 1"),
        ("solver: {epochs: true}", "solver.epochs", "an integer >= 1"),
        ("solver: {epochs: 0}", "solver.epochs", "an integer >= 1"),
        ("solver: {seed: -1}", "solver.seed", "an integer >= 0"),
        ("solver: {grad_clip: 0}", "solver.grad_clip", "a number > 0 or null"),
        ("solver: {grad_clip: big}", "solver.grad_clip", "a number > 0 or null"),
        ("solver: {optimizer: {name: sgd, lr: 0}}", "solver.optimizer.lr", "a number > 0"),
        ("solver: {optimizer: {name: sgd, lr: fast}}", "solver.optimizer.lr", "a number > 0"),
        (
            "solver: {optimizer: {name: sgd, lr: 0.1, momentum: -0.5}}",
            "solver.optimizer.momentum",
            "a number >= 0",
        ),
        (
            "solver: {optimizer: {name: adam, weight_decay: '0.1'}}",
            "solver.optimizer.weight_decay",
            "a number >= 0",
        ),
        ("solver: {optimizer: {name: 3}}", "solver.optimizer.name", "a non-empty string"),
        ("solver: {schedule: {T_max: 3}}", "solver.schedule", "missing 'name'"),
        ("data: {batch_size: 0}", "data.batch_size", "an integer >= 1"),
        ("data: {batch_size: 32.0}", "data.batch_size", "an integer >= 1"),
        ("data: {num_workers: -1}", "data.num_workers", "an integer >= 0"),
        ("data: {val_split: 1}", "data.val_split", "a number in [0, 1)"),
        ("data: {val_split: -0.1}", "data.val_split", "a number in [0, 1)"),
        ("snapshot: {every: 0}", "snapshot.every", "an integer >= 1"),
        ("snapshot: {keep_last: 1.5}", "snapshot.keep_last", "an integer >= 1"),
        (
            "snapshot: {keep_best: {metric: val_loss, mode: lowest}}",
            "snapshot.keep_best.mode",
            "min or max",
        ),
        ("model: {layers: [Flatten], input_shape: [1, 0, 8]}", "model.input_shape", "positive"),
        ("model: {layers: [Flatten], input_shape: 64}", "model.input_shape", "positive"),
    ],
)
def test_numbers_are_checked_for_type_and_range(tmp_path, text, key, want):
    head = "" if text.startswith("model:") else BASE
    msg = _error(tmp_path, head + text + "\n")
    assert f"key '{key}'" in msg and want in msg


def test_exponent_without_dot_gets_a_hint(tmp_path):
    # PyYAML reads 1e-3 as the string "1e-3"
    msg = _error(tmp_path, f"{BASE}solver: {{optimizer: {{name: adam, lr: 1e-3}}}}\n")
    assert "key 'solver.optimizer.lr'" in msg and "write it with a dot, e.g. 0.001" in msg


def test_set_overrides_are_validated_too(tmp_path):
    msg = _error(tmp_path, BASE, ["logging.tensorboard=yes_please"])
    assert "key 'logging.tensorboard'" in msg and "directory path" in msg


# -- paths --------------------------------------------------------------------------------
def test_paths_resolve_relative_to_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "project" / "configs"
    sub.mkdir(parents=True)
    p = sub / "c.yaml"
    p.write_text(
        "model: {layers: [Flatten]}\n"
        "data: {dataset: CSVDataset, args: {path: ../data/x.csv, label_column: 0}}\n"
        "snapshot: {dir: ../runs/a}\n"
    )
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    cfg = C.load_config(str(p.relative_to(tmp_path)))
    assert cfg["data"]["args"]["path"] == str(tmp_path / "project" / "data" / "x.csv")
    assert cfg["data"]["args"]["label_column"] == 0  # not a path: untouched
    assert cfg["snapshot"]["dir"] == str(tmp_path / "project" / "runs" / "a")
    # values given on the command line are relative to the working directory
    cfg = C.load_config(str(p), ["data.args.path=mine.csv"])
    assert cfg["data"]["args"]["path"] == str(tmp_path / "mine.csv")
    cfg = C.load_config(str(p), ["snapshot.dir=~/r"])
    assert cfg["snapshot"]["dir"] == os.path.expanduser("~/r")


def test_config_path_that_is_a_folder(tmp_path):
    with pytest.raises(C.ConfigError, match="is a folder"):
        C.load_config(str(tmp_path))


# -- names: real lists and suggestions --------------------------------------------------------
def _cfg(**solver):
    cfg = C.validate({"model": {"layers": ["Flatten"]}}, "x.yaml")
    cfg["solver"].update(solver)
    return cfg


@pytest.mark.parametrize(
    "call, kind, wrong, right, key",
    [
        (
            lambda: build.build_layers([{"batchnorm2d": {}}], (1, 8, 8), "x.yaml"),
            "layer",
            "batchnorm2d",
            "BatchNorm2d",
            "model.layers[0]",
        ),
        (
            lambda: build.build_layers(["Flatten", "Lineer"], (1, 8, 8), "x.yaml"),
            "layer",
            "Lineer",
            "Linear",
            "model.layers[1]",
        ),
        (
            lambda: solver.build_loss(_cfg(loss="cross_entropi"), "x.yaml"),
            "loss",
            "cross_entropi",
            "cross_entropy",
            "solver.loss",
        ),
        (
            lambda: solver.build_optimizer(_cfg(optimizer={"name": "adamm"}), [], "x.yaml"),
            "optimizer",
            "adamm",
            "adam",
            "solver.optimizer.name",
        ),
        (
            lambda: solver.build_schedule(_cfg(schedule={"name": "cosin"}), None, 1, "x.yaml"),
            "schedule",
            "cosin",
            "cosine",
            "solver.schedule.name",
        ),
        (
            lambda: solver.build_metrics(_cfg(metrics=["acuracy"]), "x.yaml"),
            "metric",
            "acuracy",
            "accuracy",
            "solver.metrics[0]",
        ),
        (
            lambda: build.build_activation("rellu", "x.yaml", "model.zoo.activation"),
            "activation",
            "rellu",
            "relu",
            "model.zoo.activation",
        ),
        (
            lambda: cli_data.build_transforms(["ToTensr"], "x.yaml"),
            "transform",
            "ToTensr",
            "ToTensor",
            "data.transforms[0]",
        ),
    ],
)
def test_unknown_names_suggest_the_closest(call, kind, wrong, right, key):
    with pytest.raises(C.ConfigError) as e:
        call()
    msg = str(e.value)
    assert msg.startswith("x.yaml: ") and f"key '{key}'" in msg
    assert f"unknown {kind} '{wrong}' (did you mean {right}?); available: " in msg


def test_unknown_dataset_and_model_suggest_the_closest(tmp_path):
    cfg = C.validate({"model": {"zoo": "mpl"}, "data": {"dataset": "digits"}}, "x.yaml")
    with pytest.raises(C.ConfigError, match=r"unknown dataset 'digits' \(did you mean Digits\?\)"):
        cli_data.build_datasets(cfg, "x.yaml")
    with pytest.raises(C.ConfigError, match=r"unknown model 'mpl' \(did you mean mlp\?\)"):
        build.build_model(cfg, (1, 8, 8), 10, "x.yaml")
    with pytest.raises(C.ConfigError, match=r"unknown activation 'rellu' \(did you mean relu\?\)"):
        cfg["model"]["zoo"] = {"name": "mlp", "activation": "rellu"}
        build.build_model(cfg, (1, 8, 8), 10, "x.yaml")


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(C.ConfigError) as e:
        solver.build_loss(_cfg(loss="zzzzzz"), "x.yaml")
    assert "did you mean" not in str(e.value) and "available: " in str(e.value)


def test_layer_and_dataset_lists_hold_only_real_ones():
    import ember.nn as nn
    from ember.data import Dataset, datasets

    layers = build.layer_names()
    for name in layers:
        cls = getattr(nn, name)
        assert issubclass(cls, nn.Module)
    for not_layer in ("CrossEntropyLoss", "MSELoss", "Sequential", "ModuleList", "Module"):
        assert not_layer in dir(nn) and not_layer not in layers
    assert {"Conv2d", "BatchNorm2d", "LSTM", "ReLU", "Flatten", "Linear"} <= set(layers)
    names = cli_data.dataset_names()
    assert all(issubclass(getattr(datasets, n), Dataset) for n in names)
    for helper in ("read_idx", "pil_loader", "IMG_EXTENSIONS", "write_hdf5"):
        assert helper in datasets.__all__ and helper not in names
    with pytest.raises(C.ConfigError) as e:
        build.build_layers(["Nope"], (4,), "x.yaml")
    assert "CrossEntropyLoss" not in str(e.value) and "Sequential" not in str(e.value)


def test_stacked_layers_match_pytorch():
    """Layers built from names (sizes inferred) compute what the same PyTorch stack does."""
    import numpy as np
    import torch

    import ember

    model = build.build_layers(["Flatten", {"Linear": {"out_features": 5}}, "GELU"], (2, 3))
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.GELU())
    ref.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    got = model(ember.from_numpy(x)).detach().numpy()
    want = ref(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "raw, call, key, wrong, right",
    [
        (
            {"model": {"layers": [{"Conv2d": {"out_channels": 4, "kernal_size": 3}}]}},
            lambda c: build.build_model(c, (1, 8, 8), 10, "x.yaml"),
            "model.layers[0].kernal_size",
            "Conv2d argument 'kernal_size'",
            "kernel_size",
        ),
        (
            {"model": {"zoo": {"name": "mlp", "hiden": [8]}}},
            lambda c: build.build_model(c, (1, 8, 8), 10, "x.yaml"),
            "model.zoo.hiden",
            "mlp argument 'hiden'",
            "hidden",
        ),
        (
            {"model": {"layers": ["Flatten"]}, "data": {"args": {"flaten": True}}},
            lambda c: cli_data.build_datasets(c, "x.yaml"),
            "data.args.flaten",
            "Digits argument 'flaten'",
            "flatten",
        ),
        (
            {"model": {"layers": ["Flatten"]}, "solver": {"optimizer": {"name": "sgd", "mom": 1}}},
            lambda c: solver.build_optimizer(c, [], "x.yaml"),
            "solver.optimizer.mom",
            "SGD argument 'mom'",
            "momentum",
        ),
        (
            {"model": {"layers": ["Flatten"]}, "solver": {"schedule": {"name": "step", "step": 2}}},
            lambda c: solver.build_schedule(c, None, 1, "x.yaml"),
            "solver.schedule.step",
            "StepLR argument 'step'",
            "step_size",
        ),
        (
            {
                "model": {"layers": ["Flatten"]},
                "data": {"transforms": [{"Normalize": {"mena": 0}}]},
            },
            lambda c: cli_data.build_transforms(c["data"]["transforms"], "x.yaml"),
            "data.transforms[0].mena",
            "Normalize argument 'mena'",
            "mean",
        ),
    ],
)
def test_unknown_arguments_suggest_the_closest(raw, call, key, wrong, right):
    cfg = C.validate(raw, "x.yaml")
    with pytest.raises(C.ConfigError) as e:
        call(cfg)
    msg = str(e.value)
    assert msg.startswith(f"x.yaml: key '{key}': unknown {wrong} (did you mean {right}?)"), msg


@pytest.mark.parametrize(
    "text, key, right",
    [
        ("model: {layers: [Flatten]}\nsolvers: {}\n", "solvers", "solver"),
        ("model: {layers: [Flatten]}\ndata: {batchsize: 8}\n", "data.batchsize", "batch_size"),
        (
            "model: {layers: [Flatten]}\nsnapshot: {keep_lats: 2}\n",
            "snapshot.keep_lats",
            "keep_last",
        ),
    ],
)
def test_unknown_sections_and_keys_suggest_the_closest(tmp_path, text, key, right):
    msg = _error(tmp_path, text)
    assert f"key '{key}'" in msg and f"(did you mean {right}?)" in msg


def test_set_reads_exponents_as_numbers(tmp_path):
    _, cfg = _load(tmp_path, BASE, ["solver.optimizer.lr=1e-3", "solver.optimizer.name=sgd"])
    assert cfg["solver"]["optimizer"]["lr"] == 1e-3
    assert cfg["solver"]["optimizer"]["name"] == "sgd"
