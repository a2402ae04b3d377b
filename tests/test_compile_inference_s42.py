"""``ember.compile`` in inference and generation loops: greedy decoding with a growing
sequence, KV caches passed in and returned, RNN sampling, beam search, batch inference, and
the ``model.eval()`` / ``no_grad`` / ``inference_mode`` switches around compiled calls. Each
program runs eagerly and compiled (values, tokens, retrace counts from ``explain``), and
against PyTorch where cheap. The training-style cases of sessions 40-42
(tests/test_compile_users_s40.py, test_compile_idioms_s41.py, test_compile_module_s41.py,
test_port_compiled_s42.py) are not repeated.

Fixed here: ``multinomial`` read its probabilities in NumPy and drew from the generator's
NumPy stream directly, so a compiled function that sampled with it never got a graph
("captured tensor ... made outside ember's ops") and the dry-run traces advanced the stream
(compiled runs drew other tokens than eager ones); it now draws uniforms keyed by one seed in
ember ops, as ``rand`` does. A KV cache that is a transposed view on the first step and a
contiguous ``cat`` after did not find its previous sizes (the automatic-dynamic lookup keyed
on the memory layout), so the time axis became symbolic one call late (4 graphs, now 3).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

import ember
from ember import nn

RTOL, ATOL = 1e-5, 1e-6
V, D, H = 17, 16, 2


def _close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=RTOL, atol=ATOL)


def _to_torch(mod, tmod):
    sd = {k: torch.tensor(v.numpy()) for k, v in mod.state_dict().items()}
    tmod.load_state_dict(sd)
    return tmod.eval()


class GPT(nn.Module):
    """A one-block GPT: written-out causal attention or ``nn.MultiheadAttention``."""

    def __init__(self, mha: bool = False, T: int = 32):
        super().__init__()
        self.emb, self.pos = nn.Embedding(V, D), nn.Embedding(T, D)
        self.mha = mha
        if mha:
            self.att = nn.MultiheadAttention(D, H, batch_first=True)
        else:
            self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.ln = nn.LayerNorm(D)
        self.ff = nn.Sequential(nn.Linear(D, 32), nn.GELU(), nn.Linear(32, D))
        self.head = nn.Linear(D, V)

    def forward(self, idx):
        B, T = idx.shape
        x = self.emb(idx) + self.pos(ember.arange(T))
        h = self.ln(x)
        if self.mha:
            mask = ember.triu(ember.ones(T, T, dtype=ember.bool), diagonal=1)
            a, _ = self.att(h, h, h, attn_mask=mask, need_weights=False)
        else:
            q, k, v = self.qkv(h).split(D, dim=-1)
            q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))
            att = (q @ k.transpose(-2, -1)) * (1.0 / (D // H) ** 0.5)
            att = att.masked_fill(ember.tril(ember.ones(T, T)) == 0, float("-inf")).softmax(-1)
            a = self.proj((att @ v).transpose(1, 2).reshape(B, T, -1))
        x = x + a
        x = x + self.ff(x)
        return self.head(x[:, -1, :])


class KVGPT(nn.Module):
    """One attention layer decoding a token at a time with a KV cache (a dict, tuple or
    list of tensors concatenated along the time axis, passed in and returned)."""

    def __init__(self, kind: str = "dict"):
        super().__init__()
        self.kind = kind
        self.emb, self.pos = nn.Embedding(V, D), nn.Embedding(32, D)
        self.qkv, self.proj, self.head = nn.Linear(D, 3 * D), nn.Linear(D, D), nn.Linear(D, V)

    def forward(self, tok, cache, pos):
        B = tok.shape[0]
        x = self.emb(tok) + self.pos(pos)
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (t.view(B, 1, H, D // H).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            pk, pv = (cache["k"], cache["v"]) if self.kind == "dict" else cache
            k, v = ember.cat([pk, k], 2), ember.cat([pv, v], 2)
        att = (q @ k.transpose(-2, -1) / (D // H) ** 0.5).softmax(-1)
        y = self.head(x + self.proj((att @ v).transpose(1, 2).reshape(B, 1, -1)))[:, -1]
        new = {"k": k, "v": v} if self.kind == "dict" else (k, v)
        return y, (list(new) if self.kind == "list" else new)


def _greedy(fn, n=20, ctx=ember.no_grad):
    idx = ember.tensor([[1], [2]])
    with ctx():
        for _ in range(n):
            idx = ember.cat([idx, fn(idx).argmax(-1, keepdim=True)], 1)
    return idx


def _kv_decode(fn, n=20, ctx=ember.inference_mode):
    tok, cache, out = ember.tensor([[1], [2]]), None, []
    with ctx():
        for i in range(n):
            y, cache = fn(tok, cache, ember.tensor([i]))
            tok = y.argmax(-1, keepdim=True)
            out.append(tok)
    return ember.cat(out, 1), y


# -- greedy decoding, the sequence growing by one token per call


@pytest.mark.parametrize("mha", [False, True])
def test_greedy_decoding_growing_sequence_two_traces(mha):
    ember.manual_seed(0)
    m = GPT(mha).eval()
    c = ember.compile(m)
    want, got = _greedy(m), _greedy(c)
    assert want.tolist() == got.tolist()
    ex = ember.compile.explain(c)
    assert ex.calls == 20 and ex.traces == 2, ex
    assert "argument 0 dim 1: s1" in ex.symbolic_dims
    # a longer run reuses the graph: no trace per call
    _greedy(c, n=25)
    assert ember.compile.explain(c).traces == 2


def test_greedy_decoding_equals_torch():
    ember.manual_seed(1)
    m = GPT(mha=True).eval()
    c = ember.compile(m)

    class TGPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.pos = torch.nn.Embedding(V, D), torch.nn.Embedding(32, D)
            self.att = torch.nn.MultiheadAttention(D, H, batch_first=True)
            self.ln = torch.nn.LayerNorm(D)
            self.ff = torch.nn.Sequential(
                torch.nn.Linear(D, 32), torch.nn.GELU(), torch.nn.Linear(32, D)
            )
            self.head = torch.nn.Linear(D, V)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.emb(idx) + self.pos(torch.arange(T))
            h = self.ln(x)
            mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
            x = x + self.att(h, h, h, attn_mask=mask, need_weights=False)[0]
            return self.head((x + self.ff(x))[:, -1, :])

    t = _to_torch(m, TGPT())
    idx = torch.tensor([[1], [2]])
    with torch.no_grad():
        for _ in range(12):
            idx = torch.cat([idx, t(idx).argmax(-1, keepdim=True)], 1)
    assert _greedy(c, n=12).tolist() == idx.tolist()


@pytest.mark.parametrize("kind", ["dict", "tuple", "list"])
def test_kv_cache_passed_in_and_returned_three_traces(kind):
    ember.manual_seed(2)
    m = KVGPT(kind).eval()
    c = ember.compile(m)
    (want, wy), (got, gy) = _kv_decode(m), _kv_decode(c)
    assert want.tolist() == got.tolist()
    _close(wy, gy)
    ex = ember.compile.explain(c)
    # no cache; a cache of 1 step (a transposed view); then the time axis symbolic
    assert ex.traces == 3, ex
    assert any("dim 2: s" in s for s in ex.symbolic_dims), ex.symbolic_dims
    _kv_decode(c, n=24)
    assert ember.compile.explain(c).traces == 3


def test_eval_no_grad_inference_mode_then_grad_mode():
    ember.manual_seed(3)
    m = GPT().eval()
    c = ember.compile(m)
    a = _greedy(m, 6, ember.inference_mode)
    assert _greedy(c, 6, ember.inference_mode).tolist() == a.tolist()
    assert _greedy(c, 6, ember.no_grad).tolist() == a.tolist()
    n = ember.compile.explain(c).traces
    assert n <= 3
    # a call under grad mode after: the right value (and a gradient), a retrace allowed
    idx = a[:, :5]
    want = m(idx)
    got = c(idx)
    _close(want, got)
    assert got.requires_grad
    got.sum().backward()
    g = m.head.weight.grad.clone()
    m.zero_grad()
    want.sum().backward()
    _close(m.head.weight.grad, g)
    assert ember.compile.explain(c).traces <= n + 1
    with ember.no_grad():  # back under no_grad: the old graph serves
        _close(m(a), c(a))
    assert ember.compile.explain(c).traces <= n + 1


# -- RNN language models sampling one token at a time


class RNNLM(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(11, 8)
        self.rnn = cell(8, 12, batch_first=True)
        self.out = nn.Linear(12, 11)

    def forward(self, tok, state):
        y, state = self.rnn(self.emb(tok), state)
        return self.out(y[:, -1]), state


def _sample(fn, m, temps, how):
    ember.manual_seed(5)
    tok, st, out = ember.tensor([[1], [3], [4]]), None, []
    with ember.no_grad():
        for t in temps:
            tok, st = fn(m, tok, st, t, how)
            out.append(tok)
    return ember.cat(out, 1), st


def _step(m, tok, state, temp, how):
    logits, state = m(tok, state)
    logits = logits / temp
    if how == "argmax":
        return logits.argmax(-1, keepdim=True), state
    if how == "topk":
        v, i = logits.topk(3, -1)
        pick = ember.multinomial(v.softmax(-1), 1)
        return i.gather(-1, pick), state
    return ember.multinomial(logits.softmax(-1), 1), state


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("how", ["argmax", "topk", "multinomial"])
def test_rnn_sampling_with_state_carried_draws_eagers_tokens(cell, how):
    ember.manual_seed(0)
    m = RNNLM(cell).eval()
    c = ember.compile(_step)
    temps = [1.0] * 8 + [0.5] * 4 + [0.7] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no graph break, no unstable graph
        (want, ws), (got, gs) = _sample(_step, m, temps, how), _sample(c, m, temps, how)
    assert want.tolist() == got.tolist()
    for a, b in zip(ws if cell is nn.LSTM else (ws,), gs if cell is nn.LSTM else (gs,)):
        _close(a, b)
    ex = ember.compile.explain(c)
    assert ex.graph_breaks == [] and ex.eager_signatures == 0
    # no state, then (h, c); each new temperature (a float constant) is a guard: one
    # retrace per new value, as torch.compile does
    assert ex.traces == 4, ex
    assert sum("1.0 -> 0.5" in e or "1.0 -> 0.7" in e for e in ex.events) == 2
    _sample(c, m, [1.0, 0.5, 0.7] * 3, how)  # values seen before: no retrace
    assert ember.compile.explain(c).traces == 4


def test_multinomial_eager_statistics_and_errors():
    ember.manual_seed(0)
    p = ember.tensor([[0.1, 0.0, 0.9], [1.0, 1.0, 2.0]])
    draws = ember.multinomial(p, 4000, replacement=True)
    assert draws.dtype == ember.int64 and tuple(draws.shape) == (2, 4000)
    assert 1 not in draws[0].tolist()
    np.testing.assert_allclose(
        np.bincount(draws[1].numpy(), minlength=3) / 4000, [0.25, 0.25, 0.5], atol=0.03
    )
    no_rep = ember.multinomial(ember.tensor([1.0, 0.0, 3.0, 2.0]), 3)
    assert sorted(no_rep.tolist()) == [0, 2, 3]
    assert ember.multinomial(ember.tensor([0.0, 5.0]), 1).tolist() == [1]
    with pytest.raises(ValueError, match="not enough non-negative category"):
        ember.multinomial(ember.tensor([1.0, 0.0, 0.0]), 2)
    t = torch.multinomial(torch.tensor([0.0, 1.0, 0.0]), 1)  # torch agrees where determined
    assert ember.multinomial(ember.tensor([0.0, 1.0, 0.0]), 1).tolist() == t.tolist()


# -- batch inference


def test_dataloader_smaller_last_batch_and_predict_with_tolist_outside():
    ember.manual_seed(4)
    clf = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.3), nn.Linear(12, 4)).eval()
    c = ember.compile(clf)

    def predict(model, x):
        return model(x).softmax(-1).argmax(-1)

    x = ember.randn(23, 6)
    loader = ember.data.DataLoader(ember.data.TensorDataset(x), batch_size=8)
    with ember.no_grad():
        want = [predict(clf, xb).tolist() for (xb,) in loader]
        got = [predict(c, xb).tolist() for (xb,) in loader]
        probs = c(x).softmax(-1)
    assert want == got and [len(g) for g in got] == [8, 8, 7]
    assert ember.compile.explain(c).traces == 1
    t = _to_torch(
        clf,
        torch.nn.Sequential(
            *[torch.nn.Linear(6, 12), torch.nn.ReLU()]
            + [torch.nn.Dropout(0.3), torch.nn.Linear(12, 4)]
        ),
    )
    with torch.no_grad():
        tp = t(torch.tensor(x.numpy())).softmax(-1)
    np.testing.assert_allclose(probs.numpy(), tp.numpy(), rtol=RTOL, atol=ATOL)
    assert [i for g in got for i in g] == tp.argmax(-1).tolist()


def test_variable_length_padded_batches_with_key_padding_mask():
    ember.manual_seed(6)
    att = nn.MultiheadAttention(D, H, batch_first=True).eval()

    def encode(x, pad):
        y, _ = att(x, x, x, key_padding_mask=pad, need_weights=False)
        keep = (~pad).unsqueeze(-1).float()
        return (y * keep).sum(1) / keep.sum(1)

    c = ember.compile(encode)
    tatt = _to_torch(att, torch.nn.MultiheadAttention(D, H, batch_first=True))
    rng = np.random.default_rng(0)
    with ember.no_grad():
        for b, t in [(3, 5), (4, 7), (2, 9), (5, 6), (3, 5)]:
            lens = rng.integers(1, t + 1, b)
            lens[0] = t
            pad = ember.tensor(np.arange(t)[None, :] >= lens[:, None])
            x = ember.randn(b, t, D)
            _close(encode(x, pad), c(x, pad))
            with torch.no_grad():
                tx, tp = torch.tensor(x.numpy()), torch.tensor(pad.numpy())
                ty = tatt(tx, tx, tx, key_padding_mask=tp, need_weights=False)[0]
                keep = (~tp).unsqueeze(-1).float()
                want = (ty * keep).sum(1) / keep.sum(1)
            np.testing.assert_allclose(c(x, pad).numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    assert ember.compile.explain(c).traces <= 2


# -- modes, options and switches


def test_eval_train_eval_switches_reuse_graphs():
    ember.manual_seed(7)
    m = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 3))
    c = ember.compile(m)
    x = ember.randn(6, 5)
    with ember.no_grad():
        c.eval()
        e1 = c(x)
        c.train()
        ember.manual_seed(1)
        t1 = c(x)
        c.eval()
        e2 = c(x)
        n = ember.compile.explain(c).traces
        assert n == 2
        got = []
        for _ in range(3):  # switching back and forth: no new graph
            c.train()
            ember.manual_seed(1)
            got.append(c(ember.randn(4, 5)))
            c.eval()
            got.append(c(x))
        assert ember.compile.explain(c).traces == n
    assert not m.training
    ember.manual_seed(7)
    m2 = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with ember.no_grad():
        m2.eval()
        _close(m2(x), e1)
        m2.train()
        ember.manual_seed(1)
        _close(m2(x), t1)
        m2.eval()
        _close(m2(x), e2)
        want = []
        for _ in range(3):  # (BatchNorm's running statistics move in train mode)
            m2.train()
            ember.manual_seed(1)
            want.append(m2(ember.randn(4, 5)))
            m2.eval()
            want.append(m2(x))
    for a, b in zip(want, got):
        _close(a, b)


@pytest.mark.parametrize("mode", ["max-autotune", "reduce-overhead", "default"])
def test_torch_modes_accepted_and_same_tokens(mode):
    ember.manual_seed(8)
    m = GPT().eval()
    c = ember.compile(m, mode=mode)
    assert _greedy(c, 8).tolist() == _greedy(m, 8).tolist()
    assert ember.compile.explain(c).traces == 2
    with pytest.raises(ValueError, match="unknown mode"):
        ember.compile(m, mode="fastest")


def test_dynamic_false_retraces_per_new_size_and_says_so():
    ember.manual_seed(9)
    m = GPT().eval()
    c = ember.compile(m, dynamic=False)
    assert _greedy(c, 5).tolist() == _greedy(m, 5).tolist()
    ex = ember.compile.explain(c)
    assert ex.traces == 5 and ex.symbolic_dims == []
    assert all("shape (2, " in e for e in ex.events[1:]), ex.events
    _greedy(c, 5)  # the same sizes again: cached
    assert ember.compile.explain(c).traces == 5


def test_fullgraph_with_item_in_forward_raises_naming_the_line():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x):
            y = self.lin(x)
            if y.sum().item() > 0:  # the line named
                return y
            return -y

    m = Gate().eval()
    with pytest.raises(ember.compiler.CompileError, match=r"item.*|if y\.sum\(\)\.item"):
        ember.compile(m, fullgraph=True)(ember.randn(3, 4))
    try:
        ember.compile(m, fullgraph=True)(ember.randn(3, 4))
    except ember.compiler.CompileError as exc:
        assert "test_compile_inference_s42.py" in str(exc) and "item" in str(exc)
    with pytest.warns(UserWarning, match="graph break"):
        c = ember.compile(m)
        x = ember.randn(3, 4)
        _close(c(x), m(x))


# -- beam search


def _beam_search(fn, start, beams=3, steps=6):
    """Beam search over (beam*vocab) with ``topk``, cache rows re-selected by beam index."""
    tok = ember.full((beams, 1), start, dtype=ember.int64)
    scores = ember.tensor([0.0] + [-1e9] * (beams - 1))
    cache, seqs = None, tok
    with ember.no_grad():
        for i in range(steps):
            logits, cache = fn(tok, cache, ember.tensor([i]))
            logp = logits.log_softmax(-1) + scores[:, None]
            scores, flat = logp.reshape(-1).topk(beams)
            beam, tok = flat // V, (flat % V)[:, None]
            cache = {"k": cache["k"].index_select(0, beam), "v": cache["v"][beam]}
            seqs = ember.cat([seqs.gather(0, beam[:, None].expand(-1, seqs.shape[1])), tok], 1)
    return seqs, scores


def test_beam_search_topk_gather_index_select_of_cache_rows():
    ember.manual_seed(10)
    m = KVGPT("dict").eval()
    c = ember.compile(m)
    (ws, wsc), (gs, gsc) = _beam_search(m, 3), _beam_search(c, 3)
    assert ws.tolist() == gs.tolist()
    _close(wsc, gsc)
    assert ember.compile.explain(c).traces <= 3
    _beam_search(c, 5, steps=8)
    assert ember.compile.explain(c).traces <= 3


def test_decode_loop_timing_eager_vs_compiled(capsys):
    ember.manual_seed(11)
    m = KVGPT("tuple").eval()
    c = ember.compile(m)
    _kv_decode(c, n=4)  # traced
    t0 = time.perf_counter()
    want, _ = _kv_decode(m, n=20)
    t1 = time.perf_counter()
    got, _ = _kv_decode(c, n=20)
    t2 = time.perf_counter()
    assert want.tolist() == got.tolist()
    with capsys.disabled():
        print(
            f"\n20-token KV decode: eager {1e3 * (t1 - t0):.1f} ms, "
            f"compiled {1e3 * (t2 - t1):.1f} ms"
        )
