import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from encoderlab.evaluation.classification import classification_report, confusion_matrix


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=80))))
@pytest.mark.slow
def test_matches_scikit_learn(case):
    k, pairs = case
    y_true, y_pred = [a for a, _ in pairs], [b for _, b in pairs]
    report = classification_report(y_true, y_pred, [f"c{i}" for i in range(k)])
    labels = list(range(k))
    np.testing.assert_array_equal(report.confusion, skm.confusion_matrix(y_true, y_pred, labels=labels))
    assert report.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert report.macro_f1 == pytest.approx(skm.f1_score(y_true, y_pred, labels=labels, average="macro",
                                                         zero_division=0))
    np.testing.assert_allclose(report.precision, skm.precision_score(y_true, y_pred, labels=labels, average=None,
                                                                     zero_division=0))
    np.testing.assert_allclose(report.recall, skm.recall_score(y_true, y_pred, labels=labels, average=None,
                                                               zero_division=0))


def test_hand_computed_example():
    # true:  a a a b b c ; pred: a a b b c c
    report = classification_report([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert report.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.per_class["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
                                     "support": 3}
    assert report.per_class["c"]["precision"] == pytest.approx(0.5)


def test_class_never_predicted_counts_zero_in_macro_f1():
    report = classification_report([0, 1, 2], [0, 1, 1], ["a", "b", "c"])
    assert report.per_class["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report.macro_f1 == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_out_of_range_ids_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], 2)
    with pytest.raises(ValueError, match="entries"):
        confusion_matrix([0, 1], [0], 2)


def test_save_writes_json_and_png_and_format_lists_classes(tmp_path):
    report = classification_report([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"])
    path = report.save(tmp_path, "eval_test", extra={"data": "x"})
    saved = json.loads(path.read_text())
    assert saved["accuracy"] == 0.75 and saved["data"] == "x" and saved["confusion"] == [[2, 0], [1, 1]]
    assert (tmp_path / "eval_test_confusion.png").stat().st_size > 1000
    text = report.format()
    assert "macro-F1" in text and "neg" in text and "confusion matrix" in text


def test_the_confusion_matrix_header_keeps_whole_label_names():
    """Names over 8 characters were cut ('high beep' read 'high bee'); columns widen to the longest, up to 24."""
    text = classification_report([0, 1, 1], [0, 1, 0], ["high beep", "low"]).format()
    header, first, second = text.splitlines()[-3:]
    assert header.split() == ["high", "beep", "low"]
    assert len(header) == len(first) == len(second) and first.split() == ["high", "beep", "1", "0"]
