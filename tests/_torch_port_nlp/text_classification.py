"""Text classification two ways: the PyTorch text-classification tutorial's EmbeddingBag
model (flat token stream + offsets, mean mode) and a Kim-style CNN (Conv1d over embeddings,
max-pool over time, concatenated filter widths), both trained with class-weighted
cross-entropy."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


class TextCNN(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class, kernel_sizes=(2, 3), num_filters=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(embed_dim, num_filters, k) for k in kernel_sizes])
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(num_filters * len(kernel_sizes), num_class)

    def forward(self, x):
        x = self.embedding(x)  # (B, L, E)
        x = x.permute(0, 2, 1)  # (B, E, L)
        conved = [F.relu(conv(x)) for conv in self.convs]  # (B, F, L - k + 1)
        pooled = [F.max_pool1d(c, c.shape[2]).squeeze(2) for c in conved]
        x = torch.cat(pooled, dim=1)
        return self.fc(self.dropout(x))


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for label, text in batch:
        label_list.append(label)
        processed = torch.tensor(text, dtype=torch.int64)
        text_list.append(processed)
        offsets.append(processed.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


def _copy(model, rng):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.as_tensor(rng.uniform(-0.5, 0.5, p.shape), dtype=p.dtype))


def run():
    rng = np.random.default_rng(4)
    vocab, num_class, embed = 20, 3, 6
    dataset = [
        (int(rng.integers(num_class)), [int(t) for t in rng.integers(1, vocab, int(n))])
        for n in rng.integers(3, 8, size=10)
    ]
    class_weights = torch.tensor([1.0, 2.0, 0.5])
    results = {}

    model = TextClassificationModel(vocab, embed, num_class)
    _copy(model, rng)
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    loader = DataLoader(dataset, batch_size=4, shuffle=False, collate_fn=collate_batch)
    bag_losses, accs = [], []
    for _epoch in range(3):
        model.train()
        total_acc, total_count = 0, 0
        for label, text, offsets in loader:
            optimizer.zero_grad()
            predicted = model(text, offsets)
            loss = F.cross_entropy(predicted, label, weight=class_weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            optimizer.step()
            total_acc += (predicted.argmax(1) == label).sum().item()
            total_count += label.size(0)
            bag_losses.append(loss.item())
        scheduler.step()
        accs.append(total_acc / total_count)
    results["bag_losses"] = bag_losses
    results["bag_acc"] = accs
    results["bag_weight"] = model.embedding.weight.detach().numpy().copy()

    # CNN over padded batches
    max_len = max(len(t) for _, t in dataset)
    padded = torch.zeros(len(dataset), max_len, dtype=torch.long)
    for i, (_, t) in enumerate(dataset):
        padded[i, : len(t)] = torch.tensor(t)
    labels = torch.tensor([lab for lab, _ in dataset])
    cnn = TextCNN(vocab, embed, num_class)
    _copy(cnn, rng)
    cnn.eval()
    opt = torch.optim.Adam(cnn.parameters(), lr=0.05)
    cnn_losses = []
    for _ in range(4):
        opt.zero_grad()
        out = cnn(padded)
        loss = F.cross_entropy(out, labels, weight=class_weights, reduction="mean")
        loss.backward()
        opt.step()
        cnn_losses.append(loss.item())
    with torch.no_grad():
        logits = cnn(padded)
        pred = logits.argmax(dim=1)
        per_sample = F.cross_entropy(logits, labels, weight=class_weights, reduction="none")
    results["cnn_losses"] = cnn_losses
    results["cnn_logits"] = logits.numpy()
    results["cnn_pred"] = pred.numpy()
    results["cnn_per_sample"] = per_sample.numpy()
    results["cnn_conv0"] = cnn.convs[0].weight.detach().numpy().copy()
    return results
