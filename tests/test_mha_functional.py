"""``F.multi_head_attention_forward`` against PyTorch 2.13: values of the output and the
attention weights, and float64 gradients of every tensor argument, for packed and separate
projections, bias_k/bias_v, add_zero_attn, bool and float masks (2-D and 3-D attention masks,
key padding masks), need_weights/average_attn_weights, static keys and values, unbatched
inputs; and the module routed through the same core."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as F

E_, H, L, S_, N = 6, 2, 4, 5, 3


def _rand(rng, *shape):
    return rng.standard_normal(shape)


def _args(case, rng):
    """(arrays: name -> ndarray that require grad, others: name -> value) for one case."""
    kdim = 6
    arrays = {
        "query": _rand(rng, L, N, E_),
        "key": _rand(rng, S_, N, kdim),
        "value": _rand(rng, S_, N, kdim),
        "out_proj_weight": _rand(rng, E_, E_) * 0.5,
        "out_proj_bias": _rand(rng, E_),
    }
    other = {"add_zero_attn": False, "dropout_p": 0.0}
    if case.get("separate"):
        arrays["q_proj_weight"] = _rand(rng, E_, E_) * 0.5
        arrays["k_proj_weight"] = _rand(rng, E_, kdim) * 0.5
        arrays["v_proj_weight"] = _rand(rng, E_, kdim) * 0.5
        other["use_separate_proj_weight"] = True
        other["in_proj_weight"] = None
    else:
        arrays["in_proj_weight"] = _rand(rng, 3 * E_, E_) * 0.5
    if case.get("in_bias", True):
        arrays["in_proj_bias"] = _rand(rng, 3 * E_)
    else:
        other["in_proj_bias"] = None
    src = S_
    if case.get("bias_kv"):
        arrays["bias_k"] = _rand(rng, 1, 1, E_)
        arrays["bias_v"] = _rand(rng, 1, 1, E_)  # (masks stay S wide: the bias column is added)
    else:
        other["bias_k"] = other["bias_v"] = None
    if case.get("zero_attn"):
        other["add_zero_attn"] = True
    if case.get("static"):
        arrays["static_k"] = _rand(rng, N * H, S_, E_ // H)
        arrays["static_v"] = _rand(rng, N * H, S_, E_ // H)
    mask = case.get("mask")
    if mask == "bool2d":
        m = rng.random((L, src)) < 0.3
        m[:, 0] = False  # every row keeps one key
        other["attn_mask"] = m
    elif mask == "float3d":
        arrays["attn_mask"] = _rand(rng, N * H, L, src)
    elif mask == "causal":
        other["attn_mask"] = np.triu(np.ones((L, src), bool), 1)
        other["is_causal"] = True
    if case.get("kpm") == "bool":
        k = rng.random((N, src)) < 0.3
        k[:, 0] = False
        other["key_padding_mask"] = k
    elif case.get("kpm") == "float":
        other["key_padding_mask"] = _rand(rng, N, src)
    for flag in ("need_weights", "average_attn_weights"):
        if flag in case:
            other[flag] = case[flag]
    return arrays, other


CASES = {
    "packed": {},
    "separate_no_in_bias": {"separate": True, "in_bias": False},
    "bias_kv_bool_mask": {"bias_kv": True, "mask": "bool2d", "kpm": "bool"},
    "zero_attn_float3d": {"zero_attn": True, "mask": "float3d", "kpm": "float"},
    "bias_kv_zero_attn": {"bias_kv": True, "zero_attn": True, "kpm": "bool"},
    "per_head_weights": {"average_attn_weights": False},
    "no_weights": {"need_weights": False, "mask": "bool2d"},
    "causal_hint": {"mask": "causal"},
    "static_kv": {"static": True, "zero_attn": True},
}


def _call(lib, arrays, other, unbatched=False):
    mk = torch.tensor if lib is torch else ember.tensor
    leaves = {k: mk(v, requires_grad=True) for k, v in arrays.items()}
    kw = {}
    for k, v in other.items():
        kw[k] = mk(v) if isinstance(v, np.ndarray) else v
    args = dict(leaves)
    if unbatched:
        for k in ("query", "key", "value"):
            args[k] = args[k][:, 0]
        if "key_padding_mask" in kw:
            kw["key_padding_mask"] = kw["key_padding_mask"][0]
    fn = TF.multi_head_attention_forward if lib is torch else F.multi_head_attention_forward
    q, k, v = args.pop("query"), args.pop("key"), args.pop("value")
    out, w = fn(
        q,
        k,
        v,
        E_,
        H,
        args.pop("in_proj_weight", kw.pop("in_proj_weight", None)),
        args.pop("in_proj_bias", kw.pop("in_proj_bias", None)),
        args.pop("bias_k", kw.pop("bias_k", None)),
        args.pop("bias_v", kw.pop("bias_v", None)),
        kw.pop("add_zero_attn"),
        kw.pop("dropout_p"),
        args.pop("out_proj_weight"),
        args.pop("out_proj_bias"),
        **args,
        **kw,
    )
    return leaves, out, w


def _np(t):
    return t.detach().numpy()


# unbatched inputs: every case but those whose masks or static keys carry the batch
RUNS = [(n, False) for n in sorted(CASES)] + [
    (n, True)
    for n in sorted(CASES)
    if CASES[n].get("mask") != "float3d" and not CASES[n].get("static")
]


@pytest.mark.parametrize("name,unbatched", RUNS)
def test_matches_torch(name, unbatched):
    arrays, other = _args(CASES[name], np.random.default_rng(0))
    tl, tout, tw = _call(torch, arrays, other, unbatched)
    el, eout, ew = _call(ember, arrays, other, unbatched)
    np.testing.assert_allclose(_np(eout), _np(tout), rtol=1e-7, atol=1e-9)
    assert (ew is None) == (tw is None)
    if tw is not None:
        np.testing.assert_allclose(_np(ew), _np(tw), rtol=1e-7, atol=1e-9)
    rng = np.random.default_rng(1)
    gout = rng.standard_normal(tuple(tout.shape))
    tloss = (tout * torch.tensor(gout)).sum()
    eloss = (eout * ember.tensor(gout)).sum()
    if tw is not None:
        gw = rng.standard_normal(tuple(tw.shape))
        tloss = tloss + (tw * torch.tensor(gw)).sum()
        eloss = eloss + (ew * ember.tensor(gw)).sum()
    tloss.backward()
    eloss.backward()
    for k in tl:
        tg, eg = tl[k].grad, el[k].grad
        if tg is None:
            assert eg is None or not np.any(_np(eg)), k
            continue
        np.testing.assert_allclose(_np(eg), _np(tg), rtol=1e-6, atol=1e-9, err_msg=k)


def test_module_matches_functional():
    ember.manual_seed(0)
    m = ember.nn.MultiheadAttention(E_, H, add_bias_kv=True, add_zero_attn=True)
    x = ember.randn(L, N, E_)
    out, w = m(x, x, x)
    fout, fw = F.multi_head_attention_forward(
        x,
        x,
        x,
        E_,
        H,
        m.in_proj_weight,
        m.in_proj_bias,
        m.bias_k,
        m.bias_v,
        True,
        0.0,
        m.out_proj.weight,
        m.out_proj.bias,
    )
    np.testing.assert_allclose(out.detach().numpy(), fout.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), fw.detach().numpy(), rtol=1e-6)


def test_errors():
    x = ember.randn(L, N, E_)
    w_in, w_out = ember.randn(3 * E_, E_), ember.randn(E_, E_)
    with pytest.raises(ValueError, match="embedding dimension"):
        F.multi_head_attention_forward(
            x, x, x, 8, H, w_in, None, None, None, False, 0.0, w_out, None
        )
    with pytest.raises(RuntimeError, match="is_causal"):
        F.multi_head_attention_forward(
            x, x, x, E_, H, w_in, None, None, None, False, 0.0, w_out, None, is_causal=True
        )
    with pytest.raises(ValueError, match="attn_mask"):
        F.multi_head_attention_forward(
            x,
            x,
            x,
            E_,
            H,
            w_in,
            None,
            None,
            None,
            False,
            0.0,
            w_out,
            None,
            attn_mask=ember.zeros(2, 2),
        )
    with pytest.raises(ValueError, match="in_proj_weight"):
        F.multi_head_attention_forward(
            x, x, x, E_, H, None, None, None, None, False, 0.0, w_out, None
        )
