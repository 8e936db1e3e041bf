"""Fine-tune an encoder to tag every word: part-of-speech tagging of People's Daily 1998 (or a user's
`word/TAG` file, one sentence per line).

    encoderlab finetune --config configs/finetune-pos.yaml init=runs/pretrain-tiny-zh mode=full
    tagger = TokenTagger.from_dir("runs/x");  tagger.predict([["中国", "人民"]])   # [["ns", "n"]]

Words are split into word pieces by the model's tokenizer; the first piece of each word carries its tag,
the others are ignored (`align_word_labels`), so token accuracy counts each word once. Words cut off by
`max_length` are not scored; their number is reported (`test_words_truncated`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..artifacts.finetuned import HeadInfo, save_finetuned
from ..artifacts.tagger import TokenTagger, encode_words
from ..data.catalog import CATALOG, load_dataset, read_tagged_file
from ..data.records import Splits, TaggedSequences, make_splits, parse_fractions, seeded_subset
from ..data.references import data_reference, is_catalog_name
from ..errors import InputDataError
from ..evaluation.classification import ClassificationReport, tagger_report
from ..files import atomic_write_json
from ..models.heads import IGNORE_INDEX, EncoderWithHead, TokenClassificationHead, align_word_labels
from ..tokenization import TextTokenizer
from ..training import Trainer
from ..training.encoder_setup import optimizer_groups, unknown_piece_rate
from .finetune import Encoder, FinetuneConfig, HeldOut, evaluation_split, run_finetune


@dataclass
class TagConfig(FinetuneConfig):
    task: Literal["tag"] = "tag"
    """Which fine-tuning task this config is for (`encoderlab finetune` dispatches on it)."""
    out_dir: str = "runs/tag"
    """Run directory (one per task by default)."""
    data: str = "peoples-daily-1998"
    """peoples-daily-1998, or a file of tagged sentences: a .txt with one sentence per line of space-separated
    `word/TAG` items, a .conll / .tsv with word<TAB>tag lines and a blank line between sentences, or a .jsonl of
    {"tokens": [...], "tags": [...]}."""
    best_metric: str = "eval_token_accuracy"


def load_tagged_splits(cfg: TagConfig) -> Splits[TaggedSequences]:
    if is_catalog_name(cfg.data):
        splits = load_dataset(cfg.data, split=cfg.split, seed=cfg.seed)
        if not isinstance(splits.train, TaggedSequences):
            raise InputDataError(f"data={cfg.data!r} is a text-classification dataset; tagging needs "
                                 "peoples-daily-1998 or a word/TAG file (use task=classify for it)")
        return splits
    path = Path(cfg.data)
    if not path.is_file():
        raise InputDataError(f"data {cfg.data!r} is neither peoples-daily-1998 nor an existing tagging file (.txt of "
                             "word/TAG lines, .conll / .tsv, or .jsonl); check the path")
    records = read_tagged_file(path)
    if not len(records):
        raise InputDataError(f"{path}: the file is empty; expected tagged sentences (see docs/finetuning.md)")
    return make_splits(records, parse_fractions(cfg.split), cfg.seed)


class TaggedPieces(torch.utils.data.Dataset):
    """(piece ids, piece labels) per sentence; labels hold IGNORE_INDEX except on each word's first piece."""

    def __init__(self, records: TaggedSequences, tokenizer: TextTokenizer, max_length: int):
        encodings = encode_words(tokenizer, records.tokens, max_length)
        self.ids = [enc.ids for enc in encodings]
        self.labels = [align_word_labels(enc.word_ids, tags) for enc, tags in zip(encodings, records.tags,
                                                                                   strict=True)]
        n_words = sum(len(t) for t in records.tags)
        self.words_truncated = n_words - sum(sum(1 for x in lab if x != IGNORE_INDEX) for lab in self.labels)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.ids[i], self.labels[i]


def make_collate(tokenizer: TextTokenizer):
    def collate(items):
        batch = tokenizer.pad([ids for ids, _ in items])
        labels = torch.full(batch.input_ids.shape, IGNORE_INDEX, dtype=torch.long)
        for row, (_, lab) in enumerate(items):
            labels[row, :len(lab)] = torch.tensor(lab)
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "labels": labels}
    return collate


def loss_fn(model: EncoderWithHead, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(batch["input_ids"], batch["attention_mask"])  # (B, T, K)
    labels = batch["labels"]
    n = (labels != IGNORE_INDEX).sum()
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX), n


def eval_fn(model: EncoderWithHead, batch: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, Any]]:
    logits = model(batch["input_ids"], batch["attention_mask"]).float()
    labels = batch["labels"]
    scored = labels != IGNORE_INDEX
    n = scored.sum()
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    correct = (logits.argmax(-1) == labels) & scored
    return {"loss": (loss, n), "token_accuracy": (correct.sum() / n.clamp(min=1), n)}


class TagTask:
    """task=tag in the fine-tuning recipe (tasks/finetune.py)."""

    def load_splits(self, cfg: TagConfig) -> Splits[TaggedSequences]:
        return load_tagged_splits(cfg)

    def make_head(self, cfg: TagConfig, d_model: int, splits: Splits[TaggedSequences]) -> nn.Module:
        return TokenClassificationHead(d_model, len(splits.train.tag_names), cfg.head_dropout)

    def make_trainer(self, cfg: TagConfig, encoder: Encoder, data: HeldOut) -> tuple[Trainer, dict[str, Any]]:
        tokenizer, max_length = encoder.tokenizer, encoder.max_length
        info = HeadInfo(task="token-classification", label_names=list(data.splits.train.tag_names),
                        max_length=max_length, head_dropout=cfg.head_dropout, init=encoder.source, mode=cfg.mode,
                        data=data_reference(cfg.data), split=cfg.split, seed=cfg.seed)
        train_pieces = TaggedPieces(data.train, tokenizer, max_length)
        before = {"unknown_piece_rate": round(unknown_piece_rate(tokenizer, train_pieces.ids, cfg.init, cfg.data), 4)}
        trainer = Trainer(cfg, encoder.model, train_pieces, loss_fn=loss_fn, collate_fn=make_collate(tokenizer),
                          eval_data=TaggedPieces(data.validation, tokenizer, max_length) if len(data.validation)
                          else None, eval_fn=eval_fn, save_final=lambda m, d: save_finetuned(m, tokenizer, d, info),
                          param_groups=optimizer_groups(cfg.layer_lr_decay, cfg.weight_decay))
        return trainer, before

    def score(self, cfg: TagConfig, final_dir: Path, data: HeldOut) -> dict[str, Any]:
        tagger = TokenTagger.from_dir(final_dir)
        metrics: dict[str, Any] = {}
        for split_name, records in (("validation", data.validation), ("test", data.test)):
            if len(records):
                report, truncated = tagger_report(tagger, records)
                atomic_write_json(Path(cfg.out_dir) / f"eval_{split_name}.json",
                                  {"model": str(final_dir), "split": split_name, "words_truncated": truncated,
                                   **report.to_dict()})
                metrics[f"{split_name}_token_accuracy"] = report.accuracy
                metrics[f"{split_name}_macro_f1"] = report.macro_f1
                metrics[f"{split_name}_words_truncated"] = truncated
        metrics.update({"train_sentences": len(data.train), "test_sentences": len(data.test),
                        "tag_names": list(data.splits.train.tag_names)})
        return metrics


def finetune_tagger(cfg: TagConfig) -> dict[str, Any]:
    """Train, save OUT_DIR/final/, reload it and report token accuracy on validation and test."""
    return run_finetune(cfg, TagTask())


def evaluate_tagger(model: str | Path, data: str, split: str = "auto", output_dir: str | Path | None = None,
                    max_examples: int | None = None) -> tuple[ClassificationReport, Path]:
    tagger = TokenTagger.from_dir(model)
    split = evaluation_split(split, data, tagger.info.data)
    cfg = TagConfig(data=data, split=tagger.info.split if split != "all" else "1,0,0", seed=tagger.info.seed,
                    out_dir="unused")
    splits = load_tagged_splits(cfg)
    records = seeded_subset(splits.train if split == "all" else getattr(splits, split), max_examples, cfg.seed)
    if not len(records):
        raise InputDataError(f"data {data!r} has no {split} sentences (split={cfg.split}); evaluate on another file "
                             "(or on --split validation if that has sentences)")
    report, truncated = tagger_report(tagger, records)
    directory = Path(output_dir) if output_dir else Path(model) / "evaluations"
    name = data if data in CATALOG else Path(data).stem
    path = report.save(directory, f"eval_{name}_{split}", extra={"model": str(model), "data": data, "split": split,
                                                                 "words_truncated": truncated})
    return report, path


def predict_tags_file(model: str | Path, input_path: str | Path, output_path: str | Path, text_column: str = "text",
                      batch_size: int = 32) -> int:
    """Input: .txt with one sentence of space-separated words per line, or .jsonl with a `tokens` list (or
    `text_column` string, split on spaces). Output: one JSON line {"tokens", "tags"} per sentence."""
    from ..data.text_input import read_text_file, read_texts
    from ..files import atomic_write_text

    path = Path(input_path)
    if Path(output_path).suffix.lower() in (".csv", ".tsv"):  # a table cell cannot hold a tag per word
        raise InputDataError(f"--output {str(output_path)!r}: a tagger writes one JSON line of tokens and tags per "
                             "sentence; name the output .jsonl")
    if path.suffix.lower() == ".jsonl":
        sentences = []
        for line_no, line in enumerate(read_text_file(path).splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputDataError(f"{path}:{line_no}: not valid JSON ({exc.msg}); each line must be one "
                                         "JSON object") from exc
                tokens = record.get("tokens") if isinstance(record, dict) else None
                if isinstance(record, dict) and not tokens:
                    tokens = str(record.get(text_column, "")).split()
                if not tokens or not isinstance(tokens, list):
                    raise InputDataError(f"{path}:{line_no}: no 'tokens' list of words and no {text_column!r} text; "
                                         "give each line a \"tokens\" list (or name the text field with "
                                         "--text-column)")
                sentences.append([str(t) for t in tokens])
    else:
        sentences = [line.split() for line in read_texts(path, text_option="--text-column") if line.strip()]
    if not sentences:
        raise InputDataError(f"input file {str(path)!r} is empty; give one sentence of space-separated words per line")
    tagger = TokenTagger.from_dir(model)
    tags = tagger.predict(sentences, batch_size)
    lines = [json.dumps({"tokens": s, "tags": t}, ensure_ascii=False) for s, t in zip(sentences, tags, strict=True)]
    atomic_write_text(output_path, "\n".join(lines) + "\n")
    return len(lines)
