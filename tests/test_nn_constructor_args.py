"""Layer constructors check their arguments: a wrong type is a TypeError and a value out of
range a ValueError naming the layer and the argument. Where torch checks at construction,
ember raises the same class (torch's RuntimeError/AssertionError for a bad value are
ValueError here); where torch only fails at the first forward (or never), ember refuses at
construction. Run under Python's default warning filters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ember import nn


@pytest.fixture(autouse=True)
def _default_warning_filters():
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        yield


T, V = TypeError, ValueError
# (layer, args, kwargs, expected error, the argument the message names)
CASES = [
    ("Linear", ("4", 3), {}, T, "in_features"),
    ("Linear", (4.0, 3), {}, T, "in_features"),
    ("Linear", (-1, 3), {}, V, "in_features"),
    ("Linear", (4, None), {}, T, "out_features"),
    ("Bilinear", (2, "3", 4), {}, T, "in2_features"),
    ("Bilinear", (2, 3, -4), {}, V, "out_features"),
    ("Conv2d", ("3", 4, 3), {}, T, "in_channels"),
    ("Conv2d", (3, 4, "3"), {}, T, "kernel_size"),
    ("Conv2d", (3, 4, 3.0), {}, T, "kernel_size"),
    ("Conv2d", (3, 4, 0), {}, V, "kernel_size"),
    ("Conv2d", (3, 4, (3, 3, 3)), {}, V, "kernel_size"),
    ("Conv1d", (3, 4, (3, 3)), {}, V, "kernel_size"),
    ("Conv2d", (3, 4, 3), {"stride": 0}, V, "stride"),
    ("Conv2d", (3, 4, 3), {"stride": 1.5}, T, "stride"),
    ("Conv2d", (3, 4, 3), {"padding": -1}, V, "padding"),
    ("Conv2d", (3, 4, 3), {"dilation": 0}, V, "dilation"),
    ("Conv2d", (3, 4, 3), {"groups": 0}, V, "groups"),
    ("Conv2d", (3, 4, 3), {"padding": "sam"}, V, "padding"),
    ("ConvTranspose2d", (3, 4, 3), {"output_padding": 2}, V, "output_padding"),
    ("Dropout", (1.5,), {}, V, "dropout probability"),
    ("Dropout", ("0.5",), {}, T, "p"),
    ("Dropout2d", (-0.5,), {}, V, "dropout probability"),
    ("Embedding", (10, "3"), {}, T, "embedding_dim"),
    ("Embedding", (-1, 3), {}, V, "num_embeddings"),
    ("Embedding", (10, 3), {"padding_idx": 10}, V, "Padding_idx"),
    ("BatchNorm1d", ("3",), {}, T, "num_features"),
    ("BatchNorm1d", (3.0,), {}, T, "num_features"),
    ("BatchNorm2d", (-3,), {}, V, "num_features"),
    ("BatchNorm2d", (3,), {"eps": "x"}, T, "eps"),
    ("LayerNorm", ("4",), {}, T, "normalized_shape"),
    ("LayerNorm", (4.5,), {}, T, "normalized_shape"),
    ("LayerNorm", ((2, -4),), {}, V, "normalized_shape"),
    ("GroupNorm", (0, 4), {}, V, "num_groups"),
    ("GroupNorm", ("2", 4), {}, T, "num_groups"),
    ("GroupNorm", (3, 4), {}, V, "num_groups"),
    ("RMSNorm", ("4",), {}, T, "normalized_shape"),
    ("MaxPool2d", ("2",), {}, T, "kernel_size"),
    ("MaxPool2d", (0,), {}, V, "kernel_size"),
    ("MaxPool2d", (2,), {"stride": 0}, V, "stride"),
    ("MaxPool2d", (2,), {"padding": 2}, V, "padding"),
    ("AvgPool2d", (2.5,), {}, T, "kernel_size"),
    ("AvgPool1d", ((2, 2),), {}, V, "kernel_size"),
    ("AdaptiveAvgPool2d", ("2",), {}, T, "output_size"),
    ("AdaptiveAvgPool2d", (-1,), {}, V, "output_size"),
    ("RNN", ("4", 3), {}, T, "input_size"),
    ("GRU", (4, 3.5), {}, T, "hidden_size"),
    ("LSTM", (4, 0), {}, V, "hidden_size"),
    ("RNN", (4, 3), {"num_layers": 0}, V, "num_layers"),
    ("RNN", (4, 3), {"dropout": 2.0}, V, "dropout"),
    ("LSTM", (4, 3), {"proj_size": -1}, V, "proj_size"),
    ("LSTMCell", ("4", 3), {}, T, "input_size"),
    ("GRUCell", (4, -3), {}, V, "hidden_size"),
    ("RNNCell", (4, 3), {"nonlinearity": "x"}, V, "nonlinearity"),
    ("MultiheadAttention", ("8", 2), {}, T, "embed_dim"),
    ("MultiheadAttention", (8, 3), {}, V, "num_heads"),
    ("MultiheadAttention", (8, 2), {"dropout": 1.5}, V, "dropout"),
    ("TransformerEncoderLayer", (8, 2), {"dim_feedforward": "16"}, T, "dim_feedforward"),
    ("TransformerEncoderLayer", (8, 2), {"dropout": 2.0}, V, "dropout"),
    ("PReLU", ("2",), {}, T, "num_parameters"),
    ("Softmax", ("1",), {}, T, "dim"),
    ("GELU", ("tan",), {}, V, "approximate"),
    ("Flatten", ("1",), {}, T, "start_dim"),
    ("LeakyReLU", ("0.1",), {}, T, "negative_slope"),
    ("Hardtanh", (1.0, -1.0), {}, V, "max_val"),
    ("Threshold", ("x", 1.0), {}, T, "threshold"),
    ("CrossEntropyLoss", (), {"label_smoothing": 1.5}, V, "label_smoothing"),
    ("CrossEntropyLoss", (), {"ignore_index": 1.5}, T, "ignore_index"),
    ("MSELoss", (), {"reduction": "avg"}, V, "reduction"),
    ("HuberLoss", (), {"delta": -1.0}, V, "delta"),
    ("TripletMarginLoss", (), {"margin": "1"}, T, "margin"),
    ("TripletMarginLoss", (), {"margin": -1.0}, V, "margin"),
    ("Unflatten", (1, (2, "3")), {}, T, "unflattened_size"),
]


def _torch_error(name, args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns on zero-element inits
        try:
            getattr(torch.nn, name)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the oracle's class is what is compared
            return type(e)
    return None


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "err", "names"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_bad_constructor_arguments(name, args, kwargs, err, names):
    with pytest.raises(err, match=names):
        getattr(nn, name)(*args, **kwargs)
    ref = _torch_error(name, args, kwargs)
    if ref is not None:  # torch checks it here too: same class of error
        assert (err is TypeError) == issubclass(ref, TypeError), (ref, err)


def test_good_arguments_still_work():
    lin = nn.Linear(np.int64(4), np.int32(3))  # NumPy integers are ints, as in torch
    assert (lin.in_features, lin.out_features) == (4, 3)
    assert nn.Conv2d(3, 4, [3, 5], stride=(1, 2), padding=(1, 2)).kernel_size == (3, 5)
    assert nn.MaxPool2d(3, padding=1).padding == 1
    assert nn.AdaptiveAvgPool2d((None, 2)).output_size == (None, 2)
    assert nn.Dropout(0).p == 0 and nn.Dropout(1.0).p == 1.0
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    assert nn.Unflatten(1, (2, -1)).unflattened_size == (2, -1)
    assert nn.LayerNorm([2, 3]).normalized_shape == (2, 3)
    assert nn.Softmax(dim=None).dim is None
