"""`train_seq2seq(cfg)`: train a sequence-to-sequence model on string pairs: an attention LSTM/GRU
(`model.kind=lstm|gru`, models/recurrent.py) or a Transformer encoder-decoder (`model.kind=transformer`,
models/transformer_seq2seq.py).

    encoderlab seq2seq --config configs/seq2seq-g2p.yaml                        # CMUdict word -> phonemes
    encoderlab seq2seq --config configs/seq2seq-es-en-transformer.yaml          # Spanish -> English verses
    encoderlab seq2seq data=pairs.csv source_column=word target_column=ipa out_dir=runs/mine

One run: read the pairs (`data.pairs`: the bundled CMUdict or a user's .csv / .tsv / .jsonl), split them
by source (seeded; all targets of a source stay in one split), build the source and target vocabularies
from the training split, train `models.recurrent.Seq2Seq` with the shared Trainer (teacher forcing,
cross-entropy over real target tokens), validate every `eval_every` steps with greedy decoding, and at the
end score the test split with greedy decoding and beam search, next to the untrained model and a
one-token-to-one-token baseline. `final/` holds the weights, the config and the vocabularies, so
`Seq2SeqPredictor.from_dir(OUT_DIR).predict(["hello"])` (or `predict_seq2seq`) turns new strings into outputs.

Metrics (validation as eval_*, test as test_*), over distinct sources:
- exact_match: the output equals one of the source's targets (CMUdict lists several pronunciations for
  ~8% of words; any of them is correct, the usual G2P protocol).
- token_error_rate: Levenshtein distance to the closest target / that target's length, summed over the
  split (phoneme error rate, PER, for G2P; character error rate for char targets).
- token_accuracy: teacher-forced next-token accuracy against the first target (what training optimises).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import Dataset

from ..artifacts.seq2seq import VOCAB_FILE, Seq2SeqPredictor, pad
from ..config import load_config, read_yaml, save_config
from ..data.bible import BIBLE_ES_EN
from ..data.pairs import CMUDICT, Pairs, SubwordVocabulary, Tokenization, Vocabulary, load_pairs, split_by_source
from ..data.records import parse_fractions
from ..errors import ConfigError, InputDataError
from ..evaluation.sequences import SequenceScores, bleu_chrf
from ..files import atomic_write_json
from ..models.recurrent import BOS, EOS, PAD, RecurrentConfig, Seq2Seq, sequence_loss
from ..models.transformer_seq2seq import (
    TransformerSeq2Seq,
    TransformerSeq2SeqConfig,
    config_for_pretrained,
    copy_encoder_into_decoder,
    warm_start_encoder,
)
from ..training import TrainConfig, Trainer, run_task
from ..training.checkpoint import average_checkpoints, list_checkpoints
from ..training.distributed import unwrap
from ..training.encoder_setup import load_encoder
from ..training.precision import apply_threads
from ..weights import save_weights
from .seq2seq_scoring import copy_source_baseline, one_to_one_baseline, score_model, wants_bleu


@dataclass
class Seq2SeqConfig(TrainConfig):
    out_dir: str = "runs/seq2seq"
    """Where the run is written (default: a directory of its own per command)."""
    data: str = CMUDICT
    """cmudict (word -> ARPAbet phonemes, bundled), bible-es-en (Spanish -> English verses, fetched on first
    use, data/bible.py) or a .csv / .tsv / .jsonl file of pairs."""
    source_column: str = "source"
    """User files: the column (.csv / .tsv header) or field (.jsonl) holding the source string."""
    target_column: str = "target"
    """User files: the column or field holding the target string."""
    group_column: str | None = None
    """User files: an optional column whose value keeps pairs together in one split (e.g. a chapter);
    bible-es-en is always split by chapter."""
    source_tokens: Tokenization = "char"
    """char: one token per character; space: whitespace-separated tokens; subword: BPE pieces learned from
    the training split (joint with the target when target_tokens=subword too)."""
    target_tokens: Literal["auto", "char", "space", "subword"] = "auto"
    """auto: space for cmudict (phonemes), subword for bible-es-en, char for user files."""
    subword_vocab_size: int = 8000
    """Size of the (joint) BPE vocabulary, specials included, when a side uses subword tokens."""
    lowercase: bool | None = None
    """Lowercase sources, in training and prediction; null: true for cmudict (its words are lowercase),
    false for user files."""
    stress: bool = False
    """cmudict: keep the vowel stress digits (AH0/AH1/AH2: 69 phoneme symbols instead of 39)."""
    split: str = "0.9,0.05,0.05"
    """train, validation, test fractions of the distinct sources."""
    max_train_examples: int | None = None
    """Use a seeded subset of this many training pairs; null = all."""
    max_eval_examples: int | None = 2000
    """Validation sources scored at every evaluation during training (greedy decoding); null = all."""
    max_test_examples: int | None = None
    """Test sources scored at the end; null = all."""
    model: RecurrentConfig | TransformerSeq2SeqConfig = field(default_factory=RecurrentConfig)
    """The architecture, chosen by model.kind (lstm / gru: RecurrentConfig; transformer:
    TransformerSeq2SeqConfig); vocabulary sizes are filled in from the data."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing (0 = plain cross-entropy)."""
    beam_size: int = 5
    """Test-time beam search width, reported next to greedy decoding (1 = greedy only)."""
    length_penalty: float = 0.0
    """Beam search ranks finished outputs by log P / ((5 + length) / 6) ** length_penalty (GNMT); 0 = raw
    log-probability."""
    max_output_length: int = 0
    """Longest output generated, in tokens; 0 = the longest training target + 10."""
    baselines: bool = True
    """Also score the untrained model, the one-to-one token baseline and copying the source on the test split."""
    init: str | None = None
    """model.kind=transformer: warm-start the encoder from a pretrained BERT (Rothe et al. 2020): an
    `encoderlab pretrain` run (its out_dir or final/). Its tokenizer becomes the source vocabulary (and the
    target's too with target_tokens=subword: one joint vocabulary), and the encoder takes its shape
    (d_model, n_heads, d_ff, n_encoder_layers, norm_position, activation, positions); model.max_positions
    may exceed the checkpoint's (the extra rows start fresh). Its tokenizer must have [PAD] [UNK] [CLS] [SEP]
    as ids 0-3, so minilm's does not fit (and its vocabulary is English-only). null: random initialisation."""
    bucket_by: Literal["source", "target"] = "source"
    """What training batches are length-bucketed by: source (length of the source) or target (the target's
    length first, the source's second). Both encoders skip source padding but both decoders run over the
    padded target, so `target` wastes less (CMUdict: 3% of decoder positions padding instead of 24%); it
    also changes which pairs share a batch, and on Spanish->English one warm-started run learned more slowly
    with it (docs/seq2seq.md), so the default stays source."""
    average_last: int = 0
    """Average the weights of the last N checkpoints into the final model (Vaswani et al. 2017, section 6.1),
    which is then what is validated, tested and saved; needs save_every > 0 (their spacing) and keep_last >= N.
    0 or 1: the last model as it is."""
    decoder_init: Literal["fresh", "encoder"] = "fresh"
    """With init=: fresh (BERT2RND) or encoder (BERT2BERT: decoder block i's self-attention and feed-forward
    network copied from encoder block i, cross-attention fresh; decoder embeddings from the encoder's)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        is_cmudict = self.data == CMUDICT
        if self.target_tokens == "auto":
            self.target_tokens = "space" if is_cmudict else "subword" if self.data == BIBLE_ES_EN else "char"
        if self.lowercase is None:
            self.lowercase = is_cmudict
        parse_fractions(self.split)
        for name in ("max_train_examples", "max_eval_examples", "max_test_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be at least 1, or null for all")
        if self.beam_size < 1:
            raise ConfigError(f"beam_size={self.beam_size} must be at least 1 (1 = greedy decoding only)")
        if self.max_output_length < 0:
            raise ConfigError(f"max_output_length={self.max_output_length} must be >= 1, or 0 for automatic")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.stress and not is_cmudict:
            raise ConfigError("stress=true applies to data=cmudict only; remove it")
        if self.subword_vocab_size < 64:
            raise ConfigError(f"subword_vocab_size={self.subword_vocab_size} is too small; use e.g. 8000")
        if self.length_penalty < 0:
            raise ConfigError(f"length_penalty={self.length_penalty} must be >= 0 (0 = none, 0.6-1.0 usual)")
        if self.init is not None and not isinstance(self.model, TransformerSeq2SeqConfig):
            raise ConfigError(f"init={self.init} warm-starts a Transformer's encoder; set model.kind=transformer "
                              "or remove init=")
        if self.init is not None and self.source_tokens != "subword":
            raise ConfigError(f"init={self.init} reads sources with the checkpoint's own tokenizer; set "
                              "source_tokens=subword")
        if self.decoder_init == "encoder" and self.init is None:
            raise ConfigError("decoder_init=encoder copies a pretrained encoder into the decoder; give init=RUN_DIR "
                              "(an `encoderlab pretrain` run), or decoder_init=fresh")
        if self.average_last < 0:
            raise ConfigError(f"average_last={self.average_last} must be >= 0 (0 = no checkpoint averaging)")
        if self.average_last > 1 and (self.save_every < 1 or self.keep_last < self.average_last):
            spacing = max(1, (self.max_steps or 1000) // 10)
            raise ConfigError(f"average_last={self.average_last} averages the last {self.average_last} checkpoints: "
                              f"set save_every=N (their spacing in steps, e.g. {spacing}) and "
                              f"keep_last={self.average_last} or more (now save_every={self.save_every}, "
                              f"keep_last={self.keep_last})")
        if getattr(self.model, "share_embeddings", False) and not self.joint_vocabulary:
            raise ConfigError("model.share_embeddings=true needs one joint vocabulary: set source_tokens=subword "
                              "target_tokens=subword, or model.share_embeddings=false")

    @property
    def joint_vocabulary(self) -> bool:
        """Both sides subword: one BPE vocabulary learned from sources and targets together."""
        return self.source_tokens == self.target_tokens == "subword"


# ----------------------------------------------------------------------------------------------- data
@dataclass
class Seq2SeqData:
    train: Pairs
    validation: Pairs
    test: Pairs
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    max_output_length: int


def prepare_data(cfg: Seq2SeqConfig, pretrained_tokenizer: Any = None) -> Seq2SeqData:
    """Read, lowercase, split by source, subsample, and build the vocabularies from the training split (the
    source's is a warm start's `pretrained_tokenizer`, a `tokenizers.Tokenizer`, when given)."""
    pairs = load_pairs(cfg.data, cfg.source_column, cfg.target_column, stress=cfg.stress,
                       group_column=cfg.group_column)
    if cfg.lowercase:
        pairs = Pairs([s.lower() for s in pairs.sources], pairs.targets, pairs.name, pairs.groups)
    train, val, test = split_by_source(pairs, parse_fractions(cfg.split), cfg.seed)
    if len(train) == 0 or len(val) == 0 or len(test) == 0:
        raise InputDataError(f"{pairs.name}: {len(set(pairs.sources))} distinct sources give an empty split with "
                             f"split={cfg.split}; add pairs or change split=")
    if cfg.max_train_examples is not None and cfg.max_train_examples < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.max_train_examples]
        train = train.subset(sorted(keep.tolist()))
    if pretrained_tokenizer is not None:
        source_vocab = SubwordVocabulary.from_pretrained(pretrained_tokenizer, f"init={cfg.init}")
        target_vocab = source_vocab if cfg.joint_vocabulary else (
            SubwordVocabulary.build(train.targets, cfg.subword_vocab_size) if cfg.target_tokens == "subword"
            else Vocabulary.build(train.targets, cfg.target_tokens))
    elif cfg.joint_vocabulary:
        source_vocab = target_vocab = SubwordVocabulary.build(train.sources + train.targets, cfg.subword_vocab_size)
    else:
        source_vocab, target_vocab = (
            SubwordVocabulary.build(texts, cfg.subword_vocab_size) if mode == "subword"
            else Vocabulary.build(texts, mode)
            for texts, mode in ((train.sources, cfg.source_tokens), (train.targets, cfg.target_tokens)))
    longest = max(len(target_vocab.encode(t)) for t in train.targets)  # in model tokens (pieces for subword)
    return Seq2SeqData(train, val, test, source_vocab, target_vocab, cfg.max_output_length or longest + 10)


def write_training_text(config: str | Path | None, path: str | Path, overrides: Sequence[str] = ()) -> int:
    """Write the sources and targets of a seq2seq config's *training split* to `path`, one per line: the
    corpus to pretrain a warm-start encoder on (`encoderlab pretrain data=PATH`) without ever reading a
    validation or test pair. Returns the number of lines."""
    cfg = load_config(Seq2SeqConfig, config, overrides)
    data = prepare_data(cfg)
    lines = [" ".join(text.split()) for text in data.train.sources + data.train.targets]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def sample_sources(pairs: Pairs, limit: int | None, seed: int) -> Pairs:
    """The pairs of a seeded random `limit` of the distinct sources, in their original order (all for None).
    Random, not the first ones: the file order is often alphabetical, and 'the first 2,000 words' would
    all start with a, b or c."""
    distinct = list(dict.fromkeys(pairs.sources))
    if limit is None or limit >= len(distinct):
        return pairs
    chosen = torch.randperm(len(distinct), generator=torch.Generator().manual_seed(seed))[:limit]
    keep = {distinct[i] for i in chosen.tolist()}
    return pairs.subset(i for i, s in enumerate(pairs.sources) if s in keep)


class PairDataset(Dataset):
    """Training items: one per pair, {"source": ids, "target": ids}."""

    def __init__(self, pairs: Pairs, source_vocab: Vocabulary, target_vocab: Vocabulary) -> None:
        self.items = [{"source": source_vocab.encode(s), "target": target_vocab.encode(t)}
                      for s, t in zip(pairs.sources, pairs.targets, strict=True)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]

    def bucket_keys(self, by: Literal["source", "target"] = "source") -> list[int]:
        """What training batches are length-bucketed by (`Seq2SeqConfig.bucket_by`): the source length, or
        the target length first and the source length second. Both encoders skip source padding (the
        Transformer's runs packed, the RNN's packed sequences) but both decoders run over the padded (B, T)
        target: on CMUdict, bucketing by source left 24% of the decoder's positions padding, by target 3%."""
        if by == "source":
            return [len(item["source"]) for item in self.items]
        longest_source = max((len(item["source"]) for item in self.items), default=0)
        return [len(item["target"]) * (longest_source + 1) + len(item["source"]) for item in self.items]


class ReferenceDataset(Dataset):
    """Evaluation items: one per distinct source, with every target as a reference; the first target is the
    teacher-forcing target (loss and token accuracy)."""

    def __init__(self, pairs: Pairs, source_vocab: Vocabulary, target_vocab: Vocabulary) -> None:
        self.items = [{"source": source_vocab.encode(s), "target": target_vocab.encode(refs[0]),
                       "references": [target_vocab.pieces(r) for r in refs]}
                      for s, refs in pairs.references().items()]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """source (B, S); target_in = BOS + target and target_out = target + EOS, (B, T)."""
    batch = {"source": pad([it["source"] for it in items]),
             "target_in": pad([[BOS, *it["target"]] for it in items]),
             "target_out": pad([[*it["target"], EOS] for it in items])}
    if "references" in items[0]:
        batch["references"] = [it["references"] for it in items]
    return batch


# ----------------------------------------------------------------------------------------------- metrics
def make_loss_fn(cfg: Seq2SeqConfig):
    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(batch["source"], batch["target_in"])  # through forward: DDP-safe
        return sequence_loss(logits, batch["target_out"], cfg.label_smoothing), (batch["target_out"] != PAD).sum()
    return loss_fn


def teacher_forced(model: Seq2Seq, source: torch.Tensor, target_in: torch.Tensor,
                   target_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One collated batch, teacher-forced: (mean loss per real target token, correctly predicted next tokens,
    real target tokens)."""
    logits = model(source, target_in)
    real = target_out != PAD
    return sequence_loss(logits, target_out), ((logits.argmax(-1) == target_out) & real).sum(), int(real.sum())


def make_eval_fn(target_vocab: Vocabulary, max_output_length: int):
    """Validation metrics of one batch: teacher-forced loss and token accuracy, greedy exact match and
    token error rate, each with the count it averages over (tokens, sources, reference tokens)."""

    def eval_fn(model: nn.Module, batch: dict[str, Any]) -> dict[str, tuple[torch.Tensor | float, int]]:
        model = unwrap(model)
        loss, correct, n_tokens = teacher_forced(model, batch["source"], batch["target_in"], batch["target_out"])
        scores = SequenceScores()
        for ids, refs in zip(model.greedy(batch["source"], max_output_length), batch["references"], strict=True):
            scores.add(target_vocab.decode_tokens(ids), refs)
        return {"loss": (loss, n_tokens),
                "token_accuracy": (correct.float() / n_tokens, n_tokens),
                "exact_match": (scores.exact_match, scores.sources),
                "token_error_rate": (scores.token_error_rate, scores.reference_tokens)}

    return eval_fn


@torch.no_grad()
def teacher_forced_metrics(model: Seq2Seq, pairs: Pairs, data: Seq2SeqData, batch_size: int = 256) -> dict[str, float]:
    """Loss and next-token accuracy against the first target of each source."""
    model.eval()
    dataset = ReferenceDataset(pairs, data.source_vocab, data.target_vocab)
    device = next(model.parameters()).device
    loss_sum, correct, tokens = 0.0, 0, 0
    for lo in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))])
        loss, n_correct, n = teacher_forced(model, batch["source"].to(device), batch["target_in"].to(device),
                                            batch["target_out"].to(device))
        loss_sum += float(loss) * n
        correct += int(n_correct)
        tokens += n
    return {"loss": loss_sum / tokens, "token_accuracy": correct / tokens}


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


# ----------------------------------------------------------------------------------------------- the task
def with_vocab_sizes(model_cfg: RecurrentConfig | TransformerSeq2SeqConfig,
                     data: Seq2SeqData) -> RecurrentConfig | TransformerSeq2SeqConfig:
    """The model config with the vocabulary sizes of the data (a set, different size is an error)."""
    sizes = {"source_vocab_size": len(data.source_vocab), "target_vocab_size": len(data.target_vocab)}
    for name, size in sizes.items():
        if getattr(model_cfg, name) not in (0, size):
            raise ConfigError(f"model.{name}={getattr(model_cfg, name)} but the training data has {size} tokens; "
                              f"remove model.{name} (it is taken from the data)")
    return dataclasses.replace(model_cfg, **sizes)


def vocab_info(cfg: Seq2SeqConfig, data: Seq2SeqData) -> dict[str, Any]:
    return {"source": data.source_vocab.to_dict(), "target": data.target_vocab.to_dict(),
            "lowercase": cfg.lowercase, "max_output_length": data.max_output_length}


def check_lengths(cfg: Seq2SeqConfig, data: Seq2SeqData) -> None:
    """A Transformer has max_positions rows of positions: the longest source and output must fit."""
    if not isinstance(cfg.model, TransformerSeq2SeqConfig):
        return
    longest_source = max(len(data.source_vocab.encode(s)) for s in data.train.sources)
    needed = max(longest_source, data.max_output_length + 1)  # + 1: BOS
    if needed > cfg.model.max_positions:
        raise ConfigError(f"the longest training source has {longest_source} tokens and outputs may have "
                          f"{data.max_output_length} (+ BOS), but model.max_positions={cfg.model.max_positions}; "
                          f"set model.max_positions={needed} or more (or a smaller max_output_length=)")


def build_model(model_cfg: RecurrentConfig | TransformerSeq2SeqConfig) -> Seq2Seq | TransformerSeq2Seq:
    """The network model.kind names: the recurrent Seq2Seq (lstm / gru) or the Transformer."""
    return TransformerSeq2Seq(model_cfg) if isinstance(model_cfg, TransformerSeq2SeqConfig) else Seq2Seq(model_cfg)


def train_seq2seq(cfg: Seq2SeqConfig) -> dict[str, Any]:
    started = time.process_time()  # CPU seconds (all threads of this process): the equal-budget currency
    apply_threads(cfg.threads)
    pretrained = load_encoder(cfg.init)[:2] if cfg.init is not None else None  # (BertModel, TextTokenizer)
    data = prepare_data(cfg, None if pretrained is None else pretrained[1].tokenizer)
    if pretrained is not None:
        cfg = dataclasses.replace(cfg, model=config_for_pretrained(cfg.model, pretrained[0].cfg, f"init={cfg.init}"))
    cfg = dataclasses.replace(cfg, model=with_vocab_sizes(cfg.model, data))
    check_lengths(cfg, data)
    model = build_model(cfg.model)
    warm: dict[str, Any] = {}
    if pretrained is not None:  # before the baselines: "untrained" is then the warm-started, not yet trained model
        copied = warm_start_encoder(model, pretrained[0])
        warm = {"warm_start": cfg.init, "warm_start_tensors": copied["tensors"],
                "warm_start_decoder_blocks": copy_encoder_into_decoder(model) if cfg.decoder_init == "encoder" else 0}
    test = sample_sources(data.test, cfg.max_test_examples, cfg.seed)
    metrics: dict[str, Any] = dict(warm)
    if cfg.baselines:  # before training: the same initial weights on every (resumed) run, no RNG drawn
        metrics |= _prefixed("untrained_test", score_model(model, test, data))
        metrics |= _prefixed("one_to_one_test", one_to_one_baseline(data.train, test, data) or {})
        metrics |= _prefixed("copy_source_test", copy_source_baseline(test, data))

    def save_final(trained: nn.Module, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_weights(directory / "model.safetensors", trained.state_dict())
        save_config(cfg, directory / "config.yaml")
        atomic_write_json(directory / VOCAB_FILE, vocab_info(cfg, data))

    train_set = PairDataset(data.train, data.source_vocab, data.target_vocab)
    val_set = ReferenceDataset(sample_sources(data.validation, cfg.max_eval_examples, cfg.seed), data.source_vocab,
                               data.target_vocab)
    trainer = Trainer(cfg, model, train_set, loss_fn=make_loss_fn(cfg), collate_fn=collate, eval_data=val_set,
                      eval_fn=make_eval_fn(data.target_vocab, data.max_output_length), save_final=save_final,
                      lengths=train_set.bucket_keys(cfg.bucket_by))
    fit_started = time.process_time()
    result = trainer.fit()
    metrics |= result.metrics | {"train_cpu_seconds": time.process_time() - fit_started}
    model = unwrap(trainer.model).eval()
    if cfg.average_last > 1:
        metrics |= average_final_checkpoints(trainer, model, cfg.average_last, result.final_dir, save_final)
    metrics |= _prefixed("test", teacher_forced_metrics(model, test, data))
    metrics |= _prefixed("test", score_model(model, test, data))
    if cfg.beam_size > 1:
        metrics |= _prefixed(f"test_beam{cfg.beam_size}", score_model(model, test, data, cfg.beam_size, 64,
                                                                     cfg.length_penalty))
    metrics |= {"train_pairs": len(data.train), "train_sources": len(set(data.train.sources)),
                "validation_sources": len(val_set), "test_sources": len(test.references()),
                "source_vocab_size": len(data.source_vocab), "target_vocab_size": len(data.target_vocab),
                "parameters": sum(p.numel() for p in model.parameters()),
                "cpu_seconds": time.process_time() - started}
    if wants_bleu(data):
        metrics["sacrebleu_signatures"] = {k: v for k, v in bleu_chrf(["a"], [["a"]]).items() if "signature" in k}
    return metrics


def average_final_checkpoints(trainer: Trainer, model: nn.Module, n: int, final_dir: Path | None,
                              save_final) -> dict[str, Any]:
    """Load the mean of the last `n` checkpoints into `model`, validate it (as averaged_eval_*) and save it
    to final/ in place of the last weights."""
    chosen = list_checkpoints(trainer.out_dir)[-n:]
    model.load_state_dict(average_checkpoints(chosen))
    metrics: dict[str, Any] = {"averaged_checkpoints": [path.name for path in chosen]}
    if trainer.eval_data is not None:
        metrics |= _prefixed("averaged", trainer.evaluate())
    if final_dir is not None:
        save_final(model, final_dir)
    return metrics


# ----------------------------------------------------------------------------------------------- CLI-facing
def seq2seq_command(config: str | Path | None, overrides: Sequence[str] = (),
                    resume: str | Path | None = None) -> dict[str, Any]:
    """`encoderlab seq2seq --config FILE [key=value ...] [--resume OUT_DIR]`."""
    saved = Path(resume) / "config.yaml" if resume is not None else None
    if saved is not None and saved.is_file():
        keys = read_yaml(saved)
        if isinstance(keys, dict) and "source_column" not in keys:  # every seq2seq config.yaml has it
            raise ConfigError(f"--resume {resume}: not a seq2seq run (its config.yaml has no source_column); "
                              "resume a run with the command that started it")
    return run_task(train_seq2seq, Seq2SeqConfig, config, list(overrides), resume_dir=resume)


def predict_seq2seq(run_dir: str | Path, inputs: Sequence[str], beam_size: int = 1,
                    length_penalty: float = 0.0) -> list[str]:
    """Outputs of the run's final model for `inputs` (one string each); beam search for beam_size > 1."""
    return Seq2SeqPredictor.from_dir(run_dir).predict(list(inputs), beam_size=beam_size,
                                                      length_penalty=length_penalty)


def read_inputs(path: str | Path, column: str | None = None) -> list[str]:
    """Sources to predict, for `--input`: a .txt file, one per line (blank lines skipped); or, with `column`
    (the run's source_column), that column / field of a .csv / .tsv / .jsonl pairs file. Without `column` a
    pairs file is refused: its header row or JSON lines would otherwise be converted as if they were sources."""
    from ..data.pairs import PAIR_SUFFIXES
    from ..data.text_input import read_text_file, read_texts

    suffix = Path(path).suffix.lower()
    if suffix in PAIR_SUFFIXES and Path(path).is_file():
        if column is None:
            raise InputDataError(f"input file {str(path)!r} is a {suffix} file; --input reads a .txt with one "
                                 "source per line (a header row or JSON lines would be converted as sources): "
                                 "write the sources alone, one per line, to a .txt")
        return [text for text in read_texts(path, text_field=column, text_option="source_column=")
                if text.strip()]
    lines = [line for line in read_text_file(Path(path)).splitlines() if line.strip()]
    if not lines:
        raise InputDataError(f"input file {str(path)!r} has no non-blank lines; put one source per line")
    return lines


def print_predictions(sources: Sequence[str], outputs: Sequence[str], file=None) -> None:
    """One `source<TAB>output` line per source (stdout by default): easy to paste, grep or `cut`."""
    for source, output in zip(sources, outputs, strict=True):
        print(f"{source}\t{output}", file=file or sys.stdout)
