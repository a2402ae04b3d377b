"""The arguments Ember newly accepts to match PyTorch's signatures behave as in PyTorch.

``tests/test_torch_signatures.py`` checks the signatures; this file checks what the new
parameters (legacy loss flags, ``bias=`` of the norm layers, ``copy=``, ``requires_grad=``...)
and the new keyword-only markers do, against PyTorch.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return ember.tensor(a), torch.tensor(a)


def _close(e, t, tol=1e-5):
    np.testing.assert_allclose(e.detach().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


LEGACY = [
    ("soft_margin_loss", 2),
    ("hinge_embedding_loss", 2),
    ("multilabel_soft_margin_loss", 2),
    ("poisson_nll_loss", 2),
    ("cosine_embedding_loss", 3),
    ("margin_ranking_loss", 3),
    ("triplet_margin_loss", 3),
]


@pytest.mark.parametrize(("name", "arity"), LEGACY, ids=[n for n, _ in LEGACY])
@pytest.mark.parametrize(
    "flags", [{"size_average": False}, {"reduce": False}, {"size_average": True, "reduce": True}]
)
def test_legacy_loss_flags(name: str, arity: int, flags: dict) -> None:
    xs = [_pair(4, 3, seed=i) for i in range(arity)]
    if name in ("cosine_embedding_loss", "margin_ranking_loss"):
        sign = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
        target = (ember.tensor(sign), torch.tensor(sign))
        if name == "margin_ranking_loss":
            xs = [(e[:, 0], t[:, 0]) for e, t in xs]
        args = [*xs[:2], target]
    elif name == "triplet_margin_loss":
        args = xs
    else:
        sign = np.sign(np.random.default_rng(5).standard_normal((4, 3))).astype(np.float32)
        if name in ("multilabel_soft_margin_loss", "poisson_nll_loss"):
            sign = (sign > 0).astype(np.float32)
        args = [xs[0], (ember.tensor(sign), torch.tensor(sign))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that the flags are deprecated
        want = getattr(TF, name)(*[t for _, t in args], **flags)
    got = getattr(F, name)(*[e for e, _ in args], **flags)
    _close(got, want)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_weight(name: str, reduction: str) -> None:
    (x, tx), (y, ty), (w, tw) = _pair(3, 4), _pair(3, 4, seed=1), _pair(3, 4, seed=2)
    w, tw = w.abs(), tw.abs()
    want = getattr(TF, name)(tx, ty, reduction=reduction, weight=tw)
    _close(getattr(F, name)(x, y, reduction=reduction, weight=w), want)
    with pytest.raises(ValueError, match="weight"):
        getattr(F, name)(x, y, weight=w[0])


@pytest.mark.parametrize("cls", ["BatchNorm1d", "GroupNorm"])
def test_norm_bias_false(cls: str) -> None:
    args = (3,) if cls == "BatchNorm1d" else (1, 3)
    em, tm = getattr(ember.nn, cls)(*args, bias=False), getattr(torch.nn, cls)(*args, bias=False)
    assert em.bias is None and tm.bias is None
    assert sorted(n for n, _ in em.named_parameters()) == ["weight"]
    with ember.no_grad():
        em.weight.copy_(ember.tensor([0.5, 2.0, -1.0]))
    with torch.no_grad():
        tm.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
    x, tx = _pair(5, 3, 2)
    _close(em(x), tm(tx))


def test_norm_bias_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        ember.nn.GroupNorm(1, 3, 1e-5, True, None, None, False)


def test_hardtanh_legacy_bounds() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.Hardtanh(min_value=-0.5, max_value=0.25)
    em = ember.nn.Hardtanh(min_value=-0.5, max_value=0.25)
    x, tx = _pair(4, 3)
    _close(em(x), tm(tx))


def test_from_dlpack_copy() -> None:
    a = np.arange(3.0)
    view, copy = ember.from_dlpack(a), ember.from_dlpack(a, copy=True)
    a[0] = 7.0
    assert view.tolist()[0] == 7.0 and copy.tolist()[0] == 0.0


def test_requires_grad_on_factories() -> None:
    t = ember.randperm(4, dtype=ember.float32, requires_grad=True)
    assert (
        t.requires_grad == torch.randperm(4, dtype=torch.float32, requires_grad=True).requires_grad
    )
    n = ember.ones(2).new_tensor([1.0, 2.0], requires_grad=True)
    assert n.requires_grad and n.dtype == ember.float32 and n.tolist() == [1.0, 2.0]


def test_meshgrid_default_indexing_is_ij() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.meshgrid(torch.arange(2), torch.arange(3))
    got = ember.meshgrid(ember.arange(2), ember.arange(3))
    for g, w in zip(got, want):
        assert g.tolist() == w.tolist()


def test_addcmul_addcdiv_keywords() -> None:
    (x, tx), (a, ta), (b, tb) = _pair(3), _pair(3, seed=1), _pair(3, seed=2)
    b, tb = b.abs() + 1, tb.abs() + 1
    _close(
        x.addcmul(tensor1=a, tensor2=b, value=0.5), tx.addcmul(tensor1=ta, tensor2=tb, value=0.5)
    )
    _close(x.addcdiv(a, b, value=-2.0), tx.addcdiv(ta, tb, value=-2.0))
    with pytest.raises(TypeError):
        x.addcmul(a, b, 0.5)  # value is keyword-only, as in PyTorch


def test_uniform_bounds_by_keyword() -> None:
    t = ember.empty(1000).uniform_(to=-1.0, from_=-3.0)
    assert t.min().item() >= -3.0 and t.max().item() < -1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.full((2,), 1.0, m.float64),
        lambda m: m.arange(0, 3, 1, m.float64),
        lambda m: m.tensor([1.0], m.float64),
        lambda m: m.eye(2, 2, m.float64),
        lambda m: m.linspace(0, 1, 3, m.float64),
        lambda m: m.prod(m.ones(2), 0, False, m.float64),
    ],
    ids=["full", "arange", "tensor", "eye", "linspace", "prod"],
)
def test_dtype_is_keyword_only(call) -> None:
    with pytest.raises(TypeError):
        call(torch)
    with pytest.raises(TypeError):
        call(ember)


def test_repeat_interleave_output_size_keyword() -> None:
    x, tx = ember.tensor([1, 2]), torch.tensor([1, 2])
    got = x.repeat_interleave(ember.tensor([1, 2]), dim=0, output_size=3)
    assert got.tolist() == tx.repeat_interleave(torch.tensor([1, 2]), dim=0, output_size=3).tolist()


def test_renamed_parameters_by_keyword() -> None:
    (x, tx), (y, ty) = _pair(3), _pair(3, seed=1)
    _close(ember.dot(x, tensor=y), torch.dot(tx, tensor=ty))
    m, tm = _pair(2, 3)
    _close(ember.swapaxes(m, axis0=0, axis1=1), torch.swapaxes(tm, axis0=0, axis1=1))
    _close(m.swapaxes(axis0=1, axis1=0), tm.swapaxes(axis0=1, axis1=0))
    _close(ember.broadcast_to(x, size=(2, 3)), torch.broadcast_to(tx, size=(2, 3)))
    idx = np.array([0, 2, 1])
    got = F.one_hot(input=ember.tensor(idx), num_classes=4)
    assert got.tolist() == TF.one_hot(input=torch.tensor(idx), num_classes=4).tolist()


def test_nan_to_num_default_none() -> None:
    a = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    got = ember.nan_to_num(ember.tensor(a), nan=None)
    assert got.tolist() == torch.nan_to_num(torch.tensor(a), nan=None).tolist()


@pytest.mark.parametrize("name", ["std", "var"])
def test_std_var_unbiased_and_correction(name: str) -> None:
    x, tx = _pair(4, 5)
    for kw in ({}, {"unbiased": False}, {"correction": 0}, {"correction": 2}):
        args = (1,) if "unbiased" in kw else ()
        _close(getattr(ember, name)(x, *args, **kw), getattr(torch, name)(tx, *args, **kw))
    with pytest.raises(TypeError):
        getattr(ember, name)(x, 1, True, False, 0)  # correction is keyword-only


@pytest.mark.parametrize(
    "call",
    [
        lambda m, F_: F_.gelu(m.ones(2), "tanh"),
        lambda m, F_: m.cumsum(m.ones(2), 0, m.float64),
        lambda m, F_: m.mean(m.ones(2), 0, False, m.float64),
        lambda m, F_: m.zeros_like(m.ones(2), m.float64),
    ],
    ids=["gelu", "cumsum", "mean", "zeros_like"],
)
def test_more_keyword_only(call) -> None:
    with pytest.raises(TypeError):
        call(torch, TF)
    with pytest.raises(TypeError):
        call(ember, F)


class _Boom(Exception):
    pass


@pytest.mark.parametrize("lib", ["ember", "torch"])
def test_forward_hook_always_call(lib: str) -> None:
    nn = ember.nn if lib == "ember" else torch.nn

    class Fails(nn.Module):
        def forward(self, x):
            raise _Boom("forward failed")

    seen = []
    m = Fails()
    m.register_forward_hook(lambda mod, args, out: seen.append(("always", out)), always_call=True)
    m.register_forward_hook(lambda mod, args, out: seen.append(("plain", out)))
    with pytest.raises(_Boom):
        m(1.0)
    assert seen == [("always", None)]


def test_modules_remove_duplicate() -> None:
    e_lin, t_lin = ember.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    e, t = ember.nn.Sequential(e_lin, e_lin), torch.nn.Sequential(t_lin, t_lin)
    for flag in (True, False):
        assert len(list(e.modules(remove_duplicate=flag))) == len(
            list(t.modules(remove_duplicate=flag))
        )
