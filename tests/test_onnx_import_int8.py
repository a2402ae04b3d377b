"""ONNX: importing models back into ember, values computed from the batch size, transposed
convolutions, and the int8 and index_add lowerings, each run in onnxruntime against ember's eager
results (the lowering table and its harness: tests/test_onnx_export.py)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import nn

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'ember[onnx]')")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is not installed (pip install 'ember[onnx]')"
)

from test_onnx_export import _INT8_CASES, _close, _eager, _f32, _seeded, check_export  # noqa: E402

import ember.onnx  # noqa: E402

# -- import ----------------------------------------------------------------------------------


def test_loaded_model_is_differentiable(tmp_path):
    ember.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4))
    path = tmp_path / "net.onnx"
    ember.onnx.export(net, ember.randn(2, 1, 4, 4), path, dynamic_axes={"input_0": [0]})
    back = ember.onnx.load(path)
    assert isinstance(back, nn.Module)
    assert len(list(back.parameters())) == 4
    x = ember.tensor(_f32(5, 1, 4, 4))
    net.train()
    (net(x) ** 2).sum().backward()
    (back(x) ** 2).sum().backward()
    want = {n: p.grad.numpy() for n, p in net.named_parameters()}
    got = {
        n.replace("params.", "").replace("__", "."): p.grad.numpy()
        for n, p in back.named_parameters()
    }
    assert sorted(got) == sorted(want)
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-4, atol=1e-5)
    # one SGD step moves the imported model's outputs
    opt = ember.optim.SGD(back.parameters(), lr=0.1)
    before = back(x).detach().numpy()
    opt.step()
    assert not np.allclose(back(x).detach().numpy(), before)


def test_load_lists_unknown_operators():
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [
            helper.make_node("TfIdfVectorizer", ["x"], ["y"]),
            helper.make_node("ImageDecoder", ["y"], ["z"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(NotImplementedError, match="2 ONNX operator.*ImageDecoder, TfIdfVectorizer"):
        ember.onnx.load(helper.make_model(g))


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: x.var(0) + x.std(0), id="ratio_of_batch"),
        pytest.param(lambda x: x.view(x.shape[0], -1) * x.shape[0], id="batch_size_value"),
        pytest.param(
            lambda x: x[:, -1].sum() + x[-1] + x[-2:].sum(0), id="negative_index_on_batch"
        ),
        pytest.param(lambda x: x.reshape(-1, 2).sum(1), id="reshape_merges_batch"),
    ],
)
def test_values_computed_from_the_batch_size(fn):
    x = _f32(6, 4)
    check_export(fn, lambda b: (x[:b],), batches=(3, 4, 6))


_CONV_T = [
    (
        nn.ConvTranspose1d,
        (4, 6, 3),
        {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 2},
        (2, 4, 7),
    ),
    (nn.ConvTranspose1d, (3, 2, 4), {"stride": 3, "output_padding": 2}, (2, 3, 5)),
    (
        nn.ConvTranspose2d,
        (4, 6, (3, 2)),
        {"stride": (2, 3), "padding": (0, 1), "output_padding": (1, 2), "dilation": (2, 1)},
        (2, 4, 5, 4),
    ),
    (nn.ConvTranspose2d, (2, 3, 3), {"padding": 2, "bias": False}, (1, 2, 6, 6)),
    (
        nn.ConvTranspose3d,
        (2, 4, 2),
        {"stride": 2, "groups": 2, "output_padding": 1, "padding": 1},
        (1, 2, 3, 3, 3),
    ),
]


@pytest.mark.parametrize("case", range(len(_CONV_T)))
def test_conv_transpose_matches_torch_and_onnxruntime(case):
    """ConvTranspose1d/2d/3d (stride, padding, output_padding, groups, dilation) export to
    ONNX ConvTranspose: onnxruntime equals ember at three batch sizes, ember equals torch."""
    import torch

    cls, args, kw, shape = _CONV_T[case]
    m = _seeded(cls, *args, **kw)
    ref = getattr(torch.nn, cls.__name__)(*args, **kw)
    ref.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in m.state_dict().items()})

    def make(b):
        return (_f32(b, *shape[1:], seed=b),)

    check_export(m, make, batches=(1, 2, 4))
    x = make(3)[0]
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    _close(_eager(m, (x,))[0], want, 1e-5, 1e-5)


def _newest_qdq_opset():
    """The newest supported opset at which onnxruntime has QuantizeLinear kernels (its
    newest opset may not have them yet: onnxruntime 1.32 lacks QuantizeLinear-28)."""
    from onnx import TensorProto, helper

    for opset in reversed(ember.onnx.supported_opsets()):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
        y = helper.make_tensor_value_info("y", TensorProto.UINT8, [2])
        s = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
        g = helper.make_graph(
            [helper.make_node("QuantizeLinear", ["x", "s"], ["y"])], "q", [x], [y], [s]
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - no kernel at this opset
            continue
        return opset
    raise AssertionError("onnxruntime runs QuantizeLinear at no supported opset")


@pytest.mark.parametrize("name", sorted(_INT8_CASES))
def test_int8_lowerings_match_eager(name):
    """The int8 primitives lower to QDQ: onnxruntime (fused integer kernels) equals ember's
    int8 model at opset 17 and the newest opset onnxruntime quantizes at."""
    make, x = _INT8_CASES[name]
    newest = _newest_qdq_opset()
    assert newest >= 21
    for opset in (17, newest):
        model = check_export(make(), lambda b: (x[:b],), batches=(1, 3), opset=opset)
        ops = [n.op_type for n in model.graph.node]
        assert "DequantizeLinear" in ops


_INDEX_ADD = {
    "onto_constant": lambda x: ember.zeros(5, 3).index_add(0, ember.tensor([0, 2, 2]), x),
    "onto_constant_alpha": lambda x: ember.ones(3, 5).index_add(
        1, ember.tensor([4, 1]), x.T[:, :2], alpha=2.0
    ),
    "constant_source": lambda x: x.index_add(0, ember.tensor([1, 1]), ember.ones(2, 3)),
}


@pytest.mark.parametrize("name", sorted(_INDEX_ADD))
def test_index_add_with_constant_operands(name):
    """index_add onto (or from) a constant folded into the graph: onnxruntime equals ember,
    and ember equals torch."""
    import torch

    fn = _INDEX_ADD[name]
    x = _f32(3, 3, seed=5)
    check_export(fn, lambda b: (x,), batches=(3,))
    t = torch.from_numpy(x)
    want = {
        "onto_constant": lambda: torch.zeros(5, 3).index_add(0, torch.tensor([0, 2, 2]), t),
        "onto_constant_alpha": lambda: torch.ones(3, 5).index_add(
            1, torch.tensor([4, 1]), t.T[:, :2], alpha=2.0
        ),
        "constant_source": lambda: t.index_add(0, torch.tensor([1, 1]), torch.ones(2, 3)),
    }[name]()
    _close(_eager(fn, (x,))[0], want.numpy(), 1e-6, 1e-6)
