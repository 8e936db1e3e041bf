"""How an encoder is set up to be fine-tuned: where its weights come from, how much of it trains, and at which
learning rate each depth trains.

    init   minilm | random | RUN_DIR     an alias or checkpoint, fresh weights, or `encoderlab pretrain`'s run
    mode   full | frozen | lora          train everything; only the head (linear probe); LoRA adapters + head
    layer_lr_decay                       lr of block i = lr * decay^(L - i), embeddings lowest (Howard & Ruder,
                                         2018; Clark et al., 2020); the head trains at lr. Each depth is an
                                         optimizer group whose `lr_scale` the Trainer applies at every step
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from ..artifacts.aliases import resolve_model_path
from ..errors import CheckpointError, ConfigError
from ..interop.hf_bert import load_hf_bert
from ..models.bert import BertModel
from ..models.heads import EncoderWithHead
from ..nn.lora import apply_lora
from ..tokenization import TextTokenizer
from .optim import is_norm_module

Mode = Literal["full", "frozen", "lora"]
MODES: tuple[str, ...] = ("full", "frozen", "lora")
DEFAULT_LR: dict[str, float] = {"full": 5e-5, "lora": 1e-3, "frozen": 3e-3}
"""Learning rates that work for each mode when lr= is not given (BERT-sized encoders, AdamW, batch 32)."""


@dataclass
class LoRASpec:
    """LoRA adapters (Hu et al., 2021) for mode=lora."""

    rank: int = 8
    """Rank r of each low-rank update B·A."""
    alpha: float = 16.0
    """Scale: the update is (alpha / rank)·B·A."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    targets: list[str] = field(default_factory=lambda: ["query", "value"])
    """Names (last component) of the linear layers to adapt: query, key, value, out, up, down."""

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"lora.rank={self.rank} must be >= 1 (typical: 4-16)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout={self.dropout} must be in [0, 1)")
        if not self.targets:
            raise ConfigError("lora.targets is empty; name linear layers to adapt, e.g. lora.targets=query,value")



def load_encoder(init: str, random_like: str = "minilm") -> tuple[BertModel, TextTokenizer, str]:
    """(encoder, its tokenizer, a description of where the weights came from), set up for training."""
    if init == "random":
        directory = resolve_model_path(random_like)
        template = load_hf_bert(directory)
        encoder = BertModel(copy.deepcopy(template.cfg))  # same shape, freshly initialised weights
        return encoder.train(), TextTokenizer.from_dir(directory), f"random (shape and tokenizer of {random_like})"
    directory = resolve_model_path(init)
    encoder = load_hf_bert(directory)
    tokenizer = TextTokenizer.from_dir(directory)
    if tokenizer.vocab_size > encoder.cfg.vocab_size:
        raise CheckpointError(f"{str(directory)!r}: the tokenizer has {tokenizer.vocab_size} tokens but the model "
                              f"only {encoder.cfg.vocab_size}; the tokenizer belongs to another model")
    return encoder.train(), tokenizer, str(directory)


def unknown_piece_rate(tokenizer: TextTokenizer, ids: list[list[int]], init: str, data: str) -> float:
    """Fraction of the training texts' word pieces that are [UNK]. Above 10% a note says so: an encoder
    pretrained on other text (or another script) cannot read this data, and its scores will show it."""
    unk = tokenizer.tokenizer.token_to_id("[UNK]")
    total = sum(max(len(seq) - 2, 0) for seq in ids)  # without [CLS] and [SEP]
    if unk is None or not total:
        return 0.0
    rate = sum(seq.count(unk) for seq in ids) / total
    if rate > 0.1:
        print(f"note: {rate:.0%} of the word pieces of {data} are unknown ([UNK]) to the tokenizer of init={init}; "
              "its vocabulary was built on other text. Pretrain on text like this data, or use another init=",
              file=sys.stderr)
    return rate


def prepare_mode(model: EncoderWithHead, mode: str, lora: LoRASpec) -> dict[str, int]:
    """Freeze or adapt the encoder as `mode` says; return trainable / total parameter counts."""
    if mode == "frozen":
        model.bert.requires_grad_(False)
    elif mode == "lora":
        apply_lora(model.bert, targets=tuple(lora.targets), rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout,
                   freeze_others=True)
    model.head.requires_grad_(True)
    return {"trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total_parameters": sum(p.numel() for p in model.parameters())}


# ============================================================================ layer-wise lr decay
def layer_depth(name: str, n_layers: int) -> int:
    """0 for the embeddings, i + 1 for block i, n_layers + 1 for everything above (head, pooler)."""
    if name.startswith("bert.embeddings."):
        return 0
    match = re.match(r"bert\.blocks\.(\d+)\.", name)
    return int(match.group(1)) + 1 if match else n_layers + 1


def layerwise_param_groups(model: nn.Module, decay: float, weight_decay: float) -> list[dict[str, Any]]:
    """One group per (depth, decayed or not); lr_scale = decay^(n_layers + 1 - depth)."""
    n_layers = len(model.bert.blocks)
    no_decay = {id(p) for m in model.modules() if is_norm_module(m) for p in m.parameters(recurse=False)}
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_depth(name, n_layers)
        decayed = param.ndim >= 2 and id(param) not in no_decay
        group = groups.setdefault((depth, decayed), {
            "params": [], "weight_decay": weight_decay if decayed else 0.0,
            "lr_scale": decay ** (n_layers + 1 - depth), "depth": depth})
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]


def optimizer_groups(layer_lr_decay: float, weight_decay: float) -> Callable[[nn.Module], list[dict[str, Any]]] | None:
    """The Trainer's `param_groups=`: per-depth lr scales when layer_lr_decay < 1, else None (the Trainer's
    default decay / no-decay groups). The Trainer multiplies each group's lr by its lr_scale."""
    if layer_lr_decay >= 1.0:
        return None
    return lambda model: layerwise_param_groups(model, layer_lr_decay, weight_decay)
