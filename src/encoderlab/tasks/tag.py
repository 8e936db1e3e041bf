"""Fine-tune an encoder to tag every word: part-of-speech tagging of People's Daily 1998 (or a user's
`word/TAG` file, one sentence per line).

    encoderlab finetune --config configs/finetune-pos.yaml init=runs/pretrain-tiny-zh mode=full
    tagger = TokenTagger.from_pretrained("runs/x");  tagger.predict([["中国", "人民"]])   # [["ns", "n"]]

Words are split into word pieces by the model's tokenizer; the first piece of each word carries its tag,
the others are ignored (`align_word_labels`), so token accuracy counts each word once. Words cut off by
`max_length` are not scored; their number is reported (`test_words_truncated`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..data.catalog import CATALOG, load_dataset, read_tagged_file
from ..data.records import Splits, TaggedSequences, make_splits, parse_fractions, seeded_subset
from ..errors import ConfigError, InputDataError
from ..evaluation.classification import ClassificationReport, classification_report
from ..files import atomic_write_json
from ..models.heads import IGNORE_INDEX, EncoderWithHead, TokenClassificationHead, align_word_labels
from ..nn.prepacked_linear import prepack_linears
from ..tokenization import TextTokenizer
from ..training import Trainer
from ..training.precision import apply_threads
from .finetune import (
    FinetuneConfig,
    data_reference,
    evaluation_split,
    load_encoder,
    load_finetuned,
    optimizer_groups,
    prepare_mode,
    save_finetuned,
    unknown_piece_rate,
)


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
    split: str = "0.8,0.1,0.1"
    """train,validation,test fractions (seeded)."""
    max_train_examples: int | None = None
    """Train on a seeded random subset of this many sentences (null: all)."""
    max_eval_examples: int | None = None
    """Validate on a seeded subset of this many sentences (null: all)."""
    max_test_examples: int | None = None
    """Report test metrics on a seeded subset of this many sentences (null: all)."""
    best_metric: str = "eval_token_accuracy"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("max_train_examples", "max_eval_examples", "max_test_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be >= 1, or null for all")


def load_tagged_splits(cfg: TagConfig) -> Splits[TaggedSequences]:
    if cfg.data in CATALOG and not Path(cfg.data).exists():
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


def encode_words(tokenizer: TextTokenizer, sentences: Sequence[Sequence[str]], max_length: int):
    """Encodings of pre-split words (each word may become several pieces), truncated to max_length."""
    tok = tokenizer.tokenizer
    tok.enable_truncation(max_length=max_length)
    try:
        return tok.encode_batch([list(words) for words in sentences], is_pretokenized=True)
    finally:
        tok.no_truncation()


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


class TokenTagger:
    """A fine-tuned tagger directory, loaded: lists of words -> lists of tags."""

    def __init__(self, model: EncoderWithHead, tokenizer: TextTokenizer, meta: dict[str, Any]):
        prepack_linears(model)  # CPU fp32 inference on oneDNN-packed weights (nn/prepacked_linear.py)
        self.model, self.tokenizer, self.meta = model.eval(), tokenizer, meta
        self.tag_names: tuple[str, ...] = tuple(meta["label_names"])
        self.max_length = int(meta["max_length"])

    @classmethod
    def from_pretrained(cls, path: str | Path) -> TokenTagger:
        model, tokenizer, meta = load_finetuned(path)
        if meta.get("task") != "token-classification":
            raise InputDataError(f"{str(path)!r} is a {meta.get('task')} model, not a tagger")
        return cls(model, tokenizer, meta)

    @torch.no_grad()
    def predict_ids(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[int | None]]:
        """Tag ids per word (None for words beyond max_length)."""
        encodings = encode_words(self.tokenizer, sentences, self.max_length)
        out: list[list[int | None]] = []
        for start in range(0, len(encodings), batch_size):
            chunk = encodings[start:start + batch_size]
            batch = self.tokenizer.pad([enc.ids for enc in chunk])
            best = self.model(batch.input_ids, batch.attention_mask).argmax(-1)  # (B, T)
            for row, (enc, words) in enumerate(zip(chunk, sentences[start:start + batch_size], strict=True)):
                tags: list[int | None] = [None] * len(words)
                previous = None
                for position, word in enumerate(enc.word_ids):
                    if word is not None and word != previous:
                        tags[word] = int(best[row, position])
                    previous = word
                out.append(tags)
        return out

    def predict(self, sentences: Sequence[Sequence[str]], batch_size: int = 32) -> list[list[str | None]]:
        return [[None if t is None else self.tag_names[t] for t in tags]
                for tags in self.predict_ids(sentences, batch_size)]

    def evaluate(self, records: TaggedSequences) -> tuple[ClassificationReport, int]:
        """Per-word report (its accuracy is the token accuracy) over the scored words; and the truncated count."""
        index = {name: i for i, name in enumerate(self.tag_names)}
        unseen = sorted({records.tag_names[t] for tags in records.tags for t in tags} - set(index))
        if unseen:
            raise InputDataError(f"{records.source}: tags {unseen[:5]} never occur in the training data, so the model "
                                 f"cannot predict them; it knows {list(self.tag_names)}")
        y_true, y_pred, truncated = [], [], 0
        for gold, predicted in zip(records.tags, self.predict_ids(records.tokens), strict=True):
            for g, p in zip(gold, predicted, strict=True):
                if p is None:
                    truncated += 1
                    continue
                y_true.append(index[records.tag_names[g]])
                y_pred.append(p)
        return classification_report(y_true, y_pred, self.tag_names), truncated


def finetune_tagger(cfg: TagConfig) -> dict[str, Any]:
    """Train, save OUT_DIR/final/, reload it and report token accuracy on validation and test."""
    started = time.perf_counter()
    apply_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    splits = load_tagged_splits(cfg)
    train = seeded_subset(splits.train, cfg.max_train_examples, cfg.seed)
    validation = seeded_subset(splits.validation, cfg.max_eval_examples, cfg.seed)
    test = seeded_subset(splits.test, cfg.max_test_examples, cfg.seed)
    names = splits.train.tag_names

    encoder, tokenizer, source = load_encoder(cfg.init, cfg.random_like)
    max_length = min(cfg.max_length, encoder.cfg.max_positions)
    model = EncoderWithHead(encoder, TokenClassificationHead(encoder.cfg.d_model, len(names), cfg.head_dropout))
    counts = prepare_mode(model, cfg)
    meta = {"task": "token-classification", "label_names": list(names), "max_length": max_length,
            "head_dropout": cfg.head_dropout, "init": source, "mode": cfg.mode, "data": data_reference(cfg.data),
            "split": cfg.split, "seed": cfg.seed}
    eval_data = TaggedPieces(validation, tokenizer, max_length) if len(validation) else None
    train_pieces = TaggedPieces(train, tokenizer, max_length)
    counts["unknown_piece_rate"] = round(unknown_piece_rate(tokenizer, train_pieces.ids, cfg.init, cfg.data), 4)
    trainer = Trainer(cfg, model, train_pieces, loss_fn=loss_fn,
                      collate_fn=make_collate(tokenizer), eval_data=eval_data, eval_fn=eval_fn,
                      save_final=lambda m, d: save_finetuned(m, tokenizer, d, meta),
                      param_groups=optimizer_groups(cfg))
    train_started = time.perf_counter()
    result = trainer.fit()
    train_seconds = time.perf_counter() - train_started

    tagger = TokenTagger.from_pretrained(result.final_dir)
    metrics: dict[str, Any] = dict(result.metrics)
    for split_name, records in (("validation", validation), ("test", test)):
        if len(records):
            report, truncated = tagger.evaluate(records)
            atomic_write_json(out_dir / f"eval_{split_name}.json", {"model": str(result.final_dir), "split": split_name,
                                                                    "words_truncated": truncated, **report.to_dict()})
            metrics[f"{split_name}_token_accuracy"] = report.accuracy
            metrics[f"{split_name}_macro_f1"] = report.macro_f1
            metrics[f"{split_name}_words_truncated"] = truncated
    metrics.update(counts)
    metrics.update({"train_sentences": len(train), "test_sentences": len(test), "tag_names": list(names),
                    "init": source, "mode": cfg.mode, "train_seconds": round(train_seconds, 1),
                    "seconds": round(time.perf_counter() - started, 1), "final_dir": str(result.final_dir)})
    return metrics


def evaluate_tagger(model: str | Path, data: str, split: str = "auto", output_dir: str | Path | None = None,
                    max_examples: int | None = None) -> tuple[ClassificationReport, Path]:
    tagger = TokenTagger.from_pretrained(model)
    meta = tagger.meta
    split = evaluation_split(split, data, meta)
    cfg = TagConfig(data=data, split=meta.get("split", "0.8,0.1,0.1") if split != "all" else "1,0,0",
                    seed=int(meta.get("seed", 0)), out_dir="unused")
    splits = load_tagged_splits(cfg)
    records = seeded_subset(splits.train if split == "all" else getattr(splits, split), max_examples, cfg.seed)
    if not len(records):
        raise InputDataError(f"data {data!r} has no {split} sentences (split={cfg.split}); evaluate on another file "
                             "(or on --split validation if that has sentences)")
    report, truncated = tagger.evaluate(records)
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
    tagger = TokenTagger.from_pretrained(model)
    tags = tagger.predict(sentences, batch_size)
    lines = [json.dumps({"tokens": s, "tags": t}, ensure_ascii=False) for s, t in zip(sentences, tags, strict=True)]
    atomic_write_text(output_path, "\n".join(lines) + "\n")
    return len(lines)
