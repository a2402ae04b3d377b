"""Why each primitive without an ONNX lowering has none: the other half of the export table.

Every registered primitive is either in :data:`ember.onnx.lowering.LOWERINGS` or here, with a
reason :func:`ember.onnx.export` quotes when a traced graph contains it (a test keeps the two
tables covering the registry). ``tools/onnx_export_coverage.py`` writes the list to
``docs/onnx_export_coverage.md``.

Example:
    >>> from ember.onnx.unsupported import UNSUPPORTED, reason
    >>> UNSUPPORTED["adam_update"].startswith("optimizer update")
    True
    >>> reason("relu_grad")
    'training-only (backward of relu)'
"""

from __future__ import annotations

__all__ = ["UNSUPPORTED", "reason"]

_OPTIMIZER = "optimizer update (runs in the training loop, never in an inference graph)"
_SPECIAL = "no ONNX operator (special function; computed by a scipy kernel)"
_DATA_SHAPE = (
    "data-dependent output shape (the tracer that export uses stops there: fullgraph "
    "graphs have static shapes)"
)
_LINALG = (
    "no ONNX operator (a factorization whose outputs are not unrolled here: ONNX has only "
    "Det; Cholesky, LU, QR, triangular solves, solve and inv are unrolled)"
)


_COMPLEX = (
    "complex tensors: ONNX has no complex element type that runtimes execute (DFT, opset 17+, "
    "carries complex values as a trailing (real, imag) axis of a real tensor)"
)


def _backward(of: str) -> str:
    return f"training-only (backward of {of})"


UNSUPPORTED: dict[str, str] = {
    # training-only: adjoints the autograd engine emits
    "avg_pool2d_grad": _backward("avg_pool2d"),
    "batch_norm_backward": _backward("batch_norm"),
    "conv2d_backward": _backward("conv2d"),
    "conv2d_grad_weight": _backward("conv2d, weight part"),
    "cross_entropy_grad": _backward("cross_entropy"),
    "ctc_loss_grad": _backward("ctc_loss"),
    "diagonal_scatter_zeros": _backward("diagonal"),
    "dynamic_slice_grad": _backward("dynamic_slice"),
    "embedding_grad": _backward("embedding"),
    "erf_grad": _backward("erf"),
    "gelu_grad": _backward("gelu"),
    "gru_seq_bwd": _backward("the GRU sequence"),
    "index_fill_zero": _backward("index_fill"),
    "index_put_zeros": _backward("getitem"),
    "layer_norm_backward": _backward("layer_norm"),
    "group_norm": (
        "eager-only fused kernel (a traced group_norm records layer_norm and the affine "
        "mul/add, which export lowers)"
    ),
    "group_norm_backward": _backward("group_norm"),
    "amax_backward": _backward("amax / amin"),
    "linear_backward": _backward("linear"),
    "lstm_seq_bwd": _backward("the LSTM sequence"),
    "matmul_backward": _backward("matmul"),
    "max_pool2d_gather": _backward("max_pool2d's backward, second order"),
    "max_pool2d_scatter": _backward("max_pool2d"),
    "nll_loss_grad": _backward("nll_loss"),
    "pad_scatter": _backward("pad"),
    "relu_grad": _backward("relu"),
    "rms_norm_backward": _backward("rms_norm"),
    "rnn_seq_bwd": _backward("the RNN sequence"),
    "sdpa_backward": _backward("scaled_dot_product_attention"),
    "sigmoid_grad": _backward("sigmoid"),
    "silu_grad": _backward("silu"),
    "softmax_backward": _backward("softmax / log_softmax"),
    "softplus_grad": _backward("softplus"),
    "tanh_grad": _backward("tanh"),
    "target_weight": _backward("cross_entropy: the per-sample class weights of its gradient"),
    "batch_norm_train": (
        "training-only (batch statistics and running-stat updates; export runs in eval mode, "
        "where batch_norm uses the running statistics)"
    ),
    "ctc_loss": (
        "training-only loss (no ONNX operator for CTC; the alignment recursion would need a "
        "Loop over time)"
    ),
    # optimizer updates
    "adadelta_update": _OPTIMIZER,
    "adafactor_factored_update": _OPTIMIZER,
    "adafactor_update": _OPTIMIZER,
    "adagrad_update": _OPTIMIZER,
    "adam_update": _OPTIMIZER,
    "adamax_update": _OPTIMIZER,
    "asgd_update": _OPTIMIZER,
    "nadam_update": _OPTIMIZER,
    "radam_update": _OPTIMIZER,
    "rmsprop_update": _OPTIMIZER,
    "rprop_update": _OPTIMIZER,
    "sgd_update": _OPTIMIZER,
    "keras_adadelta_update": _OPTIMIZER,
    "keras_adafactor_update": _OPTIMIZER,
    "keras_adagrad_update": _OPTIMIZER,
    "keras_adam_update": _OPTIMIZER,
    "keras_adamax_update": _OPTIMIZER,
    "keras_ftrl_update": _OPTIMIZER,
    "keras_lion_update": _OPTIMIZER,
    "keras_nadam_update": _OPTIMIZER,
    "keras_rmsprop_update": _OPTIMIZER,
    "keras_sgd_update": _OPTIMIZER,
    "dynamic_slice": (
        "no ONNX operator with its bounds check (Slice clamps a start out of range where "
        "ember raises IndexError; ember.symbol's minibatch slices x[i*n:(i+1)*n])"
    ),
    # side effects
    "assign": "in-place write (ONNX graphs are pure functions; export rejects mutation)",
    "index_put": "in-place write (setitem; ONNX graphs are pure functions)",
    # data-dependent output shapes
    "bincount": _DATA_SHAPE,
    "getitem_mask": _DATA_SHAPE,
    "nonzero": _DATA_SHAPE,
    "repeat_index": _DATA_SHAPE,
    "unique": _DATA_SHAPE,
    "unique_consecutive": _DATA_SHAPE,
    # statistics ember computes in NumPy
    **dict.fromkeys(
        ("histogram_edges", "histogramdd"),
        "no ONNX operator (N-d binning on arbitrary edges; computed in NumPy)",
    ),
    # integer and float bit manipulation
    # special functions
    **dict.fromkeys(
        (
            "airy_ai",
            "igamma",
            "igammac",
        ),
        _SPECIAL,
    ),
    # complex numbers and Fourier transforms
    **dict.fromkeys(
        (
            "angle",
            "complex",
            "complex_part",
            "complex_solve",
            "conj",
            "fft_c2c",
            "fft_c2r",
            "fft_r2c",
            "linalg_eig_general",
            "overlap_add",
            "sgn_complex",
            "stft_frames",
            "view_as_complex",
            "view_as_real",
        ),
        _COMPLEX,
    ),
    # linear algebra
    **dict.fromkeys(
        (
            "linalg_eigh",
            "linalg_ldl_factor",
            "linalg_ldl_solve",
            "linalg_lstsq",
            "linalg_lstsq_sv",
            "linalg_pinv",
            "linalg_svd",
        ),
        _LINALG,
    ),
    # random tensors
    "random": (
        "random tensors drawn from a Philox stream keyed by a seed that each call draws from an "
        "ember Generator; ONNX RandomNormal/RandomUniform draw other values (no seed input)"
    ),
}


def reason(name: str) -> str:
    """Why primitive ``name`` has no ONNX lowering (``"no ONNX lowering"`` if unlisted).

    Example:
        >>> from ember.onnx.unsupported import reason
        >>> reason("sgd_update").split(" (")[0]
        'optimizer update'
    """
    return UNSUPPORTED.get(name, "no ONNX lowering")
