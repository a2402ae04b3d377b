"""Transfer learning on the bundled Digits data: pretrain a small CNN on digits 0-4, register
its weights (with their SHA-256) in a local registry, load them into a fresh model, freeze the
backbone but its last convolution (fine-tuned at a lower learning rate), put a new head on
it and train on a few examples of digits 5-9.

Run:  python examples/transfer_digits.py [--pretrain-epochs 8] [--shots 20]

It prints the accuracy on the test images of digits 5-9 for the transferred model and, for
comparison, for the same network trained from scratch on the same few examples.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import ember
import ember.nn.functional as F
from ember import nn
from ember.data import DataLoader, TensorDataset
from ember.data.datasets import Digits
from ember.models import (
    freeze,
    param_groups,
    replace_head,
    trainable_parameter_names,
    unfreeze,
)
from ember.models.weights import WeightsRegistry, load_pretrained


class Backbone(nn.Module):
    """Two conv blocks on 1x8x8 images, then a linear classifier ``fc``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(64 * 4 * 4, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def subset(ds: Digits, digits: range, per_class: int | None = None, seed: int = 0):
    """Images and labels (relabelled 0..len(digits)-1) of the given digits, optionally only
    ``per_class`` random examples of each."""
    x = np.stack([ds[i][0] for i in range(len(ds))])
    y = np.array([ds[i][1] for i in range(len(ds))])
    rng = np.random.default_rng(seed)
    keep = []
    for d in digits:
        idx = np.flatnonzero(y == d)
        keep += list(rng.permutation(idx)[:per_class] if per_class else idx)
    keep = np.sort(np.array(keep))
    return TensorDataset(ember.tensor(x[keep]), ember.tensor(y[keep] - digits.start))


def train(model, loader, optimizer, epochs: int) -> None:
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()


def accuracy(model, ds) -> float:
    model.eval()
    correct = 0
    with ember.no_grad():
        for x, y in DataLoader(ds, batch_size=256):
            correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(ds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-epochs", type=int, default=8)
    p.add_argument("--epochs", type=int, default=30, help="epochs on the new task")
    p.add_argument("--shots", type=int, default=20, help="training examples per new digit")
    args = p.parse_args()

    ember.manual_seed(0)
    train_ds, test_ds = Digits(train=True), Digits(train=False)
    old, new = range(0, 5), range(5, 10)

    # 1. pretrain on digits 0-4
    base = Backbone(num_classes=5)
    loader = DataLoader(subset(train_ds, old), batch_size=64, shuffle=True)
    train(base, loader, ember.optim.Adam(base.parameters(), lr=3e-3), args.pretrain_epochs)
    print(f"pretrained on digits 0-4: accuracy {accuracy(base, subset(test_ds, old)):.4f}")

    few = subset(train_ds, new, per_class=args.shots)
    test_new = subset(test_ds, new)
    with tempfile.TemporaryDirectory() as tmp:
        # 2. save and register the weights, then load them back by name (hash checked)
        path = os.path.join(tmp, "digits04.safetensors")
        ember.save(base.state_dict(), path)
        registry = WeightsRegistry(os.path.join(tmp, "index.json"))
        registry.register("digits04-cnn", path, description="Backbone on digits 0-4")
        model = Backbone(num_classes=5)
        load_pretrained(model, "digits04-cnn", registry=registry)

    # 3. freeze the first conv block, fine-tune the second slowly, new head for digits 5-9;
    # the batch norms keep their pretrained statistics (eval mode)
    freeze(model, "features.*")
    unfreeze(model, "features.3.*")
    model.features.eval()
    replace_head(model, num_classes=5)
    print(f"trainable: {', '.join(trainable_parameter_names(model))}")
    groups = param_groups(model, {"fc.*": {"lr": 1e-2}, "features.*": {"lr": 1e-3}})
    opt = ember.optim.Adam(groups)
    loader = DataLoader(few, batch_size=32, shuffle=True)
    for _ in range(args.epochs):
        train(model, loader, opt, 1)
        model.features.eval()  # keep the frozen statistics through train()
    transferred = accuracy(model, test_new)

    # 4. the same network from scratch on the same few examples
    ember.manual_seed(1)
    scratch = Backbone(num_classes=5)
    train(scratch, loader, ember.optim.Adam(scratch.parameters(), lr=3e-3), args.epochs)
    print(f"from scratch on {args.shots} examples per digit: {accuracy(scratch, test_new):.4f}")
    print(f"test accuracy: {transferred:.4f}")


if __name__ == "__main__":
    main()
