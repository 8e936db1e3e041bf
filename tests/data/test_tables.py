"""Tables with text, categorical and numeric columns: reading, column checks, vocabularies, scaling, splits."""

from pathlib import Path

import numpy as np
import pytest

from encoderlab.data.tables import (
    TableFeatures,
    TableSpec,
    read_table,
    select_rows,
    stratified_splits,
)
from encoderlab.errors import ConfigError, InputDataError

SAMPLE = Path(__file__).parent / "clothing_reviews_sample.csv"
SPEC = TableSpec(text_columns=["Title", "Review Text"], categorical_columns=["Department Name", "Class Name"],
                 numeric_columns=["Age", "Positive Feedback Count"], label_column="Rating")


def test_csv_sample_reads_with_missing_cells_as_none():
    table = read_table(SAMPLE)
    assert len(table["Age"]) == 240
    assert any(cell is None for cell in table["Title"])  # titles are often empty
    rows = select_rows(table, SPEC, "sample")
    assert len(rows) == 240 and rows.numbers.shape == (240, 2)
    assert sorted(set(rows.labels)) == ["1", "2", "3", "4", "5"]
    dropped = select_rows(table, SPEC, "sample", drop_empty_text=True)
    assert len(dropped) == sum(1 for t in rows.texts if t)


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = read_table(SAMPLE)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"Age": [float(a) for a in table["Age"]], "Title": table["Title"]}), path)
    back = read_table(path)
    assert back["Age"] == [float(a) for a in table["Age"]] and back["Title"] == table["Title"]


def test_missing_columns_name_the_input_and_the_fix():
    table = read_table(SAMPLE)
    spec = TableSpec(text_columns=["Review"], numeric_columns=["age"], label_column="Rating")
    with pytest.raises(InputDataError, match=r"no column\(s\) \['Review', 'age'\].*Review Text"):
        select_rows(table, spec, "sample.csv")


def test_bad_specs_and_cells_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="label_column='Age' is also a feature"):
        TableSpec(numeric_columns=["Age"], label_column="Age")
    with pytest.raises(ConfigError, match="more than one"):
        TableSpec(text_columns=["a"], categorical_columns=["a"])
    path = tmp_path / "bad.csv"
    path.write_text("text,n,y\nhello,3,a\nworld,lots,b\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"row 2, numeric column 'n' holds 'lots'"):
        select_rows(read_table(path), TableSpec(["text"], [], ["n"], "y"), str(path))
    path.write_text("text,n,y\nhello,3\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"bad.csv:2: 2 cells but the header has 3"):
        read_table(path)
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputDataError, match="unknown format"):
        read_table(tmp_path / "x.json")


def test_features_fit_on_train_only_and_map_unknowns_to_zero():
    rows = select_rows(read_table(SAMPLE), SPEC, "sample")
    train, val, test = stratified_splits(rows, (0.6, 0.2, 0.2), seed=0)
    assert len(train) + len(val) + len(test) == len(rows)
    assert set(train.labels) == set(test.labels) == {"1", "2", "3", "4", "5"}  # stratified: every class
    features = TableFeatures.fit(train, SPEC)
    x = features.transform(train)
    assert np.allclose(x.numbers.mean(0), 0, atol=1e-5) and np.allclose(x.numbers.std(0), 1, atol=1e-4)
    assert x.categories.min() >= 1  # every training value is in the vocabulary
    new = test.subset([0])
    new.categories[0] = ["Never seen", None]
    new.numbers[0] = [np.nan, 2.0]
    encoded = features.transform(new)
    assert encoded.categories.tolist() == [[0, 0]]
    assert encoded.numbers[0, 0] == 0.0  # a missing number is the training mean
    again = TableFeatures.from_dict(features.to_dict())
    np.testing.assert_array_equal(again.transform(test).numbers, features.transform(test).numbers)
    assert again.label_names == ["1", "2", "3", "4", "5"]


def test_min_count_sends_rare_values_to_the_unknown_bucket():
    rows = select_rows(read_table(SAMPLE), SPEC, "sample")
    features = TableFeatures.fit(rows, SPEC, min_count=10)
    counts = {value: sum(1 for r in rows.categories if r[1] == value) for value in {r[1] for r in rows.categories}}
    assert set(features.vocabularies[1]) == {v for v, c in counts.items() if v is not None and c >= 10}
