"""Train sentence embeddings contrastively.

objective=pairs: (anchor, positive) pairs from a user's .jsonl / .csv; every other positive in the batch is
a negative for an anchor — the multiple-negatives ranking loss (Henderson et al., 2017, "Efficient Natural
Language Response Suggestion"; sentence-transformers' MultipleNegativesRankingLoss): cross-entropy over
scale * cos(anchor_i, positive_j), with the right answer j = i.

objective=labels: labelled texts (a catalog classification dataset or a .csv/.jsonl); texts with the same
label attract and all others repel — the supervised contrastive loss (Khosla et al., 2020).

    encoderlab finetune task=embed data=pairs.jsonl init=minilm mode=lora out_dir=runs/emb
    encoderlab encode --model runs/emb/final --input texts.txt --output vectors.npy

The result (OUT_DIR/final/) is a plain sentence-transformers-layout encoder: mean pooling, L2-normalised,
LoRA merged. Held-out quality is recall@1: how often an anchor's nearest positive (among all held-out
positives) is its own, or for labels, how often a text's nearest other text has the same label.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..artifacts.finetuned import export_encoder
from ..artifacts.text_encoder import TextEncoder
from ..data.records import Splits
from ..errors import ConfigError, InputDataError
from ..files import atomic_write_json
from ..models.heads import ProjectionHead
from ..training import Trainer
from .classify import ClassifyConfig, load_labelled_splits
from .finetune import Encoder, FinetuneConfig, HeldOut, run_finetune


@dataclass
class EmbedConfig(FinetuneConfig):
    task: Literal["embed"] = "embed"
    """Which fine-tuning task this config is for (`encoderlab finetune` dispatches on it)."""
    out_dir: str = "runs/embed"
    """Run directory (one per task by default)."""
    objective: Literal["pairs", "labels"] = "pairs"
    """pairs: (anchor, positive) rows, in-batch negatives; labels: same-label texts are positives."""
    data: str = ""
    """objective=pairs: a .jsonl or .csv of pairs; objective=labels: a catalog dataset or labelled .csv/.jsonl."""
    anchor_column: str = "anchor"
    """objective=pairs: the column (.csv) or field (.jsonl) of the anchor text."""
    positive_column: str = "positive"
    """objective=pairs: the column or field of the text that belongs with the anchor."""
    bad_rows: Literal["error", "warn"] = "error"
    """objective=labels: a .csv row with an empty text or label: error (listing them), or warn and skip."""
    split: str = "0.9,0.1,0.0"
    """train,validation,test fractions (seeded); validation gives the held-out recall@1."""
    pooling: Literal["mean", "cls"] = "mean"
    """How the saved encoder pools token states into one vector."""
    scale: float = 20.0
    """Inverse temperature of the cosine similarities (sentence-transformers uses 20)."""
    best_metric: str = "eval_loss"
    best_mode: Literal["min", "max"] = "min"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data:
            raise ConfigError("data is empty; give a .jsonl/.csv of (anchor, positive) pairs, or objective=labels "
                              "with a labelled dataset (e.g. data=bbc-news)")
        if self.scale <= 0:
            raise ConfigError(f"scale={self.scale} must be positive (e.g. 20)")
        if self.batch_size < 2:
            raise ConfigError("contrastive training needs batch_size >= 2: the other rows are the negatives")
        if self.mode == "frozen":  # the embedding head has no weights: a frozen encoder leaves nothing to train
            raise ConfigError("task=embed trains the encoder itself, so mode=frozen would train nothing; use "
                              "mode=full or mode=lora")


# ============================================================================ data
def read_pairs(path: str | Path, anchor: str = "anchor", positive: str = "positive") -> list[tuple[str, str]]:
    """(anchor, positive) rows of a .jsonl or .csv; a missing column or empty cell names file and row."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"pairs file {str(path)!r} does not exist; check the path")
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".jsonl":
        for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputDataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
    elif path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            for column in (anchor, positive):
                if reader.fieldnames is not None and column not in reader.fieldnames:
                    raise InputDataError(f"{path}:1: no column {column!r} in the header {reader.fieldnames}; name "
                                         "the right ones with anchor_column= / positive_column= (or, for "
                                         "labelled texts, use objective=labels)")
            rows = [(reader.line_num, record) for record in reader]
    else:
        raise InputDataError(f"pairs file {str(path)!r} must be .jsonl or .csv")
    if not rows:
        raise InputDataError(f"pairs file {str(path)!r} is empty; give one (anchor, positive) pair per row")
    pairs = []
    for line_no, record in rows:
        for column in (anchor, positive):
            value = record.get(column) if isinstance(record, dict) else None
            if isinstance(record, dict) and column not in record:
                raise InputDataError(f"{path}, column {column!r}, row {line_no}: no such field (found "
                                     f"{sorted(record)}); name the right ones with anchor_column= / positive_column= "
                                     "(or, for labelled texts, use objective=labels)")
            if not isinstance(value, str) or not value.strip():
                raise InputDataError(f"{path}, column {column!r}, row {line_no}: missing or empty; every row needs "
                                     f"a {anchor!r} and a {positive!r} text")
        pairs.append((record[anchor].strip(), record[positive].strip()))
    return pairs


def split_pairs(pairs: list, split: str, seed: int) -> tuple[list, list]:
    from ..data.records import parse_fractions

    fractions = parse_fractions(split)
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_train = round(len(pairs) * fractions[0])
    n_val = round(len(pairs) * (fractions[0] + fractions[1])) - n_train
    return [pairs[i] for i in order[:n_train]], [pairs[i] for i in order[n_train:n_train + n_val]]


# ============================================================================ losses
def multiple_negatives_ranking_loss(anchors: torch.Tensor, positives: torch.Tensor, scale: float) -> torch.Tensor:
    """anchors, positives: (B, D) unit vectors; row i of positives belongs to anchor i, the rest are negatives."""
    scores = scale * anchors @ positives.T  # (B, B)
    return F.cross_entropy(scores, torch.arange(len(anchors), device=anchors.device))


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, scale: float) -> torch.Tensor:
    """embeddings (B, D) unit vectors, labels (B,). Mean over anchors that have a same-label partner in the
    batch of -mean log p(partner | anchor), where p is a softmax over all other rows."""
    B = len(labels)
    scores = scale * embeddings @ embeddings.T  # (B, B)
    self_mask = torch.eye(B, dtype=torch.bool, device=embeddings.device)
    scores = scores.masked_fill(self_mask, float("-inf"))
    log_prob = scores.log_softmax(dim=1).masked_fill(self_mask, 0.0)  # (B, B), diagonal unused
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positive.sum(1)
    has_partner = count > 0
    if not bool(has_partner.any()):
        return embeddings.sum() * 0.0  # no pair in this batch: no signal, but keep the graph
    per_anchor = -(log_prob * positive).sum(1)[has_partner] / count[has_partner]
    return per_anchor.mean()


# ============================================================================ the task
def _embed_collate(tokenizer, max_length: int):
    def collate(items):
        out = {}
        for key in items[0]:
            if key == "label":
                out["labels"] = torch.tensor([item["label"] for item in items])
                continue
            batch = tokenizer.pad([item[key] for item in items])
            out[f"{key}_ids"], out[f"{key}_mask"] = batch.input_ids, batch.attention_mask
        return out
    return collate


def recall_at_1(queries: np.ndarray, keys: np.ndarray) -> float:
    """Fraction of queries i whose most similar key is key i (unit vectors)."""
    return float(((queries @ keys.T).argmax(1) == np.arange(len(queries))).mean())


def same_label_at_1(vectors: np.ndarray, labels: list[int]) -> float:
    """Fraction of texts whose nearest other text has the same label."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return float((np.asarray(labels)[sims.argmax(1)] == np.asarray(labels)).mean())


class EmbedTask:
    """task=embed in the fine-tuning recipe (tasks/finetune.py): the head has no weights, the encoder learns."""

    def load_splits(self, cfg: EmbedConfig) -> Splits:
        if cfg.objective == "pairs":
            train, validation = split_pairs(read_pairs(cfg.data, cfg.anchor_column, cfg.positive_column), cfg.split,
                                            cfg.seed)
            return Splits(train, validation, [])
        return load_labelled_splits(ClassifyConfig(data=cfg.data, split=cfg.split, seed=cfg.seed,
                                                   text_column=cfg.text_column, label_column=cfg.label_column,
                                                   bad_rows=cfg.bad_rows, out_dir=cfg.out_dir))

    def make_head(self, cfg: EmbedConfig, d_model: int, splits: Splits) -> ProjectionHead:
        return ProjectionHead(d_model, None, cfg.pooling, normalize=True)

    def make_trainer(self, cfg: EmbedConfig, encoder: Encoder, data: HeldOut) -> tuple[Trainer, dict[str, Any]]:
        tokenizer, max_length = encoder.tokenizer, encoder.max_length

        def ids(texts: list[str]) -> list[list[int]]:
            return tokenizer.encode_ids([t.strip() for t in texts], max_length)

        if cfg.objective == "pairs":
            def items(pairs):
                return [{"anchor": a, "positive": p} for a, p in zip(ids([a for a, _ in pairs]),
                                                                     ids([p for _, p in pairs]), strict=True)]

            def loss_fn(m, batch):
                a = m(batch["anchor_ids"], batch["anchor_mask"])
                p = m(batch["positive_ids"], batch["positive_mask"])
                return multiple_negatives_ranking_loss(a.float(), p.float(), cfg.scale), len(a)
        else:
            def items(records):
                return [{"text": i, "label": y} for i, y in zip(ids(records.texts), records.labels, strict=True)]

            def loss_fn(m, batch):
                z = m(batch["text_ids"], batch["text_mask"])
                return supervised_contrastive_loss(z.float(), batch["labels"], cfg.scale), len(z)

        def save_final(trained, directory: Path) -> None:
            TextEncoder(export_encoder(trained), tokenizer, pooling=cfg.pooling, normalize=True,
                        max_seq_length=max_length).save_pretrained(directory)

        untrained = TextEncoder(encoder.model.bert, tokenizer, pooling=cfg.pooling, normalize=True,
                                max_seq_length=max_length)
        before = {f"initial_validation_{metric_name(cfg)}": quality(cfg, untrained, data.validation)}
        val_items = items(data.validation)
        trainer = Trainer(cfg, encoder.model, items(data.train), loss_fn=loss_fn,
                          collate_fn=_embed_collate(tokenizer, max_length), eval_data=val_items or None,
                          save_final=save_final)
        return trainer, before

    def score(self, cfg: EmbedConfig, final_dir: Path, data: HeldOut) -> dict[str, Any]:
        # Held-out retrieval with the saved encoder, loaded as a user would.
        saved = TextEncoder.from_pretrained(final_dir)
        return {f"validation_{metric_name(cfg)}": quality(cfg, saved, data.validation), "objective": cfg.objective,
                "train_examples": len(data.train)}


def metric_name(cfg: EmbedConfig) -> str:
    return "recall_at_1" if cfg.objective == "pairs" else "same_label_at_1"


def quality(cfg: EmbedConfig, encoder: TextEncoder, validation) -> float | None:
    """Held-out recall@1 of the pairs, or same-label@1 of the labelled texts (None without enough of them)."""
    if cfg.objective == "pairs":
        return recall_at_1(encoder.encode([a for a, _ in validation]),
                           encoder.encode([p for _, p in validation])) if validation else None
    return same_label_at_1(encoder.encode(validation.texts), validation.labels) if len(validation) > 1 else None


def train_embeddings(cfg: EmbedConfig) -> dict[str, Any]:
    """Train, save OUT_DIR/final/ (a sentence-transformers-layout encoder), reload it and score it."""
    metrics = run_finetune(cfg, EmbedTask())
    atomic_write_json(Path(cfg.out_dir) / "eval_validation.json", metrics)
    return metrics
