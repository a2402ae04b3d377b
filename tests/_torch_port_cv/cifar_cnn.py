"""A CIFAR-style CNN trained a few steps with SGD (momentum, weight decay, Nesterov) and a
cosine learning-rate schedule, evaluated under ``eval()``/``no_grad()``, saved and reloaded."""

import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2),
        )
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(p=0.0),
            nn.Linear(16, 32),
            nn.ReLU(),
            nn.Linear(32, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.pool(x)
        return self.classifier(x)


def run():
    torch.backends.cudnn.benchmark = True
    torch.use_deterministic_algorithms(True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.RandomState(0)
    model = Net().to(device)
    state = {}
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = value
        elif "running_var" in name:
            state[name] = torch.tensor(1.0 + 0.1 * rng.rand(*value.shape), dtype=torch.float32)
        else:
            state[name] = torch.tensor(0.2 * rng.randn(*value.shape), dtype=torch.float32)
    model.load_state_dict(state)

    images = torch.from_numpy(rng.randn(16, 3, 8, 8).astype(np.float32))
    labels = torch.from_numpy(rng.randint(0, 10, size=16)).long()

    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=1e-3)

    losses, lrs = [], []
    for epoch in range(4):
        model.train()
        for i in range(0, 16, 8):
            inputs, targets = images[i : i + 8].to(device), labels[i : i + 8].to(device)
            if epoch % 2 == 1:  # random-flip augmentation, made deterministic
                inputs = torch.flip(inputs, dims=[3])
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])

    torch.use_deterministic_algorithms(False)
    model.eval()
    correct = 0
    total = 0
    with torch.set_grad_enabled(False):
        outputs = model(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()
        probs = F.softmax(outputs, dim=1)

    path = os.path.join(tempfile.mkdtemp(), "cifar_net.pth")
    torch.save(model.state_dict(), path)
    model2 = Net()
    model2.load_state_dict(torch.load(path))
    model2.eval()
    with torch.no_grad():
        reloaded = model2(images)

    return {
        "losses": np.array(losses),
        "lrs": np.array(lrs),
        "accuracy": 100.0 * correct / total,
        "probs": probs,
        "reloaded": reloaded,
        "running_mean": model.features[1].running_mean,
        "running_var": model.features[5].running_var,
        "num_batches": model.features[1].num_batches_tracked,
        "fc_weight": model.classifier[4].weight,
        "fc_grad": model.classifier[4].weight.grad,
        "momentum": optimizer.state[model.classifier[4].weight]["momentum_buffer"],
    }
