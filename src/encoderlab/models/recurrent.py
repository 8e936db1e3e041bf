"""Recurrent encoders (LSTM / GRU) and an attention sequence-to-sequence model, written out in full.

Follows Sutskever et al. (2014, "Sequence to sequence learning with neural networks") for the
encoder-decoder, Bahdanau et al. (2015) for attending over every encoder output instead of squeezing the
source into one vector, and Luong et al. (2015, "Effective approaches to attention-based neural machine
translation") for the exact attention used here: a "dot" or "general" score between the decoder state and
each encoder output, the attentional vector h~ = tanh(W_c [context; h]), and optional *input feeding*
(h~ of step t-1 is part of the decoder input at step t, so the decoder knows what it attended to).

The recurrence itself is `torch.nn.LSTM` / `torch.nn.GRU` (fused, well tested); everything around it is
here: padding-free encoding, the bridge from encoder to decoder state, masked attention, teacher-forced
training, greedy decoding and beam search.

Read top to bottom: token ids and the config, the encoder, attention, the bridge, the decoder, the model,
then decoding. Shapes: B batch, S source length, T target length, E embedding size, H encoder hidden size
per direction, D = H x directions (encoder output size = decoder hidden size), L layers, V vocabulary, K beam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import ConfigError, InputDataError
from .decoding import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, Generates

__all__ = ["BOS", "EOS", "PAD", "SPECIAL_TOKENS", "UNK", "RecurrentConfig", "RecurrentEncoder", "Seq2Seq",
           "sequence_loss"]

RNNS = {"lstm": nn.LSTM, "gru": nn.GRU}
State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""A recurrent state: h (L * dirs, B, H) for a GRU, (h, c) for an LSTM."""


@dataclass
class RecurrentConfig:
    """Architecture of a recurrent encoder and its attention decoder. Vocabulary sizes come from the data."""

    kind: Literal["lstm", "gru"] = "lstm"
    """The recurrent cell of encoder and decoder."""
    source_vocab_size: int = 0
    """Source tokens, specials included; 0 = fill in from the data (the training task does)."""
    target_vocab_size: int = 0
    """Target tokens, specials included; 0 = fill in from the data."""
    d_embed: int = 64
    """Token embedding size (source and target)."""
    d_hidden: int = 128
    """Encoder hidden size per direction. The decoder's hidden size is the encoder's output size
    (d_hidden x 2 when bidirectional), so dot attention and the copy bridge need no projection."""
    n_layers: int = 1
    """Stacked recurrent layers, in the encoder and in the decoder (the bridge maps layer to layer)."""
    bidirectional: bool = True
    """Encoder reads the source both ways; every output then sees the whole word."""
    dropout: float = 0.0
    """On embeddings, between stacked layers and on the attentional vector before the output layer."""
    attention: Literal["general", "dot"] = "general"
    """Luong score: dot = h . s, general = h . W s (a learned bilinear form)."""
    input_feeding: bool = True
    """Feed the previous attentional vector into the decoder input (Luong et al. 2015, section 3.3).
    Without it, teacher-forced training runs the decoder over the whole target at once (faster)."""
    bridge: Literal["linear", "copy", "zeros"] = "linear"
    """Decoder initial state from the encoder's final state: linear = tanh(W [forward; backward]) per layer
    (c: W without tanh), copy = [forward; backward] as is, zeros = no bridge (attention only)."""
    pooling: Literal["mean", "last"] = "mean"
    """The encoder's sequence vector: the mean of its outputs over real tokens, or the final states."""

    def __post_init__(self) -> None:
        if self.kind not in RNNS:
            raise ConfigError(f"model.kind={self.kind!r} is unknown; choose lstm or gru")
        for name in ("d_embed", "d_hidden", "n_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be at least 1")
        for name in ("source_vocab_size", "target_vocab_size"):
            value = getattr(self, name)
            if value and value <= len(SPECIAL_TOKENS):
                raise ConfigError(f"model.{name}={value} leaves no room for real tokens next to the "
                                  f"{len(SPECIAL_TOKENS)} specials; use 0 (taken from the data)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def d_model(self) -> int:
        """Encoder output size = decoder hidden size."""
        return self.d_hidden * self.directions


# ----------------------------------------------------------------------------------------------- encoder
@dataclass
class EncoderOutput:
    outputs: torch.Tensor
    """(B, S, D) top-layer outputs per source token; exactly 0 at padding positions."""
    mask: torch.Tensor
    """(B, S) bool, True at real tokens."""
    state: State
    """Final state per layer and direction, (L * dirs, B, H) (an (h, c) pair for an LSTM), taken at each
    sequence's own last token: padding never entered the recurrence."""
    pooled: torch.Tensor
    """(B, D) one vector per sequence (`RecurrentConfig.pooling`)."""


def lengths_of(tokens: torch.Tensor) -> torch.Tensor:
    """(B, S) right-padded ids -> (B,) lengths (count of non-PAD tokens)."""
    return (tokens != PAD).sum(1)


class RecurrentEncoder(nn.Module):
    """Token ids -> per-token outputs, a mask and a sequence vector, for variable-length input.

    Why packing: a padded batch run straight through an RNN feeds PAD embeddings into the recurrence, so
    the final state of a short sequence would be the state after its padding, and the backward direction
    would *start* in the padding. `pack_padded_sequence` hands the RNN only the real tokens of each
    sequence; the result equals running every sequence alone (tested).
    """

    def __init__(self, cfg: RecurrentConfig, vocab_size: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size or cfg.source_vocab_size, cfg.d_embed, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = RNNS[cfg.kind](cfg.d_embed, cfg.d_hidden, cfg.n_layers, batch_first=True,
                                  bidirectional=cfg.bidirectional, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """tokens (B, S) right-padded with PAD; lengths (B,) (default: counted from the padding)."""
        lengths = lengths_of(tokens) if lengths is None else lengths
        if bool((lengths < 1).any()):
            raise InputDataError("an empty source sequence cannot be encoded; every input needs >= 1 token")
        B, S = tokens.shape
        x = self.dropout(self.embed(tokens))  # (B, S, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=S)  # (B, S, D), 0 at PAD
        mask = torch.arange(S, device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]  # (B, S)
        return EncoderOutput(outputs, mask, state, self.pool(outputs, mask, state))

    def pool(self, outputs: torch.Tensor, mask: torch.Tensor, state: State) -> torch.Tensor:
        if self.cfg.pooling == "mean":
            m = mask.unsqueeze(-1).to(outputs.dtype)  # (B, S, 1)
            return (outputs * m).sum(1) / m.sum(1)
        h = state[0] if isinstance(state, tuple) else state  # (L * dirs, B, H)
        top = h.reshape(self.cfg.n_layers, self.cfg.directions, *h.shape[1:])[-1]  # (dirs, B, H)
        return torch.cat(list(top), dim=-1)  # (B, D): [forward final; backward final]


# ----------------------------------------------------------------------------------------------- attention
class LuongAttention(nn.Module):
    """Global attention over the encoder outputs: weights = softmax(score(h_t, s)), context = weights @ s.

    Why masking: a padded source has positions that are not words. Their score is set to -inf before the
    softmax, so they get weight exactly 0 and the context of a sequence does not depend on how much
    padding its batch needed.
    """

    def __init__(self, d_query: int, d_memory: int, score: Literal["general", "dot"]) -> None:
        super().__init__()
        if score == "dot" and d_query != d_memory:
            raise ConfigError(f"attention=dot needs equal decoder ({d_query}) and encoder output ({d_memory}) "
                              "sizes; use model.attention=general")
        self.project = nn.Linear(d_memory, d_query, bias=False) if score == "general" else None

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """(B, S, D) encoder outputs -> (B, S, d_query) keys; computed once per source, reused every step.
        general: h . W s = h . (W s)."""
        return self.project(memory) if self.project is not None else memory

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, d_query), keys (B, S, d_query), memory (B, S, D), mask (B, S)
        -> context (B, T, D), weights (B, T, S)."""
        scores = query @ keys.transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(memory.dtype)
        return weights @ memory, weights


# ----------------------------------------------------------------------------------------------- bridge
class Bridge(nn.Module):
    """Encoder final state (L * dirs, B, H) -> decoder initial state (L, B, D), layer by layer.

    Why a bridge: the decoder has one state per layer, the encoder one per layer *and direction*. Joining
    the two directions gives the decoder a summary of the whole source before it emits the first token
    (attention then refines it step by step); without it (`zeros`) the first step must rely on attention
    alone. An LSTM's memory cell c is bridged too, by its own map, without tanh (c is not bounded).
    """

    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        linear = cfg.bridge == "linear"
        self.h = nn.Linear(d, d) if linear else None
        self.c = nn.Linear(d, d) if linear and cfg.kind == "lstm" else None

    def _join_directions(self, x: torch.Tensor) -> torch.Tensor:
        L, dirs = self.cfg.n_layers, self.cfg.directions
        x = x.reshape(L, dirs, *x.shape[1:])  # (L, dirs, B, H): nn.LSTM orders layers, then directions
        return x.permute(0, 2, 1, 3).reshape(L, x.shape[2], dirs * x.shape[3])  # (L, B, D)

    def forward(self, state: State) -> State:
        if isinstance(state, tuple):
            return self._one(state[0], self.h, torch.tanh), self._one(state[1], self.c, None)
        return self._one(state, self.h, torch.tanh)

    def _one(self, x: torch.Tensor, linear: nn.Linear | None, activation) -> torch.Tensor:
        joined = self._join_directions(x)
        if self.cfg.bridge == "zeros":
            return torch.zeros_like(joined)
        if self.cfg.bridge == "copy":
            return joined.contiguous()
        out = linear(joined)
        return activation(out) if activation is not None else out


# ----------------------------------------------------------------------------------------------- decoder
@dataclass
class DecoderState:
    """Everything one decoding step needs; `select` reorders it along the batch (beam search)."""

    rnn: State
    """(L, B, D), or an (h, c) pair."""
    feed: torch.Tensor
    """(B, D) the previous attentional vector h~ (zeros before the first step); used with input feeding."""
    memory: torch.Tensor
    """(B, S, D) encoder outputs."""
    keys: torch.Tensor
    """(B, S, D) attention keys of the memory."""
    mask: torch.Tensor
    """(B, S) real source tokens."""

    def select(self, index: torch.Tensor) -> DecoderState:
        rnn = tuple(s.index_select(1, index) for s in self.rnn) if isinstance(self.rnn, tuple) else \
            self.rnn.index_select(1, index)
        return DecoderState(rnn, self.feed.index_select(0, index), self.memory.index_select(0, index),
                            self.keys.index_select(0, index), self.mask.index_select(0, index))


class AttentionDecoder(nn.Module):
    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.target_vocab_size, cfg.d_embed, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)
        d_input = cfg.d_embed + (d if cfg.input_feeding else 0)
        self.rnn = RNNS[cfg.kind](d_input, d, cfg.n_layers, batch_first=True,
                                  dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.attention = LuongAttention(d, d, cfg.attention)
        self.combine = nn.Linear(2 * d, d, bias=False)  # W_c in h~ = tanh(W_c [context; h])
        self.out = nn.Linear(d, cfg.target_vocab_size)

    def _attend(self, h: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder outputs h (B, T, D) -> (attentional vectors h~ (B, T, D), attention weights (B, T, S))."""
        context, weights = self.attention(h, state.keys, state.memory, state.mask)
        return torch.tanh(self.combine(torch.cat([context, h], dim=-1))), weights

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One step: previous tokens (B,) -> logits (B, V) and the next state."""
        x = self.dropout(self.embed(tokens)).unsqueeze(1)  # (B, 1, E)
        if self.cfg.input_feeding:
            x = torch.cat([x, state.feed.unsqueeze(1)], dim=-1)  # (B, 1, E + D)
        h, rnn = self.rnn(x, state.rnn)  # h: (B, 1, D)
        attentional, _ = self._attend(h, state)  # (B, 1, D)
        logits = self.out(self.dropout(attentional)).squeeze(1)  # (B, V)
        return logits, DecoderState(rnn, attentional.squeeze(1), state.memory, state.keys, state.mask)

    def forward(self, target_in: torch.Tensor, state: DecoderState,
                stepwise: bool | None = None) -> torch.Tensor:
        """Teacher forcing: target_in (B, T) = BOS + target -> logits (B, T, V).

        Without input feeding no step depends on the previous step's attention, so the recurrence runs over
        the whole target in one call and attention in one batched product (the fast path); with it, the
        steps run one by one. `stepwise=True` forces the step loop (the reference the fast path is tested
        against)."""
        stepwise = self.cfg.input_feeding if stepwise is None else stepwise
        if stepwise:
            logits = []
            for t in range(target_in.shape[1]):
                step_logits, state = self.step(target_in[:, t], state)
                logits.append(step_logits)
            return torch.stack(logits, dim=1)
        if self.cfg.input_feeding:
            raise ConfigError("input feeding needs the step-by-step decoder (stepwise=True)")
        h, _ = self.rnn(self.dropout(self.embed(target_in)), state.rnn)  # (B, T, D)
        attentional, _ = self._attend(h, state)
        return self.out(self.dropout(attentional))  # (B, T, V)


# ----------------------------------------------------------------------------------------------- the model
class Seq2Seq(Generates, nn.Module):
    """RecurrentEncoder + Bridge + AttentionDecoder. `forward` is teacher-forced; `greedy` and
    `beam_search` (models.decoding.Generates) generate."""

    def __init__(self, cfg: RecurrentConfig) -> None:
        super().__init__()
        if not cfg.source_vocab_size or not cfg.target_vocab_size:
            raise ConfigError("RecurrentConfig.source_vocab_size / target_vocab_size are 0; set them (the "
                              "training task fills them in from the data's vocabularies)")
        self.cfg = cfg
        self.encoder = RecurrentEncoder(cfg)
        self.bridge = Bridge(cfg)
        self.decoder = AttentionDecoder(cfg)

    def start(self, source: torch.Tensor, lengths: torch.Tensor | None = None) -> DecoderState:
        """Encode the source (B, S) and build the decoder's initial state."""
        enc = self.encoder(source, lengths)
        feed = enc.outputs.new_zeros(source.shape[0], self.cfg.d_model)
        return DecoderState(self.bridge(enc.state), feed, enc.outputs, self.decoder.attention.keys(enc.outputs),
                            enc.mask)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """source (B, S), target_in (B, T) = BOS + target, both right-padded -> logits (B, T, V)."""
        return self.decoder(target_in, self.start(source))

    def sentence_vectors(self, source: torch.Tensor) -> torch.Tensor:
        """source (B, S) -> (B, D): the encoder's sequence vector (`RecurrentConfig.pooling`)."""
        return self.encoder(source).pooled

    # ------------------------------------------------------------------ generation
    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One decoding step: previous tokens (B,) -> logits (B, V) and the next state."""
        return self.decoder.step(tokens, state)


# ----------------------------------------------------------------------------------------------- objective
def sequence_loss(logits: torch.Tensor, target_out: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy per real target token: logits (B, T, V), target_out (B, T) = target + EOS with
    PAD where a shorter target ended (ignored, so padding neither adds loss nor dilutes the mean)."""
    return F.cross_entropy(logits.flatten(0, 1).float(), target_out.flatten(), ignore_index=PAD,
                           label_smoothing=label_smoothing)
