"""Word-level LSTM language model (Zaremba et al., 2014; PyTorch's word_language_model names:
``encoder`` embedding, ``rnn`` LSTM, ``decoder`` linear), optionally with tied weights."""

from __future__ import annotations

from ember import nn

from ._registry import register_model

__all__ = ["LSTMLanguageModel", "lstm_lm"]


class LSTMLanguageModel(nn.Module):
    """Embedding -> ``num_layers`` LSTM -> linear over the vocabulary, batch first.

    ``forward(input_ids, hidden=None)`` returns ``(logits (batch, seq, vocab), (h, c))`` so
    the state can carry across truncated-BPTT windows.

    Example:
        >>> import ember
        >>> m = ember.models.LSTMLanguageModel(vocab_size=20, embed_dim=8, hidden_size=8)
        >>> logits, (h, c) = m(ember.tensor([[1, 2, 3]]))
        >>> logits.shape, h.shape
        (ember.Size([1, 3, 20]), ember.Size([2, 1, 8]))
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 650,
        hidden_size: int = 650,
        num_layers: int = 2,
        dropout: float = 0.5,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        if tie_weights and embed_dim != hidden_size:
            raise ValueError(
                f"LSTMLanguageModel: tie_weights needs embed_dim == hidden_size, got "
                f"{embed_dim} and {hidden_size}"
            )
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.LSTM(
            embed_dim, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )  # fmt: skip
        self.decoder = nn.Linear(hidden_size, vocab_size)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.encoder.weight

    def forward(self, input_ids, hidden=None):
        out, hidden = self.rnn(self.drop(self.encoder(input_ids)), hidden)
        return self.decoder(self.drop(out)), hidden


@register_model
def lstm_lm(vocab_size: int = 10000, **kwargs) -> LSTMLanguageModel:
    """The "medium" LSTM language model of Zaremba et al. (2 layers of 650) for a vocabulary.

    Example:
        >>> import ember
        >>> ember.models.lstm_lm(vocab_size=50, embed_dim=16, hidden_size=16).rnn.num_layers
        2
    """
    return LSTMLanguageModel(vocab_size, **kwargs)
