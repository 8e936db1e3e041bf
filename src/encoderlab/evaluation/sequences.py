"""Scores of generated sequences against references, written once for every seq2seq model and baseline.

- exact_match: the output equals one of the source's references (CMUdict lists several pronunciations).
- token_error_rate: Levenshtein distance to the closest reference / that reference's length, summed over
  the set (phoneme error rate for G2P, character error rate for characters, word error rate for text).
- BLEU (Papineni et al. 2002) and chrF (Popović 2015) through `sacrebleu` (Post 2018, "A call for clarity
  in reporting BLEU scores"), on detokenised strings with sacrebleu's default settings, so the numbers are
  comparable with other tools' sacreBLEU numbers; the signature of the settings is returned with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputDataError

SACREBLEU_PIN = "sacrebleu==2.4.3"


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@dataclass
class SequenceScores:
    """Sums over a set of sources, so batches and ranks add up exactly."""

    sources: int = 0
    exact: int = 0
    edits: int = 0
    reference_tokens: int = 0

    def add(self, prediction: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        """Exact if it equals any reference; edits counted against the closest one (ties: the shorter)."""
        self.sources += 1
        self.exact += any(list(prediction) == list(r) for r in references)
        distance, length = min((edit_distance(prediction, r), len(r)) for r in references)
        self.edits += distance
        self.reference_tokens += length

    @property
    def exact_match(self) -> float:
        return self.exact / max(self.sources, 1)

    @property
    def token_error_rate(self) -> float:
        return self.edits / max(self.reference_tokens, 1)


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float | str]:
    """Corpus BLEU and chrF (0-100) of one hypothesis string per source against its reference strings
    (one or more each), with sacrebleu's signatures. A source with fewer references than the most has its
    first one repeated: a duplicate reference changes neither score."""
    try:
        import sacrebleu
    except ImportError:
        raise InputDataError(f"BLEU and chrF need the PyPI package {SACREBLEU_PIN}; install it with "
                             f"`pip install {SACREBLEU_PIN}`") from None
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} reference sets")
    n_streams = max(len(r) for r in references)
    streams = [[list(refs)[k] if k < len(refs) else refs[0] for refs in references] for k in range(n_streams)]
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), streams)
    chrf_score = chrf.corpus_score(list(hypotheses), streams)
    return {"bleu": bleu_score.score, "chrf": chrf_score.score,
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
