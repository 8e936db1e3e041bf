"""A classifier fine-tuned on a user's file with unusable rows (`bad_rows=warn` skipped them) can be pruned and
distilled: both re-read the teacher's training file, and used to refuse its bad rows with "pass
bad_rows=warn", an option neither command had; distill on a user's file takes bad_rows= itself."""

import json

import pytest

from tasks.finetune_fixtures import one_thread, tweet_rows, write_csv, write_tiny_encoder  # noqa: F401 (autouse)
from tasks.finetune_fixtures import run_cli as _cli


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, minilm_dir):
    """A tiny classifier trained (through the command, so its run has config.yaml) on 120 real tweets plus two
    rows without text, skipped with bad_rows=warn."""
    root = tmp_path_factory.mktemp("bad rows")
    encoder = write_tiny_encoder(root / "enc", minilm_dir)
    rows = tweet_rows(120)
    data = write_csv(root / "tweets.csv", rows[:50] + [("", rows[0][1])] + rows[50:] + [("   ", rows[1][1])])
    out = root / "teacher"
    assert _cli("finetune", f"data={data}", f"init={encoder}", f"out_dir={out}", "bad_rows=warn", "max_length=32",
                "batch_size=16", "max_steps=2", "progress=off", "threads=1", "max_test_examples=10") == 0
    return out


@pytest.mark.slow
def test_prune_reads_the_teachers_file_as_it_was_trained(tmp_path, teacher, capsys):
    out = tmp_path / "pruned"
    assert _cli("prune", f"model={teacher}", f"out_dir={out}", "method=ffn", "sparsity=0.25", "recovery_steps=1",
                "batch_size=8", "importance_examples=16", "speed_repeats=0", "progress=off", "threads=1") == 0, \
        capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_examples"] == 10 and metrics["ffn_neurons_after"] < metrics["ffn_neurons_before"]
    # the pruned model carries the setting on: it prunes further
    assert _cli("prune", f"model={out}", f"out_dir={tmp_path / 'again'}", "method=ffn", "sparsity=0.25",
                "recovery_steps=0", "batch_size=8", "importance_examples=16", "speed_repeats=0", "progress=off",
                "threads=1") == 0, capsys.readouterr().err


@pytest.mark.slow
def test_distill_reads_the_teachers_file_as_it_was_trained(tmp_path, teacher, capsys):
    out = tmp_path / "student"
    assert _cli("distill", "mode=logits", f"teacher={teacher}", f"out_dir={out}", "layers=[1]", "max_steps=1",
                "batch_size=8", "warmup_steps=0", "speed_repeats=0", "progress=off", "threads=1") == 0, \
        capsys.readouterr().err
    assert (out / "final" / "head.json").is_file()


@pytest.mark.slow
def test_distill_embeddings_on_a_file_with_bad_rows_takes_bad_rows_warn(tmp_path, minilm_dir, capsys):
    """Its error said 'pass bad_rows=warn to skip them', and distill refused the key."""
    encoder = write_tiny_encoder(tmp_path / "enc", minilm_dir)
    rows = tweet_rows(60)
    data = write_csv(tmp_path / "texts.csv", rows[:30] + [("", "x")] + rows[30:], header=("body", "label"))
    common = ["distill", "mode=embeddings", f"teacher={encoder}", f"data={data}", "text_field=body", "layers=[1]",
              "max_steps=1", "batch_size=8", "warmup_steps=0", "speed_repeats=0", "progress=off", "threads=1"]
    assert _cli(*common, f"out_dir={tmp_path / 'refused'}") == 2
    assert "bad_rows=warn" in capsys.readouterr().err
    assert _cli(*common, f"out_dir={tmp_path / 'student'}", "bad_rows=warn") == 0, capsys.readouterr().err
    assert "skipped 1 bad rows" in capsys.readouterr().err


@pytest.mark.slow
def test_prune_recovery_on_another_file_with_bad_rows_takes_bad_rows_warn(tmp_path, teacher, capsys):
    rows = tweet_rows(200)[120:]
    data = write_csv(tmp_path / "more.csv", rows[:40] + [("", rows[0][1])] + rows[40:])
    common = ["prune", f"model={teacher}", f"data={data}", "method=ffn", "sparsity=0.25", "recovery_steps=1",
              "batch_size=8", "importance_examples=16", "speed_repeats=0", "progress=off", "threads=1"]
    assert _cli(*common, f"out_dir={tmp_path / 'refused'}") == 2
    assert "bad_rows=warn" in capsys.readouterr().err
    assert _cli(*common, f"out_dir={tmp_path / 'pruned'}", "bad_rows=warn") == 0, capsys.readouterr().err
