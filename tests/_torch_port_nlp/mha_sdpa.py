"""nn.MultiheadAttention called directly (self- and cross-attention with per-head weights,
a boolean key padding mask and a float attention mask) and F.scaled_dot_product_attention
in a hand-written causal self-attention block (the nanoGPT layout)."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head = n_head
        self.n_embd = n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


def _t(a, requires_grad=False):
    return torch.tensor(a, dtype=torch.float32, requires_grad=requires_grad)


def run():
    rng = np.random.default_rng(5)
    E, H, B, L, S = 8, 2, 2, 4, 5
    results = {}

    mha = nn.MultiheadAttention(E, H, batch_first=True)
    with torch.no_grad():
        for p in mha.parameters():
            p.copy_(_t(rng.normal(0, 0.3, tuple(p.shape))))
    x = _t(rng.normal(size=(B, L, E)), requires_grad=True)
    mem = _t(rng.normal(size=(B, S, E)))
    key_padding_mask = torch.tensor([[False] * S, [False, False, False, True, True]])
    attn_mask = torch.zeros(L, S)
    attn_mask[0, 1] = float("-inf")
    attn_mask[2] = -0.5

    out, w = mha(
        x,
        mem,
        mem,
        key_padding_mask=key_padding_mask,
        need_weights=True,
        attn_mask=attn_mask,
        average_attn_weights=False,
    )
    out.sum().backward()
    results["cross_out"] = out.detach().numpy()
    results["cross_w"] = w.detach().numpy()
    results["cross_w_shape"] = list(w.shape)
    results["x_grad"] = x.grad.numpy()
    results["in_proj_grad"] = mha.in_proj_weight.grad.numpy()

    # self-attention with averaged weights and a causal float mask
    causal = nn.Transformer.generate_square_subsequent_mask(L)
    out2, w2 = mha(x, x, x, attn_mask=causal, need_weights=True)
    results["self_out"] = out2.detach().numpy()
    results["self_w"] = w2.detach().numpy()
    # no weights requested
    out3, w3 = mha(x, x, x, need_weights=False, is_causal=True, attn_mask=causal)
    results["no_weights_is_none"] = int(w3 is None)
    results["self_out_is_causal"] = out3.detach().numpy()

    # sequence-first (the default) layout
    mha_sf = nn.MultiheadAttention(E, H, bias=False, kdim=6, vdim=3)
    with torch.no_grad():
        for p in mha_sf.parameters():
            p.copy_(_t(rng.normal(0, 0.3, tuple(p.shape))))
    q = _t(rng.normal(size=(L, B, E)))
    k = _t(rng.normal(size=(S, B, 6)))
    v = _t(rng.normal(size=(S, B, 3)))
    out4, w4 = mha_sf(q, k, v, key_padding_mask=key_padding_mask)
    results["seq_first_out"] = out4.detach().numpy()
    results["seq_first_w"] = w4.detach().numpy()

    # scaled_dot_product_attention
    block = CausalSelfAttention(E, H)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(_t(rng.normal(0, 0.3, tuple(p.shape))))
    y = block(x)
    loss = y.pow(2).mean()
    loss.backward()
    results["sdpa_out"] = y.detach().numpy()
    results["sdpa_grad"] = block.c_attn.weight.grad.numpy()

    qq = _t(rng.normal(size=(B, H, L, 4)), requires_grad=True)
    kk = _t(rng.normal(size=(B, H, S, 4)))
    vv = _t(rng.normal(size=(B, H, S, 4)))
    bool_mask = torch.ones(L, S, dtype=torch.bool).tril(diagonal=1)
    o = F.scaled_dot_product_attention(qq, kk, vv, attn_mask=bool_mask, scale=0.3)
    o.sum().backward()
    results["sdpa_bool_mask"] = o.detach().numpy()
    results["sdpa_q_grad"] = qq.grad.numpy()
    o2 = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True, dropout_p=0.0)
    results["sdpa_causal_rect"] = o2.detach().numpy()
    return results
