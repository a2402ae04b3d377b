"""DataLoader throughput: ember.data vs torch.utils.data on CIFAR-like images.

Run: python bench/bench_data.py [--images 10000] [--epochs 3] [--workers 0 2] [--repeats R]
     [--threads N] [--keep-blas-env]

Synthetic 32x32x3 uint8 images go through RandomCrop(32, padding=4) + RandomHorizontalFlip +
ToTensor + Normalize (the same plain NumPy functions for both frameworks, since torchvision
is not installed) in shuffled batches of 128, at each ``--workers`` count. Each framework runs
in its own fresh process per repeat (``bench/_protocol.py``): one untimed warm-up epoch, then
the median of ``--epochs`` timed epochs (images/s). The ratio is Ember / PyTorch images/s,
the median over the repeats.

The Ember process also runs the same pipeline built from ``ember.data.transforms``
("ember+T"), for information.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import _protocol as P
import numpy as np

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(3, 1, 1)


# ------------------------------------------------------------------ shared NumPy transforms


def random_crop(img: np.ndarray, size: int = 32, padding: int = 4) -> np.ndarray:
    h, w, c = img.shape
    padded = np.zeros((h + 2 * padding, w + 2 * padding, c), img.dtype)
    padded[padding : padding + h, padding : padding + w] = img
    i, j = np.random.randint(0, 2 * padding + 1, size=2)
    return padded[i : i + size, j : j + size]


def random_hflip(img: np.ndarray) -> np.ndarray:
    return img[:, ::-1] if np.random.rand() < 0.5 else img


def to_chw_float(img: np.ndarray) -> np.ndarray:
    return img.transpose(2, 0, 1).astype(np.float32) / 255.0


def normalize(x: np.ndarray) -> np.ndarray:
    return (x - MEAN) / STD


class Images:
    """A map-style dataset usable by both loaders (plain __len__ / __getitem__)."""

    def __init__(self, n: int, transform):
        rng = np.random.default_rng(0)
        self.x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.y = rng.integers(0, 10, n)
        self.transform = transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.x[i]), int(self.y[i])


def numpy_pipeline(img):
    return normalize(to_chw_float(random_hflip(random_crop(img))))


def ember_pipeline():
    import ember.data.transforms as T

    return T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(MEAN.ravel().tolist(), STD.ravel().tolist()),
        ]
    )


# ------------------------------------------------------------------ timing


def epoch_rate(make_loader: Callable[[], Any]) -> float:
    loader = make_loader()
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def measure_data(lib: Any, images: int, batch_size: int, workers: int, epochs: int) -> dict:
    """Images/s of one DataLoader configuration (median of ``epochs`` after one warm-up
    epoch); the Ember process also times ember.data.transforms. Runs in a child process.

    Example:
        >>> import ember
        >>> sorted(measure_data(ember, images=256, batch_size=64, workers=0, epochs=1))
        ['ember_transforms', 'numpy']
    """
    lib.manual_seed(0)
    np.random.seed(0)
    if lib.__name__ == "ember":
        from ember.data import DataLoader
    else:
        from torch.utils.data import DataLoader
    kw = {"batch_size": batch_size, "shuffle": True, "num_workers": workers}
    pipelines = {"numpy": numpy_pipeline}
    if lib.__name__ == "ember":
        pipelines["ember_transforms"] = ember_pipeline()
    out = {}
    for key, transform in pipelines.items():
        ds = Images(images, transform)
        make = lambda ds=ds: DataLoader(ds, **kw)
        epoch_rate(make)  # warm-up: imports, worker start-up paths, page faults
        out[key] = statistics.median(epoch_rate(make) for _ in range(epochs))
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    P.add_protocol_args(ap, repeats=3)
    a = ap.parse_args(argv)
    title = (
        f"bench_data: DataLoader images/s, {a.images} images 32x32x3, batch {a.batch_size}, "
        f"median of {a.epochs} epochs per process"
    )
    head = P.header(title, a.threads, a.keep_blas_env, P.THROUGHPUT)
    print(head)
    print()
    print("| workers | Ember images/s | PyTorch images/s | Ember/PyTorch | repeats | ember+T |")
    print("|---|---|---|---|---|---|")
    rows = []
    for nw in a.workers:
        params = {"images": a.images, "batch_size": a.batch_size, "workers": nw}
        runs = P.compare(
            "bench_data",
            "measure_data",
            {**params, "epochs": a.epochs},
            a.repeats,
            a.threads,
            a.keep_blas_env,
        )
        e = [r["ember"]["numpy"] for r in runs]
        t = [r["torch"]["numpy"] for r in runs]
        et = statistics.median(r["ember"]["ember_transforms"] for r in runs)
        med, lo, hi = P.ratio_summary([x / y for x, y in zip(e, t)])
        em, tm = statistics.median(e), statistics.median(t)
        rows.append({"workers": nw, "ember": em, "torch": tm, "ratio": med, "lo": lo, "hi": hi})
        rows[-1]["ember_transforms"] = et
        print(f"| {nw} | {em:,.0f} | {tm:,.0f} | {med:.2f} | {lo:.2f}-{hi:.2f} | {et:,.0f} |")
    print("ember+T: the same pipeline built from ember.data.transforms (Ember process)")
    print(P.load_line())
    P.write_json(a.json, head, rows)
    return rows


if __name__ == "__main__":
    main()
