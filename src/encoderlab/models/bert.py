"""A BERT-style Transformer encoder (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding"), written from the building blocks in `encoderlab.nn`.

Read top to bottom: the config, one encoder block, the encoder. The residual stream is visible in
`EncoderBlock.forward`; post-LN is the original BERT layout, pre-LN (Xiong et al., 2020) trains more
stably when deep and ends with a final LayerNorm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nn import FeedForward, MultiHeadSelfAttention, Packing, TextEmbeddings, padding_mask_to_bias
from ..nn.mlp import ACTIVATIONS
from ..nn.rotary import RotaryAngles, RotaryEmbedding

# BertConfig fields that every Hugging Face family fixes, with their value there; any other value is an
# encoderlab variant (hf_model_type 'bert' only, saved as model_type 'encoderlab-bert').
ARCHITECTURE_FIELDS = {"positions": "learned", "norm_position": "post", "ffn_kind": "mlp"}


@dataclass
class BertConfig:
    """Shape and behaviour of a BERT-style encoder. Field names follow the GUIDE; `interop.hf_bert`
    maps them to Hugging Face's `config.json` names (hidden_size, num_hidden_layers, …)."""

    vocab_size: int = 30522
    """Number of token ids the embedding table holds."""
    d_model: int = 768
    """Width of the residual stream (Hugging Face: hidden_size)."""
    n_layers: int = 12
    """Number of encoder blocks."""
    n_heads: int = 12
    """Attention heads per block; d_model must be divisible by it."""
    d_ff: int = 3072
    """Hidden width of the feed-forward network (Hugging Face: intermediate_size)."""
    max_positions: int = 512
    """Longest sequence the position table covers (the table has max_positions + position_offset rows)."""
    n_segments: int = 2
    """Segment (token type) vocabulary; 0 disables segment embeddings."""
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    """Learned absolute position embeddings (BERT), fixed sinusoids added to the input, or rotary: queries
    and keys rotated by their positions in every block (RoFormer), so attention sees relative offsets."""
    position_numbering: Literal["column", "non_padding"] = "column"
    """Which row of the position table a token reads. 'column': its column in the batch (BERT, DistilBERT),
    so left padding shifts a sequence's positions. 'non_padding': its rank among the tokens whose id is not
    pad_token_id, so a sequence reads the same rows however it is padded, and padding tokens read row
    position_offset - 1 (RoBERTa's `create_position_ids_from_input_ids`). Both paths (padded and
    `unpad`) number from the input ids, as the reference does."""
    position_offset: int = 0
    """Row of the position table that the first token reads: 0 for BERT; RoBERTa starts at
    pad_token_id + 1 (its rows 0 … pad_token_id hold no real token)."""
    norm_position: Literal["post", "pre"] = "post"
    """'post': LayerNorm after each residual add (BERT); 'pre': before each sub-layer, plus a final norm."""
    activation: str = "gelu"
    """Feed-forward activation: gelu (exact, as BERT), gelu_tanh, relu or silu."""
    ffn_kind: Literal["mlp", "glu"] = "mlp"
    """Plain two-layer MLP or a gated linear unit (GLU) feed-forward."""
    dropout: float = 0.1
    """Dropout on embeddings and on each sub-layer's output."""
    attention_dropout: float = 0.1
    """Dropout on attention probabilities."""
    norm_eps: float = 1e-12
    """LayerNorm epsilon (BERT uses 1e-12)."""
    pad_token_id: int = 0
    """Token id used for padding."""
    pooler: bool = True
    """Add BERT's pooler (dense + tanh on the first token)."""
    fused_attention: bool = True
    """Use F.scaled_dot_product_attention; False selects the explicit reference path."""
    unpad: bool = True
    """Skip padding: run padded batches as packed real tokens (same result, less work on ragged batches)."""
    init_std: float = 0.02
    """Standard deviation of the normal initialisation of weights."""
    layer_heads: list[int] | None = None
    """Heads kept in each block after structured pruning (one entry per block, each in [1, n_heads]); null:
    n_heads everywhere. d_head stays d_model // n_heads, so a block with fewer heads is narrower inside."""
    layer_d_ff: list[int] | None = None
    """Feed-forward width of each block after structured pruning (one entry per block, each >= 1); null:
    d_ff everywhere."""
    hf_model_type: Literal["bert", "distilbert", "roberta", "xlm-roberta"] = "bert"
    """The Hugging Face layout (tensor and config.json names) `interop.hf_bert.save_hf_bert` writes: the
    checkpoint's model_type on import, so a loaded model saves back as what it was. Only 'bert' takes the
    variants BERT cannot express (saved as model_type 'encoderlab-bert'); forward never reads it."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "d_ff", "max_positions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"BertConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"BertConfig: d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                f"pick n_heads from the divisors of d_model (e.g. {self.d_model // 64 or 1} heads of 64)"
            )
        if self.n_segments < 0:
            raise ConfigError(f"BertConfig.n_segments must be >= 0, got {self.n_segments}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"BertConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"BertConfig.activation={self.activation!r} is unknown; choose one of {sorted(ACTIVATIONS)}"
            )
        if self.positions not in ("learned", "sinusoidal", "rotary"):
            raise ConfigError(f"BertConfig.positions must be 'learned', 'sinusoidal' or 'rotary', "
                              f"got {self.positions!r}")
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2 != 0:
            raise ConfigError(f"BertConfig: rotary positions need an even head width, but d_model={self.d_model} / "
                              f"n_heads={self.n_heads} = {self.d_model // self.n_heads}; change n_heads")
        if self.norm_position not in ("post", "pre"):
            raise ConfigError(f"BertConfig.norm_position must be 'post' or 'pre', got {self.norm_position!r}")
        if self.ffn_kind not in ("mlp", "glu"):
            raise ConfigError(f"BertConfig.ffn_kind must be 'mlp' or 'glu', got {self.ffn_kind!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"BertConfig.pad_token_id={self.pad_token_id} is outside the vocabulary [0, {self.vocab_size})"
            )
        self._check_positions()
        self._check_hf_layout()
        for name, upper in (("layer_heads", self.n_heads), ("layer_d_ff", None)):
            sizes = getattr(self, name)
            if sizes is None:
                continue
            sizes = [int(n) for n in sizes]
            setattr(self, name, sizes)
            if len(sizes) != self.n_layers:
                raise ConfigError(f"BertConfig.{name} has {len(sizes)} entries but n_layers={self.n_layers}; "
                                  "give one per block, or null for the uniform size")
            if min(sizes) < 1 or (upper is not None and max(sizes) > upper):
                bound = f"[1, n_heads={upper}]" if upper is not None else ">= 1"
                raise ConfigError(f"BertConfig.{name}={sizes}: every entry must be {bound} (a block cannot lose "
                                  "all its heads or neurons)")

    def _check_positions(self) -> None:
        if self.position_numbering not in ("column", "non_padding"):
            raise ConfigError(f"BertConfig.position_numbering must be 'column' or 'non_padding', "
                              f"got {self.position_numbering!r}")
        if self.position_offset < 0:
            raise ConfigError(f"BertConfig.position_offset must be >= 0, got {self.position_offset}")
        if self.position_numbering == "non_padding" and self.position_offset < 1:
            raise ConfigError("BertConfig: position_numbering='non_padding' puts padding tokens at row "
                              "position_offset - 1, so position_offset must be >= 1 (RoBERTa: pad_token_id + 1)")
        if self.positions == "rotary" and (self.position_numbering, self.position_offset) != ("column", 0):
            raise ConfigError("BertConfig: rotary positions are relative, so position_numbering and "
                              "position_offset change nothing; leave them at 'column' and 0")

    def _check_hf_layout(self) -> None:
        """The Hugging Face classes compute one architecture each; refuse a config they would compute
        differently, so that a save can never be silently wrong."""
        layouts = ("bert", "distilbert", "roberta", "xlm-roberta")
        if self.hf_model_type not in layouts:
            raise ConfigError(f"BertConfig.hf_model_type={self.hf_model_type!r} is unknown; choose one of {layouts}")
        if self.hf_model_type == "bert":
            return
        changed = {name: getattr(self, name) for name, value in ARCHITECTURE_FIELDS.items()
                   if getattr(self, name) != value}
        if changed:
            raise ConfigError(f"BertConfig: hf_model_type={self.hf_model_type!r} computes learned positions, post-LN "
                              f"and an MLP, not {changed}; use hf_model_type='bert' (saved as encoderlab-bert)")
        if self.hf_model_type == "distilbert":
            wanted = {"n_segments": 0, "position_numbering": "column", "position_offset": 0}
        else:
            wanted = {"position_numbering": "non_padding", "position_offset": self.pad_token_id + 1}
        wrong = {name: getattr(self, name) for name, value in wanted.items() if getattr(self, name) != value}
        if wrong:
            raise ConfigError(f"BertConfig: hf_model_type={self.hf_model_type!r} needs {wanted}, got {wrong}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def heads_in(self, layer: int) -> int:
        """Attention heads of block `layer` (n_heads unless pruned)."""
        return self.n_heads if self.layer_heads is None else self.layer_heads[layer]

    def d_ff_in(self, layer: int) -> int:
        """Feed-forward width of block `layer` (d_ff unless pruned)."""
        return self.d_ff if self.layer_d_ff is None else self.layer_d_ff[layer]


class EncoderBlock(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a LayerNorm.

    `layer` picks the block's head count and feed-forward width when the config has per-layer sizes."""

    def __init__(self, cfg: BertConfig, layer: int = 0):
        super().__init__()
        self.pre_norm = cfg.norm_position == "pre"
        self.attn = MultiHeadSelfAttention(cfg.d_model, cfg.heads_in(layer), cfg.attention_dropout,
                                           fused=cfg.fused_attention, d_head=cfg.d_head)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.attn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff_in(layer), cfg.activation, cfg.ffn_kind, cfg.dropout)
        self.ffn_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None = None,
                packing: Packing | None = None, rotary: RotaryAngles | None = None) -> torch.Tensor:
        """x: (B, T, C) padded with attn_bias, or (N, C) packed with its packing; rotary: the positions' angles
        with rotary positions (see MultiHeadSelfAttention)."""
        if self.training:  # dropout sits between each sublayer and its residual add
            if self.pre_norm:
                x = x + self.attn_dropout(self.attn(self.attn_norm(x), attn_bias, packing, rotary))
                return x + self.ffn(self.ffn_norm(x))
            x = self.attn_norm(x + self.attn_dropout(self.attn(x, attn_bias, packing, rotary)))
            return self.ffn_norm(x + self.ffn(x))
        # inference: each residual add rides in its sublayer's output projection (nn/prepacked_linear.py)
        if self.pre_norm:
            x = self.attn(self.attn_norm(x), attn_bias, packing, rotary, residual=x)
            return self.ffn(self.ffn_norm(x), residual=x)
        x = self.attn_norm(self.attn(x, attn_bias, packing, rotary, residual=x))
        return self.ffn_norm(self.ffn(x, residual=x))


class BertModel(nn.Module):
    """Embeddings -> n_layers encoder blocks (-> final norm for pre-LN). Optional pooler."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        rotary = cfg.positions == "rotary"
        self.embeddings = TextEmbeddings(cfg.vocab_size, cfg.d_model, cfg.max_positions, cfg.n_segments,
                                         "none" if rotary else cfg.positions, cfg.pad_token_id, cfg.norm_eps,
                                         cfg.dropout, cfg.position_offset, cfg.position_numbering)
        self.rotary = RotaryEmbedding(cfg.d_head) if rotary else None
        self.blocks = nn.ModuleList(EncoderBlock(cfg, i) for i in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps) if cfg.norm_position == "pre" else None
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model) if cfg.pooler else None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.cfg.init_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=self.cfg.init_std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids, attention_mask, token_type_ids: (B, T) -> last hidden states (B, T, C).

        attention_mask holds 1 for real tokens and 0 for padding; padded positions never receive attention.
        With cfg.unpad, a batch with padding runs packed and its padded positions come back as zeros.
        """
        has_padding = attention_mask is not None and not bool(attention_mask.all())
        if has_padding and self.cfg.unpad:
            return self._forward_unpadded(input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, C)
        attn_bias = padding_mask_to_bias(attention_mask, x.dtype) if has_padding else None  # (B, 1, 1, T)
        rotary = self.rotary(torch.arange(x.size(1), device=x.device)) if self.rotary is not None else None
        for block in self.blocks:
            x = block(x, attn_bias, rotary=rotary)
        return self.final_norm(x) if self.final_norm is not None else x

    def _forward_unpadded(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Gather the real tokens, run the blocks on them packed, scatter back to (B, T, C)."""
        B, T = input_ids.shape
        position_ids = self.embeddings.position_ids(input_ids).expand(B, T)  # as when padded
        packing = Packing.from_mask(attention_mask, self.embeddings.tokens.weight.dtype)
        keep = packing.keep  # (N,) flat indices of real tokens
        positions = position_ids.reshape(-1)[keep]  # (N,)
        segments = None if token_type_ids is None else token_type_ids.reshape(-1)[keep][None]
        x = self.embeddings(input_ids.reshape(-1)[keep][None], segments, positions[None])[0]  # (N, C)
        rotary = self.rotary(positions) if self.rotary is not None else None  # (N, hs) each
        for block in self.blocks:
            x = block(x, packing=packing, rotary=rotary)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return packing.pad(x)  # (B, T, C), zeros at padding

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """BERT's pooler: tanh(W·h_[CLS] + b). hidden: (B, T, C) -> (B, C)."""
        if self.pooler is None:
            raise ValueError("this model was built with pooler=False; use encoderlab.nn.pool for pooling")
        return torch.tanh(self.pooler(hidden[:, 0]))

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


# ============================================================================ masked-language modelling
class MaskedLMHead(nn.Module):
    """BERT's MLM head: dense -> activation -> LayerNorm -> a decoder onto the vocabulary.

    The decoder's weight is the token-embedding table (tied, as in BERT), so it is passed in rather than
    owned; only its bias belongs to the head.
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.act = ACTIVATIONS[cfg.activation]
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> torch.Tensor:
        """hidden (..., C), embedding_weight (V, C) -> logits (..., V)."""
        h = self.norm(self.act(self.dense(hidden)))
        return F.linear(h, embedding_weight, self.bias)


class BertForMaskedLM(nn.Module):
    """A BertModel (no pooler: MLM does not use it) and a MaskedLMHead tied to its token embeddings.

    Training passes `masked_positions` (flat indices into B*T): the head runs on those N positions only, so
    the (B*T, V) logits matrix — the biggest tensor of a small model — is never built (and with
    cfg.unpad the encoder already skips the padding).
    """

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.bert = BertModel(cfg)
        self.head = MaskedLMHead(cfg)
        self.head.apply(self.bert._init_weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None,
                masked_positions: torch.Tensor | None = None) -> torch.Tensor:
        """-> logits (N, V) at `masked_positions` (flat indices into B*T), or (B, T, V) at every position."""
        table = self.bert.embeddings.tokens.weight  # (V, C): the tied decoder
        if masked_positions is None:
            return self.head(self.bert(input_ids, attention_mask, token_type_ids), table)  # (B, T, V)
        B, T = input_ids.shape
        hidden = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, C); skips padding (cfg.unpad)
        return self.head(hidden.reshape(B * T, -1).index_select(0, masked_positions), table)  # (N, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
