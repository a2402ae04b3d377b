"""Trainer style: a module that defines its own steps, fitted by ``ember.train.Trainer``.

Run:  python examples/trainer_style.py [--epochs 8] [--out runs/trainer_style]

The module says *what* a step computes (``training_step``, ``validation_step``,
``test_step``, ``configure_optimizers``); the Trainer runs the loop, with callbacks for early
stopping, checkpoints and TensorBoard logs. Look at the logs with
``tensorboard --logdir <out>/logs``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import ember
import ember.nn.functional as F
from ember import nn
from ember.data import DataLoader, random_split
from ember.data.datasets import Digits
from ember.train import EarlyStopping, ModelCheckpoint, TensorBoard, Trainer


class DigitsClassifier(nn.Module):
    """A small CNN for 1x8x8 images, with the steps the Trainer calls."""

    def __init__(self, lr: float = 3e-3):
        super().__init__()
        self.lr = lr
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(self.features(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def _evaluate(self, batch, prefix: str):
        x, y = batch
        logits = self(x)
        self.log(f"{prefix}_loss", F.cross_entropy(logits, y))
        self.log(f"{prefix}_accuracy", (logits.argmax(dim=1) == y).float().mean())

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, "test")

    def configure_optimizers(self):
        optimizer = ember.optim.Adam(self.parameters(), lr=self.lr)
        scheduler = ember.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return [optimizer], [scheduler]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--out", default=None, help="folder for checkpoints and logs (default: a temporary one)"
    )
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="ember-trainer-")

    ember.manual_seed(0)
    train_set, val_set = random_split(Digits(train=True), [0.9, 0.1])
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=256)
    test_loader = DataLoader(Digits(train=False), batch_size=256)

    model = DigitsClassifier()
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
        ModelCheckpoint(
            os.path.join(out, "best.ember"),
            monitor="val_accuracy",
            save_best_only=True,
            save_weights_only=True,
        ),
        TensorBoard(log_dir=os.path.join(out, "logs")),
    ]
    trainer = Trainer(max_epochs=args.epochs, callbacks=callbacks, verbose=2)
    trainer.fit(model, train_loader, val_loader)

    (results,) = trainer.test(model, test_loader)
    print(f"test accuracy: {results['test_accuracy']:.4f}")
    print(f"checkpoints and TensorBoard logs in {out}")


if __name__ == "__main__":
    main()
