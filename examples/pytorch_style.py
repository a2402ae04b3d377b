"""PyTorch style: an ``nn.Module`` CNN and a plain training loop on the bundled Digits data.

Run:  python examples/pytorch_style.py [--epochs 5]

A PyTorch user reads this as a PyTorch script: only the import names differ.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import ember
import ember.nn.functional as F
from ember import nn
from ember.data import DataLoader
from ember.data.datasets import Digits


class SmallCNN(nn.Module):
    """Two 3x3 convolutions, a 2x2 max-pool and a linear classifier for 1x8x8 images."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 4 * 4, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool(F.relu(self.conv2(x)))  # (N, 32, 4, 4)
        return self.fc(x.flatten(1))


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Accuracy of ``model`` over ``loader``, without recording gradients."""
    model.eval()
    correct = total = 0
    with ember.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            total += len(y)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()

    ember.manual_seed(0)
    train_loader = DataLoader(Digits(train=True), batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(Digits(train=False), batch_size=256)

    model = SmallCNN()
    optimizer = ember.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        model.train()
        total_loss, batches = 0.0, 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total_loss, batches = total_loss + loss.item(), batches + 1
        print(f"epoch {epoch + 1}/{args.epochs}  loss {total_loss / batches:.4f}")

    accuracy = evaluate(model, test_loader)
    print(f"test accuracy: {accuracy:.4f}")

    # Save the weights (safetensors) and load them into a fresh model.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "small_cnn.safetensors")
        ember.save(model.state_dict(), path)
        restored = SmallCNN()
        restored.load_state_dict(ember.load(path))
    print(f"reloaded test accuracy: {evaluate(restored, test_loader):.4f}")


if __name__ == "__main__":
    main()
