"""``ember.empty`` inside a compiled function: the buffer is a stable constant (zeroed memory),
so a function that fills it compiles (one trace over batch sizes) and equals eager."""

import warnings

import numpy as np

import ember


def test_filled_empty_buffer_compiles_once_and_matches_eager():
    def f(x):
        buf = ember.empty(x.shape[0], 3)
        buf.uniform_(-1, 1)
        out = ember.empty_like(x)
        out.copy_(x * 2)
        return out + buf

    c = ember.compile(f, fullgraph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager fallback warning
        for n in (2, 3, 4, 5):
            x = ember.arange(3.0 * n).reshape(n, 3)
            ember.manual_seed(1)
            got = c(x)
            ember.manual_seed(1)
            np.testing.assert_array_equal(got.numpy(), f(x).numpy())
    assert ember.compile.explain(c).traces == 1


def test_empty_shape_dtype_and_requires_grad():
    e = ember.empty(2, 3, dtype=ember.float64, requires_grad=True)
    assert tuple(e.shape) == (2, 3) and e.dtype == ember.float64 and e.requires_grad
    assert ember.empty((4,)).shape == (4,)


def test_copy_into_a_new_buffer_traces_the_source():
    # (copy_ of a source without grad took a raw NumPy broadcast: under a trace it was a
    # read-only constant, and the compiled call failed with "assignment destination is
    # read-only")
    def f(x):
        out = ember.zeros_like(x)
        out.copy_(x * 2)
        side = ember.zeros(x.shape[0], 1)
        side.copy_(x[:, :1] + 1)
        return out + side

    c = ember.compile(f, fullgraph=True)
    for n in (2, 3, 6):
        x = ember.arange(3.0 * n).reshape(n, 3)
        np.testing.assert_array_equal(c(x).numpy(), f(x).numpy())
    assert ember.compile.explain(c).traces == 1
