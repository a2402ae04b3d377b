"""PyTorch NLP scripts port by renaming the import: each script in ``tests/_torch_port_nlp``
(written for torch, the way its tutorials and users write them) runs as written and with every
``torch`` renamed to ``ember``, and every result must agree."""

import os

import numpy as np
import pytest
from _torch_port import run_both_ways

HERE = os.path.join(os.path.dirname(__file__), "_torch_port_nlp")
SCRIPTS = sorted(f[:-3] for f in os.listdir(HERE) if f.endswith(".py") and not f.startswith("_"))


def _np(v):
    if hasattr(v, "detach"):
        v = v.detach().numpy()
    return np.asarray(v)


def test_every_script_is_collected():
    assert SCRIPTS == [
        "char_lstm_lm",
        "mha_sdpa",
        "seq2seq_attention",
        "text_classification",
        "transformer_lm",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_with_the_import_renamed(script, tmp_path):
    want, got = run_both_ways(os.path.join(HERE, script + ".py"), tmp_path, script)
    for key in want:
        w, g = _np(want[key]), _np(got[key])
        assert g.shape == w.shape, key
        if w.dtype.kind in "biu" or w.dtype == object:
            np.testing.assert_array_equal(g, w, err_msg=key)
            continue
        # float64 arrays to 1e-7; everything else to float32's 1e-5 (the scripts compute in
        # float32, and their Python numbers come from float32 tensors' .item())
        array = hasattr(want[key], "dtype")
        rtol = 1e-7 if array and w.dtype == np.float64 and g.dtype == np.float64 else 1e-5
        atol = 1e-10 if rtol == 1e-7 else 1e-6
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=key)


def test_backward_adds_into_the_existing_grad_in_place():
    """As PyTorch's AccumulateGrad: a second first-order backward adds into ``x.grad`` in place
    (a reference kept to it, or its ``.numpy()``, sees the sum), never into the caller's
    ``gradient`` tensor; with ``create_graph`` the sum is a new tensor."""
    import torch

    import ember

    for lib in (torch, ember):
        x = lib.ones(3, requires_grad=True)
        (x * 2).sum().backward()
        kept, array = x.grad, x.grad.numpy()
        (x * 3).sum().backward()
        assert x.grad is kept, lib.__name__
        np.testing.assert_array_equal(array, [5.0, 5.0, 5.0])
        seed = lib.ones(3)
        y = lib.zeros(3, requires_grad=True)
        y.backward(seed)
        y.backward(seed)
        np.testing.assert_array_equal(seed.numpy(), [1.0, 1.0, 1.0])
        np.testing.assert_array_equal(y.grad.numpy(), [2.0, 2.0, 2.0])
        z = lib.ones(2, requires_grad=True)
        (z * z).sum().backward(create_graph=True)
        first = z.grad
        (z * z).sum().backward(create_graph=True)
        assert z.grad is not first and z.grad.requires_grad
        np.testing.assert_array_equal(first.detach().numpy(), [2.0, 2.0])
        np.testing.assert_array_equal(z.grad.detach().numpy(), [4.0, 4.0])
