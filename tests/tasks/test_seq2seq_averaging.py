"""`average_last=N` in `encoderlab seq2seq`: the saved final model is the mean of the run's last N
checkpoints, validated as averaged_eval_*, tested, and it reloads to predict what was scored."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from encoderlab.data.pairs import load_pairs, split_by_source
from encoderlab.errors import ConfigError
from encoderlab.tasks.seq2seq import Seq2SeqConfig, Seq2SeqPredictor, sample_sources, seq2seq_command
from encoderlab.training.checkpoint import list_checkpoints, load_model_state

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_a_run_with_averaging_saves_the_mean_of_its_last_checkpoints(tmp_path):
    out = tmp_path / "g2p-avg"
    metrics = seq2seq_command(CONFIGS / "seq2seq-g2p-transformer.yaml", [
        "threads=1", "progress=off", f"out_dir={out}", "max_train_examples=400", "max_steps=60", "batch_size=32",
        "lr=3e-3", "warmup_steps=10", "schedule=constant", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
        "model.n_encoder_layers=2", "model.n_decoder_layers=1", "max_eval_examples=60", "max_test_examples=80",
        "baselines=false", "save_every=20", "keep_last=3", "average_last=3", "eval_every=60"])
    chosen = list_checkpoints(out)
    assert [p.name for p in chosen] == metrics["averaged_checkpoints"] == [
        "step-00000020", "step-00000040", "step-00000060"]
    states = [load_model_state(p) for p in chosen]
    final = load_file(out / "final" / "model.safetensors")
    for name, tensor in final.items():
        assert torch.allclose(tensor, sum(s[name] for s in states) / 3, atol=1e-6), name
    assert not torch.equal(final["out_bias"], states[-1]["out_bias"])  # not simply the last model
    assert 0 <= metrics["averaged_eval_exact_match"] <= 1 and "eval_exact_match" in metrics
    predictor = Seq2SeqPredictor.from_dir(out)  # the saved (averaged) model is the one that was tested
    _, _, test = split_by_source(load_pairs("cmudict"), (0.9, 0.05, 0.05), seed=0)  # the run's test split
    refs = list(sample_sources(test, 80, seed=0).references().items())
    outputs = predictor.predict([w for w, _ in refs])
    exact = sum(o in targets for o, (_, targets) in zip(outputs, refs, strict=True)) / len(refs)
    assert exact == metrics["test_exact_match"]


def test_averaging_needs_saved_checkpoints():
    with pytest.raises(ConfigError, match="set save_every=N"):
        Seq2SeqConfig(average_last=3)
    with pytest.raises(ConfigError, match="keep_last=3 or more"):
        Seq2SeqConfig(average_last=3, save_every=100, keep_last=2)
    with pytest.raises(ConfigError, match="average_last=-1"):
        Seq2SeqConfig(average_last=-1)
    assert Seq2SeqConfig(average_last=1).average_last == 1  # 1: the last model, nothing to save
