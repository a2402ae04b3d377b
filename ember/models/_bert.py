"""BERT encoder (Devlin et al., 2018) with Hugging Face ``BertModel`` parameter names.

The module tree mirrors ``transformers.BertModel`` (``embeddings.word_embeddings``,
``encoder.layer.N.attention.self.query``, ...), so a Hugging Face state dict loads after
:func:`bert_state_dict_from_hf` strips the task-head prefixes and old TF-style names.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import ember
from ember import nn
from ember.nn import functional as F

from ._registry import register_model

__all__ = [
    "BertConfig",
    "BertModel",
    "BertOutput",
    "bert",
    "bert_base",
    "bert_state_dict_from_hf",
    "minilm_l6",
]


@dataclass
class BertConfig:
    """Sizes of a BERT encoder; field names follow Hugging Face's ``BertConfig``.

    Example:
        >>> from ember.models import BertConfig
        >>> BertConfig(hidden_size=64, num_attention_heads=4).hidden_size
        64
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    add_pooling_layer: bool = True

    def __post_init__(self) -> None:
        for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"BertConfig: {f} must be a positive int, got {v!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig: hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"BertConfig: hidden_act {self.hidden_act!r} is not one of {sorted(_ACTIVATIONS)}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> BertConfig:
        """Keep the keys this config knows (a Hugging Face ``config.json`` has more).

        Example:
            >>> from ember.models import BertConfig
            >>> BertConfig.from_dict({"hidden_size": 32, "num_attention_heads": 2,
            ...                       "model_type": "bert"}).hidden_size
            32
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class BertOutput(NamedTuple):
    """What :class:`BertModel` returns (the names of Hugging Face's output fields)."""

    last_hidden_state: ember.Tensor
    pooler_output: ember.Tensor | None


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.max_positions = c.max_position_embeddings

    def forward(self, input_ids, token_type_ids):
        n = input_ids.shape[1]
        if n > self.max_positions:
            raise ValueError(
                f"BertModel: sequence length {n} exceeds max_position_embeddings "
                f"{self.max_positions}"
            )
        pos = ember.arange(n).unsqueeze(0)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)
        x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.num_heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout_p = c.attention_probs_dropout_prob

    def _heads(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, scale=1.0 / math.sqrt(self.head_dim)
        )
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)


class _DenseNorm(nn.Module):
    # dense -> dropout -> residual add -> LayerNorm (HF's BertSelfOutput and BertOutput)
    def __init__(self, cin: int, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cin, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseNorm(c.hidden_size, c)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.act = _ACTIVATIONS[c.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c.intermediate_size, c)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([_Layer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class _Pooler(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x):
        return ember.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """A BERT encoder: embeddings, ``num_hidden_layers`` post-norm blocks, optional pooler.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` takes ``(batch, seq)``
    integer tensors (``attention_mask``: 1 = real token, 0 = padding) and returns a
    :class:`BertOutput` ``(last_hidden_state, pooler_output)``.

    Example:
        >>> import ember
        >>> from ember.models import BertConfig, BertModel
        >>> cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
        ...                  num_attention_heads=2, intermediate_size=32)
        >>> BertModel(cfg)(ember.tensor([[2, 7, 9]])).last_hidden_state.shape
        ember.Size([1, 3, 16])
    """

    def __init__(self, config: BertConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else BertConfig()
        c = self.config
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.pooler = _Pooler(c) if c.add_pooling_layer else None
        std = 0.02  # BERT's truncated-normal-like init scale
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
        with ember.no_grad():
            self.embeddings.word_embeddings.weight[c.pad_token_id] = 0.0

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> BertModel:
        """The encoder of a Hugging Face ``save_pretrained`` folder (``BertModel`` or a task
        model such as ``BertForMaskedLM``: its heads are dropped; the pooler is built only if
        the checkpoint has one); local files only.

        Example:
            >>> import ember, tempfile
            >>> d = tempfile.mkdtemp()
            >>> ember.models.bert(vocab_size=20, hidden_size=8, num_hidden_layers=1,
            ...                   num_attention_heads=2, intermediate_size=16).save_pretrained(d)
            >>> ember.models.BertModel.from_pretrained(d).config.hidden_size
            8
        """
        from ._hf import read_hf_folder

        config, sd = read_hf_folder(path, "BertModel.from_pretrained")
        sd = bert_state_dict_from_hf(sd)
        pooled = any(k.startswith("pooler.") for k in sd)
        model = cls(BertConfig.from_dict({**config, "add_pooling_layer": pooled}))
        model.load_state_dict(sd)
        model.eval()
        return model

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` with Hugging Face's ``BertModel``
        names, loadable by ``transformers``."""
        from ._hf import write_hf_folder

        cfg = {"model_type": "bert", "architectures": ["BertModel"], **asdict(self.config)}
        cfg.pop("add_pooling_layer", None)
        write_hf_folder(path, cfg, self.state_dict())

    def _import_state_dict(self, state_dict: dict) -> dict:
        # load_pretrained: Hugging Face checkpoints load directly
        return bert_state_dict_from_hf(state_dict)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> BertOutput:
        if input_ids.ndim != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"BertModel: input_ids must be a (batch, seq) integer tensor, got shape "
                f"{tuple(input_ids.shape)} dtype {input_ids.dtype}"
            )
        if token_type_ids is None:
            token_type_ids = ember.zeros_like(input_ids)
        mask = None
        if attention_mask is not None:
            if tuple(attention_mask.shape) != tuple(input_ids.shape):
                raise ValueError(
                    f"BertModel: attention_mask shape {tuple(attention_mask.shape)} != "
                    f"input_ids shape {tuple(input_ids.shape)}"
                )
            # (batch, 1, 1, seq): every query may attend to the real key tokens
            mask = (attention_mask != 0).unsqueeze(1).unsqueeze(2)
        x = self.encoder(self.embeddings(input_ids, token_type_ids), mask)
        return BertOutput(x, self.pooler(x) if self.pooler is not None else None)


_HEAD_PREFIXES = ("cls.", "qa_outputs.", "classifier.")


def bert_state_dict_from_hf(state_dict: dict) -> dict:
    """Rename a Hugging Face BERT state dict to :class:`BertModel`'s names.

    Strips a ``bert.`` prefix (task models), drops task heads and the ``position_ids`` /
    ``token_type_ids`` buffers, renames TF-era ``gamma``/``beta`` to ``weight``/``bias``, and
    splits a fused ``attention.self.qkv`` (or ``Wqkv``) projection into ``query``/``key``/
    ``value``. Tied heads (``cls.predictions.decoder``) go with the heads.

    Example:
        >>> import ember
        >>> from ember.models import bert_state_dict_from_hf
        >>> sd = {"bert.embeddings.LayerNorm.gamma": ember.ones(2),
        ...       "bert.embeddings.position_ids": ember.arange(2), "cls.x": ember.ones(1)}
        >>> list(bert_state_dict_from_hf(sd))
        ['embeddings.LayerNorm.weight']
    """
    out = {}
    for k, v in state_dict.items():
        if k.startswith(_HEAD_PREFIXES):
            continue
        if k.startswith("bert."):
            k = k[len("bert.") :]
        if k.endswith((".position_ids", ".token_type_ids")):
            continue
        if k.endswith(".gamma"):
            k = k[: -len("gamma")] + "weight"
        elif k.endswith(".beta"):
            k = k[: -len("beta")] + "bias"
        out[k] = v
    from ._hf import split_qkv

    return split_qkv(out, ("qkv", "Wqkv"), ("query", "key", "value"), "bert_state_dict_from_hf")


@register_model
def bert(**config) -> BertModel:
    """A BERT encoder of any size: keyword arguments are :class:`BertConfig` fields.

    Example:
        >>> import ember
        >>> m = ember.models.bert(vocab_size=40, hidden_size=8, num_hidden_layers=1,
        ...                       num_attention_heads=2, intermediate_size=16)
        >>> len(m.encoder.layer)
        1
    """
    return BertModel(BertConfig(**config))


@register_model
def bert_base(**overrides) -> BertModel:
    """BERT-base uncased (12 layers, 768 wide; 109,482,240 parameters with the pooler).

    Example:
        >>> import ember
        >>> ember.models.bert_base(num_hidden_layers=1, vocab_size=100).config.hidden_size
        768
    """
    return BertModel(BertConfig(**overrides))


@register_model
def minilm_l6(**overrides) -> BertModel:
    """MiniLM-L6-H384 (the all-MiniLM-L6-v2 encoder: 6 layers, 384 wide, 12 heads).

    Example:
        >>> import ember
        >>> ember.models.minilm_l6(vocab_size=100).config.hidden_size
        384
    """
    cfg = {"hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
    return BertModel(BertConfig(**{**cfg, **overrides}))
