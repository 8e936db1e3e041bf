"""Recommender metrics against values computed by hand, seen items excluded, and the baselines' algebra."""

import math

import numpy as np
import pytest

from encoderlab.data.interactions import SparseRows
from encoderlab.evaluation.recommendation import (
    evaluate_top_n,
    mae,
    ndcg_at_k,
    paired_difference,
    rank_users,
    recall_at_k,
    rmse,
    student_t_two_sided,
    top_k,
)
from encoderlab.evaluation.recommender_baselines import EASE, BiasedMF, ContentKNN, ItemKNN, Popularity


def rows(lists, n_cols):
    r = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    c = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if lists else np.zeros(0, np.int64)
    return SparseRows.from_coo(r, c, np.ones(len(c)), len(lists), n_cols)


def test_rmse_and_mae_by_hand():
    assert rmse([3, 4, 5], [2, 4, 7]) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae([3, 4, 5], [2, 4, 7]) == pytest.approx(1.0)


def test_top_k_excludes_seen_items_and_orders_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.5, 0.7]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 4, 2]])
    seen = rows([[1, 4]], 5)
    np.testing.assert_array_equal(top_k(scores, 3, exclude=seen), [[2, 3, 0]])
    np.testing.assert_array_equal(top_k(scores, 3, exclude=seen, candidates=np.array([0, 1, 3])), [[3, 0, -1]])


def test_recall_and_ndcg_by_hand():
    # user 0: targets {2, 7}; ranking 2, 5, 7 -> hits at ranks 0 and 2
    # user 1: targets {1, 3, 4}; ranking 9, 8, 3 -> a hit at rank 2
    top = np.array([[2, 5, 7], [9, 8, 3]])
    target = rows([[2, 7], [1, 3, 4]], 10)
    np.testing.assert_allclose(recall_at_k(top, target, 3), [2 / 2, 1 / 3])
    np.testing.assert_allclose(recall_at_k(top, target, 2), [1 / 2, 0 / 2])  # denominator min(k, |targets|)
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3)
    dcg1 = 1 / math.log2(4)
    idcg1 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    np.testing.assert_allclose(ndcg_at_k(top, target, 3), [dcg0 / idcg0, dcg1 / idcg1])


def test_evaluate_top_n_excludes_inputs_and_skips_users_without_targets():
    # 3 users over 6 items; the model prefers low item indices. User 0 has seen items 0 and 1, so its top-2 is
    # [2, 3]; user 1 saw nothing, top-2 [0, 1]; user 2 has no target and is not counted.
    inputs = rows([[0, 1], [], [5]], 6)
    targets = rows([[3], [4], []], 6)
    scores = np.tile(-np.arange(6, dtype=float), (3, 1))
    out = evaluate_top_n(lambda r: scores[r], inputs, targets, metrics=("recall@2", "ndcg@2", "coverage@2"))
    assert out["users"] == 2
    assert out["recall@2"] == pytest.approx((1.0 + 0.0) / 2)  # user 0 finds item 3 at rank 1
    assert out["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)
    assert out["coverage@2"] == pytest.approx(4 / 6)  # items 0, 1, 2, 3 were recommended to someone
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_top_n(lambda r: scores[r], inputs, targets, metrics=("map@10",))


def test_rank_users_keeps_each_users_values_in_order():
    inputs = rows([[0, 1], [], [5], []], 6)
    targets = rows([[3], [4], [], [0, 2]], 6)
    scores = np.tile(-np.arange(6, dtype=float), (4, 1))  # low item indices first
    result = rank_users(lambda r: scores[r], inputs, targets, metrics=("recall@2", "ndcg@2", "coverage@2"))
    np.testing.assert_array_equal(result.rows, [0, 1, 3])  # user 2 has no target
    # user 0 ranks [2, 3]: a hit at rank 1; user 1 ranks [0, 1]: none; user 3 ranks [0, 1]: a hit at rank 0
    np.testing.assert_allclose(result.per_user["recall@2"], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(result.per_user["ndcg@2"], [1 / math.log2(3), 0.0, 1 / (1 + 1 / math.log2(3))])
    assert result.coverage["coverage@2"] == pytest.approx(4 / 6)
    assert result.means()["ndcg@2"] == pytest.approx(result.per_user["ndcg@2"].mean())


def test_student_t_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for t, df in [(0.1, 5), (2.0, 3), (-1.5, 100), (3.5, 900), (0.0, 10), (10.0, 2), (40.0, 50)]:
        assert student_t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9, abs=1e-300)


def test_paired_difference_is_a_paired_t_test_with_a_bootstrap_interval():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    b = rng.random(300)
    a = b + 0.02 + 0.1 * rng.normal(size=300)
    out = paired_difference(a, b, seed=1)
    reference = stats.ttest_rel(a, b)
    assert out.mean == pytest.approx(np.mean(a - b)) and out.n == 300
    assert out.t == pytest.approx(reference.statistic) and out.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert out.ci_low < out.mean < out.ci_high
    # the percentile interval of a mean is about mean +- 1.96 standard errors
    assert out.ci_high - out.ci_low == pytest.approx(2 * 1.96 * out.std_error, rel=0.1)
    assert out.wins + out.losses == 300 and out.wins == int(np.sum(a > b))
    assert paired_difference(a, b, seed=1) == out  # seeded
    swapped = paired_difference(b, a, seed=1)
    assert swapped.mean == pytest.approx(-out.mean) and swapped.p_value == pytest.approx(out.p_value)
    same = paired_difference(b, b)
    assert (same.mean, same.p_value, same.ci_low, same.ci_high) == (0.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        paired_difference(a, b[:-1])
    with pytest.raises(ValueError, match="NaN"):
        paired_difference([np.nan, 1.0], [0.0, 1.0])


def test_a_perfect_ranking_scores_one():
    inputs, targets = rows([[0], [1]], 5), rows([[2, 3], [4]], 5)
    truth = targets.to_dense()
    out = evaluate_top_n(lambda r: truth[r], inputs, targets, metrics=("recall@20", "ndcg@10", "ndcg@100"))
    assert out["recall@20"] == out["ndcg@10"] == out["ndcg@100"] == pytest.approx(1.0)


def test_ease_matches_its_closed_form_and_knn_its_neighbours():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 8)) < 0.4).astype(np.float64)
    train = SparseRows.from_coo(*np.nonzero(x), np.ones(int(x.sum())), 30, 8)
    lam = 3.0
    b = EASE(train, lam).b
    assert np.allclose(np.diag(b), 0)
    # Steck (2019), eq. 8: B minimises ||X - XB||^2 + lam ||B||^2 with diag(B) = 0; each column j is the ridge
    # regression of X_j on the other columns.
    for j in range(8):
        others = [c for c in range(8) if c != j]
        a = x[:, others]
        ridge = np.linalg.solve(a.T @ a + lam * np.eye(7), a.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], ridge, atol=1e-9)
    gram = x.T @ x  # the grid search shares one co-occurrence matrix
    np.testing.assert_array_equal(EASE.from_gram(gram, lam).b, b)
    np.testing.assert_array_equal(ItemKNN.from_gram(gram, k=2).sim, ItemKNN(train, k=2).sim)
    knn = ItemKNN(train, k=2).sim
    norms = np.linalg.norm(x, axis=0)
    cosine = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(cosine, 0)
    for j in range(8):
        kept = np.flatnonzero(knn[:, j])
        assert len(kept) <= 2 and np.allclose(knn[kept, j], cosine[kept, j])
        assert cosine[kept, j].min() >= np.sort(cosine[:, j])[-2] - 1e-12


def test_popularity_and_content_baselines():
    train = rows([[0, 1], [1], [1, 2]], 4)
    pop = Popularity(train).scores(rows([[]], 4))[0]
    assert pop[1] > pop[0] > pop[3] and pop[1] > pop[2] > pop[3]  # counts 2 > 1 = 1 > 0; ties at random
    bags = rows([[0], [0, 1], [2], [2]], 3)  # items 2 and 3 share their only feature
    content = ContentKNN(bags).scores(rows([[2]], 4))[0]
    assert content[3] == pytest.approx(content[2]) and content[3] > content[0]


def test_biased_mf_fits_a_low_rank_matrix():
    from encoderlab.data.interactions import Interactions

    rng = np.random.default_rng(1)
    users, items = np.meshgrid(np.arange(20), np.arange(15), indexing="ij")
    truth = 3 + 0.5 * rng.normal(size=(20, 1)) + 0.5 * rng.normal(size=(1, 15)) + rng.normal(size=(20, 2)) @ \
        rng.normal(size=(2, 15)) * 0.3
    keep = rng.random((20, 15)) < 0.7
    data = Interactions("toy", users[keep], items[keep], truth[keep].astype(np.float32), None,
                        [str(i) for i in range(20)], [str(i) for i in range(15)], explicit=True)
    mf = BiasedMF(data, n_factors=2, reg=0.001, iterations=30)
    held = ~keep
    assert rmse(mf.predict(users[held], items[held]), truth[held]) < 0.25 * truth[held].std()
