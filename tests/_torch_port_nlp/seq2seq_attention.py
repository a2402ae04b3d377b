"""GRU encoder-decoder with attention (the PyTorch seq2seq translation tutorial's shape):
packed variable-length source batches, Bahdanau and dot attention with bmm, teacher forcing,
NLLLoss ignoring the padding index."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD, SOS, EOS = 0, 1, 2


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(input_size, hidden_size, padding_idx=PAD)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden_size, hidden_size)

    def forward(self, src, lengths):
        embedded = self.embedding(src)
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, hidden = self.gru(packed)
        outputs, out_lengths = pad_packed_sequence(
            packed_out, batch_first=True, padding_value=0.0, total_length=src.size(1)
        )
        outputs = self.fc(outputs)
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2], hidden[-1]), dim=1))).unsqueeze(0)
        return outputs, hidden, out_lengths


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys, mask):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = F.softmax(scores, dim=-1)
        context = torch.bmm(weights, keys)
        return context, weights


def dot_attention(query, keys, mask):
    scores = torch.bmm(query, keys.transpose(1, 2))
    scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e9)
    weights = F.softmax(scores, dim=2)
    return torch.bmm(weights, keys), weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size, dot=False):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)
        self.dot = dot

    def forward_step(self, input, hidden, encoder_outputs, mask):
        embedded = self.embedding(input)
        query = hidden.permute(1, 0, 2)
        if self.dot:
            context, attn_weights = dot_attention(query, encoder_outputs, mask)
        else:
            context, attn_weights = self.attention(query, encoder_outputs, mask)
        input_gru = torch.cat((embedded, context), dim=2)
        output, hidden = self.gru(input_gru, hidden)
        output = self.out(output)
        return output, hidden, attn_weights

    def forward(self, encoder_outputs, encoder_hidden, mask, target_tensor=None, max_len=6):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS)
        decoder_hidden = encoder_hidden
        decoder_outputs = []
        attentions = []
        steps = target_tensor.size(1) if target_tensor is not None else max_len
        for i in range(steps):
            decoder_output, decoder_hidden, attn_weights = self.forward_step(
                decoder_input, decoder_hidden, encoder_outputs, mask
            )
            decoder_outputs.append(decoder_output)
            attentions.append(attn_weights)
            if target_tensor is not None:
                decoder_input = target_tensor[:, i].unsqueeze(1)  # teacher forcing
            else:
                _, topi = decoder_output.topk(1)
                decoder_input = topi.squeeze(-1).detach()
        decoder_outputs = torch.cat(decoder_outputs, dim=1)
        decoder_outputs = F.log_softmax(decoder_outputs, dim=-1)
        return decoder_outputs, decoder_hidden, torch.cat(attentions, dim=1)


def _init(model, rng):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.normal(0.0, 0.2, tuple(p.shape)), dtype=torch.float32))


def run():
    rng = np.random.default_rng(2)
    src_vocab, tgt_vocab, hidden = 12, 10, 8
    src_lens = [5, 3, 4, 2]
    tgt_lens = [4, 2, 3, 3]
    src = pad_sequence(
        [torch.tensor(rng.integers(3, src_vocab, n)) for n in src_lens],
        batch_first=True,
        padding_value=PAD,
    )
    tgt = pad_sequence(
        [torch.tensor(list(rng.integers(3, tgt_vocab, n - 1)) + [EOS]) for n in tgt_lens],
        batch_first=True,
        padding_value=PAD,
    )
    lengths = torch.tensor(src_lens, dtype=torch.int64)
    mask = src != PAD

    results = {}
    for dot in (False, True):
        encoder = EncoderRNN(src_vocab, hidden)
        decoder = AttnDecoderRNN(hidden, tgt_vocab, dot=dot)
        _init(encoder, rng)
        _init(decoder, rng)
        params = list(encoder.parameters()) + list(decoder.parameters())
        optimizer = torch.optim.SGD(params, lr=0.5, momentum=0.9)
        criterion = nn.NLLLoss(ignore_index=PAD)
        losses = []
        for _ in range(4):
            optimizer.zero_grad()
            enc_out, enc_hidden, _ = encoder(src, lengths)
            dec_out, _, attn = decoder(enc_out, enc_hidden, mask, tgt)
            loss = criterion(dec_out.view(-1, dec_out.size(-1)), tgt.view(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            losses.append(loss.item())
        encoder.eval()
        decoder.eval()
        with torch.no_grad():
            enc_out, enc_hidden, out_lengths = encoder(src, lengths)
            dec_out, dec_hidden, attn = decoder(enc_out, enc_hidden, mask)
            decoded = dec_out.argmax(-1)
        tag = "dot" if dot else "bahdanau"
        results[f"{tag}_losses"] = losses
        results[f"{tag}_decoded"] = decoded.numpy()
        results[f"{tag}_attn"] = attn.numpy()
        results[f"{tag}_hidden"] = dec_hidden.numpy()
        results[f"{tag}_enc_out"] = enc_out.numpy()
        results[f"{tag}_out_lengths"] = out_lengths.numpy()
        results[f"{tag}_emb_grad"] = encoder.embedding.weight.grad.numpy().copy()
        if not dot:
            beam_tokens, beam_scores = beam_search(encoder, decoder, src[:1], lengths[:1], mask[:1])
            results["beam_tokens"] = beam_tokens
            results["beam_scores"] = beam_scores
    results.update(ctc_tagger(rng))
    return results


@torch.no_grad()
def beam_search(encoder, decoder, src, lengths, mask, beam_size=3, max_len=4):
    enc_out, hidden, _ = encoder(src, lengths)
    enc_out = enc_out.expand(beam_size, -1, -1)
    mask = mask.expand(beam_size, -1)
    hidden = hidden.repeat(1, beam_size, 1)
    tokens = torch.full((beam_size, 1), SOS, dtype=torch.long)
    scores = torch.zeros(beam_size)
    scores[1:] = float("-inf")  # all beams start from the same SOS
    for _ in range(max_len):
        out, hidden, _ = decoder.forward_step(tokens[:, -1:], hidden, enc_out, mask)
        logp = F.log_softmax(out.squeeze(1), dim=-1)
        V = logp.size(-1)
        cand = (scores.unsqueeze(1) + logp).view(-1)
        scores, idx = cand.topk(beam_size)
        beam = torch.div(idx, V, rounding_mode="floor")
        tok = idx % V
        tokens = torch.cat([tokens[beam], tok.unsqueeze(1)], dim=1)
        hidden = hidden[:, beam]
    return tokens.numpy(), scores.numpy()


def ctc_tagger(rng):
    # an LSTMCell unrolled by hand over time, trained with CTC loss
    cell = nn.LSTMCell(4, 6)
    proj = nn.Linear(6, 5)
    _init(cell, rng)
    _init(proj, rng)
    x = torch.tensor(rng.normal(size=(7, 2, 4)), dtype=torch.float32)
    targets = torch.tensor([[1, 2, 2], [3, 1, 0]])
    input_lengths = torch.tensor([7, 5])
    target_lengths = torch.tensor([3, 2])
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    opt = torch.optim.RMSprop(list(cell.parameters()) + list(proj.parameters()), lr=0.01)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        h = torch.zeros(2, 6)
        c = torch.zeros(2, 6)
        outs = []
        for t in range(x.size(0)):
            h, c = cell(x[t], (h, c))
            outs.append(proj(h))
        log_probs = torch.stack(outs).log_softmax(2)
        loss = ctc(log_probs, targets, input_lengths, target_lengths)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    best_path = log_probs.argmax(dim=2).t()
    return {
        "ctc_losses": losses,
        "ctc_best_path": best_path.numpy(),
        "ctc_w": cell.weight_hh.detach().numpy(),
    }
