"""Logistic regression written the Theano way, with ``ember.symbol``.

Declare symbolic inputs and shared weights, write the cost as an expression, take its
gradient symbolically, and compile one training step whose ``updates`` move the weights.
The batch size is a symbolic dimension ("n"), so the same compiled step takes any batch.
The trained prediction graph is saved to a file that runs without this code
(``ember.symbol.load``).

Run it:  python examples/symbolic_logreg.py --steps 200 --save /tmp/logreg.json
"""

from __future__ import annotations

import argparse

import numpy as np

import ember
from ember import symbol as S

N_FEATURES = 5
LR = 0.1
L2 = 0.01


def make_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs: features (n, 5) float32 and 0/1 labels (n,) float32."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    centers = np.where(y[:, None] > 0, 1.0, -1.0) * np.linspace(0.2, 1.0, N_FEATURES)
    x = (centers + rng.normal(size=(n, N_FEATURES))).astype(np.float32)
    return x, y


def build() -> tuple[S.Function, S.Function, S.Symbol, S.Symbol]:
    """The compiled training step ``train(x, y) -> cost`` and ``predict(x) -> probability``,
    and the shared weights ``w``, ``b`` (zeros)."""
    x = S.var("x", ("n", N_FEATURES))
    y = S.var("y", ("n",))
    w = S.shared(np.zeros(N_FEATURES, np.float32), "w")
    b = S.shared(np.zeros((), np.float32), "b")
    p = ember.sigmoid(x @ w + b)  # probability of class 1
    xent = -y * ember.log(p) - (1 - y) * ember.log(1 - p)
    cost = xent.mean() + L2 * (w**2).sum()
    gw, gb = S.grad(cost, [w, b])
    train = S.function([x, y], cost, updates=[(w, w - LR * gw), (b, b - LR * gb)])
    predict = S.function([x], p)
    return train, predict, w, b


def train_symbolic(x: np.ndarray, y: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Final (w, b) after ``steps`` full-batch steps of the compiled symbolic step."""
    train, _predict, w, b = build()
    for _ in range(steps):
        train(x, y)
    return w.get_value().numpy(), b.get_value().numpy()


def train_eager(x: np.ndarray, y: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The same training written eagerly with ember autograd."""
    w = ember.zeros(N_FEATURES, requires_grad=True)
    b = ember.zeros((), requires_grad=True)
    xt, yt = ember.tensor(x), ember.tensor(y)
    for _ in range(steps):
        p = ember.sigmoid(xt @ w + b)
        xent = -yt * ember.log(p) - (1 - yt) * ember.log(1 - p)
        cost = xent.mean() + L2 * (w**2).sum()
        gw, gb = ember.autograd.grad(cost, [w, b])
        with ember.no_grad():
            w -= LR * gw
            b -= LR * gb
    return w.detach().numpy(), b.detach().numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--save", default=None, help="write the trained prediction graph here")
    args = ap.parse_args(argv)
    x, y = make_data()
    x_train, y_train, x_test, y_test = x[:300], y[:300], x[300:], y[300:]
    train, predict, w, b = build()
    for step in range(args.steps):
        cost = train(x_train, y_train)
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step}: cost {cost.item():.4f}")
    acc = float(((predict(x_test).numpy() > 0.5) == (y_test > 0.5)).mean())
    print(f"test accuracy: {acc:.4f}")
    weights = [round(float(v), 4) for v in w.get_value().numpy()]
    print(f"w = {weights}, b = {b.get_value().item():.4f}")
    if args.save:
        predict.save(args.save)
        print(f"saved the prediction graph to {args.save}")


if __name__ == "__main__":
    main()
