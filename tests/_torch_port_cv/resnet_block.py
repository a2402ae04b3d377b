# ruff: noqa: B007, UP008 -- written as PyTorch tutorials write it (unused loop variables, super(Cls, self))
"""A tiny ResNet: residual blocks in ``nn.Sequential``/``nn.ModuleList``, a registered
normalization buffer, AdamW with parameter groups (no weight decay for biases and norm
weights), ``view``/``reshape``/``permute``/``contiguous`` and a top-k accuracy."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(
            in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(
                    in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class TinyResNet(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.49, 0.48, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1))
        self.stem = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU()
        )
        self.layers = nn.ModuleList([BasicBlock(4, 4), BasicBlock(4, 8, stride=2)])
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        n, c, h, w = x.shape
        tokens = x.permute(0, 2, 3, 1).contiguous().view(n, h * w, c)
        tokens = self.norm(tokens)
        pooled = tokens.mean(dim=1)
        return self.fc(pooled.reshape(n, -1))


def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def run():
    rng = np.random.RandomState(4)
    model = TinyResNet()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.tensor(0.1 * rng.randn(*p.shape), dtype=p.dtype))
            elif p.ndim == 1:
                p.copy_(torch.tensor(1.0 + 0.1 * rng.randn(*p.shape), dtype=p.dtype))
            else:
                fan_in = np.prod(p.shape[1:])
                p.copy_(torch.tensor(rng.randn(*p.shape) / np.sqrt(fan_in), dtype=torch.float32))

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or "bn" in name or "norm" in name:
            no_decay.append(param)
        else:
            decay.append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-3,
        betas=(0.9, 0.95),
        eps=1e-8,
    )

    images = torch.tensor(rng.rand(6, 3, 8, 8), dtype=torch.float32)
    target = torch.tensor(rng.randint(0, 5, size=6), dtype=torch.long)
    losses, top1s, top3s = [], [], []
    model.train()
    for step in range(3):
        output = model(images)
        loss = F.cross_entropy(output, target)
        acc1, acc3 = accuracy(output, target, topk=(1, 3))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        top1s.append(acc1[0].item())
        top3s.append(acc3.item())

    model.eval()
    with torch.no_grad():
        logits = model(images)
        values, indices = torch.topk(logits, k=2, dim=-1)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = dict(model.named_buffers())
    return {
        "losses": np.array(losses),
        "top1": np.array(top1s),
        "top3": np.array(top3s),
        "logits": logits,
        "topk_values": values,
        "topk_indices": indices,
        "n_params": n_params,
        "n_decay": len(decay),
        "n_no_decay": len(no_decay),
        "buffer_names": " ".join(sorted(buffers)),
        "running_mean": model.layers[1].shortcut[1].running_mean,
        "stem_grad": model.stem[0].weight.grad,
        "group_lrs": np.array([g["lr"] for g in optimizer.param_groups]),
    }
