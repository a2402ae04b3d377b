"""Run the examples in ember.train's and ember.keras' docstrings."""

import doctest
import importlib
import pkgutil

import pytest

import ember.keras
import ember.train

MODULES = sorted(
    [m.name for m in pkgutil.walk_packages(ember.train.__path__, "ember.train.")]
    + [m.name for m in pkgutil.walk_packages(ember.keras.__path__, "ember.keras.")]
    + ["ember.train", "ember.keras", "ember.keras.layers"]
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
