"""PyTorch code ports by renaming the import: ``tests/_torch_port_script.py`` (written for
torch: torch.utils.data, torch.nn.utils.rnn, torch.autograd.functional, torch.optim.LBFGS)
runs unchanged except for ``torch`` -> ``ember``, and gives torch's results."""

import os

import numpy as np
from _torch_port import run_both_ways

SCRIPT = os.path.join(os.path.dirname(__file__), "_torch_port_script.py")


def _np(v):
    return np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64)


def test_the_script_runs_with_the_import_renamed(tmp_path):
    want, got = run_both_ways(SCRIPT, tmp_path, "script")
    for key in want:
        # float64 throughout; the L-BFGS fit's rounding differences (dot products summed in
        # another order) stay far below this
        np.testing.assert_allclose(
            _np(got[key]), _np(want[key]), rtol=1e-7, atol=1e-10, err_msg=key
        )


def test_signatures_are_torchs():
    """Keyword calls written for torch work: same parameter names, order and defaults."""
    import inspect

    import torch

    import ember

    def sig(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]

    pairs = [(ember.optim.LBFGS.__init__, torch.optim.LBFGS.__init__)]
    for mod_e, mod_t, names in (
        (
            ember.autograd.functional,
            torch.autograd.functional,
            ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"],
        ),
        (
            ember.nn.utils.rnn,
            torch.nn.utils.rnn,
            [
                "pad_sequence",
                "pack_padded_sequence",
                "pad_packed_sequence",
                "pack_sequence",
                "unpad_sequence",
                "unpack_sequence",
            ],
        ),
    ):
        pairs += [(getattr(mod_e, n), getattr(mod_t, n)) for n in names]
    for e, t in pairs:
        assert sig(e) == sig(t), e.__qualname__
