"""The ported PyTorch programs (``tests/_torch_port_cv``, ``tests/_torch_port_nlp``, with
``torch`` renamed to ``ember``) trained compiled, both ways users write it: the module wrapped
(``model = ember.compile(model)``; backward and the optimizer step eager around it) and the
whole training step as one compiled function (zero_grad, forward, ``loss.backward()``,
``optimizer.step()``). Losses, outputs, final parameters and buffers match the same program
run eagerly on Ember (dropout and ``randn_like`` included: the compiled graph draws from the
same generator state), each compiled function traces once for a fixed shape, and a changed
batch size does not retrace."""

import os
import re
import types
import warnings

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F

HERE = os.path.dirname(__file__)


def _port(rel):
    """The script at ``tests/<rel>`` with every ``torch`` renamed to ``ember``, as a module."""
    path = os.path.join(HERE, rel)
    with open(path) as f:
        source = re.sub(r"\btorch\b", "ember", f.read())
    module = types.ModuleType("compiled_port_" + os.path.basename(rel)[:-3])
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102  (our own test script)
    return module


CNN = _port("_torch_port_cv/cifar_cnn.py")
GAN = _port("_torch_port_cv/gan.py")
RES = _port("_torch_port_cv/resnet_block.py")
UNET = _port("_torch_port_cv/unet.py")
VAE = _port("_torch_port_cv/vae.py")
LSTM = _port("_torch_port_nlp/char_lstm_lm.py")
MHA = _port("_torch_port_nlp/mha_sdpa.py")
S2S = _port("_torch_port_nlp/seq2seq_attention.py")
TXT = _port("_torch_port_nlp/text_classification.py")
TLM = _port("_torch_port_nlp/transformer_lm.py")


def _init(model, seed, scale=0.3):
    rng = np.random.RandomState(seed)
    with ember.no_grad():
        for p in model.parameters():
            p.copy_(ember.tensor(scale * rng.randn(*p.shape), dtype=p.dtype))
    return model


def _f32(rng, *shape):
    return ember.tensor(rng.randn(*shape).astype(np.float32))


def _ints(rng, high, *shape, low=0):
    return ember.tensor(rng.randint(low, high, size=shape).astype(np.int64))


# -- the programs: build() -> (model, optimizer); batch(rng, b) -> the step's tensors;
# loss(forward, *batch) -> (loss, output), ``forward`` the model or its compiled wrapper


def _cnn_build():
    model = _init(CNN.Net(), 0)
    opt = ember.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    return model, opt


_CE_SMOOTH = nn.CrossEntropyLoss(label_smoothing=0.1)


def _cnn_loss(f, x, y):
    out = f(x)
    return _CE_SMOOTH(out, y), out


def _cnn_batch(rng, b):
    return _f32(rng, b, 3, 8, 8), _ints(rng, 10, b)


class _GanD(nn.Module):
    """The GAN program's discriminator step: real and fake logits against labels plus the
    gradient penalty (``autograd.grad(create_graph=True)`` on the interpolates)."""

    def __init__(self):
        super().__init__()
        self.netG, self.netD = GAN.Generator(), GAN.Discriminator()

    def forward(self, real, noise):
        fake = self.netG(noise).detach()
        return ember.cat([self.netD(real), self.netD(fake)])


def _gan_build():
    model = _init(_GanD(), 1, 0.5)
    return model, ember.optim.Adam(model.netD.parameters(), lr=2e-3, betas=(0.5, 0.999))


_BCE = nn.BCEWithLogitsLoss()


def _gan_loss(f, real, noise, alpha):
    out = f(real, noise)
    n = real.shape[0]
    label = ember.cat([ember.ones(n), ember.zeros(n)])
    fake = f.netG(noise).detach()  # (a compiled module forwards .netG to the original)
    gp = GAN.gradient_penalty(f.netD, real, fake, alpha)
    return _BCE(out, label) + 0.5 * gp, out


def _gan_batch(rng, b):
    return _f32(rng, b, 2) * 0.5 + 1.0, _f32(rng, b, 4), ember.tensor(rng.rand(b, 1).astype("f"))


def _res_build():
    model = _init(RES.TinyResNet(), 2, 0.2)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    opt = ember.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=1e-2
    )
    return model, opt


def _res_loss(f, x, y):
    out = f(x)
    return F.cross_entropy(out, y), out


def _res_batch(rng, b):
    return ember.tensor(rng.rand(b, 3, 8, 8).astype("f")), _ints(rng, 5, b)


def _unet_build():
    model = _init(UNET.UNet(), 3)
    return model, ember.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99))


def _unet_loss(f, x, mask):
    out = f(x)
    return F.binary_cross_entropy_with_logits(out, mask, pos_weight=ember.tensor([2.0])), out


def _unet_batch(rng, b):
    return _f32(rng, b, 2, 8, 8), ember.tensor((rng.rand(b, 1, 8, 8) > 0.7).astype("f"))


def _vae_build():
    model = _init(VAE.VAE(), 4)
    return model, ember.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4, amsgrad=True)


def _vae_loss(f, x, eps):
    recon, mu, logvar = f(x, eps)
    loss, _bce, _kld = VAE.loss_function(recon, x, mu, logvar)
    return loss, recon


def _vae_batch(rng, b):
    return ember.tensor(rng.rand(b, 1, 4, 4).astype("f")), _f32(rng, b, 3)


def _vae_random_loss(f, x):  # the reparameterization draws with randn_like
    recon, mu, logvar = f(x)
    return VAE.loss_function(recon, x, mu, logvar)[0], recon


def _lstm_build():
    model = _init(LSTM.CharRNN(12), 5)  # train mode: dropout 0.2 between the LSTM layers
    return model, ember.optim.Adam(model.parameters(), lr=0.01)


def _lstm_loss(f, x, y):
    logits, _hidden = f(x)
    return F.cross_entropy(logits.reshape(-1, 12), y.reshape(-1)), logits


def _lstm_batch(rng, b):
    return _ints(rng, 12, b, 6), _ints(rng, 12, b, 6)


def _mha_build():
    model = _init(MHA.CausalSelfAttention(8, 2), 6)
    return model, ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _mha_loss(f, x):
    y = f(x)
    return y.pow(2).mean(), y


def _mha_batch(rng, b):
    return (_f32(rng, b, 5, 8),)


class _Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = S2S.EncoderRNN(12, 8)
        self.decoder = S2S.AttnDecoderRNN(8, 10)

    def forward(self, src, lengths, mask, tgt):
        enc_out, enc_hidden, _ = self.encoder(src, lengths)
        return self.decoder(enc_out, enc_hidden, mask, tgt)[0]


def _s2s_build():
    model = _init(_Seq2Seq(), 7, 0.2)
    return model, ember.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)


def _s2s_loss(f, src, lengths, mask, tgt):
    out = f(src, lengths, mask, tgt)
    return F.nll_loss(out.reshape(-1, out.size(-1)), tgt.reshape(-1), ignore_index=0), out


def _s2s_batch(rng, b):
    lengths = rng.randint(2, 6, size=b)
    lengths[0] = 5
    src = rng.randint(3, 12, size=(b, 5)) * (np.arange(5) < lengths[:, None])
    src = ember.tensor(src.astype(np.int64))
    return src, ember.tensor(lengths.astype(np.int64)), src != 0, _ints(rng, 10, b, 4, low=2)


def _bag_build():
    model = _init(TXT.TextClassificationModel(20, 6, 3), 8)
    return model, ember.optim.SGD(model.parameters(), lr=2.0)


def _bag_loss(f, text, offsets, label):
    out = f(text, offsets)
    return F.cross_entropy(out, label, weight=ember.tensor([1.0, 2.0, 0.5])), out


def _bag_batch(rng, b):
    lens = rng.randint(1, 5, size=b)
    text = _ints(rng, 20, int(lens.sum()))
    offsets = ember.tensor(np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64))
    return text, offsets, _ints(rng, 3, b)


def _textcnn_build():
    model = _init(TXT.TextCNN(20, 6, 3), 9)  # train mode: dropout 0.5
    return model, ember.optim.Adam(model.parameters(), lr=0.05)


def _textcnn_loss(f, x, label):
    out = f(x)
    return F.cross_entropy(out, label), out


def _textcnn_batch(rng, b):
    return _ints(rng, 20, b, 7), _ints(rng, 3, b)


def _tlm_build():
    model = TLM.TransformerLM(11, dropout=0.1)
    _init(model, 10, 0.2)
    opt = ember.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.01)
    return model, opt


_CAUSAL = nn.Transformer.generate_square_subsequent_mask(6)


def _tlm_loss(f, src, target):
    logits = f(src, _CAUSAL)
    return F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1)), logits


def _tlm_batch(rng, b):
    return _ints(rng, 11, b, 6, low=1), _ints(rng, 11, b, 6, low=1)


PROGRAMS = {
    "cifar_cnn": (_cnn_build, _cnn_loss, _cnn_batch),
    "gan": (_gan_build, _gan_loss, _gan_batch),
    "resnet_block": (_res_build, _res_loss, _res_batch),
    "unet": (_unet_build, _unet_loss, _unet_batch),
    "vae": (_vae_build, _vae_loss, _vae_batch),
    "vae_randn_like": (_vae_build, _vae_random_loss, lambda rng, b: _vae_batch(rng, b)[:1]),
    "char_lstm_lm": (_lstm_build, _lstm_loss, _lstm_batch),
    "mha_sdpa": (_mha_build, _mha_loss, _mha_batch),
    "seq2seq_attention": (_s2s_build, _s2s_loss, _s2s_batch),
    "text_classification_bag": (_bag_build, _bag_loss, _bag_batch),
    "text_classification_cnn": (_textcnn_build, _textcnn_loss, _textcnn_batch),
    "transformer_lm": (_tlm_build, _tlm_loss, _tlm_batch),
}


def _train(name, mode, sizes=(4, 4, 4, 3)):
    """Train ``name`` a few steps (``mode``: eager, module or step); its losses, outputs,
    final state and the compiled function (None when eager)."""
    build, lossf, batch = PROGRAMS[name]
    rng = np.random.RandomState(11)
    batches = [batch(rng, b) for b in sizes]
    ember.manual_seed(0)
    model, opt = build()
    fwd = ember.compile(model) if mode == "module" else model

    def step(*b):
        opt.zero_grad()
        loss, out = lossf(fwd, *b)
        loss.backward()
        opt.step()
        return loss, out

    run = ember.compile(step) if mode == "step" else step
    losses, outs = [], []
    for b in batches:
        loss, out = run(*b)
        losses.append(loss.item())
        outs.append(out.detach().numpy().copy())
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, outs, state, (fwd if mode == "module" else run if mode == "step" else None)


# graphs traced per compiled function over batch sizes (4, 4, 3, 5): one, the batch symbolic.
# The EmbeddingBag model's first argument is the flat token stream (its axis 0 is not the
# batch): the first new batch size retraces once with the offsets' axis symbolic too, as
# torch.compile's automatic dynamic shapes; the next size does not retrace.
TRACES = {"text_classification_bag": 2}
# the encoder packs the padded batch by its lengths (pack_padded_sequence reads them): a
# graph break, the step runs eagerly (torch.compile breaks there too)
BREAKS = {"seq2seq_attention": "Tensor.tolist()"}
SIZES = (4, 4, 3, 5)


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)


@pytest.mark.parametrize("mode", ["module", "step"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_compiled_training_matches_eager(name, mode):
    want_losses, want_outs, want_state, _ = _train(name, "eager", SIZES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses, outs, state, compiled = _train(name, mode, SIZES)
    _close(losses, want_losses, f"{name} {mode}: losses")
    for i, (g, w) in enumerate(zip(outs, want_outs)):
        assert g.shape == w.shape
        _close(g, w, f"{name} {mode}: output of step {i}")
    assert sorted(state) == sorted(want_state)
    for k in want_state:
        _close(state[k], want_state[k], f"{name} {mode}: final {k}")
    ex = ember.compile.explain(compiled)
    assert ex.calls == len(SIZES)
    assert ex.traces == TRACES.get(name, 1), str(ex)
    breaks = [str(w.message) for w in caught if "graph break" in str(w.message)]
    if name in BREAKS:
        assert len(ex.graph_breaks) == 1 and BREAKS[name] in ex.graph_breaks[0], str(ex)
        assert len(breaks) == 1 and "seq2seq_attention.py" in breaks[0]
    else:
        assert ex.graph_breaks == [] and breaks == [], str(ex)
        assert ex.eager_signatures == 0, str(ex)
        if TRACES.get(name, 1) == 1:
            assert "argument 0 dim 0: B" in ex.symbolic_dims, str(ex)


def test_dropout_draws_the_same_numbers_compiled():
    """The dropout masks of a compiled step are eager's (same seed, same generator state
    after), and different seeds give different masks."""
    name = "text_classification_cnn"
    a = _train(name, "step", (4, 4))
    b = _train(name, "eager", (4, 4))
    np.testing.assert_array_equal(a[0], b[0])
    after = ember.rand(3).numpy()
    _train(name, "eager", (4, 4))
    np.testing.assert_array_equal(after, ember.rand(3).numpy())
    model, _ = _textcnn_build()
    x = _ints(np.random.RandomState(0), 20, 4, 7)
    f = ember.compile(model)
    ember.manual_seed(1)
    first = f(x).detach().numpy()
    ember.manual_seed(2)
    assert not np.array_equal(first, f(x).detach().numpy())
    assert f.explain().traces == 1


def test_scheduled_learning_rate_and_clipping_do_not_retrace():
    """The transformer program's step with LambdaLR warm-up (the lr changes every step) and
    gradient-norm clipping: one graph, values as eager."""

    def run(compiled):
        ember.manual_seed(0)
        model, opt = _tlm_build()
        sched = ember.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda s: min(1.0, (s + 1) / 4))

        def step(src, tgt):
            opt.zero_grad(set_to_none=True)
            loss, _ = _tlm_loss(model, src, tgt)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            return loss

        f = ember.compile(step) if compiled else step
        rng = np.random.RandomState(1)
        losses = []
        for b in (4, 4, 4, 4, 2):
            losses.append(f(*_tlm_batch(rng, b)).item())
            sched.step()
        return losses, [p.detach().numpy() for p in model.parameters()], f

    want, want_p, _ = run(False)
    got, got_p, f = run(True)
    _close(got, want, "losses")
    for g, w in zip(got_p, want_p):
        _close(g, w, "parameters")
    assert f.explain().traces == 1, str(f.explain())


def test_lstm_hidden_state_carried_between_steps():
    """The char-LSTM program's loop: the (layers, batch, hidden) state carried (detached)
    from step to step. Its batch is axis 1: the first trace keeps the batch static, the
    first new batch size retraces once with it symbolic, later sizes do not retrace."""

    def run(compiled):
        ember.manual_seed(0)
        model, opt = _lstm_build()

        def step(x, y, h):
            opt.zero_grad()
            logits, h = model(x, h)
            loss = F.cross_entropy(logits.reshape(-1, 12), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            opt.step()
            return loss, tuple(t.detach() for t in h)

        f = ember.compile(step) if compiled else step
        rng = np.random.RandomState(1)
        losses, h = [], None
        for b in (4, 4, 4, 3, 5):
            if h is None or h[0].shape[1] != b:
                h = model.init_hidden(b)
            loss, h = f(*_lstm_batch(rng, b), h)
            losses.append(loss.item())
        return losses, h, f

    want, want_h, _ = run(False)
    got, got_h, f = run(True)
    _close(got, want, "losses")
    for g, w in zip(got_h, want_h):
        _close(g.numpy(), w.numpy(), "hidden state")
    ex = f.explain()
    assert ex.traces == 2 and "argument 2 dim 1: B" in ex.symbolic_dims, str(ex)


def test_gan_both_updates_in_one_compiled_step():
    """The GAN program's whole iteration compiled: the discriminator step with the gradient
    penalty (double backward), ``requires_grad_`` toggling, then the generator step."""

    def run(compiled):
        netG, netD = _init(GAN.Generator(), 1, 0.5), _init(GAN.Discriminator(), 2, 0.5)
        opt_d = ember.optim.Adam(netD.parameters(), lr=2e-3, betas=(0.5, 0.999))
        opt_g = ember.optim.Adam(netG.parameters(), lr=2e-3, betas=(0.5, 0.999))

        def step(real, noise, alpha):
            for p in netD.parameters():
                p.requires_grad_(True)
            netD.zero_grad(set_to_none=True)
            label = ember.full((real.size(0),), 1.0)
            err_real = _BCE(netD(real), label)
            fake = netG(noise)
            err_fake = _BCE(netD(fake.detach()), ember.full_like(label, 0.0))
            err_d = (
                err_real + err_fake + 0.5 * GAN.gradient_penalty(netD, real, fake.detach(), alpha)
            )
            err_d.backward()
            opt_d.step()
            for p in netD.parameters():
                p.requires_grad_(False)
            opt_g.zero_grad(set_to_none=True)
            err_g = _BCE(netD(fake), label)
            err_g.backward()
            opt_g.step()
            return err_d, err_g

        f = ember.compile(step) if compiled else step
        rng = np.random.RandomState(1)
        losses = [[t.item() for t in f(*_gan_batch(rng, b))] for b in (8, 8, 8, 5)]
        params = [p.detach().numpy() for p in [*netG.parameters(), *netD.parameters()]]
        return losses, params, f

    want, want_p, _ = run(False)
    got, got_p, f = run(True)
    _close(np.array(got), np.array(want), "losses")
    for g, w in zip(got_p, want_p):
        _close(g, w, "parameters")
    assert f.explain().traces == 1 and f.explain().graph_breaks == [], str(f.explain())


def test_compiled_module_follows_train_and_eval():
    """``model.train()``/``model.eval()`` on the compiled CNN (batch norm's batch statistics
    and running-stat updates vs its running stats): a graph per flag, values as eager."""
    x = _f32(np.random.RandomState(0), 4, 3, 8, 8)
    results = []
    for compiled in (False, True):
        ember.manual_seed(0)
        model, _ = _cnn_build()
        f = ember.compile(model) if compiled else model
        outs = []
        for flag in ("train", "eval", "train", "eval"):
            getattr(f, flag)()
            with ember.no_grad():
                outs.append(f(x).numpy())
        results.append((outs, model.features[1].running_mean.numpy(), f))
    for g, w in zip(results[1][0], results[0][0]):
        _close(g, w, "outputs")
    _close(results[1][1], results[0][1], "running mean")
    assert results[1][2].explain().traces == 2
