"""ember.nn.utils.rnn (padding, packing, PackedSequence through RNN/LSTM/GRU) against
torch.nn.utils.rnn."""

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import ember
import ember.nn.utils.rnn as ernn

RNG = np.random.default_rng(0)


def _seqs(lengths, feat=(3,), dtype=np.float32):
    return [RNG.standard_normal((n, *feat)).astype(dtype) for n in lengths]


def _eq(e, t):
    np.testing.assert_array_equal(e.detach().numpy(), t.detach().numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("feat", [(), (3,), (2, 2)])
def test_pad_sequence_matches_torch_with_grads(batch_first, side, feat):
    arrays = _seqs([4, 1, 3], feat)
    es = [ember.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    e = ernn.pad_sequence(es, batch_first, -2.5, side)
    t = trnn.pad_sequence(ts, batch_first, -2.5, side)
    _eq(e, t)
    g = RNG.standard_normal(tuple(t.shape)).astype(np.float32)
    e.backward(ember.tensor(g))
    t.backward(torch.tensor(g))
    for a, b in zip(es, ts):
        _eq(a.grad, b.grad)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[5, 3, 3, 1], [2, 5, 1, 5, 3], [4], [1, 1]])
def test_pack_and_pad_round_trip_matches_torch(batch_first, lengths):
    sort = lengths == sorted(lengths, reverse=True)
    arrays = _seqs(lengths)
    padded = trnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first).numpy()
    xe = ember.tensor(padded, requires_grad=True)
    xt = torch.tensor(padded, requires_grad=True)
    pe = ernn.pack_padded_sequence(xe, lengths, batch_first, enforce_sorted=sort)
    pt = trnn.pack_padded_sequence(xt, lengths, batch_first, enforce_sorted=sort)
    _eq(pe.data, pt.data)
    _eq(pe.batch_sizes, pt.batch_sizes)
    for a, b in (
        (pe.sorted_indices, pt.sorted_indices),
        (pe.unsorted_indices, pt.unsorted_indices),
    ):
        assert (a is None) == (b is None)
        if a is not None:
            _eq(a, b)
    for total in (None, max(lengths) + 2):
        ye, le = ernn.pad_packed_sequence(pe, batch_first, 7.0, total)
        yt, lt = trnn.pad_packed_sequence(pt, batch_first, 7.0, total)
        _eq(ye, yt)
        _eq(le, lt)
        assert le.dtype == ember.int64
    g = RNG.standard_normal(tuple(yt.shape)).astype(np.float32)
    ye.backward(ember.tensor(g))
    yt.backward(torch.tensor(g))
    _eq(xe.grad, xt.grad)
    for a, b in zip(ernn.unpack_sequence(pe), trnn.unpack_sequence(pt)):
        _eq(a, b)
    ue = ernn.unpad_sequence(ember.tensor(padded), lengths, batch_first)
    ut = trnn.unpad_sequence(torch.tensor(padded), torch.tensor(lengths), batch_first)
    for a, b in zip(ue, ut):
        _eq(a, b)


def test_pack_sequence_matches_torch():
    arrays = _seqs([2, 4, 3], (2,))
    pe = ernn.pack_sequence([ember.tensor(a) for a in arrays], enforce_sorted=False)
    pt = trnn.pack_sequence([torch.tensor(a) for a in arrays], enforce_sorted=False)
    _eq(pe.data, pt.data)
    _eq(pe.batch_sizes, pt.batch_sizes)
    assert pe.to(ember.float64).data.dtype == ember.float64
    assert isinstance(pe, tuple) and pe._fields == pt._fields


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
def test_recurrent_modules_take_packed_sequences(cls, batch_first, with_hx):
    """Outputs, final states and all gradients as PyTorch, bidirectional and two layers."""
    lengths = [3, 6, 1, 6, 4]
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    torch.manual_seed(1)
    tm = getattr(torch.nn, cls)(3, 4, **kw)
    em = getattr(ember.nn, cls)(3, 4, **kw)
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    arrays = _seqs(lengths)
    padded = trnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first).numpy()
    xe = ember.tensor(padded, requires_grad=True)
    xt = torch.tensor(padded, requires_grad=True)
    h = [RNG.standard_normal((4, 5, 4)).astype(np.float32) for _ in range(2)]
    he = [ember.tensor(a, requires_grad=True) for a in h]
    ht = [torch.tensor(a, requires_grad=True) for a in h]
    hxe = (tuple(he) if cls == "LSTM" else he[0]) if with_hx else None
    hxt = (tuple(ht) if cls == "LSTM" else ht[0]) if with_hx else None
    oe, fe = em(ernn.pack_padded_sequence(xe, lengths, batch_first, False), hxe)
    ot, ft = tm(trnn.pack_padded_sequence(xt, lengths, batch_first, False), hxt)
    assert isinstance(oe, ernn.PackedSequence)
    fe, ft = (fe, ft) if cls == "LSTM" else ((fe,), (ft,))
    tol = {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(oe.data.detach().numpy(), ot.data.detach().numpy(), **tol)
    _eq(oe.batch_sizes, ot.batch_sizes)
    for a, b in zip(fe, ft):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
    w = RNG.standard_normal(tuple(ot.data.shape)).astype(np.float32)
    le = (oe.data * ember.tensor(w)).sum() + sum((f * f).sum() for f in fe)
    lt = (ot.data * torch.tensor(w)).sum() + sum((f * f).sum() for f in ft)
    le.backward()
    lt.backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), **tol)
    if with_hx:
        for a, b in zip(he, ht):
            if b.grad is not None:
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    for (name, pe), (_, pt) in zip(em.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), err_msg=name, **tol)


def test_bad_inputs_are_clear_errors():
    x = ember.zeros(4, 2, 3)
    with pytest.raises(RuntimeError, match="decreasing order"):
        ernn.pack_padded_sequence(x, [1, 4])
    with pytest.raises(RuntimeError, match="greater than 0"):
        ernn.pack_padded_sequence(x, [4, 0], enforce_sorted=False)
    with pytest.raises(RuntimeError, match="exceeds the 4 time steps"):
        ernn.pack_padded_sequence(x, [5, 1])
    with pytest.raises(ValueError, match="expected 2 lengths"):
        ernn.pack_padded_sequence(x, [4, 2, 1])
    with pytest.raises(ValueError, match="total_length=2"):
        ernn.pad_packed_sequence(ernn.pack_padded_sequence(x, [4, 2]), total_length=2)
    with pytest.raises(RuntimeError, match="empty list"):
        ernn.pad_sequence([])
    with pytest.raises(ValueError, match="trailing dimensions"):
        ernn.pad_sequence([ember.zeros(2, 3), ember.zeros(2, 4)])
    with pytest.raises(ValueError, match="padding_side"):
        ernn.pad_sequence([ember.zeros(2)], padding_side="middle")
    with pytest.raises(TypeError, match="PackedSequence"):
        ernn.pad_packed_sequence(x)
    gru = ember.nn.GRU(3, 2)
    with pytest.raises(RuntimeError, match="initial state"):
        gru(ernn.pack_padded_sequence(x, [4, 2]), ember.zeros(1, 3, 2))


def test_gru_on_a_sorted_packed_batch_matches_torch():
    """enforce_sorted=True (no sorted_indices): the batch order is the packing order."""
    lengths = [4, 4, 2, 1]
    torch.manual_seed(2)
    tm, em = torch.nn.GRU(3, 5), ember.nn.GRU(3, 5)
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    padded = trnn.pad_sequence([torch.tensor(a) for a in _seqs(lengths)]).numpy()
    oe, he = em(ernn.pack_padded_sequence(ember.tensor(padded), lengths))
    ot, ht = tm(trnn.pack_padded_sequence(torch.tensor(padded), lengths))
    assert oe.sorted_indices is None and ot.sorted_indices is None
    np.testing.assert_allclose(
        oe.data.detach().numpy(), ot.data.detach().numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(he.detach().numpy(), ht.detach().numpy(), rtol=1e-5, atol=1e-6)
