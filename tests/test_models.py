"""ember.models: published parameter counts, PyTorch-compatible state-dict names, and forward
(and, for ResNet, backward) parity with PyTorch reference modules on the same weights."""

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from tests import _zoo_torch_ref as R

# published counts (torchvision / Hugging Face); constructing the big ones is cheap enough
PUBLISHED = {
    "lenet5": 61_706,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "vgg11": 132_863_336,
    "vgg11_bn": 132_868_840,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "mobilenet_v2": 3_504_872,
    "gpt2_small": 124_439_808,
    "bert_base": 109_482_240,
    "minilm_l6": 22_713_216,
}


def _count(m):
    return sum(p.numel() for p in m.parameters())


# over 100M parameters: building one takes seconds of random init, so they run with the slow set
_BIG = {"vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "gpt2_small", "bert_base"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in _BIG else n for n in sorted(PUBLISHED)]
)
def test_parameter_count(name):
    assert _count(M.get(name)) == PUBLISHED[name]


# ---------------------------------------------------------------- analytic counts
# The formulas below restate each architecture's layer sizes. They reproduce the published
# counts at the real sizes (cheap arithmetic, fast), and the models match them at reduced
# widths (fast); test_parameter_count checks the real presets themselves.


def _gpt2_count(vocab, npos, d, layers, inner=None):
    inner = inner or 4 * d
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) + (inner * d + d)
    return vocab * d + npos * d + layers * block + 2 * d  # lm_head is tied to wte


def _bert_count(vocab, d, layers, inner, npos=512, types=2, pooler=True):
    block = 4 * (d * d + d) + 2 * 2 * d + (d * inner + inner) + (inner * d + d)
    emb = (vocab + npos + types) * d + 2 * d
    return emb + layers * block + (d * d + d if pooler else 0)


def _vgg_count(cfg, bn, num_classes, hidden, cin=3):
    n, c = 0, cin
    for v in cfg:
        if v != "M":
            n += c * v * 9 + v + (2 * v if bn else 0)
            c = v
    return (
        n
        + (c * 49 * hidden + hidden)
        + (hidden * hidden + hidden)
        + hidden * num_classes
        + (num_classes)
    )


def test_analytic_counts_reproduce_the_published_ones():
    assert _gpt2_count(50257, 1024, 768, 12) == PUBLISHED["gpt2_small"]
    assert _bert_count(30522, 768, 12, 3072) == PUBLISHED["bert_base"]
    assert _bert_count(30522, 384, 6, 1536) == PUBLISHED["minilm_l6"]
    for name, cfg, bn in (
        ("vgg11", "A", False),
        ("vgg11_bn", "A", True),
        ("vgg16", "D", False),
        ("vgg16_bn", "D", True),
    ):
        assert _vgg_count(M.vgg._CFGS[cfg], bn, 1000, 4096) == PUBLISHED[name], name


def test_reduced_width_models_match_the_analytic_counts():
    assert _count(M.gpt2(**TINY_GPT)) == _gpt2_count(61, 16, 32, 2)
    assert _count(M.gpt2(**TINY_GPT, n_inner=40)) == _gpt2_count(61, 16, 32, 2, inner=40)
    assert _count(M.bert(**TINY_BERT)) == _bert_count(53, 32, 2, 48, npos=20)
    no_pool = M.bert(**TINY_BERT, add_pooling_layer=False)
    assert _count(no_pool) == _bert_count(53, 32, 2, 48, npos=20, pooler=False)
    # the real presets' trunks with a narrow classifier: every conv of VGG-11/16 (+BN)
    for fn, cfg, bn in (
        (M.vgg11, "A", False),
        (M.vgg11_bn, "A", True),
        (M.vgg16, "D", False),
        (M.vgg16_bn, "D", True),
    ):
        assert _count(fn(num_classes=10, hidden=64)) == _vgg_count(M.vgg._CFGS[cfg], bn, 10, 64)


def test_registry():
    names = M.list_models()
    assert set(PUBLISHED) <= set(names)
    assert {"bert", "gpt2"} <= set(names)
    assert names == sorted(names)
    assert ember.models is M  # lazily loaded subpackage


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet1'.*resnet18"):
        M.get("resnet1")
    with pytest.raises(TypeError, match="resnet18.*bogus"):
        M.get("resnet18", bogus=1)
    with pytest.raises(TypeError, match="must be a str"):
        M.get(18)
    with pytest.raises(ValueError, match="already registered"):
        M.register_model(M.resnet18)


def _to_torch(em_model, t_model):
    """Copy Ember's state dict into the torch model; strict, so every name must match."""
    sd = {k: torch.from_numpy(np.array(v.numpy())) for k, v in em_model.state_dict().items()}
    t_model.load_state_dict(sd, strict=True)
    return t_model


def _randomize_bn(model, seed=0):
    # non-trivial running statistics, so eval mode checks them
    rng = np.random.default_rng(seed)
    with ember.no_grad():
        for m in model.modules():
            if isinstance(m, ember.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(ember.tensor(rng.normal(0, 0.1, n).astype(np.float32)))
                m.running_var.copy_(ember.tensor(rng.uniform(0.5, 1.5, n).astype(np.float32)))
                m.weight.copy_(ember.tensor(rng.uniform(0.5, 1.5, n).astype(np.float32)))
                m.bias.copy_(ember.tensor(rng.normal(0, 0.1, n).astype(np.float32)))


def _close(a, b, rtol=1e-4):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(np.abs(b).max(), 1e-6)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


VISION = {
    "resnet18": (lambda: M.resnet18(num_classes=10), lambda: R.TResNet(R.TBasic, [2] * 4, 10)),
    "resnet50": (
        lambda: M.resnet50(num_classes=10),
        lambda: R.TResNet(R.TBottleneck, [3, 4, 6, 3], 10),
    ),
    "resnet34": (
        lambda: M.resnet34(num_classes=10),
        lambda: R.TResNet(R.TBasic, [3, 4, 6, 3], 10),
    ),
    "vgg11": (
        lambda: M.vgg11(num_classes=10, hidden=64),
        lambda: R.TVGG(M.vgg._CFGS["A"], False, 10, 64),
    ),
    "vgg16_bn": (
        lambda: M.vgg16_bn(num_classes=10, hidden=64),
        lambda: R.TVGG(M.vgg._CFGS["D"], True, 10, 64),
    ),
    "vgg11_bn": (
        lambda: M.vgg11_bn(num_classes=10, hidden=64),
        lambda: R.TVGG(M.vgg._CFGS["A"], True, 10, 64),
    ),
    "vgg16": (
        lambda: M.vgg16(num_classes=10, hidden=64),
        lambda: R.TVGG(M.vgg._CFGS["D"], False, 10, 64),
    ),
    "mobilenet_v2": (lambda: M.mobilenet_v2(num_classes=10), lambda: R.TMobileNetV2(10)),
}


@pytest.mark.parametrize("name", sorted(VISION))
def test_vision_forward_matches_torch(name):
    ember.manual_seed(0)
    make_em, make_t = VISION[name]
    em = make_em()
    _randomize_bn(em)
    tm = _to_torch(em, make_t()).eval()
    em.eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with ember.no_grad():
        out = em(ember.tensor(x)).numpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(x)).numpy()
    _close(out, ref)


def test_lenet5_forward_matches_torch():
    ember.manual_seed(0)
    em = M.lenet5(num_classes=7)
    tm = _to_torch(em, R.TLeNet5(7))
    x = np.random.default_rng(2).standard_normal((3, 1, 32, 32)).astype(np.float32)
    _close(em(ember.tensor(x)).detach().numpy(), tm(torch.from_numpy(x)).detach().numpy())


def test_resnet18_train_step_matches_torch():
    """Training mode (batch statistics) forward, gradients and the running-stat update."""
    ember.manual_seed(0)
    em = M.resnet18(num_classes=5)
    tm = _to_torch(em, R.TResNet(R.TBasic, [2] * 4, 5)).train()
    em.train()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 5, 4)
    loss = ember.nn.functional.cross_entropy(em(ember.tensor(x)), ember.tensor(y))
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    _close(loss.item(), tloss.item())
    tparams = dict(tm.named_parameters())
    for name in ("conv1.weight", "layer1.0.bn1.weight", "layer4.1.conv2.weight", "fc.weight"):
        _close(dict(em.named_parameters())[name].grad.numpy(), tparams[name].grad.numpy(), 1e-3)
    _close(em.bn1.running_var.numpy(), tm.bn1.running_var.numpy())


def test_resnet_options_and_errors():
    m = M.resnet18(num_classes=3, in_channels=1, zero_init_residual=True)
    assert m.conv1.in_channels == 1
    assert float(m.layer1[0].bn2.weight.abs().sum()) == 0.0
    assert m.eval()(ember.zeros(1, 1, 32, 32)).shape == (1, 3)
    with pytest.raises(ValueError, match="four positive ints"):
        M.ResNet(M.BasicBlock, [2, 2, 2])
    with pytest.raises(ValueError, match="width_mult"):
        M.MobileNetV2(width_mult=0)
    with pytest.raises(ValueError, match="positive int or 'M'"):
        M.vgg.make_layers([64, "X"])
    small = M.MobileNetV2(num_classes=4, width_mult=0.5)
    assert small.eval()(ember.zeros(1, 3, 32, 32)).shape == (1, 4)


# ---------------------------------------------------------------- GPT-2

TINY_GPT = {"vocab_size": 61, "n_positions": 16, "n_embd": 32, "n_layer": 2, "n_head": 4}


def _tiny_hf_gpt2():
    torch.manual_seed(0)
    tm = R.TGPT2(61, 16, 32, 2, 4).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for n, p in tm.named_parameters():
            if "ln_" in n:
                p.add_(torch.randn_like(p) * 0.1)
    return tm


def test_gpt2_from_hf_layout_matches_torch():
    tm = _tiny_hf_gpt2()
    em = M.gpt2(**TINY_GPT).eval()
    hf = {k: ember.tensor(v.numpy()) for k, v in tm.state_dict().items()}
    assert any(k.endswith(".attn.bias") for k in hf)  # the causal-mask buffer is dropped
    res = em.load_state_dict(M.gpt2_state_dict_from_hf(hf), strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    assert em.lm_head.weight is em.transformer.wte.weight  # still tied after loading
    ids = np.random.default_rng(0).integers(0, 61, (2, 11))
    with ember.no_grad():
        out = em(ember.tensor(ids)).numpy()
    with torch.no_grad():
        ref = tm(torch.from_numpy(ids)).numpy()
    _close(out, ref)


def test_gpt2_from_hf_base_model_names():
    # a GPT2Model checkpoint (no "transformer." prefix, no lm_head) loads too
    tm = _tiny_hf_gpt2()
    base = {
        k[len("transformer.") :]: ember.tensor(v.numpy())
        for k, v in tm.state_dict().items()
        if k.startswith("transformer.")
    }
    em = M.gpt2(**TINY_GPT)
    em.load_state_dict(M.gpt2_state_dict_from_hf(base), strict=True)
    np.testing.assert_array_equal(
        em.transformer.h[1].mlp.c_fc.weight.detach().numpy(),
        tm.transformer.h[1].mlp.c_fc.weight.detach().numpy().T,
    )


def test_gpt2_tied_gradient_and_errors():
    em = M.gpt2(**TINY_GPT)
    em(ember.tensor([[1, 2, 3]])).sum().backward()
    assert em.transformer.wte.weight.grad is not None
    assert _count(em) == _count(M.gpt2(**TINY_GPT)) and "lm_head.weight" in em.state_dict()
    with pytest.raises(ValueError, match="exceeds n_positions 16"):
        em(ember.zeros(1, 17, dtype=ember.int64))
    with pytest.raises(ValueError, match="integer tensor"):
        em(ember.zeros(1, 3))
    with pytest.raises(ValueError, match="multiple of n_head"):
        M.gpt2(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="n_layer must be a positive int"):
        M.GPT2Config(n_layer=0)


# ---------------------------------------------------------------- BERT

TINY_BERT = {
    "vocab_size": 53,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "max_position_embeddings": 20,
}


def test_bert_forward_matches_torch_with_padding():
    ember.manual_seed(0)
    em = M.bert(**TINY_BERT).eval()
    tm = R.TBert(53, 32, 2, 4, 48, npos=20)
    sd = {k: torch.from_numpy(v.numpy()) for k, v in em.state_dict().items()}
    tm.load_state_dict(sd, strict=True)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 53, (3, 9))
    mask = np.ones((3, 9), np.int64)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    types = rng.integers(0, 2, (3, 9))
    with ember.no_grad():
        out = em(ember.tensor(ids), ember.tensor(mask), ember.tensor(types))
    with torch.no_grad():
        h, pooled = tm(*(torch.from_numpy(a) for a in (ids, mask, types)))
    _close(out.last_hidden_state.numpy(), h.numpy())
    _close(out.pooler_output.numpy(), pooled.numpy())


def test_bert_hf_names_and_errors():
    em = M.bert(**TINY_BERT, add_pooling_layer=False)
    assert em.pooler is None
    assert em(ember.tensor([[1, 2]])).pooler_output is None
    names = set(em.state_dict())
    assert "encoder.layer.1.attention.self.query.weight" in names
    assert "embeddings.LayerNorm.weight" in names
    hf = {f"bert.{k}": v for k, v in em.state_dict().items()}
    hf["bert.embeddings.position_ids"] = ember.arange(20).unsqueeze(0)
    hf["cls.predictions.bias"] = ember.zeros(53)
    gamma = hf.pop("bert.embeddings.LayerNorm.weight")
    hf["bert.embeddings.LayerNorm.gamma"] = gamma
    em.load_state_dict(M.bert_state_dict_from_hf(hf), strict=True)
    with pytest.raises(ValueError, match="exceeds max_position_embeddings 20"):
        em(ember.zeros(1, 21, dtype=ember.int64))
    with pytest.raises(ValueError, match="attention_mask shape"):
        em(ember.tensor([[1, 2]]), ember.tensor([[1, 1, 1]]))
    with pytest.raises(ValueError, match="not a multiple of num_attention_heads"):
        M.BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act"):
        M.BertConfig(hidden_act="swish2")
    assert M.BertConfig.from_dict({"hidden_size": 96, "model_type": "bert"}).hidden_size == 96


def test_sentence_encoder_pooling():
    enc = M.SentenceEncoder(M.bert(**TINY_BERT)).eval()
    ids = ember.tensor([[5, 6, 7, 0], [5, 6, 7, 9]])
    mask = ember.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    e = enc(ids, mask)
    np.testing.assert_allclose(e.detach().norm(dim=1).numpy(), 1.0, rtol=1e-6)
    hidden = enc.bert(ids, mask).last_hidden_state.detach().numpy()
    m = mask.numpy()[..., None]
    ref = (hidden * m).sum(1) / m.sum(1)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    _close(e.detach().numpy(), ref, 1e-5)
    with pytest.raises(ValueError, match="do not match"):
        M.mean_pooling(ember.zeros(2, 3, 4), ember.ones(2, 4))
    with pytest.raises(ValueError, match="without a tokenizer"):
        enc.encode(["a"])


# ---------------------------------------------------------------- YAML configs (ember train)


def _config(tmp_path, text):
    from ember.cli.config import load_config

    p = tmp_path / "run.yaml"
    p.write_text(text)
    return load_config(p)


def test_yaml_config_builds_zoo_models(tmp_path):
    pytest.importorskip("yaml", reason="the [train] extra (PyYAML) is not installed")
    from ember.cli.build import build_model
    from ember.cli.config import ConfigError

    cfg = _config(tmp_path, "model: {zoo: {name: resnet18, num_classes: 7}}\n")
    m = build_model(cfg, input_shape=(1, 32, 32), num_classes=10)
    assert isinstance(m, M.ResNet) and m.fc.out_features == 7 and m.conv1.in_channels == 1
    # the short form: class count and channels come from the data
    m = build_model(_config(tmp_path, "model: {zoo: lenet5}\n"), (3, 32, 32), num_classes=4)
    assert m.features[0].in_channels == 3 and m.classifier[-1].out_features == 4
    # text models take their own arguments
    cfg = _config(tmp_path, "model: {zoo: {name: gpt2, n_layer: 1, n_embd: 8, n_head: 2}}\n")
    assert build_model(cfg, (16,), num_classes=None).config.n_layer == 1
    with pytest.raises(ConfigError, match="unknown model 'resnet19'.*resnet18"):
        build_model(_config(tmp_path, "model: {zoo: resnet19}\n"), (3, 32, 32), 10)
    with pytest.raises(ConfigError, match="bad arguments for vgg11.*widht"):
        build_model(_config(tmp_path, "model: {zoo: {name: vgg11, widht: 2}}\n"), (3, 32, 32), 10)


# ---------------------------------------------------------------- Hugging Face transformers


def test_matches_hugging_face_transformers():
    """The real Hugging Face modules (installed with the [zoo] extra's MiniLM package): their
    state dicts load through the mapping functions and the outputs agree."""
    tf = pytest.importorskip("transformers", reason="Hugging Face transformers is not installed")
    torch.manual_seed(0)
    g = tf.GPT2LMHeadModel(
        tf.GPT2Config(**TINY_GPT, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    ).eval()
    em = M.gpt2(**TINY_GPT).eval()
    sd = {k: ember.tensor(v.numpy()) for k, v in g.state_dict().items()}
    em.load_state_dict(M.gpt2_state_dict_from_hf(sd), strict=True)
    ids = np.random.default_rng(4).integers(0, 61, (2, 9))
    with torch.no_grad():
        ref = g(torch.from_numpy(ids)).logits.numpy()
    with ember.no_grad():
        _close(em(ember.tensor(ids)).numpy(), ref)

    b = tf.BertModel(tf.BertConfig(**TINY_BERT)).eval()
    em = M.bert(**TINY_BERT).eval()
    sd = {k: ember.tensor(v.numpy()) for k, v in b.state_dict().items()}
    em.load_state_dict(M.bert_state_dict_from_hf(sd), strict=True)
    ids = np.random.default_rng(5).integers(1, 53, (2, 7))
    mask = np.ones_like(ids)
    mask[0, 4:] = 0
    with torch.no_grad():
        out = b(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    with ember.no_grad():
        e = em(ember.tensor(ids), ember.tensor(mask))
    # compare the real tokens: HF may treat fully padded query rows differently
    real = mask.astype(bool)
    _close(e.last_hidden_state.numpy()[real], out.last_hidden_state.numpy()[real])
    _close(e.pooler_output.numpy(), out.pooler_output.numpy())


def test_lstm_language_model_matches_torch():
    ember.manual_seed(0)
    em = M.lstm_lm(vocab_size=30, embed_dim=12, hidden_size=12, tie_weights=True).eval()
    assert em.decoder.weight is em.encoder.weight
    tm = torch.nn.Module()
    tm.encoder = torch.nn.Embedding(30, 12)
    tm.rnn = torch.nn.LSTM(12, 12, 2, batch_first=True)
    tm.decoder = torch.nn.Linear(12, 30)
    _to_torch(em, tm)
    ids = np.random.default_rng(6).integers(0, 30, (2, 5))
    with ember.no_grad():
        logits, (h, c) = em(ember.tensor(ids))
    with torch.no_grad():
        out, (th, tc) = tm.rnn(tm.encoder(torch.from_numpy(ids)))
        ref = tm.decoder(out)
    _close(logits.numpy(), ref.numpy())
    _close(h.numpy(), th.numpy())
    _close(c.numpy(), tc.numpy())
    with pytest.raises(ValueError, match="tie_weights needs embed_dim == hidden_size"):
        M.lstm_lm(vocab_size=10, embed_dim=4, hidden_size=8, tie_weights=True)
