"""benchmarks/long_documents.py's tests: the exact McNemar and its pooled, per-text version over overlapping splits."""

import importlib.util
import itertools
from pathlib import Path

import pytest
from scipy.stats import binomtest

SPEC = importlib.util.spec_from_file_location(
    "long_documents", Path(__file__).resolve().parents[2] / "benchmarks" / "long_documents.py")
long_documents = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(long_documents)


def brute_force_p(differences):
    observed = abs(sum(differences))
    sums = [sum(s * d for s, d in zip(signs, differences, strict=True))
            for signs in itertools.product((-1, 1), repeat=len(differences))]
    return sum(abs(s) >= observed for s in sums) / len(sums)


@pytest.mark.parametrize("differences", [[1, 1, 1, -1, 1, 1], [2, -1, 3, 1, 0, -2, 1], [3, 3, -1], [0, 0], [1, -1]])
def test_sign_flip_is_exact(differences):
    assert long_documents.sign_flip_p(differences) == pytest.approx(brute_force_p(differences))


def test_sign_flip_of_single_disagreements_is_mcnemar():
    for ahead, behind in ((38, 20), (55, 37), (13, 8), (0, 5)):
        assert long_documents.sign_flip_p([1] * ahead + [-1] * behind) == pytest.approx(
            binomtest(ahead, ahead + behind).pvalue, rel=1e-9)


def _split(seed, texts, model, tfidf):
    return {"seed": seed, "texts": texts, "tfidf_right": tfidf, "runs": [{"name": "m", "right": model}]}


def test_pooling_counts_a_text_tested_twice_once():
    # disjoint test sets: the per-text test is McNemar of the added counts
    a = _split(0, ["t1", "t2", "t3"], [True, True, False], [False, True, True])
    b = _split(1, ["t4", "t5"], [True, True], [False, False])
    result = long_documents.pooled([a, b])
    assert (result["only_it"], result["only_tfidf"], result["distinct_texts"]) == (3, 1, 5)
    assert result["per_text_p"] == pytest.approx(result["added_counts_p"])
    # the same disagreement tested in two splits is one text with d = 2, not two independent wins
    c = _split(2, ["t1", "t4"], [True, True], [False, False])
    result = long_documents.pooled([a, b, c])
    assert result["only_it"] == 5 and result["distinct_texts"] == 5 and result["texts_ahead"] == 3
    assert result["per_text_p"] == pytest.approx(brute_force_p([2, 0, -1, 2, 1]))
    assert result["per_text_p"] > result["added_counts_p"]  # counting t1 and t4 twice overstated the evidence
