"""Run the examples in every ``ember`` module's docstrings (STYLE point 14: docstrings that run).

One test per module that has examples. A module whose optional dependency is missing (it
fails to import, or an example raises ``ImportError`` for a package that is not installed)
is skipped with the reason, the way ``pytest.importorskip`` does.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import tempfile

import pytest

import ember

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
SKIP_MODULES = {"ember.__main__"}  # NOTE: importing it runs the command line


def _module_names() -> list[str]:
    names = ["ember"]
    for info in pkgutil.walk_packages(ember.__path__, "ember."):
        if info.name not in SKIP_MODULES:
            names.append(info.name)
    return sorted(names)


def _import(name: str):
    """Import a module; ``(module, None)`` or ``(None, reason)`` if a dependency is missing."""
    try:
        return importlib.import_module(name), None
    except ImportError as e:
        missing = getattr(e, "name", None) or str(e)
        return None, f"{name} needs an optional dependency that is not installed: {missing}"


def _collect() -> list:
    """``pytest.param(name)`` for every module with examples (skipped ones marked so)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    params = []
    for name in _module_names():
        module, reason = _import(name)
        if module is None:
            params.append(pytest.param(name, marks=pytest.mark.skip(reason=reason), id=name))
            continue
        tests = [t for t in finder.find(module, name) if t.examples]
        if tests:
            params.append(pytest.param(name, id=name))
    return params


class _Runner(doctest.DocTestRunner):
    """Records examples that failed only because an optional package is missing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.missing: list[str] = []
        self.other_failures = 0

    def report_failure(self, out, test, example, got):
        self.other_failures += 1
        super().report_failure(out, test, example, got)

    def report_unexpected_exception(self, out, test, example, exc_info):
        err = exc_info[1]
        if isinstance(err, ModuleNotFoundError) or (
                isinstance(err, ImportError) and "not installed" in str(err)):
            self.missing.append(f"{test.name}: {err}")
        else:
            self.other_failures += 1
        super().report_unexpected_exception(out, test, example, exc_info)


@pytest.mark.parametrize("name", _collect())
def test_docstring_examples(name, monkeypatch):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = _Runner(optionflags=OPTIONFLAGS, verbose=False)
    report = io.StringIO()
    ember.manual_seed(0)
    # NOTE: examples that save files (checkpoints, event files) write into a scratch folder
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.chdir(tmp)
        for test in sorted(finder.find(module, name), key=lambda t: t.name):
            if test.examples:
                test.globs = dict(test.globs)
                runner.run(test, out=report.write)
    if runner.missing and runner.other_failures == 0:
        pytest.skip("optional dependency missing: " + "; ".join(runner.missing))
    assert runner.failures == 0, (
        f"{runner.failures} of {runner.tries} docstring examples failed in {name}:\n"
        + report.getvalue())
