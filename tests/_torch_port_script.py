"""A small PyTorch script (variable-length sequences through a DataLoader, packed into an
LSTM, fitted with L-BFGS, plus Jacobians and Hessians). ``tests/test_torch_port.py`` runs
it as written and with every ``torch`` renamed to ``ember``; the results must agree.
Weights come from NumPy, so both frameworks start from the same point."""

import numpy as np
import torch
import torch.nn as nn
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vjp
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader, TensorDataset, random_split


def _fill(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.3))


def run():
    rng = np.random.default_rng(0)
    lengths = [5, 2, 4, 3, 5, 1]
    seqs = [torch.tensor(rng.standard_normal((n, 3))) for n in lengths]
    padded = pad_sequence(seqs, batch_first=True)
    targets = torch.tensor(rng.standard_normal(len(lengths)))
    data = TensorDataset(padded, torch.tensor(lengths), targets)
    first, _ = random_split(data, [4, 2], generator=torch.Generator().manual_seed(0))
    x, n, y = next(iter(DataLoader(data, batch_size=6)))

    lstm = nn.LSTM(3, 4, batch_first=True, dtype=torch.float64)
    head = nn.Linear(4, 1, dtype=torch.float64)
    _fill(lstm, rng)
    _fill(head, rng)

    def predict():
        packed = pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
        out, (h, _) = lstm(packed)
        return pad_packed_sequence(out, batch_first=True)[0], head(h[-1]).squeeze(1)

    opt = torch.optim.LBFGS(
        list(lstm.parameters()) + list(head.parameters()),
        max_iter=6,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = ((predict()[1] - y) ** 2).mean()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(2)]
    seq_out, pred = predict()

    w = torch.tensor(rng.standard_normal(3))
    v = torch.tensor(rng.standard_normal(3))

    def f(w):
        return torch.tanh(w) * w.sum()

    def energy(w):
        return (torch.sin(w) ** 2).sum() * w[0]

    return {
        "split": len(first),
        "padded": padded,
        "unpacked": seq_out,
        "pred": pred,
        "losses": losses,
        "jacobian": jacobian(f, w),
        "vjp": vjp(f, w, v)[1],
        "jvp": jvp(f, w, v)[1],
        "hessian": hessian(energy, w),
        "hvp": hvp(energy, w, v)[1],
    }
