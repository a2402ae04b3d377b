"""Constructor signatures of ember.keras against Keras 3: every layer, optimizer, loss, metric
and callback class that both share by name, and Model.compile/fit/evaluate/predict, have the
same parameter names, the same order of positional parameters and the same defaults.

Deliberate differences live in ``DIFFERENCES`` below, which matches the "Keras" table of
``docs/api-differences.md`` (the test checks both ways, and that each listed name still
differs).
"""

from __future__ import annotations

import inspect
import os
import pathlib
import re

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest

from ember import keras as ek

K = pytest.importorskip("keras")

MODULES = (
    "layers",
    "optimizers",
    "losses",
    "metrics",
    "callbacks",
    "models",
    "initializers",
    "regularizers",
    "constraints",
)
MODEL_METHODS = ("compile", "fit", "evaluate", "predict")

# name -> reason; the same rows as docs/api-differences.md, section "Keras"
DIFFERENCES = {
    "metrics.F1Score": "ember.metrics.F1Score: task/num_classes first, threshold 0.5",
    "metrics.FBetaScore": "ember.metrics.FBetaScore: beta first, task/num_classes",
    "callbacks.CallbackList": "the ember.train engine's container; built by fit, not by users",
    "Model.fit": "extra resume_from= (continue exactly from a full checkpoint)",
}

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api-differences.md"


def _shared_names():
    for mod in MODULES:
        km, em = getattr(K, mod), getattr(ek, mod)
        for name in sorted(dir(km)):
            kobj = getattr(km, name)
            if name.startswith("_") or not isinstance(kobj, type):
                continue
            eobj = getattr(em, name, None)
            if isinstance(eobj, type):
                yield f"{mod}.{name}", kobj.__init__, eobj.__init__
    for m in MODEL_METHODS:
        yield f"Model.{m}", getattr(K.Model, m), getattr(ek.Model, m)


SHARED = list(_shared_names())


def _shape(fn):
    """(positional names in order, {name: default} of the named parameters)."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return positional, {p.name: p.default for p in params}


def _differences(kfn, efn) -> list[str]:
    kpos, kdef = _shape(kfn)
    epos, edef = _shape(efn)
    out = []
    if kpos != epos:
        out.append(f"positional order: keras {kpos} / ember {epos}")
    if set(kdef) != set(edef):
        out.append(
            f"names: only keras {sorted(set(kdef) - set(edef))}, "
            f"only ember {sorted(set(edef) - set(kdef))}"
        )
    for n in set(kdef) & set(edef):
        if not _same_default(kdef[n], edef[n]):
            out.append(f"default of {n}: keras {kdef[n]!r} / ember {edef[n]!r}")
    return out


def _same_default(a, b) -> bool:
    if a is inspect.Parameter.empty or b is inspect.Parameter.empty:
        return a is b
    return (type(a) is type(b) and a == b) or (a == b and {type(a), type(b)} <= {int, float})


def test_count_of_checked_names():
    print(f"\nchecked {len(SHARED)} names against Keras 3")
    by_mod = {m: sum(n.startswith(m + ".") for n, _, _ in SHARED) for m in MODULES}
    assert by_mod["layers"] >= 45 and by_mod["optimizers"] >= 6 and by_mod["losses"] >= 13
    assert by_mod["metrics"] >= 10 and by_mod["callbacks"] >= 12
    assert len(SHARED) >= 95


@pytest.mark.parametrize(("name", "kfn", "efn"), SHARED, ids=[s[0] for s in SHARED])
def test_signature_matches_keras(name, kfn, efn):
    diffs = _differences(kfn, efn)
    if name in DIFFERENCES:
        assert diffs, f"{name} now matches Keras: remove it from DIFFERENCES and the doc table"
    else:
        assert not diffs, f"{name}: " + "; ".join(diffs)


def test_differences_table_matches_the_doc():
    text = DOC.read_text()
    section = text.split("## Keras", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*`([^`]+)`\s*\|", section, flags=re.M)
    assert sorted(rows) == sorted(DIFFERENCES)
    names = {n for n, _, _ in SHARED}
    assert set(DIFFERENCES) <= names
