"""PyTorch fidelity, round 5: empty contractions in linear/matmul, RandomSampler over an empty
source, ``Tensor.where``, module reprs, interpolate on empty batches, and common Tensor methods
(``view_as``, ``unfold``, ``fill_diagonal_``, scalar conversions), each against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as F
from ember.data import DataLoader, RandomSampler


def _pair(shape, seed=0, requires_grad=True):
    a = np.asarray(np.random.default_rng(seed).standard_normal(shape), np.float32)
    return (
        ember.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


def _close(e, t):
    assert tuple(e.shape) == tuple(t.shape)
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-5)


# -- 1. zero-sized contractions ------------------------------------------------------------
@pytest.mark.parametrize(
    "xs, ws",
    [((3, 0), (4, 0)), ((2, 3, 0), (4, 0)), ((0, 3), (4, 3)), ((0, 0), (4, 0)), ((3, 0), (0, 0))],
)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("create_graph", [False, True])
def test_linear_zero_features(xs, ws, bias, create_graph):
    xe, xt = _pair(xs, 1)
    we, wt = _pair(ws, 2)
    be, bt = _pair((ws[0],), 3) if bias else (None, None)
    ye, yt = F.linear(xe, we, be), torch.nn.functional.linear(xt, wt, bt)
    _close(ye, yt)
    ge, gt = _pair(tuple(yt.shape), 4, requires_grad=False)
    (ye * ge).sum().backward(create_graph=create_graph)
    (yt * gt).sum().backward()
    for e, t in [(xe, xt), (we, wt)] + ([(be, bt)] if bias else []):
        _close(e.grad, t.grad)


def test_linear_module_zero_in_features():
    ember.manual_seed(0)
    with pytest.warns(UserWarning, match="zero-element"):  # (as PyTorch's init warns)
        m = ember.nn.Linear(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        tm = torch.nn.Linear(0, 3)
    with torch.no_grad():
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    _close(m(ember.zeros(5, 0)), tm(torch.zeros(5, 0)))


@pytest.mark.parametrize(
    "name, shapes",
    [
        ("matmul", [(3, 0), (0, 4)]),
        ("matmul", [(2, 3, 0), (0, 4)]),
        ("matmul", [(3, 0), (0,)]),
        ("matmul", [(0,), (0,)]),
        ("mm", [(3, 0), (0, 4)]),
        ("bmm", [(2, 3, 0), (2, 0, 4)]),
        ("mv", [(3, 0), (0,)]),
        ("dot", [(0,), (0,)]),
        ("addmm", [(3, 4), (3, 0), (0, 4)]),
        ("einsum", [(3, 0), (4, 0)]),
    ],
)
def test_zero_size_contraction(name, shapes):
    pe = [_pair(s, i) for i, s in enumerate(shapes)]
    es, ts = [p[0] for p in pe], [p[1] for p in pe]
    if name == "einsum":
        ye, yt = ember.einsum("ij,kj->ik", *es), torch.einsum("ij,kj->ik", *ts)
    else:
        ye, yt = getattr(ember, name)(*es), getattr(torch, name)(*ts)
    _close(ye, yt)
    ye.sum().backward()
    yt.sum().backward()
    for e, t in zip(es, ts):
        _close(e.grad, t.grad)


# -- 2. RandomSampler / DataLoader(shuffle=True) over an empty dataset -----------------------
def test_shuffle_empty_dataset_raises_like_torch():
    with pytest.raises(ValueError, match="num_samples=0") as e:
        DataLoader([], shuffle=True)
    with pytest.raises(ValueError) as t:
        torch.utils.data.DataLoader([], shuffle=True)
    assert str(e.value) == str(t.value)
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler([], replacement=True)
    assert list(DataLoader([], shuffle=False)) == list(torch.utils.data.DataLoader([]))


def test_random_sampler_argument_checks():
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler([1, 2], replacement=1)
    with pytest.raises(TypeError):
        torch.utils.data.RandomSampler([1, 2], replacement=1)
    with pytest.raises(ValueError, match="num_samples=2.0"):
        RandomSampler([1, 2], num_samples=2.0)
    assert len(RandomSampler([1, 2], num_samples=3)) == 3


# -- 3. Tensor.where -------------------------------------------------------------------------
@pytest.mark.parametrize("other", ["tensor", "int_tensor", "scalar"])
def test_tensor_where_method(other):
    xe, xt = _pair((2, 3), 5)
    c = np.array([[True, False, True], [False, False, True]])
    if other == "tensor":
        oe, ot = _pair((3,), 6)
    elif other == "int_tensor":
        oe, ot = ember.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    else:
        oe = ot = 0.5
    ye, yt = xe.where(ember.tensor(c), oe), xt.where(torch.tensor(c), ot)
    assert str(ye.dtype).split(".")[-1] == str(yt.dtype).split(".")[-1]
    _close(ye, yt)
    ye.sum().backward()
    yt.sum().backward()
    _close(xe.grad, xt.grad)
    if other == "tensor":
        _close(oe.grad, ot.grad)


def test_tensor_where_method_int_self_float_other():
    ye = ember.tensor([1, 2]).where(ember.tensor([True, False]), 2.5)
    yt = torch.tensor([1, 2]).where(torch.tensor([True, False]), 2.5)
    assert ye.dtype == ember.float32 and ye.tolist() == yt.tolist()


# -- 4. module reprs -------------------------------------------------------------------------
_REPR_CASES = [
    ("BatchNorm1d", (8,), {}),
    ("BatchNorm2d", (8,), {"momentum": 0.2}),
    ("BatchNorm2d", (8,), {"bias": False}),
    ("BatchNorm3d", (4,), {"eps": 1e-3, "momentum": None, "affine": False}),
    ("BatchNorm1d", (4,), {"track_running_stats": False}),
    ("InstanceNorm1d", (8,), {}),
    ("InstanceNorm2d", (8,), {"affine": True}),
    ("InstanceNorm3d", (3,), {"track_running_stats": True, "eps": 1e-3}),
    ("LayerNorm", (8,), {}),
    ("LayerNorm", ((4, 8),), {"elementwise_affine": False}),
    ("LayerNorm", (8,), {"bias": False, "eps": 1e-6}),
    ("GroupNorm", (2, 8), {}),
    ("GroupNorm", (2, 8), {"affine": False, "eps": 1e-3}),
    ("Embedding", (10, 3), {}),
    ("Embedding", (10, 3), {"padding_idx": -1, "max_norm": 2.0, "norm_type": 1.0}),
    ("Embedding", (10, 3), {"max_norm": 1.0, "scale_grad_by_freq": True, "sparse": True}),
    ("Dropout", (), {}),
    ("Dropout", (0.3,), {"inplace": True}),
    ("Dropout2d", (0.1,), {}),
    ("AlphaDropout", (0.2,), {}),
    ("LSTM", (4, 8), {}),
    ("LSTM", (4, 8), {"num_layers": 2, "batch_first": True, "dropout": 0.1, "bidirectional": True}),
    ("LSTM", (4, 8), {"bias": False, "proj_size": 3}),
    ("GRU", (4, 8), {"num_layers": 3, "bidirectional": True}),
    ("RNN", (4, 8), {"nonlinearity": "relu", "num_layers": 2}),
    ("RNNCell", (4, 8), {"nonlinearity": "relu"}),
    ("LSTMCell", (4, 8), {"bias": False}),
    ("Conv1d", (3, 4, 3), {}),
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 1, "dilation": 2, "padding_mode": "reflect"}),
    ("Conv2d", (4, 8, (3, 5)), {"padding": "same", "groups": 4, "bias": False}),
    ("Conv2d", (3, 4, 3), {"padding": (1, 2), "dilation": (2, 1), "padding_mode": "circular"}),
    ("Conv3d", (3, 4, 3), {"stride": 2}),
    ("ConvTranspose2d", (3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ("ConvTranspose2d", (4, 4, 3), {"groups": 2, "bias": False, "dilation": 2}),
    ("Linear", (3, 4), {}),
    ("Linear", (3, 4), {"bias": False}),
    ("Bilinear", (3, 4, 5), {}),
    ("AvgPool1d", (3,), {"stride": 2}),
    ("ZeroPad2d", (1,), {}),
    ("ReflectionPad2d", ((1, 1, 2, 0),), {}),
    ("ReplicationPad1d", (2,), {}),
    ("ConstantPad1d", (2, 3.5), {}),
    ("CosineSimilarity", (), {}),
    ("PairwiseDistance", (), {"p": 1.0}),
]


@pytest.mark.parametrize("name, args, kwargs", _REPR_CASES, ids=lambda v: str(v))
def test_module_repr_matches_torch(name, args, kwargs):
    assert repr(getattr(ember.nn, name)(*args, **kwargs)) == repr(
        getattr(torch.nn, name)(*args, **kwargs)
    )


# -- 5. interpolate on empty inputs ----------------------------------------------------------
_MODES = [
    ("nearest", 1),
    ("nearest", 2),
    ("nearest", 3),
    ("nearest-exact", 2),
    ("linear", 1),
    ("bilinear", 2),
    ("bicubic", 2),
    ("trilinear", 3),
    ("area", 1),
    ("area", 2),
    ("area", 3),
]


@pytest.mark.parametrize("mode, nd", _MODES)
@pytest.mark.parametrize("by_size", [True, False])
def test_interpolate_empty_batch(mode, nd, by_size):
    xe, xt = _pair((0, 2) + (4,) * nd, 7)
    kw = {"size": (3,) * nd} if by_size else {"scale_factor": 2.0}
    if mode not in ("nearest", "nearest-exact", "area"):
        kw["align_corners"] = False
    ye = F.interpolate(xe, mode=mode, **kw)
    yt = torch.nn.functional.interpolate(xt, mode=mode, **kw)
    _close(ye, yt)
    ye.sum().backward()
    yt.sum().backward()
    _close(xe.grad, xt.grad)


@pytest.mark.parametrize("nd", [1, 2])
def test_interpolate_area_to_size_zero(nd):
    xe, xt = _pair((2, 3) + (4,) * nd, 8)
    ye = F.interpolate(xe, size=(0,) * nd, mode="area")
    yt = torch.nn.functional.interpolate(xt, size=(0,) * nd, mode="area")
    _close(ye, yt)
    with pytest.raises(RuntimeError):  # PyTorch's backward refuses; Ember's gives zeros
        yt.sum().backward()
    ye.sum().backward()
    assert tuple(xe.grad.shape) == tuple(xt.shape) and not xe.grad.numpy().any()


# -- 6. Tensor methods -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, dim, size, step",
    [((7,), 0, 3, 2), ((2, 5, 3), 1, 2, 1), ((2, 5, 3), -1, 3, 3), ((4,), 0, 0, 1), ((), 0, 1, 1)],
)
def test_tensor_unfold(shape, dim, size, step):
    xe, xt = _pair(shape, 9)
    ye, yt = xe.unfold(dim, size, step), xt.unfold(dim, size, step)
    _close(ye, yt)
    ge, gt = _pair(tuple(yt.shape), 10, requires_grad=False)
    (ye * ge).sum().backward()
    (yt * gt).sum().backward()
    _close(xe.grad, xt.grad)


def test_tensor_unfold_errors():
    with pytest.raises(RuntimeError, match="maximum size"):
        ember.zeros(3).unfold(0, 4, 1)
    with pytest.raises(RuntimeError, match="step"):
        ember.zeros(3).unfold(0, 2, 0)


def test_view_as():
    xe, xt = _pair((2, 3), 11)
    ye, yt = xe.view_as(ember.zeros(3, 2)), xt.view_as(torch.zeros(3, 2))
    _close(ye, yt)
    ye.pow(2).sum().backward()
    yt.pow(2).sum().backward()
    _close(xe.grad, xt.grad)


@pytest.mark.parametrize(
    "shape, wrap",
    [((3, 4), False), ((7, 3), False), ((7, 3), True), ((4, 3), True), ((3, 3, 3), False)],
)
def test_fill_diagonal_(shape, wrap):
    xe, xt = _pair(shape, 12, requires_grad=False)
    _close(xe.fill_diagonal_(2.5, wrap=wrap), xt.fill_diagonal_(2.5, wrap=wrap))
    ie, it = ember.zeros(*shape, dtype=ember.int64), torch.zeros(*shape, dtype=torch.int64)
    ye, yt = ie.fill_diagonal_(2.7, wrap=wrap), it.fill_diagonal_(2.7, wrap=wrap)
    assert ye.dtype == ember.int64 and ye.tolist() == yt.tolist()


def test_fill_diagonal_errors_and_grad():
    for L in (ember, torch):
        with pytest.raises(RuntimeError, match="dimensions"):
            L.zeros(3).fill_diagonal_(1.0)
        with pytest.raises(RuntimeError, match="equal length"):
            L.zeros(2, 3, 3).fill_diagonal_(1.0)
    xe, xt = _pair((3, 3), 13)
    ye, yt = (xe * 1).fill_diagonal_(0.0), (xt * 1).fill_diagonal_(0.0)
    ye.pow(2).sum().backward()
    yt.pow(2).sum().backward()
    _close(xe.grad, xt.grad)


@pytest.mark.parametrize("conv", [int, float, complex])
def test_scalar_conversion_of_many_elements_raises_value_error(conv):
    for L in (ember, torch):
        with pytest.raises(ValueError, match="only one element tensors"):
            conv(L.tensor([1.0, 2.0]))
        assert conv(L.tensor([[2.0]])) == conv(2.0)


def test_fill_with_non_scalar_tensor_raises():
    for L in (ember, torch):
        with pytest.raises(RuntimeError, match="0-dimension value tensor"):
            L.zeros(2, 3).fill_(L.tensor([2.0]))
        assert L.zeros(2).fill_(L.tensor(2.0)).tolist() == [2.0, 2.0]


def _res(v):
    if isinstance(v, (torch.Tensor, ember.Tensor)):
        return ("T", str(v.dtype).split(".")[-1], tuple(v.shape), v.detach().numpy().tolist())
    if isinstance(v, np.ndarray):
        return ("np", str(v.dtype), v.tolist())
    if isinstance(v, (tuple, list)):
        return [_res(a) for a in v]
    return (type(v).__name__, v)


def _outcome(lib, fn):
    try:
        return _res(fn(lib))
    except Exception as e:  # noqa: BLE001  (the kind of error is what is compared)
        return ("ERR", type(e).__name__)


_X = [[1.5, -2.0, 3.0], [0.5, 4.0, -1.0]]
_XI = [3, 1, 2, 1, 3, 3]
# (the methods checked against PyTorch: values, dtypes and the kind of error)
_METHODS = {
    "new_zeros": lambda L: L.tensor(_X).new_zeros((2, 3)),
    "new_ones_dtype": lambda L: L.tensor(_X).new_ones(2, dtype=L.int32),
    "new_full_int": lambda L: L.tensor(_XI).new_full((2,), 2.5),
    "new_empty": lambda L: tuple(L.tensor(_X).new_empty((2, 3)).shape),
    "new_tensor": lambda L: L.tensor(_XI).new_tensor([1.5, 2]),
    "type_as": lambda L: L.tensor(_XI).type_as(L.tensor(_X)),
    "expand_as": lambda L: L.tensor(_X)[:1].expand_as(L.tensor(_X)),
    "masked_fill_int": lambda L: L.tensor(_XI).masked_fill(L.tensor(_XI) > 1, 2.7),
    "index_select": lambda L: L.tensor(_X).index_select(-1, L.tensor([2, 0, 2])),
    "gather": lambda L: L.tensor(_X).gather(1, L.tensor([[0, 0], [1, 2]])),
    "scatter_": lambda L: L.tensor(_X).scatter_(1, L.tensor([[0], [2]]), 5.0),
    "scatter_add_": lambda L: L.tensor(_X).scatter_add_(
        1, L.tensor([[0, 0], [2, 1]]), L.tensor([[1.0, 2.0], [3.0, 4.0]])
    ),
    "index_add_": lambda L: L.tensor(_X).index_add_(
        0, L.tensor([1]), L.tensor([[1.0, 2.0, 3.0]]), alpha=2
    ),
    "clamp_int_float": lambda L: L.tensor(_XI).clamp(max=2.5),
    "addcmul_": lambda L: L.tensor(_X).addcmul_(L.tensor(_X), L.tensor(_X), value=0.5),
    "lerp_": lambda L: L.tensor(_X).lerp_(L.tensor(_X) * 0, 0.25),
    "copy_int": lambda L: L.tensor(_XI).copy_(L.tensor([1.7] * 6)),
    "chunk": lambda L: L.arange(6).chunk(4),
    "split_list": lambda L: L.arange(6).split([1, 2, 3]),
    "tensor_split": lambda L: L.arange(7).tensor_split([1, 5]),
    "nan_to_num": lambda L: L.tensor([float("nan"), float("inf"), -float("inf")]).nan_to_num(),
    "diff_prepend": lambda L: L.tensor(_X).diff(dim=0, prepend=L.tensor(_X)[:1]),
    "diff_bool": lambda L: L.tensor([True, False, False]).diff(),
    "cumsum_dtype": lambda L: L.tensor(_XI).cumsum(0, dtype=L.float64),
    "cumsum_bool": lambda L: L.tensor([True, True, False]).cumsum(0),
    "topk_unsorted": lambda L: sorted(
        L.tensor([3.0, 1, 4, 1, 5, 9]).topk(3, sorted=False)[0].tolist()
    ),
    "sort_stable": lambda L: L.tensor([2, 1, 2, 1, 0, 1]).sort(stable=True, descending=True),
    "unique": lambda L: L.tensor(_XI).unique(return_inverse=True, return_counts=True),
    "bincount_w": lambda L: L.tensor(_XI).bincount(weights=L.tensor([0.5] * 6), minlength=6),
    "bincount_wint": lambda L: L.tensor(_XI).bincount(weights=L.tensor([1, 2, 3, 4, 5, 6])),
    "item_1el": lambda L: L.tensor([[2.5]]).item(),
    "item_many": lambda L: L.tensor([1.0, 2.0]).item(),
    "tolist_bool": lambda L: L.tensor([[True, False]]).tolist(),
    "tolist_int": lambda L: [type(v).__name__ for v in L.tensor(_XI).tolist()],
    "numpy_requires_grad": lambda L: L.tensor(_X, requires_grad=True).numpy(),
    "numpy_force": lambda L: L.tensor(_X, requires_grad=True).numpy(force=True),
    "bool_2el": lambda L: bool(L.tensor([1.0, 2.0])),
    "len_0d": lambda L: len(L.tensor(3.0)),
    "iter_0d": lambda L: list(L.tensor(3.0)),
    "index_float": lambda L: [1, 2, 3][L.tensor(1.0)],
}


@pytest.mark.parametrize("name", sorted(_METHODS))
def test_tensor_method_matches_torch(name):
    fn = _METHODS[name]
    assert _outcome(ember, fn) == _outcome(torch, fn)
