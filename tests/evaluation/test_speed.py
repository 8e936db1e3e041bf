import re

import pytest
import torch

from encoderlab.cli import main
from encoderlab.evaluation.speed import bf16_supported, encoder_gflop, matmul_peak_gflops, real_text_workloads


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


def test_bench_command_prints_a_table(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batch-size", "4", "--repeats", "1", "--engines", "fp32,int8"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "| fixed 4x128 | encoderlab fp32 |" in out and "| variable 4x16-128 | encoderlab int8 |" in out
    assert "of this machine's fp32 matmul peak" in out


def test_a_model_transformers_cannot_load_is_skipped_with_a_note(tmp_path):
    from encoderlab.evaluation.speed import _transformers_engine

    pytest.importorskip("transformers")
    notes: list[str] = []
    assert _transformers_engine(tmp_path, notes) is None  # e.g. a structurally pruned encoder
    assert notes and notes[0].startswith(f"transformers: cannot load {tmp_path}")


def test_matmul_peak_runs_one_and_side_by_side_matmuls_and_keeps_the_thread_count():
    threads = torch.get_num_threads()
    try:
        assert matmul_peak_gflops(2, size=64, repeats=1, trials=1) > 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
