"""What every fine-tuning task shares: where the encoder comes from, how much of it trains, and the
self-describing model directory it leaves behind.

    init   minilm | random | RUN_DIR     an alias or checkpoint, fresh weights, or `encoderlab pretrain`'s run
    mode   full | frozen | lora          train everything; only the head (linear probe); LoRA adapters + head
    layer_lr_decay                       lr of block i = lr * decay^(L - i), embeddings lowest (Howard & Ruder,
                                         2018; Clark et al., 2020); the head trains at lr. Each depth is an
                                         optimizer group whose `lr_scale` the Trainer applies at every step

A fine-tuned model directory (OUT_DIR/final/) holds the encoder in Hugging Face layout (config.json,
model.safetensors, tokenizer; LoRA already merged into the weights), `head.safetensors` and `head.json`
(task, label names, pooling, max length, how it was trained). `load_finetuned(directory)` rebuilds it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from safetensors.torch import load_file
from torch import nn

from ..artifacts.aliases import resolve_model_path
from ..artifacts.runs import model_dir
from ..data.catalog import CATALOG
from ..errors import CheckpointError, ConfigError
from ..interop.hf_bert import load_hf_bert, save_hf_bert
from ..models.bert import BertModel
from ..models.heads import EncoderWithHead, SequenceClassificationHead, TokenClassificationHead
from ..nn.lora import apply_lora, merge_lora
from ..tokenization import TextTokenizer
from ..training import TrainConfig
from ..training.checkpoint import save_weights
from ..training.optim import is_norm_module

HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"
Mode = Literal["full", "frozen", "lora"]
# Learning rates that work for each mode when lr= is not given (BERT-sized encoders, AdamW, batch 32).
DEFAULT_LR: dict[str, float] = {"full": 5e-5, "lora": 1e-3, "frozen": 3e-3}


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


@dataclass
class FinetuneConfig(TrainConfig):
    init: str = "minilm"
    """Where the encoder comes from: an alias (minilm), `random`, a checkpoint directory, or the OUT_DIR of
    `encoderlab pretrain` (its final/ is used)."""
    random_like: str = "minilm"
    """init=random only: the checkpoint whose architecture and tokenizer are copied (weights are fresh), so a
    random-init run differs from a pretrained one in the weights alone."""
    mode: Mode = "full"
    """full: train encoder and head; frozen: only the head (a linear probe); lora: LoRA adapters and head."""
    lora: LoRASpec = field(default_factory=LoRASpec)
    """LoRA settings (mode=lora)."""
    layer_lr_decay: float = 1.0
    """Layer-wise lr decay for mode=full: block i trains at lr * decay^(L - i); 1.0 turns it off."""
    max_length: int = 128
    """Truncate inputs to this many word pieces ([CLS] and [SEP] included)."""
    head_dropout: float = 0.1
    """Dropout before the head's linear layer."""
    lr: float | None = None  # type: ignore[assignment]
    """Peak learning rate; null picks by mode: full 5e-5, lora 1e-3, frozen 3e-3."""
    warmup_steps: int = 0
    best_metric: str = "eval_accuracy"
    best_mode: Literal["min", "max"] = "max"
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = DEFAULT_LR.get(self.mode, 1e-3)
        if self.mode not in ("full", "frozen", "lora"):
            raise ConfigError(f"mode={self.mode!r} is unknown; choose full, frozen or lora")
        super().__post_init__()
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise ConfigError(f"layer_lr_decay={self.layer_lr_decay} must be in (0, 1]; 1.0 disables it, "
                              "0.8-0.95 is typical")
        if self.layer_lr_decay < 1.0 and self.mode != "full":
            raise ConfigError(f"layer_lr_decay only applies to mode=full (mode={self.mode} trains no encoder "
                              "layers directly); drop it or set mode=full")
        if self.max_length < 4:
            raise ConfigError(f"max_length={self.max_length} is too short; use e.g. max_length=128")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"head_dropout={self.head_dropout} must be in [0, 1)")
        if not self.init:
            raise ConfigError("init is empty; use init=minilm, init=random or init=RUN_DIR")


# ============================================================================ the encoder
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
        import sys

        print(f"note: {rate:.0%} of the word pieces of {data} are unknown ([UNK]) to the tokenizer of init={init}; "
              "its vocabulary was built on other text. Pretrain on text like this data, or use another init=",
              file=sys.stderr)
    return rate


def prepare_mode(model: EncoderWithHead, cfg: FinetuneConfig) -> dict[str, int]:
    """Freeze or adapt the encoder as `cfg.mode` says; return trainable / total parameter counts."""
    if cfg.mode == "frozen":
        model.bert.requires_grad_(False)
    elif cfg.mode == "lora":
        apply_lora(model.bert, targets=tuple(cfg.lora.targets), rank=cfg.lora.rank, alpha=cfg.lora.alpha,
                   dropout=cfg.lora.dropout, freeze_others=True)
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


def optimizer_groups(cfg: FinetuneConfig) -> Callable[[nn.Module], list[dict[str, Any]]] | None:
    """The Trainer's `param_groups=` for `cfg`: per-depth lr scales when layer_lr_decay < 1, else None (the
    Trainer's default decay / no-decay groups). The Trainer multiplies each group's lr by its lr_scale."""
    if cfg.layer_lr_decay >= 1.0:
        return None
    return lambda model: layerwise_param_groups(model, cfg.layer_lr_decay, cfg.weight_decay)


# ============================================================================ saving and loading
def data_reference(name_or_path: str) -> str:
    """What head.json records as a model's data: a catalog name as is, a file as its absolute path, so that
    `evaluate` recognises the training data (and finds its held-out split) from any directory."""
    if not name_or_path or (name_or_path in CATALOG and not Path(name_or_path).exists()):
        return name_or_path
    return str(Path(name_or_path).expanduser().resolve())


def same_data(a: str | None, b: str | None) -> bool:
    """Whether two data= values name the same catalog dataset or file (`reviews.csv` == `./reviews.csv`)."""
    return bool(a) and bool(b) and data_reference(str(a)) == data_reference(str(b))


def evaluation_split(split: str, data: str, meta: dict[str, Any]) -> str:
    """`evaluate --split`: auto is the held-out test split of the model's own training data and every row
    (all) of any other data; train, validation, test and all are taken as given."""
    if split == "auto":
        split = "test" if same_data(data, meta.get("data")) else "all"
    if split not in ("train", "validation", "test", "all"):
        raise ConfigError(f"split={split!r} is unknown; choose auto, train, validation, test or all")
    return split


def export_encoder(model: EncoderWithHead) -> BertModel:
    """A plain copy of the encoder with any LoRA adapters folded into its weights."""
    encoder = copy.deepcopy(model.bert).cpu()
    merge_lora(encoder)
    return encoder.eval()


def save_finetuned(model: EncoderWithHead, tokenizer: TextTokenizer, directory: str | Path,
                   meta: dict[str, Any]) -> Path:
    """The encoder (HF layout, LoRA merged), its tokenizer, head.safetensors and head.json (`meta`)."""
    directory = Path(directory)
    save_hf_bert(export_encoder(model), directory)
    tokenizer.save(directory)
    save_weights(directory / HEAD_WEIGHTS, {k: v.detach().cpu().contiguous()
                                            for k, v in model.head.state_dict().items()})
    from ..files import atomic_write_json

    atomic_write_json(directory / HEAD_CONFIG, meta)
    return directory


def finetuned_dir(path: str | Path) -> Path:
    """A fine-tuned model directory, given it or the run directory that holds it in final/."""
    path = Path(path).expanduser()
    found = model_dir(path, HEAD_CONFIG)
    if found is not None:
        return found
    if not path.exists():
        raise CheckpointError(f"model {str(path)!r} does not exist; pass the OUT_DIR of `encoderlab finetune` "
                              "or its final/ directory")
    for candidate in (path, path / "final"):
        if (candidate / "config.json").is_file():  # an encoder without a head: say what it is and what takes it
            kind = ("a sentence-embedding model (finetune task=embed)" if (candidate / "modules.json").is_file()
                    else "an encoder without a classification or tagging head (e.g. from `encoderlab pretrain`)")
            raise CheckpointError(f"{str(path)!r} holds no {HEAD_CONFIG}; it is not a fine-tuned model with a head "
                                  f"(classifier or tagger) but {kind}. Embed with `encoderlab encode --model "
                                  f"{path}`, or fine-tune it with `encoderlab finetune init={path} ...`")
    raise CheckpointError(f"{str(path)!r} holds no {HEAD_CONFIG}; it is not a fine-tuned model. Pass the OUT_DIR "
                          "of `encoderlab finetune` (or its final/), or finish that run first")


def build_head(meta: dict[str, Any], d_model: int) -> nn.Module:
    task = meta.get("task")
    if task == "sequence-classification":
        return SequenceClassificationHead(d_model, len(meta["label_names"]), meta.get("pooling", "cls"),
                                          meta.get("head_dropout", 0.1))
    if task == "token-classification":
        return TokenClassificationHead(d_model, len(meta["label_names"]), meta.get("head_dropout", 0.1))
    raise CheckpointError(f"{HEAD_CONFIG}: task={task!r} is unknown; expected sequence-classification or "
                          "token-classification")


def load_finetuned(path: str | Path) -> tuple[EncoderWithHead, TextTokenizer, dict[str, Any]]:
    """(model in eval mode, tokenizer, head.json contents) of a fine-tuned model directory."""
    directory = finetuned_dir(path)
    meta = finetuned_meta(directory)
    encoder = load_hf_bert(directory)
    tokenizer = TextTokenizer.from_dir(directory)
    head = build_head(meta, encoder.cfg.d_model)
    weights_path = directory / HEAD_WEIGHTS
    if not weights_path.is_file():
        raise CheckpointError(f"{str(directory)!r} has {HEAD_CONFIG} but no {HEAD_WEIGHTS}; the save was "
                              "interrupted, re-run the fine-tune")
    try:
        head.load_state_dict(load_file(str(weights_path)), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{str(weights_path)!r} does not fit {HEAD_CONFIG}: {exc}") from exc
    return EncoderWithHead(encoder, head).eval(), tokenizer, meta


def finetuned_meta(path: str | Path) -> dict[str, Any]:
    """head.json of a fine-tuned model directory (or of the run directory holding it)."""
    directory = finetuned_dir(path)
    try:
        return json.loads((directory / HEAD_CONFIG).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{str(directory / HEAD_CONFIG)!r} is not valid JSON ({exc}); re-run the "
                              "fine-tune or restore the file") from exc
