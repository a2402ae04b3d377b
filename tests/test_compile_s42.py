"""Compiled-mode fixes of session 42, each against eager Ember."""

import numpy as np

import ember


def test_keyword_arguments_in_another_order_reuse_the_trace():
    @ember.compile
    def f(x, *, a, b):
        return x * a - b

    x, a, b = ember.ones(3), ember.full((3,), 2.0), ember.arange(3.0)
    first = f(x, a=a, b=b)
    second = f(x, b=b, a=a)
    np.testing.assert_array_equal(first.numpy(), [2.0, 1.0, 0.0])
    np.testing.assert_array_equal(second.numpy(), first.numpy())
    # a different value reaches the right parameter whatever the order
    np.testing.assert_array_equal(f(x, b=a, a=b).numpy(), (x * b - a).numpy())
    assert "1 graph(s) traced" in str(ember.compile.explain(f))
