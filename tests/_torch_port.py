"""Running a PyTorch script both ways: as written, and with every ``torch`` renamed to
``ember`` (the promise that PyTorch code ports by renaming the import). Shared by
test_torch_port*.py."""

import importlib.util
import re


def run_script(path, name):
    """Import the script at ``path`` as module ``name`` and return its ``run()``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run()


def run_both_ways(path, tmp_path, name):
    """``(torch's results, the ported script's results)`` of the script at ``path``, after
    checking that the port imports no torch and both return the same keys."""
    with open(path) as f:
        source = f.read()
    ported = re.sub(r"\btorch\b", "ember", source)
    assert "import torch" not in ported and "from torch" not in ported
    port = tmp_path / f"ported_{name}.py"
    port.write_text(ported)
    want = run_script(str(path), f"torch_{name}")
    got = run_script(str(port), f"ember_{name}")
    assert set(got) == set(want)
    return want, got
