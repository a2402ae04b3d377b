"""GPT-2 decoder (Radford et al., 2019) with Hugging Face ``GPT2LMHeadModel`` names.

Hugging Face stores the attention and MLP projections as ``Conv1D`` (weight ``in x out``);
Ember uses ``nn.Linear`` (``out x in``), so :func:`gpt2_state_dict_from_hf` transposes those
four weights on the way in. The LM head shares its weight with the token embedding.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import ember
from ember import nn
from ember.nn import functional as F

from ._registry import register_model

__all__ = ["GPT2", "GPT2Config", "gpt2", "gpt2_small", "gpt2_state_dict_from_hf"]


@dataclass
class GPT2Config:
    """Sizes of a GPT-2 decoder; field names follow Hugging Face's ``GPT2Config``.

    Example:
        >>> from ember.models import GPT2Config
        >>> GPT2Config().n_embd
        768
    """

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        for f in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"GPT2Config: {f} must be a positive int, got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPT2Config: n_embd {self.n_embd} is not a multiple of n_head {self.n_head}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> GPT2Config:
        """Keep the keys this config knows (a Hugging Face ``config.json`` has more).

        Example:
            >>> from ember.models import GPT2Config
            >>> GPT2Config.from_dict({"n_layer": 2, "model_type": "gpt2"}).n_layer
            2
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class _Attention(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.n_head = c.n_head
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)  # fused q, k, v
        self.c_proj = nn.Linear(c.n_embd, c.n_embd)
        self.attn_pdrop = c.attn_pdrop
        self.resid_dropout = nn.Dropout(c.resid_pdrop)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (
            t.view(b, n, self.n_head, d // self.n_head).transpose(1, 2)
            for t in self.c_attn(x).split(d, dim=-1)
        )
        p = self.attn_pdrop if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, n, d)))


class _MLP(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
        self.c_fc = nn.Linear(c.n_embd, inner)
        self.c_proj = nn.Linear(inner, c.n_embd)
        self.dropout = nn.Dropout(c.resid_pdrop)

    def forward(self, x):
        # GPT-2's "gelu_new" is the tanh approximation
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class _Block(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.attn = _Attention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mlp = _MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.drop = nn.Dropout(c.embd_pdrop)
        self.h = nn.ModuleList([_Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.n_positions = c.n_positions

    def forward(self, input_ids):
        n = input_ids.shape[1]
        if n > self.n_positions:
            raise ValueError(f"GPT2: sequence length {n} exceeds n_positions {self.n_positions}")
        x = self.drop(self.wte(input_ids) + self.wpe(ember.arange(n).unsqueeze(0)))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2(nn.Module):
    """GPT-2 language model: ``forward(input_ids)`` -> logits ``(batch, seq, vocab_size)``.

    ``lm_head.weight`` is ``transformer.wte.weight`` (tied), so ``parameters()`` counts it once.

    Example:
        >>> import ember
        >>> from ember.models import GPT2, GPT2Config
        >>> m = GPT2(GPT2Config(vocab_size=30, n_positions=8, n_embd=16, n_layer=1, n_head=2))
        >>> m(ember.tensor([[1, 2, 3]])).shape
        ember.Size([1, 3, 30])
    """

    def __init__(self, config: GPT2Config | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else GPT2Config()
        c = self.config
        self.transformer = _Transformer(c)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif name.endswith("weight") and p.ndim == 2:
                # GPT-2 scales residual projections by 1/sqrt(2 * n_layer)
                std = 0.02 / (2 * c.n_layer) ** 0.5 if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
        self.lm_head.weight = self.transformer.wte.weight

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> GPT2:
        """A model from a Hugging Face ``save_pretrained`` folder (``config.json`` and
        ``model.safetensors``, shards, or ``pytorch_model.bin``); local files only.

        Example:
            >>> import ember, tempfile
            >>> d = tempfile.mkdtemp()
            >>> m = ember.models.gpt2(n_layer=1, n_embd=8, n_head=2, vocab_size=11)
            >>> m.save_pretrained(d)
            >>> ember.models.GPT2.from_pretrained(d).config.vocab_size
            11
        """
        from ._hf import read_hf_folder

        config, sd = read_hf_folder(path, "GPT2.from_pretrained")
        model = cls(GPT2Config.from_dict(config))
        model.load_state_dict(gpt2_state_dict_from_hf(sd))
        model.eval()
        return model

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` in Hugging Face's GPT-2 layout
        (``Conv1D`` weights, the tied head stored once), loadable by ``transformers``."""
        from ._hf import write_hf_folder

        sd = {
            k: (v.t().contiguous() if k.endswith(_CONV1D) else v)
            for k, v in self.state_dict().items()
            if k != "lm_head.weight"
        }
        cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}
        write_hf_folder(path, {**cfg, **asdict(self.config)}, sd)

    def _import_state_dict(self, state_dict: dict) -> dict:
        # load_pretrained: Hugging Face checkpoints load directly
        return gpt2_state_dict_from_hf(state_dict)

    def forward(self, input_ids):
        if input_ids.ndim != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"GPT2: input_ids must be a (batch, seq) integer tensor, got shape "
                f"{tuple(input_ids.shape)} dtype {input_ids.dtype}"
            )
        return self.lm_head(self.transformer(input_ids))


_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_SPLIT = ("attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight")


def _conv1d_layout(state_dict: dict) -> bool:
    """Whether the projections are stored ``in x out`` (Hugging Face's Conv1D) rather than
    ``out x in`` (nn.Linear, Ember's own state dicts): told apart by a non-square one."""
    for k, v in state_dict.items():
        fused = k.endswith(("attn.c_attn.weight", "mlp.c_fc.weight")) and v.ndim == 2
        if fused and v.shape[0] != v.shape[1]:
            return bool(v.shape[0] < v.shape[1])
    return True


def gpt2_state_dict_from_hf(state_dict: dict) -> dict:
    """Rename a Hugging Face GPT-2 state dict (``GPT2Model`` or ``GPT2LMHeadModel``) for
    :class:`GPT2`: add the ``transformer.`` prefix where missing, transpose the ``Conv1D``
    weights, fuse split ``attn.q_proj``/``k_proj``/``v_proj`` projections into ``c_attn``,
    drop the causal-mask buffers and fill the tied ``lm_head.weight`` (``save_pretrained``
    stores it once). A state dict already in Ember's layout passes through unchanged.

    Example:
        >>> import ember
        >>> from ember.models import gpt2_state_dict_from_hf
        >>> sd = {"wte.weight": ember.zeros(5, 4), "h.0.attn.c_attn.weight": ember.zeros(4, 12),
        ...       "h.0.attn.bias": ember.ones(1, 1, 8, 8)}
        >>> {k: tuple(v.shape) for k, v in gpt2_state_dict_from_hf(sd).items()}
        {'transformer.wte.weight': (5, 4), 'transformer.h.0.attn.c_attn.weight': (12, 4), \
'lm_head.weight': (5, 4)}
    """
    from ._hf import fuse_qkv

    transpose = _conv1d_layout(state_dict)
    out = {}
    for k, v in state_dict.items():
        if k.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        if not k.startswith(("transformer.", "lm_head.")):
            k = "transformer." + k
        if transpose and k.endswith(_CONV1D + _SPLIT):
            if v.ndim != 2:
                raise ValueError(
                    f"gpt2_state_dict_from_hf: {k} should be 2-d, got {tuple(v.shape)}"
                )
            v = v.t().contiguous()
        out[k] = v
    out = fuse_qkv(out, ("q_proj", "k_proj", "v_proj"), "c_attn", "gpt2_state_dict_from_hf")
    if "lm_head.weight" not in out and "transformer.wte.weight" in out:
        out["lm_head.weight"] = out["transformer.wte.weight"]
    return out


@register_model
def gpt2(**config) -> GPT2:
    """A GPT-2 decoder of any size: keyword arguments are :class:`GPT2Config` fields.

    Example:
        >>> import ember
        >>> ember.models.gpt2(n_layer=2, n_embd=32, n_head=4, vocab_size=100).config.n_layer
        2
    """
    return GPT2(GPT2Config(**config))


@register_model
def gpt2_small(**overrides) -> GPT2:
    """GPT-2 small (124M: 12 layers, 768 wide; 124,439,808 parameters, head tied).

    Example:
        >>> import ember
        >>> ember.models.gpt2_small(n_layer=1, vocab_size=100).config.n_head
        12
    """
    return GPT2(GPT2Config(**overrides))
