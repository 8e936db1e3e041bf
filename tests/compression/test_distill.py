"""Distillation: the student is cut exactly from the teacher, the losses mean what they say, and short real
runs (a 2-layer teacher cut from all-MiniLM-L6-v2, real tweets) make the student closer to the teacher and
leave directories that the generic loaders, `encode`, `evaluate` and `predict` read unchanged."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from encoderlab import TextEncoder
from encoderlab.artifacts.classifier import TextClassifier
from encoderlab.cli import main
from encoderlab.compression.distillation import (
    alternate_layers,
    block_outputs,
    embedding_distillation_loss,
    hidden_state_loss,
    kl_distillation_loss,
    logit_distillation_loss,
    make_student,
)
from encoderlab.compression.quantize import embedding_agreement
from encoderlab.data.catalog import load_dataset
from encoderlab.errors import CheckpointError, ConfigError, EncoderlabError, InputDataError
from encoderlab.models.heads import EncoderWithHead, SequenceClassificationHead
from encoderlab.tasks.classify import ClassifyConfig, evaluate_classifier, finetune_classifier
from encoderlab.tasks.distill import DistillConfig, distill
from encoderlab.training import run_task
from interop.varied_texts import varied_texts
from tasks.finetune_fixtures import one_thread, tweet_rows, write_csv  # noqa: F401 (autouse fixture)

FAST = ["speed_batch_size=4", "speed_repeats=1", "progress=off", "threads=1"]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, minilm):
    """A real but small teacher: blocks 0 and 5 of all-MiniLM-L6-v2, saved as a normal encoder directory."""
    directory = tmp_path_factory.mktemp("teacher") / "enc"
    TextEncoder(make_student(minilm.bert, [0, 5]).eval(), minilm.tokenizer, minilm.pooling, minilm.normalize,
                minilm.max_seq_length).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tweets_txt(tmp_path_factory):
    """400 real tweets (a seeded draw from the catalog), one per line: a user's unlabelled text file."""
    train = load_dataset("tweets-sentiment").train
    rows = np.random.default_rng(0).permutation(len(train))[:400]
    path = tmp_path_factory.mktemp("text") / "tweets.txt"
    path.write_text("\n".join(train.texts[i].replace("\n", " ") for i in rows) + "\n", encoding="utf-8")
    return path


def _batch(encoder, texts):
    return encoder.tokenizer([t.strip() for t in texts], 64)


# ============================================================================ the student
def test_alternate_layers_end_at_the_last_block():
    assert alternate_layers(6) == [1, 3, 5]
    assert alternate_layers(12, 4) == [2, 5, 8, 11]
    assert alternate_layers(2) == [1] and alternate_layers(6, 6) == list(range(6))


def test_student_copies_exactly_the_chosen_blocks(minilm):
    teacher = minilm.bert
    student = make_student(teacher, [0, 3, 5])
    ours, theirs = student.state_dict(), teacher.state_dict()
    for j, i in enumerate([0, 3, 5]):
        block = {k.split(".", 2)[2]: v for k, v in theirs.items() if k.startswith(f"blocks.{i}.")}
        assert block and all(torch.equal(ours[f"blocks.{j}.{name}"], v) for name, v in block.items())
    shared = [k for k in theirs if not k.startswith("blocks.")]
    assert all(torch.equal(ours[k], theirs[k]) for k in shared) and "embeddings.tokens.weight" in shared
    assert len(student.blocks) == student.cfg.n_layers == 3 and len(teacher.blocks) == teacher.cfg.n_layers == 6
    with torch.no_grad():  # a copy, not a view: training the student never touches the teacher
        student.blocks[0].attn.query.weight.add_(1.0)
        student.embeddings.tokens.weight.add_(1.0)
    assert torch.equal(teacher.state_dict()["blocks.0.attn.query.weight"], theirs["blocks.0.attn.query.weight"])
    assert not torch.equal(teacher.embeddings.tokens.weight, student.embeddings.tokens.weight)


def test_keeping_every_layer_computes_exactly_what_the_teacher_computes(minilm):
    batch = _batch(minilm, varied_texts()[:24])  # ragged: the packed path
    student = make_student(minilm.bert, list(range(6))).eval()
    with torch.no_grad():
        assert torch.equal(student(batch.input_ids, batch.attention_mask),
                           minilm.bert(batch.input_ids, batch.attention_mask))


# ============================================================================ the losses
def test_kl_is_zero_when_student_equals_teacher_and_positive_otherwise(teacher_dir):
    encoder = TextEncoder.from_pretrained(teacher_dir)
    torch.manual_seed(0)
    teacher = EncoderWithHead(encoder.bert, SequenceClassificationHead(encoder.dim, 3, "mean")).eval()
    student = EncoderWithHead(make_student(encoder.bert, [0, 1]), SequenceClassificationHead(encoder.dim, 3, "mean"))
    student.head.load_state_dict(teacher.head.state_dict())
    student.eval()
    batch = _batch(encoder, varied_texts()[:16])
    with torch.no_grad():
        t = teacher(batch.input_ids, batch.attention_mask)
        s = student(batch.input_ids, batch.attention_mask)
    for temperature in (1.0, 2.0, 4.0):
        assert kl_distillation_loss(s, t, temperature).item() == pytest.approx(0.0, abs=1e-7)
    other = t + torch.randn_like(t)
    assert kl_distillation_loss(other, t, 2.0) > 0
    labels = torch.arange(16) % 3
    # kd_weight=0 is plain cross-entropy; kd_weight=1 ignores the labels
    assert logit_distillation_loss(other, t, labels, 2.0, 0.0) == pytest.approx(F.cross_entropy(other, labels).item())
    kl = kl_distillation_loss(other, t, 2.0).item()
    assert logit_distillation_loss(other, t, labels, 2.0, 1.0) == pytest.approx(kl)
    mixed = logit_distillation_loss(other, t, labels, 2.0, 0.3)
    assert mixed == pytest.approx(0.3 * kl_distillation_loss(other, t, 2.0).item()
                                  + 0.7 * F.cross_entropy(other, labels).item(), rel=1e-5)
    # KL(p || q) by hand, times T²
    p, log_q = (t / 2).softmax(-1), (other / 2).log_softmax(-1)
    by_hand = (p * (p.log() - log_q)).sum(-1).mean() * 4
    assert kl_distillation_loss(other, t, 2.0).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_embedding_and_hidden_state_losses(minilm):
    a, b = torch.randn(8, 16), torch.randn(8, 16)
    assert embedding_distillation_loss(a, a.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert embedding_distillation_loss(a, 3 * a, mse_weight=0).item() == pytest.approx(0.0, abs=1e-6)  # angle only
    expected = F.mse_loss(a, b) + (1 - F.cosine_similarity(a, b)).mean()
    assert embedding_distillation_loss(a, b).item() == pytest.approx(expected.item(), rel=1e-6)
    # each student block is compared with the teacher block it was copied from, row by row over real tokens
    batch = _batch(minilm, varied_texts()[:12])
    with torch.no_grad(), block_outputs(minilm.bert) as teacher_states:
        minilm.bert(batch.input_ids, batch.attention_mask)
    for layers in (list(range(6)), [1, 3, 5]):
        student = make_student(minilm.bert, layers).eval()
        with torch.no_grad(), block_outputs(student) as student_states:
            student(batch.input_ids, batch.attention_mask)
        assert len(student_states) == len(layers)
        assert student_states[0].shape == teacher_states[0].shape == (int(batch.attention_mask.sum()), 384)
        loss = hidden_state_loss(student_states, teacher_states, layers).item()
        assert loss == 0.0 if len(layers) == 6 else loss > 0.01


# ============================================================================ end to end
def test_embedding_distillation_gets_closer_to_the_teacher_and_saves_a_normal_encoder(tmp_path, teacher_dir,
                                                                                      tweets_txt):
    out = tmp_path / "run"
    metrics = run_task(distill, DistillConfig, None, [
        f"teacher={teacher_dir}", f"data={tweets_txt}", f"out_dir={out}", "max_length=48", "batch_size=16",
        "max_steps=30", "lr=3e-4", "warmup_steps=3", "log_every=5", "hidden_weight=0.5", "split=0.8,0.1,0.1",
        *FAST])
    assert metrics["layers"] == [1] and metrics["student_layers"] == 1 and metrics["teacher_layers"] == 2
    assert metrics["student_parameters"] < metrics["teacher_parameters"]
    # the distillation loss falls and the saved student is closer to the teacher on held-out tweets
    losses = [r["loss"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    assert metrics["test_cosine_mean"] > metrics["initial_test_cosine_mean"] + 0.02
    assert metrics["test_cosine_worst"] <= metrics["test_cosine_mean"] <= 1.0
    assert set(metrics["speed"]) and all(row["speedup"] > 0 for row in metrics["speed"].values())
    assert json.loads((out / "metrics.json").read_text())["test_cosine_mean"] == metrics["test_cosine_mean"]

    # final/ is an ordinary encoder directory: the teacher's pooling and normalisation, same numbers reloaded
    final = out / "final"
    student = TextEncoder.from_pretrained(final)
    teacher = TextEncoder.from_pretrained(teacher_dir)
    assert (student.pooling, student.normalize, student.max_seq_length) == \
        (teacher.pooling, teacher.normalize, teacher.max_seq_length)
    held_out = tweets_txt.read_text(encoding="utf-8").splitlines()[-40:]
    vectors = student.encode(held_out)
    assert main_exit(["encode", "--model", str(final), "--input", str(tweets_txt), "--output",
                      str(tmp_path / "v.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "v.npy")[-40:], vectors, atol=1e-6)
    assert embedding_agreement(teacher, student, held_out).mean_cosine > 0.5
    info = json.loads((final / "distillation.json").read_text())
    assert info["layers"] == [1] and info["teacher"] == str(teacher_dir)


def test_logit_distillation_saves_a_classifier_that_evaluate_and_predict_read(tmp_path, teacher_dir):
    teacher_run = tmp_path / "teacher"
    run_task(finetune_classifier, ClassifyConfig, None, [
        f"init={teacher_dir}", "data=tweets-sentiment", f"out_dir={teacher_run}", "max_train_examples=160",
        "max_eval_examples=32", "max_test_examples=64", "max_length=32", "batch_size=16", "lr=1e-4",
        "progress=off", "threads=1"])
    out = tmp_path / "student"
    assert main_exit(["distill", "mode=logits", f"teacher={teacher_run}", f"out_dir={out}", "batch_size=16",
                      "temperature=2", "kd_weight=0.7", "lr=2e-4", *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # trained on the teacher's own split: its subset sizes come from the teacher run's config.yaml
    assert (metrics["train_examples"], metrics["test_examples"]) == (160, 64)
    for who in ("student", "teacher"):
        assert 0 <= metrics[f"{who}_test_accuracy"] <= 1 and 0 <= metrics[f"{who}_test_macro_f1"] <= 1
    teacher_metrics = json.loads((teacher_run / "metrics.json").read_text())
    assert metrics["teacher_test_accuracy"] == pytest.approx(teacher_metrics["test_accuracy"])
    assert metrics["student_layers"] == 1 and metrics["layers"] == [1]

    # a normal fine-tuned run: `evaluate` reproduces the reported accuracy on the same test split
    report, _ = evaluate_classifier(out, "tweets-sentiment", max_examples=64)
    assert report.accuracy == pytest.approx(metrics["student_test_accuracy"])

    # a user's labelled file with its own column names replaces the teacher's data
    rows = tweet_rows(120)
    mine = write_csv(tmp_path / "mine.csv", rows, header=("tweet", "sentiment"))
    assert main_exit(["distill", "mode=logits", f"teacher={teacher_run}", f"data={mine}", "text_column=tweet",
                      "label_column=sentiment", f"out_dir={tmp_path / 'mine'}", "max_steps=2", "warmup_steps=0",
                      "batch_size=16", *FAST]) == 0
    mine_metrics = json.loads((tmp_path / "mine" / "metrics.json").read_text())
    assert mine_metrics["test_examples"] == 12 and mine_metrics["data"] == str(mine)
    classifier = TextClassifier.from_pretrained(out)
    assert classifier.label_names == ("negative", "neutral", "positive")
    assert len(classifier.model.bert.blocks) == 1
    texts = tmp_path / "in.txt"
    texts.write_text("what a lovely day\nworst delay ever\n", encoding="utf-8")
    predictions = tmp_path / "p.jsonl"
    assert main_exit(["predict", "--model", str(out), "--input", str(texts), "--output", str(predictions)]) == 0
    assert len(predictions.read_text().splitlines()) == 2


# ============================================================================ bad input
def test_bad_input_is_one_clear_error(tmp_path, teacher_dir, tweets_txt, capsys):
    def run(*overrides):
        return run_task(distill, DistillConfig, None, [f"teacher={teacher_dir}", f"data={tweets_txt}",
                                                       f"out_dir={tmp_path / 'r'}", *FAST, *overrides])

    with pytest.raises(ConfigError, match=r"layers=\[0, 7\]: 7 is not a block of the 2-layer teacher; use indices 0"):
        run("layers=0,7")
    with pytest.raises(ConfigError, match=r"layers=\[\] keeps no teacher block"):
        run("layers=[]")
    with pytest.raises(ConfigError, match="distinct, increasing"):
        run("layers=1,0")
    with pytest.raises(ConfigError, match="student_layers=3 must be between 1 and the teacher's 2 layers"):
        run("student_layers=3")
    with pytest.raises(ConfigError, match="temperature=0.0 must be positive"):
        run("temperature=0")
    with pytest.raises(CheckpointError, match=r"is not a fine-tuned classifier .*mode=logits needs the OUT_DIR of "
                                              r"`encoderlab finetune`.*use mode=embeddings"):
        run("mode=logits")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"empty\.txt' holds no texts"):
        run(f"data={empty}")
    with pytest.raises(ConfigError, match="text_column= / label_column= name the columns of a labelled data= file "
                                          "in mode=logits; .* use text_field="):
        run("text_column=body")
    three = tmp_path / "three.txt"
    three.write_text("one text\nanother text\na third\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"3 texts leave no held-out test text .*give more texts or a larger "
                                             r"test fraction, e.g. split=0.6,0.2,0.2"):
        run(f"data={three}")
    # the CLI prints exactly one line, no traceback, exit code 2
    assert main_exit(["distill", f"teacher={teacher_dir}", f"data={tweets_txt}", "temperature=-1",
                      f"out_dir={tmp_path / 'c'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: temperature=-1.0 must be positive")
    assert issubclass(ConfigError, EncoderlabError)


def main_exit(argv):
    with pytest.raises(SystemExit) as code:
        main(argv)
    return code.value.code


def test_a_teacher_given_as_final_keeps_its_own_test_file(tmp_path, teacher_dir):
    """A teacher trained with test_data= holds that file in head.json: distilling from its final/ copied away
    from its run (no config.yaml beside it) tests on that file, not on rows carved from the training file."""
    train = write_csv(tmp_path / "train.csv", tweet_rows(160))
    held_out = write_csv(tmp_path / "held_out.csv", tweet_rows(200)[160:])
    teacher_run = tmp_path / "teacher"
    run_task(finetune_classifier, ClassifyConfig, None, [
        f"init={teacher_dir}", f"data={train}", f"test_data={held_out}", f"validation_data={held_out}",
        f"out_dir={teacher_run}", "max_length=32", "batch_size=16", "max_steps=2", "warmup_steps=0",
        "progress=off", "threads=1"])
    import shutil

    moved = shutil.copytree(teacher_run / "final", tmp_path / "shipped" / "final")  # without its run's config.yaml
    out = tmp_path / "student"
    assert main_exit(["distill", "mode=logits", f"teacher={moved}", f"out_dir={out}",
                      "max_steps=2", "warmup_steps=0", "batch_size=16", *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_examples"] == 160 and metrics["test_examples"] == 40
