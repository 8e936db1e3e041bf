"""Greedy decoding and batched beam search over any autoregressive decoder, written once for every
sequence-to-sequence family (the recurrent `Seq2Seq`, `TransformerSeq2Seq`).

A model provides two things (and gets `greedy` / `beam_search` methods from `Generates`): a start state for
a batch of sources, `start(source (B, S))`, and a step

    step(tokens (B,), state) -> (logits (B, V), next state)

where the state has `select(index)`, which reorders / repeats its rows along the batch (beam search keeps
B x K rows and reorders them after every step). Token ids 0-3 are PAD, UNK, BOS, EOS in every vocabulary.

Length penalty (Wu et al. 2016, "Google's neural machine translation system", section 7): beam search
ranks the finished hypotheses by log P(Y) / lp(Y) with lp(Y) = ((5 + |Y|) / 6) ** alpha; alpha = 0 is the
raw log-probability, which favours short outputs; alpha around 0.6-1.0 is usual for translation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ..errors import ConfigError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
"""Ids every vocabulary reserves: padding, unknown token, begin- and end-of-sequence."""
SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")


class DecoderState(Protocol):
    def select(self, index: torch.Tensor) -> Any: ...


Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def never_generated(logits: torch.Tensor) -> torch.Tensor:
    """PAD and BOS are never targets; rule them out of generation (an untrained model would pick them)."""
    return logits.index_fill(-1, torch.tensor([PAD, BOS], device=logits.device), float("-inf"))


def until_eos(ids: list[int]) -> list[int]:
    out = []
    for i in ids:
        if i in (EOS, PAD):
            break
        out.append(i)
    return out


@torch.no_grad()
def greedy_decode(step: Step, state: DecoderState, batch_size: int, max_length: int,
                  device: torch.device) -> list[list[int]]:
    """The most likely token at every step, until EOS or `max_length` tokens, for `batch_size` sources at
    once. Returns each output's token ids without BOS/EOS."""
    tokens = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_length):
        logits, state = step(tokens, state)
        tokens = never_generated(logits).argmax(-1).masked_fill(done, PAD)  # (B,)
        out.append(tokens)
        done |= tokens == EOS
        if bool(done.all()):
            break
    return [until_eos(row) for row in torch.stack(out, 1).tolist()] if out else [[] for _ in range(batch_size)]


def length_penalty(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT's lp = ((5 + length) / 6) ** alpha (1 for alpha = 0)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search_decode(step: Step, state: DecoderState, batch_size: int, max_length: int, device: torch.device,
                       beam_size: int = 5, alpha: float = 0.0) -> list[list[int]]:
    """Batched beam search: the `beam_size` best partial outputs of every source are kept by total
    log-probability. A hypothesis that emitted EOS stays in the beam with its score frozen (it can only
    "extend" by PAD at cost 0), so it competes with the longer ones; the search stops when every beam of
    every source is finished or at `max_length`. The K final hypotheses of a source are then ranked by
    score / length_penalty(length, alpha). Returns the best per source (no BOS/EOS). With beam_size=1 this
    is exactly greedy decoding. `state` holds B rows; it is repeated to B x K here."""
    if beam_size < 1:
        raise ConfigError(f"beam_size={beam_size} must be at least 1")
    if alpha < 0:
        raise ConfigError(f"length_penalty={alpha} must be >= 0 (0 = none)")
    B, K = batch_size, beam_size
    state = state.select(torch.arange(B, device=device).repeat_interleave(K))  # (B * K) rows
    tokens = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all K beams start identical: keep one, or the top-K would be K copies
    done = torch.zeros(B * K, dtype=torch.bool, device=device)
    lengths = torch.zeros(B * K, dtype=torch.long, device=device)  # tokens emitted, EOS included
    history = torch.empty(B * K, 0, dtype=torch.long, device=device)
    for _ in range(max_length):
        logits, state = step(tokens, state)
        log_probs = F.log_softmax(never_generated(logits).float(), dim=-1)  # (B * K, V)
        V = log_probs.shape[-1]
        # A finished hypothesis: one continuation (PAD) at cost 0, so its score stays as it was.
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[:, PAD] = 0.0
        log_probs = torch.where(done[:, None], frozen, log_probs)
        total = (scores.view(B * K, 1) + log_probs).view(B, K * V)
        scores, flat = total.topk(K, dim=-1)  # (B, K)
        parent = (flat // V + torch.arange(B, device=device)[:, None] * K).view(-1)  # rows of (B * K)
        tokens = (flat % V).view(-1)
        state = state.select(parent)
        history = torch.cat([history.index_select(0, parent), tokens[:, None]], dim=1)
        was_done = done.index_select(0, parent)
        lengths = lengths.index_select(0, parent) + (~was_done).long()
        done = was_done | (tokens == EOS)
        if bool(done.all()):
            break
    ranked = scores / length_penalty(lengths.view(B, K), alpha) if alpha > 0 else scores  # (B, K)
    best = ranked.argmax(-1)  # without a penalty: 0, topk is sorted
    chosen = history.view(B, K, -1)[torch.arange(B, device=device), best]  # (B, steps)
    return [until_eos(row) for row in chosen.tolist()]


class Generates:
    """`greedy` and `beam_search` for a model with `start(source)` and `step(tokens, state)`."""

    @torch.no_grad()
    def greedy(self, source: torch.Tensor, max_length: int) -> list[list[int]]:
        """Batched greedy decoding: the most likely token at every step, until EOS or `max_length` tokens.
        Returns the token ids of each output, without BOS/EOS."""
        return greedy_decode(self.step, self.start(source), source.shape[0], max_length, source.device)

    @torch.no_grad()
    def beam_search(self, source: torch.Tensor, max_length: int, beam_size: int = 5,
                    length_penalty: float = 0.0) -> list[list[int]]:
        """Batched beam search with GNMT's length penalty; with beam_size=1 exactly greedy decoding."""
        return beam_search_decode(self.step, self.start(source), source.shape[0], max_length, source.device,
                                  beam_size, length_penalty)
