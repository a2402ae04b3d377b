"""``ember.fft``: PyTorch's ``torch.fft`` — discrete Fourier transforms of real and complex
tensors (``fft``/``ifft``, the 2-D and N-D forms, the real ``rfft``/``irfft`` family and the
Hermitian ``hfft``/``ihfft`` family), sample frequencies and spectrum shifts.

Every transform takes PyTorch's ``n``/``s``, ``dim`` and ``norm`` (``"backward"``, ``"ortho"``,
``"forward"``) and is differentiable: gradients are the adjoint transforms, as PyTorch's
(see :mod:`ember.ops.complex_fft`). Real inputs of the complex transforms are promoted to the
complex dtype of their precision (float32 -> complex64); integers to the default dtype first.

Example:
    >>> import ember
    >>> x = ember.tensor([1.0, 2.0, 3.0, 4.0])
    >>> ember.fft.rfft(x).abs().tolist()[0]
    10.0
    >>> ember.fft.irfft(ember.fft.rfft(x), n=4).tolist()
    [1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

from ._helpers import fftfreq, fftshift, ifftshift, rfftfreq
from ._transforms import (
    fft,
    fft2,
    fftn,
    hfft,
    hfft2,
    hfftn,
    ifft,
    ifft2,
    ifftn,
    ihfft,
    ihfft2,
    ihfftn,
    irfft,
    irfft2,
    irfftn,
    rfft,
    rfft2,
    rfftn,
)

__all__ = [
    "fft",
    "fft2",
    "fftfreq",
    "fftn",
    "fftshift",
    "hfft",
    "hfft2",
    "hfftn",
    "ifft",
    "ifft2",
    "ifftn",
    "ifftshift",
    "ihfft",
    "ihfft2",
    "ihfftn",
    "irfft",
    "irfft2",
    "irfftn",
    "rfft",
    "rfft2",
    "rfftfreq",
    "rfftn",
]
