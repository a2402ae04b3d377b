"""PyTorch vision and generative scripts port by renaming the import: each script in
``tests/_torch_port_cv/`` (written as PyTorch tutorials write them: a CIFAR-style CNN, a UNet,
a VAE, a GAN step with a gradient penalty, a small ResNet with AdamW parameter groups) runs
as written and with every ``torch`` renamed to ``ember``, and every result agrees."""

import importlib.util
import os
import re

import numpy as np
import pytest

HERE = os.path.join(os.path.dirname(__file__), "_torch_port_cv")
# script -> (rtol, atol): float32 scripts 1e-5, float64 scripts 1e-7
SCRIPTS = {
    "cifar_cnn": (1e-5, 1e-6),
    "unet": (1e-7, 1e-10),
    "vae": (1e-5, 1e-6),
    "gan": (1e-7, 1e-10),
    "resnet_block": (1e-5, 1e-6),
}


def _run(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run()


def _value(v):
    if hasattr(v, "detach"):
        v = v.detach().numpy()
    if isinstance(v, (bool, str, np.bool_)):
        return v
    return np.asarray(v, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_runs_with_the_import_renamed(name, tmp_path):
    script = os.path.join(HERE, name + ".py")
    with open(script) as f:
        source = f.read()
    ported = re.sub(r"\btorch\b", "ember", source)
    assert "import torch" not in ported and "from torch" not in ported
    port = tmp_path / f"ported_{name}.py"
    port.write_text(ported)
    want = _run(script, f"torch_{name}")
    got = _run(str(port), f"ember_{name}")
    assert set(got) == set(want)
    rtol, atol = SCRIPTS[name]
    for key in want:
        w, g = _value(want[key]), _value(got[key])
        if isinstance(w, (bool, str, np.bool_)):
            assert g == w, key
            continue
        if hasattr(want[key], "dtype") and hasattr(got[key], "dtype"):
            assert str(got[key].dtype).split(".")[-1] == str(want[key].dtype).split(".")[-1], key
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{name}: {key}")
