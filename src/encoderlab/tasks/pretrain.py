"""Pretrain a BERT encoder from scratch with masked-language modelling (Devlin et al., 2019).

    encoderlab pretrain --config configs/pretrain-tiny-en.yaml [key=value ...] [--resume OUT_DIR]
    pretrain_mlm(PretrainConfig(data="bbc-news", out_dir="runs/x", max_steps=100))

The recipe, in order: load the text (catalog names or a user path) and split it; train a tokenizer on the
training split (or load one); tokenise both splits once into memory-mapped token files; pack them into
sequences; train a `BertForMaskedLM` with the shared Trainer, masking dynamically; evaluate the held-out
MLM loss and masked-token accuracy with fixed masks; export the final model in Hugging Face layout.

Run directory: config.yaml, tokenizer/, data/ (token files), checkpoints/, log.jsonl, loss_curve.png,
final/ (config.json + model.safetensors + tokenizer: `TextEncoder.from_pretrained` and
`transformers.BertForMaskedLM.from_pretrained` both load it) and metrics.json.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..data.catalog import load_text_splits
from ..data.mlm import (
    DocumentSequences,
    MaskedOnce,
    MLMCollator,
    MLMMasker,
    PackedSequences,
    SortedByLength,
    TokenFile,
    write_token_file,
)
from ..errors import ConfigError, EncoderlabError, InputDataError
from ..interop.hf_bert import save_hf_bert_mlm
from ..models.bert import BertForMaskedLM
from ..models.presets import PRESETS, preset_config
from ..tokenization import TextTokenizer, TokenizerConfig, train_tokenizer
from ..training import TrainConfig, Trainer
from ..training.distributed import dist_info, main_rank_first
from ..training.metrics_log import LOG_FILE, MetricsLog, read_log
from ..training.precision import apply_threads


@dataclass
class ModelSpec:
    """A named size plus optional overrides of its shape (null keeps the preset's value)."""

    preset: str = "bert-tiny"
    """One of bert-tiny, bert-mini, bert-small, bert-medium, bert-base, bert-large."""
    n_layers: int | None = None
    """Encoder blocks (preset's if null)."""
    d_model: int | None = None
    """Residual width (preset's if null)."""
    n_heads: int | None = None
    """Attention heads (d_model / 64 if null)."""
    d_ff: int | None = None
    """Feed-forward width (4 * d_model if null)."""
    dropout: float = 0.1
    """Dropout on embeddings and sub-layer outputs."""
    attention_dropout: float = 0.1
    """Dropout on attention probabilities."""
    norm_position: Literal["post", "pre"] = "post"
    """post-LN (BERT; exports to Hugging Face) or pre-LN."""
    positions: Literal["learned", "sinusoidal", "rotary"] = "rotary"
    """rotary (relative offsets in attention: learns context far sooner, docs/pretraining.md), learned (BERT's
    position table; the only one transformers can load) or sinusoidal."""

    def __post_init__(self) -> None:
        preset_config(self.preset, vocab_size=8)  # an unknown name fails here, with the list of names

    def build_config(self, vocab_size: int, max_positions: int, pad_token_id: int):
        overrides = {k: getattr(self, k) for k in ("n_layers", "d_model", "n_heads", "d_ff")
                     if getattr(self, k) is not None}
        if "d_model" in overrides:  # keep the preset's rules for what was not given
            overrides.setdefault("n_heads", max(1, overrides["d_model"] // 64))
            overrides.setdefault("d_ff", 4 * overrides["d_model"])
        return preset_config(self.preset, vocab_size=vocab_size, max_positions=max_positions,
                             pad_token_id=pad_token_id, pooler=False, dropout=self.dropout,
                             attention_dropout=self.attention_dropout, norm_position=self.norm_position,
                             positions=self.positions, **overrides)


@dataclass
class PretrainConfig(TrainConfig):
    out_dir: str = "runs/pretrain"
    """Run directory (one per task by default, so a fine-tune is never offered as a pretraining run to resume)."""
    data: str = "bbc-news"
    """Catalog dataset name(s), comma-separated (e.g. bbc-news,tweets-sentiment), or a path: a folder of .txt
    files, a .txt with one document per line, a .jsonl (see text_field) or a .csv (see text_field)."""
    text_field: str = "text"
    """The .jsonl field or .csv column holding the text."""
    bad_rows: Literal["error", "warn"] = "error"
    """A .csv row with an empty text or the wrong number of cells: error (listing them), or warn and skip."""
    split: str = "0.8,0.1,0.1"
    """train,validation,test fractions of the documents (seeded); validation is the held-out set. The default
    is the catalog's, so with the same seed a later fine-tuning run's test documents were never pretrained on."""
    max_documents: int | None = None
    """Use only the first N training documents (a quick run on a slice); null uses all."""
    model: ModelSpec = field(default_factory=ModelSpec)
    """Model size: a preset and optional overrides."""
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """How to train the tokenizer on the training split (ignored when tokenizer_path is set)."""
    tokenizer_path: str = ""
    """A directory with a tokenizer.json to use instead of training one (must have [CLS] [SEP] [MASK] [PAD])."""
    max_seq_len: int = 128
    """Tokens per sequence, [CLS] included."""
    packing: bool = True
    """Pack documents back to back into full sequences (no padding); false: one document per sequence."""
    mask_prob: float = 0.15
    """Fraction of tokens (or words) to predict; BERT uses 0.15, 0.15-0.4 works well."""
    whole_word_mask: bool = False
    """Mask all pieces of a word together (for Chinese with character tokens: single characters)."""
    max_eval_sequences: int = 512
    """Evaluate on at most this many held-out sequences (the same ones every time)."""
    lr: float = 1e-3
    warmup_steps: int = 50
    best_metric: str = "eval_loss"
    log_every: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob={self.mask_prob} must be in (0, 1); BERT uses 0.15, 0.15-0.4 works well")
        if self.max_seq_len < 8:
            raise ConfigError(f"max_seq_len={self.max_seq_len} is too short to learn from; use e.g. 128")
        if self.max_documents is not None and self.max_documents < 1:
            raise ConfigError(f"max_documents={self.max_documents} must be >= 1, or null for all")
        if self.max_eval_sequences < 1:
            raise ConfigError(f"max_eval_sequences={self.max_eval_sequences} must be >= 1")


# ============================================================================ loss and metrics
def mlm_loss(model: BertForMaskedLM, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over the masked tokens of the batch (the head only sees those positions)."""
    logits = model(batch["input_ids"], batch["attention_mask"], masked_positions=batch["masked_positions"])
    return F.cross_entropy(logits.float(), batch["labels"]), batch["labels"].numel()


def mlm_eval(model: BertForMaskedLM, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, int]]:
    logits = model(batch["input_ids"], batch["attention_mask"], masked_positions=batch["masked_positions"])
    n = batch["labels"].numel()
    loss = F.cross_entropy(logits.float(), batch["labels"])
    accuracy = (logits.argmax(-1) == batch["labels"]).float().mean()
    return {"loss": (loss, n), "accuracy": (accuracy, n)}


# ============================================================================ the task
def _tokenizer(cfg: PretrainConfig, train_texts: list[str], directory: Path) -> TextTokenizer:
    if cfg.tokenizer_path:
        tokenizer = TextTokenizer.from_dir(cfg.tokenizer_path)
    elif (directory / "tokenizer.json").is_file() and cfg.resume:
        tokenizer = TextTokenizer.from_dir(directory)  # the resumed run's own vocabulary
    else:
        tokenizer = train_tokenizer(train_texts, cfg.tokenizer)
    for token in ("[CLS]", "[SEP]", "[MASK]", "[PAD]"):
        tokenizer.special_id(token)
    tokenizer.save_trained(directory, model_max_length=cfg.max_seq_len)
    return tokenizer


def _prepare_tokens(cfg: PretrainConfig, train_texts: list[str], eval_texts: list[str], out_dir: Path,
                    train_tokenizer_here: bool) -> tuple[TextTokenizer, TokenFile, TokenFile]:
    """The tokenizer (trained here, or read from OUT_DIR/tokenizer where rank 0 wrote it) and the memory-mapped
    token files of the training and held-out texts (reused when already written for the same corpus)."""
    tokenizer = (_tokenizer(cfg, train_texts, out_dir / "tokenizer") if train_tokenizer_here
                 else TextTokenizer.from_dir(out_dir / "tokenizer"))
    train_tokens = write_token_file(train_texts, tokenizer, out_dir / "data" / "train")
    eval_tokens = write_token_file(eval_texts, tokenizer, out_dir / "data" / "validation")
    for part, tokens, fix in (("training", train_tokens, "add text"),
                              ("held-out (validation)", eval_tokens, "give validation more, e.g. split=0.8,0.2,0")):
        if cfg.packing and tokens.n_tokens < cfg.max_seq_len - 1:  # say which part is short, and its fix
            raise InputDataError(f"data={cfg.data!r}: the {part} part, {tokens.n_documents} documents of "
                                 f"split={cfg.split}, has {tokens.n_tokens} tokens, fewer than one sequence of "
                                 f"max_seq_len={cfg.max_seq_len}; {fix}, or lower max_seq_len")
    return tokenizer, train_tokens, eval_tokens


def _sequences(tokens: TokenFile, cfg: PretrainConfig, cls_id: int, limit: int | None = None):
    kind = PackedSequences if cfg.packing else DocumentSequences
    return kind(tokens, cfg.max_seq_len, cls_id, limit)


def plot_curves(out_dir: Path) -> Path:
    """loss_curve.png: training loss per logged step and held-out loss / masked-token accuracy per evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(out_dir)
    train = [(r["step"], r["loss"]) for r in records if r.get("loss") is not None]
    evals = [(r["step"], r["eval_loss"], r["eval_accuracy"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s for s, _ in train], [v for _, v in train], label="train MLM loss", color="tab:blue", alpha=0.7)
    ax.plot([s for s, _, _ in evals], [v for _, v, _ in evals], "o-", label="held-out MLM loss", color="tab:red")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats per masked token)")
    acc_ax = ax.twinx()
    acc_ax.plot([s for s, _, _ in evals], [a for _, _, a in evals], "s--", color="tab:green",
                label="held-out masked-token accuracy")
    acc_ax.set_ylabel("accuracy")
    lines = ax.get_legend_handles_labels()
    more = acc_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    ax.set_title(out_dir.name)
    fig.tight_layout()
    path = out_dir / "loss_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@contextmanager
def _removed_on_input_error(*directories: Path) -> Iterator[None]:
    """Remove those of `directories` that this block creates if it fails on the user's input (a corpus too
    small for one sequence or one batch), so a failed run leaves no half-made run directory behind."""
    new = [d for d in directories if not d.exists()]
    try:
        yield
    except EncoderlabError:
        for directory in new:
            shutil.rmtree(directory, ignore_errors=True)
        raise


def pretrain_mlm(cfg: PretrainConfig) -> dict[str, Any]:
    """Train a BertForMaskedLM as `cfg` says; returns the metrics that go into metrics.json."""
    started = time.perf_counter()
    out_dir = Path(cfg.out_dir)
    apply_threads(cfg.threads)
    splits = load_text_splits(cfg.data, split=cfg.split, seed=cfg.seed, text_field=cfg.text_field,
                              bad_rows=cfg.bad_rows)
    train_texts = splits.train.texts[:cfg.max_documents] if cfg.max_documents else splits.train.texts
    eval_texts = splits.validation.texts
    if not eval_texts:
        raise ConfigError(f"data={cfg.data!r} with split={cfg.split} leaves no validation documents for the held-out "
                          "MLM loss; give validation a fraction, e.g. split=0.9,0.1,0.0")

    with _removed_on_input_error(out_dir / "tokenizer", out_dir / "data"):
        # Under torchrun rank 0 trains the tokenizer and writes the token files; the other ranks then read them.
        tokenizer, train_tokens, eval_tokens = main_rank_first(
            lambda: _prepare_tokens(cfg, train_texts, eval_texts, out_dir, dist_info().is_main))
        cls_id, pad_id = tokenizer.special_id("[CLS]"), tokenizer.special_id("[PAD]")
        train = _sequences(train_tokens, cfg, cls_id)
        held_out_sequences = SortedByLength(_sequences(eval_tokens, cfg, cls_id, limit=cfg.max_eval_sequences))

        model_cfg = cfg.model.build_config(tokenizer.vocab_size, cfg.max_seq_len, pad_id)
        model = BertForMaskedLM(model_cfg)
        masker = MLMMasker(cfg.mask_prob, tokenizer.special_id("[MASK]"), tokenizer.vocab_size,
                           tokenizer.special_ids(), whole_word=cfg.whole_word_mask)
        held_out = MaskedOnce(held_out_sequences, masker, cfg.seed)  # the same masks at every evaluation

        def save_final(trained: BertForMaskedLM, directory: Path) -> None:
            save_hf_bert_mlm(trained, directory)
            tokenizer.save_trained(directory, model_max_length=cfg.max_seq_len)

        # Packed sequences all have max_seq_len tokens; documents vary, so batch those by length (less padding).
        lengths = None if cfg.packing else [train.length(i) for i in range(len(train))]
        trainer = Trainer(cfg, model, train, loss_fn=mlm_loss, collate_fn=MLMCollator(masker, pad_id),
                          eval_data=held_out, eval_fn=mlm_eval, save_final=save_final, lengths=lengths)

    initial = next((r for r in _read_log_safe(out_dir) if r["step"] == 0 and "eval_loss" in r), None)
    if initial is None:  # before the first step: the loss an untrained model gets (about ln V)
        initial = {"step": 0, **trainer.evaluate()}  # every rank evaluates (metrics are reduced); rank 0 logs
        if dist_info().is_main:
            log = MetricsLog(out_dir)
            log.write(initial)
            log.close()
    result = trainer.fit()

    metrics = dict(result.metrics)
    metrics.update({
        "initial_eval_loss": initial["eval_loss"],
        "initial_eval_accuracy": initial["eval_accuracy"],
        "eval_perplexity": math.exp(metrics["eval_loss"]) if "eval_loss" in metrics else None,
        "train_tokens": train_tokens.n_tokens,
        "train_sequences": len(train),
        "eval_sequences": len(held_out),
        "vocab_size": tokenizer.vocab_size,
        "parameters": model.num_parameters(),
        "model": {"preset": cfg.model.preset, "n_layers": model_cfg.n_layers, "d_model": model_cfg.d_model,
                  "n_heads": model_cfg.n_heads, "d_ff": model_cfg.d_ff},
        "seconds": round(time.perf_counter() - started, 1),
        "loss_curve": str(plot_curves(out_dir) if dist_info().is_main else out_dir / "loss_curve.png"),
        "final_dir": str(result.final_dir),
    })
    return metrics


def _read_log_safe(out_dir: Path) -> list[dict[str, Any]]:
    return read_log(out_dir) if (out_dir / LOG_FILE).is_file() else []


def list_model_presets() -> list[str]:
    return list(PRESETS)
