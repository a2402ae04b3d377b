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


def _missing_package(err: BaseException | None) -> bool:
    """An ImportError for a package that is not installed (ember's own messages chain it)."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError):
            return True
        err = err.__cause__ or err.__context__
    return False


def _import(name: str):
    """Import a module; ``(module, None)``, or ``(None, reason)`` if an optional package is
    missing. Any other import error is left for the test itself to raise."""
    try:
        return importlib.import_module(name), None
    except ImportError as e:
        if not _missing_package(e):
            return None, None
        return None, f"{name} needs an optional package that is not installed: {e}"


def _collect() -> list:
    """``pytest.param(name)`` for every module with examples (skipped ones marked so)."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    params = []
    for name in _module_names():
        module, reason = _import(name)
        if module is None:
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            params.append(pytest.param(name, marks=marks, id=name))
            continue
        tests = [t for t in finder.find(module, name) if t.examples]
        if tests:
            params.append(pytest.param(name, id=name))
    return params


class _Runner(doctest.DocTestRunner):
    """Tells failures apart from examples that need an optional package that is missing
    (and the later examples of the same docstring, which depend on them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.missing: dict[str, str] = {}  # docstring name -> the ImportError
        self.other_failures = 0

    def report_failure(self, out, test, example, got):
        self.other_failures += test.name not in self.missing
        super().report_failure(out, test, example, got)

    def report_unexpected_exception(self, out, test, example, exc_info):
        err = exc_info[1]
        if test.name in self.missing:
            pass
        elif _missing_package(err):
            self.missing[test.name] = str(err)
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
        pytest.skip(
            "optional dependency missing: "
            + "; ".join(f"{k}: {v}" for k, v in runner.missing.items())
        )
    assert runner.failures == 0, (
        f"{runner.failures} of {runner.tries} docstring examples failed in {name}:\n"
        + report.getvalue()
    )
