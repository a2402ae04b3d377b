"""Character-level LSTM language model, as in the PyTorch word_language_model example:
truncated BPTT with the hidden state detached between batches, gradient clipping, Adam,
greedy sampling."""

import numpy as np
import torch
import torch.nn as nn

TEXT = "hello world, hello there. the quick brown fox jumps over the lazy dog. " * 2


class CharRNN(nn.Module):
    def __init__(self, vocab_size, embed_dim=8, hidden_size=16, num_layers=2, dropout=0.2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(
            embed_dim, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True
        )
        self.fc = nn.Linear(hidden_size, vocab_size)
        self.num_layers = num_layers
        self.hidden_size = hidden_size

    def forward(self, x, hidden=None):
        emb = self.embedding(x)
        out, hidden = self.lstm(emb, hidden)
        logits = self.fc(out)
        return logits, hidden

    def init_hidden(self, batch_size):
        weight = next(self.parameters())
        return (
            weight.new_zeros(self.num_layers, batch_size, self.hidden_size),
            weight.new_zeros(self.num_layers, batch_size, self.hidden_size),
        )


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).contiguous()


def run():
    rng = np.random.default_rng(1)
    chars = sorted(set(TEXT))
    stoi = {c: i for i, c in enumerate(chars)}
    itos = {i: c for c, i in stoi.items()}
    data = torch.tensor([stoi[c] for c in TEXT], dtype=torch.long)
    V = len(chars)

    model = CharRNN(V)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, p.shape).astype(np.float32)))
    model.eval()  # dropout between LSTM layers off, deterministic

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train = batchify(data, 4)
    bptt = 10
    hidden = model.init_hidden(4)
    losses = []
    grad_norms = []
    for _epoch in range(2):
        for i in range(0, train.size(1) - 1, bptt):
            seq_len = min(bptt, train.size(1) - 1 - i)
            x = train[:, i : i + seq_len]
            y = train[:, i + 1 : i + 1 + seq_len]
            hidden = repackage_hidden(hidden)
            optimizer.zero_grad()
            logits, hidden = model(x, hidden)
            loss = criterion(logits.view(-1, V), y.reshape(-1))
            loss.backward()
            total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            grad_norms.append(total.item())
            optimizer.step()
            losses.append(loss.item())

    # greedy generation
    model.eval()
    generated = [stoi["h"]]
    with torch.no_grad():
        h = None
        inp = torch.tensor([[stoi["h"]]])
        for _ in range(20):
            logits, h = model(inp, h)
            probs = torch.softmax(logits[:, -1, :], dim=-1)
            nxt = torch.argmax(probs, dim=-1)
            generated.append(int(nxt.item()))
            inp = nxt.unsqueeze(0)
        torch.manual_seed(0)
        sample = torch.multinomial(probs, num_samples=3, replacement=True)
    text = "".join(itos[i] for i in generated)

    with torch.no_grad():
        logits, _ = model(train[:, :20])
        eval_loss = criterion(logits.reshape(-1, V), train[:, 1:21].reshape(-1))
        ppl = torch.exp(eval_loss)
    return {
        "losses": losses,
        "grad_norms": grad_norms,
        "generated": generated,
        "text_len": len(text),
        "sample_shape": list(sample.shape),
        "ppl": ppl.item(),
        "fc_weight": model.fc.weight.detach().numpy().copy(),
        "lstm_w_hh_l1": model.lstm.weight_hh_l1.detach().numpy().copy(),
    }
