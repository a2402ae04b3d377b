"""Transform classes: composable, seeded image augmentation.

Random transforms draw from :func:`ember.data._augment_rng.get_rng`: the DataLoader
seeds it per worker (``base_seed + worker_id``) and from ``ember.manual_seed`` in the
main process, so augmentation differs between workers yet a run repeats exactly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

from .._augment_rng import get_rng
from . import functional as F

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Lambda",
    "Normalize",
    "RandomAffine",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
]


class Compose:
    """Apply transforms one after another.

    Example:
        >>> import numpy as np
        >>> t = Compose([CenterCrop(2), ToTensor()])
        >>> tuple(t(np.zeros((4, 4, 3), np.uint8)).shape)
        (3, 2, 2)
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        body = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """HWC image (uint8 array or PIL) -> CHW float32 ember Tensor in [0, 1].

    Example:
        >>> import numpy as np
        >>> float(ToTensor()(np.full((1, 1, 3), 255, np.uint8)).numpy().max())
        1.0
    """

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """Per-channel ``(x - mean) / std`` on a CHW float tensor.

    Example:
        >>> import numpy as np
        >>> x = ToTensor()(np.full((1, 1, 3), 255, np.uint8))
        >>> Normalize([0.5] * 3, [0.5] * 3)(x).numpy().ravel().tolist()
        [1.0, 1.0, 1.0]
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std, self.inplace = list(mean), list(std), inplace

    def __call__(self, t):
        return F.normalize(t, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Resize:
    """Resize to ``(h, w)``, or the shorter side to ``size`` keeping the aspect ratio.

    Example:
        >>> import numpy as np
        >>> Resize(4)(np.zeros((8, 16, 3), np.uint8)).shape
        (4, 8, 3)
    """

    def __init__(self, size, interpolation: str = "bilinear", max_size: int | None = None):
        self.size, self.interpolation, self.max_size = size, interpolation, max_size

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation, self.max_size)

    def __repr__(self):
        return f"Resize(size={self.size}, interpolation={self.interpolation})"


class CenterCrop:
    """Crop the centre ``size`` (zero-padded when the image is smaller).

    Example:
        >>> import numpy as np
        >>> CenterCrop(2)(np.arange(16).reshape(4, 4))
        array([[ 5,  6],
               [ 9, 10]])
    """

    def __init__(self, size):
        self.size = F._pair(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomCrop:
    """Crop a random ``size`` window, after optional padding.

    Args:
        padding: int, (lr, tb) or (l, t, r, b) pixels added first.
        pad_if_needed: pad images smaller than ``size`` instead of failing.
        fill, padding_mode: as in :func:`functional.pad`.

    Example:
        >>> import numpy as np
        >>> RandomCrop(32, padding=4)(np.zeros((32, 32, 3), np.uint8)).shape
        (32, 32, 3)
    """

    def __init__(
        self,
        size,
        padding=None,
        pad_if_needed: bool = False,
        fill=0,
        padding_mode: str = "constant",
    ):
        self.size = F._pair(size)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def __call__(self, img):
        th, tw = self.size
        h, w = F.get_image_size(img)
        left, top, right, bottom = (
            F._padding4(self.padding) if self.padding is not None else (0, 0, 0, 0)
        )
        if self.pad_if_needed:
            ph = max(th - (h + top + bottom), 0)
            pw = max(tw - (w + left + right), 0)
            left, right, top, bottom = left + pw, right + pw, top + ph, bottom + ph
        hp, wp = h + top + bottom, w + left + right
        if hp < th or wp < tw:
            raise ValueError(
                f"RandomCrop: required crop size {(th, tw)} is larger than the "
                f"(padded) image {(hp, wp)}"
            )
        rng = get_rng()
        i = int(rng.integers(0, hp - th + 1))
        j = int(rng.integers(0, wp - tw + 1))
        if self.padding_mode == "constant" and self.fill == 0 and not F._is_pil(img):
            # NOTE: crop straight from the unpadded image; the zero border comes for free
            return F.crop(img, i - top, j - left, th, tw)
        if (left, top, right, bottom) != (0, 0, 0, 0):
            img = F.pad(img, (left, top, right, bottom), self.fill, self.padding_mode)
        return F.crop(img, i, j, th, tw)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomResizedCrop:
    """Crop a random area and aspect ratio, then resize to ``size`` (Inception-style).

    Example:
        >>> import numpy as np
        >>> RandomResizedCrop(8)(np.zeros((20, 30, 3), np.uint8)).shape
        (8, 8, 3)
    """

    def __init__(
        self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear"
    ):
        self.size = F._pair(size)
        self.scale, self.ratio, self.interpolation = tuple(scale), tuple(ratio), interpolation

    def get_params(self, img, rng):
        h, w = F.get_image_size(img)
        area = h * w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(rng.uniform(*log_ratio))
            cw = round(math.sqrt(target * aspect))
            ch = round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        # fallback: the largest centre crop within the allowed ratios
        in_ratio = w / h
        if in_ratio < min(self.ratio):
            cw, ch = w, round(w / min(self.ratio))
        elif in_ratio > max(self.ratio):
            ch, cw = h, round(h * max(self.ratio))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def __call__(self, img):
        i, j, ch, cw = self.get_params(img, get_rng())
        return F.resized_crop(img, i, j, ch, cw, self.size, self.interpolation)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``.

    Example:
        >>> import numpy as np
        >>> RandomHorizontalFlip(p=1.0)(np.array([[1, 2]]))
        array([[2, 1]])
    """

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        return F.hflip(img) if get_rng().random() < self.p else img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomVerticalFlip:
    """Mirror top-bottom with probability ``p``.

    Example:
        >>> import numpy as np
        >>> RandomVerticalFlip(p=1.0)(np.array([[1], [2]])).ravel().tolist()
        [2, 1]
    """

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img):
        return F.vflip(img) if get_rng().random() < self.p else img

    def __repr__(self):
        return f"RandomVerticalFlip(p={self.p})"


def _range(value, name, center=0.0, bound=None):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        lo, hi = center - value, center + value
        if bound is not None:
            lo = max(lo, bound[0])
        return (float(lo), float(hi))
    if len(value) != 2:
        raise ValueError(f"{name} must be a number or a (min, max) pair, got {value}")
    return (float(value[0]), float(value[1]))


class RandomRotation:
    """Rotate by a random angle in ``(-degrees, degrees)`` (counter-clockwise).

    Example:
        >>> import numpy as np
        >>> RandomRotation(30)(np.zeros((5, 5, 3), np.uint8)).shape
        (5, 5, 3)
    """

    def __init__(
        self, degrees, interpolation: str = "nearest", expand: bool = False, center=None, fill=0
    ):
        self.degrees = _range(degrees, "degrees")
        self.interpolation, self.expand, self.center, self.fill = (
            interpolation,
            expand,
            center,
            fill,
        )

    def __call__(self, img):
        angle = float(get_rng().uniform(*self.degrees))
        return F.rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees}, expand={self.expand})"


class RandomAffine:
    """Random rotation, translation, scale and shear, keeping the image size.

    Args:
        degrees: angle range (a number d means (-d, d)).
        translate: (a, b) maximum shift as a fraction of width and height.
        scale: (min, max) scale factor.
        shear: a number s (x shear in (-s, s)), an (x_min, x_max) pair or 4 values
            (x_min, x_max, y_min, y_max).

    Example:
        >>> import numpy as np
        >>> RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1))(
        ...     np.zeros((6, 6), np.uint8)).shape
        (6, 6)
    """

    def __init__(
        self,
        degrees,
        translate=None,
        scale=None,
        shear=None,
        interpolation: str = "nearest",
        fill=0,
        center=None,
    ):
        self.degrees = _range(degrees, "degrees")
        self.translate, self.scale = translate, scale
        if shear is None or isinstance(shear, numbers.Number) or len(shear) == 2:
            self.shear = None if shear is None else _range(shear, "shear") + (0.0, 0.0)
        elif len(shear) == 4:
            self.shear = tuple(float(s) for s in shear)
        else:
            raise ValueError("shear must be a number, or a sequence of 2 or 4 numbers")
        self.interpolation, self.fill, self.center = interpolation, fill, center

    def get_params(self, img, rng):
        h, w = F.get_image_size(img)
        angle = float(rng.uniform(*self.degrees))
        tx = ty = 0
        if self.translate is not None:
            tx = round(rng.uniform(-self.translate[0] * w, self.translate[0] * w))
            ty = round(rng.uniform(-self.translate[1] * h, self.translate[1] * h))
        scale = float(rng.uniform(*self.scale)) if self.scale is not None else 1.0
        shear = (0.0, 0.0)
        if self.shear is not None:
            shear = (
                float(rng.uniform(self.shear[0], self.shear[1])),
                float(rng.uniform(self.shear[2], self.shear[3]))
                if self.shear[2:] != (0.0, 0.0)
                else 0.0,
            )
        return angle, (tx, ty), scale, shear

    def __call__(self, img):
        angle, translate, scale, shear = self.get_params(img, get_rng())
        return F.affine(
            img, angle, translate, scale, shear, self.interpolation, self.fill, self.center
        )

    def __repr__(self):
        return (
            f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
            f"scale={self.scale}, shear={self.shear})"
        )


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes, in a random order.

    Example:
        >>> import numpy as np
        >>> ColorJitter(0.4, 0.4, 0.4, 0.1)(np.full((2, 2, 3), 128, np.uint8)).dtype.name
        'uint8'
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _range(brightness, "brightness", 1.0, (0.0, None))
        self.contrast = _range(contrast, "contrast", 1.0, (0.0, None))
        self.saturation = _range(saturation, "saturation", 1.0, (0.0, None))
        self.hue = _range(hue, "hue", 0.0)
        if not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"hue must be within [-0.5, 0.5], got {hue}")

    def __call__(self, img):
        rng = get_rng()
        ops = [
            (self.brightness, F.adjust_brightness, 1.0),
            (self.contrast, F.adjust_contrast, 1.0),
            (self.saturation, F.adjust_saturation, 1.0),
            (self.hue, F.adjust_hue, 0.0),
        ]
        for k in rng.permutation(4):
            (lo, hi), fn, neutral = ops[k]
            if (lo, hi) != (neutral, neutral):
                img = fn(img, float(rng.uniform(lo, hi)))
        return img

    def __repr__(self):
        return (
            f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue})"
        )


class Lambda:
    """Wrap a function as a transform.

    Example:
        >>> Lambda(lambda x: x + 1)(1)
        2
    """

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"Lambda needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, img):
        return self.fn(img)

    def __repr__(self):
        return "Lambda()"
