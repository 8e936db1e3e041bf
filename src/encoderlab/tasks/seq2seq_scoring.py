"""Scoring a seq2seq model's outputs, and the baselines it is compared with: exact match and token error rate
for every target, BLEU and chrF (sacrebleu) when the target is text; the copy-source and one-to-one baselines;
the end-of-run summary people read. Used by `train_seq2seq` (tasks/seq2seq.py) on its test split.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from ..artifacts.seq2seq import generate
from ..data.pairs import Pairs
from ..evaluation.sequences import SequenceScores, bleu_chrf

if TYPE_CHECKING:  # tasks/seq2seq.py imports this module
    from .seq2seq import Seq2SeqData


def score_outputs(outputs: Sequence[str], pairs: Pairs, data: Seq2SeqData, bleu: bool) -> dict[str, float]:
    """exact_match and token_error_rate (and BLEU / chrF) of one output string per distinct source of `pairs`."""
    references = list(pairs.references().values())
    scores = SequenceScores()
    for out, targets in zip(outputs, references, strict=True):
        scores.add(data.target_vocab.pieces(out), [data.target_vocab.pieces(t) for t in targets])
    metrics = {"exact_match": scores.exact_match, "token_error_rate": scores.token_error_rate}
    if bleu:
        metrics |= {k: v for k, v in bleu_chrf(outputs, references).items() if k in ("bleu", "chrf")}
    return metrics


def wants_bleu(data: Seq2SeqData) -> bool:
    """BLEU and chrF are text metrics: reported when the target is words (subword or whitespace tokens)."""
    return data.target_vocab.mode in ("subword", "space")


def score_model(model: nn.Module, pairs: Pairs, data: Seq2SeqData, beam_size: int = 1, batch_size: int = 256,
                length_penalty: float = 0.0) -> dict[str, float]:
    """Metrics of `model`'s outputs (greedy, or beam search) over the distinct sources of `pairs`."""
    refs = pairs.references()
    ids = generate(model, [data.source_vocab.encode(s) for s in refs], data.max_output_length, beam_size, batch_size,
                   length_penalty)
    return score_outputs([data.target_vocab.decode(out) for out in ids], pairs, data, wants_bleu(data))


def copy_source_baseline(test: Pairs, data: Seq2SeqData) -> dict[str, float]:
    """The output is the source itself: what a translation must beat (names and numbers already match)."""
    return score_outputs(list(test.references()), test, data, wants_bleu(data))


def one_to_one_baseline(train: Pairs, test: Pairs, data: Seq2SeqData) -> dict[str, float] | None:
    """A baseline anyone can follow: learn, from the training pairs whose source and target have the same
    number of tokens (where position i plausibly maps to position i), each source token's most frequent
    target token; then replace every test token by it (tokens never seen so aligned are dropped).
    None if no training pair has equal lengths."""
    counts: dict[str, Counter] = {}
    for s, t in zip(train.sources, train.targets, strict=True):
        src, tgt = data.source_vocab.pieces(s), data.target_vocab.pieces(t)
        if len(src) == len(tgt):
            for a, b in zip(src, tgt, strict=True):
                counts.setdefault(a, Counter())[b] += 1
    if not counts:
        return None
    best = {a: c.most_common(1)[0][0] for a, c in counts.items()}
    scores = SequenceScores()
    for source, targets in test.references().items():
        prediction = [best[a] for a in data.source_vocab.pieces(source) if a in best]
        scores.add(prediction, [data.target_vocab.pieces(t) for t in targets])
    return {"exact_match": scores.exact_match, "token_error_rate": scores.token_error_rate}


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """The end-of-run summary, one line per decoder and baseline on the test split, for people: BLEU and chrF
    when the target is text, word accuracy (= exact match: the whole output right) and the token error
    rate. metrics.json holds the same numbers under test_*, test_beamK_*, copy_source_test_*, ..."""
    n = metrics.get("test_sources")
    rows = [("test" + (f" ({n} sources)" if n else "") + ", greedy", "test")]
    rows += [(f"test, beam {k[len('test_beam'):-len('_exact_match')]}", k[:-len("_exact_match")])
             for k in metrics if k.startswith("test_beam") and k.endswith("_exact_match")]
    rows += [("copy-source baseline", "copy_source_test"), ("one-to-one baseline", "one_to_one_test"),
             ("untrained model", "untrained_test")]
    lines = []
    for label, prefix in rows:
        parts = [f"BLEU {metrics[f'{prefix}_bleu']:.1f}", f"chrF {metrics[f'{prefix}_chrf']:.1f}"] \
            if f"{prefix}_bleu" in metrics else []
        if f"{prefix}_exact_match" in metrics:
            parts += [f"word accuracy {100 * metrics[f'{prefix}_exact_match']:.1f}%",
                      f"token error rate {100 * metrics[f'{prefix}_token_error_rate']:.1f}%"]
        if parts:
            lines.append(f"{label}: " + "  ".join(parts))
    return lines
