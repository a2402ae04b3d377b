"""Zoo models from YAML configs: ``model: {zoo: NAME, arg: value}`` (shorthand) and
``model: {zoo: {name: NAME, arg: value}}`` build the same architecture; clear errors."""

import pytest

import ember
from ember.cli import build
from ember.cli import config as C


def _load(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return C.load_config(str(p)), str(p)


def _names_and_shapes(m):
    return [(k, tuple(v.shape)) for k, v in m.state_dict().items()]


@pytest.mark.parametrize(
    "text",
    [
        "model: {zoo: resnet18, num_classes: 7}\n",
        "model: {zoo: {name: resnet18, num_classes: 7}}\n",
        "model:\n  zoo: resnet18\n  num_classes: 7\n  input_shape: [3, 32, 32]\n",
    ],
)
def test_both_forms_build_the_same_model(tmp_path, text):
    cfg, path = _load(tmp_path, text)
    assert cfg["model"]["zoo"]["name"] == "resnet18"
    m = build.build_model(cfg, (3, 32, 32), 10, path)
    ember.manual_seed(0)
    assert _names_and_shapes(m) == _names_and_shapes(ember.models.resnet18(num_classes=7))
    assert m.eval()(ember.zeros(1, 3, 32, 32)).shape == (1, 7)


def test_shorthand_defaults_from_the_data(tmp_path):
    cfg, path = _load(tmp_path, "model: {zoo: googlenet, aux_logits: false}\n")
    m = build.build_model(cfg, (1, 40, 40), 5, path)
    assert m.fc.out_features == 5 and m.conv1.conv.in_channels == 1


def test_plain_name_and_override(tmp_path):
    cfg, _ = _load(tmp_path, "model: {zoo: lenet5}\n")
    assert cfg["model"]["zoo"] == "lenet5"
    cfg = C.revalidate(cfg, ["model.num_classes=4"])
    assert cfg["model"]["zoo"] == {"name": "lenet5", "num_classes": 4}


def test_errors_name_the_problem(tmp_path):
    cfg, path = _load(tmp_path, "model: {zoo: resnet81, num_classes: 3}\n")
    with pytest.raises(C.ConfigError, match=r"unknown model 'resnet81' \(did you mean resnet18"):
        build.build_model(cfg, (3, 32, 32), 3, path)
    cfg, path = _load(tmp_path, "model: {zoo: resnet18, num_clases: 3}\n")
    with pytest.raises(C.ConfigError, match=r"model\.zoo.*bad arguments for resnet18.*num_clases"):
        build.build_model(cfg, (3, 32, 32), 3, path)
    with pytest.raises(C.ConfigError, match="model.name"):
        _load(tmp_path, "model: {zoo: resnet18, name: x}\n")
    with pytest.raises(C.ConfigError, match="model.num_classes"):
        _load(tmp_path, "model: {zoo: {name: resnet18}, num_classes: 3}\n")
    with pytest.raises(C.ConfigError, match="unknown key in model 'num_classes'"):
        _load(tmp_path, "model: {num_classes: 3}\n")  # arguments without a zoo name


def test_ember_train_cli_with_a_zoo_model(tmp_path):
    """``ember train`` on the brief's config: ResNet-18 from the zoo on Digits (1x8x8), one
    epoch; the saved model evaluates to the test accuracy the run reported."""
    import subprocess
    import sys

    pytest.importorskip("yaml")
    pytest.importorskip("sklearn")
    cfg = tmp_path / "zoo.yaml"
    cfg.write_text(
        "model: {zoo: resnet18, num_classes: 10}\n"
        "data: {dataset: Digits, batch_size: 128, val_split: 0.1}\n"
        "solver: {optimizer: {name: adam, lr: 0.01}, epochs: 1, seed: 1}\n"
        f"snapshot: {{dir: {tmp_path / 'run'}}}\n"
    )

    def ember_cmd(*args):
        r = subprocess.run(
            [sys.executable, "-m", "ember", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = ember_cmd("train", str(cfg), "--quiet")
    final = dict(kv.split("=") for kv in out.splitlines()[0][len("final: ") :].split())
    ev = dict(
        kv.split("=") for kv in ember_cmd("eval", str(tmp_path / "run" / "model.ember")).split()
    )
    assert ev["accuracy"] == final["test_accuracy"]
