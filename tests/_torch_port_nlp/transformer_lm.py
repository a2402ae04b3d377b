"""A small Transformer language model (the PyTorch "language modeling with nn.Transformer"
tutorial's structure): pre-norm GELU encoder layers, causal mask, padding mask, sinusoidal
positional encoding buffer, tied input/output embeddings, AdamW with a warmup LambdaLR and
label smoothing."""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(1, max_len, d_model)
        pe[0, :, 0::2] = torch.sin(position * div_term)
        pe[0, :, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x):
        x = x + self.pe[:, : x.size(1)]
        return self.dropout(x)


class TransformerLM(nn.Module):
    def __init__(self, ntoken, d_model=16, nhead=4, d_hid=32, nlayers=2, dropout=0.0):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(ntoken, d_model)
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            d_hid,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer_encoder = nn.TransformerEncoder(
            layer, nlayers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Linear(d_model, ntoken, bias=False)
        self.head.weight = self.embedding.weight  # weight tying

    def forward(self, src, src_mask=None, padding_mask=None):
        x = self.embedding(src) * math.sqrt(self.d_model)
        x = self.pos_encoder(x)
        x = self.transformer_encoder(
            x, mask=src_mask, src_key_padding_mask=padding_mask, is_causal=src_mask is not None
        )
        return self.head(x)


def run():
    rng = np.random.default_rng(3)
    ntoken, pad = 11, 0
    model = TransformerLM(ntoken)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.from_numpy(rng.normal(0, 0.02, p.shape).astype(np.float32)))
            elif "norm" in name:
                p.copy_(torch.from_numpy(1 + rng.normal(0, 0.1, p.shape).astype(np.float32)))
            else:
                p.copy_(torch.from_numpy(rng.normal(0, 0.2, p.shape).astype(np.float32)))
    n_params = sum(p.numel() for p in model.parameters())
    buffers = [name for name, _ in model.named_buffers()]
    state_keys = sorted(model.state_dict().keys())

    tokens = rng.integers(1, ntoken, size=(3, 9))
    tokens[1, 6:] = pad
    tokens[2, 4:] = pad
    data = torch.from_numpy(tokens)
    inp, target = data[:, :-1], data[:, 1:]
    padding_mask = inp == pad
    seq_len = inp.size(1)
    causal = nn.Transformer.generate_square_subsequent_mask(seq_len)

    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = 3
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda=lambda step: min(1.0, (step + 1) / warmup)
    )
    criterion = nn.CrossEntropyLoss(ignore_index=pad, label_smoothing=0.1)
    model.train()
    losses, lrs = [], []
    for _step in range(5):
        optimizer.zero_grad(set_to_none=True)
        logits = model(inp, causal, padding_mask)
        loss = criterion(logits.reshape(-1, ntoken), target.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        lrs.append(scheduler.get_last_lr()[0])

    model.eval()
    with torch.no_grad():
        logits = model(inp, causal, padding_mask)
        probs = F.softmax(logits, dim=-1)
        # greedy continuation of the first sequence
        seq = data[:1, :3]
        for _ in range(4):
            mask = nn.Transformer.generate_square_subsequent_mask(seq.size(1))
            nxt = model(seq, mask)[:, -1].argmax(dim=-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    return {
        "n_params": n_params,
        "buffers": len(buffers),
        "pe_in_state": int(any("pe" in k for k in state_keys)),
        "tied": int(model.head.weight is model.embedding.weight),
        "causal": causal.numpy(),
        "losses": losses,
        "lrs": lrs,
        "probs_valid": probs[~padding_mask].numpy(),
        "generated": seq.numpy(),
        "emb": model.embedding.weight.detach().numpy().copy(),
    }
