"""What a trained model expects as input, saved with it, and ``ember predict``'s reading of
new inputs into that form: the dataset's own preprocessing, the config's deterministic
transforms, the sample shape and the dtype (float32 pixels, int64 token ids).

Inputs to ``predict`` are *raw* data as the dataset's source stores it (Digits pixels are
integers 0-16, MNIST/CIFAR pixels 0-255, text is text); ``--preprocessed`` takes arrays that
are already in the model's input form.
"""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np

from .config import ConfigError

__all__ = ["input_spec", "prepare_inputs", "read_inputs"]

# datasets that rescale their source values themselves: raw value range and the factor
_RAW_SCALE = {"Digits": {"max": 16, "scale": 1 / 16}}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm")


def input_spec(cfg: dict, full) -> dict:
    """Describe the inputs of a model trained on ``full`` (the training set as evaluation
    sees it): ``shape``, ``dtype``, ``num_classes``, the raw form (``raw``) and the
    vocabulary of token models (``vocab``)."""
    from . import datasets

    raw_ds = datasets.raw_dataset(full)
    x = datasets.sample_of(full)
    x_raw = datasets.sample_of(raw_ds)
    spec = {
        "dataset": cfg["data"]["dataset"],
        "shape": list(x.shape),
        "dtype": str(x.dtype),
        "num_classes": datasets.num_classes_of(full),
        "raw": None,
        "vocab": None,
    }
    name = cfg["data"]["dataset"]
    if name in _RAW_SCALE:
        spec["raw"] = dict(_RAW_SCALE[name], shape=list(x_raw.shape), integer=True)
    elif x_raw.dtype == np.uint8:
        spec["raw"] = {"max": 255, "scale": None, "shape": list(x_raw.shape), "integer": True}
    if np.issubdtype(x.dtype, np.integer) and getattr(raw_ds, "itos", None) is not None:
        itos = raw_ds.itos
        spec["vocab"] = None if isinstance(itos[0], bytes) else list(itos)
        spec["level"] = getattr(raw_ds, "level", "char")
    return spec


def read_inputs(path: str, spec: dict | None = None):
    """Read a .npy, a .csv, a text file (token models) or images (a file or a folder) as an
    array of samples, keeping the file's dtype.

    Example:
        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "x.npy")
        >>> np.save(p, np.arange(6).reshape(2, 3))
        >>> read_inputs(p).shape
        (2, 3)
    """
    if not os.path.exists(path):
        raise ConfigError("input file not found", path)
    if os.path.isdir(path):
        files = sorted(
            f for f in glob.glob(os.path.join(path, "*")) if f.lower().endswith(_IMAGE_SUFFIXES)
        )
        if not files:
            raise ConfigError("the folder holds no image files", path)
        return _read_images(files, spec)
    if os.path.getsize(path) == 0:
        raise ConfigError("the input file is empty", path)
    low = path.lower()
    if low.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ConfigError(f"not a readable .npy array: {e}", path) from None
    elif low.endswith(".csv"):
        try:
            with warnings.catch_warnings():  # an empty file is reported below, not warned
                warnings.simplefilter("ignore", UserWarning)
                x = np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as e:
            raise ConfigError(f"not a numeric CSV file: {e}", path) from None
    elif low.endswith(_IMAGE_SUFFIXES):
        x = _read_images([path], spec)
    elif spec is not None and spec.get("level") is not None:
        x = _read_text(path, spec)
    else:
        raise ConfigError(
            "unknown input format; give a .npy, a .csv, an image or a folder of images"
            + (", or a text file" if spec is not None and spec.get("level") else ""),
            path,
        )
    if x.ndim == 0 or x.size == 0:
        raise ConfigError("the input file holds no samples", path)
    return x


def _read_text(path, spec):
    with open(path, "rb") as f:
        raw = f.read()
    if spec["level"] == "byte":
        ids = np.frombuffer(raw, np.uint8).astype(np.int64)
    else:
        stoi = {c: i for i, c in enumerate(spec["vocab"])}
        text = raw.decode("utf-8", errors="replace").rstrip("\n")
        missing = sorted({c for c in text if c not in stoi})
        if missing:
            raise ConfigError(
                f"characters not in the model's vocabulary: {''.join(missing)!r}", path
            )
        ids = np.array([stoi[c] for c in text], np.int64)
    if ids.size == 0:
        raise ConfigError("the input file holds no text", path)
    return ids[None]


def _read_images(files, spec):
    from PIL import Image

    raw = (spec or {}).get("raw") or {}
    shape = raw.get("shape") or (spec or {}).get("shape") or []
    rgb = len(shape) == 3 and shape[-1] == 3  # HWC colour samples (CIFAR-10)
    arrs = []
    for f in files:
        with Image.open(f) as im:
            arrs.append(np.asarray(im.convert("RGB" if rgb else "L"), np.uint8))
    if len({a.shape for a in arrs}) > 1:
        raise ConfigError(f"images of different sizes: {sorted({a.shape for a in arrs})}", files[0])
    x = np.stack(arrs)
    if raw.get("max") not in (None, 255):  # map 0-255 pixels onto the source's range
        x = np.rint(x.astype(np.float64) * (raw["max"] / 255.0))
    return x


def prepare_inputs(x: np.ndarray, spec: dict, cfg: dict, source: str, preprocessed: bool = False):
    """The model's input batch for raw samples ``x`` (see the module docstring).

    Example:
        >>> spec = {"shape": [1, 8, 8], "dtype": "float32", "dataset": "Digits",
        ...         "raw": {"max": 16, "scale": 1 / 16, "shape": [1, 8, 8], "integer": True}}
        >>> x = prepare_inputs(np.full((2, 64), 16), spec, {"data": {}}, "in.npy")
        >>> x.shape, x.dtype.name, float(x.max())
        ((2, 1, 8, 8), 'float32', 1.0)
    """
    from . import datasets

    shape = tuple(spec["shape"])
    dtype = np.dtype(spec["dtype"])
    if np.issubdtype(dtype, np.integer):
        return _token_ids(x, spec, shape, dtype, source)
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise ConfigError(f"expected numeric inputs, got dtype {x.dtype}", source)
    raw = spec.get("raw")
    if not preprocessed:
        if raw is not None:
            x = _from_raw(x, raw, spec["dataset"], source)
        t = datasets.build_transforms(cfg["data"].get("transforms"), source, train=False)
        if t is not None:
            x = np.stack([_np(t(s)) for s in x])
    x = _fit_shape(x, shape, source)
    return np.ascontiguousarray(x.astype(dtype, copy=False))


def _np(t):
    import ember

    return t.numpy() if isinstance(t, ember.Tensor) else np.asarray(t)


def _from_raw(x, raw, dataset, source):
    lo, hi = float(np.min(x)), float(np.max(x))
    integral = bool(np.all(np.mod(x, 1) == 0)) if np.issubdtype(x.dtype, np.floating) else True
    expected = f"raw {dataset} values are integers in 0..{raw['max']}"
    if lo < 0 or hi > raw["max"] or (raw.get("integer") and not integral):
        hint = (
            "; these look preprocessed already (pass --preprocessed)"
            if lo >= 0 and hi <= 1 and not integral
            else ""
        )
        raise ConfigError(f"{expected}; got values in [{lo:g}, {hi:g}]{hint}", source)
    shape = tuple(raw["shape"])
    x = _fit_shape(x, shape, source, "raw ")
    if raw.get("scale") is not None:
        return (x * raw["scale"]).astype(np.float32)
    return x.astype(np.uint8)


def _fit_shape(x, shape, source, what=""):
    if tuple(x.shape[1:]) == shape:
        return x
    per = int(np.prod(x.shape[1:]))
    if per != int(np.prod(shape)):
        raise ConfigError(
            f"inputs have shape {tuple(x.shape[1:])} per sample; the model expects "
            f"{what}samples of shape {shape}",
            source,
        )
    return x.reshape((len(x),) + shape)


def _token_ids(x, spec, shape, dtype, source):
    if not (np.issubdtype(x.dtype, np.integer) or np.all(np.mod(x, 1) == 0)):
        raise ConfigError(f"token ids must be integers, got {x.dtype} values", source)
    if x.ndim == 1:
        x = x[None]
    n = spec.get("num_classes")
    if n is not None and (x.min() < 0 or x.max() >= n):
        raise ConfigError(
            f"token ids must be in 0..{n - 1} (the vocabulary size is {n}); "
            f"got {int(x.min())}..{int(x.max())}",
            source,
        )
    if len(shape) != x.ndim - 1 and tuple(x.shape[1:]) != shape:
        raise ConfigError(f"expected samples of shape {shape}, got {tuple(x.shape[1:])}", source)
    return np.ascontiguousarray(x.astype(dtype))
