"""The public surface of ember is explicit and pinned.

``tests/public_api.txt`` lists every public name (``dir()`` minus dunders) of the packages
below, one ``package.name`` per line, except the op functions ``ember`` re-exports from the op
records (``ember/_ops_public.py``, generated; ``test_op_functions_are_the_records`` checks
them). A change to the surface must be deliberate: regenerate
the list with ``PYTHONPATH=$PWD python tests/test_public_api.py --regenerate`` and review the
diff. Besides the pin, no package may expose a foreign module (``np``, ``math``, ``os``...), a
primitive (``*_p``) or the primitive machinery (``bind``, ``Primitive``, ``REGISTRY``).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

PINNED = ("ember", "ember.nn", "ember.nn.functional", "ember.optim")
# Every package with an __init__ outside ember.ops and ember.keras (they own their surfaces).
PACKAGES = (
    *PINNED,
    "ember.autograd",
    "ember.backends",
    "ember.cli",
    "ember.data",
    "ember.data.datasets",
    "ember.data.transforms",
    "ember.metrics",
    "ember.nn.modules",
    "ember.nn.utils",
    "ember.summary",
    "ember.train",
)
API_FILE = Path(__file__).with_name("public_api.txt")
REGENERATE = "PYTHONPATH=$PWD python tests/test_public_api.py --regenerate"
MACHINERY = {"bind", "Primitive", "REGISTRY", "AbstractValue", "np", "math", "os", "sys"}


def _public(mod: types.ModuleType) -> list[str]:
    return sorted(n for n in dir(mod) if not (n.startswith("__") and n.endswith("__")))


def _op_functions() -> set[str]:
    """``ember.<op>`` names generated from the op records: the records are their declaration
    (``tools/gen_tensor_methods.py --check`` keeps ``ember/_ops_public.py`` in step)."""
    from ember import _ops_public

    return {f"ember.{n}" for n in _ops_public.__all__}


def _current() -> list[str]:
    ops = _op_functions()
    names = [f"{p}.{n}" for p in PINNED for n in _public(importlib.import_module(p))]
    return [x for x in names if x not in ops]


def _pinned() -> list[str]:
    return [ln for ln in API_FILE.read_text().splitlines() if ln and not ln.startswith("#")]


def test_op_functions_are_the_records():
    import ember
    from ember.ops._records import OPS

    public = {n.split(".", 1)[1] for n in _op_functions()}
    records = {r.name for r in OPS.values() if r.export and r.toplevel}
    assert records <= public, f"records missing from ember: {sorted(records - public)}"
    for name in public:
        assert getattr(ember, name) is getattr(ember.ops, name), name
    # the internal helpers other modules reach through ember.ops stay out of ember
    internal = {r.name for r in OPS.values() if not r.toplevel}
    assert internal and not internal & set(dir(ember)), sorted(internal & set(dir(ember)))


@pytest.mark.parametrize("pkg", PINNED)
def test_surface_matches_the_checked_in_list(pkg):
    got = {x for x in _current() if x.rsplit(".", 1)[0] == pkg}
    want = {x for x in _pinned() if x.rsplit(".", 1)[0] == pkg}
    added, removed = sorted(got - want), sorted(want - got)
    assert not added and not removed, (
        f"the public surface of {pkg} changed: added {added}, removed {removed}. If this is "
        f"intended, regenerate tests/public_api.txt with `{REGENERATE}` and review the diff"
    )


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_accidental_names(pkg):
    mod = importlib.import_module(pkg)
    assert isinstance(getattr(mod, "__all__", None), list), f"{pkg} has no __all__ list"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{pkg}.__all__ has duplicates"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{pkg}.__all__ names missing attributes: {missing}"
    for name, value in vars(mod).items():
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            # only the package's own submodules (the import system binds those; ``nn.init``)
            assert value.__name__ == f"{pkg}.{name}", (
                f"{pkg}.{name} is the foreign module {value.__name__!r}"
            )
            continue
        assert name in mod.__all__, f"{pkg}.{name} is public by accident (not in __all__)"
        assert not name.endswith("_p"), f"{pkg}.{name}: primitives stay in ember.ops"
        assert name not in MACHINERY, f"{pkg}.{name}: op machinery stays in ember.ops"


@pytest.mark.parametrize("pkg", PINNED)
def test_dir_lists_only_public_ember_names(pkg):
    mod = importlib.import_module(pkg)
    for name in _public(mod):
        assert not name.startswith("_"), f"{pkg}: dir() lists the private name {name}"
        assert not name.endswith("_p") and name not in MACHINERY, f"{pkg}.{name} is internal"
        value = getattr(mod, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__ == f"{pkg}.{name}", (
                f"{pkg}.{name} is the module {value.__name__!r}, not a subpackage of {pkg}"
            )


def test_internals_stay_reachable_for_tools():
    import ember

    assert callable(ember.ops.bind) and ember.ops.Primitive is not None
    assert "add" in ember.ops.registry()
    assert not hasattr(ember, "np") and not hasattr(ember, "bind")
    with pytest.raises(AttributeError, match="no attribute 'add_p'"):
        _ = ember.add_p


def test_star_import_and_a_fresh_process_agree():
    # dir() must not depend on what else the process imported (lazy subpackages included)
    code = (
        "import ember, ember.nn, ember.nn.functional, ember.optim\n"
        f"for p in {PINNED!r}:\n"
        "    m = __import__(p, fromlist=['x'])\n"
        "    print('\\n'.join(f'{p}.{n}' for n in sorted(dir(m)) if not n.startswith('__')))\n"
        "ns = {}\n"
        "exec('from ember import *', ns)\n"
        "assert set(ns) - {'__builtins__'} == set(ember.__all__), 'star import != __all__'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    ops = _op_functions()
    assert [x for x in out.split() if x not in ops] == _current()


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: {REGENERATE}")
    header = f"# The public surface of ember (dir() minus dunders). Regenerate: {REGENERATE}\n"
    API_FILE.write_text(header + "\n".join(_current()) + "\n")
    print(f"wrote {API_FILE} ({len(_current())} names)")
