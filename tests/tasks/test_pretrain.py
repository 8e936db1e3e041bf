"""A tiny real pretraining run on a slice of BBC news through the CLI and the shipped config: the held-out
MLM loss falls, the run directory is complete, the final model loads, and --resume continues the run."""

import json
import re
from pathlib import Path

import pytest

from encoderlab import ConfigError, InputDataError, TextEncoder
from encoderlab.cli import main
from encoderlab.config import load_config
from encoderlab.tasks.pretrain import ModelSpec, PretrainConfig, pretrain_mlm

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "pretrain-tiny-en.yaml"
TINY = ["data=bbc-news", "max_documents=120", "max_steps=60", "batch_size=8", "max_seq_len=64",
        "tokenizer.vocab_size=2000", "eval_every=30", "max_eval_sequences=32", "warmup_steps=5", "save_every=0",
        "lr=3e-3", "threads=1", "progress=off", "log_every=10"]


def run_cli(*args: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    run_cli("pretrain", "--config", str(CONFIG), *TINY, f"out_dir={out}")
    return out


def test_held_out_mlm_loss_falls(run):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["step"] == 60
    assert metrics["eval_loss"] < metrics["initial_eval_loss"] - 0.5, metrics
    assert metrics["eval_accuracy"] > metrics["initial_eval_accuracy"]
    evals = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 30, 60]
    losses = [r["eval_loss"] for r in evals]
    assert losses == sorted(losses, reverse=True)  # falls at every evaluation


def test_run_directory_and_final_model(run):
    for name in ("config.yaml", "tokenizer/tokenizer.json", "data/train.ids.bin", "log.jsonl", "loss_curve.png",
                 "final/config.json", "final/model.safetensors", "final/tokenizer.json"):
        assert (run / name).is_file(), name
    encoder = TextEncoder.from_pretrained(run / "final")
    assert encoder.encode(["Shares rose sharply on Monday."]).shape == (1, 128)
    saved = json.loads((run / "final" / "config.json").read_text())
    assert saved["model_type"] == "roformer" and saved["architectures"] == ["RoFormerForMaskedLM"]  # rotary, post-LN


def test_learned_positions_give_a_checkpoint_in_bert_layout(tmp_path):
    out = tmp_path / "learned"
    run_cli("pretrain", "--config", str(CONFIG), *TINY, "max_steps=5", "eval_every=5", "model.positions=learned",
            f"out_dir={out}")
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["model_type"] == "bert" and saved["architectures"] == ["BertForMaskedLM"]


def test_resume_continues_with_the_same_tokenizer(run):
    vocab = (run / "tokenizer" / "tokenizer.json").read_bytes()
    run_cli("pretrain", "--resume", str(run), "max_steps=64")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["step"] == 64 and (run / "tokenizer" / "tokenizer.json").read_bytes() == vocab


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="unknown model preset 'bert-huge'"):
        load_config(PretrainConfig, CONFIG, ["model.preset=bert-huge"])
    with pytest.raises(ConfigError, match="vocab_size=3 is too small"):
        load_config(PretrainConfig, CONFIG, ["tokenizer.vocab_size=3"])
    with pytest.raises(ConfigError, match="mask_prob=0"):
        PretrainConfig(mask_prob=0.0)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="holds no texts"):
        pretrain_mlm(PretrainConfig(data=str(empty), out_dir=str(tmp_path / "a")))
    short = tmp_path / "short.txt"
    short.write_text("".join(f"line number {i}\n" for i in range(20)), encoding="utf-8")
    cfg = PretrainConfig(data=str(short), out_dir=str(tmp_path / "b"), max_seq_len=128,
                         model=ModelSpec(preset="bert-tiny"))
    with pytest.raises(InputDataError, match="fewer than one sequence of max_seq_len=128"):
        pretrain_mlm(cfg)


def test_document_mode_trains_on_length_bucketed_batches(tmp_path, monkeypatch):
    """packing=false: one sequence per document, batched by length through the Trainer's `lengths`."""
    from encoderlab.training import trainer as trainer_module

    seen = []
    original = trainer_module.EpochBatchSampler

    def recording_sampler(*args, **kwargs):
        seen.append(kwargs.get("lengths"))
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "EpochBatchSampler", recording_sampler)
    out = tmp_path / "docs"
    run_cli("pretrain", "--config", str(CONFIG), *TINY, "packing=false", "max_steps=20", "eval_every=20",
            f"out_dir={out}")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_loss"] < metrics["initial_eval_loss"]
    assert seen and seen[0] is not None and len(set(seen[0])) > 5  # real, varying document lengths


def test_rotary_pre_ln_encoder_is_saved_reloaded_and_fine_tuned(tmp_path):
    """An encoder BERT cannot express still leaves pretraining as a usable checkpoint: saved as encoderlab-bert,
    it reloads with its architecture and a fine-tune starts from it (init=RUN_DIR)."""
    from .finetune_fixtures import tweet_rows, write_csv

    out = tmp_path / "rotary"
    run_cli("pretrain", "--config", str(CONFIG), *TINY, "max_steps=10", "eval_every=10", "model.positions=rotary",
            "model.norm_position=pre", f"out_dir={out}")
    saved = json.loads((out / "final" / "config.json").read_text())
    assert saved["model_type"] == "encoderlab-bert" and saved["architectures"] == ["EncoderlabBertForMaskedLM"]
    encoder = TextEncoder.from_pretrained(out / "final")
    assert (encoder.bert.cfg.positions, encoder.bert.cfg.norm_position) == ("rotary", "pre")
    assert not hasattr(encoder.bert.embeddings, "positions")

    data = write_csv(tmp_path / "tweets.csv", tweet_rows(60))
    run_cli("finetune", f"data={data}", f"init={out}", "mode=full", f"out_dir={tmp_path / 'ft'}", "max_length=32",
            "batch_size=16", "progress=off", "split=0.6,0.2,0.2")
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    tuned = json.loads((tmp_path / "ft" / "final" / "config.json").read_text())
    assert tuned["encoderlab_positions"] == "rotary"


def test_a_corpus_too_small_leaves_no_run_directory(tmp_path, capsys):
    """A user's first try on a small .txt fails with one line, and leaves nothing behind to trip the next try."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"the cat number {i} sat on the mat near the house\n" for i in range(100)),
                      encoding="utf-8")
    for argv, message in ((["max_seq_len=64"], r"do not fill one optimizer step of batch_size=32"),
                          (["data=" + str(tmp_path / "few.txt")], r"the training part, 2 documents of "
                                                                    r"split=0.8,0.1,0.1, has \d+ tokens, fewer than"),
                          (["max_seq_len=512"], r"the held-out \(validation\) part, 10 documents of split=0.8,0.1,0.1, "
                                                r"has \d+ tokens, fewer than one sequence of max_seq_len=512; give "
                                                r"validation more")):
        (tmp_path / "few.txt").write_text("one line\ntwo line\nthree\n", encoding="utf-8")
        out = tmp_path / "run"
        with pytest.raises(SystemExit) as exit_info:
            main(["pretrain", f"data={corpus}", "model.preset=bert-tiny", "tokenizer.vocab_size=200", "max_steps=2",
                  "warmup_steps=0", "threads=1", "progress=off", *argv, f"out_dir={out}"])
        assert exit_info.value.code == 2 and re.search(message, capsys.readouterr().err)
        assert not out.exists()
    run_cli("pretrain", f"data={corpus}", "model.preset=bert-tiny", "tokenizer.vocab_size=200", "max_steps=2",
            "warmup_steps=0", "threads=1", "progress=off", "max_seq_len=64", "batch_size=4", f"out_dir={out}")
    assert (out / "final" / "config.json").is_file()


def test_bad_rows_warn_skips_bad_csv_rows_of_a_corpus(tmp_path, capsys):
    rows = [f'{i},"the cat number {i} sat on the mat near the house"\n' for i in range(200)]
    rows.insert(50, "50,\n")  # an empty text on line 52
    (tmp_path / "c.csv").write_text("id,body\n" + "".join(rows), encoding="utf-8")
    base = [f"data={tmp_path / 'c.csv'}", "text_field=body", "model.preset=bert-tiny", "tokenizer.vocab_size=200",
            "max_steps=1", "warmup_steps=0", "batch_size=2", "max_seq_len=32", "threads=1", "progress=off"]
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", *base, f"out_dir={tmp_path / 'a'}"])
    assert exit_info.value.code == 2 and "c.csv:52: empty 'body'\nfix them, or pass bad_rows=warn" in \
        capsys.readouterr().err
    run_cli("pretrain", *base, "bad_rows=warn", f"out_dir={tmp_path / 'b'}")
    assert (tmp_path / "b" / "final" / "config.json").is_file()
