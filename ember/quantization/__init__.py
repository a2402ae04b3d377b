"""int8 quantization: dynamic (``Linear``, ``LSTM``) and static post-training (``Conv2d``,
``Linear``) with calibration, int8 CPU kernels (AVX-512 VNNI through numba, an exact
NumPy/BLAS path otherwise) and QDQ ONNX export.

PyTorch's eager-mode names::

    q = ember.quantization.quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=ember.int8)

    p = ember.quantization.prepare(model)        # fuse conv+bn(+relu), attach observers
    for x in calibration_batches: p(x)
    q = ember.quantization.convert(p)
    # or: q = ember.quantization.quantize_static(model, calibration_arrays)

    ember.quantization.export_onnx(q, example_input, "model.int8.onnx")   # QDQ form

Example:
    >>> import ember
    >>> from ember import quantization as Q
    >>> m = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU(), ember.nn.Linear(8, 2))
    >>> tuple(Q.quantize_dynamic(m)(ember.ones(3, 4)).shape)
    (3, 2)
"""

from ._kernels import backend, set_backend
from ._qparams import (
    HistogramObserver,
    MinMaxObserver,
    dequantize,
    quantize_per_channel,
    quantize_per_tensor,
)
from .api import convert, prepare, quantize_dynamic, quantize_static
from .fuse import ConvReLU2d, LinearReLU, fuse_modules
from .modules import (
    DeQuantStub,
    DynamicQuantizedLinear,
    DynamicQuantizedLSTM,
    QuantizedConv2d,
    QuantizedLinear,
    QuantStub,
)
from .onnx_qdq import export_onnx

__all__ = [
    "ConvReLU2d",
    "DeQuantStub",
    "DynamicQuantizedLSTM",
    "DynamicQuantizedLinear",
    "HistogramObserver",
    "LinearReLU",
    "MinMaxObserver",
    "QuantStub",
    "QuantizedConv2d",
    "QuantizedLinear",
    "backend",
    "convert",
    "dequantize",
    "export_onnx",
    "fuse_modules",
    "prepare",
    "quantize_dynamic",
    "quantize_per_channel",
    "quantize_per_tensor",
    "quantize_static",
    "set_backend",
]
