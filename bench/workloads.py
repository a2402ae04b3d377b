"""The reference workloads, written once against the PyTorch API.

``build(lib, name)`` takes the framework module (``torch`` or ``ember``) and returns
``(model, optimizer, make_batch, loss_fn)``: the same source trains in both frameworks,
which is also a check that Ember ports PyTorch code by renaming the import.

``gpt`` runs attention through the fused ``F.scaled_dot_product_attention``; ``gpt_written``
is the same model written as nanoGPT-style code is: scores ``q @ k.transpose(-2, -1) * scale``
plus an additive causal mask, ``softmax``, ``@ v``, and the exact (erf) ``F.gelu``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

# name -> (batch size, description); sizes follow the issue text
SPECS = {
    "mlp": {"batch": 128},
    "lenet": {"batch": 64},
    "resnet": {"batch": 32},
    "lstm": {"batch": 32, "seq": 64, "vocab": 96},
    "gpt": {"batch": 16, "seq": 128, "vocab": 256, "d": 256, "layers": 4, "heads": 4},
    "gpt_written": {"batch": 16, "seq": 128, "vocab": 256, "d": 256, "layers": 4, "heads": 4},
}


def _models(lib):
    nn = lib.nn
    F = lib.nn.functional

    class MLP(nn.Module):
        def __init__(self, dropout=0.2):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.relu = nn.ReLU()
            self.dropout = nn.Dropout(dropout)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            return self.fc2(self.dropout(self.relu(self.fc1(x))))

    def lenet():
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self, widths=(16, 32, 64), num_classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(widths[0])
            layers, cin = [], widths[0]
            for i, w in enumerate(widths):
                stride = 1 if i == 0 else 2
                layers += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
                cin = w
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layers(x)
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.fc(x)

    class CharLSTM(nn.Module):
        def __init__(self, vocab=96, emb=64, hidden=256):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb)
            self.lstm = nn.LSTM(emb, hidden, batch_first=True)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, idx):
            h, _ = self.lstm(self.emb(idx))
            return self.head(h)

    class Block(nn.Module):
        def __init__(self, d, heads, seq, written=False):
            super().__init__()
            self.heads = heads
            self.written = written
            if written:
                # additive causal mask: 0 on and below the diagonal, -inf above
                mask = np.triu(np.full((seq, seq), -np.inf, np.float32), 1)
                self.register_buffer("mask", lib.from_numpy(mask), persistent=False)
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.fc = nn.Linear(d, 4 * d)
            self.out = nn.Linear(4 * d, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q = q.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            k = k.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            v = v.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            if self.written:
                att = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(k.shape[-1])) + self.mask[:t, :t]
                y = F.softmax(att, dim=-1) @ v
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self, vocab=256, d=256, layers=4, heads=4, seq=128, written=False):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(seq, d)
            self.blocks = nn.ModuleList([Block(d, heads, seq, written) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(t))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    return MLP, lenet, ResNet, CharLSTM, GPT


def build(
    lib: Any, name: str, small: bool = False, dropout: float = 0.0, seed: int = 0
) -> tuple[Any, Any, Callable[[], tuple[np.ndarray, np.ndarray]], Callable]:
    """Model, optimizer, batch maker and loss function for workload ``name`` in ``lib``.

    ``small=True`` shrinks the sizes for the fast test suite. Batches are NumPy arrays
    drawn from a seeded generator, so both frameworks see identical data.

    Example:
        >>> import ember
        >>> model, opt, make_batch, loss_fn = build(ember, "gpt_written", small=True)
        >>> x, y = make_batch()
        >>> x.shape, y.shape
        ((4, 32), (4, 32))
    """
    if name not in SPECS:
        raise ValueError(f"unknown workload {name!r}; expected one of {sorted(SPECS)}")
    MLP, lenet, ResNet, CharLSTM, GPT = _models(lib)
    F = lib.nn.functional
    lib.manual_seed(seed)
    spec = dict(SPECS[name])
    if small:
        spec["batch"] = max(4, spec["batch"] // 8)
    rng = np.random.default_rng(seed)
    b = spec["batch"]
    if name == "mlp":
        model = MLP(dropout)
        opt = lib.optim.Adam(model.parameters(), lr=1e-3)

        def batch():
            return (
                rng.standard_normal((b, 784)).astype(np.float32),
                rng.integers(0, 10, b).astype(np.int64),
            )
    elif name == "lenet":
        model = lenet()
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def batch():
            return (
                rng.standard_normal((b, 1, 28, 28)).astype(np.float32),
                rng.integers(0, 10, b).astype(np.int64),
            )
    elif name == "resnet":
        model = ResNet((8, 16, 32) if small else (16, 32, 64))
        # NOTE: at lr=0.05 this BatchNorm ResNet on random data is chaotic: PyTorch against
        # itself with weights perturbed by 1e-7 drifts to rel 1e-2 in the loss by step 10, so
        # no implementation could hold rel 1e-4 over 50 steps. At 5e-4 PyTorch's own
        # perturbation envelope stays under 1e-4, which makes the parity check meaningful.
        opt = lib.optim.SGD(model.parameters(), lr=5e-4, momentum=0.9)
        hw = 16 if small else 32

        def batch():
            return (
                rng.standard_normal((b, 3, hw, hw)).astype(np.float32),
                rng.integers(0, 10, b).astype(np.int64),
            )
    elif name == "lstm":
        hidden = 64 if small else 256
        seq = 16 if small else spec["seq"]
        model = CharLSTM(spec["vocab"], 64, hidden)
        opt = lib.optim.Adam(model.parameters(), lr=2e-3)

        def batch():
            x = rng.integers(0, spec["vocab"], (b, seq + 1)).astype(np.int64)
            return x[:, :-1].copy(), x[:, 1:].copy()
    elif name in ("gpt", "gpt_written"):
        d = 64 if small else spec["d"]
        seq = 32 if small else spec["seq"]
        layers = 2 if small else spec["layers"]
        model = GPT(spec["vocab"], d, layers, spec["heads"], seq, written=name == "gpt_written")
        opt = lib.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

        def batch():
            x = rng.integers(0, spec["vocab"], (b, seq + 1)).astype(np.int64)
            return x[:, :-1].copy(), x[:, 1:].copy()

    def loss_fn(out, y):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    return model, opt, batch, loss_fn


def train_steps(lib: Any, model: Any, opt: Any, loss_fn: Callable, batches: list) -> list[float]:
    """Run one optimizer step per batch; returns the list of losses (floats)."""
    losses = []
    model.train()
    for x, y in batches:
        xt, yt = lib.from_numpy(x), lib.from_numpy(y)
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


def copy_weights(src_model: Any, dst_model: Any, dst_lib: Any) -> None:
    """Copy a torch model's parameters and buffers into an ember model by name."""
    sd = {k: dst_lib.tensor(v.detach().cpu().numpy()) for k, v in src_model.state_dict().items()}
    dst_model.load_state_dict(sd)
