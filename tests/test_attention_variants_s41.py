"""Attention written out the ways real models write it (nanoGPT, llama, BERT-style padding
masks, ``scaled_dot_product_attention``), eager and under ``ember.compile``, against PyTorch
on outputs and on the gradients of the inputs and weights.

Each block is written once against a namespace ``T`` (``torch`` or ``ember``), so the Ember
code is the PyTorch code a user would port.

Fixed here: ``att = scores / c; att += mask`` then backward raised "modified by an inplace
operation" (``div`` saved its output; it now saves its inputs, as PyTorch's DivBackward), and
``ember.finfo`` / ``ember.iinfo`` (Hugging Face masks are ``(1 - mask) * finfo(dtype).min``)
did not exist.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ember

RTOL, ATOL = 1e-5, 1e-6
NEG_INF = float("-inf")


def _np(t):
    if isinstance(t, np.ndarray):
        return t
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def _close(a, b, msg="", rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol, err_msg=msg)


def _pair(arrays, dtype="float32", grad=True):
    """The same arrays as PyTorch and Ember leaves."""
    t = [torch.tensor(a.astype(dtype)).requires_grad_(grad) for a in arrays]
    e = [ember.tensor(a.astype(dtype)).requires_grad_(grad) for a in arrays]
    return t, e


def _rand(seed, *shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) * scale for s in shapes]


def _check(fn, arrays, dtype="float32", consts=(), rtol=RTOL, atol=ATOL, compiled=True):
    """``fn(T, *tensors, *consts)`` in PyTorch, eager Ember and compiled Ember: outputs and
    the gradients of ``sum(out * w)`` with respect to every tensor argument."""
    w = np.random.default_rng(99)
    tin, ein = _pair(arrays, dtype)
    tout = fn(torch, *tin, *[c[0] for c in consts])
    tw = torch.tensor(w.standard_normal(tuple(tout.shape)).astype(tout.numpy(force=True).dtype))
    (tout * tw).sum().backward()
    runs = [("eager", lambda *a: fn(ember, *a))]
    if compiled:
        runs.append(("compiled", ember.compile(lambda *a: fn(ember, *a))))
    for how, f in runs:
        for _ in range(2 if how == "compiled" else 1):  # trace, then the cached graph
            _, ein = _pair(arrays, dtype)
            eout = f(*ein, *[c[1] for c in consts])
            assert eout.dtype.name == str(tout.dtype).split(".")[1], (how, eout.dtype, tout.dtype)
            _close(eout, tout, f"{how} output", rtol, atol)
            (eout * ember.tensor(tw.numpy())).sum().backward()
            for i, (a, b) in enumerate(zip(ein, tin)):
                _close(a.grad, b.grad, f"{how} grad {i}", rtol, atol)


# -- the written-out forms -------------------------------------------------------------------


def _split(T, x, w, b, H):
    """(B, L, C) @ w (3C, C) -> q, k, v of shape (B, H, L, C // H), nanoGPT's c_attn."""
    B, L, C = x.shape
    qkv = T.nn.functional.linear(x, w, b)
    q, k, v = qkv.split(C, dim=2)
    q = q.view(B, L, H, C // H).transpose(1, 2)
    k = k.view(B, L, H, C // H).transpose(1, 2)
    v = v.view(B, L, H, C // H).transpose(1, 2)
    return q, k, v


def _merge(y):
    B, H, L, D = y.shape
    return y.transpose(1, 2).contiguous().view(B, L, H * D)


def _nanogpt_class(T):
    nn, F = T.nn, T.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, n_embd, n_head, block_size, dropout=0.0):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)
            self.attn_dropout = nn.Dropout(dropout)
            self.n_head, self.n_embd = n_head, n_embd
            tril = T.tril(T.ones(block_size, block_size))
            self.register_buffer("bias", tril.view(1, 1, block_size, block_size))

        def forward(self, x):
            B, T_, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T_, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T_, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T_, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T_, :T_] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T_, C)
            return self.c_proj(y)

    return CausalSelfAttention


def _pair_modules(n_embd=24, n_head=3, block=16, dropout=0.0, dtype="float32"):
    tm = _nanogpt_class(torch)(n_embd, n_head, block, dropout)
    em = _nanogpt_class(ember)(n_embd, n_head, block, dropout)
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    em.load_state_dict({k: ember.tensor(v) for k, v in sd.items()})
    if dtype == "float64":
        tm, em = tm.double(), em.double()
    return tm, em


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("T_", [7, 13])
def test_nanogpt_module_eager_and_compiled(dtype, T_):
    tm, em = _pair_modules(dtype=dtype)
    (x,) = _rand(1, (2, T_, 24))
    tx = torch.tensor(x.astype(dtype), requires_grad=True)
    ty = tm(tx)
    tw = torch.tensor(np.random.default_rng(3).standard_normal(ty.shape).astype(dtype))
    (ty * tw).sum().backward()
    for how, f in (("eager", em), ("compiled", ember.compile(em))):
        em.zero_grad()
        ex = ember.tensor(x.astype(dtype), requires_grad=True)
        ey = f(ex)
        _close(ey, ty, how)
        (ey * ember.tensor(tw.numpy())).sum().backward()
        _close(ex.grad, tx.grad, f"{how} dx")
        for (n, p), (_, q) in zip(em.named_parameters(), tm.named_parameters()):
            _close(p.grad, q.grad, f"{how} d{n}")


def test_nanogpt_dropout_eager_equals_compiled_with_seed():
    _, em = _pair_modules(dropout=0.25)
    (x,) = _rand(2, (2, 11, 24))
    outs, grads = [], []
    for f in (em, ember.compile(em)):
        em.train()
        em.zero_grad()
        ember.manual_seed(123)
        ex = ember.tensor(x.astype("float32"), requires_grad=True)
        y = f(ex)
        y.square().sum().backward()
        outs.append(y)
        grads.append([ex.grad] + [p.grad for p in em.parameters()])
    _close(outs[1], outs[0], "dropout output")
    for a, b in zip(grads[1], grads[0]):
        _close(a, b, "dropout grad")
    # dropout really dropped something: differs from the p=0 result
    em.eval()
    assert not np.allclose(_np(em(ember.tensor(x.astype("float32")))), _np(outs[0]))


def test_nanogpt_compiled_training_step():
    """Three compiled AdamW steps: the losses are PyTorch's, the parameters eager Ember's
    (the same kernels: tight), and PyTorch's within Adam's noise (an element whose gradient
    is a few ulps of rounding is scaled by Adam to an lr-sized step in either framework, and
    PyTorch's own rounding of it varies between runs)."""
    tm, em = _pair_modules()
    em2 = _nanogpt_class(ember)(24, 3, 16, 0.0)
    em2.load_state_dict(em.state_dict())
    topt = torch.optim.AdamW(tm.parameters(), lr=1e-2)
    eopt = ember.optim.AdamW(em.parameters(), lr=1e-2)
    eopt2 = ember.optim.AdamW(em2.parameters(), lr=1e-2)

    def step(T, m, opt, x, y):
        opt.zero_grad()
        loss = T.nn.functional.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        return loss

    estep = ember.compile(lambda x, y: step(ember, em, eopt, x, y))
    for i in range(3):
        x, y = _rand(10 + i, (2, 9, 24), (2, 9, 24))
        tl = step(torch, tm, topt, torch.tensor(x, dtype=torch.float32), torch.tensor(y).float())
        ex, ey = ember.tensor(x.astype("float32")), ember.tensor(y.astype("float32"))
        el = estep(ex, ey)
        _close(el, tl, f"loss {i}", rtol=1e-5, atol=1e-6)
        _close(el, step(ember, em2, eopt2, ex, ey), f"eager loss {i}", rtol=1e-6, atol=1e-7)
    for (n, p), (_, q), (_, r) in zip(
        em.named_parameters(), tm.named_parameters(), em2.named_parameters()
    ):
        p, q, r = _np(p), _np(q), _np(r)
        _close(p, r, f"param {n} vs eager", rtol=1e-5, atol=1e-6)
        if n == "c_attn.bias":  # the key bias's gradient is 0 up to rounding (softmax is
            # shift-invariant per row), and Adam scales that rounding noise to lr-sized steps
            p, q = np.delete(p, np.s_[24:48]), np.delete(q, np.s_[24:48])
        _close(p, q, f"param {n}", rtol=1e-4, atol=1e-4)


# -- scale, masks and softmax spellings ------------------------------------------------------


def _qkv_case(seed=0, B=2, H=3, L=9, S=None, D=8):
    S = L if S is None else S
    return _rand(seed, (B, H, L, D), (B, H, S, D), (B, H, S, D))


def _div_sqrt(T, q, k, v):
    att = T.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    return T.softmax(att, dim=-1) @ v


def _div_sqrt_16(T, q, k, v):  # / 4.0 exactly: fused as a multiply by 0.25
    att = q @ k.transpose(-2, -1) / math.sqrt(16)
    return T.nn.functional.softmax(att, -1) @ v


def _baddbmm(T, q, k, v):
    B, H, L, D = q.shape
    S = k.shape[2]
    q3, k3, v3 = q.reshape(B * H, L, D), k.reshape(B * H, S, D), v.reshape(B * H, S, D)
    bias = T.zeros(B * H, L, S, dtype=q.dtype)
    att = T.baddbmm(bias, q3, k3.transpose(1, 2), beta=0.0, alpha=1.0 / math.sqrt(D))
    return T.bmm(att.softmax(-1), v3).view(B, H, L, D)


def _float_mask(value, shape):
    def fn(T, q, k, v):
        L, S = q.shape[2], k.shape[2]
        if shape == "causal":
            m = T.triu(T.full((L, S), value, dtype=q.dtype), diagonal=1)[None, None]
        else:  # (B, 1, 1, S) padding: the last 3 keys of batch 1 hidden
            m = T.zeros(q.shape[0], 1, 1, S, dtype=q.dtype)
            m[1, :, :, S - 3 :] = value
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        return T.softmax(scores + m, dim=-1) @ v

    return fn


def _bool_masked_fill(T, q, k, v):
    L, S = q.shape[2], k.shape[2]
    mask = T.ones(L, S, dtype=T.bool).tril()
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    att = att.masked_fill(~mask, float("-inf"))
    return T.nn.functional.softmax(att, dim=-1) @ v


def _where_mask(T, q, k, v):
    B, S = q.shape[0], k.shape[2]
    keep = T.arange(S)[None, None, None, :] < T.tensor([S, S - 4]).view(B, 1, 1, 1)
    att = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    att = T.where(keep, att, float("-inf"))
    return att.softmax(-1) @ v


def _softmax_float_type_as(T, q, k, v):
    att = T.matmul(q, k.transpose(2, 3)) / math.sqrt(q.shape[-1])
    att = T.nn.functional.softmax(att.float(), dim=-1).type_as(q)
    return T.matmul(att, v)


def _softmax_dtype_f32(T, q, k):  # a float64 input, softmax computed and returned in fp32
    att = T.matmul(q, k.transpose(2, 3)) * 0.3
    return T.nn.functional.softmax(att, dim=-1, dtype=T.float32)


def _inplace_div_add(T, q, k, v):  # was: RuntimeError from the in-place add after a division
    L, S = q.shape[2], k.shape[2]
    att = q @ k.transpose(-2, -1) / 3.0
    att += T.triu(T.full((L, S), float("-inf"), dtype=q.dtype), 1)
    return att.softmax(dim=3) @ v


def _inplace_mul_fill(T, q, k, v):
    L, S = q.shape[2], k.shape[2]
    att = q @ k.transpose(-2, -1)
    att *= 1.0 / math.sqrt(q.shape[-1])
    att.masked_fill_(~T.ones(L, S, dtype=T.bool).tril(), float("-inf"))
    return att.softmax(-1) @ v


def _hf_extended_mask(T, q, k, v):  # BERT: (1 - attention_mask) * finfo(dtype).min
    S = k.shape[2]
    pad = T.tensor([[1.0] * S, [1.0] * (S - 3) + [0.0] * 3], dtype=q.dtype)
    ext = (1.0 - pad[:, None, None, :]) * T.finfo(q.dtype).min
    return T.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + ext, -1) @ v


def _hf_masked_fill_min(T, q, k, v):
    B, H, L, _ = q.shape
    S = k.shape[2]
    pad = T.tensor([[1] * S, [1] * (S - 3) + [0] * 3]).bool()
    att = (q @ k.transpose(-2, -1)) * 0.35
    att = att.masked_fill(pad[:, None, None, :].expand(B, H, L, S) == 0, T.finfo(att.dtype).min)
    return att.softmax(-1) @ v


def _scale_after_mask(T, q, k, v):
    L, S = q.shape[2], k.shape[2]
    m = T.triu(T.full((L, S), -1e4, dtype=q.dtype), 1)
    return ((q @ k.transpose(-2, -1) + m) * 0.3).softmax(-1) @ v


def _query_prescaled(T, q, k, v):
    q = q * q.shape[-1] ** -0.5
    return (q @ k.mT).softmax(-1) @ v


CASES = {
    "inplace_div_add": _inplace_div_add,
    "inplace_mul_fill": _inplace_mul_fill,
    "hf_extended_mask": _hf_extended_mask,
    "hf_masked_fill_min": _hf_masked_fill_min,
    "scale_after_mask": _scale_after_mask,
    "query_prescaled": _query_prescaled,
    "div_sqrt": _div_sqrt,
    "div_sqrt_16": _div_sqrt_16,
    "baddbmm": _baddbmm,
    "causal_-1e9": _float_mask(-1e9, "causal"),
    "causal_-inf": _float_mask(NEG_INF, "causal"),
    "padding_-1e9": _float_mask(-1e9, "padding"),
    "padding_-inf": _float_mask(NEG_INF, "padding"),
    "bool_masked_fill": _bool_masked_fill,
    "where_mask": _where_mask,
    "softmax_float_type_as": _softmax_float_type_as,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_written_out_float32(name):
    D = 16 if name == "div_sqrt_16" else 8
    _check(CASES[name], _qkv_case(D=D, L=9, S=11 if name == "padding_-1e9" else None))


@pytest.mark.parametrize("name", ["causal_-inf", "padding_-1e9", "where_mask", "baddbmm"])
def test_written_out_float64(name):
    _check(CASES[name], _qkv_case(seed=4, H=2, L=13, D=12), dtype="float64", rtol=1e-10, atol=1e-12)


def test_softmax_dtype_float32_on_float64_scores():
    _check(_softmax_dtype_f32, _qkv_case(seed=6, H=2, L=7)[:2], dtype="float64")


def _learned_bias(T, q, k, v, b):  # T5 / ALiBi-style additive bias that is a parameter
    return T.softmax(q @ k.transpose(-1, -2) * 0.125 + b, -1) @ v


@pytest.mark.parametrize("bias_shape", [(2, 7, 9), (7, 9)])
def test_learned_additive_bias_gets_its_gradient(bias_shape):
    _check(_learned_bias, _qkv_case(seed=3, H=2, L=7, S=9) + _rand(5, bias_shape))


def test_div_saves_inputs_not_output():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = ember.tensor([2.0, 5.0], requires_grad=True)
    tx, ty = (torch.tensor(_np(a), requires_grad=True) for a in (x, y))
    for X, Y in ((x, y), (tx, ty)):
        out = X / Y
        out += 1.0  # the quotient modified before the backward: fine in PyTorch
        (out * out).sum().backward()
    _close(x.grad, tx.grad)
    _close(y.grad, ty.grad)


def test_finfo_iinfo_like_torch():
    for name in ("float16", "bfloat16", "float32", "float64"):
        a, b = ember.finfo(getattr(ember, name)), torch.finfo(getattr(torch, name))
        for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(a, attr) == getattr(b, attr), (name, attr)
        assert a.dtype == b.dtype
    assert ember.finfo().min == torch.finfo().min
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        a, b = ember.iinfo(getattr(ember, name)), torch.iinfo(getattr(torch, name))
        assert (a.bits, a.min, a.max) == (b.bits, b.min, b.max), name
    with pytest.raises(TypeError, match="not a floating point"):
        ember.finfo(ember.int32)
    with pytest.raises(TypeError, match="not an integer"):
        ember.iinfo(ember.float32)


# -- a fully masked row ------------------------------------------------------------------------


def _all_masked_row(T, q, k, v):
    L, S = q.shape[2], k.shape[2]
    m = T.zeros(1, 1, L, S, dtype=q.dtype)
    m[..., 2, :] = float("-inf")  # query 2 sees nothing
    att = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))
    return T.softmax(att + m, dim=-1) @ v


def _all_masked_fill(T, q, k, v):
    L, S = q.shape[2], k.shape[2]
    keep = T.ones(L, S, dtype=T.bool)
    keep[3] = False
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return T.softmax(att.masked_fill(~keep, float("-inf")), dim=-1) @ v


@pytest.mark.parametrize("fn", [_all_masked_row, _all_masked_fill])
def test_fully_masked_row_is_nan_like_torch(fn):
    arrays = _qkv_case(seed=7, H=2, L=7)
    tin, _ = _pair(arrays)
    tout = fn(torch, *tin)
    tout.sum().backward()
    for how, f in (("eager", lambda *a: fn(ember, *a)), ("compiled", ember.compile(fn_e(fn)))):
        _, ein = _pair(arrays)
        eout = f(*ein)
        np.testing.assert_array_equal(np.isnan(_np(eout)), np.isnan(_np(tout)), how)
        _close(eout, tout, how)
        eout.sum().backward()
        for i, (a, b) in enumerate(zip(ein, tin)):
            np.testing.assert_array_equal(np.isnan(_np(a.grad)), np.isnan(_np(b.grad)), how)
            _close(a.grad, b.grad, f"{how} grad {i}")


def fn_e(fn):
    return lambda *a: fn(ember, *a)


# -- llama: GQA by repeat_interleave, rotary embeddings, a float causal mask ---------------------


def _rotate_half(T, x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return T.cat((-x2, x1), dim=-1)


def _llama_attention(T, x, wq, wk, wv, wo, cos, sin, n_heads=4, n_kv=2):
    B, L, C = x.shape
    hd = C // n_heads
    F = T.nn.functional
    q = F.linear(x, wq).view(B, L, n_heads, hd).transpose(1, 2)
    k = F.linear(x, wk).view(B, L, n_kv, hd).transpose(1, 2)
    v = F.linear(x, wv).view(B, L, n_kv, hd).transpose(1, 2)
    c, s = cos[:L][None, None], sin[:L][None, None]
    q = (q * c) + (_rotate_half(T, q) * s)
    k = (k * c) + (_rotate_half(T, k) * s)
    k = k.repeat_interleave(n_heads // n_kv, dim=1)
    v = T.repeat_interleave(v, n_heads // n_kv, dim=1)
    scores = T.matmul(q, k.transpose(2, 3)) / math.sqrt(hd)
    mask = T.full((L, L), float("-inf"), dtype=x.dtype).triu(1)
    scores = scores + mask
    scores = F.softmax(scores.float(), dim=-1).type_as(q)
    out = T.matmul(scores, v).transpose(1, 2).contiguous().view(B, L, -1)
    return F.linear(out, wo)


def _rope(L, hd, dtype):
    inv = 1.0 / (10000 ** (np.arange(0, hd, 2) / hd))
    freqs = np.outer(np.arange(L), inv)
    emb = np.concatenate([freqs, freqs], -1)
    c, s = np.cos(emb).astype(dtype), np.sin(emb).astype(dtype)
    return (torch.tensor(c), ember.tensor(c)), (torch.tensor(s), ember.tensor(s))


@pytest.mark.parametrize("dtype,L", [("float32", 11), ("float64", 5)])
def test_llama_gqa_rotary(dtype, L):
    C, kv = 32, 16  # 4 heads of 8, 2 kv heads
    arrays = _rand(8, (2, L, C), (C, C), (kv, C), (kv, C), (C, C), scale=0.3)
    # float64 too takes the softmax in float32 (``.float()`` ... ``.type_as(q)``): fp32 tolerances
    _check(_llama_attention, arrays, dtype, consts=_rope(16, 8, dtype))


def test_llama_compiled_training_step():
    C, kv, L = 32, 16, 9
    ws = _rand(9, (C, C), (kv, C), (kv, C), (C, C), scale=0.3)
    (tc, ec), (ts, es) = _rope(16, 8, "float32")
    tw, ew = _pair(ws)
    topt, eopt = (
        torch.optim.SGD(tw, lr=0.1, momentum=0.9),
        ember.optim.SGD(ew, lr=0.1, momentum=0.9),
    )

    def step(T, ws, opt, x, cos, sin):
        opt.zero_grad()
        loss = _llama_attention(T, x, *ws, cos, sin).square().mean()
        loss.backward()
        opt.step()
        return loss

    estep = ember.compile(lambda x: step(ember, ew, eopt, x, ec, es))
    for i in range(3):
        (x,) = _rand(20 + i, (2, L, C))
        tl = step(torch, tw, topt, torch.tensor(x.astype("float32")), tc, ts)
        el = estep(ember.tensor(x.astype("float32")))
        _close(el, tl, f"loss {i}")
    for a, b in zip(ew, tw):
        _close(a, b, "weights", rtol=1e-5, atol=1e-6)


# -- F.scaled_dot_product_attention against the written-out form ------------------------------


def _sdpa(kind):
    def fn(T, q, k, v):
        F = T.nn.functional
        L, S = q.shape[2], k.shape[2]
        if kind == "causal":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.0)
        if kind == "plain":
            return F.scaled_dot_product_attention(q, k, v)
        if kind == "bool":
            m = T.ones(L, S, dtype=T.bool).tril(diagonal=S - L)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=False)
        m = T.zeros(q.shape[0], 1, 1, S, dtype=q.dtype)  # float padding mask
        m[0, ..., :2] = -1e9
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=0.0)

    return fn


@pytest.mark.parametrize("kind", ["causal", "plain", "bool", "float"])
def test_sdpa_against_torch_and_written_out(kind):
    arrays = _qkv_case(seed=11, H=2, L=9, S=9 if kind == "causal" else 13, D=16)
    _check(_sdpa(kind), arrays)
    if kind == "causal":  # the same as the nanoGPT spelling
        _, ein = _pair(arrays, grad=False)
        _close(_sdpa(kind)(ember, *ein), _bool_masked_fill(ember, *ein))
