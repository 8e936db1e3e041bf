"""`encoderlab prune` and `encoderlab distill` keep how a classifier trained with long_text=chunk reads long
texts: head.json's long_text and the learned attention over windows (window_pool.safetensors) go over to the
pruned or distilled model, which still predicts through every window with that pooling. A tiny encoder
(d_model 32) fine-tuned on whole BBC articles in windows of 32 pieces."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from encoderlab.artifacts.classifier import TextClassifier, save_window_pool
from encoderlab.data.catalog import load_dataset
from encoderlab.tasks.classify import ClassifyConfig, evaluate_classifier, finetune_classifier
from encoderlab.tasks.distill import DistillConfig, distill
from encoderlab.tasks.prune import PruneConfig, prune_classifier
from encoderlab.training import run_task
from tasks.finetune_fixtures import one_thread, write_tiny_encoder  # noqa: F401 (autouse fixture)

READING = {"mode": "chunk", "window": 32, "stride": 24, "pooling": "attention"}


@pytest.fixture(scope="module")
def chunked_teacher(tmp_path_factory, minilm_dir):
    """A classifier fine-tuned through windows with attention over them, whose attention is then made sharp
    (random scores), so that pooling the windows any other way predicts differently."""
    root = tmp_path_factory.mktemp("long")
    tiny = write_tiny_encoder(root / "enc", minilm_dir)
    out = root / "teacher"
    run_task(finetune_classifier, ClassifyConfig, None, [  # as the CLI runs it: config.yaml holds the subsets
        "data=bbc-news", f"init={tiny}", "mode=full", f"out_dir={out}", "long_text=chunk", "window=32", "stride=24",
        "window_pooling=attention", "lr=1e-3", "max_train_examples=24", "max_eval_examples=8",
        "max_test_examples=12", "max_length=32", "batch_size=8", "epochs=1", "progress=off", "threads=1"])
    classifier = TextClassifier.from_dir(out)
    torch.manual_seed(0)
    torch.nn.init.normal_(classifier.window_pool.score.weight, std=3.0)
    save_window_pool(classifier.window_pool, out / "final")
    return out


def _long_articles(n: int = 6) -> list[str]:
    return load_dataset("bbc-news").test.texts[:n]


def _reads_like_the_teacher(path, teacher_dir) -> TextClassifier:
    classifier = TextClassifier.from_dir(path)
    assert json.loads((path / "final" / "head.json").read_text())["long_text"] == READING
    assert classifier.long_text == TextClassifier.from_dir(teacher_dir).long_text
    assert (path / "final" / "window_pool.safetensors").is_file()
    return classifier


def test_learned_window_attention_matters_for_this_teacher(chunked_teacher):
    teacher = TextClassifier.from_dir(chunked_teacher)
    texts = _long_articles()
    assert min(teacher.windows(texts)[1]) > 3  # every article is several windows
    learned = teacher.predict_proba(texts)
    torch.nn.init.zeros_(teacher.window_pool.score.weight)  # the mean over windows instead
    assert np.abs(teacher.predict_proba(texts) - learned).max() > 1e-3


def test_pruning_nothing_keeps_the_teachers_predictions_through_its_windows(tmp_path, chunked_teacher):
    out = tmp_path / "pruned"
    prune_classifier(PruneConfig(model=str(chunked_teacher), method="magnitude", sparsity=0.0, recovery_steps=0,
                                 speed_repeats=0, out_dir=str(out), progress="off"))
    pruned = _reads_like_the_teacher(out, chunked_teacher)
    teacher = TextClassifier.from_dir(chunked_teacher)
    assert torch.equal(pruned.window_pool.score.weight, teacher.window_pool.score.weight)
    texts = _long_articles()
    np.testing.assert_allclose(pruned.predict_proba(texts), teacher.predict_proba(texts), atol=1e-6)
    # the "before" score is the teacher as it reads: through its windows with its learned attention
    plan = json.loads((out / "pruning.json").read_text())
    report, _ = evaluate_classifier(chunked_teacher, "bbc-news", max_examples=12)
    assert plan["test_before"]["accuracy"] == pytest.approx(report.accuracy)


@pytest.mark.slow
def test_pruned_heads_recover_through_the_windows(tmp_path, chunked_teacher):
    out = tmp_path / "heads"
    metrics = prune_classifier(PruneConfig(model=str(chunked_teacher), method="heads", sparsity=0.5,
                                           recovery_steps=2, importance_examples=8, batch_size=8, lr=1e-2,
                                           speed_repeats=0, out_dir=str(out), progress="off"))
    assert metrics["heads_after"] < metrics["heads_before"]
    pruned = _reads_like_the_teacher(out, chunked_teacher)
    before = load_file(str(chunked_teacher / "final" / "window_pool.safetensors"))["score.weight"]
    assert not torch.equal(pruned.window_pool.score.weight, before)  # recovery trained the attention too
    report, _ = evaluate_classifier(out, "bbc-news", max_examples=12)
    assert report.accuracy == pytest.approx(metrics["test_accuracy"])


def test_distilled_student_reads_through_windows_with_the_teachers_attention(tmp_path, chunked_teacher):
    out = tmp_path / "student"
    metrics = distill(DistillConfig(mode="logits", teacher=str(chunked_teacher), layers=[0, 1], out_dir=str(out),
                                    max_steps=1, warmup_steps=0, batch_size=8, lr=1e-3, speed_repeats=0,
                                    progress="off"))
    report, _ = evaluate_classifier(chunked_teacher, "bbc-news", max_examples=12)
    assert metrics["teacher_test_accuracy"] == pytest.approx(report.accuracy)
    # the student keeps every block: before training it is the teacher, windows and attention included
    assert metrics["initial_student_test_accuracy"] == pytest.approx(report.accuracy)
    student = _reads_like_the_teacher(out, chunked_teacher)
    texts = _long_articles()
    assert student.predict_proba(texts).shape == (len(texts), 5)
    trained = load_file(str(out / "final" / "window_pool.safetensors"))["score.weight"]
    teacher_scores = load_file(str(chunked_teacher / "final" / "window_pool.safetensors"))["score.weight"]
    assert trained.shape == teacher_scores.shape and not torch.equal(trained, teacher_scores)  # it trained on
