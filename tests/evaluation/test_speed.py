import json
import re

import pytest
import torch

from encoderlab.cli import main
from encoderlab.errors import InputDataError
from encoderlab.evaluation.speed import (
    bf16_supported,
    build_engines,
    encoder_gflop,
    file_text_workloads,
    matmul_peak_gflops,
    measure,
    real_text_workloads,
)


def test_workloads_are_real_text_of_the_requested_lengths(minilm):
    workloads = real_text_workloads(minilm, batch_size=6)
    fixed, variable = workloads["fixed 6x128"], workloads["variable 6x16-128"]
    fixed_lengths = [len(ids) for ids in minilm.tokenizer.encode_ids(fixed, 512)]
    variable_lengths = [len(ids) for ids in minilm.tokenizer.encode_ids(variable, 512)]
    assert all(120 <= n <= 136 for n in fixed_lengths)  # decode/re-encode may shift a few word pieces
    assert min(variable_lengths) >= 10 and max(variable_lengths) <= 136 and len(set(variable_lengths)) > 3
    assert all(re.search(r"[a-z]{3,}", text) for text in fixed)


def test_useful_flops_count_real_tokens_only(minilm):
    one = encoder_gflop(minilm, ["a b c"])
    # 5 tokens ([CLS] a b c [SEP]) x 6 layers x (4*384^2 + 2*384*1536) x 2, plus 5^2 attention terms
    expected = 6 * (5 * (4 * 384 * 384 + 2 * 384 * 1536) * 2 + 25 * 384 * 4) / 1e9
    assert one == pytest.approx(expected)
    assert encoder_gflop(minilm, ["a b c", "a b c"]) == pytest.approx(2 * one)


def test_bf16_support_is_reported_in_words():
    ok, why = bf16_supported(torch.device("cpu"))
    assert isinstance(ok, bool) and ("bf16" in why)


@pytest.mark.slow
def test_bench_command_prints_a_table(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batch-size", "4", "--repeats", "1", "--engines", "fp32,int8", "--corpus", "12",
              "--corpus-repeats", "1"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "| fixed 4x128 | encoderlab fp32 |" in out and "| variable 4x16-128 | encoderlab int8 |" in out
    assert "| corpus 12 texts | encoderlab fp32 |" in out
    assert re.search(r"corpus 12 texts: encoderlab int8 does \d+ useful GFLOP/s = \d+% of this machine's int8 "
                     r"matmul peak", out)
    assert re.search(r"CPU: .+ \(.*(avx2|none of)", out) and "matmul peaks (2048²" in out
    assert "- kernels, encoderlab fp32: oneDNN pre-packed fp32 matmul" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--engines", "fp32,tensorrt"])
    assert exit_info.value.code != 0 and "tensorrt" in capsys.readouterr().err


def test_a_model_transformers_cannot_load_is_skipped_with_a_note(tmp_path):
    from encoderlab.evaluation.peer_engines import _transformers

    pytest.importorskip("transformers")
    notes: list[str] = []
    assert _transformers(tmp_path, 1, notes) == {}  # e.g. a structurally pruned encoder
    assert notes and notes[0].startswith(f"transformers: cannot load {tmp_path}")


def test_matmul_peak_runs_one_and_side_by_side_matmuls_and_keeps_the_thread_count():
    threads = torch.get_num_threads()
    try:
        assert matmul_peak_gflops(2, size=64, repeats=1, trials=1) > 0
        assert torch.get_num_threads() == 2
        assert matmul_peak_gflops(1, size=64, repeats=1, trials=1, dtype="int8") > 0
        if bf16_supported(torch.device("cpu"))[0]:
            assert matmul_peak_gflops(1, size=64, repeats=1, trials=1, dtype="bf16") > 0
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_users_file_is_the_workload_and_every_engine_cuts_long_texts_alike(tmp_path, minilm_dir):
    """A small model (64 positions) on texts longer than that: all engines cut at the model's limit
    (transformers used to get 512 tokens and fail on position 64), and agree with encoderlab fp32."""
    from encoderlab import TextEncoder
    from tasks.finetune_fixtures import write_tiny_encoder

    tiny = TextEncoder.from_pretrained(write_tiny_encoder(tmp_path / "tiny", minilm_dir, max_positions=64))
    from encoderlab.data.catalog import load_dataset

    articles = [" ".join(t.split()) for t in load_dataset("bbc-news").test.texts[:40]]  # hundreds of tokens each
    (tmp_path / "mine.txt").write_text("\n\n".join(articles) + "\n", encoding="utf-8")  # blank lines between
    workloads, calibration = file_text_workloads(tmp_path / "mine.txt", tiny, batch_size=8)
    (name, batch), = workloads.items()
    assert name == "mine.txt 8x64-64" and len(batch) == 8 and set(batch) <= set(articles)
    assert len(calibration) == 32 and not set(calibration) & set(batch)
    engines = build_engines(tiny, calibration, threads=1, include=("fp32", "transformers"))
    results = measure(engines, workloads, repeats=1, warmup=0, idle_s=0)
    assert {r.engine for r in results} == {"encoderlab fp32", "transformers fp32"}
    assert all(r.min_cosine > 0.9999 for r in results)
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputDataError, match="holds no texts"):
        file_text_workloads(tmp_path / "blank.txt", tiny)



@pytest.mark.slow
def test_bench_on_a_users_file(tmp_path, capsys):
    from encoderlab.data.catalog import load_dataset

    tweets = load_dataset("tweets-sentiment").test.texts[:12]
    (tmp_path / "tweets.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in tweets), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batch-size", "4", "--repeats", "1", "--engines", "fp32", "--data",
              str(tmp_path / "tweets.jsonl"), "--text-field", "body"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert re.search(r"\| tweets\.jsonl 4x\d+-\d+ \| encoderlab fp32 \|", out) and "bbc" not in out
    with pytest.raises(SystemExit):
        main(["bench", "--batch-size", "16", "--repeats", "1", "--engines", "fp32", "--data",
              str(tmp_path / "tweets.jsonl"), "--text-field", "body"])
    assert "holds 12 non-blank texts, so the timed batch has 12, not --batch-size 16" in capsys.readouterr().err
