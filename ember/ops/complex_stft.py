"""Short-time Fourier transforms: ``stft`` and its inverse ``istft`` (PyTorch's arguments).

Framing and overlap-add are two primitives, each the adjoint of the other (their VJPs), so
both transforms are differentiable in the signal, the spectrum and the window; the transform
of the frames is :mod:`ember.fft`'s. ``stft`` returns complex tensors (``return_complex=True``;
``False`` gives the ``view_as_real`` of the result, PyTorch's deprecated form).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtype as dt
from . import _core
from ._ad import defvjp
from ._core import SAVE_NONE, AbstractValue, Primitive, ShapeError, bind
from ._records import module_ops, op
from ._samples import defsample
from .complex_base import const
from .complex_fft import _check_norm, c2c, c2r, r2c, resize
from .elementwise import convert, not_a_tensor

if TYPE_CHECKING:
    from .._tensor import Tensor


# -- framing and overlap-add ----------------------------------------------------------------
# Both primitives carry ``n_fft``, ``hop`` and the signal ``length`` (redundant with a shape,
# checked by the shape rules) so that each one's VJP, the other, needs no saved input.
def _frames_impl(x, *, n_fft, hop, length):
    w = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=-1)[..., ::hop, :]
    return np.ascontiguousarray(w)


def _n_frames(length, n_fft, hop):
    return 1 + (length - n_fft) // hop


def _frames_abstract(x, *, n_fft, hop, length):
    if x.shape[-1] != length or length < n_fft:
        raise ShapeError(
            f"stft_frames: expected a signal of length {length} >= n_fft={n_fft}, got {x.shape}"
        )
    return AbstractValue(x.shape[:-1] + (_n_frames(length, n_fft, hop), n_fft), x.dtype)


frames_p = Primitive(
    "stft_frames", "layout", impl=_frames_impl, abstract=_frames_abstract, save=SAVE_NONE
)


def _overlap_add_impl(f, *, n_fft, hop, length):
    out = np.zeros(f.shape[:-2] + (length,), f.dtype)
    for k in range(f.shape[-2]):  # one slice per frame (NumPy's add.at is slower)
        out[..., k * hop : k * hop + n_fft] += f[..., k, :]
    return out


def _overlap_add_abstract(f, *, n_fft, hop, length):
    if f.ndim < 2 or f.shape[-1] != n_fft or _n_frames(length, n_fft, hop) != f.shape[-2]:
        raise ShapeError(
            f"overlap_add: frames of shape {f.shape} do not cover length {length} with "
            f"n_fft={n_fft}, hop={hop}"
        )
    return AbstractValue(f.shape[:-2] + (length,), f.dtype)


overlap_add_p = Primitive(
    "overlap_add", "layout", impl=_overlap_add_impl, abstract=_overlap_add_abstract, save=SAVE_NONE
)
defvjp(frames_p, lambda g, out, x, **p: (bind(overlap_add_p, (g,), p),), save=SAVE_NONE)
defvjp(overlap_add_p, lambda g, out, f, **p: (bind(frames_p, (g,), p),), save=SAVE_NONE)


def frames(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """The frames ``x[..., k * hop : k * hop + n_fft]`` stacked on a new dim before the last."""
    return bind(frames_p, (x,), {"n_fft": n_fft, "hop": hop, "length": x._data.shape[-1]})


def overlap_add(f: Tensor, hop: int) -> Tensor:
    """The sum of the frames ``f[..., k, :]`` placed at ``k * hop`` (the adjoint of framing)."""
    n_frames, n_fft = f._data.shape[-2:]
    length = n_fft + hop * (n_frames - 1)
    return bind(overlap_add_p, (f,), {"n_fft": n_fft, "hop": hop, "length": length})


def _frame_samples():
    from .._creation import tensor

    x = tensor(np.random.default_rng(0).standard_normal((2, 11)), requires_grad=True)
    f = tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), requires_grad=True)
    return [
        ((x,), {"n_fft": 4, "hop": 3, "length": 11}),
        ((f,), {"n_fft": 4, "hop": 2, "length": 8}),
    ]


defsample(frames_p, lambda: _frame_samples()[:1])
defsample(overlap_add_p, lambda: _frame_samples()[1:])


# -- argument handling ----------------------------------------------------------------------
_PAD_MODES: dict[str, Any] = {
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "constant": None,
}


def _pad_signal(x: Tensor, p: int, pad_mode: str) -> Tensor:
    """``x`` padded by ``p`` samples at both ends of its last dim."""
    from .indexing import index_select
    from .shape import cat

    if pad_mode not in _PAD_MODES:
        raise ValueError(f"stft: pad_mode must be one of {sorted(_PAD_MODES)}, got {pad_mode!r}")
    if p == 0:
        return x
    length = x._data.shape[-1]
    if pad_mode == "constant":
        z = const(np.zeros(x._data.shape[:-1] + (p,), x._data.dtype))
        return cat([z, x, z], -1)
    if pad_mode == "reflect" and p >= length:
        raise ValueError(
            f"stft: reflect padding of {p} needs a signal longer than {p} samples, got {length}"
        )
    idx = np.pad(np.arange(length), p, mode=_PAD_MODES[pad_mode])
    return index_select(x, -1, const(idx.astype(np.int64)))


def _window(window, win_length: int, n_fft: int, dtype, op: str):
    """The window as a tensor of ``n_fft`` samples (centred, zero-padded), or None for ones."""
    if window is None:
        if win_length == n_fft:
            return None
        w = const(np.ones(win_length, dtype.to_real().np))
    else:
        if not isinstance(window, _core._Tensor):
            raise not_a_tensor(op, window)
        w = window
        if w._data.ndim != 1 or w._data.shape[0] != win_length:
            raise ValueError(
                f"{op}: expected a 1-D window of win_length={win_length} samples, got shape "
                f"{tuple(w.shape)}"
            )
    left = (n_fft - win_length) // 2
    if left or win_length < n_fft:
        from .shape import cat

        zl = const(np.zeros(left, w._data.dtype))
        zr = const(np.zeros(n_fft - win_length - left, w._data.dtype))
        w = cat([zl, w, zr], 0)
    return w


def _lengths(n_fft, hop_length, win_length, op):
    for name, v in (("n_fft", n_fft), ("hop_length", hop_length), ("win_length", win_length)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
            raise TypeError(f"{op}: {name} must be an int, got {type(v).__name__}")
    hop = n_fft // 4 if hop_length is None else int(hop_length)
    win = n_fft if win_length is None else int(win_length)
    if n_fft <= 0:
        raise ValueError(f"{op}: expected 0 < n_fft, got n_fft={n_fft}")
    if hop <= 0:
        raise ValueError(f"{op}: expected hop_length > 0, got hop_length={hop}")
    if not 0 < win <= n_fft:
        raise ValueError(f"{op}: expected 0 < win_length <= n_fft, got win_length={win}")
    return int(n_fft), hop, win


# -- stft -----------------------------------------------------------------------------------
@op(method="stft")
def stft(
    input: Tensor,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Tensor | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided: bool | None = None,
    return_complex: bool | None = None,
    align_to_window: bool | None = None,
) -> Tensor:
    """The short-time Fourier transform of a 1-D signal or a batch of them (``(B, L)``):
    ``(B?, n_fft // 2 + 1 or n_fft, n_frames)`` complex bins of the windowed frames
    ``k * hop_length`` apart (``center`` pads ``n_fft // 2`` samples at both ends first).
    With ``center=False``, ``align_to_window=True`` starts the window (rather than the
    ``n_fft``-sample frame) of frame ``k`` at sample ``k * hop_length``.

    Example:
        >>> import ember
        >>> x = ember.arange(16.0)
        >>> s = ember.stft(x, 8, hop_length=4, window=ember.hann_window(8), return_complex=True)
        >>> tuple(s.shape), s.dtype
        ((5, 5), ember.complex64)
    """
    if not isinstance(input, _core._Tensor):
        raise not_a_tensor("stft", input)
    n_fft, hop, win = _lengths(n_fft, hop_length, win_length, "stft")
    x = input
    if x._data.dtype.kind in "iub":
        x = convert(x, dt.get_default_dtype())
    complex_in = x._data.dtype.kind == "c" or (
        window is not None and window._data.dtype.kind == "c"
    )
    if return_complex is None:
        raise RuntimeError(
            "stft requires the return_complex parameter be given for real inputs: pass "
            "return_complex=True (return_complex=False is deprecated)"
        )
    if x._data.ndim not in (1, 2):
        raise ValueError(f"stft: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    if onesided is None:
        onesided = not complex_in
    elif onesided and complex_in:
        raise RuntimeError(
            "stft: cannot have onesided output if the window or the input is complex"
        )
    if center and align_to_window is not None:
        raise ValueError("stft: align_to_window should only be set when center=False")
    if center:
        x = _pad_signal(x, n_fft // 2, pad_mode)
    elif align_to_window and win < n_fft:
        from .shape import cat

        left = (n_fft - win) // 2
        shape = x._data.shape[:-1]
        zl = const(np.zeros(shape + (left,), x._data.dtype))
        zr = const(np.zeros(shape + (n_fft - win - left,), x._data.dtype))
        x = cat([zl, x, zr], -1)
    if x._data.shape[-1] < n_fft:
        raise ValueError(
            f"stft: expected 0 < n_fft <= {x._data.shape[-1]} (the padded signal's length), "
            f"got n_fft={n_fft}"
        )
    w = _window(window, win, n_fft, x.dtype, "stft")
    f = frames(x, n_fft, hop)
    if w is not None:
        f = f * w
    norm = _check_norm("ortho" if normalized else "backward", "stft")
    if onesided:
        spec = r2c(f, f._data.ndim - 1, norm)
    else:
        if f._data.dtype.kind != "c":
            f = convert(f, f.dtype.to_complex())
        spec = c2c(f, (f._data.ndim - 1,), True, norm)
    spec = spec.transpose(-1, -2)
    if not return_complex:
        from .complex_ops import view_as_real

        return view_as_real(spec)
    return spec


# -- istft ----------------------------------------------------------------------------------
@op(method="istft")
def istft(
    input: Tensor,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Tensor | None = None,
    center: bool = True,
    normalized: bool = False,
    onesided: bool | None = None,
    length: int | None = None,
    return_complex: bool = False,
) -> Tensor:
    """The inverse of :func:`stft`: inverse transforms of the frames, windowed, overlap-added
    and divided by the overlap-added squared window (which must stay non-zero: NOLA).

    Example:
        >>> import ember
        >>> x = ember.randn(32)
        >>> w = ember.hann_window(8)
        >>> s = ember.stft(x, 8, hop_length=2, window=w, return_complex=True)
        >>> y = ember.istft(s, 8, hop_length=2, window=w, length=32)
        >>> bool((y - x).abs().max() < 1e-5)
        True
    """
    if not isinstance(input, _core._Tensor):
        raise not_a_tensor("istft", input)
    if input._data.dtype.kind != "c":
        raise RuntimeError(
            f"istft requires a complex-valued input tensor (got {input.dtype}); use "
            "view_as_complex on a (..., 2) real tensor"
        )
    n_fft, hop, win = _lengths(n_fft, hop_length, win_length, "istft")
    if input._data.ndim not in (2, 3):
        raise ValueError(
            f"istft: expected a 2-D or 3-D complex tensor (B?, freq, frames), got shape "
            f"{tuple(input.shape)}"
        )
    n_freq = input._data.shape[-2]
    if onesided is None:
        onesided = n_freq != n_fft
    if onesided and n_freq != n_fft // 2 + 1:
        raise ValueError(
            f"istft: a one-sided spectrum of n_fft={n_fft} has {n_fft // 2 + 1} bins, got {n_freq}"
        )
    if not onesided and n_freq != n_fft:
        raise ValueError(
            f"istft: a two-sided spectrum of n_fft={n_fft} has {n_fft} bins, got {n_freq}"
        )
    if return_complex and onesided:
        raise RuntimeError("istft: cannot have onesided output if return_complex is True")
    spec = input.transpose(-1, -2)  # (B?, frames, freq)
    last = spec._data.ndim - 1
    norm = "ortho" if normalized else "backward"
    if return_complex:
        f = c2c(spec, (last,), False, norm)
    else:
        # a real result reads the one-sided half (as PyTorch: the input is taken to be
        # Hermitian, and the other half gets no gradient)
        f = c2r(resize(spec, last, n_fft // 2 + 1), last, n_fft, norm)
    rdtype = input.dtype.to_real()
    w = _window(window, win, n_fft, rdtype, "istft")
    if w is None:
        w = const(np.ones(n_fft, rdtype.np))
    n_frames = f._data.shape[-2]
    y = overlap_add(f * w, hop)
    wsq = w * w if w._data.dtype.kind != "c" else (w * w.conj()).real
    env = overlap_add(wsq.reshape(1, n_fft).expand(n_frames, n_fft), hop)
    total = y._data.shape[-1]
    start = n_fft // 2 if center else 0
    end = total - (n_fft // 2 if center else 0) if length is None else start + int(length)
    end = min(end, total)
    y = y[..., start:end]
    env = env[start:end]
    if env._data.size and float(np.abs(env._data).min()) < 1e-11:
        raise RuntimeError(
            "istft: the window's overlap-add is zero somewhere (the NOLA condition fails): use "
            "a smaller hop_length or another window"
        )
    y = y / env
    if length is not None and y._data.shape[-1] < length:
        y = resize(y, y._data.ndim - 1, int(length))
    return y


__all__ = module_ops(__name__)
