"""Tokenizer glue (``ember.models.load_tokenizer``): byte-level BPE from GPT-2's
``vocab.json`` + ``merges.txt`` and from a ``tokenizer.json``, against ``transformers``'
GPT-2 tokenizer on the same files; padding and errors. (WordPiece from ``vocab.txt`` /
``tokenizer.json`` is checked against the MiniLM files in test_minilm.py.)"""

import json

import numpy as np
import pytest

import ember.models as M

tk = pytest.importorskip("tokenizers", reason="the [zoo] extra (tokenizers) is not installed")

CORPUS = [
    "Ember runs deep learning models on NumPy.",
    "The quick brown fox jumps over the lazy dog, twice!",
    "Tokenizers split text into subword units; byte-level BPE never meets an unknown byte.",
] * 20
TEXTS = ["Ember jumps over the dog.", "naïve café — ünïcode 🙂", "  spaces  and\ttabs"]


@pytest.fixture(scope="module")
def bpe_files(tmp_path_factory):
    """A small byte-level BPE trained here, saved as GPT-2's vocab.json + merges.txt and as a
    tokenizer.json."""
    d = tmp_path_factory.mktemp("bpe")
    trainer_tok = tk.ByteLevelBPETokenizer()
    trainer_tok.train_from_iterator(
        CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"]
    )
    trainer_tok.save_model(str(d))
    trainer_tok.save(str(d / "tokenizer.json"))
    return d


def test_bpe_vocab_and_merges_match_transformers(bpe_files, tmp_path):
    tf = pytest.importorskip("transformers", reason="Hugging Face transformers is not installed")
    ref = tf.GPT2Tokenizer(str(bpe_files / "vocab.json"), str(bpe_files / "merges.txt"))
    only_vocab = tmp_path / "v"
    only_vocab.mkdir()
    for name in ("vocab.json", "merges.txt"):
        (only_vocab / name).write_bytes((bpe_files / name).read_bytes())
    ours = M.load_tokenizer(only_vocab)  # the folder: vocab.json + merges.txt
    for text in TEXTS + CORPUS[:3]:
        ids = ours.encode(text).ids
        assert ids == ref.encode(text), text
        assert ours.decode(ids) == text
    same = M.load_tokenizer(bpe_files / "tokenizer.json")
    assert [e.ids for e in same.encode_batch(TEXTS)] == [e.ids for e in ours.encode_batch(TEXTS)]


def test_bpe_padding_and_truncation(bpe_files):
    tok = M.load_tokenizer(bpe_files / "vocab.json", max_length=5)
    enc = tok.encode_batch(["Ember", "The quick brown fox jumps over the lazy dog"])
    eot = json.loads((bpe_files / "vocab.json").read_text())["<|endoftext|>"]
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc])
    assert ids.shape == (2, 5) and mask[1].all()
    assert (ids[0][mask[0] == 0] == eot).all() and mask[0].sum() < 5


def test_bpe_errors(bpe_files, tmp_path):
    (tmp_path / "vocab.json").write_text((bpe_files / "vocab.json").read_text())
    for where in (tmp_path, tmp_path / "vocab.json"):
        with pytest.raises(FileNotFoundError, match="merges.txt"):
            M.load_tokenizer(where)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json, vocab.txt or vocab.json"):
        M.load_tokenizer(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        M.load_tokenizer(tmp_path / "missing.json")
