"""Image operations behind the transform classes, for three kinds of input.

* PIL images are handled by Pillow (imported lazily);
* NumPy arrays are images in HWC (or HW) layout, as decoded from files;
* ember Tensors are CHW (or HW) images, as produced by :func:`to_tensor`.

Geometric operations on arrays and tensors are written in NumPy (no SciPy): a tensor
is viewed as HWC, transformed, and turned back into a CHW tensor.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .._errors import require

__all__ = [
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "affine",
    "center_crop",
    "crop",
    "get_image_size",
    "hflip",
    "normalize",
    "pad",
    "resize",
    "resized_crop",
    "rotate",
    "to_tensor",
    "vflip",
]


# ----------------------------------------------------------------------------- kinds


def _is_pil(img) -> bool:
    mod = type(img).__module__
    return mod.startswith("PIL.") and hasattr(img, "getbands")


def _is_tensor(img) -> bool:
    import ember

    return isinstance(img, ember.Tensor)


def _pil():
    return require("PIL.Image", "Transforms on PIL images")


def _to_hwc(img):
    """(HWC NumPy view, how to turn an HWC result back into the input's kind)."""
    if _is_tensor(img):
        a = img.numpy()
        if a.ndim == 2:
            return a, _from_hw_tensor
        return np.moveaxis(a, -3, -1), _from_hwc_tensor
    if isinstance(img, np.ndarray):
        return img, _identity
    raise TypeError(
        f"expected a PIL image, a NumPy HWC array or an ember CHW Tensor, got {type(img).__name__}"
    )


def _identity(a):
    return a


def _from_hw_tensor(a):
    import ember

    return ember.from_numpy(np.ascontiguousarray(a))


def _from_hwc_tensor(a):
    import ember

    return ember.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))


def get_image_size(img) -> tuple[int, int]:
    """``(height, width)`` of a PIL image, HWC array or CHW tensor."""
    if _is_pil(img):
        return img.size[1], img.size[0]
    if _is_tensor(img):
        s = tuple(img.shape)
        return s[-2], s[-1]
    return img.shape[0], img.shape[1]


# ----------------------------------------------------------------------------- conversion


def to_tensor(pic):
    """PIL image or HWC array -> CHW float32 ember Tensor; uint8 is scaled to [0, 1]."""
    import ember

    if _is_tensor(pic):
        return pic
    a = np.asarray(pic)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"to_tensor expects an HW or HWC image, got shape {a.shape}")
    chw = a.transpose(2, 0, 1)
    out = np.empty(chw.shape, np.float32)
    if a.dtype == np.uint8:
        # NOTE: one pass that converts and scales; astype() then /255 would take two
        np.multiply(chw, np.float32(1 / 255), out=out)
    else:  # other dtypes keep their values, as in torchvision
        out[...] = chw
    return ember.from_numpy(out)


def normalize(t, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
    """``(t - mean[c]) / std[c]`` per channel of a CHW tensor (or CHW float array)."""
    was_tensor = _is_tensor(t)
    a = t.numpy() if was_tensor else np.asarray(t)
    if a.ndim < 3:
        raise ValueError(f"normalize expects a CHW image, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"normalize expects a float image, got {a.dtype}")
    m = np.asarray(mean, dtype=a.dtype).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=a.dtype).reshape(-1, 1, 1)
    if (s == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {a.dtype}: {std}")
    out = a if inplace else np.empty_like(a)
    np.subtract(a, m, out=out)
    np.divide(out, s, out=out)
    if was_tensor:
        if inplace:
            return t
        import ember

        return ember.from_numpy(out)
    return out


# ----------------------------------------------------------------------------- geometry


def _pair(size) -> tuple[int, int]:
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    return int(size[0]), int(size[1])


def crop(img, top: int, left: int, height: int, width: int):
    """The ``height x width`` window at (top, left); outside the image is zero-filled."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    a, back = _to_hwc(img)
    h, w = a.shape[:2]
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return back(a[top : top + height, left : left + width])
    out = np.zeros((height, width) + a.shape[2:], a.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, h), min(left + width, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = a[y0:y1, x0:x1]
    return back(out)


def center_crop(img, output_size):
    th, tw = _pair(output_size)
    h, w = get_image_size(img)
    # NOTE: same rounding as torchvision so crops line up pixel for pixel
    return crop(img, round((h - th) / 2.0), round((w - tw) / 2.0), th, tw)


def _padding4(padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int, (lr, tb) or (l, t, r, b)."""
    if isinstance(padding, numbers.Number):
        p = int(padding)
        return p, p, p, p
    padding = [int(p) for p in padding]
    if len(padding) == 1:
        return (padding[0],) * 4
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return tuple(padding)
    raise ValueError(f"padding must be an int or a sequence of 1, 2 or 4 ints, got {padding}")


_NP_PAD_MODES = {
    "constant": "constant",
    "edge": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
}


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    """Pad the borders: ``constant`` (with ``fill``), ``edge``, ``reflect`` or ``symmetric``."""
    if padding_mode not in _NP_PAD_MODES:
        raise ValueError(
            f"padding_mode must be one of {sorted(_NP_PAD_MODES)}, got {padding_mode!r}"
        )
    left, top, right, bottom = _padding4(padding)
    if _is_pil(img):
        Image = _pil()
        a = np.asarray(img)
        out = pad(a, (left, top, right, bottom), fill, padding_mode)
        res = Image.fromarray(out, mode=img.mode if img.mode in ("L", "RGB", "RGBA") else None)
        if img.mode == "P":
            res.putpalette(img.getpalette())
        return res
    a, back = _to_hwc(img)
    h, w = a.shape[:2]
    if padding_mode == "constant":
        # NOTE: a filled buffer plus one copy is ~3x faster than np.pad on small images
        out = np.empty((h + top + bottom, w + left + right) + a.shape[2:], a.dtype)
        out[...] = (
            np.asarray(fill, dtype=a.dtype)
            if np.ndim(fill) == 0
            else np.asarray(fill, dtype=a.dtype).reshape((1, 1, -1))[..., : a.shape[2]]
        )
        out[top : top + h, left : left + w] = a
        return back(out)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (a.ndim - 2)
    return back(np.pad(a, widths, mode=_NP_PAD_MODES[padding_mode]))


def hflip(img):
    if _is_pil(img):
        return img.transpose(_pil().Transpose.FLIP_LEFT_RIGHT)
    a, back = _to_hwc(img)
    return back(a[:, ::-1])


def vflip(img):
    if _is_pil(img):
        return img.transpose(_pil().Transpose.FLIP_TOP_BOTTOM)
    a, back = _to_hwc(img)
    return back(a[::-1])


_PIL_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


def _resize_output_size(h: int, w: int, size, max_size=None) -> tuple[int, int]:
    if isinstance(size, numbers.Number) or len(size) == 1:
        s = int(size if isinstance(size, numbers.Number) else size[0])
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = s, int(s * long / short)
        if max_size is not None and new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_long, new_short) if w <= h else (new_short, new_long)
    return int(size[0]), int(size[1])


def resize(img, size, interpolation: str = "bilinear", max_size: int | None = None):
    """Resize to ``(h, w)``, or so the shorter side is ``size`` (keeping the aspect ratio).

    Arrays use NumPy bilinear or nearest interpolation with half-pixel centres (no
    antialiasing); PIL images use Pillow's filters.
    """
    h, w = get_image_size(img)
    oh, ow = _resize_output_size(h, w, size, max_size)
    if interpolation not in _PIL_RESAMPLE:
        raise ValueError(f"unknown interpolation {interpolation!r}")
    if _is_pil(img):
        return img.resize((ow, oh), _PIL_RESAMPLE[interpolation])
    a, back = _to_hwc(img)
    if (oh, ow) == (h, w):
        return back(a)
    if interpolation == "nearest":
        ys = np.minimum((np.arange(oh) * (h / oh)).astype(np.intp), h - 1)
        xs = np.minimum((np.arange(ow) * (w / ow)).astype(np.intp), w - 1)
        return back(a[ys][:, xs])
    y0, y1, wy = _linear_taps(h, oh)
    x0, x1, wx = _linear_taps(w, ow)
    f = a.astype(np.float32, copy=False)
    extra = (1,) * (a.ndim - 2)
    wy = wy.reshape((-1, 1) + extra)
    rows = f[y0] * (1 - wy) + f[y1] * wy
    wx = wx.reshape((1, -1) + extra)
    out = rows[:, x0] * (1 - wx) + rows[:, x1] * wx
    return back(_cast_like(out, a.dtype))


def _linear_taps(n_in: int, n_out: int):
    """Source indices and weights for 1-d linear interpolation (half-pixel centres)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def _cast_like(f: np.ndarray, dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(f), info.min, info.max).astype(dtype)
    return f.astype(dtype, copy=False)


def resized_crop(img, top, left, height, width, size, interpolation="bilinear"):
    return resize(crop(img, top, left, height, width), size, interpolation)


def _inverse_affine(center, angle, translate, scale, shear) -> np.ndarray:
    """2x3 matrix mapping output pixel coordinates to input ones (torchvision's formula).

    ``angle`` is clockwise in degrees, shear in degrees along x and y.
    """
    rot = math.radians(angle)
    sx, sy = (math.radians(s) for s in shear)
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = np.array([d, -b, 0.0, -c, a, 0.0]) / scale
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m.reshape(2, 3)


def _warp(a: np.ndarray, m: np.ndarray, out_hw, interpolation: str, fill) -> np.ndarray:
    """Sample HWC ``a`` at ``m @ (x + .5, y + .5, 1)`` for every output pixel."""
    oh, ow = out_hw
    h, w = a.shape[:2]
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float64) + 0.5
    sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    fill_v = np.asarray(fill, dtype=np.float64)
    extra = a.shape[2:]
    if interpolation == "nearest":
        ix, iy = np.floor(sx).astype(np.intp), np.floor(sy).astype(np.intp)
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        out = np.empty((oh, ow) + extra, a.dtype)
        out[...] = _cast_like(np.broadcast_to(fill_v, extra if extra else ()), a.dtype)
        out[inside] = a[iy[inside], ix[inside]]
        return out
    if interpolation != "bilinear":
        raise ValueError(f"arrays support 'nearest' and 'bilinear' here, got {interpolation!r}")
    # NOTE: bilinear with the fill colour as the value outside the image, so edges blend
    fx, fy = sx - 0.5, sy - 0.5
    x0, y0 = np.floor(fx).astype(np.intp), np.floor(fy).astype(np.intp)
    wx, wy = fx - x0, fy - y0
    f = a.astype(np.float64)
    acc = np.zeros((oh, ow) + extra)
    for dy, wyy in ((0, 1 - wy), (1, wy)):
        for dx, wxx in ((0, 1 - wx), (1, wx)):
            xx, yy = x0 + dx, y0 + dy
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            vals = np.empty((oh, ow) + extra)
            vals[...] = np.broadcast_to(fill_v, extra if extra else ())
            vals[ok] = f[yy[ok], xx[ok]]
            wgt = (wyy * wxx).reshape((oh, ow) + (1,) * len(extra))
            acc += vals * wgt
    return _cast_like(acc, a.dtype)


def affine(
    img,
    angle: float,
    translate=(0, 0),
    scale: float = 1.0,
    shear=(0.0, 0.0),
    interpolation: str = "nearest",
    fill=0,
    center=None,
):
    """Rotate (clockwise, degrees), translate (pixels), scale and shear about the centre."""
    if isinstance(shear, numbers.Number):
        shear = (float(shear), 0.0)
    shear = tuple(shear) if len(shear) == 2 else (shear[0], 0.0)
    h, w = get_image_size(img)
    if _is_pil(img):
        Image = _pil()
        c = (w * 0.5, h * 0.5) if center is None else center
        m = _inverse_affine(c, angle, translate, scale, shear)
        kw = {"fillcolor": fill} if fill is not None else {}
        return img.transform(
            (w, h), Image.Transform.AFFINE, m.ravel().tolist(), _PIL_RESAMPLE[interpolation], **kw
        )
    a, back = _to_hwc(img)
    c = (w * 0.5, h * 0.5) if center is None else center
    m = _inverse_affine(c, angle, translate, scale, shear)
    return back(_warp(a, m, (h, w), interpolation, fill))


def rotate(
    img, angle: float, interpolation: str = "nearest", expand: bool = False, center=None, fill=0
):
    """Rotate counter-clockwise by ``angle`` degrees (like PIL and torchvision)."""
    h, w = get_image_size(img)
    if _is_pil(img):
        kw = {"fillcolor": fill} if fill is not None else {}
        return img.rotate(angle, _PIL_RESAMPLE[interpolation], expand, center, **kw)
    a, back = _to_hwc(img)
    c = (w * 0.5, h * 0.5) if center is None else center
    m = _inverse_affine(c, -angle, (0, 0), 1.0, (0.0, 0.0))
    oh, ow = h, w
    if expand:
        # bounding box of the rotated image; keep the centre where the input centre was
        rad = math.radians(angle)
        cs, sn = abs(math.cos(rad)), abs(math.sin(rad))
        ow = math.ceil(w * cs + h * sn - 1e-9)
        oh = math.ceil(w * sn + h * cs - 1e-9)
        m[0, 2] += m[0, 0] * (w - ow) * 0.5 + m[0, 1] * (h - oh) * 0.5
        m[1, 2] += m[1, 0] * (w - ow) * 0.5 + m[1, 1] * (h - oh) * 0.5
    return back(_warp(a, m, (oh, ow), interpolation, fill))


# ----------------------------------------------------------------------------- colour


def _float01(a: np.ndarray):
    """Image as float32 in [0, 1] and the scale to undo it (255 for uint8)."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) * np.float32(1 / 255), 255.0
    return a.astype(np.float32, copy=False), 1.0


def _back_from01(f: np.ndarray, scale: float, dtype):
    f = np.clip(f, 0.0, 1.0)
    return _cast_like(f * scale, dtype) if scale != 1.0 else f.astype(dtype, copy=False)


def _gray(f: np.ndarray) -> np.ndarray:
    if f.ndim == 2 or f.shape[-1] == 1:
        return f if f.ndim == 2 else f[..., 0]
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def adjust_brightness(img, factor: float):
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Brightness(img).enhance(factor)
    a, back = _to_hwc(img)
    f, s = _float01(a)
    return back(_back_from01(f * factor, s, a.dtype))


def adjust_contrast(img, factor: float):
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Contrast(img).enhance(factor)
    a, back = _to_hwc(img)
    f, s = _float01(a)
    mean = _gray(f).mean()
    return back(_back_from01(mean + factor * (f - mean), s, a.dtype))


def adjust_saturation(img, factor: float):
    if _is_pil(img):
        return require("PIL.ImageEnhance", "ColorJitter").Color(img).enhance(factor)
    a, back = _to_hwc(img)
    if a.ndim == 2 or a.shape[-1] == 1:
        return back(a)
    f, s = _float01(a)
    g = _gray(f)[..., None]
    return back(_back_from01(g + factor * (f - g), s, a.dtype))


def adjust_hue(img, hue_factor: float):
    """Rotate the hue by ``hue_factor`` of a turn (in [-0.5, 0.5])."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor must be in [-0.5, 0.5], got {hue_factor}")
    if _is_pil(img):
        Image = _pil()
        if img.mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        hh = np.asarray(h, dtype=np.uint8) + np.uint8(int(hue_factor * 255) % 256)
        return Image.merge("HSV", (Image.fromarray(hh, "L"), s, v)).convert(img.mode)
    a, back = _to_hwc(img)
    if a.ndim == 2 or a.shape[-1] == 1:
        return back(a)
    f, sc = _float01(a)
    hsv = _rgb_to_hsv(f[..., :3])
    hsv[..., 0] = (hsv[..., 0] + hue_factor) % 1.0
    rgb = _hsv_to_rgb(hsv)
    if f.shape[-1] > 3:
        rgb = np.concatenate([rgb, f[..., 3:]], axis=-1)
    return back(_back_from01(rgb, sc, a.dtype))


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    maxc, minc = rgb.max(-1), rgb.min(-1)
    v = maxc
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.where(maxc > 0, maxc, 1), 0)
    safe = np.where(delta > 0, delta, 1)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], -1).astype(np.float32)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices = [
        np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
    ]
    out = np.zeros(hsv.shape, np.float32)
    for k, c in enumerate(choices):
        out = np.where((i == k)[..., None], c, out)
    return out
