"""Interactions: MovieLens-100K (the packaged files and a bundled slice), user files, sparse rows, splits."""

import json
from pathlib import Path

import numpy as np
import pytest

from encoderlab.data.interactions import (
    SparseRows,
    cold_start_items,
    leave_last_out,
    load_interactions,
    rating_split,
    read_interactions,
    strong_generalization,
)
from encoderlab.errors import InputDataError

SLICE = Path(__file__).parent / "ml100k-slice"


def load_slice():
    return read_interactions(SLICE / "ml-100k.inter", user_column="user_id", item_column="item_id",
                             rating_column="rating", timestamp_column="timestamp",
                             user_features=SLICE / "ml-100k.user", item_features=SLICE / "ml-100k.item",
                             item_text_column="movie_title", name="slice")


@pytest.fixture(scope="module")
def ml():
    return load_slice()


def test_slice_reads_typed_headers_ids_and_features(ml):
    assert (len(ml), ml.n_users) == (8126, 80) and ml.explicit
    assert ml.user_ids[:3] == ["1", "2", "3"] and ml.user_ids[-1] == "80"  # numeric order, not "1", "10", ...
    raw = [line.split("\t") for line in (SLICE / "ml-100k.inter").read_text().splitlines()[1:]]
    first = raw[0]
    u, i = ml.user_ids.index(first[0]), ml.item_ids.index(first[1])
    pos = np.flatnonzero((ml.user == u) & (ml.item == i))
    assert len(pos) == 1 and ml.rating[pos[0]] == float(first[2]) and ml.timestamp[pos[0]] == float(first[3])
    assert set(np.unique(ml.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    users, items = ml.user_features, ml.item_features
    assert users.tokens["age"][0] == ("24",) and users.tokens["occupation"][1] == ("other",)
    toy = ml.item_ids.index("1")
    assert items.text[toy] == "Toy Story" and items.tokens["class"][toy] == ("Animation", "Children's", "Comedy")
    assert items.tokens["release_year"][toy] == ("1995",)
    assert "class=Comedy" in items.entity_tokens(toy) and "movie_title~toy" in items.entity_tokens(toy)


def test_packaged_movielens_100k_is_whole():
    data = load_interactions("ml-100k")
    assert (len(data), data.n_users, data.n_items) == (100_000, 943, 1682)
    assert data.item_features.text[data.item_ids.index("1")] == "Toy Story"


def test_user_csv_and_jsonl_files(tmp_path):
    csv_file = tmp_path / "clicks.csv"
    csv_file.write_text("uid,sku,stars,t\nu1,a,5,10\nu1,b,3,11\nu2,a,4,12\nu1,a,2,13\n")
    data = read_interactions(csv_file, user_column="uid", item_column="sku", rating_column="stars",
                             timestamp_column="t")
    assert data.user_ids == ["u1", "u2"] and data.item_ids == ["a", "b"]
    assert len(data) == 3  # u1 rated a twice: the later rating (2 at t=13) is kept
    x = data.matrix()
    np.testing.assert_array_equal(x.to_dense(), [[2, 3], [4, 0]])
    jsonl = tmp_path / "clicks.jsonl"
    jsonl.write_text("\n".join(json.dumps({"user": u, "item": i}) for u, i in [("x", 1), ("y", 2), ("x", 2)]))
    implicit = read_interactions(jsonl, user_column="user", item_column="item")
    assert not implicit.explicit and implicit.rating.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(InputDataError, match="rating prediction needs ratings"):
        rating_split(implicit)


@pytest.mark.parametrize("content, kwargs, message", [
    ("u,i\n1,2\n", {"user_column": "user"}, r"no column 'user'.*user_column="),
    ("u,i,r\n1,2,five\n", {"user_column": "u", "item_column": "i", "rating_column": "r"}, "'five' is not a number"),
    ("u,i\n,2\n", {"user_column": "u", "item_column": "i"}, "row 1 has an empty user id"),
    ("u,i\n", {"user_column": "u", "item_column": "i"}, "no interactions"),
    ("u,i\n1,2,3\n", {"user_column": "u", "item_column": "i"}, "3 cells, the header has 2"),
])
def test_bad_files_get_clear_errors(tmp_path, content, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputDataError, match=message):
        read_interactions(path, **kwargs)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(InputDataError, match="neither a catalog dataset"):
        load_interactions(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(InputDataError, match="use .csv, .tsv, .jsonl or .parquet"):
        load_interactions(tmp_path / "x.xlsx")


def test_sparse_rows_match_dense():
    rng = np.random.default_rng(0)
    dense = (rng.random((7, 9)) < 0.3) * rng.integers(1, 6, (7, 9)).astype(np.float32)
    rows, cols = np.nonzero(dense)
    order = rng.permutation(len(rows))  # from_coo must not depend on the triplets' order
    x = SparseRows.from_coo(rows[order], cols[order], dense[rows, cols][order], 7, 9)
    np.testing.assert_array_equal(x.to_dense(), dense)
    np.testing.assert_array_equal(x.take([4, 0, 4]).to_dense(), dense[[4, 0, 4]])
    np.testing.assert_array_equal(x.transpose().to_dense(), dense.T)
    np.testing.assert_array_equal(x.col_counts(), (dense > 0).sum(0))
    bags = x.bags([2, 5])
    assert bags["offsets"].tolist() == [0, int((dense[2] > 0).sum())]


def test_rating_split_is_seeded_and_disjoint(ml):
    a, b = rating_split(ml, seed=3), rating_split(ml, seed=3)
    keys = [set(zip(p.user.tolist(), p.item.tolist(), strict=True)) for p in (a.train, a.val, a.test)]
    assert sum(len(k) for k in keys) == len(ml) and not (keys[0] & keys[1]) and not (keys[0] & keys[2])
    assert abs(len(a.train) - 0.8 * len(ml)) <= 1
    np.testing.assert_array_equal(a.test.item, b.test.item)
    assert not np.array_equal(rating_split(ml, seed=4).test.item, a.test.item)


def test_strong_generalization_holds_users_out(ml):
    split = strong_generalization(ml, heldout=0.1, seed=0)
    positives = ml.positives(3.5).matrix(binary=True)
    assert not set(split.val_users) & set(split.train_users) and not set(split.test_users) & set(split.train_users)
    seen = split.train.col_counts() > 0
    for row, user in enumerate(split.test_users):
        fold_in, target = split.test_input.row(row)[0], split.test_target.row(row)[0]
        assert len(target) >= 1 and not set(fold_in) & set(target)
        expected = positives.row(user)[0]
        assert sorted([*fold_in, *target]) == sorted(expected[seen[expected]].tolist())
        assert abs(len(fold_in) - 0.8 * (len(fold_in) + len(target))) <= 1


def test_user_folds_test_every_user_once_and_validate_on_the_other_folds(ml):
    folds = [strong_generalization(ml, heldout=0.1, seed=2, folds=4, fold=f) for f in range(4)]
    eligible = np.flatnonzero(ml.positives(3.5).matrix().row_lengths() >= 5)
    tested = np.concatenate([s.test_users for s in folds])
    assert sorted(tested.tolist()) == eligible.tolist()  # every user with 5+ positives is tested exactly once
    assert max(len(s.test_users) for s in folds) - min(len(s.test_users) for s in folds) <= 1
    for s in folds:
        parts = [set(s.train_users.tolist()), set(s.val_users.tolist()), set(s.test_users.tolist())]
        assert sum(map(len, parts)) == len(eligible) and not (parts[0] & parts[1] or parts[0] & parts[2]
                                                              or parts[1] & parts[2])
        assert len(parts[1]) == round(0.1 * len(eligible))
    again = strong_generalization(ml, heldout=0.1, seed=2, folds=4, fold=1)  # seeded: the same folds and fold-ins
    np.testing.assert_array_equal(again.test_input.indices, folds[1].test_input.indices)
    np.testing.assert_array_equal(again.val_users, folds[1].val_users)
    with pytest.raises(InputDataError, match="folds=4, fold=4"):
        strong_generalization(ml, folds=4, fold=4)
    for folds, heldout in ((2, 0.45), (len(eligible) + 1, 0.1)):
        with pytest.raises(InputDataError, match="too few"):
            strong_generalization(ml, heldout=heldout, folds=folds, fold=0)


def test_leave_last_out_takes_the_latest_items(ml):
    split = leave_last_out(ml)
    pos = ml.positives(3.5)
    for row in (0, 5, len(split.test_users) - 1):
        user = split.test_users[row]
        mine = np.flatnonzero(pos.user == user)
        by_time = pos.item[mine[np.lexsort((mine, pos.timestamp[mine]))]]
        assert split.test_target.row(row)[0].tolist() == [by_time[-1]]
        assert split.val_target.row(row)[0].tolist() == [by_time[-2]]
        assert sorted(split.val_input.row(row)[0].tolist()) == sorted(by_time[:-2].tolist())
        assert sorted(split.test_input.row(row)[0].tolist()) == sorted(by_time[:-1].tolist())


def test_cold_start_items_never_reach_training(ml):
    split = cold_start_items(ml, fraction=0.2, seed=0)
    cold = np.concatenate([split.val_candidates, split.test_candidates])
    assert not set(split.val_candidates) & set(split.test_candidates)
    assert split.train.col_counts()[cold].sum() == 0
    assert set(split.test_target.indices) <= set(split.test_candidates)
    assert split.test_input.nnz > 0 and not set(split.test_input.indices) & set(cold)


def test_parquet_is_read_with_pyarrow_or_says_how(tmp_path):
    import importlib.util

    path = tmp_path / "clicks.parquet"
    if importlib.util.find_spec("pyarrow") is None:
        path.write_bytes(b"PAR1")
        with pytest.raises(InputDataError, match=r"needs pyarrow \(pip install pyarrow\)"):
            read_interactions(path, user_column="u", item_column="i")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"u": ["a", "b"], "i": [1, 2], "r": [4.0, 5.0]}), path)
    data = read_interactions(path, user_column="u", item_column="i", rating_column="r")
    assert data.user_ids == ["a", "b"] and data.rating.tolist() == [4.0, 5.0]
