"""A Transformer encoder-decoder (Vaswani et al., 2017, "Attention Is All You Need") whose encoder is our
BERT-style encoder (`models.bert.BertModel`, padding-free on ragged batches) and whose decoder is written
here from the same `nn/` pieces: causal self-attention, cross-attention over the encoder output, a
feed-forward network, each in a residual connection with a LayerNorm (pre-LN by default, Xiong et al. 2020).

Embeddings: the output layer is the decoder's token table, transposed (Press & Wolf 2017, "Using the output
embedding to improve language models"); with a joint source/target vocabulary (`share_embeddings`) the
encoder reads the same table too, so one matrix serves all three (Vaswani et al. 2017, section 3.4).

Decoding keeps a cache per decoder block: the keys and values of the tokens generated so far (self-
attention; each step adds one row instead of recomputing the prefix) and the keys and values of the
encoder output (cross-attention; computed once per source). Greedy decoding and beam search with a length
penalty come from `models.decoding`, shared with the recurrent model.

Read top to bottom: the config, attention helpers, a decoder block, the cache, the model.
Shapes: B batch, S source length, T target length, C = d_model, nh heads, hs = C / nh, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, InputDataError
from ..nn import FeedForward, MultiHeadSelfAttention, TextEmbeddings, padding_mask_to_bias
from ..nn.mlp import ACTIVATIONS
from .bert import BertConfig, BertModel
from .decoding import PAD, SPECIAL_TOKENS, Generates


@dataclass
class TransformerSeq2SeqConfig:
    """Architecture of the encoder-decoder. Vocabulary sizes come from the data (the task fills them in)."""

    kind: Literal["transformer"] = "transformer"
    """Selects this architecture in `encoderlab seq2seq` (model.kind=lstm / gru: the recurrent one)."""
    source_vocab_size: int = 0
    """Source tokens, specials included; 0 = fill in from the data."""
    target_vocab_size: int = 0
    """Target tokens, specials included; 0 = fill in from the data."""
    d_model: int = 256
    """Width of the residual stream, encoder and decoder."""
    n_heads: int = 4
    """Attention heads per block; d_model must be divisible by it."""
    d_ff: int = 1024
    """Hidden width of every feed-forward network."""
    n_encoder_layers: int = 3
    """Encoder blocks."""
    n_decoder_layers: int = 3
    """Decoder blocks."""
    max_positions: int = 256
    """Longest source and longest target (with BOS / EOS), in tokens."""
    positions: Literal["learned", "sinusoidal"] = "learned"
    """Position embeddings added to the token embeddings, encoder and decoder."""
    norm_position: Literal["pre", "post"] = "pre"
    """pre: LayerNorm before each sub-layer plus a final one (trains stably from scratch at higher lr);
    post: after each residual add (the original Transformer and BERT)."""
    activation: str = "gelu"
    """Feed-forward activation: gelu, gelu_tanh, relu or silu."""
    dropout: float = 0.1
    """On embeddings and on each sub-layer's output."""
    attention_dropout: float = 0.1
    """On attention probabilities."""
    share_embeddings: bool = False
    """One token table for source and target (and the output layer). Needs a joint vocabulary: the task
    allows it only with source_tokens=target_tokens=subword."""
    fused_attention: bool = True
    """F.scaled_dot_product_attention; false selects the explicit reference path (tested equal)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation (BERT's)."""

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "d_ff", "n_encoder_layers", "n_decoder_layers", "max_positions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be at least 1")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}; "
                              f"pick n_heads among its divisors (e.g. {max(1, self.d_model // 64)})")
        for name in ("source_vocab_size", "target_vocab_size"):
            value = getattr(self, name)
            if value and value <= len(SPECIAL_TOKENS):
                raise ConfigError(f"model.{name}={value} leaves no room for real tokens next to the "
                                  f"{len(SPECIAL_TOKENS)} specials; use 0 (taken from the data)")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be in [0, 1)")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"model.activation={self.activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}")
        if self.share_embeddings and self.source_vocab_size != self.target_vocab_size:
            raise ConfigError(f"model.share_embeddings=true needs one joint vocabulary, but the source has "
                              f"{self.source_vocab_size} tokens and the target {self.target_vocab_size}; "
                              "use source_tokens=subword target_tokens=subword, or model.share_embeddings=false")

    def encoder_config(self) -> BertConfig:
        """The encoder is a BertModel: no segments, no pooler, padding id 0, skipping padding (unpad)."""
        return BertConfig(vocab_size=self.source_vocab_size, d_model=self.d_model, n_layers=self.n_encoder_layers,
                          n_heads=self.n_heads, d_ff=self.d_ff, max_positions=self.max_positions, n_segments=0,
                          positions=self.positions, norm_position=self.norm_position, activation=self.activation,
                          dropout=self.dropout, attention_dropout=self.attention_dropout, norm_eps=1e-6,
                          pad_token_id=PAD, pooler=False, fused_attention=self.fused_attention, unpad=True,
                          init_std=self.init_std)


# ----------------------------------------------------------------------------------------------- attention
# The decoder reuses nn.MultiHeadSelfAttention's projections (query / key / value / out, the names BERT
# checkpoints use) and its attention kernel (fused SDPA or the reference softmax), but feeds keys and
# values from elsewhere: from the cache (self-attention) or from the encoder output (cross-attention).
KeysValues = tuple[torch.Tensor, torch.Tensor]
"""(keys, values), each (B, nh, length, hs)."""


def project_keys_values(attn: MultiHeadSelfAttention, x: torch.Tensor) -> KeysValues:
    """x (B, L, C) -> keys and values (B, nh, L, hs)."""
    return attn._split_heads(attn.key(x)), attn._split_heads(attn.value(x))


def attend(attn: MultiHeadSelfAttention, x: torch.Tensor, keys_values: KeysValues,
           bias: torch.Tensor | None) -> torch.Tensor:
    """Queries from x (B, T, C) attend over keys_values (B, nh, L, hs) -> (B, T, C)."""
    B, T, _ = x.shape
    q = attn._split_heads(attn.query(x))  # (B, nh, T, hs)
    y = attn._attend(q, *keys_values, bias)  # (B, nh, T, hs)
    return attn.out(y.transpose(1, 2).reshape(B, T, -1))


def causal_bias(T: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(T, T) additive mask: 0 where query t may see key s (s <= t), -inf above the diagonal."""
    return torch.full((T, T), float("-inf"), device=device, dtype=dtype).triu(1)


# ----------------------------------------------------------------------------------------------- decoder
class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention over the encoder output, feed-forward; each a residual branch."""

    def __init__(self, cfg: TransformerSeq2SeqConfig) -> None:
        super().__init__()
        d, eps = cfg.d_model, 1e-6
        self.pre_norm = cfg.norm_position == "pre"
        self.self_attn = MultiHeadSelfAttention(d, cfg.n_heads, cfg.attention_dropout, fused=cfg.fused_attention)
        self.self_attn_norm = nn.LayerNorm(d, eps=eps)
        self.cross_attn = MultiHeadSelfAttention(d, cfg.n_heads, cfg.attention_dropout, fused=cfg.fused_attention)
        self.cross_attn_norm = nn.LayerNorm(d, eps=eps)
        self.ffn = FeedForward(d, cfg.d_ff, cfg.activation, "mlp", cfg.dropout)
        self.ffn_norm = nn.LayerNorm(d, eps=eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def _self_attention(self, x: torch.Tensor, past: KeysValues | None,
                        bias: torch.Tensor | None) -> tuple[torch.Tensor, KeysValues]:
        """x (B, T, C): the new positions; past: keys/values of the earlier ones -> output, all keys/values."""
        k, v = project_keys_values(self.self_attn, x)  # (B, nh, T, hs)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)  # (B, nh, t + T, hs)
        return attend(self.self_attn, x, (k, v), bias), (k, v)

    def forward(self, x: torch.Tensor, memory: KeysValues, memory_bias: torch.Tensor,
                past: KeysValues | None = None,
                bias: torch.Tensor | None = None) -> tuple[torch.Tensor, KeysValues]:
        """x (B, T, C); memory: this block's cross-attention keys/values of the encoder output (B, nh, S, hs);
        memory_bias (B, 1, 1, S) hides source padding; bias (T, t + T) causal (None: a single new position,
        which may see everything before it). -> (B, T, C) and the self-attention keys/values so far."""
        if self.pre_norm:
            h, present = self._self_attention(self.self_attn_norm(x), past, bias)
            x = x + self.dropout(h)
            x = x + self.dropout(attend(self.cross_attn, self.cross_attn_norm(x), memory, memory_bias))
            x = x + self.ffn(self.ffn_norm(x))
        else:
            h, present = self._self_attention(x, past, bias)
            x = self.self_attn_norm(x + self.dropout(h))
            x = self.cross_attn_norm(x + self.dropout(attend(self.cross_attn, x, memory, memory_bias)))
            x = self.ffn_norm(x + self.ffn(x))
        return x, present


# ----------------------------------------------------------------------------------------------- the cache
@dataclass
class TransformerState:
    """What decoding carries from step to step; `select` reorders every row (beam search)."""

    memory: list[KeysValues]
    """Per decoder block: cross-attention keys/values of the encoder output, (B, nh, S, hs) each."""
    memory_bias: torch.Tensor
    """(B, 1, 1, S): 0 at real source tokens, a large negative at padding."""
    past: list[KeysValues] | None = None
    """Per decoder block: self-attention keys/values of the tokens fed so far, (B, nh, t, hs); None before
    the first step."""
    position: int = 0
    """How many target tokens were fed so far (the next one's position)."""

    def select(self, index: torch.Tensor) -> TransformerState:
        def pick(kv: KeysValues) -> KeysValues:
            return kv[0].index_select(0, index), kv[1].index_select(0, index)
        return TransformerState([pick(kv) for kv in self.memory], self.memory_bias.index_select(0, index),
                                None if self.past is None else [pick(kv) for kv in self.past], self.position)


# ----------------------------------------------------------------------------------------------- the model
class TransformerSeq2Seq(Generates, nn.Module):
    """BertModel encoder + Transformer decoder with tied output embeddings. `forward` is teacher-forced;
    `greedy` and `beam_search` generate with cached keys and values."""

    def __init__(self, cfg: TransformerSeq2SeqConfig) -> None:
        super().__init__()
        if not cfg.source_vocab_size or not cfg.target_vocab_size:
            raise ConfigError("TransformerSeq2SeqConfig.source_vocab_size / target_vocab_size are 0; set them "
                              "(the training task fills them in from the data's vocabularies)")
        self.cfg = cfg
        self.encoder = BertModel(cfg.encoder_config())
        self.embeddings = TextEmbeddings(cfg.target_vocab_size, cfg.d_model, cfg.max_positions, 0, cfg.positions,
                                         PAD, 1e-6, cfg.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_decoder_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=1e-6) if cfg.norm_position == "pre" else None
        self.out_bias = nn.Parameter(torch.zeros(cfg.target_vocab_size))  # the output weight is the token table
        self.apply(self.encoder._init_weights)
        if cfg.share_embeddings:
            self.embeddings.tokens = self.encoder.embeddings.tokens  # one (V, C) table for all three

    def tied_names(self) -> set[str]:
        """State-dict names that alias another tensor (stored once by save_weights)."""
        return {"embeddings.tokens.weight"} if self.cfg.share_embeddings else set()

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Load a state dict written by `checkpoint.save_weights` (a tied table stored once)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = sorted(set(missing) - self.tied_names())
        if unexpected or missing:
            raise CheckpointError(f"the weights do not fit this TransformerSeq2Seq config: missing {missing[:5]}, "
                                  f"unexpected {sorted(unexpected)[:5]}")

    # ------------------------------------------------------------------ encoder and decoder
    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (B, S) right-padded -> encoder output (B, S, C) (zeros at padding), memory bias (B, 1, 1, S)."""
        mask = (source != PAD).long()  # (B, S)
        if bool((mask.sum(1) == 0).any()):
            raise InputDataError("an empty source sequence cannot be encoded; every input needs >= 1 token")
        hidden = self.encoder(source, mask)  # (B, S, C); ragged batches run packed
        return hidden, padding_mask_to_bias(mask, hidden.dtype)

    def sentence_vectors(self, source: torch.Tensor) -> torch.Tensor:
        """source (B, S) -> (B, C): the encoder output averaged over the real tokens."""
        hidden, _ = self.encode(source)  # zeros at padding
        return hidden.sum(1) / (source != PAD).sum(1, keepdim=True).to(hidden.dtype)

    def start(self, source: torch.Tensor) -> TransformerState:
        """Encode and precompute every block's cross-attention keys/values: the decoding state before step 0."""
        hidden, memory_bias = self.encode(source)
        return TransformerState([project_keys_values(b.cross_attn, hidden) for b in self.blocks], memory_bias)

    def decode(self, target_in: torch.Tensor, state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """target_in (B, T): the next T target tokens after the `state.position` already fed -> logits
        (B, T, V) and the state with them cached. Position t attends to positions <= t only."""
        B, T = target_in.shape
        start = state.position
        if start + T > self.cfg.max_positions:
            raise ConfigError(f"target length {start + T} exceeds model.max_positions={self.cfg.max_positions}; "
                              "lower max_output_length or train with a larger model.max_positions")
        positions = torch.arange(start, start + T, device=target_in.device)[None]  # (1, T)
        x = self.embeddings(target_in, position_ids=positions)  # (B, T, C)
        bias = None
        if T > 1:  # a block of new positions: causal among themselves, all earlier ones visible
            bias = F.pad(causal_bias(T, x.device, x.dtype), (start, 0))  # (T, start + T)
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, state.memory[i], state.memory_bias, None if state.past is None else state.past[i], bias)
            present.append(kv)
        if self.final_norm is not None:
            x = self.final_norm(x)
        logits = F.linear(x, self.embeddings.tokens.weight, self.out_bias)  # (B, T, V): tied output layer
        return logits, TransformerState(state.memory, state.memory_bias, present, start + T)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: source (B, S), target_in (B, T) = BOS + target, both right-padded -> logits (B, T, V).
        Target padding needs no mask: it sits after every real token, which (causal) never attends to it."""
        return self.decode(target_in, self.start(source))[0]

    # ------------------------------------------------------------------ generation
    def step(self, tokens: torch.Tensor, state: TransformerState) -> tuple[torch.Tensor, TransformerState]:
        """One decoding step with the cache: tokens (B,) -> logits (B, V) and the next state."""
        logits, state = self.decode(tokens[:, None], state)
        return logits[:, 0], state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------------------------- warm start
# Rothe, Narayan & Severyn (2020), "Leveraging pre-trained checkpoints for sequence generation tasks": the
# encoder starts as a pretrained BERT (BERT2RND), and optionally the decoder too (BERT2BERT): each decoder
# block's self-attention and feed-forward network from the encoder block of the same index, its cross-
# attention fresh, since the checkpoint has none.
def config_for_pretrained(cfg: TransformerSeq2SeqConfig, pretrained: BertConfig,
                          source: str) -> TransformerSeq2SeqConfig:
    """`cfg` with the encoder's shape taken from a pretrained BertConfig (the decoder has the same width, so
    decoder_init=encoder can copy blocks); vocabulary sizes follow the checkpoint's table. An encoder this
    file cannot rebuild (rotary positions, GLU feed-forward, pruned heads, position offsets) is refused."""
    unsupported = {"positions=rotary": pretrained.positions == "rotary", "ffn_kind=glu": pretrained.ffn_kind != "mlp",
                   "pruned heads or FFN": bool(pretrained.layer_heads or pretrained.layer_d_ff),
                   "position offset (RoBERTa)": bool(pretrained.position_offset)}
    if any(unsupported.values()):
        raise CheckpointError(f"{source}: a warm start needs a plain BERT encoder, but this one has "
                              f"{', '.join(k for k, v in unsupported.items() if v)}; use an `encoderlab pretrain` run")
    return replace(cfg, d_model=pretrained.d_model, n_heads=pretrained.n_heads, d_ff=pretrained.d_ff,
                   n_encoder_layers=pretrained.n_layers, positions=pretrained.positions,
                   norm_position=pretrained.norm_position, activation=pretrained.activation)


def warm_start_encoder(model: TransformerSeq2Seq, pretrained: BertModel) -> dict[str, int]:
    """Copy a pretrained BertModel into `model.encoder` (config from `config_for_pretrained`). BERT adds a
    segment embedding to every token; our encoder has no segments, so segment 0's row is folded into every
    position row (the sum each token sees is unchanged). Extra position rows (model.max_positions beyond the
    checkpoint's) and the pooler are left as they are. Returns counts of copied tensors and position rows."""
    state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("pooler.")}
    segments = state.pop("embeddings.segments.weight", None)  # (n_segments, C)
    target = model.encoder.state_dict()
    rows = 0
    if "embeddings.positions.weight" in state:
        positions = state.pop("embeddings.positions.weight")  # (P, C)
        if segments is not None:
            positions = positions + segments[0]
        ours = target["embeddings.positions.weight"]  # (max_positions, C)
        if positions.shape[1] != ours.shape[1]:
            raise CheckpointError(f"checkpoint tensor embeddings.positions.weight {tuple(positions.shape)} does not "
                                  f"fit the encoder ({tuple(ours.shape)}): another d_model")
        rows = min(len(positions), len(ours))
        with torch.no_grad():
            model.encoder.embeddings.positions.weight[:rows] = positions[:rows]
    elif segments is not None:  # sinusoidal positions: the segment row goes into the embedding LayerNorm's input
        raise CheckpointError("a warm start from a checkpoint with sinusoidal positions and segment embeddings is "
                              "not supported; pretrain with learned positions")
    rows_vocab = len(target["embeddings.tokens.weight"])
    if len(state["embeddings.tokens.weight"]) < rows_vocab:
        raise CheckpointError(f"the checkpoint's token table has {len(state['embeddings.tokens.weight'])} rows, "
                              f"fewer than the vocabulary's {rows_vocab}; the tokenizer belongs to another model")
    state["embeddings.tokens.weight"] = state["embeddings.tokens.weight"][:rows_vocab]
    for name, tensor in state.items():
        if name not in target or target[name].shape != tensor.shape:
            raise CheckpointError(f"checkpoint tensor {name} {tuple(tensor.shape)} does not fit the encoder "
                                  f"({tuple(target[name].shape) if name in target else 'no such tensor'})")
    missing = set(target) - set(state) - {"embeddings.positions.weight"}
    if missing:
        raise CheckpointError(f"the checkpoint lacks encoder tensors {sorted(missing)[:5]}")
    model.encoder.load_state_dict(state, strict=False)
    return {"tensors": len(state) + bool(rows), "position_rows": rows}


def copy_encoder_into_decoder(model: TransformerSeq2Seq) -> int:
    """BERT2BERT: decoder block i's self-attention, feed-forward and their LayerNorms <- encoder block i's
    attention, feed-forward and norms; the decoder's position embeddings and embedding LayerNorm <- the
    encoder's, its token table too unless it is already the shared one. Cross-attention (and its norm) stays
    freshly initialised. Returns how many decoder blocks were copied."""
    encoder = model.encoder
    if len(model.blocks) > len(encoder.blocks):
        raise ConfigError(f"decoder_init=encoder copies encoder block i into decoder block i, but the decoder has "
                          f"{len(model.blocks)} blocks and the encoder {len(encoder.blocks)}; set "
                          f"model.n_decoder_layers={len(encoder.blocks)} or fewer")
    with torch.no_grad():
        for block, source in zip(model.blocks, encoder.blocks, strict=False):
            block.self_attn.load_state_dict(source.attn.state_dict())
            block.self_attn_norm.load_state_dict(source.attn_norm.state_dict())
            block.ffn.load_state_dict(source.ffn.state_dict())
            block.ffn_norm.load_state_dict(source.ffn_norm.state_dict())
        embeddings = model.embeddings
        embeddings.norm.load_state_dict(encoder.embeddings.norm.state_dict())
        if hasattr(embeddings, "positions") and isinstance(embeddings.positions, nn.Embedding):
            embeddings.positions.weight.copy_(encoder.embeddings.positions.weight)
        if embeddings.tokens is not encoder.embeddings.tokens:
            if embeddings.tokens.weight.shape != encoder.embeddings.tokens.weight.shape:
                raise ConfigError("decoder_init=encoder copies the encoder's token table into the decoder, but "
                                  "the target vocabulary is not the source's; use source_tokens=subword "
                                  "target_tokens=subword (one joint vocabulary)")
            embeddings.tokens.weight.copy_(encoder.embeddings.tokens.weight)
        if model.final_norm is not None and encoder.final_norm is not None:
            model.final_norm.load_state_dict(encoder.final_norm.state_dict())
    return len(model.blocks)
