"""Convolution primitives: ``conv2d``, its two backward primitives and a fused backward.

Kernels compute in an NHWC layout internally. Float32 convolutions with one group (not
Winograd-sized, not few-channel) run the compiled loops of :mod:`ember.ops._conv_gemm`: each
block of output rows is gathered into an L2-sized im2col buffer straight from the unpadded
input and multiplied by ``cblas_sgemm``, the blocks on numba's threads (forward, the fused
backward and the weight gradient). Otherwise, and without numba, the (padded) input is
viewed through a zero-copy ``as_strided`` window view and gathered a few images at a time
into an im2col block of shape (images*Ho*Wo, kh*kw*C) that stays in L2, then multiplied by
the (kh*kw*C, O) weight in one BLAS GEMM per block; blocks are spread over Ember's threads
(``ember.ops._parallel``). NHWC was measured against the CNHW layout of earlier versions on
a 2-core AVX-512 VM: the (pixels, K) @ (K, O) GEMM with few output channels ran 1.4-2x
faster on OpenBLAS's AVX-512 kernels and equal on its AVX2 ones, and the im2col copy moves
contiguous runs of kw*C elements. The output is returned as an NCHW-shaped *view* of the
NHWC buffer (no transpose copy); NumPy ufuncs keep that layout, so the next conv reads it
back as NHWC for free.

Depthwise convolutions (one input channel per group) skip the GEMM: the output is the sum of
kh*kw window views times per-channel weights, vectorized along channels (a compiled loop
with the ``[jit]`` extra); NCHW inputs run compiled loops on channel planes instead
(``backends/kernels_conv.py``), with no transposed copy (:mod:`ember.ops._conv_depthwise`;
the helpers shared with it are :mod:`ember.ops._conv_util`). Inputs with few channels gather
their im2col from channel planes ("wide rows", :mod:`ember.ops._conv_planes`); batches of
fewer than 8 images split output rows into blocks. Special cases: 3x3 stride-1 convs with >=
64 channels use Winograd F(2x2, 3x3) (``_winograd.py``); 1x1 convs of NCHW inputs are (O, C)
@ (C, H*W) GEMMs per image; strided 1x1 convs subsample first; 'valid' and strided input
gradients are one GEMM per block plus a compiled col2im (one loop on numba's threads on the
packed micro-kernel).

The three primitives form an adjoint family, so gradients of any order exist:

- ``conv2d(x, w)``; VJP: ``conv2d_grad_input(g, w)``, ``conv2d_grad_weight(x, g)``;
- ``conv2d_grad_input(g, w)`` (= transposed convolution); VJP: ``conv2d(gg, w)``,
  ``conv2d_grad_weight(gg, g)``;
- ``conv2d_grad_weight(x, g)``; VJP: ``conv2d_grad_input(g, gg)``, ``conv2d(x, gg)``.

A training step (no backward graph recorded) of a stride-1 'same'-like conv instead runs the
fused, non-differentiable ``conv2d_backward`` (both gradients from one im2col).
"""

from __future__ import annotations

from . import _core
from ._ad import defvjp
from ._conv_forward import (  # noqa: F401  (re-exported: moved to _conv_forward)
    _MIN_SPLIT_CHANNELS,
    _WINOGRAD_MIN_CHANNELS,
    _channel_step,
    _conv1x1_compiled,
    _conv1x1_nchw,
    _conv2d_abstract,
    _conv2d_impl,
    _conv_nhwc,
    _conv_nhwc_blocks,
    _dense_1x1,
    _gemm_kernel_path,
    _grad_weight_1x1_nchw,
    _implicit_path,
    _nchw_1x1,
    _pad_block,
    _pixel_chunks,
    _row_chunks,
    _strided_1x1,
    _w_gemm,
)
from ._conv_fused_backward import (  # noqa: F401  (re-exported: moved to _conv_fused_backward)
    _backward_implicit,
    _conv2d_backward_abstract,
    _conv2d_backward_impl,
    _conv2d_backward_sample,
    _shared_backward_blocks,
    _shared_backward_ok,
)
from ._conv_grad_input import (  # noqa: F401  (re-exported: moved to _conv_grad_input)
    _COL2IM_MIN_C,
    _FULL_CONV_RATIO,
    _FULL_CONV_RATIO_IMPLICIT,
    _SCATTER_PAR_ELEMS,
    _col2im_kernel,
    _compiled_col2im,
    _conv2d_grad_input_abstract,
    _conv2d_grad_input_impl,
    _few_images_col2im,
    _full_conv_ratio,
    _grad_input_col2im,
    _grad_input_col2im_channels,
)
from ._conv_grad_weight import (  # noqa: F401  (re-exported: moved to _conv_grad_weight)
    _conv2d_grad_weight_abstract,
    _conv2d_grad_weight_impl,
    _gw_compiled,
)
from ._conv_planes import _plane_path  # noqa: F401  (re-exported: tests reach it here)
from ._conv_util import (  # noqa: F401  (re-exported: _workspace, normalization uses it)
    _compute_dtype,
    _workspace,
    clear_workspace,
    conv_out_size,
    reusing_forward_layout,
    shared_layouts,
)
from ._core import SAVE_INPUTS, SAVE_NONE, Primitive, bind
from ._parallel import gemm as gemm  # noqa: PLC0414  (re-exported: linear uses it)
from ._samples import defsample

__all__ = [
    "clear_workspace",
    "conv2d_grad_input_p",
    "conv2d_grad_weight_p",
    "conv2d_p",
    "conv_out_size",
    "gemm",
]


conv2d_p = Primitive(
    "conv2d", "opaque", impl=_conv2d_impl, abstract=_conv2d_abstract, save=SAVE_INPUTS
)


@defvjp(conv2d_p)
def _conv2d_vjp(g, out, x, w, b=None, *, stride, padding, dilation, groups):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    gb = g.sum((0, 2, 3)) if b is not None and getattr(b, "requires_grad", False) else None
    if x.shape[1] == 0:  # no input channels: both gradients are empty
        from .._creation import zeros

        gx = zeros(tuple(x.shape), dtype=x.dtype) if x.requires_grad else None
        gw = zeros(tuple(w.shape), dtype=w.dtype) if w.requires_grad else None
        return gx, gw, gb
    if (
        x.requires_grad
        and w.requires_grad
        and not _core._state.grad_enabled
        and _shared_backward_ok(x.shape, w.shape, g.shape, p, _compute_dtype(x._data))
    ):
        with reusing_forward_layout(x._data):  # (only releases the forward's copy of x)
            gx, gw = bind(conv2d_backward_p, (g, x, w), p)
        return gx, gw, gb
    # g converted to NHWC once for both gradients; x's padded NHWC copy from the forward
    with shared_layouts(), reusing_forward_layout(x._data):
        gx = (
            bind(conv2d_grad_input_p, (g, w), dict(p, in_hw=tuple(x.shape[2:])))
            if x.requires_grad
            else None
        )
        gw = (
            bind(conv2d_grad_weight_p, (x, g), dict(p, kernel=tuple(w.shape[2:])))
            if w.requires_grad
            else None
        )
    return gx, gw, gb


conv2d_backward_p = Primitive(
    "conv2d_backward",
    "opaque",
    impl=_conv2d_backward_impl,
    abstract=_conv2d_backward_abstract,
    nondiff=True,
    n_out=2,
    save=SAVE_NONE,
)
defsample(conv2d_backward_p, _conv2d_backward_sample)


conv2d_grad_input_p = Primitive(
    "conv2d_grad_input",
    "opaque",
    impl=_conv2d_grad_input_impl,
    abstract=_conv2d_grad_input_abstract,
    save=SAVE_INPUTS,
)


@defvjp(conv2d_grad_input_p)
def _conv2d_grad_input_vjp(gg, out, g, w, *, stride, padding, dilation, groups, in_hw):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dg = bind(conv2d_p, (gg, w), p) if g.requires_grad else None
    dw = (
        bind(conv2d_grad_weight_p, (gg, g), dict(p, kernel=tuple(w.shape[2:])))
        if w.requires_grad
        else None
    )
    return dg, dw


conv2d_grad_weight_p = Primitive(
    "conv2d_grad_weight",
    "opaque",
    impl=_conv2d_grad_weight_impl,
    abstract=_conv2d_grad_weight_abstract,
    save=SAVE_INPUTS,
)


@defvjp(conv2d_grad_weight_p)
def _conv2d_grad_weight_vjp(gg, out, x, g, *, stride, padding, dilation, groups, kernel):
    p = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    dx = (
        bind(conv2d_grad_input_p, (g, gg), dict(p, in_hw=tuple(x.shape[2:])))
        if x.requires_grad
        else None
    )
    dg = bind(conv2d_p, (x, gg), p) if g.requires_grad else None
    return dx, dg
