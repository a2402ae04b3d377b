"""PyTorch vision and generative scripts port by renaming the import: each script in
``tests/_torch_port_cv/`` (written as PyTorch tutorials write them: a CIFAR-style CNN, a UNet,
a VAE, a GAN step with a gradient penalty, a small ResNet with AdamW parameter groups) runs
as written and with every ``torch`` renamed to ``ember``, and every result agrees."""

import os

import numpy as np
import pytest
from _torch_port import run_both_ways

HERE = os.path.join(os.path.dirname(__file__), "_torch_port_cv")
# script -> (rtol, atol): float32 scripts 1e-5, float64 scripts 1e-7
SCRIPTS = {
    "cifar_cnn": (1e-5, 1e-6),
    "unet": (1e-7, 1e-10),
    "vae": (1e-5, 1e-6),
    "gan": (1e-7, 1e-10),
    "resnet_block": (1e-5, 1e-6),
}


def _value(v):
    if hasattr(v, "detach"):
        v = v.detach().numpy()
    if isinstance(v, (bool, str, np.bool_)):
        return v
    return np.asarray(v, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_runs_with_the_import_renamed(name, tmp_path):
    want, got = run_both_ways(os.path.join(HERE, name + ".py"), tmp_path, name)
    rtol, atol = SCRIPTS[name]
    for key in want:
        w, g = _value(want[key]), _value(got[key])
        if isinstance(w, (bool, str, np.bool_)):
            assert g == w, key
            continue
        if hasattr(want[key], "dtype") and hasattr(got[key], "dtype"):
            assert str(got[key].dtype).split(".")[-1] == str(want[key].dtype).split(".")[-1], key
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"{name}: {key}")
