"""Shape ops declared ``f(input, *sizes)`` also take their sizes by keyword, as PyTorch's
(``x.view(size=...)``, ``torch.reshape(x, shape=...)``, ``x.repeat(repeats=...)``, ...)."""

import pytest
import torch

import ember

CASES = [
    ("view", {"size": (6, 4)}),
    ("reshape", {"shape": (4, 6)}),
    ("expand", {"size": (2, 2, 3, 4)}),
    ("repeat", {"repeats": (1, 2, 1)}),
    ("permute", {"dims": (2, 0, 1)}),
    ("flip", {"dims": [0, 2]}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_method_keyword_form_as_torch(name, kwargs):
    x = ember.arange(24.0).reshape(2, 3, 4)
    t = torch.arange(24.0).reshape(2, 3, 4)
    got = getattr(x, name)(**kwargs)
    want = getattr(t, name)(**kwargs)
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize(("name", "kwargs"), [c for c in CASES if c[0] in ("reshape", "permute")])
def test_function_keyword_form_as_torch(name, kwargs):
    x = ember.arange(24.0).reshape(2, 3, 4)
    t = torch.arange(24.0).reshape(2, 3, 4)
    assert getattr(ember, name)(x, **kwargs).tolist() == getattr(torch, name)(t, **kwargs).tolist()


def test_wrong_or_doubled_keywords_raise():
    x = ember.ones(2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sizes'"):
        x.view(sizes=(3, 2))
    with pytest.raises(TypeError, match="multiple values for argument 'shape'"):
        x.reshape(3, 2, shape=(3, 2))
