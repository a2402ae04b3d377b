"""DataLoader throughput: ember.data vs torch.utils.data on CIFAR-like images.

10k synthetic 32x32x3 uint8 images go through RandomCrop(32, padding=4) +
RandomHorizontalFlip + ToTensor + Normalize (the same plain NumPy functions for both
frameworks, since torchvision is not installed) in batches of 128, at num_workers 0
and 2. Frameworks alternate inside one run (the machine drifts between runs) and the
median of several epochs is reported, with the ratio ember / torch.

A last row runs the same pipeline with ember.data.transforms, for information.

Run: python bench/bench_data.py [--images 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

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


def epoch_rate(make_loader) -> float:
    loader = make_loader()
    t0 = time.perf_counter()
    n = 0
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = ap.parse_args()

    import torch
    import torch.utils.data as tud

    import ember
    import ember.data as ed

    torch.set_num_threads(1)
    ember.manual_seed(0)
    torch.manual_seed(0)
    ds = Images(args.images, numpy_pipeline)
    ds_ember_t = Images(args.images, ember_pipeline())
    bs = args.batch_size

    rows = []
    for nw in args.workers:
        kw = {"batch_size": bs, "shuffle": True, "num_workers": nw}
        ours = lambda kw=kw: ed.DataLoader(ds, **kw)
        theirs = lambda kw=kw: tud.DataLoader(ds, **kw)
        ours_t = lambda kw=kw: ed.DataLoader(ds_ember_t, **kw)
        epoch_rate(ours), epoch_rate(theirs)  # warm up (imports, page faults, caches)
        r_e, r_t, r_et = [], [], []
        for _ in range(args.repeats):  # alternate frameworks inside one run
            r_e.append(epoch_rate(ours))
            r_t.append(epoch_rate(theirs))
            r_et.append(epoch_rate(ours_t))
        rows.append((nw, statistics.median(r_e), statistics.median(r_t), statistics.median(r_et)))

    print(
        f"DataLoader throughput, {args.images} images 32x32x3, batch {bs}, "
        f"median of {args.repeats} epochs (images/s)"
    )
    print(f"{'workers':>8} {'ember':>10} {'torch':>10} {'ember/torch':>12} {'ember+T':>10}")
    for nw, e, t, et in rows:
        print(f"{nw:>8} {e:>10.0f} {t:>10.0f} {e / t:>11.2f}x {et:>10.0f}")
    print("ember+T: the same pipeline built from ember.data.transforms")


if __name__ == "__main__":
    main()
