"""Run the examples in ember.data's docstrings (they are documentation that must work)."""

import doctest
import importlib
import pkgutil

import pytest

import ember.data

MODULES = sorted(m.name for m in pkgutil.walk_packages(ember.data.__path__, "ember.data."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
