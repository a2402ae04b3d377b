"""``Function.list_arguments`` and ``Function.infer_shape`` (MXNet Symbol's names): input,
output and shared-variable shapes from some inputs' shapes, and clear errors."""

import numpy as np
import pytest
import torch

import ember.symbol as S


def _mlp():
    x = S.var("x", ("batch", 6))
    w1 = S.shared(np.ones((6, 5), np.float32), "w1")
    w2 = S.shared(np.ones((5, 3), np.float32), "w2")
    h = (x @ w1).tanh()
    return S.function([x], [h @ w2, h.sum(1)])


def test_list_arguments_in_call_order():
    a, b = S.var("a", ("n", 2)), S.var("b", ("n",))
    f = S.function([b, a], a.sum(1) * b)
    assert f.list_arguments() == ["b", "a"]


def test_infer_shape_of_an_mlp_matches_torch():
    f = _mlp()
    ins, outs, shared = f.infer_shape(x=(10, 6))
    x = torch.zeros(10, 6)
    h = torch.tanh(x @ torch.ones(6, 5))
    assert ins == [tuple(x.shape)]
    assert outs == [tuple((h @ torch.ones(5, 3)).shape), tuple(h.sum(1).shape)]
    assert shared == [(6, 5), (5, 3)]
    # the shapes hold: the function runs at them
    got = f(np.zeros((10, 6), np.float32))
    assert [tuple(o.shape) for o in got] == outs


def test_sizes_shared_between_inputs_and_expressions():
    a, b = S.var("a", ("n", "d")), S.var("b", ("d", "k"))
    f = S.function([a, b], [a @ b, (a @ b).T.sum(1)])
    ins, outs, _ = f.infer_shape(a=(3, 5), b=(5, 7))
    assert ins == [(3, 5), (5, 7)] and outs == [(3, 7), (7,)]


def test_bad_shapes_name_the_problem():
    a, b = S.var("a", ("n", "d")), S.var("b", ("d", "k"))
    f = S.function([a, b], a @ b)
    with pytest.raises(ValueError, match="'k' of input 'b' is not fixed"):
        f.infer_shape(a=(3, 5))
    with pytest.raises(ValueError, match="'d' is 5 \\(from input 'a' axis 1\\)"):
        f.infer_shape(a=(3, 5), b=(6, 7))
    with pytest.raises(ValueError, match="no input named 'c'"):
        f.infer_shape(c=(1,))
    with pytest.raises(ValueError, match="has 2 axes"):
        f.infer_shape(a=(3,))
    x = S.var("x", (None, 4))
    g = S.function([x], x.sum(1))
    with pytest.raises(ValueError, match="axis 1 must be 4"):
        g.infer_shape(x=(2, 5))
