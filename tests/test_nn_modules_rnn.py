"""RNN, LSTM and GRU (and their cells) against PyTorch: names, outputs and gradients."""

import numpy as np
import pytest
import torch
from _nn_parity import compare, needs_F

import ember
from ember import nn

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_matches_torch(cls, bidirectional, batch_first):
    kw = {"num_layers": 2, "bidirectional": bidirectional, "batch_first": batch_first}
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(5, 6, **kw)
    e = getattr(nn, cls)(5, 6, **kw)
    compare(t, e, [_x(3, 4, 5)])


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_batch_first_gradients_through_the_tiled_transpose(cls):
    """A batch-first model's output gradient arrives laid out (B, T, H) with batch rows
    4 KiB apart (T * H = 1024 floats): the backward transposes it with the compiled tiled
    copy; gradients still match PyTorch."""
    from ember.ops._layout import aliasing_planes

    x = _x(12, 4, 8)  # (B, T, In)
    g = np.ascontiguousarray(_x(12, 4, 256))  # (B, T, H): as a batch-first head's gradient
    assert aliasing_planes(g.transpose(1, 0, 2)[:, :, None, :])
    torch.manual_seed(5)
    t = getattr(torch.nn, cls)(8, 256, batch_first=True)
    e = getattr(nn, cls)(8, 256, batch_first=True)
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    tx, ex = torch.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
    t(tx)[0].backward(torch.tensor(g))
    e(ex)[0].backward(ember.tensor(g))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name, tp), ep in zip(t.named_parameters(), e.parameters()):
        np.testing.assert_allclose(
            ep.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name
        )


@pytest.mark.parametrize("use", ["output", "h_n", "c_n", "c_n and output"])
def test_lstm_gradients_from_any_subset_of_outputs(use):
    """Outputs nobody uses get no materialized zero gradient (None into the LSTM's VJP):
    a loss on the cell state alone, the hidden state alone or both matches PyTorch."""
    torch.manual_seed(6)
    t = torch.nn.LSTM(3, 7, num_layers=2)
    e = nn.LSTM(3, 7, num_layers=2)
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = _x(5, 4, 3)
    losses = []
    for lib, m in ((torch, t), (ember, e)):
        xx = lib.tensor(x, requires_grad=True)
        y, (h, c) = m(xx)
        loss = {"output": (y * y).sum(), "h_n": h.sum(), "c_n": (c * c).sum(),
                "c_n and output": c.sum() + y.mean()}[use]  # fmt: skip
        loss.backward()
        losses.append((xx.grad.numpy(), [p.grad.numpy() for p in m.parameters()]))
    (tg, tp), (eg, ep) = losses
    np.testing.assert_allclose(eg, tg, rtol=1e-4, atol=1e-6)
    for a, b in zip(ep, tp):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_units_major_copies(dtype):
    from ember.ops.rnn import units_major

    base = RNG.standard_normal((16, 5, 256)).astype(np.float32)  # (B, T, H) memory
    for a in (base.transpose(1, 0, 2), base[:, :3].transpose(1, 0, 2), base[:4].copy()):
        got = units_major(a, dtype)
        assert got.dtype == dtype and got.flags.c_contiguous
        np.testing.assert_array_equal(got, a.transpose(0, 2, 1).astype(dtype))


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_recurrent_initial_state_and_unbatched(cls):
    torch.manual_seed(1)
    t = getattr(torch.nn, cls)(4, 3, num_layers=2)
    e = getattr(nn, cls)(4, 3, num_layers=2)
    h0 = _x(2, 2, 3)
    if cls == "LSTM":
        c0 = _x(2, 2, 3)
        compare(
            t,
            e,
            [_x(5, 2, 4), h0, c0],
            forward=(lambda m, x, h, c: m(x, (h, c)), lambda m, x, h, c: m(x, (h, c))),
        )
        compare(t, e, [_x(5, 4)])  # unbatched
    else:
        compare(t, e, [_x(5, 2, 4), h0])
        compare(t, e, [_x(5, 4), _x(2, 3)])


def test_rnn_relu_no_bias():
    torch.manual_seed(2)
    t = torch.nn.RNN(3, 4, nonlinearity="relu", bias=False)
    e = nn.RNN(3, 4, nonlinearity="relu", bias=False)
    compare(t, e, [_x(4, 2, 3)])


@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
@needs_F("linear")
def test_cells_match_torch(cls):
    torch.manual_seed(3)
    t = getattr(torch.nn, cls)(4, 5)
    e = getattr(nn, cls)(4, 5)
    compare(t, e, [_x(3, 4)])


def test_lstm_dropout_between_layers_only_in_training():
    e = nn.LSTM(3, 4, num_layers=2, dropout=0.5).eval()
    x = ember.randn(5, 2, 3)
    a, _ = e(x)
    b, _ = e(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_lstm_state_dict_names_and_init_bounds():
    e = nn.LSTM(10, 8, num_layers=2, bidirectional=True)
    t = torch.nn.LSTM(10, 8, num_layers=2, bidirectional=True)
    assert list(e.state_dict()) == list(t.state_dict())
    bound = 1 / np.sqrt(8)
    for p in e.parameters():
        assert np.abs(p.detach().numpy()).max() <= bound
    assert repr(e) == "LSTM(10, 8, num_layers=2, bidirectional=True)"


def test_lstm_double_backward_raises_clearly():
    e = nn.LSTM(2, 3)
    x = ember.randn(4, 1, 2, requires_grad=True)
    out, _ = e(x)
    (g,) = ember.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="lstm_seq_bwd"):
        g.sum().backward()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("single", [True, False])
def test_lstm_long_sequence_both_blas_settings(bias, single, monkeypatch):
    # T >= 4 * PROBE: the loops time their first steps and choose a BLAS thread count;
    # both choices (forced here for the calls after the probe) must give PyTorch's values.
    from ember.ops import rnn as R

    T = 4 * R._BlasThreads.PROBE + 5
    monkeypatch.setattr(R._blas, "_state", {})
    # the per-step NumPy loop (float32 runs the compiled loop where numba is installed)
    monkeypatch.setattr(R, "_compiled_loop", lambda name, dtype: None)
    torch.manual_seed(4)
    t = torch.nn.LSTM(3, 5, bidirectional=True, bias=bias, batch_first=True)
    e = nn.LSTM(3, 5, bidirectional=True, bias=bias, batch_first=True)
    compare(t, e, [_x(2, T, 3)])  # first call: probes
    assert set(R._blas._state) == {"lstm_fwd", "lstm_bwd"}
    for st in R._blas._state.values():
        st[0], st[1], st[2] = single, 10**9, float("inf")  # no re-probe
    compare(
        t,
        e,
        [_x(2, T, 3), _x(2, 2, 5), _x(2, 2, 5)],
        forward=(lambda m, x, h, c: m(x, (h, c)), lambda m, x, h, c: m(x, (h, c))),
    )


def test_blas_scopes_are_reentrant_and_restore():
    from ember.ops import _parallel as P
    from ember.ops import rnn as R

    if P._get_blas_threads is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS that exposes its thread count")
    before = P._get_blas_threads()
    with R._blas._setting(True):
        with R._blas._setting(True):
            assert P._get_blas_threads() == 1
        assert P._get_blas_threads() == 1
        with R._blas._setting(False):
            assert P._get_blas_threads() == P.get_num_threads()
        assert P._get_blas_threads() == 1
    assert P._get_blas_threads() == before


@pytest.mark.parametrize("cls,kw", [("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_recurrence_long_no_bias_and_dtypes(cls, kw, bias, dtype):
    """The fused gru_seq / rnn_seq over a sequence long enough for the BLAS-thread probe, bias
    on and off, float32 and float64, reversed direction, with the final state in the loss."""
    torch.manual_seed(5)
    t = getattr(torch.nn, cls)(
        3, 5, bias=bias, bidirectional=True, dtype=getattr(torch, dtype), **kw
    )
    e = getattr(nn, cls)(3, 5, bias=bias, bidirectional=True, dtype=getattr(ember, dtype), **kw)
    e.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = RNG.standard_normal((40, 2, 3)).astype(dtype)
    xe, xt = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ye, he), (yt, ht) = e(xe), t(xt)
    ((ye * ye).sum() + (he * 2).sum()).backward()
    ((yt * yt).sum() + (ht * 2).sum()).backward()
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **tol)
    for (name, pe), (_, pt) in zip(e.named_parameters(), t.named_parameters()):
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("cls", ["GRU", "RNN"])
def test_fused_recurrence_double_backward_is_a_clear_error(cls):
    e = getattr(nn, cls)(2, 3)
    x = ember.randn(4, 1, 2, requires_grad=True)
    y, _ = e(x)
    (g,) = ember.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=f"{cls.lower()}_seq_bwd"):
        g.sum().backward()


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("blas", ["timed", "multi"])
def test_recurrent_bitwise_equal_across_thread_counts(cls, blas, monkeypatch):
    """Bitwise resume needs a training step's results not to depend on the thread count: at
    the char-LSTM benchmark's sizes (bench/workloads.py: batch 32, sequence 64, embedding 64,
    hidden 256), forward and backward at 1 and 2 threads give identical bits.

    At 2 threads the recurrent loops time OpenBLAS on one thread and on two and keep the
    faster (``ops.rnn._BlasThreads``), so the choice depends on the machine's load: "timed"
    lets it choose (its probe steps alternate both), "multi" forces two BLAS threads on every
    step."""
    from ember.ops import _parallel as P
    from ember.ops import rnn as R

    if blas == "multi":
        if P._set_blas_threads is None:
            pytest.skip("NumPy's BLAS is not an OpenBLAS whose thread count can be set")
        monkeypatch.setattr(type(R._blas), "PROBE", 10**6)  # no timing: the set choice holds
        monkeypatch.setattr(R._blas, "single", False)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((32, 64, 64)).astype(np.float32)
    gy = rng.standard_normal((32, 64, 256)).astype(np.float32)
    ember.manual_seed(3)
    model = getattr(nn, cls)(64, 256, batch_first=True)

    def step():
        model.zero_grad()
        xe = ember.tensor(x, requires_grad=True)
        y, state = model(xe)
        h = state[0] if cls == "LSTM" else state
        loss = (y * ember.tensor(gy)).sum() + (h * h).sum()
        if cls == "LSTM":
            loss = loss + state[1].sum()
        loss.backward()
        outs = [y.detach().numpy(), h.detach().numpy(), xe.grad.numpy()]
        return outs + [p.grad.numpy().copy() for p in model.parameters()]

    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        one = step()
        ember.set_num_threads(2)
        two = step()
    finally:
        ember.set_num_threads(old)
    names = ["output", "final state", "input grad"] + [n for n, _ in model.named_parameters()]
    for name, a, b in zip(names, one, two, strict=True):
        assert np.array_equal(a, b), f"{cls} {name}: 1 and 2 threads differ"
