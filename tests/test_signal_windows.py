"""ember.signal.windows against torch.signal.windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember

CASES = [
    ("bartlett", {}),
    ("blackman", {}),
    ("cosine", {}),
    ("exponential", {}),
    ("exponential", {"tau": 2.0}),
    ("gaussian", {"std": 0.7}),
    ("general_cosine", {"a": [0.5, 0.3, 0.2]}),
    ("general_hamming", {"alpha": 0.6}),
    ("hamming", {}),
    ("hann", {}),
    ("kaiser", {"beta": 5.0}),
    ("nuttall", {}),
]


@pytest.mark.parametrize("name,kw", CASES)
@pytest.mark.parametrize("M", [0, 1, 2, 5, 8])
@pytest.mark.parametrize("sym", [True, False])
def test_windows_match_torch(name, kw, M, sym):
    e = getattr(ember.signal.windows, name)(M, sym=sym, **kw)
    t = getattr(torch.signal.windows, name)(M, sym=sym, **kw)
    assert tuple(e.shape) == tuple(t.shape)
    np.testing.assert_allclose(e.numpy(), t.numpy(), atol=1e-6)
    e64 = getattr(ember.signal.windows, name)(M, sym=sym, dtype=ember.float64, **kw)
    assert e64.dtype == ember.float64


def test_exponential_center_and_errors():
    e = ember.signal.windows.exponential(6, sym=False, center=1.0)
    t = torch.signal.windows.exponential(6, sym=False, center=1.0)
    np.testing.assert_allclose(e.numpy(), t.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="center must be None"):
        ember.signal.windows.exponential(4, center=1.0)
    with pytest.raises(ValueError, match="non-negative int"):
        ember.signal.windows.hann(-1)
    with pytest.raises(TypeError, match="floating point"):
        ember.signal.windows.hann(4, dtype=ember.int64)
    with pytest.raises(ValueError, match="std must be positive"):
        ember.signal.windows.gaussian(4, std=0)
